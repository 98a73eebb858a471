//! A stackful task waiting for something that is not a task: a `Future`
//! ([`wait_for`]) or a blocking closure on a thread pool ([`unblock`]).

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll};

use super::context::{current_core, park, running_stackful, set_wait_depth, yield_in_wait};
use super::current::StackfulCx;
use super::remote::OwnWaker;
use super::task::{WaitReason, depth_bit};

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
    let depth = stackful.waits.get().saturating_add(1);
    let _depth = Depth::enter(stackful, depth);
    let bit = depth_bit(depth);
    let mut waker = OwnWaker::new(&current_core(what).remote, &task.header, depth);
    task.header.take_notified(bit);
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
            waker = OwnWaker::new(remote, &task.header, depth);
        } else if task.header.take_notified(bit) {
            // Woken during the poll: poll again after the tasks queued
            // now, as a yield.
            yield_in_wait(what);
        } else {
            let _shown = ShowWaker::new(stackful, &waker);
            park(what, reason, |_, _, _| {});
        }
        // A wake-up from now on is for the next poll.
        running_stackful(what).0.header.take_notified(bit);
    }
}

/// Counts the `wait_for` frames whose polls run in one another on the
/// running task's stacks (`StackfulCx::waits`), and puts the count back
/// when the frame is left. Not a reference to the task: a poll may suspend
/// a coroutine with the frame in it, to be resumed by another task or
/// after this one is gone, so the count left is the running task's. A
/// count gone wrong that way costs only a shared bit (a future polled once
/// more than needed, or a wake-up seen by a poll around it).
struct Depth(u8);

impl Depth {
    fn enter(cx: &StackfulCx, depth: u8) -> Depth {
        cx.waits.set(depth);
        Depth(depth)
    }
}

impl Drop for Depth {
    fn drop(&mut self) {
        set_wait_depth(self.0 - 1);
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
