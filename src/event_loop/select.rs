//! Waiting for the first of several channel operations: [`Select`].
//!
//! # Design
//!
//! A select tries its operations without waiting, in a random rotation
//! (so that repeated selects do not starve a later operation); the first
//! that can complete does, and no other is touched. Otherwise the task
//! parks once, registered in the wait list of every operation's channel
//! (and on the timers, for a deadline), all under the same park number.
//! Whichever wakes it first wins the park; the others' entries are taken
//! out of their lists as soon as the task runs again, and it tries every
//! operation again. A channel's wake-up is a wake-one, so after a select
//! completes one operation after a wait, each other channel that is ready
//! hands its wake-up on to its next waiter (the task may have taken it):
//! no message is left unseen while another receiver waits. The same
//! clean-up runs when the task is unwound out of the park (cancelled, or a
//! [`timeout`](super::timeout()) expired).
//!
//! Only one task runs at a time and nothing preempts it, so an operation
//! found ready is completed before anything else can touch its channel:
//! there is no reservation step, and a receive takes a message only from
//! the channel it completes on.

use std::cell::Cell;
use std::fmt;
use std::time::{Duration, Instant};

use super::channel::{ChanWait, Receiver, Sender, Side};
use super::context::{current_task_addr, park};
use super::error::{RecvError, SendError, TryRecvError, TrySendError};
use super::task::WaitReason;
use super::timer::deadline_after;

/// Waits for the first of several channel operations (receives, sends, a
/// deadline) and runs the closure of the one that completed, in the style
/// of crossbeam's `select!`.
///
/// Each operation comes with a closure that gets its outcome; [`wait`]
/// completes exactly one operation and returns what its closure returns.
/// An operation on a closed channel completes at once (with its error):
/// it is never "not ready".
///
/// ```
/// use cogen::event_loop::{EventLoop, Select, channel, spawn};
/// use std::time::Duration;
///
/// let ev = EventLoop::new();
/// let got = ev
///     .block_on(|| {
///         let (tx_a, rx_a) = channel::<u32>(1);
///         let (_tx_b, rx_b) = channel::<&str>(1);
///         spawn(move || tx_a.send(7).unwrap());
///         Select::new()
///             .recv(&rx_a, |m| format!("a: {}", m.unwrap()))
///             .recv(&rx_b, |m| format!("b: {}", m.unwrap()))
///             .timeout(Duration::from_secs(1), || "timed out".to_string())
///             .wait()
///     })
///     .unwrap();
/// assert_eq!(got, "a: 7");
/// ```
///
/// # Fairness
///
/// When several operations are ready, each `wait` starts trying them at a
/// pseudo-random position, so none is starved by repeated selects. A
/// deadline is chosen only if no operation can complete.
///
/// # What is left behind
///
/// The values of the sends that were not chosen are dropped with the
/// `Select` (they never entered a channel). After `wait` returns, or the
/// task is unwound out of it, the task is in no wait list: a later send on
/// one of the channels goes to another receiver.
///
/// [`wait`]: Select::wait
#[must_use = "a Select does nothing until `wait` is called"]
pub struct Select<'a, R> {
    arms: Vec<Box<dyn Arm<R> + 'a>>,
    deadline: Option<(Instant, Box<dyn FnOnce() -> R + 'a>)>,
}

impl<'a, R> Select<'a, R> {
    /// A select with no operation yet.
    pub fn new() -> Self {
        Select {
            arms: Vec::new(),
            deadline: None,
        }
    }

    /// Adds a receive on `rx`: `f` gets the message, or [`RecvError`] if
    /// the channel is closed and drained.
    pub fn recv<T: 'a>(
        mut self,
        rx: &'a Receiver<T>,
        f: impl FnOnce(Result<T, RecvError>) -> R + 'a,
    ) -> Self {
        self.arms.push(Box::new(RecvArm {
            rx,
            got: None,
            f: Some(f),
        }));
        self
    }

    /// Adds a send of `value` on `tx`: `f` gets `Ok(())` once it is sent,
    /// or [`SendError`] with the value if the channel is closed. If another
    /// operation is chosen, `value` is dropped with the `Select`.
    pub fn send<T: 'a>(
        mut self,
        tx: &'a Sender<T>,
        value: T,
        f: impl FnOnce(Result<(), SendError<T>>) -> R + 'a,
    ) -> Self {
        self.arms.push(Box::new(SendArm {
            tx,
            value: Some(value),
            sent: None,
            f: Some(f),
        }));
        self
    }

    /// Gives up waiting `duration` from now, returning what `f` returns.
    /// A zero duration makes [`wait`](Select::wait) try the operations
    /// once without waiting. With several deadlines, the earliest counts.
    pub fn timeout(self, duration: Duration, f: impl FnOnce() -> R + 'a) -> Self {
        self.deadline(deadline_after(duration), f)
    }

    /// [`timeout`](Select::timeout) with a deadline instead of a duration.
    pub fn deadline(mut self, at: Instant, f: impl FnOnce() -> R + 'a) -> Self {
        if self.deadline.as_ref().is_none_or(|(old, _)| at < *old) {
            self.deadline = Some((at, Box::new(f)));
        }
        self
    }

    /// Completes the first operation that can complete, waiting (parking
    /// the running stackful task) until one can or the deadline passes,
    /// and returns what that operation's closure returns.
    ///
    /// Without waiting it works anywhere, like the `try_` operations.
    ///
    /// # Panics
    /// If it would have to wait outside a stackful task, or with no
    /// operation and no deadline (it could never return).
    #[track_caller]
    pub fn wait(mut self) -> R {
        let n = self.arms.len();
        let start = if n > 1 { random_below(n) } else { 0 };
        let mut parked = false;
        loop {
            if let Some(i) = (0..n)
                .map(|k| (start + k) % n)
                .find(|&i| self.arms[i].try_complete())
            {
                return self.finish(i, parked);
            }
            if let Some((at, _)) = &self.deadline
                && Instant::now() >= *at
            {
                let (_, on_timeout) = self.deadline.take().expect("checked above");
                drop(self); // no wake-up to hand on: none of them is ready
                return on_timeout();
            }
            assert!(
                n > 0 || self.deadline.is_some(),
                "Select::wait with no operation and no deadline would never return"
            );
            self.park();
            parked = true;
        }
    }

    /// Parks on every operation's channel and the deadline, and takes the
    /// task out of every wait list once it runs again.
    fn park(&self) {
        let me = current_task_addr();
        let guard = Leave {
            arms: &self.arms,
            me,
        };
        let reason = match self.arms.as_slice() {
            [] => WaitReason::Sleep,
            [_, _, ..] => WaitReason::Select,
            [arm] => match arm.wait_on().1 {
                Side::Send => WaitReason::Send,
                Side::Recv => WaitReason::Recv,
            },
        };
        let deadline = self.deadline.as_ref().map(|(at, _)| *at);
        park("Select::wait", reason, |core, task, seq| {
            if let Some(at) = deadline {
                core.timers.add(at, task.clone(), seq);
            }
            for arm in &self.arms {
                let (chan, side) = arm.wait_on();
                chan.register(side, task.clone(), seq);
            }
        });
        std::mem::forget(guard);
        for arm in &self.arms {
            let (chan, side) = arm.wait_on();
            drop(chan.unregister(side, me));
        }
    }

    /// Arm `i` completed: hands on the wake-ups the task may have taken
    /// from the others (if it waited), drops them, and runs `i`'s closure.
    fn finish(mut self, i: usize, parked: bool) -> R {
        let arm = self.arms.swap_remove(i);
        if parked {
            for other in &self.arms {
                let (chan, side) = other.wait_on();
                chan.pass_on(side);
            }
        }
        drop(self);
        arm.finish()
    }
}

impl<R> Default for Select<'_, R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R> fmt::Debug for Select<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Select")
            .field("operations", &self.arms.len())
            .field("deadline", &self.deadline.as_ref().map(|(at, _)| at))
            .finish()
    }
}

/// On unwinding out of a select's park: takes the task out of every wait
/// list, and hands on any wake-up it may have taken.
struct Leave<'s, 'a, R> {
    arms: &'s [Box<dyn Arm<R> + 'a>],
    me: *const (),
}

impl<R> Drop for Leave<'_, '_, R> {
    fn drop(&mut self) {
        for arm in self.arms {
            let (chan, side) = arm.wait_on();
            drop(chan.unregister(side, self.me));
            chan.pass_on(side);
        }
    }
}

/// One operation of a select, its outcome once completed, and its closure.
trait Arm<R> {
    /// Completes the operation if it can now (keeping the outcome for
    /// `finish`); false if it would have to wait.
    fn try_complete(&mut self) -> bool;
    /// The channel and side a wait for this operation parks on.
    fn wait_on(&self) -> (&dyn ChanWait, Side);
    /// Runs the closure on the outcome of the completed operation.
    fn finish(self: Box<Self>) -> R;
}

struct RecvArm<'a, T, F> {
    rx: &'a Receiver<T>,
    got: Option<Result<T, RecvError>>,
    f: Option<F>,
}

impl<T, R, F: FnOnce(Result<T, RecvError>) -> R> Arm<R> for RecvArm<'_, T, F> {
    fn try_complete(&mut self) -> bool {
        self.got = match self.rx.try_recv() {
            Ok(v) => Some(Ok(v)),
            Err(TryRecvError::Closed) => Some(Err(RecvError)),
            Err(TryRecvError::Empty) => return false,
        };
        true
    }

    fn wait_on(&self) -> (&dyn ChanWait, Side) {
        (&*self.rx.chan, Side::Recv)
    }

    fn finish(mut self: Box<Self>) -> R {
        let f = self.f.take().expect("finished once");
        f(self.got.take().expect("completed before finishing"))
    }
}

struct SendArm<'a, T, F> {
    tx: &'a Sender<T>,
    value: Option<T>,
    sent: Option<Result<(), SendError<T>>>,
    f: Option<F>,
}

impl<T, R, F: FnOnce(Result<(), SendError<T>>) -> R> Arm<R> for SendArm<'_, T, F> {
    fn try_complete(&mut self) -> bool {
        let value = self.value.take().expect("a value until sent");
        self.sent = match self.tx.try_send(value) {
            Ok(()) => Some(Ok(())),
            Err(TrySendError::Closed(v)) => Some(Err(SendError(v))),
            Err(TrySendError::Full(v)) => {
                self.value = Some(v);
                return false;
            }
        };
        true
    }

    fn wait_on(&self) -> (&dyn ChanWait, Side) {
        (&*self.tx.chan, Side::Send)
    }

    fn finish(mut self: Box<Self>) -> R {
        let f = self.f.take().expect("finished once");
        f(self.sent.take().expect("completed before finishing"))
    }
}

/// A pseudo-random number below `n` (xorshift64*, per thread): the start
/// of a select's rotation.
fn random_below(n: usize) -> usize {
    thread_local! {
        static STATE: Cell<u64> = const { Cell::new(0x9E37_79B9_7F4A_7C15) };
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        // The high bits are the good ones.
        ((x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as usize) % n
    })
}
