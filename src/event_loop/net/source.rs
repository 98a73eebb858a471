//! The non-blocking socket under every type of `net`: [`Source`] owns a std
//! socket in non-blocking mode, tries each operation with one system call,
//! and only when it would block parks the running task on the loop's
//! reactor (`reactor.rs`) until the socket is ready, or its time limit
//! passes.

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::rc::{Rc, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::super::context::{
    cannot_wait_cancelled, current_core, io_may_wait, park, running_stackful,
};
use super::super::core::Core;
use super::super::current::CURRENT_CORE;
use super::super::reactor::{Direction, Hint, Reactor, ReadHint};
use super::super::remote::local_key;
use super::super::sleep::deadline_after;
use super::super::task::{Header, WaitReason, Waiter};

/// The bytes one vectored read can take, for the drained-read hint: std
/// hands the kernel at most `IOV_MAX` buffers (1024 on Linux), so a read
/// into more that fills the first 1024 took less than the total and says
/// nothing about what is left.
pub(crate) fn vectored_len(bufs: &[std::io::IoSliceMut<'_>]) -> usize {
    const IOV_MAX: usize = 1024;
    bufs.iter().take(IOV_MAX).map(|b| b.len()).sum()
}

/// The `len` of a stream read whose short result says nothing about the
/// queue (a Unix stream read stops at a message that carries descriptors):
/// the system call always decides, and the drained-read hint is never set.
pub(crate) const NO_HINT: usize = 0;

/// A socket and its registration with a loop's reactor.
pub(crate) struct Source<T: AsFd> {
    /// Declared first, so that it is dropped (deregistering the socket)
    /// before `io` closes the descriptor.
    reg: Reg,
    io: T,
}

/// Where a socket is registered, once one of its operations had to wait.
#[derive(Default)]
struct Reg(RefCell<Option<Registration>>);

struct Registration {
    /// The reactor of the loop the socket first waited in; a dead `Weak`
    /// once that loop is gone (the socket then registers again).
    reactor: Weak<Reactor>,
    key: usize,
    /// Drained while a stream read took all there was and no readable
    /// event came since (see `reactor.rs`; `None` where there is no hint).
    readable: Option<ReadHint>,
}

impl Drop for Reg {
    fn drop(&mut self) {
        if let Some(reg) = self.0.get_mut().take()
            && let Some(reactor) = reg.reactor.upgrade()
        {
            let (core, waiters) = reactor.deregister(reg.key);
            drop(reactor);
            if waiters.is_empty() {
                return;
            }
            // Stackless tasks and futures waiting on the socket: they
            // retry, and find it gone (they usually own it, so this is
            // rare). Without their loop, nothing is left to wake.
            match core.upgrade() {
                Some(core) => waiters.into_iter().for_each(|w| core.wake_waiter(w)),
                None => drop(waiters),
            }
        }
    }
}

impl<T: AsFd> Source<T> {
    /// Wraps `io`, which must already be in non-blocking mode.
    pub(crate) fn new(io: T) -> Self {
        Source {
            reg: Reg::default(),
            io,
        }
    }

    pub(crate) fn get_ref(&self) -> &T {
        &self.io
    }

    /// The socket, deregistered.
    pub(crate) fn into_inner(self) -> T {
        let Source { reg, io } = self;
        drop(reg);
        io
    }

    /// The socket's key in its loop's reactor, once it had to wait.
    #[cfg(test)]
    pub(crate) fn key(&self) -> Option<usize> {
        self.reg.0.borrow().as_ref().map(|r| r.key)
    }

    /// Runs `op` until it does something other than `WouldBlock`, parking
    /// the running task on the socket's readiness in `dir` in between.
    /// With `timeout`, gives up with [`io::ErrorKind::TimedOut`] once it has
    /// waited that long (counted from the first `WouldBlock`). `what` names
    /// the operation in panics.
    ///
    /// In a destructor that the task's cancellation runs, `op` is tried
    /// once, and fails with an error that says so where it would wait.
    ///
    /// # Panics
    /// Outside a stackful task (whether or not it would have to wait, so
    /// that misuse shows at once).
    #[inline]
    #[track_caller]
    pub(crate) fn io<R>(
        &self,
        what: &'static str,
        dir: Direction,
        timeout: Option<Duration>,
        mut op: impl FnMut(&T) -> io::Result<R>,
    ) -> io::Result<R> {
        let may_wait = io_may_wait(what);
        let mut deadline = None;
        loop {
            match op(&self.io) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                done => return done,
            }
            if !may_wait {
                return Err(cannot_wait_cancelled(what));
            }
            if let Some(timeout) = timeout {
                deadline = Some(limit_deadline(deadline, timeout).ok_or_else(|| timed_out(what))?);
            }
            self.wait(what, dir, deadline)?;
        }
    }

    /// A stream read into `len` bytes, like [`io`](Source::io) in
    /// direction `Read`, with one system call saved per wait: a read that
    /// returns fewer than `len` bytes (but some) took all there was, so
    /// the next read parks at once until the poller reports new data,
    /// rather than first making a system call that would find nothing
    /// (see the drained-read hint in `reactor.rs`). Only for byte streams:
    /// a short datagram says nothing about the queue, and a peek leaves it
    /// full.
    #[inline]
    #[track_caller]
    pub(crate) fn read(
        &self,
        what: &'static str,
        timeout: Option<Duration>,
        len: usize,
        mut op: impl FnMut(&T) -> io::Result<usize>,
    ) -> io::Result<usize> {
        let may_wait = io_may_wait(what);
        let mut deadline = None;
        // An empty buffer says nothing about the queue: the system call
        // decides, as it does for a socket that never waited.
        // (A cancelled task's destructor, which cannot wait, tries once.)
        let mut try_first = !may_wait || len == 0 || !self.drained_here();
        loop {
            if try_first {
                match op(&self.io) {
                    Ok(n) => {
                        if n > 0 && n < len {
                            self.set_drained();
                        }
                        return Ok(n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            }
            if !may_wait {
                return Err(cannot_wait_cancelled(what));
            }
            try_first = true;
            if let Some(timeout) = timeout {
                deadline = Some(limit_deadline(deadline, timeout).ok_or_else(|| timed_out(what))?);
            }
            self.wait(what, Direction::Read, deadline)?;
        }
    }

    /// Shuts down `how` through `shutdown` (the socket type's own call),
    /// then wakes the socket's waiters in the directions shut: they try
    /// again and see it (`BrokenPipe`, the end of the stream), where the
    /// poller would report nothing.
    pub(crate) fn shutdown(
        &self,
        how: std::net::Shutdown,
        shutdown: impl FnOnce(&T, std::net::Shutdown) -> io::Result<()>,
    ) -> io::Result<()> {
        use std::net::Shutdown;
        shutdown(&self.io, how)?;
        let (read, write) = match how {
            Shutdown::Read => (true, false),
            Shutdown::Write => (false, true),
            Shutdown::Both => (true, true),
        };
        let reactor = {
            let reg = self.reg.0.borrow();
            reg.as_ref()
                .and_then(|r| Some((r.reactor.upgrade()?, r.key)))
        };
        if let Some((reactor, key)) = reactor {
            let (core, waiters) = reactor.take_shut(key, read, write);
            drop(reactor);
            // Without their loop, nothing is left to wake.
            match core.upgrade() {
                Some(core) => waiters.into_iter().for_each(|w| core.wake_waiter(w)),
                None => drop(waiters),
            }
        }
        Ok(())
    }

    /// True if a read drained the socket and no readable event came since.
    #[cfg(test)]
    pub(crate) fn drained(&self) -> bool {
        self.reg
            .0
            .borrow()
            .as_ref()
            // A hint of a loop that is gone says nothing any more.
            .filter(|r| r.reactor.upgrade().is_some_and(|r| r.loop_is_alive()))
            .and_then(|r| r.readable.as_ref())
            .is_some_and(|hint| hint.get() == Hint::Drained)
    }

    /// True if a read drained the socket and no readable event came since,
    /// in a task of the loop the socket is registered with, whose poller
    /// corrects the hint once data comes.
    /// Anywhere else (outside any loop, in another loop's task) nothing
    /// would correct it, so only the system call can tell.
    fn drained_here(&self) -> bool {
        let core = CURRENT_CORE.with(Cell::get);
        // SAFETY: CURRENT_CORE points at a live core while it is set.
        let Some(here) = unsafe { core.as_ref() }.and_then(|core| core.reactor.get()) else {
            return false;
        };
        self.reg
            .0
            .borrow()
            .as_ref()
            .filter(|r| std::ptr::eq(r.reactor.as_ptr(), Rc::as_ptr(here)))
            .and_then(|r| r.readable.as_ref())
            .is_some_and(|hint| hint.get() == Hint::Drained)
    }

    /// After a read that took all there was (a closed read side stays so).
    fn set_drained(&self) {
        if let Some(hint) = self
            .reg
            .0
            .borrow()
            .as_ref()
            .and_then(|r| r.readable.as_ref())
            && hint.get() == Hint::MaybeReadable
        {
            hint.set(Hint::Drained);
        }
    }

    /// One try of `op`, without waiting (anywhere: no task needed).
    pub(crate) fn try_io<R>(&self, mut op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        loop {
            match op(&self.io) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                done => return done,
            }
        }
    }

    /// One try of a stream read into `len` bytes, without waiting: like
    /// [`read`](Source::read), a socket that a short read drained gives
    /// `WouldBlock` without a system call until the poller reports it
    /// readable again.
    pub(crate) fn try_read(
        &self,
        len: usize,
        op: impl FnMut(&T) -> io::Result<usize>,
    ) -> io::Result<usize> {
        if len > 0 && self.drained_here() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = self.try_io(op)?;
        if n > 0 && n < len {
            self.set_drained();
        }
        Ok(n)
    }

    /// One read for a caller that does not park on its answer (a public
    /// `try_read`): the system call always decides. The hint is only
    /// corrected by a readable event that the loop's poller sees, and the
    /// loop asks its poller only while something waits on a socket, or not
    /// at all outside `run`: a hint trusted here could say `WouldBlock` for
    /// good with data queued. A short read still sets it, for the parking
    /// reads after.
    pub(crate) fn try_read_now(
        &self,
        len: usize,
        op: impl FnMut(&T) -> io::Result<usize>,
    ) -> io::Result<usize> {
        let n = self.try_io(op)?;
        if n > 0 && n < len {
            self.set_drained();
        }
        Ok(n)
    }

    /// For a future: one try of `op`; if it would block, files the
    /// context's waker among the socket's `dir` waiters in the reactor of
    /// the loop running the current task, and returns `Pending`.
    ///
    /// # Panics
    /// Outside a task of a running loop, if it has to wait.
    #[track_caller]
    pub(crate) fn poll_io<R>(
        &self,
        what: &'static str,
        cx: &mut Context<'_>,
        dir: Direction,
        mut op: impl FnMut(&T) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        match self.try_io(&mut op) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            done => return Poll::Ready(done),
        }
        self.park_waker(what, cx, dir)
    }

    /// [`poll_io`](Source::poll_io) for a stream read into `len` bytes,
    /// with the drained-read hint.
    #[track_caller]
    pub(crate) fn poll_read(
        &self,
        what: &'static str,
        cx: &mut Context<'_>,
        len: usize,
        op: impl FnMut(&T) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        match self.try_read(len, op) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            done => return Poll::Ready(done),
        }
        self.park_waker(what, cx, Direction::Read)
    }

    /// Files `cx`'s waker among the socket's `dir` waiters: the key of a
    /// task of this loop (waking it then costs no system call), or a clone
    /// of any other waker. No operation can run between the `WouldBlock`
    /// the caller saw and this (same thread, no poll in between), so the
    /// next edge wakes it.
    #[track_caller]
    fn park_waker<R>(
        &self,
        what: &'static str,
        cx: &mut Context<'_>,
        dir: Direction,
    ) -> Poll<io::Result<R>> {
        let target = match self.target(what) {
            Ok(target) => target,
            Err(e) => return Poll::Ready(Err(e)),
        };
        let core = current_core(what);
        let waiter = match local_key(cx.waker(), &core.remote) {
            Some((index, id)) => Waiter::Local(index, id),
            None => Waiter::Waker(cx.waker().clone()),
        };
        // The registration is the socket's own, so it is there; what an
        // entry replaces (a waker: user code) is dropped here, outside the
        // reactor's borrow.
        let added = target
            .reactor
            .add_waiter(target.key, target.id, dir, waiter);
        drop(added);
        Poll::Pending
    }

    /// Where a stackless task or a future waits on this socket: its
    /// registration in the reactor of the loop running the current task
    /// (made now if it has none).
    ///
    /// # Panics
    /// Outside a task of a running loop.
    #[track_caller]
    pub(crate) fn target(&self, what: &'static str) -> io::Result<Target> {
        let core = current_core(what);
        let (reactor, key) = self.registration(core, what)?;
        let id = reactor.id(key).expect("registered just now");
        Ok(Target {
            reactor: reactor.clone(),
            key,
            id,
        })
    }

    /// Parks the running stackful task until the socket may be ready in
    /// `dir`, or `deadline` passes. May return early (a spurious event):
    /// the caller retries its operation.
    #[inline]
    #[track_caller]
    fn wait(
        &self,
        what: &'static str,
        dir: Direction,
        deadline: Option<Instant>,
    ) -> io::Result<()> {
        let (task, _) = running_stackful(what);
        let core = current_core(what);
        let (reactor, key) = self.registration(core, what)?;
        // The entry owns a reference to the reactor: it is dropped after the
        // switch, in a later step of the task, where `core` (and the
        // reference into it) is no longer known to be alive.
        let _entry = WaitEntry {
            reactor: reactor.clone(),
            key,
            dir,
            header: &task.header,
        };
        park(what, WaitReason::Io, |core, task, seq| {
            if let Some(at) = deadline {
                core.timers.add(at, task.clone(), seq);
            }
            reactor.add_task(key, dir, task, seq);
        });
        Ok(())
    }

    /// The socket's reactor and key, registering it with `core`'s reactor
    /// the first time.
    #[track_caller]
    #[inline]
    fn registration<'c>(&self, core: &'c Core, what: &str) -> io::Result<(&'c Rc<Reactor>, usize)> {
        let here = core.reactor.get_or_create(core)?;
        if let Some(r) = self.reg.0.borrow().as_ref()
            // The `Weak` keeps its reactor's memory allocated, so no other
            // reactor can be at that address: the same address is this
            // loop's reactor, alive. (The common case, every wait after the
            // first: no reference count touched.)
            && std::ptr::eq(r.reactor.as_ptr(), Rc::as_ptr(here))
        {
            return Ok((here, r.key));
        }
        self.register_with(here, what)
    }

    /// [`registration`](Source::registration) when the socket is not
    /// registered with `here`: registers it, unless it is registered with
    /// another loop that is still alive.
    #[track_caller]
    #[cold]
    #[inline(never)]
    fn register_with<'c>(
        &self,
        here: &'c Rc<Reactor>,
        what: &str,
    ) -> io::Result<(&'c Rc<Reactor>, usize)> {
        let mut reg = self.reg.0.borrow_mut();
        if let Some(r) = reg.as_ref()
            && r.reactor.upgrade().is_some_and(|r| r.loop_is_alive())
        {
            panic!(
                "cogen::event_loop::{what}: the socket waits in another event loop (a socket \
                 stays with the first loop it waited in while that loop exists)"
            );
        }
        let (key, readable) = here.register(self.io.as_fd().as_raw_fd())?;
        let old = reg.replace(Registration {
            reactor: Rc::downgrade(here),
            key,
            readable,
        });
        drop(reg);
        drop(old); // its loop is gone: nothing to deregister from
        Ok((here, key))
    }
}

impl<T: AsFd> AsRawFd for Source<T> {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.io.as_fd().as_raw_fd()
    }
}

/// The deadline of an operation with time limit `timeout` about to wait:
/// `timeout` from now before its first wait (the one clock read a wait
/// makes), or `deadline` again before a later wait; `None` once it has
/// passed. Out of line, so that the waits without a limit stay small; an
/// `Option` comes back in registers.
#[inline(never)]
fn limit_deadline(deadline: Option<Instant>, timeout: Duration) -> Option<Instant> {
    match deadline {
        None if !timeout.is_zero() => Some(deadline_after(timeout)),
        Some(at) if Instant::now() < at => Some(at),
        _ => None,
    }
}

/// The error of an operation that waited longer than its time limit.
pub(crate) fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("{what} timed out"))
}

/// A task's entry in a socket's waiters, taken out when its wait ends
/// however it ends: woken by the socket (then it is already gone), by its
/// timer, or unwound by a cancellation.
struct WaitEntry<'a> {
    reactor: Rc<Reactor>,
    key: usize,
    dir: Direction,
    header: &'a Header,
}

impl Drop for WaitEntry<'_> {
    #[inline]
    fn drop(&mut self) {
        self.reactor.remove_waiter(self.key, self.dir, self.header);
    }
}

/// A socket's registration in the reactor of the loop running the current
/// task, for a stackless task's `Wait` or a future to file itself there.
/// (Public only as the return type of [`Sealed`]'s method: unnameable
/// outside the crate.)
#[derive(Clone)]
pub struct Target {
    pub(crate) reactor: Rc<Reactor>,
    pub(crate) key: usize,
    /// The registration number: tells the socket from a later one in the
    /// same slot.
    pub(crate) id: u64,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("key", &self.key)
            .field("id", &self.id)
            .finish()
    }
}

/// What makes a type a [`Socket`](super::Socket): only this module's
/// sockets implement it.
#[cfg_attr(not(cogen_nightly), allow(dead_code))]
pub trait Sealed {
    /// See [`Source::target`].
    #[doc(hidden)]
    fn target(&self, what: &'static str) -> io::Result<Target>;
}
