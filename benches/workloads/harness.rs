//! What a workload needs from whoever runs it: the criterion benches (through
//! `benches/workloads/criterion_harness.rs`) or the instruction counter
//! (`tools/src/bin/op_count.rs`).
//!
//! A workload module (`benches/workloads/<bench>.rs`) has one function per
//! bench group, generic over [`Harness`], that hands each id's code to
//! [`Harness::iter`] or [`Harness::iter_timed`]. So the benches and the
//! counter run the very same code, and a group's name and ids are written
//! once, in the bench that declares the group.

// Shared by every bench and the counter: each uses only part of it.
#![allow(dead_code)]

use std::time::{Duration, Instant};

/// Runs the ids of one bench group.
pub trait Harness {
    /// What an [`iter_timed`](Harness::iter_timed) routine starts and stops.
    type Timer: Timer;

    /// Id `id`: `make()` builds the state, outside the measurement (the
    /// benches call it once per sample), and returns the routine; one call
    /// of the routine is one iteration, measured whole. The routine owns
    /// its state (`'static`), so that a harness may keep several ids'
    /// routines at once and alternate them (`paired`).
    fn iter<O, R: FnMut() -> O + 'static>(&mut self, id: &str, make: impl FnMut() -> R);

    /// Id `id` when an iteration has set-up of its own: one call of the
    /// routine is one iteration, of which only the part between
    /// [`Timer::start`] and [`Timer::stop`] is measured.
    fn iter_timed<R: FnMut(&mut Self::Timer) + 'static>(
        &mut self,
        id: &str,
        make: impl FnMut() -> R,
    );

    /// Fewer or longer samples for the ids that follow (criterion's
    /// `sample_size` and `measurement_time`); the counter ignores it.
    fn long_samples(&mut self, _sample_size: usize, _measurement: Duration) {}
}

/// The measured part of an [`Harness::iter_timed`] iteration.
pub trait Timer {
    /// The measured part begins.
    fn start(&mut self);
    /// The measured part ends.
    fn stop(&mut self);
}

/// Adds up the time between each `start` and `stop`.
#[derive(Default)]
pub struct Stopwatch {
    started: Option<Instant>,
    /// The time measured so far.
    pub total: Duration,
}

impl Timer for Stopwatch {
    #[inline(always)]
    fn start(&mut self) {
        self.started = Some(Instant::now());
    }

    #[inline(always)]
    fn stop(&mut self) {
        if let Some(t) = self.started.take() {
            self.total += t.elapsed();
        }
    }
}
