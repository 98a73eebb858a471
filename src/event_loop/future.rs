//! The bridge to `Future`s: wakers, [`block_on`] inside a task, and futures
//! run as tasks.
//!
//! A waker names its task by registry index and id. Waking pushes that key
//! into [`Shared`], the loop's only thread-safe part (a mutex-protected list
//! and an atomic flag), then unparks the loop's thread. The loop looks at
//! the flag (one relaxed load) once per round and when idle. Tasks parked
//! on a waker count as "externally wakeable", so the loop sleeps for them
//! instead of reporting a deadlock.

use std::cell::UnsafeCell;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::Duration;

use crate::error::Panic;

use super::error::JoinError;
use super::join::{JoinHandle, ResultCell};
use super::scheduler::{
    Core, EventLoop, Header, Reason, Slot, Step, current_core, park, running_stackful,
};

/// The part of a loop that other threads may touch.
pub(crate) struct Shared {
    pending: AtomicBool,
    woken: Mutex<Vec<(u32, u64)>>,
    thread: Thread,
}

impl Shared {
    pub(crate) fn new() -> Self {
        Shared {
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
    shared: Arc<Shared>,
    key: (u32, u64),
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.shared.wake(self.key);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.shared.wake(self.key);
    }
}

fn waker_for(core: &Core, header: &Header) -> Waker {
    Waker::from(Arc::new(TaskWaker {
        shared: core.shared.clone(),
        key: (header.index(), header.id),
    }))
}

/// Waits inside a stackful task for `future` to complete, while the other
/// tasks run; wake-ups may come from any thread.
///
/// ```
/// use cogen::event_loop::{EventLoop, block_on};
///
/// let ev = EventLoop::new();
/// let n = ev
///     .block_on(|| {
///         let (tx, rx) = std::sync::mpsc::channel();
///         let fut = blocking::unblock(move || tx.send(42).map(|_| rx.recv().unwrap()));
///         block_on(fut).unwrap()
///     })
///     .unwrap();
/// assert_eq!(n, 42);
/// ```
///
/// # Panics
/// Outside a stackful task.
#[track_caller]
pub fn block_on<F: Future>(future: F) -> F::Output {
    block_on_as(future, Reason::Future, "block_on")
}

#[track_caller]
pub(crate) fn block_on_as<F: Future>(future: F, reason: Reason, what: &str) -> F::Output {
    let (task, _) = running_stackful(what);
    let waker = waker_for(current_core(what), &task.header);
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
        park(what, reason, |_, _, _| {});
    }
}

struct FutureSlot<F: Future> {
    /// `None` once the future completed or was dropped.
    future: UnsafeCell<Option<F>>,
    waker: UnsafeCell<Option<Waker>>,
    result: ResultCell<F::Output>,
}

impl<F: Future> Slot for FutureSlot<F> {
    fn step(&self, header: &Header) -> Step {
        // SAFETY: only the loop steps a task and never re-entrantly, so these
        // are the only references; the future lives inside an `Rc` allocation
        // that never moves, so pinning it there is sound (it is dropped in place).
        let (future, waker) = unsafe { (&mut *self.future.get(), &mut *self.waker.get()) };
        let Some(f) = future.as_mut() else {
            return Step::Done;
        };
        let waker = waker.get_or_insert_with(|| {
            let core = header
                .core
                .upgrade()
                .expect("a running task's loop is alive");
            waker_for(&core, header)
        });
        // SAFETY: see above.
        let f = unsafe { Pin::new_unchecked(f) };
        let mut cx = Context::from_waker(waker);
        match std::panic::catch_unwind(AssertUnwindSafe(|| f.poll(&mut cx))) {
            Ok(Poll::Pending) => Step::Pending,
            Ok(Poll::Ready(value)) => {
                *future = None;
                self.result.set(Ok(value));
                Step::Done
            }
            Err(payload) => {
                *future = None;
                let panic = Panic::new(payload, header.name_cow());
                self.result.set(Err(JoinError::panicked(header.id, panic)));
                Step::Done
            }
        }
    }

    fn close(&self, header: &Header) -> Result<(), Panic> {
        // SAFETY: see `step`; the task is not running.
        let future = unsafe { &mut *self.future.get() };
        let dropped = std::panic::catch_unwind(AssertUnwindSafe(|| *future = None));
        if !self.result.is_set() {
            self.result
                .set(Err(JoinError::cancelled(header.id, header.name_cow())));
        }
        dropped.map_err(|payload| Panic::new(payload, header.name_cow()))
    }

    fn take_panic(&self, _: &Header) -> Option<Panic> {
        self.result.take_panic()
    }
}

pub(crate) fn spawn_future_on<F>(
    core: &Core,
    name: Option<std::borrow::Cow<'static, str>>,
    future: F,
) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let slot = FutureSlot {
        future: UnsafeCell::new(Some(future)),
        waker: UnsafeCell::new(None),
        result: ResultCell::new(),
    };
    core.spawn_slot(name, slot, |s| std::ptr::NonNull::from(&s.result))
}

impl EventLoop {
    /// Spawns a future as a task. It is polled by the loop like any task,
    /// its waker may be called from any thread, and inside it the loop's
    /// free functions that do not wait ([`spawn`](super::spawn),
    /// channel `try_` operations) work; waiting is done with `.await`
    /// (a [`JoinHandle`] is a future).
    ///
    /// ```
    /// let ev = cogen::event_loop::EventLoop::new();
    /// let stackful = ev.spawn(|| 20);
    /// let h = ev.spawn_future(async move { stackful.await.unwrap() + 22 });
    /// ev.run().unwrap();
    /// assert_eq!(h.join().unwrap(), 42);
    /// ```
    pub fn spawn_future<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        spawn_future_on(self.core(), None, future)
    }
}

/// Spawns a future as a task on the loop running the current task.
///
/// # Panics
/// Outside a task of a running loop.
#[track_caller]
pub fn spawn_future<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    spawn_future_on(current_core("spawn_future"), None, future)
}
