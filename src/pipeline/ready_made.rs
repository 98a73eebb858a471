//! The ready-made stages of [`PipelineExt`](super::PipelineExt): the types
//! of [`Lines`], [`ByteLines`], [`LossyLines`], [`Words`] and [`Windowed`],
//! and the bodies that split, gather and fail them.

use std::convert::Infallible;
use std::error::Error;
use std::fmt;

use super::{PipelineItem, Stage, Upstream};
use crate::coroutine::{Coroutine, Yielder};

/// Splits byte chunks into lines: the stage made by
/// [`PipelineExt::lines`](super::PipelineExt::lines).
pub type Lines = Stage<Coroutine<(), String, Result<(), InvalidUtf8>>>;

/// Splits byte chunks into lines of bytes: the stage made by
/// [`PipelineExt::byte_lines`](super::PipelineExt::byte_lines).
pub type ByteLines = Stage<Coroutine<(), Vec<u8>>>;

/// Splits byte chunks into lines, replacing invalid UTF-8: the stage made by
/// [`PipelineExt::lossy_lines`](super::PipelineExt::lossy_lines).
pub type LossyLines = Stage<Coroutine<(), String>>;

/// Splits lines into words: the stage made by
/// [`PipelineExt::words`](super::PipelineExt::words).
pub type Words = Stage<Coroutine<(), String>>;

/// Aggregates fixed-size windows: the stage made by
/// [`PipelineExt::windowed`](super::PipelineExt::windowed).
pub type Windowed<O> = Stage<Coroutine<(), O>>;

/// A line that is not valid UTF-8; fails the
/// [`lines`](super::PipelineExt::lines) stage.
#[derive(Debug)]
pub struct InvalidUtf8 {
    line: u64,
    source: std::str::Utf8Error,
}

impl InvalidUtf8 {
    /// The number of the offending line, counting from 1.
    pub fn line(&self) -> u64 {
        self.line
    }
}

impl fmt::Display for InvalidUtf8 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {} is not valid UTF-8: {}", self.line, self.source)
    }
}

impl Error for InvalidUtf8 {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.source)
    }
}

/// Splits byte chunks at `\n` and hands each line, without its `\n` or
/// `\r\n`, to `emit`, carrying a line's start over from chunk to chunk:
/// the splitting that [`split_lines`], [`split_byte_lines`] and
/// [`split_lossy_lines`] share. A last line with no `\n` after it is handed
/// on whole, a final `\r` included, as `BufRead::lines` does. Stops at
/// `emit`'s first error.
fn for_each_line<T, U, E>(
    up: Upstream<U>,
    mut emit: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), E>
where
    T: AsRef<[u8]>,
    U: Iterator<Item = PipelineItem<T>>,
{
    let mut emit_ended = |line: &[u8]| emit(line.strip_suffix(b"\r").unwrap_or(line));
    let mut partial: Vec<u8> = Vec::new();
    for chunk in up {
        let mut rest = chunk.as_ref();
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            if partial.is_empty() {
                emit_ended(&rest[..end])?;
            } else {
                partial.extend_from_slice(&rest[..end]);
                emit_ended(&partial)?;
                partial.clear();
            }
            rest = &rest[end + 1..];
        }
        partial.extend_from_slice(rest);
    }
    if !partial.is_empty() {
        // Unterminated: a `\r` here is not part of a `\r\n`.
        emit(&partial)?;
    }
    Ok(())
}

/// The body of [`PipelineExt::lines`](super::PipelineExt::lines): each line
/// as a `String`, failing at the first that is not UTF-8.
pub(super) fn split_lines<T, U>(
    co: &Yielder<(), String>,
    up: Upstream<U>,
) -> Result<(), InvalidUtf8>
where
    T: AsRef<[u8]>,
    U: Iterator<Item = PipelineItem<T>>,
{
    let mut number = 0;
    for_each_line(up, |bytes| {
        number += 1;
        let line = std::str::from_utf8(bytes).map_err(|source| InvalidUtf8 {
            line: number,
            source,
        })?;
        co.suspend(line.to_owned());
        Ok(())
    })
}

/// The body of [`PipelineExt::byte_lines`](super::PipelineExt::byte_lines):
/// each line as it is, bytes.
pub(super) fn split_byte_lines<T, U>(co: &Yielder<(), Vec<u8>>, up: Upstream<U>)
where
    T: AsRef<[u8]>,
    U: Iterator<Item = PipelineItem<T>>,
{
    let _ = for_each_line(up, |line| {
        co.suspend(line.to_vec());
        Ok::<(), Infallible>(())
    });
}

/// The body of [`PipelineExt::lossy_lines`](super::PipelineExt::lossy_lines):
/// each line as a `String`, with U+FFFD for each invalid sequence.
pub(super) fn split_lossy_lines<T, U>(co: &Yielder<(), String>, up: Upstream<U>)
where
    T: AsRef<[u8]>,
    U: Iterator<Item = PipelineItem<T>>,
{
    let _ = for_each_line(up, |line| {
        co.suspend(String::from_utf8_lossy(line).into_owned());
        Ok::<(), Infallible>(())
    });
}

/// The body of [`PipelineExt::words`](super::PipelineExt::words): one owned
/// `String` per whitespace-separated word.
pub(super) fn split_words<T, U>(co: &Yielder<(), String>, up: Upstream<U>)
where
    T: AsRef<str>,
    U: Iterator<Item = PipelineItem<T>>,
{
    for text in up {
        for word in text.as_ref().split_whitespace() {
            co.suspend(word.to_owned());
        }
    }
}

/// The most items [`aggregate_windows`] reserves room for before they come.
const WINDOW_RESERVE: usize = 64;

/// The body of [`PipelineExt::windowed`](super::PipelineExt::windowed):
/// gathers `size` items at a time and yields `aggregate` of each window,
/// then of the shorter last one.
pub(super) fn aggregate_windows<T, U, O, F>(
    co: &Yielder<(), O>,
    up: Upstream<U>,
    size: usize,
    mut aggregate: F,
) where
    U: Iterator<Item = PipelineItem<T>>,
    F: FnMut(&[T]) -> O,
{
    // Reserved up to a small bound only: a huge `size` over a short stream
    // must not allocate for items that never come. Pushes grow the rest,
    // and `clear` keeps it for the next window.
    let mut window = Vec::with_capacity(size.min(WINDOW_RESERVE));
    for item in up {
        window.push(item);
        if window.len() == size {
            co.suspend(aggregate(&window));
            window.clear();
        }
    }
    if !window.is_empty() {
        co.suspend(aggregate(&window));
    }
}
