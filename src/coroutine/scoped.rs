//! Coroutines that borrow from their caller's stack: [`ScopedCoroutine`] and
//! [`ScopedRef`], its handle inside the scope that makes the borrowing sound.

use std::fmt;
use std::marker::PhantomData;

use super::raw::Raw;
use super::{Builder, CoroutineHandle, CoroutineResult, Status, Yielder};
use crate::error::{Panic, ResumeError};

/// A coroutine whose body and values may borrow from the caller's stack.
///
/// It can only be resumed inside [`scope`](ScopedCoroutine::scope), which
/// drops it, unwinding its stack, before returning. That makes borrowing
/// sound by construction: a coroutine that borrows cannot be leaked with
/// `mem::forget` while its stack still holds those borrows (corosensei
/// issues 27, 59 and 60 show what goes wrong otherwise).
///
/// ```
/// use cogen::ScopedCoroutine;
///
/// let words = vec!["a", "bb", "ccc"];
/// let mut total = 0;
/// ScopedCoroutine::new(|co, ()| {
///     for w in &words {
///         total += w.len();
///         co.suspend(*w);
///     }
/// })
/// .scope(|co| {
///     assert_eq!(co.resume(()).unwrap().as_yield(), Some("a"));
///     assert_eq!(co.resume(()).unwrap().as_yield(), Some("bb"));
/// });
/// assert_eq!(total, 3); // the coroutine was dropped before "ccc"
/// ```
///
/// One that is never scoped still drops its body (and what the body
/// captured) when it is dropped, so what it borrows must outlive it, also
/// when it is dropped without ever running:
///
/// ```compile_fail,E0597
/// use cogen::ScopedCoroutine;
///
/// struct Reader<'a>(&'a Vec<u64>);
/// impl Drop for Reader<'_> {
///     fn drop(&mut self) {
///         let _sum: u64 = self.0.iter().sum(); // reads the borrowed Vec
///     }
/// }
/// let co;
/// let data = vec![1u64, 2, 3];
/// let reader = Reader(&data);
/// co = ScopedCoroutine::<(), (), ()>::new(move |_, ()| {
///     let _r = &reader;
/// });
/// // `data` is dropped before `co`, whose drop runs `Reader::drop`.
/// ```
pub struct ScopedCoroutine<'a, Input, Yield, Return = ()> {
    pub(super) raw: Raw<Input, Yield, Return>,
    pub(super) borrow: PhantomData<&'a mut ()>,
}

/// Empty, and needed: with a `Drop` of its own, the compiler requires what
/// the coroutine borrows (`'a`) to outlive it. Without one, the check saw
/// only `Raw`, whose type does not name the body's borrows, and let a
/// coroutine that was never scoped be dropped after the data its body
/// captured a reference to, which dropping the body then read.
impl<Input, Yield, Return> Drop for ScopedCoroutine<'_, Input, Yield, Return> {
    fn drop(&mut self) {}
}

impl<'a, Input, Yield, Return> ScopedCoroutine<'a, Input, Yield, Return> {
    /// Creates a scoped coroutine on a pooled stack of the default size.
    ///
    /// # Panics
    /// If no stack can be mapped, like [`Coroutine::new`](super::Coroutine::new).
    #[track_caller]
    pub fn new<F>(body: F) -> Self
    where
        F: FnOnce(&Yielder<Input, Yield>, Input) -> Return + 'a,
    {
        Builder::new().build_scoped(body)
    }

    /// Runs `f` with access to the coroutine, then drops the coroutine
    /// (unwinding it if it is still suspended) and returns `f`'s result.
    pub fn scope<T>(mut self, f: impl FnOnce(&mut ScopedRef<'_, Input, Yield, Return>) -> T) -> T {
        f(&mut ScopedRef { raw: &mut self.raw })
    }
}

impl<Input, Yield, Return> fmt::Debug for ScopedCoroutine<'_, Input, Yield, Return> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedCoroutine")
            .field("name", &self.raw.meta().name)
            .field("status", &self.raw.status())
            .finish_non_exhaustive()
    }
}

/// Access to a [`ScopedCoroutine`] inside its scope, with the same API as
/// [`Coroutine`](super::Coroutine).
pub struct ScopedRef<'s, Input, Yield, Return = ()> {
    raw: &'s mut Raw<Input, Yield, Return>,
}

impl<Input, Yield, Return> ScopedRef<'_, Input, Yield, Return> {
    /// See [`Coroutine::resume`](super::Coroutine::resume).
    #[inline]
    pub fn resume(
        &mut self,
        input: Input,
    ) -> Result<CoroutineResult<Yield, Return>, ResumeError<Input>> {
        self.raw.resume(input)
    }

    /// See [`Coroutine::status`](super::Coroutine::status).
    #[inline]
    pub fn status(&self) -> Status {
        self.raw.status()
    }

    /// See [`Coroutine::is_dead`](super::Coroutine::is_dead).
    #[inline]
    pub fn is_dead(&self) -> bool {
        self.raw.inner.done()
    }

    /// See [`Coroutine::prefetch`](super::Coroutine::prefetch).
    #[inline(always)]
    pub fn prefetch(&self) {
        self.raw.prefetch();
    }

    /// See [`Coroutine::name`](super::Coroutine::name).
    pub fn name(&self) -> Option<&str> {
        self.raw.meta().name.as_deref()
    }

    /// See [`Coroutine::handle`](super::Coroutine::handle).
    pub fn handle(&self) -> CoroutineHandle {
        self.raw.meta().handle(self.raw.inner.done())
    }

    /// See [`Coroutine::close`](super::Coroutine::close).
    pub fn close(&mut self) -> Result<(), Panic> {
        self.raw.close()
    }
}

impl<Input, Yield, Return> fmt::Debug for ScopedRef<'_, Input, Yield, Return> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedRef")
            .field("name", &self.raw.meta().name)
            .field("status", &self.raw.status())
            .finish_non_exhaustive()
    }
}
