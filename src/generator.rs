//! Generators: coroutines that take no input, driven as [`Iterator`]s
//! (Lua's `coroutine.wrap` of a producer), and [`wrap`] for coroutines that do.

use std::iter::FusedIterator;

use crate::coroutine::{Coroutine, CoroutineResult, Yielder};
use crate::error::ResumeError;

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
            Err(ResumeError::Panicked(panic)) => panic.resume_unwind(),
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
