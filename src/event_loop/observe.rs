//! What a user can see of a loop, to find out why a program is slow or
//! stuck: a snapshot of its tasks ([`EventLoop::tasks`](super::EventLoop::tasks):
//! what each waits for, also what a deadlock report lists), its counters
//! ([`EventLoop::stats`](super::EventLoop::stats)), and the name of the task
//! in the message of a panic inside it.
//!
//! The counters are plain `Cell`s the run loop bumps (one add per step and
//! per park); the snapshot walks the registry only when asked.

use std::cell::Cell;
use std::fmt;
use std::sync::Once;
use std::time::Duration;

use super::current::CURRENT_TASK;
use super::error::{StuckTask, WaitingOn};
use super::task::{TaskRef, TaskState, WaitReason, Waiter, key_id};
use super::trace;

/// A task of a loop, as [`EventLoop::tasks`](super::EventLoop::tasks) saw
/// it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskInfo {
    /// The task's id, unique within its loop.
    pub id: u64,
    /// The task's name, if it was given one ([`TaskBuilder::name`](super::TaskBuilder::name)).
    pub name: Option<String>,
    /// Where it stands.
    pub state: TaskStatus,
}

/// Where a task stands, in a [`TaskInfo`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskStatus {
    /// In the run queue: it runs in this round or the next.
    Queued,
    /// Running now (the snapshot was taken from inside it).
    Running,
    /// Parked until what it waits for happens.
    Waiting(WaitingOn),
}

impl fmt::Display for TaskInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "task {} '{n}': ", self.id)?,
            None => write!(f, "task {}: ", self.id)?,
        }
        match &self.state {
            TaskStatus::Queued => f.write_str("queued"),
            TaskStatus::Running => f.write_str("running"),
            TaskStatus::Waiting(on) => fmt::Display::fmt(on, f),
        }
    }
}

/// What one loop has done so far: [`EventLoop::stats`](super::EventLoop::stats).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoopStats {
    /// Tasks spawned.
    pub spawned: u64,
    /// Tasks that ended: returned, panicked or were cancelled.
    pub finished: u64,
    /// Steps run: each time a task ran until its next suspension.
    pub steps: u64,
    /// Times a task parked (waited for something).
    pub parks: u64,
    /// Time the loop spent idle, waiting for a timer, a socket or a wake-up
    /// from another thread.
    pub idle: Duration,
}

/// The counters behind [`LoopStats`], kept by the core.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) spawned: Cell<u64>,
    pub(crate) steps: Cell<u64>,
    pub(crate) parks: Cell<u64>,
    pub(crate) idle: Cell<Duration>,
}

impl Counters {
    #[inline(always)]
    pub(crate) fn bump(counter: &Cell<u64>) {
        counter.set(counter.get().wrapping_add(1));
    }

    /// The counts, with `unfinished` tasks still in the loop (every task
    /// spawned and no longer there has finished: no count of its own).
    pub(crate) fn get(&self, unfinished: usize) -> LoopStats {
        LoopStats {
            spawned: self.spawned.get(),
            finished: self.spawned.get() - unfinished as u64,
            steps: self.steps.get(),
            parks: self.parks.get(),
            idle: self.idle.get(),
        }
    }
}

/// Where each of `tasks` stands and what it waits for, sorted by id.
pub(crate) fn describe(tasks: &[TaskRef]) -> Vec<TaskInfo> {
    // Who joins whom: a task's waiter slot names its joiner.
    let mut joined: Vec<(u64, u64)> = Vec::new();
    for t in tasks {
        t.header.for_each_waiter(|w| match w {
            Waiter::Task(joiner, seq) if joiner.header.is_parked_at(*seq) => {
                joined.push((joiner.header.id, t.header.id));
            }
            Waiter::Local(_, joiner) => joined.push((key_id(*joiner), t.header.id)),
            // A stackless joiner of the same loop, by key: still joining if
            // it is parked with that number.
            Waiter::Parked(_, joiner, seq)
                if tasks
                    .iter()
                    .any(|j| j.header.id == *joiner && j.header.is_parked_at(*seq)) =>
            {
                joined.push((*joiner, t.header.id));
            }
            _ => {}
        });
    }
    let joins = |id: u64| joined.iter().find(|(j, _)| *j == id).map(|(_, t)| *t);
    let mut infos: Vec<TaskInfo> = tasks
        .iter()
        .map(|t| {
            let h = &t.header;
            let state = match h.state.get() {
                TaskState::Queued => TaskStatus::Queued,
                TaskState::Running | TaskState::Done => TaskStatus::Running,
                TaskState::Parked => TaskStatus::Waiting(match h.reason.get() {
                    Some(WaitReason::Send) => WaitingOn::Send,
                    Some(WaitReason::Recv) => WaitingOn::Recv,
                    Some(WaitReason::Select) => WaitingOn::Select,
                    Some(WaitReason::Sleep) => WaitingOn::Sleep,
                    Some(WaitReason::Io) => WaitingOn::Io,
                    Some(WaitReason::Blocking) => WaitingOn::Blocking,
                    // A future task awaiting a handle joins that task.
                    Some(WaitReason::Future) if joins(h.id).is_none() => WaitingOn::Future,
                    _ => WaitingOn::Join(joins(h.id)),
                }),
            };
            TaskInfo {
                id: h.id,
                name: h.name().map(str::to_owned),
                state,
            }
        })
        .collect();
    infos.sort_by_key(|t| t.id);
    infos
}

/// The tasks of a deadlock: every task of the loop is parked on something
/// that cannot come.
pub(crate) fn stuck(tasks: &[TaskRef]) -> Vec<StuckTask> {
    describe(tasks)
        .into_iter()
        .map(|t| StuckTask {
            id: t.id,
            name: t.name,
            waiting_on: match t.state {
                TaskStatus::Waiting(on) => on,
                TaskStatus::Queued | TaskStatus::Running => WaitingOn::Join(None),
            },
        })
        .collect()
}

/// Makes the message of a panic inside a task name the task: once per
/// process, wraps the panic hook in place with one that first prints which
/// task of which loop panicked, then calls it. (A hook set later replaces
/// this one.)
pub(crate) fn name_tasks_in_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let task = CURRENT_TASK.try_with(Cell::get).ok().flatten();
            // SAFETY: CURRENT_TASK points at the task the loop holds while
            // it runs (or is being cancelled) on this thread; the hook runs
            // on that thread, inside that time.
            if let Some(task) = task.map(|t| unsafe { t.as_ref() }) {
                let h = &task.header;
                match h.name() {
                    Some(name) => eprintln!("cogen: in task {} '{name}' of an event loop:", h.id),
                    None => eprintln!("cogen: in task {} of an event loop:", h.id),
                }
                trace::panicked(h, info);
            }
            previous(info);
        }));
    });
}
