//! The time-limited waits of a channel: [`Sender::send_timeout`] /
//! [`send_deadline`](Sender::send_deadline) and [`Receiver::recv_timeout`] /
//! [`recv_deadline`](Receiver::recv_timeout), and the park with a deadline
//! under them. Each parks once with one timer entry beside its wait-list
//! entry; nothing unwinds on a timeout, and a value already there is taken
//! without reading the clock.

use std::time::{Duration, Instant};

use super::super::context::{cancelled_here, current_task_addr, park};
use super::super::error::{RecvTimeoutError, SendTimeoutError, TryRecvError, TrySendError};
use super::super::task::WaitReason;
use super::super::timer::deadline_after;
use super::{Chan, ChanWait, Leave, Receiver, Sender, Side};

impl<T> Chan<T> {
    /// Parks the running task on `side` until a wake-up or `deadline`. Its
    /// wait-list entry does not outlive the wait: a wake-up from the channel
    /// takes it out, and the timer's wake-up (or unwinding) removes it here.
    #[inline(never)]
    fn park_until(&self, what: &str, side: Side, deadline: Instant) {
        let guard = Leave { chan: self, side };
        let reason = match side {
            Side::Send => WaitReason::Send,
            Side::Recv => WaitReason::Recv,
        };
        park(what, reason, |core, task, seq| {
            core.timers.add(deadline, task.clone(), seq);
            self.register(side, task, seq);
        });
        std::mem::forget(guard);
        if Instant::now() >= deadline {
            drop(self.unregister(side, current_task_addr()));
        }
    }
}

impl<T> Sender<T> {
    /// Sends `value`, parking the running task while the channel is full,
    /// for at most `timeout`.
    ///
    /// Fails, handing `value` back, once the channel is closed
    /// ([`SendTimeoutError::Closed`]) or when there was no room in time
    /// ([`SendTimeoutError::Timeout`]), at once in a destructor that its
    /// task's cancellation runs (see [`send`](Sender::send)). With room
    /// there now it sends without reading the clock; a zero `timeout` is a
    /// [`try_send`](Sender::try_send) with this error type.
    ///
    /// ```
    /// use cogen::event_loop::{EventLoop, SendTimeoutError, channel};
    /// use std::time::Duration;
    ///
    /// let ev = EventLoop::new();
    /// ev.block_on(|| {
    ///     let (tx, _rx) = channel(1);
    ///     tx.send(1).unwrap(); // now full, and nobody receives
    ///     let e = tx.send_timeout(2, Duration::from_millis(5)).unwrap_err();
    ///     assert!(e.is_timeout());
    ///     assert_eq!(e.into_inner(), 2);
    /// })
    /// .unwrap();
    /// ```
    ///
    /// # Panics
    /// If it would have to wait outside a stackful task.
    #[inline]
    #[track_caller]
    pub fn send_timeout(&self, value: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        match self.try_send(value) {
            Ok(()) => Ok(()),
            Err(TrySendError::Closed(v)) => Err(SendTimeoutError::Closed(v)),
            Err(TrySendError::Full(v)) => self.send_deadline(v, deadline_after(timeout)),
        }
    }

    /// [`send_timeout`](Sender::send_timeout) with a deadline instead of a
    /// duration (one that has passed makes it a `try_send`).
    ///
    /// # Panics
    /// If it would have to wait outside a stackful task.
    #[track_caller]
    pub fn send_deadline(
        &self,
        mut value: T,
        deadline: Instant,
    ) -> Result<(), SendTimeoutError<T>> {
        loop {
            match self.try_send(value) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Closed(v)) => return Err(SendTimeoutError::Closed(v)),
                Err(TrySendError::Full(v)) => value = v,
            }
            // In its task's cancellation nothing can wait: as if the time
            // were up (see `Sender::send`).
            if cancelled_here() || Instant::now() >= deadline {
                return Err(SendTimeoutError::Timeout(value));
            }
            self.chan
                .park_until("Sender::send_timeout", Side::Send, deadline);
        }
    }
}

impl<T> Receiver<T> {
    /// Receives the next message, parking the running task while the
    /// channel is empty, for at most `timeout`.
    ///
    /// Fails once the channel is closed and drained
    /// ([`RecvTimeoutError::Closed`]), or when no message came in time
    /// ([`RecvTimeoutError::Timeout`]), at once in a destructor that its
    /// task's cancellation runs. A message already there is taken
    /// without reading the clock; a zero `timeout` is a
    /// [`try_recv`](Receiver::try_recv) with this error type.
    ///
    /// ```
    /// use cogen::event_loop::{EventLoop, RecvTimeoutError, channel};
    /// use std::time::Duration;
    ///
    /// let ev = EventLoop::new();
    /// ev.block_on(|| {
    ///     let (tx, rx) = channel::<u32>(1);
    ///     let slow = Duration::from_millis(5);
    ///     assert_eq!(rx.recv_timeout(slow), Err(RecvTimeoutError::Timeout));
    ///     tx.send(7).unwrap();
    ///     assert_eq!(rx.recv_timeout(slow), Ok(7));
    ///     drop(tx);
    ///     assert_eq!(rx.recv_timeout(slow), Err(RecvTimeoutError::Closed));
    /// })
    /// .unwrap();
    /// ```
    ///
    /// # Panics
    /// If it would have to wait outside a stackful task.
    #[inline]
    #[track_caller]
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        match self.try_recv() {
            Ok(v) => Ok(v),
            Err(TryRecvError::Closed) => Err(RecvTimeoutError::Closed),
            Err(TryRecvError::Empty) => self.recv_deadline(deadline_after(timeout)),
        }
    }

    /// [`recv_timeout`](Receiver::recv_timeout) with a deadline instead of
    /// a duration (one that has passed makes it a `try_recv`).
    ///
    /// # Panics
    /// If it would have to wait outside a stackful task.
    #[track_caller]
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        loop {
            match self.try_recv() {
                Ok(v) => return Ok(v),
                Err(TryRecvError::Closed) => return Err(RecvTimeoutError::Closed),
                Err(TryRecvError::Empty) => {}
            }
            if cancelled_here() || Instant::now() >= deadline {
                return Err(RecvTimeoutError::Timeout);
            }
            self.chan
                .park_until("Receiver::recv_timeout", Side::Recv, deadline);
        }
    }
}
