//! Time limits on any waiting code in a stackful task: [`timeout`] and
//! [`timeout_at`]. The deadline lives in the task's context; every park
//! inside the closure also waits for it, and a park past it unwinds back
//! to the `timeout` that set it (see `context.rs`).

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::time::{Duration, Instant};

use super::context::{ElapsedUnwind, running_stackful};
use super::error::Elapsed;
use super::timer::deadline_after;

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
/// A wait cut short leaves what it waited on as a cancelled task's wait
/// would: a channel's message stays in the channel (a wake-up meant for
/// this task goes to the next waiter), a socket's data stays in the
/// socket, and a [`JoinHandle`](super::JoinHandle) moved into `f` is
/// dropped, which detaches its task.
///
/// Code inside `f` that catches panics (with std's or cogen's
/// `catch_unwind`) should re-raise what it did not expect: a caught
/// expiry lets that code run on until its next wait, which unwinds again.
/// A destructor that waits while `f` unwinds waits normally, without the
/// deadline (as does any wait while the thread is panicking). std counts
/// panics per thread, not per task: while any task of the loop is parked
/// in a destructor that waits during an unwinding (a panic, a
/// cancellation, a `timeout` of its own), the thread is panicking for
/// every task, and their waits ignore their deadlines until that task has
/// finished unwinding.
///
/// # Panics
/// Outside a stackful task; re-raises a panic of `f`.
#[track_caller]
pub fn timeout<T>(duration: Duration, f: impl FnOnce() -> T) -> Result<T, Elapsed> {
    timeout_at(deadline_after(duration), f)
}

/// [`timeout`] with a deadline instead of a duration.
///
/// # Panics
/// Outside a stackful task; re-raises a panic of `f`.
#[track_caller]
pub fn timeout_at<T>(deadline: Instant, f: impl FnOnce() -> T) -> Result<T, Elapsed> {
    let (_, cx) = running_stackful("timeout");
    let scope = next_scope();
    let outer = cx.deadline.get();
    let effective = match outer {
        Some((at, outer_scope)) if at <= deadline => (at, outer_scope),
        _ => (deadline, scope),
    };
    cx.deadline.set(Some(effective));
    // Every way out goes through here (all unwinding is caught, and what is
    // not ours re-raised), which puts the outer scope's deadline back. If
    // that deadline is what expired, it unwinds on to its scope; waits in
    // destructors meanwhile ignore it (the thread is panicking), and code
    // that catches the expiry on the way raises it again at its next wait.
    let caught = catch_unwind(AssertUnwindSafe(f));
    cx.deadline.set(outer);
    match caught {
        Ok(value) => Ok(value),
        Err(payload) => match payload.downcast::<ElapsedUnwind>() {
            Ok(elapsed) if elapsed.scope == scope => Err(Elapsed::new()),
            Ok(elapsed) => resume_unwind(elapsed),
            Err(payload) => resume_unwind(payload),
        },
    }
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
