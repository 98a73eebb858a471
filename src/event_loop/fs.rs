//! Files that do not block the loop.
//!
//! Each function runs the matching `std::fs` call on the `blocking` crate's
//! thread pool (through [`unblock`](super::unblock())) and parks the calling
//! task until it is done, so the other tasks keep running meanwhile (the
//! tutorial's snippet 08 claims this but blocks). [`File`] streams: an open
//! file read or written in many calls, buffered between the pool and the
//! task. Errors are the `std::io::Error` values of `std::fs`. Feature
//! `blocking` (on by default).
//!
//! ```
//! use cogen::event_loop::{EventLoop, fs};
//!
//! let dir = std::env::temp_dir().join(format!("cogen-fs-doc-{}", std::process::id()));
//! let ev = EventLoop::new();
//! let text = ev
//!     .block_on(move || {
//!         fs::create_dir_all(&dir)?;
//!         let file = dir.join("hello.txt");
//!         fs::write(&file, "hello")?;
//!         let text = fs::read_to_string(&file)?;
//!         fs::remove_file(&file)?;
//!         std::fs::remove_dir(&dir)?;
//!         Ok::<_, std::io::Error>(text)
//!     })
//!     .unwrap()
//!     .unwrap();
//! assert_eq!(text, "hello");
//! ```
//!
//! All of them panic outside a stackful task, like every waiting function.

use std::fmt;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::mem::ManuallyDrop;
use std::path::Path;
use std::pin::Pin;
use std::sync::{OnceLock, mpsc};
use std::task::{Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};

use super::context::can_wait;
use super::task::WaitReason;
use super::wait_for::{unblock, wait_for_as};

mod unpositioned;
use unpositioned::Spare;

/// [`std::fs::read`] off the loop's thread.
#[track_caller]
pub fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    let path = path.as_ref().to_owned();
    unblock(move || std::fs::read(path))
}

/// [`std::fs::read_to_string`] off the loop's thread.
#[track_caller]
pub fn read_to_string(path: impl AsRef<Path>) -> io::Result<String> {
    let path = path.as_ref().to_owned();
    unblock(move || std::fs::read_to_string(path))
}

/// [`std::fs::write`] off the loop's thread.
#[track_caller]
pub fn write(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    let contents = contents.as_ref().to_vec();
    unblock(move || std::fs::write(path, contents))
}

/// [`std::fs::metadata`] off the loop's thread.
#[track_caller]
pub fn metadata(path: impl AsRef<Path>) -> io::Result<std::fs::Metadata> {
    let path = path.as_ref().to_owned();
    unblock(move || std::fs::metadata(path))
}

/// [`std::fs::read_dir`] off the loop's thread, collected: the entries of
/// the directory, or the first error.
#[track_caller]
pub fn read_dir(path: impl AsRef<Path>) -> io::Result<Vec<std::fs::DirEntry>> {
    let path = path.as_ref().to_owned();
    unblock(move || std::fs::read_dir(path)?.collect())
}

/// [`std::fs::create_dir_all`] off the loop's thread.
#[track_caller]
pub fn create_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    unblock(move || std::fs::create_dir_all(path))
}

/// [`std::fs::remove_file`] off the loop's thread.
#[track_caller]
pub fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    unblock(move || std::fs::remove_file(path))
}

/// An open file whose reads and writes park the calling task, not the
/// loop's thread: for streaming a large file through a task.
///
/// The file lives on one thread of the `blocking` crate's pool for as long
/// as it is read or written (the crate's `Unblock` adapter), with a buffer
/// between that thread and the task: a read takes what the pool thread has
/// already read ahead, and parks only when the buffer is empty. So a
/// stream of small reads costs no trip to the pool per read, unlike the
/// one-shot functions of this module, which send each call there and back.
///
/// It implements [`Read`], [`Write`] and [`Seek`], so `BufReader`,
/// `io::copy` and [`pipeline::read_chunks`](crate::pipeline::read_chunks)
/// work unchanged; every call waits like the loop's other waiting functions
/// (inside a stackful task, from any depth of nested coroutines).
///
/// ```
/// use std::io::Write as _;
///
/// use cogen::event_loop::{EventLoop, fs};
/// use cogen::pipeline::{PipelineExt, read_chunks};
///
/// let path = std::env::temp_dir().join(format!("cogen-fs-file-{}", std::process::id()));
/// let ev = EventLoop::new();
/// let lines = ev
///     .block_on(move || {
///         let mut file = fs::File::create(&path)?;
///         for i in 0..1000 {
///             writeln!(file, "line {i}")?;
///         }
///         file.flush()?; // see the errors of the writes still buffered
///         drop(file);
///         // Read it back in 4 KiB chunks, split into lines.
///         let n = read_chunks(fs::File::open(&path)?, 4096).lines().count();
///         fs::remove_file(&path)?;
///         Ok::<_, std::io::Error>(n)
///     })
///     .unwrap()
///     .unwrap();
/// assert_eq!(lines, 1000);
/// ```
///
/// Writes are buffered: call [`flush`](Write::flush) (or
/// [`sync_all`](File::sync_all)) before dropping a file to see their errors,
/// as with any buffered writer. Dropping a `File` with writes still in the
/// buffer flushes them, as `BufWriter` does, ignoring errors: in a stackful
/// task the drop parks the task until they are written; elsewhere (outside
/// a task, in a future or stackless task, during a panic or a
/// cancellation, or when the drop's wait is cut short by a time limit) a
/// thread of cogen's finishes them after the drop (so a process that exits
/// at once may lose them: flush first).
///
/// A file with no position (a pipe, a FIFO, a terminal) is read one call
/// at a time, for at most the bytes asked for, so that no read takes bytes
/// ahead of the caller. Other files are read ahead on the pool, but the
/// file's position is the caller's: [`Seek`] (`SeekFrom::Current`, `stream_position`), a write
/// after a read, a read after `flush`, `metadata` or a failed seek, and
/// [`into_std`](File::into_std) all start where the reads so far ended, as
/// with a `std::fs::File`.
///
/// # Panics
/// Every method that reads, writes, seeks or opens panics outside a
/// stackful task, like every waiting function.
pub struct File {
    /// Taken only by `into_std` and `Drop`.
    inner: ManuallyDrop<blocking::Unblock<std::fs::File>>,
    /// The caller's position, where known: set by a seek, moved by each
    /// read; unknown after a write (an appending file writes at its end)
    /// until the next read asks, and in a file that cannot seek.
    pos: Option<u64>,
    /// Where the pool's cursor is against `pos`.
    cursor: Cursor,
    /// Writes may be waiting in the buffer.
    dirty: bool,
    /// For a file with no position: bytes its reads brought back that no
    /// caller has taken yet (a read cut short by a time limit or a
    /// cancellation leaves them for the next). `None` for other files.
    spare: Option<Spare>,
}

/// Where a [`File`]'s pool cursor is against the caller's position.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Cursor {
    /// At it (no read ahead in play).
    At,
    /// Ahead of it, by what the pool read ahead into its buffer, which
    /// starts at the caller's position: more reads go on from there, and
    /// anything else puts the cursor back first.
    Ahead,
    /// Ahead of it, with the read-ahead thrown away (a flush, `metadata`,
    /// `sync_all` or a failed seek stopped the reader): the next read puts
    /// the cursor back too.
    Off,
}

impl File {
    /// Opens a file for reading, like [`std::fs::File::open`].
    #[track_caller]
    pub fn open(path: impl AsRef<Path>) -> io::Result<File> {
        let path = path.as_ref().to_owned();
        unblock(move || std::fs::File::open(path)).map(File::from)
    }

    /// Creates (or truncates) a file for writing, like
    /// [`std::fs::File::create`].
    #[track_caller]
    pub fn create(path: impl AsRef<Path>) -> io::Result<File> {
        let path = path.as_ref().to_owned();
        unblock(move || std::fs::File::create(path)).map(File::from)
    }

    /// Opens a file with the options of `options` (append, read and write,
    /// create new…), like [`std::fs::OpenOptions::open`].
    #[track_caller]
    pub fn open_with(options: &std::fs::OpenOptions, path: impl AsRef<Path>) -> io::Result<File> {
        let options = options.clone();
        let path = path.as_ref().to_owned();
        unblock(move || options.open(path)).map(File::from)
    }

    /// The file's metadata, once the writes buffered so far are done.
    #[track_caller]
    pub fn metadata(&mut self) -> io::Result<std::fs::Metadata> {
        self.flush()?;
        // Before the wait, which stops the reader even if it is cut short.
        self.reader_stopped();
        wait_for_as(
            self.inner.with_mut(|file| file.metadata()),
            WaitReason::Blocking,
            "fs::File::metadata",
        )
    }

    /// Writes the buffered data and then flushes it, with the file's
    /// metadata, to the disk, like [`std::fs::File::sync_all`].
    #[track_caller]
    pub fn sync_all(&mut self) -> io::Result<()> {
        self.flush()?;
        // Before the wait, which stops the reader even if it is cut short.
        self.reader_stopped();
        wait_for_as(
            self.inner.with_mut(|file| file.sync_all()),
            WaitReason::Blocking,
            "fs::File::sync_all",
        )
    }

    /// The std file back, once the writes buffered so far are done (their
    /// errors are lost: [`flush`](Write::flush) first to see them), at the
    /// position where the reads so far ended. (Of a file with no position,
    /// bytes that a read read on the pool just as its wait was cut short,
    /// and that no read took since, are lost with the wrapper.)
    #[track_caller]
    pub fn into_std(self) -> std::fs::File {
        let mut this = ManuallyDrop::new(self);
        // `this` is never dropped: its fields with a destructor go here.
        drop(this.spare.take());
        // SAFETY: `this` is never dropped, so `inner` is taken exactly once.
        let inner = unsafe { ManuallyDrop::take(&mut this.inner) };
        // Flushed first, as `Drop` flushes: `into_inner` cut short would
        // cancel the writes with the adapter.
        let inner = if this.dirty {
            flush_held(inner, "fs::File::into_std")
        } else {
            inner
        };
        let mut file = wait_for_as(
            inner.into_inner(),
            WaitReason::Blocking,
            "fs::File::into_std",
        );
        if let (Cursor::Ahead | Cursor::Off, Some(pos)) = (this.cursor, this.pos) {
            // An `lseek`, which never waits for the disk.
            let _ = file.seek(SeekFrom::Start(pos));
        }
        file
    }

    /// The pool's reader was stopped (its read-ahead thrown away), maybe
    /// with the cursor ahead of the caller's position.
    fn reader_stopped(&mut self) {
        if self.cursor == Cursor::Ahead {
            self.cursor = Cursor::Off;
        }
    }

    /// Puts the pool's cursor back at the caller's position.
    #[track_caller]
    fn rewind(&mut self, what: &str) -> io::Result<()> {
        if let Some(pos) = self.pos {
            // Off until the seek returns: one cut short (a time limit, a
            // cancellation) may have stopped the reader anywhere ahead of
            // `pos`, and the next call must rewind again.
            self.cursor = Cursor::Off;
            self.seek_on_pool(what, SeekFrom::Start(pos))?;
        }
        self.cursor = Cursor::At;
        Ok(())
    }

    /// Moves the pool's cursor, once the writes buffered so far are done
    /// (their error is this call's, as `BufWriter`'s seek reports it).
    ///
    /// A one-shot call on the pool, not the adapter's own seek: a seek of
    /// that one cut short (a time limit, a cancellation) would still run,
    /// and the adapter hands its result, an error included, to whichever
    /// seek comes next, in place of that seek's own. A one-shot call cut
    /// short leaves nothing behind but the cursor it moved, and every
    /// caller has set [`Cursor::Off`] (or has no position to keep) by then.
    #[track_caller]
    fn seek_on_pool(&mut self, what: &str, to: SeekFrom) -> io::Result<u64> {
        self.flush()?;
        let inner = &mut *self.inner;
        let at = wait_for_as(
            inner.with_mut(move |file| file.seek(to)),
            WaitReason::Blocking,
            what,
        )?;
        self.dirty = false;
        Ok(at)
    }

    /// A read of a file with no position (a pipe, a FIFO, a terminal): one
    /// read on the pool of at most `buf.len()` bytes, with no read-ahead. A
    /// reader left running ahead there would take bytes that a later read
    /// (or the file's next owner) should see, and could wait in `read` for
    /// ever, holding up the next write and keeping the file open after its
    /// drop. So the pool waits for the file to be readable first, and
    /// gives up without reading once the wait here is cut short (see
    /// `read_when_readable`); bytes it read just as the wait was cut short
    /// are kept for the next read.
    #[track_caller]
    fn read_unpositioned(&mut self, buf: &mut [u8], spare: Spare) -> io::Result<usize> {
        const WHAT: &str = "fs::File::read";
        // The writes first (their error is this read's, and a FIFO read
        // and written through one file reads what it wrote), and a read
        // cut short finished, its bytes in `spare`.
        self.wait(WHAT, |file, cx| file.poll_flush(cx))?;
        self.dirty = false;
        let n = spare.take(buf);
        if n > 0 {
            return Ok(n);
        }
        spare.read_on_pool(&mut self.inner, buf.len(), WHAT)?;
        Ok(spare.take(buf))
    }

    /// Waits for one poll of the adapter to be ready.
    #[track_caller]
    fn wait<T>(
        &mut self,
        what: &str,
        mut poll: impl FnMut(Pin<&mut blocking::Unblock<std::fs::File>>, &mut Context<'_>) -> Poll<T>,
    ) -> T {
        let inner = &mut *self.inner;
        wait_for_as(
            std::future::poll_fn(|cx| poll(Pin::new(&mut *inner), cx)),
            WaitReason::Blocking,
            what,
        )
    }
}

impl From<std::fs::File> for File {
    /// Hands a std file to the pool: from now on its reads and writes run
    /// there.
    fn from(mut file: std::fs::File) -> Self {
        // An `lseek`, which never waits for the disk; a pipe has no position.
        let pos = file.stream_position().ok();
        File {
            inner: ManuallyDrop::new(blocking::Unblock::new(file)),
            spare: pos.is_none().then(Spare::default),
            pos,
            cursor: Cursor::At,
            dirty: false,
        }
    }
}

impl Read for File {
    #[track_caller]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        const WHAT: &str = "fs::File::read";
        if buf.is_empty() {
            // As std: nothing to do. (The adapter would take the empty
            // read for its end, and wait for its reader to finish the file.)
            return Ok(0);
        }
        if let Some(spare) = &self.spare {
            return self.read_unpositioned(buf, spare.clone());
        }
        if self.cursor == Cursor::Off {
            self.rewind(WHAT)?;
        }
        if self.pos.is_none() && self.cursor == Cursor::At {
            // After writes (maybe appended), ask where they ended: the pool
            // finishes them first, and their error is this read's.
            self.pos = Some(self.seek_on_pool(WHAT, SeekFrom::Current(0))?);
        }
        // Off until the read returns: one cut short (a time limit, a
        // cancellation) may have set the reader going, ahead of `pos`.
        self.cursor = Cursor::Off;
        match self.wait(WHAT, |file, cx| file.poll_read(cx, buf)) {
            Ok(n) => {
                self.cursor = Cursor::Ahead;
                self.dirty = false;
                self.pos = self.pos.map(|pos| pos + n as u64);
                Ok(n)
            }
            Err(e) => {
                // Wherever the reader stopped, the next read starts over
                // from the caller's position (the cursor stays `Off`).
                Err(e)
            }
        }
    }
}

impl Write for File {
    #[track_caller]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.cursor != Cursor::At {
            self.rewind("fs::File::write")?;
        }
        self.pos = None;
        self.dirty = true;
        self.wait("fs::File::write", |file, cx| file.poll_write(cx, buf))
    }

    /// Waits until the writes buffered so far are done; nothing to do (and
    /// no look at the pool) without them, as for a `std::fs::File`.
    #[track_caller]
    fn flush(&mut self) -> io::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        self.wait("fs::File::flush", |file, cx| file.poll_flush(cx))?;
        self.dirty = false;
        Ok(())
    }
}

impl Seek for File {
    #[track_caller]
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        // Relative to the caller's position, not to the pool's cursor.
        let target = match (pos, self.cursor, self.pos) {
            (SeekFrom::Current(by), Cursor::Ahead | Cursor::Off, Some(at)) => {
                match at.checked_add_signed(by) {
                    Some(to) => SeekFrom::Start(to),
                    // What `lseek` answers a `std::fs::File` (which the
                    // caller's position would be handed to, unread ahead):
                    // `EINVAL` for a position below zero or past `i64::MAX`.
                    None => return Err(io::Error::from_raw_os_error(libc::EINVAL)),
                }
            }
            _ => pos,
        };
        const WHAT: &str = "fs::File::seek";
        if self.pos.is_none() && self.spare.is_none() {
            // After writes: where they ended, so that a seek cut short
            // has a position to go back to.
            self.pos = Some(self.seek_on_pool(WHAT, SeekFrom::Current(0))?);
            self.cursor = Cursor::At;
        }
        // Off until the seek returns: one cut short may have moved the
        // pool's cursor, and the caller's position is the old one.
        let was = std::mem::replace(&mut self.cursor, Cursor::Off);
        match self.seek_on_pool(WHAT, target) {
            Ok(at) => {
                self.pos = Some(at);
                self.cursor = Cursor::At;
                Ok(at)
            }
            Err(e) => {
                // Like std, the position stays; a reader was stopped, so the
                // next read puts the cursor back (nothing to put back if no
                // read had moved it).
                if was == Cursor::At {
                    self.cursor = Cursor::At;
                }
                Err(e)
            }
        }
    }
}

impl Drop for File {
    fn drop(&mut self) {
        // SAFETY: `inner` is not used again (`into_std` forgets `self`).
        let inner = unsafe { ManuallyDrop::take(&mut self.inner) };
        if !self.dirty {
            return;
        }
        // Not while unwinding: a cancellation reaching a wait there would
        // abort the process.
        if !can_wait() || std::thread::panicking() {
            return flush_elsewhere(inner);
        }
        // Flushed: dropping it now loses nothing.
        drop(flush_held(inner, "fs::File::drop"));
    }
}

/// Waits (parking the task) until `inner`'s buffered writes are done, and
/// hands it back. Their errors are lost, as `BufWriter`'s drop loses them
/// (flush first to see them). If the wait is cut short (a time limit, a
/// cancellation), the writes go to the flushing thread instead of being
/// cancelled with the adapter.
#[track_caller]
fn flush_held(
    inner: blocking::Unblock<std::fs::File>,
    what: &str,
) -> blocking::Unblock<std::fs::File> {
    let mut guard = FlushElsewhere(Some(inner));
    let flushing = guard.0.as_mut().expect("just put there");
    let _ = wait_for_as(
        std::future::poll_fn(|cx| Pin::new(&mut *flushing).poll_flush(cx)),
        WaitReason::Blocking,
        what,
    );
    guard.0.take().expect("still there")
}

/// Hands the file it holds, if any, to [`flush_elsewhere`] when dropped.
struct FlushElsewhere(Option<blocking::Unblock<std::fs::File>>);

impl Drop for FlushElsewhere {
    fn drop(&mut self) {
        if let Some(inner) = self.0.take() {
            flush_elsewhere(inner);
        }
    }
}

/// Finishes `inner`'s buffered writes on cogen's flushing thread, made on
/// first use. Not on a pool thread: it waits for the pool's own work, and
/// a pool whose threads all waited so would never do it. (Dropping an
/// `Unblock` with writes in its buffer would cancel them.)
fn flush_elsewhere(inner: blocking::Unblock<std::fs::File>) {
    type Flushes = mpsc::Sender<blocking::Unblock<std::fs::File>>;
    static FLUSHER: OnceLock<Option<Flushes>> = OnceLock::new();
    let flusher = FLUSHER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<blocking::Unblock<std::fs::File>>();
        std::thread::Builder::new()
            .name("cogen-fs-flush".into())
            .spawn(move || rx.into_iter().for_each(flush_on_this_thread))
            .ok()
            .map(|_| tx)
    });
    let inner = match flusher {
        Some(tx) => match tx.send(inner) {
            Ok(()) => return,
            Err(mpsc::SendError(inner)) => inner,
        },
        None => inner,
    };
    // No thread could be made: this one waits for the writes.
    flush_on_this_thread(inner);
}

/// Drives `inner`'s flush to its end, parking the calling thread.
fn flush_on_this_thread(mut inner: blocking::Unblock<std::fs::File>) {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    while Pin::new(&mut inner).poll_flush(&mut cx).is_pending() {
        std::thread::park();
    }
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("File").finish_non_exhaustive()
    }
}
