//! [`TcpListener`]: a listening TCP socket whose `accept` parks the running
//! task until a connection comes, and [`Incoming`], its iterator of
//! connections.

use std::fmt;
use std::io;
use std::iter::FusedIterator;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::task::{Context, Poll};
use std::time::Duration;

use super::super::reactor::Direction;
use super::source::Source;
use super::stream::{TcpStream, accepted, each_addr, nonblocking_socket, raw_addr};

/// A TCP socket server, listening for connections, for tasks of an
/// [`EventLoop`](super::super::EventLoop).
///
/// [`accept`](TcpListener::accept) parks the running stackful task until a
/// connection comes; the usual server spawns one task per connection:
///
/// ```no_run
/// use cogen::event_loop::net::TcpListener;
/// use cogen::event_loop::{EventLoop, spawn};
///
/// EventLoop::new()
///     .block_on(|| -> std::io::Result<()> {
///         let listener = TcpListener::bind("127.0.0.1:7000")?;
///         for stream in listener.incoming() {
///             let stream = stream?;
///             spawn(move || {
///                 let (mut reader, mut writer) = (&stream, &stream);
///                 std::io::copy(&mut reader, &mut writer) // echo until the peer closes
///             });
///         }
///         Ok(())
///     })
///     .unwrap()
///     .unwrap();
/// ```
///
/// # Errors that do not end a server
/// `accept` returns the operating system's errors, among them running out
/// of file descriptors (`EMFILE`, `ENFILE`) and a connection reset before
/// it was accepted (`ECONNABORTED`). The listener stays usable: a server
/// loop usually logs such an error, maybe sleeps a little
/// ([`sleep`](super::super::sleep)) while descriptors are short, and
/// accepts again. A pending connection waits in the backlog meanwhile, and
/// the next `accept` tries the system call before it waits, so it is taken
/// as soon as a descriptor is free.
///
/// # Panics
/// `accept` panics outside a stackful task.
pub struct TcpListener {
    pub(super) source: Source<std::net::TcpListener>,
}

impl TcpListener {
    /// Binds a listener to `addr` (the first of its addresses that works;
    /// port 0 picks a free port: see [`local_addr`](TcpListener::local_addr)).
    /// Works anywhere, inside a task or not.
    ///
    /// Like std's, the socket has `SO_REUSEADDR` set; unlike std's, its
    /// backlog (connections the system completes and queues until they
    /// are accepted) is 1024 rather than 128, as in tokio, so that a burst
    /// of connections is not dropped while the loop runs other tasks. The
    /// system may cap it (`net.core.somaxconn` on Linux).
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        each_addr(addr, |addr| {
            Ok(TcpListener {
                source: Source::new(listen(&addr)?),
            })
        })
    }

    /// Accepts a new connection, parking the running task until one comes.
    ///
    /// # Panics
    /// Outside a stackful task.
    #[track_caller]
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        self.accept_with(None)
    }

    /// Like [`accept`](TcpListener::accept), but gives up with
    /// [`io::ErrorKind::TimedOut`] once it has waited `timeout`.
    ///
    /// # Panics
    /// Outside a stackful task.
    #[track_caller]
    pub fn accept_timeout(&self, timeout: Duration) -> io::Result<(TcpStream, SocketAddr)> {
        self.accept_with(Some(timeout))
    }

    #[track_caller]
    fn accept_with(&self, timeout: Option<Duration>) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, addr) = self.source.io(
            "net::TcpListener::accept",
            Direction::Read,
            timeout,
            accept_nonblocking,
        )?;
        Ok((accepted(stream), addr))
    }

    /// Accepts a connection that is already there, without waiting: an
    /// error of kind [`WouldBlock`](io::ErrorKind::WouldBlock) if none is.
    /// Works anywhere (a stackless task waits with
    /// `Wait::readable` after it).
    pub fn try_accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, addr) = self.source.try_io(accept_nonblocking)?;
        Ok((accepted(stream), addr))
    }

    /// For future tasks: accepts a connection that is there, or files the
    /// task's waker with the loop's reactor and returns `Pending` (see the
    /// [module docs](super#future-tasks)).
    ///
    /// # Panics
    /// If it has to wait outside a task of a running loop.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        self.source
            .poll_io(
                "net::TcpListener::poll_accept",
                cx,
                Direction::Read,
                accept_nonblocking,
            )
            .map_ok(|(stream, addr)| (accepted(stream), addr))
    }

    /// For future tasks: a future of the next connection
    /// ([`poll_accept`](TcpListener::poll_accept) until it is ready).
    ///
    /// # Panics
    /// If it has to wait outside a task of a running loop.
    pub fn accept_async(&self) -> impl Future<Output = io::Result<(TcpStream, SocketAddr)>> + '_ {
        std::future::poll_fn(|cx| self.poll_accept(cx))
    }

    /// An endless iterator of accepted connections: each `next` is an
    /// [`accept`](TcpListener::accept) (and parks the same way).
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The local address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.source.get_ref().local_addr()
    }

    /// Takes the socket's pending error (`SO_ERROR`), if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.source.get_ref().take_error()
    }

    /// The std listener, deregistered from the loop and back in blocking
    /// mode.
    pub fn into_std(self) -> io::Result<std::net::TcpListener> {
        let listener = self.source.into_inner();
        listener.set_nonblocking(false)?;
        Ok(listener)
    }
}

/// Accepts a connection as a non-blocking socket: in one `accept4` where
/// there is one.
#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly",
    target_os = "illumos",
    target_os = "solaris"
))]
fn accept_nonblocking(
    listener: &std::net::TcpListener,
) -> io::Result<(std::net::TcpStream, SocketAddr)> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
    use std::os::fd::FromRawFd;
    // SAFETY: all-zero bytes are a valid `sockaddr_storage`.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `storage` has room for `len` bytes of any socket address;
    // the descriptor is open.
    let fd = unsafe {
        libc::accept4(
            listener.as_raw_fd(),
            std::ptr::from_mut(&mut storage).cast(),
            &mut len,
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor that nothing else owns.
    let stream = unsafe { std::net::TcpStream::from_raw_fd(fd) };
    let addr = match libc::c_int::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a `sockaddr_in` (its family says
            // so); `sockaddr_storage` is aligned for it.
            let sin = unsafe { *std::ptr::from_ref(&storage).cast::<libc::sockaddr_in>() };
            SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                u16::from_be(sin.sin_port),
            ))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, a `sockaddr_in6`.
            let sin6 = unsafe { *std::ptr::from_ref(&storage).cast::<libc::sockaddr_in6>() };
            SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            ))
        }
        _ => stream.peer_addr()?,
    };
    Ok((stream, addr))
}

/// Accepts a connection as a non-blocking socket.
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly",
    target_os = "illumos",
    target_os = "solaris"
)))]
fn accept_nonblocking(
    listener: &std::net::TcpListener,
) -> io::Result<(std::net::TcpStream, SocketAddr)> {
    let (stream, addr) = listener.accept()?;
    stream.set_nonblocking(true)?;
    Ok((stream, addr))
}

/// The backlog [`TcpListener::bind`] asks for.
const BACKLOG: libc::c_int = 1024;

/// A new listening socket on `addr`, non-blocking, with `SO_REUSEADDR`.
fn listen(addr: &SocketAddr) -> io::Result<std::net::TcpListener> {
    // The listener owns the descriptor from here on: it closes on error.
    let socket = std::net::TcpListener::from(std::os::fd::OwnedFd::from(nonblocking_socket(addr)?));
    let fd = socket.as_raw_fd();
    let one: libc::c_int = 1;
    let (raw, len) = raw_addr(addr);
    // SAFETY: plain system calls on the open descriptor `socket` owns;
    // `one` and `raw` are valid for the sizes given.
    unsafe {
        if libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            std::ptr::from_ref(&one).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        ) != 0
            || libc::bind(fd, std::ptr::from_ref(&raw).cast(), len) != 0
            || libc::listen(fd, BACKLOG) != 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(socket)
}

/// Puts the std listener in non-blocking mode.
impl TryFrom<std::net::TcpListener> for TcpListener {
    type Error = io::Error;

    fn try_from(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        listener.set_nonblocking(true)?;
        Ok(TcpListener {
            source: Source::new(listener),
        })
    }
}

/// See [`TcpListener::into_std`].
impl TryFrom<TcpListener> for std::net::TcpListener {
    type Error = io::Error;

    fn try_from(listener: TcpListener) -> io::Result<std::net::TcpListener> {
        listener.into_std()
    }
}

impl super::source::Sealed for TcpListener {
    fn target(&self, what: &'static str) -> io::Result<super::source::Target> {
        self.source.target(what)
    }
}

#[cfg(cogen_nightly)]
impl super::Socket for TcpListener {}

impl AsFd for TcpListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.source.get_ref().as_fd()
    }
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.source.as_raw_fd()
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TcpListener");
        if let Ok(addr) = self.local_addr() {
            d.field("addr", &addr);
        }
        d.field("fd", &self.as_raw_fd()).finish()
    }
}

/// The connections of a [`TcpListener`], from [`TcpListener::incoming`]:
/// never ends; each item is the result of one
/// [`accept`](TcpListener::accept).
#[must_use = "iterators do nothing unless iterated"]
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;

    #[track_caller]
    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(stream, _)| stream))
    }
}

impl FusedIterator for Incoming<'_> {}
