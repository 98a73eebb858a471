//! A stage's input: [`Upstream`] hands the stage the items of the stage
//! before it, and records that stage's failure in a [`Failure`] slot that
//! the stage's driver ([`Stage`](super::Stage)) checks after every resume.

use std::cell::Cell;
use std::fmt;
use std::io::Read;
use std::iter::FusedIterator;
use std::rc::Rc;

use super::{PipelineItem, ReadChunks, Source, Stage, StageError, StageReturn};
use crate::resumable::Resumable;

/// Where a stage's upstream puts its error, for the stage's driver to find.
/// The flag makes the check after every resume a single load.
#[derive(Default)]
pub(super) struct Failure {
    pub(super) failed: Cell<bool>,
    pub(super) error: Cell<Option<StageError>>,
    /// Set once the stage's driver has handed on an error (its own or its
    /// upstream's): read by a [`StageResult`](super::StageResult).
    pub(super) errored: Cell<bool>,
    /// Set once the stage's driver has seen its coroutine end (return,
    /// panic, or be closed for an upstream's failure), or reported it dead.
    pub(super) ended: Cell<bool>,
}

/// The failure slot a stage shares with its upstream.
pub(super) type FailureCell = Rc<Failure>;

/// A stage's input: the items of the stage before it, as a plain
/// [`Iterator`].
///
/// It ends (`None`) at the end of the stream, and also when the stage before
/// failed: the failure goes straight to the consumer (see the [module
/// docs](super#errors)), and whatever this stage produces after it is
/// discarded.
///
/// An `Upstream` that the body moves out (into a slot that outlives the
/// body, say) and that is pulled after its stage has ended has no consumer
/// left to hand a failure to: the stage has reported its end (it is
/// fused), so such a pull ends with `None` and the failure is dropped, and
/// the stage's [`StageResult`](super::StageResult) keeps saying how its
/// body ended. Pull the upstream inside the body to see its failures.
///
/// Pulled again after that `None`, it asks the stage before again. cogen's
/// stages and sources answer `None` for good, and over them `Upstream` is
/// a [`FusedIterator`]. An iterator of your own that starts a pipeline may
/// go on after an `Err` (a `Vec` of results does), and so would `Upstream`
/// over it: a body that pulls after the end should use
/// [`fuse`](Iterator::fuse) there.
pub struct Upstream<U> {
    inner: U,
    failure: FailureCell,
}

impl<T, U: Iterator<Item = PipelineItem<T>>> Iterator for Upstream<U> {
    type Item = T;

    #[inline(always)]
    fn next(&mut self) -> Option<T> {
        match self.inner.next() {
            Some(Ok(item)) => Some(item),
            Some(Err(error)) => {
                self.failed(error);
                None
            }
            None => None,
        }
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, self.inner.size_hint().1)
    }
}

impl<U> Upstream<U> {
    /// `inner`'s items, reporting its failure to `failure`.
    pub(super) fn new(inner: U, failure: FailureCell) -> Self {
        Upstream { inner, failure }
    }

    #[cold]
    fn failed(&mut self, error: StageError) {
        // Keep the first error if a non-fused upstream goes on failing.
        if !self.failure.failed.replace(true) {
            self.failure.error.set(Some(error));
        }
    }
}

// Fused where the stage before answers only `None` after an error as well
// as after its end: cogen's own stages and sources. Not for any fused
// iterator of `PipelineItem`s: fusing promises `None` only after a `None`,
// and one may go on after an `Err` (a `Vec` of results), which `Upstream`
// would then pull and hand on. The check that would stop it costs every
// item of every stage (5 instructions per item in the three-stage
// stackless pipeline); `Iterator::fuse` adds it where a body wants it.
impl<G> FusedIterator for Upstream<Stage<G>>
where
    G: Resumable<()>,
    G::Return: StageReturn,
{
}

impl<I: FusedIterator> FusedIterator for Upstream<Source<I>> {}

impl<R: Read> FusedIterator for Upstream<ReadChunks<R>> {}

impl<U> fmt::Debug for Upstream<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstream")
            .field("failed", &self.failure.failed.get())
            .finish_non_exhaustive()
    }
}
