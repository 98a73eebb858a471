//! Every error of the event loop, one type per operation (crossbeam style):
//! why a join failed, why a run stopped, why a channel operation failed
//! (or timed out), that a time limit passed.
//!
//! Errors that carry an undelivered value hand it back (`into_inner`), and
//! their `Debug` does not require `T: Debug`.

use std::any::Any;
use std::borrow::Cow;
use std::fmt;

use crate::error::Panic;

/// Why [`JoinHandle::join`](super::JoinHandle::join) has no value: the task
/// panicked or was cancelled. Opaque, like tokio's `JoinError`, and like it
/// `Send + Sync` (the payload of a panic stays out of reach of `&self`; see
/// [`Panic`]), so `?` puts it in a `Box<dyn Error + Send + Sync>`.
pub struct JoinError {
    repr: Box<Repr>,
}

enum Repr {
    Cancelled {
        id: u64,
        name: Option<Cow<'static, str>>,
    },
    Panicked {
        id: u64,
        panic: Panic,
    },
}

impl JoinError {
    pub(crate) fn cancelled(id: u64, name: Option<Cow<'static, str>>) -> Self {
        JoinError {
            repr: Box::new(Repr::Cancelled { id, name }),
        }
    }

    pub(crate) fn panicked(id: u64, panic: Panic) -> Self {
        JoinError {
            repr: Box::new(Repr::Panicked { id, panic }),
        }
    }

    /// True if the task was cancelled before it finished.
    pub fn is_cancelled(&self) -> bool {
        matches!(*self.repr, Repr::Cancelled { .. })
    }

    /// True if the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(*self.repr, Repr::Panicked { .. })
    }

    /// The id of the task (see [`JoinHandle::id`](super::JoinHandle::id)).
    pub fn task_id(&self) -> u64 {
        match &*self.repr {
            Repr::Cancelled { id, .. } | Repr::Panicked { id, .. } => *id,
        }
    }

    /// The caught panic, if the task panicked.
    pub fn panic(&self) -> Option<&Panic> {
        match &*self.repr {
            Repr::Panicked { panic, .. } => Some(panic),
            Repr::Cancelled { .. } => None,
        }
    }

    /// The panic payload, to re-raise with [`std::panic::resume_unwind`].
    ///
    /// # Panics
    /// If the task was cancelled; check [`is_panic`](JoinError::is_panic)
    /// or use [`try_into_panic`](JoinError::try_into_panic).
    #[track_caller]
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        match self.try_into_panic() {
            Ok(panic) => panic.into_panic(),
            Err(e) => panic!("`JoinError::into_panic` called on a cancellation: {e}"),
        }
    }

    /// The caught panic, or this error back if the task was cancelled.
    pub fn try_into_panic(self) -> Result<Panic, JoinError> {
        match *self.repr {
            Repr::Panicked { panic, .. } => Ok(panic),
            repr => Err(JoinError {
                repr: Box::new(repr),
            }),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.repr {
            Repr::Cancelled { id, name } => f
                .debug_struct("JoinError::Cancelled")
                .field("id", id)
                .field("name", name)
                .finish(),
            Repr::Panicked { id, panic } => f
                .debug_struct("JoinError::Panicked")
                .field("id", id)
                .field("panic", panic)
                .finish(),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.repr {
            Repr::Cancelled { id, name: Some(n) } => write!(f, "task {id} '{n}' was cancelled"),
            Repr::Cancelled { id, name: None } => write!(f, "task {id} was cancelled"),
            Repr::Panicked { id, panic } => match panic.coroutine_name() {
                Some(n) => write!(f, "task {id} '{n}' panicked: {}", panic.message()),
                None => write!(f, "task {id} panicked: {}", panic.message()),
            },
        }
    }
}

impl std::error::Error for JoinError {}

/// What a task that [`run`](super::EventLoop::run) found stuck was waiting for.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WaitingOn {
    /// The end of another task, by id (`None` if the joiner is unknown).
    Join(Option<u64>),
    /// Room in a full channel.
    Send,
    /// A message on an empty channel.
    Recv,
    /// One of several channel operations of a [`Select`](super::Select).
    Select,
    /// A future (a future task, or `wait_for` in a stackful task) to wake
    /// it. In a deadlock report: its waker is held by nobody outside the
    /// loop any more, so nothing can wake it.
    Future,
    /// A timer ([`sleep`](super::sleep()), a time limit). Never stuck.
    Sleep,
    /// A closure on the blocking thread pool ([`unblock`](super::unblock()),
    /// a file). Never stuck.
    Blocking,
    /// A socket's readiness. Never stuck: the peer can always end it.
    Io,
}

impl fmt::Display for WaitingOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitingOn::Join(Some(id)) => write!(f, "waiting to join task {id}"),
            WaitingOn::Join(None) => f.write_str("waiting to join a task"),
            WaitingOn::Send => f.write_str("waiting to send on a full channel"),
            WaitingOn::Recv => f.write_str("waiting to receive on an empty channel"),
            WaitingOn::Select => f.write_str("waiting in a select over channels"),
            WaitingOn::Future => f.write_str("waiting for a future"),
            WaitingOn::Sleep => f.write_str("sleeping"),
            WaitingOn::Blocking => f.write_str("waiting for the blocking thread pool"),
            WaitingOn::Io => f.write_str("waiting for a socket"),
        }
    }
}

/// A task found stuck by deadlock detection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StuckTask {
    /// The task's id.
    pub id: u64,
    /// The task's name, if it was given one.
    pub name: Option<String>,
    /// What it waits for.
    pub waiting_on: WaitingOn,
}

impl fmt::Display for StuckTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "task {} '{n}' ({})", self.id, self.waiting_on),
            None => write!(f, "task {} ({})", self.id, self.waiting_on),
        }
    }
}

/// Why [`EventLoop::run`](super::EventLoop::run) (or `block_on`) stopped
/// with an error: a deadlock, or panics that no [`JoinHandle`](super::JoinHandle)
/// observed (with [`PanicPolicy::Collect`](super::PanicPolicy::Collect)).
/// It is `Send + Sync`, so `?` puts it in a `Box<dyn Error + Send + Sync>`.
pub struct RunError {
    stuck: Vec<StuckTask>,
    panics: Vec<Panic>,
}

impl RunError {
    pub(crate) fn new(stuck: Vec<StuckTask>, panics: Vec<Panic>) -> Self {
        RunError { stuck, panics }
    }

    /// True if the loop stopped because every remaining task waits on
    /// something no task, timer or outside wake-up can deliver.
    pub fn is_deadlock(&self) -> bool {
        !self.stuck.is_empty()
    }

    /// The tasks found stuck (empty unless [`is_deadlock`](RunError::is_deadlock)).
    /// They are still in the loop: cancel them, or drop the loop to unwind them.
    pub fn stuck_tasks(&self) -> &[StuckTask] {
        &self.stuck
    }

    /// The panics of tasks whose result nobody will read (detached tasks, or
    /// handles dropped without joining), in the order they were found.
    pub fn panics(&self) -> &[Panic] {
        &self.panics
    }

    /// Takes the unobserved panics out, to inspect or re-raise them.
    pub fn into_panics(self) -> Vec<Panic> {
        self.panics
    }
}

impl fmt::Debug for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunError")
            .field("stuck", &self.stuck)
            .field("panics", &self.panics)
            .finish()
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.stuck.is_empty() {
            f.write_str(
                "deadlock: every remaining task waits for something that no task, timer or \
                 outside wake-up can deliver: ",
            )?;
            for (i, t) in self.stuck.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{t}")?;
            }
        }
        if !self.panics.is_empty() {
            if !self.stuck.is_empty() {
                f.write_str("; ")?;
            }
            write!(f, "{} unjoined task panic(s): ", self.panics.len())?;
            for (i, p) in self.panics.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{p}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for RunError {}

/// [`Sender::send`](super::Sender::send) failed: the channel is closed. The
/// message is handed back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SendError<T>(pub T);

impl<T> SendError<T> {
    /// The message that was not sent.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sending on a closed channel")
    }
}

impl<T> std::error::Error for SendError<T> {}

/// [`Sender::try_send`](super::Sender::try_send) failed. The message is
/// handed back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The channel is full.
    Full(T),
    /// The channel is closed.
    Closed(T),
}

impl<T> TrySendError<T> {
    /// The message that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(v) | TrySendError::Closed(v) => v,
        }
    }

    /// True if the channel was full.
    pub fn is_full(&self) -> bool {
        matches!(self, TrySendError::Full(_))
    }

    /// True if the channel was closed.
    pub fn is_closed(&self) -> bool {
        matches!(self, TrySendError::Closed(_))
    }
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("sending on a full channel"),
            TrySendError::Closed(_) => f.write_str("sending on a closed channel"),
        }
    }
}

impl<T> std::error::Error for TrySendError<T> {}

/// [`Receiver::recv`](super::Receiver::recv) failed: the channel is closed
/// and every message in it has been received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecvError;

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("receiving on a closed and empty channel")
    }
}

impl std::error::Error for RecvError {}

/// [`Receiver::try_recv`](super::Receiver::try_recv) failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TryRecvError {
    /// The channel is empty but still open.
    Empty,
    /// The channel is closed and every message in it has been received.
    Closed,
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("receiving on an empty channel"),
            TryRecvError::Closed => f.write_str("receiving on a closed and empty channel"),
        }
    }
}

impl std::error::Error for TryRecvError {}

/// [`Sender::send_timeout`](super::Sender::send_timeout) (or
/// `send_deadline`) failed. The message is handed back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SendTimeoutError<T> {
    /// The channel stayed full until the deadline.
    Timeout(T),
    /// The channel is closed.
    Closed(T),
}

impl<T> SendTimeoutError<T> {
    /// The message that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            SendTimeoutError::Timeout(v) | SendTimeoutError::Closed(v) => v,
        }
    }

    /// True if the deadline passed.
    pub fn is_timeout(&self) -> bool {
        matches!(self, SendTimeoutError::Timeout(_))
    }

    /// True if the channel was closed.
    pub fn is_closed(&self) -> bool {
        matches!(self, SendTimeoutError::Closed(_))
    }
}

impl<T> fmt::Debug for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.write_str("Timeout(..)"),
            SendTimeoutError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.write_str("timed out sending on a full channel"),
            SendTimeoutError::Closed(_) => f.write_str("sending on a closed channel"),
        }
    }
}

impl<T> std::error::Error for SendTimeoutError<T> {}

impl<T> From<SendError<T>> for SendTimeoutError<T> {
    fn from(SendError(v): SendError<T>) -> Self {
        SendTimeoutError::Closed(v)
    }
}

/// [`Receiver::recv_timeout`](super::Receiver::recv_timeout) (or
/// `recv_deadline`) failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecvTimeoutError {
    /// No message came before the deadline.
    Timeout,
    /// The channel is closed and every message in it has been received.
    Closed,
}

impl RecvTimeoutError {
    /// True if the deadline passed.
    pub fn is_timeout(&self) -> bool {
        matches!(self, RecvTimeoutError::Timeout)
    }

    /// True if the channel is closed and drained.
    pub fn is_closed(&self) -> bool {
        matches!(self, RecvTimeoutError::Closed)
    }
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvTimeoutError::Timeout => f.write_str("timed out receiving on an empty channel"),
            RecvTimeoutError::Closed => f.write_str("receiving on a closed and empty channel"),
        }
    }
}

impl std::error::Error for RecvTimeoutError {}

impl From<RecvError> for RecvTimeoutError {
    fn from(_: RecvError) -> Self {
        RecvTimeoutError::Closed
    }
}

/// The deadline of a [`timeout`](super::timeout()) passed before its
/// closure finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Elapsed(());

impl Elapsed {
    pub(crate) fn new() -> Self {
        Elapsed(())
    }
}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for std::io::Error {
    fn from(_: Elapsed) -> std::io::Error {
        std::io::ErrorKind::TimedOut.into()
    }
}
