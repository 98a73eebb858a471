//! What cogen learns once per process about two things corosensei keeps
//! private, by running and closing a throwaway coroutine.
//!
//! * The type of the payload corosensei unwinds a closing coroutine with
//!   (`unwind.rs` tells a close's unwinding from a panic by it).
//! * Where corosensei keeps a running coroutine's link to its resumer: a
//!   word near the base of the coroutine's stack that corosensei's resume
//!   writes the resumer's stack pointer into, and that its `Yielder` is a
//!   `repr(transparent)` wrapper of. `chain.rs` follows those links to tell
//!   who resumed whom, so that a switch records nothing of its own.
//!
//! The probe runs when the first stack of the process is mapped, on that
//! stack, before anything else runs on it (the stack layer calls [`learn`]
//! with every stack it maps, on that slow path only). Learning the facts
//! later, on the first close, would need a stack of its own just for the
//! probe: a close or drop must never map a stack, because it may come when
//! no more stacks can be mapped. Until then no coroutine of cogen's has run
//! or is closing, and nothing needs the facts.

use std::any::{Any, TypeId};
use std::cell::Cell;
use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;

use corosensei::stack::Stack;

/// The facts, once learnt.
pub(super) struct Corosensei {
    /// The `TypeId` of the payload of a close's unwinding.
    pub(super) close_unwind_type: TypeId,
    /// How far below the base a coroutine's stack is given its link to the
    /// resumer lies.
    pub(super) link_below_base: usize,
}

static LEARNT: OnceLock<Corosensei> = OnceLock::new();

/// The facts, if the first coroutine of the process has been created.
#[inline]
pub(super) fn learnt() -> Option<&'static Corosensei> {
    LEARNT.get()
}

/// Learns the facts, if this process has not yet, by running and closing a
/// throwaway coroutine on `stack`, which must be free: it has just been
/// mapped.
///
/// # Panics
/// If corosensei does not keep its link to the resumer where this version of
/// cogen expects it (a corosensei release that changed it): cogen would
/// misread the chain of running coroutines, so it refuses to run any.
#[inline]
pub(super) fn learn<S: Stack>(stack: &mut S) {
    if LEARNT.get().is_none() {
        probe(stack);
    }
}

#[cold]
#[inline(never)]
fn probe<S: Stack>(stack: &mut S) {
    LEARNT.get_or_init(|| {
        let base = stack.base().get();
        let seen = Cell::new(None);
        let link = Cell::new((0, 0));
        let body = |yielder: &corosensei::Yielder<(), ()>, ()| {
            let at = yielder as *const corosensei::Yielder<(), ()> as usize;
            // SAFETY: the yielder is a live reference to a `Cell` of a
            // `StackPointer`, one word, which a plain read may copy.
            let value = unsafe { (at as *const usize).read() };
            link.set((at, value));
            let caught = std::panic::catch_unwind(AssertUnwindSafe(|| yielder.suspend(())));
            if let Err(payload) = caught {
                seen.set(Some(<dyn Any>::type_id(&*payload)));
                std::panic::resume_unwind(payload);
            }
        };
        // SAFETY: the probe borrows `seen`, `link` and `stack`, and is closed
        // and dropped below, before any of them goes away; it is never leaked.
        let mut probe = unsafe { corosensei::Coroutine::with_stack_unchecked(&mut *stack, body) };
        // The resumer's stack pointer, which the link must hold, is a
        // little below this one.
        let here = super::chain::stack_pointer();
        probe.resume(());
        probe.force_unwind();
        drop(probe);
        let (at, value) = link.get();
        assert!(
            at < base && base - at <= 256 && value < here && here - value <= 64 * 1024,
            "cogen does not know this version of corosensei: its link to the resumer \
             is not where cogen reads it"
        );
        Corosensei {
            close_unwind_type: seen
                .get()
                .expect("corosensei unwinds a closed coroutine with a panic"),
            link_below_base: base - at,
        }
    });
}
