//! The benches' [`Harness`]: each id becomes a criterion benchmark of the
//! group it is handed, timed by wall clock.

// Shared by every bench and the counter: each uses only part of it.
#![allow(dead_code)]

use std::time::Duration;

use criterion::BenchmarkGroup;
use criterion::measurement::WallTime;

use crate::harness::{Harness, Stopwatch};

/// A criterion benchmark group as a [`Harness`].
pub struct Group<'g, 'c>(pub &'g mut BenchmarkGroup<'c, WallTime>);

impl Harness for Group<'_, '_> {
    type Timer = Stopwatch;

    fn iter<O, R: FnMut() -> O + 'static>(&mut self, id: &str, mut make: impl FnMut() -> R) {
        // The routine goes to `iter` by value, as a closure written inline
        // would: passed as `&mut R` it was not inlined into criterion's
        // loop (cogen's `switch` measured 3.5 ns instead of 2.5 ns).
        self.0.bench_function(id, |b| b.iter(make()));
    }

    fn iter_timed<R: FnMut(&mut Stopwatch) + 'static>(
        &mut self,
        id: &str,
        mut make: impl FnMut() -> R,
    ) {
        self.0.bench_function(id, |b| {
            let mut routine = make();
            b.iter_custom(|iters| {
                let mut watch = Stopwatch::default();
                for _ in 0..iters {
                    routine(&mut watch);
                }
                watch.total
            })
        });
    }

    fn long_samples(&mut self, sample_size: usize, measurement: Duration) {
        self.0.sample_size(sample_size);
        self.0.measurement_time(measurement);
    }
}
