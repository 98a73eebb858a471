//! [`UdpSocket`]: a UDP socket whose sends and receives park the running
//! task (not the thread) until the socket is ready.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::task::{Context, Poll};
use std::time::Duration;

use super::super::reactor::Direction;
use super::source::Source;
use super::stream::each_addr;

/// A UDP socket, for tasks of an [`EventLoop`](super::super::EventLoop):
/// like [`std::net::UdpSocket`], but a receive with nothing to receive (or
/// a send with no room in the send buffer) parks the running stackful task
/// instead of the thread.
///
/// ```
/// use cogen::event_loop::EventLoop;
/// use cogen::event_loop::net::UdpSocket;
///
/// let ev = EventLoop::new();
/// let got = ev
///     .block_on(|| -> std::io::Result<Vec<u8>> {
///         let a = UdpSocket::bind("127.0.0.1:0")?;
///         let b = UdpSocket::bind("127.0.0.1:0")?;
///         a.send_to(b"ping", b.local_addr()?)?;
///         let mut buf = [0; 16];
///         let (n, from) = b.recv_from(&mut buf)?;
///         assert_eq!(from, a.local_addr()?);
///         Ok(buf[..n].to_vec())
///     })
///     .unwrap()
///     .unwrap();
/// assert_eq!(got, b"ping");
/// ```
///
/// # Panics
/// Sends and receives panic outside a stackful task.
pub struct UdpSocket {
    pub(super) source: Source<std::net::UdpSocket>,
    read_timeout: Cell<Option<Duration>>,
    write_timeout: Cell<Option<Duration>>,
}

impl UdpSocket {
    /// Binds a socket to `addr` (the first of its addresses that works).
    /// Works anywhere, inside a task or not.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        each_addr(addr, |addr| {
            UdpSocket::try_from(std::net::UdpSocket::bind(addr)?)
        })
    }

    /// Sends `buf` to `addr` (its first address); parks while the send
    /// buffer is full. Returns the number of bytes sent.
    ///
    /// # Panics
    /// Outside a stackful task.
    #[track_caller]
    pub fn send_to(&self, buf: &[u8], addr: impl ToSocketAddrs) -> io::Result<usize> {
        let addr = addr.to_socket_addrs()?.next().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "no addresses to send data to")
        })?;
        self.source.io(
            "net::UdpSocket::send_to",
            Direction::Write,
            self.write_timeout.get(),
            |s| s.send_to(buf, addr),
        )
    }

    /// Receives one datagram into `buf`, parking until one comes; returns
    /// its length (cut to `buf`'s) and where it came from.
    ///
    /// # Panics
    /// Outside a stackful task.
    #[track_caller]
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.source.io(
            "net::UdpSocket::recv_from",
            Direction::Read,
            self.read_timeout.get(),
            |s| s.recv_from(buf),
        )
    }

    /// Sends `buf` to `addr` without waiting: an error of kind
    /// [`WouldBlock`](io::ErrorKind::WouldBlock) if the send buffer is
    /// full. Works anywhere (a stackless task waits with
    /// `Wait::writable` after it).
    pub fn try_send_to(&self, buf: &[u8], addr: SocketAddr) -> io::Result<usize> {
        self.source.try_io(|s| s.send_to(buf, addr))
    }

    /// Receives a datagram that is already there, without waiting: an
    /// error of kind [`WouldBlock`](io::ErrorKind::WouldBlock) if none is.
    /// Works anywhere (a stackless task waits with
    /// `Wait::readable` after it).
    pub fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.source.try_io(|s| s.recv_from(buf))
    }

    /// For future tasks: sends `buf` to `addr`, or files the task's waker
    /// with the loop's reactor and returns `Pending` while the send buffer
    /// is full.
    ///
    /// # Panics
    /// If it has to wait outside a task of a running loop.
    pub fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        addr: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        self.source
            .poll_io("net::UdpSocket::poll_send_to", cx, Direction::Write, |s| {
                s.send_to(buf, addr)
            })
    }

    /// For future tasks: receives a datagram that is there, or files the
    /// task's waker with the loop's reactor and returns `Pending`.
    ///
    /// # Panics
    /// If it has to wait outside a task of a running loop.
    pub fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        self.source
            .poll_io("net::UdpSocket::poll_recv_from", cx, Direction::Read, |s| {
                s.recv_from(buf)
            })
    }

    /// Sets the only address [`send`](UdpSocket::send) sends to and
    /// [`recv`](UdpSocket::recv) receives from. Does not wait.
    pub fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        self.std().connect(addr)
    }

    /// Sends `buf` to the connected address; parks while the send buffer
    /// is full.
    ///
    /// # Panics
    /// Outside a stackful task.
    #[track_caller]
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.source.io(
            "net::UdpSocket::send",
            Direction::Write,
            self.write_timeout.get(),
            |s| s.send(buf),
        )
    }

    /// Receives one datagram from the connected address, parking until one
    /// comes.
    ///
    /// # Panics
    /// Outside a stackful task.
    #[track_caller]
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.source.io(
            "net::UdpSocket::recv",
            Direction::Read,
            self.read_timeout.get(),
            |s| s.recv(buf),
        )
    }

    /// Limits how long one receive may wait; past it, it returns an error
    /// of kind [`io::ErrorKind::TimedOut`]. `None` (the default) waits as
    /// long as it takes. Enforced by the loop's timers, like
    /// [`TcpStream::set_read_timeout`](super::TcpStream::set_read_timeout).
    ///
    /// # Errors
    /// A zero duration is an [`io::ErrorKind::InvalidInput`] error, as in std.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        check_timeout(timeout)?;
        self.read_timeout.set(timeout);
        Ok(())
    }

    /// Limits how long one send may wait for room in the send buffer.
    ///
    /// # Errors
    /// A zero duration is an [`io::ErrorKind::InvalidInput`] error, as in std.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        check_timeout(timeout)?;
        self.write_timeout.set(timeout);
        Ok(())
    }

    /// The receive time limit, if any.
    pub fn read_timeout(&self) -> Option<Duration> {
        self.read_timeout.get()
    }

    /// The send time limit, if any.
    pub fn write_timeout(&self) -> Option<Duration> {
        self.write_timeout.get()
    }

    /// The local address the socket is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.std().local_addr()
    }

    /// The address the socket is connected to.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.std().peer_addr()
    }

    /// Sets `SO_BROADCAST`.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.std().set_broadcast(on)
    }

    /// Takes the socket's pending error (`SO_ERROR`), if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.std().take_error()
    }

    /// The std socket, deregistered from the loop and back in blocking
    /// mode. (Its time limits are not carried over.)
    pub fn into_std(self) -> io::Result<std::net::UdpSocket> {
        let socket = self.source.into_inner();
        socket.set_nonblocking(false)?;
        Ok(socket)
    }

    fn std(&self) -> &std::net::UdpSocket {
        self.source.get_ref()
    }
}

impl super::source::Sealed for UdpSocket {
    fn target(&self, what: &'static str) -> io::Result<super::source::Target> {
        self.source.target(what)
    }
}

#[cfg(cogen_nightly)]
impl super::Socket for UdpSocket {}

fn check_timeout(timeout: Option<Duration>) -> io::Result<()> {
    if timeout.is_some_and(|t| t.is_zero()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot set a 0 duration timeout",
        ));
    }
    Ok(())
}

/// Puts the std socket in non-blocking mode.
impl TryFrom<std::net::UdpSocket> for UdpSocket {
    type Error = io::Error;

    fn try_from(socket: std::net::UdpSocket) -> io::Result<UdpSocket> {
        socket.set_nonblocking(true)?;
        Ok(UdpSocket {
            source: Source::new(socket),
            read_timeout: Cell::new(None),
            write_timeout: Cell::new(None),
        })
    }
}

/// See [`UdpSocket::into_std`].
impl TryFrom<UdpSocket> for std::net::UdpSocket {
    type Error = io::Error;

    fn try_from(socket: UdpSocket) -> io::Result<std::net::UdpSocket> {
        socket.into_std()
    }
}

impl AsFd for UdpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.std().as_fd()
    }
}

impl AsRawFd for UdpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.source.as_raw_fd()
    }
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("UdpSocket");
        if let Ok(addr) = self.local_addr() {
            d.field("addr", &addr);
        }
        d.field("fd", &self.as_raw_fd()).finish()
    }
}
