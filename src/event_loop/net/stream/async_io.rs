//! For future tasks: `futures_io::AsyncRead` and `AsyncWrite` for a
//! [`TcpStream`] and a reference to one. A read or write that would block
//! files the task's waker with the loop's reactor and returns `Pending`.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::Shutdown;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::super::super::reactor::Direction;
use super::TcpStream;

/// For future tasks: a read that would block files the task's waker with
/// the loop's reactor and returns `Pending` (see the [module
/// docs](super::super#future-tasks)). The time limits of
/// [`set_read_timeout`](TcpStream::set_read_timeout) do not apply: use
/// the future's own (for instance [`timeout`](super::super::super::timeout) in
/// a stackful task).
///
/// # Panics
/// If it has to wait outside a task of a running loop.
impl futures_io::AsyncRead for &TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let len = buf.len();
        self.source
            .poll_read("net::TcpStream::poll_read", cx, len, |mut s| s.read(buf))
    }

    fn poll_read_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        let len = bufs.iter().map(|b| b.len()).sum();
        self.source
            .poll_read("net::TcpStream::poll_read", cx, len, |mut s| {
                s.read_vectored(bufs)
            })
    }
}

/// For future tasks: a write that would block files the task's waker with
/// the loop's reactor and returns `Pending`. `poll_close` shuts the write
/// half down (the peer reads the end of the stream); `poll_flush` does
/// nothing. The time limits of
/// [`set_write_timeout`](TcpStream::set_write_timeout) do not apply.
///
/// # Panics
/// If it has to wait outside a task of a running loop.
impl futures_io::AsyncWrite for &TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.source.poll_io(
            "net::TcpStream::poll_write",
            cx,
            Direction::Write,
            |mut s| s.write(buf),
        )
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.source.poll_io(
            "net::TcpStream::poll_write",
            cx,
            Direction::Write,
            |mut s| s.write_vectored(bufs),
        )
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.shutdown(Shutdown::Write))
    }
}
