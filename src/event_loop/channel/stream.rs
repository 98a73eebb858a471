//! The receiving end of a channel for async code: [`Receiver::poll_recv`],
//! [`Receiver::recv_async`], and `futures_core::Stream` for [`Receiver`],
//! for future tasks (and any future polled on the loop's thread).
//!
//! A future that finds the channel empty leaves its waker in the channel's
//! `Pollers`; the next send, or the close, wakes every poller (they then
//! poll again; one wins the message, the others register again). A waker of
//! a task of the loop is kept as the task's key (with its loop), not as a
//! clone, as a `JoinHandle` does: the loop's deadlock detection then still
//! knows that nothing outside the loop holds it.
//!
//! A [`recv_async`](Receiver::recv_async) future owns its entry: a poll
//! replaces it, and the future's drop takes it out, so futures that lose a
//! race (a `select`, a time limit) leave nothing behind. `poll_recv` and
//! `Stream::poll_next` have no such owner: their entries are kept once per
//! waker until the next send or the close.

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
    list: RefCell<Vec<Entry>>,
    /// The last owner number handed out (see [`Entry::owner`]).
    owners: Cell<u64>,
}

struct Entry {
    /// The `recv_async` future the entry is of, by a number of this
    /// channel's; 0 for a poll without an owner (`poll_recv`).
    owner: u64,
    poller: Poller,
}

enum Poller {
    /// A task of a loop, by its key in that loop.
    Local(Weak<Core>, u32, u64),
    Waker(Waker),
}

impl Poller {
    /// True if both wake the same: a task's key in the same loop (keys of
    /// different loops may be equal), or wakers that say so.
    fn same_as(&self, other: &Poller) -> bool {
        match (self, other) {
            (Poller::Local(l1, a, b), Poller::Local(l2, c, d)) => {
                (a, b) == (c, d) && Weak::ptr_eq(l1, l2)
            }
            (Poller::Waker(a), Poller::Waker(b)) => a.will_wake(b),
            _ => false,
        }
    }
}

impl Pollers {
    /// A number for a new owner of an entry: never 0.
    fn new_owner(&self) -> u64 {
        let n = self.owners.get() + 1;
        self.owners.set(n);
        n
    }

    /// Files `waker`: in place of the entry of `owner` if it has one, else
    /// (no owner) in place of an entry without owner that wakes the same,
    /// else as a new entry.
    fn register(&self, waker: &Waker, owner: u64) {
        let core = CURRENT_CORE.with(Cell::get);
        // SAFETY: CURRENT_CORE points at a live core while it is set.
        let poller = match unsafe { core.as_ref() }
            .and_then(|core| Some((core, local_key(waker, &core.remote)?)))
        {
            Some((core, (index, id))) => Poller::Local(core.weak(), index, id),
            None => Poller::Waker(waker.clone()),
        };
        let mut list = self.list.borrow_mut();
        let found = list
            .iter_mut()
            .find(|e| e.owner == owner && (owner != 0 || e.poller.same_as(&poller)));
        let replaced = match found {
            Some(entry) => Some(std::mem::replace(&mut entry.poller, poller)),
            None => {
                list.push(Entry { owner, poller });
                None
            }
        };
        self.any.set(true);
        drop(list);
        // A waker: user code, run outside the borrow.
        drop(replaced);
    }

    /// Takes the entry of `owner` out, if it is there (no wake-up took it).
    fn deregister(&self, owner: u64) {
        let mut list = self.list.borrow_mut();
        let Some(at) = list.iter().position(|e| e.owner == owner) else {
            return;
        };
        let entry = list.swap_remove(at);
        self.any.set(!list.is_empty());
        drop(list);
        // A waker: user code, run outside the borrow.
        drop(entry);
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
        for Entry { poller, .. } in list {
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
    ///
    /// Its waker is kept once per waker (a later poll with a waker that
    /// wakes the same replaces it): wakers of polls given up stay until the
    /// next send or the close. A future that may be given up often (raced
    /// against others) should be [`recv_async`](Receiver::recv_async),
    /// which takes its waker out when it is dropped.
    pub fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Result<T, RecvError>> {
        match self.try_recv() {
            Ok(v) => Poll::Ready(Ok(v)),
            Err(TryRecvError::Closed) => Poll::Ready(Err(RecvError)),
            Err(TryRecvError::Empty) => {
                self.chan.pollers.register(cx.waker(), 0);
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
    ///
    /// Dropping the future before it is ready (it lost a race, its time
    /// ran out) takes its waker out of the channel.
    pub fn recv_async(&self) -> impl Future<Output = Result<T, RecvError>> + '_ {
        RecvAsync { rx: self, owner: 0 }
    }
}

/// The future of [`Receiver::recv_async`]: owns its entry among the
/// channel's pollers once it has one.
struct RecvAsync<'a, T> {
    rx: &'a Receiver<T>,
    /// Its owner number (see `Entry::owner`); 0 until its first `Pending`.
    owner: u64,
}

impl<T> Future for RecvAsync<'_, T> {
    type Output = Result<T, RecvError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.rx.try_recv() {
            Ok(v) => Poll::Ready(Ok(v)),
            Err(TryRecvError::Closed) => Poll::Ready(Err(RecvError)),
            Err(TryRecvError::Empty) => {
                let pollers = &self.rx.chan.pollers;
                if self.owner == 0 {
                    self.owner = pollers.new_owner();
                }
                pollers.register(cx.waker(), self.owner);
                Poll::Pending
            }
        }
    }
}

impl<T> Drop for RecvAsync<'_, T> {
    fn drop(&mut self) {
        if self.owner != 0 {
            self.rx.chan.pollers.deregister(self.owner);
        }
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
