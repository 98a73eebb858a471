//! Coroutine stacks: sizes, guard pages and a per-thread pool of reusable stacks.
//!
//! Every stackful coroutine runs on its own stack: a memory mapping with a
//! guard page below it (corosensei's [`DefaultStack`]), so that an overflow
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
//! coroutines can be alive at once. Past that, creation fails with a
//! [`StackError`] that says so; [`Coroutine::new`](crate::Coroutine::new)
//! panics with the same message, [`Builder::try_build`](crate::Builder::try_build)
//! returns it. Stackless coroutines (feature `nightly`) have no such cap.
//!
//! # Stack overflow
//!
//! Overflowing a coroutine's stack hits its guard page. cogen installs a
//! `SIGSEGV`/`SIGBUS` handler (on an alternate signal stack) that recognises a
//! fault in the running coroutine's guard page, prints which coroutine
//! overflowed, its stack size and how to raise it, and aborts, as the standard
//! library does for threads. Faults anywhere else go to the previous handler.

use std::cell::RefCell;
use std::fmt;
use std::io;

use corosensei::stack::{DefaultStack, Stack, StackPointer};

pub(crate) mod overflow;

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

/// A stack could not be mapped, so a coroutine could not be created.
///
/// The message says why and what to do about it; the usual cause is Linux's
/// per-process limit on memory mappings.
#[derive(Debug)]
pub struct StackError {
    size: usize,
    source: io::Error,
}

impl StackError {
    /// The stack size that was requested, in bytes.
    pub fn stack_size(&self) -> usize {
        self.size
    }

    /// The operating system's error.
    pub fn io_error(&self) -> &io::Error {
        &self.source
    }
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot map a {} KiB coroutine stack: {}",
            self.size / 1024,
            self.source
        )?;
        if cfg!(target_os = "linux") {
            let max = std::fs::read_to_string("/proc/sys/vm/max_map_count")
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok());
            let max_text = max.map_or_else(|| "its limit".to_string(), |m| m.to_string());
            let stacks = max.map_or_else(|| "half as many".to_string(), |m| (m / 2).to_string());
            write!(
                f,
                "; each guarded stack takes two memory mappings and this process may have \
                 {max_text} (vm.max_map_count), so about {stacks} stackful coroutines can be \
                 alive at once: drop finished coroutines, raise the limit \
                 (`sysctl -w vm.max_map_count=262144`), or use stackless coroutines \
                 (cogen's `nightly` feature) past that"
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for StackError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Rounds a requested stack size to what a coroutine actually gets.
pub(crate) fn effective_size(requested: usize) -> usize {
    let page = page_size();
    requested.max(MIN_STACK_SIZE).next_multiple_of(page)
}

pub(crate) fn page_size() -> usize {
    thread_local! {
        static PAGE: usize = {
            // SAFETY: sysconf has no preconditions.
            let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
            usize::try_from(page).unwrap_or(4096)
        };
    }
    PAGE.with(|p| *p)
}

struct Pool {
    capacity: usize,
    /// Free stacks by size; few distinct sizes are in use, so a `Vec` beats a map.
    free: Vec<(usize, Vec<DefaultStack>)>,
}

thread_local! {
    static POOL: RefCell<Pool> = const {
        RefCell::new(Pool { capacity: DEFAULT_POOL_CAPACITY, free: Vec::new() })
    };
}

/// Sets how many finished stacks of each size this thread keeps for reuse.
///
/// Stacks over the new capacity are unmapped at once. A capacity of 0 turns
/// pooling off: every coroutine then maps and unmaps its own stack.
pub fn set_pool_capacity(capacity: usize) {
    let dropped = POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        pool.capacity = capacity;
        let mut dropped = Vec::new();
        for (_, stacks) in &mut pool.free {
            if stacks.len() > capacity {
                dropped.extend(stacks.drain(capacity..));
            }
        }
        dropped
    });
    drop(dropped); // unmapped outside the borrow
}

/// How many finished stacks this thread holds for reuse, over all sizes.
pub fn pooled_stacks() -> usize {
    POOL.with(|pool| pool.borrow().free.iter().map(|(_, s)| s.len()).sum())
}

/// A stack taken from this thread's pool, returned to it on drop.
pub(crate) struct PooledStack {
    stack: std::mem::ManuallyDrop<DefaultStack>,
    size: usize,
}

impl PooledStack {
    /// Takes a stack of `size` bytes (already rounded by [`effective_size`])
    /// from the pool, or maps a new one.
    pub(crate) fn take(size: usize) -> Result<Self, StackError> {
        let reused = POOL
            .try_with(|pool| {
                let mut pool = pool.borrow_mut();
                pool.free
                    .iter_mut()
                    .find(|(s, _)| *s == size)
                    .and_then(|(_, stacks)| stacks.pop())
            })
            .ok()
            .flatten();
        let stack = match reused {
            Some(stack) => stack,
            None => {
                overflow::install();
                DefaultStack::new(size).map_err(|source| StackError { size, source })?
            }
        };
        Ok(PooledStack {
            stack: std::mem::ManuallyDrop::new(stack),
            size,
        })
    }

    /// The usable size of this stack in bytes (the guard page excluded).
    pub(crate) fn size(&self) -> usize {
        self.size
    }
}

impl Drop for PooledStack {
    fn drop(&mut self) {
        // SAFETY: `self.stack` is never used again after this.
        let stack = unsafe { std::mem::ManuallyDrop::take(&mut self.stack) };
        let size = self.size;
        // During thread teardown the pool may be gone: then the stack is unmapped.
        let _ = POOL.try_with(move |pool| {
            let Ok(mut pool) = pool.try_borrow_mut() else {
                return;
            };
            let capacity = pool.capacity;
            let stacks = match pool.free.iter().position(|(s, _)| *s == size) {
                Some(i) => &mut pool.free[i].1,
                None => {
                    pool.free.push((size, Vec::new()));
                    &mut pool.free.last_mut().expect("just pushed").1
                }
            };
            if stacks.len() < capacity {
                stacks.push(stack);
            }
        });
    }
}

// SAFETY: delegates to `DefaultStack`, which has a guard page and at least
// `MIN_STACK_SIZE` usable bytes; the mapping lives as long as `self`.
unsafe impl Stack for PooledStack {
    #[inline]
    fn base(&self) -> StackPointer {
        self.stack.base()
    }

    #[inline]
    fn limit(&self) -> StackPointer {
        self.stack.limit()
    }
}
