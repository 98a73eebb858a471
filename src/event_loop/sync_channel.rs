//! A bounded multi-producer, multi-consumer channel whose ends are `Send`:
//! [`sync_channel`], [`SyncSender`], [`SyncReceiver`], for passing values
//! between loops and plain threads.
//!
//! # Which crate, and why
//!
//! The queue, the closing rules and the wait lists are the
//! [`async-channel`](https://docs.rs/async-channel) crate's (smol-rs's,
//! which `async-executor` and many servers use), not cogen's own: its
//! `send` and `recv` futures park through a standard
//! [`Waker`](std::task::Waker), and a stackful task waits for any future
//! with [`wait_for`], whose waker wakes the task through its loop's inbox
//! from any thread. So a task parks on a full or empty channel, and the
//! other tasks of its loop run meanwhile, with no code here that touches a
//! lock or an atomic: the sound part is a well-used crate's, and this file
//! only picks, per call, whether to park a task or block a thread.
//! (crossbeam-channel blocks threads only; flume would serve as well, but
//! async-channel was already in the build, for the benchmarks.)
//!
//! The loop's own [`channel`](super::channel) stays the one to use between
//! tasks of one loop: it is `!Send`, and much cheaper (no atomic, no lock).

use std::fmt;
use std::future::Future;

use super::context::being_cancelled;
use super::current::CURRENT_TASK;
use super::error::{RecvError, SendError, TryRecvError, TrySendError};
use super::wait_for::wait_for;

/// A bounded channel of capacity `cap` whose ends are `Send` and `Clone`
/// (several producers and consumers, on any threads and loops).
///
/// * [`send`](SyncSender::send) waits while the channel is full, and
///   [`recv`](SyncReceiver::recv) while it is empty: inside a stackful task
///   the task parks (its loop runs the others); on a thread that runs no
///   task, the thread blocks. Future tasks `.await`
///   [`send_async`](SyncSender::send_async) / [`recv_async`](SyncReceiver::recv_async).
/// * [`try_send`](SyncSender::try_send) and [`try_recv`](SyncReceiver::try_recv)
///   never wait.
/// * The channel closes when every sender or every receiver is dropped (or
///   on [`close`](SyncSender::close)): sends fail with the value handed
///   back; receives drain what is left, then fail.
///
/// ```
/// use cogen::event_loop::{Runtime, sync_channel};
///
/// let rt = Runtime::builder().threads(2).build().unwrap();
/// let (tx, rx) = sync_channel(4);
/// for i in 0..2u64 {
///     let tx = tx.clone();
///     rt.spawn(move || (0..100).for_each(|n| tx.send(i * 1000 + n).unwrap())).detach();
/// }
/// drop(tx);
/// // This thread runs no task: `recv` blocks it until a value comes.
/// let total: u64 = std::iter::from_fn(|| rx.recv().ok()).sum();
/// assert_eq!(total, (0..100).sum::<u64>() * 2 + 100 * 1000);
/// ```
///
/// # Panics
/// If `cap` is 0 (a rendezvous channel is not offered).
pub fn sync_channel<T>(cap: usize) -> (SyncSender<T>, SyncReceiver<T>) {
    assert!(cap > 0, "sync_channel: the capacity must be at least 1");
    let (tx, rx) = async_channel::bounded(cap);
    (SyncSender(tx), SyncReceiver(rx))
}

/// The sending end of a [`sync_channel`]. `Send`, `Sync`, `Clone`.
pub struct SyncSender<T>(async_channel::Sender<T>);

/// The receiving end of a [`sync_channel`]. `Send`, `Sync`, `Clone`: each
/// value goes to one receiver.
pub struct SyncReceiver<T>(async_channel::Receiver<T>);

/// True if a task runs on this thread: a wait must park it (or panic,
/// saying why it cannot), never block the loop's thread.
fn in_task() -> bool {
    CURRENT_TASK.with(|t| t.get().is_some())
}

impl<T> SyncSender<T> {
    /// Sends `value`, waiting while the channel is full (see
    /// [`sync_channel`]). Fails, handing the value back, if the channel is
    /// closed, and when it would have to wait in a destructor that its
    /// task's cancellation runs (nothing can wait there, and a panic would
    /// abort the process).
    ///
    /// # Panics
    /// Inside a future or stackless task, where it could not wait (use
    /// [`try_send`](SyncSender::try_send) or `.await`
    /// [`send_async`](SyncSender::send_async) there). In a coroutine nested
    /// in a stackful task it waits, parking the whole task.
    #[track_caller]
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        match self.0.try_send(value) {
            Ok(()) => Ok(()),
            Err(async_channel::TrySendError::Closed(v)) => Err(SendError(v)),
            // See the loop's own `Sender::send`.
            Err(async_channel::TrySendError::Full(v)) if in_task() && being_cancelled() => {
                Err(SendError(v))
            }
            Err(async_channel::TrySendError::Full(v)) if in_task() => {
                wait_for(self.0.send(v)).map_err(|e| SendError(e.into_inner()))
            }
            Err(async_channel::TrySendError::Full(v)) => self
                .0
                .send_blocking(v)
                .map_err(|e| SendError(e.into_inner())),
        }
    }

    /// Sends `value` if there is room, without waiting.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        self.0.try_send(value).map_err(|e| match e {
            async_channel::TrySendError::Full(v) => TrySendError::Full(v),
            async_channel::TrySendError::Closed(v) => TrySendError::Closed(v),
        })
    }

    /// A future that sends `value`, for future tasks and other async code.
    pub fn send_async(&self, value: T) -> impl Future<Output = Result<(), SendError<T>>> + '_ {
        let send = self.0.send(value);
        async move { send.await.map_err(|e| SendError(e.into_inner())) }
    }
}

impl<T> SyncReceiver<T> {
    /// Receives a value, waiting while the channel is empty (see
    /// [`sync_channel`]). Fails once the channel is closed and empty, and
    /// when it would have to wait in a destructor that its task's
    /// cancellation runs.
    ///
    /// # Panics
    /// Inside a future or stackless task, where it could not wait (use
    /// [`try_recv`](SyncReceiver::try_recv) or `.await`
    /// [`recv_async`](SyncReceiver::recv_async) there). In a coroutine
    /// nested in a stackful task it waits, parking the whole task.
    #[track_caller]
    pub fn recv(&self) -> Result<T, RecvError> {
        match self.0.try_recv() {
            Ok(v) => Ok(v),
            Err(async_channel::TryRecvError::Closed) => Err(RecvError),
            Err(async_channel::TryRecvError::Empty) if in_task() && being_cancelled() => {
                Err(RecvError)
            }
            Err(async_channel::TryRecvError::Empty) if in_task() => {
                wait_for(self.0.recv()).map_err(|_| RecvError)
            }
            Err(async_channel::TryRecvError::Empty) => {
                self.0.recv_blocking().map_err(|_| RecvError)
            }
        }
    }

    /// Receives a value if one is there, without waiting.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.0.try_recv().map_err(|e| match e {
            async_channel::TryRecvError::Empty => TryRecvError::Empty,
            async_channel::TryRecvError::Closed => TryRecvError::Closed,
        })
    }

    /// A future that receives a value, for future tasks and other async code.
    pub fn recv_async(&self) -> impl Future<Output = Result<T, RecvError>> + '_ {
        let recv = self.0.recv();
        async move { recv.await.map_err(|_| RecvError) }
    }
}

/// The queries and the close that both ends of a [`sync_channel`] answer
/// the same way, from the shared `async_channel` end in field 0.
macro_rules! channel_state {
    ($end:ident) => {
        impl<T> $end<T> {
            /// Closes the channel for every end; true if this call closed it.
            pub fn close(&self) -> bool {
                self.0.close()
            }

            /// True once the channel is closed.
            pub fn is_closed(&self) -> bool {
                self.0.is_closed()
            }

            /// The number of values in the channel.
            pub fn len(&self) -> usize {
                self.0.len()
            }

            /// True if the channel holds no value.
            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }

            /// The channel's capacity.
            pub fn capacity(&self) -> usize {
                self.0.capacity().unwrap_or(usize::MAX)
            }
        }
    };
}

channel_state!(SyncSender);
channel_state!(SyncReceiver);

impl<T> Clone for SyncSender<T> {
    fn clone(&self) -> Self {
        SyncSender(self.0.clone())
    }
}

impl<T> Clone for SyncReceiver<T> {
    fn clone(&self) -> Self {
        SyncReceiver(self.0.clone())
    }
}

impl<T> fmt::Debug for SyncSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncSender")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl<T> fmt::Debug for SyncReceiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncReceiver")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("closed", &self.is_closed())
            .finish()
    }
}
