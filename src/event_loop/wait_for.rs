//! A stackful task waiting for something that is not a task: a `Future`
//! ([`wait_for`]) or a blocking closure on a thread pool ([`unblock`]).

use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll};

use super::context::{current_core, mark_notified, park, running_stackful, yield_in_wait};
use super::current::StackfulCx;
use super::remote::OwnWaker;
use super::task::WaitReason;

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
    let (task, _) = running_stackful(what);
    let mut waker = OwnWaker::new(&current_core(what).remote, &task.header);
    let kept = KeepNotified {
        outer: task.header.notified.replace(false),
        seen: Cell::new(false),
    };
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
            // waker that wakes this one (and, not knowing what the first
            // task's waker was told meanwhile, tell the enclosing frame).
            waker = OwnWaker::new(remote, &task.header);
            kept.seen.set(true);
        } else if task.header.notified.replace(false) {
            // Woken during the poll: poll again after the tasks queued
            // now, as a yield.
            kept.seen.set(true);
            yield_in_wait(what);
        } else {
            let _shown = ShowWaker::new(stackful, &waker);
            park(what, reason, |_, _, _| {});
        }
        // Cleared for the next poll; what came meanwhile (the park's own
        // wake-up, or another key's) is kept for the enclosing frame.
        if running_stackful(what).0.header.notified.replace(false) {
            kept.seen.set(true);
        }
    }
}

/// The [`notified`](super::task::Header::notified) bit across a
/// `wait_for` frame. A `wait_for` may run inside the poll of another's
/// future (a future that waits in its `poll`), whose key may then be woken
/// while this frame polls or parks: this frame cannot tell that wake-up
/// from its own, so it polls its own future again and, once it is left
/// (returning or unwinding), sets the bit for the enclosing frame too, with
/// the bit that frame had set before this one began. At worst an enclosing
/// future is polled once more than needed; no wake-up is lost.
struct KeepNotified {
    outer: bool,
    seen: Cell<bool>,
}

impl Drop for KeepNotified {
    fn drop(&mut self) {
        if self.outer || self.seen.get() {
            mark_notified();
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
