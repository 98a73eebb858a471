//! Telling the unwinding of a closed coroutine from an ordinary panic.
//!
//! corosensei closes a suspended coroutine by panicking out of `suspend` with
//! a payload of a private type. This file owns the detection of that payload
//! ([`is_close_unwind`]) and [`catch_unwind`], which bodies use to catch
//! their own panics without swallowing a close (corosensei issue 57).

use std::any::{Any, TypeId};
use std::panic::{AssertUnwindSafe, UnwindSafe};
use std::sync::OnceLock;

/// The type of the payload corosensei unwinds a closing coroutine with.
///
/// corosensei keeps that type private, so cogen learns its `TypeId` once per
/// process, from a throwaway coroutine that it closes while catching.
fn close_unwind_type() -> TypeId {
    static TYPE: OnceLock<TypeId> = OnceLock::new();
    *TYPE.get_or_init(|| {
        static SEEN: OnceLock<TypeId> = OnceLock::new();
        let mut probe = corosensei::Coroutine::<(), (), ()>::new(|yielder, ()| {
            let caught = std::panic::catch_unwind(AssertUnwindSafe(|| yielder.suspend(())));
            if let Err(payload) = caught {
                let _ = SEEN.set(<dyn Any>::type_id(&*payload));
                std::panic::resume_unwind(payload);
            }
        });
        probe.resume(());
        probe.force_unwind();
        *SEEN
            .get()
            .expect("corosensei unwinds a closed coroutine with a panic")
    })
}

/// True if `payload` is the unwinding of a coroutine being closed or dropped,
/// which must be let through to the coroutine's root.
pub fn is_close_unwind(payload: &(dyn Any + Send)) -> bool {
    <dyn Any>::type_id(payload) == close_unwind_type()
}

/// [`std::panic::catch_unwind`] for code inside coroutine bodies.
///
/// Closing or dropping a suspended coroutine unwinds its stack with a panic
/// that must reach the coroutine's root. A body that catches panics with the
/// standard `catch_unwind` around a [`Yielder::suspend`](super::Yielder::suspend)
/// would swallow it (corosensei issue 57: the body then runs on after its
/// owner asked it to stop, until its next `suspend` unwinds again). This
/// function catches ordinary panics like the standard one but lets that
/// unwinding go on.
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
        Err(payload) if is_close_unwind(&*payload) => std::panic::resume_unwind(payload),
        result => result,
    }
}
