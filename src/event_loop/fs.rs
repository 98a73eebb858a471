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
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_io::{AsyncRead, AsyncSeek, AsyncWrite};

use super::task::WaitReason;
use super::wait_for::{unblock, wait_for_as};

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
/// buffer lets the pool thread finish them.
///
/// # Panics
/// Every method that reads, writes, seeks or opens panics outside a
/// stackful task, like every waiting function.
pub struct File {
    inner: blocking::Unblock<std::fs::File>,
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
        wait_for_as(
            self.inner.with_mut(|file| file.sync_all()),
            WaitReason::Blocking,
            "fs::File::sync_all",
        )
    }

    /// The std file back, once the writes buffered so far are done (their
    /// errors are lost: [`flush`](Write::flush) first to see them).
    #[track_caller]
    pub fn into_std(self) -> std::fs::File {
        wait_for_as(
            self.inner.into_inner(),
            WaitReason::Blocking,
            "fs::File::into_std",
        )
    }

    /// Waits for one poll of the adapter to be ready.
    #[track_caller]
    fn wait<T>(
        &mut self,
        what: &str,
        mut poll: impl FnMut(Pin<&mut blocking::Unblock<std::fs::File>>, &mut Context<'_>) -> Poll<T>,
    ) -> T {
        let inner = &mut self.inner;
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
    fn from(file: std::fs::File) -> Self {
        File {
            inner: blocking::Unblock::new(file),
        }
    }
}

impl Read for File {
    #[track_caller]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.wait("fs::File::read", |file, cx| file.poll_read(cx, buf))
    }
}

impl Write for File {
    #[track_caller]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.wait("fs::File::write", |file, cx| file.poll_write(cx, buf))
    }

    #[track_caller]
    fn flush(&mut self) -> io::Result<()> {
        self.wait("fs::File::flush", |file, cx| file.poll_flush(cx))
    }
}

impl Seek for File {
    #[track_caller]
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.wait("fs::File::seek", |file, cx| file.poll_seek(cx, pos))
    }
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("File").finish_non_exhaustive()
    }
}
