//! Readiness: the loop's reactor, one poller per loop (feature `net`: a
//! `mio::Poll`, the poller tokio is built on), and who waits on each socket
//! registered with it. This file holds the loop's slot for it
//! ([`ReactorSlot`]) and the design; the reactor itself is in
//! `reactor/sockets.rs`, the sockets in `net/`. The run loop (`core.rs`)
//! calls [`ReactorSlot::poll_now`] between rounds and [`ReactorSlot::wait`]
//! when idle.
//!
//! # Design
//!
//! The poller is created the first time a socket has to wait, so a loop
//! without sockets makes no system call for it. From then on the idle
//! loop waits in the poller (with the next timer's deadline as timeout)
//! instead of parking its thread, and wake-ups from other threads go
//! through the poller's `mio::Waker` (`remote.rs`): one eventfd write on
//! Linux, and only for a wake-up that comes from outside the loop.
//!
//! A socket registers the first time one of its operations would block,
//! gets a key (a slot here), and stays registered until it is dropped.
//! mio registers it once, edge-triggered (epoll's `EPOLLET`, kqueue's
//! `EV_CLEAR`), with interest in both directions, so a wait costs no
//! system call: a task always tries its operation first and parks only
//! on `WouldBlock`, and any readiness that comes after that `WouldBlock`
//! is an edge the poller reports.
//!
//! Each slot holds two lists of waiters: readers and writers, so one task
//! may read while another writes. A waiter (`task::Waiter`) is a parked
//! stackful task with its park number; a stackless task by registry key
//! and park number (`Waiter::Parked`: a reference would keep a cancelled
//! task alive); or a waker (future tasks: the key of a task of this loop,
//! or any other `Waker`, one entry per waker). An event takes the lists
//! of its directions and wakes each; the woken task retries its operation
//! (an event may be spurious). A stackful task's waiting function removes
//! its own entry when it returns or unwinds (woken by its timer instead,
//! or cancelled), so no entry outlives its wait; the entries of stackless
//! tasks and wakers stay until the next event or the socket's drop (a
//! stale one wakes nothing: its park number is old, its task gone, or
//! its future polled again). While a waker entry is filed, the idle loop
//! waits in the poller rather than reporting a deadlock, stale or not.
//!
//! Slots are reused: each registration has a number, so that a stackless
//! task's `Wait` made for a socket that is then dropped does not file the
//! task with the socket that took its slot.
//!
//! # The drained-read hint
//!
//! On epoll (Linux, Android), a stream read that returns fewer bytes than
//! it asked for (but some) took everything the socket had, so the next
//! read parks at once instead of first making a system call that would
//! find nothing; every readable event marks the socket readable again,
//! waited on or not ([`ReadHint`]). An event that says the read side is
//! closed (or the socket failed) turns the hint off for good: a FIN that
//! came with the last data makes the read that takes the data short, yet
//! the next read returns 0 at once. So does TCP urgent data (`MSG_OOB`,
//! which any peer may send): a read stops at its mark, short, with the data
//! after it already queued, so sockets are registered for `EPOLLPRI` too,
//! and urgent data seen turns the hint off. kqueue reports no urgent data,
//! so the hint is used on epoll only. tokio makes the same inference (it
//! clears a socket's readiness after a short read), on kqueue too.
//!
//! # Who may touch what
//!
//! Everything here is on the loop's thread. No `RefCell` borrow is held
//! while a waiter is woken or dropped: entries are moved out first (a
//! user `Waker` is user code, and dropping a task may, in principle, drop
//! a socket, which deregisters here).

use std::time::Duration;

use super::remote::Remote;
use super::task::Waiter;

#[cfg(feature = "net")]
pub(crate) use sockets::{Direction, Hint, Reactor, ReadHint};

/// A loop's reactor, once it has one. Without the `net` feature it never
/// has one, and its methods do nothing.
#[derive(Default)]
pub(crate) struct ReactorSlot {
    #[cfg(feature = "net")]
    reactor: std::cell::OnceCell<std::rc::Rc<Reactor>>,
}

impl ReactorSlot {
    /// Takes the readiness events that are already there, without waiting,
    /// and hands each waiter they wake to `wake`.
    pub(crate) fn poll_now(&self, wake: impl FnMut(Waiter)) {
        #[cfg(feature = "net")]
        if let Some(reactor) = self.reactor.get() {
            reactor.poll(Some(Duration::ZERO), wake);
        }
        #[cfg(not(feature = "net"))]
        let _ = wake;
    }

    /// The loop is idle: waits in the poller until a socket is ready, a
    /// wake-up comes from another thread, or `timeout` passes, and hands
    /// each waiter a readiness event wakes to `wake`. False if the loop has
    /// no poller: the caller parks the thread instead.
    pub(crate) fn wait(
        &self,
        remote: &Remote,
        timeout: Option<Duration>,
        wake: impl FnMut(Waiter),
    ) -> bool {
        #[cfg(feature = "net")]
        if let Some(reactor) = self.reactor.get() {
            if !remote.is_pending_before_wait() {
                reactor.poll(timeout, wake);
            }
            return true;
        }
        let _ = (remote, timeout, wake);
        false
    }

    /// True if a waker (of a future task, or any other) waits on a socket:
    /// the loop then counts it like a task parked on a socket.
    pub(crate) fn has_wakers(&self) -> bool {
        #[cfg(feature = "net")]
        if let Some(reactor) = self.reactor.get() {
            return reactor.has_wakers();
        }
        false
    }

    /// [`has_wakers`](Self::has_wakers), once the entries of this loop's
    /// tasks that are gone (`live` says which are not) have been dropped: a
    /// future task cancelled or finished while its read or write waited
    /// leaves its entry behind, and an idle loop that counted it would
    /// sleep for ever instead of reporting a deadlock. O(sockets), for an
    /// idle loop with nothing else to wait for.
    pub(crate) fn has_live_wakers(&self, live: impl Fn(u32, u64) -> bool) -> bool {
        #[cfg(feature = "net")]
        if let Some(reactor) = self.reactor.get() {
            reactor.drop_stale(live);
            return reactor.has_wakers();
        }
        let _ = live;
        false
    }

    /// The loop's reactor, if it has one.
    #[cfg(feature = "net")]
    pub(crate) fn get(&self) -> Option<&std::rc::Rc<Reactor>> {
        self.reactor.get()
    }

    /// The loop's reactor, created (with its poller) on first use.
    #[cfg(feature = "net")]
    #[inline]
    pub(crate) fn get_or_create(
        &self,
        core: &super::core::Core,
    ) -> std::io::Result<&std::rc::Rc<Reactor>> {
        match self.reactor.get() {
            Some(reactor) => Ok(reactor),
            None => self.create(core),
        }
    }

    /// [`get_or_create`](Self::get_or_create) the first time.
    #[cfg(feature = "net")]
    #[cold]
    #[inline(never)]
    fn create(&self, core: &super::core::Core) -> std::io::Result<&std::rc::Rc<Reactor>> {
        let (reactor, waker) = Reactor::new(core.weak())?;
        core.remote.use_waker(waker);
        Ok(self.reactor.get_or_init(|| std::rc::Rc::new(reactor)))
    }
}

#[cfg(feature = "net")]
mod sockets;
