//! A stage's driver: [`Stage`] resumes the stage's coroutine for each item
//! and turns its end, panic or `Err` return into the end of the stream or a
//! [`StageError`]; [`StageReturn`] is what a stage body may return.

use std::borrow::Cow;
use std::fmt;
use std::iter::FusedIterator;

use super::upstream::FailureCell;
use super::{BoxError, PipelineItem, StageError, Upstream};
use crate::coroutine::CoroutineResult;
use crate::error::ResumeError;
use crate::resumable::Resumable;

/// What a stage body may return: `()` (it cannot fail) or `Result<(), E>`,
/// where an `Err` fails the stage with a [`StageError`] naming it. (The items
/// the stage hands on are [`PipelineItem`]s.)
///
/// With the `nightly` feature, `!` too: a body that loops forever. On stable
/// Rust such a body needs a `()` return that it never reaches.
pub trait StageReturn {
    /// `Ok(())`, or the error that fails the stage.
    fn into_result(self) -> Result<(), BoxError>;
}

impl StageReturn for () {
    #[inline]
    fn into_result(self) -> Result<(), BoxError> {
        Ok(())
    }
}

/// A body that never returns (an endless `loop`) has the type `!`.
#[cfg(cogen_nightly)]
impl StageReturn for ! {
    fn into_result(self) -> Result<(), BoxError> {
        self
    }
}

impl<E: Into<BoxError>> StageReturn for Result<(), E> {
    #[inline]
    fn into_result(self) -> Result<(), BoxError> {
        self.map_err(Into::into)
    }
}

/// A named pipeline stage: drives a [`Resumable`] generator and turns what
/// it yields into `Ok` items, and its panic or `Err` return into a
/// [`StageError`] naming the stage.
///
/// Made by the [`PipelineExt`](super::PipelineExt) methods, or directly by
/// [`Stage::new`] for a producer without upstream (a generator whose panics
/// should become errors rather than panics in the consumer).
///
/// A stage is fused: once it has ended or failed, it answers `None`.
///
/// ```
/// use cogen::pipeline::{PipelineExt, Stage};
///
/// let producer = Stage::new("producer", cogen::generator(|co| {
///     for reading in 1.. {
///         if reading == 2 {
///             panic!("sensor unplugged");
///         }
///         co.suspend(reading);
///     }
/// }));
/// let items: Vec<_> = producer.stage("double", |co, up| {
///     for x in up {
///         co.suspend(x * 2);
///     }
/// })
/// .collect();
/// assert_eq!(items[0].as_ref().unwrap(), &2);
/// let error = items[1].as_ref().unwrap_err();
/// assert_eq!(error.stage(), "producer");
/// assert_eq!(error.to_string(), "stage 'producer' panicked");
/// assert_eq!(error.panic().unwrap().message(), "sensor unplugged");
/// assert_eq!(items.len(), 2);
/// ```
#[must_use = "pipelines are lazy and do nothing unless pulled"]
pub struct Stage<G> {
    co: G,
    name: Cow<'static, str>,
    /// Shared with the stage's `Upstream` (unused by a stage made by `new`;
    /// one allocation per stage saves a branch per item).
    failure: FailureCell,
}

impl<G> Stage<G>
where
    G: Resumable<()>,
    G::Return: StageReturn,
{
    /// A stage named `name` running `co`, which has no upstream of its own
    /// (or manages it itself).
    pub fn new(name: impl Into<Cow<'static, str>>, co: G) -> Self {
        let failure = FailureCell::default();
        // A coroutine that is dead already makes an empty stage.
        failure.ended.set(co.is_dead());
        Stage {
            co,
            name: name.into(),
            failure,
        }
    }

    /// The stage's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The coroutine running the stage.
    pub fn get_ref(&self) -> &G {
        &self.co
    }

    /// A stage named `name` running the coroutine that `make` builds around
    /// `upstream`; the two share the slot through which the upstream's
    /// failure reaches [`Stage::next`](Iterator::next).
    pub(super) fn after<U, F>(upstream: U, name: impl Into<Cow<'static, str>>, make: F) -> Self
    where
        F: FnOnce(Upstream<U>) -> G,
    {
        let failure = FailureCell::default();
        let up = Upstream::new(upstream, failure.clone());
        let co = make(up);
        // As in `new`: a coroutine that is dead already makes an empty stage
        // (unless `make` saw the upstream fail: that error is handed on).
        failure.ended.set(co.is_dead() && !failure.failed.get());
        Stage {
            co,
            name: name.into(),
            failure,
        }
    }

    /// The upstream failed: abandon this stage and hand on the error.
    #[cold]
    fn upstream_failed(&mut self) -> Option<StageError> {
        // Unwind whatever the stage still holds first: the close may unwind
        // (a time limit expiring in a destructor of a stackless stage), and
        // the error must then still be in the slot for the next pull.
        let _ = self.co.close();
        self.failure.failed.set(false);
        self.failure.error.take()
    }

    /// The slot the stage shares with its upstream.
    pub(super) fn failure(&self) -> &FailureCell {
        &self.failure
    }

    /// Everything but a plain item: the upstream failed (whatever the stage
    /// did after that is discarded), or the stage returned, panicked or was
    /// already dead. `None` is the end of the stream. An error is recorded in
    /// the failure slot, for a [`StageResult`](super::StageResult).
    ///
    /// `next` hands over the parts of the resume's result, each by itself,
    /// rather than the whole `Result`: a whole one passed out of line has to
    /// be built in memory, on the item's path too.
    #[cold]
    #[inline(never)]
    fn not_an_item(&mut self, end: End<G::Yield, G::Return>) -> Option<StageError> {
        let error = self.error_of(end);
        self.failure.ended.set(true);
        if error.is_some() {
            self.failure.errored.set(true);
        }
        error
    }

    /// The error that [`not_an_item`](Stage::not_an_item) hands on, if any.
    fn error_of(&mut self, end: End<G::Yield, G::Return>) -> Option<StageError> {
        match end {
            // A stage that has ended stays ended, whatever its upstream does
            // afterwards (an `Upstream` the body moved out and pulled later).
            End::Failed(ResumeError::Dead(())) if self.failure.ended.get() => None,
            // The upstream's failure comes first, whatever became of the
            // stage after it.
            _ if self.failure.failed.get() => {
                // What the stage produced after the failure is discarded; a
                // panic of its destructor is secondary to the error.
                crate::error::drop_quietly(end);
                self.upstream_failed()
            }
            // Dead, but this driver never saw it end: an unwinding crossed it
            // on its way to an enclosing scope (a `timeout` around a pull
            // whose deadline passed during a wait inside the stage) and left
            // it unfinished. Said once, so the stream does not look complete.
            End::Failed(ResumeError::Dead(())) => Some(StageError::new(
                self.name.clone(),
                "the stage died unfinished: an unwinding crossed it (a time limit that expired \
                 during a wait inside it, or the close of an enclosing coroutine)",
            )),
            // Only reached with a failed upstream, handled above.
            End::Yielded(_) => None,
            End::Returned(outcome) => match outcome.into_result() {
                Ok(()) => None,
                Err(error) => Some(StageError::new(self.name.clone(), error)),
            },
            End::Failed(ResumeError::Panicked(panic)) => {
                Some(StageError::panicked(self.name.clone(), panic))
            }
        }
    }
}

/// What a resume gave other than an item to hand on.
enum End<Y, R> {
    /// An item, after the upstream failed: dropped.
    Yielded(Y),
    /// The stage's body returned.
    Returned(R),
    /// The stage panicked or was dead.
    Failed(ResumeError<()>),
}

impl<G> Iterator for Stage<G>
where
    G: Resumable<()>,
    G::Return: StageReturn,
{
    type Item = PipelineItem<G::Yield>;

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        // No "ended" flag of our own: a coroutine that returned, panicked or
        // was closed answers `Dead`, which ends the stream. The hot path is
        // an item from a stage whose upstream has not failed; everything
        // else goes out of line, so that the stage's loop stays small.
        let end = match self.co.resume(()) {
            Ok(CoroutineResult::Yield(item)) => {
                if !self.failure.failed.get() {
                    return Some(Ok(item));
                }
                End::Yielded(item)
            }
            Ok(CoroutineResult::Return(outcome)) => End::Returned(outcome),
            Err(error) => End::Failed(error),
        };
        self.not_an_item(end).map(Err)
    }
}

impl<G> FusedIterator for Stage<G>
where
    G: Resumable<()>,
    G::Return: StageReturn,
{
}

impl<G> fmt::Debug for Stage<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stage")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
