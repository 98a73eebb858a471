//! Reading a file with no position (a pipe, a FIFO, a terminal) through
//! the pool one call at a time: [`Spare`] keeps what a read brought back
//! that no caller took yet, and the pool's call waits for the file to be
//! readable and gives up, reading nothing, once its caller's wait is cut
//! short (see [`read_when_readable`]).

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::super::task::WaitReason;
use super::super::wait_for::wait_for_as;

/// The most a read of a file with no position asks the pool for at once.
const MAX_READ: usize = 64 * 1024;

/// How long a pool thread waits for a file with no position to become
/// readable before it looks whether its caller gave up.
const READABLE_POLL_MS: libc::c_int = 50;

/// The bytes that reads of a file with no position brought back and no
/// caller has taken yet (a read just as its wait was cut short). Shared
/// with the pool's call, which may end after its caller gave up.
#[derive(Clone, Default)]
pub(super) struct Spare(Arc<Mutex<Vec<u8>>>);

impl Spare {
    /// Moves the first spare bytes into `buf`, as many as fit; returns how
    /// many.
    pub(super) fn take(&self, buf: &mut [u8]) -> usize {
        let mut spare = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let n = spare.len().min(buf.len());
        buf[..n].copy_from_slice(&spare[..n]);
        spare.drain(..n);
        n
    }

    /// One read of at most `len` bytes on the pool, parking the running
    /// task; what it reads goes to the spare bytes. `what` names the
    /// operation in panics.
    #[track_caller]
    pub(super) fn read_on_pool(
        &self,
        inner: &mut blocking::Unblock<std::fs::File>,
        len: usize,
        what: &str,
    ) -> io::Result<()> {
        let len = len.min(MAX_READ);
        let into = self.0.clone();
        // Set if the wait is cut short: the pool's call then gives up
        // before it reads.
        let gave_up = GaveUp::default();
        let flag = gave_up.0.clone();
        wait_for_as(
            inner.with_mut(move |file| {
                let mut bytes = vec![0; len];
                let n = read_when_readable(file, &mut bytes, &flag)?;
                let mut spare = into.lock().unwrap_or_else(PoisonError::into_inner);
                spare.extend_from_slice(&bytes[..n]);
                Ok::<_, io::Error>(())
            }),
            WaitReason::Blocking,
            what,
        )
    }
}

/// Set when dropped: by the unwinding of a wait cut short, or once the
/// wait is over (when the pool's call is done anyway).
#[derive(Default)]
struct GaveUp(Arc<AtomicBool>);

impl Drop for GaveUp {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Reads `file` (a file with no position) into `buf` once it is readable,
/// on a pool thread; gives up, reading nothing, once `gave_up` is set. A
/// read that blocked instead would go on after its caller gave up: it
/// would take bytes meant for a later read (or the file's next owner), and
/// hold the file (which every later call on it waits for) until the other
/// end writes, which never happens if this file is its own writer.
fn read_when_readable(
    file: &mut std::fs::File,
    buf: &mut [u8],
    gave_up: &AtomicBool,
) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: `fd` is open (the file owns it); `F_GETFL` only reads flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags >= 0 && flags & libc::O_ACCMODE == libc::O_WRONLY {
        // Never readable: the read fails at once (`EBADF`), as std's does.
        return file.read(buf);
    }
    loop {
        if gave_up.load(Ordering::Relaxed) {
            return Ok(0);
        }
        let mut poll_fd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `poll_fd` is one valid `pollfd`, for an open descriptor.
        match unsafe { libc::poll(&mut poll_fd, 1, READABLE_POLL_MS) } {
            0 => continue,
            // Readable: unless the caller gave up meanwhile.
            n if n > 0 => {
                if gave_up.load(Ordering::Relaxed) {
                    return Ok(0);
                }
                break;
            }
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    // The read says what is wrong (or works after all).
                    break;
                }
            }
        }
    }
    file.read(buf)
}
