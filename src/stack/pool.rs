//! The per-thread pool of reusable stacks and [`PooledStack`], the stack a
//! coroutine runs on, which goes back to the pool when dropped.

use std::cell::{Cell, RefCell};
use std::ptr::NonNull;

use corosensei::stack::{Stack, StackPointer};

use super::overflow::{self, DescribeOverflow};
use super::registry::MappedStack;
use super::{DEFAULT_POOL_CAPACITY, DEFAULT_STACK_SIZE, StackError};

/// This thread's free stacks. The default size, which nearly every
/// coroutine uses, has its own list so that taking and returning a stack is
/// a borrow flag and a `Vec` push or pop.
///
/// Stacks are boxed on purpose: a coroutine that owns its `DefaultStack` by
/// value measured 19 ns per create/run/drop against 7 ns for one that holds a
/// pointer to it (the same gap shows in raw corosensei: owned stack 11 ns,
/// borrowed 2 ns), so the pool hands out boxed stacks.
#[allow(clippy::vec_box)]
struct Pool {
    capacity: Cell<usize>,
    default: RefCell<Vec<Box<MappedStack>>>,
    /// Other sizes; few distinct sizes are in use, so a `Vec` beats a map.
    other: RefCell<Vec<(usize, Vec<Box<MappedStack>>)>>,
}

thread_local! {
    static POOL: Pool = const {
        Pool {
            capacity: Cell::new(DEFAULT_POOL_CAPACITY),
            default: RefCell::new(Vec::new()),
            other: RefCell::new(Vec::new()),
        }
    };
}

impl Pool {
    #[inline]
    fn take(&self, size: usize) -> Option<Box<MappedStack>> {
        if size == DEFAULT_STACK_SIZE {
            self.default.try_borrow_mut().ok()?.pop()
        } else {
            let mut other = self.other.try_borrow_mut().ok()?;
            other.iter_mut().find(|(s, _)| *s == size)?.1.pop()
        }
    }

    /// Keeps `stack` for reuse, or hands it back when the pool is full.
    #[inline]
    fn put(&self, size: usize, stack: Box<MappedStack>) -> Option<Box<MappedStack>> {
        let capacity = self.capacity.get();
        if size == DEFAULT_STACK_SIZE {
            let Ok(mut free) = self.default.try_borrow_mut() else {
                return Some(stack);
            };
            if free.len() < capacity {
                free.push(stack);
                return None;
            }
            return Some(stack);
        }
        let Ok(mut other) = self.other.try_borrow_mut() else {
            return Some(stack);
        };
        let i = match other.iter().position(|(s, _)| *s == size) {
            Some(i) => i,
            None => {
                other.push((size, Vec::new()));
                other.len() - 1
            }
        };
        let free = &mut other[i].1;
        if free.len() < capacity {
            free.push(stack);
            None
        } else {
            Some(stack)
        }
    }
}

/// Sets how many finished stacks of each size this thread keeps for reuse.
///
/// Stacks over the new capacity are unmapped at once. A capacity of 0 turns
/// pooling off: every coroutine then maps and unmaps its own stack.
pub fn set_pool_capacity(capacity: usize) {
    let dropped = POOL.with(|pool| {
        pool.capacity.set(capacity);
        let mut dropped = Vec::new();
        let mut default = pool.default.borrow_mut();
        if default.len() > capacity {
            dropped.extend(default.drain(capacity..));
        }
        for (_, stacks) in pool.other.borrow_mut().iter_mut() {
            if stacks.len() > capacity {
                dropped.extend(stacks.drain(capacity..));
            }
        }
        dropped
    });
    drop(dropped); // unmapped outside the borrows
}

/// Maps stacks of `size` bytes (already rounded by
/// [`effective_size`](super::effective_size)) into this thread's pool until
/// it holds `count` of that size, raising the pool's capacity to `count` if
/// it is lower; returns how many were mapped. `describe` is as in
/// [`PooledStack::take`].
pub(crate) fn prewarm(
    size: usize,
    count: usize,
    describe: DescribeOverflow,
) -> Result<usize, StackError> {
    POOL.with(|pool| {
        if pool.capacity.get() < count {
            pool.capacity.set(count);
        }
    });
    let held = |pool: &Pool| {
        if size == DEFAULT_STACK_SIZE {
            pool.default.borrow().len()
        } else {
            let other = pool.other.borrow();
            other
                .iter()
                .find(|(s, _)| *s == size)
                .map_or(0, |(_, v)| v.len())
        }
    };
    let mut mapped = 0;
    while POOL.with(held) < count {
        let stack = PooledStack::map(size, describe)?;
        // Mapping does not touch the pool, so the pool takes it (it has room).
        let refused = POOL.with(|pool| pool.put(size, stack));
        debug_assert!(refused.is_none());
        drop(refused);
        mapped += 1;
    }
    Ok(mapped)
}

/// How many finished stacks this thread holds for reuse, over all sizes.
pub fn pooled_stacks() -> usize {
    POOL.with(|pool| {
        pool.default.borrow().len()
            + pool
                .other
                .borrow()
                .iter()
                .map(|(_, s)| s.len())
                .sum::<usize>()
    })
}

/// A stack taken from this thread's pool, returned to it on drop.
pub(crate) struct PooledStack {
    /// Copied out of the box: corosensei reads the base on every switch,
    /// and a coroutine's own fields are already in cache then. Below the
    /// mapping's top by what `reserve_top` set aside.
    base: StackPointer,
    limit: StackPointer,
    stack: std::mem::ManuallyDrop<Box<MappedStack>>,
    size: usize,
}

impl PooledStack {
    /// Takes a stack of `size` bytes (already rounded by
    /// [`effective_size`](super::effective_size)) from the pool, or maps a
    /// new one.
    ///
    /// `describe` tells the stack-overflow handler, installed when the first
    /// stack is mapped, whether a fault hit the guard page of the running
    /// coroutine and what to print about it (see [`overflow`]).
    #[inline]
    pub(crate) fn take(size: usize, describe: DescribeOverflow) -> Result<Self, StackError> {
        let stack = match POOL.try_with(|pool| pool.take(size)).ok().flatten() {
            Some(stack) => stack,
            None => Self::map(size, describe)?,
        };
        // SAFETY: a mapping's top and limit are not zero.
        let (base, limit) = unsafe {
            (
                StackPointer::new_unchecked(stack.top()),
                StackPointer::new_unchecked(stack.limit()),
            )
        };
        Ok(PooledStack {
            base,
            limit,
            stack: std::mem::ManuallyDrop::new(stack),
            size,
        })
    }

    #[cold]
    fn map(size: usize, describe: DescribeOverflow) -> Result<Box<MappedStack>, StackError> {
        overflow::install(describe);
        MappedStack::new(size)
            .map(Box::new)
            .map_err(|source| StackError::mapping_failed(size, source))
    }

    /// Sets the top `bytes` of the stack aside for its owner, who may keep
    /// there what must not move while the stack is in use: from now on
    /// [`base`](Stack::base) is just below them. Returns their address.
    ///
    /// The stack layer never reads or writes those bytes; the owner must
    /// drop whatever it keeps there before the stack is dropped (it then
    /// goes back to the pool with its full size again).
    ///
    /// Call it once, before the stack is used.
    ///
    /// # Panics
    /// If `bytes` is not a multiple of 16 (the base must stay aligned) or
    /// more than half of [`MIN_STACK_SIZE`](super::MIN_STACK_SIZE).
    #[inline]
    pub(crate) fn reserve_top(&mut self, bytes: usize) -> NonNull<u8> {
        assert!(bytes.is_multiple_of(16) && bytes <= super::MIN_STACK_SIZE / 2);
        let top = self.base.get() - bytes;
        // SAFETY: the stack is at least `MIN_STACK_SIZE` bytes, so `top` is
        // still above its limit, and so not zero.
        self.base = unsafe { StackPointer::new_unchecked(top) };
        // SAFETY: as above.
        unsafe { NonNull::new_unchecked(top as *mut u8) }
    }
}

impl Drop for PooledStack {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: `self.stack` is never used again after this.
        let stack = unsafe { std::mem::ManuallyDrop::take(&mut self.stack) };
        let size = self.size;
        // During thread teardown the pool may be gone: then the stack is unmapped.
        if let Ok(Some(unwanted)) = POOL.try_with(move |pool| pool.put(size, stack)) {
            drop(unwanted);
        }
    }
}

// SAFETY: delegates to `DefaultStack`, which has a guard page and at least
// `MIN_STACK_SIZE` usable bytes; the mapping lives as long as `self`.
unsafe impl Stack for PooledStack {
    #[inline]
    fn base(&self) -> StackPointer {
        self.base
    }

    #[inline]
    fn limit(&self) -> StackPointer {
        self.limit
    }
}
