//! The task: its one allocation, the header the scheduler reads, its states
//! and the body trait each kind of task implements (the result cell and the
//! wake-up keys are in `task/`).
//!
//! # Layout
//!
//! A task is one reference-counted allocation, [`Task<B>`]: a [`Header`]
//! the scheduler reads (state, park number, wait reason, name and joiner)
//! followed by a body `B: TaskBody` that owns what runs (a stackful
//! coroutine, a future, or a stackless coroutine: see `kind/`) and the
//! [`ResultCell`] a [`JoinHandle`](super::JoinHandle) reads. The scheduler
//! only sees [`TaskRef`] (`Rc<Task<dyn TaskBody>>`) and its thin form
//! [`ThinTask`], and calls [`TaskBody::step`] (through the header's
//! [`TaskVtable`], where the body's type is known again); it never
//! switches stacks itself.
//!
//! ## Memory
//!
//! A million parked stackless tasks must fit in about 128 bytes each
//! (`tools`' `event_loop_memory` measures it); `const` assertions here keep
//! the header at 48 bytes and a [`ThinTask`] at 8. The rare name and joiner
//! share one lazily allocated box ([`Header::name`]); a body keeps two
//! bytes of state in the header's padding ([`Header::body_byte`],
//! [`Header::body_byte2`]), whose last byte says where the task's memory
//! goes back to ([`Header::block_class`]); collections with an entry per
//! task hold a [`ThinTask`] (8 bytes, the header knowing how to make the
//! full pointer again) rather than a [`TaskRef`] (16).
//!
//! ## States
//!
//! | state | where the task is | who moves it on |
//! |---|---|---|
//! | `Queued` | in the run queue, exactly once | the loop pops and runs it |
//! | `Running` | on the CPU; the context's current task | it yields, parks or finishes |
//! | `Parked` | in zero or more wait lists (timer heap, channel, joiner slot, a waker, a socket in the reactor) | a wake-up with its current park number |
//! | `Done` | nowhere (handles and stale list entries may still hold it) | nobody |
//!
//! Every park bumps the task's park number, and wait lists store
//! `(task, number)`. A wake-up is honoured only if the task is still parked
//! with that number, so stale list entries (a timer of a cancelled sleep, a
//! channel entry of a task that was woken by something else) are ignored
//! and a wake-one never gets lost on them.
//!
//! A future's waker wakes by key, not by park number: see `task/wake_key.rs`.
//!
//! The header names its loop's `Core` (a `Weak`, so that wake-ups from
//! outside `run` find their queue): the one reference from this file up to
//! the scheduler, a type only; nothing here calls into it.

use std::borrow::Cow;
use std::cell::{Cell, OnceCell, RefCell};
use std::mem::{ManuallyDrop, size_of};
use std::panic::AssertUnwindSafe;
use std::ptr::NonNull;
use std::rc::{Rc, Weak};

use super::prefetch::PrefetchFn;
use crate::error::Panic;

use super::core::Core;

mod result;
mod wake_key;

pub(crate) use result::ResultCell;
pub(crate) use wake_key::{depth_bit, depth_key, key_depth_bit, key_id};

/// A task, type-erased: what the run queue, wait lists and handles hold.
pub(crate) type TaskRef = Rc<Task<dyn TaskBody>>;

/// One allocation per task: the scheduler's header, then the body and result.
/// `repr(C)` so that the header comes first, for [`ThinTask`].
#[repr(C)]
pub(crate) struct Task<B: ?Sized + TaskBody> {
    pub(crate) header: Header,
    pub(crate) body: B,
}

impl<B: ?Sized + TaskBody> Drop for Task<B> {
    #[inline]
    fn drop(&mut self) {
        let Task { header, body } = self;
        // Dropping the body may panic (a stackless task's unread result
        // may): the extras go all the same, as they are `ManuallyDrop`,
        // which the unwinding would skip. (For a body that cannot unwind,
        // the catch compiles to nothing; a guard's drop glue would be a
        // call on every task's end.)
        let dropped = std::panic::catch_unwind(AssertUnwindSafe(|| body.drop_body(header)));
        // SAFETY: the task's `Drop`, once; the header goes right after, and
        // the body no longer uses it.
        unsafe { header.drop_extras() };
        if let Err(payload) = dropped {
            std::panic::resume_unwind(payload);
        }
    }
}

/// The `body_byte` of a body whose result cell does not exist yet: a
/// stackless task's coroutine being dropped (the other bodies never set it).
pub(crate) const RESULT_PENDING: u8 = 2;

/// Makes the full pointer of a `Task<B>` from its header's address.
pub(crate) type FatFn = unsafe fn(NonNull<Header>) -> *const Task<dyn TaskBody>;

/// Does something with a task given its header's address (runs a step,
/// recycles it), taking over the strong count that pointer stands for.
pub(crate) type RunFn = unsafe fn(NonNull<Header>, &Core);

/// What a thin task reference needs to know of its task's type: one
/// static table per body type, which the header points to.
pub(crate) struct TaskVtable {
    /// Makes the full pointer from the header's address.
    pub(crate) fat: FatFn,
    /// Runs a step, with the task's type known: the run queue holds thin
    /// references, and this is the one indirect call per step.
    pub(crate) run: RunFn,
    /// Gives up a reference, keeping the task's memory for its loop's next
    /// spawn if it was the last (`blocks.rs`), with the task's type known.
    pub(crate) recycle: RunFn,
    /// Asks the CPU to start loading what the task's next step reads first
    /// (its body's [`Prefetch::PREFETCH`]).
    pub(crate) prefetch: Option<PrefetchFn>,
}

/// # Safety
/// `header` is the header of a live `Task<B>`, with the provenance of the
/// whole allocation (a pointer that came from `Rc::into_raw` / `Rc::as_ptr`).
pub(crate) unsafe fn fat_ptr<B: TaskBody + 'static>(
    header: NonNull<Header>,
) -> *const Task<dyn TaskBody> {
    // `Task` is `repr(C)`: the header is at offset 0.
    header.as_ptr().cast_const().cast::<Task<B>>() as *const Task<dyn TaskBody>
}

/// An owning reference to a task in 8 bytes, where a [`TaskRef`] takes 16
/// (its vtable pointer): for the collections that hold an entry per task
/// (the run queue, the registry, channel wait lists), which for a million parked
/// stackless tasks is 16 MB less. The header knows how to make the full
/// reference again (its vtable's `fat`), which costs one indirect call.
pub(crate) struct ThinTask(NonNull<Header>);

impl ThinTask {
    pub(crate) fn new(task: TaskRef) -> Self {
        // SAFETY: from `into_raw`, with its count.
        unsafe { ThinTask::from_raw(Rc::into_raw(task)) }
    }

    /// Takes over the strong count behind `task`.
    ///
    /// # Safety
    /// `task` is `Rc::into_raw` (or `Rc::as_ptr`) of a [`TaskRef`], and the
    /// caller hands one strong count of it over.
    #[inline(always)]
    pub(crate) unsafe fn from_raw(task: *const Task<dyn TaskBody>) -> Self {
        // SAFETY: not null (it comes from an `Rc`); `Task` is `repr(C)`, so
        // the task's address is its header's.
        ThinTask(unsafe { NonNull::new_unchecked(task as *const Header as *mut Header) })
    }

    #[inline]
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: we own a strong reference: the task is alive.
        unsafe { self.0.as_ref() }
    }

    #[inline(always)]
    fn fat(&self) -> *const Task<dyn TaskBody> {
        // SAFETY: `fat` was made for this task's own type (`Header::new`'s
        // caller), the task is alive, and `self.0` came from `Rc::into_raw`.
        unsafe { (self.header().vtable.fat)(self.0) }
    }

    /// A thin reference made from a typed one, taking over its count.
    #[inline(always)]
    pub(crate) fn from_typed<B: TaskBody + 'static>(task: Rc<Task<B>>) -> Self {
        // SAFETY: from `into_raw`, with its count; coercing the pointer to
        // `dyn` keeps the address.
        unsafe { ThinTask::from_raw(Rc::into_raw(task) as *const Task<dyn TaskBody>) }
    }

    /// The header's address, which now stands for this reference's count.
    #[inline(always)]
    pub(crate) fn into_raw(self) -> NonNull<Header> {
        let ptr = self.0;
        std::mem::forget(self);
        ptr
    }

    /// True if this is the task at address `addr` (see
    /// `context::current_task_addr`).
    #[inline]
    pub(crate) fn is(&self, addr: *const ()) -> bool {
        std::ptr::addr_eq(self.0.as_ptr(), addr)
    }

    /// The full reference, taking over this one's count.
    #[inline]
    pub(crate) fn into_ref(self) -> TaskRef {
        let ptr = self.fat();
        std::mem::forget(self);
        // SAFETY: `ptr` is the pointer `Rc::into_raw` gave in `new` (same
        // address and metadata), and we hand its count over.
        unsafe { Rc::from_raw(ptr) }
    }

    /// Gives this reference up through `same`, a full reference to the
    /// same task that is not the last: without the indirect call that
    /// makes the full pointer.
    #[inline]
    pub(crate) fn release_via<B: TaskBody + ?Sized>(self, same: &Rc<Task<B>>) {
        let ptr = Rc::as_ptr(same);
        assert!(self.is(ptr as *const ()), "release_via: another task");
        std::mem::forget(self);
        // SAFETY: `self` owned one strong count of the allocation `same`
        // points to (the address is checked above, and `same` carries the
        // task type's metadata); `same` holds another count, so this one
        // is never the last and nothing is dropped.
        unsafe { Rc::decrement_strong_count(ptr) }
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

/// Where a task is in its life: see the table in the module docs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum TaskState {
    Queued,
    Running,
    Parked,
    Done,
}

/// What a parked task waits for: for deadlock reports and for counting the
/// tasks that only an outside wake-up can resume.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum WaitReason {
    Join,
    Send,
    Recv,
    /// A [`Select`](super::Select) over several channel operations.
    Select,
    Sleep,
    /// A future's waker (possibly from another thread).
    Future,
    /// A closure on the blocking thread pool (files among others).
    #[cfg_attr(not(feature = "blocking"), allow(dead_code))]
    Blocking,
    /// A socket's readiness, from the loop's reactor (`reactor.rs`): the
    /// peer can always end it (send, close), so it is never a deadlock.
    #[cfg_attr(not(feature = "net"), allow(dead_code))]
    Io,
}

impl WaitReason {
    /// True if only something outside the loop (a waker, maybe on another
    /// thread) can end this wait.
    pub(crate) fn is_external(self) -> bool {
        matches!(self, WaitReason::Future | WaitReason::Blocking)
    }
}

/// Who waits for a task to finish.
pub(crate) enum Waiter {
    /// A task parked in `join`, with its park number.
    Task(TaskRef, u32),
    /// A task of the same loop awaiting the [`JoinHandle`](super::JoinHandle)
    /// with its own cogen waker: its registry index and id. Kept as a key,
    /// not a `Waker`, so that the loop knows nobody outside holds the waker
    /// (see `remote.rs`).
    Local(u32, u64),
    /// Any other future awaiting the [`JoinHandle`](super::JoinHandle)
    /// (or a socket's readiness).
    Waker(std::task::Waker),
    /// A task of the same loop by registry index and id, woken only if it
    /// is still parked with the park number: for a stackless task waiting
    /// on a socket, whose entry stays in the reactor after a cancellation
    /// and must not keep the task alive (`reactor.rs`).
    #[cfg_attr(not(all(cogen_nightly, feature = "net")), allow(dead_code))]
    Parked(u32, u64, u32),
    /// A task of another loop (on this thread) awaiting the
    /// [`JoinHandle`](super::JoinHandle) with its cogen waker: that loop's
    /// inbox and the task's key, woken as its waker would be, but without
    /// a clone of the waker, which would count as held outside that loop.
    Remote(std::sync::Arc<super::remote::Remote>, (u32, u64)),
}

impl Waiter {
    /// True if `self` and `other` wake the same waiter (so the newer
    /// replaces the older instead of both being kept).
    pub(crate) fn same_as(&self, other: &Waiter) -> bool {
        match (self, other) {
            (Waiter::Task(a, _), Waiter::Task(b, _)) => Rc::ptr_eq(a, b),
            (Waiter::Local(a, b), Waiter::Local(c, d)) => (a, b) == (c, d),
            (Waiter::Waker(a), Waiter::Waker(b)) => a.will_wake(b),
            (Waiter::Parked(a, b, _), Waiter::Parked(c, d, _)) => (a, b) == (c, d),
            (Waiter::Remote(a, b), Waiter::Remote(c, d)) => std::sync::Arc::ptr_eq(a, c) && b == d,
            _ => false,
        }
    }
}

/// Everyone waiting for a task to finish, each once. Most tasks have one
/// joiner at most: it lives inline, and only others go to the vector.
#[derive(Default)]
struct Waiters {
    first: Option<Waiter>,
    rest: Vec<Waiter>,
}

/// What only some tasks need: a name, joiners. Boxed (and allocated on
/// first need) so that the header of a plain task stays small.
struct Extras {
    name: Option<Cow<'static, str>>,
    waiters: RefCell<Waiters>,
}

/// What the scheduler knows of a task, at the start of its allocation.
pub(crate) struct Header {
    pub(crate) id: u64,
    /// Makes this task's full pointer from the header's (see [`ThinTask`])
    /// and runs its steps.
    pub(crate) vtable: &'static TaskVtable,
    pub(crate) core: Weak<Core>,
    /// The task's slot in its loop's registry.
    pub(crate) index: Cell<u32>,
    /// The park number: bumped by every park (see the module docs).
    pub(crate) seq: Cell<u32>,
    pub(crate) state: Cell<TaskState>,
    /// What it waits for while parked; `None` otherwise.
    pub(crate) reason: Cell<Option<WaitReason>>,
    pub(crate) cancel_requested: Cell<bool>,
    pub(crate) detached: Cell<bool>,
    /// Wake-ups by key since the polls began, one bit per wait depth (see
    /// [`key_depth_bit`]): the future a poll at that depth polls may have
    /// filed that key, so its `Pending` queues the task again instead of
    /// parking it. Each poller clears its own bit before it polls.
    pub(crate) notified: Cell<u8>,
    /// Two bytes the body may use (they fill the padding of the word
    /// above): the stackless body keeps what it holds, and the side of the
    /// channel it waits on, here. See [`TaskBody::drop_body`].
    pub(crate) body_byte: Cell<u8>,
    #[cfg_attr(not(cogen_nightly), allow(dead_code))]
    pub(crate) body_byte2: Cell<u8>,
    /// Which of its loop's lists of free task memory fits this task's
    /// allocation (`blocks.rs`), for when it is recycled.
    pub(crate) block_class: u8,
    /// Never replaced once set, so `name` can lend out its string.
    ///
    /// Dropped by the task's `Drop` (`ManuallyDrop`, see
    /// [`Header::drop_extras`]), where the look for a box inlines: the
    /// drop glue of the cell is a call that saves six registers before it
    /// looks, on every task's end.
    extras: ManuallyDrop<OnceCell<Box<Extras>>>,
}

#[cfg(target_pointer_width = "64")]
const _: () = {
    assert!(size_of::<Header>() == 48, "the header is 48 bytes");
    assert!(
        size_of::<ThinTask>() == 8,
        "a thin task reference is 8 bytes"
    );
    assert!(
        size_of::<TaskRef>() == 16,
        "a full task reference is 16 bytes"
    );
};

impl Header {
    #[inline]
    pub(crate) fn new(
        id: u64,
        name: Option<Cow<'static, str>>,
        core: Weak<Core>,
        vtable: &'static TaskVtable,
        block_class: u8,
    ) -> Self {
        let extras = ManuallyDrop::new(OnceCell::new());
        if name.is_some() {
            let _ = extras.set(Box::new(Extras {
                name,
                waiters: RefCell::default(),
            }));
        }
        Header {
            id,
            vtable,
            core,
            index: Cell::new(u32::MAX),
            seq: Cell::new(0),
            state: Cell::new(TaskState::Queued),
            reason: Cell::new(None),
            cancel_requested: Cell::new(false),
            detached: Cell::new(false),
            notified: Cell::new(0),
            body_byte: Cell::new(0),
            body_byte2: Cell::new(0),
            block_class,
            extras,
        }
    }

    /// Drops the name and joiners, if the task has any.
    ///
    /// # Safety
    /// Called once, by the task's `Drop`; nothing uses `extras` after.
    #[inline(always)]
    unsafe fn drop_extras(&mut self) {
        if self.extras.get().is_some() {
            // SAFETY: our caller's promise.
            unsafe { ManuallyDrop::drop(&mut self.extras) }
        }
    }

    pub(crate) fn name(&self) -> Option<&str> {
        self.extras.get()?.name.as_deref()
    }

    pub(crate) fn name_cow(&self) -> Option<Cow<'static, str>> {
        self.extras.get()?.name.clone()
    }

    /// Adds a joiner. One that wakes the same waiter replaces the old
    /// entry, which is handed back for the caller to drop where user code
    /// may run (dropping a `Waker` may). Runs no user code itself.
    pub(crate) fn add_waiter(&self, waiter: Waiter) -> Option<Waiter> {
        let extras = self.extras.get_or_init(|| {
            Box::new(Extras {
                name: None,
                waiters: RefCell::default(),
            })
        });
        let mut waiters = extras.waiters.borrow_mut();
        let Waiters { first, rest } = &mut *waiters;
        let Some(first) = first else {
            *first = Some(waiter);
            return None;
        };
        if first.same_as(&waiter) {
            return Some(std::mem::replace(first, waiter));
        }
        match rest.iter_mut().find(|w| w.same_as(&waiter)) {
            Some(old) => Some(std::mem::replace(old, waiter)),
            None => {
                rest.push(waiter);
                None
            }
        }
    }

    /// Takes out the joiner entry of the task at address `me` (a `join`
    /// that gave up waiting), handing it back for the caller to drop.
    pub(crate) fn remove_task_waiter(&self, me: *const ()) -> Option<Waiter> {
        let is_me =
            |w: &Waiter| matches!(w, Waiter::Task(t, _) if std::ptr::addr_eq(Rc::as_ptr(t), me));
        let mut waiters = self.extras.get()?.waiters.borrow_mut();
        if waiters.first.as_ref().is_some_and(is_me) {
            let next = (!waiters.rest.is_empty()).then(|| waiters.rest.remove(0));
            return std::mem::replace(&mut waiters.first, next);
        }
        let i = waiters.rest.iter().position(is_me)?;
        Some(waiters.rest.remove(i))
    }

    /// Takes out the entries that polls of the task's `JoinHandle` filed
    /// (a key, another loop's key, a waker): the handle is going while the
    /// task runs on, and they would name a joiner that gave up (in
    /// `tasks()` and deadlock reports) and keep its waker. A `join`'s or a
    /// stackless wait's entry takes care of itself (its park number).
    pub(crate) fn take_polled_waiters(&self) -> Vec<Waiter> {
        let polled =
            |w: &Waiter| matches!(w, Waiter::Local(..) | Waiter::Remote(..) | Waiter::Waker(_));
        let Some(extras) = self.extras.get() else {
            return Vec::new();
        };
        let mut waiters = extras.waiters.borrow_mut();
        let Waiters { first, rest } = &mut *waiters;
        let mut taken = Vec::new();
        if first.as_ref().is_some_and(polled) {
            taken.extend(first.take());
        }
        if !rest.is_empty() {
            let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(rest).into_iter().partition(polled);
            taken.extend(gone);
            *rest = kept;
        }
        if first.is_none() && !rest.is_empty() {
            *first = Some(rest.remove(0));
        }
        taken
    }

    /// False if the task never had a joiner (nor a name): then
    /// [`take_waiters`](Header::take_waiters) has nothing to hand out.
    #[inline]
    pub(crate) fn may_have_waiters(&self) -> bool {
        self.extras.get().is_some()
    }

    /// Takes every joiner out, to wake them: the first, and the others
    /// (an empty vector, which costs nothing, in the common case).
    #[inline]
    pub(crate) fn take_waiters(&self) -> (Option<Waiter>, Vec<Waiter>) {
        match self.extras.get() {
            Some(extras) => {
                let mut waiters = extras.waiters.borrow_mut();
                (waiters.first.take(), std::mem::take(&mut waiters.rest))
            }
            None => (None, Vec::new()),
        }
    }

    /// Calls `f` on each joiner (without waking it); `f` must not reach the
    /// task's joiners again.
    pub(crate) fn for_each_waiter(&self, mut f: impl FnMut(&Waiter)) {
        if let Some(extras) = self.extras.get() {
            let waiters = extras.waiters.borrow();
            waiters.first.iter().chain(&waiters.rest).for_each(&mut f);
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.state.get() == TaskState::Done
    }

    /// True if the task is parked with park number `seq`: a wake-up for
    /// that park is still due.
    #[inline]
    pub(crate) fn is_parked_at(&self, seq: u32) -> bool {
        self.state.get() == TaskState::Parked && self.seq.get() == seq
    }

    /// True once the task is done and its result cell can be read: not
    /// while the body of a cancelled stackless task is being dropped (its
    /// bytes become the result's only afterwards; see [`RESULT_PENDING`]).
    pub(crate) fn result_ready(&self) -> bool {
        self.is_done() && self.body_byte.get() != RESULT_PENDING
    }
}

/// What one step of a task ended with.
pub(crate) enum Step {
    /// The task stopped before its end; its header says whether it is
    /// queued (it yielded) or parked (it registered where its wake-up will
    /// come from).
    Suspended,
    /// The body returned or panicked; the result is stored.
    Done,
}

/// The body and result of a task, behind the header: one implementation per
/// kind of task (`kind/`).
pub(crate) trait TaskBody {
    /// Runs the body until it suspends or finishes. `task` is the task
    /// that holds this body, `core` the loop running it.
    fn step(&self, task: &TaskRef, core: &Core) -> Step;
    /// Drops the body, unwinding a suspended stack, and stores a
    /// cancellation as the result. `Err` if a destructor panicked.
    fn close(&self, header: &Header) -> Result<(), Panic>;
    /// Takes the panic out of the result, if the task panicked.
    fn take_panic(&self, header: &Header) -> Option<Panic>;
    /// For a task parked on its waker: true if a clone of the waker exists
    /// outside the loop, so that something may still wake it (see
    /// `remote.rs`).
    fn is_held_outside(&self) -> bool {
        false
    }
    /// Called when a cancelled task may have consumed a wake-one (stackless).
    fn pass_on(&self, header: &Header) {
        let _ = header;
    }
    /// Drops what the body still holds, when the task's allocation goes
    /// (for a body whose state is in the header's `body_byte`).
    fn drop_body(&mut self, header: &Header) {
        let _ = header;
    }
}

/// Options of one task: see [`TaskBuilder`](super::TaskBuilder).
#[derive(Clone, Debug, Default)]
pub(crate) struct TaskOptions {
    pub(crate) name: Option<Cow<'static, str>>,
    pub(crate) stack_size: Option<usize>,
}
