//! The raw layer over corosensei that [`Coroutine`](super::Coroutine) and
//! [`ScopedCoroutine`](super::ScopedCoroutine) share.
//!
//! This file owns `Raw`: a corosensei coroutine on a pooled stack, a
//! pointer to its `Meta` (which lives at the top of that stack, see
//! `chain.rs`), and the message of a panic that killed it. It owns what
//! happens at the root of a coroutine's stack (`catch_unwind` around the
//! body, and `caught_at_root` for the panic it catches), resume, close and
//! drop, and `Unstarted`, which keeps a never-started body from being
//! dropped twice.

use std::any::Any;
use std::cell::Cell;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::panic::AssertUnwindSafe;
use std::ptr::NonNull;

use corosensei::CoroutineResult;

use super::chain::Meta;
use super::unwind::{is_close_unwind, passes_through};
use super::{Builder, Status, Yielder, probe};
use crate::error::{Panic, ResumeError, payload_message};
use crate::stack::{self, PooledStack, StackError, StackUser};

type Payload = Box<dyn Any + Send + 'static>;
/// The body's result is caught at its root: `Err` holds a panic payload.
/// The input is uninitialised only in the resume that starts a coroutine
/// for `close`, whose root then drops the body without calling it.
type Inner<Input, Yield, Return> =
    corosensei::Coroutine<MaybeUninit<Input>, Yield, Result<Return, Payload>, PooledStack>;

thread_local! {
    /// A panic raised while a coroutine is being closed (by the drop of a
    /// never-started body, or by a body that caught the close's unwinding
    /// and then panicked), for `close` to report: corosensei's close drops
    /// whatever the body returns.
    ///
    /// `ManuallyDrop` so that the thread-local has no destructor: a
    /// coroutine may be closed by another thread-local's destructor, after
    /// a slot with a destructor would have been destroyed (then reading it
    /// panics, and a panic in a thread-local destructor aborts). Use only
    /// through [`stash_close_panic`] and [`take_close_panic`]; the slot is
    /// empty again when each `close` returns, so nothing is left in it to
    /// leak when the thread ends.
    static CLOSE_PANIC: Cell<ManuallyDrop<Option<Payload>>> =
        const { Cell::new(ManuallyDrop::new(None)) };
}

/// Keeps `payload` for the `close` under way to report.
fn stash_close_panic(payload: Payload) {
    // The slot holds at most one panic per close; a second one replaces
    // the first, which is dropped as the plain `Cell` would.
    drop(ManuallyDrop::into_inner(
        CLOSE_PANIC.replace(ManuallyDrop::new(Some(payload))),
    ));
}

/// The panic stashed during the `close` under way, if any, emptying the slot.
fn take_close_panic() -> Option<Payload> {
    ManuallyDrop::into_inner(CLOSE_PANIC.replace(ManuallyDrop::new(None)))
}

/// What the root of the coroutine `meta` does with a panic it caught.
#[cold]
fn caught_at_root(meta: &Meta, payload: Payload) -> Payload {
    if meta.closing() && !is_close_unwind(&*payload) {
        stash_close_panic(payload);
        Box::new(())
    } else {
        payload
    }
}

/// What the coroutine layer hands the stack layer with every stack: the
/// overflow describer, and the probe of corosensei's internals, which must
/// run before the first coroutine does (and before any close, which must not
/// map a stack), on the first stack mapped.
pub(super) const STACK_USER: StackUser = StackUser {
    describe_overflow: super::overflow::describe_overflow,
    prepare,
};

/// Runs the probe on a newly mapped `stack` if this process has not yet,
/// with a nameless `Meta` in its place at the top for the while.
///
/// The probe runs no code of cogen's users, but it allocates (the payload
/// it unwinds with), and a global allocator may ask about the chain
/// (`running()`) from there: it would find this stack registered and read
/// its `Meta`, which must then be a valid one.
#[cold]
fn prepare(stack: &mut PooledStack) {
    if probe::learnt().is_some() {
        return;
    }
    // `stack` is the stack layer's view of the new mapping, dropped unused
    // after this: the bytes it sets aside here go back with it.
    let meta = Meta::new(None).place_on(stack);
    probe::learn(stack);
    // SAFETY: placed above; the probe coroutine has been dropped, so no
    // code runs on the stack any more and no chain reaches it.
    unsafe {
        // A handle that such an allocator got from `running()` reads the
        // probe dead from now on, like that of any finished coroutine.
        meta.as_ref().set_dead();
        meta.drop_in_place();
    }
}

/// The largest body [`Raw::new`] moves onto the coroutine's stack by value.
/// corosensei takes at most 1 KiB for the root closure, which holds the body
/// beside the `Meta` pointer; half of it leaves room for that and for
/// alignment.
const MAX_INLINE_BODY: usize = 512;

/// A body that has not started yet.
///
/// Closing a never-resumed coroutine starts it only for its root to drop the
/// body closure, and with it whatever the closure captured, on the
/// coroutine's own stack. This guard catches a panic of that drop, which
/// would otherwise be taken for the body's, and leaves it for `close` to
/// report. (corosensei drops the closure itself, on the dropper's stack, if
/// the coroutine is dropped unstarted; `Raw` never lets that happen, and the
/// guard would cover it too.)
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
        // `crate::catch_unwind`: an unwinding that is not this drop's panic
        // (a destructor that suspended an enclosing coroutine which is now
        // being closed, or waited in a task whose time limit expired or
        // which was cancelled) goes on to its root or scope.
        if let Err(payload) = crate::catch_unwind(AssertUnwindSafe(|| drop(body))) {
            stash_close_panic(payload);
        }
    }
}

/// The shared machinery of [`Coroutine`](super::Coroutine) and
/// [`ScopedCoroutine`](super::ScopedCoroutine).
///
/// `repr(C)` keeps what a resume touches together: corosensei's fields
/// (stack pointer, stack base) and then `meta`.
#[repr(C)]
pub(super) struct Raw<Input, Yield, Return> {
    pub(super) inner: Inner<Input, Yield, Return>,
    /// The `Meta` at the top of `inner`'s stack: it does not move when the
    /// `Raw` does. Written by `new`, dropped by `drop`.
    meta: NonNull<Meta>,
    /// The message of the panic that killed the coroutine, until `close`
    /// reports it (Lua's close returns `false, err` for a coroutine in error).
    pub(super) death: Option<Box<str>>,
}

impl<Input, Yield, Return> Raw<Input, Yield, Return> {
    /// # Safety
    /// Whatever `body`, `Input`, `Yield` and `Return` borrow must outlive the
    /// coroutine's last resume and its drop, and the coroutine must not be
    /// leaked while such borrows are on its stack.
    #[inline]
    pub(super) unsafe fn new<F>(builder: Builder, body: F) -> Result<Self, StackError>
    where
        F: FnOnce(&Yielder<Input, Yield>, Input) -> Return,
    {
        // corosensei moves the root closure onto the new stack and refuses
        // one over 1 KiB ("type is too big to transfer"): a body that
        // captures more (an array, a pipeline stage holding a big upstream)
        // goes in a box, and the root holds the box. Decided at compile time.
        // Alignment counts too: a zero-sized body aligned to 4 KiB pads the
        // root closure to 4 KiB (a box of it allocates nothing).
        if const { size_of::<F>() > MAX_INLINE_BODY || align_of::<F>() > MAX_INLINE_BODY } {
            let body = Box::new(body);
            // SAFETY: forwarded to our caller; the box borrows what `body` did.
            return unsafe {
                Self::new_inline(builder, move |y: &Yielder<Input, Yield>, i| body(y, i))
            };
        }
        // SAFETY: forwarded to our caller.
        unsafe { Self::new_inline(builder, body) }
    }

    /// [`new`](Raw::new) for a body small enough to move onto the stack.
    ///
    /// # Safety
    /// As `new`.
    #[inline]
    unsafe fn new_inline<F>(builder: Builder, body: F) -> Result<Self, StackError>
    where
        F: FnOnce(&Yielder<Input, Yield>, Input) -> Return,
    {
        let Builder { stack_size, name } = builder;
        let mut stack = PooledStack::take(stack::effective_size(stack_size)?, STACK_USER)?;
        let meta = Meta::new(name).place_on(&mut stack);
        let body = Unstarted(ManuallyDrop::new(body));
        let root = move |yielder: &corosensei::Yielder<MaybeUninit<Input>, Yield>,
                         input: MaybeUninit<Input>| {
            // SAFETY: the root runs on the stack that holds the `Meta`.
            let meta = unsafe { meta.as_ref() };
            if meta.closing() {
                // Started by `close` only to drop the body here, on its
                // own stack (see `chain.rs`); a panic of that drop goes
                // to `CLOSE_PANIC`.
                drop(body);
                return Err(Box::new(()) as Payload);
            }
            let body = body.start();
            // SAFETY: only a closing coroutine is started without an input.
            let input = unsafe { input.assume_init() };
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
                body(Yielder::from_inner(yielder), input)
            }));
            // The body is over: its handles read dead from now on (the
            // resumer would do it one switch later, on its hot path).
            meta.set_dead();
            result.map_err(|payload| caught_at_root(meta, payload))
        };
        // SAFETY: forwarded to our caller.
        let inner = unsafe { corosensei::Coroutine::with_stack_unchecked(stack, root) };
        Ok(Raw {
            inner,
            meta,
            death: None,
        })
    }

    /// The coroutine's `Meta`.
    #[inline(always)]
    pub(super) fn meta(&self) -> &Meta {
        // SAFETY: it lives on `inner`'s stack, which `self` owns.
        unsafe { self.meta.as_ref() }
    }

    /// The address of the `Meta`, at the top of the coroutine's stack:
    /// where its first resume reads (corosensei's link and the root's
    /// frame lie just below it).
    #[inline(always)]
    pub(super) fn stack_top(&self) -> usize {
        self.meta.as_ptr() as usize
    }

    /// Asks the CPU to start loading the top of the coroutine's stack: the
    /// `Meta`'s line, which holds corosensei's link to the resumer, and the
    /// lines below it, where the root's frames begin. Reads only `self`.
    #[inline(always)]
    pub(super) fn prefetch(&self) {
        crate::stack::prefetch_stack_lines(self.stack_top());
    }

    #[inline]
    pub(super) fn status(&self) -> Status {
        if self.inner.done() {
            Status::Dead
        } else {
            Status::Suspended
        }
    }

    #[inline(always)]
    pub(super) fn resume(
        &mut self,
        input: Input,
    ) -> Result<CoroutineResult<Yield, Return>, ResumeError<Input>> {
        if self.inner.done() {
            std::hint::cold_path();
            return Err(ResumeError::Dead(input));
        }
        match self.inner.resume(MaybeUninit::new(input)) {
            CoroutineResult::Yield(value) => Ok(CoroutineResult::Yield(value)),
            CoroutineResult::Return(Ok(value)) => Ok(CoroutineResult::Return(value)),
            CoroutineResult::Return(Err(payload)) => {
                std::hint::cold_path();
                Err(ResumeError::Panicked(self.died(payload)))
            }
        }
    }

    #[cold]
    fn died(&mut self, payload: Payload) -> Panic {
        self.meta().set_dead();
        if passes_through(&*payload) {
            // Not this coroutine's panic: an enclosing coroutine that was
            // suspended from inside this one's stack is being closed, or an
            // enclosing scope (a loop's `timeout`) is being left from a wait
            // in here. The unwinding goes on to that root or scope.
            std::panic::resume_unwind(payload);
        }
        self.death = Some(payload_message(&*payload).into());
        Panic::new(payload, self.meta().name.clone())
    }

    pub(super) fn close(&mut self) -> Result<(), Panic> {
        if self.inner.done() {
            return match self.death.take() {
                Some(message) => Err(Panic::new(
                    Box::new(String::from(message)),
                    self.meta().name.clone(),
                )),
                None => Ok(()),
            };
        }
        // SAFETY: as in `meta()`. The reference does not borrow `self`, so
        // `inner` can be borrowed mutably meanwhile; the `Meta` is outside it.
        let meta = unsafe { self.meta.as_ref() };
        meta.set_closing(true);
        let inner = &mut self.inner;
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            if inner.started() {
                inner.force_unwind();
            } else {
                // Its root sees `closing` and drops the body on the
                // coroutine's own stack (see `chain.rs`).
                drop(inner.resume(MaybeUninit::uninit()));
            }
        }));
        meta.set_closing(false);
        meta.set_dead();
        let result = match result {
            // Not this close's to report: an enclosing close, time limit or
            // cancellation reached through a destructor's wait goes on.
            Err(payload) if passes_through(&*payload) => {
                drop(take_close_panic());
                std::panic::resume_unwind(payload)
            }
            result => result.and_then(|()| take_close_panic().map_or(Ok(()), Err)),
        };
        result.map_err(|payload| Panic::new(payload, meta.name.clone()))
    }
}

impl<Input, Yield, Return> Drop for Raw<Input, Yield, Return> {
    #[inline]
    fn drop(&mut self) {
        // A finished coroutine (the common case) has nothing to unwind, and
        // an unreported death panic needs no `Panic` built just to be dropped.
        if !self.inner.done() {
            /// Drops the `Meta` however the close ends: it lets an enclosing
            /// close, time limit or cancellation go on (see `close`), and
            /// the `Meta` (a name, a handle) would leak with the stack.
            struct DropMeta(NonNull<Meta>);
            impl Drop for DropMeta {
                fn drop(&mut self) {
                    // SAFETY: as below; `close` unwinds only once the
                    // coroutine has finished (its root returned the payload).
                    unsafe { self.0.drop_in_place() }
                }
            }
            let meta = DropMeta(self.meta);
            // Like Lua's garbage collector, dropping does not report errors.
            let _ = self.close();
            drop(meta);
            return;
        }
        // SAFETY: written by `new`; the coroutine is finished, so no code
        // runs on its stack and no chain of running coroutines reaches it
        // any more, and it is dropped before `inner` (with the stack that
        // holds it) is.
        unsafe { self.meta.drop_in_place() };
    }
}
