//! What a stage of an inline chain reads: [`InlineInput`], the items of the
//! stage before; [`PipelineInput`], the items of the pipeline before the
//! chain; [`Fallible`], a fallible stage's items up to its first `Err`.

use std::fmt;

use super::Handle;
use super::marks::Mark;
use crate::pipeline::{BoxError, PipelineItem, StageError};

/// A stage's input in an [`InlineChain`](super::InlineChain): the items of the stage before, as
/// a plain [`Iterator`]. It costs nothing per item: it only marks, while an
/// unwinding leaves the stage before, that it was that stage which failed.
pub struct InlineInput<J> {
    pub(super) inner: J,
    /// The number of the stage `inner` runs (1 is the first; the first
    /// stage's own input, over the pipeline before the chain, counts as 1).
    pub(super) stage: u32,
    /// The chain's number.
    pub(super) chain: u64,
}

impl<J: Iterator> Iterator for InlineInput<J> {
    type Item = J::Item;

    #[inline(always)]
    fn next(&mut self) -> Option<J::Item> {
        let mark = Mark {
            chain: self.chain,
            stage: self.stage,
        };
        let item = self.inner.next();
        std::mem::forget(mark);
        item
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<J> fmt::Debug for InlineInput<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InlineInput")
            .field("stage", &self.stage)
            .finish_non_exhaustive()
    }
}

/// The items of the pipeline before an [`InlineChain`](super::InlineChain), as the chain's
/// first stage reads them (inside an [`InlineInput`]): a failure of that
/// pipeline ends them and goes to the chain's end.
pub struct PipelineInput<P> {
    pub(super) inner: P,
    pub(super) shared: Handle,
}

impl<T, P: Iterator<Item = PipelineItem<T>>> Iterator for PipelineInput<P> {
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

impl<P> PipelineInput<P> {
    #[cold]
    fn failed(&mut self, error: StageError) {
        // The first error only, if a pipeline that is not fused goes on.
        self.shared.fail_first(|| error);
    }
}

impl<P> fmt::Debug for PipelineInput<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipelineInput")
            .field("failed", &self.shared.failed.get())
            .finish_non_exhaustive()
    }
}

/// A fallible stage's iterator ([`InlineChain::try_inline_stage`](super::InlineChain::try_inline_stage)), as the
/// stage after it reads it: its items, up to its first `Err`, which fails
/// the stage and ends them.
pub struct Fallible<K> {
    pub(super) inner: K,
    /// The stage's index among the chain's names (0 is the first).
    pub(super) stage: usize,
    pub(super) shared: Handle,
}

impl<T, E: Into<BoxError>, K: Iterator<Item = Result<T, E>>> Iterator for Fallible<K> {
    type Item = T;

    #[inline(always)]
    fn next(&mut self) -> Option<T> {
        match self.inner.next()? {
            Ok(item) => Some(item),
            Err(error) => {
                self.failed(error.into());
                None
            }
        }
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, self.inner.size_hint().1)
    }
}

impl<K> Fallible<K> {
    #[cold]
    #[inline(never)]
    fn failed(&self, error: BoxError) {
        // The first failure only: a stage pulled again after its `Err` may
        // fail again.
        self.shared
            .fail_first(|| StageError::new(self.shared.name(self.stage), error));
    }
}

impl<K> fmt::Debug for Fallible<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fallible")
            .field("failed", &self.shared.failed.get())
            .finish_non_exhaustive()
    }
}
