//! [`TcpStream`]: a TCP connection whose reads, writes and connect park
//! the running task (not the thread) until the socket is ready, with
//! optional time limits.

use std::cell::Cell;
use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use super::super::reactor::Direction;
use super::source::Source;
use super::sys::StreamIo;

/// A TCP connection between a local and a remote socket, for tasks of an
/// [`EventLoop`](super::super::EventLoop).
///
/// It reads and writes like [`std::net::TcpStream`] — it implements
/// [`Read`] and [`Write`], for `TcpStream` and `&TcpStream`, so
/// [`BufReader`](std::io::BufReader), `read_line` and [`io::copy`] work
/// unchanged — but an operation that would block parks the running
/// stackful task instead, and the loop runs the other tasks meanwhile.
///
/// Through `&TcpStream` (for instance in an `Rc`), one task may read while
/// another writes the same connection: each direction has its own waiters.
///
/// ```
/// use cogen::event_loop::net::{TcpListener, TcpStream};
/// use cogen::event_loop::{EventLoop, spawn};
/// use std::io::{Read, Write};
///
/// let ev = EventLoop::new();
/// let got = ev
///     .block_on(|| -> std::io::Result<Vec<u8>> {
///         let listener = TcpListener::bind("127.0.0.1:0")?;
///         let addr = listener.local_addr()?;
///         let server = spawn(move || -> std::io::Result<()> {
///             let (mut stream, _) = listener.accept()?;
///             stream.write_all(b"hi")?;
///             Ok(()) // dropping `stream` closes the connection
///         });
///         let mut client = TcpStream::connect(addr)?;
///         let mut got = Vec::new();
///         client.read_to_end(&mut got)?; // parks until the server writes, then closes
///         server.join().unwrap()?;
///         Ok(got)
///     })
///     .unwrap()
///     .unwrap();
/// assert_eq!(got, b"hi");
/// ```
///
/// # Panics
/// `connect`, reads and writes panic outside a stackful task (like every
/// waiting function of the loop; see the [module docs](super)), and when
/// the socket is used in a second loop while the first one it waited in
/// still exists.
pub struct TcpStream {
    pub(super) source: Source<std::net::TcpStream>,
    read_timeout: Cell<Option<Duration>>,
    write_timeout: Cell<Option<Duration>>,
}

impl TcpStream {
    fn from_source(source: Source<std::net::TcpStream>) -> Self {
        TcpStream {
            source,
            read_timeout: Cell::new(None),
            write_timeout: Cell::new(None),
        }
    }

    /// Opens a connection to `addr`, trying each address it resolves to
    /// in turn; the task parks while the connection is being set up.
    ///
    /// Resolving a host name (not an IP address) is a blocking call on the
    /// loop's thread: resolve it with [`unblock`](super::super::unblock)
    /// first if that matters.
    ///
    /// # Panics
    /// Outside a stackful task.
    #[track_caller]
    pub fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        each_addr(addr, |addr| connect_addr(addr, None))
    }

    /// Opens a connection to `addr`, giving up with
    /// [`io::ErrorKind::TimedOut`] after `timeout`.
    ///
    /// # Panics
    /// Outside a stackful task.
    #[track_caller]
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(zero_timeout());
        }
        connect_addr(*addr, Some(timeout))
    }

    /// The remote address this stream is connected to.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.std().peer_addr()
    }

    /// The local address of this stream.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.std().local_addr()
    }

    /// Shuts down the read half, the write half or both
    /// ([`std::net::TcpStream::shutdown`]). After `Shutdown::Write` the peer
    /// reads the end of the stream (0 bytes), and may still send. Tasks
    /// of this stream waiting in a direction shut down are woken: a write
    /// fails with `BrokenPipe`, a read returns the end of the stream.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.source.shutdown(how, |s, how| s.shutdown(how))
    }

    /// Sets `TCP_NODELAY` (disables Nagle's algorithm when `true`).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.std().set_nodelay(nodelay)
    }

    /// The value of `TCP_NODELAY`.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.std().nodelay()
    }

    /// Limits how long one read may wait: past it, the read returns an
    /// error of kind [`io::ErrorKind::TimedOut`] (and reads nothing).
    /// `None` (the default) waits as long as it takes.
    ///
    /// The limit counts from the moment the read would block, and the
    /// loop's timers enforce it: the task parks on both the socket and a
    /// timer, and the first to fire wakes it.
    ///
    /// # Errors
    /// A zero duration is an [`io::ErrorKind::InvalidInput`] error, as in std.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        if timeout.is_some_and(|t| t.is_zero()) {
            return Err(zero_timeout());
        }
        self.read_timeout.set(timeout);
        Ok(())
    }

    /// Limits how long one write may wait for room in the socket's send
    /// buffer (the peer not reading); past it, the write returns an error
    /// of kind [`io::ErrorKind::TimedOut`]. See
    /// [`set_read_timeout`](TcpStream::set_read_timeout).
    ///
    /// # Errors
    /// A zero duration is an [`io::ErrorKind::InvalidInput`] error, as in std.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        if timeout.is_some_and(|t| t.is_zero()) {
            return Err(zero_timeout());
        }
        self.write_timeout.set(timeout);
        Ok(())
    }

    /// The read time limit, if any.
    pub fn read_timeout(&self) -> Option<Duration> {
        self.read_timeout.get()
    }

    /// The write time limit, if any.
    pub fn write_timeout(&self) -> Option<Duration> {
        self.write_timeout.get()
    }

    /// Reads without removing the data from the socket's queue; parks
    /// like [`read`](Read::read).
    ///
    /// # Panics
    /// Outside a stackful task.
    #[track_caller]
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.source.io(
            "net::TcpStream::peek",
            Direction::Read,
            self.read_timeout.get(),
            |s| s.peek(buf),
        )
    }

    /// Takes the socket's pending error (`SO_ERROR`), if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.std().take_error()
    }

    /// Reads what is there without waiting: an error of kind
    /// [`WouldBlock`](io::ErrorKind::WouldBlock) if nothing is. Works
    /// anywhere (a stackless task waits with
    /// `Wait::readable` after it; a
    /// stackful task simply [`read`](Read::read)s).
    ///
    /// It always makes the system call: a task that polls with it (and
    /// yields in between), or code outside the loop, sees new data as soon
    /// as it comes.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len();
        self.source.try_read_now(len, |s| s.recv(buf))
    }

    /// Writes what fits in the socket's send buffer without waiting: an
    /// error of kind [`WouldBlock`](io::ErrorKind::WouldBlock) if nothing
    /// does. Works anywhere.
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.source.try_io(|s| s.send(buf))
    }

    /// The std stream, deregistered from the loop and back in blocking
    /// mode. (Its time limits are not carried over.)
    pub fn into_std(self) -> io::Result<std::net::TcpStream> {
        let stream = self.source.into_inner();
        stream.set_nonblocking(false)?;
        Ok(stream)
    }

    fn std(&self) -> &std::net::TcpStream {
        self.source.get_ref()
    }
}

/// Calls `f` on each address `addr` resolves to until one succeeds; the
/// last error otherwise.
pub(super) fn each_addr<T>(
    addr: impl ToSocketAddrs,
    mut f: impl FnMut(SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for addr in addr.to_socket_addrs()? {
        match f(addr) {
            Ok(value) => return Ok(value),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        )
    }))
}

fn zero_timeout() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "cannot set a 0 duration timeout",
    )
}

/// A non-blocking connect to `addr`: starts it, parks until the socket is
/// writable, then reads the outcome.
#[track_caller]
fn connect_addr(addr: SocketAddr, timeout: Option<Duration>) -> io::Result<TcpStream> {
    const WHAT: &str = "net::TcpStream::connect";
    // Checked first, so that misuse shows even where nothing waits; the
    // answer is `Source::io`'s to act on.
    super::super::context::io_may_wait(WHAT);
    let stream = nonblocking_socket(&addr)?;
    let (raw, len) = raw_addr(&addr);
    // SAFETY: `raw` is a valid socket address of `len` bytes for the
    // socket's family, and the descriptor is open.
    let started =
        unsafe { libc::connect(stream.as_raw_fd(), std::ptr::from_ref(&raw).cast(), len) };
    let stream = TcpStream::from_source(Source::new(stream));
    if started == 0 {
        return Ok(stream);
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::EINPROGRESS) {
        return Err(err);
    }
    stream.source.io(WHAT, Direction::Write, timeout, |s| {
        match s.take_error()? {
            Some(e) => Err(e),
            // Writable and no error: connected; not yet: still under way.
            None => match s.peer_addr() {
                Ok(_) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                    Err(io::ErrorKind::WouldBlock.into())
                }
                Err(e) => Err(e),
            },
        }
    })?;
    Ok(stream)
}

/// A new TCP socket for `addr`'s family, in non-blocking mode and closed
/// on `exec`.
pub(super) fn nonblocking_socket(addr: &SocketAddr) -> io::Result<std::net::TcpStream> {
    let family = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
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
    let (kind, set_flags) = (
        libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        false,
    );
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
    let (kind, set_flags) = (libc::SOCK_STREAM, true);
    // SAFETY: a plain system call; its result is checked.
    let fd = unsafe { libc::socket(family, kind, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor that nothing else owns.
    let stream = std::net::TcpStream::from(unsafe { OwnedFd::from_raw_fd(fd) });
    if set_flags {
        // SAFETY: plain system calls on the descriptor `stream` owns.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
            return Err(io::Error::last_os_error());
        }
        stream.set_nonblocking(true)?;
    }
    Ok(stream)
}

/// `addr` as a C socket address and its length.
pub(super) fn raw_addr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero bytes are a valid `sockaddr_storage` (plain integers).
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            // SAFETY: all-zero bytes are a valid `sockaddr_in`.
            let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr = libc::in_addr {
                s_addr: u32::from_ne_bytes(a.ip().octets()),
            };
            // SAFETY: `sockaddr_storage` is larger than and aligned for
            // every socket address type.
            unsafe {
                std::ptr::from_mut(&mut storage)
                    .cast::<libc::sockaddr_in>()
                    .write(sin)
            };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: all-zero bytes are a valid `sockaddr_in6`.
            let mut sin6: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_addr = libc::in6_addr {
                s6_addr: a.ip().octets(),
            };
            sin6.sin6_scope_id = a.scope_id();
            // SAFETY: as above.
            unsafe {
                std::ptr::from_mut(&mut storage)
                    .cast::<libc::sockaddr_in6>()
                    .write(sin6)
            };
            size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

impl Read for &TcpStream {
    #[inline]
    #[track_caller]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len();
        self.source
            .read("net::TcpStream::read", self.read_timeout.get(), len, |s| {
                s.recv(buf)
            })
    }

    #[track_caller]
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        let len = super::source::vectored_len(bufs);
        self.source.read(
            "net::TcpStream::read",
            self.read_timeout.get(),
            len,
            |mut s| s.read_vectored(bufs),
        )
    }
}

impl Write for &TcpStream {
    #[inline]
    #[track_caller]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.source.io(
            "net::TcpStream::write",
            Direction::Write,
            self.write_timeout.get(),
            |s| s.send(buf),
        )
    }

    #[track_caller]
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.source.io(
            "net::TcpStream::write",
            Direction::Write,
            self.write_timeout.get(),
            |mut s| s.write_vectored(bufs),
        )
    }

    /// Does nothing: a socket has no buffer of its own to flush.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Puts the std stream in non-blocking mode.
impl TryFrom<std::net::TcpStream> for TcpStream {
    type Error = io::Error;

    fn try_from(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        stream.set_nonblocking(true)?;
        Ok(TcpStream::from_source(Source::new(stream)))
    }
}

/// See [`TcpStream::into_std`].
impl TryFrom<TcpStream> for std::net::TcpStream {
    type Error = io::Error;

    fn try_from(stream: TcpStream) -> io::Result<std::net::TcpStream> {
        stream.into_std()
    }
}

/// A stream accepted by a listener, already in non-blocking mode.
pub(super) fn accepted(stream: std::net::TcpStream) -> TcpStream {
    TcpStream::from_source(Source::new(stream))
}

impl super::source::Sealed for TcpStream {
    fn target(&self, what: &'static str) -> io::Result<super::source::Target> {
        self.source.target(what)
    }
}

#[cfg(cogen_nightly)]
impl super::Socket for TcpStream {}

impl AsFd for TcpStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.std().as_fd()
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.source.as_raw_fd()
    }
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TcpStream");
        if let Ok(addr) = self.local_addr() {
            d.field("addr", &addr);
        }
        if let Ok(peer) = self.peer_addr() {
            d.field("peer", &peer);
        }
        d.field("fd", &self.as_raw_fd()).finish()
    }
}

shared_async_io!(TcpStream, "net::TcpStream", hinted: true);
forward_owned_io!(TcpStream);
