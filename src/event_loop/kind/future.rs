//! Future tasks: a task body that is a `Future`, polled by the loop like any
//! task step, woken through the loop's remote inbox (from any thread).

use std::cell::UnsafeCell;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll};

use crate::error::{Panic, drop_quietly};

use super::super::core::Core;
use super::super::error::JoinError;
use super::super::join::JoinHandle;
use super::super::prefetch::Prefetch;
use super::super::remote::OwnWaker;
use super::super::task::{
    Header, ResultCell, Step, TaskBody, TaskOptions, TaskRef, WaitReason, depth_bit,
};

struct FutureBody<F: Future> {
    /// `None` once the future completed or was dropped.
    future: UnsafeCell<Option<F>>,
    waker: UnsafeCell<Option<OwnWaker>>,
    result: ResultCell<F::Output>,
}

/// A future's state is in the task's own allocation: nothing to ask for.
impl<F: Future> Prefetch for FutureBody<F> {}

impl<F: Future> TaskBody for FutureBody<F> {
    fn step(&self, task: &TaskRef, core: &Core) -> Step {
        let header = &task.header;
        // SAFETY: only the loop steps a task and never re-entrantly, so these
        // are the only references; the future lives inside an `Rc` allocation
        // that never moves, so pinning it there is sound (it is dropped in place).
        let (future, waker) = unsafe { (&mut *self.future.get(), &mut *self.waker.get()) };
        let Some(f) = future.as_mut() else {
            return Step::Done;
        };
        let waker = waker.get_or_insert_with(|| OwnWaker::new(&core.remote, header, 0));
        // SAFETY: see above.
        let f = unsafe { Pin::new_unchecked(f) };
        let mut cx = Context::from_waker(waker.waker());
        let bit = depth_bit(0);
        header.take_notified(bit);
        match std::panic::catch_unwind(AssertUnwindSafe(|| f.poll(&mut cx))) {
            // Woken during the poll (it filed the key and caused the
            // wake-up itself): still `Running`, so the loop queues it again.
            Ok(Poll::Pending) if header.take_notified(bit) => Step::Suspended,
            Ok(Poll::Pending) => {
                core.begin_park(header, WaitReason::Future);
                Step::Suspended
            }
            Ok(Poll::Ready(value)) => {
                // The future's destructor is user code: a panic there makes
                // the task a panicked one (its value is dropped).
                match std::panic::catch_unwind(AssertUnwindSafe(|| *future = None)) {
                    Ok(()) => self.result.set(Ok(value)),
                    Err(payload) => {
                        drop_quietly(value);
                        let panic = Panic::new(payload, header.name_cow());
                        self.result.set(Err(JoinError::panicked(header.id, panic)));
                    }
                }
                Step::Done
            }
            Err(payload) => {
                // A second panic, from the destructor, is dropped: the
                // first says what went wrong.
                drop_quietly(std::panic::catch_unwind(AssertUnwindSafe(|| {
                    *future = None
                })));
                let panic = Panic::new(payload, header.name_cow());
                self.result.set(Err(JoinError::panicked(header.id, panic)));
                Step::Done
            }
        }
    }

    fn close(&self, header: &Header) -> Result<(), Panic> {
        // SAFETY: see `step`; the task is not running.
        let future = unsafe { &mut *self.future.get() };
        let dropped = std::panic::catch_unwind(AssertUnwindSafe(|| *future = None));
        if !self.result.is_set() {
            self.result
                .set(Err(JoinError::cancelled(header.id, header.name_cow())));
        }
        dropped.map_err(|payload| Panic::new(payload, header.name_cow()))
    }

    fn take_panic(&self, _: &Header) -> Option<Panic> {
        self.result.take_panic()
    }

    fn is_held_outside(&self) -> bool {
        // SAFETY: see `step`; the task is parked, not running.
        unsafe { &*self.waker.get() }
            .as_ref()
            .is_some_and(OwnWaker::is_held_outside)
    }
}

/// Spawns `future` as a task on `core`.
pub(crate) fn spawn<F>(core: &Core, opts: TaskOptions, future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let body = FutureBody {
        future: UnsafeCell::new(Some(future)),
        waker: UnsafeCell::new(None),
        result: ResultCell::new(),
    };
    let task = core.spawn_body(opts.name, body);
    let result = NonNull::from(&task.body.result);
    JoinHandle::new(task, result)
}
