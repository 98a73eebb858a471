//! A stackful task waiting for something that is not a task: a `Future`
//! ([`wait_for`]) or a blocking closure on a thread pool ([`unblock`]).

use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll};

use super::context::{
    current_core, current_task_addr, current_task_id, mark_notified, park, running_stackful,
    set_wait_depth, yield_in_wait,
};
use super::current::StackfulCx;
use super::remote::OwnWaker;
use super::task::{Header, WaitReason, depth_bit};

/// Waits inside a stackful task for `future` to complete, while the other
/// tasks run; wake-ups may come from any thread.
///
/// (To run a whole loop until a closure returns, from outside any task, use
/// [`EventLoop::block_on`](super::EventLoop::block_on).)
///
/// ```
/// use cogen::event_loop::{EventLoop, wait_for};
///
/// let ev = EventLoop::new();
/// let n = ev
///     .block_on(|| {
///         let (send, answer) = oneshot();
///         std::thread::spawn(move || send(42)); // wakes the task from another thread
///         wait_for(answer)
///     })
///     .unwrap();
/// assert_eq!(n, 42);
/// # // A minimal one-shot future, to keep the example free of other crates.
/// # fn oneshot() -> (impl FnOnce(u32) + Send, impl std::future::Future<Output = u32>) {
/// #     use std::sync::{Arc, Mutex};
/// #     use std::task::{Poll, Waker};
/// #     let cell: Arc<Mutex<(Option<u32>, Option<Waker>)>> = Arc::default();
/// #     let tx = cell.clone();
/// #     let send = move |v| {
/// #         let mut c = tx.lock().unwrap();
/// #         c.0 = Some(v);
/// #         if let Some(w) = c.1.take() { w.wake() }
/// #     };
/// #     let recv = std::future::poll_fn(move |cx| {
/// #         let mut c = cell.lock().unwrap();
/// #         match c.0.take() {
/// #             Some(v) => Poll::Ready(v),
/// #             None => { c.1 = Some(cx.waker().clone()); Poll::Pending }
/// #         }
/// #     });
/// #     (send, recv)
/// # }
/// ```
///
/// # Panics
/// Outside a stackful task.
#[track_caller]
pub fn wait_for<F: Future>(future: F) -> F::Output {
    wait_for_as(future, WaitReason::Future, "wait_for")
}

/// [`wait_for`], parking for `reason` and naming `what` in its panics.
///
/// Nothing of the running task is held across a `poll`: the future's code
/// may suspend a coroutine nested in the task (through that coroutine's
/// own yielder) with this frame on its stack, and that coroutine may be
/// resumed later by another task, or after its first task and loop are
/// gone. So the task is looked up again after each poll, its waker made
/// anew when the task is another one (and the future polled again with
/// it), and the waker is shown to the loop only while the task is parked
/// here, when the whole chain of stacks is suspended with it.
#[track_caller]
pub(crate) fn wait_for_as<F: Future>(future: F, reason: WaitReason, what: &str) -> F::Output {
    let mut future = pin!(future);
    let (task, stackful) = running_stackful(what);
    // One deeper than the `wait_for` whose poll this runs in, if any: its
    // waker's keys mark only this frame's bit (see `Header::notified`).
    let frame = Frame::enter(stackful, stackful.waits.get().saturating_add(1));
    let mut waker = OwnWaker::new(&current_core(what).remote, &task.header, frame.depth);
    frame.take(&task.header);
    loop {
        if let Poll::Ready(value) = future
            .as_mut()
            .poll(&mut Context::from_waker(waker.waker()))
        {
            return value;
        }
        let (task, stackful) = running_stackful(what);
        let remote = &current_core(what).remote;
        if !waker.wakes(remote, &task.header) {
            // The poll suspended a coroutine that another task (of this
            // loop or a later one) has resumed since: poll again, with a
            // waker that wakes this one.
            waker = OwnWaker::new(remote, &task.header, frame.depth);
            frame.moved.set(true);
        } else if frame.take(&task.header) {
            // Woken during the poll: poll again after the tasks queued
            // now, as a yield.
            yield_in_wait(what);
        } else {
            let _shown = ShowWaker::new(stackful, &waker);
            park(what, reason, |_, _, _| {});
        }
        // A wake-up from now on is for the next poll.
        frame.take(&running_stackful(what).0.header);
    }
}

/// A `wait_for` frame's place among the frames whose polls run in one
/// another on the running task's stacks: its depth (one more than the
/// count in `StackfulCx::waits` when it began), and what to put back when
/// it is left, returning or unwinding.
///
/// Not a reference to the task: a poll may suspend a coroutine with the
/// frame in it, to be resumed by another task or after this one is gone.
/// So the count is put back only if the frame ends in the task it began
/// in (`moved` is set once it is found in another). A frame whose bit it
/// may share with the frame around it (depth 8 and more share bit 7), or
/// that moved to another task, gives back the wake-ups it took when it is
/// left: they may have been that frame's. At worst a future is then polled
/// once more than needed; no wake-up is lost.
struct Frame {
    depth: u8,
    /// The task it began in, by address and id (a task's memory may be
    /// another task's later).
    task: (*const (), Option<u64>),
    moved: Cell<bool>,
    took: Cell<bool>,
}

impl Frame {
    fn enter(cx: &StackfulCx, depth: u8) -> Frame {
        cx.waits.set(depth);
        Frame {
            depth,
            task: (current_task_addr(), current_task_id()),
            moved: Cell::new(false),
            took: Cell::new(false),
        }
    }

    /// Takes this frame's bit of `header`'s notified mask: true if it was
    /// set.
    fn take(&self, header: &Header) -> bool {
        let took = header.take_notified(depth_bit(self.depth));
        if took {
            self.took.set(true);
        }
        took
    }
}

impl Drop for Frame {
    fn drop(&mut self) {
        let moved = self.moved.get() || (current_task_addr(), current_task_id()) != self.task;
        if !moved {
            set_wait_depth(self.depth - 1);
        }
        let shared = depth_bit(self.depth) == depth_bit(self.depth - 1);
        if self.took.get() && (shared || moved) {
            mark_notified(depth_bit(self.depth));
        }
    }
}

/// Lets the loop see the waker of a `wait_for` (through the task's
/// context) while the task is parked in it, and hides it again on the way
/// out, unwinding included. Only around a park: then the task's whole
/// chain of stacks is suspended with it, and nothing can take this frame
/// elsewhere; a poll may.
struct ShowWaker<'a> {
    cx: &'a StackfulCx,
}

impl<'a> ShowWaker<'a> {
    fn new(cx: &'a StackfulCx, waker: &OwnWaker) -> Self {
        cx.waker.set(waker);
        ShowWaker { cx }
    }
}

impl Drop for ShowWaker<'_> {
    fn drop(&mut self) {
        self.cx.waker.set(std::ptr::null());
    }
}

/// Runs a blocking closure on a thread pool (the `blocking` crate's) while
/// the running stackful task parks, and returns its value: for any call
/// that would block the loop's thread (a system call, a C library,
/// a long computation). [`fs`](super::fs) is built on it.
///
/// ```
/// use cogen::event_loop::{EventLoop, unblock};
///
/// let ev = EventLoop::new();
/// let n = ev.block_on(|| unblock(|| 6 * 7)).unwrap();
/// assert_eq!(n, 42);
/// ```
///
/// A wait cut short (a [`timeout`](super::timeout()) that expires, a
/// cancellation) gives the closure up: one the pool has not started yet
/// never runs, and one it has started runs to its end, its value dropped.
/// Which of the two happened, the caller cannot tell: the same holds for
/// the one-shot calls of [`fs`](super::fs) (`fs::write`, `fs::remove_file`,
/// ...), so give a time limit to work that may run or not, or check
/// afterwards.
///
/// # Panics
/// Outside a stackful task; re-raises a panic of `f`.
#[cfg(feature = "blocking")]
#[track_caller]
pub fn unblock<T, F>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    wait_for_as(blocking::unblock(f), WaitReason::Blocking, "unblock")
}
