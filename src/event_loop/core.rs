//! The scheduler core: [`Core`], a loop's state (run queue, registry,
//! timers, outside wake-ups), the run loop over it, and what happens to a
//! task at each state change (park, wake, finish, cancel).
//!
//! # Who may touch what
//!
//! Everything here lives on the loop's thread (`Rc`, `Cell`, `RefCell`);
//! only [`Remote`] is `Sync`, for wakers called from other threads. No
//! `RefCell` borrow is held across user code (a task step, a destructor, a
//! waker): values are moved out first, then used. The structures touched
//! on every step or every spawn (the run queue, a channel's buffer, the
//! registry, the lists of free task memory in `blocks.rs`) are
//! `UnsafeCell` wrappers instead, sound for the same reason: each of their
//! methods finishes with its data before returning and runs no user code.
//!
//! The run loop (rounds, the looks at timers, other threads and the
//! poller, idling and deadlock detection) is in `core/run.rs`; cancelling
//! a task, and every task when the loop is dropped, in `core/cancel.rs`;
//! parking and waking a task, in `core/wake.rs`.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::mem::ManuallyDrop;
use std::panic::AssertUnwindSafe;
use std::ptr::{self, NonNull};
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::Instant;

use crate::error::Panic;

use super::blocks::Blocks;
use super::current::{CURRENT_CX, CURRENT_TASK, Current};
use super::observe::{self, Counters};
use super::prefetch::Prefetch;
use super::reactor::ReactorSlot;
use super::remote::Remote;
use super::run_queue::{Registry, RunQueue};
use super::task::{
    Header, Step, Task, TaskBody, TaskRef, TaskState, TaskVtable, ThinTask, fat_ptr,
};
use super::timer::Timers;
use super::trace::{self, Spans};
use super::watchdog::Watchdog;

mod cancel;
mod run;
mod wake;

pub(crate) use wake::{make_runnable_thin, wake, wake_user_waker};

/// Task steps between two looks at the readiness poller while tasks stay
/// runnable (see the module docs): tokio's `event_interval`.
pub(crate) const POLL_INTERVAL: u32 = 61;
const _: () = assert!(
    POLL_INTERVAL == 61,
    "the docs of `event_loop` and `event_loop::net` say 61"
);

/// What happens to panics of tasks whose result nobody reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PanicPolicy {
    /// Keep running; [`EventLoop::run`](super::EventLoop::run) returns them
    /// in its [`RunError`](super::RunError) once every task is done. The default.
    #[default]
    Collect,
    /// Re-raise the first one from `run` / `block_on` / `try_tick` as soon
    /// as it is found (the loop stays usable; other tasks stay in it).
    Propagate,
    /// Drop them as they are found: the panic hook has already reported
    /// each (on standard error, by default). For a loop that runs for good,
    /// where a list of them would only grow: each loop of a
    /// [`Runtime`](super::Runtime) uses it, since nothing could read them.
    Discard,
}

/// The loop's state. Lives in an `Rc` owned by the
/// [`EventLoop`](super::EventLoop); tasks hold a `Weak` to it so that
/// wake-ups from outside `run` find their queue.
pub(crate) struct Core {
    queue: RunQueue,
    /// The memory of finished tasks, for the next spawns.
    pub(crate) blocks: Blocks,
    registry: Registry,
    pub(crate) timers: Timers,
    /// Parked tasks that only a waker (maybe from another thread) can wake.
    external: Cell<usize>,
    /// How far the loop's drop has gone (see `Core::cancel`).
    teardown: Cell<cancel::Teardown>,
    /// Parked tasks that wait for a socket (`WaitReason::Io`).
    io: Cell<usize>,
    /// Task steps since the poller was last asked.
    since_poll: Cell<u32>,
    /// A task yielded in this round (or, for `tick`, in the last step).
    yielded: Cell<bool>,
    /// A loop method is driving this loop (see `current::Enter`): what it
    /// runs meanwhile (a waker, a destructor) must not drive it again.
    pub(crate) driven: Cell<bool>,
    /// When the idle loop stops sleeping for good (a runtime's shutdown
    /// deadline): not a timer, so it does not hide a deadlock.
    stop_at: Cell<Option<Instant>>,
    pub(crate) remote: Arc<Remote>,
    /// The readiness poller, once a socket had to wait (`reactor.rs`).
    pub(crate) reactor: ReactorSlot,
    next_id: Cell<u64>,
    unhandled: RefCell<Vec<Panic>>,
    policy: PanicPolicy,
    watchdog: Option<Watchdog>,
    pub(crate) counters: Counters,
    spans: Spans,
    me: Weak<Core>,
}

impl Core {
    pub(crate) fn new(policy: PanicPolicy, watchdog: Option<Watchdog>) -> Rc<Core> {
        observe::name_tasks_in_panics();
        Rc::new_cyclic(|me| Core {
            queue: RunQueue::new(),
            blocks: Blocks::default(),
            registry: Registry::default(),
            timers: Timers::default(),
            external: Cell::new(0),
            teardown: Cell::new(cancel::Teardown::Running),
            io: Cell::new(0),
            since_poll: Cell::new(0),
            yielded: Cell::new(false),
            driven: Cell::new(false),
            stop_at: Cell::new(None),
            remote: Arc::new(Remote::new()),
            reactor: ReactorSlot::default(),
            next_id: Cell::new(1),
            unhandled: RefCell::new(Vec::new()),
            policy,
            watchdog,
            counters: Counters::default(),
            spans: Spans::default(),
            me: me.clone(),
        })
    }

    /// A weak reference to this core, for a waiter kept in a value that
    /// may outlive the loop.
    pub(crate) fn weak(&self) -> Weak<Core> {
        self.me.clone()
    }

    fn next_id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        id
    }

    /// Wraps `body` in a new task called `name`, registers and queues it,
    /// and returns it (for its kind to make a handle of).
    #[inline]
    pub(crate) fn spawn_body<B: TaskBody + Prefetch + 'static>(
        &self,
        name: Option<Cow<'static, str>>,
        body: B,
    ) -> Rc<Task<B>> {
        // SAFETY: `write` initializes the whole body.
        unsafe { self.spawn_init(name, |p: *mut B| p.write(body)) }
    }

    /// [`spawn_body`](Core::spawn_body) for a body that `init` writes
    /// straight into the task's memory, field by field: a body built first
    /// and moved in is copied, which for a stackful body's 136 bytes is a
    /// call to `memcpy` on every spawn.
    ///
    /// # Safety
    /// `init` initializes every field of the body `*p` it is given (and
    /// does not read it before), unless it unwinds.
    #[inline(always)]
    pub(crate) unsafe fn spawn_init<B: TaskBody + Prefetch + 'static>(
        &self,
        name: Option<Cow<'static, str>>,
        init: impl FnOnce(*mut B),
    ) -> Rc<Task<B>> {
        let id = self.next_id();
        if let (Some(wd), Some(name)) = (&self.watchdog, &name) {
            wd.name_task(id, name);
        }
        let (mut block, class) = self.blocks.alloc::<B>();
        let slot = Rc::get_mut(&mut block).expect("a new task's block is unshared");
        let p = slot.as_mut_ptr();
        // SAFETY: `p` points at the block's value, ours alone; the body is
        // written by `init` (our caller's promise), then the header here. If
        // `init` unwinds, the block is dropped as `MaybeUninit`: freed, no
        // value dropped.
        unsafe {
            init(&raw mut (*p).body);
            (&raw mut (*p).header).write(Header::new(
                id,
                name,
                self.me.clone(),
                const {
                    &TaskVtable {
                        fat: fat_ptr::<B>,
                        run: run_typed::<B>,
                        recycle: recycle_typed::<B>,
                        prefetch: B::PREFETCH,
                    }
                },
                class,
            ));
        }
        // SAFETY: both fields were written just above.
        let task = unsafe { block.assume_init() };
        Counters::bump(&self.counters.spawned);
        self.spans.spawned(&task.header);
        self.registry.insert(ThinTask::from_typed(task.clone()));
        self.queue.push_back(ThinTask::from_typed(task.clone()));
        task
    }

    /// Runs one step of the queued task `task`: one indirect call, into
    /// [`run_typed`] for the task's type.
    #[inline(always)]
    fn run_thin(&self, task: ThinTask) {
        let h = task.into_raw();
        // SAFETY: the header of a live task (the count `h` stands for keeps
        // it), whose vtable was made for its type; `run` takes the count.
        unsafe { (h.as_ref().vtable.run)(h, self) }
    }

    /// Runs one step of `task`, then files it where its state says.
    /// Inlined into [`run_typed`], where the task's type is known: each
    /// look into the header and the call of the body's step go without
    /// the vtable.
    #[inline(always)]
    fn run_task<B: TaskBody + 'static>(&self, task: Rc<Task<B>>) {
        let h = &task.header;
        if h.state.get() != TaskState::Queued {
            return; // cancelled while queued
        }
        h.state.set(TaskState::Running);
        Counters::bump(&self.counters.steps);
        #[allow(clippy::let_unit_value)] // a unit without feature `tracing`
        let _span = self.spans.enter(h);
        if let Some(wd) = &self.watchdog {
            wd.enter(h.id);
        }
        // The step and the guard want the erased reference: this one
        // borrows `task`'s count (it is never dropped).
        // SAFETY: `Rc::as_ptr` of a live `Rc`, coerced to `dyn`: the
        // pointer `Rc::into_raw` would give for the erased `Rc`.
        let erased = ManuallyDrop::new(unsafe {
            Rc::from_raw(Rc::as_ptr(&task) as *const Task<dyn TaskBody>)
        });
        let guard = StepGuard::new(self, &erased);
        let step = task.body.step(&erased, self);
        guard.stepped();
        // Parked: registered where its wake-up comes from, and switched out.
        // Whatever a subscriber does at the park event (wake the task, cancel
        // it) finds it whole, and what follows takes it as the subscriber
        // left it: queued by a wake-up (not as a task that yielded), or done.
        let parked = matches!(step, Step::Suspended) && h.state.get() == TaskState::Parked;
        if parked {
            trace::parked(h);
        }
        match step {
            Step::Done => self.finish(task),
            Step::Suspended if h.cancel_requested.get() => {
                if h.state.get() == TaskState::Running {
                    h.state.set(TaskState::Queued);
                }
                self.cancel(&(task as TaskRef));
            }
            Step::Suspended => {
                if !parked {
                    // It yielded (suspended while `Running`, or `Queued` by
                    // a stackless body): the round ends with a look at the
                    // poller.
                    self.yielded.set(true);
                    h.state.set(TaskState::Queued);
                    self.queue.push_back(ThinTask::from_typed(task));
                }
            }
        }
    }

    /// Bookkeeping once a task is done (returned, panicked or cancelled).
    ///
    /// Generic, so that the runner of a task's type (`run_typed`) finishes
    /// it with the header and the body at known offsets; `cancel` calls it
    /// with the erased type.
    fn finish<B: TaskBody + ?Sized>(&self, task: Rc<Task<B>>) {
        let h = &task.header;
        h.state.set(TaskState::Done);
        self.spans.finished(h);
        let removed = self.registry.remove(h.index.get(), h.id);
        if let Some(wd) = &self.watchdog {
            wd.forget_task(h.id);
        }
        if h.detached.get()
            && let Some(p) = task.body.take_panic(h)
        {
            self.report_panic(p);
        }
        if h.may_have_waiters() {
            self.wake_joiners(h);
        }
        if Rc::strong_count(&task) > 1 + usize::from(removed.is_some()) {
            // Neither is the last reference (a handle or a waiter holds
            // one): dropping them drops nothing of the task.
            if let Some(removed) = removed {
                removed.release_via(&task);
            }
        } else {
            // The last reference to a detached task drops its result: user
            // code. Its memory is kept for the next spawn.
            if let Some(removed) = removed {
                removed.release_via(&task); // `task` holds another count
            }
            self.drop_reporting_with(|| self.blocks.recycle(task));
        }
    }

    /// Wakes whoever waits for the task of `h` to finish.
    #[inline(never)]
    fn wake_joiners(&self, h: &Header) {
        let (first, rest) = h.take_waiters();
        if let Some(waiter) = first {
            self.wake_waiter(waiter);
        }
        rest.into_iter().for_each(|w| self.wake_waiter(w)); // empty: no allocation
    }

    /// Drops `value`, which may run user code (a destructor of a task's
    /// result, of a channel's messages); a panic there is reported like a
    /// detached task's panic instead of unwinding through the loop.
    pub(crate) fn drop_reporting<T>(&self, value: T) {
        self.drop_reporting_with(|| drop(value));
    }

    /// Runs `drop`, which drops something that may run user code, as
    /// [`drop_reporting`](Core::drop_reporting) does.
    fn drop_reporting_with(&self, drop: impl FnOnce()) {
        if let Err(payload) = std::panic::catch_unwind(AssertUnwindSafe(drop)) {
            self.report_panic(Panic::new(payload, None));
        }
    }

    pub(crate) fn report_panic(&self, p: Panic) {
        if self.policy == PanicPolicy::Discard {
            // A `Panic`'s drop never unwinds.
            drop(p);
            return;
        }
        self.unhandled.borrow_mut().push(p);
    }

    pub(crate) fn take_unhandled(&self) -> Vec<Panic> {
        std::mem::take(&mut *self.unhandled.borrow_mut())
    }

    /// The number of unfinished tasks.
    pub(crate) fn len(&self) -> usize {
        self.registry.len()
    }

    /// The number of queued tasks.
    pub(crate) fn runnable(&self) -> usize {
        self.queue.len()
    }
}

/// Around one step of a task: makes it the current task, and on the way out
/// clears that; if the step unwound (it never should: every body catches
/// the panics of user code), also takes the task out of the loop, so that
/// neither the thread nor the loop is left unusable.
struct StepGuard<'a> {
    core: &'a Core,
    task: &'a TaskRef,
}

impl<'a> StepGuard<'a> {
    #[inline(always)]
    fn new(core: &'a Core, task: &'a TaskRef) -> Self {
        CURRENT_TASK.set(NonNull::new(Rc::as_ptr(task).cast_mut()));
        StepGuard { core, task }
    }

    /// The step returned: clears the current task (the guard's drop, which
    /// also cleans up after an unwinding step, does not run).
    #[inline(always)]
    fn stepped(self) {
        CURRENT_TASK.set(None);
        if let Some(wd) = &self.core.watchdog {
            wd.leave();
        }
        std::mem::forget(self);
    }
}

impl Drop for StepGuard<'_> {
    #[cold]
    fn drop(&mut self) {
        CURRENT_TASK.set(None);
        if let Some(wd) = &self.core.watchdog {
            wd.leave();
        }
        CURRENT_CX.set(ptr::null());
        self.core.abandon(self.task);
    }
}

/// The [`TaskVtable::run`] of a task with body `B`.
///
/// # Safety
/// `header` is the header of a live `Task<B>`, from `Rc::into_raw` of a
/// [`TaskRef`] whose strong count the caller hands over.
unsafe fn run_typed<B: TaskBody + 'static>(header: NonNull<Header>, core: &Core) {
    // SAFETY: the pointer `Rc::into_raw` gave for an `Rc<Task<dyn _>>`
    // coerced from an `Rc<Task<B>>` (see `Core::spawn_body`), with its
    // count: std allows making the `Rc<Task<B>>` again from it.
    let task = unsafe { Rc::<Task<B>>::from_raw(header.as_ptr().cast::<Task<B>>()) };
    core.run_task(task);
}

/// The [`TaskVtable::recycle`] of a task with body `B`.
///
/// # Safety
/// As [`run_typed`].
unsafe fn recycle_typed<B: TaskBody + 'static>(header: NonNull<Header>, core: &Core) {
    // SAFETY: as in `run_typed`.
    let task = unsafe { Rc::<Task<B>>::from_raw(header.as_ptr().cast::<Task<B>>()) };
    core.blocks.recycle(task);
}
