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
use std::mem::ManuallyDrop;
use std::ops::{Coroutine as StdCoroutine, CoroutineState};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::ptr::{self, NonNull};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::error::Panic;

use super::channel::{ChanWait, Receiver, Sender, Side, ThinChan};
use super::error::JoinError;
use super::join::{JoinHandle, ResultCell};
use super::scheduler::{
    Core, EventLoop, Header, RESULT_PENDING, Reason, Slot, Step, TaskBuilder, TaskOptions, TaskRef,
    Waiter, current_core,
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

/// The coroutine and, once it is gone, the result cell: they never live at
/// the same time, so they share their bytes (which one is there is
/// [`StacklessSlot::stage`]). A parked task is mostly this, so it matters.
union Body<C, R> {
    co: ManuallyDrop<C>,
    result: ManuallyDrop<ResultCell<R>>,
}

/// What the body holds, in the header's `slot_byte`: the coroutine.
const LIVE: u8 = 0;
/// The body holds the result cell (set, or taken by the handle).
const RESULT: u8 = 1;
/// The body holds nothing (the coroutine's drop is under way): the handle
/// must not read the result yet, even though the task is done.
const EMPTY: u8 = RESULT_PENDING;

/// A stackless task's slot. Its small state lives in the header's spare
/// bytes: `slot_byte` is the stage (`LIVE`, `RESULT` or `EMPTY`: what
/// `body` holds; a new header says `LIVE`), `slot_side` the side of the
/// channel in `last`.
struct StacklessSlot<C: StdCoroutine<Yield = Wait>> {
    body: UnsafeCell<Body<C, C::Return>>,
    /// The channel it last parked on, to pass a wake-up on if cancelled.
    last: UnsafeCell<Option<ThinChan>>,
}

// SAFETY (for every access to `body` and `last` below): a slot is only
// touched on the loop's thread, by the loop stepping or closing the task,
// by the task's handle reading the result once the task is done, and by
// the task's drop; none of these overlap and none keeps a reference across
// another. `body.co` is only touched while the stage is `LIVE`,
// `body.result` only while it is `RESULT`.
impl<C: StdCoroutine<Yield = Wait>> StacklessSlot<C> {
    fn new(co: C) -> Self {
        const { assert!(LIVE == 0, "a new header's slot_byte is 0") };
        StacklessSlot {
            body: UnsafeCell::new(Body {
                co: ManuallyDrop::new(co),
            }),
            last: UnsafeCell::new(None),
        }
    }

    /// Where the result will be, for the handle (valid to read once the
    /// task is done: `stage` is then `RESULT`).
    fn result_ptr(&self) -> NonNull<ResultCell<C::Return>> {
        // SAFETY: a pointer into our own field, no reference is made; `ManuallyDrop`
        // is `repr(transparent)`.
        unsafe {
            NonNull::new_unchecked(
                ptr::addr_of_mut!((*self.body.get()).result).cast::<ResultCell<C::Return>>(),
            )
        }
    }

    /// Drops the coroutine, catching a panic of its destructors.
    fn drop_co(&self, header: &Header) -> std::thread::Result<()> {
        debug_assert_eq!(header.slot_byte.get(), LIVE);
        header.slot_byte.set(EMPTY);
        // SAFETY: stage was LIVE, so `co` is there; it is dropped once, as
        // the stage now says EMPTY.
        std::panic::catch_unwind(AssertUnwindSafe(|| unsafe {
            ManuallyDrop::drop(&mut (*self.body.get()).co)
        }))
    }

    /// Stores the result in the emptied body.
    fn store(&self, header: &Header, value: Result<C::Return, JoinError>) {
        debug_assert_eq!(header.slot_byte.get(), EMPTY);
        let cell = ResultCell::new();
        cell.set(value);
        // SAFETY: the body is EMPTY: nothing to drop, nothing borrowed.
        unsafe { (*self.body.get()).result = ManuallyDrop::new(cell) };
        header.slot_byte.set(RESULT);
    }
}

impl<C: StdCoroutine<Yield = Wait>> Slot for StacklessSlot<C> {
    fn drop_body(&mut self, header: &Header) {
        let body = self.body.get_mut();
        match header.slot_byte.replace(EMPTY) {
            // SAFETY: the stage says which field is there; dropped once.
            LIVE => unsafe { ManuallyDrop::drop(&mut body.co) },
            // SAFETY: as above.
            RESULT => unsafe { ManuallyDrop::drop(&mut body.result) },
            _ => {}
        }
    }

    fn step(&self, header: &Header) -> Step {
        if header.slot_byte.get() != LIVE {
            return Step::Done;
        }
        // SAFETY: only the loop steps a task, never re-entrantly; the
        // coroutine is LIVE and lives in an `Rc` allocation that never moves
        // and is dropped in place, so pinning it there is sound.
        let c = unsafe { Pin::new_unchecked(&mut *(*self.body.get()).co) };
        match std::panic::catch_unwind(AssertUnwindSafe(|| c.resume(()))) {
            Ok(CoroutineState::Yielded(wait)) => Step::Wait(wait),
            Ok(CoroutineState::Complete(value)) => {
                let dropped = self.drop_co(header);
                self.store(header, Ok(value));
                if let Err(payload) = dropped {
                    std::panic::resume_unwind(payload);
                }
                Step::Done
            }
            Err(payload) => {
                let _ = self.drop_co(header);
                let panic = Panic::new(payload, header.name_cow());
                self.store(header, Err(JoinError::panicked(header.id, panic)));
                Step::Done
            }
        }
    }

    fn close(&self, header: &Header) -> Result<(), Panic> {
        let dropped = match header.slot_byte.get() {
            LIVE => self.drop_co(header),
            _ => Ok(()),
        };
        if header.slot_byte.get() == EMPTY {
            self.store(
                header,
                Err(JoinError::cancelled(header.id, header.name_cow())),
            );
        }
        dropped.map_err(|payload| Panic::new(payload, header.name_cow()))
    }

    fn take_panic(&self, header: &Header) -> Option<Panic> {
        if header.slot_byte.get() != RESULT {
            return None;
        }
        // SAFETY: the stage is RESULT, so the result cell is there.
        unsafe { (*self.body.get()).result.take_panic() }
    }

    fn pass_on(&self, header: &Header) {
        // SAFETY: loop-thread only, no other reference is alive.
        if let Some(chan) = unsafe { (*self.last.get()).take() } {
            chan.pass_on(header.slot_side.get());
        }
    }

    fn remember_wait(&self, header: &Header, chan: Rc<dyn ChanWait>, side: Side) {
        // SAFETY: loop-thread only, no other reference is alive.
        unsafe { *self.last.get() = Some(chan.thin()) };
        header.slot_side.set(side);
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
                    task.slot.remember_wait(&task.header, chan.clone(), side);
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
        self.spawn_slot(opts.name, StacklessSlot::new(co), StacklessSlot::result_ptr)
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
