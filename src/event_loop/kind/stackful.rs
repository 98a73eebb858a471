//! Stackful tasks: a task body that is a cogen [`Coroutine`] on a pooled
//! stack, and its spawn. Waiting functions (`context::park`) suspend it from
//! any depth of its call stack.

use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::mem::ManuallyDrop;
use std::panic::AssertUnwindSafe;
use std::ptr::{self, NonNull};

use crate::coroutine::{
    Builder as CoroutineBuilder, Coroutine, CoroutineResult, ScopeExit, Yielder,
};
use crate::error::{Panic, ResumeError};
use crate::stack::{self, StackError};

use super::super::core::Core;
use super::super::current::{CURRENT_CX, StackfulCx};
use super::super::error::JoinError;
use super::super::join::JoinHandle;
use super::super::prefetch::{Prefetch, PrefetchFn};
use super::super::remote::OwnWaker;
use super::super::task::{Header, ResultCell, Step, Task, TaskBody, TaskOptions, TaskRef};

struct StackfulBody<T> {
    /// `None` once the coroutine is dead: it is dropped at once, so that
    /// its stack goes back to the pool when the task finishes or is
    /// cancelled, not when the last handle or stale list entry goes.
    ///
    /// Dropped by the body's `Drop` (`ManuallyDrop`), where the look for a
    /// live coroutine inlines: a finished task's memory is recycled without
    /// a call to the coroutine's drop glue for `None`.
    co: UnsafeCell<ManuallyDrop<Option<Coroutine<(), (), T>>>>,
    cx: StackfulCx,
    result: ResultCell<T>,
}

impl<T> Drop for StackfulBody<T> {
    #[inline]
    fn drop(&mut self) {
        let slot = self.co.get_mut();
        if slot.is_some() {
            // SAFETY: dropped once, here; `co` is never used again.
            unsafe { ManuallyDrop::drop(slot) }
        }
    }
}

/// The lines the task's resume reads first, where it suspended.
impl<T> Prefetch for StackfulBody<T> {
    const PREFETCH: Option<PrefetchFn> = if cfg!(target_arch = "x86_64") {
        Some(prefetch_stack::<T>)
    } else {
        None
    };
}

/// # Safety
/// As [`PrefetchFn`], for a `StackfulBody<T>`.
unsafe fn prefetch_stack<T>(header: NonNull<Header>) {
    // SAFETY: `Task` is `repr(C)` with the header at offset 0, and the
    // caller's task is a live `Task<StackfulBody<T>>`; the context's cells
    // are read, not changed.
    unsafe {
        (*header.as_ptr().cast::<Task<StackfulBody<T>>>())
            .body
            .cx
            .prefetch_stack()
    }
}

impl<T> TaskBody for StackfulBody<T> {
    // Inlined into the loop's runner for this type (`core::run_typed`):
    // one frame fewer between the loop and the switch.
    #[inline(always)]
    fn step(&self, task: &TaskRef, _: &Core) -> Step {
        // SAFETY: only the loop steps a task (from the run queue) and only
        // `close` touches it otherwise, never while it runs, so this is the
        // only reference to the coroutine.
        let slot: &mut Option<_> = unsafe { &mut **self.co.get() };
        let Some(co) = slot.as_mut() else {
            return Step::Done;
        };
        CURRENT_CX.set(&self.cx);
        let resumed = co.resume(());
        CURRENT_CX.set(ptr::null());
        // Once dead, the coroutine is dropped first: its closure is gone,
        // so dropping it runs no user code.
        match resumed {
            Ok(CoroutineResult::Yield(())) => Step::Suspended,
            Ok(CoroutineResult::Return(value)) => {
                *slot = None;
                self.result.set(Ok(value));
                Step::Done
            }
            Err(ResumeError::Panicked(p)) => {
                *slot = None;
                self.result.set(Err(JoinError::panicked(task.header.id, p)));
                Step::Done
            }
            Err(ResumeError::Dead(())) => {
                *slot = None;
                Step::Done
            }
        }
    }

    fn close(&self, header: &Header) -> Result<(), Panic> {
        // SAFETY: the task is not running (see `step`).
        let slot: &mut Option<_> = unsafe { &mut **self.co.get() };
        let closed = match slot.take() {
            Some(mut co) => co.close(),
            None => Ok(()),
        };
        if !self.result.is_set() {
            self.result
                .set(Err(JoinError::cancelled(header.id, header.name_cow())));
        }
        closed
    }

    #[inline]
    fn take_panic(&self, _: &Header) -> Option<Panic> {
        self.result.take_panic()
    }

    fn is_held_outside(&self) -> bool {
        // SAFETY: `waker` is set by `wait_for` to a waker on this task's
        // stack for as long as the task is parked in it, and cleared (also
        // on unwinding) before that frame goes.
        unsafe { self.cx.waker.get().as_ref() }.is_some_and(OwnWaker::is_held_outside)
    }
}

/// Runs first in every stackful task: records its yielder, through which
/// every wait of the task suspends it.
#[inline]
fn stackful_entry(yielder: &Yielder<(), ()>) {
    let cx = CURRENT_CX.with(Cell::get);
    // SAFETY: `step` sets CURRENT_CX to this task's context before the
    // first resume, and it stays valid while the body runs.
    let cx = unsafe { cx.as_ref() }.expect("a task body runs only inside step");
    cx.yielder.set(yielder);
}

/// An unwinding that reached the root of a task's stack: a panic or the
/// task's cancellation goes on to the coroutine's root, which reports or
/// finishes it; a `timeout`'s expiry has no scope left below the task's
/// root (it was caught inside its `timeout` and raised again after that
/// returned), so it becomes a panic of the task that says so, instead of
/// passing through every root to leave the loop's `run`.
#[cold]
#[inline(never)]
fn stray_unwinding(payload: Box<dyn Any + Send>) -> ! {
    if payload.is::<ScopeExit>() {
        drop(payload);
        panic!(
            "cogen::event_loop::timeout: a time limit's expiry was raised again after its \
             `timeout` had returned (code inside it caught the expiry and kept it): it has no \
             scope left to end"
        );
    }
    std::panic::resume_unwind(payload)
}

/// Spawns a stackful task running `f` on `core`, or says why no stack could
/// be mapped.
pub(crate) fn spawn<T, F>(core: &Core, opts: TaskOptions, f: F) -> Result<JoinHandle<T>, StackError>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    let mut builder = CoroutineBuilder::new();
    if let Some(name) = &opts.name {
        builder = builder.name(name.clone());
    }
    builder = builder.stack_size(opts.stack_size.unwrap_or(stack::DEFAULT_STACK_SIZE));
    let co = builder.try_build(move |yielder: &Yielder<(), ()>, ()| {
        stackful_entry(yielder);
        match std::panic::catch_unwind(AssertUnwindSafe(f)) {
            Ok(value) => value,
            Err(payload) => stray_unwinding(payload),
        }
    })?;
    // SAFETY: each field of the body is written once.
    let task = unsafe {
        core.spawn_init(opts.name, |p: *mut StackfulBody<T>| {
            // Where its first step reads, for the loop's prefetch.
            let top = co.stack_top();
            (&raw mut (*p).co).write(UnsafeCell::new(ManuallyDrop::new(Some(co))));
            (&raw mut (*p).cx).write(StackfulCx {
                yielder: Cell::new(ptr::null()),
                waker: Cell::new(ptr::null()),
                waits: Cell::new(0),
                suspended_at: Cell::new(top),
            });
            (&raw mut (*p).result).write(ResultCell::new());
        })
    };
    let result = NonNull::from(&task.body.result);
    Ok(JoinHandle::new(task, result))
}
