//! The starts of pipelines: [`source`] lifts any iterator, [`read_chunks`]
//! reads a [`Read`]er in fixed-size chunks.

use std::fmt;
use std::io::Read;
use std::iter::FusedIterator;

use super::{PipelineItem, StageError};

/// Lifts an iterator into the start of a pipeline: each item becomes
/// `Ok(item)`.
///
/// ```
/// let mut s = cogen::pipeline::source(1..=2);
/// assert_eq!(s.next().unwrap().unwrap(), 1);
/// ```
pub fn source<I: IntoIterator>(items: I) -> Source<I::IntoIter> {
    Source(items.into_iter())
}

/// The start of a pipeline, made by [`source`].
#[must_use = "pipelines are lazy and do nothing unless pulled"]
#[derive(Clone, Debug)]
pub struct Source<I>(I);

impl<I: Iterator> Iterator for Source<I> {
    type Item = PipelineItem<I::Item>;

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(Ok)
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl<I: FusedIterator> FusedIterator for Source<I> {}

/// Reads `reader` in chunks of `chunk_size` bytes (the last one shorter): the
/// source of a streaming pipeline, in constant memory. A read error ends the
/// stream with a [`StageError`] from the stage `"read"`, after the bytes
/// read before it (a short chunk): nothing that was read is lost.
///
/// A chunk's buffer is reserved up to 64 KiB before the reads; past that it
/// grows as bytes arrive, so a chunk size larger than the reader's contents
/// costs memory only for the bytes there are; a chunk that grew is handed
/// on with the room it did not fill given back.
///
/// ```
/// use cogen::pipeline::{PipelineExt, read_chunks};
///
/// let text: &[u8] = b"alpha beta\ngamma\n";
/// let words = read_chunks(text, 4).lines().words().count();
/// assert_eq!(words, 3);
/// ```
///
/// # Panics
/// If `chunk_size` is 0.
pub fn read_chunks<R: Read>(reader: R, chunk_size: usize) -> ReadChunks<R> {
    assert!(
        chunk_size > 0,
        "read_chunks: the chunk size must be at least 1"
    );
    ReadChunks {
        reader,
        chunk_size,
        ended: false,
        error: None,
    }
}

/// The most bytes [`ReadChunks`] reserves for a chunk before reading it.
const CHUNK_RESERVE: usize = 64 * 1024;

/// The chunks of a reader: the source made by [`read_chunks`].
#[must_use = "pipelines are lazy and do nothing unless pulled"]
pub struct ReadChunks<R> {
    reader: R,
    chunk_size: usize,
    ended: bool,
    error: Option<std::io::Error>,
}

impl<R: Read> Iterator for ReadChunks<R> {
    type Item = PipelineItem<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(error) = self.error.take() {
            return Some(Err(StageError::new("read", error)));
        }
        if self.ended {
            return None;
        }
        // Reserved up to `CHUNK_RESERVE` only: a huge chunk size over a
        // short reader must not allocate for bytes that never come.
        let mut chunk = Vec::with_capacity(self.chunk_size.min(CHUNK_RESERVE));
        // `take` + `read_to_end` fills the chunk unless the reader ends (the
        // buffer growing as bytes arrive), and retries interrupted reads.
        match (&mut self.reader)
            .take(self.chunk_size as u64)
            .read_to_end(&mut chunk)
        {
            Ok(0) => {
                self.ended = true;
                None
            }
            Ok(_) => Some(Ok(shrunk(chunk))),
            Err(error) => {
                self.ended = true;
                if chunk.is_empty() {
                    Some(Err(StageError::new("read", error)))
                } else {
                    // The bytes read before the error first.
                    self.error = Some(error);
                    Some(Ok(shrunk(chunk)))
                }
            }
        }
    }
}

/// `chunk`, with the room it grew into beyond its bytes given back if it
/// grew past [`CHUNK_RESERVE`] (by doubling, as `read_to_end` grows it), so
/// that a chunk kept downstream holds about its bytes only.
fn shrunk(mut chunk: Vec<u8>) -> Vec<u8> {
    if chunk.capacity() > CHUNK_RESERVE.max(chunk.len()) {
        chunk.shrink_to_fit();
    }
    chunk
}

impl<R: Read> FusedIterator for ReadChunks<R> {}

impl<R> fmt::Debug for ReadChunks<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadChunks")
            .field("chunk_size", &self.chunk_size)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}
