//! Readiness: the loop's reactor, one poller per loop (feature `net`: the
//! `polling` crate's, which smol uses), and the tasks waiting on each
//! socket registered with it. The sockets themselves are in `net/`; the run loop (`core.rs`) calls
//! [`ReactorSlot::poll_now`] once per round and [`ReactorSlot::wait`] when
//! idle.
//!
//! # Design
//!
//! The poller is created the first time a socket has to wait, so a loop
//! without sockets makes no system call for it. From then on the idle
//! loop waits in the poller (with the next timer's deadline as timeout)
//! instead of parking its thread, and wake-ups from other threads notify
//! the poller (`remote.rs`).
//!
//! A socket registers the first time one of its operations would block,
//! gets a key (a slot here), and stays registered until it is dropped.
//! Where the OS allows it (epoll, kqueue) it is registered once,
//! edge-triggered, with interest in both directions, so a wait costs no
//! system call: a task always tries its operation first and parks only on
//! `WouldBlock`, and any readiness that comes after that `WouldBlock` is an
//! edge the poller reports. Elsewhere (oneshot mode) each wait re-arms the
//! socket's interest with one `modify`, and so does an event that leaves
//! the other direction's waiters parked.
//!
//! Each slot holds two lists of waiters, `(task, park number)`: readers and
//! writers, so one task may read while another writes. An event takes the
//! lists of its directions and wakes each task still parked with that
//! number; the woken task retries its operation (an event may be spurious).
//! A waiting function removes its own entry when it returns or unwinds
//! (woken by its timer instead, or cancelled), so no entry outlives its
//! wait and a cancelled task leaves nothing behind.
//!
//! # Who may touch what
//!
//! Everything here is on the loop's thread. No `RefCell` borrow is held
//! while a task is woken or a task reference is dropped: entries are moved
//! out first (dropping one may, in principle, drop a socket, which
//! deregisters here).

use std::time::Duration;

use super::remote::Remote;
use super::task::TaskRef;

#[cfg(all(test, feature = "net"))]
pub(crate) use imp::FORCE_ONESHOT;
#[cfg(feature = "net")]
pub(crate) use imp::{Direction, Reactor};

/// A loop's reactor, once it has one. Without the `net` feature it never
/// has one, and its methods do nothing.
#[derive(Default)]
pub(crate) struct ReactorSlot {
    #[cfg(feature = "net")]
    reactor: std::cell::OnceCell<std::rc::Rc<Reactor>>,
}

impl ReactorSlot {
    /// Takes the readiness events that are already there, without waiting,
    /// and hands each task they wake to `wake`.
    pub(crate) fn poll_now(&self, wake: impl FnMut(TaskRef, u32)) {
        #[cfg(feature = "net")]
        if let Some(reactor) = self.reactor.get() {
            reactor.poll(Some(Duration::ZERO), wake);
        }
        #[cfg(not(feature = "net"))]
        let _ = wake;
    }

    /// The loop is idle: waits in the poller until a socket is ready, a
    /// wake-up comes from another thread, or `timeout` passes, and hands
    /// each task a readiness event wakes to `wake`. False if the loop has
    /// no poller: the caller parks the thread instead.
    pub(crate) fn wait(
        &self,
        remote: &Remote,
        timeout: Option<Duration>,
        wake: impl FnMut(TaskRef, u32),
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

    /// The loop's reactor, if it has one.
    #[cfg(all(test, feature = "net"))]
    pub(crate) fn get(&self) -> Option<&std::rc::Rc<Reactor>> {
        self.reactor.get()
    }

    /// The loop's reactor, created (with its poller) on first use.
    #[cfg(feature = "net")]
    pub(crate) fn get_or_create(&self, remote: &Remote) -> std::io::Result<&std::rc::Rc<Reactor>> {
        if let Some(reactor) = self.reactor.get() {
            return Ok(reactor);
        }
        let reactor = std::rc::Rc::new(Reactor::new()?);
        remote.use_poller(reactor.poller.clone());
        Ok(self.reactor.get_or_init(|| reactor))
    }
}

#[cfg(feature = "net")]
mod imp {
    use std::cell::{Cell, RefCell};
    use std::io;
    use std::num::NonZeroUsize;
    use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
    use std::sync::Arc;
    use std::time::Duration;

    use polling::{Event, Events, PollMode, Poller};

    use super::super::task::{Header, TaskRef, ThinTask};

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

    type Waiters = Vec<(ThinTask, u32)>;

    /// One registered socket.
    struct Slot {
        readers: Waiters,
        writers: Waiters,
        /// Kept to re-arm it in oneshot mode, and to delete it from the
        /// poller if the reactor goes first. The socket deregisters before
        /// it closes the descriptor, so it is open while it is here.
        fd: RawFd,
    }

    impl Slot {
        fn list(&mut self, dir: Direction) -> &mut Waiters {
            match dir {
                Direction::Read => &mut self.readers,
                Direction::Write => &mut self.writers,
            }
        }

        /// The interest its waiters need (oneshot mode).
        fn interest(&self, key: usize) -> Event {
            Event::new(key, !self.readers.is_empty(), !self.writers.is_empty())
        }
    }

    /// The registered sockets, in slots reused once a socket is dropped.
    #[derive(Default)]
    struct Slots {
        slots: Vec<Option<Slot>>,
        free: Vec<usize>,
    }

    /// A loop's poller and its registered sockets. See the module docs.
    pub(crate) struct Reactor {
        pub(super) poller: Arc<Poller>,
        /// Sockets stay armed in both directions (edge-triggered), or are
        /// re-armed per wait (oneshot).
        edge: bool,
        slots: RefCell<Slots>,
        events: RefCell<Events>,
        /// The entries a poll takes out, kept to reuse the allocation.
        woken: Cell<Waiters>,
        /// Waits armed in oneshot mode, for reading and for writing.
        #[cfg(test)]
        armed: Cell<(usize, usize)>,
    }

    #[cfg(test)]
    thread_local! {
        /// Makes the reactors created on this thread use oneshot mode, to
        /// test the path that platforms without edge triggering take.
        pub(crate) static FORCE_ONESHOT: Cell<bool> = const { Cell::new(false) };
    }

    impl Reactor {
        pub(super) fn new() -> io::Result<Reactor> {
            let poller = Poller::new()?;
            let edge = poller.supports_edge();
            #[cfg(test)]
            let edge = edge && !FORCE_ONESHOT.with(Cell::get);
            Ok(Reactor {
                poller: Arc::new(poller),
                edge,
                slots: RefCell::default(),
                events: RefCell::new(Events::with_capacity(
                    NonZeroUsize::new(EVENTS).expect("not zero"),
                )),
                woken: Cell::new(Vec::new()),
                #[cfg(test)]
                armed: Cell::new((0, 0)),
            })
        }

        /// Registers a socket; its key is for the other methods. The socket must call
        /// [`deregister`](Reactor::deregister) before it closes `fd` (if
        /// this reactor still exists then).
        pub(crate) fn register(&self, fd: BorrowedFd<'_>) -> io::Result<usize> {
            let raw = fd.as_raw_fd();
            let key = {
                let mut slots = self.slots.borrow_mut();
                let slot = Slot {
                    readers: Vec::new(),
                    writers: Vec::new(),
                    fd: raw,
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
            // SAFETY: the socket deletes `fd` from the poller before it
            // closes it (`deregister`), and if this reactor goes first its
            // `Drop` deletes every registered descriptor, all still open.
            let added = unsafe {
                if self.edge {
                    self.poller
                        .add_with_mode(raw, Event::all(key), PollMode::Edge)
                } else {
                    self.poller.add(raw, Event::none(key))
                }
            };
            match added {
                Ok(()) => Ok(key),
                Err(e) => {
                    drop(self.free(key));
                    Err(e)
                }
            }
        }

        /// Removes a socket's registration (before its descriptor closes).
        pub(crate) fn deregister(&self, key: usize) {
            if let Some(slot) = self.free(key) {
                // SAFETY: as in `arm`: the socket has not closed it yet.
                let fd = unsafe { BorrowedFd::borrow_raw(slot.fd) };
                // Fails only if it was not registered; nothing to undo then.
                let _ = self.poller.delete(fd);
                // Waiters of a socket being dropped (none, for stackful
                // tasks: they borrow it while they wait) go outside the
                // borrow.
                drop(slot);
            }
        }

        fn free(&self, key: usize) -> Option<Slot> {
            let mut slots = self.slots.borrow_mut();
            let slot = slots.slots.get_mut(key)?.take()?;
            slots.free.push(key);
            Some(slot)
        }

        /// Before a wait in direction `dir` (oneshot mode): arms the
        /// socket's interest for it. Nothing to do in edge mode.
        pub(crate) fn arm(&self, key: usize, dir: Direction) -> io::Result<()> {
            if self.edge {
                return Ok(());
            }
            let slots = self.slots.borrow();
            let slot = slots.slots[key].as_ref().expect("a registered socket");
            let mut interest = slot.interest(key);
            match dir {
                Direction::Read => interest.readable = true,
                Direction::Write => interest.writable = true,
            }
            #[cfg(test)]
            {
                let (r, w) = self.armed.get();
                self.armed.set(match dir {
                    Direction::Read => (r + 1, w),
                    Direction::Write => (r, w + 1),
                });
            }
            // SAFETY: `fd` is open while it is registered (see `Slot::fd`).
            let fd = unsafe { BorrowedFd::borrow_raw(slot.fd) };
            self.poller.modify(fd, interest)
        }

        /// Files a parked task as a waiter of socket `key`. No system call,
        /// no user code.
        pub(crate) fn add_waiter(&self, key: usize, dir: Direction, task: TaskRef, seq: u32) {
            let entry = (ThinTask::new(task), seq);
            let mut slots = self.slots.borrow_mut();
            let slot = slots.slots[key].as_mut().expect("a registered socket");
            slot.list(dir).push(entry);
        }

        /// Takes the entries of the task of `header` out of socket `key`'s
        /// `dir` waiters (after its wait, however it ended).
        pub(crate) fn remove_waiter(&self, key: usize, dir: Direction, header: &Header) {
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
                    if std::ptr::eq(list[i].0.header(), header) {
                        removed.push(list.swap_remove(i));
                    } else {
                        i += 1;
                    }
                }
            }
            drop(removed);
        }

        /// How many sockets are registered.
        #[cfg(test)]
        pub(crate) fn registered(&self) -> usize {
            self.slots.borrow().slots.iter().flatten().count()
        }

        /// How many entries socket `key` has among its readers and writers.
        #[cfg(test)]
        pub(crate) fn waiters(&self, key: usize) -> (usize, usize) {
            let slots = self.slots.borrow();
            let slot = slots.slots[key].as_ref().expect("a registered socket");
            (slot.readers.len(), slot.writers.len())
        }

        /// True in edge-triggered mode.
        #[cfg(test)]
        pub(crate) fn is_edge(&self) -> bool {
            self.edge
        }

        /// Waits armed in oneshot mode so far: (reads, writes).
        #[cfg(test)]
        pub(crate) fn armed(&self) -> (usize, usize) {
            self.armed.get()
        }

        /// Waits for readiness events (at most `timeout`; `None`: until one
        /// comes or the poller is notified) and hands each waiter of a
        /// ready direction to `wake`.
        pub(super) fn poll(&self, timeout: Option<Duration>, mut wake: impl FnMut(TaskRef, u32)) {
            let mut woken = self.woken.take();
            {
                let mut events = self.events.borrow_mut();
                events.clear();
                if let Err(e) = self.poller.wait(&mut events, timeout) {
                    panic!("cogen event loop: waiting for socket readiness failed: {e}");
                }
                let mut slots = self.slots.borrow_mut();
                for ev in events.iter() {
                    let Some(Some(slot)) = slots.slots.get_mut(ev.key) else {
                        continue; // not ours (the poller's own) or gone
                    };
                    if ev.readable {
                        woken.append(&mut slot.readers);
                    }
                    if ev.writable {
                        woken.append(&mut slot.writers);
                    }
                    if !self.edge && !(slot.readers.is_empty() && slot.writers.is_empty()) {
                        // Oneshot: the event disarmed the socket; re-arm it
                        // for the waiters of the other direction, or let
                        // them retry (and meet the error) if that fails.
                        // SAFETY: as in `arm`.
                        let fd = unsafe { BorrowedFd::borrow_raw(slot.fd) };
                        if self.poller.modify(fd, slot.interest(ev.key)).is_err() {
                            woken.append(&mut slot.readers);
                            woken.append(&mut slot.writers);
                        }
                    }
                }
            }
            for (task, seq) in woken.drain(..) {
                wake(task.into_ref(), seq);
            }
            self.woken.set(woken);
        }
    }

    impl Drop for Reactor {
        fn drop(&mut self) {
            // Sockets that outlive their loop: take them out of the poller,
            // which wakers on other threads may keep alive a while.
            for slot in self.slots.get_mut().slots.iter().flatten() {
                // SAFETY: as in `arm`: a registered descriptor is open.
                let _ = self
                    .poller
                    .delete(unsafe { BorrowedFd::borrow_raw(slot.fd) });
            }
        }
    }
}
