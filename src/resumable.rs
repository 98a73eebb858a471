//! One trait for everything that can be resumed: stackful and stackless
//! coroutines alike.
//!
//! [`Resumable<Input>`](Resumable) is the common shape of cogen's stackful
//! [`Coroutine`] (and a [`ScopedRef`] inside its scope) and, with the
//! `nightly` feature, of any `std::ops::Coroutine` wrapped in
//! [`Stackless`](crate::stackless::Stackless). Generators
//! ([`Generator`](crate::Generator), [`Yielder::delegate`](crate::Yielder::delegate))
//! and pipelines ([`pipeline`](crate::pipeline)) are written against this
//! trait, so they accept either kind and mix them freely.
//!
//! Every implementation keeps the same contract:
//!
//! * `resume` returns `Ok(Yield(y))` while the coroutine suspends,
//!   `Ok(Return(r))` once when it finishes, `Err(ResumeError::Panicked(_))`
//!   once if it panics (or a destructor that runs as it finishes does), and
//!   `Err(ResumeError::Dead(input))` for every resume after that, handing the
//!   input back. It never panics itself.
//! * `status` is [`Status::Suspended`] or [`Status::Dead`]: the owner cannot
//!   observe a coroutine while it runs.
//! * `close` drops whatever the suspended coroutine holds, running each
//!   destructor once, and leaves it dead.
//!
//! ```
//! use cogen::{Coroutine, CoroutineResult, Resumable, Status};
//!
//! // Works the same for any kind of coroutine.
//! fn drain<G: Resumable<(), Yield = u32>>(mut g: G) -> (u32, G::Return) {
//!     let mut sum = 0;
//!     loop {
//!         match g.resume(()).unwrap() {
//!             CoroutineResult::Yield(n) => sum += n,
//!             CoroutineResult::Return(r) => return (sum, r),
//!         }
//!     }
//! }
//! let co = Coroutine::new(|co, ()| {
//!     co.suspend(1);
//!     co.suspend(2);
//!     "end"
//! });
//! assert_eq!(drain(co), (3, "end"));
//! ```

use crate::coroutine::{Coroutine, CoroutineResult, ScopedRef, Status};
use crate::error::{Panic, ResumeError};

/// Something that can be resumed with an `Input`, yields `Yield`s and
/// finishes with a `Return`: a stackful [`Coroutine`], a [`ScopedRef`], or a
/// stackless coroutine wrapped in [`Stackless`](crate::stackless::Stackless).
///
/// See the [module docs](self) for the contract every implementation keeps.
pub trait Resumable<Input> {
    /// What the coroutine passes out when it suspends.
    type Yield;
    /// What the coroutine returns when it finishes.
    type Return;

    /// Runs the coroutine until it suspends or returns, like
    /// [`Coroutine::resume`].
    fn resume(
        &mut self,
        input: Input,
    ) -> Result<CoroutineResult<Self::Yield, Self::Return>, ResumeError<Input>>;

    /// [`Status::Suspended`] or [`Status::Dead`].
    fn status(&self) -> Status;

    /// True once the coroutine has returned, panicked or been closed.
    #[inline]
    fn is_dead(&self) -> bool {
        self.status() == Status::Dead
    }

    /// Drops what the suspended coroutine holds, running each destructor
    /// once, and leaves it dead, like [`Coroutine::close`]. Reports a panic
    /// of a destructor, or the panic that killed the coroutine if no `close`
    /// has reported it yet.
    fn close(&mut self) -> Result<(), Panic>;

    /// The coroutine's name, if it was given one.
    #[inline]
    fn name(&self) -> Option<&str> {
        None
    }

    /// Hints that the coroutine will be resumed soon, like
    /// [`Coroutine::prefetch`]: nothing the program can observe. Does
    /// nothing by default (a stackless coroutine's state is not a stack of
    /// its own).
    #[inline(always)]
    fn prefetch(&self) {}
}

/// `Resumable` for cogen's stackful types, by their inherent methods.
macro_rules! resumable_by_inherent_methods {
    ($($ty:ident $(<$lt:lifetime>)?),*) => {$(
        impl<Input, Yield, Return> Resumable<Input> for $ty<$($lt,)? Input, Yield, Return> {
            type Yield = Yield;
            type Return = Return;

            #[inline(always)]
            fn resume(
                &mut self,
                input: Input,
            ) -> Result<CoroutineResult<Yield, Return>, ResumeError<Input>> {
                $ty::resume(self, input)
            }

            #[inline]
            fn status(&self) -> Status {
                $ty::status(self)
            }

            #[inline]
            fn is_dead(&self) -> bool {
                $ty::is_dead(self)
            }

            fn close(&mut self) -> Result<(), Panic> {
                $ty::close(self)
            }

            fn name(&self) -> Option<&str> {
                $ty::name(self)
            }

            #[inline(always)]
            fn prefetch(&self) {
                $ty::prefetch(self)
            }
        }
    )*};
}

resumable_by_inherent_methods!(Coroutine, ScopedRef<'_>);

/// Forwards `Resumable` through a pointer to a resumable coroutine.
macro_rules! forward_resumable {
    ($($ptr:ty),*) => {$(
        impl<Input, G: Resumable<Input> + ?Sized> Resumable<Input> for $ptr {
            type Yield = G::Yield;
            type Return = G::Return;

            #[inline(always)]
            fn resume(
                &mut self,
                input: Input,
            ) -> Result<CoroutineResult<G::Yield, G::Return>, ResumeError<Input>> {
                (**self).resume(input)
            }

            #[inline]
            fn status(&self) -> Status {
                (**self).status()
            }

            #[inline]
            fn is_dead(&self) -> bool {
                (**self).is_dead()
            }

            fn close(&mut self) -> Result<(), Panic> {
                (**self).close()
            }

            fn name(&self) -> Option<&str> {
                (**self).name()
            }

            #[inline(always)]
            fn prefetch(&self) {
                (**self).prefetch()
            }
        }
    )*};
}

forward_resumable!(&mut G, Box<G>);
