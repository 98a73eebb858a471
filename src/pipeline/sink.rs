//! A consumer coroutine: [`Sink`] runs the consumer and is the [`Push`] a
//! producer drives; [`SinkInput`] is the iterator its body reads the items
//! from.

use std::borrow::Cow;
use std::fmt;
use std::iter::FusedIterator;
use std::marker::PhantomData;

use super::{Push, StageError};
use crate::coroutine::{Builder, Coroutine, CoroutineResult, Yielder};
use crate::error::ResumeError;
use crate::resumable::Resumable;

/// A consumer coroutine fed by [`Push::send`]: its body reads the items from
/// a [`SinkInput`], as from an iterator, and its return value comes back from
/// [`Push::finish`].
///
/// `G` is the coroutine: `Coroutine<Option<T>, (), R>` for [`Sink::new`],
/// or any [`Resumable`] that takes `Some(item)` for each item and `None` at
/// the end of the stream ([`Sink::from_resumable`]; a stackless
/// `#[coroutine] |first: Option<T>| ...` with `Sink::stackless`).
///
/// ```
/// use cogen::pipeline::{Push, Sink};
///
/// // Lua's producer/consumer, the other way round: the consumer is the
/// // coroutine, and it can stop early.
/// let mut first_long = Sink::new("first long", |items| {
///     items.into_iter().find(|w: &String| w.len() > 3)
/// });
/// for w in ["a", "bb", "cccc", "dd"] {
///     if !first_long.send(w.to_string()) {
///         break; // "cccc" found: the consumer returned
///     }
/// }
/// assert_eq!(first_long.finish().unwrap().as_deref(), Some("cccc"));
/// ```
pub struct Sink<T, G: Resumable<Option<T>, Yield = ()>> {
    co: G,
    name: Cow<'static, str>,
    /// Set once the consumer has returned or failed.
    result: Option<Result<G::Return, StageError>>,
    item: PhantomData<fn(T)>,
}

impl<T: 'static, R: 'static> Sink<T, Coroutine<Option<T>, (), R>> {
    /// A stackful consumer named `name`: `body` gets the items as a
    /// [`SinkInput`] and returns the result of the whole stream.
    ///
    /// # Panics
    /// If no stack can be mapped, like [`Coroutine::new`].
    #[track_caller]
    pub fn new<F>(name: impl Into<Cow<'static, str>>, body: F) -> Self
    where
        F: FnOnce(SinkInput<'_, T>) -> R + 'static,
    {
        let name = name.into();
        let co = Builder::new()
            .name(name.clone())
            .build(move |co, first: Option<T>| {
                body(SinkInput {
                    co,
                    ended: first.is_none(),
                    pending: first,
                })
            });
        Sink::from_resumable(name, co)
    }
}

#[cfg(cogen_nightly)]
impl<T, C> Sink<T, crate::stackless::Stackless<C>>
where
    C: std::ops::Coroutine<Option<T>, Yield = ()> + Unpin,
{
    /// A stackless consumer named `name` (feature `nightly`): a
    /// `#[coroutine]` closure whose argument is the first item, and whose
    /// `yield` evaluates to each next one; `None` is the end of the stream.
    ///
    /// ```
    /// #![feature(coroutines, coroutine_trait, stmt_expr_attributes)]
    /// use cogen::pipeline::{Push, Sink, source};
    ///
    /// let max = Sink::stackless("max", #[coroutine] |mut item: Option<i32>| {
    ///     let mut max = None;
    ///     while let Some(x) = item {
    ///         max = max.max(Some(x));
    ///         item = yield;
    ///     }
    ///     max
    /// });
    /// assert_eq!(max.feed(source([3, 9, 2])).unwrap(), Some(9));
    /// ```
    pub fn stackless(name: impl Into<Cow<'static, str>>, co: C) -> Self {
        let name = name.into();
        let co = crate::stackless::Stackless::new(co).with_name(name.clone());
        Sink::from_resumable(name, co)
    }
}

impl<T, G: Resumable<Option<T>, Yield = ()>> Sink<T, G> {
    /// A consumer named `name` run by any [`Resumable`] that takes
    /// `Some(item)` for each item and `None` at the end of the stream, and
    /// yields `()` whenever it is ready for the next item.
    pub fn from_resumable(name: impl Into<Cow<'static, str>>, co: G) -> Self {
        let name = name.into();
        let result = co.is_dead().then(|| {
            Err(StageError::new(
                name.clone(),
                "the consumer coroutine was already dead",
            ))
        });
        Sink {
            co,
            name,
            result,
            item: PhantomData,
        }
    }

    /// The consumer's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    #[cold]
    fn ended(&mut self, result: Result<CoroutineResult<(), G::Return>, ResumeError<Option<T>>>) {
        self.result = Some(match result {
            Ok(CoroutineResult::Return(value)) => Ok(value),
            Ok(CoroutineResult::Yield(())) => {
                let _ = self.co.close();
                Err(StageError::new(
                    self.name.clone(),
                    "the consumer did not return at the end of the stream",
                ))
            }
            Err(ResumeError::Panicked(panic)) => {
                Err(StageError::panicked(self.name.clone(), panic))
            }
            // Dead with no result here (one dead from the start has its
            // result from `from_resumable`): an unwinding crossed it on its
            // way to an enclosing scope, such as a `timeout` around a send
            // whose deadline passed during a wait in the consumer.
            Err(ResumeError::Dead(_)) => Err(StageError::new(
                self.name.clone(),
                "the consumer died unfinished: an unwinding crossed it (a time limit that \
                 expired during a wait inside it, or the close of an enclosing coroutine)",
            )),
        });
    }
}

impl<T, G: Resumable<Option<T>, Yield = ()>> Push<T> for Sink<T, G> {
    type Output = G::Return;

    #[inline]
    fn send(&mut self, item: T) -> bool {
        if self.result.is_some() {
            return false;
        }
        match self.co.resume(Some(item)) {
            Ok(CoroutineResult::Yield(())) => true,
            other => {
                self.ended(other);
                false
            }
        }
    }

    #[inline]
    fn is_open(&self) -> bool {
        // A consumer that an unwinding crossed is dead with no result yet.
        self.result.is_none() && !self.co.is_dead()
    }

    fn finish(mut self) -> Result<G::Return, StageError> {
        if self.result.is_none() {
            let result = self.co.resume(None);
            self.ended(result);
        }
        self.result.take().expect("set by `ended`")
    }
}

impl<T, G> fmt::Debug for Sink<T, G>
where
    G: Resumable<Option<T>, Yield = ()>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sink")
            .field("name", &self.name)
            .field("open", &self.is_open())
            .finish_non_exhaustive()
    }
}

/// The items a stackful [`Sink`]'s body consumes: an iterator that suspends
/// the consumer until the producer sends the next item, and ends (`None`)
/// when the producer ends the stream.
pub struct SinkInput<'a, T> {
    co: &'a Yielder<Option<T>, ()>,
    pending: Option<T>,
    ended: bool,
}

impl<T> Iterator for SinkInput<'_, T> {
    type Item = T;

    #[inline]
    fn next(&mut self) -> Option<T> {
        if let Some(item) = self.pending.take() {
            return Some(item);
        }
        if self.ended {
            return None;
        }
        let item = self.co.suspend(());
        self.ended = item.is_none();
        item
    }
}

impl<T> FusedIterator for SinkInput<'_, T> {}

impl<T> fmt::Debug for SinkInput<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SinkInput")
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}
