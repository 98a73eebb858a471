//! The body's side of a coroutine: [`Yielder`], a typed wrapper of
//! corosensei's yielder that suspends the coroutine from any depth.

use std::fmt;

/// The body's side of a coroutine: suspends it, passing values out and in.
///
/// A body receives `&Yielder<Input, Yield>` as its first argument and may
/// pass it down to any function it calls: a stackful coroutine can suspend
/// from any depth of its call stack.
#[repr(transparent)]
pub struct Yielder<Input, Yield> {
    inner: corosensei::Yielder<Input, Yield>,
}

impl<Input, Yield> Yielder<Input, Yield> {
    pub(super) fn from_inner(inner: &corosensei::Yielder<Input, Yield>) -> &Self {
        // SAFETY: `Yielder` is a `repr(transparent)` wrapper of the corosensei type.
        unsafe { &*(inner as *const corosensei::Yielder<Input, Yield>).cast::<Self>() }
    }

    /// Suspends the coroutine: `value` becomes the result of the `resume`
    /// that is running it (Lua's `coroutine.yield(value)`), and the input of
    /// the next `resume` becomes this call's return value.
    ///
    /// If the coroutine is closed or dropped while suspended here, this call
    /// does not return: it unwinds the body's stack, running every destructor.
    ///
    /// Two things a body must not do with it:
    /// * call `suspend` from a destructor that runs while the coroutine is
    ///   being closed: the close unwinds by panicking, and a panic inside a
    ///   destructor during unwinding aborts the process (Lua raises an error
    ///   there instead);
    /// * hand it to a nested [`ScopedCoroutine`](super::ScopedCoroutine) and
    ///   suspend through it from there. That works (the whole chain of stacks
    ///   suspends, and a close unwinds through the child), but while the outer
    ///   coroutine is suspended from the child's stack,
    ///   [`running`](super::running) and the child's handle describe the child
    ///   as the running one.
    #[inline]
    pub fn suspend(&self, value: Yield) -> Input {
        self.inner.suspend(value)
    }
}

impl<Input, Yield> fmt::Debug for Yielder<Input, Yield> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Yielder { .. }")
    }
}
