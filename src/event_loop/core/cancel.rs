//! Cancelling a task of a [`Core`], at once or at its next suspension;
//! every task when the loop is dropped; and taking a task whose step
//! unwound out of the loop.

use std::panic::AssertUnwindSafe;

use super::{Core, Current, wake};
use crate::error::Panic;
use crate::event_loop::task::{TaskRef, TaskState, Waiter};

/// How far a loop's drop has gone. Once it has begun, a task spawned by a
/// destructor that a cancellation runs is cancelled at the end of that
/// cancellation, unless `cancel_all` (which cancels it anyway) is running.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Teardown {
    Running,
    Dropped,
    Sweeping,
}

impl Core {
    /// The loop's drop begins: see [`Teardown`].
    pub(crate) fn begin_drop(&self) {
        self.teardown.set(Teardown::Dropped);
    }

    /// Cancels a task: unwinds it now, or at its next suspension if it is
    /// the running task.
    pub(crate) fn cancel(&self, task: &TaskRef) {
        let h = &task.header;
        match h.state.get() {
            TaskState::Done => return,
            TaskState::Running => {
                h.cancel_requested.set(true);
                return;
            }
            TaskState::Parked => self.leave_park(h),
            TaskState::Queued => {}
        }
        let was_woken = h.state.get() == TaskState::Queued;
        h.state.set(TaskState::Done);
        let closed = {
            let _current = Current::set(self, task);
            task.body.close(h)
        };
        if was_woken {
            task.body.pass_on(h);
        }
        if let Err(p) = closed {
            self.report_panic(p);
        }
        self.finish(task.clone());
        // A destructor this cancellation ran may have dropped the loop and
        // then, in a later destructor, spawned onto it: nothing would run
        // or cancel that task, and its handle would never finish.
        if self.teardown.get() == Teardown::Dropped {
            self.cancel_all();
        }
    }

    /// Takes a task whose step unwound (a body failed to catch a panic)
    /// out of the loop, so that the loop stays usable: it is done, and
    /// nothing will run it again. Runs no user code (its joiners are woken
    /// only if they are tasks; it is not a place to drop wakers).
    #[cold]
    pub(super) fn abandon(&self, task: &TaskRef) {
        let h = &task.header;
        self.leave_park(h);
        h.state.set(TaskState::Done);
        // Not the last reference: the caller holds `task`.
        drop(self.registry.remove(h.index.get(), h.id));
        let (first, rest) = h.take_waiters();
        for waiter in first.into_iter().chain(rest) {
            match waiter {
                Waiter::Task(task, seq) => wake(task, seq),
                Waiter::Local(index, id) => self.wake_key(index, id),
                Waiter::Parked(index, id, seq) => self.wake_key_at(index, id, seq),
                // Runs no user code: a push to the other loop's inbox.
                Waiter::Remote(remote, key) => remote.wake(key),
                // Kept, to be dropped with the task, not while unwinding.
                waker @ Waiter::Waker(_) => drop(h.add_waiter(waker)),
            }
        }
    }

    /// Cancels every task, until none is left (a destructor may spawn).
    pub(crate) fn cancel_all(&self) {
        /// Puts the teardown state back however the sweep ends.
        struct Sweeping<'a>(&'a Core, Teardown);
        impl Drop for Sweeping<'_> {
            fn drop(&mut self) {
                self.0.teardown.set(self.1);
            }
        }
        let _sweeping = Sweeping(self, self.teardown.replace(Teardown::Sweeping));
        loop {
            let mut tasks = self.registry.tasks();
            // A task done but still registered is being cancelled further up
            // this thread's stack (a destructor of it dropped the loop): its
            // own `cancel` finishes it, and waiting for it here would spin.
            tasks.retain(|t| !t.header.is_done());
            if tasks.is_empty() {
                break;
            }
            for task in &tasks {
                // Everything `cancel` runs of user code is caught already;
                // this keeps the other tasks' cancellation going even so.
                if let Err(payload) =
                    std::panic::catch_unwind(AssertUnwindSafe(|| self.cancel(task)))
                {
                    if !task.header.is_done() {
                        self.abandon(task);
                    }
                    self.report_panic(Panic::new(payload, None));
                }
            }
        }
        self.timers.clear(); // weak entries: no user code
        self.drop_reporting(self.queue.take());
    }
}
