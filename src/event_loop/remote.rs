//! Wake-ups from outside the loop: [`Remote`], the loop's only thread-safe
//! part, and the [`Waker`]s that feed it.
//!
//! A waker names its task by registry index and id. Waking pushes that key
//! into the loop's `Remote` (a mutex-protected list and an atomic flag),
//! then unparks the loop's thread. The loop looks at the flag (one relaxed
//! load) once per round and when idle. Tasks parked on a waker count as
//! "externally wakeable", so the loop sleeps for them instead of reporting
//! a deadlock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Wake, Waker};
use std::thread::Thread;
use std::time::Duration;

use super::task::Header;

/// The inbox of wake-ups that wakers (maybe on other threads) leave for a
/// loop, and the loop's thread to unpark.
pub(crate) struct Remote {
    pending: AtomicBool,
    woken: Mutex<Vec<(u32, u64)>>,
    thread: Thread,
}

impl Remote {
    /// An inbox for a loop driven on the current thread.
    pub(crate) fn new() -> Self {
        Remote {
            pending: AtomicBool::new(false),
            woken: Mutex::new(Vec::new()),
            thread: std::thread::current(),
        }
    }

    #[inline]
    pub(crate) fn has_pending(&self) -> bool {
        self.pending.load(Ordering::Relaxed)
    }

    /// The keys woken since the last call, if any.
    pub(crate) fn take(&self) -> Option<Vec<(u32, u64)>> {
        if !self.pending.swap(false, Ordering::Acquire) {
            return None;
        }
        let mut woken = self.woken.lock().unwrap_or_else(|e| e.into_inner());
        Some(std::mem::take(&mut *woken))
    }

    fn wake(&self, key: (u32, u64)) {
        self.woken
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(key);
        self.pending.store(true, Ordering::Release);
        self.thread.unpark();
    }

    /// Sleeps the loop's thread until a wake-up or the timeout.
    pub(crate) fn park(&self, timeout: Option<Duration>) {
        if self.pending.load(Ordering::Acquire) {
            return;
        }
        match timeout {
            Some(t) => std::thread::park_timeout(t),
            None => std::thread::park(),
        }
    }
}

struct TaskWaker {
    remote: Arc<Remote>,
    key: (u32, u64),
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.remote.wake(self.key);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.remote.wake(self.key);
    }
}

/// A waker that wakes the task of `header` through `remote`, from any thread.
pub(crate) fn waker_for(remote: &Arc<Remote>, header: &Header) -> Waker {
    Waker::from(Arc::new(TaskWaker {
        remote: remote.clone(),
        key: (header.index.get(), header.id),
    }))
}
