//! [`PipelineExt`]: the methods that add a stage to a pipeline, a stage of
//! your own (stackful, stackless, any [`Resumable`]) or a ready-made one.

use std::borrow::Cow;

use super::ready_made::{self, ByteLines, Lines, LossyLines, Windowed, Words};
use super::result::ValueCell;
use super::{
    BoxError, PipelineItem, Scope, ScopedStage, Stage, StageResult, StageReturn, Upstream,
};
use crate::coroutine::{Builder, Coroutine, Yielder};
use crate::resumable::Resumable;

/// Adds stages to a pipeline: an `Iterator<Item = Result<T, StageError>>`.
///
/// Implemented for every such iterator; start one with [`source`](super::source).
pub trait PipelineExt<T>: Iterator<Item = PipelineItem<T>> + Sized {
    /// Adds a stackful stage named `name`: `body` pulls items from `up` (an
    /// [`Upstream`], a plain iterator) and suspends with items for the next
    /// stage, from any depth of its call stack. It returns `()` or
    /// `Result<(), E>` ([`StageReturn`]).
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
        R: StageReturn + 'static,
        F: FnOnce(&Yielder<(), Out>, Upstream<Self>) -> R + 'static,
    {
        let name = name.into();
        let builder = Builder::new().name(name.clone());
        self.stage_with(name, move |up| builder.build(move |co, ()| body(co, up)))
    }

    /// Adds a stackful stage like [`stage`](PipelineExt::stage) whose body
    /// returns a value (a count, a summary), read from the [`StageResult`]
    /// that comes back next to the stage once the stream has ended. The
    /// body cannot fail by returning; for that, see
    /// [`try_stage_returning`](PipelineExt::try_stage_returning).
    ///
    /// Counting the lines of a log that are not UTF-8, while handing the
    /// others on:
    ///
    /// ```
    /// use cogen::pipeline::{PipelineExt, read_chunks};
    ///
    /// let log: &[u8] = b"GET /a 200\nGET /\xff 404\nPOST /b 500\n";
    /// let (requests, skipped) = read_chunks(log, 8)
    ///     .byte_lines()
    ///     .stage_returning("utf8", |co, up| {
    ///         let mut skipped = 0u64;
    ///         for line in up {
    ///             match String::from_utf8(line) {
    ///                 Ok(line) => co.suspend(line),
    ///                 Err(_) => skipped += 1,
    ///             }
    ///         }
    ///         skipped
    ///     });
    /// let mut statuses = Vec::new();
    /// for request in requests {
    ///     statuses.push(request.unwrap().rsplit(' ').next().unwrap().to_owned());
    /// }
    /// assert_eq!(statuses, ["200", "500"]);
    /// assert_eq!(skipped.take(), Some(1));
    /// ```
    ///
    /// # Panics
    /// If no stack can be mapped, like [`Coroutine::new`].
    #[track_caller]
    #[must_use = "pipelines are lazy and do nothing unless pulled"]
    fn stage_returning<Out, R, F>(
        self,
        name: impl Into<Cow<'static, str>>,
        body: F,
    ) -> (Stage<Coroutine<(), Out>>, StageResult<R>)
    where
        Self: 'static,
        Out: 'static,
        R: 'static,
        F: FnOnce(&Yielder<(), Out>, Upstream<Self>) -> R + 'static,
    {
        let value = ValueCell::default();
        let slot = value.clone();
        let stage = self.stage(name, move |co, up| slot.set(Some(body(co, up))));
        let result = StageResult::new(value, stage.failure().clone());
        (stage, result)
    }

    /// Like [`stage_returning`](PipelineExt::stage_returning), for a body
    /// that returns `Result<R, E>`: `Ok(value)` is the value, and `Err`
    /// fails the stage like an `Err` from a [`stage`](PipelineExt::stage)
    /// (the consumer gets a [`StageError`](super::StageError) naming it;
    /// the result's state is [`Failed`](super::ResultState::Failed)).
    ///
    /// ```
    /// use cogen::pipeline::{PipelineExt, ResultState, source};
    ///
    /// let (stage, total) = source(["1", "x"]).try_stage_returning("sum", |co, up| {
    ///     let mut total = 0u32;
    ///     for text in up {
    ///         total += text.parse::<u32>()?;
    ///         co.suspend(total);
    ///     }
    ///     Ok::<_, std::num::ParseIntError>(total)
    /// });
    /// let items: Vec<_> = stage.collect();
    /// assert_eq!(items[0].as_ref().unwrap(), &1);
    /// assert_eq!(items[1].as_ref().unwrap_err().stage(), "sum");
    /// assert_eq!(total.state(), ResultState::Failed);
    /// assert_eq!(total.take(), None);
    /// ```
    ///
    /// # Panics
    /// If no stack can be mapped, like [`Coroutine::new`].
    #[track_caller]
    #[must_use = "pipelines are lazy and do nothing unless pulled"]
    #[allow(clippy::type_complexity)]
    fn try_stage_returning<Out, R, E, F>(
        self,
        name: impl Into<Cow<'static, str>>,
        body: F,
    ) -> (Stage<Coroutine<(), Out, Result<(), E>>>, StageResult<R>)
    where
        Self: 'static,
        Out: 'static,
        R: 'static,
        E: Into<BoxError> + 'static,
        F: FnOnce(&Yielder<(), Out>, Upstream<Self>) -> Result<R, E> + 'static,
    {
        let value = ValueCell::default();
        let slot = value.clone();
        let stage = self.stage(name, move |co, up| {
            body(co, up).map(|returned| slot.set(Some(returned)))
        });
        let result = StageResult::new(value, stage.failure().clone());
        (stage, result)
    }

    /// Adds a stackful stage like [`stage`](PipelineExt::stage), inside a
    /// [`scope`](fn@super::scope): its body may borrow from the function that
    /// called `scope` (push into a local `Vec`, bump a local counter), and
    /// the scope closes the stage before it returns. The items and the
    /// body's return value are owned (`'static`) types; the body and its
    /// upstream need only outlive the scope, so scoped stages chain. As with
    /// [`std::thread::scope`], a body borrows for the whole scope: two
    /// stages that change one local share it through a `Cell` or `RefCell`.
    ///
    /// ```
    /// use cogen::pipeline::{self, PipelineExt, source};
    ///
    /// let stop_words = ["the", "a"];
    /// let mut dropped = Vec::new();
    /// let kept: Vec<String> = pipeline::scope(|s| {
    ///     source(["the cat", "a hat"])
    ///         .words()
    ///         .stage_in(s, "filter", |co, up| {
    ///             for word in up {
    ///                 if stop_words.contains(&word.as_str()) {
    ///                     dropped.push(word);
    ///                 } else {
    ///                     co.suspend(word);
    ///                 }
    ///             }
    ///         })
    ///         .collect::<Result<_, _>>()
    ///         .unwrap()
    /// });
    /// assert_eq!(kept, ["cat", "hat"]);
    /// assert_eq!(dropped, ["the", "a"]);
    /// ```
    ///
    /// # Panics
    /// If no stack can be mapped, like [`Coroutine::new`].
    #[track_caller]
    #[must_use = "pipelines are lazy and do nothing unless pulled"]
    fn stage_in<'scope, Out, R, F>(
        self,
        scope: &'scope Scope<'scope, '_>,
        name: impl Into<Cow<'static, str>>,
        body: F,
    ) -> ScopedStage<'scope, Out, R>
    where
        Self: 'scope,
        Out: 'static,
        R: StageReturn + 'static,
        F: FnOnce(&Yielder<(), Out>, Upstream<Self>) -> R + 'scope,
    {
        let name = name.into();
        let builder = Builder::new().name(name.clone());
        self.stage_with(name, move |up| {
            scope.start(builder, move |co, ()| body(co, up))
        })
    }

    /// Adds a stage named `name` run by any [`Resumable`] generator that
    /// `make` builds around the stage's [`Upstream`]: a stackful coroutine
    /// with a custom [`Builder`], a boxed one, or a stackless one.
    #[must_use = "pipelines are lazy and do nothing unless pulled"]
    fn stage_with<G, F>(self, name: impl Into<Cow<'static, str>>, make: F) -> Stage<G>
    where
        F: FnOnce(Upstream<Self>) -> G,
        G: Resumable<()>,
        G::Return: StageReturn,
    {
        Stage::after(self, name, make)
    }

    /// Adds a stackless stage (feature `nightly`): `make` receives the
    /// stage's [`Upstream`] and returns a `#[coroutine]` closure that pulls
    /// from it and `yield`s items. Stackless and stackful stages mix freely.
    ///
    /// Each such stage is a coroutine of its own, which catches its body's
    /// panics and is checked for its upstream's failure on every item; a run
    /// of stages that are plain iterators (`gen` blocks) costs fewer
    /// instructions per item as an [`InlineChain`](super::InlineChain)
    /// ([`inline_stage`](PipelineExt::inline_stage)).
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
    #[cfg(cogen_nightly)]
    #[must_use = "pipelines are lazy and do nothing unless pulled"]
    fn stackless_stage<C, F>(
        self,
        name: impl Into<Cow<'static, str>>,
        make: F,
    ) -> Stage<crate::stackless::Stackless<C>>
    where
        F: FnOnce(Upstream<Self>) -> C,
        C: std::ops::Coroutine<(), Return: StageReturn> + Unpin,
    {
        let name = name.into();
        let label = name.clone();
        self.stage_with(name, move |up| {
            crate::stackless::Stackless::new(make(up)).with_name(label)
        })
    }

    /// Starts an [`InlineChain`](super::InlineChain) after this pipeline,
    /// with a stage named `name`: `make` receives the stage's input (the
    /// items of this pipeline, an [`InlineInput`](super::InlineInput)) and
    /// returns the stage's iterator, a nightly `gen` block or an iterator
    /// adapter. Stages added to the chain with
    /// [`InlineChain::inline_stage`](super::InlineChain::inline_stage) run
    /// behind one catch, inlined into the consumer's loop; see
    /// [`InlineChain`](super::InlineChain) for how their panics are reported.
    ///
    /// ```
    /// use cogen::pipeline::{PipelineExt, source};
    ///
    /// let out: Vec<u32> = source(1..=4)
    ///     .stage("tens", |co, up| up.for_each(|x| co.suspend(x * 10)))
    ///     .inline_stage("big", |up| up.filter(|&x| x > 15))
    ///     .inline_stage("plus one", |up| up.map(|x| x + 1))
    ///     .collect::<Result<_, _>>()
    ///     .unwrap();
    /// assert_eq!(out, [21, 31, 41]);
    /// ```
    #[must_use = "pipelines are lazy and do nothing unless pulled"]
    fn inline_stage<K, F>(
        self,
        name: impl Into<Cow<'static, str>>,
        make: F,
    ) -> super::InlineChain<K::IntoIter>
    where
        F: FnOnce(super::InlineInput<super::PipelineInput<Self>>) -> K,
        K: IntoIterator,
    {
        super::inline::after(self, name.into(), make)
    }

    /// Splits a stream of byte chunks (from
    /// [`read_chunks`](super::read_chunks), say) into lines, without their
    /// `\n` or `\r\n`; a last line with no `\n` after it is kept whole, a
    /// final `\r` included, as [`BufRead::lines`](std::io::BufRead::lines)
    /// does. A line may span any number of chunks, and a chunk may
    /// hold any number of lines; memory use is one chunk plus the longest
    /// line. A line that is not UTF-8 fails the stage (named `"lines"`) with
    /// [`InvalidUtf8`](super::InvalidUtf8), which ends the pipeline: for
    /// input that may hold raw bytes (logs), use
    /// [`byte_lines`](PipelineExt::byte_lines) or
    /// [`lossy_lines`](PipelineExt::lossy_lines).
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
        self.stage("lines", |co, up| ready_made::split_lines(co, up))
    }

    /// Splits a stream of byte chunks into lines of bytes, split like
    /// [`lines`](PipelineExt::lines) (at `\n`, without the `\n` or `\r\n`)
    /// but never checked for UTF-8: each line is a `Vec<u8>`, whatever it
    /// holds.
    ///
    /// ```
    /// use cogen::pipeline::{PipelineExt, source};
    ///
    /// let chunks = [&b"ok\r\nbad \xff"[..], b"\nlast"];
    /// let lines: Vec<Vec<u8>> = source(chunks).byte_lines().collect::<Result<_, _>>().unwrap();
    /// assert_eq!(lines, [&b"ok"[..], b"bad \xff", b"last"]);
    /// ```
    #[track_caller]
    #[must_use = "pipelines are lazy and do nothing unless pulled"]
    fn byte_lines(self) -> ByteLines
    where
        Self: 'static,
        T: AsRef<[u8]>,
    {
        self.stage("byte_lines", |co, up| ready_made::split_byte_lines(co, up))
    }

    /// Splits a stream of byte chunks into lines like
    /// [`lines`](PipelineExt::lines), but replaces each invalid UTF-8
    /// sequence with U+FFFD (as [`String::from_utf8_lossy`] does) instead of
    /// failing. A character split between two chunks is decoded whole.
    ///
    /// ```
    /// use cogen::pipeline::{PipelineExt, source};
    ///
    /// let chunks = [&b"caf\xc3"[..], b"\xa9\nbad \xff\n"];
    /// let lines: Vec<String> = source(chunks).lossy_lines().collect::<Result<_, _>>().unwrap();
    /// assert_eq!(lines, ["café", "bad \u{FFFD}"]);
    /// ```
    #[track_caller]
    #[must_use = "pipelines are lazy and do nothing unless pulled"]
    fn lossy_lines(self) -> LossyLines
    where
        Self: 'static,
        T: AsRef<[u8]>,
    {
        self.stage("lossy_lines", |co, up| {
            ready_made::split_lossy_lines(co, up)
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
        self.stage("words", |co, up| ready_made::split_words(co, up))
    }

    /// Aggregates consecutive windows of `size` items with `aggregate`: many
    /// items in, one out. The last window may be shorter. Room for a window
    /// is taken as its items come, so a `size` larger than the stream costs
    /// nothing for the items that never come.
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
    fn windowed<O, F>(self, size: usize, aggregate: F) -> Windowed<O>
    where
        Self: 'static,
        O: 'static,
        F: FnMut(&[T]) -> O + 'static,
    {
        assert!(size > 0, "windowed: the window size must be at least 1");
        self.stage("windowed", move |co, up| {
            ready_made::aggregate_windows(co, up, size, aggregate)
        })
    }
}

impl<T, I: Iterator<Item = PipelineItem<T>>> PipelineExt<T> for I {}
