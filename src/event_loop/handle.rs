//! Spawning onto a loop from other threads: [`LoopHandle`] (a `Send` handle
//! into one loop's inbox), [`RemoteJoinHandle`] (the `Send` result of such a
//! spawn) and [`SpawnError`].
//!
//! # How a remote spawn travels
//!
//! [`LoopHandle::spawn`] boxes the closure with a shared result slot (an
//! atomic state word and the result; a mutex, a condition variable and a
//! waker only for a handle that has to wait) and leaves it in the loop's
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

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use crate::error::Panic;

use super::context::current_task_id;
use super::core::Core;
use super::current::CURRENT_TASK;
use super::error::JoinError;
use super::kind;
use super::remote::{Job, Remote, task_key};
use super::task::TaskOptions;
use super::wait_for::wait_for;

mod slot;

use slot::{DETACHED, FINISHED, STRANDED, Shared, Slot, Starting, WAITING};

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
        let shared = Arc::new(Shared::new(Some(self.remote.clone())));
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

/// How many times [`RemoteJoinHandle::join`] looks at the slot before it
/// blocks its thread: a result that is a few microseconds away (a short
/// task on a busy loop) is cheaper to spin for than to sleep for (the
/// sleep and the wake-up are two system calls and a context switch).
const JOIN_SPINS: u32 = 64;
/// How many times, after spinning, [`RemoteJoinHandle::join`] gives its
/// time slice away before it blocks.
const JOIN_YIELDS: u32 = 8;

/// A closure in a loop's inbox, with its result slot.
struct RemoteJob<F, T: 'static> {
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
        // If no stack can be mapped, the closure is dropped unstarted; the
        // flag makes its slot leave itself in `STRANDED` (rather than report
        // a cancellation), for the error to be reported below.
        let spawned = {
            let _starting = Starting::new();
            kind::stackful::spawn(core, opts, move || run_remote(f, slot))
        };
        match spawned {
            Ok(handle) => handle.detach(),
            Err(e) => {
                if let Some(stranded) = STRANDED.with(Cell::take) {
                    stranded.report(Panic::new(Box::new(e.to_string()), None));
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
    if let Some(panic) = slot.finish(result) {
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

impl<T: 'static> RemoteJoinHandle<T> {
    fn finished(result: Result<T, JoinError>) -> Self {
        let slot = Slot(Arc::new(Shared::new(None)));
        let shared = slot.0.clone();
        drop(slot.finish(result));
        RemoteJoinHandle { shared }
    }
}

impl<T> RemoteJoinHandle<T> {
    /// Takes the result; the caller saw [`FINISHED`].
    fn take(&self) -> Result<T, JoinError> {
        // SAFETY: the caller saw `FINISHED` (with an acquire), after which
        // the task's side never touches `result`; the handle is not shared
        // (methods that take it need `self` or `Pin<&mut Self>`), so this
        // is the only access.
        unsafe { (*self.shared.result.get()).take() }
            .expect("RemoteJoinHandle: the result was already taken")
    }

    /// Waits until the task finishes and returns its value, or a
    /// [`JoinError`] if it panicked or was cancelled.
    ///
    /// On a thread that is not running a task, this blocks the thread (after
    /// a short spin: a condition variable, no busy waiting). Inside a
    /// stackful task it parks the task, like [`wait_for`]`(handle)`.
    ///
    /// # Panics
    /// Inside a future or stackless task, where blocking would stop the
    /// whole loop (`.await` the handle there instead); and on the thread of
    /// the task's own loop outside its tasks (unless the task is done),
    /// where the task could never run while the thread waits.
    #[track_caller]
    pub fn join(self) -> Result<T, JoinError> {
        if self.shared.is_finished() {
            return self.take();
        }
        if CURRENT_TASK.with(|t| t.get().is_some()) {
            return wait_for(self);
        }
        if let Some(remote) = &self.shared.remote
            && remote.thread_id() == std::thread::current().id()
        {
            panic!(
                "RemoteJoinHandle::join called on the thread of the task's own loop, outside its \
                 tasks: the task can only run when that loop runs, so this would block for ever \
                 (run the loop, or join from one of its tasks or from another thread)"
            );
        }
        for i in 0..JOIN_SPINS + JOIN_YIELDS {
            if i < JOIN_SPINS {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
            if self.shared.is_finished() {
                return self.take();
            }
        }
        let mut wait = self.shared.lock();
        // Under the lock (see `Shared::finish`).
        self.shared.state.fetch_or(WAITING, Ordering::AcqRel);
        while !self.shared.is_finished() {
            wait = self
                .shared
                .done
                .wait(wait)
                .unwrap_or_else(|e| e.into_inner());
        }
        drop(wait);
        self.take()
    }

    /// The result if the task is done, or the handle back.
    pub fn try_join(self) -> Result<Result<T, JoinError>, Self> {
        if self.shared.is_finished() {
            Ok(self.take())
        } else {
            Err(self)
        }
    }

    /// True once the task has returned, panicked or been cancelled.
    pub fn is_finished(&self) -> bool {
        self.shared.is_finished()
    }

    /// Lets the task run on without a handle (the same as dropping it).
    pub fn detach(self) {}
}

impl<T> Future for RemoteJoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.shared.is_finished() {
            return Poll::Ready(self.take());
        }
        // The remote task's loop and the waker's on this thread: by key.
        let key = (self.shared.remote.as_ref())
            .filter(|remote| remote.thread_id() == std::thread::current().id())
            .and_then(|_| task_key(cx.waker()));
        let old = {
            let mut wait = self.shared.lock();
            let old_waker = match &wait.waker {
                _ if key.is_some() => wait.waker.take(),
                Some(w) if w.will_wake(cx.waker()) => None,
                _ => wait.waker.replace(cx.waker().clone()),
            };
            let old = (old_waker, std::mem::replace(&mut wait.key, key));
            // Under the lock, after the waker is stored (see
            // `Shared::finish`): the task's end either sees `WAITING` and
            // takes the waker, or finished before, which is seen here.
            let prev = self.shared.state.fetch_or(WAITING, Ordering::AcqRel);
            if prev & FINISHED != 0 {
                drop(wait);
                drop(old);
                return Poll::Ready(self.take());
            }
            old
        };
        // A replaced waker is user code, and the last reference to a gone
        // loop's inbox drops what was left in it: dropped unlocked.
        drop(old);
        Poll::Pending
    }
}

impl<T> Drop for RemoteJoinHandle<T> {
    fn drop(&mut self) {
        let prev = self.shared.state.fetch_or(DETACHED, Ordering::AcqRel);
        // The task's end no longer wakes anyone once `DETACHED`: the waker
        // and the key go now, or the key would keep its loop's inbox (and
        // its poller's waker) alive until the task ends, that loop dropped
        // or not. The waker, the last reference to a gone loop's inbox and
        // an unread value are user code: dropped unlocked.
        let (waker, key) = if prev & WAITING != 0 {
            let mut wait = self.shared.lock();
            (wait.waker.take(), wait.key.take())
        } else {
            (None, None)
        };
        let result = if prev & FINISHED != 0 {
            // SAFETY: `FINISHED` was seen (acquire): the task's side is done
            // with `result`, and this handle is its only other user.
            unsafe { (*self.shared.result.get()).take() }
        } else {
            // The task's side will see `DETACHED` and keep the result.
            None
        };
        drop((waker, key, result));
    }
}

impl<T> fmt::Debug for RemoteJoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteJoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}
