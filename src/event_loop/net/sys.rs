//! One read or one write of a connected stream socket, the system call
//! std's `Read` and `Write` make for the stream type (`recv` with no flags;
//! `send` with `MSG_NOSIGNAL` for TCP; `write` for a Unix stream, which on a
//! socket is `send` with no flags), made
//! directly on Linux: glibc's wrappers of those calls are cancellation
//! points, which switch the thread's asynchronous cancellation on and off
//! around every call (two atomic updates and about 60 instructions per
//! call: 123 of the 1,035 user-space instructions of an echo request, one
//! read and one write), and Rust code never cancels a thread. Elsewhere,
//! std's own calls: other systems, and the Linux architectures where these
//! calls are not system calls of their own on every kernel Rust supports
//! (32-bit x86 had only `socketcall` before Linux 4.3, for one), so only
//! x86-64, AArch64, RISC-V 64 and LoongArch 64 take the direct path
//! (`cfg(cogen_direct_io)`, set by `build.rs`).
//!
//! A library that interposes on libc's socket calls (`LD_PRELOAD`) does not
//! see these reads and writes where they are direct; it still sees every
//! other call (connect, accept, the vectored and datagram ones).

use std::io;

/// A std stream socket's single read and write.
pub(crate) trait StreamIo {
    /// One read into `buf`, as `Read::read` does it.
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// One write of `buf`, as `Write::write` does it.
    fn send(&self, buf: &[u8]) -> io::Result<usize>;
}

#[cfg(cogen_direct_io)]
mod linux {
    use std::io;
    use std::os::fd::{AsRawFd, RawFd};
    use std::ptr;

    use libc::{c_int, c_long};

    /// `recv(fd, buf, 0)`.
    #[inline]
    pub(super) fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: the kernel writes at most `buf.len()` bytes at `buf`,
        // which is valid for that many writes during the call; the null
        // address and length ask for no sender address. A descriptor that
        // is not open only makes the call fail (`fd` is the open socket of
        // the caller's stream, borrowed for the call).
        let n = unsafe {
            libc::syscall(
                libc::SYS_recvfrom,
                c_long::from(fd),
                buf.as_mut_ptr(),
                buf.len(),
                0 as c_long,
                ptr::null_mut::<libc::sockaddr>(),
                ptr::null_mut::<libc::socklen_t>(),
            )
        };
        result(n)
    }

    /// `send(fd, buf, flags)`.
    #[inline]
    pub(super) fn send(fd: RawFd, buf: &[u8], flags: c_int) -> io::Result<usize> {
        // SAFETY: the kernel reads at most `buf.len()` bytes at `buf`,
        // valid for that many reads during the call; no destination
        // address (a connected socket). The descriptor as in `recv`.
        let n = unsafe {
            libc::syscall(
                libc::SYS_sendto,
                c_long::from(fd),
                buf.as_ptr(),
                buf.len(),
                c_long::from(flags),
                ptr::null::<libc::sockaddr>(),
                0 as c_long,
            )
        };
        result(n)
    }

    /// A system call's result: a count, or -1 with the error in `errno`.
    #[inline]
    fn result(n: c_long) -> io::Result<usize> {
        match usize::try_from(n) {
            Ok(n) => Ok(n),
            Err(_) => Err(io::Error::last_os_error()),
        }
    }

    /// The flags of a stream type's write, as std makes it.
    trait SendFlags: AsRawFd {
        const FLAGS: c_int;
    }

    impl SendFlags for std::net::TcpStream {
        const FLAGS: c_int = libc::MSG_NOSIGNAL;
    }

    impl SendFlags for std::os::unix::net::UnixStream {
        const FLAGS: c_int = 0;
    }

    impl<S: SendFlags> super::StreamIo for S {
        #[inline]
        fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
            recv(self.as_raw_fd(), buf)
        }

        #[inline]
        fn send(&self, buf: &[u8]) -> io::Result<usize> {
            send(self.as_raw_fd(), buf, S::FLAGS)
        }
    }
}

/// Everywhere else, std's own calls.
#[cfg(not(cogen_direct_io))]
mod via_std {
    use std::io;

    use super::StreamIo;

    macro_rules! through_std {
        ($($Stream:ty),*) => {$(
            impl StreamIo for $Stream {
                #[inline]
                fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
                    io::Read::read(&mut &*self, buf)
                }

                #[inline]
                fn send(&self, buf: &[u8]) -> io::Result<usize> {
                    io::Write::write(&mut &*self, buf)
                }
            }
        )*};
    }

    through_std!(std::net::TcpStream, std::os::unix::net::UnixStream);
}

#[cfg(test)]
mod tests {
    use std::io::{self, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::os::unix::net::UnixStream;

    use super::StreamIo;

    /// A connected TCP pair over loopback, both sides non-blocking.
    fn tcp_pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (b, _) = listener.accept().unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        (a, b)
    }

    /// What a stream's `recv` and `send` must do, as std's `Read::read`
    /// and `Write::write` do it on a non-blocking socket.
    fn reads_and_writes_as_std<S: StreamIo>(a: &S, b: &S, shut_b: impl FnOnce()) {
        let mut buf = [0; 16];
        let empty = a.recv(&mut buf).unwrap_err();
        assert_eq!(empty.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(b.send(b"hello").unwrap(), 5);
        // Loopback delivers at once, but a reader may be woken early.
        let n = loop {
            match a.recv(&mut buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                got => break got.unwrap(),
            }
        };
        assert_eq!(&buf[..n], b"hello");
        assert_eq!(a.send(&[]).unwrap(), 0);
        shut_b();
        let end = loop {
            match a.recv(&mut buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                got => break got.unwrap(),
            }
        };
        assert_eq!(end, 0, "the end of the stream");
    }

    #[test]
    fn tcp_reads_and_writes_as_std() {
        let (a, b) = tcp_pair();
        reads_and_writes_as_std(&a, &b, || b.shutdown(Shutdown::Write).unwrap());
    }

    #[test]
    fn unix_reads_and_writes_as_std() {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        reads_and_writes_as_std(&a, &b, || b.shutdown(Shutdown::Write).unwrap());
    }

    #[test]
    fn a_write_after_the_write_side_is_shut_is_broken_pipe() {
        let (a, _b) = tcp_pair();
        a.shutdown(Shutdown::Write).unwrap();
        assert_eq!(a.send(b"x").unwrap_err().kind(), io::ErrorKind::BrokenPipe);
        let (u, _v) = UnixStream::pair().unwrap();
        u.shutdown(Shutdown::Write).unwrap();
        assert_eq!(u.send(b"x").unwrap_err().kind(), io::ErrorKind::BrokenPipe);
    }

    /// Set in the child process of the test below.
    const CHILD: &str = "COGEN_TEST_SIGPIPE_CHILD";

    /// A TCP write that fails with `EPIPE` raises no `SIGPIPE`, as std's
    /// does (`MSG_NOSIGNAL`), even where the signal kills the process
    /// (Rust programs ignore it by default; a program or host may not). The
    /// write runs in a child process (this test again) with the signal's
    /// default action, which would kill it.
    #[test]
    fn a_broken_tcp_write_raises_no_sigpipe() {
        if std::env::var_os(CHILD).is_some() {
            // SAFETY: setting a signal's disposition to its default; no
            // handler of ours is involved.
            unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
            let (a, _b) = tcp_pair();
            a.shutdown(Shutdown::Write).unwrap();
            let error = a.send(b"x").unwrap_err();
            writeln!(io::stdout(), "child: {:?}", error.kind()).unwrap();
            return;
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "event_loop::net::sys::tests::a_broken_tcp_write_raises_no_sigpipe",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "the child died: {:?}\n{stdout}",
            out.status
        );
        assert!(stdout.contains("child: BrokenPipe"), "{stdout}");
    }
}
