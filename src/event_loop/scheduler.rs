//! The scheduler: tasks, the run queue, parking and waking, the run loop.
//!
//! # Design
//!
//! A task is one reference-counted allocation, [`Task<S>`]: a [`Header`]
//! the scheduler reads (state, park sequence number, joiner, name) followed
//! by a [`Slot`] that owns the body (a stackful [`Coroutine`](crate::Coroutine),
//! a future, or a stackless coroutine) and the result cell that the
//! [`JoinHandle`] reads. The scheduler only sees `Rc<Task<dyn Slot>>`
//! ([`TaskRef`]) and calls [`Slot::step`]; it never switches stacks itself,
//! so the queue, timer and channel logic below knows nothing of stacks.
//!
//! ## Memory
//!
//! A million parked stackless tasks must fit in ~128 bytes each, so every
//! per-task byte counts (`examples/event_loop_memory.rs` measures it; 118
//! bytes resident at 1,000,000). For such a task: its allocation is an
//! 88-byte request, a 96-byte glibc chunk (Rc counts 16, header 48, body
//! 16 where the coroutine and later its result share their bytes, the
//! channel it waits on 8); its registry slot is 8 bytes and its channel
//! wait-list entry 16. What makes it fit: the rare name and joiner share one
//! lazily allocated box ([`Header::name`]); the stackless slot keeps its
//! stage in the header's padding; collections with an entry per task hold
//! a [`ThinTask`] (8 bytes) rather than a [`TaskRef`] (16: its vtable
//! pointer), the header knowing how to make the full pointer again; and the
//! run queue gives its capacity back after a burst of spawns.
//!
//! ## States
//!
//! | state | where the task is | who moves it on |
//! |---|---|---|
//! | `Queued` | in the run queue, exactly once | the loop pops and runs it |
//! | `Running` | on the CPU; `CURRENT_TASK` points at it | it yields, parks or finishes |
//! | `Parked` | in zero or more wait lists (timer heap, channel, joiner slot, a waker) | [`Core::wake`] with its current park number |
//! | `Done` | nowhere (handles and stale list entries may still hold it) | nobody |
//!
//! Every park bumps the task's sequence number, and wait lists store
//! `(task, seq)`. A wake-up is honoured only if the task is still parked
//! with that number, so stale list entries (a timer of a cancelled sleep, a
//! channel entry of a task that was woken by something else) are ignored
//! and a wake-one never gets lost on them. Wake-ups through a [`Waker`](std::task::Waker)
//! (futures, files, other threads) carry no number: they may arrive late,
//! so every waiting function re-checks its condition in a loop.
//!
//! ## Who may touch what
//!
//! Everything here lives on the loop's thread (`Rc`, `Cell`, `RefCell`);
//! only [`Shared`](super::future) is `Sync`, for wakers called from other
//! threads. No `RefCell` borrow is held across user code (a task step, a
//! destructor, a waker): values are moved out first, then used. The two
//! structures touched on every step, the run queue and a channel's buffer,
//! are `UnsafeCell` wrappers instead, sound for the same reason: each of
//! their methods finishes with the deque before returning and runs no user
//! code (tasks and messages move in and out by value).
//!
//! ## Cost per step
//!
//! Popping a task, one indirect call into its slot, a stack switch, and a
//! push back: no allocation and no system call. The clock is read only when
//! timers exist, once per round (see the fairness guarantee in the module
//! docs), and other threads' wake-ups are checked with one relaxed atomic load.
//!
//! A stack switch leaves the CPU's return-address predictor with the other
//! stack's return addresses, so every `ret` right after one mispredicts.
//! The waiting fast paths (`yield_now`, `park`, the channel operations) are
//! therefore `#[inline]` into the task's code, and `run_task` into the run
//! loop, to keep the frames between the loop and the switch few; the
//! running task's context is found through one thread-local (`CURRENT_CX`,
//! set by the stackful slot around its resume) rather than a virtual call.
//! This halved the cost of a yield.

use std::borrow::Cow;
use std::cell::{Cell, OnceCell, RefCell, UnsafeCell};
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::ptr::{self, NonNull};
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::coroutine::{Builder as CoroutineBuilder, Coroutine, CoroutineResult, Yielder};
use crate::error::{Panic, ResumeError};
use crate::stack::{self, StackError};

use super::error::{JoinError, RunError, StuckTask, WaitingOn};
use super::future::Shared;
use super::join::{JoinHandle, ResultCell};
use super::timer::TimerEntry;
use super::watchdog::{Watchdog, WatchdogReport};

/// A task, type-erased: what the run queue, wait lists and handles hold.
pub(crate) type TaskRef = Rc<Task<dyn Slot>>;

/// One allocation per task: the scheduler's header, then the body and result.
/// `repr(C)` so that the header comes first, for [`ThinTask`].
#[repr(C)]
pub(crate) struct Task<S: ?Sized + Slot> {
    pub(crate) header: Header,
    pub(crate) slot: S,
}

impl<S: ?Sized + Slot> Drop for Task<S> {
    fn drop(&mut self) {
        self.slot.drop_body(&self.header);
    }
}

/// The `slot_byte` of a slot whose result cell does not exist yet: a
/// stackless task's body being dropped (the other slots never set it).
pub(crate) const RESULT_PENDING: u8 = 2;

/// Makes the full pointer of a `Task<S>` from its header's address.
type FatFn = unsafe fn(NonNull<Header>) -> *const Task<dyn Slot>;

/// # Safety
/// `header` is the header of a live `Task<S>`.
unsafe fn fat_ptr<S: Slot + 'static>(header: NonNull<Header>) -> *const Task<dyn Slot> {
    // `Task` is `repr(C)`: the header is at offset 0.
    header.as_ptr().cast_const().cast::<Task<S>>() as *const Task<dyn Slot>
}

/// An owning reference to a task in 8 bytes, where a [`TaskRef`] takes 16
/// (its vtable pointer): for the collections that hold an entry per task
/// (the registry, channel wait lists), which for a million parked
/// stackless tasks is 16 MB less. The header knows how to make the full
/// reference again ([`Header::fat`]), which costs one indirect call.
pub(crate) struct ThinTask(NonNull<Header>);

impl ThinTask {
    pub(crate) fn new(task: TaskRef) -> Self {
        let ptr = Rc::into_raw(task);
        // SAFETY: `Rc::into_raw` is never null; `Task` is `repr(C)`, so the
        // address of the task is that of its header.
        ThinTask(unsafe { NonNull::new_unchecked(ptr as *const Header as *mut Header) })
    }

    #[inline]
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: we own a strong reference: the task is alive.
        unsafe { self.0.as_ref() }
    }

    fn fat(&self) -> *const Task<dyn Slot> {
        // SAFETY: `fat` was made for this task's own type (`spawn_slot`),
        // and the task is alive.
        unsafe { (self.header().fat)(self.0) }
    }

    /// The full reference, taking over this one's count.
    pub(crate) fn into_ref(self) -> TaskRef {
        let ptr = self.fat();
        std::mem::forget(self);
        // SAFETY: `ptr` is the pointer `Rc::into_raw` gave in `new` (same
        // address and metadata), and we hand its count over.
        unsafe { Rc::from_raw(ptr) }
    }

    /// A new full reference (one more count).
    pub(crate) fn to_ref(&self) -> TaskRef {
        let ptr = self.fat();
        // SAFETY: as in `into_ref`; the count we own keeps it alive while
        // we add one.
        unsafe {
            Rc::increment_strong_count(ptr);
            Rc::from_raw(ptr)
        }
    }
}

impl Drop for ThinTask {
    fn drop(&mut self) {
        // SAFETY: as in `into_ref`: gives back the count we own.
        drop(unsafe { Rc::from_raw(self.fat()) });
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum State {
    Queued,
    Running,
    Parked,
    Done,
}

/// What a parked task waits for: for deadlock reports and for counting the
/// tasks that only an outside wake-up can resume.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Reason {
    None,
    Join,
    Send,
    Recv,
    Sleep,
    /// A future's waker (possibly from another thread).
    Future,
    /// A file operation on the blocking thread pool.
    File,
}

impl Reason {
    fn is_external(self) -> bool {
        matches!(self, Reason::Future | Reason::File)
    }
}

/// Who waits for a task to finish.
pub(crate) enum Waiter {
    /// A task parked in `join`, with its park number.
    Task(TaskRef, u32),
    /// A future awaiting the [`JoinHandle`].
    Waker(std::task::Waker),
}

impl Waiter {
    pub(crate) fn wake(self) {
        match self {
            Waiter::Task(task, seq) => wake(task, seq),
            Waiter::Waker(waker) => waker.wake(),
        }
    }
}

/// What only some tasks need: a name, a joiner. Boxed (and allocated on
/// first need) so that the header of a plain task stays small.
struct Extras {
    name: Option<Cow<'static, str>>,
    waiter: Cell<Option<Waiter>>,
}

pub(crate) struct Header {
    pub(crate) id: u64,
    /// Makes this task's full pointer from the header's (see [`ThinTask`]).
    fat: FatFn,
    pub(crate) core: Weak<Core>,
    index: Cell<u32>,
    seq: Cell<u32>,
    pub(crate) state: Cell<State>,
    reason: Cell<Reason>,
    cancel_requested: Cell<bool>,
    pub(crate) detached: Cell<bool>,
    /// Two bytes the slot may use (they fill the padding of the word
    /// above): the stackless slot keeps what its body holds and the side
    /// of the channel it waits on here. See [`Slot::drop_body`].
    pub(crate) slot_byte: Cell<u8>,
    #[cfg_attr(not(feature = "nightly"), allow(dead_code))]
    pub(crate) slot_side: Cell<super::channel::Side>,
    /// Never replaced once set, so `name` can lend out its string.
    extras: OnceCell<Box<Extras>>,
}

impl Header {
    fn new(id: u64, name: Option<Cow<'static, str>>, core: Weak<Core>, fat: FatFn) -> Self {
        let extras = OnceCell::new();
        if name.is_some() {
            let _ = extras.set(Box::new(Extras {
                name,
                waiter: Cell::new(None),
            }));
        }
        Header {
            id,
            fat,
            core,
            index: Cell::new(u32::MAX),
            seq: Cell::new(0),
            state: Cell::new(State::Queued),
            reason: Cell::new(Reason::None),
            cancel_requested: Cell::new(false),
            detached: Cell::new(false),
            slot_byte: Cell::new(0),
            slot_side: Cell::new(super::channel::Side::Recv),
            extras,
        }
    }

    pub(crate) fn index(&self) -> u32 {
        self.index.get()
    }

    pub(crate) fn name(&self) -> Option<&str> {
        self.extras.get()?.name.as_deref()
    }

    pub(crate) fn name_cow(&self) -> Option<Cow<'static, str>> {
        self.extras.get()?.name.clone()
    }

    /// Installs the joiner, handing back the previous one.
    pub(crate) fn set_waiter(&self, waiter: Waiter) -> Option<Waiter> {
        self.extras
            .get_or_init(|| {
                Box::new(Extras {
                    name: None,
                    waiter: Cell::new(None),
                })
            })
            .waiter
            .replace(Some(waiter))
    }

    pub(crate) fn take_waiter(&self) -> Option<Waiter> {
        self.extras.get()?.waiter.take()
    }

    /// Lends the joiner to `f` (without waking it).
    fn peek_waiter<R>(&self, f: impl FnOnce(Option<&Waiter>) -> R) -> R {
        let w = self.take_waiter();
        let r = f(w.as_ref());
        if let Some(w) = w {
            let _ = self.set_waiter(w);
        }
        r
    }

    pub(crate) fn seq(&self) -> u32 {
        self.seq.get()
    }

    pub(crate) fn is_done(&self) -> bool {
        self.state.get() == State::Done
    }

    /// True once the task is done and its result cell can be read: not
    /// while the body of a cancelled stackless task is being dropped (its
    /// bytes become the result's only afterwards; see [`RESULT_PENDING`]).
    pub(crate) fn result_ready(&self) -> bool {
        self.is_done() && self.slot_byte.get() != RESULT_PENDING
    }
}

/// What one step of a task ended with.
pub(crate) enum Step {
    /// A stackful task suspended; its header says whether it is queued or parked.
    Suspended,
    /// A future returned `Pending`: it waits for its waker.
    Pending,
    /// A stackless task yielded a wait request.
    #[cfg(feature = "nightly")]
    Wait(super::stackless::Wait),
    /// The body returned or panicked; the result is stored.
    Done,
}

/// The body and result of a task, behind the header.
pub(crate) trait Slot {
    /// Runs the body until it suspends or finishes.
    fn step(&self, header: &Header) -> Step;
    /// Drops the body, unwinding a suspended stack, and stores a
    /// cancellation as the result. `Err` if a destructor panicked.
    fn close(&self, header: &Header) -> Result<(), Panic>;
    /// Takes the panic out of the result, if the task panicked.
    fn take_panic(&self, header: &Header) -> Option<Panic>;
    /// Called when a cancelled task may have consumed a wake-one (stackless).
    fn pass_on(&self, header: &Header) {
        let _ = header;
    }
    /// Drops what the body still holds, when the task's allocation goes
    /// (for a slot whose state is in the header's `slot_byte`).
    fn drop_body(&mut self, header: &Header) {
        let _ = header;
    }
    /// Records the channel a stackless task parks on, for `pass_on`.
    #[cfg(feature = "nightly")]
    fn remember_wait(
        &self,
        header: &Header,
        chan: Rc<dyn super::channel::ChanWait>,
        side: super::channel::Side,
    ) {
        let _ = (header, chan, side);
    }
}

/// Where a stackful task suspends: its yielder, and which coroutine it is.
pub(crate) struct StackfulCx {
    yielder: Cell<*const Yielder<(), ()>>,
    /// The task's own coroutine (`crate::coroutine::running_id` inside it).
    coroutine: Cell<*const ()>,
}

struct StackfulSlot<T> {
    co: UnsafeCell<Coroutine<(), (), T>>,
    cx: StackfulCx,
    result: ResultCell<T>,
}

impl<T> Slot for StackfulSlot<T> {
    #[inline]
    fn step(&self, header: &Header) -> Step {
        // SAFETY: only the loop steps a task (from the run queue) and only
        // `close` touches it otherwise, never while it runs, so this is the
        // only reference to the coroutine.
        let co = unsafe { &mut *self.co.get() };
        CURRENT_CX.set(&self.cx);
        let resumed = co.resume(());
        CURRENT_CX.set(ptr::null());
        match resumed {
            Ok(CoroutineResult::Yield(())) => Step::Suspended,
            Ok(CoroutineResult::Return(value)) => {
                self.result.set(Ok(value));
                Step::Done
            }
            Err(ResumeError::Panicked(p)) => {
                self.result.set(Err(JoinError::panicked(header.id, p)));
                Step::Done
            }
            Err(ResumeError::Dead(())) => Step::Done,
        }
    }

    fn close(&self, header: &Header) -> Result<(), Panic> {
        // SAFETY: the task is not running (see `step`).
        let co = unsafe { &mut *self.co.get() };
        let closed = co.close();
        if !self.result.is_set() {
            self.result
                .set(Err(JoinError::cancelled(header.id, header.name_cow())));
        }
        closed
    }

    fn take_panic(&self, _: &Header) -> Option<Panic> {
        self.result.take_panic()
    }
}

/// Options of one task: see [`TaskBuilder`].
#[derive(Clone, Debug, Default)]
pub(crate) struct TaskOptions {
    pub(crate) name: Option<Cow<'static, str>>,
    pub(crate) stack_size: Option<usize>,
}

thread_local! {
    /// The task running on this thread (set by `Core::run_task`).
    static CURRENT_TASK: Cell<Option<NonNull<Task<dyn Slot>>>> = const { Cell::new(None) };
    /// The suspension context of the running stackful task, set only while
    /// its coroutine runs (not while it is being cancelled): the waiting
    /// functions' fast path.
    static CURRENT_CX: Cell<*const StackfulCx> = const { Cell::new(ptr::null()) };
    /// The loop being driven on this thread (set by `enter`).
    static CURRENT_CORE: Cell<*const Core> = const { Cell::new(ptr::null()) };
}

/// The loop driving this thread, for code inside a task.
#[track_caller]
pub(crate) fn current_core(what: &str) -> &'static Core {
    let core = CURRENT_CORE.with(Cell::get);
    // SAFETY: CURRENT_CORE is set only while `enter`'s guard is alive, inside
    // a method that borrows the loop, so the core outlives every caller that
    // can observe it: the reference does not escape the task's step.
    match unsafe { core.as_ref() } {
        Some(core) => core,
        None => panic!(
            "cogen::event_loop::{what} called outside a task: it only works inside a task of \
             a running EventLoop (use EventLoop::spawn / block_on from outside)"
        ),
    }
}

/// Why a waiting function cannot wait here.
#[derive(Clone, Copy)]
enum NotWaitable {
    OutsideTask,
    Cancelling,
    NotStackful,
    NestedCoroutine,
}

#[cold]
#[inline(never)]
#[track_caller]
fn not_waitable(what: &str, why: NotWaitable, id: u64) -> ! {
    match why {
        NotWaitable::OutsideTask => panic!(
            "cogen::event_loop::{what} called outside a task: only code running inside a task \
             of an EventLoop can wait (spawn one with EventLoop::spawn or block_on)"
        ),
        NotWaitable::Cancelling => panic!(
            "cogen::event_loop::{what} called while task {id} is being cancelled (from a \
             destructor): a cancelled task cannot wait"
        ),
        NotWaitable::NotStackful => panic!(
            "cogen::event_loop::{what} called inside a future or stackless task: only stackful \
             tasks can wait from a function call (use `.await` or yield a `Wait` instead)"
        ),
        NotWaitable::NestedCoroutine => panic!(
            "cogen::event_loop::{what} called from a coroutine nested inside task {id}: only the \
             task's own stack can wait"
        ),
    }
}

/// The stackful task running on this thread, or a panic that says why
/// `what` cannot wait here.
#[inline]
#[track_caller]
pub(crate) fn running_stackful(what: &str) -> (&'static Task<dyn Slot>, &'static StackfulCx) {
    let cx = CURRENT_CX.with(Cell::get);
    if cx.is_null() {
        not_waitable_here(what);
    }
    // SAFETY: CURRENT_CX is set by `StackfulSlot::step` to its own context
    // for exactly as long as the task's coroutine runs; the task (which owns
    // the slot) is held by the loop meanwhile. The 'static lifetime does not
    // escape: callers use it within the waiting function, on the task's stack.
    let cx = unsafe { &*cx };
    // SAFETY: CURRENT_TASK is set by `run_task` around `step`, so it is set
    // whenever CURRENT_CX is, and points at the task the loop holds.
    let task = unsafe {
        &*CURRENT_TASK
            .with(Cell::get)
            .expect("a running task")
            .as_ptr()
    };
    // A coroutine nested inside the task cannot suspend the task.
    if crate::coroutine::running_id() != cx.coroutine.get() {
        not_waitable(what, NotWaitable::NestedCoroutine, task.header.id);
    }
    (task, cx)
}

/// Says why no stackful task can wait here.
#[cold]
#[inline(never)]
#[track_caller]
fn not_waitable_here(what: &str) -> ! {
    let Some(task) = CURRENT_TASK.with(Cell::get) else {
        not_waitable(what, NotWaitable::OutsideTask, 0);
    };
    // SAFETY: see `running_stackful`.
    let task = unsafe { &*task.as_ptr() };
    if task.header.state.get() != State::Running {
        not_waitable(what, NotWaitable::Cancelling, task.header.id);
    }
    not_waitable(what, NotWaitable::NotStackful, task.header.id);
}

/// Suspends the running stackful task; its header already says whether it
/// is queued or parked.
#[inline]
fn suspend(cx: &StackfulCx) {
    // SAFETY: `yielder` was set by `stackful_entry` on this task's stack and
    // stays valid while the body runs; `running_stackful` checked that we
    // are on that stack.
    unsafe { (*cx.yielder.get()).suspend(()) }
}

/// Runs first in every stackful task: records its yielder and which
/// coroutine is the task's own, for `running_stackful`'s check.
#[inline(never)]
fn stackful_entry(yielder: &Yielder<(), ()>) {
    let cx = CURRENT_CX.with(Cell::get);
    // SAFETY: see `running_stackful`; `step` set it before the first resume.
    let cx = unsafe { cx.as_ref() }.expect("a task body runs only inside step");
    cx.yielder.set(yielder);
    cx.coroutine.set(crate::coroutine::running_id());
}

/// Gives up the CPU: the running task goes to the back of the run queue.
///
/// Callable from any depth of a stackful task's call stack.
///
/// # Panics
/// Outside a stackful task (see the [module docs](super#errors)).
#[inline]
pub fn yield_now() {
    let (task, cx) = running_stackful("yield_now");
    task.header.state.set(State::Queued);
    suspend(cx);
}

/// Parks the running stackful task for `reason`; `register` records
/// `(task, seq)` wherever the wake-up will come from. Returns once woken.
#[inline]
pub(crate) fn park(what: &str, reason: Reason, register: impl FnOnce(&Core, TaskRef, u32)) {
    let (task, cx) = running_stackful(what);
    let core = current_core(what);
    let seq = core.begin_park(&task.header, reason);
    // SAFETY: `task` came from a live `TaskRef` (see `running_stackful`);
    // this makes a new strong reference to the same allocation.
    let task_ref = unsafe {
        let ptr: *const Task<dyn Slot> = task;
        Rc::increment_strong_count(ptr);
        Rc::from_raw(ptr)
    };
    register(core, task_ref, seq);
    suspend(cx);
}

/// Wakes `task` if it is still parked with number `seq`.
#[inline]
pub(crate) fn wake(task: TaskRef, seq: u32) {
    let h = &task.header;
    if h.state.get() == State::Parked && h.seq.get() == seq {
        make_runnable(task);
    }
}

/// Wakes a parked task whatever it waits for (used by wakers).
pub(crate) fn wake_any(task: TaskRef) {
    if task.header.state.get() == State::Parked {
        make_runnable(task);
    }
}

/// Queues a parked task on its own loop.
#[inline]
fn make_runnable(task: TaskRef) {
    let current = CURRENT_CORE.with(Cell::get);
    if ptr::eq(current, task.header.core.as_ptr()) {
        // SAFETY: CURRENT_CORE points at a live core while it is set (see
        // `current_core`); this is the common case of a wake-up from a task
        // of the same loop, and it saves upgrading the `Weak`.
        unsafe { &*current }.make_runnable(task);
    } else if let Some(core) = task.header.core.upgrade() {
        core.make_runnable(task);
    }
}

/// What happens to panics of tasks whose result nobody reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PanicPolicy {
    /// Keep running; [`EventLoop::run`] returns them in its [`RunError`]
    /// once every task is done. The default.
    #[default]
    Collect,
    /// Re-raise the first one from `run` / `block_on` / `try_tick` as soon
    /// as it is found (the loop stays usable; other tasks stay in it).
    Propagate,
}

/// The FIFO run queue. Each method finishes its operation on the deque
/// before returning and runs no user code inside (tasks are moved in and
/// out by value and dropped by the caller), so no two accesses can overlap:
/// a `RefCell`'s borrow flag would only cost time on every step.
struct RunQueue(UnsafeCell<VecDeque<TaskRef>>);

impl RunQueue {
    #[inline]
    fn push_back(&self, task: TaskRef) {
        // SAFETY: see the type's docs.
        unsafe { (*self.0.get()).push_back(task) }
    }

    #[inline]
    fn pop_front(&self) -> Option<TaskRef> {
        // SAFETY: see the type's docs.
        unsafe { (*self.0.get()).pop_front() }
    }

    #[inline]
    fn len(&self) -> usize {
        // SAFETY: see the type's docs.
        unsafe { (*self.0.get()).len() }
    }

    #[inline]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn take(&self) -> VecDeque<TaskRef> {
        // SAFETY: see the type's docs.
        unsafe { std::mem::take(&mut *self.0.get()) }
    }

    /// Gives memory back after a burst: once the queue is under a quarter
    /// full and large, halves its capacity. A million tasks spawned at once
    /// would otherwise leave 16 bytes each behind for as long as they live.
    /// Amortized O(1): each shrink copies at most a quarter of the capacity,
    /// and at least as many pops happened since the queue was that full.
    #[inline]
    fn maybe_shrink(&self) {
        // SAFETY: see the type's docs.
        let q = unsafe { &*self.0.get() };
        if q.capacity() > 4096 && q.len() < q.capacity() / 4 {
            self.shrink();
        }
    }

    #[cold]
    #[inline(never)]
    fn shrink(&self) {
        // SAFETY: see the type's docs.
        let q = unsafe { &mut *self.0.get() };
        let target = (q.capacity() / 2).max(q.len() * 2);
        q.shrink_to(target);
    }
}

struct Registry {
    slots: Vec<Option<ThinTask>>,
    free: Vec<u32>,
    len: usize,
}

impl Registry {
    fn insert(&mut self, task: TaskRef) {
        match self.free.pop() {
            Some(i) => {
                task.header.index.set(i);
                self.slots[i as usize] = Some(ThinTask::new(task));
            }
            None => {
                let i = u32::try_from(self.slots.len()).expect("fewer than 2^32 tasks");
                task.header.index.set(i);
                self.slots.push(Some(ThinTask::new(task)));
            }
        }
        self.len += 1;
    }

    /// Every task in it.
    fn tasks(&self) -> Vec<TaskRef> {
        self.slots.iter().flatten().map(ThinTask::to_ref).collect()
    }

    fn remove(&mut self, index: u32) -> Option<ThinTask> {
        let task = self.slots.get_mut(index as usize)?.take()?;
        self.free.push(index);
        self.len -= 1;
        Some(task)
    }
}

/// The loop's state. Lives in an `Rc` owned by [`EventLoop`]; tasks hold a
/// `Weak` to it so that wake-ups from outside `run` find their queue.
pub(crate) struct Core {
    queue: RunQueue,
    registry: RefCell<Registry>,
    pub(crate) timers: RefCell<BinaryHeap<TimerEntry>>,
    timer_order: Cell<u64>,
    /// Parked tasks that only a waker (maybe from another thread) can wake.
    external: Cell<usize>,
    pub(crate) shared: Arc<Shared>,
    next_id: Cell<u64>,
    unhandled: RefCell<Vec<Panic>>,
    policy: PanicPolicy,
    watchdog: Option<Watchdog>,
    me: Weak<Core>,
}

impl Core {
    fn next_id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        id
    }

    pub(crate) fn weak(&self) -> Weak<Core> {
        self.me.clone()
    }

    /// Wraps `slot` in a new task called `name`, registers and queues it,
    /// and returns its handle; `result` points at the slot's result cell
    /// (which the handle reads only once the task is done).
    pub(crate) fn spawn_slot<S: Slot + 'static, T>(
        &self,
        name: Option<Cow<'static, str>>,
        slot: S,
        result: impl FnOnce(&S) -> NonNull<ResultCell<T>>,
    ) -> JoinHandle<T> {
        let task = Rc::new(Task {
            header: Header::new(self.next_id(), name, self.weak(), fat_ptr::<S>),
            slot,
        });
        let handle = JoinHandle::new(task.clone(), result(&task.slot));
        self.schedule_new(task);
        handle
    }

    /// Registers a new task and queues it.
    pub(crate) fn schedule_new(&self, task: TaskRef) {
        if let (Some(wd), Some(name)) = (&self.watchdog, task.header.name()) {
            wd.name_task(task.header.id, name);
        }
        self.registry.borrow_mut().insert(task.clone());
        self.queue.push_back(task);
    }

    pub(crate) fn spawn_stackful<T, F>(
        &self,
        opts: TaskOptions,
        f: F,
    ) -> Result<JoinHandle<T>, StackError>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let mut builder = CoroutineBuilder::new();
        if let Some(name) = &opts.name {
            builder = builder.name(name.clone());
        }
        let requested = opts.stack_size.unwrap_or(stack::DEFAULT_STACK_SIZE);
        builder = builder.stack_size(requested);
        let co = builder.try_build(move |yielder: &Yielder<(), ()>, ()| {
            stackful_entry(yielder);
            f()
        })?;
        let slot = StackfulSlot {
            co: UnsafeCell::new(co),
            cx: StackfulCx {
                yielder: Cell::new(ptr::null()),
                coroutine: Cell::new(ptr::null()),
            },
            result: ResultCell::new(),
        };
        Ok(self.spawn_slot(opts.name, slot, |s| NonNull::from(&s.result)))
    }

    /// Marks the running task parked and returns its new park number.
    #[inline]
    pub(crate) fn begin_park(&self, h: &Header, reason: Reason) -> u32 {
        let seq = h.seq.get().wrapping_add(1);
        h.seq.set(seq);
        h.state.set(State::Parked);
        h.reason.set(reason);
        if reason.is_external() {
            self.external.set(self.external.get() + 1);
        }
        seq
    }

    fn leave_park(&self, h: &Header) {
        if h.reason.get().is_external() {
            self.external.set(self.external.get() - 1);
        }
        h.reason.set(Reason::None);
    }

    /// Parked → queued.
    #[inline]
    pub(crate) fn make_runnable(&self, task: TaskRef) {
        self.leave_park(&task.header);
        task.header.state.set(State::Queued);
        self.queue.push_back(task);
    }

    /// Queued → back of the queue (a stackless `yield`).
    #[cfg(feature = "nightly")]
    pub(crate) fn requeue(&self, task: TaskRef) {
        task.header.state.set(State::Queued);
        self.queue.push_back(task);
    }

    pub(crate) fn add_timer(&self, at: Instant, task: TaskRef, seq: u32) {
        let order = self.timer_order.get();
        self.timer_order.set(order + 1);
        self.timers.borrow_mut().push(TimerEntry {
            at,
            order,
            task,
            seq,
        });
    }

    /// Runs one step of `task`, then files it where its state says.
    #[inline(always)]
    fn run_task(&self, task: TaskRef) {
        let h = &task.header;
        if h.state.get() != State::Queued {
            return; // cancelled while queued
        }
        h.state.set(State::Running);
        if let Some(wd) = &self.watchdog {
            wd.enter(h.id);
        }
        CURRENT_TASK.set(Some(NonNull::from(&*task)));
        let step = task.slot.step(h);
        CURRENT_TASK.set(None);
        if let Some(wd) = &self.watchdog {
            wd.leave();
        }
        match step {
            Step::Done => self.finish(task),
            _ if h.cancel_requested.get() => {
                if h.state.get() == State::Running {
                    h.state.set(State::Queued);
                }
                self.cancel(&task);
            }
            Step::Suspended => {
                if h.state.get() != State::Parked {
                    h.state.set(State::Queued);
                    self.queue.push_back(task);
                }
            }
            Step::Pending => {
                self.begin_park(h, Reason::Future);
            }
            #[cfg(feature = "nightly")]
            Step::Wait(wait) => self.act_on_wait(task, wait),
        }
    }

    /// Bookkeeping once a task is done (returned, panicked or cancelled).
    fn finish(&self, task: TaskRef) {
        let h = &task.header;
        h.state.set(State::Done);
        let removed = self.registry.borrow_mut().remove(h.index());
        if let Some(wd) = &self.watchdog {
            wd.forget_task(h.id);
        }
        if let Some(waiter) = h.take_waiter() {
            waiter.wake();
        }
        if h.detached.get()
            && let Some(p) = task.slot.take_panic(h)
        {
            self.report_panic(p);
        }
        drop(removed);
    }

    pub(crate) fn report_panic(&self, p: Panic) {
        self.unhandled.borrow_mut().push(p);
    }

    /// Cancels a task: unwinds it now, or at its next suspension if it is
    /// the running task.
    pub(crate) fn cancel(&self, task: &TaskRef) {
        let h = &task.header;
        match h.state.get() {
            State::Done => return,
            State::Running => {
                h.cancel_requested.set(true);
                return;
            }
            State::Parked => self.leave_park(h),
            State::Queued => {}
        }
        let was_woken = h.state.get() == State::Queued;
        h.state.set(State::Done);
        let prev_core = CURRENT_CORE.replace(self);
        let prev_task = CURRENT_TASK.replace(Some(NonNull::from(&**task)));
        let prev_cx = CURRENT_CX.replace(ptr::null());
        let closed = task.slot.close(h);
        CURRENT_CX.set(prev_cx);
        CURRENT_TASK.set(prev_task);
        CURRENT_CORE.set(prev_core);
        if was_woken {
            task.slot.pass_on(h);
        }
        if let Err(p) = closed {
            self.report_panic(p);
        }
        self.finish(task.clone());
    }

    fn poll_timers(&self) {
        if self.timers.borrow().is_empty() {
            return;
        }
        self.fire_timers(Instant::now());
    }

    fn fire_timers(&self, now: Instant) {
        loop {
            let entry = {
                let mut timers = self.timers.borrow_mut();
                match timers.peek() {
                    Some(e) if e.at <= now => timers.pop(),
                    _ => None,
                }
            };
            match entry {
                Some(e) => wake(e.task, e.seq),
                None => break,
            }
        }
    }

    /// The earliest deadline of a timer that can still wake someone.
    fn next_deadline(&self) -> Option<Instant> {
        loop {
            let stale = {
                let mut timers = self.timers.borrow_mut();
                let e = timers.peek()?;
                if e.task.header.state.get() == State::Parked && e.task.header.seq.get() == e.seq {
                    return Some(e.at);
                }
                timers.pop()
            };
            drop(stale);
        }
    }

    /// Takes the wake-ups that wakers (maybe on other threads) left.
    pub(crate) fn poll_remote(&self) {
        let Some(keys) = self.shared.take() else {
            return;
        };
        for (index, id) in keys {
            let task = {
                let registry = self.registry.borrow();
                match registry.slots.get(index as usize) {
                    Some(Some(t)) if t.header().id == id => Some(t.to_ref()),
                    _ => None,
                }
            };
            if let Some(task) = task {
                wake_any(task);
            }
        }
    }

    fn check_propagate(&self) {
        if self.policy == PanicPolicy::Propagate {
            let first = {
                let mut unhandled = self.unhandled.borrow_mut();
                if unhandled.is_empty() {
                    None
                } else {
                    Some(unhandled.remove(0))
                }
            };
            if let Some(p) = first {
                p.resume_unwind();
            }
        }
    }

    fn pop(&self) -> Option<TaskRef> {
        self.queue.pop_front()
    }

    /// Runs rounds until `stop()` or until no task is left. A round runs the
    /// tasks queued at its start, then checks timers and outside wake-ups.
    fn run_until(&self, stop: impl Fn() -> bool) -> Result<(), Vec<StuckTask>> {
        loop {
            let mut n = self.queue.len();
            while n > 0 {
                let Some(task) = self.pop() else { break };
                self.run_task(task);
                self.check_propagate();
                if stop() {
                    return Ok(());
                }
                n -= 1;
            }
            self.queue.maybe_shrink();
            if self.shared.has_pending() {
                self.poll_remote();
            }
            self.poll_timers();
            if self.queue.is_empty() {
                if stop() || self.registry.borrow().len == 0 {
                    return Ok(());
                }
                self.idle()?;
            }
        }
    }

    /// Nothing is runnable: sleep until the next timer or an outside
    /// wake-up, or report a deadlock if neither can come.
    fn idle(&self) -> Result<(), Vec<StuckTask>> {
        loop {
            self.poll_remote();
            if !self.queue.is_empty() {
                return Ok(());
            }
            match self.next_deadline() {
                Some(at) => {
                    let now = Instant::now();
                    if at > now {
                        self.shared.park(Some(at - now));
                    }
                    self.fire_timers(Instant::now());
                }
                None if self.external.get() > 0 => self.shared.park(None),
                None => return Err(self.stuck_tasks()),
            }
        }
    }

    fn stuck_tasks(&self) -> Vec<StuckTask> {
        let tasks = self.registry.borrow().tasks();
        // Who joins whom: a task's waiter slot names its joiner.
        let mut joined: Vec<(u64, u64)> = Vec::new();
        for t in &tasks {
            t.header.peek_waiter(|w| {
                if let Some(Waiter::Task(joiner, seq)) = w
                    && joiner.header.seq.get() == *seq
                    && joiner.header.state.get() == State::Parked
                {
                    joined.push((joiner.header.id, t.header.id));
                }
            });
        }
        let mut stuck: Vec<StuckTask> = tasks
            .iter()
            .map(|t| StuckTask {
                id: t.header.id,
                name: t.header.name().map(str::to_owned),
                waiting_on: match t.header.reason.get() {
                    Reason::Send => WaitingOn::Send,
                    Reason::Recv => WaitingOn::Recv,
                    _ => WaitingOn::Join(
                        joined
                            .iter()
                            .find(|(j, _)| *j == t.header.id)
                            .map(|(_, target)| *target),
                    ),
                },
            })
            .collect();
        stuck.sort_by_key(|s| s.id);
        stuck
    }

    fn take_unhandled(&self) -> Vec<Panic> {
        std::mem::take(&mut *self.unhandled.borrow_mut())
    }

    fn len(&self) -> usize {
        self.registry.borrow().len
    }
}

/// Sets `CURRENT_CORE` for the duration of a loop method.
struct Enter {
    prev: *const Core,
}

impl Enter {
    #[track_caller]
    fn new(core: &Core, what: &str) -> Self {
        if CURRENT_TASK.with(Cell::get).is_some() {
            panic!(
                "EventLoop::{what} called from inside a task: a task must not drive an event \
                 loop (use join, yield_now or event_loop::block_on inside tasks)"
            );
        }
        Enter {
            prev: CURRENT_CORE.replace(core),
        }
    }
}

impl Drop for Enter {
    fn drop(&mut self) {
        CURRENT_CORE.set(self.prev);
    }
}

type ReportFn = Box<dyn Fn(&WatchdogReport) + Send + Sync>;

/// Configures an [`EventLoop`]: panic policy and watchdog.
pub struct Builder {
    policy: PanicPolicy,
    watchdog: Option<(Duration, ReportFn)>,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("policy", &self.policy)
            .field("watchdog", &self.watchdog.as_ref().map(|(d, _)| d))
            .finish()
    }
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// [`PanicPolicy::Collect`], no watchdog.
    pub fn new() -> Self {
        Builder {
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
    /// `threshold` without yielding. See [`watchdog_with`](Builder::watchdog_with).
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
        let core = Rc::new_cyclic(|me| Core {
            queue: RunQueue(UnsafeCell::new(VecDeque::with_capacity(64))),
            registry: RefCell::new(Registry {
                slots: Vec::new(),
                free: Vec::new(),
                len: 0,
            }),
            timers: RefCell::new(BinaryHeap::new()),
            timer_order: Cell::new(0),
            external: Cell::new(0),
            shared: Arc::new(Shared::new()),
            next_id: Cell::new(1),
            unhandled: RefCell::new(Vec::new()),
            policy: self.policy,
            watchdog: self
                .watchdog
                .map(|(threshold, report)| Watchdog::start(threshold, report)),
            me: me.clone(),
        });
        EventLoop { core }
    }
}

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
/// just drop their closure. Their handles then report a cancellation.
pub struct EventLoop {
    core: Rc<Core>,
}

impl fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventLoop")
            .field("tasks", &self.core.len())
            .field("runnable", &self.core.queue.len())
            .finish_non_exhaustive()
    }
}

impl Default for EventLoop {
    fn default() -> Self {
        EventLoop::new()
    }
}

impl EventLoop {
    /// A loop with the default [`Builder`] settings.
    pub fn new() -> Self {
        Builder::new().build()
    }

    /// A [`Builder`] to set the panic policy or a watchdog.
    pub fn builder() -> Builder {
        Builder::new()
    }

    pub(crate) fn core(&self) -> &Core {
        &self.core
    }

    /// Spawns a stackful task running `f` on a pooled stack of the default
    /// size. It runs when the loop runs; the handle joins or cancels it,
    /// and dropping the handle detaches the task.
    ///
    /// # Panics
    /// If no stack can be mapped ([`TaskBuilder::try_spawn_on`] returns the error).
    #[track_caller]
    pub fn spawn<T: 'static>(&self, f: impl FnOnce() -> T + 'static) -> JoinHandle<T> {
        self.core
            .spawn_stackful(TaskOptions::default(), f)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs until no task is left.
    ///
    /// Returns an error if the remaining tasks are deadlocked (see
    /// [`RunError::is_deadlock`]), or, with [`PanicPolicy::Collect`], if some
    /// task panicked and nobody will read its result.
    ///
    /// # Panics
    /// If called from inside a task. With [`PanicPolicy::Propagate`], re-raises
    /// the first unobserved task panic.
    pub fn run(&self) -> Result<(), RunError> {
        let _enter = Enter::new(&self.core, "run");
        self.core.check_propagate();
        let stuck = match self.core.run_until(|| false) {
            Ok(()) => Vec::new(),
            Err(stuck) => stuck,
        };
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
    ///
    /// # Panics
    /// If the main task panics, with its payload (like calling `f` directly).
    /// If called from inside a task.
    pub fn block_on<T: 'static>(&self, f: impl FnOnce() -> T + 'static) -> Result<T, RunError> {
        let _enter = Enter::new(&self.core, "block_on");
        let handle = self
            .core
            .spawn_stackful(
                TaskOptions {
                    name: Some(Cow::Borrowed("main")),
                    stack_size: None,
                },
                f,
            )
            .unwrap_or_else(|e| panic!("{e}"));
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
    /// If called from inside a task.
    pub fn try_tick(&self) -> bool {
        let _enter = Enter::new(&self.core, "try_tick");
        self.core.poll_remote();
        self.core.poll_timers();
        match self.core.pop() {
            Some(task) => {
                self.core.queue.maybe_shrink();
                self.core.run_task(task);
                self.core.check_propagate();
                true
            }
            None => false,
        }
    }

    /// True if no unfinished task is left.
    pub fn is_empty(&self) -> bool {
        self.core.len() == 0
    }

    /// The number of unfinished tasks.
    pub fn len(&self) -> usize {
        self.core.len()
    }

    /// Takes the panics that no handle observed so far (what [`run`](EventLoop::run)
    /// would report).
    pub fn take_panics(&self) -> Vec<Panic> {
        self.core.take_unhandled()
    }
}

impl Drop for EventLoop {
    fn drop(&mut self) {
        let core = &*self.core;
        let prev = CURRENT_CORE.replace(core);
        loop {
            let tasks = core.registry.borrow().tasks();
            if tasks.is_empty() {
                break;
            }
            for task in &tasks {
                core.cancel(task);
            }
        }
        let queue = core.queue.take();
        let timers = std::mem::take(&mut *core.timers.borrow_mut());
        drop((queue, timers));
        CURRENT_CORE.set(prev);
    }
}

/// Spawns a stackful task on the loop running the current task.
///
/// # Panics
/// Outside a task of a running loop, or if no stack can be mapped.
#[track_caller]
pub fn spawn<T: 'static>(f: impl FnOnce() -> T + 'static) -> JoinHandle<T> {
    current_core("spawn")
        .spawn_stackful(TaskOptions::default(), f)
        .unwrap_or_else(|e| panic!("{e}"))
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
        ev.core.spawn_stackful(self.opts, f)
    }

    /// Spawns a stackful task on the loop running the current task.
    ///
    /// # Panics
    /// Outside a task, or if no stack can be mapped.
    #[track_caller]
    pub fn spawn<T: 'static>(self, f: impl FnOnce() -> T + 'static) -> JoinHandle<T> {
        current_core("TaskBuilder::spawn")
            .spawn_stackful(self.opts, f)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[cfg(feature = "nightly")]
    pub(crate) fn into_options(self) -> TaskOptions {
        self.opts
    }
}

/// The id of the running task, or `None` outside tasks.
pub fn current_task_id() -> Option<u64> {
    // SAFETY: see `running_stackful`.
    CURRENT_TASK
        .with(Cell::get)
        .map(|t| unsafe { t.as_ref() }.header.id)
}

/// True if the running task is the one `task` refers to.
pub(crate) fn is_current(task: &TaskRef) -> bool {
    CURRENT_TASK
        .with(Cell::get)
        .is_some_and(|t| ptr::addr_eq(t.as_ptr(), Rc::as_ptr(task)))
}
