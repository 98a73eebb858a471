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
//! Items flow between stages as [`PipelineItem<T>`], that is
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
//! A stage can also be any [`Resumable`](crate::Resumable) (see
//! [`PipelineExt::stage_with`]): with the `nightly` feature, a stackless
//! `#[coroutine]` closure through `PipelineExt::stackless_stage`, mixed
//! freely with stackful stages.
//!
//! # Raw bytes, results, borrows
//!
//! [`read_chunks`] reads any reader in chunks, and
//! [`lines`](PipelineExt::lines) splits them into `String` lines, failing at
//! the first line that is not UTF-8. For input that may hold raw bytes (a
//! log), [`byte_lines`](PipelineExt::byte_lines) hands each line on as a
//! `Vec<u8>` and [`lossy_lines`](PipelineExt::lossy_lines) replaces invalid
//! sequences with U+FFFD.
//!
//! Stage bodies are `'static`. One that sums something up (a count of the
//! lines it skipped) returns it through
//! [`stage_returning`](PipelineExt::stage_returning), whose
//! [`StageResult`] holds the value once the stream has ended:
//!
//! ```
//! use cogen::pipeline::{PipelineExt, read_chunks};
//!
//! let log: &[u8] = b"GET / 200\n\xff\xfe\nGET /a 404\n";
//! let (lines, skipped) = read_chunks(log, 4).byte_lines().stage_returning("utf8", |co, up| {
//!     let mut skipped = 0;
//!     for line in up {
//!         match String::from_utf8(line) {
//!             Ok(line) => co.suspend(line),
//!             Err(_) => skipped += 1,
//!         }
//!     }
//!     skipped
//! });
//! assert_eq!(lines.count(), 2);
//! assert_eq!(skipped.take(), Some(1));
//! ```
//!
//! Inside a [`scope()`], stages added with [`stage_in`](PipelineExt::stage_in)
//! may instead borrow the enclosing function's locals (push into a `Vec`,
//! bump a counter): the scope closes every such stage before it returns,
//! whatever happened to it (dropped, forgotten, a panic), as
//! [`std::thread::scope`] joins its threads.
//!
//! # Push pipelines
//!
//! A [`Sink`] is a consumer coroutine: its body reads items from its
//! [`SinkInput`] as if from an iterator, and is suspended whenever it needs
//! the next one.
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
//! returns `()` or `Result<(), E>`, see [`StageReturn`]). The pipeline
//! then hands the consumer `Err(`[`StageError`]`)` naming that stage, and
//! ends. The stages after the failed one see the end of their input (their
//! `Upstream` returns `None`); whatever they yield or return after that is
//! discarded, and they are closed. A failed producer ([`Push::feed`]) closes
//! the consumers and returns the error; a failed consumer's error comes back
//! from [`Push::finish`].
//!
//! A stage or consumer that waits inside an event-loop task can be unwound
//! mid-item by an unwinding on its way past it: a
//! [`timeout`](crate::event_loop::timeout()) around a pull or a send whose
//! deadline passes during that wait. The caller gets the timeout's
//! `Elapsed`; the stage is dead but unfinished, and says so: the next pull
//! gives one `StageError`, and the consumer is no longer open and fails
//! with it at [`Push::finish`].
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
//! Stackful stages that do little per item go faster handing on chunks:
//! a `Vec` of items per suspend costs one switch per chunk, and each
//! stage's loop over a chunk runs in its own frame, where the compiler
//! keeps it in registers (in `benches/pipeline.rs`, chunks of 64 took
//! about a third of the time per item of single items, `cogen_stackful_chunks`
//! against `cogen_stackful`):
//!
//! ```
//! use cogen::pipeline::{PipelineExt, source};
//!
//! let numbers: Vec<u64> = (0..1000).collect();
//! let chunks: Vec<Vec<u64>> = numbers.chunks(64).map(<[u64]>::to_vec).collect();
//! let total: u64 = source(chunks)
//!     .stage("odd squares", |co, up| {
//!         for mut chunk in up {
//!             chunk.retain(|x| x % 2 == 1);
//!             for x in &mut chunk {
//!                 *x *= *x;
//!             }
//!             co.suspend(chunk);
//!         }
//!     })
//!     .map(|chunk| chunk.map(|c| c.iter().sum::<u64>()))
//!     .sum::<Result<u64, _>>()
//!     .unwrap();
//! assert_eq!(total, (0..1000u64).filter(|x| x % 2 == 1).map(|x| x * x).sum());
//! ```
//!
//! # Inline chains
//!
//! Stages that are plain iterators (nightly `gen` blocks, or iterator
//! adapters) can run as an [`InlineChain`] ([`inline_source`],
//! [`PipelineExt::inline_stage`], [`InlineChain::inline_stage`],
//! [`InlineChain::try_inline_stage`]): still named, and a panic or an `Err`
//! of any of them still ends the stream with a [`StageError`] naming it,
//! but behind one catch at the chain's end rather than one coroutine per
//! stage, so the compiler can inline the whole chain into the consumer's
//! loop (37–38 instructions per item in `benches/pipeline.rs` against 30.5
//! for the same `gen` blocks written by hand, and as fast on some hosts).
//! What a chain gives up: a stage cannot suspend from a function it calls
//! (it is an iterator), and a panic unwinds the stages after it in the chain
//! instead of letting them see the end of their input.
//!
//! ```
//! use cogen::pipeline::{PipelineExt, inline_source};
//!
//! let mut chain = inline_source("numbers", 1..=4u32)
//!     .inline_stage("squares", |up| up.map(|x| x * x))
//!     .stage("running total", |co, up| {
//!         let mut total = 0;
//!         for x in up {
//!             total += x;
//!             co.suspend(total);
//!         }
//!     });
//! assert_eq!(chain.by_ref().map(Result::unwrap).collect::<Vec<_>>(), [1, 5, 14, 30]);
//! ```
//!
//! # Drop
//!
//! Each stage owns its upstream. Dropping a pipeline half way drops the last
//! stage, which unwinds its suspended coroutine (running every destructor
//! on it once) and so drops the stage before it, and so on to the source.
//! Dropping a [`Sink`] closes its consumer the same way. A scoped stage
//! ([`stage_in`](PipelineExt::stage_in)) is closed when dropped too; one
//! that was forgotten instead is closed when its [`scope()`] ends, the last
//! started first.

// One concept per file; the pull side first, then the push side:
// - error.rs: `StageError`, and `PipelineItem`, an item or the error that
//   ended the stream;
// - source.rs: the starts of pipelines (`source`, `read_chunks`);
// - upstream.rs: `Upstream`, a stage's input, and the slot through which it
//   reports the failure of the stage before;
// - stage.rs: `Stage`, the driver of one stage's coroutine, and
//   `StageReturn`, what a stage body may return;
// - ext.rs: `PipelineExt`, the methods that add stages;
// - inline.rs: `InlineChain`, stages that are plain iterators (`gen`
//   blocks) behind one catch, how it is built, pulled and folded;
//   inline/inputs.rs, what its stages read; inline/marks.rs, which stage
//   an unwinding left; inline/shared.rs, what the stages share with the
//   chain's end and which error that end hands on;
// - ready_made.rs: the ready-made stages (`lines`, `byte_lines`,
//   `lossy_lines`, `words`, `windowed`);
// - result.rs: `StageResult`, the value a stage returns, read after the
//   stream has ended;
// - scope.rs: `scope`, in which stages borrow from the enclosing function,
//   and why that is sound;
// - push.rs: `Push`, the consumer end of a push pipeline;
// - sink.rs: `Sink`, a consumer coroutine, and `SinkInput`, the items its
//   body reads;
// - tee.rs: fan-out to several consumers (`tee`, `Vec<Sink>`).

mod error;
mod ext;
mod inline;
mod push;
mod ready_made;
mod result;
mod scope;
mod sink;
mod source;
mod stage;
mod tee;
mod upstream;

pub use error::{BoxError, PipelineItem, StageError};
pub use ext::PipelineExt;
pub use inline::{Fallible, InlineChain, InlineInput, PipelineInput, inline_source};
pub(crate) use inline::{forget_marks_since, marks_now};
pub use push::Push;
pub use ready_made::{ByteLines, InvalidUtf8, Lines, LossyLines, Windowed, Words};
pub use result::{ResultState, StageResult};
pub use scope::{InScope, Scope, ScopedStage, scope};
pub use sink::{Sink, SinkInput};
pub use source::{ReadChunks, Source, read_chunks, source};
pub use stage::{Stage, StageReturn};
pub use tee::{Tee, tee};
pub use upstream::Upstream;
