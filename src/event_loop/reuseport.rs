//! [`bind_reuseport`]: a TCP listener that other listeners may share its
//! address with (`SO_REUSEPORT`), so that each loop of a
//! [`Runtime`](super::Runtime) accepts on its own listener and the kernel
//! spreads the connections over them.
//!
//! It lives outside `net/` for now, and may move there later.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// The backlog of a listener's queue of connections not yet accepted
/// (the kernel caps it at `net.core.somaxconn`).
const BACKLOG: i32 = 1024;

/// Binds a listening TCP socket to `addr` with `SO_REUSEADDR` and
/// `SO_REUSEPORT` set, so that several listeners (one per loop, on any
/// threads) can bind the same address; the kernel then hands each incoming
/// connection to one of them (on Linux, by a hash of the connection's
/// addresses). Returns a standard listener in blocking mode: turn it into a
/// loop's listener with [`TcpListener::try_from`](super::net::TcpListener),
/// which makes it non-blocking.
///
/// ```
/// use cogen::event_loop::{bind_reuseport, net::TcpListener};
///
/// let a = bind_reuseport("127.0.0.1:0".parse().unwrap()).unwrap();
/// let addr = a.local_addr().unwrap();
/// let b = bind_reuseport(addr).unwrap(); // the same address, a second queue
/// let _a = TcpListener::try_from(a).unwrap();
/// let _b = TcpListener::try_from(b).unwrap();
/// ```
///
/// # Errors
/// If the socket cannot be created, configured or bound (an address that
/// a listener without `SO_REUSEPORT` holds is in use).
pub fn bind_reuseport(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&SockAddr::from(addr))?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}
