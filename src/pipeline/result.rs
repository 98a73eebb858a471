//! A value a stage hands back at the end of the stream: [`StageResult`], the
//! handle that [`stage_returning`](super::PipelineExt::stage_returning) and
//! [`try_stage_returning`](super::PipelineExt::try_stage_returning) give
//! back next to the stage, and [`ResultState`], what it holds.

use std::cell::Cell;
use std::fmt;
use std::rc::Rc;

use super::upstream::FailureCell;

/// Where a stage's body puts its return value, for its [`StageResult`].
pub(super) type ValueCell<R> = Rc<Cell<Option<R>>>;

/// What a [`StageResult`] holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResultState {
    /// The stage's body has not returned: the stream has not reached the
    /// stage's end yet, or never will (the pipeline was dropped before its
    /// end, which closed the stage).
    Unfinished,
    /// The stage returned, after its upstream ended without an error: the
    /// value is ready.
    Returned,
    /// The pipeline failed at this stage or before it (a panic, an `Err`):
    /// the consumer received the [`StageError`](super::StageError), and
    /// there is no value. A value the stage returned after its upstream
    /// failed is discarded, like anything else it produced after that.
    Failed,
    /// The value was returned and then taken.
    Taken,
}

/// The value a stage returns at the end of the stream, readable after the
/// stream has ended: made by
/// [`stage_returning`](super::PipelineExt::stage_returning) and
/// [`try_stage_returning`](super::PipelineExt::try_stage_returning).
///
/// The value is there once the consumer has pulled the stream to its end
/// (`None`), or at least past this stage's end; until then, or if the
/// pipeline was dropped first, the state is [`ResultState::Unfinished`].
/// If the stage, or one before it, failed, the state is
/// [`ResultState::Failed`] and the consumer has the error.
///
/// ```
/// use cogen::pipeline::{PipelineExt, ResultState, source};
///
/// let (evens, odd) = source(1..=5).stage_returning("evens", |co, up| {
///     let mut odd = 0;
///     for x in up {
///         if x % 2 == 0 { co.suspend(x) } else { odd += 1 }
///     }
///     odd
/// });
/// assert_eq!(odd.state(), ResultState::Unfinished); // nothing pulled yet
/// assert_eq!(evens.map(Result::unwrap).collect::<Vec<_>>(), [2, 4]);
/// assert_eq!(odd.get(), Some(3));
/// assert_eq!(odd.take(), Some(3));
/// assert_eq!(odd.state(), ResultState::Taken);
/// ```
pub struct StageResult<R> {
    value: ValueCell<R>,
    /// The stage's failure slot, which its driver marks when it hands on an
    /// error.
    failure: FailureCell,
    taken: Cell<bool>,
}

impl<R> StageResult<R> {
    /// The result of the stage whose body writes `value` and whose driver
    /// shares `failure`.
    pub(super) fn new(value: ValueCell<R>, failure: FailureCell) -> Self {
        StageResult {
            value,
            failure,
            taken: Cell::new(false),
        }
    }

    /// Whether the value is ready, taken, failed or not there yet.
    pub fn state(&self) -> ResultState {
        if self.failure.errored.get() {
            ResultState::Failed
        } else if self.taken.get() {
            ResultState::Taken
        } else {
            // Peek without a `Clone` bound: take the value and put it back.
            let value = self.value.take();
            let state = match value {
                Some(_) => ResultState::Returned,
                None => ResultState::Unfinished,
            };
            self.value.set(value);
            state
        }
    }

    /// The value, once: `Some` if the state is [`ResultState::Returned`],
    /// which it then leaves for [`ResultState::Taken`].
    pub fn take(&self) -> Option<R> {
        if self.state() != ResultState::Returned {
            return None;
        }
        self.taken.set(true);
        self.value.take()
    }

    /// A copy of the value, if the state is [`ResultState::Returned`].
    pub fn get(&self) -> Option<R>
    where
        R: Clone,
    {
        if self.state() != ResultState::Returned {
            return None;
        }
        // The value goes back into its cell even if its `clone` panics.
        let back = PutBack {
            cell: &self.value,
            value: self.value.take(),
        };
        back.value.clone()
    }
}

/// Puts a value taken out of a [`ValueCell`] back when dropped.
struct PutBack<'a, R> {
    cell: &'a ValueCell<R>,
    value: Option<R>,
}

impl<R> Drop for PutBack<'_, R> {
    fn drop(&mut self) {
        self.cell.set(self.value.take());
    }
}

impl<R> fmt::Debug for StageResult<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StageResult")
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}
