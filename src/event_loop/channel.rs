//! Bounded multi-producer, multi-consumer channels for the tasks of a loop.
//!
//! # Design
//!
//! One `Rc<Chan<T>>` holds a ring buffer of at most `capacity` messages and
//! two FIFO lists of parked tasks, `(task, park number)`: senders waiting for
//! room and receivers waiting for a message. Every operation that changes
//! the buffer wakes at most one waiter of the other side (the first one
//! that is still parked with that number; stale entries are skipped), so a
//! send or receive costs O(1). A woken task retries its operation, so a
//! wake-up that was "stolen" by a task that got there first only costs a
//! re-park. If a woken task is cancelled before it runs, the wake-up is
//! passed on to the next waiter, so no message is left unseen while a
//! receiver waits.
//!
//! The time-limited forms (`send_timeout`, `recv_timeout`) park with a
//! timer entry next to the wait-list entry, under the same park number;
//! when the timer wins (or the wait is unwound), the task takes its own
//! entry out of the list again, so repeated timeouts on an idle channel do
//! not pile up entries. [`Select`](super::Select) uses the same lists.
//!
//! Files: this one holds the channel, its wait lists and the waiting
//! `send` / `recv`; `channel/timed.rs` the time-limited forms,
//! `channel/iter.rs` the iterators, `channel/stream.rs` receiving from
//! async code.
//!
//! Closing (explicitly, or by dropping every sender or every receiver)
//! wakes everyone: senders fail and get their message back, receivers drain
//! what is left and then see the channel closed. Dropping the last receiver
//! also drops the messages left, so that one holding a sender of its own
//! channel does not keep it alive.

use std::cell::{Cell, RefCell, UnsafeCell};
use std::collections::VecDeque;
use std::fmt;
use std::ptr::NonNull;
use std::rc::Rc;

use super::context::{cancelled_here, current_task_addr, park_thin};
use super::core::{make_runnable_thin, wake};
use super::error::{RecvError, SendError, TryRecvError, TrySendError};
use super::ring::Ring;
use super::task::{TaskRef, ThinTask, WaitReason};

mod iter;
mod stream;
mod timed;

pub use iter::{IntoIter, Iter, TryIter};

/// A FIFO of parked tasks. Most channels have at most one waiter per side,
/// so the oldest entry lives inline and only the others go to a deque.
/// Invariant: `first` is empty only if `rest` is. Entries are thin (16
/// bytes with the park number, not 24): a million tasks parked on one
/// channel are a million entries.
#[derive(Default)]
struct WaitList {
    first: Cell<Option<(ThinTask, u32)>>,
    rest: RefCell<VecDeque<(ThinTask, u32)>>,
}

#[cfg(target_pointer_width = "64")]
const _: () = assert!(
    std::mem::size_of::<(ThinTask, u32)>() == 16,
    "a wait-list entry is 16 bytes"
);

impl WaitList {
    #[inline]
    fn push(&self, task: ThinTask, seq: u32) {
        let entry = (task, seq);
        match self.first.take() {
            None => self.first.set(Some(entry)),
            first => {
                self.first.set(first);
                self.rest.borrow_mut().push_back(entry);
            }
        }
    }

    /// True if no task waits: what every send and receive checks first.
    #[inline(always)]
    fn is_empty(&self) -> bool {
        // SAFETY: reads the cell in place, on its own thread (`Cell` is not
        // `Sync`); no reference into it is live, as every other access
        // moves the value out and back within one call that runs no user
        // code.
        unsafe { (*self.first.as_ptr()).is_none() }
    }

    #[inline]
    fn pop(&self) -> Option<(ThinTask, u32)> {
        let first = self.first.take()?;
        if !self.rest.borrow().is_empty() {
            self.first.set(self.rest.borrow_mut().pop_front());
        }
        Some(first)
    }

    /// Takes out an entry of the task at address `me`, handing it back to
    /// be dropped by the caller. Most lists are one entry long; a task that
    /// gives up is usually the newest entry, and the loop cancels parked
    /// tasks roughly in the order they parked: the scan looks at `first`,
    /// then at the others from the back.
    fn remove(&self, me: *const ()) -> Option<(ThinTask, u32)> {
        let first = self.first.take()?;
        let mut rest = self.rest.borrow_mut();
        if first.0.is(me) {
            self.first.set(rest.pop_front());
            return Some(first);
        }
        self.first.set(Some(first));
        let i = rest.iter().rposition(|(t, _)| t.is(me))?;
        rest.remove(i)
    }

    fn take_all(&self) -> Vec<(ThinTask, u32)> {
        let mut all: Vec<_> = self.first.take().into_iter().collect();
        all.extend(self.rest.borrow_mut().drain(..));
        all
    }
}

/// The message buffer. Each method finishes with the ring before it
/// returns and runs no user code inside (messages move in and out by value;
/// the ones left are dropped with the channel), so accesses never overlap.
struct Buf<T>(UnsafeCell<Ring<T>>);

impl<T> Buf<T> {
    #[inline]
    fn len(&self) -> usize {
        // SAFETY: see the type's docs.
        unsafe { (*self.0.get()).len() }
    }

    #[inline]
    fn push_back(&self, value: T) {
        // SAFETY: see the type's docs.
        unsafe { (*self.0.get()).push_back(value) }
    }

    #[inline]
    fn pop_front(&self) -> Option<T> {
        // SAFETY: see the type's docs.
        unsafe { (*self.0.get()).pop_front() }
    }
}

/// `repr(C)`: `ops` comes first, for [`ThinChan`].
#[repr(C)]
pub(crate) struct Chan<T> {
    ops: &'static ChanOps,
    buf: Buf<T>,
    capacity: usize,
    closed: Cell<bool>,
    senders: Cell<usize>,
    receivers: Cell<usize>,
    send_waiters: WaitList,
    recv_waiters: WaitList,
    /// Futures polling the receiving side (`stream.rs`).
    pollers: stream::Pollers,
}

/// Wakes the first waiter that is still parked with its number. Inlined
/// for the common case of a list with nobody in it.
#[inline(always)]
fn wake_one(list: &WaitList) {
    if !list.is_empty() {
        wake_first(list);
    }
}

#[inline(always)]
fn wake_first(list: &WaitList) {
    while let Some((task, seq)) = list.pop() {
        if task.header().is_parked_at(seq) {
            make_runnable_thin(task);
            return;
        }
    }
}

fn wake_all(list: &WaitList) {
    for (task, seq) in list.take_all() {
        wake(task.into_ref(), seq);
    }
}

/// Which side of a channel a wait is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Side {
    Send = 0,
    Recv = 1,
}

/// A channel seen without its message type: what a stackless task's wait
/// request and the pass-on of a cancelled waiter need.
pub(crate) trait ChanWait {
    fn ready(&self, side: Side) -> bool;
    fn register(&self, side: Side, task: TaskRef, seq: u32);
    /// Takes the entry of the task at address `me` out of `side`'s wait
    /// list, if it is there (it is handed back: the caller drops it).
    fn unregister(&self, side: Side, me: *const ()) -> Option<(ThinTask, u32)>;
    fn pass_on(&self, side: Side);
    /// The same channel as an 8-byte reference.
    #[cfg(cogen_nightly)]
    fn thin(self: Rc<Self>) -> ThinChan;
}

/// What a [`ThinChan`] can do with the channel it points to.
#[cfg_attr(not(cogen_nightly), allow(dead_code))]
pub(crate) struct ChanOps {
    pass_on: unsafe fn(NonNull<&'static ChanOps>, Side),
    release: unsafe fn(NonNull<&'static ChanOps>),
}

#[cfg_attr(not(cogen_nightly), allow(dead_code))]
impl<T> Chan<T> {
    const OPS: &'static ChanOps = &ChanOps {
        pass_on: Self::pass_on_raw,
        release: Self::release_raw,
    };

    /// # Safety
    /// `chan` comes from a live [`ThinChan`] made from an `Rc<Chan<T>>`.
    unsafe fn pass_on_raw(chan: NonNull<&'static ChanOps>, side: Side) {
        // SAFETY: `Chan` is `repr(C)` with `ops` first, so the address is
        // the channel's, and the `ThinChan` keeps it alive.
        let chan = unsafe { chan.cast::<Chan<T>>().as_ref() };
        ChanWait::pass_on(chan, side);
    }

    /// # Safety
    /// `chan` comes from a [`ThinChan`] made from an `Rc<Chan<T>>`, which
    /// gives up its count.
    unsafe fn release_raw(chan: NonNull<&'static ChanOps>) {
        // SAFETY: the pointer `Rc::into_raw` gave (see `pass_on_raw`).
        drop(unsafe { Rc::from_raw(chan.cast::<Chan<T>>().as_ptr()) });
    }
}

/// An owning reference to a channel of any message type in 8 bytes (an
/// `Rc<dyn ChanWait>` takes 16): what a parked stackless task keeps of the
/// channel it waits on. The channel's first field says how to use it.
#[cfg(cogen_nightly)]
pub(crate) struct ThinChan(NonNull<&'static ChanOps>);

#[cfg(all(cogen_nightly, target_pointer_width = "64"))]
const _: () = assert!(
    std::mem::size_of::<ThinChan>() == 8,
    "a thin channel reference is 8 bytes"
);

#[cfg(cogen_nightly)]
impl ThinChan {
    /// Hands the wake-up on to the next waiter of `side` (see [`ChanWait::pass_on`]).
    pub(crate) fn pass_on(&self, side: Side) {
        // SAFETY: we own a count of the channel; `ops` is its first field
        // and was made for its type.
        unsafe { (self.0.as_ref().pass_on)(self.0, side) }
    }
}

#[cfg(cogen_nightly)]
impl Drop for ThinChan {
    fn drop(&mut self) {
        // SAFETY: as in `pass_on`; gives up our count once.
        unsafe { (self.0.as_ref().release)(self.0) }
    }
}

impl<T> ChanWait for Chan<T> {
    #[cfg(cogen_nightly)]
    fn thin(self: Rc<Self>) -> ThinChan {
        let ptr = Rc::into_raw(self).cast_mut();
        // SAFETY: `Rc::into_raw` is never null; `Chan` is `repr(C)` with
        // `ops` first, so the channel's address is that of `ops`.
        ThinChan(unsafe { NonNull::new_unchecked(ptr.cast::<&'static ChanOps>()) })
    }

    fn ready(&self, side: Side) -> bool {
        self.closed.get()
            || match side {
                Side::Send => self.buf.len() < self.capacity,
                Side::Recv => self.buf.len() > 0,
            }
    }

    #[inline]
    fn register(&self, side: Side, task: TaskRef, seq: u32) {
        self.register_thin(side, ThinTask::new(task), seq);
    }

    fn unregister(&self, side: Side, me: *const ()) -> Option<(ThinTask, u32)> {
        match side {
            Side::Send => self.send_waiters.remove(me),
            Side::Recv => self.recv_waiters.remove(me),
        }
    }

    fn pass_on(&self, side: Side) {
        if self.ready(side) {
            match side {
                Side::Send => wake_one(&self.send_waiters),
                Side::Recv => wake_one(&self.recv_waiters),
            }
        }
    }
}

impl<T> Chan<T> {
    /// [`ChanWait::register`] for a thin reference.
    #[inline(always)]
    fn register_thin(&self, side: Side, task: ThinTask, seq: u32) {
        match side {
            Side::Send => self.send_waiters.push(task, seq),
            Side::Recv => self.recv_waiters.push(task, seq),
        }
    }

    fn close(&self) {
        if !self.closed.replace(true) {
            wake_all(&self.recv_waiters);
            wake_all(&self.send_waiters);
            self.pollers.wake();
        }
    }
}

/// Creates a bounded channel that holds at most `capacity` messages.
///
/// ```
/// use cogen::event_loop::{EventLoop, channel};
///
/// let ev = EventLoop::new();
/// let (tx, rx) = channel(1);
/// ev.spawn(move || {
///     for i in 0..3 {
///         tx.send(i).unwrap(); // parks while the channel is full
///     }
/// }); // dropping the last sender closes the channel
/// let consumer = ev.spawn(move || rx.iter().collect::<Vec<_>>());
/// ev.run().unwrap();
/// assert_eq!(consumer.join().unwrap(), [0, 1, 2]);
/// ```
///
/// # Panics
/// If `capacity` is 0.
#[track_caller]
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    assert!(capacity > 0, "channel capacity must be at least 1");
    let chan = Rc::new(Chan {
        ops: Chan::<T>::OPS,
        buf: Buf(UnsafeCell::new(Ring::with_capacity(capacity.min(1024)))),
        capacity,
        closed: Cell::new(false),
        senders: Cell::new(1),
        receivers: Cell::new(1),
        send_waiters: WaitList::default(),
        recv_waiters: WaitList::default(),
        pollers: stream::Pollers::default(),
    });
    (Sender { chan: chan.clone() }, Receiver { chan })
}

/// On unwinding out of a park (the task was cancelled, or a
/// [`timeout`](super::timeout()) expired): takes the task's entry out of
/// the wait list, so that repeated unwound waits do not pile entries up,
/// and hands on a wake-up it may have taken. The task is still the current
/// one then (a cancellation makes it current while it unwinds).
struct Leave<'a, T> {
    chan: &'a Chan<T>,
    side: Side,
}

impl<T> Drop for Leave<'_, T> {
    fn drop(&mut self) {
        drop(self.chan.unregister(self.side, current_task_addr()));
        self.chan.pass_on(self.side);
    }
}

/// The sending side of a [`channel`]. Cloning it adds a sender; when the
/// last sender is dropped the channel closes.
pub struct Sender<T> {
    pub(crate) chan: Rc<Chan<T>>,
}

impl<T> Sender<T> {
    /// Sends `value`, parking the running task while the channel is full.
    ///
    /// Fails (handing `value` back) once the channel is closed, and when it
    /// would have to wait in a destructor that its task's cancellation runs:
    /// a cancelled task cannot wait, and a panic there would abort the
    /// process.
    ///
    /// # Panics
    /// If it would have to wait outside a stackful task (and not in its
    /// cancellation).
    // Always inlined into the task's code, like the waiting fast paths of
    // `core/run.rs`: a call here cost 17 instructions per send.
    #[inline(always)]
    #[track_caller]
    pub fn send(&self, mut value: T) -> Result<(), SendError<T>> {
        loop {
            match self.try_send(value) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Closed(v)) => return Err(SendError(v)),
                Err(TrySendError::Full(v)) => value = v,
            }
            if cancelled_here() {
                return Err(SendError(value));
            }
            let chan = &*self.chan;
            let guard = Leave {
                chan,
                side: Side::Send,
            };
            park_thin("Sender::send", WaitReason::Send, |task, seq| {
                chan.register_thin(Side::Send, task, seq);
            });
            std::mem::forget(guard);
        }
    }

    /// Sends `value` if there is room now.
    #[inline(always)]
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let chan = &*self.chan;
        if chan.closed.get() {
            return Err(TrySendError::Closed(value));
        }
        if chan.buf.len() >= chan.capacity {
            return Err(TrySendError::Full(value));
        }
        chan.buf.push_back(value);
        wake_one(&chan.recv_waiters);
        chan.pollers.wake();
        Ok(())
    }
}

/// What both ends of a channel share: the channel's state and the
/// accessors over it, and closing the channel when the last handle of one
/// side is dropped (`$count` counts the handles of that side; the side's
/// `last_dropped` runs then).
macro_rules! channel_end {
    ($End:ident, $count:ident) => {
        impl<T> $End<T> {
            /// Closes the channel for everyone: sends fail from now on,
            /// receivers get the messages already in it, then [`RecvError`].
            pub fn close(&self) {
                self.chan.close();
            }

            /// True once the channel is closed.
            pub fn is_closed(&self) -> bool {
                self.chan.closed.get()
            }

            /// The number of messages in the channel.
            pub fn len(&self) -> usize {
                self.chan.buf.len()
            }

            /// True if the channel holds no message.
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }

            /// The most messages the channel holds.
            pub fn capacity(&self) -> usize {
                self.chan.capacity
            }
        }

        impl<T> Clone for $End<T> {
            fn clone(&self) -> Self {
                self.chan.$count.set(self.chan.$count.get() + 1);
                $End {
                    chan: self.chan.clone(),
                }
            }
        }

        impl<T> Drop for $End<T> {
            fn drop(&mut self) {
                let n = self.chan.$count.get() - 1;
                self.chan.$count.set(n);
                if n == 0 {
                    self.chan.close();
                    self.last_dropped();
                }
            }
        }

        impl<T> fmt::Debug for $End<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($End))
                    .field("len", &self.len())
                    .field("capacity", &self.capacity())
                    .field("closed", &self.is_closed())
                    .finish()
            }
        }
    };
}

channel_end!(Sender, senders);

impl<T> Sender<T> {
    /// The last sender is gone: the receivers still drain what is left.
    #[inline]
    fn last_dropped(&self) {}
}

/// The receiving side of a [`channel`]. Cloning it adds a receiver (each
/// message goes to exactly one); when the last receiver is dropped the
/// channel closes and the messages still in it are dropped.
pub struct Receiver<T> {
    pub(crate) chan: Rc<Chan<T>>,
}

impl<T> Receiver<T> {
    /// Receives the next message, parking the running task while the
    /// channel is empty. Fails once the channel is closed and drained, and
    /// when it would have to wait in a destructor that its task's
    /// cancellation runs (see [`Sender::send`]).
    ///
    /// # Panics
    /// If it would have to wait outside a stackful task (and not in its
    /// cancellation).
    // Always inlined, as `send`: see `context::suspend`.
    #[inline(always)]
    #[track_caller]
    pub fn recv(&self) -> Result<T, RecvError> {
        loop {
            match self.try_recv() {
                Ok(v) => return Ok(v),
                Err(TryRecvError::Closed) => return Err(RecvError),
                Err(TryRecvError::Empty) => {}
            }
            if cancelled_here() {
                return Err(RecvError);
            }
            let chan = &*self.chan;
            let guard = Leave {
                chan,
                side: Side::Recv,
            };
            park_thin("Receiver::recv", WaitReason::Recv, |task, seq| {
                chan.register_thin(Side::Recv, task, seq);
            });
            std::mem::forget(guard);
        }
    }

    /// Receives a message if one is there now.
    #[inline(always)]
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let chan = &*self.chan;
        let value = chan.buf.pop_front();
        match value {
            Some(v) => {
                wake_one(&chan.send_waiters);
                Ok(v)
            }
            None if chan.closed.get() => Err(TryRecvError::Closed),
            None => Err(TryRecvError::Empty),
        }
    }
}

channel_end!(Receiver, receivers);

impl<T> Receiver<T> {
    /// The last receiver is gone: nobody can take the messages left, so they
    /// are dropped now (as std's `mpsc` does), not with the channel. A
    /// message holding a sender of its own channel would otherwise keep the
    /// channel, and so itself, alive for ever.
    fn last_dropped(&self) {
        /// Drops the rest if one message's destructor panics.
        struct DropRest<'a, T>(&'a Chan<T>);
        impl<T> Drop for DropRest<'_, T> {
            fn drop(&mut self) {
                while let Some(message) = self.0.buf.pop_front() {
                    drop(message);
                }
            }
        }
        // One at a time, each out of the buffer before its destructor runs:
        // that may use the channel (its sends fail now, it is closed).
        let rest = DropRest(&self.chan);
        while let Some(message) = self.chan.buf.pop_front() {
            drop(message);
        }
        std::mem::forget(rest);
    }
}
