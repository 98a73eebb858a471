//! Parking and waking: a task's moves between running, parked and queued
//! ([`Core::begin_park`], [`Core::make_runnable`]), and every way a
//! wake-up reaches a parked task: its park number ([`wake`]), a waiter of
//! its end, a registry key, a timer, a user's waker, or another loop.

use std::cell::Cell;
use std::panic::AssertUnwindSafe;
use std::ptr;
use std::time::Instant;

use super::Core;
use crate::error::Panic;
use crate::event_loop::current::CURRENT_CORE;
use crate::event_loop::observe::Counters;
use crate::event_loop::task::{
    Header, TaskRef, TaskState, ThinTask, WaitReason, Waiter, key_depth_bit, key_id,
};
use crate::event_loop::trace;

impl Core {
    /// Marks the running task parked for `reason` and returns its new park
    /// number. Runs no user code: the "park" event of `tracing` goes out
    /// once the task has parked and switched out (`Core::run_task`).
    #[inline]
    pub(crate) fn begin_park(&self, h: &Header, reason: WaitReason) -> u32 {
        debug_assert_eq!(
            h.state.get(),
            TaskState::Running,
            "only the running task parks"
        );
        let seq = h.seq.get().wrapping_add(1);
        h.seq.set(seq);
        Counters::bump(&self.counters.parks);
        h.state.set(TaskState::Parked);
        h.reason.set(Some(reason));
        if reason.is_external() {
            self.external.set(self.external.get() + 1);
        } else if reason == WaitReason::Io {
            self.io.set(self.io.get() + 1);
        }
        seq
    }

    pub(super) fn leave_park(&self, h: &Header) {
        match h.reason.take() {
            Some(r) if r.is_external() => self.external.set(self.external.get() - 1),
            Some(WaitReason::Io) => self.io.set(self.io.get() - 1),
            _ => {}
        }
    }

    /// Parked → queued. The "wake" event of `tracing` goes out once the
    /// task is queued: a subscriber that cancels it there finds it in a
    /// state of its own, not half way between two.
    #[inline]
    pub(crate) fn make_runnable(&self, task: TaskRef) {
        debug_assert_eq!(
            task.header.state.get(),
            TaskState::Parked,
            "only a parked task is woken"
        );
        self.leave_park(&task.header);
        task.header.state.set(TaskState::Queued);
        let id = task.header.id;
        self.queue.push_back(ThinTask::new(task));
        trace::woken(id);
    }

    /// [`make_runnable`](Core::make_runnable) for a thin reference (from a
    /// channel's wait list), without making the full one.
    #[inline]
    pub(crate) fn make_runnable_thin(&self, task: ThinTask) {
        let h = task.header();
        debug_assert_eq!(
            h.state.get(),
            TaskState::Parked,
            "only a parked task is woken"
        );
        self.leave_park(h);
        h.state.set(TaskState::Queued);
        let id = h.id;
        self.queue.push_back(task);
        trace::woken(id);
    }

    pub(crate) fn poll_timers(&self) {
        if self.timers.is_empty() {
            return;
        }
        self.fire_timers(Instant::now());
    }

    pub(super) fn fire_timers(&self, now: Instant) {
        while let Some((task, seq)) = self.timers.pop_due(now) {
            wake(task, seq);
        }
    }

    /// Wakes whoever waits for a task to finish. A user `Waker` is user
    /// code: a panic in it is reported like a detached task's panic, and
    /// the other waiters are still woken.
    #[inline]
    pub(crate) fn wake_waiter(&self, waiter: Waiter) {
        match waiter {
            Waiter::Task(task, seq) => wake(task, seq),
            Waiter::Local(index, id) => self.wake_key(index, id),
            Waiter::Waker(waker) => self.wake_user(waker),
            Waiter::Parked(index, id, seq) => self.wake_key_at(index, id, seq),
            Waiter::Remote(remote, key) => remote.wake(key),
        }
    }

    /// Wakes the task in registry slot `index` if it is task `id` and
    /// still parked with number `seq`.
    pub(super) fn wake_key_at(&self, index: u32, id: u64, seq: u32) {
        let task = self.registry.get(index, id);
        if let Some(task) = task {
            wake(task, seq);
        }
    }

    #[cold]
    #[inline(never)]
    pub(crate) fn wake_user(&self, waker: std::task::Waker) {
        if let Err(payload) = std::panic::catch_unwind(AssertUnwindSafe(|| waker.wake())) {
            self.report_panic(Panic::new(payload, None));
        }
    }

    /// Marks the task of key `(index, id)` [`notified`](Header::notified)
    /// at the key's wait depth, and wakes it if it is parked on a waker (a
    /// future, the blocking pool). Only those parks file keys: waking any
    /// other park would leave it a second wait entry; the mark has the
    /// future polled again once the poll running (or waiting) returns.
    pub(super) fn wake_key(&self, index: u32, id: u64) {
        let Some(task) = self.registry.get(index, key_id(id)) else {
            return;
        };
        let h = &task.header;
        h.mark_notified(key_depth_bit(id));
        if h.state.get() == TaskState::Parked && h.reason.get().is_some_and(WaitReason::is_external)
        {
            self.make_runnable(task);
        }
    }
}

/// Wakes `task` if it is still parked with number `seq`.
#[inline]
pub(crate) fn wake(task: TaskRef, seq: u32) {
    if task.header.is_parked_at(seq) {
        make_runnable(task);
    }
}

/// Wakes a user's waker (a future's, or one of another executor) from the
/// loop's own code, which may be a destructor run by an unwinding (a task
/// being cancelled), where a second panic would abort the process: a panic
/// of the waker is caught and reported by the loop running on this thread,
/// like a panic of a waker that a finishing task wakes. With no loop
/// running here it reaches the caller, unless the thread is unwinding
/// already; then it is dropped (the panic hook has reported it).
#[cold]
#[inline(never)]
pub(crate) fn wake_user_waker(waker: std::task::Waker) {
    let current = CURRENT_CORE.with(Cell::get);
    // SAFETY: CURRENT_CORE points at a live core while it is set (see `Enter`).
    if let Some(core) = unsafe { current.as_ref() } {
        return core.wake_user(waker);
    }
    if let Err(payload) = std::panic::catch_unwind(AssertUnwindSafe(|| waker.wake())) {
        let panic = Panic::new(payload, None);
        if !std::thread::panicking() {
            panic.resume_unwind();
        }
    }
}

/// Queues a parked task on its own loop: [`wake`] once the caller has
/// checked the park number.
#[inline(always)]
pub(crate) fn make_runnable(task: TaskRef) {
    let current = CURRENT_CORE.with(Cell::get);
    if ptr::eq(current, task.header.core.as_ptr()) {
        // SAFETY: CURRENT_CORE points at a live core while it is set (see
        // `Enter`); this is the common case of a wake-up from a task of the
        // same loop, and it saves upgrading the `Weak`.
        unsafe { &*current }.make_runnable(task);
    } else {
        make_runnable_elsewhere(task);
    }
}

/// [`make_runnable`] for a thin reference.
#[inline(always)]
pub(crate) fn make_runnable_thin(task: ThinTask) {
    let current = CURRENT_CORE.with(Cell::get);
    if ptr::eq(current, task.header().core.as_ptr()) {
        // SAFETY: as in `make_runnable`.
        unsafe { &*current }.make_runnable_thin(task);
    } else {
        make_runnable_elsewhere(task.into_ref());
    }
}

/// [`make_runnable`] from outside the task's loop (or outside `run`).
#[inline(never)]
fn make_runnable_elsewhere(task: TaskRef) {
    if let Some(core) = task.header.core.upgrade() {
        core.make_runnable(task);
    }
}
