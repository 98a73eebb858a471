//! [`TcpListener`]: a listening TCP socket whose `accept` parks the running
//! task until a connection comes, and [`Incoming`], its iterator of
//! connections.

use std::fmt;
use std::io;
use std::iter::FusedIterator;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

use super::super::reactor::Direction;
use super::source::Source;
use super::stream::{TcpStream, accepted, each_addr};

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
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        each_addr(addr, |addr| {
            TcpListener::try_from(std::net::TcpListener::bind(addr)?)
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
            std::net::TcpListener::accept,
        )?;
        stream.set_nonblocking(true)?;
        Ok((accepted(stream), addr))
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
