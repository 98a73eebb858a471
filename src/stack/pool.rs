//! The per-thread pool of reusable stacks and [`PooledStack`], the stack a
//! coroutine runs on, which goes back to the pool when dropped.
//!
//! # Layout
//!
//! Each mapped stack has a small heap record, a [`Node`], that owns the
//! mapping and links it into a free list while it is in the pool. (Boxed
//! on purpose: a coroutine that owns its `DefaultStack` by value measured
//! 19 ns per create/run/drop against 7 ns for one that holds a pointer to
//! it; the same gap shows in raw corosensei, owned stack 11 ns, borrowed
//! 2 ns.) The default size, which nearly every coroutine uses, has its own
//! list in a thread-local without a destructor, so that taking and giving
//! back a stack is a few loads and stores: no lazy initialisation check, no
//! borrow flag, no `Vec`. The lists of other sizes sit in a thread-local
//! with a destructor, [`Others`], which also empties the default list when
//! the thread ends and refuses stacks given back after that, so that no
//! stack outlives its thread in the pool.

use std::cell::{Cell, RefCell};
use std::ptr::{self, NonNull};

use corosensei::stack::{Stack, StackPointer};

use super::overflow::{self, DescribeOverflow};
use super::registry::MappedStack;
use super::{DEFAULT_POOL_CAPACITY, DEFAULT_STACK_SIZE, StackError};

/// The free list's length from which a take asks the CPU for what the
/// take after it reads (see [`FreeList::pop_linked`]): the stacks' top
/// pages stop fitting in the TLB (the event loop's run queue starts its
/// prefetching at the same length).
const PREFETCH_FROM: usize = 1024;

/// A mapped stack, and its link in a free list while it is in the pool.
struct Node {
    /// Owned for its destructor, which unmaps the stack.
    _stack: MappedStack,
    /// Where its frames begin, `colored_top(stack.top(), stack.limit())`, and
    /// `stack.limit()`: computed once, when the stack is mapped, rather than
    /// each time it is taken from the pool.
    base: StackPointer,
    limit: StackPointer,
    /// The size it was mapped for (see [`PooledStack::take`]).
    size: usize,
    /// The next free stack of the list, or null; meaningless when taken.
    next: *mut Node,
    /// The `base` of `next`'s stack (0 with no `next`), read without
    /// loading `next`'s record: what a take asks the CPU to start loading
    /// for the take after it (see [`FreeList::pop_linked`]).
    next_base: usize,
}

/// A list of free stacks of one size, linked through their nodes. Owns
/// them: each pointer in it came from `Box::into_raw`.
///
/// A stack given back while `hot` is empty waits there, outside the list,
/// and is the first taken: a coroutine made right after another ended (the
/// common case: the take emptied `hot`, the give-back refilled it) takes it
/// with one load and one store, and giving it back touches neither `head`
/// nor `linked`. A stack given back while `hot` is full goes on the list
/// (so after several give-backs in a row, `hot` holds the first of them). Through the list, each create and drop would read what the one
/// before had just written (the head, the node's link, the count), and the
/// processor waits on each of those stores to be forwarded to the next
/// load; that chain, not the instructions, was most of a create's time.
struct FreeList {
    /// A free stack, or null; the first to be taken, and not in the list.
    hot: Cell<*mut Node>,
    head: Cell<*mut Node>,
    /// The `base` of `head`'s stack, or 0: kept here so that linking a
    /// node records it (`Node::next_base`) without loading the head's
    /// record.
    head_base: Cell<usize>,
    /// The stacks in the list, not counting `hot`.
    linked: Cell<usize>,
}

impl FreeList {
    const fn new() -> Self {
        FreeList {
            hot: Cell::new(ptr::null_mut()),
            head: Cell::new(ptr::null_mut()),
            head_base: Cell::new(0),
            linked: Cell::new(0),
        }
    }

    /// How many free stacks it holds.
    #[inline(always)]
    fn len(&self) -> usize {
        self.linked.get() + usize::from(!self.hot.get().is_null())
    }

    #[inline(always)]
    fn pop(&self) -> Option<Box<Node>> {
        let hot = self.hot.get();
        if !hot.is_null() {
            self.hot.set(ptr::null_mut());
            // SAFETY: a non-null `hot` came from `Box::into_raw` in `keep` or
            // `split_off`, and the list owns it until here; nothing else
            // points at it.
            return Some(unsafe { Box::from_raw(hot) });
        }
        self.pop_linked()
    }

    /// [`pop`](FreeList::pop) when `hot` is empty.
    #[inline]
    fn pop_linked(&self) -> Option<Box<Node>> {
        let head = self.head.get();
        if head.is_null() {
            return None;
        }
        // SAFETY: a non-null head came from `Box::into_raw` in `link`, and
        // the list owns it until here; nothing else points at it.
        let node = unsafe { Box::from_raw(head) };
        self.head.set(node.next);
        self.head_base.set(node.next_base);
        let linked = self.linked.get() - 1;
        self.linked.set(linked);
        // The next take reads the new head's record and writes at the top
        // of its stack (the coroutine's `Meta`, corosensei's first frame).
        // With thousands of stacks pooled, neither is in the caches or the
        // TLB any more, so ask for them now, while this stack's coroutine
        // is made. With fewer, they still are, and asking costs more than
        // it gains. (Taking from `hot` asks for nothing: that stack was
        // just used.)
        if linked >= PREFETCH_FROM {
            super::prefetch(node.next as usize);
            super::prefetch_stack_lines(node.next_base.wrapping_sub(64));
        }
        Some(node)
    }

    /// Keeps `node` if the list holds fewer than `capacity` stacks, or
    /// hands it back.
    ///
    /// The capacity is compared on each branch, with `hot` known there,
    /// rather than once through [`len`](FreeList::len): that way counted 3
    /// instructions more per coroutine made and dropped.
    #[inline(always)]
    fn keep(&self, node: Box<Node>, capacity: usize) -> Option<Box<Node>> {
        let linked = self.linked.get();
        if self.hot.get().is_null() {
            if linked >= capacity {
                return Some(node);
            }
            self.hot.set(Box::into_raw(node));
            return None;
        }
        if linked + 1 >= capacity {
            return Some(node);
        }
        self.link(node);
        None
    }

    /// Puts `node` at the head of the list.
    #[inline(always)]
    fn link(&self, mut node: Box<Node>) {
        node.next = self.head.get();
        node.next_base = self.head_base.get();
        self.head_base.set(node.base.get());
        self.head.set(Box::into_raw(node));
        self.linked.set(self.linked.get() + 1);
    }

    /// Unlinks the stacks beyond the first `keep`, for the caller to unmap.
    #[allow(clippy::vec_box)] // the nodes are boxes already; no need to move them out
    fn split_off(&self, keep: usize) -> Vec<Box<Node>> {
        let mut kept = Vec::new();
        let mut dropped = Vec::new();
        while let Some(node) = self.pop() {
            if kept.len() < keep {
                kept.push(node);
            } else {
                dropped.push(node);
            }
        }
        // Back in the order they were in: the first taken in `hot` again
        // (`pop` emptied it), the others linked from the last.
        let mut kept = kept.into_iter();
        let first = kept.next();
        for node in kept.rev() {
            self.link(node);
        }
        if let Some(first) = first {
            self.hot.set(Box::into_raw(first));
        }
        dropped
    }
}

/// The free stacks of the sizes other than the default; few distinct sizes
/// are in use, so a `Vec` beats a map. Its destructor, which runs when the
/// thread ends (it is touched whenever a stack is mapped, so it is
/// registered by then), unmaps every free stack and closes the pool.
struct Others(RefCell<Vec<(usize, FreeList)>>);

impl Drop for Others {
    fn drop(&mut self) {
        // Stacks given back from now on (by coroutines that other
        // thread-locals' destructors drop) are unmapped at once.
        CAPACITY.set(0);
        let mut dropped = DEFAULT.with(|free| free.split_off(0));
        for (_, free) in self.0.get_mut().iter() {
            dropped.extend(free.split_off(0));
        }
        drop(dropped);
    }
}

thread_local! {
    /// How many free stacks of each size this thread keeps.
    static CAPACITY: Cell<usize> = const { Cell::new(DEFAULT_POOL_CAPACITY) };
    /// The free stacks of the default size (no destructor: see the file's docs).
    static DEFAULT: FreeList = const { FreeList::new() };
    static OTHERS: Others = const { Others(RefCell::new(Vec::new())) };
}

/// This thread's free list of default-size stacks.
#[inline(always)]
fn default_list<R>(f: impl FnOnce(&FreeList) -> R) -> R {
    // A pointer rather than `DEFAULT.with(f)`: the compiler inlines a
    // closure that small for sure, and the hot paths need no call.
    let list = DEFAULT.with(|list| list as *const FreeList);
    // SAFETY: a thread-local without a destructor lives as long as the
    // thread, and the reference does not outlive this call.
    f(unsafe { &*list })
}

/// A free stack of `size` bytes from this thread's pool, if it has one.
#[inline]
fn take(size: usize) -> Option<Box<Node>> {
    if size == DEFAULT_STACK_SIZE {
        return default_list(FreeList::pop);
    }
    take_other(size)
}

/// [`take`] for a size other than the default: out of line, so that taking
/// a default-size stack inlines.
#[cold]
#[inline(never)]
fn take_other(size: usize) -> Option<Box<Node>> {
    OTHERS
        .try_with(|others| {
            let others = others.0.try_borrow().ok()?;
            others.iter().find(|(s, _)| *s == size)?.1.pop()
        })
        .ok()
        .flatten()
}

/// Keeps `node` for reuse, or hands it back when the pool is full.
#[inline(always)]
fn put(node: Box<Node>) -> Option<Box<Node>> {
    let size = node.size;
    if size == DEFAULT_STACK_SIZE {
        return default_list(|free| free.keep(node, CAPACITY.get()));
    }
    put_other(size, node)
}

#[cold]
fn put_other(size: usize, node: Box<Node>) -> Option<Box<Node>> {
    let capacity = CAPACITY.get();
    // Once the thread's lists are gone, the closure is dropped unused, and
    // `node` with it: the stack is unmapped.
    OTHERS
        .try_with(move |others| {
            let Ok(mut others) = others.0.try_borrow_mut() else {
                return Some(node);
            };
            let i = match others.iter().position(|(s, _)| *s == size) {
                Some(i) => i,
                None => {
                    others.push((size, FreeList::new()));
                    others.len() - 1
                }
            };
            others[i].1.keep(node, capacity)
        })
        .unwrap_or(None)
}

/// True once this thread's pool is closed: `Others` has been (or is being)
/// dropped, the thread is ending, and the pool keeps no stack any more.
///
/// Public functions that thread-locals' destructors may call check it
/// rather than `OTHERS.with`, which panics then (and a panic in a
/// thread-local destructor aborts the process).
fn closed() -> bool {
    OTHERS.try_with(|_| ()).is_err()
}

/// How many free stacks of `size` this thread holds.
fn held(size: usize) -> usize {
    if size == DEFAULT_STACK_SIZE {
        return DEFAULT.with(|free| free.len());
    }
    OTHERS
        .try_with(|others| {
            others
                .0
                .borrow()
                .iter()
                .find(|(s, _)| *s == size)
                .map_or(0, |(_, free)| free.len())
        })
        .unwrap_or(0)
}

/// Sets how many finished stacks of each size this thread keeps for reuse.
///
/// Stacks over the new capacity are unmapped at once. A capacity of 0 turns
/// pooling off: every coroutine then maps and unmaps its own stack.
pub fn set_pool_capacity(capacity: usize) {
    if closed() {
        return; // the thread is ending and its pool is closed
    }
    CAPACITY.set(capacity);
    let mut dropped = DEFAULT.with(|free| free.split_off(capacity));
    OTHERS.with(|others| {
        for (_, free) in others.0.borrow().iter() {
            dropped.extend(free.split_off(capacity));
        }
    });
    drop(dropped); // unmapped outside the borrows
}

/// Maps stacks of `size` bytes (already rounded by
/// [`effective_size`](super::effective_size)) into this thread's pool until
/// it holds `count` of that size, raising the pool's capacity to `count` if
/// it is lower; returns how many were mapped. `user` is as in
/// [`PooledStack::take`].
///
/// Maps nothing once the pool is closed (the thread is ending): the stacks
/// could only be unmapped again, and raising the capacity then would let
/// the default list keep stacks that nothing unmaps.
pub(crate) fn prewarm(size: usize, count: usize, user: StackUser) -> Result<usize, StackError> {
    if closed() {
        return Ok(0);
    }
    if CAPACITY.get() < count {
        CAPACITY.set(count);
    }
    let mut mapped = 0;
    while held(size) < count {
        let node = PooledStack::map(size, user)?;
        // Mapping does not touch the pool, so the pool takes it (it has room).
        let refused = put(node);
        debug_assert!(refused.is_none());
        drop(refused);
        mapped += 1;
    }
    Ok(mapped)
}

/// How many finished stacks this thread holds for reuse, over all sizes
/// (none once the thread is ending and its pool is closed).
pub fn pooled_stacks() -> usize {
    DEFAULT.with(|free| free.len())
        + OTHERS
            .try_with(|others| {
                others
                    .0
                    .borrow()
                    .iter()
                    .map(|(_, free)| free.len())
                    .sum::<usize>()
            })
            .unwrap_or(0) // closed: it holds none
}

/// Unmaps a stack the pool has no room for (or, during thread teardown,
/// no longer takes): out of line, so that giving a stack back inlines.
#[cold]
#[inline(never)]
fn unmap(node: Box<Node>) {
    drop(node);
}

/// What the layer that runs code on the stacks hands this one with every
/// stack it takes (the stack layer knows nothing of coroutines).
#[derive(Clone, Copy, Debug)]
pub(crate) struct StackUser {
    /// Tells the stack-overflow handler, installed when the first stack is
    /// mapped, whether a fault hit the guard page of a coroutine's stack
    /// and what to print about it (see [`overflow`]).
    pub(crate) describe_overflow: DescribeOverflow,
    /// Called with each newly mapped stack before anything runs on it (and
    /// before it is handed out or pooled), on the slow path of mapping.
    pub(crate) prepare: fn(&mut PooledStack),
}

/// A stack taken from this thread's pool, returned to it on drop.
pub(crate) struct PooledStack {
    /// Copied out of the node: corosensei reads the base on every switch,
    /// and a coroutine's own fields are already in cache then. Below the
    /// mapping's colored top (see `colored_top`) by what `reserve_top` set
    /// aside.
    base: StackPointer,
    node: std::mem::ManuallyDrop<Box<Node>>,
}

impl PooledStack {
    /// Takes a stack of `size` bytes (already rounded by
    /// [`effective_size`](super::effective_size)) from the pool, or maps a
    /// new one, which `user` prepares first.
    #[inline]
    pub(crate) fn take(size: usize, user: StackUser) -> Result<Self, StackError> {
        let node = match take(size) {
            Some(node) => node,
            None => Self::map(size, user)?,
        };
        Ok(Self::from_node(node))
    }

    #[inline(always)]
    fn from_node(node: Box<Node>) -> Self {
        PooledStack {
            base: node.base,
            node: std::mem::ManuallyDrop::new(node),
        }
    }

    /// Maps a stack and has `user` prepare it.
    #[cold]
    fn map(size: usize, user: StackUser) -> Result<Box<Node>, StackError> {
        let node = Self::map_unprepared(size, user.describe_overflow)?;
        let mut stack = std::mem::ManuallyDrop::new(Self::from_node(node));
        // Should `prepare` panic, the stack is leaked, not pooled
        // half-prepared. What `prepare` sets aside with `reserve_top` is
        // given back with this view of the stack: the node keeps no base.
        (user.prepare)(&mut stack);
        // SAFETY: `stack` is never used again (nor dropped).
        Ok(unsafe { std::mem::ManuallyDrop::take(&mut stack.node) })
    }

    fn map_unprepared(size: usize, describe: DescribeOverflow) -> Result<Box<Node>, StackError> {
        overflow::install(describe);
        // Registers the pool's destructor, which unmaps the free stacks
        // when the thread ends (see `Others`).
        let _ = OTHERS.try_with(|_| ());
        MappedStack::new(size)
            .map(|stack| {
                // SAFETY: a mapping's limit is not zero, and its colored top
                // is at most 31 cache lines below its top (a 128th of the
                // mapping at most), far above its limit.
                let (base, limit) = unsafe {
                    (
                        StackPointer::new_unchecked(super::colored_top(stack.top(), stack.limit())),
                        StackPointer::new_unchecked(stack.limit()),
                    )
                };
                Box::new(Node {
                    _stack: stack,
                    base,
                    limit,
                    size,
                    next: ptr::null_mut(),
                    next_base: 0,
                })
            })
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
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: `self.node` is never used again after this.
        let node = unsafe { std::mem::ManuallyDrop::take(&mut self.node) };
        if let Some(node) = put(node) {
            unmap(node);
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
        self.node.limit
    }
}
