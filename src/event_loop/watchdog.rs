//! The runaway-task watchdog (optional, see [`EventLoopBuilder::watchdog`](super::EventLoopBuilder::watchdog)).
//!
//! Scheduling is cooperative: a task that never yields keeps the loop's
//! thread forever (the tutorial's pitfall 11), and **nothing can preempt
//! it**. The watchdog only finds and names it.
//!
//! How: at every switch into and out of a task, the loop stores the task's
//! id and bumps a switch counter (two relaxed atomic stores, no clock read,
//! no system call). A helper thread wakes every quarter of the threshold and
//! reads both. When the same task is still running with the same counter
//! for at least the threshold, it calls the report function once for that
//! stretch, naming the task (id, and name if it has one). The helper thread
//! stops when the loop is dropped.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A task that ran longer than the watchdog's threshold without yielding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchdogReport {
    /// The task's id.
    pub task_id: u64,
    /// The task's name, if it has one.
    pub task_name: Option<String>,
    /// How long it had run without yielding when it was reported (measured
    /// to within a quarter of the threshold).
    pub running_for: Duration,
}

impl fmt::Display for WatchdogReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cogen watchdog: task {}", self.task_id)?;
        if let Some(name) = &self.task_name {
            write!(f, " '{name}'")?;
        }
        write!(
            f,
            " has run for {:?} without yielding; tasks are cooperative and cannot be \
             preempted, so every other task waits (call yield_now in long loops)",
            self.running_for
        )
    }
}

pub(crate) type ReportFn = Box<dyn Fn(&WatchdogReport) + Send + Sync>;

/// What the loop publishes (the running task, a switch counter) and the
/// watchdog thread reads.
struct Observed {
    current: AtomicU64,
    switches: AtomicU64,
    stop: AtomicBool,
    names: Mutex<HashMap<u64, String>>,
}

pub(crate) struct Watchdog {
    state: Arc<Observed>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    pub(crate) fn start(threshold: Duration, report: ReportFn) -> Self {
        let state = Arc::new(Observed {
            current: AtomicU64::new(0),
            switches: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            names: Mutex::new(HashMap::new()),
        });
        let watched = state.clone();
        let thread = std::thread::Builder::new()
            .name("cogen-watchdog".into())
            .spawn(move || watch(&watched, threshold, &report))
            .expect("cannot start the watchdog thread");
        Watchdog {
            state,
            thread: Some(thread),
        }
    }

    #[inline]
    fn bump(&self) {
        // Only the loop's thread writes: no read-modify-write needed.
        let n = self.state.switches.load(Ordering::Relaxed);
        self.state.switches.store(n + 1, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn enter(&self, id: u64) {
        self.bump();
        self.state.current.store(id, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn leave(&self) {
        self.state.current.store(0, Ordering::Relaxed);
        self.bump();
    }

    pub(crate) fn name_task(&self, id: u64, name: &str) {
        self.state
            .names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, name.to_owned());
    }

    pub(crate) fn forget_task(&self, id: u64) {
        let mut names = self.state.names.lock().unwrap_or_else(|e| e.into_inner());
        if !names.is_empty() {
            names.remove(&id);
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

fn watch(state: &Observed, threshold: Duration, report: &ReportFn) {
    let tick = (threshold / 4).max(Duration::from_millis(1));
    let mut seen = (0, u64::MAX);
    let mut since = Instant::now();
    let mut reported = u64::MAX;
    while !state.stop.load(Ordering::Relaxed) {
        std::thread::park_timeout(tick);
        let now = Instant::now();
        let current = state.current.load(Ordering::Relaxed);
        let switches = state.switches.load(Ordering::Relaxed);
        if (current, switches) != seen {
            seen = (current, switches);
            since = now;
            continue;
        }
        let running_for = now - since;
        if current != 0 && running_for >= threshold && reported != switches {
            reported = switches;
            let task_name = state
                .names
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&current)
                .cloned();
            let found = WatchdogReport {
                task_id: current,
                task_name,
                running_for,
            };
            super::trace::watchdog(&found);
            // A report that panics (the panic hook has printed it) must not
            // end the watchdog: the next runaway task is reported too.
            let reported =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| report(&found)));
            if let Err(payload) = reported {
                crate::error::drop_quietly(payload);
            }
        }
    }
}
