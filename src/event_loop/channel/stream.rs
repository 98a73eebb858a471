//! The receiving end of a channel for async code: [`Receiver::poll_recv`],
//! [`Receiver::recv_async`], and `futures_core::Stream` for [`Receiver`],
//! for future tasks (and any future polled on the loop's thread).
//!
//! A future that finds the channel empty leaves its waker in the channel's
//! `Pollers`; the next send, or the close, wakes every poller (they then
//! poll again; one wins the message, the others register again). A waker of
//! a task of the loop is kept as the task's key, not as a clone, as a
//! `JoinHandle` does: the loop's deadlock detection then still knows that
//! nothing outside the loop holds it.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Weak;
use std::task::{Context, Poll, Waker};

use super::super::core::{Core, wake_user_waker};
use super::super::current::CURRENT_CORE;
use super::super::error::{RecvError, TryRecvError};
use super::super::remote::local_key;
use super::super::task::Waiter;
use super::Receiver;

/// Futures waiting for a message, woken all at once.
#[derive(Default)]
pub(super) struct Pollers {
    /// True while `list` is not empty: what a send checks.
    any: Cell<bool>,
    list: RefCell<Vec<Poller>>,
}

enum Poller {
    /// A task of a loop, by its key in that loop.
    Local(Weak<Core>, u32, u64),
    Waker(Waker),
}

impl Pollers {
    fn register(&self, waker: &Waker) {
        let core = CURRENT_CORE.with(Cell::get);
        // SAFETY: CURRENT_CORE points at a live core while it is set.
        let poller = match unsafe { core.as_ref() }
            .and_then(|core| Some((core, local_key(waker, &core.remote)?)))
        {
            Some((core, (index, id))) => Poller::Local(core.weak(), index, id),
            None => Poller::Waker(waker.clone()),
        };
        let mut list = self.list.borrow_mut();
        let same = |p: &Poller| match (p, &poller) {
            (Poller::Local(_, a, b), Poller::Local(_, c, d)) => (a, b) == (c, d),
            (Poller::Waker(a), Poller::Waker(b)) => a.will_wake(b),
            _ => false,
        };
        if !list.iter().any(same) {
            list.push(poller);
        }
        self.any.set(true);
    }

    /// Wakes every poller, if there is one: one load on a send otherwise.
    #[inline(always)]
    pub(super) fn wake(&self) {
        if self.any.get() {
            self.wake_all();
        }
    }

    #[cold]
    #[inline(never)]
    fn wake_all(&self) {
        self.any.set(false);
        // Taken out first: a waker may poll this channel again.
        let list = std::mem::take(&mut *self.list.borrow_mut());
        for poller in list {
            match poller {
                Poller::Local(core, index, id) => {
                    if let Some(core) = core.upgrade() {
                        core.wake_waiter(Waiter::Local(index, id));
                    }
                }
                // Maybe from a `Sender`'s drop during an unwinding.
                Poller::Waker(waker) => wake_user_waker(waker),
            }
        }
    }
}

impl<T> Receiver<T> {
    /// Polls for the next message: `Ready(Ok)` with one, `Ready(Err)` once
    /// the channel is closed and drained, else `Pending`, with the waker
    /// kept until the next send or the close. For async code on the loop's
    /// thread (a future task); stackful tasks call [`recv`](Receiver::recv).
    pub fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Result<T, RecvError>> {
        match self.try_recv() {
            Ok(v) => Poll::Ready(Ok(v)),
            Err(TryRecvError::Closed) => Poll::Ready(Err(RecvError)),
            Err(TryRecvError::Empty) => {
                self.chan.pollers.register(cx.waker());
                // A send between the try and the registration cannot
                // happen: both are on this thread.
                Poll::Pending
            }
        }
    }

    /// The next message, as a future: [`recv`](Receiver::recv) for async
    /// code.
    ///
    /// ```
    /// use cogen::event_loop::{EventLoop, channel};
    ///
    /// let ev = EventLoop::new();
    /// let (tx, rx) = channel(1);
    /// ev.spawn(move || (1..=3).for_each(|n| tx.send(n).unwrap()));
    /// let sum = ev.spawn_future(async move {
    ///     let mut sum = 0;
    ///     while let Ok(n) = rx.recv_async().await {
    ///         sum += n;
    ///     }
    ///     sum
    /// });
    /// ev.run().unwrap();
    /// assert_eq!(sum.join().unwrap(), 6);
    /// ```
    pub fn recv_async(&self) -> impl Future<Output = Result<T, RecvError>> + '_ {
        std::future::poll_fn(move |cx| self.poll_recv(cx))
    }
}

/// The messages until the channel is closed and drained, for async code
/// (`StreamExt::next` of `futures` or `futures-lite`).
impl<T> futures_core::Stream for Receiver<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.poll_recv(cx).map(Result::ok)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.len(), None)
    }
}
