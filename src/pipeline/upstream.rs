//! A stage's input: [`Upstream`] hands the stage the items of the stage
//! before it, and records that stage's failure in a [`Failure`] slot that
//! the stage's driver ([`Stage`](super::Stage)) checks after every resume.

use std::cell::Cell;
use std::fmt;
use std::iter::FusedIterator;
use std::rc::Rc;

use super::{PipelineItem, StageError};

/// Where a stage's upstream puts its error, for the stage's driver to find.
/// The flag makes the check after every resume a single load.
#[derive(Default)]
pub(super) struct Failure {
    pub(super) failed: Cell<bool>,
    pub(super) error: Cell<Option<StageError>>,
    /// Set once the stage's driver has handed on an error (its own or its
    /// upstream's): read by a [`StageResult`](super::StageResult).
    pub(super) errored: Cell<bool>,
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

/// Every stage is fused, so is the upstream made of one.
impl<T, U: FusedIterator<Item = PipelineItem<T>>> FusedIterator for Upstream<U> {}

impl<U> fmt::Debug for Upstream<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstream")
            .field("failed", &self.failure.failed.get())
            .finish_non_exhaustive()
    }
}
