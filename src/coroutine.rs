//! Typed stackful coroutines with Lua 5.4's semantics.
//!
//! # Design
//!
//! A [`Coroutine`] is a corosensei coroutine on a [pooled stack](crate::stack)
//! plus a small `Meta` record. Everything Lua can ask about a coroutine is
//! derived from those two, so the hot path stays almost the raw switch:
//!
//! * **Running.** A thread-local pointer, `CURRENT`, names the `Meta` of the
//!   coroutine running on this thread, and each running `Meta` points at the
//!   one that resumed it (`parent`). `resume` pushes onto that chain before
//!   switching and pops after; a `Meta` lives in its coroutine, which `resume`
//!   borrows mutably for the whole switch, so every pointer in the chain is
//!   valid while it is in the chain. [`running`], [`is_yieldable`], handles
//!   and the stack-overflow handler read it. That is all `resume` does
//!   besides the switch itself.
//! * **Status.** The owner of a `Coroutine` can only see it suspended or
//!   dead (while it runs, `resume` holds `&mut self`), so [`Coroutine::status`]
//!   is read off corosensei's `done()`. A [`CoroutineHandle`], allocated on
//!   first request, records only *dead*; it derives *running* (its coroutine
//!   is `CURRENT`) and *normal* (it is further up the chain) when asked, so
//!   handles cost the switch nothing.
//! * **Panics.** The body runs inside `catch_unwind` at the root of its own
//!   stack, once per coroutine rather than once per switch; a panic becomes
//!   the body's result `Err(payload)`, which `resume` turns into
//!   [`ResumeError::Panicked`].
//! * **Close.** corosensei unwinds a suspended coroutine by panicking out of
//!   `suspend` with a private payload. That payload, too, ends at the root's
//!   `catch_unwind`, whose `Err` corosensei's close then discards: one unwind,
//!   as in raw corosensei. If it ends at the root of a *nested* coroutine (an
//!   enclosing coroutine suspended from inside it), `resume` recognises it by
//!   its type and lets it go on. [`catch_unwind`] uses the same test, so
//!   bodies can catch their own panics without swallowing a close
//!   (corosensei issue 57).

use std::any::{Any, TypeId};
use std::borrow::Cow;
use std::cell::{Cell, OnceCell};
use std::fmt;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, UnwindSafe};
use std::ptr;
use std::rc::Rc;
use std::sync::OnceLock;

pub use corosensei::CoroutineResult;
use corosensei::stack::Stack as _;

use crate::error::{Panic, ResumeError, payload_message};
use crate::stack::{self, PooledStack, StackError};

type Payload = Box<dyn Any + Send + 'static>;
/// The body's result is caught at its root: `Err` holds a panic payload.
type Inner<Input, Yield, Return> =
    corosensei::Coroutine<Input, Yield, Result<Return, Payload>, PooledStack>;

/// The state of a coroutine, with Lua's four meanings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// Created and not yet resumed, or stopped in [`Yielder::suspend`].
    Suspended,
    /// Running: only code inside the coroutine can see this state.
    Running,
    /// Alive but not running: it has resumed another coroutine and waits for
    /// it to yield or return.
    Normal,
    /// Finished: it returned, panicked, or was closed. It cannot be resumed.
    Dead,
}

impl Status {
    /// The name Lua's `coroutine.status` gives this state: `"suspended"`,
    /// `"running"`, `"normal"` or `"dead"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Suspended => "suspended",
            Status::Running => "running",
            Status::Normal => "normal",
            Status::Dead => "dead",
        }
    }
}

/// Prints Lua's name for the state, as [`Status::as_str`].
impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the stack-overflow handler, `running()` and `close` need to know
/// about a coroutine. Lives inside the coroutine; see the module docs.
#[repr(C)] // `parent`, written on every resume, right after corosensei's fields
struct Meta {
    /// While this coroutine runs: the `Meta` of the one that resumed it, or null.
    parent: Cell<*const Meta>,
    handle: OnceCell<Rc<HandleInner>>,
    /// True while `close` unwinds this coroutine.
    closing: Cell<bool>,
    name: Option<Cow<'static, str>>,
    stack_limit: usize,
    stack_size: usize,
}

impl Meta {
    /// Tells the handle, if any, that the coroutine has finished.
    #[inline]
    fn set_dead(&self) {
        if let Some(handle) = self.handle.get() {
            handle.dead.set(true);
        }
    }

    fn handle(&self, dead: bool) -> CoroutineHandle {
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
    static CURRENT: Cell<*const Meta> = const { Cell::new(ptr::null()) };
}

/// Runs `f` with `meta` as the running coroutine, on top of the chain of
/// running coroutines, and restores the previous one after.
#[inline(always)]
fn enter<T>(meta: &Meta, f: impl FnOnce() -> T) -> T {
    meta.parent.set(CURRENT.replace(meta));
    let result = f();
    // Read back from `meta` (in cache) rather than kept live across the switch.
    CURRENT.set(meta.parent.get());
    result
}

/// Called by the stack-overflow signal handler: if `addr` is in the guard
/// page of the coroutine running on this thread, describes the overflow.
pub(crate) fn describe_overflow(addr: usize, out: &mut dyn fmt::Write) -> bool {
    let Ok(meta) = CURRENT.try_with(Cell::get) else {
        return false;
    };
    // SAFETY: see `enter`; the faulting coroutine is the running one.
    let Some(meta) = (unsafe { meta.as_ref() }) else {
        return false;
    };
    let page = stack::page_size();
    // The guard page is the lowest page of the mapping; allow one more page
    // below for a frame that skipped over it.
    if addr < meta.stack_limit.saturating_sub(page) || addr >= meta.stack_limit + page {
        return false;
    }
    // No `thread::current()` here: it may allocate, and this runs in a
    // signal handler.
    let name = meta.name.as_deref().unwrap_or("<unnamed>");
    let _ = write!(
        out,
        "\ncoroutine '{name}' has overflowed its stack (stack size {} KiB)\n\
         help: give it a bigger stack: cogen::Builder::new().stack_size({})\n",
        meta.stack_size / 1024,
        meta.stack_size * 2,
    );
    true
}

/// The type of the payload corosensei unwinds a closing coroutine with.
///
/// corosensei keeps that type private, so cogen learns its `TypeId` once per
/// process, from a throwaway coroutine that it closes while catching.
fn close_unwind_type() -> TypeId {
    static TYPE: OnceLock<TypeId> = OnceLock::new();
    *TYPE.get_or_init(|| {
        static SEEN: OnceLock<TypeId> = OnceLock::new();
        let mut probe = corosensei::Coroutine::<(), (), ()>::new(|yielder, ()| {
            let caught = std::panic::catch_unwind(AssertUnwindSafe(|| yielder.suspend(())));
            if let Err(payload) = caught {
                let _ = SEEN.set(<dyn Any>::type_id(&*payload));
                std::panic::resume_unwind(payload);
            }
        });
        probe.resume(());
        probe.force_unwind();
        *SEEN
            .get()
            .expect("corosensei unwinds a closed coroutine with a panic")
    })
}

/// True if `payload` is the unwinding of a coroutine being closed or dropped,
/// which must be let through to the coroutine's root.
pub fn is_close_unwind(payload: &(dyn Any + Send)) -> bool {
    <dyn Any>::type_id(payload) == close_unwind_type()
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
    // SAFETY: see `enter`.
    unsafe { meta.as_ref() }.map(|m| m.handle(false))
}

/// An opaque identity of the coroutine running on this thread (null outside
/// any): the event loop uses it to tell a task's own coroutine from one
/// nested inside the task. Stable while that coroutine runs.
#[inline]
pub(crate) fn running_id() -> *const () {
    CURRENT.with(Cell::get).cast()
}

/// True inside a coroutine body, where [`Yielder::suspend`] can be called.
/// Lua's `coroutine.isyieldable()`.
pub fn is_yieldable() -> bool {
    !CURRENT.with(Cell::get).is_null()
}

/// [`std::panic::catch_unwind`] for code inside coroutine bodies.
///
/// Closing or dropping a suspended coroutine unwinds its stack with a panic
/// that must reach the coroutine's root. A body that catches panics with the
/// standard `catch_unwind` around a [`Yielder::suspend`] would swallow it
/// (corosensei issue 57: the body then runs on after its owner asked it to
/// stop, until its next `suspend` unwinds again). This function catches
/// ordinary panics like the standard one but lets that unwinding go on.
///
/// ```
/// let mut co = cogen::Coroutine::<(), (), ()>::new(|co, ()| {
///     let caught = cogen::catch_unwind(std::panic::AssertUnwindSafe(|| co.suspend(())));
///     unreachable!("a closed coroutine does not run on ({caught:?})");
/// });
/// co.resume(()).unwrap();
/// assert!(co.close().is_ok());
/// assert!(co.is_dead());
/// ```
pub fn catch_unwind<F: FnOnce() -> R + UnwindSafe, R>(f: F) -> std::thread::Result<R> {
    match std::panic::catch_unwind(f) {
        Err(payload) if is_close_unwind(&*payload) => std::panic::resume_unwind(payload),
        result => result,
    }
}

struct HandleInner {
    dead: Cell<bool>,
    name: Option<Cow<'static, str>>,
}

/// A cheap, cloneable handle to a coroutine, for code that does not own it:
/// it tells the coroutine's [`Status`] in all four states, and its name.
///
/// Get one from [`Coroutine::handle`] or [`running`]. A handle keeps only the
/// status record alive: once the coroutine is dropped, it reads
/// [`Status::Dead`].
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
        // `resume` (or `close`) is still on this thread's call stack.
        while let Some(m) = unsafe { meta.as_ref() } {
            if m.handle.get().is_some_and(|h| Rc::ptr_eq(h, &self.0)) {
                return status;
            }
            status = Status::Normal;
            meta = m.parent.get();
        }
        Status::Suspended
    }

    /// The coroutine's name, if its [`Builder`] gave it one.
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

/// The body's side of a coroutine: suspends it, passing values out and in.
///
/// A body receives `&Yielder<Input, Yield>` as its first argument and may
/// pass it down to any function it calls: a stackful coroutine can suspend
/// from any depth of its call stack.
#[repr(transparent)]
pub struct Yielder<Input, Yield> {
    inner: corosensei::Yielder<Input, Yield>,
}

impl<Input, Yield> Yielder<Input, Yield> {
    fn from_inner(inner: &corosensei::Yielder<Input, Yield>) -> &Self {
        // SAFETY: `Yielder` is a `repr(transparent)` wrapper of the corosensei type.
        unsafe { &*(inner as *const corosensei::Yielder<Input, Yield>).cast::<Self>() }
    }

    /// Suspends the coroutine: `value` becomes the result of the `resume`
    /// that is running it (Lua's `coroutine.yield(value)`), and the input of
    /// the next `resume` becomes this call's return value.
    ///
    /// If the coroutine is closed or dropped while suspended here, this call
    /// does not return: it unwinds the body's stack, running every destructor.
    ///
    /// Two things a body must not do with it:
    /// * call `suspend` from a destructor that runs while the coroutine is
    ///   being closed: the close unwinds by panicking, and a panic inside a
    ///   destructor during unwinding aborts the process (Lua raises an error
    ///   there instead);
    /// * hand it to a nested [`ScopedCoroutine`] and suspend through it from
    ///   there. That works (the whole chain of stacks suspends, and a close
    ///   unwinds through the child), but while the outer coroutine is
    ///   suspended from the child's stack, [`running`] and the child's
    ///   handle describe the child as the running one.
    #[inline]
    pub fn suspend(&self, value: Yield) -> Input {
        self.inner.suspend(value)
    }
}

impl<Input, Yield> fmt::Debug for Yielder<Input, Yield> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Yielder { .. }")
    }
}

/// Sets the stack size and the name of a coroutine before creating it.
///
/// ```
/// let mut co = cogen::Builder::new()
///     .name("counter")
///     .stack_size(64 * 1024)
///     .build(|co, start: u32| {
///         let mut n = start;
///         loop {
///             n += co.suspend(n);
///         }
///     });
/// let co: &mut cogen::Coroutine<u32, u32, ()> = &mut co;
/// assert_eq!(co.resume(10).unwrap().as_yield(), Some(10));
/// assert_eq!(co.resume(5).unwrap().as_yield(), Some(15));
/// assert_eq!(co.handle().name(), Some("counter"));
/// ```
#[derive(Clone, Debug)]
pub struct Builder {
    stack_size: usize,
    name: Option<Cow<'static, str>>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// A builder with [`DEFAULT_STACK_SIZE`](crate::stack::DEFAULT_STACK_SIZE) and no name.
    pub fn new() -> Self {
        Builder {
            stack_size: stack::DEFAULT_STACK_SIZE,
            name: None,
        }
    }

    /// The usable stack size in bytes, rounded up to a whole page and to at
    /// least [`MIN_STACK_SIZE`](crate::stack::MIN_STACK_SIZE).
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = bytes;
        self
    }

    /// A name, shown by handles, panics and the stack-overflow message.
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Creates the coroutine; nothing runs until its first `resume`.
    ///
    /// # Panics
    /// If no stack can be mapped; the message says why (see [`StackError`]).
    /// [`try_build`](Builder::try_build) returns that error instead.
    #[track_caller]
    #[inline]
    pub fn build<Input, Yield, Return, F>(self, body: F) -> Coroutine<Input, Yield, Return>
    where
        F: FnOnce(&Yielder<Input, Yield>, Input) -> Return + 'static,
        Input: 'static,
        Yield: 'static,
        Return: 'static,
    {
        self.try_build(body).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Creates the coroutine, or says why no stack could be mapped.
    #[inline]
    pub fn try_build<Input, Yield, Return, F>(
        self,
        body: F,
    ) -> Result<Coroutine<Input, Yield, Return>, StackError>
    where
        F: FnOnce(&Yielder<Input, Yield>, Input) -> Return + 'static,
        Input: 'static,
        Yield: 'static,
        Return: 'static,
    {
        // SAFETY: everything the body and the value types hold is 'static.
        let raw = unsafe { Raw::new(self, body)? };
        Ok(Coroutine {
            raw,
            returned: None,
        })
    }

    /// Creates a [`ScopedCoroutine`] that may borrow from its environment.
    ///
    /// # Panics
    /// If no stack can be mapped, like [`build`](Builder::build).
    #[track_caller]
    pub fn build_scoped<'a, Input, Yield, Return, F>(
        self,
        body: F,
    ) -> ScopedCoroutine<'a, Input, Yield, Return>
    where
        F: FnOnce(&Yielder<Input, Yield>, Input) -> Return + 'a,
    {
        self.try_build_scoped(body)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Creates a [`ScopedCoroutine`], or says why no stack could be mapped.
    pub fn try_build_scoped<'a, Input, Yield, Return, F>(
        self,
        body: F,
    ) -> Result<ScopedCoroutine<'a, Input, Yield, Return>, StackError>
    where
        F: FnOnce(&Yielder<Input, Yield>, Input) -> Return + 'a,
    {
        // SAFETY: the coroutine can only be resumed inside `scope`, which
        // drops it (unwinding its stack) before the borrows of `'a` end.
        let raw = unsafe { Raw::new(self, body)? };
        Ok(ScopedCoroutine {
            raw,
            borrow: PhantomData,
        })
    }
}

thread_local! {
    /// A panic raised while a coroutine is being closed (by the drop of a
    /// never-started body, or by a body that caught the close's unwinding
    /// and then panicked), for `close` to report: corosensei's close drops
    /// whatever the body returns.
    static CLOSE_PANIC: Cell<Option<Payload>> = const { Cell::new(None) };
}

/// What the root of a coroutine does with a panic it caught.
#[cold]
fn caught_at_root(payload: Payload) -> Payload {
    // SAFETY: the coroutine whose root this is, is the running one (see `enter`).
    let closing = unsafe { CURRENT.with(Cell::get).as_ref() }.is_some_and(|m| m.closing.get());
    if closing && !is_close_unwind(&*payload) {
        CLOSE_PANIC.set(Some(payload));
        Box::new(())
    } else {
        payload
    }
}

/// A body that has not started yet.
///
/// Closing a never-resumed coroutine drops its body closure, and with it
/// whatever the closure captured. If such a drop panicked inside corosensei,
/// the coroutine would still look unstarted and its captures would be
/// dropped again later. This guard catches that panic instead and leaves it
/// for `close` to report.
struct Unstarted<F>(ManuallyDrop<F>);

impl<F> Unstarted<F> {
    #[inline(always)]
    fn start(self) -> F {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped, so the body is taken exactly once.
        unsafe { ManuallyDrop::take(&mut this.0) }
    }
}

impl<F> Drop for Unstarted<F> {
    fn drop(&mut self) {
        // SAFETY: `start` did not run (it forgets `self`), so the body is still here.
        let body = unsafe { ManuallyDrop::take(&mut self.0) };
        if let Err(payload) = std::panic::catch_unwind(AssertUnwindSafe(|| drop(body))) {
            CLOSE_PANIC.set(Some(payload));
        }
    }
}

/// The shared machinery of [`Coroutine`] and [`ScopedCoroutine`].
///
/// `repr(C)` keeps what a resume touches together: corosensei's fields
/// (stack pointer, stack base) and then `meta.parent`.
#[repr(C)]
struct Raw<Input, Yield, Return> {
    inner: Inner<Input, Yield, Return>,
    meta: Meta,
    /// The message of the panic that killed the coroutine, until `close`
    /// reports it (Lua's close returns `false, err` for a coroutine in error).
    death: Option<Box<str>>,
}

impl<Input, Yield, Return> Raw<Input, Yield, Return> {
    /// # Safety
    /// Whatever `body`, `Input`, `Yield` and `Return` borrow must outlive the
    /// coroutine's last resume and its drop, and the coroutine must not be
    /// leaked while such borrows are on its stack.
    #[inline]
    unsafe fn new<F>(builder: Builder, body: F) -> Result<Self, StackError>
    where
        F: FnOnce(&Yielder<Input, Yield>, Input) -> Return,
    {
        let Builder { stack_size, name } = builder;
        let stack = PooledStack::take(stack::effective_size(stack_size)?)?;
        let meta = Meta {
            handle: OnceCell::new(),
            parent: Cell::new(ptr::null()),
            closing: Cell::new(false),
            name,
            stack_limit: stack.limit().get(),
            stack_size: stack.size(),
        };
        let body = Unstarted(ManuallyDrop::new(body));
        let root = move |yielder: &corosensei::Yielder<Input, Yield>, input: Input| {
            let body = body.start();
            std::panic::catch_unwind(AssertUnwindSafe(|| {
                body(Yielder::from_inner(yielder), input)
            }))
            .map_err(caught_at_root)
        };
        // SAFETY: forwarded to our caller.
        let inner = unsafe { corosensei::Coroutine::with_stack_unchecked(stack, root) };
        Ok(Raw {
            inner,
            meta,
            death: None,
        })
    }

    #[inline]
    fn status(&self) -> Status {
        if self.inner.done() {
            Status::Dead
        } else {
            Status::Suspended
        }
    }

    #[inline(always)]
    fn resume(
        &mut self,
        input: Input,
    ) -> Result<CoroutineResult<Yield, Return>, ResumeError<Input>> {
        if self.inner.done() {
            return Err(ResumeError::Dead(input));
        }
        let inner = &mut self.inner;
        match enter(&self.meta, || inner.resume(input)) {
            CoroutineResult::Yield(value) => Ok(CoroutineResult::Yield(value)),
            CoroutineResult::Return(Ok(value)) => {
                self.meta.set_dead();
                Ok(CoroutineResult::Return(value))
            }
            CoroutineResult::Return(Err(payload)) => Err(ResumeError::Panicked(self.died(payload))),
        }
    }

    #[cold]
    fn died(&mut self, payload: Payload) -> Panic {
        self.meta.set_dead();
        if is_close_unwind(&*payload) {
            // Not this coroutine's panic: an enclosing coroutine that was
            // suspended from inside this one's stack is being closed, and the
            // unwinding must go on to that coroutine's root.
            std::panic::resume_unwind(payload);
        }
        self.death = Some(payload_message(&*payload).into());
        Panic::new(payload, self.meta.name.clone())
    }

    fn close(&mut self) -> Result<(), Panic> {
        if self.inner.done() {
            return match self.death.take() {
                Some(message) => Err(Panic::new(
                    Box::new(String::from(message)),
                    self.meta.name.clone(),
                )),
                None => Ok(()),
            };
        }
        let inner = &mut self.inner;
        self.meta.closing.set(true);
        let result = enter(&self.meta, || {
            std::panic::catch_unwind(AssertUnwindSafe(|| inner.force_unwind()))
        });
        self.meta.closing.set(false);
        self.meta.set_dead();
        let result = result.and_then(|()| CLOSE_PANIC.take().map_or(Ok(()), Err));
        result.map_err(|payload| Panic::new(payload, self.meta.name.clone()))
    }
}

impl<Input, Yield, Return> Drop for Raw<Input, Yield, Return> {
    #[inline]
    fn drop(&mut self) {
        // A finished coroutine (the common case) has nothing to unwind, and
        // an unreported death panic needs no `Panic` built just to be dropped.
        if !self.inner.done() {
            // Like Lua's garbage collector, dropping does not report errors.
            let _ = self.close();
        }
    }
}

/// A typed stackful coroutine: Lua's `coroutine.create`.
///
/// `Input` is what each [`resume`](Coroutine::resume) passes in, `Yield` what
/// [`Yielder::suspend`] passes out, and `Return` what the body returns.
///
/// ```
/// use cogen::{Coroutine, CoroutineResult};
///
/// // Lua: co = coroutine.create(function(a, b) local c, d = coroutine.yield(a + b) return c * d end)
/// let mut co = Coroutine::new(|co, (a, b): (i32, i32)| {
///     let (c, d) = co.suspend(a + b);
///     c * d
/// });
/// assert_eq!(co.resume((1, 2)).unwrap(), CoroutineResult::Yield(3));
/// assert_eq!(co.resume((4, 5)).unwrap(), CoroutineResult::Return(20));
/// assert_eq!(co.resume((0, 0)).unwrap_err().into_input(), Some((0, 0))); // dead
/// ```
///
/// # Resuming a running coroutine
///
/// Lua raises "cannot resume non-suspended coroutine" at run time. In cogen
/// this does not compile: `resume` takes `&mut self`, and the running
/// coroutine's owner is borrowed for as long as it runs.
///
/// # Threads
///
/// A coroutine is neither `Send` nor `Sync`: its stack may hold references to
/// thread-locals, and moving it to another thread would leave them dangling.
///
/// ```compile_fail
/// fn assert_send<T: Send>(_: T) {}
/// assert_send(cogen::Coroutine::<(), (), ()>::new(|_, ()| {}));
/// ```
///
/// # Drop
///
/// Dropping a suspended coroutine unwinds its stack: every value alive in
/// the body is dropped exactly once, as [`close`](Coroutine::close) does, but
/// any panic on the way is discarded. Its stack then goes back to the pool.
#[repr(C)] // `raw` first: see `Raw`
pub struct Coroutine<Input, Yield, Return = ()> {
    raw: Raw<Input, Yield, Return>,
    returned: Option<Return>,
}

impl<Input, Yield, Return> Coroutine<Input, Yield, Return> {
    /// Creates a coroutine running `body` on a pooled stack of the default
    /// size. Nothing runs until the first [`resume`](Coroutine::resume),
    /// whose input becomes the body's second argument.
    ///
    /// # Panics
    /// If no stack can be mapped, with a message that says why (see
    /// [`StackError`]); [`Builder::try_build`] returns the error instead.
    #[track_caller]
    pub fn new<F>(body: F) -> Self
    where
        F: FnOnce(&Yielder<Input, Yield>, Input) -> Return + 'static,
        Input: 'static,
        Yield: 'static,
        Return: 'static,
    {
        Builder::new().build(body)
    }

    /// Runs the coroutine until it suspends or returns: Lua's `coroutine.resume`.
    ///
    /// * `Ok(CoroutineResult::Yield(y))`: the body called `suspend(y)`.
    /// * `Ok(CoroutineResult::Return(r))`: the body returned `r`; the
    ///   coroutine is now dead.
    /// * `Err(ResumeError::Panicked(p))`: the body panicked; it is now dead.
    /// * `Err(ResumeError::Dead(input))`: it was already dead; `input` is
    ///   handed back.
    #[inline]
    pub fn resume(
        &mut self,
        input: Input,
    ) -> Result<CoroutineResult<Yield, Return>, ResumeError<Input>> {
        self.raw.resume(input)
    }

    /// [`Status::Suspended`] or [`Status::Dead`]: the owner cannot observe
    /// the coroutine while it runs. Use a [`handle`](Coroutine::handle) to see
    /// `Running` and `Normal` too.
    #[inline]
    pub fn status(&self) -> Status {
        self.raw.status()
    }

    /// True once the coroutine has returned, panicked or been closed.
    #[inline]
    pub fn is_dead(&self) -> bool {
        self.raw.inner.done()
    }

    /// A cheap, cloneable handle that tells this coroutine's status from
    /// anywhere, including from inside it.
    pub fn handle(&self) -> CoroutineHandle {
        self.raw.meta.handle(self.is_dead())
    }

    /// The name given by the [`Builder`], if any.
    pub fn name(&self) -> Option<&str> {
        self.raw.meta.name.as_deref()
    }

    /// Lua 5.4's `coroutine.close`: unwinds a suspended coroutine, running
    /// every destructor on its stack once, and leaves it dead.
    ///
    /// Returns `Err` if a destructor panicked while unwinding, or if the
    /// coroutine had died by a panic that no `close` has reported yet (the
    /// payload went to `resume`; this error carries its message). Closing a
    /// dead or never-started coroutine is fine, and so is closing twice.
    pub fn close(&mut self) -> Result<(), Panic> {
        self.raw.close()
    }

    /// The value the body returned, when the coroutine was driven as an
    /// [`Iterator`] (whose items are only the yielded values).
    pub fn return_value(&self) -> Option<&Return> {
        self.returned.as_ref()
    }

    /// Takes the value the body returned while driven as an iterator.
    pub fn take_return_value(&mut self) -> Option<Return> {
        self.returned.take()
    }

    pub(crate) fn store_return(&mut self, value: Return) {
        self.returned = Some(value);
    }

    /// Forgets the death panic once it has been re-raised in the caller (by
    /// the iterator or `wrap`), so `close` does not report it a second time,
    /// as Lua's `wrap` closes a coroutine that failed.
    pub(crate) fn forget_panic(&mut self) {
        self.raw.death = None;
    }
}

impl<Input, Yield, Return> fmt::Debug for Coroutine<Input, Yield, Return> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Coroutine")
            .field("name", &self.name())
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

/// A coroutine whose body and values may borrow from the caller's stack.
///
/// It can only be resumed inside [`scope`](ScopedCoroutine::scope), which
/// drops it, unwinding its stack, before returning. That makes borrowing
/// sound by construction: a coroutine that borrows cannot be leaked with
/// `mem::forget` while its stack still holds those borrows (corosensei
/// issues 27, 59 and 60 show what goes wrong otherwise).
///
/// ```
/// use cogen::ScopedCoroutine;
///
/// let words = vec!["a", "bb", "ccc"];
/// let mut total = 0;
/// ScopedCoroutine::new(|co, ()| {
///     for w in &words {
///         total += w.len();
///         co.suspend(*w);
///     }
/// })
/// .scope(|co| {
///     assert_eq!(co.resume(()).unwrap().as_yield(), Some("a"));
///     assert_eq!(co.resume(()).unwrap().as_yield(), Some("bb"));
/// });
/// assert_eq!(total, 3); // the coroutine was dropped before "ccc"
/// ```
pub struct ScopedCoroutine<'a, Input, Yield, Return = ()> {
    raw: Raw<Input, Yield, Return>,
    borrow: PhantomData<&'a mut ()>,
}

impl<'a, Input, Yield, Return> ScopedCoroutine<'a, Input, Yield, Return> {
    /// Creates a scoped coroutine on a pooled stack of the default size.
    ///
    /// # Panics
    /// If no stack can be mapped, like [`Coroutine::new`].
    #[track_caller]
    pub fn new<F>(body: F) -> Self
    where
        F: FnOnce(&Yielder<Input, Yield>, Input) -> Return + 'a,
    {
        Builder::new().build_scoped(body)
    }

    /// Runs `f` with access to the coroutine, then drops the coroutine
    /// (unwinding it if it is still suspended) and returns `f`'s result.
    pub fn scope<T>(mut self, f: impl FnOnce(&mut ScopedRef<'_, Input, Yield, Return>) -> T) -> T {
        f(&mut ScopedRef { raw: &mut self.raw })
    }
}

impl<Input, Yield, Return> fmt::Debug for ScopedCoroutine<'_, Input, Yield, Return> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedCoroutine")
            .field("name", &self.raw.meta.name)
            .field("status", &self.raw.status())
            .finish_non_exhaustive()
    }
}

/// Access to a [`ScopedCoroutine`] inside its scope, with the same API as
/// [`Coroutine`].
pub struct ScopedRef<'s, Input, Yield, Return = ()> {
    raw: &'s mut Raw<Input, Yield, Return>,
}

impl<Input, Yield, Return> ScopedRef<'_, Input, Yield, Return> {
    /// See [`Coroutine::resume`].
    #[inline]
    pub fn resume(
        &mut self,
        input: Input,
    ) -> Result<CoroutineResult<Yield, Return>, ResumeError<Input>> {
        self.raw.resume(input)
    }

    /// See [`Coroutine::status`].
    #[inline]
    pub fn status(&self) -> Status {
        self.raw.status()
    }

    /// See [`Coroutine::is_dead`].
    #[inline]
    pub fn is_dead(&self) -> bool {
        self.raw.inner.done()
    }

    /// See [`Coroutine::name`].
    pub fn name(&self) -> Option<&str> {
        self.raw.meta.name.as_deref()
    }

    /// See [`Coroutine::handle`].
    pub fn handle(&self) -> CoroutineHandle {
        self.raw.meta.handle(self.raw.inner.done())
    }

    /// See [`Coroutine::close`].
    pub fn close(&mut self) -> Result<(), Panic> {
        self.raw.close()
    }
}

impl<Input, Yield, Return> fmt::Debug for ScopedRef<'_, Input, Yield, Return> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedRef")
            .field("name", &self.raw.meta.name)
            .field("status", &self.raw.status())
            .finish_non_exhaustive()
    }
}
