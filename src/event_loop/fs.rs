//! Files that do not block the loop.
//!
//! Each function runs the matching `std::fs` call on the `blocking` crate's
//! thread pool (through [`unblock`](super::unblock())) and parks the calling
//! task until it is done, so the other tasks keep running meanwhile (the
//! tutorial's snippet 08 claims this but blocks). Errors are the
//! `std::io::Error` values of `std::fs`. Feature `blocking` (on by default).
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

use std::io;
use std::path::Path;

use super::wait_for::unblock;

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
