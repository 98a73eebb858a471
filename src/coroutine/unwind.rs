//! Telling the unwindings that must cross a coroutine's root from an
//! ordinary panic.
//!
//! corosensei closes a suspended coroutine by panicking out of `suspend` with
//! a payload of a private type, which `probe.rs` learns once per process.
//! This file owns the detection of that payload ([`is_close_unwind`]) and
//! [`catch_unwind`], which bodies use to catch their own panics without
//! swallowing a close (corosensei issue 57).
//!
//! It also owns [`ScopeExit`], the unwinding an enclosing scope starts
//! and catches itself (the event loop's `timeout` when its deadline passes
//! during a wait): when that wait is inside a nested coroutine, the
//! unwinding crosses the nested coroutine's root on its way to the scope,
//! instead of being reported as that coroutine's panic.

use std::any::Any;
use std::panic::UnwindSafe;

/// True if `payload` is the unwinding of a coroutine being closed or dropped,
/// which must be let through to the coroutine's root.
///
/// cogen learns what that unwinding looks like when the first coroutine of
/// the process is created; before that, no coroutine can be closing and this
/// is false.
pub fn is_close_unwind(payload: &(dyn Any + Send)) -> bool {
    super::probe::learnt()
        .is_some_and(|facts| <dyn Any>::type_id(payload) == facts.close_unwind_type)
}

/// The payload of an unwinding that a scope started to leave itself and
/// catches itself, by its `scope` number: the event loop's `timeout` when
/// its deadline passes during a wait. Not a panic: no hook runs, and every
/// coroutine root it crosses (a wait inside a nested coroutine) passes it on.
pub(crate) struct ScopeExit {
    pub(crate) scope: u64,
}

/// True if `payload` is not the panic of the coroutine whose root caught it
/// but an unwinding on its way to an enclosing root or scope: a close's
/// unwinding (an enclosing coroutine suspended from inside this one is being
/// closed) or a [`ScopeExit`].
#[inline]
pub(crate) fn passes_through(payload: &(dyn Any + Send)) -> bool {
    is_close_unwind(payload) || payload.is::<ScopeExit>()
}

/// [`std::panic::catch_unwind`] for code inside coroutine bodies.
///
/// Closing or dropping a suspended coroutine unwinds its stack with a panic
/// that must reach the coroutine's root. A body that catches panics with the
/// standard `catch_unwind` around a [`Yielder::suspend`](super::Yielder::suspend)
/// would swallow it (corosensei issue 57: the body then runs on after its
/// owner asked it to stop, until its next `suspend` unwinds again). This
/// function catches ordinary panics like the standard one but lets that
/// unwinding go on, and so the unwinding by which an event loop's
/// [`timeout`](crate::event_loop::timeout()) leaves its scope.
///
/// ```
/// let mut co = cogen::Coroutine::<(), (), ()>::new(|co, ()| {
///     let caught = cogen::catch_unwind(std::panic::AssertUnwindSafe(|| co.suspend(())));
///     unreachable!("a closed coroutine does not run on ({caught:?})");
/// });
/// co.resume(()).unwrap();
/// assert!(co.close().is_ok());
/// assert!(co.is_dead());
/// ```
pub fn catch_unwind<F: FnOnce() -> R + UnwindSafe, R>(f: F) -> std::thread::Result<R> {
    match std::panic::catch_unwind(f) {
        Err(payload) if passes_through(&*payload) => std::panic::resume_unwind(payload),
        result => result,
    }
}
