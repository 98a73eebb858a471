//! A stage's input: [`Upstream`] hands the stage the items of the stage
//! before it; when that stage fails, it records the error in a [`Failure`]
//! slot for the stage's driver ([`Stage`](super::Stage)) and unwinds the
//! stage's body from its pull.

use std::cell::Cell;
use std::fmt;
use std::iter::FusedIterator;
use std::rc::Rc;

use super::{PipelineItem, StageError};

/// Where a stage's upstream puts its error, for the stage's driver to find
/// once the stage's body has stopped (unwound, or returned if it caught the
/// unwinding).
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
/// It ends (`None`) at the end of the stream. When the stage before fails,
/// the pull does not return: it unwinds the stage's body (running the
/// destructors of what the body holds, as closing it would), the stage
/// hands the failure on to the consumer, and none of the body's
/// end-of-input code runs on input that was cut short (see the [module
/// docs](super#errors)).
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
            Some(Err(error)) => self.failed(error),
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

    /// Records the upstream's failure and unwinds the stage's body. The
    /// unwinding is caught where every stage's coroutine catches a panic (a
    /// [`Resumable`](crate::Resumable) never lets one out), and the stage's
    /// driver, finding the error here, reports it instead. So the driver
    /// needs no check of its own on the path of an item.
    #[cold]
    #[inline(never)]
    fn failed<T>(&mut self, error: StageError) -> Option<T> {
        // Keep the first error if a non-fused upstream goes on failing (a
        // body that caught the unwinding and pulled again).
        if self.failure.failed.replace(true) {
            return None;
        }
        self.failure.error.set(Some(error));
        // A destructor that pulls while the thread unwinds already must not
        // start a second unwinding (that aborts): its input just ends.
        if std::thread::panicking() {
            return None;
        }
        std::panic::resume_unwind(Box::new(UpstreamFailed))
    }
}

/// The payload of the unwinding that a failed upstream starts in the stage
/// after it. Not a panic: it reaches no panic hook, and the stage reports
/// the upstream's error rather than this.
struct UpstreamFailed;

/// Every stage is fused, so is the upstream made of one.
impl<T, U: FusedIterator<Item = PipelineItem<T>>> FusedIterator for Upstream<U> {}

impl<U> fmt::Debug for Upstream<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstream")
            .field("failed", &self.failure.failed.get())
            .finish_non_exhaustive()
    }
}
