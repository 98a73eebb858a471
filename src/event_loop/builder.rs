//! Builders: [`EventLoopBuilder`] (panic policy, watchdog) and
//! [`TaskBuilder`] (a task's name and stack size).

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use crate::stack::StackError;

use super::context::current_core;
use super::core::{Core, PanicPolicy};
use super::join::JoinHandle;
use super::kind;
use super::runtime::EventLoop;
use super::task::TaskOptions;
use super::watchdog::{ReportFn, Watchdog, WatchdogReport};

/// Configures an [`EventLoop`]: panic policy and watchdog.
///
/// ```
/// use cogen::event_loop::{EventLoop, PanicPolicy};
/// use std::time::Duration;
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

/// Sets a task's name and stack size before spawning it.
///
/// ```
/// use cogen::event_loop::{EventLoop, TaskBuilder};
///
/// let ev = EventLoop::new();
/// let h = TaskBuilder::new().name("worker").stack_size(64 * 1024).spawn_on(&ev, || 6 * 7);
/// assert_eq!(h.name(), Some("worker"));
/// ev.run().unwrap();
/// assert_eq!(h.join().unwrap(), 42);
/// ```
#[derive(Clone, Debug, Default)]
pub struct TaskBuilder {
    opts: TaskOptions,
}

impl TaskBuilder {
    /// No name, the default stack size.
    pub fn new() -> Self {
        TaskBuilder::default()
    }

    /// A name, shown in panics, deadlock reports and watchdog reports.
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.opts.name = Some(name.into());
        self
    }

    /// The stack size of a stackful task (see [`crate::Builder::stack_size`]).
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.opts.stack_size = Some(bytes);
        self
    }

    /// Spawns a stackful task on `ev`.
    ///
    /// # Panics
    /// If no stack can be mapped.
    #[track_caller]
    pub fn spawn_on<T: 'static>(
        self,
        ev: &EventLoop,
        f: impl FnOnce() -> T + 'static,
    ) -> JoinHandle<T> {
        self.try_spawn_on(ev, f).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Spawns a stackful task on `ev`, or says why no stack could be mapped.
    pub fn try_spawn_on<T: 'static>(
        self,
        ev: &EventLoop,
        f: impl FnOnce() -> T + 'static,
    ) -> Result<JoinHandle<T>, StackError> {
        kind::stackful::spawn(ev.core(), self.opts, f)
    }

    /// Spawns a stackful task on the loop running the current task.
    ///
    /// # Panics
    /// Outside a task, or if no stack can be mapped.
    #[track_caller]
    pub fn spawn<T: 'static>(self, f: impl FnOnce() -> T + 'static) -> JoinHandle<T> {
        kind::stackful::spawn(current_core("TaskBuilder::spawn"), self.opts, f)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Spawns a named future task on `ev` (the stack size is ignored).
    pub fn spawn_future_on<F>(self, ev: &EventLoop, future: F) -> JoinHandle<F::Output>
    where
        F: std::future::Future + 'static,
        F::Output: 'static,
    {
        kind::future::spawn(ev.core(), self.opts, future)
    }

    /// Spawns a named stackless task on `ev` (feature `nightly`; the stack
    /// size is ignored).
    #[cfg(cogen_nightly)]
    pub fn spawn_stackless_on<C>(self, ev: &EventLoop, co: C) -> JoinHandle<C::Return>
    where
        C: std::ops::Coroutine<Yield = super::Wait> + 'static,
        C::Return: 'static,
    {
        kind::stackless::spawn(ev.core(), self.opts, co)
    }
}
