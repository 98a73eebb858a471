//! A single-threaded, round-robin event loop of stackful tasks.
//!
//! The tutorial's event loop is a queue of coroutines that busy-spins,
//! loses errors, and whose `await` resumes a fixed number of times. This
//! module is the real thing: code that reads sequentially — `sleep`, `join`,
//! `send`, `recv`, reading a file — parks its task instead of blocking, and
//! the other tasks run meanwhile.
//!
//! # What is a task?
//!
//! A task is a closure running on its own pooled stack: a cogen
//! [`Coroutine`](crate::Coroutine) driven by an [`EventLoop`]. Because it has
//! a stack, it can wait from any depth of its call stack, through plain
//! function calls — no `async` colouring:
//!
//! ```
//! use cogen::event_loop::{EventLoop, channel, sleep, spawn, yield_now};
//! use std::time::Duration;
//!
//! fn produce(tx: &cogen::event_loop::Sender<u32>) {
//!     for i in 0..3 {
//!         tx.send(i).unwrap(); // parks while the channel is full
//!         yield_now();         // lets the others run
//!     }
//! }
//!
//! let ev = EventLoop::new();
//! let total = ev
//!     .block_on(|| {
//!         let (tx, rx) = channel(1);
//!         let producer = spawn(move || produce(&tx));
//!         let consumer = spawn(move || rx.iter().sum::<u32>());
//!         sleep(Duration::from_millis(1));
//!         producer.join().unwrap();
//!         consumer.join().unwrap()
//!     })
//!     .unwrap();
//! assert_eq!(total, 3);
//! ```
//!
//! | need | stackful task | future task | stackless task (`nightly`) |
//! |---|---|---|---|
//! | spawn | [`EventLoop::spawn`], [`spawn`] | [`EventLoop::spawn_future`], [`spawn_future`] | `EventLoop::spawn_stackless`, `spawn_stackless` |
//! | let others run | [`yield_now()`] | `.await` on any yielding future | `yield Wait::yield_now()` |
//! | sleep | [`sleep`], [`sleep_until`] | — | `yield Wait::sleep(d)` |
//! | join | [`JoinHandle::join`] | `handle.await` | `yield Wait::join(&h)`, then [`JoinHandle::try_join`] |
//! | channels | [`Sender::send`], [`Receiver::recv`] | `try_` forms | `yield Wait::recv(&rx)`, then `try_recv` |
//! | any `Future` | [`wait_for`] | `.await` | — |
//! | a time limit on waiting | [`timeout`] | — | — |
//! | blocking calls, files | [`unblock`], [`fs`] (feature `blocking`) | — | — |
//! | sockets | [`net`] (feature `net`) | `AsyncRead` / `AsyncWrite`, `accept_async`, `poll_` forms | `yield Wait::readable(&s)?` / `Wait::writable`, then `try_read`, `try_write`, `try_accept`, … |
//! | memory per parked task | one touched stack page plus the task | the future plus the task | the coroutine's state plus the task |
//!
//! "The task" is one allocation of a 48-byte header (checked at compile time)
//! plus reference counts and the result; `docs/BENCHMARKS.md` has the
//! resident memory measured per parked task of each kind at scale.
//!
//! # Scheduling and fairness
//!
//! **Guarantee.** The run queue is first-in, first-out: a task that becomes
//! runnable (spawned, woken, or yielding) goes to the back, and the loop
//! always runs the task at the front. So if task A became runnable before
//! task B, A runs before B; with `n` runnable tasks, a task that yields runs
//! again after each of the other `n - 1` has run once. No task can starve
//! another by yielding.
//!
//! Timers and wake-ups from other threads are taken at the end of each
//! *round* (a round runs the tasks that were queued when it began), and
//! their tasks join the back of the queue; so a task whose timer has expired
//! runs at most one round (plus the rest of the current one) late.
//!
//! Sockets that became ready ([`net`]) are taken at the end of a round
//! in which a task yielded ([`yield_now`], `Wait::yield_now`), at the end
//! of a round once at least 61 task steps have run since they were last
//! taken (as tokio's runtime checks its I/O driver every 61 ticks), and
//! whenever no task is runnable; their tasks join the back of the queue.
//! So a task whose socket became ready runs at most 61 steps or one round
//! late, whichever is longer, plus the rest of the current round; and a
//! task that yields runs again only after the tasks whose sockets were
//! ready when it yielded.
//!
//! **Current behaviour, not guaranteed.** The clock is read once per round
//! and only while a timer exists; wake-ups from other threads are checked
//! with one relaxed atomic load per round; the readiness poller is asked
//! as above, only while a task waits on a socket. Idle, the thread
//! sleeps in `thread::park_timeout`, or in the poller once a socket has
//! had to wait, until the next timer, an outside wake-up or a ready
//! socket: it never spins.
//!
//! Scheduling is cooperative. A task that never waits keeps the thread;
//! the optional [watchdog](EventLoopBuilder::watchdog) names such a task,
//! but cannot preempt it.
//!
//! # Errors
//!
//! * A task that panics does not stop the loop: its [`JoinHandle::join`]
//!   returns a [`JoinError`] with the payload ([`JoinError::is_panic`],
//!   [`JoinError::into_panic`]). A panic nobody will read (detached task,
//!   or a handle dropped unjoined) is collected and returned by
//!   [`EventLoop::run`], or re-raised at once with [`PanicPolicy::Propagate`].
//! * **Deadlock.** When no task is runnable, no timer is pending and no
//!   task waits on something an outside wake-up could deliver, yet tasks
//!   remain, `run` (or `block_on`) returns a [`RunError`] naming the stuck
//!   tasks and what each waits for, instead of hanging. A task waiting on a
//!   future (a future task, [`wait_for`], [`unblock`]) counts as wakeable
//!   from outside only while a clone of its waker exists outside the loop
//!   (another thread, the blocking pool, a reactor): the loop's wakers count
//!   their clones, and when the last one is dropped without waking, an idle
//!   loop looks again and reports the deadlock. A future awaiting another
//!   task's [`JoinHandle`] in the same loop is a join, not an outside wait.
//!   A task waiting on a socket ([`net`]) always counts as wakeable: its
//!   peer can end the wait.
//! * **Faults in user code.** A panic in a task's body, in a future's
//!   destructor, or in the destructor of a detached task's result is caught
//!   and reported (in the [`JoinError`], or by `run` as an unobserved
//!   panic); it never leaves the loop or the thread unusable. A panic in a
//!   user [`Waker`](std::task::Waker) that a finishing task wakes reaches
//!   the caller of `run`; the loop stays usable. A destructor that panics
//!   while a suspended stack is being unwound (a cancellation) aborts the
//!   process, as it would on a thread.
//! * Functions that wait ([`yield_now`], [`sleep`], [`JoinHandle::join`] on an
//!   unfinished task, `send` on a full or `recv` on an empty channel,
//!   [`wait_for`], [`unblock`], [`fs`], [`timeout`], a socket's accept, connect, read,
//!   write, send and receive in [`net`]) panic with a message that says so
//!   when called outside a stackful task (or from a coroutine nested
//!   inside one) — they could never return there. Non-waiting forms
//!   (`try_send`, `try_recv`, `try_join`, joining a finished task) work
//!   anywhere.
//!
//! # Cancellation and drop
//!
//! [`JoinHandle::cancel`] unwinds the task's stack at once (every destructor
//! on it runs exactly once; a task cancelling itself is unwound at its next
//! wait). Dropping a `JoinHandle` detaches the task. Dropping the
//! [`EventLoop`] cancels every unfinished task the same way. Destructors
//! that run during a cancellation must not wait.
//!
//! # Time limits
//!
//! [`timeout`] bounds how long any waiting code inside it may wait: past
//! the deadline, the wait it is in (or its next one) unwinds back to the
//! `timeout`, which returns [`Elapsed`]; destructors run as in a
//! cancellation. Sockets also have per-operation limits ([`net`]).
//!
//! # Threads
//!
//! Tasks, handles and channels are `!Send`: the whole loop lives on one
//! thread. Only wakers cross threads.
//!
//! ```compile_fail
//! fn assert_send<T: Send>(_: T) {}
//! let ev = cogen::event_loop::EventLoop::new();
//! assert_send(ev.spawn(|| ()));
//! ```

// Layers, bottom to top (each file uses only the ones above it; `task`
// names `core::Core` as a type only, for its back-reference):
// task; run_queue, timer, remote, watchdog, error; reactor; current (names
// Core as a type only); core; context; join, channel, sleep, wait_for,
// timeout; kind/*; stackless (docs), fs, net/* (source; stream; listener,
// udp); runtime; task_builder.
mod channel;
mod context;
mod core;
mod current;
mod error;
#[cfg(feature = "blocking")]
pub mod fs;
mod join;
mod kind;
#[cfg(feature = "net")]
pub mod net;
mod reactor;
mod remote;
mod run_queue;
mod runtime;
mod sleep;
#[cfg(cogen_nightly)]
pub mod stackless;
mod task;
mod task_builder;
mod timeout;
mod timer;
mod wait_for;
pub mod watchdog;

pub use channel::{IntoIter, Iter, Receiver, Sender, TryIter, channel};
pub use context::{current_task_id, yield_now};
pub use core::PanicPolicy;
pub use error::{
    Elapsed, JoinError, RecvError, RunError, SendError, StuckTask, TryRecvError, TrySendError,
    WaitingOn,
};
pub use join::JoinHandle;
#[cfg(cogen_nightly)]
pub use runtime::spawn_stackless;
pub use runtime::{EventLoop, EventLoopBuilder, spawn, spawn_future};
pub use sleep::{sleep, sleep_until};
#[cfg(cogen_nightly)]
pub use stackless::Wait;
pub use task_builder::TaskBuilder;
pub use timeout::{timeout, timeout_at};
#[cfg(feature = "blocking")]
pub use wait_for::unblock;
pub use wait_for::wait_for;
pub use watchdog::WatchdogReport;
