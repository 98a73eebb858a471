//! What the stack-overflow handler prints about the coroutine that overflowed.
//!
//! The [`stack`] layer owns the signal handler but knows
//! nothing of coroutines. The coroutine layer hands it [`describe_overflow`]
//! with every stack it takes; the handler calls it to learn whether a fault
//! hit the guard page of the running coroutine and, if so, which coroutine
//! that was and how to give it a bigger stack.

use std::cell::Cell;
use std::fmt;

use super::chain::CURRENT;
use crate::stack;

/// Called by the stack-overflow signal handler: if `addr` is in the guard
/// page of the coroutine running on this thread, describes the overflow.
pub(super) fn describe_overflow(addr: usize, out: &mut dyn fmt::Write) -> bool {
    let Ok(meta) = CURRENT.try_with(Cell::get) else {
        return false;
    };
    // SAFETY: `CURRENT` is null or valid (see `chain.rs`); the faulting
    // coroutine is the running one.
    let Some(meta) = (unsafe { meta.as_ref() }) else {
        return false;
    };
    let page = stack::page_size();
    // The guard page is the lowest page of the mapping; allow one more page
    // below for a frame that skipped over it.
    let limit = meta.stack_limit();
    if addr < limit.saturating_sub(page) || addr >= limit + page {
        return false;
    }
    // No `thread::current()` here: it may allocate, and this runs in a
    // signal handler.
    let name = meta.name.as_deref().unwrap_or("<unnamed>");
    let _ = write!(
        out,
        "\ncoroutine '{name}' has overflowed its stack (stack size {} KiB)\n\
         help: give it a bigger stack: cogen::Builder::new().stack_size({})\n",
        meta.stack_size() / 1024,
        meta.stack_size() * 2,
    );
    true
}
