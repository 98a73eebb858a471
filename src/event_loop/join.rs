//! Joining a task: [`JoinHandle`], and its `Future` side; cancelling one
//! from anywhere: [`CancelHandle`].
//!
//! A task's result lives in its own allocation, next to its body (a
//! `ResultCell`, see `task.rs`); the handle holds the task and a typed
//! pointer to that cell. `join` parks the
//! joining task in the target's single waiter slot; the target's end wakes
//! it. The handle is not `Clone`, so there is at most one joiner.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::ptr;
use std::ptr::NonNull;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll};

use std::time::{Duration, Instant};

use super::context::{current_task_addr, current_task_id, is_current, park};
use super::current::CURRENT_CORE;
use super::error::JoinError;
use super::remote::{local_key, task_key};
use super::task::{Header, ResultCell, Task, TaskBody, TaskRef, ThinTask, WaitReason, Waiter};
use super::timer::deadline_after;
use crate::error::drop_quietly;

/// An owned permission to join a task: wait for it and take its value.
///
/// * [`join`](JoinHandle::join) from inside a task parks that task until the
///   target finishes (from outside any task, it works once the target is done);
/// * `.await` in async code (a `JoinHandle` is a [`Future`]);
/// * [`cancel`](JoinHandle::cancel) unwinds the task;
/// * dropping the handle (or [`detach`](JoinHandle::detach)) lets the task
///   run on unobserved; a panic of a detached task is reported by
///   [`EventLoop::run`](super::EventLoop::run).
pub struct JoinHandle<T> {
    /// Dropped by the handle's `Drop`, which may keep its memory for the
    /// loop's next spawn.
    task: ManuallyDrop<TaskRef>,
    /// Points into `task`'s allocation, which `task` keeps alive.
    result: NonNull<ResultCell<T>>,
}

impl<T> JoinHandle<T> {
    pub(crate) fn new(task: TaskRef, result: NonNull<ResultCell<T>>) -> Self {
        JoinHandle {
            task: ManuallyDrop::new(task),
            result,
        }
    }

    pub(crate) fn task(&self) -> &TaskRef {
        &self.task
    }

    fn cell(&self) -> &ResultCell<T> {
        // SAFETY: `result` points into the allocation `self.task` keeps alive.
        unsafe { self.result.as_ref() }
    }

    fn take_result(&self) -> Result<T, JoinError> {
        if !self.task.header.result_ready() {
            return self.no_result();
        }
        self.cell().take().unwrap_or_else(|| self.no_result())
    }

    /// The answer for a task that is done but has no result to give: it is
    /// being cancelled, and one of its own destructors asks its handle (its
    /// result, stored afterwards, will be that it was cancelled: a panic
    /// instead, on the task's unwinding stack, would abort the process); or
    /// an unwinding left the loop from its step and it was abandoned, never
    /// to finish; or, polled as a future, its result was taken already.
    #[cold]
    #[inline(never)]
    fn no_result(&self) -> Result<T, JoinError> {
        let header = &self.task.header;
        Err(JoinError::cancelled(header.id, header.name_cow()))
    }

    /// Waits until the task finishes and returns its value, or a
    /// [`JoinError`] if it panicked or was cancelled.
    ///
    /// Inside a stackful task, from any depth of its call stack, this parks
    /// the calling task while the others run. Outside any task it returns at
    /// once if the task is already done.
    ///
    /// # Panics
    /// Outside a task while the target is unfinished (that could never
    /// return: run the loop first), and when a task joins itself.
    #[track_caller]
    #[inline]
    pub fn join(self) -> Result<T, JoinError> {
        if self.task.header.is_done() {
            let result = self.take_result();
            self.release();
            return result;
        }
        self.join_waiting()
    }

    /// [`join`](JoinHandle::join) of a task that was not done yet: out of
    /// line, so that joining a finished one is short.
    #[track_caller]
    #[inline(never)]
    fn join_waiting(self) -> Result<T, JoinError> {
        loop {
            if self.task.header.is_done() {
                let result = self.take_result();
                self.release();
                return result;
            }
            if is_current(&self.task) {
                panic!("task {} tried to join itself", self.task.header.id);
            }
            if current_task_id().is_none() {
                panic!(
                    "JoinHandle::join called outside a task while task {} is unfinished: it would \
                     never return; run the loop (EventLoop::run / block_on) first, or join from \
                     inside a task",
                    self.task.header.id
                );
            }
            let target = &self.task;
            // A wait that ends by an unwinding (a cancellation, a time
            // limit) takes its entry out of the target's list.
            let guard = LeaveJoin {
                target: &target.header,
                me: current_task_addr(),
            };
            // `replaced` can only be this task's own entry of an earlier
            // park: dropping it runs no user code, but not inside `park`.
            let mut replaced = None;
            park("JoinHandle::join", WaitReason::Join, |_, me, seq| {
                replaced = target.header.add_waiter(Waiter::Task(me, seq));
            });
            std::mem::forget(guard);
            drop(replaced);
        }
    }

    /// [`join`](JoinHandle::join) for at most `timeout`: the result if the
    /// task finishes in time, or else the handle back, to wait again,
    /// [`cancel`](JoinHandle::cancel) or drop (detach) it.
    ///
    /// A finished task's result is taken without reading the clock; a zero
    /// `timeout` is a [`try_join`](JoinHandle::try_join).
    ///
    /// ```
    /// use cogen::event_loop::{EventLoop, sleep, spawn};
    /// use std::time::Duration;
    ///
    /// let ev = EventLoop::new();
    /// ev.block_on(|| {
    ///     let slow = spawn(|| sleep(Duration::from_secs(3600)));
    ///     let slow = slow.join_timeout(Duration::from_millis(5)).unwrap_err();
    ///     slow.cancel(); // gave up on it
    ///     assert!(slow.join().unwrap_err().is_cancelled());
    /// })
    /// .unwrap();
    /// ```
    ///
    /// # Panics
    /// As [`join`](JoinHandle::join), when it would have to wait.
    #[track_caller]
    pub fn join_timeout(self, timeout: Duration) -> Result<Result<T, JoinError>, Self> {
        if self.task.header.is_done() {
            return Ok(self.take_result());
        }
        self.join_deadline(deadline_after(timeout))
    }

    /// [`join_timeout`](JoinHandle::join_timeout) with a deadline instead
    /// of a duration (one that has passed makes it a `try_join`).
    ///
    /// # Panics
    /// As [`join`](JoinHandle::join), when it would have to wait.
    #[track_caller]
    pub fn join_deadline(self, deadline: Instant) -> Result<Result<T, JoinError>, Self> {
        loop {
            if self.task.header.is_done() {
                return Ok(self.take_result());
            }
            if is_current(&self.task) {
                panic!("task {} tried to join itself", self.task.header.id);
            }
            if Instant::now() >= deadline {
                return Err(self);
            }
            let target = &self.task;
            let me = current_task_addr();
            let guard = LeaveJoin {
                target: &target.header,
                me,
            };
            let mut replaced = None;
            park(
                "JoinHandle::join_timeout",
                WaitReason::Join,
                |core, task, seq| {
                    core.timers.add(deadline, task.clone(), seq);
                    replaced = target.header.add_waiter(Waiter::Task(task, seq));
                },
            );
            std::mem::forget(guard);
            drop(replaced);
            if Instant::now() >= deadline {
                // The timer woke us: our entry is still in the target's slot.
                drop(target.header.remove_task_waiter(me));
            }
        }
    }

    /// The result if the task is done, or the handle back.
    pub fn try_join(self) -> Result<Result<T, JoinError>, Self> {
        if self.task.header.is_done() {
            Ok(self.take_result())
        } else {
            Err(self)
        }
    }

    /// True once the task has returned, panicked or been cancelled (from
    /// one of its own destructors while it is being cancelled too: its
    /// result is then that it was cancelled).
    pub fn is_finished(&self) -> bool {
        self.task.header.is_done()
    }

    /// Cancels the task: a suspended task is unwound now (every destructor
    /// on its stack runs once); the running task itself is unwound at its
    /// next suspension. Joining then gives a [`JoinError`] with
    /// [`is_cancelled`](JoinError::is_cancelled). No effect on a finished task.
    pub fn cancel(&self) {
        if let Some(core) = self.task.header.core.upgrade() {
            core.cancel(&self.task);
        }
    }

    /// A handle that can only cancel the task, and be cloned: for a
    /// watchdog task, a deadline, or the task itself, while this handle
    /// stays with whoever joins.
    ///
    /// ```
    /// use cogen::event_loop::{EventLoop, channel, sleep, spawn};
    /// use std::time::Duration;
    ///
    /// let ev = EventLoop::new();
    /// let got = ev
    ///     .block_on(|| {
    ///         let (tx, rx) = channel(1);
    ///         let producer = spawn(move || {
    ///             for i in 0.. {
    ///                 tx.send(i).unwrap();
    ///                 sleep(Duration::from_millis(1));
    ///             }
    ///         });
    ///         let stop = producer.cancel_handle();
    ///         spawn(move || {
    ///             sleep(Duration::from_millis(20));
    ///             stop.cancel(); // unwinds the producer, which drops `tx`
    ///         });
    ///         let received = rx.iter().count(); // ends when the channel closes
    ///         (received > 0, producer.join().unwrap_err().is_cancelled())
    ///     })
    ///     .unwrap();
    /// assert_eq!(got, (true, true));
    /// ```
    pub fn cancel_handle(&self) -> CancelHandle {
        CancelHandle {
            task: Rc::downgrade(&self.task),
            id: self.task.header.id,
        }
    }

    /// Lets the task run on without a handle (the same as dropping it).
    pub fn detach(self) {}

    /// The task's id, unique within its loop.
    pub fn id(&self) -> u64 {
        self.task.header.id
    }

    /// The task's name, if it was given one.
    pub fn name(&self) -> Option<&str> {
        self.task.header.name()
    }
}

/// A cloneable handle that cancels a task (from
/// [`JoinHandle::cancel_handle`]): the same cancellation as
/// [`JoinHandle::cancel`], without the right to join.
///
/// [`cancel`](CancelHandle::cancel) may be called any number of times, from
/// anywhere on the loop's thread: from another task, from outside the loop
/// between runs, from the task itself (which is then unwound at its next
/// wait), and from a destructor that runs while some task, this one
/// included, is being cancelled. On a finished task, or once its loop is
/// gone, it does nothing. The handle holds the task weakly: it keeps
/// neither the task nor its result alive.
#[derive(Clone)]
pub struct CancelHandle {
    task: Weak<Task<dyn TaskBody>>,
    id: u64,
}

impl CancelHandle {
    /// Cancels the task, as [`JoinHandle::cancel`] does; no effect if it
    /// is finished (or already cancelled).
    pub fn cancel(&self) {
        if let Some(task) = self.task.upgrade()
            && let Some(core) = task.header.core.upgrade()
        {
            core.cancel(&task);
        }
    }

    /// True once the task has returned, panicked or been cancelled (or its
    /// loop is gone).
    pub fn is_finished(&self) -> bool {
        self.task.upgrade().is_none_or(|t| t.header.is_done())
    }

    /// The task's id, unique within its loop.
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl fmt::Debug for CancelHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelHandle")
            .field("id", &self.id)
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// On unwinding out of a `join_deadline` (cancelled, or a
/// [`timeout`](super::timeout()) expired): takes the joiner's entry out of
/// the target's slot, so the target does not keep the joiner alive.
struct LeaveJoin<'a> {
    target: &'a Header,
    me: *const (),
}

impl Drop for LeaveJoin<'_> {
    fn drop(&mut self) {
        drop(self.target.remove_task_waiter(self.me));
    }
}

impl<T> JoinHandle<T> {
    /// Gives up the handle's reference once its result was taken: what
    /// its drop does, without the detaching and the look for a panic to
    /// report, which a taken result makes moot.
    #[inline]
    fn release(self) {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped, so `task` is taken once.
        let task = unsafe { ManuallyDrop::take(&mut this.task) };
        release(task);
    }
}

/// Drops a handle's reference to `task`; if it is the last one and the
/// task's loop is running on this thread, the loop keeps its memory.
#[inline]
fn release(task: TaskRef) {
    let current = CURRENT_CORE.with(Cell::get);
    if Rc::strong_count(&task) == 1 && ptr::eq(current, task.header.core.as_ptr()) {
        let h = ThinTask::new(task).into_raw();
        // SAFETY: CURRENT_CORE points at a live core while it is set (see
        // `Enter`): the common case, a handle joined or dropped by a task
        // of the same loop. `h` is a live task's header, whose vtable was
        // made for its type, and `recycle` takes the count it stands for.
        unsafe { (h.as_ref().vtable.recycle)(h, &*current) };
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        let h = &self.task.header;
        h.detached.set(true);
        if h.result_ready()
            && let Some(p) = self.cell().take_panic()
            && let Some(core) = h.core.upgrade()
        {
            core.report_panic(p);
        }
        if !h.is_done() && h.may_have_waiters() {
            drop_polled_waiters(h);
        }
        // SAFETY: `task` is not used after this.
        release(unsafe { ManuallyDrop::take(&mut self.task) });
    }
}

/// Drops what polls of a handle that is going filed with its unfinished
/// task (see [`Header::take_polled_waiters`]); a waker's drop is user code,
/// reported like a detached task's panic.
#[cold]
#[inline(never)]
fn drop_polled_waiters(h: &Header) {
    let polled = h.take_polled_waiters();
    if polled.is_empty() {
        return;
    }
    match h.core.upgrade() {
        Some(core) => core.drop_reporting(polled),
        None => drop_quietly(polled),
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.task.header.is_done() {
            return Poll::Ready(self.take_result());
        }
        let header = &self.task.header;
        let local = (header.core.upgrade()).and_then(|core| local_key(cx.waker(), &core.remote));
        let waiter = match local {
            Some((index, id)) => Waiter::Local(index, id),
            None => match task_key(cx.waker()) {
                // A task of another loop: by key, see `Waiter::Remote`.
                Some((remote, key)) => Waiter::Remote(remote, key),
                None => Waiter::Waker(cx.waker().clone()),
            },
        };
        drop(header.add_waiter(waiter));
        Poll::Pending
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.id())
            .field("name", &self.name())
            .field("finished", &self.is_finished())
            .finish()
    }
}
