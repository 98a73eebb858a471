//! The run queue (tasks ready to run, first in, first out) and the registry
//! (every unfinished task of a loop, by index).

use std::cell::UnsafeCell;

use super::prefetch;
use super::ring::Ring;
use super::task::{TaskRef, ThinTask};

/// The FIFO run queue. Each method finishes its operation on the ring
/// before returning and runs no user code inside (tasks are moved in and
/// out by value and dropped by the caller), so no two accesses can overlap:
/// a `RefCell`'s borrow flag would only cost time on every step.
///
/// It holds thin references (8 bytes): a step starts with the one indirect
/// call through the header's vtable, inside which the task's type is known.
pub(crate) struct RunQueue(UnsafeCell<Ring<ThinTask>>);

/// The queue length from which a step prefetches the next task's stack
/// lines. Below it, the tasks' stack tops (a page each) fit in the CPU's
/// TLB and caches (a second-level TLB holds 1,536 to 2,048 pages on the x86
/// CPUs of recent years), a prefetch finds them there, and its dozen
/// instructions per step would be spent for nothing.
const PREFETCH_FROM: usize = 1024;

/// How many steps ahead of its run a task's stack lines are asked for
/// (and its header one step earlier still, see
/// [`prefetch_front`](RunQueue::prefetch_front)). A cold stack's lines and
/// page walk take longer than one step on some hosts: on an Ice Lake Xeon
/// VM, `paired many_tasks cogen smol` gave smol's time over cogen's
/// 0.64–0.81 (median 0.72) prefetching one step ahead and 0.67–1.03 (0.84)
/// four ahead, in twelve rounds alternating the builds; two, three, six
/// and eight ahead gained as well (medians 0.78–0.89 in six rounds each).
/// It costs 3.3 instructions per step more than one ahead (`many_tasks`:
/// 196.0 per yield against 192.7; the ring's index arithmetic).
const PREFETCH_AHEAD: usize = 4;

/// The capacity a queue starts with.
const INITIAL_CAPACITY: usize = 64;

impl RunQueue {
    pub(crate) fn new() -> Self {
        RunQueue(UnsafeCell::new(Ring::with_capacity(INITIAL_CAPACITY)))
    }

    #[inline(always)]
    pub(crate) fn push_back(&self, task: ThinTask) {
        // SAFETY: see the type's docs.
        unsafe { (*self.0.get()).push_back(task) }
    }

    #[inline(always)]
    pub(crate) fn pop_front(&self) -> Option<ThinTask> {
        // SAFETY: see the type's docs.
        unsafe { (*self.0.get()).pop_front() }
    }

    /// Whether a round over `len` queued tasks should prefetch each next
    /// task (see [`prefetch_front`](RunQueue::prefetch_front)): from
    /// [`PREFETCH_FROM`] tasks on.
    #[inline(always)]
    pub(crate) fn worth_prefetching(len: usize) -> bool {
        len >= PREFETCH_FROM
    }

    /// Asks the CPU to start loading what the step of the task
    /// [`PREFETCH_AHEAD`] places on in the queue reads first (see
    /// `prefetch.rs`), while the steps before it run, and the header and
    /// first body lines of the task after that one, where the next call
    /// finds what it reads (a stackful task's recorded stack pointer).
    #[inline(always)]
    pub(crate) fn prefetch_front(&self) {
        // SAFETY: see the type's docs.
        let q = unsafe { &*self.0.get() };
        if let Some(task) = q.get(PREFETCH_AHEAD - 1) {
            prefetch::next_step(task);
        }
        if let Some(task) = q.get(PREFETCH_AHEAD) {
            prefetch::header_lines(task);
        }
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

    /// Takes every queued task out, in order, and gives the memory back.
    pub(crate) fn take(&self) -> Vec<ThinTask> {
        // SAFETY: see the type's docs.
        let old =
            unsafe { std::mem::replace(&mut *self.0.get(), Ring::with_capacity(INITIAL_CAPACITY)) };
        let mut old = old;
        std::iter::from_fn(|| old.pop_front()).collect()
    }

    /// Gives memory back after a burst: once the queue is under a quarter
    /// full and large, halves its capacity. A million tasks spawned at once
    /// would otherwise leave 8 bytes each behind for as long as they live.
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
        let target = (q.capacity() / 2).max((q.len() * 2).next_power_of_two());
        q.resize(target);
    }
}

/// Every unfinished task of a loop, in slots reused after a task is done;
/// a task's header knows its slot's index.
///
/// Like the run queue, each method finishes with the slots before it
/// returns and runs no user code inside (a removed task is handed back for
/// the caller to drop; references handed out are new counts), so no two
/// accesses overlap: spawn and finish touch it once each, and a
/// `RefCell`'s flag would cost time on both.
#[derive(Default)]
pub(crate) struct Registry(UnsafeCell<Slots>);

#[derive(Default)]
struct Slots {
    slots: Vec<Option<ThinTask>>,
    free: Vec<u32>,
    len: usize,
}

impl Registry {
    #[inline(always)]
    pub(crate) fn insert(&self, task: ThinTask) {
        // SAFETY: see the type's docs.
        let s = unsafe { &mut *self.0.get() };
        match s.free.pop() {
            Some(i) => {
                debug_assert!(s.slots[i as usize].is_none(), "a free slot is empty");
                task.header().index.set(i);
                s.slots[i as usize] = Some(task);
            }
            None => {
                let i = u32::try_from(s.slots.len()).expect("fewer than 2^32 tasks");
                task.header().index.set(i);
                s.slots.push(Some(task));
            }
        }
        s.len += 1;
    }

    /// Every task in it.
    pub(crate) fn tasks(&self) -> Vec<TaskRef> {
        // SAFETY: see the type's docs.
        let s = unsafe { &*self.0.get() };
        s.slots.iter().flatten().map(ThinTask::to_ref).collect()
    }

    /// The task in slot `index` if it is task `id` (a later task may have
    /// reused the slot).
    pub(crate) fn get(&self, index: u32, id: u64) -> Option<TaskRef> {
        // SAFETY: see the type's docs.
        let s = unsafe { &*self.0.get() };
        match s.slots.get(index as usize) {
            Some(Some(t)) if t.header().id == id => Some(t.to_ref()),
            _ => None,
        }
    }

    /// Takes task `id` out of slot `index`; `None` if the slot holds
    /// another task (or none).
    #[inline]
    pub(crate) fn remove(&self, index: u32, id: u64) -> Option<ThinTask> {
        // SAFETY: see the type's docs.
        let s = unsafe { &mut *self.0.get() };
        let slot = s.slots.get_mut(index as usize)?;
        if slot.as_ref()?.header().id != id {
            return None;
        }
        let task = slot.take()?;
        s.free.push(index);
        s.len -= 1;
        Some(task)
    }

    pub(crate) fn len(&self) -> usize {
        // SAFETY: see the type's docs.
        unsafe { (*self.0.get()).len }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use crate::event_loop::{EventLoop, yield_now};

    /// The ring grows past 4096 slots, wraps, shrinks while tasks finish,
    /// and keeps first-in, first-out order throughout.
    #[test]
    fn ring_keeps_fifo_order_through_growth_and_shrinking() {
        let ev = EventLoop::new();
        let log = Rc::new(RefCell::new(Vec::new()));
        const TASKS: usize = 10_000;
        for i in 0..TASKS {
            let log = log.clone();
            ev.spawn(move || {
                for round in 0..(i % 3) {
                    log.borrow_mut().push((round, i));
                    yield_now();
                }
            });
        }
        ev.run().unwrap();
        let log = log.borrow();
        let mut expected = Vec::new();
        for round in 0..2 {
            expected.extend((0..TASKS).filter(|i| i % 3 > round).map(|i| (round, i)));
        }
        assert_eq!(*log, expected);
    }
}
