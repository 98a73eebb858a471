//! Spawning onto a loop from other threads: [`LoopHandle`] (a `Send` handle
//! into one loop's inbox), [`RemoteJoinHandle`] (the `Send` result of such a
//! spawn) and [`SpawnError`].
//!
//! # How a remote spawn travels
//!
//! [`LoopHandle::spawn`] boxes the closure with a shared result slot (a
//! mutex, a condition variable and a waker) and leaves it in the loop's
//! inbox (`remote.rs`), waking the loop like a waker would. The loop, when
//! it next takes its inbox (once per round, or at once if idle), starts the
//! closure as a stackful task. The task fills the slot when the closure
//! returns or panics; if the task is cancelled, or never started because the
//! loop went away, the slot's guard fills it with a cancellation when it is
//! dropped. Whoever waits on the slot (a blocked thread, or a task of any
//! loop through its waker) is then woken.
//!
//! The task itself never leaves the loop's thread: only the closure before
//! it starts and the value after it returns cross threads, which is why
//! both must be `Send`.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use crate::error::Panic;

use super::context::current_task_id;
use super::core::Core;
use super::current::CURRENT_TASK;
use super::error::JoinError;
use super::kind;
use super::remote::{Job, Remote};
use super::task::TaskOptions;
use super::wait_for::wait_for;

/// A `Send + Sync` handle to an [`EventLoop`](super::EventLoop), for other
/// threads: it spawns `Send` closures onto the loop. Get one with
/// [`EventLoop::handle`](super::EventLoop::handle); clone it freely.
///
/// ```
/// use cogen::event_loop::{EventLoop, wait_for};
///
/// let ev = EventLoop::new();
/// let handle = ev.handle();
/// let sum = ev
///     .block_on(move || {
///         // Another thread spawns onto this loop; this task awaits it.
///         let remote = std::thread::spawn(move || handle.spawn(|| 20 + 22))
///             .join()
///             .unwrap();
///         wait_for(remote).unwrap()
///     })
///     .unwrap();
/// assert_eq!(sum, 42);
/// ```
///
/// The loop starts what a handle sends only while it runs (`run`,
/// `block_on`, `try_tick`); `run` returns as soon as no task is left, so a
/// loop that should serve spawns from other threads for a long time runs
/// in a [`Runtime`](super::Runtime), or in `block_on` of a task that waits
/// for a signal to stop.
///
/// # A dropped loop
///
/// Once its loop is dropped (or its runtime shuts down), a handle refuses
/// spawns: [`try_spawn`](LoopHandle::try_spawn) returns a [`SpawnError`] with
/// the closure, and [`spawn`](LoopHandle::spawn) returns a handle that
/// reports a cancellation ([`JoinError::is_cancelled`]). A closure that was
/// accepted but not yet started when the loop was dropped is dropped
/// unstarted, and its handle reports a cancellation too.
#[derive(Clone)]
pub struct LoopHandle {
    remote: Arc<Remote>,
    stack_size: Option<usize>,
}

impl LoopHandle {
    pub(crate) fn new(remote: Arc<Remote>, stack_size: Option<usize>) -> Self {
        LoopHandle { remote, stack_size }
    }

    /// Sends `f` to the loop, which runs it as a stackful task on a stack of
    /// the default size (or the [`Runtime`](super::Runtime)'s). The handle
    /// returned waits for its value from any thread; dropping it detaches
    /// the task (a panic of a detached task is then reported by the loop,
    /// like any detached task's).
    ///
    /// If the loop is gone, the handle returned reports a cancellation.
    pub fn spawn<F, T>(&self, f: F) -> RemoteJoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        match self.try_spawn(f) {
            Ok(handle) => handle,
            Err(_) => RemoteJoinHandle::finished(Err(JoinError::cancelled(0, None))),
        }
    }

    /// Like [`spawn`](LoopHandle::spawn), but if the loop is gone, gives the
    /// closure back in the error.
    pub fn try_spawn<F, T>(&self, f: F) -> Result<RemoteJoinHandle<T>, SpawnError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let shared = Arc::new(Shared::new());
        let job = Box::new(RemoteJob {
            f,
            slot: Slot(shared.clone()),
            stack_size: self.stack_size,
        });
        match self.remote.send_job(job) {
            Ok(()) => Ok(RemoteJoinHandle { shared }),
            Err(job) => {
                let RemoteJob { f, slot, .. } = *job;
                slot.disarm();
                Err(SpawnError(f))
            }
        }
    }

    /// True once the loop is gone (dropped, or its runtime shut down): spawns
    /// are refused.
    pub fn is_closed(&self) -> bool {
        self.remote.is_closed()
    }

    pub(crate) fn remote(&self) -> &Arc<Remote> {
        &self.remote
    }
}

impl fmt::Debug for LoopHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopHandle")
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

/// [`LoopHandle::try_spawn`] failed: the loop is gone. Holds the closure
/// that was not sent.
pub struct SpawnError<F>(pub F);

impl<F> SpawnError<F> {
    /// The closure that was not sent.
    pub fn into_inner(self) -> F {
        self.0
    }
}

impl<F> fmt::Debug for SpawnError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SpawnError(..)")
    }
}

impl<F> fmt::Display for SpawnError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("spawning onto an event loop that is gone")
    }
}

impl<F> std::error::Error for SpawnError<F> {}

/// The result slot a remote task and its handle share.
struct Shared<T> {
    state: Mutex<State<T>>,
    done: Condvar,
}

struct State<T> {
    /// `Some` once the task is done, until the handle takes it.
    result: Option<Result<T, JoinError>>,
    finished: bool,
    /// The waker of the last poll of the handle.
    waker: Option<Waker>,
    /// The handle was dropped: nobody will read the result.
    detached: bool,
    /// A thread waits on the condition variable (so the task's end must
    /// signal it: a system call, saved when nobody waits).
    blocked: bool,
}

impl<T> Shared<T> {
    fn new() -> Self {
        Shared {
            state: Mutex::new(State {
                result: None,
                finished: false,
                waker: None,
                detached: false,
                blocked: false,
            }),
            done: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // No code that can panic runs under the lock: a poisoned one is fine.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores the result (unless one is there) and wakes the waiter. Hands
    /// back a panic nobody will read (the handle is gone), for the loop to
    /// report.
    fn finish(&self, result: Result<T, JoinError>) -> Option<Panic> {
        let (waker, unread, blocked) = {
            let mut state = self.lock();
            if state.finished {
                return None;
            }
            state.finished = true;
            let unread = if state.detached {
                result.err().and_then(|e| e.try_into_panic().ok())
            } else {
                state.result = Some(result);
                None
            };
            (state.waker.take(), unread, state.blocked)
        };
        if blocked {
            self.done.notify_all();
        }
        if let Some(waker) = waker {
            waker.wake();
        }
        unread
    }
}

/// The remote task's side of the slot: fills it with a cancellation if it
/// is dropped before the task filled it (the task was cancelled, or never
/// started).
struct Slot<T>(Arc<Shared<T>>);

impl<T> Slot<T> {
    fn disarm(self) {
        self.0.lock().finished = true;
    }
}

impl<T> Drop for Slot<T> {
    fn drop(&mut self) {
        // A panic nobody reads cannot come from a cancellation.
        drop(self.0.finish(Err(JoinError::cancelled(
            current_task_id().unwrap_or(0),
            None,
        ))));
    }
}

/// A closure in a loop's inbox, with its result slot.
struct RemoteJob<F, T> {
    f: F,
    slot: Slot<T>,
    stack_size: Option<usize>,
}

impl<F, T> Job for RemoteJob<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    fn start(self: Box<Self>, core: &Core) {
        let RemoteJob {
            f,
            slot,
            stack_size,
        } = *self;
        let opts = TaskOptions {
            name: None,
            stack_size,
        };
        // The job is shared with the task's closure so that, if no stack
        // can be mapped (the closure is dropped unstarted), this function
        // still has it and reports why.
        let cell = Rc::new(RefCell::new(Some((f, slot))));
        let mine = cell.clone();
        let spawned = kind::stackful::spawn(core, opts, move || {
            let Some((f, slot)) = cell.borrow_mut().take() else {
                return;
            };
            drop(cell);
            run_remote(f, slot);
        });
        match spawned {
            Ok(handle) => handle.detach(),
            Err(e) => {
                if let Some((f, slot)) = mine.borrow_mut().take() {
                    drop(f);
                    let panic = Panic::new(Box::new(e.to_string()), None);
                    drop(slot.0.finish(Err(JoinError::panicked(0, panic))));
                }
            }
        }
    }
}

/// The body of a remote task: runs `f` and fills the slot. A panic whose
/// handle is gone is raised again, so that the loop reports it like any
/// detached task's panic.
fn run_remote<F: FnOnce() -> T, T>(f: F, slot: Slot<T>) {
    let id = current_task_id().unwrap_or(0);
    let result = crate::coroutine::catch_unwind(std::panic::AssertUnwindSafe(f))
        .map_err(|payload| JoinError::panicked(id, Panic::new(payload, None)));
    let unread = slot.0.finish(result);
    if let Some(panic) = unread {
        panic.resume_unwind();
    }
}

/// An owned permission to wait for a task spawned through a [`LoopHandle`]
/// (or a [`Runtime`](super::Runtime)), from any thread: `Send`, and a
/// [`Future`] of the task's result.
///
/// * `.await` it in async code, or [`wait_for`] it inside a stackful task
///   of any loop (the task parks; the remote task's end wakes it);
/// * [`join`](RemoteJoinHandle::join) blocks a plain thread (or, inside a
///   stackful task, parks the task);
/// * dropping it (or [`detach`](RemoteJoinHandle::detach)) lets the task
///   run on unobserved: if it later panics, its loop reports the panic like
///   any detached task's; a result that was already there is dropped with
///   the handle. There is no cross-thread `cancel`: the task runs to its
///   end, or until its loop is dropped.
///
/// The result is a [`JoinError`] if the task panicked, was cancelled (its
/// loop was dropped), or could not start (no stack could be mapped: a
/// panic with the stack error's message).
pub struct RemoteJoinHandle<T> {
    shared: Arc<Shared<T>>,
}

impl<T> RemoteJoinHandle<T> {
    fn finished(result: Result<T, JoinError>) -> Self {
        let shared = Arc::new(Shared::new());
        drop(shared.finish(result));
        RemoteJoinHandle { shared }
    }

    fn take(&self, mut state: MutexGuard<'_, State<T>>) -> Result<T, JoinError> {
        state
            .result
            .take()
            .expect("RemoteJoinHandle: the result was already taken")
    }

    /// Waits until the task finishes and returns its value, or a
    /// [`JoinError`] if it panicked or was cancelled.
    ///
    /// On a thread that is not running a task, this blocks the thread (no
    /// spinning: a condition variable). Inside a stackful task it parks the
    /// task, like [`wait_for`]`(handle)`.
    ///
    /// # Panics
    /// Inside a future or stackless task, where blocking would stop the
    /// whole loop (`.await` the handle there instead).
    #[track_caller]
    pub fn join(self) -> Result<T, JoinError> {
        if CURRENT_TASK.with(|t| t.get().is_some()) {
            return wait_for(self);
        }
        let mut state = self.shared.lock();
        state.blocked = true;
        while !state.finished {
            state = self
                .shared
                .done
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
        self.take(state)
    }

    /// The result if the task is done, or the handle back.
    pub fn try_join(self) -> Result<Result<T, JoinError>, Self> {
        let state = self.shared.lock();
        if state.finished {
            Ok(self.take(state))
        } else {
            drop(state);
            Err(self)
        }
    }

    /// True once the task has returned, panicked or been cancelled.
    pub fn is_finished(&self) -> bool {
        self.shared.lock().finished
    }

    /// Lets the task run on without a handle (the same as dropping it).
    pub fn detach(self) {}
}

impl<T> Future for RemoteJoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.shared.lock();
        if state.finished {
            return Poll::Ready(self.take(state));
        }
        match &mut state.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl<T> Drop for RemoteJoinHandle<T> {
    fn drop(&mut self) {
        let (waker, result) = {
            let mut state = self.shared.lock();
            state.detached = true;
            (state.waker.take(), state.result.take())
        };
        // The waker and an unread value are user code: dropped unlocked.
        drop((waker, result));
    }
}

impl<T> fmt::Debug for RemoteJoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteJoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}
