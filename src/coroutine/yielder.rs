//! The body's side of a coroutine: [`Yielder`], a typed wrapper of
//! corosensei's yielder that suspends the coroutine from any depth.

use std::fmt;
use std::mem::MaybeUninit;

/// The body's side of a coroutine: suspends it, passing values out and in.
///
/// A body receives `&Yielder<Input, Yield>` as its first argument and may
/// pass it down to any function it calls: a stackful coroutine can suspend
/// from any depth of its call stack.
#[repr(transparent)]
pub struct Yielder<Input, Yield> {
    /// The input is uninitialised only in the resume that starts a
    /// coroutine for `close`, which never reaches a `suspend` (see `Raw`).
    inner: corosensei::Yielder<MaybeUninit<Input>, Yield>,
}

impl<Input, Yield> Yielder<Input, Yield> {
    pub(super) fn from_inner(inner: &corosensei::Yielder<MaybeUninit<Input>, Yield>) -> &Self {
        // SAFETY: `Yielder` is a `repr(transparent)` wrapper of the corosensei type.
        unsafe { &*(inner as *const corosensei::Yielder<MaybeUninit<Input>, Yield>).cast::<Self>() }
    }

    /// Suspends the coroutine: `value` becomes the result of the `resume`
    /// that is running it (Lua's `coroutine.yield(value)`), and the input of
    /// the next `resume` becomes this call's return value.
    ///
    /// If the coroutine is closed or dropped while suspended here, this call
    /// does not return: it unwinds the body's stack, running every destructor.
    ///
    /// A body must not call `suspend` from a destructor that runs while the
    /// coroutine is being closed: the close unwinds by panicking, and a panic
    /// inside a destructor during unwinding aborts the process (Lua raises an
    /// error there instead).
    ///
    /// A body may hand its yielder to a nested
    /// [`ScopedCoroutine`](super::ScopedCoroutine) and suspend through it from
    /// there (Lua cannot): the whole chain of stacks from the nested
    /// coroutine up to this one suspends at once, and the owner may move the
    /// suspended coroutine meanwhile. Resuming it continues the nested one,
    /// which [`running`](super::running) then names, with this one
    /// [`Normal`](super::Status::Normal); a close unwinds through the nested
    /// one too.
    ///
    /// ```
    /// use cogen::{Coroutine, ScopedCoroutine, Status};
    ///
    /// let mut outer = Coroutine::<(), Status, ()>::new(|co, ()| {
    ///     let me = cogen::running().unwrap();
    ///     ScopedCoroutine::<(), (), ()>::new(|_, ()| {
    ///         co.suspend(me.status()); // suspends `outer`, from the nested stack
    ///         assert!(!cogen::running().unwrap().same_coroutine(&me));
    ///         co.suspend(me.status());
    ///     })
    ///     .scope(|nested| nested.resume(()).unwrap());
    /// });
    /// assert_eq!(outer.resume(()).unwrap().as_yield(), Some(Status::Normal));
    /// let mut moved = Box::new(outer); // moving a suspended coroutine is fine
    /// assert_eq!(moved.resume(()).unwrap().as_yield(), Some(Status::Normal));
    /// assert!(moved.resume(()).unwrap().as_return().is_some());
    /// ```
    // Always inlined: the switch then sits in the caller's frame, where the
    // coroutine goes on when resumed, and the resume's `call` and this
    // suspend's `ret` pair up in the CPU's prediction of returns (a frame of
    // ours in between would cost two mispredicted returns per round trip).
    #[inline(always)]
    pub fn suspend(&self, value: Yield) -> Input {
        // SAFETY: every resume that reaches a `suspend` passes an input:
        // only the one that starts a coroutine for `close` does not, and
        // that one drops the body without calling it.
        unsafe { self.inner.suspend(value).assume_init() }
    }
}

impl<Input, Yield> fmt::Debug for Yielder<Input, Yield> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Yielder { .. }")
    }
}
