//! Hints to the CPU for the run queue: where a stackful task's stack
//! pointer is when it suspends, and which memory to start loading before
//! the task runs again.
//!
//! A parked stackful task's first reads when it resumes are the lines its
//! stack was suspended at: one page per task, 1 MiB apart with the default
//! stack size. With thousands of tasks queued, each resume misses the TLB
//! and the caches there, and the switch (a return to an address the CPU
//! cannot predict) leaves it nothing to overlap the misses with. So each
//! step of the loop, before it runs its task, asks for the stack lines of
//! the task a few places on in the queue, and the header of the one after
//! that (see `RunQueue::prefetch_front`): they load while the tasks before
//! them run.
//!
//! The `Prefetch` trait is how a task's body says what to ask for.
//!
//! On x86_64 only (its prefetch instruction); elsewhere both functions do
//! nothing and the loop runs as before.

use std::ptr::NonNull;

use super::task::{Header, ThinTask};

/// The stack pointer of the calling code where [`prefetch`] uses it (on
/// x86_64), or 0.
#[inline(always)]
pub(crate) fn stack_pointer() -> usize {
    if cfg!(target_arch = "x86_64") {
        crate::coroutine::stack_pointer()
    } else {
        0
    }
}

/// Asks the CPU to start loading the cache line at `addr` (any address:
/// a prefetch never faults and has no effect the program can see).
pub(crate) use crate::stack::prefetch;

/// Asks the CPU to start loading what a task's next step reads first.
///
/// # Safety
/// The header is that of a live task of the body type the function was
/// made for, which is not running.
pub(crate) type PrefetchFn = unsafe fn(NonNull<Header>);

/// What a body's task asks the CPU to load while the step before it runs:
/// a trait of its own, as an associated constant would keep
/// [`TaskBody`](super::task::TaskBody) from being used as `dyn`.
pub(crate) trait Prefetch {
    /// `None` (the default): nothing worth asking for.
    const PREFETCH: Option<PrefetchFn> = None;
}

/// Asks the CPU to start loading what `task`'s next step reads first, if
/// its body has something to ask for (see [`Prefetch`]).
#[inline(always)]
pub(crate) fn next_step(task: &ThinTask) {
    let header = task.header();
    if let Some(prefetch) = header.vtable.prefetch {
        // SAFETY: `task` owns a strong reference, so the task is alive (and
        // queued, not running), and its vtable was made for its type.
        unsafe { prefetch(NonNull::from(header)) }
    }
}

/// Asks the CPU to start loading `task`'s header and the first lines of
/// its body.
#[inline(always)]
pub(crate) fn header_lines(task: &ThinTask) {
    let at = std::ptr::from_ref(task.header()) as usize;
    prefetch(at);
    prefetch(at + 64);
    prefetch(at + 128);
}
