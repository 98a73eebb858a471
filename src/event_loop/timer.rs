//! Timers: [`Timers`], a min-heap of deadlines, each naming a task and its
//! park number. Entries of tasks that were cancelled or woken otherwise are
//! skipped when they come up, or swept out earlier when they pile up (a
//! socket's time limit adds an entry per wait, and most such waits end
//! long before their limit). (The waiting side, [`sleep`](super::sleep),
//! is in `sleep.rs`.)

use std::cell::{Cell, RefCell};
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::Instant;

use super::task::TaskRef;

struct TimerEntry {
    at: Instant,
    /// Insertion order: equal deadlines fire first-in, first-out.
    order: u64,
    task: TaskRef,
    seq: u32,
}

impl PartialEq for TimerEntry {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.order == other.order
    }
}

impl Eq for TimerEntry {}

impl PartialOrd for TimerEntry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for TimerEntry {
    /// Reversed, so that `BinaryHeap` (a max-heap) pops the earliest first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.order).cmp(&(self.at, self.order))
    }
}

/// A loop's timers. No borrow of the heap is held while a woken task is
/// handed out, so waking may run code that adds timers.
#[derive(Default)]
pub(crate) struct Timers {
    heap: RefCell<BinaryHeap<TimerEntry>>,
    next_order: Cell<u64>,
    /// The heap's length at which `add` next sweeps out stale entries.
    sweep_at: Cell<usize>,
}

/// The smallest heap worth sweeping.
const MIN_SWEEP: usize = 64;

impl Timers {
    /// Wakes `(task, seq)` at `at` or later.
    pub(crate) fn add(&self, at: Instant, task: TaskRef, seq: u32) {
        let order = self.next_order.get();
        self.next_order.set(order + 1);
        let mut heap = self.heap.borrow_mut();
        heap.push(TimerEntry {
            at,
            order,
            task,
            seq,
        });
        if heap.len() >= self.sweep_at.get() {
            // Drops the entries that can no longer wake their task, except
            // those of finished tasks: an unfinished task is held by its
            // loop's registry, so dropping its entry is never the last
            // reference and runs no user code (`add` runs inside a park).
            // The next sweep waits for the heap to double: O(1) per add.
            heap.retain(|e| e.task.header.is_parked_at(e.seq) || e.task.header.is_done());
            self.sweep_at.set((heap.len() * 2).max(MIN_SWEEP));
        }
    }

    /// How many entries the heap holds, stale ones included.
    #[cfg(all(test, feature = "net"))]
    pub(crate) fn len(&self) -> usize {
        self.heap.borrow().len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.heap.borrow().is_empty()
    }

    /// Takes the earliest entry if it is due at `now`.
    pub(crate) fn pop_due(&self, now: Instant) -> Option<(TaskRef, u32)> {
        let mut heap = self.heap.borrow_mut();
        match heap.peek() {
            Some(e) if e.at <= now => heap.pop().map(|e| (e.task, e.seq)),
            _ => None,
        }
    }

    /// The earliest deadline of a timer that can still wake its task,
    /// dropping the stale entries in front of it.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        loop {
            let stale = {
                let mut heap = self.heap.borrow_mut();
                let e = heap.peek()?;
                if e.task.header.is_parked_at(e.seq) {
                    return Some(e.at);
                }
                heap.pop()
            };
            drop(stale);
        }
    }

    /// Empties the heap, handing the entries' tasks to the caller to drop.
    pub(crate) fn take_all(&self) -> Vec<TaskRef> {
        std::mem::take(&mut *self.heap.borrow_mut())
            .into_iter()
            .map(|e| e.task)
            .collect()
    }
}
