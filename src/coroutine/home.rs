//! Where a coroutine's `Meta` lives: at the top of the coroutine's own stack.
//!
//! This file owns `HomeStack`, the stack a coroutine runs on: a
//! [`PooledStack`] whose topmost bytes hold the coroutine's `Meta`, set
//! aside with `PooledStack::reserve_top`, so that corosensei sees a stack
//! that starts just below it.
//!
//! The chain of running coroutines points at `Meta`s, and a coroutine
//! suspended from inside a nested coroutine leaves a pointer to its own
//! `Meta` on the nested one's stack, where it stays until the nested one
//! finishes. The owner may move a suspended [`Coroutine`](super::Coroutine)
//! meanwhile (out of a `Box`, by a `Vec` reallocation, with `mem::swap`), so
//! a `Meta` stored inside it would be left behind at its old address. The
//! stack, a memory mapping, never moves while the coroutine lives: a `Meta`
//! on it keeps its address for the coroutine's whole life, and costs no
//! allocation of its own. It is written when the coroutine is created and
//! dropped in place just before the stack goes back to the pool.

use std::ptr::NonNull;

use corosensei::stack::{Stack, StackPointer};

use super::chain::Meta;
use crate::stack::PooledStack;

/// The bytes set aside at the top of each stack for the `Meta`: its size,
/// rounded up so that the base reported to corosensei stays aligned.
const META_SPACE: usize = size_of::<Meta>().next_multiple_of(16);

const _: () = assert!(align_of::<Meta>() <= 16);

/// A pooled stack with the coroutine's `Meta` at its top.
pub(super) struct HomeStack {
    stack: PooledStack,
}

impl HomeStack {
    /// Writes `meta` at the top of `stack`.
    #[inline]
    pub(super) fn new(mut stack: PooledStack, meta: Meta) -> Self {
        let top = stack.reserve_top(META_SPACE).cast::<Meta>();
        // SAFETY: `reserve_top` gave us these bytes: they belong to no frame
        // and hold no live value (a stack from the pool had its last `Meta`
        // dropped in `HomeStack::drop`), and they are aligned for `Meta`
        // (16-aligned, see above).
        unsafe { top.as_ptr().write(meta) };
        HomeStack { stack }
    }

    /// The coroutine's `Meta`, valid from `new` until this stack is dropped:
    /// right above the base that corosensei sees.
    #[inline(always)]
    pub(super) fn meta(&self) -> NonNull<Meta> {
        // SAFETY: the base is a non-null address inside the mapping.
        unsafe { NonNull::new_unchecked(self.stack.base().get() as *mut Meta) }
    }
}

impl Drop for HomeStack {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: written by `new`, and nothing uses it after the stack is
        // dropped: the coroutine that owned it is gone (corosensei drops its
        // stack last), so no chain of running coroutines points at it.
        unsafe { self.meta().as_ptr().drop_in_place() };
    }
}

// SAFETY: `PooledStack`'s stack below the `META_SPACE` bytes it set aside:
// still guarded below, at least `MIN_STACK_SIZE` minus a few bytes, the base
// 16-aligned, and the mapping lives as long as `self`.
unsafe impl Stack for HomeStack {
    #[inline(always)]
    fn base(&self) -> StackPointer {
        self.stack.base()
    }

    #[inline(always)]
    fn limit(&self) -> StackPointer {
        self.stack.limit()
    }
}
