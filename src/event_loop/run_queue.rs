//! The run queue (tasks ready to run, first in, first out) and the registry
//! (every unfinished task of a loop, by index).

use std::cell::UnsafeCell;
use std::collections::VecDeque;

use super::task::{TaskRef, ThinTask};

/// The FIFO run queue. Each method finishes its operation on the deque
/// before returning and runs no user code inside (tasks are moved in and
/// out by value and dropped by the caller), so no two accesses can overlap:
/// a `RefCell`'s borrow flag would only cost time on every step.
pub(crate) struct RunQueue(UnsafeCell<VecDeque<TaskRef>>);

impl RunQueue {
    pub(crate) fn new() -> Self {
        RunQueue(UnsafeCell::new(VecDeque::with_capacity(64)))
    }

    #[inline]
    pub(crate) fn push_back(&self, task: TaskRef) {
        // SAFETY: see the type's docs.
        unsafe { (*self.0.get()).push_back(task) }
    }

    #[inline]
    pub(crate) fn pop_front(&self) -> Option<TaskRef> {
        // SAFETY: see the type's docs.
        unsafe { (*self.0.get()).pop_front() }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        // SAFETY: see the type's docs.
        unsafe { (*self.0.get()).len() }
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn take(&self) -> VecDeque<TaskRef> {
        // SAFETY: see the type's docs.
        unsafe { std::mem::take(&mut *self.0.get()) }
    }

    /// Gives memory back after a burst: once the queue is under a quarter
    /// full and large, halves its capacity. A million tasks spawned at once
    /// would otherwise leave 16 bytes each behind for as long as they live.
    /// Amortized O(1): each shrink copies at most a quarter of the capacity,
    /// and at least as many pops happened since the queue was that full.
    #[inline]
    pub(crate) fn maybe_shrink(&self) {
        // SAFETY: see the type's docs.
        let q = unsafe { &*self.0.get() };
        if q.capacity() > 4096 && q.len() < q.capacity() / 4 {
            self.shrink();
        }
    }

    #[cold]
    #[inline(never)]
    fn shrink(&self) {
        // SAFETY: see the type's docs.
        let q = unsafe { &mut *self.0.get() };
        let target = (q.capacity() / 2).max(q.len() * 2);
        q.shrink_to(target);
    }
}

/// Every unfinished task of a loop, in slots reused after a task is done;
/// a task's header knows its slot's index.
#[derive(Default)]
pub(crate) struct Registry {
    slots: Vec<Option<ThinTask>>,
    free: Vec<u32>,
    len: usize,
}

impl Registry {
    pub(crate) fn insert(&mut self, task: TaskRef) {
        match self.free.pop() {
            Some(i) => {
                debug_assert!(self.slots[i as usize].is_none(), "a free slot is empty");
                task.header.index.set(i);
                self.slots[i as usize] = Some(ThinTask::new(task));
            }
            None => {
                let i = u32::try_from(self.slots.len()).expect("fewer than 2^32 tasks");
                task.header.index.set(i);
                self.slots.push(Some(ThinTask::new(task)));
            }
        }
        self.len += 1;
    }

    /// Every task in it.
    pub(crate) fn tasks(&self) -> Vec<TaskRef> {
        self.slots.iter().flatten().map(ThinTask::to_ref).collect()
    }

    /// The task in slot `index` if it is task `id` (a later task may have
    /// reused the slot).
    pub(crate) fn get(&self, index: u32, id: u64) -> Option<TaskRef> {
        match self.slots.get(index as usize) {
            Some(Some(t)) if t.header().id == id => Some(t.to_ref()),
            _ => None,
        }
    }

    /// Takes task `id` out of slot `index`; `None` if the slot holds
    /// another task (or none).
    pub(crate) fn remove(&mut self, index: u32, id: u64) -> Option<ThinTask> {
        let slot = self.slots.get_mut(index as usize)?;
        if slot.as_ref()?.header().id != id {
            return None;
        }
        let task = slot.take()?;
        self.free.push(index);
        self.len -= 1;
        Some(task)
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }
}
