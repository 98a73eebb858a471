//! What is current on this thread: the loop being driven, the task being
//! stepped, and the suspension context of a running stackful task (three
//! thread-locals), with the guards that set them and restore them on every
//! way out, unwinding included.
//!
//! This file names `core::Core` as a type (a pointer to the current loop)
//! and reads its `driven` flag only; the core sets these values through the
//! guards below.

use std::cell::Cell;
use std::ptr::{self, NonNull};
use std::rc::Rc;

use crate::coroutine::Yielder;

use super::core::Core;
use super::remote::OwnWaker;
use super::task::{Task, TaskBody, TaskRef};

/// Where a stackful task suspends: its yielder. Owned by the stackful body;
/// here because the core clears [`CURRENT_CX`] while it cancels a task.
pub(crate) struct StackfulCx {
    /// The yielder of the task's own coroutine. A wait suspends through it
    /// from any depth, a coroutine nested inside the task included: the
    /// whole chain of stacks stops at once (see `Yielder::suspend`).
    pub(crate) yielder: Cell<*const Yielder<(), ()>>,
    /// The waker of the `wait_for` the task is parked in, if any (it lives
    /// on the task's stack meanwhile).
    pub(crate) waker: Cell<*const OwnWaker>,
    /// How many `wait_for` frames run in one another's polls now.
    pub(crate) waits: Cell<u8>,
    /// The stack pointer where the task last suspended (before it ever
    /// did, the top of its stack, where its first step reads; 0 where it
    /// is not read: see `prefetch.rs`), for the loop to prefetch the lines
    /// its resume reads.
    pub(crate) suspended_at: Cell<usize>,
}

/// True while some loop is being driven on this thread (code inside one
/// of its tasks, or a waker or destructor it runs).
pub(crate) fn driving_a_loop() -> bool {
    !CURRENT_CORE.with(Cell::get).is_null()
}

impl StackfulCx {
    /// Asks the CPU to start loading the lines the task's resume reads:
    /// the frames below where it suspended (corosensei's switch and the
    /// calls that led to it), and that point's own line. The record is
    /// never 0 where this runs (x86_64: from the spawn on it holds the
    /// stack's top or a stack pointer).
    #[inline(always)]
    pub(crate) fn prefetch_stack(&self) {
        crate::stack::prefetch_stack_lines(self.suspended_at.get());
    }
}

thread_local! {
    /// The task running on this thread (set by `Core::run_task`), as a
    /// pointer with the provenance of its whole `Rc` allocation.
    pub(crate) static CURRENT_TASK: Cell<Option<NonNull<Task<dyn TaskBody>>>> =
        const { Cell::new(None) };
    /// The suspension context of the running stackful task, set only while
    /// its coroutine runs (not while it is being cancelled): the waiting
    /// functions' fast path.
    pub(crate) static CURRENT_CX: Cell<*const StackfulCx> = const { Cell::new(ptr::null()) };
    /// The loop being driven on this thread (set by [`Enter`]).
    pub(crate) static CURRENT_CORE: Cell<*const Core> = const { Cell::new(ptr::null()) };
    /// How many running tasks [`Enter::for_drop`] hides on this thread (a
    /// loop dropped inside a task): still tasks, for `Enter::new`'s check.
    static HIDDEN_TASKS: Cell<u32> = const { Cell::new(0) };
    /// True while a `tracing` subscriber handles one of the loop's events
    /// (set by [`InSubscriber`]).
    #[cfg(feature = "tracing")]
    static IN_SUBSCRIBER: Cell<bool> = const { Cell::new(false) };
}

/// True while a `tracing` subscriber handles one of the loop's events on
/// this thread: no task can wait there (see [`InSubscriber`]).
#[inline(always)]
pub(crate) fn in_subscriber() -> bool {
    #[cfg(feature = "tracing")]
    return IN_SUBSCRIBER.get();
    #[cfg(not(feature = "tracing"))]
    false
}

/// Leaves the subscriber's context, if this code runs in one: what it runs
/// next (a task's cancellation, another loop) is not the subscriber's own
/// code, and its waits are judged as anywhere else. Gives the flag to put
/// back with [`restore_subscriber`].
#[inline(always)]
fn leave_subscriber() -> bool {
    #[cfg(feature = "tracing")]
    return IN_SUBSCRIBER.replace(false);
    #[cfg(not(feature = "tracing"))]
    false
}

/// Puts back what [`leave_subscriber`] took.
#[inline(always)]
fn restore_subscriber(_was: bool) {
    #[cfg(feature = "tracing")]
    IN_SUBSCRIBER.set(_was);
}

/// Hides the running stackful task's context while a `tracing` subscriber
/// handles one of the loop's events, and puts it back on the way out,
/// unwinding included. The loop emits its events from inside its own
/// work (a wake-up in the middle of a channel's send, a task's step just
/// ended): a subscriber that waited there would switch the task that runs
/// it out half way through that work, and a cancellation or a `timeout`
/// could then unwind the task from inside the event. So every waiting
/// function called from a subscriber panics instead, saying why, and the
/// loop drops that panic with the event. (What the subscriber starts from
/// there, a cancellation or another loop, is not its own code: see
/// [`Current`] and [`Enter`].)
#[cfg(feature = "tracing")]
pub(crate) struct InSubscriber {
    cx: *const StackfulCx,
    was: bool,
}

#[cfg(feature = "tracing")]
impl InSubscriber {
    /// Hides the context until the guard is dropped.
    pub(crate) fn enter() -> Self {
        InSubscriber {
            cx: CURRENT_CX.replace(ptr::null()),
            was: IN_SUBSCRIBER.replace(true),
        }
    }
}

#[cfg(feature = "tracing")]
impl Drop for InSubscriber {
    fn drop(&mut self) {
        IN_SUBSCRIBER.set(self.was);
        CURRENT_CX.set(self.cx);
    }
}

/// Makes `task` of `core` current while it is being cancelled (its
/// destructors may use the loop), with no stackful context (they cannot
/// wait), and restores what was current before on the way out, unwinding
/// included.
///
/// A cancellation started by a `tracing` subscriber (from one of the loop's
/// events) is not the subscriber's code: the destructors it runs are told
/// that they run in a cancellation, as anywhere else.
pub(crate) struct Current {
    core: *const Core,
    task: Option<NonNull<Task<dyn TaskBody>>>,
    cx: *const StackfulCx,
    in_subscriber: bool,
}

impl Current {
    pub(crate) fn set(core: &Core, task: &TaskRef) -> Self {
        Current {
            core: CURRENT_CORE.replace(core),
            task: CURRENT_TASK.replace(NonNull::new(Rc::as_ptr(task).cast_mut())),
            cx: CURRENT_CX.replace(ptr::null()),
            in_subscriber: leave_subscriber(),
        }
    }
}

impl Drop for Current {
    fn drop(&mut self) {
        restore_subscriber(self.in_subscriber);
        CURRENT_CX.set(self.cx);
        CURRENT_TASK.set(self.task);
        CURRENT_CORE.set(self.core);
    }
}

/// Sets `CURRENT_CORE` (and, but for a drop, the loop's `driven` flag) for
/// the duration of a loop method, and restores them on the way out,
/// unwinding included. A loop driven or dropped by a `tracing` subscriber
/// runs as any loop does: its tasks are not the subscriber's code.
pub(crate) struct Enter<'a> {
    prev: *const Core,
    in_subscriber: bool,
    /// The flag this guard set (not for a drop).
    driven: Option<&'a Cell<bool>>,
    /// For a drop: the task and context that were current (a loop dropped
    /// inside a task of another loop), hidden meanwhile and put back after.
    hidden: Option<(CurrentTask, *const StackfulCx)>,
}

/// What `CURRENT_TASK` holds.
type CurrentTask = Option<NonNull<Task<dyn TaskBody>>>;

impl<'a> Enter<'a> {
    /// Refuses to drive a loop from inside a task, and to drive `core`
    /// again from what it runs while it is being driven (a user waker it
    /// wakes from its bookkeeping, with no task current, maybe through
    /// another loop): that run would see tasks parked whose wake-up is
    /// still in the outer frame's hands, and sleep for ever or report a
    /// false deadlock. Another loop may be driven from there.
    #[track_caller]
    pub(crate) fn new(core: &'a Core, what: &str) -> Self {
        if CURRENT_TASK.with(Cell::get).is_some() || HIDDEN_TASKS.get() > 0 {
            panic!(
                "EventLoop::{what} called from inside a task: a task must not drive an event \
                 loop (use join, yield_now or event_loop::wait_for inside tasks)"
            );
        }
        if core.driven.replace(true) {
            panic!(
                "EventLoop::{what} called while this loop is already being driven on this \
                 thread (from a waker or a destructor it runs): a loop must not drive itself \
                 (wake or spawn a task instead, and let the running loop go on)"
            );
        }
        Enter {
            prev: CURRENT_CORE.replace(core),
            in_subscriber: leave_subscriber(),
            driven: Some(&core.driven),
            hidden: None,
        }
    }

    /// Like `new`, for dropping a loop: allowed anywhere. Inside a task of
    /// another loop, that task is hidden meanwhile: what the drop runs
    /// (the destructors of cancelled tasks and unstarted jobs) must not
    /// wait, as nothing would run this loop to wake it, nor park the other
    /// loop's task on this one.
    pub(crate) fn for_drop(core: &'a Core) -> Self {
        let task = CURRENT_TASK.replace(None);
        if task.is_some() {
            HIDDEN_TASKS.set(HIDDEN_TASKS.get() + 1);
        }
        Enter {
            prev: CURRENT_CORE.replace(core),
            in_subscriber: leave_subscriber(),
            driven: None,
            hidden: Some((task, CURRENT_CX.replace(ptr::null()))),
        }
    }
}

impl Drop for Enter<'_> {
    fn drop(&mut self) {
        restore_subscriber(self.in_subscriber);
        if let Some(driven) = self.driven {
            driven.set(false);
        }
        if let Some((task, cx)) = self.hidden {
            if task.is_some() {
                HIDDEN_TASKS.set(HIDDEN_TASKS.get() - 1);
            }
            CURRENT_TASK.set(task);
            CURRENT_CX.set(cx);
        }
        CURRENT_CORE.set(self.prev);
    }
}
