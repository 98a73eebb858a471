//! What the stack-overflow handler prints about the coroutine that overflowed.
//!
//! The [`stack`] layer owns the signal handler but knows
//! nothing of coroutines. The coroutine layer hands it [`describe_overflow`]
//! with every stack it takes; the handler calls it to learn whether a fault
//! hit the guard page of a coroutine's stack and, if so, which coroutine
//! that was and how to give it a bigger stack.

use std::fmt;

use super::chain::Meta;
use crate::stack;

/// Called by the stack-overflow signal handler: if `addr` is in the guard
/// page of a coroutine's stack on this thread, describes the overflow.
pub(super) fn describe_overflow(addr: usize, out: &mut dyn fmt::Write) -> bool {
    let page = stack::page_size();
    // The guard page is the lowest page of the mapping; allow one more page
    // below for a frame that skipped over it. So the mapping starts at the
    // page of `addr` or at the next one.
    let page_of_addr = addr & !(page - 1);
    let Some(bounds) = stack::stack_starting_at(page_of_addr)
        .or_else(|| stack::stack_starting_at(page_of_addr.wrapping_add(page)))
    else {
        return false;
    };
    // SAFETY: only code running on a coroutine's stack reaches its guard
    // page (no safe code can make a pointer there), so the stack is a
    // running coroutine's, whose `Meta` is alive (see `chain.rs`).
    let meta = unsafe { Meta::of_stack(bounds).as_ref() };
    // No `thread::current()` here: it may allocate, and this runs in a
    // signal handler.
    let name = meta.name.as_deref().unwrap_or("<unnamed>");
    // The usable size, as its `Builder` asked (rounded): the mapping
    // without its guard page.
    let size = bounds.top - bounds.limit - page;
    // The `Meta` does not say whether an event loop made the coroutine (a
    // field there would cost every create a store), so the advice names
    // both builders.
    let bigger = size * 2;
    let _ = write!(
        out,
        "\ncoroutine '{name}' has overflowed its stack (stack size {} KiB)\n\
         help: give it a bigger stack: cogen::Builder::new().stack_size({bigger}), \
         or for an event-loop task TaskBuilder::new().stack_size({bigger})\n",
        size / 1024,
    );
    true
}
