//! Timers: [`Timers`], a min-heap of deadlines, each naming a task and its
//! park number. Entries of tasks that were cancelled or woken otherwise are
//! skipped when they come up, or swept out earlier when they pile up (a
//! socket's or a channel's time limit adds an entry per wait, and most such
//! waits end long before their limit). An entry holds its task weakly, so
//! a stale one never keeps a finished task (and its result) alive. (The
//! waiting side, [`sleep`](super::sleep), is in `sleep.rs`.)

use std::cell::{Cell, RefCell};
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use std::rc::{Rc, Weak};

use super::task::{Task, TaskBody, TaskRef};

/// The deadline `duration` from now; one past what `Instant` can hold is,
/// in practice, never.
pub(crate) fn deadline_after(duration: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(duration)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

struct TimerEntry {
    at: Instant,
    /// Insertion order: equal deadlines fire first-in, first-out.
    order: u64,
    task: Weak<Task<dyn TaskBody>>,
    seq: u32,
}

impl TimerEntry {
    /// The task, if this entry can still wake it.
    fn live(&self) -> Option<TaskRef> {
        self.task
            .upgrade()
            .filter(|t| t.header.is_parked_at(self.seq))
    }
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
    /// (`task` is the caller's reference to a parked task, so dropping it
    /// here is never the last one.)
    pub(crate) fn add(&self, at: Instant, task: TaskRef, seq: u32) {
        let order = self.next_order.get();
        self.next_order.set(order + 1);
        let mut heap = self.heap.borrow_mut();
        heap.push(TimerEntry {
            at,
            order,
            task: Rc::downgrade(&task),
            seq,
        });
        if heap.len() >= self.sweep_at.get() {
            // Drops the entries that can no longer wake their task (weak
            // references: dropping them runs no user code, and `add` runs
            // inside a park). The next sweep waits for the heap to double:
            // O(1) per add.
            heap.retain(|e| e.live().is_some());
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

    /// Takes the earliest entry due at `now` whose task is still there.
    pub(crate) fn pop_due(&self, now: Instant) -> Option<(TaskRef, u32)> {
        let mut heap = self.heap.borrow_mut();
        while heap.peek().is_some_and(|e| e.at <= now) {
            let e = heap.pop()?;
            // A task that is gone has nothing to wake.
            if let Some(task) = e.task.upgrade() {
                return Some((task, e.seq));
            }
        }
        None
    }

    /// The earliest deadline of a timer that can still wake its task,
    /// dropping the stale entries in front of it.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        loop {
            let mut heap = self.heap.borrow_mut();
            let e = heap.peek()?;
            if e.live().is_some() {
                return Some(e.at);
            }
            heap.pop();
        }
    }

    /// Empties the heap (its weak entries run no user code when dropped).
    pub(crate) fn clear(&self) {
        drop(std::mem::take(&mut *self.heap.borrow_mut()));
    }
}
