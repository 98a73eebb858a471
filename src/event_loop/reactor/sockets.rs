//! The reactor itself (feature `net`): a loop's `mio::Poll`, the sockets
//! registered with it, and who waits on each in which direction. The
//! design, the drained-read hint and who may touch what are in the
//! parent module's docs (`reactor.rs`).

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::RawFd;
use std::rc::{Rc, Weak};
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use super::super::core::Core;
use super::super::task::{Header, TaskRef, Waiter};

/// Which way a task waits on a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Until it can read (or accept, or receive).
    Read,
    /// Until it can write (or send, or its connect completes).
    Write,
}

/// Readiness events taken per system call.
const EVENTS: usize = 1024;

/// The token of the poller's own `mio::Waker`.
const WAKE: Token = Token(usize::MAX);

/// Whether a socket may have data to read, shared by the socket and
/// its slot: see the parent module's docs. `None` where the poller's edges do
/// not allow it (kqueue, which reports no urgent data; mio's `poll(2)`
/// fallback).
pub(crate) type ReadHint = Rc<Cell<Hint>>;

/// See [`ReadHint`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hint {
    /// A read took all there was, and no event came since.
    Drained,
    /// An event came since (or nothing is known yet).
    MaybeReadable,
    /// The read side is closed, the socket failed or urgent data came:
    /// reads never park without trying.
    Closed,
}

impl Hint {
    /// After a readable event, which says whether the hint is off for
    /// good (the read side closed, the socket failed, urgent data came).
    fn on_event(self, closed: bool) -> Hint {
        match (self, closed) {
            (Hint::Closed, _) | (_, true) => Hint::Closed,
            _ => Hint::MaybeReadable,
        }
    }
}

/// True where mio waits in epoll, whose edges make a short read mean
/// "drained" once urgent data (which stops a read at its mark) is
/// reported too (`EPOLLPRI`; kqueue does not report it).
const HINT: bool = cfg!(any(target_os = "android", target_os = "linux"));

/// What a socket is registered for: both directions, and urgent data
/// where the hint needs to see it.
#[cfg(any(target_os = "android", target_os = "linux"))]
const INTEREST: Interest = Interest::READABLE
    .add(Interest::WRITABLE)
    .add(Interest::PRIORITY);
#[cfg(not(any(target_os = "android", target_os = "linux")))]
const INTEREST: Interest = Interest::READABLE.add(Interest::WRITABLE);

/// True if `ev` reports TCP urgent data.
#[inline]
fn is_urgent(ev: &mio::event::Event) -> bool {
    #[cfg(any(target_os = "android", target_os = "linux"))]
    return ev.is_priority();
    #[cfg(not(any(target_os = "android", target_os = "linux")))]
    {
        let _ = ev;
        false
    }
}

/// True for the waiters that only a waker may be (not a stackful or
/// stackless task's own entry).
fn is_waker(w: &Waiter) -> bool {
    matches!(w, Waiter::Local(..) | Waiter::Waker(_))
}

type Waiters = Vec<Waiter>;

/// Moves `list`'s entries to the end of `woken`; returns how many were
/// waker entries. One entry (a task waiting alone, the common case) is
/// moved by itself, without the bulk copy's call.
#[inline(always)]
fn take_all(list: &mut Waiters, woken: &mut Waiters) -> usize {
    match list.len() {
        0 => 0,
        1 => {
            let entry = list.pop().expect("one entry");
            let waker = usize::from(is_waker(&entry));
            woken.push(entry);
            waker
        }
        _ => {
            let wakers = list.iter().filter(|e| is_waker(e)).count();
            woken.append(list);
            wakers
        }
    }
}

/// One registered socket.
struct Slot {
    readers: Waiters,
    writers: Waiters,
    /// Set on every readable event.
    readable: Option<ReadHint>,
    /// Its registration number: tells it from a later socket in the
    /// same slot.
    id: u64,
    /// Kept to delete it from the poller when the socket goes. The
    /// socket deregisters before it closes the descriptor, so it is
    /// open while it is here.
    fd: RawFd,
}

impl Slot {
    fn list(&mut self, dir: Direction) -> &mut Waiters {
        match dir {
            Direction::Read => &mut self.readers,
            Direction::Write => &mut self.writers,
        }
    }
}

/// The registered sockets, in slots reused once a socket is dropped.
#[derive(Default)]
struct Slots {
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    /// The registration number the next socket gets.
    id: u64,
}

/// A loop's poller and its registered sockets. See the parent module's
/// docs.
pub(crate) struct Reactor {
    poll: RefCell<Poll>,
    slots: RefCell<Slots>,
    events: RefCell<Events>,
    /// The entries a poll takes out, kept to reuse the allocation.
    woken: Cell<Waiters>,
    /// Waker entries (`Waiter::Local`, `Waiter::Waker`) in the slots.
    wakers: Cell<usize>,
    /// The loop, for the waiters of a dropped socket.
    core: Weak<Core>,
    /// Calls of `poll` so far.
    #[cfg(test)]
    polls: Cell<usize>,
}

impl Reactor {
    /// A reactor and the waker that interrupts its waits from any
    /// thread.
    pub(super) fn new(core: Weak<Core>) -> io::Result<(Reactor, mio::Waker)> {
        let poll = Poll::new()?;
        let waker = mio::Waker::new(poll.registry(), WAKE)?;
        let reactor = Reactor {
            poll: RefCell::new(poll),
            slots: RefCell::default(),
            events: RefCell::new(Events::with_capacity(EVENTS)),
            woken: Cell::new(Vec::new()),
            wakers: Cell::new(0),
            core,
            #[cfg(test)]
            polls: Cell::new(0),
        };
        Ok((reactor, waker))
    }

    /// Registers a socket, edge-triggered in both directions; its key
    /// is for the other methods, and its [`ReadHint`] comes with it
    /// where there is one. The socket must call
    /// [`deregister`](Reactor::deregister) before it closes `fd` (if
    /// this reactor still exists then).
    pub(crate) fn register(&self, fd: RawFd) -> io::Result<(usize, Option<ReadHint>)> {
        let hint = HINT.then(|| ReadHint::new(Cell::new(Hint::MaybeReadable)));
        let key = {
            let mut slots = self.slots.borrow_mut();
            let slot = Slot {
                readers: Vec::new(),
                writers: Vec::new(),
                readable: hint.clone(),
                id: slots.id,
                fd,
            };
            match slots.free.pop() {
                Some(key) => {
                    slots.slots[key] = Some(slot);
                    key
                }
                None => {
                    slots.slots.push(Some(slot));
                    slots.slots.len() - 1
                }
            }
        };
        let added =
            self.poll
                .borrow()
                .registry()
                .register(&mut SourceFd(&fd), Token(key), INTEREST);
        match added {
            Ok(()) => Ok((key, hint)),
            Err(e) => {
                drop(self.free(key));
                Err(e)
            }
        }
    }

    /// Removes a socket's registration (before its descriptor closes),
    /// and hands back its waiters (stackless tasks, wakers; never
    /// stackful tasks: they borrow the socket while they wait) with the
    /// loop's core, for the caller to wake outside every borrow: they
    /// retry and find the socket gone.
    pub(crate) fn deregister(&self, key: usize) -> (Weak<Core>, Waiters) {
        let Some(slot) = self.free(key) else {
            return (Weak::new(), Vec::new());
        };
        // Fails only if it was not registered; nothing to undo then.
        let _ = self
            .poll
            .borrow()
            .registry()
            .deregister(&mut SourceFd(&slot.fd));
        let Slot {
            mut readers,
            writers,
            ..
        } = slot;
        readers.extend(writers);
        (self.core.clone(), readers)
    }

    fn free(&self, key: usize) -> Option<Slot> {
        let mut slots = self.slots.borrow_mut();
        let slot = slots.slots.get_mut(key)?.take()?;
        slots.free.push(key);
        slots.id = slots.id.wrapping_add(1);
        let wakers = slot
            .readers
            .iter()
            .chain(&slot.writers)
            .filter(|e| is_waker(e))
            .count();
        self.wakers.set(self.wakers.get() - wakers);
        Some(slot)
    }

    /// True while the loop of this reactor exists (a `Wait` or a future
    /// may keep the reactor itself alive after its loop is gone).
    pub(crate) fn loop_is_alive(&self) -> bool {
        self.core.strong_count() > 0
    }

    /// The registration number of socket `key` (its slot may be
    /// reused by another socket after it goes).
    pub(crate) fn id(&self, key: usize) -> Option<u64> {
        Some(self.slots.borrow().slots.get(key)?.as_ref()?.id)
    }

    /// Files a waiter of socket `key` (registration number `id`) in
    /// direction `dir`. No system call, no user code: a waker entry
    /// that wakes the same as one already there replaces it, and the
    /// old one is handed back, to be dropped by the caller; so is the
    /// new one if the socket is gone (`Err`).
    pub(crate) fn add_waiter(
        &self,
        key: usize,
        id: u64,
        dir: Direction,
        entry: Waiter,
    ) -> Result<Option<Waiter>, Waiter> {
        let mut slots = self.slots.borrow_mut();
        let Some(Some(slot)) = slots.slots.get_mut(key) else {
            return Err(entry);
        };
        if slot.id != id {
            return Err(entry);
        }
        let list = slot.list(dir);
        if is_waker(&entry) {
            if let Some(old) = list.iter_mut().find(|e| e.same_as(&entry)) {
                return Ok(Some(std::mem::replace(old, entry)));
            }
            self.wakers.set(self.wakers.get() + 1);
        }
        list.push(entry);
        Ok(None)
    }

    /// Files a parked stackful task as a reader or writer of socket
    /// `key`, which it borrows while it waits (so the socket is
    /// registered). No system call, no user code.
    #[inline(always)]
    pub(crate) fn add_task(&self, key: usize, dir: Direction, task: TaskRef, seq: u32) {
        let mut slots = self.slots.borrow_mut();
        let slot = slots.slots[key].as_mut().expect("a registered socket");
        slot.list(dir).push(Waiter::Task(task, seq));
    }

    /// Takes the waiters of socket `key` in the directions shut down
    /// (`read`, `write`) by its own end: the poller reports no edge for
    /// that (a writer parked on a full Unix socket would wait for
    /// ever), so they are woken to try again and see it. A shut read
    /// side marks the hint closed. No system call, no user code.
    pub(crate) fn take_shut(&self, key: usize, read: bool, write: bool) -> (Weak<Core>, Waiters) {
        let mut slots = self.slots.borrow_mut();
        let Some(Some(slot)) = slots.slots.get_mut(key) else {
            return (Weak::new(), Vec::new());
        };
        let mut taken = Vec::new();
        if read {
            if let Some(hint) = &slot.readable {
                hint.set(Hint::Closed);
            }
            taken.append(&mut slot.readers);
        }
        if write {
            taken.append(&mut slot.writers);
        }
        let wakers = taken.iter().filter(|e| is_waker(e)).count();
        self.wakers.set(self.wakers.get() - wakers);
        (self.core.clone(), taken)
    }

    /// Takes the entries of the task of `header` out of socket `key`'s
    /// `dir` waiters (after its wait, however it ended).
    #[inline]
    pub(crate) fn remove_waiter(&self, key: usize, dir: Direction, header: &Header) {
        // The common case: the event that woke the task took the list.
        let empty = match self.slots.borrow_mut().slots.get_mut(key) {
            Some(Some(slot)) => slot.list(dir).is_empty(),
            _ => true,
        };
        if !empty {
            self.remove_waiter_from(key, dir, header);
        }
    }

    /// [`remove_waiter`](Reactor::remove_waiter) from a list that has
    /// entries (the task's own, after a timer or a cancellation ended
    /// its wait, or other tasks').
    #[inline(never)]
    fn remove_waiter_from(&self, key: usize, dir: Direction, header: &Header) {
        let mut removed = Vec::new();
        {
            let mut slots = self.slots.borrow_mut();
            let Some(Some(slot)) = slots.slots.get_mut(key) else {
                return;
            };
            let list = slot.list(dir);
            if list.is_empty() {
                return;
            }
            let mut i = 0;
            while i < list.len() {
                if matches!(&list[i], Waiter::Task(t, _) if std::ptr::eq(&t.header, header)) {
                    removed.push(list.swap_remove(i));
                } else {
                    i += 1;
                }
            }
        }
        drop(removed);
    }

    /// Drops the `Waiter::Local` entries whose task `live` says is gone.
    pub(crate) fn drop_stale(&self, live: impl Fn(u32, u64) -> bool) {
        let mut stale = Vec::new();
        {
            let mut slots = self.slots.borrow_mut();
            for slot in slots.slots.iter_mut().flatten() {
                for list in [&mut slot.readers, &mut slot.writers] {
                    let mut i = 0;
                    while i < list.len() {
                        match list[i] {
                            Waiter::Local(index, id) if !live(index, id) => {
                                stale.push(list.swap_remove(i));
                            }
                            _ => i += 1,
                        }
                    }
                }
            }
        }
        self.wakers.set(self.wakers.get() - stale.len());
        // Dropped outside the borrow, as every entry is (these run no
        // code: a key).
        drop(stale);
    }

    /// True if a waker entry waits on some socket.
    pub(crate) fn has_wakers(&self) -> bool {
        self.wakers.get() > 0
    }

    /// How many sockets are registered.
    #[cfg(test)]
    pub(crate) fn registered(&self) -> usize {
        self.slots.borrow().slots.iter().flatten().count()
    }

    /// How many times the poller was asked (waiting or not).
    #[cfg(test)]
    pub(crate) fn polls(&self) -> usize {
        self.polls.get()
    }

    /// How many entries socket `key` has among its readers and writers.
    #[cfg(test)]
    pub(crate) fn waiters(&self, key: usize) -> (usize, usize) {
        let slots = self.slots.borrow();
        let slot = slots.slots[key].as_ref().expect("a registered socket");
        (slot.readers.len(), slot.writers.len())
    }

    /// Waits for readiness events (at most `timeout`; `None`: until one
    /// comes or the waker wakes it) and hands each waiter of a ready
    /// direction to `wake`.
    pub(super) fn poll(&self, timeout: Option<Duration>, mut wake: impl FnMut(Waiter)) {
        #[cfg(test)]
        self.polls.set(self.polls.get() + 1);
        let mut woken = self.woken.take();
        {
            let mut events = self.events.borrow_mut();
            match self.poll.borrow_mut().poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => events.clear(),
                Err(e) => panic!("cogen event loop: waiting for socket readiness failed: {e}"),
            }
            let mut slots = self.slots.borrow_mut();
            let mut wakers = 0;
            for ev in events.iter() {
                let Some(Some(slot)) = slots.slots.get_mut(ev.token().0) else {
                    continue; // the waker's, or a socket gone
                };
                let failed = ev.is_error();
                if ev.is_readable() || ev.is_read_closed() || failed {
                    if let Some(hint) = &slot.readable {
                        // (`is_readable` includes urgent data.)
                        let off = ev.is_read_closed() || failed || is_urgent(ev);
                        hint.set(hint.get().on_event(off));
                    }
                    wakers += take_all(&mut slot.readers, &mut woken);
                }
                if ev.is_writable() || ev.is_write_closed() || failed {
                    wakers += take_all(&mut slot.writers, &mut woken);
                }
            }
            self.wakers.set(self.wakers.get() - wakers);
        }
        for entry in woken.drain(..) {
            wake(entry);
        }
        self.woken.set(woken);
    }
}
