//! Typed stackful coroutines with Lua 5.4's semantics.
//!
//! # Design
//!
//! A [`Coroutine`] is a corosensei coroutine on a [pooled stack](crate::stack)
//! plus a small `Meta` record, kept at the top of that stack. Everything Lua
//! can ask about a coroutine is derived from those two, so the hot path
//! stays almost the raw switch:
//!
//! * **Running.** Nothing is recorded on a switch. The coroutine running
//!   on this thread is the one whose stack holds the stack pointer (the
//!   [`stack`](crate::stack) layer knows every stack the thread has
//!   mapped), and the one that resumed it is the one whose stack holds the
//!   resumer's stack pointer, which corosensei keeps near the base of the
//!   resumed stack anyway. A `Meta` lives at the top of its coroutine's own
//!   stack, not in the movable `Coroutine` value, so it is found from the
//!   stack alone, and the chain reads right even when the owner moves a
//!   coroutine that is suspended inside a nested one. [`running`],
//!   [`is_yieldable`] and handles read the chain when asked; `resume` is
//!   corosensei's switch and nothing else.
//! * **Status.** The owner of a `Coroutine` can only see it suspended or
//!   dead (while it runs, `resume` holds `&mut self`), so [`Coroutine::status`]
//!   is read off corosensei's `done()`. A [`CoroutineHandle`], allocated on
//!   first request, records only *dead*; it derives *running* (its
//!   coroutine's stack runs) and *normal* (it is further down the chain)
//!   when asked, so handles cost the switch nothing.
//! * **Panics.** The body runs inside `catch_unwind` at the root of its own
//!   stack, once per coroutine rather than once per switch; a panic becomes
//!   the body's result `Err(payload)`, which `resume` turns into
//!   [`ResumeError::Panicked`].
//! * **Close.** corosensei unwinds a suspended coroutine by panicking out of
//!   `suspend` with a private payload. That payload, too, ends at the root's
//!   `catch_unwind`, whose `Err` corosensei's close then discards: one unwind,
//!   as in raw corosensei. If it ends at the root of a *nested* coroutine (an
//!   enclosing coroutine suspended from inside it), `resume` recognises it by
//!   its type and lets it go on. [`catch_unwind`] uses the same test, so
//!   bodies can catch their own panics without swallowing a close
//!   (corosensei issue 57). The event loop's `timeout` leaves its scope by
//!   an unwinding that crosses nested roots the same way (`ScopeExit`).
//!
//! # Files
//!
//! This file holds [`Status`] and [`Coroutine`]; the rest is one concept per
//! file:
//!
//! | file | what it owns |
//! |---|---|
//! | `chain.rs` | `Meta`, reading the chain of running coroutines, [`running`], [`is_yieldable`], [`CoroutineHandle`] |
//! | `probe.rs` | what cogen learns once about corosensei's private layout: the close's payload type, where the link to the resumer lies |
//! | `raw.rs` | `Raw`, the corosensei coroutine both kinds share: its root, resume, close and drop |
//! | `unwind.rs` | telling a close's (or a scope's) unwinding from a panic: [`is_close_unwind`], [`catch_unwind`] |
//! | `yielder.rs` | [`Yielder`], the body's side |
//! | `builder.rs` | [`Builder`]: stack size and name, and the constructors |
//! | `scoped.rs` | [`ScopedCoroutine`] and [`ScopedRef`], coroutines that borrow |
//! | `overflow.rs` | the description of a stack overflow that the [`stack`](crate::stack) layer's handler prints |

use std::fmt;

pub use corosensei::CoroutineResult;

mod builder;
mod chain;
mod overflow;
mod probe;
mod raw;
mod scoped;
mod unwind;
mod yielder;

pub use builder::Builder;
pub use chain::{CoroutineHandle, is_yieldable, running};
/// For the event loop's time limits, which belong to the stack they are set on.
pub(crate) use chain::{StackId, chain, stack_of, stack_pointer};
pub use scoped::{ScopedCoroutine, ScopedRef};
pub(crate) use unwind::ScopeExit;
/// For `Stackless` and the pipelines' inline chains, which let the same
/// unwindings through as `Raw` does.
pub(crate) use unwind::passes_through;
pub use unwind::{catch_unwind, is_close_unwind};
pub use yielder::Yielder;

use crate::error::{Panic, ResumeError};
use raw::Raw;

/// The state of a coroutine, with Lua's four meanings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// Created and not yet resumed, or stopped in [`Yielder::suspend`].
    Suspended,
    /// Running: only code inside the coroutine can see this state.
    Running,
    /// Alive but not running: it has resumed another coroutine and waits for
    /// it to yield or return.
    Normal,
    /// Finished: it returned, panicked, or was closed. It cannot be resumed.
    Dead,
}

impl Status {
    /// The name Lua's `coroutine.status` gives this state: `"suspended"`,
    /// `"running"`, `"normal"` or `"dead"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Suspended => "suspended",
            Status::Running => "running",
            Status::Normal => "normal",
            Status::Dead => "dead",
        }
    }
}

/// Prints Lua's name for the state, as [`Status::as_str`].
impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A typed stackful coroutine: Lua's `coroutine.create`.
///
/// `Input` is what each [`resume`](Coroutine::resume) passes in, `Yield` what
/// [`Yielder::suspend`] passes out, and `Return` what the body returns.
///
/// ```
/// use cogen::{Coroutine, CoroutineResult};
///
/// // Lua: co = coroutine.create(function(a, b) local c, d = coroutine.yield(a + b) return c * d end)
/// let mut co = Coroutine::new(|co, (a, b): (i32, i32)| {
///     let (c, d) = co.suspend(a + b);
///     c * d
/// });
/// assert_eq!(co.resume((1, 2)).unwrap(), CoroutineResult::Yield(3));
/// assert_eq!(co.resume((4, 5)).unwrap(), CoroutineResult::Return(20));
/// assert_eq!(co.resume((0, 0)).unwrap_err().into_input(), Some((0, 0))); // dead
/// ```
///
/// # Resuming a running coroutine
///
/// Lua raises "cannot resume non-suspended coroutine" at run time. In cogen
/// this does not compile: `resume` takes `&mut self`, and the running
/// coroutine's owner is borrowed for as long as it runs.
///
/// # Threads
///
/// A coroutine is neither `Send` nor `Sync`: its stack may hold references to
/// thread-locals, and moving it to another thread would leave them dangling.
///
/// ```compile_fail
/// fn assert_send<T: Send>(_: T) {}
/// assert_send(cogen::Coroutine::<(), (), ()>::new(|_, ()| {}));
/// ```
///
/// # Drop
///
/// Dropping a suspended coroutine unwinds its stack: every value alive in
/// the body is dropped exactly once, as [`close`](Coroutine::close) does, but
/// any panic on the way is discarded. Its stack then goes back to the pool.
#[repr(C)] // `raw` first: see `Raw`
pub struct Coroutine<Input, Yield, Return = ()> {
    raw: Raw<Input, Yield, Return>,
    returned: Option<Return>,
}

impl<Input, Yield, Return> Coroutine<Input, Yield, Return> {
    /// Creates a coroutine running `body` on a pooled stack of the default
    /// size. Nothing runs until the first [`resume`](Coroutine::resume),
    /// whose input becomes the body's second argument.
    ///
    /// # Panics
    /// If no stack can be mapped, with a message that says why (see
    /// [`StackError`](crate::stack::StackError)); [`Builder::try_build`]
    /// returns the error instead.
    #[track_caller]
    pub fn new<F>(body: F) -> Self
    where
        F: FnOnce(&Yielder<Input, Yield>, Input) -> Return + 'static,
        Input: 'static,
        Yield: 'static,
        Return: 'static,
    {
        Builder::new().build(body)
    }

    /// Runs the coroutine until it suspends or returns: Lua's `coroutine.resume`.
    ///
    /// * `Ok(CoroutineResult::Yield(y))`: the body called `suspend(y)`.
    /// * `Ok(CoroutineResult::Return(r))`: the body returned `r`; the
    ///   coroutine is now dead.
    /// * `Err(ResumeError::Panicked(p))`: the body panicked; it is now dead.
    /// * `Err(ResumeError::Dead(input))`: it was already dead; `input` is
    ///   handed back.
    #[inline]
    pub fn resume(
        &mut self,
        input: Input,
    ) -> Result<CoroutineResult<Yield, Return>, ResumeError<Input>> {
        self.raw.resume(input)
    }

    /// [`Status::Suspended`] or [`Status::Dead`]: the owner cannot observe
    /// the coroutine while it runs. Use a [`handle`](Coroutine::handle) to see
    /// `Running` and `Normal` too.
    #[inline]
    pub fn status(&self) -> Status {
        self.raw.status()
    }

    /// True once the coroutine has returned, panicked or been closed.
    #[inline]
    pub fn is_dead(&self) -> bool {
        self.raw.inner.done()
    }

    /// Hints that this coroutine will be resumed soon: asks the CPU to
    /// start loading the top of its stack, which a resume reads first, so
    /// that the load overlaps whatever the caller does until then. It
    /// changes nothing the program can observe (on targets other than
    /// x86_64 it does nothing), and costs a handful of instructions.
    ///
    /// Worth calling where many coroutines are parked and resumed in turn:
    /// each parked coroutine's stack is a page of its own, and with
    /// thousands of them a resume finds neither that page's address
    /// translation nor its lines in the CPU's caches, and waits for both
    /// (the switch gives the CPU nothing else to do meanwhile). A scheduler
    /// that knows which coroutine comes a few resumes later hints at it
    /// now. Over 10,000 coroutines resumed in turn, hinting at the one 8
    /// places ahead took a resume from 125–400 ns to 35–44 ns on one host,
    /// and over 30,000 from 250–340 ns to 57–64 ns (the crate's
    /// `docs/BENCHMARKS.md`). With a few hundred coroutines their stacks
    /// stay cached and the hint buys nothing (on another host, an earlier
    /// experiment of this kind cost a little there): measure before
    /// keeping it.
    ///
    /// ```
    /// use cogen::Coroutine;
    ///
    /// let mut ring: Vec<Coroutine<u64, u64, ()>> = (0..100)
    ///     .map(|_| Coroutine::new(|co, mut x| loop { x = co.suspend(x + 1) }))
    ///     .collect();
    /// let mut total = 0;
    /// for round in 0..3 {
    ///     for i in 0..ring.len() {
    ///         ring[(i + 8) % ring.len()].prefetch();
    ///         total += ring[i].resume(round).unwrap().as_yield().unwrap();
    ///     }
    /// }
    /// assert_eq!(total, 100 * (1 + 2 + 3));
    /// ```
    #[inline(always)]
    pub fn prefetch(&self) {
        self.raw.prefetch();
    }

    /// An address at the top of the coroutine's stack, where its first
    /// resume reads, for the event loop's prefetch of a task that has not
    /// run yet.
    #[inline(always)]
    pub(crate) fn stack_top(&self) -> usize {
        self.raw.stack_top()
    }

    /// A cheap, cloneable handle that tells this coroutine's status from
    /// anywhere, including from inside it.
    pub fn handle(&self) -> CoroutineHandle {
        self.raw.meta().handle(self.is_dead())
    }

    /// The name given by the [`Builder`], if any.
    pub fn name(&self) -> Option<&str> {
        self.raw.meta().name.as_deref()
    }

    /// Lua 5.4's `coroutine.close`: unwinds a suspended coroutine, running
    /// every destructor on its stack once, and leaves it dead.
    ///
    /// Returns `Err` if the coroutine had died by a panic that no `close`
    /// has reported yet (the payload went to `resume`; this error carries
    /// its message), if a never-started body's captures panicked when
    /// dropped, or if the body caught the unwinding and then panicked.
    /// Closing a dead or never-started coroutine is fine, and so is closing
    /// twice.
    ///
    /// A destructor that panics *while* the suspended stack is being
    /// unwound aborts the process: Rust allows no panic during a panic,
    /// here as on a thread.
    pub fn close(&mut self) -> Result<(), Panic> {
        self.raw.close()
    }

    /// The value the body returned, when the coroutine was driven as an
    /// [`Iterator`] (whose items are only the yielded values).
    pub fn return_value(&self) -> Option<&Return> {
        self.returned.as_ref()
    }

    /// Takes the value the body returned while driven as an iterator.
    pub fn take_return_value(&mut self) -> Option<Return> {
        self.returned.take()
    }

    pub(crate) fn store_return(&mut self, value: Return) {
        self.returned = Some(value);
    }

    /// Forgets the death panic once it has been re-raised in the caller (by
    /// the iterator or `wrap`), so `close` does not report it a second time,
    /// as Lua's `wrap` closes a coroutine that failed.
    pub(crate) fn forget_panic(&mut self) {
        self.raw.death = None;
    }
}

impl<Input, Yield, Return> fmt::Debug for Coroutine<Input, Yield, Return> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Coroutine")
            .field("name", &self.name())
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}
