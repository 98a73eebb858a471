//! Telling the unwindings that must cross a coroutine's root from an
//! ordinary panic.
//!
//! corosensei closes a suspended coroutine by panicking out of `suspend` with
//! a payload of a private type. This file owns learning that type (once, as
//! the first coroutine is created, on its stack), the detection of that
//! payload ([`is_close_unwind`]) and [`catch_unwind`], which bodies use to
//! catch their own panics without swallowing a close (corosensei issue 57).
//!
//! It also owns [`ScopeExit`], the unwinding an enclosing scope starts
//! and catches itself (the event loop's `timeout` when its deadline passes
//! during a wait): when that wait is inside a nested coroutine, the
//! unwinding crosses the nested coroutine's root on its way to the scope,
//! instead of being reported as that coroutine's panic.

use std::any::{Any, TypeId};
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, UnwindSafe};
use std::sync::OnceLock;

use corosensei::stack::Stack;

/// The type of the payload corosensei unwinds a closing coroutine with, once
/// learnt.
///
/// corosensei keeps that type private, so cogen learns its `TypeId` from a
/// throwaway coroutine that it closes while catching: once per process, when
/// the first coroutine is created, on the stack that coroutine is about to
/// get (see [`learn_close_unwind_type`]). Until then no coroutine of cogen's
/// can be closing, and nothing is a close's unwinding.
///
/// Learning it later, on the first close, would need a stack of its own just
/// for the probe: a close or drop must never map a stack, because it may
/// come when no more stacks can be mapped.
static CLOSE_UNWIND_TYPE: OnceLock<TypeId> = OnceLock::new();

/// Learns the close's payload type, if this process has not yet, by running
/// and closing a throwaway coroutine on `stack`, which must be free: the
/// caller is about to start a coroutine on it.
#[inline]
pub(super) fn learn_close_unwind_type<S: Stack>(stack: &mut S) {
    if CLOSE_UNWIND_TYPE.get().is_none() {
        probe_close_unwind_type(stack);
    }
}

#[cold]
#[inline(never)]
fn probe_close_unwind_type<S: Stack>(stack: &mut S) {
    CLOSE_UNWIND_TYPE.get_or_init(|| {
        let seen = Cell::new(None);
        let body = |yielder: &corosensei::Yielder<(), ()>, ()| {
            let caught = std::panic::catch_unwind(AssertUnwindSafe(|| yielder.suspend(())));
            if let Err(payload) = caught {
                seen.set(Some(<dyn Any>::type_id(&*payload)));
                std::panic::resume_unwind(payload);
            }
        };
        // SAFETY: the probe borrows `seen` and `stack`, and is closed and
        // dropped below, before either goes away; it is never leaked.
        let mut probe = unsafe { corosensei::Coroutine::with_stack_unchecked(&mut *stack, body) };
        probe.resume(());
        probe.force_unwind();
        drop(probe);
        seen.get()
            .expect("corosensei unwinds a closed coroutine with a panic")
    });
}

/// True if `payload` is the unwinding of a coroutine being closed or dropped,
/// which must be let through to the coroutine's root.
///
/// cogen learns what that unwinding looks like when the first coroutine of
/// the process is created; before that, no coroutine can be closing and this
/// is false.
pub fn is_close_unwind(payload: &(dyn Any + Send)) -> bool {
    CLOSE_UNWIND_TYPE
        .get()
        .is_some_and(|close| <dyn Any>::type_id(payload) == *close)
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
