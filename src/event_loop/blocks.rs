//! Recycled task memory: a loop keeps the allocations of its finished tasks
//! and hands them to its next spawns, so that in a steady state spawning a
//! task calls no allocator.
//!
//! # Why
//!
//! A task is one `Rc` allocation (`task.rs`). With many tasks alive at once
//! (a burst of spawns, then joins) a general-purpose allocator's per-size
//! caches overflow (glibc keeps seven blocks per size per thread), and each
//! spawn and each task's end then cost a trip into its bins: a quarter of
//! a trivial task's cost. Here taking a block is a `Vec` pop and giving one
//! back a push.
//!
//! # How, and why it is sound
//!
//! When the last reference to a task goes at a place the loop controls (a
//! detached task finishing, a [`JoinHandle`](super::JoinHandle) dropped on
//! the loop's thread while the loop runs), [`Blocks::recycle`] drops the
//! task's value in place and keeps the allocation as a raw pointer, from
//! `Rc::into_raw`, in a list per size and alignment of the value. A spawn of
//! a body whose task has that size and alignment turns the pointer back into
//! an `Rc<MaybeUninit<Task<B>>>` with `Rc::from_raw`, which std allows for any
//! type of the same size and alignment as the one the pointer was made for
//! (for an unsized `Rc`, the size and alignment of its value); the counts are
//! those of an `Rc` that nothing else references (one strong, no weak: only
//! such tasks are recycled). Nothing else ever sees the pointer.
//!
//! At most [`MAX_KEPT_BYTES`] are kept; the rest is freed as before. The
//! kept blocks are freed with the loop.

use std::cell::UnsafeCell;
use std::mem::{MaybeUninit, align_of, size_of};
use std::ptr::NonNull;
use std::rc::Rc;

use super::task::{Task, TaskBody};

/// The most task memory (values, not counting the `Rc` counts) a loop keeps
/// for reuse: 4 MiB, some 20,000 trivial stackful tasks.
pub(crate) const MAX_KEPT_BYTES: usize = 4 << 20;

/// The free task allocations of one loop, by size and alignment.
///
/// Each method finishes with the lists before returning and runs no user
/// code meanwhile (`recycle` drops the task's value before it looks at the
/// lists), so no two accesses overlap: a `RefCell`'s borrow flag would only
/// cost time on every spawn.
#[derive(Default)]
pub(crate) struct Blocks(UnsafeCell<Lists>);

#[derive(Default)]
struct Lists {
    classes: Vec<Class>,
    kept_bytes: usize,
}

/// The free blocks for task values of one size and alignment.
struct Class {
    size: usize,
    align: usize,
    /// Frees one block of this class: made for the first body type of this
    /// size and alignment, and right for all of them (see the module docs).
    free: unsafe fn(NonNull<()>),
    /// Each from `Rc::into_raw` of a task of this size and alignment whose
    /// value was dropped; its `Rc` has one strong count and no weak one.
    blocks: Vec<NonNull<()>>,
}

/// # Safety
/// `block` is in a [`Class`] of `Task<B>`'s size and alignment, and is no
/// longer in it.
unsafe fn free_block<B: TaskBody + 'static>(block: NonNull<()>) {
    // SAFETY: see `Class::blocks` and the module docs; dropping an
    // `Rc<MaybeUninit<_>>` that has the last count frees the memory and
    // drops no value.
    drop(unsafe { Rc::from_raw(block.as_ptr().cast_const().cast::<MaybeUninit<Task<B>>>()) });
}

/// The class index a task gets when its memory cannot be recycled (more
/// than 255 classes: a loop running tasks of that many different sizes).
pub(crate) const NO_CLASS: u8 = u8::MAX;

impl Blocks {
    /// Memory for a task with body `B`, a recycled block or a new one, and
    /// the class it goes back to (for [`Header::block_class`](super::task::Header::block_class)).
    #[inline(always)]
    pub(crate) fn alloc<B: TaskBody + 'static>(&self) -> (Rc<MaybeUninit<Task<B>>>, u8) {
        let (size, align) = (size_of::<Task<B>>(), align_of::<Task<B>>());
        // SAFETY: see the type's docs.
        let lists = unsafe { &mut *self.0.get() };
        let found = lists
            .classes
            .iter_mut()
            .enumerate()
            .find(|(_, c)| c.size == size && c.align == align);
        let class = match found {
            Some((i, class)) => {
                if let Some(block) = class.blocks.pop() {
                    lists.kept_bytes -= size;
                    // SAFETY: a block of this class (see `Class::blocks`),
                    // taken out of it: ours alone. `MaybeUninit<Task<B>>`
                    // has the size and alignment of the class.
                    let rc = unsafe {
                        Rc::from_raw(block.as_ptr().cast_const().cast::<MaybeUninit<Task<B>>>())
                    };
                    // `i` < `NO_CLASS`: only so many classes are made.
                    return (rc, i as u8);
                }
                i as u8
            }
            None => lists.new_class::<B>(),
        };
        (Rc::new_uninit(), class)
    }

    /// Drops the task's value and keeps its memory for a later spawn, if
    /// `task` is the last reference and there is room; otherwise just drops
    /// `task`. Runs user code (the value's destructors: a result nobody
    /// read), which may panic: then the memory is freed and the panic goes
    /// on.
    ///
    /// Inlined into the callers, each of one task type (the vtable's
    /// `recycle`, the end of a detached task): one call fewer per task.
    #[inline(always)]
    pub(crate) fn recycle<B: TaskBody + ?Sized>(&self, mut task: Rc<Task<B>>) {
        if Rc::get_mut(&mut task).is_none() {
            return; // not the last reference (or a `Weak` exists)
        }
        let index = usize::from(task.header.block_class);
        let Some(free) = self.free_fn(index) else {
            return; // `NO_CLASS`
        };
        let value = Rc::into_raw(task).cast_mut();
        // SAFETY: `into_raw` never gives null.
        let block = unsafe { NonNull::new_unchecked(value.cast::<()>()) };
        /// Frees the block if dropping the value unwinds.
        struct Free(NonNull<()>, unsafe fn(NonNull<()>));
        impl Drop for Free {
            fn drop(&mut self) {
                // SAFETY: the block is in no class; its value is dropped (as
                // far as it goes: an unwinding drop still drops the rest).
                unsafe { (self.1)(self.0) }
            }
        }
        let guard = Free(block, free);
        // SAFETY: `task` was the only reference (`get_mut` succeeded), so
        // nothing else can reach the value; it is dropped once, here, and
        // the block is only reused as uninitialized memory.
        unsafe { value.drop_in_place() };
        std::mem::forget(guard);
        // SAFETY: see the type's docs: the drop above ran before this borrow.
        let lists = unsafe { &mut *self.0.get() };
        // Classes are never removed, so `index` is still this block's
        // class. Whether there is room is only known now: the drop may have
        // filled the lists.
        let class = &mut lists.classes[index];
        if lists.kept_bytes + class.size <= MAX_KEPT_BYTES {
            class.blocks.push(block);
            lists.kept_bytes += class.size;
        } else {
            // SAFETY: the block is in no class, its value dropped.
            unsafe { free(block) }
        }
    }

    /// How to free a block of class `index`, if there is such a class.
    #[inline(always)]
    fn free_fn(&self, index: usize) -> Option<unsafe fn(NonNull<()>)> {
        // SAFETY: see the type's docs.
        let lists = unsafe { &*self.0.get() };
        Some(lists.classes.get(index)?.free)
    }

    /// Frees every kept block.
    pub(crate) fn clear(&self) {
        // SAFETY: see the type's docs.
        let lists = unsafe { &mut *self.0.get() };
        for class in &mut lists.classes {
            for block in class.blocks.drain(..) {
                // SAFETY: taken out of its class.
                unsafe { (class.free)(block) };
            }
        }
        lists.kept_bytes = 0;
    }

    /// The number of blocks kept.
    #[cfg(test)]
    pub(crate) fn kept(&self) -> usize {
        // SAFETY: see the type's docs.
        let lists = unsafe { &*self.0.get() };
        lists.classes.iter().map(|c| c.blocks.len()).sum()
    }
}

impl Lists {
    /// Adds the class of `Task<B>`'s size and alignment, if there is room
    /// for one more, and returns its index (or [`NO_CLASS`]).
    #[cold]
    #[inline(never)]
    fn new_class<B: TaskBody + 'static>(&mut self) -> u8 {
        let Ok(index) = u8::try_from(self.classes.len()) else {
            return NO_CLASS;
        };
        if index == NO_CLASS {
            return NO_CLASS;
        }
        self.classes.push(Class {
            size: size_of::<Task<B>>(),
            align: align_of::<Task<B>>(),
            free: free_block::<B>,
            blocks: Vec::new(),
        });
        index
    }
}

impl Drop for Blocks {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::{Class, NO_CLASS};
    use crate::event_loop::{EventLoop, spawn};

    /// A loop that has seen 255 task sizes gives the next sizes' memory
    /// back to the allocator, and keeps working.
    #[test]
    fn tasks_of_a_256th_size_are_not_recycled() {
        let ev = EventLoop::new();
        let blocks = &ev.core().blocks;
        // SAFETY: no other access to the lists is live (a test).
        let lists = unsafe { &mut *blocks.0.get() };
        for size in 0..usize::from(NO_CLASS) {
            lists.classes.push(Class {
                size: 1 << 20 | size, // no task has these sizes
                align: 1,
                free: |_| unreachable!("no block of this class exists"),
                blocks: Vec::new(),
            });
        }
        let hs: Vec<_> = (0..3u64).map(|i| ev.spawn(move || i)).collect();
        ev.run().unwrap();
        ev.block_on(move || hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>())
            .unwrap();
        assert_eq!(blocks.kept(), 0);
    }

    /// Joined and detached tasks leave their memory to the loop, and the
    /// next spawns take it back.
    #[test]
    fn finished_tasks_memory_is_kept_and_taken_again() {
        let ev = EventLoop::new();
        let blocks = || ev.core().blocks.kept();
        ev.block_on(|| {
            let hs: Vec<_> = (0..10u64).map(|i| spawn(move || i)).collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
        })
        .unwrap();
        // The ten joined tasks, and `block_on`'s own task once its handle
        // went (inside the loop: `block_on` drops it while entered).
        let kept = blocks();
        assert!(kept >= 10, "kept {kept}");
        for _ in 0..5 {
            drop(ev.spawn(|| 1u64));
        }
        assert_eq!(blocks(), kept - 5);
        ev.run().unwrap(); // detached: each gives its memory back on finishing
        assert_eq!(blocks(), kept);
    }
}
