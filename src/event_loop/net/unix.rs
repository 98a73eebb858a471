//! [`UnixListener`] and [`UnixStream`]: Unix domain stream sockets whose
//! accept, connect, reads and writes park the running task (not the
//! thread) until the socket is ready, like their TCP counterparts.

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::task::{Context, Poll};
use std::time::Duration;

use super::super::reactor::Direction;
use super::source::{NO_HINT, Sealed, Source, Target};
use super::sys::StreamIo;

/// A Unix domain socket server, listening for connections, for tasks of
/// an [`EventLoop`](super::super::EventLoop): like
/// [`std::os::unix::net::UnixListener`], but
/// [`accept`](UnixListener::accept) parks the running stackful task until
/// a connection comes.
///
/// ```
/// use cogen::event_loop::net::{UnixListener, UnixStream};
/// use cogen::event_loop::{EventLoop, spawn};
/// use std::io::{Read, Write};
///
/// let dir = std::env::temp_dir().join(format!("cogen-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("echo.sock");
/// let _ = std::fs::remove_file(&path);
/// let p = path.clone();
/// let got = EventLoop::new()
///     .block_on(move || -> std::io::Result<Vec<u8>> {
///         let listener = UnixListener::bind(&p)?;
///         spawn(move || -> std::io::Result<()> {
///             let (mut stream, _) = listener.accept()?;
///             let mut buf = [0; 2];
///             stream.read_exact(&mut buf)?;
///             stream.write_all(&buf)
///         });
///         let mut client = UnixStream::connect(&p)?;
///         client.write_all(b"hi")?;
///         let mut got = Vec::new();
///         client.read_to_end(&mut got)?;
///         Ok(got)
///     })
///     .unwrap()
///     .unwrap();
/// assert_eq!(got, b"hi");
/// std::fs::remove_dir_all(&dir).unwrap();
/// ```
///
/// # Panics
/// `accept` panics outside a stackful task.
pub struct UnixListener {
    source: Source<std::os::unix::net::UnixListener>,
}

impl UnixListener {
    /// Binds a listener to the socket file at `path` (which must not
    /// exist). Works anywhere, inside a task or not.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        UnixListener::try_from(std::os::unix::net::UnixListener::bind(path)?)
    }

    /// Accepts a new connection, parking the running task until one comes.
    ///
    /// # Panics
    /// Outside a stackful task.
    #[track_caller]
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (stream, addr) =
            self.source
                .io("net::UnixListener::accept", Direction::Read, None, |l| {
                    l.accept()
                })?;
        Ok((UnixStream::try_from(stream)?, addr))
    }

    /// Accepts a connection that is already there, without waiting: an
    /// error of kind [`WouldBlock`](io::ErrorKind::WouldBlock) if none is.
    /// Works anywhere (a stackless task waits with `Wait::readable` after
    /// it).
    pub fn try_accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (stream, addr) = self.source.try_io(|l| l.accept())?;
        Ok((UnixStream::try_from(stream)?, addr))
    }

    /// For future tasks: accepts a connection that is there, or files the
    /// task's waker with the loop's reactor and returns `Pending`.
    ///
    /// # Panics
    /// If it has to wait outside a task of a running loop.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(UnixStream, SocketAddr)>> {
        self.source
            .poll_io("net::UnixListener::poll_accept", cx, Direction::Read, |l| {
                l.accept()
            })
            .map(|accepted| {
                let (stream, addr) = accepted?;
                Ok((UnixStream::try_from(stream)?, addr))
            })
    }

    /// An endless iterator of accepted connections: each `next` is an
    /// [`accept`](UnixListener::accept) (and parks the same way).
    pub fn incoming(&self) -> impl Iterator<Item = io::Result<UnixStream>> + '_ {
        std::iter::repeat_with(move || self.accept().map(|(stream, _)| stream))
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
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixListener> {
        let listener = self.source.into_inner();
        listener.set_nonblocking(false)?;
        Ok(listener)
    }
}

/// A Unix domain stream socket, for tasks of an
/// [`EventLoop`](super::super::EventLoop): it reads and writes like
/// [`std::os::unix::net::UnixStream`] (it implements [`Read`] and
/// [`Write`], for `UnixStream` and `&UnixStream`), but an operation that
/// would block parks the running stackful task instead. For future tasks
/// it implements `futures_io::AsyncRead` and `AsyncWrite`, as
/// [`TcpStream`](super::TcpStream) does.
///
/// ```
/// use cogen::event_loop::net::UnixStream;
/// use cogen::event_loop::{EventLoop, spawn};
/// use std::io::{Read, Write};
///
/// let got = EventLoop::new()
///     .block_on(|| -> std::io::Result<String> {
///         let (a, b) = UnixStream::pair()?;
///         spawn(move || (&a).write_all(b"ping"));
///         let mut got = String::new();
///         (&b).take(4).read_to_string(&mut got)?; // parks until `a` writes
///         Ok(got)
///     })
///     .unwrap()
///     .unwrap();
/// assert_eq!(got, "ping");
/// ```
///
/// # Panics
/// `connect`, reads and writes panic outside a stackful task, and when
/// the socket is used in a second loop while the first one it waited in
/// still exists.
pub struct UnixStream {
    source: Source<std::os::unix::net::UnixStream>,
}

impl UnixStream {
    /// Connects to the socket at `path`; the task parks if the connection
    /// has to wait to be set up.
    ///
    /// A listener whose backlog is full is waited for, as std's blocking
    /// connect waits: the kernel has no readiness to report for that (a Unix
    /// socket's connect fails at once with `EAGAIN`), so the task sleeps
    /// and tries again, after 1 ms, then twice as long each time up to
    /// 50 ms. A [`timeout`](crate::event_loop::timeout()) around it bounds
    /// the wait, and a cancellation ends it. The loop sees a sleeping task,
    /// not a stuck one: a listener whose owner waits for this task before
    /// it accepts is a deadlock that is not reported (the loop wakes 20
    /// times a second for ever), where it used to fail at once with
    /// [`WouldBlock`](io::ErrorKind::WouldBlock). Bound such connects with
    /// a `timeout`.
    ///
    /// # Errors
    /// As `connect(2)`.
    ///
    /// # Panics
    /// Outside a stackful task.
    #[track_caller]
    pub fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        const WHAT: &str = "net::UnixStream::connect";
        let may_wait = super::super::context::io_may_wait(WHAT);
        let mut pause = Duration::from_millis(1);
        let stream: std::os::unix::net::UnixStream = loop {
            match mio::net::UnixStream::connect(path.as_ref()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && !may_wait => {
                    return Err(super::super::context::cannot_wait_cancelled(WHAT));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    super::super::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                connected => break connected?.into(),
            }
        };
        let stream = UnixStream {
            source: Source::new(stream),
        };
        stream.source.io(WHAT, Direction::Write, None, |s| {
            match s.take_error()? {
                Some(e) => Err(e),
                // Writable and no error: connected; not yet: under way.
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

    /// A connected pair of sockets. Works anywhere.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = std::os::unix::net::UnixStream::pair()?;
        Ok((UnixStream::try_from(a)?, UnixStream::try_from(b)?))
    }

    /// The local address of this stream.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.std().local_addr()
    }

    /// The address of the other end.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.std().peer_addr()
    }

    /// Shuts down the read half, the write half or both. Tasks of this
    /// stream waiting in a direction shut down are woken: a write fails
    /// with `BrokenPipe`, a read returns the end of the stream.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.source.shutdown(how, |s, how| s.shutdown(how))
    }

    /// Takes the socket's pending error (`SO_ERROR`), if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.std().take_error()
    }

    /// Reads what is there without waiting: an error of kind
    /// [`WouldBlock`](io::ErrorKind::WouldBlock) if nothing is. Works
    /// anywhere; see [`TcpStream::try_read`](super::TcpStream::try_read).
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.source.try_read_now(NO_HINT, |s| s.recv(buf))
    }

    /// Writes what fits without waiting: an error of kind
    /// [`WouldBlock`](io::ErrorKind::WouldBlock) if nothing does. Works
    /// anywhere.
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.source.try_io(|s| s.send(buf))
    }

    /// The std stream, deregistered from the loop and back in blocking
    /// mode.
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixStream> {
        let stream = self.source.into_inner();
        stream.set_nonblocking(false)?;
        Ok(stream)
    }

    fn std(&self) -> &std::os::unix::net::UnixStream {
        self.source.get_ref()
    }
}

impl Read for &UnixStream {
    #[track_caller]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // No drained-read hint: see `shared_async_io!` below.
        self.source
            .read("net::UnixStream::read", None, NO_HINT, |s| s.recv(buf))
    }

    #[track_caller]
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.source
            .read("net::UnixStream::read", None, NO_HINT, |mut s| {
                s.read_vectored(bufs)
            })
    }
}

impl Write for &UnixStream {
    #[track_caller]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.source
            .io("net::UnixStream::write", Direction::Write, None, |s| {
                s.send(buf)
            })
    }

    #[track_caller]
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.source
            .io("net::UnixStream::write", Direction::Write, None, |mut s| {
                s.write_vectored(bufs)
            })
    }

    /// Does nothing: a socket has no buffer of its own to flush.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

// Not hinted: a Unix stream read also stops short at a message that
// carries descriptors (`SCM_RIGHTS`), with data queued after it.
shared_async_io!(UnixStream, "net::UnixStream", hinted: false);

/// Puts the std stream in non-blocking mode.
impl TryFrom<std::os::unix::net::UnixStream> for UnixStream {
    type Error = io::Error;

    fn try_from(stream: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        stream.set_nonblocking(true)?;
        Ok(UnixStream {
            source: Source::new(stream),
        })
    }
}

/// See [`UnixStream::into_std`].
impl TryFrom<UnixStream> for std::os::unix::net::UnixStream {
    type Error = io::Error;

    fn try_from(stream: UnixStream) -> io::Result<std::os::unix::net::UnixStream> {
        stream.into_std()
    }
}

/// Puts the std listener in non-blocking mode.
impl TryFrom<std::os::unix::net::UnixListener> for UnixListener {
    type Error = io::Error;

    fn try_from(listener: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        listener.set_nonblocking(true)?;
        Ok(UnixListener {
            source: Source::new(listener),
        })
    }
}

/// See [`UnixListener::into_std`].
impl TryFrom<UnixListener> for std::os::unix::net::UnixListener {
    type Error = io::Error;

    fn try_from(listener: UnixListener) -> io::Result<std::os::unix::net::UnixListener> {
        listener.into_std()
    }
}

impl Sealed for UnixStream {
    fn target(&self, what: &'static str) -> io::Result<Target> {
        self.source.target(what)
    }
}

impl Sealed for UnixListener {
    fn target(&self, what: &'static str) -> io::Result<Target> {
        self.source.target(what)
    }
}

#[cfg(cogen_nightly)]
impl super::Socket for UnixStream {}

#[cfg(cogen_nightly)]
impl super::Socket for UnixListener {}

impl AsFd for UnixStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.std().as_fd()
    }
}

impl AsRawFd for UnixStream {
    fn as_raw_fd(&self) -> RawFd {
        self.source.as_raw_fd()
    }
}

impl AsFd for UnixListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.source.get_ref().as_fd()
    }
}

impl AsRawFd for UnixListener {
    fn as_raw_fd(&self) -> RawFd {
        self.source.as_raw_fd()
    }
}

impl fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("UnixStream");
        if let Ok(addr) = self.local_addr() {
            d.field("local", &addr);
        }
        if let Ok(peer) = self.peer_addr() {
            d.field("peer", &peer);
        }
        d.field("fd", &self.as_raw_fd()).finish()
    }
}

impl fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("UnixListener");
        if let Ok(addr) = self.local_addr() {
            d.field("addr", &addr);
        }
        d.field("fd", &self.as_raw_fd()).finish()
    }
}

forward_owned_io!(UnixStream);
