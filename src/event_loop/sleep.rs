//! Sleeping: [`sleep`] and [`sleep_until`] park the running stackful task on
//! the loop's timers.

use std::time::{Duration, Instant};

use super::context::{park, running_stackful};
// Also the path `net/` imports it by.
use super::task::WaitReason;
pub(crate) use super::timer::deadline_after;

/// Parks the running task for at least `duration` while the others run.
///
/// The loop's thread sleeps (no spinning) when every task waits.
///
/// # Panics
/// Outside a stackful task.
#[track_caller]
pub fn sleep(duration: Duration) {
    sleep_until(deadline_after(duration));
}

/// Parks the running task until `deadline` (returns at once if it passed).
///
/// # Panics
/// Outside a stackful task.
#[track_caller]
pub fn sleep_until(deadline: Instant) {
    running_stackful("sleep");
    while Instant::now() < deadline {
        park("sleep", WaitReason::Sleep, |core, task, seq| {
            core.timers.add(deadline, task, seq);
        });
    }
}
