//! Coroutine stacks: sizes, guard pages and a per-thread pool of reusable stacks.
//!
//! Every stackful coroutine runs on its own stack: a memory mapping with a
//! guard page below it (corosensei's
//! [`DefaultStack`](corosensei::stack::DefaultStack)), so that an overflow
//! faults instead of corrupting memory. Mapping a stack costs system calls
//! (`mmap`, `mprotect`, `munmap`) and a page fault on first touch, about 9 µs
//! on the reference machine, which is far more than running a small coroutine.
//! So finished stacks are not unmapped: they go back to a per-thread pool,
//! keyed by size, and the next coroutine of that size takes one from there
//! without any system call.
//!
//! # Limits
//!
//! Each guarded stack is two memory mappings. Linux caps the mappings of one
//! process at `vm.max_map_count` (65530 by default), so about 32,000 stackful
//! coroutines can be alive at once. Each stack also reserves its full size of
//! address space (1 MiB by default), so an address-space limit (`RLIMIT_AS`,
//! `ulimit -v`) allows far fewer: about one per MiB of the limit. Past
//! either, or when the system has no memory left to give, creation fails
//! with a [`StackError`] that says which limit was reached and what to do;
//! [`Coroutine::new`](crate::Coroutine::new) panics with the same message,
//! [`Builder::try_build`](crate::Builder::try_build) returns it. Closing and
//! dropping coroutines never needs a new stack, so they work at the limit
//! too. Stackless coroutines (feature `nightly`) have no such cap.
//!
//! # Stack overflow
//!
//! Overflowing a coroutine's stack hits its guard page. When the first stack
//! of the process is mapped (by the first coroutine or stackful task
//! created), cogen installs a `SIGSEGV`/`SIGBUS` handler, on an alternate
//! signal stack, that recognises a fault in a coroutine stack's guard
//! page, prints which coroutine overflowed, its stack size and how to raise
//! it, and aborts, as the standard library does for threads. Every other
//! fault goes to the action that was installed before.
//!
//! ## Programs with their own `SIGSEGV` handler
//!
//! * **Installed before the first coroutine:** cogen keeps your action and
//!   hands it every fault that is not a coroutine overflow, as the kernel
//!   would have: your handler is called with your `sa_mask` blocked (and the
//!   signal too, unless `SA_NODEFER`), with the action reset to the default
//!   first if you asked for `SA_RESETHAND`, and with the `SA_SIGINFO` or
//!   plain signature you installed; it runs on the alternate signal stack.
//!   If the action before cogen was the default or `SIG_IGN`, cogen puts it
//!   back exactly, so such a fault still kills the process by the signal. A
//!   coroutine overflow does not reach your handler: cogen reports it and
//!   aborts.
//! * **Installed after the first coroutine:** your handler replaces cogen's.
//!   Keep the action you replace (`sigaction`'s third argument) and pass the
//!   faults you do not handle to it, as cogen does with yours; otherwise a
//!   coroutine overflow reaches your handler, and without it is a bare
//!   `SIGSEGV`.
//!
//! # Layering
//!
//! This module is the bottom layer: it uses nothing else from cogen. The
//! coroutine layer hands a `StackUser` over with every stack it takes
//! (`PooledStack::take`): the describer the overflow handler asks which
//! coroutine overflowed, and a hook that prepares each newly mapped stack.
//! The describer and the coroutine layer ask which stack an address is on
//! (`stack_holding`, `stack_starting_at`).
//!
//! `mod.rs` holds sizes, `error.rs` [`StackError`] and what ran out,
//! `pool.rs` the pool, `registry.rs` the stacks each thread has mapped
//! (which stack holds an address) and `overflow.rs` the signal handler.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};

mod error;
pub(crate) mod overflow;
mod pool;
mod registry;

pub use error::StackError;

pub(crate) use pool::{PooledStack, StackUser, prewarm};
pub use pool::{pooled_stacks, set_pool_capacity};
pub(crate) use registry::{StackBounds, colored_top, stack_holding, stack_starting_at};

/// The stack size a coroutine gets unless its [`Builder`](crate::Builder) says
/// otherwise: 1 MiB of address space, as corosensei's own default. Only the
/// pages a coroutine touches become resident memory (one or two for a small
/// body), so a generous default costs address space, not RAM.
pub const DEFAULT_STACK_SIZE: usize = 1024 * 1024;

/// The smallest stack size cogen accepts; smaller requests are rounded up.
///
/// corosensei itself accepts 4 KiB, but a coroutine needs room for more than
/// its own frames: a panic needs the unwinder and the panic message, and
/// dropping a suspended coroutine unwinds its stack from the deepest frame.
/// With 4 KiB either of those overflows. 32 KiB leaves room for both in debug
/// builds (tested by `tests/stack.rs`).
pub const MIN_STACK_SIZE: usize = 32 * 1024;

/// How many finished stacks of each size a thread keeps for reuse by default.
pub const DEFAULT_POOL_CAPACITY: usize = 1024;

/// Rounds a requested stack size to what a coroutine actually gets, or says
/// that no stack of that size can exist.
#[inline]
pub(crate) fn effective_size(requested: usize) -> Result<usize, StackError> {
    if requested == DEFAULT_STACK_SIZE {
        return Ok(requested); // a whole number of pages on every platform
    }
    let page = page_size();
    // Room for the rounding and the guard page that `DefaultStack` adds.
    requested
        .max(MIN_STACK_SIZE)
        .checked_add(2 * page)
        .map(|_| (requested.max(MIN_STACK_SIZE) + page - 1) & !(page - 1))
        .ok_or_else(|| {
            StackError::invalid(
                requested,
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the stack size does not fit in the address space",
                ),
            )
        })
}

pub(crate) fn page_size() -> usize {
    static PAGE: AtomicUsize = AtomicUsize::new(0);
    match PAGE.load(Ordering::Relaxed) {
        0 => {
            // SAFETY: sysconf has no preconditions.
            let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
            let page = usize::try_from(page).unwrap_or(4096);
            PAGE.store(page, Ordering::Relaxed);
            page
        }
        page => page,
    }
}

/// Asks the CPU to start loading the cache line at `addr`, for a read soon
/// (any address: a prefetch never faults and has no effect the program can
/// see). Nothing on targets other than x86_64. Here, at the bottom of the
/// layers, for the pool, the coroutine's `prefetch` and the event loop.
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

/// Asks for the line of `at` and the two below it: on a parked stack, the
/// frames a resume reads first (below the stack pointer it suspended at,
/// or below the `Meta` of a coroutine that has not run). What the pool,
/// `Coroutine::prefetch` and the event loop's run queue ask for.
#[inline(always)]
pub(crate) fn prefetch_stack_lines(at: usize) {
    prefetch(at);
    prefetch(at.wrapping_sub(64));
    prefetch(at.wrapping_sub(128));
}
