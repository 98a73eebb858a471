//! The chain of coroutines running on this thread, and the handles that read it.
//!
//! This file owns `Meta`, the record each coroutine keeps for everything that
//! asks about it from outside its body; how the chain of running coroutines
//! is read (the running one, and who resumed whom); the queries Lua offers
//! on it ([`running`], [`is_yieldable`]); and [`CoroutineHandle`], which
//! derives a coroutine's status from it.
//!
//! # Nothing is recorded on a switch
//!
//! The chain is read off the machine's own state, when asked, so that a
//! resume and a suspend cost what corosensei's do:
//!
//! * **Who runs.** Code runs on the stack of the coroutine that is running.
//!   The [`stack`](crate::stack) layer knows every stack this thread has
//!   mapped (`stack_holding`), so the stack that holds the current stack
//!   pointer is the running coroutine's, and its `Meta` sits at a fixed
//!   place at its top. An address on no such stack (the thread's own stack)
//!   means no coroutine runs.
//! * **Who resumed it.** corosensei's resume writes the resumer's stack
//!   pointer into a word near the base of the resumed coroutine's stack,
//!   its link to the resumer (its `Yielder` is that word; `probe.rs` learns
//!   where it lies and checks that it holds what is expected). The stack
//!   holding that stack pointer is the resumer's, and so on down to the
//!   thread's stack.
//!
//! Code on a stack that is not a cogen coroutine's therefore counts as
//! outside any coroutine: the thread's own stack, and also a stack that
//! another library switched to (a raw corosensei coroutine, say) inside a
//! cogen body. There `running()` is `None`, and the chain seen from there
//! stops at that stack (a cogen coroutine that resumed it reads as
//! suspended, not normal).
//!
//! That reads right for a suspend from inside a nested coroutine too. A
//! body may hand its `Yielder` to a nested
//! [`ScopedCoroutine`](super::ScopedCoroutine) and suspend through it from
//! there: the whole chain from the nested coroutine up to the outer one
//! stops at once, and resuming the outer one continues the nested one. The
//! code then runs on the nested coroutine's stack, so the nested coroutine
//! is running; its link still holds the stack pointer of the outer body's
//! `resume` of it, so the outer one is normal; and the outer one's link
//! holds its new resumer's. The chain reads as Lua would have it.
//!
//! A coroutine closed before it ever ran is started for the close (its root
//! drops the body without calling it), so that the body's captures are
//! dropped on its own stack, with the coroutine running, like every other
//! destructor of the coroutine's.
//!
//! # Why every pointer read is valid
//!
//! A `Meta` lives in bytes set aside at the top of its coroutine's stack
//! (`Meta::place_on`), a memory mapping that does not move, so its address
//! never changes while the coroutine lives, however the owner moves the
//! [`Coroutine`](super::Coroutine) value. `Raw` places it before the
//! coroutine can first run and drops it after the coroutine has finished,
//! just before the stack goes back to the pool. Nothing runs on a stack
//! without a live `Meta`: the probe of `probe.rs`, on the first stack
//! mapped, runs with a nameless one placed for it (it asks nothing of the
//! chain itself, but a global allocator it calls may: there `running()` is
//! a nameless coroutine, which reads dead once the probe is over). The
//! chain is followed only from the current stack pointer: each stack on it
//! runs code or waits in a `resume` (or `close`) that is still on this
//! thread's call stack, so its coroutine has run, has not finished and
//! cannot be dropped meanwhile, and its link holds the stack pointer of
//! that `resume`'s caller.
//!
//! # Where destructors run
//!
//! What a destructor sees of the chain follows from the stack it runs on.
//! The body's values dropped by `close`, by dropping the coroutine, or by
//! a panic unwinding out of the body, and a never-started body's captures,
//! are dropped on the coroutine's stack: there it is running, and its
//! closer or resumer is normal. A return value, or a panic's payload, is
//! dropped by whoever holds it, on that code's stack: the coroutine reads
//! dead there. Coroutines may be created, resumed and dropped from
//! thread-locals' destructors as the thread ends, before or after cogen's
//! own (which hold no state that a late one needs; once the pool is closed,
//! each stack is mapped for its coroutine and unmapped after it).

use std::borrow::Cow;
use std::cell::{Cell, OnceCell};
use std::fmt;
use std::ptr::NonNull;
use std::rc::Rc;

use super::{Status, probe};
use crate::stack::{self, PooledStack, StackBounds};

/// The bytes set aside at the top of each stack for its `Meta`.
///
/// More than the `Meta` needs: the size decides where corosensei's link to
/// the resumer (16 bytes below the base it is given, 32 in `sanitizer`
/// builds), which every resume writes, and the body's first frames fall
/// across cache lines, and 80 measured fewest cache misses per resume in the
/// round robin over 10,000 coroutines of `tools/scripts/count_instructions.sh`.
const META_SPACE: usize = 80;

const _: () = assert!(
    size_of::<Meta>() <= META_SPACE && align_of::<Meta>() <= 16 && META_SPACE.is_multiple_of(16)
);

/// What the stack-overflow handler, `running()` and `close` need to know
/// about a coroutine. Lives at the top of the coroutine's stack; see the
/// file's docs.
pub(super) struct Meta {
    pub(super) handle: OnceCell<Rc<HandleInner>>,
    pub(super) name: Option<Cow<'static, str>>,
    /// Set while `close` unwinds the coroutine (or starts it only to drop
    /// its body).
    closing: Cell<bool>,
}

impl Meta {
    /// A coroutine that has not run, with no handle yet.
    #[inline]
    pub(super) fn new(name: Option<Cow<'static, str>>) -> Self {
        Meta {
            handle: OnceCell::new(),
            name,
            closing: Cell::new(false),
        }
    }

    /// True while `close` unwinds this coroutine.
    #[inline]
    pub(super) fn closing(&self) -> bool {
        self.closing.get()
    }

    #[inline]
    pub(super) fn set_closing(&self, closing: bool) {
        self.closing.set(closing);
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

    /// The `Meta` of the coroutine on the stack `bounds`, if one runs there
    /// or waits in a `resume` there (see the file's docs).
    #[inline]
    pub(super) fn of_stack(bounds: StackBounds) -> NonNull<Meta> {
        // SAFETY: the colored top of a mapping is not zero, nor `META_SPACE`
        // above it.
        unsafe { NonNull::new_unchecked((bounds.colored_top() - META_SPACE) as *mut Meta) }
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

    /// The coroutine that resumed this one, or `None` if the thread's own
    /// stack did. Only for a coroutine on the chain (see the file's docs).
    fn resumer(&self) -> Option<&Meta> {
        let below = probe::learnt()?.link_below_base;
        let link = (self as *const Meta as usize) - below;
        // SAFETY: this coroutine is on the chain, so it has run and not
        // finished: its link, a word on its stack (which `probe.rs`
        // located), holds the stack pointer of its resumer.
        let resumer_sp = unsafe { (link as *const usize).read() };
        // SAFETY: as in `running_meta`: that resumer waits in its `resume`.
        stack::stack_holding(resumer_sp).map(|b| unsafe { Meta::of_stack(b).as_ref() })
    }
}

/// The `Meta` of the coroutine running on this thread, if any.
#[inline]
fn running_meta<'a>() -> Option<&'a Meta> {
    // SAFETY: code runs on this stack, so it is a coroutine's that has
    // started and not finished: its `Meta` is alive, and stays so while
    // the caller, which runs on it, looks (see the file's docs).
    stack::stack_holding(stack_pointer()).map(|b| unsafe { Meta::of_stack(b).as_ref() })
}

/// An address on the stack this code runs on: the stack pointer.
#[inline(always)]
pub(crate) fn stack_pointer() -> usize {
    let sp: usize;
    // SAFETY: reads a register; touches no memory, no flags, no stack.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        std::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags));
    }
    // SAFETY: as above.
    #[cfg(target_arch = "aarch64")]
    unsafe {
        std::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags));
    }
    // Elsewhere, the address of a local (not of a constant, which would be
    // promoted to a static). Under AddressSanitizer's detection of stack
    // use after return, a local may live on a fake stack instead: these
    // targets are not supported there.
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let marker = 0u8;
        sp = std::hint::black_box(&marker) as *const u8 as usize;
    }
    sp
}

/// The stack of a coroutine that has run on this thread, as an identity to
/// compare: for state that belongs to the frames on one stack (the event
/// loop's time limits), which applies to code whose chain holds that stack.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct StackId(NonNull<Meta>);

/// The cogen coroutine stack that holds `addr`, if any.
pub(crate) fn stack_of(addr: usize) -> Option<StackId> {
    stack::stack_holding(addr).map(|b| StackId(Meta::of_stack(b)))
}

/// The stacks on this thread's chain of running coroutines, as seen from
/// here: the running one first, then each one's resumer, as far as they
/// are cogen coroutines' (the walk stops at the thread's own stack, and
/// at a stack of another library, beyond which the chain cannot be read).
pub(crate) fn chain() -> impl Iterator<Item = StackId> {
    let mut meta = running_meta();
    std::iter::from_fn(move || {
        let m = meta?;
        meta = m.resumer();
        Some(StackId(NonNull::from(m)))
    })
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
    running_meta().map(|m| m.handle(false))
}

/// True inside a coroutine body, where [`Yielder::suspend`](super::Yielder::suspend)
/// can be called. Lua's `coroutine.isyieldable()`.
pub fn is_yieldable() -> bool {
    running_meta().is_some()
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
        let mut meta = running_meta();
        let mut status = Status::Running;
        while let Some(m) = meta {
            if m.handle.get().is_some_and(|h| Rc::ptr_eq(h, &self.0)) {
                return status;
            }
            status = Status::Normal;
            meta = m.resumer();
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
