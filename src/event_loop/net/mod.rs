//! Sockets (feature `net`): [`TcpListener`], [`TcpStream`],
//! [`UdpSocket`], [`UnixListener`] and [`UnixStream`], whose operations park the running task, not the thread,
//! while the socket is not ready: stackful tasks through `Read`, `Write`
//! and methods that wait, future tasks through `AsyncRead`, `AsyncWrite`
//! and `poll_` methods, stackless tasks through `try_` methods and
//! `Wait::readable` / `Wait::writable`.
//!
//! # Blocking code, one thread
//!
//! A server's per-connection code reads like blocking code — read, parse,
//! write, loop — and one thread serves every connection: each runs in its
//! own task, and a read with nothing to read parks that task while the
//! loop runs the others. [`TcpStream`] implements [`std::io::Read`] and
//! [`std::io::Write`], so [`BufReader`](std::io::BufReader), `read_line`,
//! `write_all` and [`std::io::copy`] work unchanged.
//!
//! A line echo server and a client, on one loop over loopback:
//!
//! ```
//! use cogen::event_loop::net::{TcpListener, TcpStream};
//! use cogen::event_loop::{EventLoop, spawn};
//! use std::io::{self, BufRead, BufReader, Write};
//!
//! /// One connection: echo every line back until the client closes.
//! fn serve(stream: TcpStream) -> io::Result<()> {
//!     let mut lines = BufReader::new(&stream);
//!     let mut line = String::new();
//!     while lines.read_line(&mut line)? > 0 {
//!         (&stream).write_all(line.as_bytes())?;
//!         line.clear();
//!     }
//!     Ok(())
//! }
//!
//! let ev = EventLoop::new();
//! let replies = ev
//!     .block_on(|| -> io::Result<Vec<String>> {
//!         let listener = TcpListener::bind("127.0.0.1:0")?;
//!         let addr = listener.local_addr()?;
//!         // The server: one task per connection.
//!         spawn(move || {
//!             for stream in listener.incoming() {
//!                 let stream = stream.expect("accept");
//!                 spawn(move || serve(stream));
//!             }
//!         });
//!         // Two clients, each in its own task too.
//!         let clients: Vec<_> = ["hello", "world"]
//!             .into_iter()
//!             .map(|word| {
//!                 spawn(move || -> io::Result<String> {
//!                     let mut stream = TcpStream::connect(addr)?;
//!                     writeln!(stream, "{word}")?;
//!                     let mut reply = String::new();
//!                     BufReader::new(&stream).read_line(&mut reply)?;
//!                     Ok(reply)
//!                 })
//!             })
//!             .collect();
//!         clients.into_iter().map(|c| c.join().unwrap()).collect()
//!     })
//!     .unwrap()
//!     .unwrap();
//! assert_eq!(replies, ["hello\n", "world\n"]);
//! // The server task is still parked in `accept`: dropping the loop
//! // cancels it (and closes the listener).
//! ```
//!
//! `examples/echo_server.rs` and `examples/chat_server.rs` are complete
//! servers.
//!
//! # How a socket waits
//!
//! Every socket is a std socket in non-blocking mode. An operation first
//! makes its system call; only if that would block does the task park on
//! the loop's reactor (one poller per loop, created when the first socket
//! has to wait: a `mio::Poll`, the poller tokio is built on), which wakes
//! it when the socket is ready; then it tries again. A task parked on a
//! socket costs nothing until the socket is ready. One task may read while
//! another writes the same connection (share it in an `Rc` and use
//! `&TcpStream`): each direction has its own waiters.
//!
//! **Current behaviour, not guaranteed.** A socket is registered with the
//! poller once (edge-triggered, both directions), the first time it has
//! to wait, and deregistered when it is dropped: a wait adds no system
//! call of its own. On Linux and the BSDs a stream read that returns less
//! than it asked for took all there was, so the next read parks at once
//! instead of making a system call that would find nothing, until the
//! poller reports the socket readable again (tokio does the same; a
//! `try_read` always makes its system call). One case breaks the rule: a
//! TCP read stops short at an urgent (out-of-band) byte with data queued
//! behind it, and the next read then waits for the peer's next data, its
//! close or the read's time limit. While
//! tasks stay runnable, the loop asks the poller for ready sockets
//! (without waiting) after a round in which a task yielded, or every 61
//! task steps, only while some task waits on one; idle, it waits in the
//! poller until the next timer. So an echo
//! request costs its `recv` and its `send` and a share of one poller wait:
//! `docs/BENCHMARKS.md` has the counts measured.
//!
//! # Time limits
//!
//! [`TcpStream::set_read_timeout`] and [`TcpStream::set_write_timeout`]
//! (and the same on [`UdpSocket`]) limit how long one operation may wait;
//! past the limit it returns an error of kind
//! [`TimedOut`](std::io::ErrorKind::TimedOut). [`TcpListener::accept_timeout`]
//! and [`TcpStream::connect_timeout`] do the same for one call. They use
//! the loop's timers: the task parks on the socket and on a timer, and
//! the first to fire wakes it.
//!
//! # Cancellation, drop, deadlocks
//!
//! Cancelling a task parked on a socket (or dropping the loop, which
//! cancels every task) unwinds it like any wait: its place among the
//! socket's waiters is removed, so the socket can be used by another task
//! at once. (A cancelled stackless or future task leaves an entry that
//! names it without keeping it alive, and that the socket's next event or
//! its drop clears.) Dropping a socket closes it and deregisters it from
//! the reactor; stackless tasks and wakers still waiting on it are woken,
//! to find it gone. A socket belongs to the loop it first waited in for
//! as long as that loop exists; after that it registers with the next.
//!
//! A destructor that its task's cancellation runs (a connection's guard
//! saying goodbye, a [`BufWriter`](std::io::BufWriter)'s flush) may use a
//! socket too: each operation is tried once, and where it would have to
//! wait it fails with an error that says so (a cancelled task cannot
//! wait; the panic that says so elsewhere would abort the process there,
//! as the thread is unwinding). So a goodbye that fits in the send buffer
//! is sent, and a flush into a full one is given up.
//!
//! A task parked on a socket, or a waker filed with one, is never part of
//! a deadlock: something outside the loop (the peer) can always wake it,
//! so the loop waits for it rather than reporting
//! [`RunError`](super::RunError).
//!
//! # Future tasks
//!
//! [`TcpStream`] (and `&TcpStream`) implements
//! [`futures_io::AsyncRead`] and [`futures_io::AsyncWrite`], so
//! futures-lite's or futures' `AsyncReadExt` / `AsyncWriteExt` work in a
//! task of [`spawn_future`](super::spawn_future);
//! [`TcpListener::poll_accept`] / [`TcpListener::accept_async`] and
//! [`UdpSocket::poll_send_to`] / [`UdpSocket::poll_recv_from`] are the
//! others. An operation that would block files the task's waker with the
//! loop's reactor (the task's key, for a task of this loop: waking it
//! costs no system call) and returns `Pending`:
//!
//! ```
//! use cogen::event_loop::EventLoop;
//! use cogen::event_loop::net::TcpListener;
//! use futures_lite::{AsyncReadExt, AsyncWriteExt};
//!
//! let listener = TcpListener::bind("127.0.0.1:0").unwrap();
//! let addr = listener.local_addr().unwrap();
//! let ev = EventLoop::new();
//! let server = ev.spawn_future(async move {
//!     let (mut stream, _) = listener.accept_async().await?;
//!     let mut buf = [0; 5];
//!     stream.read_exact(&mut buf).await?;
//!     stream.write_all(&buf).await?;
//!     std::io::Result::Ok(())
//! });
//! let client = std::thread::spawn(move || {
//!     use std::io::{Read, Write};
//!     let mut s = std::net::TcpStream::connect(addr).unwrap();
//!     s.write_all(b"hello").unwrap();
//!     let mut back = [0; 5];
//!     s.read_exact(&mut back).unwrap();
//!     back
//! });
//! ev.run().unwrap();
//! server.join().unwrap().unwrap();
//! assert_eq!(&client.join().unwrap(), b"hello");
//! ```
//!
//! The time limits set on a socket apply to its waiting (stackful) forms
//! only. A type with both `Read` and `AsyncRead` makes `read_exact` and
//! the like ambiguous where both extension traits are in scope: import
//! the one the task's kind uses, or name the trait.
//!
//! # Where it works
//!
//! Connecting, accepting, reading, writing, sending and receiving through
//! `Read`, `Write` and the methods of those names wait, so they work in a
//! stackful task and in any coroutine nested in one (the wait parks the
//! whole task), and panic elsewhere (in a future task, a stackless task,
//! or outside any loop), like every waiting function of the loop; the
//! message says why. Binding, the
//! addresses, options and conversions work anywhere. The sockets are
//! `!Send`, like tasks.
//!
//! Their non-waiting forms work anywhere: [`TcpStream::try_read`],
//! [`TcpStream::try_write`], [`TcpListener::try_accept`],
//! [`UdpSocket::try_send_to`] and [`UdpSocket::try_recv_from`] return an
//! error of kind [`WouldBlock`](std::io::ErrorKind::WouldBlock) where the
//! waiting form would wait. A stackless task (feature `nightly`) then
//! yields `Wait::readable(&socket)?` or `Wait::writable(&socket)?` and
//! tries again when it is woken. The `poll_` forms and `AsyncRead` /
//! `AsyncWrite` work in any task of the socket's loop, and panic only if
//! they have to wait outside one.
//!
//! Unix only (the rest of the crate needs it too). On Linux (x86-64,
//! AArch64, RISC-V 64 and LoongArch 64), a stream's single reads and
//! writes (`read`, `write`, their `try_` and `poll_` forms) make their
//! system call directly, with the flags std uses, rather than through
//! libc's wrapper, which is a thread-cancellation point and costs each
//! call two atomic updates: a library that interposes on libc's socket
//! functions (`LD_PRELOAD`) does not see those calls, and still sees every
//! other one.

/// The owned stream's `Read`, `Write`, `AsyncRead` and `AsyncWrite`, each
/// forwarding to the same trait on `&$Stream` (where the work is): one
/// definition for `TcpStream` and `UnixStream`.
macro_rules! forward_owned_io {
    ($Stream:ty) => {
        impl std::io::Read for $Stream {
            #[inline]
            #[track_caller]
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                (&*self).read(buf)
            }

            #[track_caller]
            fn read_vectored(
                &mut self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                (&*self).read_vectored(bufs)
            }
        }

        impl std::io::Write for $Stream {
            #[inline]
            #[track_caller]
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                (&*self).write(buf)
            }

            #[track_caller]
            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                (&*self).write_vectored(bufs)
            }

            /// Does nothing: a socket has no buffer of its own to flush.
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        /// As for the shared reference.
        impl futures_io::AsyncRead for $Stream {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut &*self).poll_read(cx, buf)
            }

            fn poll_read_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut &*self).poll_read_vectored(cx, bufs)
            }
        }

        /// As for the shared reference.
        impl futures_io::AsyncWrite for $Stream {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut &*self).poll_write(cx, buf)
            }

            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut &*self).poll_write_vectored(cx, bufs)
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut &*self).poll_flush(cx)
            }

            fn poll_close(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut &*self).poll_close(cx)
            }
        }
    };
}

/// `AsyncRead` and `AsyncWrite` for `&$Stream`, through the stream's
/// `source` (its readiness with the loop's reactor) and `shutdown`: one
/// definition for `TcpStream` and `UnixStream`. `$name` prefixes the
/// messages of the panics; `$hinted` says whether a short read took all
/// there was (see `Source::read`).
macro_rules! shared_async_io {
    ($Stream:ty, $name:literal, hinted: $hinted:literal) => {
        /// For future tasks: a read that would block files the task's waker
        /// with the loop's reactor and returns `Pending` (see the [module
        /// docs](super#future-tasks)). A time limit set on the stream does
        /// not apply: use the future's own (for instance
        /// [`timeout`](super::super::timeout) in a stackful task).
        ///
        /// # Panics
        /// If it has to wait outside a task of a running loop.
        impl futures_io::AsyncRead for &$Stream {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                let len = if $hinted {
                    buf.len()
                } else {
                    $crate::event_loop::net::source::NO_HINT
                };
                self.source
                    .poll_read(concat!($name, "::poll_read"), cx, len, |s| {
                        $crate::event_loop::net::sys::StreamIo::recv(s, buf)
                    })
            }

            fn poll_read_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                let len = if $hinted {
                    $crate::event_loop::net::source::vectored_len(bufs)
                } else {
                    $crate::event_loop::net::source::NO_HINT
                };
                self.source
                    .poll_read(concat!($name, "::poll_read"), cx, len, |mut s| {
                        std::io::Read::read_vectored(&mut s, bufs)
                    })
            }
        }

        /// For future tasks: a write that would block files the task's waker
        /// with the loop's reactor and returns `Pending`. `poll_close` shuts
        /// the write half down (the peer reads the end of the stream);
        /// `poll_flush` does nothing. A time limit set on the stream does
        /// not apply.
        ///
        /// # Panics
        /// If it has to wait outside a task of a running loop.
        impl futures_io::AsyncWrite for &$Stream {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.source.poll_io(
                    concat!($name, "::poll_write"),
                    cx,
                    $crate::event_loop::reactor::Direction::Write,
                    |s| $crate::event_loop::net::sys::StreamIo::send(s, buf),
                )
            }

            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.source.poll_io(
                    concat!($name, "::poll_write"),
                    cx,
                    $crate::event_loop::reactor::Direction::Write,
                    |mut s| std::io::Write::write_vectored(&mut s, bufs),
                )
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(Ok(()))
            }

            fn poll_close(
                self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(self.shutdown(std::net::Shutdown::Write))
            }
        }
    };
}

mod listener;
pub(crate) mod source;
mod stream;
pub(crate) mod sys;
#[cfg(test)]
mod tests;
mod udp;
mod unix;

/// A socket of this module, which a stackless task can wait on with
/// [`Wait::readable`](super::Wait::readable) and
/// [`Wait::writable`](super::Wait::writable) (feature `nightly`):
/// [`TcpStream`], [`TcpListener`], [`UdpSocket`], [`UnixStream`] and
/// [`UnixListener`]. Sealed: only this
/// module's sockets implement it.
#[cfg(cogen_nightly)]
pub trait Socket: source::Sealed {}

pub use listener::{Incoming, TcpListener};
pub use stream::TcpStream;
pub use udp::UdpSocket;
pub use unix::{UnixListener, UnixStream};
