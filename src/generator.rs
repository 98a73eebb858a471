//! Generators: coroutines that take no input, driven as [`Iterator`]s
//! (Lua's `coroutine.wrap` of a producer), and [`wrap`] for coroutines that do.
//!
//! * [`generator`] is the short constructor: `cogen::generator(|co| ...)`
//!   gives a `Coroutine<(), Yield, Return>`, which is an `Iterator` over what
//!   it yields, with its return value kept after the last item.
//! * [`Generator`] gives the same iterator for anything [`Resumable`] with
//!   `Input = ()`: a stackless coroutine (feature `nightly`), a `ScopedRef`,
//!   a boxed trait object.
//! * [`Yielder::delegate`] is Python's `yield from`: a body hands on every
//!   item of an inner generator and gets its return value back;
//!   [`Yielder::suspend_all`] does the same for an iterator.
//!
//! ```
//! // Python: def outer(): r = yield from inner(); yield r
//! let mut outer = cogen::generator(|co| {
//!     let inner = cogen::generator(|co| {
//!         co.suspend(1);
//!         co.suspend(2);
//!         "inner done"
//!     });
//!     let r = co.delegate(inner);
//!     co.suspend_all([3, 4]);
//!     r.len()
//! });
//! assert_eq!(outer.by_ref().collect::<Vec<_>>(), [1, 2, 3, 4]);
//! assert_eq!(outer.return_value(), Some(&10));
//! ```

use std::fmt;
use std::iter::FusedIterator;

use crate::coroutine::{Coroutine, CoroutineResult, Yielder};
use crate::error::ResumeError;
use crate::resumable::Resumable;

/// Creates a generator: a coroutine that takes no input, whose body gets
/// only the [`Yielder`]. It is an [`Iterator`] over the values it suspends
/// with; see the [module docs](self).
///
/// ```
/// let fib = cogen::generator(|co| {
///     let (mut a, mut b) = (0u64, 1);
///     loop {
///         co.suspend(a);
///         (a, b) = (b, a + b);
///     }
/// });
/// assert_eq!(fib.take(7).collect::<Vec<_>>(), [0, 1, 1, 2, 3, 5, 8]);
/// ```
///
/// # Panics
/// If no stack can be mapped, like [`Coroutine::new`].
#[track_caller]
pub fn generator<Yield, Return, F>(body: F) -> Coroutine<(), Yield, Return>
where
    F: FnOnce(&Yielder<(), Yield>) -> Return + 'static,
    Yield: 'static,
    Return: 'static,
{
    Coroutine::new(move |co, ()| body(co))
}

/// An [`Iterator`] over what a [`Resumable`] with `Input = ()` yields: the
/// generator form of any coroutine, stackful or stackless.
///
/// Same semantics as the iterator of `Coroutine<(), Y, R>`: fused, a panic
/// of the body is re-raised in the caller of `next`, and the return value
/// is kept for [`return_value`](Generator::return_value).
///
/// ```
/// use cogen::{Generator, ScopedCoroutine};
///
/// let names = ["ann", "bob"];
/// ScopedCoroutine::new(|co, ()| {
///     for n in &names {
///         co.suspend(n.len());
///     }
///     names.len()
/// })
/// .scope(|co| {
///     let mut lengths = Generator::new(co);
///     assert_eq!(lengths.by_ref().sum::<usize>(), 6);
///     assert_eq!(lengths.take_return_value(), Some(2));
/// });
/// ```
#[must_use = "generators are lazy and do nothing unless iterated"]
pub struct Generator<G: Resumable<()>> {
    inner: G,
    returned: Option<G::Return>,
}

impl<G: Resumable<()>> Generator<G> {
    /// Drives `inner` as an iterator.
    #[inline]
    pub fn new(inner: G) -> Self {
        Generator {
            inner,
            returned: None,
        }
    }

    /// The value the coroutine returned, once the iterator has ended.
    pub fn return_value(&self) -> Option<&G::Return> {
        self.returned.as_ref()
    }

    /// Takes the value the coroutine returned, once the iterator has ended.
    pub fn take_return_value(&mut self) -> Option<G::Return> {
        self.returned.take()
    }

    /// The coroutine being driven.
    pub fn get_ref(&self) -> &G {
        &self.inner
    }

    /// The coroutine being driven, mutably: to resume it with other means,
    /// or to [`close`](Resumable::close) it early.
    ///
    /// The iterator is fused over the coroutine it drives: one put in its
    /// place through this reference (`mem::replace`) after the end makes
    /// `next` yield again, as a new iterator would.
    pub fn get_mut(&mut self) -> &mut G {
        &mut self.inner
    }

    /// The coroutine being driven (its return value, if any, is dropped).
    pub fn into_inner(self) -> G {
        self.inner
    }
}

impl<G: Resumable<()>> Iterator for Generator<G> {
    type Item = G::Yield;

    #[inline]
    fn next(&mut self) -> Option<G::Yield> {
        match self.inner.resume(()) {
            Ok(CoroutineResult::Yield(value)) => Some(value),
            Ok(CoroutineResult::Return(value)) => {
                self.returned = Some(value);
                None
            }
            Err(ResumeError::Dead(())) => None,
            Err(ResumeError::Panicked(panic)) => {
                // Re-raised here: as the coroutine's own iterator does, take
                // the death out of the coroutine (closing a dead one only
                // reports it), so that a later `close` does not report it a
                // second time.
                drop(self.inner.close());
                panic.resume_unwind()
            }
        }
    }
}

/// Fused as the coroutine it drives is: a dead coroutine answers
/// [`ResumeError::Dead`] for good, which `next` turns into `None`.
impl<G: Resumable<()>> FusedIterator for Generator<G> {}

impl<G: Resumable<()> + fmt::Debug> fmt::Debug for Generator<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Generator")
            .field("inner", &self.inner)
            .field("returned", &self.returned.is_some())
            .finish()
    }
}

/// Delegation (`yield from`) for generator bodies.
impl<Yield> Yielder<(), Yield> {
    /// Python's `yield from`: suspends with every value `inner` yields, in
    /// order, and returns what `inner` returns. `inner` may be any
    /// [`Resumable`] generator, stackful or stackless; pass `&mut inner` to
    /// keep it.
    ///
    /// ```
    /// fn tree(co: &cogen::Yielder<(), u32>, depth: u32) -> u32 {
    ///     co.suspend(depth);
    ///     if depth == 0 {
    ///         return 1;
    ///     }
    ///     // Nested generators, each handing its items up.
    ///     let left = co.delegate(cogen::generator(move |co| tree(co, depth - 1)));
    ///     let right = co.delegate(cogen::generator(move |co| tree(co, depth - 1)));
    ///     left + right
    /// }
    /// let mut g = cogen::generator(|co| tree(co, 2));
    /// assert_eq!(g.by_ref().collect::<Vec<_>>(), [2, 1, 0, 0, 1, 0, 0]);
    /// assert_eq!(g.return_value(), Some(&4)); // leaves
    /// ```
    ///
    /// # Panics
    /// A panic of `inner` is re-raised here, with its payload, as the
    /// iterator of a generator does: re-raised, it is no longer `inner`'s
    /// to report, so a later `close` of it returns `Ok`. Delegating to a
    /// coroutine that is already dead panics, since there is no return
    /// value to give back.
    #[track_caller]
    pub fn delegate<G>(&self, inner: G) -> G::Return
    where
        G: Resumable<(), Yield = Yield>,
    {
        self.delegate_with(inner, ())
    }

    /// Suspends with every item of `items`, in order: `yield from` for an
    /// iterator.
    pub fn suspend_all<I>(&self, items: I)
    where
        I: IntoIterator<Item = Yield>,
    {
        for item in items {
            self.suspend(item);
        }
    }
}

/// Delegation (`yield from`) for coroutines with input.
impl<Input, Yield> Yielder<Input, Yield> {
    /// `yield from` for coroutines with input: resumes `inner` with `first`,
    /// then suspends with each value it yields and resumes it with each input
    /// this coroutine receives, until it returns; gives back its return value.
    ///
    /// ```
    /// use cogen::{Coroutine, CoroutineResult};
    ///
    /// let mut outer = Coroutine::new(|co, first: i32| {
    ///     let adder = Coroutine::new(|co, mut total: i32| {
    ///         while total < 10 {
    ///             total += co.suspend(total);
    ///         }
    ///         total
    ///     });
    ///     co.delegate_with(adder, first) * 100
    /// });
    /// assert_eq!(outer.resume(4).unwrap(), CoroutineResult::Yield(4));
    /// assert_eq!(outer.resume(5).unwrap(), CoroutineResult::Yield(9));
    /// assert_eq!(outer.resume(3).unwrap(), CoroutineResult::Return(1200));
    /// ```
    ///
    /// # Panics
    /// As [`delegate`](Yielder::delegate).
    #[track_caller]
    pub fn delegate_with<G>(&self, mut inner: G, first: Input) -> G::Return
    where
        G: Resumable<Input, Yield = Yield>,
    {
        let mut input = first;
        loop {
            match inner.resume(input) {
                Ok(CoroutineResult::Yield(value)) => input = self.suspend(value),
                Ok(CoroutineResult::Return(value)) => return value,
                Err(ResumeError::Panicked(panic)) => {
                    // Re-raised here: as a generator's iterator does, take
                    // the death out of `inner` (closing a dead coroutine
                    // only reports it), so that a later `close` of an inner
                    // passed by `&mut` does not report it a second time.
                    drop(inner.close());
                    panic.resume_unwind()
                }
                Err(ResumeError::Dead(_)) => panic!("cannot delegate to a dead coroutine"),
            }
        }
    }
}

/// A coroutine with `Input = ()` is an iterator over the values it yields.
///
/// The iterator is fused: after the body returns, `next` keeps answering
/// `None`, and the return value is kept for
/// [`Coroutine::return_value`]. A panic in the body is re-raised in the
/// caller of `next`, as Lua's `wrap` re-raises errors.
///
/// ```
/// let mut squares = cogen::Coroutine::new(|co, ()| {
///     for i in 1..=3 {
///         co.suspend(i * i);
///     }
///     "done"
/// });
/// assert_eq!(squares.by_ref().collect::<Vec<_>>(), [1, 4, 9]);
/// assert_eq!(squares.return_value(), Some(&"done"));
/// ```
impl<Yield, Return> Iterator for Coroutine<(), Yield, Return> {
    type Item = Yield;

    #[inline]
    fn next(&mut self) -> Option<Yield> {
        match self.resume(()) {
            Ok(CoroutineResult::Yield(value)) => Some(value),
            Ok(CoroutineResult::Return(value)) => {
                self.store_return(value);
                None
            }
            Err(ResumeError::Dead(())) => None,
            Err(ResumeError::Panicked(panic)) => {
                // Re-raised here, so `close` need not report it again.
                self.forget_panic();
                panic.resume_unwind()
            }
        }
    }
}

impl<Yield, Return> FusedIterator for Coroutine<(), Yield, Return> {}

/// Lua's `coroutine.wrap` for coroutines that take input: a function that
/// resumes the coroutine with its argument and returns what it yields or
/// returns.
///
/// Like Lua's wrapped function, it re-raises a panic of the body in the
/// caller, and panics with "cannot resume dead coroutine" when called after
/// the body has finished.
///
/// ```
/// use cogen::CoroutineResult;
///
/// let mut accumulate = cogen::wrap(|co, mut total: i32| {
///     while total < 10 {
///         total += co.suspend(total);
///     }
///     total
/// });
/// assert_eq!(accumulate(4), CoroutineResult::Yield(4));
/// assert_eq!(accumulate(5), CoroutineResult::Yield(9));
/// assert_eq!(accumulate(3), CoroutineResult::Return(12));
/// ```
#[track_caller]
pub fn wrap<Input, Yield, Return, F>(body: F) -> impl FnMut(Input) -> CoroutineResult<Yield, Return>
where
    F: FnOnce(&Yielder<Input, Yield>, Input) -> Return + 'static,
    Input: 'static,
    Yield: 'static,
    Return: 'static,
{
    let mut co = Coroutine::new(body);
    move |input| match co.resume(input) {
        Ok(result) => result,
        Err(ResumeError::Panicked(panic)) => panic.resume_unwind(),
        Err(ResumeError::Dead(_)) => panic!("cannot resume dead coroutine"),
    }
}
