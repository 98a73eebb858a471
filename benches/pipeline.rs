//! Pipelines of coroutine stages against their alternatives.
//!
//! * `pipeline_3_stages`: 1,000,000 `u64`s through source → map-like stage
//!   → filter-like stage → sum, each stage a coroutine:
//!   - `cogen_stackful`: stackful stages (`Stage::new`, `PipelineExt::stage`);
//!   - `cogen_stackless` (nightly): `#[coroutine]` stages through cogen's
//!     `Resumable` trait (`Stackless`, `PipelineExt::stackless_stage`);
//!   - `iterator`: the same work as a plain `Iterator` chain (the floor);
//!   - `mpsc_threads`: the same three stages as threads joined by
//!     `std::sync::mpsc` channels, what many people write today.
//! * `stackless_switch` (nightly): one resume round trip of a stackless
//!   coroutine through cogen's `Stackless` (`cogen`) against
//!   `Coroutine::resume` on the same pinned nightly coroutine (`raw_nightly`).
//!
//! Run: `CARGO_TARGET_DIR=target-bench cargo bench --bench pipeline`.
#![cfg_attr(cogen_nightly, feature(coroutines, coroutine_trait))]

use std::hint::black_box;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use cogen::pipeline::{PipelineExt, Stage, StageError};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

// The stackless variants: `yield` and `#[coroutine]` do not parse on stable
// Rust, even in code that `cfg` removes, so they live in their own file.
#[cfg(cogen_nightly)]
#[path = "nightly/pipeline.rs"]
mod nightly;

const ITEMS: u64 = 1_000_000;

#[inline(always)]
fn map(x: u64) -> u64 {
    x.wrapping_mul(3).wrapping_add(1)
}

#[inline(always)]
fn keep(x: u64) -> bool {
    !x.is_multiple_of(4)
}

/// The answer every variant must give.
fn expected(n: u64) -> u64 {
    (0..n).map(map).filter(|&x| keep(x)).sum()
}

fn iterator(n: u64) -> u64 {
    (0..black_box(n)).map(map).filter(|&x| keep(x)).sum()
}

fn cogen_stackful(n: u64) -> u64 {
    let n = black_box(n);
    Stage::new("source", cogen::generator(move |co| co.suspend_all(0..n)))
        .stage("map", |co, up| {
            for x in up {
                co.suspend(map(x));
            }
        })
        .stage("filter", |co, up| {
            for x in up {
                if keep(x) {
                    co.suspend(x);
                }
            }
        })
        .sum::<Result<u64, StageError>>()
        .unwrap()
}

fn mpsc_threads(n: u64) -> u64 {
    let n = black_box(n);
    let (to_map, map_in) = mpsc::channel();
    let (to_filter, filter_in) = mpsc::channel();
    let (to_sum, sum_in) = mpsc::channel();
    let source = thread::spawn(move || {
        for i in 0..n {
            to_map.send(i).unwrap();
        }
    });
    let mapper = thread::spawn(move || {
        for x in map_in {
            to_filter.send(map(x)).unwrap();
        }
    });
    let filter = thread::spawn(move || {
        for x in filter_in {
            if keep(x) {
                to_sum.send(x).unwrap();
            }
        }
    });
    let total = sum_in.iter().sum();
    for t in [source, mapper, filter] {
        t.join().unwrap();
    }
    total
}

fn pipeline_3_stages(c: &mut Criterion) {
    let want = expected(ITEMS);
    assert_eq!(iterator(ITEMS), want);
    assert_eq!(cogen_stackful(ITEMS), want);
    #[cfg(cogen_nightly)]
    assert_eq!(nightly::cogen_stackless(ITEMS), want);
    assert_eq!(mpsc_threads(ITEMS), want);

    let mut group = c.benchmark_group("pipeline_3_stages");
    group.throughput(Throughput::Elements(ITEMS));
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    group.bench_function("iterator", |b| b.iter(|| black_box(iterator(ITEMS))));
    group.bench_function("cogen_stackful", |b| {
        b.iter(|| black_box(cogen_stackful(ITEMS)))
    });
    #[cfg(cogen_nightly)]
    group.bench_function("cogen_stackless", |b| {
        b.iter(|| black_box(nightly::cogen_stackless(ITEMS)))
    });
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("mpsc_threads", |b| {
        b.iter(|| black_box(mpsc_threads(ITEMS)))
    });
    group.finish();
}

#[cfg(cogen_nightly)]
criterion_group!(benches, pipeline_3_stages, nightly::stackless_switch);
#[cfg(not(cogen_nightly))]
criterion_group!(benches, pipeline_3_stages);
criterion_main!(benches);
