//! Hints to the CPU for the run queue: where a stackful task's stack
//! pointer is when it suspends, and which memory to start loading before
//! the task runs again.
//!
//! A parked stackful task's first reads when it resumes are the lines its
//! stack was suspended at: one page per task, 1 MiB apart with the default
//! stack size. With thousands of tasks queued, each resume misses the TLB
//! and the caches there, and the switch (a return to an address the CPU
//! cannot predict) leaves it nothing to overlap the misses with. So each
//! step of the loop, before it runs its task, asks for the next queued
//! task's stack lines, and the header of the one after it (see
//! `RunQueue::prefetch_front`): they load while the current task runs.
//!
//! On x86_64 only (its prefetch instruction); elsewhere both functions do
//! nothing and the loop runs as before.

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
#[inline(always)]
pub(crate) fn prefetch(addr: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: SSE, which the intrinsic needs, is part of x86_64, and a
        // prefetch reads nothing the program can see, whatever the address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(std::ptr::without_provenance(addr)) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = addr;
    }
}
