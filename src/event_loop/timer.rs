//! Timers: a min-heap of deadlines, and [`sleep`] / [`sleep_until`].
//!
//! An entry names a task and its park number; entries of tasks that were
//! cancelled or woken otherwise are skipped when they come up. The clock
//! is read once per round, and only while some timer exists.

use std::cmp::Ordering;
use std::time::{Duration, Instant};

use super::scheduler::{Reason, TaskRef, park, running_stackful};

pub(crate) struct TimerEntry {
    pub(crate) at: Instant,
    /// Insertion order: equal deadlines fire first-in, first-out.
    pub(crate) order: u64,
    pub(crate) task: TaskRef,
    pub(crate) seq: u32,
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

/// Parks the running task for at least `duration` while the others run.
///
/// The loop's thread sleeps (no spinning) when every task waits.
///
/// # Panics
/// Outside a stackful task.
#[track_caller]
pub fn sleep(duration: Duration) {
    let now = Instant::now();
    // A deadline past what `Instant` can hold is, in practice, never.
    let at = now
        .checked_add(duration)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600));
    sleep_until(at);
}

/// Parks the running task until `deadline` (returns at once if it passed).
///
/// # Panics
/// Outside a stackful task.
#[track_caller]
pub fn sleep_until(deadline: Instant) {
    running_stackful("sleep");
    while Instant::now() < deadline {
        park("sleep", Reason::Sleep, |core, task, seq| {
            core.add_timer(deadline, task, seq);
        });
    }
}
