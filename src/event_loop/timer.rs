//! Timers: [`Timers`], a min-heap of deadlines, each naming a task, and
//! per task the wake-up it wants (a park number and a time). A new wait
//! pushes an entry only if the task has none that comes up first: a
//! socket's or a channel's time limit is asked for on every wait, and most
//! such waits end long before their limit, so an entry that comes up for a
//! task that now wants a later wake-up is pushed again for then, rather
//! than one pushed per wait. Entries of tasks that were cancelled or woken
//! otherwise are skipped when they come up, or swept out earlier when they
//! pile up. An entry holds its task weakly, so a stale one never keeps a
//! finished task (and its result) alive. (The waiting side,
//! [`sleep`](super::sleep), is in `sleep.rs`.)

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

/// One deadline in the heap: wake task `slot`'s wanted park at `at`.
struct TimerEntry {
    at: Instant,
    /// Insertion order: equal deadlines fire first-in, first-out.
    order: u64,
    task: Weak<Task<dyn TaskBody>>,
    /// The task's slot in its loop's registry, where [`Timers::slots`]
    /// keeps what it wants.
    slot: u32,
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

/// What one task (by its registry slot) has in the timers.
#[derive(Clone, Copy, Default)]
struct Slot {
    /// The task's id (`0`: none yet). A slot that names another task is
    /// stale: that task has ended and a new one took its registry slot.
    task: u64,
    /// The deadline of the task's entry in the heap, if it has one: the
    /// earliest of its entries, the one that speaks for it. Its other
    /// entries (later ones, left by earlier parks) are dropped when they
    /// come up.
    armed: Option<Instant>,
    /// The wake-up the task wants: at `.0` or later, if it is still parked
    /// with number `.1` then.
    want: Option<(Instant, u32)>,
    /// When that wake-up was asked for, in [`Timers::next_order`]: its
    /// place among equal deadlines, kept if its entry is pushed later.
    order: u64,
}

/// A loop's timers. No borrow of the heap is held while a woken task is
/// handed out, so waking may run code that adds timers.
///
/// A task has at most one entry that counts, and a new wait whose deadline
/// is no earlier than that entry's pushes nothing: it only records the
/// wake-up it wants. When the entry comes up, a task that wants a later
/// wake-up gets a new entry then. So a task that waits again and again
/// with a time limit that each wait outlives (a connection's read with an
/// idle limit, which data ends long before) costs the heap one entry per
/// limit's length, not one per wait.
#[derive(Default)]
pub(crate) struct Timers {
    heap: RefCell<BinaryHeap<TimerEntry>>,
    /// By registry slot: each task's entry and wanted wake-up.
    slots: RefCell<Vec<Slot>>,
    /// Numbers the wake-ups in the order they were asked for.
    next_order: Cell<u64>,
    /// The heap's length at which `add` next sweeps out stale entries.
    sweep_at: Cell<usize>,
}

/// The smallest heap worth sweeping.
const MIN_SWEEP: usize = 64;

impl Timers {
    /// Wakes `(task, seq)` at `at` or later (at the earliest of the times
    /// asked for if it is asked more than once for one park). `task` is a
    /// reference the caller made for the wait (by value: with a borrow
    /// instead, the compiler laid out the run loop of a server that sets no
    /// time limit at all 8 instructions per request longer).
    pub(crate) fn add(&self, at: Instant, task: TaskRef, seq: u32) {
        let index = task.header.index.get();
        let mut slots = self.slots.borrow_mut();
        let Some(slot) = slots.get_mut(index as usize) else {
            drop(slots);
            return self.add_slot(at, task, seq);
        };
        if slot.task != task.header.id {
            *slot = Slot {
                task: task.header.id,
                ..Slot::default()
            };
        }
        let want = match slot.want {
            Some((earlier, s)) if s == seq && earlier <= at => earlier,
            _ => {
                slot.order = self.next_order.get();
                self.next_order.set(slot.order + 1);
                at
            }
        };
        slot.want = Some((want, seq));
        if slot.armed.is_some_and(|armed| armed <= want) {
            // The entry there comes up first, and then asks again.
            return;
        }
        slot.armed = Some(want);
        let order = slot.order;
        drop(slots);
        self.push(want, order, &task, index);
    }

    /// [`add`](Timers::add) for a registry slot the timers have not seen.
    #[cold]
    fn add_slot(&self, at: Instant, task: TaskRef, seq: u32) {
        let index = task.header.index.get() as usize;
        self.slots.borrow_mut().resize(index + 1, Slot::default());
        self.add(at, task, seq);
    }

    /// Pushes an entry for the task in registry slot `slot`.
    fn push(&self, at: Instant, order: u64, task: &TaskRef, slot: u32) {
        let mut heap = self.heap.borrow_mut();
        heap.push(TimerEntry {
            at,
            order,
            task: Rc::downgrade(task),
            slot,
        });
        if heap.len() >= self.sweep_at.get() {
            // Drops the entries that can no longer wake their task (weak
            // references: dropping them runs no user code, and `add` runs
            // inside a park). The next sweep waits for the heap to double:
            // O(1) per push.
            let mut slots = self.slots.borrow_mut();
            heap.retain(|e| counts(&mut slots, e).is_some());
            self.sweep_at.set((heap.len() * 2).max(MIN_SWEEP));
        }
    }

    /// How many entries the heap holds, stale ones included.
    #[cfg(all(test, feature = "net"))]
    pub(crate) fn len(&self) -> usize {
        self.heap.borrow().len()
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.heap.borrow().is_empty()
    }

    /// Takes the earliest wake-up due at `now` whose task is still there
    /// and still parked for it. An entry that comes up for a task that
    /// wants a later wake-up is pushed again for that time. Wake-ups come
    /// in the order of their times, those of equal times in the order
    /// they were asked for.
    pub(crate) fn pop_due(&self, now: Instant) -> Option<(TaskRef, u32)> {
        loop {
            let e = {
                let mut heap = self.heap.borrow_mut();
                if !heap.peek().is_some_and(|e| e.at <= now) {
                    return None;
                }
                heap.pop()?
            };
            let mut slots = self.slots.borrow_mut();
            let Some((task, (want, seq))) = counts(&mut slots, &e) else {
                continue;
            };
            let slot = &mut slots[e.slot as usize];
            // (An entry pushed for an earlier ask of the same time keeps
            // that ask's place: pushed again with this one's.)
            if want == e.at && e.order == slot.order {
                slot.armed = None;
                slot.want = None;
                return Some((task, seq));
            }
            // The task wants a later wake-up (`add` keeps the entry no
            // later than it), or asked for this time again after others
            // asked for it: pushed again for then, even if that is due too,
            // so that due wake-ups still come in the order of their times,
            // and equal ones in the order asked.
            slot.armed = Some(want);
            let order = slot.order;
            drop(slots);
            self.push(want, order, &task, e.slot);
        }
    }

    /// The earliest deadline of an entry that can still wake its task,
    /// dropping the stale entries in front of it. (The task may want a
    /// later wake-up: the loop then wakes at this time, and `pop_due`
    /// pushes the entry again.)
    #[inline]
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        if self.is_empty() {
            return None;
        }
        self.next_live_deadline()
    }

    /// [`next_deadline`](Timers::next_deadline) of a heap with entries.
    #[inline(never)]
    fn next_live_deadline(&self) -> Option<Instant> {
        let mut heap = self.heap.borrow_mut();
        let mut slots = self.slots.borrow_mut();
        loop {
            let e = heap.peek()?;
            if counts(&mut slots, e).is_some() {
                return Some(e.at);
            }
            heap.pop();
        }
    }

    /// Empties the heap (its weak entries run no user code when dropped).
    pub(crate) fn clear(&self) {
        drop(std::mem::take(&mut *self.heap.borrow_mut()));
        self.slots.borrow_mut().clear();
    }
}

/// Whether entry `e` speaks for its task: the task is there, the entry is
/// the one its slot counts on, and the task is parked for the wake-up it
/// wants. Then the task and that wake-up; otherwise `None`, and a slot
/// whose entry this was forgets it (the entry is to be dropped).
fn counts(slots: &mut [Slot], e: &TimerEntry) -> Option<(TaskRef, (Instant, u32))> {
    let task = e.task.upgrade()?;
    let slot = slots.get_mut(e.slot as usize)?;
    if slot.task != task.header.id || slot.armed != Some(e.at) {
        // A later entry of an earlier park: the slot's own entry comes
        // first.
        return None;
    }
    match slot.want {
        Some((want, seq)) if task.header.is_parked_at(seq) => Some((task, (want, seq))),
        _ => {
            // The park it was for is over.
            slot.armed = None;
            slot.want = None;
            None
        }
    }
}
