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
//! | the first of several channel operations | [`Select`] | — | — |
//! | any `Future` | [`wait_for`] | `.await` | — |
//! | a time limit on waiting | [`timeout`]; [`Receiver::recv_timeout`], [`Sender::send_timeout`], [`JoinHandle::join_timeout`], [`Select::timeout`] | — | — |
//! | cancel a task | [`JoinHandle::cancel`], [`CancelHandle::cancel`] | the same | the same |
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
//! runs at most one round (plus the rest of the current one) late. Timers
//! that have expired together wake their tasks in the order of their
//! deadlines, equal deadlines in the order they were set. The loop keeps
//! one timer entry per task and moves it on when it comes up, so a time
//! limit set on every wait (a socket's read limit, say) pushes a timer only
//! when the task's entry would come up too late for it.
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
//!   [`EventLoop::run`], re-raised at once with [`PanicPolicy::Propagate`],
//!   or dropped with [`PanicPolicy::Discard`] (the panic hook has printed
//!   it; a [`Runtime`]'s loops do that).
//! * **Deadlock.** When no task is runnable, no timer is pending and no
//!   task waits on something an outside wake-up could deliver, yet tasks
//!   remain, `run` (or `block_on`) returns a [`RunError`] naming the stuck
//!   tasks and what each waits for, instead of hanging. A task waiting on a
//!   future (a future task, [`wait_for`], [`unblock`]) counts as wakeable
//!   from outside only while a clone of its waker exists outside the loop
//!   (another thread, the blocking pool, a reactor): the loop's wakers count
//!   their clones, and when the last one is dropped without waking, an idle
//!   loop looks again and reports the deadlock. A future awaiting another
//!   task's [`JoinHandle`] (or [`RemoteJoinHandle`]) in the same loop is a
//!   join, not an outside wait. A [`sync_channel`] is a `Send` channel: a
//!   waiter on one counts as wakeable from outside even when both its ends
//!   are in the same loop, so a deadlock over it is not found (use
//!   [`channel`] within one loop). A task waiting on a socket ([`net`])
//!   always counts as wakeable: its peer can end the wait; so does a future
//!   task's waker filed with a socket, while that task is there (a waker
//!   that a combinator wraps around the task's own counts until the socket
//!   is ready or dropped, even after the task is gone).
//! * **Faults in user code.** A panic in a task's body, in a future's
//!   destructor, or in the destructor of a detached task's result is caught
//!   and reported (in the [`JoinError`], or by `run` as an unobserved
//!   panic); it never leaves the loop or the thread unusable. A panic in a
//!   user [`Waker`](std::task::Waker) that a finishing task wakes reaches
//!   the caller of `run`; the loop stays usable. A destructor that panics
//!   while a suspended stack is being unwound (a cancellation) aborts the
//!   process, as it would on a thread.
//! * Functions that wait ([`yield_now`], [`sleep`], [`JoinHandle::join`] on an
//!   unfinished task, `send` on a full or `recv` on an empty channel, their
//!   `_timeout` and `_deadline` forms, [`Select::wait`],
//!   [`wait_for`], [`unblock`], [`fs`], [`timeout`], a socket's accept, connect, read,
//!   write, send and receive in [`net`]) panic with a message that says so
//!   when called outside a stackful task — they could never return there.
//!   Non-waiting forms
//!   (`try_send`, `try_recv`, `try_join`, joining a finished task, a time
//!   limit of zero, a select that need not wait) work anywhere.
//! * **Timed out.** The time-limited forms of single waits return an error
//!   value, never unwind: [`RecvTimeoutError`] and [`SendTimeoutError`]
//!   (which hands the message back) tell a timeout from a closed channel,
//!   and [`JoinHandle::join_timeout`] hands the handle back, to wait again
//!   or cancel.
//!
//! # Waiting from nested coroutines
//!
//! A waiting function may be called from a coroutine nested inside a
//! stackful task, at any depth: a pipeline stage, a [`Sink`](crate::pipeline::Sink)
//! consumer, a generator, a coroutine the task resumes. It parks the whole
//! task, from the nested stack up to the task's own, in one switch (not one
//! per level), and waking the task resumes the chain where it waited. The
//! typed values the nested coroutines pass each other are unaffected: only
//! the loop's waits pass through them. So a pipeline inside a task can read
//! a channel (a [`Receiver`] is an iterator, so `pipeline::source(rx)` is a
//! source), sleep, or read a file or a socket in any stage. Fairness,
//! deadlock detection, [`timeout`] and cancellation hold across the chain:
//! cancelling the task unwinds every nested stack, each destructor once, and
//! a `timeout` around the chain ends a wait deep inside it (its unwinding
//! crosses the nested coroutines' roots, and
//! [`cogen::catch_unwind`](crate::catch_unwind) lets it pass).
//!
//! ```
//! use cogen::event_loop::{EventLoop, channel};
//! use cogen::pipeline::{PipelineExt, source};
//!
//! let ev = EventLoop::new();
//! let (tx, rx) = channel(1);
//! ev.spawn(move || (1..=4).for_each(|n| tx.send(n).unwrap()));
//! let sums = ev.spawn(move || {
//!     source(rx) // parks the task whenever the channel is empty
//!         .windowed(2, |pair: &[u32]| pair.iter().sum::<u32>()) // in pairs
//!         .collect::<Result<Vec<u32>, _>>()
//!         .unwrap()
//! });
//! ev.run().unwrap();
//! assert_eq!(sums.join().unwrap(), [3, 7]);
//! ```
//!
//! A [`Sender`] is a push sink ([`Sender::into_sink`]), and
//! [`SpawnStage::spawn_stage`] splits a pipeline in two tasks joined by a
//! bounded channel, so that an I/O-bound stretch runs ahead of the rest.
//!
//! # Cancellation and drop
//!
//! [`JoinHandle::cancel`] unwinds the task's stack at once (every destructor
//! on it runs exactly once; a task cancelling itself is unwound at its next
//! wait). [`JoinHandle::cancel_handle`] gives a [`CancelHandle`] that does
//! the same and can be cloned and handed to other tasks (a deadline, a
//! supervisor, the task itself); it holds the task weakly, cancelling a
//! finished task does nothing, and it may be called from a destructor
//! during a cancellation. Dropping a `JoinHandle` detaches the task.
//! Dropping the [`EventLoop`] cancels every unfinished task the same way.
//! Destructors that run during a cancellation cannot wait: a channel's
//! `send` or `recv` that would have to wait there fails instead (the value
//! handed back, as if the channel were closed; the timed forms time out at
//! once), and so does a socket operation of [`net`] (tried once, then an
//! `io::Error` that says so); any other wait ([`sleep`], a `join`,
//! [`Select::wait`], [`wait_for`], [`fs`]) panics, which aborts the process
//! there (the thread is unwinding). Send with `try_send`, or through a
//! channel with room, in such destructors. (An [`fs::File`] dropped there
//! hands its unwritten bytes to a thread that writes them.)
//!
//! A wait that ends without its event — cancelled, timed out, or not
//! chosen by a [`Select`] — leaves nothing behind: its task is taken out
//! of the channel's (or joined task's) wait list, and a channel's wake-up
//! it may have taken goes on to the next waiter, so no message is left
//! unseen while another receiver waits.
//!
//! # Time limits
//!
//! [`timeout`] bounds how long any waiting code inside it may wait: past
//! the deadline, the wait it is in (or its next one) unwinds back to the
//! `timeout`, which returns [`Elapsed`]; destructors run as in a
//! cancellation. Single waits also take a limit of their own, which costs
//! one timer entry and no unwinding: [`Receiver::recv_timeout`],
//! [`Sender::send_timeout`], [`JoinHandle::join_timeout`] (and their
//! `_deadline` forms), [`Select::timeout`], and sockets' per-operation
//! limits ([`net`]). A value already there is taken without reading the
//! clock.
//!
//! # Async code
//!
//! **From a stackful task, calling an async library**: [`wait_for`] awaits
//! any future in place, parking the task (from any depth) until its waker
//! is called, from any thread. A future that needs no runtime of its own
//! (most channels, `async-lock`, `futures` combinators) runs right there. A
//! future that needs a runtime's reactor or timers (an async HTTP client, a
//! `tokio::net` socket, `tokio::time`) panics or hangs outside that runtime,
//! so run it *on* that runtime, on a thread of its own, and wait for the
//! runtime's join handle, which is a plain future woken from that thread:
//!
//! ```no_run
//! # async fn fetch(_url: &str) -> String { String::new() }
//! # let tokio_handle: tokio::runtime::Handle = unimplemented!();
//! // let tokio_handle = tokio_runtime_on_its_own_thread.handle().clone();
//! let body = cogen::event_loop::wait_for(tokio_handle.spawn(fetch("http://example.com")));
//! ```
//!
//! (`tests/async_interop.rs` does this with a tokio TCP echo.) For sockets,
//! prefer [`net`]: its reads and writes park the task with no other
//! runtime.
//!
//! **From async code, calling cogen**: on the loop, a future task
//! ([`EventLoop::spawn_future`]) awaits a stackful task's [`JoinHandle`]
//! (a `Future`), and receives from a channel with
//! [`Receiver::recv_async`] or as a `futures_core::Stream` (a
//! [`Receiver`] is one); a stackful task [`join`](JoinHandle::join)s a
//! future task the same way. Async code on another runtime or thread reaches a loop
//! through a `Send` handle that spawns onto it and whose join handle is a
//! `Future`.
//!
//! # Threads
//!
//! Tasks, handles and channels are `!Send`: the whole loop lives on one
//! thread. What crosses threads:
//!
//! * wakers: a task's waker wakes it from any thread;
//! * [`LoopHandle`] ([`EventLoop::handle`]): other threads spawn `Send`
//!   closures onto the loop; each becomes a stackful task there, and its
//!   [`RemoteJoinHandle`] (`Send`, a `Future`, and a blocking
//!   [`join`](RemoteJoinHandle::join) for plain threads) gives its value
//!   back;
//! * [`sync_channel`]: a bounded MPMC channel whose ends are `Send`; a
//!   task waiting on it parks, a plain thread blocks;
//! * [`Runtime`]: one loop per thread (by default one per CPU), spawning
//!   round robin, with a shutdown that lets tasks finish until a deadline.
//!   Tasks never move between threads (a suspended stack may hold
//!   thread-locals and `!Send` values); `docs/SCALING.md` says what the
//!   loops share and what would contend with many cores. With feature
//!   `net`, [`bind_reuseport`] gives each loop its own listener on one
//!   address.
//!
//! A loop that never had a handle pays nothing for them: spawns from other
//! threads share the wake-ups' inbox, which the loop checks with one
//! relaxed atomic load per round, as before.
//!
//! ```
//! use cogen::event_loop::{EventLoop, Runtime, wait_for};
//!
//! let rt = Runtime::builder().threads(2).build().unwrap();
//! let from_runtime = rt.spawn(|| 40);
//! // A task of another loop awaits it; a plain thread could `join` it.
//! let ev = EventLoop::new();
//! let n = ev.block_on(move || wait_for(from_runtime).unwrap() + 2).unwrap();
//! assert_eq!(n, 42);
//! ```
//!
//! ```compile_fail
//! fn assert_send<T: Send>(_: T) {}
//! let ev = cogen::event_loop::EventLoop::new();
//! assert_send(ev.spawn(|| ()));
//! ```

// Layers, bottom to top (each file uses only the ones above it; `task`
// names `core::Core` as a type only, for its back-reference):
// ring; task; run_queue, timer, remote (names Core as a type only), watchdog,
// error; trace; reactor; current (names Core as a type only); observe; core;
// context; join, channel, sleep, wait_for, timeout, select, sync_channel;
// kind/*; stackless (docs), fs, net/* (source; stream; listener, udp),
// reuseport; handle; runtime; threads; task_builder; pipes.
mod blocks;
mod channel;
mod context;
mod core;
mod current;
mod error;
#[cfg(feature = "blocking")]
pub mod fs;
mod handle;
mod join;
mod kind;
#[cfg(feature = "net")]
pub mod net;
mod observe;
mod pipes;
mod prefetch;
mod reactor;
mod remote;
#[cfg(feature = "net")]
mod reuseport;
mod ring;
mod run_queue;
mod runtime;
mod select;
mod sleep;
#[cfg(cogen_nightly)]
pub mod stackless;
mod sync_channel;
mod task;
mod task_builder;
mod threads;
mod timeout;
mod timer;
mod trace;
mod wait_for;
pub mod watchdog;

pub use channel::{IntoIter, Iter, Receiver, Sender, TryIter, channel};
pub use context::{current_task_id, yield_now};
pub use core::PanicPolicy;
pub use error::{
    Elapsed, JoinError, RecvError, RecvTimeoutError, RunError, SendError, SendTimeoutError,
    StuckTask, TryRecvError, TrySendError, WaitingOn,
};
pub use handle::{LoopHandle, RemoteJoinHandle, SpawnError};
pub use join::{CancelHandle, JoinHandle};
pub use observe::{LoopStats, TaskInfo, TaskStatus};
pub use pipes::{SpawnStage, Spawned};
#[cfg(feature = "net")]
pub use reuseport::bind_reuseport;
#[cfg(cogen_nightly)]
pub use runtime::spawn_stackless;
pub use runtime::{EventLoop, EventLoopBuilder, spawn, spawn_future};
pub use select::Select;
pub use sleep::{sleep, sleep_until};
#[cfg(cogen_nightly)]
pub use stackless::Wait;
pub use sync_channel::{SyncReceiver, SyncSender, sync_channel};
pub use task_builder::TaskBuilder;
pub use threads::{Runtime, RuntimeBuilder};
pub use timeout::{timeout, timeout_at};
#[cfg(feature = "blocking")]
pub use wait_for::unblock;
pub use wait_for::wait_for;
pub use watchdog::WatchdogReport;
