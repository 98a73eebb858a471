//! Stackless tasks (feature `nightly`): `#[coroutine]` closures that yield
//! [`Wait`] requests for the loop to act on.
//!
//! A stackless task has no stack of its own: its state lives in the task's
//! allocation, a few dozen bytes, so a loop can hold millions of them (a
//! stackful task needs a guarded stack mapping, and Linux allows about
//! 32,000 of those per process). The price is that it can only wait from
//! its own body, by `yield`ing a request; it then retries the operation
//! with its non-waiting (`try_`) form:
//!
//! ```
//! #![feature(coroutines, coroutine_trait, stmt_expr_attributes)]
//! use cogen::event_loop::{EventLoop, Wait, channel, TryRecvError};
//! use std::time::Duration;
//!
//! let ev = EventLoop::new();
//! let (tx, rx) = channel::<u32>(1);
//! let consumer = ev.spawn_stackless(#[coroutine] move || {
//!     let mut sum = 0;
//!     loop {
//!         match rx.try_recv() {
//!             Ok(v) => sum += v,
//!             Err(TryRecvError::Empty) => yield Wait::recv(&rx),
//!             Err(TryRecvError::Closed) => return sum,
//!         }
//!     }
//! });
//! let producer = ev.spawn_stackless(#[coroutine] move || {
//!     for i in 1..=3 {
//!         let mut v = i;
//!         while let Err(e) = tx.try_send(v) {
//!             v = e.into_inner();
//!             yield Wait::send(&tx);
//!         }
//!         yield Wait::sleep(Duration::from_millis(1));
//!     }
//! });
//! let joiner = ev.spawn_stackless(#[coroutine] move || {
//!     yield Wait::join(&producer);
//!     producer.try_join().ok().unwrap().is_ok()
//! });
//! ev.run().unwrap();
//! assert_eq!(consumer.join().unwrap(), 6);
//! assert!(joiner.join().unwrap());
//! ```
//!
//! Panics, cancellation, joining and deadlock detection work as for
//! stackful tasks.

use std::cell::UnsafeCell;
use std::fmt;
use std::ops::{Coroutine as StdCoroutine, CoroutineState};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::error::Panic;

use super::channel::{ChanWait, Receiver, Sender, Side};
use super::error::JoinError;
use super::join::{JoinHandle, ResultCell};
use super::scheduler::{
    Core, EventLoop, Header, Reason, Slot, Step, TaskBuilder, TaskOptions, TaskRef, Waiter,
    current_core,
};

/// What a stackless task waits for: the value it `yield`s.
#[must_use = "a Wait does nothing unless yielded from a stackless task"]
pub struct Wait(WaitKind);

enum WaitKind {
    Yield,
    Until(Instant),
    Join(TaskRef),
    Channel(Rc<dyn ChanWait>, Side),
}

impl Wait {
    /// Go to the back of the run queue (like [`yield_now`](super::yield_now)).
    pub fn yield_now() -> Wait {
        Wait(WaitKind::Yield)
    }

    /// Sleep for at least `duration`.
    pub fn sleep(duration: Duration) -> Wait {
        let now = Instant::now();
        Wait(WaitKind::Until(now.checked_add(duration).unwrap_or_else(
            || now + Duration::from_secs(100 * 365 * 24 * 3600),
        )))
    }

    /// Sleep until `deadline`.
    pub fn sleep_until(deadline: Instant) -> Wait {
        Wait(WaitKind::Until(deadline))
    }

    /// Wait until the task of `handle` is done; then take its result with
    /// [`JoinHandle::try_join`].
    pub fn join<T>(handle: &JoinHandle<T>) -> Wait {
        Wait(WaitKind::Join(handle.task().clone()))
    }

    /// Wait until `rx` has a message or is closed; then call `try_recv`.
    pub fn recv<T: 'static>(rx: &Receiver<T>) -> Wait {
        Wait(WaitKind::Channel(rx.chan.clone(), Side::Recv))
    }

    /// Wait until `tx` has room or is closed; then call `try_send`.
    pub fn send<T: 'static>(tx: &Sender<T>) -> Wait {
        Wait(WaitKind::Channel(tx.chan.clone(), Side::Send))
    }
}

impl fmt::Debug for Wait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            WaitKind::Yield => f.write_str("Wait::yield_now"),
            WaitKind::Until(t) => f.debug_tuple("Wait::sleep_until").field(t).finish(),
            WaitKind::Join(t) => f.debug_tuple("Wait::join").field(&t.header.id).finish(),
            WaitKind::Channel(_, side) => f.debug_tuple("Wait::channel").field(side).finish(),
        }
    }
}

struct StacklessSlot<C: StdCoroutine<Yield = Wait>> {
    /// `None` once finished, panicked or cancelled.
    co: UnsafeCell<Option<C>>,
    /// The channel it last parked on, to pass a wake-up on if cancelled.
    last: UnsafeCell<Option<(Rc<dyn ChanWait>, Side)>>,
    result: ResultCell<C::Return>,
}

impl<C: StdCoroutine<Yield = Wait>> Slot for StacklessSlot<C> {
    fn step(&self, header: &Header) -> Step {
        // SAFETY: only the loop steps a task, never re-entrantly; the
        // coroutine lives in an `Rc` allocation that never moves and is
        // dropped in place, so pinning it there is sound.
        let co = unsafe { &mut *self.co.get() };
        let Some(c) = co.as_mut() else {
            return Step::Done;
        };
        // SAFETY: see above.
        let c = unsafe { Pin::new_unchecked(c) };
        match std::panic::catch_unwind(AssertUnwindSafe(|| c.resume(()))) {
            Ok(CoroutineState::Yielded(wait)) => Step::Wait(wait),
            Ok(CoroutineState::Complete(value)) => {
                *co = None;
                self.result.set(Ok(value));
                Step::Done
            }
            Err(payload) => {
                let _ = std::panic::catch_unwind(AssertUnwindSafe(|| *co = None));
                let panic = Panic::new(payload, header.name_cow());
                self.result.set(Err(JoinError::panicked(header.id, panic)));
                Step::Done
            }
        }
    }

    fn close(&self, header: &Header) -> Result<(), Panic> {
        // SAFETY: see `step`; the task is not running.
        let co = unsafe { &mut *self.co.get() };
        let dropped = std::panic::catch_unwind(AssertUnwindSafe(|| *co = None));
        if !self.result.is_set() {
            self.result
                .set(Err(JoinError::cancelled(header.id, header.name_cow())));
        }
        dropped.map_err(|payload| Panic::new(payload, header.name_cow()))
    }

    fn take_panic(&self) -> Option<Panic> {
        self.result.take_panic()
    }

    fn pass_on(&self) {
        // SAFETY: loop-thread only, no other reference is alive.
        if let Some((chan, side)) = unsafe { (*self.last.get()).take() } {
            chan.pass_on(side);
        }
    }

    fn remember_wait(&self, chan: Rc<dyn ChanWait>, side: Side) {
        // SAFETY: loop-thread only, no other reference is alive.
        unsafe { *self.last.get() = Some((chan, side)) };
    }
}

impl Core {
    /// Files a stackless task according to the request it yielded.
    pub(crate) fn act_on_wait(&self, task: TaskRef, wait: Wait) {
        match wait.0 {
            WaitKind::Yield => self.requeue(task),
            WaitKind::Until(at) => {
                let seq = self.begin_park(&task.header, Reason::Sleep);
                self.add_timer(at, task, seq);
            }
            WaitKind::Join(target) => {
                if target.header.is_done() {
                    self.requeue(task);
                } else {
                    let seq = self.begin_park(&task.header, Reason::Join);
                    if let Some(old) = target.header.set_waiter(Waiter::Task(task, seq)) {
                        old.wake();
                    }
                }
            }
            WaitKind::Channel(chan, side) => {
                if chan.ready(side) {
                    self.requeue(task);
                } else {
                    let reason = match side {
                        Side::Send => Reason::Send,
                        Side::Recv => Reason::Recv,
                    };
                    let seq = self.begin_park(&task.header, reason);
                    task.slot.remember_wait(chan.clone(), side);
                    chan.register(side, task, seq);
                }
            }
        }
    }

    pub(crate) fn spawn_stackless<C>(&self, opts: TaskOptions, co: C) -> JoinHandle<C::Return>
    where
        C: StdCoroutine<Yield = Wait> + 'static,
        C::Return: 'static,
    {
        let slot = StacklessSlot {
            co: UnsafeCell::new(Some(co)),
            last: UnsafeCell::new(None),
            result: ResultCell::new(),
        };
        self.spawn_slot(opts.name, slot, |s| &s.result)
    }
}

impl EventLoop {
    /// Spawns a stackless task (feature `nightly`): a `#[coroutine]`
    /// closure that yields [`Wait`] requests. See the [module](super::stackless).
    pub fn spawn_stackless<C>(&self, co: C) -> JoinHandle<C::Return>
    where
        C: StdCoroutine<Yield = Wait> + 'static,
        C::Return: 'static,
    {
        self.core().spawn_stackless(TaskOptions::default(), co)
    }
}

impl TaskBuilder {
    /// Spawns a named stackless task on `ev` (the stack size is ignored).
    pub fn spawn_stackless_on<C>(self, ev: &EventLoop, co: C) -> JoinHandle<C::Return>
    where
        C: StdCoroutine<Yield = Wait> + 'static,
        C::Return: 'static,
    {
        ev.core().spawn_stackless(self.into_options(), co)
    }
}

/// Spawns a stackless task on the loop running the current task.
///
/// # Panics
/// Outside a task of a running loop.
#[track_caller]
pub fn spawn_stackless<C>(co: C) -> JoinHandle<C::Return>
where
    C: StdCoroutine<Yield = Wait> + 'static,
    C::Return: 'static,
{
    current_core("spawn_stackless").spawn_stackless(TaskOptions::default(), co)
}
