//! What code inside a task uses to reach its loop: the current loop and
//! task, the stackful task's suspension point, parking and yielding, and the
//! panic that explains why a waiting function cannot wait where it was
//! called.
//!
//! Parking is two steps that must not be separated by user code: mark the
//! task parked (with a new park number) and record where its wake-up will
//! come from, then suspend. Wake-ups carry the park number, so a late one
//! (for an earlier park) is ignored; wake-ups through a
//! [`Waker`](std::task::Waker) carry none and may arrive late, so every
//! waiting function re-checks its condition in a loop.
//!
//! Inside a [`timeout`](super::timeout()), every park also waits for the
//! deadline (one more timer entry; `timeout.rs` says which limits a park
//! is inside), and a park that returns (or would
//! start) past it unwinds with the scope's [`ElapsedUnwind`] payload
//! instead, which that `timeout` catches. The deadline is ignored while the
//! thread is panicking (as it is during that unwinding), so a destructor
//! that waits during an unwinding waits normally (raising there would abort
//! the process); it stays set otherwise, so code that catches the expiry
//! unwinds again at its next wait.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Instant;

use super::core::Core;
use super::current::{CURRENT_CORE, CURRENT_CX, CURRENT_TASK, StackfulCx, in_subscriber};
use super::task::{Task, TaskBody, TaskRef, TaskState, ThinTask, WaitReason};
use super::timeout::current_limit;

/// The loop driving this thread, for code inside a task.
#[inline]
#[track_caller]
pub(crate) fn current_core(what: &str) -> &'static Core {
    let core = CURRENT_CORE.with(Cell::get);
    // SAFETY: CURRENT_CORE is set only while an `Enter` guard is alive,
    // inside a method that borrows the loop, so the core outlives every
    // caller that can observe it: the reference does not escape the task's
    // step.
    match unsafe { core.as_ref() } {
        Some(core) => core,
        None => panic_no_core(what),
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn panic_no_core(what: &str) -> ! {
    panic!(
        "cogen::event_loop::{what} called outside a task: it only works inside a task of a \
         running EventLoop (use EventLoop::spawn / block_on from outside)"
    )
}

/// Why a waiting function cannot wait here.
#[derive(Clone, Copy)]
enum CannotWait {
    OutsideTask,
    Cancelling,
    NotStackful,
    InSubscriber,
}

#[cold]
#[inline(never)]
#[track_caller]
fn panic_cannot_wait(what: &str, why: CannotWait, id: u64) -> ! {
    match why {
        CannotWait::OutsideTask => panic!(
            "cogen::event_loop::{what} called outside a task: only code running inside a task \
             of an EventLoop can wait (spawn one with EventLoop::spawn or block_on)"
        ),
        CannotWait::Cancelling => panic!(
            "cogen::event_loop::{what} called while task {id} is being cancelled (from a \
             destructor): a cancelled task cannot wait"
        ),
        CannotWait::NotStackful => panic!(
            "cogen::event_loop::{what} called inside a future or stackless task: only stackful \
             tasks can wait from a function call (use `.await` or yield a `Wait` instead)"
        ),
        CannotWait::InSubscriber => panic!(
            "cogen::event_loop::{what} called by a `tracing` subscriber handling one of the \
             loop's events: the loop emits them in the middle of its bookkeeping, where no task \
             can wait (spawn a task to do the waiting instead)"
        ),
    }
}

/// Finds out why no stackful task can wait here, and panics saying so.
#[cold]
#[inline(never)]
#[track_caller]
fn explain_cannot_wait(what: &str) -> ! {
    if in_subscriber() {
        panic_cannot_wait(what, CannotWait::InSubscriber, 0);
    }
    let Some(task) = CURRENT_TASK.with(Cell::get) else {
        panic_cannot_wait(what, CannotWait::OutsideTask, 0);
    };
    // SAFETY: see `running_stackful`.
    let id = unsafe { task.as_ref() }.header.id;
    if being_cancelled() {
        panic_cannot_wait(what, CannotWait::Cancelling, id);
    }
    panic_cannot_wait(what, CannotWait::NotStackful, id);
}

/// True where a waiting function may wait: inside a stackful task that runs
/// (not in a destructor that its cancellation runs, not in a future or
/// stackless task, not outside the loop).
#[cfg(feature = "blocking")]
pub(crate) fn can_wait() -> bool {
    !CURRENT_CX.with(Cell::get).is_null()
}

/// True where a wait that has an error to give (a channel's `send` or
/// `recv`) should give it instead of parking: in a destructor that its
/// task's cancellation runs. Nothing can wait there, and the panic that
/// says so would abort the process (the thread is unwinding). The test of
/// CURRENT_CX is the one the park itself makes next; the rest is cold.
#[inline(always)]
pub(crate) fn cancelled_here() -> bool {
    CURRENT_CX.with(Cell::get).is_null() && being_cancelled_cold()
}

#[cold]
#[inline(never)]
fn being_cancelled_cold() -> bool {
    being_cancelled()
}

/// Where an I/O operation that returns an `io::Result` (a socket's) may
/// wait: `true` in a running stackful task; `false` in a destructor that
/// its task's cancellation runs, where the operation is tried once and
/// fails with [`cannot_wait_cancelled`] instead of waiting (a wait would
/// panic there, and the panic abort the process). Panics, saying why,
/// anywhere else.
#[cfg(feature = "net")]
#[inline]
#[track_caller]
pub(crate) fn io_may_wait(what: &str) -> bool {
    if cancelled_here() {
        return false;
    }
    running_stackful(what);
    true
}

/// The error of an I/O operation that would have had to wait in a
/// destructor run by its task's cancellation (see [`io_may_wait`]).
#[cfg(feature = "net")]
#[cold]
pub(crate) fn cannot_wait_cancelled(what: &str) -> std::io::Error {
    std::io::Error::other(format!(
        "cogen::event_loop::{what} would have to wait, in a destructor that its task's \
         cancellation runs: a cancelled task cannot wait"
    ))
}

/// True in a destructor that a task's cancellation runs: a task is
/// current, but nothing of it runs as a coroutine, so nothing can wait.
/// False in a `tracing` subscriber's own code, where the missing context
/// means only that no wait is allowed there (see `InSubscriber`).
pub(crate) fn being_cancelled() -> bool {
    CURRENT_CX.with(Cell::get).is_null()
        && !in_subscriber()
        && CURRENT_TASK
            .with(Cell::get)
            // SAFETY: see `running_stackful`.
            .is_some_and(|t| unsafe { t.as_ref() }.header.state.get() != TaskState::Running)
}

/// The stackful task running on this thread, or a panic that says why
/// `what` cannot wait here.
#[inline]
#[track_caller]
pub(crate) fn running_stackful(what: &str) -> (&'static Task<dyn TaskBody>, &'static StackfulCx) {
    let (task, cx) = running_stackful_ptr(what);
    // SAFETY: see `running_stackful_ptr`: the task the loop holds while it
    // runs; the reference does not escape the waiting function.
    (unsafe { &*task }, cx)
}

/// The suspension context of the running stackful task, or a panic that
/// says why `what` cannot wait here.
#[inline]
#[track_caller]
fn running_cx(what: &str) -> &'static StackfulCx {
    let cx = CURRENT_CX.with(Cell::get);
    if cx.is_null() {
        explain_cannot_wait(what);
    }
    // SAFETY: as in `running_stackful_ptr`.
    unsafe { &*cx }
}

/// [`running_stackful`], with the task as the pointer CURRENT_TASK holds
/// (`Rc::as_ptr` of the loop's reference: the provenance of the whole
/// allocation, for making a new `Rc` from it).
#[inline]
#[track_caller]
fn running_stackful_ptr(what: &str) -> (*mut Task<dyn TaskBody>, &'static StackfulCx) {
    let cx = CURRENT_CX.with(Cell::get);
    if cx.is_null() {
        explain_cannot_wait(what);
    }
    // SAFETY: CURRENT_CX is set by the stackful body's step to its own
    // context for exactly as long as the task's coroutine runs; the task
    // (which owns the body) is held by the loop meanwhile. The 'static
    // lifetime does not escape: callers use it within the waiting function,
    // on the task's stack.
    let cx = unsafe { &*cx };
    // CURRENT_TASK is set by `run_task` around `step`, so it is set
    // whenever CURRENT_CX is, and points at the task the loop holds.
    let task = CURRENT_TASK
        .with(Cell::get)
        .expect("a running task")
        .as_ptr();
    // The code running now may be on a coroutine nested inside the task (a
    // pipeline stage, a generator, at any depth): everything that runs
    // while CURRENT_CX is set runs on the task's stack or on a stack
    // resumed from it, and a suspend through the task's yielder stops that
    // whole chain at once (see `suspend`).
    (task, cx)
}

/// Suspends the running stackful task; its header already says whether it
/// is queued or parked.
///
/// Called from a coroutine nested inside the task, it suspends the whole
/// chain, from the nested stack up to the task's own, in one switch
/// (corosensei's yielder saves the stack pointer it is called on), and
/// resuming the task continues right here. Nothing can touch the nested
/// coroutines meanwhile: each is borrowed by a `resume` in a frame of the
/// suspended chain. If the task is cancelled meanwhile, the close's
/// unwinding starts here and crosses every nested root on its way to the
/// task's (`passes_through` in the coroutine layer), running every
/// destructor once; so does the unwinding of a `timeout` whose deadline
/// passed.
///
/// Always inlined, and so are the waits that tasks call most often
/// (`yield_now`, a channel's `send` and `recv`; the others through the
/// inlined half of [`park`]): the switch then sits in the frame that called
/// the wait, which is where the task goes on when resumed. A suspend is a
/// `ret` into the loop's stack, matched by the `call` of the resume, and
/// the CPU predicts returns from a stack of the calls it saw: each frame
/// between the wait's caller and the switch costs two mispredicted returns
/// per wait (its return after the resume, and the suspend's own, which then
/// pops that frame's entry). With `recv` out of line those were a quarter
/// of a channel round trip's time.
#[inline(always)]
fn suspend(cx: &StackfulCx) {
    cx.suspended_at.set(super::prefetch::stack_pointer());
    // SAFETY: `yielder` was set by the stackful body's entry on this task's
    // stack and stays valid while the body runs: it runs now, since
    // CURRENT_CX is set only during its step, and the code calling this runs
    // on its stack or on a coroutine's stack resumed from it.
    unsafe { (*cx.yielder.get()).suspend(()) }
}

/// Gives up the CPU: the running task goes to the back of the run queue.
///
/// Callable from any depth of a stackful task's call stack.
///
/// # Panics
/// Outside a stackful task (see the [module docs](super#errors)).
#[inline(always)]
pub fn yield_now() {
    // Only the context: a task that suspends while still `Running` has
    // yielded, and the loop queues it again (see `Core::run_task`).
    suspend(running_cx("yield_now"));
}

/// The payload a park unwinds with once the deadline of scope `scope` (a
/// [`timeout`](super::timeout())) has passed; that scope catches it. The
/// coroutine layer's type, so that a wait in a coroutine nested inside the
/// task unwinds through the nested coroutine's root on its way to the scope.
pub(crate) type ElapsedUnwind = crate::coroutine::ScopeExit;

/// The deadline a park must also wait for, if it is inside a `timeout`
/// (see `timeout.rs`) and the thread is not unwinding. Unwinds at once if
/// it passed.
#[inline]
fn deadline() -> Option<(Instant, u64)> {
    let deadline = current_limit()?;
    if std::thread::panicking() {
        return None;
    }
    check_deadline(deadline);
    Some(deadline)
}

/// Unwinds to the scope of `deadline` if it has passed.
#[inline]
fn check_deadline((at, scope): (Instant, u64)) {
    if Instant::now() >= at {
        // The deadline stays set: `thread::panicking()` is true while this
        // unwinds, which keeps the waits of destructors from raising again;
        // if user code catches it, its next wait raises again.
        // Not a panic: no hook runs, no message is printed.
        std::panic::resume_unwind(Box::new(ElapsedUnwind { scope }));
    }
}

/// Parks the running stackful task for `reason`; `register` records
/// `(task, seq)` wherever the wake-up will come from, and must run no user
/// code (no waker, no destructor that could reach the loop). Returns once
/// woken; inside a [`timeout`](super::timeout()) whose deadline has passed,
/// unwinds instead (see the module docs).
#[inline(always)]
pub(crate) fn park(what: &str, reason: WaitReason, register: impl FnOnce(&Core, TaskRef, u32)) {
    prepare_park(what, reason, register).wait();
}

/// [`park`] up to the switch: the task marked parked and registered.
#[inline]
fn prepare_park(
    what: &str,
    reason: WaitReason,
    register: impl FnOnce(&Core, TaskRef, u32),
) -> Parked {
    let (ptr, cx) = running_stackful_ptr(what);
    let core = current_core(what);
    let deadline = deadline();
    // SAFETY: see `running_stackful`.
    let seq = core.begin_park(unsafe { &(*ptr).header }, reason);
    // SAFETY: CURRENT_TASK holds `Rc::as_ptr` of the `TaskRef` the loop
    // holds while the task runs (see `Core::run_task`): a pointer from the
    // `Rc` itself, so this makes a new strong reference to that allocation.
    let task_ref = unsafe {
        Rc::increment_strong_count(ptr);
        Rc::from_raw(ptr.cast_const())
    };
    if let Some((at, _)) = deadline {
        core.timers.add(at, task_ref.clone(), seq);
    }
    register(core, task_ref, seq);
    Parked {
        cx,
        limited: deadline.is_some(),
    }
}

/// [`park`] for a wait list of [`ThinTask`]s (a channel's): `register`
/// gets the running task as a thin reference, made straight from the
/// pointer the loop keeps (a full reference would be made and taken apart
/// again, each step finding the header through the vtable).
#[inline(always)]
pub(crate) fn park_thin(what: &str, reason: WaitReason, register: impl FnOnce(ThinTask, u32)) {
    prepare_park_thin(what, reason, register).wait();
}

/// [`park_thin`] up to the switch: the task marked parked and registered.
#[inline]
fn prepare_park_thin(
    what: &str,
    reason: WaitReason,
    register: impl FnOnce(ThinTask, u32),
) -> Parked {
    let (ptr, cx) = running_stackful_ptr(what);
    let core = current_core(what);
    let deadline = deadline();
    // SAFETY: see `running_stackful`.
    let seq = core.begin_park(unsafe { &(*ptr).header }, reason);
    // SAFETY: as in `park`: `ptr` is `Rc::as_ptr` of the loop's `TaskRef`,
    // so this adds a strong count, which the thin reference owns.
    let task = unsafe {
        Rc::increment_strong_count(ptr);
        ThinTask::from_raw(ptr)
    };
    if let Some((at, _)) = deadline {
        core.timers.add(at, task.to_ref(), seq);
    }
    register(task, seq);
    Parked {
        cx,
        limited: deadline.is_some(),
    }
}

/// A park prepared (the task is marked parked and registered where its
/// wake-up comes from): [`wait`](Parked::wait) suspends the task. Split
/// from the preparation so that the switch alone is inlined into the
/// waiting function's caller (see [`suspend`]).
#[must_use = "a prepared park must be waited on at once"]
pub(crate) struct Parked {
    cx: &'static StackfulCx,
    /// The park also waits for a deadline (two words, so that a prepared
    /// park comes back in registers).
    limited: bool,
}

impl Parked {
    /// Suspends the task until it is woken; inside a
    /// [`timeout`](super::timeout()) whose deadline has passed meanwhile,
    /// unwinds instead.
    #[inline(always)]
    pub(crate) fn wait(self) {
        suspend(self.cx);
        if self.limited {
            after_limited_park();
        }
    }
}

/// Back from a park that also waited for a deadline: unwinds if a limit
/// the wait is inside has passed. Looked up again, not taken from before
/// the park: the limit may be gone meanwhile (its scope returned while the
/// task was parked: a loop driven inside the scope's closure).
#[inline(never)]
fn after_limited_park() {
    deadline();
}

/// The id of the running task, or `None` outside tasks.
pub fn current_task_id() -> Option<u64> {
    // SAFETY: see `running_stackful`.
    CURRENT_TASK
        .with(Cell::get)
        .map(|t| unsafe { t.as_ref() }.header.id)
}

/// Sets bit `bit` of the running task's
/// [`notified`](super::task::Header::notified) mask, if a task runs: a
/// wake-up a `wait_for` frame took that may have been for the frame
/// around it (see `wait_for.rs`).
pub(crate) fn mark_notified(bit: u8) {
    if let Some(t) = CURRENT_TASK.with(Cell::get) {
        // SAFETY: see `running_stackful`.
        unsafe { t.as_ref() }.header.mark_notified(bit);
    }
}

/// Sets the `wait_for` depth of the running stackful task, if one runs
/// (see `wait_for.rs`).
pub(crate) fn set_wait_depth(depth: u8) {
    let cx = CURRENT_CX.with(Cell::get);
    // SAFETY: CURRENT_CX points at the running task's context while set.
    if let Some(cx) = unsafe { cx.as_ref() } {
        cx.waits.set(depth);
    }
}

/// [`yield_now`] for a wait that goes on after it (a `wait_for` woken
/// during its poll): inside a [`timeout`](super::timeout()) whose deadline
/// has passed, unwinds instead, as a park would.
#[track_caller]
pub(crate) fn yield_in_wait(what: &str) {
    let cx = running_cx(what);
    deadline();
    suspend(cx);
}

/// The address of the running task's allocation (what a wait-list entry
/// compares itself with), or null outside tasks.
pub(crate) fn current_task_addr() -> *const () {
    CURRENT_TASK
        .with(Cell::get)
        .map_or(std::ptr::null(), |t| t.as_ptr() as *const ())
}

/// True if the running task is the one `task` refers to.
pub(crate) fn is_current(task: &TaskRef) -> bool {
    CURRENT_TASK
        .with(Cell::get)
        .is_some_and(|t| std::ptr::addr_eq(t.as_ptr(), Rc::as_ptr(task)))
}
