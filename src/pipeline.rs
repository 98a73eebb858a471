//! Pipelines: typed pull stages and push consumers, stackful or stackless.
//!
//! # Pull pipelines
//!
//! A *stage* is a coroutine that pulls items from the stage before it (its
//! [`Upstream`], an ordinary [`Iterator`]) and suspends with items for the
//! stage after it. Because it keeps its place between items, one stage can
//! turn one input into many outputs, or many into one, in straight-line
//! code: no hand-written state machine, no buffering of the whole input.
//!
//! Items flow between stages as [`StageResult<T>`], that is
//! `Result<T, StageError>`: a pipeline is an
//! `Iterator<Item = Result<T, StageError>>`. The end of the
//! stream is `None`; a failure is `Some(Err(e))`, and `e` names the stage
//! that failed. [`source`] lifts any iterator into a pipeline, and the
//! [`PipelineExt`] methods add stages; each stage's output type is the next
//! one's input type, checked by the compiler.
//!
//! ```
//! use cogen::pipeline::{PipelineExt, source};
//!
//! let lines = ["3 1", "", "4 1 5"];
//! let sums: Vec<u32> = source(lines)
//!     // one line in, many numbers out
//!     .stage("numbers", |co, up| {
//!         for line in up {
//!             for word in line.split_whitespace() {
//!                 co.suspend(word.parse::<u32>()?);
//!             }
//!         }
//!         Ok::<(), std::num::ParseIntError>(())
//!     })
//!     // many numbers in, one sum out
//!     .windowed(2, |pair: &[u32]| pair.iter().sum())
//!     .collect::<Result<_, _>>()
//!     .unwrap();
//! assert_eq!(sums, [4, 5, 5]);
//! ```
//!
//! A stage can also be any [`Resumable`] (see [`PipelineExt::stage_with`]):
//! with the `nightly` feature, a stackless `#[coroutine]` closure through
//! `PipelineExt::stackless_stage`, mixed freely with stackful stages.
//!
//! # Push pipelines
//!
//! A [`Sink`] is a consumer coroutine: its body reads items from a [`Feed`]
//! as if from an iterator, and is suspended whenever it needs the next one.
//! A producer drives it with [`Push::send`] and ends the stream with
//! [`Push::finish`], which returns the consumer's return value (a count, a
//! summary). [`tee`] and `Vec<Sink>` send each item to several consumers.
//! [`Push::feed`] drives a sink from a pull pipeline.
//!
//! ```
//! use cogen::pipeline::{Push, Sink, source, tee};
//!
//! let count = Sink::new("count", |items| items.count());
//! let longest = Sink::new("longest", |items| items.max_by_key(|w: &&str| w.len()));
//! let (n, long) = tee(count, longest)
//!     .feed(source(["a", "tall", "tree"]))
//!     .unwrap();
//! assert_eq!((n, long), (3, Some("tree")));
//! ```
//!
//! # Errors
//!
//! A stage fails when its body panics, or when it returns `Err` (a body
//! returns `()` or `Result<(), E>`, see [`StageOutcome`]). The pipeline
//! then hands the consumer `Err(`[`StageError`]`)` naming that stage, and
//! ends. The stages after the failed one see the end of their input (their
//! `Upstream` returns `None`); whatever they yield or return after that is
//! discarded, and they are closed. A failed producer ([`Push::feed`]) closes
//! the consumers and returns the error; a failed consumer's error comes back
//! from [`Push::finish`].
//!
//! # Stackful or stackless
//!
//! A stackful stage ([`PipelineExt::stage`]) may suspend from any function it
//! calls (a recursive walk, a parser) and costs one stack switch per item
//! it hands on. A stackless stage (`stackless_stage`, nightly) can only
//! `yield` from its own body, but is a state machine that the compiler
//! inlines into the consumer's loop: several times cheaper per item.
//! `benches/pipeline.rs` measures both against an iterator chain and
//! threads joined by channels.
//!
//! # Drop
//!
//! Each stage owns its upstream. Dropping a pipeline half way drops the last
//! stage, which unwinds its suspended coroutine (running every destructor
//! on it once) and so drops the stage before it, and so on to the source.
//! Dropping a [`Sink`] closes its consumer the same way.

use std::borrow::Cow;
use std::cell::Cell;
use std::error::Error;
use std::fmt;
use std::io::Read;
use std::iter::FusedIterator;
use std::marker::PhantomData;
use std::rc::Rc;

use crate::coroutine::{Builder, Coroutine, CoroutineResult, Yielder};
use crate::error::{Panic, ResumeError};
use crate::resumable::Resumable;

/// A boxed error of a failed stage.
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// What flows between pipeline stages: an item, or the error that ended the
/// stream.
pub type StageResult<T> = Result<T, StageError>;

/// A pipeline stage failed: it panicked, or its body returned `Err`.
///
/// It names the stage, and keeps the panic (with its payload) or the error.
pub struct StageError(Box<StageErrorInner>);

struct StageErrorInner {
    stage: Cow<'static, str>,
    kind: ErrorKind,
}

enum ErrorKind {
    Panicked(Panic),
    Failed(BoxError),
}

impl StageError {
    /// The stage named `stage` failed with `error`. Sources that can fail
    /// (such as [`read_chunks`]) yield this.
    pub fn new(stage: impl Into<Cow<'static, str>>, error: impl Into<BoxError>) -> Self {
        StageError(Box::new(StageErrorInner {
            stage: stage.into(),
            kind: ErrorKind::Failed(error.into()),
        }))
    }

    /// The stage named `stage` panicked.
    pub fn panicked(stage: impl Into<Cow<'static, str>>, panic: Panic) -> Self {
        StageError(Box::new(StageErrorInner {
            stage: stage.into(),
            kind: ErrorKind::Panicked(panic),
        }))
    }

    /// The name of the stage that failed.
    pub fn stage(&self) -> &str {
        &self.0.stage
    }

    /// True if the stage panicked (rather than returning `Err`).
    pub fn is_panic(&self) -> bool {
        matches!(self.0.kind, ErrorKind::Panicked(_))
    }

    /// The panic, if the stage panicked.
    pub fn panic(&self) -> Option<&Panic> {
        match &self.0.kind {
            ErrorKind::Panicked(p) => Some(p),
            ErrorKind::Failed(_) => None,
        }
    }

    /// The error the stage returned, if it did not panic.
    pub fn error(&self) -> Option<&(dyn Error + Send + Sync + 'static)> {
        match &self.0.kind {
            ErrorKind::Failed(e) => Some(&**e),
            ErrorKind::Panicked(_) => None,
        }
    }

    /// The panic, or this error back if the stage did not panic.
    pub fn try_into_panic(self) -> Result<Panic, Self> {
        match self.0.kind {
            ErrorKind::Panicked(p) => Ok(p),
            ErrorKind::Failed(_) => Err(self),
        }
    }

    /// The error the stage returned, or this error back if it panicked.
    pub fn try_into_error(self) -> Result<BoxError, Self> {
        match self.0.kind {
            ErrorKind::Failed(e) => Ok(e),
            ErrorKind::Panicked(_) => Err(self),
        }
    }
}

impl fmt::Debug for StageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("StageError");
        d.field("stage", &self.stage());
        match &self.0.kind {
            ErrorKind::Panicked(p) => d.field("panicked", &p.message()),
            ErrorKind::Failed(e) => d.field("failed", e),
        };
        d.finish()
    }
}

impl fmt::Display for StageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0.kind {
            ErrorKind::Panicked(p) => {
                write!(f, "stage '{}' panicked: {}", self.stage(), p.message())
            }
            ErrorKind::Failed(e) => write!(f, "stage '{}' failed: {e}", self.stage()),
        }
    }
}

impl Error for StageError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match &self.0.kind {
            ErrorKind::Panicked(p) => Some(p),
            ErrorKind::Failed(e) => Some(&**e),
        }
    }
}

/// What a stage body may return: `()` (it cannot fail) or `Result<(), E>`,
/// where an `Err` fails the stage with a [`StageError`] naming it.
///
/// With the `nightly` feature, `!` too: a body that loops forever. On stable
/// Rust such a body needs a `()` return that it never reaches.
pub trait StageOutcome {
    /// `Ok(())`, or the error that fails the stage.
    fn into_result(self) -> Result<(), BoxError>;
}

impl StageOutcome for () {
    #[inline]
    fn into_result(self) -> Result<(), BoxError> {
        Ok(())
    }
}

/// A body that never returns (an endless `loop`) has the type `!`.
#[cfg(feature = "nightly")]
impl StageOutcome for ! {
    fn into_result(self) -> Result<(), BoxError> {
        self
    }
}

impl<E: Into<BoxError>> StageOutcome for Result<(), E> {
    #[inline]
    fn into_result(self) -> Result<(), BoxError> {
        self.map_err(Into::into)
    }
}

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
    type Item = StageResult<I::Item>;

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

/// Where a stage's upstream puts its error, for the stage's driver to find.
/// The flag makes the check after every resume a single load.
#[derive(Default)]
struct Failure {
    failed: Cell<bool>,
    error: Cell<Option<StageError>>,
}

type FailureSlot = Rc<Failure>;

/// A stage's input: the items of the stage before it, as a plain
/// [`Iterator`].
///
/// It ends (`None`) at the end of the stream, and also when the stage before
/// failed: the failure goes straight to the consumer (see the [module
/// docs](self#errors)), and whatever this stage produces after it is
/// discarded.
pub struct Upstream<U> {
    inner: U,
    failure: FailureSlot,
}

impl<T, U: Iterator<Item = StageResult<T>>> Iterator for Upstream<U> {
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
    #[cold]
    fn failed(&mut self, error: StageError) {
        // Keep the first error if a non-fused upstream goes on failing.
        if !self.failure.failed.replace(true) {
            self.failure.error.set(Some(error));
        }
    }
}

/// Every stage is fused, so is the upstream made of one.
impl<T, U: FusedIterator<Item = StageResult<T>>> FusedIterator for Upstream<U> {}

impl<U> fmt::Debug for Upstream<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstream")
            .field("failed", &self.failure.failed.get())
            .finish_non_exhaustive()
    }
}

/// A named pipeline stage: drives a [`Resumable`] generator and turns what
/// it yields into `Ok` items, and its panic or `Err` return into a
/// [`StageError`] naming the stage.
///
/// Made by the [`PipelineExt`] methods, or directly by [`Stage::new`] for a
/// producer without upstream (a generator whose panics should become
/// errors rather than panics in the consumer).
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
/// assert_eq!(error.to_string(), "stage 'producer' panicked: sensor unplugged");
/// assert_eq!(items.len(), 2);
/// ```
#[must_use = "pipelines are lazy and do nothing unless pulled"]
pub struct Stage<G> {
    co: G,
    name: Cow<'static, str>,
    /// Shared with the stage's `Upstream` (unused by a stage made by `new`;
    /// one allocation per stage saves a branch per item).
    failure: FailureSlot,
}

impl<G> Stage<G>
where
    G: Resumable<()>,
    G::Return: StageOutcome,
{
    /// A stage named `name` running `co`, which has no upstream of its own
    /// (or manages it itself).
    pub fn new(name: impl Into<Cow<'static, str>>, co: G) -> Self {
        Stage {
            co,
            name: name.into(),
            failure: FailureSlot::default(),
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

    /// The upstream failed: abandon this stage and hand on the error.
    #[cold]
    fn upstream_failed(&mut self) -> Option<StageError> {
        self.failure.failed.set(false);
        let error = self.failure.error.take()?;
        // Unwind whatever the stage still holds; it is dead afterwards, so
        // the stage is fused. A panic of one of its destructors is secondary
        // to the error being reported.
        let _ = self.co.close();
        Some(error)
    }

    /// Everything but a plain item: the upstream failed (whatever the stage
    /// did after that is discarded), or the stage returned, panicked or was
    /// already dead. `None` is the end of the stream.
    #[cold]
    #[inline(never)]
    fn not_an_item(
        &mut self,
        result: Result<CoroutineResult<G::Yield, G::Return>, ResumeError<()>>,
    ) -> Option<StageError> {
        if self.failure.failed.get() {
            return self.upstream_failed();
        }
        match result {
            // Only reached with a failed upstream, handled above.
            Ok(CoroutineResult::Yield(_)) => None,
            Ok(CoroutineResult::Return(outcome)) => match outcome.into_result() {
                Ok(()) => None,
                Err(error) => Some(StageError::new(self.name.clone(), error)),
            },
            Err(ResumeError::Panicked(panic)) => {
                Some(StageError::panicked(self.name.clone(), panic))
            }
            Err(ResumeError::Dead(())) => None,
        }
    }
}

impl<G> Iterator for Stage<G>
where
    G: Resumable<()>,
    G::Return: StageOutcome,
{
    type Item = StageResult<G::Yield>;

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        // No "ended" flag of our own: a coroutine that returned, panicked or
        // was closed answers `Dead`, which ends the stream. The hot path is
        // an item from a stage whose upstream has not failed; everything
        // else goes out of line, so that the stage's loop stays small.
        match self.co.resume(()) {
            Ok(CoroutineResult::Yield(item)) if !self.failure.failed.get() => Some(Ok(item)),
            other => self.not_an_item(other).map(Err),
        }
    }
}

impl<G> FusedIterator for Stage<G>
where
    G: Resumable<()>,
    G::Return: StageOutcome,
{
}

impl<G> fmt::Debug for Stage<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stage")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Splits byte chunks into lines: the stage made by [`PipelineExt::lines`].
pub type Lines = Stage<Coroutine<(), String, Result<(), InvalidUtf8>>>;

/// Splits lines into words: the stage made by [`PipelineExt::words`].
pub type Words = Stage<Coroutine<(), String>>;

/// Aggregates fixed-size windows: the stage made by [`PipelineExt::windowed`].
pub type Windowed<O> = Stage<Coroutine<(), O>>;

/// A line that is not valid UTF-8; fails the [`lines`](PipelineExt::lines) stage.
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

/// Adds stages to a pipeline: an `Iterator<Item = Result<T, StageError>>`.
///
/// Implemented for every such iterator; start one with [`source`].
pub trait PipelineExt<T>: Iterator<Item = StageResult<T>> + Sized {
    /// Adds a stackful stage named `name`: `body` pulls items from `up` (an
    /// [`Upstream`], a plain iterator) and suspends with items for the next
    /// stage, from any depth of its call stack. It returns `()` or
    /// `Result<(), E>` ([`StageOutcome`]).
    ///
    /// ```
    /// use cogen::pipeline::{PipelineExt, source};
    ///
    /// // Run-length decoding: one item in, many out.
    /// let out: String = source([('a', 2), ('b', 3)])
    ///     .stage("expand", |co, up| {
    ///         for (c, n) in up {
    ///             for _ in 0..n {
    ///                 co.suspend(c);
    ///             }
    ///         }
    ///     })
    ///     .map(Result::unwrap)
    ///     .collect();
    /// assert_eq!(out, "aabbb");
    /// ```
    ///
    /// A stage that takes the wrong item type does not compile:
    ///
    /// ```compile_fail
    /// use cogen::pipeline::{PipelineExt, source};
    /// let _ = source(["not a number"]).stage("double", |co, up| {
    ///     for x in up {
    ///         co.suspend(x * 2u32); // `&str * u32`: type error
    ///     }
    /// });
    /// ```
    ///
    /// # Panics
    /// If no stack can be mapped, like [`Coroutine::new`].
    #[track_caller]
    #[must_use = "pipelines are lazy and do nothing unless pulled"]
    fn stage<Out, R, F>(
        self,
        name: impl Into<Cow<'static, str>>,
        body: F,
    ) -> Stage<Coroutine<(), Out, R>>
    where
        Self: 'static,
        Out: 'static,
        R: StageOutcome + 'static,
        F: FnOnce(&Yielder<(), Out>, Upstream<Self>) -> R + 'static,
    {
        let name = name.into();
        let builder = Builder::new().name(name.clone());
        self.stage_with(name, move |up| builder.build(move |co, ()| body(co, up)))
    }

    /// Adds a stage named `name` run by any [`Resumable`] generator that
    /// `make` builds around the stage's [`Upstream`]: a stackful coroutine
    /// with a custom [`Builder`], a boxed one, or a stackless one.
    #[must_use = "pipelines are lazy and do nothing unless pulled"]
    fn stage_with<G, F>(self, name: impl Into<Cow<'static, str>>, make: F) -> Stage<G>
    where
        F: FnOnce(Upstream<Self>) -> G,
        G: Resumable<()>,
        G::Return: StageOutcome,
    {
        let failure = FailureSlot::default();
        let up = Upstream {
            inner: self,
            failure: failure.clone(),
        };
        Stage {
            co: make(up),
            name: name.into(),
            failure,
        }
    }

    /// Adds a stackless stage (feature `nightly`): `make` receives the
    /// stage's [`Upstream`] and returns a `#[coroutine]` closure that pulls
    /// from it and `yield`s items. Stackless and stackful stages mix freely.
    ///
    /// ```
    /// #![feature(coroutines, coroutine_trait, stmt_expr_attributes)]
    /// use cogen::pipeline::{PipelineExt, source};
    ///
    /// let evens: Vec<u32> = source(1..=6)
    ///     .stackless_stage("evens", |up| #[coroutine] move || {
    ///         for x in up {
    ///             if x % 2 == 0 {
    ///                 yield x;
    ///             }
    ///         }
    ///     })
    ///     .stage("square", |co, up| up.for_each(|x| { co.suspend(x * x); }))
    ///     .collect::<Result<_, _>>()
    ///     .unwrap();
    /// assert_eq!(evens, [4, 16, 36]);
    /// ```
    #[cfg(feature = "nightly")]
    #[must_use = "pipelines are lazy and do nothing unless pulled"]
    fn stackless_stage<C, F>(
        self,
        name: impl Into<Cow<'static, str>>,
        make: F,
    ) -> Stage<crate::stackless::Stackless<C>>
    where
        F: FnOnce(Upstream<Self>) -> C,
        C: std::ops::Coroutine<(), Return: StageOutcome> + Unpin,
    {
        let name = name.into();
        let label = name.clone();
        self.stage_with(name, move |up| {
            crate::stackless::Stackless::new(make(up)).with_name(label)
        })
    }

    /// Splits a stream of byte chunks (from [`read_chunks`], say) into lines,
    /// without their `\n` or `\r\n`. A line may span any number of chunks,
    /// and a chunk may hold any number of lines; memory use is one chunk
    /// plus the longest line. A line that is not UTF-8 fails the stage
    /// (named `"lines"`) with [`InvalidUtf8`].
    ///
    /// ```
    /// use cogen::pipeline::{PipelineExt, source};
    ///
    /// let chunks = [&b"one\ntw"[..], b"o\r\n", b"", b"thr", b"ee"];
    /// let lines: Vec<String> = source(chunks).lines().collect::<Result<_, _>>().unwrap();
    /// assert_eq!(lines, ["one", "two", "three"]);
    /// ```
    #[track_caller]
    #[must_use = "pipelines are lazy and do nothing unless pulled"]
    fn lines(self) -> Lines
    where
        Self: 'static,
        T: AsRef<[u8]>,
    {
        self.stage("lines", |co, up| {
            let mut partial: Vec<u8> = Vec::new();
            let mut number = 0;
            let mut emit = |bytes: &[u8]| {
                number += 1;
                let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
                match std::str::from_utf8(bytes) {
                    Ok(line) => {
                        co.suspend(line.to_owned());
                        Ok(())
                    }
                    Err(source) => Err(InvalidUtf8 {
                        line: number,
                        source,
                    }),
                }
            };
            for chunk in up {
                let mut rest = chunk.as_ref();
                while let Some(end) = rest.iter().position(|&b| b == b'\n') {
                    if partial.is_empty() {
                        emit(&rest[..end])?;
                    } else {
                        partial.extend_from_slice(&rest[..end]);
                        emit(&partial)?;
                        partial.clear();
                    }
                    rest = &rest[end + 1..];
                }
                partial.extend_from_slice(rest);
            }
            if !partial.is_empty() {
                emit(&partial)?;
            }
            Ok(())
        })
    }

    /// Splits a stream of text (lines, say) into its whitespace-separated
    /// words, as owned `String`s.
    ///
    /// ```
    /// use cogen::pipeline::{PipelineExt, source};
    ///
    /// let words: Vec<String> = source(["to be", "", " or not "])
    ///     .words()
    ///     .collect::<Result<_, _>>()
    ///     .unwrap();
    /// assert_eq!(words, ["to", "be", "or", "not"]);
    /// ```
    #[track_caller]
    #[must_use = "pipelines are lazy and do nothing unless pulled"]
    fn words(self) -> Words
    where
        Self: 'static,
        T: AsRef<str>,
    {
        self.stage("words", |co, up| {
            for text in up {
                for word in text.as_ref().split_whitespace() {
                    co.suspend(word.to_owned());
                }
            }
        })
    }

    /// Aggregates consecutive windows of `size` items with `aggregate`: many
    /// items in, one out. The last window may be shorter.
    ///
    /// ```
    /// use cogen::pipeline::{PipelineExt, source};
    ///
    /// let averages: Vec<f64> = source([1.0, 3.0, 5.0, 7.0, 9.0])
    ///     .windowed(2, |w: &[f64]| w.iter().sum::<f64>() / w.len() as f64)
    ///     .collect::<Result<_, _>>()
    ///     .unwrap();
    /// assert_eq!(averages, [2.0, 6.0, 9.0]);
    /// ```
    ///
    /// # Panics
    /// If `size` is 0.
    #[track_caller]
    #[must_use = "pipelines are lazy and do nothing unless pulled"]
    fn windowed<O, F>(self, size: usize, mut aggregate: F) -> Windowed<O>
    where
        Self: 'static,
        O: 'static,
        F: FnMut(&[T]) -> O + 'static,
    {
        assert!(size > 0, "windowed: the window size must be at least 1");
        self.stage("windowed", move |co, up| {
            let mut window = Vec::with_capacity(size);
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
        })
    }
}

impl<T, I: Iterator<Item = StageResult<T>>> PipelineExt<T> for I {}

/// Reads `reader` in chunks of `chunk_size` bytes (the last one shorter): the
/// source of a streaming pipeline, in constant memory. A read error ends the
/// stream with a [`StageError`] from the stage `"read"`.
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
    }
}

/// The chunks of a reader: the source made by [`read_chunks`].
#[must_use = "pipelines are lazy and do nothing unless pulled"]
pub struct ReadChunks<R> {
    reader: R,
    chunk_size: usize,
    ended: bool,
}

impl<R: Read> Iterator for ReadChunks<R> {
    type Item = StageResult<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ended {
            return None;
        }
        let mut chunk = Vec::with_capacity(self.chunk_size);
        // `take` + `read_to_end` fills the chunk unless the reader ends, and
        // retries interrupted reads.
        match (&mut self.reader)
            .take(self.chunk_size as u64)
            .read_to_end(&mut chunk)
        {
            Ok(0) => {
                self.ended = true;
                None
            }
            Ok(_) => Some(Ok(chunk)),
            Err(error) => {
                self.ended = true;
                Some(Err(StageError::new("read", error)))
            }
        }
    }
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

/// The consumer end of a push pipeline: a [`Sink`], or several of them
/// ([`tee`], `Vec<Sink>`).
pub trait Push<T>: Sized {
    /// What the consumers return at the end of the stream.
    type Output;

    /// Sends one item. Returns `false` once no consumer wants more items
    /// (each has returned or failed); the item is then dropped.
    fn send(&mut self, item: T) -> bool;

    /// True while some consumer still takes items.
    fn is_open(&self) -> bool;

    /// Ends the stream and returns what the consumers returned, or the
    /// error of the first consumer that failed.
    fn finish(self) -> Result<Self::Output, StageError>;

    /// Sends every item of a pull pipeline, stopping early when no consumer
    /// wants more, then ends the stream. If the pipeline fails, the
    /// consumers are closed (their destructors run) and its error returned.
    ///
    /// ```
    /// use cogen::pipeline::{Push, Sink, source};
    ///
    /// let sum = Sink::new("sum", |items| items.sum::<u64>());
    /// assert_eq!(sum.feed(source(1..=100)).unwrap(), 5050);
    /// ```
    fn feed<I>(mut self, items: I) -> Result<Self::Output, StageError>
    where
        I: IntoIterator<Item = StageResult<T>>,
    {
        for item in items {
            if !self.send(item?) {
                break;
            }
        }
        self.finish()
    }
}

/// A consumer coroutine fed by [`Push::send`]: its body reads the items from
/// a [`Feed`], as from an iterator, and its return value comes back from
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
    /// A stackful consumer named `name`: `body` gets the items as a [`Feed`]
    /// and returns the result of the whole stream.
    ///
    /// # Panics
    /// If no stack can be mapped, like [`Coroutine::new`].
    #[track_caller]
    pub fn new<F>(name: impl Into<Cow<'static, str>>, body: F) -> Self
    where
        F: FnOnce(Feed<'_, T>) -> R + 'static,
    {
        let name = name.into();
        let co = Builder::new()
            .name(name.clone())
            .build(move |co, first: Option<T>| {
                body(Feed {
                    co,
                    ended: first.is_none(),
                    pending: first,
                })
            });
        Sink::from_resumable(name, co)
    }
}

#[cfg(feature = "nightly")]
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
        Sink {
            co,
            name: name.into(),
            result: None,
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
            Err(ResumeError::Dead(_)) => Err(StageError::new(
                self.name.clone(),
                "the consumer coroutine was already dead",
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
        self.result.is_none()
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
            .field("open", &self.result.is_none())
            .finish_non_exhaustive()
    }
}

/// The items a stackful [`Sink`]'s body consumes: an iterator that suspends
/// the consumer until the producer sends the next item, and ends (`None`)
/// when the producer ends the stream.
pub struct Feed<'a, T> {
    co: &'a Yielder<Option<T>, ()>,
    pending: Option<T>,
    ended: bool,
}

impl<T> Iterator for Feed<'_, T> {
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

impl<T> FusedIterator for Feed<'_, T> {}

impl<T> fmt::Debug for Feed<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Feed")
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

/// Sends each item to both `a` and `b` (cloning it): fan-out to two
/// consumers. Their outputs come back as a pair. For more consumers of one
/// type, a `Vec` of them is a [`Push`] too.
///
/// ```
/// use cogen::pipeline::{Push, Sink, source, tee};
///
/// let evens = Sink::new("evens", |xs| xs.filter(|x: &u32| x % 2 == 0).count());
/// let firsts: Vec<_> = (0..2)
///     .map(|i| Sink::new(format!("first {i}"), |mut xs| xs.next()))
///     .collect();
/// let (evens, firsts) = tee(evens, firsts).feed(source(1..=5)).unwrap();
/// assert_eq!(evens, 2);
/// assert_eq!(firsts, [Some(1), Some(1)]);
/// ```
pub fn tee<A, B>(a: A, b: B) -> Tee<A, B> {
    Tee { a, b }
}

/// Two consumers fed the same items: made by [`tee`].
#[derive(Debug)]
pub struct Tee<A, B> {
    a: A,
    b: B,
}

impl<T: Clone, A: Push<T>, B: Push<T>> Push<T> for Tee<A, B> {
    type Output = (A::Output, B::Output);

    fn send(&mut self, item: T) -> bool {
        match (self.a.is_open(), self.b.is_open()) {
            (true, true) => {
                let a = self.a.send(item.clone());
                self.b.send(item) || a
            }
            (true, false) => self.a.send(item),
            (false, true) => self.b.send(item),
            (false, false) => false,
        }
    }

    fn is_open(&self) -> bool {
        self.a.is_open() || self.b.is_open()
    }

    /// Finishes both, and returns both outputs or the first error (`a`'s
    /// before `b`'s).
    fn finish(self) -> Result<Self::Output, StageError> {
        let a = self.a.finish();
        let b = self.b.finish();
        Ok((a?, b?))
    }
}

impl<T: Clone, S: Push<T>> Push<T> for Vec<S> {
    type Output = Vec<S::Output>;

    fn send(&mut self, item: T) -> bool {
        let mut open = false;
        for sink in self.iter_mut().filter(|s| s.is_open()) {
            open |= sink.send(item.clone());
        }
        open
    }

    fn is_open(&self) -> bool {
        self.iter().any(Push::is_open)
    }

    /// Finishes each consumer in order; the outputs in the same order, or
    /// the first error (the consumers after it are closed).
    fn finish(self) -> Result<Self::Output, StageError> {
        self.into_iter().map(Push::finish).collect()
    }
}
