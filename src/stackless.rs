//! Nightly stackless coroutines with cogen's semantics (feature `nightly`).
//!
//! Rust nightly compiles a `#[coroutine]` closure into a state machine that
//! implements [`std::ops::Coroutine`]: no stack of its own, no switch, just
//! a function call per resume, but it can only `yield` from its own body,
//! not from functions it calls. [`Stackless`] wraps one so that it behaves
//! exactly like a stackful [`Coroutine`](crate::Coroutine) through the
//! [`Resumable`] trait:
//!
//! * a panic in the body comes back as [`ResumeError::Panicked`], and the
//!   coroutine is dead afterwards; so does a panic of the destructor of a
//!   coroutine that has just returned (a hand-written `std::ops::Coroutine`
//!   may keep values until it is dropped), and its return value is lost;
//!   an unwinding that is not a panic but on its way to an enclosing root
//!   or scope (a stackful coroutine being closed around this one, an event
//!   loop's [`timeout`](crate::event_loop::timeout()) whose deadline passes
//!   during a wait in the body or in a destructor that `close` runs) goes
//!   on through `resume` and `close`, as it does through a stackful
//!   coroutine, and leaves the coroutine dead;
//! * resuming it after it returned or panicked gives [`ResumeError::Dead`]
//!   with the input handed back, never std's "coroutine resumed after
//!   completion" panic;
//! * [`close`](Stackless::close) (and `Drop`) drops the values alive in the
//!   suspended body, each destructor once.
//!
//! So generators ([`Generator`]), delegation, and both kinds of
//! [`pipeline`](crate::pipeline) take stackless coroutines as they take
//! stackful ones, and mix them.
//!
//! ```
//! #![feature(coroutines, coroutine_trait, stmt_expr_attributes)]
//! use cogen::stackless::Stackless;
//! use cogen::{CoroutineResult, ResumeError};
//!
//! let mut co = Stackless::new(#[coroutine] |a: i32| {
//!     let b = yield a + 1;
//!     a * b
//! });
//! assert_eq!(co.resume(10).unwrap(), CoroutineResult::Yield(11));
//! assert_eq!(co.resume(3).unwrap(), CoroutineResult::Return(30));
//! assert!(matches!(co.resume(7), Err(ResumeError::Dead(7))));
//! ```
//!
//! # Pinning
//!
//! A plain `#[coroutine]` closure cannot hold borrows of its own locals
//! across a `yield`, so it is [`Unpin`] and [`Stackless::new`] keeps it
//! inline, with no allocation. A `static` coroutine, which may hold such
//! borrows, must not move once started: [`Stackless::pinned`] boxes it.
//!
//! # Threads
//!
//! A stackless coroutine keeps its state in the value itself, and the
//! compiler knows what that state holds, so `Stackless<C>` is [`Send`]
//! exactly when `C` is: unlike a stackful coroutine, it can move to another
//! thread between resumes.
//!
//! # Status
//!
//! A stackless coroutine has no stack to register, so while it runs
//! [`running()`](crate::running) still names the stackful coroutine (if any)
//! that resumed it, and it has no [`CoroutineHandle`](crate::CoroutineHandle).

use std::borrow::Cow;
use std::fmt;
use std::ops::{Coroutine as StdCoroutine, CoroutineState};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;

use crate::coroutine::{CoroutineResult, Status};
use crate::error::{Panic, ResumeError};
use crate::generator::Generator;
use crate::resumable::Resumable;

/// A stackless coroutine (any [`std::ops::Coroutine`]) with cogen's resume,
/// status, close and error semantics. See the [module docs](self).
pub struct Stackless<C> {
    /// `None` once the coroutine has finished, panicked or been closed.
    co: Option<C>,
    /// The name and the death message, out of line: `None` until either is
    /// set, so that `new` does not allocate. Only the cold paths read it,
    /// and they take it by value (see [`record_death`]): a reference into
    /// `self` handed to an out-of-line function would keep whatever holds
    /// this coroutine (a caller's loop counter beside it, the other stages
    /// of a pipeline) in memory on the hot path too.
    cold: Option<Box<Cold>>,
}

/// What a [`Stackless`] keeps out of line.
#[derive(Default)]
struct Cold {
    name: Option<Cow<'static, str>>,
    /// The message of the panic that killed it, until `close` reports it.
    death: Option<Box<str>>,
}

impl Cold {
    fn name(cold: &Option<Box<Cold>>) -> Option<Cow<'static, str>> {
        cold.as_ref().and_then(|cold| cold.name.clone())
    }
}

impl<C: Unpin> Stackless<C> {
    /// Wraps a movable (`Unpin`) stackless coroutine, such as a plain
    /// `#[coroutine]` closure, without allocating.
    #[inline]
    pub fn new(co: C) -> Self {
        Stackless {
            co: Some(co),
            cold: None,
        }
    }
}

impl<C> Stackless<Pin<Box<C>>> {
    /// Wraps a coroutine that must not move once started (a `static`
    /// `#[coroutine]` closure, which may borrow its own locals across a
    /// `yield`) by pinning it on the heap.
    ///
    /// ```
    /// #![feature(coroutines, coroutine_trait, stmt_expr_attributes)]
    /// let mut co = cogen::stackless::Stackless::pinned(#[coroutine] static || {
    ///     let data = [1, 2, 3];
    ///     for x in &data {
    ///         yield *x; // a borrow of `data` lives across the yield
    ///     }
    /// });
    /// assert_eq!(co.resume(()).unwrap().as_yield(), Some(1));
    /// ```
    pub fn pinned(co: C) -> Self {
        Stackless {
            co: Some(Box::pin(co)),
            cold: None,
        }
    }
}

impl<C> Stackless<C> {
    /// Gives the coroutine a name, reported by its panics and by the
    /// pipeline stages it runs in.
    pub fn with_name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.cold.get_or_insert_default().name = Some(name.into());
        self
    }

    /// The name given by [`with_name`](Stackless::with_name), if any.
    pub fn name(&self) -> Option<&str> {
        self.cold.as_ref().and_then(|cold| cold.name.as_deref())
    }

    /// [`Status::Suspended`] or [`Status::Dead`].
    #[inline]
    pub fn status(&self) -> Status {
        if self.co.is_some() {
            Status::Suspended
        } else {
            Status::Dead
        }
    }

    /// True once the coroutine has returned, panicked or been closed.
    #[inline]
    pub fn is_dead(&self) -> bool {
        self.co.is_none()
    }

    /// Drops the suspended coroutine's state, running the destructor of each
    /// value alive in its body once, and leaves it dead: like
    /// [`Coroutine::close`](crate::Coroutine::close), it reports a panicking
    /// destructor, or the panic that killed the coroutine if no `close` has
    /// reported it yet. Closing twice is fine.
    pub fn close(&mut self) -> Result<(), Panic> {
        match self.co.take() {
            Some(co) => {
                drop_caught(Some(co)).map_err(|payload| Panic::new(payload, Cold::name(&self.cold)))
            }
            None => match self.cold.as_mut().and_then(|cold| cold.death.take()) {
                Some(message) => Err(Panic::new(
                    Box::new(String::from(message)),
                    Cold::name(&self.cold),
                )),
                None => Ok(()),
            },
        }
    }

    /// Runs the coroutine until it yields or returns; see
    /// [`Coroutine::resume`](crate::Coroutine::resume) for the results.
    #[inline(always)]
    pub fn resume<Input>(
        &mut self,
        input: Input,
    ) -> Result<CoroutineResult<C::Yield, C::Return>, ResumeError<Input>>
    where
        C: StdCoroutine<Input> + Unpin,
    {
        let Some(co) = self.co.as_mut() else {
            return Err(ResumeError::Dead(input));
        };
        // `std`'s catch_unwind directly: `crate::catch_unwind` re-wraps the
        // result, which costs a copy through memory on every resume.
        match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(co).resume(input))) {
            Ok(CoroutineState::Yielded(value)) => Ok(CoroutineResult::Yield(value)),
            Ok(CoroutineState::Complete(value)) => match self.drop_finished() {
                Ok(()) => Ok(CoroutineResult::Return(value)),
                Err(panic) => {
                    // Nobody will see the return value: a second panic, from
                    // its own destructor, is lost; the first is reported.
                    let _ = drop_caught(Some(value));
                    Err(ResumeError::Panicked(panic))
                }
            },
            Err(payload) => Err(ResumeError::Panicked(self.died(payload))),
        }
    }

    /// Drops the coroutine that has just returned. That runs user code (a
    /// hand-written `std::ops::Coroutine` may keep values until it is
    /// dropped), so a panic there is caught and, like a panic of the body,
    /// is this resume's error: `resume` never panics itself.
    #[inline]
    fn drop_finished(&mut self) -> Result<(), Panic> {
        drop_caught(self.co.take()).map_err(|payload| self.died(payload))
    }

    /// Records the panic that killed the coroutine (the unwinding already
    /// dropped the body's locals; what is left of the state machine is
    /// "poisoned" and must never be resumed again).
    #[inline(always)]
    fn died(&mut self, payload: Payload) -> Panic {
        // What is left may still hold values (a hand-written coroutine's):
        // a panic of their destructors is secondary to the body's, and lost.
        let _ = drop_caught(self.co.take());
        let (cold, death) = record_death(payload, self.cold.take());
        self.cold = cold;
        match death {
            Ok(panic) => panic,
            Err(payload) => resume_unwind(payload),
        }
    }
}

/// The message and the [`Panic`] of a coroutine's death: out of line, and
/// with the coroutine's cold part by value rather than a reference into it.
/// `Err` hands back a payload that is not this coroutine's panic but an
/// unwinding on its way to an enclosing root or scope, which must go on:
/// the forced unwind of a stackful coroutine being closed around this one
/// (which was resumed from its body), or an event loop's `timeout` whose
/// deadline passed during a wait in the body.
#[cold]
#[inline(never)]
fn record_death(
    payload: Payload,
    cold: Option<Box<Cold>>,
) -> (Option<Box<Cold>>, Result<Panic, Payload>) {
    if crate::coroutine::passes_through(&*payload) {
        return (cold, Err(payload));
    }
    let mut cold = cold.unwrap_or_default();
    cold.death = Some(crate::error::payload_message(&*payload).into());
    let panic = Panic::new(payload, cold.name.clone());
    (Some(cold), Ok(panic))
}

#[cold]
#[inline(never)]
fn resume_unwind(payload: Payload) -> ! {
    std::panic::resume_unwind(payload)
}

/// A panic's payload, as `catch_unwind` gives it.
type Payload = Box<dyn std::any::Any + Send>;

/// Drops a finished or closed coroutine (or any value nobody will see),
/// catching a panic of its destructor; an unwinding on its way to an
/// enclosing root or scope (a destructor's wait that a `timeout` ends) goes
/// on, as [`crate::catch_unwind`] lets it. Out of line, and by value: it
/// runs once per coroutine, and an inlined `catch_unwind` (or a reference
/// into the caller) would keep the state of every coroutine it is inlined
/// into in memory on the hot path too.
#[cold]
#[inline(never)]
fn drop_caught<C>(co: Option<C>) -> Result<(), Payload> {
    crate::catch_unwind(AssertUnwindSafe(move || drop(co)))
}

impl<Input, C: StdCoroutine<Input> + Unpin> Resumable<Input> for Stackless<C> {
    type Yield = C::Yield;
    type Return = C::Return;

    #[inline(always)]
    fn resume(
        &mut self,
        input: Input,
    ) -> Result<CoroutineResult<C::Yield, C::Return>, ResumeError<Input>> {
        Stackless::resume(self, input)
    }

    #[inline]
    fn status(&self) -> Status {
        Stackless::status(self)
    }

    #[inline]
    fn is_dead(&self) -> bool {
        Stackless::is_dead(self)
    }

    fn close(&mut self) -> Result<(), Panic> {
        Stackless::close(self)
    }

    fn name(&self) -> Option<&str> {
        Stackless::name(self)
    }
}

impl<C> fmt::Debug for Stackless<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stackless")
            .field("name", &self.name())
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

/// A stackless generator: an [`Iterator`] over what a `#[coroutine]`
/// closure without input yields, with its return value kept for
/// [`Generator::return_value`].
///
/// ```
/// #![feature(coroutines, coroutine_trait, stmt_expr_attributes)]
/// let mut evens = cogen::stackless::generator(#[coroutine] || {
///     for i in 0..4 {
///         yield i * 2;
///     }
///     "done"
/// });
/// assert_eq!(evens.by_ref().collect::<Vec<_>>(), [0, 2, 4, 6]);
/// assert_eq!(evens.return_value(), Some(&"done"));
/// ```
pub fn generator<C>(co: C) -> Generator<Stackless<C>>
where
    C: StdCoroutine<()> + Unpin,
{
    Generator::new(Stackless::new(co))
}
