//! Time limits on any waiting code in a stackful task: [`timeout`] and
//! [`timeout_at`]. Each live time limit is an entry in a per-thread list,
//! with the stack its `timeout_at` frame is on; a park obeys the entries
//! whose stack is on the chain it waits from (the limits whose closure it
//! is inside), and a park past a deadline unwinds back to the `timeout`
//! that set it (see `context.rs`).
//!
//! Why per stack, not per task: a coroutine resumed inside a task (a
//! generator, a pipeline stage) may enter a `timeout` and suspend from
//! inside its closure. Its time limit then belongs to its own suspended
//! frames, not to the task, whose later waits must not obey it (nothing on
//! the task's stack would catch the expiry); and it applies again, wherever
//! the coroutine is resumed, when the coroutine waits inside the closure.

use std::cell::{Cell, RefCell};
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::time::{Duration, Instant};

use super::context::{ElapsedUnwind, being_cancelled, running_stackful};
use super::current::CURRENT_CX;
use super::error::Elapsed;
use super::timer::deadline_after;
use crate::coroutine::{StackId, chain, stack_of};

/// Runs `f` in the running stackful task, giving up once it has waited
/// past `duration` from now: then `f` is unwound (every destructor on
/// its stack runs, as in a cancellation) and the result is [`Elapsed`].
///
/// Any wait inside `f`, at any depth — a socket, a channel, a join, a
/// sleep, a future — is cut short at the deadline; code that does not
/// wait is not interrupted (nothing can preempt a task; `yield_now` is not
/// a wait), so `f` may finish past the deadline and still return `Ok`.
///
/// ```
/// use cogen::event_loop::{EventLoop, channel, timeout};
/// use std::time::Duration;
///
/// let ev = EventLoop::new();
/// let got = ev
///     .block_on(|| {
///         let (_tx, rx) = channel::<u32>(1); // nobody sends
///         timeout(Duration::from_millis(10), || rx.recv())
///     })
///     .unwrap();
/// assert!(got.is_err()); // Elapsed
/// ```
///
/// Time limits nest: an inner `timeout` cannot extend an outer one, and
/// the outer one's deadline unwinds through the inner `timeout` to its
/// own.
///
/// A limit binds the waits made inside `f`, and only those. A coroutine
/// resumed in the task (a generator, a pipeline stage) that suspends from
/// inside `f` takes the limit with it: the task's waits meanwhile do not
/// obey it, and the coroutine's waits inside `f` do again once it is
/// resumed, from whichever task. Waits inside such a coroutine also obey
/// the limits of the code that resumed it.
///
/// A wait cut short leaves what it waited on as a cancelled task's wait
/// would: a channel's message stays in the channel (a wake-up meant for
/// this task goes to the next waiter), a socket's data stays in the
/// socket, and a [`JoinHandle`](super::JoinHandle) moved into `f` is
/// dropped, which detaches its task.
///
/// Code inside `f` that catches panics (with std's or cogen's
/// `catch_unwind`) should re-raise what it did not expect: a caught
/// expiry lets that code run on until its next wait, which unwinds again.
/// Re-raised only after `timeout` has returned, the expiry has no scope
/// left to end at: it ends its task as a panic that says so.
/// A destructor that waits while `f` unwinds waits normally, without the
/// deadline (as does any wait while the thread is panicking). std counts
/// panics per thread, not per task: while any task of the loop is parked
/// in a destructor that waits during an unwinding (a panic, a
/// cancellation, a `timeout` of its own), or any coroutine is suspended
/// in one, the thread is panicking for every task, and their waits ignore
/// their deadlines until that unwinding has finished (for good, if that
/// coroutine is leaked). Such a task should not be cancelled meanwhile:
/// its cancellation would unwind from inside a destructor that runs
/// during an unwinding, which Rust turns into an abort of the process.
///
/// The stacks a limit applies across are read off the running coroutines
/// (see [`running`](crate::running)), which works across cogen's
/// coroutines only. So `timeout` panics on a stack of another library (a
/// raw `corosensei` coroutine resumed in a task); a wait on such a stack,
/// or behind one, obeys the limits set on the cogen stacks from it down to
/// that other stack and on the task's own stack, not one set on a cogen
/// coroutine between the task's stack and the other library's.
///
/// In a destructor that a task's cancellation runs, where nothing can
/// wait, `f` just runs.
///
/// # Panics
/// Outside a stackful task, and on a stack that is not a cogen
/// coroutine's; re-raises a panic of `f`.
#[track_caller]
pub fn timeout<T>(duration: Duration, f: impl FnOnce() -> T) -> Result<T, Elapsed> {
    timeout_at(deadline_after(duration), f)
}

/// [`timeout`] with a deadline instead of a duration.
///
/// # Panics
/// As [`timeout`].
#[track_caller]
pub fn timeout_at<T>(deadline: Instant, f: impl FnOnce() -> T) -> Result<T, Elapsed> {
    if being_cancelled() {
        // In a destructor of a task being cancelled: `f` cannot wait, so
        // there is nothing to limit (and a panic here, during the
        // cancellation's unwinding, would abort the process).
        return Ok(f());
    }
    running_stackful("timeout");
    let Some(stack) = chain().next() else {
        panic_on_foreign_stack();
    };
    let scope = next_scope();
    let limit = Limit {
        at: deadline,
        scope,
        stack,
    };
    LIMITS.with(|limits| {
        let mut limits = limits.borrow_mut();
        limits.push(limit);
        LIVE.set(limits.len());
    });
    // Every way out goes through here (all unwinding is caught, and what is
    // not ours re-raised), which takes the limit out again. If an outer
    // limit is what expired, it unwinds on to its scope; waits in
    // destructors meanwhile ignore it (the thread is panicking), and code
    // that catches the expiry on the way raises it again at its next wait.
    let marks = crate::pipeline::marks_now();
    let caught = catch_unwind(AssertUnwindSafe(f));
    LIMITS.with(|limits| {
        let mut limits = limits.borrow_mut();
        limits.retain(|l| l.scope != scope);
        LIVE.set(limits.len());
        if limits.is_empty() {
            // Nothing is left for the thread's end to free.
            *limits = Vec::new();
        }
    });
    match caught {
        Ok(value) => Ok(value),
        Err(payload) => match payload.downcast::<ElapsedUnwind>() {
            Ok(elapsed) if elapsed.scope == scope => {
                // The expiry's unwinding ends here: inline chains' marks it
                // left on its way are stale.
                crate::pipeline::forget_marks_since(marks, stack);
                Err(Elapsed::new())
            }
            Ok(elapsed) => resume_unwind(elapsed),
            Err(payload) => resume_unwind(payload),
        },
    }
}

/// A live time limit: its deadline, the number of its `timeout` scope, and
/// the stack that scope's `timeout_at` frame is on.
#[derive(Clone, Copy)]
struct Limit {
    at: Instant,
    scope: u64,
    stack: StackId,
}

/// `timeout` called on a stack that is not a cogen coroutine's: where its
/// frame is could not be told from a wait's chain of stacks.
#[cold]
#[track_caller]
fn panic_on_foreign_stack() -> ! {
    panic!(
        "cogen::event_loop::timeout called on a stack that is not a cogen coroutine's (a \
         coroutine of another library resumed in a task): call it outside that coroutine, or \
         run the code in a cogen Coroutine"
    )
}

thread_local! {
    /// Every live time limit of this thread, oldest first. Each is taken
    /// out when its `timeout_at` returns or unwinds, so an entry's stack
    /// is a live coroutine's (or a leaked one's, whose stack is never
    /// reused), and the list is as long as the scopes alive.
    ///
    /// Without a destructor, so that it is there for every thread-local's
    /// destructor (a loop kept in one cancels its tasks, which leave their
    /// `timeout`s); its buffer is freed whenever it empties, so only a
    /// thread that ends inside a `timeout` (a leaked coroutine's) leaves it.
    static LIMITS: ManuallyDrop<RefCell<Vec<Limit>>> =
        const { ManuallyDrop::new(RefCell::new(Vec::new())) };
    /// The length of `LIMITS`, kept beside it: the waits' fast path reads
    /// only this, with no borrow of the list.
    static LIVE: Cell<usize> = const { Cell::new(0) };
}

/// The deadline a wait made here must also wait for, and its scope: the
/// earliest of the limits whose `timeout_at` frame is on the chain of
/// stacks this code runs on (the oldest of those, if several are
/// earliest), so an inner limit never extends an outer one.
///
/// The chain is walked from the running stack down to the task's own,
/// across cogen coroutines' stacks only (a stack of another library ends
/// the walk early); the task's own stack is on it wherever the walk ends.
/// So a limit applies if its stack was walked or is the task's own. One
/// set below the task's stack (around code that drives the loop) does not
/// apply to the loop's tasks. Not seen
/// from beyond another library's stack: a limit set on a cogen coroutine
/// between the task's stack and that one.
#[inline]
pub(crate) fn current_limit() -> Option<(Instant, u64)> {
    if LIVE.get() == 0 {
        return None;
    }
    limit_on_chain()
}

#[inline(never)]
fn limit_on_chain() -> Option<(Instant, u64)> {
    let cx = CURRENT_CX.with(Cell::get);
    // SAFETY: a park calls this with the running stackful task's context
    // set, which stays valid while its coroutine runs.
    let yielder = unsafe { cx.as_ref() }.map_or(0, |cx| cx.yielder.get() as usize);
    // The task's own stack: its yielder is a word on it.
    let root = stack_of(yielder);
    LIMITS.with(|limits| {
        let limits = limits.borrow();
        // One walk of the chain; the task's own stack once more, for a walk
        // that a stack of another library ended before it. Earliest first,
        // then oldest (scope numbers grow).
        up_to(root)
            .chain(root)
            .flat_map(|stack| limits.iter().filter(move |l| l.stack == stack))
            .map(|l| (l.at, l.scope))
            .min()
    })
}

/// The chain of stacks walked from the running one down to `root`, the
/// task's own stack, and not below it: a stack below is outside the loop
/// (a coroutine that drives it), and a limit there must not unwind a task
/// and the loop's `run` to reach its scope.
fn up_to(root: Option<StackId>) -> impl Iterator<Item = StackId> {
    let mut done = false;
    chain().take_while(move |&stack| {
        let take = !done;
        done = done || Some(stack) == root;
        take
    })
}

/// A new id for a `timeout` scope (unique on this thread, which is all a
/// task ever runs on).
fn next_scope() -> u64 {
    thread_local! {
        static NEXT: Cell<u64> = const { Cell::new(0) };
    }
    NEXT.with(|n| {
        let id = n.get();
        n.set(id + 1);
        id
    })
}
