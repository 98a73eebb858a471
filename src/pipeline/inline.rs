//! Inline chains: stages that are plain iterators (nightly `gen` blocks,
//! iterator adapters) run as one [`InlineChain`], with one catch at its end
//! instead of one per stage, so the compiler can inline the whole chain into
//! the consumer's loop.
//!
//! A stage of an inline chain is whatever iterator its `make` builds around
//! its [`InlineInput`]. A panic of a stage ends the chain with a
//! [`StageError`](super::StageError) naming that stage: each input marks, only while an
//! unwinding leaves it (a landing pad, no work on the item's path), that the
//! stage it reads from failed; the lowest mark wins, since an unwinding
//! leaves the stage that panicked first and the stages that pulled from it
//! after. A pipeline before the chain hands its error to a slot shared with
//! the chain's end ([`PipelineInput`]), as a fallible stage does
//! ([`Fallible`]): the stages after it see the end of their input, as an
//! [`Upstream`](super::Upstream) does, and the chain's end hands on the
//! error instead of anything the stages yield after it.
//!
//! The stages live in a box between pulls; `next` resumes them there,
//! behind a catch per item, and `fold` / `try_fold` (what `sum`,
//! `collect`, `for_each` run) move them into the consumer's frame and run
//! the whole loop behind one catch, keeping the accumulator outside it so
//! that a stage's error still reaches the consumer's closure, and marking
//! the closure's own panic so that it goes on unchanged.

use std::borrow::Cow;
use std::fmt;
use std::iter::FusedIterator;
use std::ops::ControlFlow;
use std::panic::AssertUnwindSafe;

use super::{BoxError, PipelineItem};

mod inputs;
mod marks;
mod shared;

pub use inputs::{Fallible, InlineInput, PipelineInput};
use marks::{CONSUMER, Mark};
pub(crate) use marks::{forget_marks_since, marks_now};
use shared::{End, Handle};

/// A chain of named stages, each a plain iterator over the one before,
/// behind one catch: a pipeline (an `Iterator<Item = Result<T, StageError>>`)
/// whose stages the compiler can inline into one loop, as it does a chain of
/// iterator adapters or nightly `gen` blocks.
///
/// Start one with [`inline_source`] or with
/// [`PipelineExt::inline_stage`](super::PipelineExt::inline_stage) after any
/// pipeline, and add stages with [`InlineChain::inline_stage`]: each
/// stage's `make` receives its [`InlineInput`] (an [`Iterator`] over the
/// items of the stage before) and returns the stage's iterator. On nightly
/// Rust that is typically a `gen` block; on stable, any iterator adapter
/// (`up.map(..)`, `up.flat_map(..)`, [`std::iter::from_fn`]).
///
/// ```
/// use cogen::pipeline::{PipelineExt, inline_source};
///
/// let total: u64 = inline_source("numbers", 1..=10u64)
///     .inline_stage("squares", |up| up.map(|x| x * x))
///     .inline_stage("odd", |up| up.filter(|x| x % 2 == 1))
///     .sum::<Result<u64, _>>()
///     .unwrap();
/// assert_eq!(total, 1 + 9 + 25 + 49 + 81);
/// ```
///
/// # Errors
///
/// A stage fails by panicking: the chain hands the consumer one
/// `Err(`[`StageError`](super::StageError)`)` naming the stage, and ends (it is fused). Unlike
/// a [`Stage`](super::Stage), whose coroutine catches its own panics, the
/// unwinding of a panicking stage here goes on through the stages of the
/// chain after it (they do not see the end of their input: their state is
/// dropped by the unwinding) and is caught at the chain's end.
///
/// ```
/// use cogen::pipeline::inline_source;
///
/// let mut chain = inline_source("numbers", 1..)
///     .inline_stage("checked", |up| up.map(|x: u32| if x < 3 { x } else { panic!("too big: {x}") }))
///     .inline_stage("doubled", |up| up.map(|x| x * 2));
/// assert_eq!(chain.next().unwrap().unwrap(), 2);
/// assert_eq!(chain.next().unwrap().unwrap(), 4);
/// let error = chain.next().unwrap().unwrap_err();
/// assert_eq!(error.stage(), "checked");
/// assert_eq!(error.panic().unwrap().message(), "too big: 3");
/// assert!(chain.next().is_none());
/// ```
///
/// A failure of the pipeline before the chain reaches the consumer as it
/// would through any stage: the chain's first stage sees the end of its
/// input, whatever the chain yields after that is discarded, and the error
/// is handed on. A panic of the pipeline before the chain (an iterator given
/// to [`source`](super::source) that panics) is the first stage's, as it is
/// for a [`Stage`](super::Stage) pulling from it.
///
/// The name is found through the marks the stages' inputs leave while an
/// unwinding crosses them. A stage that catches the panic of the stage
/// before it (`catch_unwind` around a pull) and goes on leaves that stage's
/// mark behind, so a later panic of a stage after it is reported under the
/// name of the stage that panicked first.
///
/// `CHECKED` is `false` for a chain that [`inline_source`] started and that
/// has no fallible stage: nothing in it can record a failure, and it skips
/// the look for one after each item.
///
/// # Drop
///
/// The chain owns its last stage's iterator, which owns its input, and so
/// on to the first stage and the pipeline before it. The chain drops them
/// all at its end (the end of the stream, or a failure), so an inline chain
/// is fused and holds nothing once it has ended. A panic of a destructor
/// then is the last stage's error (or, after a failure, secondary to it and
/// dropped); a panic of a destructor while the chain itself is dropped goes
/// on, as any destructor's.
#[must_use = "pipelines are lazy and do nothing unless pulled"]
pub struct InlineChain<J, const CHECKED: bool = true> {
    /// The last stage's iterator, which owns the stages before it; `None`
    /// once the chain has ended or failed.
    ///
    /// Boxed, so that wherever the chain is pulled item by item (`next`),
    /// the stages' states stay in one place in memory (36.8 instructions per
    /// item in `pipeline_3_stages`). Inline in the chain they were at the
    /// optimiser's mercy: a consumer that built and drained the chain in one
    /// function kept them in registers (30.5, the count of `gen` blocks
    /// written by hand), but one that received the chain from elsewhere
    /// (std's `sum` of `Result`s in `try_process`, when it is not inlined)
    /// split them into dozens of scalars and spilled them around every
    /// resume (98.5, and 3.8 times the time). A fold moves them out of the
    /// box into its own frame for the whole loop (see `fold_caught`), and
    /// back if it stops early, into the same allocation: the box holds an
    /// `Option` for that, and is never reallocated (std's `collect` into a
    /// `Result` folds once per item).
    chain: Box<Option<J>>,
    shared: Handle,
}

/// Starts an [`InlineChain`] with a stage named `name` that has no input:
/// it hands on the items of `items`.
///
/// ```
/// let first = cogen::pipeline::inline_source("numbers", [1, 2]).next();
/// assert_eq!(first.unwrap().unwrap(), 1);
/// ```
#[inline(always)]
pub fn inline_source<I: IntoIterator>(
    name: impl Into<Cow<'static, str>>,
    items: I,
) -> InlineChain<I::IntoIter, false> {
    InlineChain {
        chain: Box::new(Some(items.into_iter())),
        shared: Handle::new(name.into()),
    }
}

/// Starts an [`InlineChain`] after the pipeline `before`
/// ([`PipelineExt::inline_stage`](super::PipelineExt::inline_stage)).
#[inline(always)]
pub(super) fn after<T, P, K, F>(
    before: P,
    name: Cow<'static, str>,
    make: F,
) -> InlineChain<K::IntoIter, true>
where
    P: Iterator<Item = PipelineItem<T>>,
    F: FnOnce(InlineInput<PipelineInput<P>>) -> K,
    K: IntoIterator,
{
    let shared = Handle::new(name);
    let input = InlineInput {
        inner: PipelineInput {
            inner: before,
            shared: shared.share(),
        },
        // A panic of the pipeline before is the first stage's, as it is when
        // a stage's coroutine pulls from it.
        stage: 1,
        chain: shared.chain,
    };
    InlineChain {
        chain: Box::new(Some(make(input).into_iter())),
        shared,
    }
}

impl<J: Iterator, const CHECKED: bool> InlineChain<J, CHECKED> {
    /// Adds a stage named `name`: `make` receives the stage's input (the
    /// items of the stage before, an [`InlineInput`]) and returns the
    /// stage's iterator, a `gen` block or an iterator adapter.
    ///
    /// ```
    /// use cogen::pipeline::inline_source;
    ///
    /// let words: Vec<String> = inline_source("lines", ["a b", "c"])
    ///     .inline_stage("words", |up| up.flat_map(str::split_whitespace))
    ///     .inline_stage("upper", |up| up.map(str::to_uppercase))
    ///     .collect::<Result<_, _>>()
    ///     .unwrap();
    /// assert_eq!(words, ["A", "B", "C"]);
    /// ```
    ///
    /// # Panics
    /// If the chain has been pulled to its end already (an inline chain is
    /// built before it runs).
    #[inline(always)]
    pub fn inline_stage<K, F>(
        mut self,
        name: impl Into<Cow<'static, str>>,
        make: F,
    ) -> InlineChain<K::IntoIter, CHECKED>
    where
        F: FnOnce(InlineInput<J>) -> K,
        K: IntoIterator,
    {
        let (input, _) = self.input_of_next(name.into(), "inline_stage");
        InlineChain {
            chain: Box::new(Some(make(input).into_iter())),
            shared: self.shared,
        }
    }

    /// Adds a fallible stage named `name`: like
    /// [`inline_stage`](InlineChain::inline_stage), but the stage's iterator
    /// yields `Result`s, and the first `Err` fails the stage. The stages
    /// after it see the end of their input, whatever the chain yields after
    /// that is discarded, and the consumer receives the error as a
    /// [`StageError`](super::StageError) naming this stage. The chain checks for such a failure
    /// after each item from then on (one load and a branch).
    ///
    /// ```
    /// use cogen::pipeline::inline_source;
    ///
    /// let mut numbers = inline_source("lines", ["1", "2", "x", "4"])
    ///     .try_inline_stage("parse", |up| up.map(str::parse::<u32>))
    ///     .inline_stage("double", |up| up.map(|n| n * 2));
    /// assert_eq!(numbers.next().unwrap().unwrap(), 2);
    /// assert_eq!(numbers.next().unwrap().unwrap(), 4);
    /// let error = numbers.next().unwrap().unwrap_err();
    /// assert_eq!(error.stage(), "parse");
    /// assert_eq!(error.error().unwrap().to_string(), "invalid digit found in string");
    /// assert!(numbers.next().is_none());
    /// ```
    ///
    /// # Panics
    /// As [`inline_stage`](InlineChain::inline_stage): if the chain has been
    /// pulled to its end already.
    #[inline(always)]
    pub fn try_inline_stage<U, E, K, F>(
        mut self,
        name: impl Into<Cow<'static, str>>,
        make: F,
    ) -> InlineChain<Fallible<K::IntoIter>, true>
    where
        F: FnOnce(InlineInput<J>) -> K,
        K: IntoIterator<Item = Result<U, E>>,
        E: Into<BoxError>,
    {
        let (input, stage) = self.input_of_next(name.into(), "try_inline_stage");
        InlineChain {
            chain: Box::new(Some(Fallible {
                inner: make(input).into_iter(),
                stage: stage as usize,
                shared: self.shared.share(),
            })),
            shared: self.shared,
        }
    }

    /// The input of a stage named `name` added by `adding`: this chain's
    /// stages, read as the items of the stage before (whose number comes
    /// back too).
    #[inline(always)]
    fn input_of_next(&mut self, name: Cow<'static, str>, adding: &str) -> (InlineInput<J>, u32) {
        let Some(chain) = self.chain.take() else {
            already_ended(adding);
        };
        let stage = self.shared.push_name(name);
        let input = InlineInput {
            inner: chain,
            stage,
            chain: self.shared.chain,
        };
        (input, stage)
    }

    /// The stages' names, the first stage's first.
    pub fn names(&self) -> Vec<Cow<'static, str>> {
        self.shared.names.borrow().clone()
    }
}

#[cold]
#[inline(never)]
fn already_ended(adding: &str) -> ! {
    panic!("{adding}: the chain has already ended")
}

/// Why the fold inside the chain's catch stopped before the chain's end.
enum Stop<R> {
    /// The consumer's closure broke out with this.
    Consumer(R),
    /// A failure was recorded (the pipeline before, or a fallible stage).
    Failed,
}

impl<J: Iterator, const CHECKED: bool> InlineChain<J, CHECKED> {
    /// Folds the items into `f`'s accumulator with the whole loop inside one
    /// catch, on a copy of the stages' states in the caller's frame, where
    /// the optimiser can keep them in registers: what `fold` and
    /// `try_fold`, and the consumers built on them (`sum`, `collect`,
    /// `for_each`...) run. The accumulator is kept outside the catch, so
    /// that a stage's error can still be handed to `f` after a panic.
    ///
    /// 37.0–37.8 instructions per item in `pipeline_3_stages` (as the
    /// binary around it changes) whether or not the consumer is inlined,
    /// and 0.7–1.8 times the time of the `gen` blocks written by hand
    /// (depending on the host and the binary): the states are in registers, but their values at
    /// the start are not known here, so each resume dispatches on its state
    /// through a jump table where a chain built in the consumer's own frame
    /// compares. The optimiser keeps them in registers only while this
    /// function stays small and lets nothing of the loop escape: building
    /// the stages lazily here (to know their starting values) counted 44.3,
    /// pulling the first item with `next` before the loop 54.8, a local
    /// flag set by the consumer's unwinding (instead of the out-of-line
    /// mark) or the discarded item kept in a local for later 96.3. A plain
    /// `for` loop over `next` instead of the last stage's `try_fold`
    /// counted 36.25 but ran slower (a taken jump per item where this
    /// loop stores the last stage's state).
    #[inline(always)]
    fn fold_caught<B, R>(
        &mut self,
        init: B,
        mut f: impl FnMut(B, PipelineItem<J::Item>) -> ControlFlow<R, B>,
    ) -> ControlFlow<R, B> {
        let Some(mut chain) = self.chain.take() else {
            return match self.shared.pending.take() {
                Some(error) => f(init, Err(error)),
                None => ControlFlow::Continue(init),
            };
        };
        let mut acc = Some(init);
        let shared = &*self.shared;
        let folded = std::panic::catch_unwind(AssertUnwindSafe(|| {
            chain.try_fold((), |(), item| {
                if CHECKED && shared.failed.get() {
                    // A panic of its destructor is secondary to the failure.
                    crate::error::drop_quietly(item);
                    return ControlFlow::Break(Stop::Failed);
                }
                let Some(previous) = acc.take() else {
                    unreachable!("the accumulator is put back after each item")
                };
                let consumer = Mark {
                    chain: shared.chain,
                    stage: CONSUMER,
                };
                let flow = f(previous, Ok(item));
                std::mem::forget(consumer);
                match flow {
                    ControlFlow::Continue(next) => {
                        acc = Some(next);
                        ControlFlow::Continue(())
                    }
                    ControlFlow::Break(residual) => ControlFlow::Break(Stop::Consumer(residual)),
                }
            })
        }));
        let end = match folded {
            Ok(ControlFlow::Break(Stop::Consumer(residual))) => {
                *self.chain = Some(chain);
                return ControlFlow::Break(residual);
            }
            // The accumulator is out only while the consumer runs, which
            // tells its panic where the marks' thread-local is gone.
            Err(payload) if self.shared.consumer_unwound() || acc.is_none() => {
                // The consumer's own panic, not the chain's: it goes on, and
                // the chain stays as it was.
                *self.chain = Some(chain);
                std::panic::resume_unwind(payload);
            }
            Err(payload) => End::Unwound(payload),
            Ok(_) => End::<J::Item>::Ended,
        };
        let dropped = std::panic::catch_unwind(AssertUnwindSafe(move || drop(chain)));
        let error = self.shared.not_an_item(CHECKED, end, dropped);
        let Some(acc) = acc else {
            unreachable!("only the consumer's panic loses the accumulator")
        };
        match error {
            Some(error) => f(acc, Err(error)),
            None => ControlFlow::Continue(acc),
        }
    }
}

impl<J: Iterator, const CHECKED: bool> Iterator for InlineChain<J, CHECKED> {
    type Item = PipelineItem<J::Item>;

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        let Some(chain) = self.chain.as_mut() else {
            return self.shared.pending.take().map(Err);
        };
        let end = match std::panic::catch_unwind(AssertUnwindSafe(|| chain.next())) {
            Ok(Some(item)) => {
                if !(CHECKED && self.shared.failed.get()) {
                    return Some(Ok(item));
                }
                End::Discarded(item)
            }
            Ok(None) => End::Ended,
            Err(payload) => End::Unwound(payload),
        };
        // The chain is over: its stages are dropped here (an inline chain is
        // fused), a panic of a destructor caught.
        let chain = &mut *self.chain;
        let dropped = std::panic::catch_unwind(AssertUnwindSafe(|| *chain = None));
        self.shared.not_an_item(CHECKED, end, dropped).map(Err)
    }

    #[inline]
    fn fold<B, F>(mut self, init: B, mut f: F) -> B
    where
        F: FnMut(B, Self::Item) -> B,
    {
        match self.fold_caught(init, |acc, item| {
            ControlFlow::<std::convert::Infallible, B>::Continue(f(acc, item))
        }) {
            ControlFlow::Continue(acc) => acc,
            ControlFlow::Break(never) => match never {},
        }
    }

    #[cfg(cogen_nightly)]
    #[inline]
    fn try_fold<B, F, R>(&mut self, init: B, mut f: F) -> R
    where
        F: FnMut(B, Self::Item) -> R,
        R: std::ops::Try<Output = B>,
    {
        match self.fold_caught(init, |acc, item| f(acc, item).branch()) {
            ControlFlow::Continue(acc) => R::from_output(acc),
            ControlFlow::Break(residual) => R::from_residual(residual),
        }
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        match &*self.chain {
            // An error may come in place of any item, and one more after them.
            Some(chain) => (0, chain.size_hint().1.and_then(|n| n.checked_add(1))),
            None => (0, Some(1)),
        }
    }
}

impl<J: Iterator, const CHECKED: bool> FusedIterator for InlineChain<J, CHECKED> {}

impl<J, const CHECKED: bool> fmt::Debug for InlineChain<J, CHECKED> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InlineChain")
            .field("names", &self.shared.names.borrow())
            .field("ended", &self.chain.is_none())
            .finish_non_exhaustive()
    }
}
