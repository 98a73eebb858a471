//! The chain of coroutines running on this thread, and the handles that read it.
//!
//! This file owns `Meta`, the record each coroutine keeps for everything that
//! asks about it from outside its body; `CURRENT`, the thread-local top of the
//! chain of running coroutines, and `enter`, which pushes onto it for one
//! switch; the queries Lua offers on it ([`running`], [`is_yieldable`]); and
//! [`CoroutineHandle`], which derives a coroutine's status from it.
//!
//! # Why every pointer in the chain is valid
//!
//! A `Meta` lives at the top of its coroutine's stack (`home.rs`), so its
//! address never changes while the coroutine lives, however the owner moves
//! the [`Coroutine`](super::Coroutine) value. `CURRENT` and every `parent`
//! reachable from it name coroutines whose `resume` (or `close`) is still on
//! this thread's call stack, so none of them can be dropped meanwhile.
//!
//! # Suspending from inside a nested coroutine
//!
//! A body may hand its [`Yielder`](super::Yielder) to a nested
//! [`ScopedCoroutine`](super::ScopedCoroutine) and suspend through it from
//! there: the whole chain from the nested one up to the outer one stops at
//! once, and resuming the outer one continues the nested one. So `enter`
//! does not simply make the resumed coroutine current: it makes current
//! whichever coroutine was innermost when it last stopped (`resume_at`), and
//! records that again when it stops. The `parent` links of the coroutines in
//! between stay as they were (they point at `Meta`s on stacks that are
//! suspended, not freed), so the chain reads as Lua would have it: the
//! nested coroutine running, the outer one normal.

use std::borrow::Cow;
use std::cell::{Cell, OnceCell};
use std::fmt;
use std::ptr;
use std::rc::Rc;

use super::Status;

/// What the stack-overflow handler, `running()` and `close` need to know
/// about a coroutine. Lives at the top of the coroutine's stack; see the
/// file's docs.
#[repr(C)] // `parent` and `resume_at`, written on every resume, next to corosensei's link
pub(super) struct Meta {
    /// While this coroutine runs: the `Meta` of the one that resumed it, or null.
    pub(super) parent: Cell<*const Meta>,
    /// While it is suspended: the coroutine that runs on when it is resumed,
    /// which is itself unless it suspended from inside a nested coroutine.
    resume_at: Cell<*const Meta>,
    pub(super) handle: OnceCell<Rc<HandleInner>>,
    /// True while `close` unwinds this coroutine.
    pub(super) closing: Cell<bool>,
    pub(super) name: Option<Cow<'static, str>>,
    pub(super) stack_limit: usize,
    pub(super) stack_size: usize,
}

impl Meta {
    /// A coroutine that is not running, with no handle yet.
    #[inline]
    pub(super) fn new(
        name: Option<Cow<'static, str>>,
        stack_limit: usize,
        stack_size: usize,
    ) -> Self {
        Meta {
            handle: OnceCell::new(),
            parent: Cell::new(ptr::null()),
            resume_at: Cell::new(ptr::null()),
            closing: Cell::new(false),
            name,
            stack_limit,
            stack_size,
        }
    }

    /// Called once the `Meta` is at the address it keeps for good: from
    /// now on, resuming its coroutine runs the coroutine itself.
    #[inline]
    pub(super) fn settle(&self) {
        self.resume_at.set(self);
    }

    /// Tells the handle, if any, that the coroutine has finished.
    #[inline]
    pub(super) fn set_dead(&self) {
        if let Some(handle) = self.handle.get() {
            handle.dead.set(true);
        }
    }

    pub(super) fn handle(&self, dead: bool) -> CoroutineHandle {
        CoroutineHandle(
            self.handle
                .get_or_init(|| {
                    Rc::new(HandleInner {
                        dead: Cell::new(dead),
                        name: self.name.clone(),
                    })
                })
                .clone(),
        )
    }
}

thread_local! {
    pub(super) static CURRENT: Cell<*const Meta> = const { Cell::new(ptr::null()) };
}

/// Runs `f`, which switches into `meta`'s coroutine, with that coroutine
/// (or the nested one it suspended from, see the file's docs) on top of the
/// chain of running coroutines, and restores the previous top after.
#[inline(always)]
pub(super) fn enter<T>(meta: &Meta, f: impl FnOnce() -> T) -> T {
    meta.parent.set(CURRENT.replace(meta.resume_at.get()));
    let result = f();
    // Whichever coroutine is on top now is where this one stopped: itself,
    // or a nested coroutine it suspended from. `parent` is read back from
    // `meta` (in cache) rather than kept live across the switch.
    meta.resume_at.set(CURRENT.replace(meta.parent.get()));
    result
}

/// A handle to the coroutine running on this thread, or `None` on a plain
/// thread stack. Lua's `coroutine.running()`.
///
/// ```
/// let mut co = cogen::Coroutine::<(), cogen::Status, ()>::new(|co, ()| {
///     let me = cogen::running().expect("inside a coroutine");
///     co.suspend(me.status());
/// });
/// assert!(cogen::running().is_none());
/// assert_eq!(co.resume(()).unwrap().as_yield(), Some(cogen::Status::Running));
/// ```
pub fn running() -> Option<CoroutineHandle> {
    let meta = CURRENT.with(Cell::get);
    // SAFETY: `CURRENT` is null or valid (see the file's docs).
    unsafe { meta.as_ref() }.map(|m| m.handle(false))
}

/// An opaque identity of the coroutine running on this thread (null outside
/// any): the event loop uses it to tell a task's own coroutine from one
/// nested inside the task. Stable for the coroutine's whole life.
#[inline]
pub(crate) fn running_id() -> *const () {
    CURRENT.with(Cell::get).cast()
}

/// True inside a coroutine body, where [`Yielder::suspend`](super::Yielder::suspend)
/// can be called. Lua's `coroutine.isyieldable()`.
pub fn is_yieldable() -> bool {
    !CURRENT.with(Cell::get).is_null()
}

pub(super) struct HandleInner {
    dead: Cell<bool>,
    name: Option<Cow<'static, str>>,
}

/// A cheap, cloneable handle to a coroutine, for code that does not own it:
/// it tells the coroutine's [`Status`] in all four states, and its name.
///
/// Get one from [`Coroutine::handle`](super::Coroutine::handle) or
/// [`running`]. A handle keeps only the status record alive: once the
/// coroutine is dropped, it reads [`Status::Dead`].
#[derive(Clone)]
pub struct CoroutineHandle(Rc<HandleInner>);

impl CoroutineHandle {
    /// The coroutine's status: Lua's `coroutine.status(co)`.
    pub fn status(&self) -> Status {
        if self.0.dead.get() {
            return Status::Dead;
        }
        // Running if it is on top of this thread's chain of running
        // coroutines, normal if it is further down, suspended otherwise.
        let mut meta = CURRENT.with(Cell::get);
        let mut status = Status::Running;
        // SAFETY: every `Meta` in the chain belongs to a coroutine whose
        // `resume` (or `close`) is still on this thread's call stack, and
        // lives at the top of that coroutine's stack (see the file's docs).
        while let Some(m) = unsafe { meta.as_ref() } {
            if m.handle.get().is_some_and(|h| Rc::ptr_eq(h, &self.0)) {
                return status;
            }
            status = Status::Normal;
            meta = m.parent.get();
        }
        Status::Suspended
    }

    /// The coroutine's name, if its [`Builder`](super::Builder) gave it one.
    pub fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }

    /// True if both handles refer to the same coroutine.
    pub fn same_coroutine(&self, other: &CoroutineHandle) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for CoroutineHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoroutineHandle")
            .field("name", &self.name())
            .field("status", &self.status())
            .finish()
    }
}
