//! The result slot a remote task and its [`RemoteJoinHandle`] share
//! ([`Shared`]), the task's side of it ([`Slot`]), which reports a
//! cancellation if the task never fills it, and how a job whose task could
//! not get a stack reports that instead ([`Starting`], [`Stranded`]).

use std::cell::{Cell, UnsafeCell};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::Waker;

use crate::error::Panic;
#[cfg(doc)]
use crate::event_loop::RemoteJoinHandle;
use crate::event_loop::context::current_task_id;
use crate::event_loop::core::wake_user_waker;
use crate::event_loop::error::JoinError;
use crate::event_loop::remote::Remote;

/// `Shared::state` bit: the task's side filled the slot (or gave up on it);
/// the result, if any, is in `Shared::result` for the handle to take.
pub(super) const FINISHED: u8 = 1;
/// `Shared::state` bit: the handle was dropped; nobody will read the
/// result.
pub(super) const DETACHED: u8 = 2;
/// `Shared::state` bit: the handle left a waker in `Shared::wait`, or a
/// thread blocks on `Shared::done`: the task's end must look there (a lock,
/// saved when nobody waits).
pub(super) const WAITING: u8 = 4;

/// The result slot a remote task and its handle share.
///
/// The result crosses without a lock: the task's side writes it, then sets
/// [`FINISHED`]; the handle reads it only once it has seen `FINISHED`, and
/// the task's side never touches it after setting the bit (unless the
/// handle was dropped first: then the handle never touches it). The mutex
/// and the condition variable serve only a handle that has to wait.
pub(super) struct Shared<T> {
    /// The inbox of the task's loop (`None` for a handle made finished).
    pub(super) remote: Option<Arc<Remote>>,
    pub(super) state: AtomicU8,
    pub(super) result: UnsafeCell<Option<Result<T, JoinError>>>,
    pub(super) wait: Mutex<Waiting>,
    pub(super) done: Condvar,
}

// SAFETY: `result` is handed from one thread to another through `state`
// (a release by the writer, an acquire by the reader, see `Shared`), never
// accessed by two at once; `T: Send` lets it cross. Everything else is
// `Sync`.
unsafe impl<T: Send> Sync for Shared<T> {}

/// What a waiting handle left, under `Shared::wait`: the waker of its last
/// poll, or, when that waker is a task's of a loop of the thread the remote
/// task's loop runs on, that task's key with its loop's inbox. A clone would
/// count as held outside the waiting loop, which would then never report a
/// deadlock that nothing on another thread can end.
pub(super) struct Waiting {
    pub(super) waker: Option<Waker>,
    pub(super) key: Option<(Arc<Remote>, (u32, u64))>,
}

impl<T> Shared<T> {
    pub(super) fn new(remote: Option<Arc<Remote>>) -> Self {
        Shared {
            remote,
            state: AtomicU8::new(0),
            result: UnsafeCell::new(None),
            wait: Mutex::new(Waiting {
                waker: None,
                key: None,
            }),
            done: Condvar::new(),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Waiting> {
        // No code that can panic runs under the lock: a poisoned one is fine.
        self.wait.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn is_finished(&self) -> bool {
        self.state.load(Ordering::Acquire) & FINISHED != 0
    }

    /// Stores the result and wakes the waiter. Hands back a panic nobody
    /// will read (the handle is gone), for the loop to report.
    ///
    /// # Safety
    /// Called at most once per slot (by its [`Slot`]), and not after
    /// [`Slot::disarm`].
    pub(super) unsafe fn finish(&self, result: Result<T, JoinError>) -> Option<Panic> {
        let unread =
            |result: Result<T, JoinError>| result.err().and_then(|e| e.try_into_panic().ok());
        if self.state.load(Ordering::Acquire) & DETACHED != 0 {
            self.state.fetch_or(FINISHED, Ordering::Release);
            return unread(result);
        }
        // SAFETY: `FINISHED` is not set yet (only this call sets it), so the
        // handle does not touch `result` (see `Shared`).
        unsafe { *self.result.get() = Some(result) };
        let prev = self.state.fetch_or(FINISHED, Ordering::AcqRel);
        if prev & DETACHED != 0 {
            // The handle went between the check above and the store: it
            // saw no `FINISHED`, so it left the result alone; it is ours.
            // SAFETY: the handle is gone and never reads `result`.
            let result = unsafe { (*self.result.get()).take() };
            return result.and_then(unread);
        }
        if prev & WAITING != 0 {
            // The handle set `WAITING` under the lock before it looked at
            // `FINISHED` and waited: taking the lock here orders this after
            // its look, so its wait is woken.
            let (waker, key) = {
                let mut wait = self.lock();
                (wait.waker.take(), wait.key.take())
            };
            self.done.notify_all();
            if let Some((remote, key)) = key {
                remote.wake(key);
            }
            if let Some(waker) = waker {
                // Maybe from the slot's drop, as the task is cancelled.
                wake_user_waker(waker);
            }
        }
        None
    }
}

/// The remote task's side of the slot: fills it with a cancellation if it
/// is dropped before the task filled it (the task was cancelled, or never
/// started).
pub(super) struct Slot<T: 'static>(pub(super) Arc<Shared<T>>);

impl<T: 'static> Slot<T> {
    /// Fills the slot; see [`Shared::finish`].
    pub(super) fn finish(self, result: Result<T, JoinError>) -> Option<Panic> {
        // SAFETY: `self` is consumed, and its `Drop` sees `FINISHED` (set
        // by this thread) and does not finish again.
        unsafe { self.0.finish(result) }
    }

    /// The slot will never be filled: no handle was made (the spawn was
    /// refused).
    pub(super) fn disarm(self) {
        self.0.state.fetch_or(FINISHED, Ordering::Relaxed);
    }
}

impl<T: 'static> Drop for Slot<T> {
    fn drop(&mut self) {
        // Only this slot sets `FINISHED`, so a relaxed look suffices.
        if self.0.state.load(Ordering::Relaxed) & FINISHED != 0 {
            return;
        }
        let error = JoinError::cancelled(current_task_id().unwrap_or(0), None);
        if STARTING.with(Cell::get) {
            // The loop could not map a stack for this job's task: the job
            // reports why (see `RemoteJob::start`) instead of a cancellation.
            let stranded: Box<dyn Stranded> = Box::new(self.0.clone());
            STRANDED.with(|s| s.set(Some(stranded)));
            drop(error);
            return;
        }
        // SAFETY: `FINISHED` is not set, so neither `finish` nor `disarm`
        // ran, and the slot is going away.
        // A panic nobody reads cannot come from a cancellation.
        drop(unsafe { self.0.finish(Err(error)) });
    }
}

thread_local! {
    /// Set while `RemoteJob::start` spawns a task: a slot dropped meanwhile
    /// belongs to a job whose task could not get a stack.
    static STARTING: Cell<bool> = const { Cell::new(false) };
    /// The slot of such a job, to fill with the stack error.
    pub(super) static STRANDED: Cell<Option<Box<dyn Stranded>>> = const { Cell::new(None) };
}

/// Sets [`STARTING`] while it lives (a panic in between clears it too).
pub(super) struct Starting;

impl Starting {
    pub(super) fn new() -> Self {
        STARTING.with(|s| s.set(true));
        Starting
    }
}

impl Drop for Starting {
    fn drop(&mut self) {
        STARTING.with(|s| s.set(false));
    }
}

/// A slot whose task could not start, with its result type erased.
pub(super) trait Stranded {
    /// Fills the slot with `panic` (why the task could not start).
    fn report(&self, panic: Panic);
}

impl<T> Stranded for Arc<Shared<T>> {
    fn report(&self, panic: Panic) {
        // SAFETY: the slot's `Slot` was dropped without finishing (see
        // `Slot::drop`), and this is the one report for it.
        drop(unsafe { self.finish(Err(JoinError::panicked(0, panic))) });
    }
}
