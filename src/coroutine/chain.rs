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
//! A `Meta` lives in bytes set aside at the top of its coroutine's stack
//! (`Meta::place_on`), a memory mapping that does not move, so its address
//! never changes while the coroutine lives, however the owner moves the
//! [`Coroutine`](super::Coroutine) value. (Inside that value it would be
//! left behind by a move, while the stacks of nested coroutines still point
//! at it.) It costs no allocation of its own, and the resumer finds it
//! through one pointer; `Raw` drops it before the stack goes back to the
//! pool. `CURRENT` and every `parent` reachable from it name coroutines
//! whose `resume` (or `close`) is still on this thread's call stack, so none
//! of them can be dropped meanwhile.
//!
//! # Who sets `CURRENT`
//!
//! The resumer records itself as the resumed coroutine's `parent` and
//! switches; the coroutine side then makes itself current: the root does
//! when the body starts, and [`Yielder::suspend`](super::Yielder::suspend)
//! does when it returns (or unwinds, when the coroutine is closed), making
//! current again whichever coroutine called it (`stay`). When the switch
//! comes back, `enter` restores the resumer.
//!
//! That split is what makes a suspend from inside a nested coroutine read
//! right. A body may hand its `Yielder` to a nested
//! [`ScopedCoroutine`](super::ScopedCoroutine) and suspend through it from
//! there: the whole chain from the nested coroutine up to the outer one
//! stops at once, and resuming the outer one continues the nested one. The
//! `suspend` call that returns then is on the nested coroutine's stack, so
//! the nested coroutine becomes current, and its `parent` still names the
//! outer one (whose `Meta` has not moved): the chain reads as Lua would have
//! it, the nested coroutine running and the outer one normal.

use std::borrow::Cow;
use std::cell::{Cell, OnceCell};
use std::fmt;
use std::ptr::{self, NonNull};
use std::rc::Rc;

use super::Status;
use crate::stack::{self, PooledStack};

/// The bytes set aside at the top of each stack for its `Meta`.
///
/// The stack's top is page-aligned, and corosensei keeps its link to the
/// resumer 16 bytes below the base it is given (32 in `sanitizer` builds).
/// 80 bytes put `parent`, the lowest field and the one written on every
/// resume, in the same cache line as that link (the line from 128 to 64
/// bytes below the top), and the fields that only queries read in the line
/// above it: a cold coroutine costs no extra cache miss. (Of the sizes that
/// keep `parent` in the link's line, 80 also measured fewest cache misses
/// per resume in the round robin over 10,000 coroutines of
/// `docs/count_instructions.sh`: the size decides where the body's first
/// frames fall across cache lines.)
const META_SPACE: usize = 80;

const _: () = assert!(
    size_of::<Meta>() <= META_SPACE
        && align_of::<Meta>() <= 16
        && META_SPACE.is_multiple_of(16)
        && META_SPACE > 64
        && META_SPACE + 32 <= 128
);

/// What the stack-overflow handler, `running()` and `close` need to know
/// about a coroutine. Lives at the top of the coroutine's stack; see the
/// file's docs.
#[repr(C)] // `parent` lowest, in corosensei's link's cache line (see `META_SPACE`)
pub(super) struct Meta {
    /// While this coroutine runs: the `Meta` of the one that resumed it, or null.
    pub(super) parent: Cell<*const Meta>,
    pub(super) handle: OnceCell<Rc<HandleInner>>,
    pub(super) name: Option<Cow<'static, str>>,
    /// `stack_limit` (page-aligned, so bit 0 is free), with bit 0 set while
    /// `close` unwinds the coroutine.
    limit_and_closing: Cell<usize>,
}

impl Meta {
    /// A coroutine that is not running, with no handle yet, on a stack whose
    /// mapping starts at `stack_limit`.
    #[inline]
    pub(super) fn new(name: Option<Cow<'static, str>>, stack_limit: usize) -> Self {
        debug_assert_eq!(stack_limit & 1, 0);
        Meta {
            parent: Cell::new(ptr::null()),
            handle: OnceCell::new(),
            name,
            limit_and_closing: Cell::new(stack_limit),
        }
    }

    /// The lowest address of the coroutine's stack mapping, where its guard
    /// page starts (corosensei's `DefaultStack::limit`).
    pub(super) fn stack_limit(&self) -> usize {
        self.limit_and_closing.get() & !1
    }

    /// The usable size of the coroutine's stack, as its `Builder` asked
    /// (rounded): the mapping, which ends where the `Meta` does, without its
    /// guard page.
    pub(super) fn stack_size(&self) -> usize {
        (self as *const Meta as usize) + META_SPACE - self.stack_limit() - stack::page_size()
    }

    /// True while `close` unwinds this coroutine.
    #[inline]
    pub(super) fn closing(&self) -> bool {
        self.limit_and_closing.get() & 1 != 0
    }

    #[inline]
    pub(super) fn set_closing(&self, closing: bool) {
        self.limit_and_closing
            .set(self.stack_limit() | usize::from(closing));
    }

    /// Moves the `Meta` to the top of its coroutine's `stack`, where it
    /// keeps its address (see the file's docs), and returns that address.
    /// The caller drops it there before it drops the stack.
    #[inline]
    pub(super) fn place_on(self, stack: &mut PooledStack) -> NonNull<Meta> {
        let home = stack.reserve_top(META_SPACE).cast::<Meta>();
        // SAFETY: `reserve_top` gave us these bytes: they belong to no frame
        // and hold no live value (the `Meta` of the stack's last coroutine
        // was dropped), and they are 16-aligned, enough for `Meta`.
        unsafe { home.as_ptr().write(self) };
        home
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

/// Runs `f`, which switches into `meta`'s coroutine, with the running
/// coroutine (or none) recorded as its `parent`, and makes that one the
/// running one again after. The coroutine side sets `CURRENT` meanwhile:
/// see the file's docs.
#[inline(always)]
pub(super) fn enter<T>(meta: &Meta, f: impl FnOnce() -> T) -> T {
    let resumer = CURRENT.get();
    meta.parent.set(resumer);
    let result = f();
    CURRENT.set(resumer);
    result
}

/// Makes `meta`'s coroutine the running one: the first thing its root does
/// (and `close`, which may drop an unstarted body's captures).
#[inline(always)]
pub(super) fn start(meta: *const Meta) {
    CURRENT.set(meta);
}

/// Runs `f`, which suspends a coroutine, and makes the coroutine that was
/// running when `f` was called the running one again when `f` returns,
/// because the coroutine was resumed, or unwinds, because it is closed.
#[inline(always)]
pub(super) fn stay<T>(f: impl FnOnce() -> T) -> T {
    /// Restores `CURRENT` on drop.
    struct Stay(*const Meta);
    impl Drop for Stay {
        #[inline(always)]
        fn drop(&mut self) {
            CURRENT.set(self.0);
        }
    }
    let _stay = Stay(CURRENT.get());
    f()
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
