//! [`EventLoop`], the loop's owner, and [`EventLoopBuilder`], its settings:
//! every way to spawn onto the loop (stackful, future, stackless) in one
//! `impl`, running it (`run`, `block_on`, `try_tick`), and its drop; plus the
//! free `spawn*` functions for code inside a task.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::error::Panic;

use super::context::current_core;
use super::core::{Core, PanicPolicy};
use super::current::Enter;
use super::error::RunError;
use super::handle::LoopHandle;
use super::join::JoinHandle;
use super::kind;
use super::observe::{LoopStats, TaskInfo};
use super::task::TaskOptions;
use super::watchdog::{ReportFn, Watchdog, WatchdogReport};

/// A single-threaded, round-robin scheduler of tasks. See the [module docs](super).
///
/// ```
/// use cogen::event_loop::{EventLoop, yield_now};
/// use std::{cell::RefCell, rc::Rc};
///
/// let log = Rc::new(RefCell::new(Vec::new()));
/// let ev = EventLoop::new();
/// for name in ["a", "b"] {
///     let log = log.clone();
///     ev.spawn(move || {
///         for i in 0..2 {
///             log.borrow_mut().push(format!("{name}{i}"));
///             yield_now();
///         }
///     });
/// }
/// ev.run().unwrap();
/// assert_eq!(*log.borrow(), ["a0", "b0", "a1", "b1"]);
/// ```
///
/// # Drop
///
/// Dropping the loop cancels every unfinished task: each suspended stack is
/// unwound, so every destructor on it runs exactly once; tasks never started
/// just drop their closure. Their handles then report a cancellation. Its
/// [`LoopHandle`]s refuse spawns from then on, and closures they sent that
/// the loop never started are dropped (their handles report a cancellation).
pub struct EventLoop {
    core: Rc<Core>,
}

impl fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventLoop")
            .field("tasks", &self.core.len())
            .field("runnable", &self.core.runnable())
            .finish_non_exhaustive()
    }
}

impl Default for EventLoop {
    fn default() -> Self {
        EventLoop::new()
    }
}

impl EventLoop {
    /// A loop with the default [`EventLoopBuilder`] settings.
    pub fn new() -> Self {
        EventLoopBuilder::new().build()
    }

    /// An [`EventLoopBuilder`] to set the panic policy or a watchdog.
    pub fn builder() -> EventLoopBuilder {
        EventLoopBuilder::new()
    }

    pub(crate) fn from_core(core: Rc<Core>) -> Self {
        EventLoop { core }
    }

    pub(crate) fn core(&self) -> &Core {
        &self.core
    }

    /// Spawns a stackful task running `f` on a pooled stack of the default
    /// size. It runs when the loop runs; the handle joins or cancels it,
    /// and dropping the handle detaches the task.
    ///
    /// # Panics
    /// If no stack can be mapped ([`TaskBuilder::try_spawn_on`](super::TaskBuilder::try_spawn_on)
    /// returns the error).
    #[track_caller]
    pub fn spawn<T: 'static>(&self, f: impl FnOnce() -> T + 'static) -> JoinHandle<T> {
        kind::stackful::spawn(&self.core, TaskOptions::default(), f)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Spawns a future as a task. It is polled by the loop like any task,
    /// its waker may be called from any thread, and inside it the loop's
    /// free functions that do not wait ([`spawn`], channel `try_`
    /// operations) work; waiting is done with `.await` (a [`JoinHandle`] is
    /// a future).
    ///
    /// ```
    /// let ev = cogen::event_loop::EventLoop::new();
    /// let stackful = ev.spawn(|| 20);
    /// let h = ev.spawn_future(async move { stackful.await.unwrap() + 22 });
    /// ev.run().unwrap();
    /// assert_eq!(h.join().unwrap(), 42);
    /// ```
    pub fn spawn_future<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        kind::future::spawn(&self.core, TaskOptions::default(), future)
    }

    /// Spawns a stackless task (feature `nightly`): a `#[coroutine]`
    /// closure that yields [`Wait`](super::Wait) requests. See the
    /// [`stackless`](super::stackless) module.
    #[cfg(cogen_nightly)]
    pub fn spawn_stackless<C>(&self, co: C) -> JoinHandle<C::Return>
    where
        C: std::ops::Coroutine<Yield = super::Wait> + 'static,
        C::Return: 'static,
    {
        kind::stackless::spawn(&self.core, TaskOptions::default(), co)
    }

    /// Runs until no task is left.
    ///
    /// Returns an error if the remaining tasks are deadlocked (see
    /// [`RunError::is_deadlock`]), or, with
    /// [`PanicPolicy::Collect`](super::PanicPolicy::Collect), if some task
    /// panicked and nobody will read its result.
    ///
    /// # Panics
    /// If called from inside a task, or while this loop is already being
    /// driven on this thread (from a waker or a destructor it runs). With
    /// [`PanicPolicy::Propagate`](super::PanicPolicy::Propagate), re-raises
    /// the first unobserved task panic.
    pub fn run(&self) -> Result<(), RunError> {
        let _enter = Enter::new(&self.core, "run");
        self.core.check_propagate();
        let stuck = self.core.run_until(|| false).err().unwrap_or_default();
        let panics = self.core.take_unhandled();
        if stuck.is_empty() && panics.is_empty() {
            Ok(())
        } else {
            Err(RunError::new(stuck, panics))
        }
    }

    /// Spawns `f` as the main task and runs the loop until it returns, then
    /// gives its value back. Other tasks may be left in the loop.
    ///
    /// Returns an error if the main task cannot finish because of a deadlock.
    /// (To wait for a future inside a task, use [`wait_for`](super::wait_for).)
    ///
    /// # Panics
    /// If the main task panics, with its payload (like calling `f` directly).
    /// If called from inside a task, or while this loop is already being
    /// driven on this thread (from a waker or a destructor it runs).
    pub fn block_on<T: 'static>(&self, f: impl FnOnce() -> T + 'static) -> Result<T, RunError> {
        let _enter = Enter::new(&self.core, "block_on");
        let opts = TaskOptions {
            name: Some(Cow::Borrowed("main")),
            stack_size: None,
        };
        let handle = kind::stackful::spawn(&self.core, opts, f).unwrap_or_else(|e| panic!("{e}"));
        let task = handle.task().clone();
        if let Err(stuck) = self.core.run_until(|| task.header.is_done()) {
            return Err(RunError::new(stuck, self.core.take_unhandled()));
        }
        if !task.header.is_done() {
            // `run_until` stops early only when the main task is done or no task is left.
            unreachable!("block_on stopped before the main task finished");
        }
        match handle.join() {
            Ok(value) => Ok(value),
            Err(e) => match e.try_into_panic() {
                Ok(p) => p.resume_unwind(),
                Err(e) => panic!("the main task of block_on ended: {e}"),
            },
        }
    }

    /// Runs at most one task step, without waiting: first takes due timers
    /// and outside wake-ups. True if a task ran.
    ///
    /// # Panics
    /// If called from inside a task, or while this loop is already being
    /// driven on this thread (from a waker or a destructor it runs).
    pub fn try_tick(&self) -> bool {
        let _enter = Enter::new(&self.core, "try_tick");
        self.core.tick()
    }

    /// A `Send + Sync` handle that spawns `Send` closures onto this loop
    /// from any thread. See [`LoopHandle`].
    pub fn handle(&self) -> LoopHandle {
        LoopHandle::new(self.core.remote.clone(), None)
    }

    /// Runs until no task is left, until `deadline`, or until the tasks
    /// left are deadlocked, whichever comes first (a runtime's shutdown: the
    /// caller cancels what is left).
    pub(crate) fn run_until_deadline(&self, deadline: Instant) {
        let _enter = Enter::new(&self.core, "run_until_deadline");
        // Start what handles sent before their inbox was closed.
        self.core.poll_remote();
        if Instant::now() >= deadline || self.core.len() == 0 {
            return;
        }
        let _ = self.core.run_until_instant(deadline);
    }

    /// True if no unfinished task is left.
    pub fn is_empty(&self) -> bool {
        self.core.len() == 0
    }

    /// The number of unfinished tasks.
    pub fn len(&self) -> usize {
        self.core.len()
    }

    /// A snapshot of every unfinished task: its id, name, and whether it
    /// is queued, running, or waiting (and for what), by id. For finding out
    /// why a program is stuck or slow; costs a walk over the tasks.
    ///
    /// ```
    /// use cogen::event_loop::{EventLoop, TaskBuilder, TaskStatus, WaitingOn, channel};
    ///
    /// let ev = EventLoop::new();
    /// let (_tx, rx) = channel::<u32>(1);
    /// TaskBuilder::new().name("reader").spawn_on(&ev, move || rx.recv());
    /// ev.try_tick();
    /// let tasks = ev.tasks();
    /// assert_eq!(tasks[0].name.as_deref(), Some("reader"));
    /// assert_eq!(tasks[0].state, TaskStatus::Waiting(WaitingOn::Recv));
    /// assert_eq!(tasks[0].to_string(), "task 1 'reader': waiting to receive on an empty channel");
    /// ```
    pub fn tasks(&self) -> Vec<TaskInfo> {
        self.core.tasks()
    }

    /// What the loop has done so far: tasks spawned and finished, steps,
    /// parks, and time spent idle.
    pub fn stats(&self) -> LoopStats {
        self.core.counters.get(self.core.len())
    }

    /// Takes the panics that no handle observed so far (what [`run`](EventLoop::run)
    /// would report).
    pub fn take_panics(&self) -> Vec<Panic> {
        self.core.take_unhandled()
    }
}

impl Drop for EventLoop {
    fn drop(&mut self) {
        let _enter = Enter::for_drop(&self.core);
        // Handles refuse spawns from now on; what they sent before and the
        // loop never started is dropped unstarted (their join handles
        // report a cancellation).
        self.core.remote.close();
        self.core.begin_drop();
        // The unstarted jobs first: their destructors may spawn, and
        // `cancel_all` then cancels what they spawned too.
        let unstarted = self.core.remote.close_and_take_jobs();
        self.core.drop_reporting(unstarted);
        self.core.cancel_all();
    }
}

/// Configures an [`EventLoop`]: panic policy and watchdog.
///
/// ```
/// use cogen::event_loop::{EventLoop, PanicPolicy};
/// use std::time::{Duration, Instant};
///
/// let ev = EventLoop::builder()
///     .panic_policy(PanicPolicy::Propagate)
///     .watchdog(Duration::from_secs(1))
///     .build();
/// assert!(ev.is_empty());
/// ```
pub struct EventLoopBuilder {
    policy: PanicPolicy,
    watchdog: Option<(Duration, ReportFn)>,
}

impl fmt::Debug for EventLoopBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventLoopBuilder")
            .field("policy", &self.policy)
            .field("watchdog", &self.watchdog.as_ref().map(|(d, _)| d))
            .finish()
    }
}

impl Default for EventLoopBuilder {
    fn default() -> Self {
        EventLoopBuilder::new()
    }
}

impl EventLoopBuilder {
    /// [`PanicPolicy::Collect`], no watchdog.
    pub fn new() -> Self {
        EventLoopBuilder {
            policy: PanicPolicy::Collect,
            watchdog: None,
        }
    }

    /// What to do with panics that no handle observes.
    pub fn panic_policy(mut self, policy: PanicPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Reports, on standard error, every task that runs longer than
    /// `threshold` without yielding. See [`watchdog_with`](EventLoopBuilder::watchdog_with).
    pub fn watchdog(self, threshold: Duration) -> Self {
        self.watchdog_with(threshold, |report| eprintln!("{report}"))
    }

    /// Calls `report` (on the watchdog's own thread) for every task that
    /// runs longer than `threshold` without yielding, once per such stretch.
    /// A `report` that panics is reported by the panic hook and does not
    /// stop the watchdog. Dropping the loop waits for a `report` under way
    /// to return (so a `report` must not wait for the loop's thread).
    ///
    /// The watchdog cannot stop the task: scheduling is cooperative and
    /// nothing can preempt a running task. It only names it, so that a
    /// runaway loop (the tutorial's pitfall 11) is found instead of just
    /// freezing the loop. See the [`watchdog`](super::watchdog) module.
    pub fn watchdog_with(
        mut self,
        threshold: Duration,
        report: impl Fn(&WatchdogReport) + Send + Sync + 'static,
    ) -> Self {
        self.watchdog = Some((threshold, Box::new(report)));
        self
    }

    /// Creates the loop.
    pub fn build(self) -> EventLoop {
        let watchdog = self
            .watchdog
            .map(|(threshold, report)| Watchdog::start(threshold, report));
        EventLoop::from_core(Core::new(self.policy, watchdog))
    }
}

/// Spawns a stackful task on the loop running the current task.
///
/// # Panics
/// Outside a task of a running loop, or if no stack can be mapped.
#[track_caller]
pub fn spawn<T: 'static>(f: impl FnOnce() -> T + 'static) -> JoinHandle<T> {
    kind::stackful::spawn(current_core("spawn"), TaskOptions::default(), f)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Spawns a future as a task on the loop running the current task.
///
/// # Panics
/// Outside a task of a running loop.
#[track_caller]
pub fn spawn_future<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    kind::future::spawn(current_core("spawn_future"), TaskOptions::default(), future)
}

/// Spawns a stackless task (feature `nightly`) on the loop running the
/// current task.
///
/// # Panics
/// Outside a task of a running loop.
#[cfg(cogen_nightly)]
#[track_caller]
pub fn spawn_stackless<C>(co: C) -> JoinHandle<C::Return>
where
    C: std::ops::Coroutine<Yield = super::Wait> + 'static,
    C::Return: 'static,
{
    kind::stackless::spawn(current_core("spawn_stackless"), TaskOptions::default(), co)
}
