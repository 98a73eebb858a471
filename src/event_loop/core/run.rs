//! The run loop of a [`Core`]: rounds of task steps, the looks at timers,
//! other threads' wake-ups and the readiness poller between them, idling,
//! and deadlock detection (with the task snapshot it reports).
//!
//! # Cost per step
//!
//! Popping a task (a thin reference), one indirect call through its
//! header into the runner for its type (`core::run_typed`, with the body's
//! step inlined), a stack switch, and a push back: no allocation and no
//! system call. The clock is read only when
//! timers exist, once per round (see the fairness guarantee in the module
//! docs), and other threads' wake-ups are checked with one relaxed atomic
//! load. While a task waits on a socket and others stay runnable, the
//! readiness poller (`reactor.rs`) is asked at the end of a round in which
//! a task yielded, or else of the round in which the [`POLL_INTERVAL`]th
//! step since it was last asked ran; idle, the loop waits in it instead.
//! So tasks that only wake each other (channels, joins, timers) make no
//! system call per round, while a task that yields lets the tasks parked
//! on sockets go first, as it means to. tokio does both the same way: it
//! asks its driver every 61 ticks, and a `yield_now` there waits for the
//! driver to have been asked.
//!
//! A stack switch leaves the CPU's return-address predictor with the other
//! stack's return addresses, so every `ret` right after one mispredicts.
//! The waiting fast paths (`yield_now`, `park`, the channel operations) are
//! therefore `#[inline]` into the task's code, and `run_task` and a
//! stackful body's step into the runner, to keep the frames between the
//! loop and the switch few; the
//! running task's context is found through one thread-local (`CURRENT_CX`,
//! set by the stackful body around its resume) rather than a virtual call.

use std::cell::Cell;
use std::time::{Duration, Instant};

use super::super::error::StuckTask;
use super::super::observe::{self, TaskInfo};
use super::super::run_queue::RunQueue;
use super::super::task::{WaitReason, key_id};
use super::super::trace;
use super::{Core, POLL_INTERVAL, PanicPolicy};

impl Core {
    /// True if a task (or a waker) waits on a socket.
    #[inline(always)]
    fn waits_on_io(&self) -> bool {
        self.io.get() > 0 || self.reactor.has_wakers()
    }

    /// After `steps` more task steps: takes the readiness events already
    /// there if a task waits on a socket and a task yielded or
    /// `POLL_INTERVAL` steps ran since the last look (or `now`); no system
    /// call otherwise. Steps are counted only while a task waits on a
    /// socket (a waiter is never later than the count allows): with no
    /// socket waiting, this is two loads and a store per round.
    #[inline(always)]
    fn poll_reactor(&self, steps: usize, now: bool) {
        let yielded = self.yielded.replace(false);
        if !self.waits_on_io() {
            return;
        }
        let steps = u32::try_from(steps).unwrap_or(u32::MAX);
        let since = self.since_poll.get().saturating_add(steps);
        if now || yielded || since >= POLL_INTERVAL {
            self.since_poll.set(0);
            self.reactor.poll_now(|w| self.wake_waiter(w));
        } else {
            self.since_poll.set(since);
        }
    }

    /// Sleeps until the next timer (`timeout`), an outside wake-up, or,
    /// once the loop has a poller, a socket's readiness.
    fn sleep(&self, timeout: Option<Duration>) {
        let start = Instant::now();
        self.since_poll.set(0);
        self.yielded.set(false);
        if timeout != Some(Duration::ZERO) && self.remote.yield_for_pending() {
            // Like a wake-up that came at once: the caller takes the inbox.
        } else if !self
            .reactor
            .wait(&self.remote, timeout, |w| self.wake_waiter(w))
        {
            self.remote.park(timeout);
        }
        let idle = &self.counters.idle;
        idle.set(idle.get() + start.elapsed());
    }

    /// Takes the wake-ups that wakers (maybe on other threads) left, and
    /// starts the jobs that handles sent.
    pub(crate) fn poll_remote(&self) {
        let Some((keys, jobs)) = self.remote.take() else {
            return;
        };
        for (index, id) in keys {
            self.wake_key(index, id);
        }
        jobs.into_iter().for_each(|job| job.start(self));
    }

    #[inline]
    pub(crate) fn check_propagate(&self) {
        if self.policy == PanicPolicy::Propagate {
            self.propagate_first();
        }
    }

    /// Re-raises the first unhandled panic, if there is one.
    #[inline(never)]
    fn propagate_first(&self) {
        let first = {
            let mut unhandled = self.unhandled.borrow_mut();
            (!unhandled.is_empty()).then(|| unhandled.remove(0))
        }; // the borrow ends before the panic is raised
        if let Some(p) = first {
            p.resume_unwind();
        }
    }

    /// Runs one task step if one is queued, without waiting; first takes due
    /// timers and outside wake-ups. True if a task ran.
    pub(crate) fn tick(&self) -> bool {
        self.poll_remote();
        self.poll_timers();
        self.poll_reactor(1, self.queue.is_empty());
        match self.queue.pop_front() {
            Some(task) => {
                self.queue.maybe_shrink();
                self.run_thin(task);
                self.check_propagate();
                true
            }
            None => false,
        }
    }

    /// Runs the first `round` queued tasks a step each (fewer if the queue
    /// runs dry), each next one prefetched with `PREFETCH`; true as soon as
    /// `stop()` says so.
    #[inline(always)]
    fn run_round<const PREFETCH: bool>(&self, round: usize, stop: &impl Fn() -> bool) -> bool {
        for _ in 0..round {
            let Some(task) = self.queue.pop_front() else {
                break;
            };
            if PREFETCH {
                self.queue.prefetch_front();
            }
            self.run_thin(task);
            self.check_propagate();
            if stop() {
                return true;
            }
        }
        false
    }

    /// [`run_round`](Core::run_round) with prefetching, out of line: a round
    /// of a thousand steps or more pays the call once, and the short rounds'
    /// loop keeps its registers to itself.
    #[inline(never)]
    fn run_long_round(&self, round: usize, stop: &impl Fn() -> bool) -> bool {
        self.run_round::<true>(round, stop)
    }

    /// Runs rounds until `stop()` or until no task is left. A round runs the
    /// tasks queued at its start, then checks timers and outside wake-ups.
    pub(crate) fn run_until(&self, stop: impl Fn() -> bool) -> Result<(), Vec<StuckTask>> {
        loop {
            let round = self.queue.len();
            // Decided once a round, in two copies of the round's loop: a
            // short queue costs no look per step.
            let stopped = if RunQueue::worth_prefetching(round) {
                self.run_long_round(round, &stop)
            } else {
                self.run_round::<false>(round, &stop)
            };
            if stopped {
                return Ok(());
            }
            self.queue.maybe_shrink();
            if self.remote.has_pending() {
                self.poll_remote();
            }
            self.poll_timers();
            if self.queue.is_empty() {
                if stop() || self.len() == 0 {
                    return Ok(());
                }
                // Waits in the poller, if there is one: that takes the
                // ready sockets too.
                self.idle()?;
            } else {
                self.poll_reactor(round, false);
            }
        }
    }

    /// Runs until no task is left, until `deadline`, or until the tasks
    /// left are deadlocked (`Err`), whichever comes first. The deadline is
    /// not a timer: it does not keep a deadlock from being found.
    pub(crate) fn run_until_instant(&self, deadline: Instant) -> Result<(), Vec<StuckTask>> {
        /// Clears the stop time however the run ends.
        struct Clear<'a>(&'a Cell<Option<Instant>>);
        impl Drop for Clear<'_> {
            fn drop(&mut self) {
                self.0.set(None);
            }
        }
        self.stop_at.set(Some(deadline));
        let _clear = Clear(&self.stop_at);
        self.run_until(|| self.len() == 0 || Instant::now() >= deadline)
    }

    /// How long the idle loop may sleep with nothing else to wake it: until
    /// the stop time, if there is one.
    fn until_stop(&self) -> Option<Duration> {
        let at = self.stop_at.get()?;
        Some(at.saturating_duration_since(Instant::now()))
    }

    /// Nothing is runnable: sleep until the next timer, an outside wake-up
    /// or a socket's readiness, or report a deadlock if none can come.
    fn idle(&self) -> Result<(), Vec<StuckTask>> {
        loop {
            self.poll_remote();
            if !self.queue.is_empty() {
                return Ok(());
            }
            if self.stop_at.get().is_some_and(|at| Instant::now() >= at) {
                return Ok(());
            }
            match self.timers.next_deadline() {
                Some(at) => {
                    let now = Instant::now();
                    let at = self.stop_at.get().map_or(at, |stop| stop.min(at));
                    if at > now {
                        self.sleep(Some(at - now));
                    } else {
                        // No wait, but ready sockets are taken whenever
                        // nothing is runnable (the fairness guarantee).
                        self.poll_reactor(0, true);
                    }
                    self.fire_timers(Instant::now());
                }
                // A task parked on a socket can always be woken by its peer.
                None if self.io.get() > 0 => self.sleep(self.until_stop()),
                // So can a future task whose waker waits on one, if that
                // task is still there.
                None if self.reactor.has_live_wakers(|index, id| {
                    self.registry.get(index, key_id(id)).is_some()
                }) =>
                {
                    self.sleep(self.until_stop())
                }
                None if self.external.get() > 0 && self.woken_from_outside_maybe() => {
                    self.sleep(self.until_stop())
                }
                // The last outside waker may have woken its task and gone
                // since the inbox was read: its wake-up is in the inbox now
                // (a waker wakes before it counts itself gone).
                None if self.remote.has_pending() => {}
                None => return Err(self.stuck_tasks()),
            }
        }
    }

    /// True if some task parked on its waker may still be woken: a clone of
    /// its waker is held outside the loop. O(tasks), only when idle with no
    /// timer left.
    fn woken_from_outside_maybe(&self) -> bool {
        let tasks = self.registry.tasks();
        tasks.iter().any(|t| {
            t.header.reason.get().is_some_and(WaitReason::is_external) && t.body.is_held_outside()
        })
    }

    fn stuck_tasks(&self) -> Vec<StuckTask> {
        let stuck = observe::stuck(&self.registry.tasks());
        trace::deadlock(&stuck);
        stuck
    }

    /// A snapshot of every unfinished task.
    pub(crate) fn tasks(&self) -> Vec<TaskInfo> {
        observe::describe(&self.registry.tasks())
    }
}
