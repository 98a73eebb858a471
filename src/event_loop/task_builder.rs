//! [`TaskBuilder`]: a task's name and stack size, set before spawning it on
//! any kind of task.

use std::borrow::Cow;

use crate::stack::StackError;

use super::context::current_core;
use super::join::JoinHandle;
use super::kind;
use super::runtime::EventLoop;
use super::task::TaskOptions;

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
