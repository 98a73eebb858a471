//! cogen's typed coroutine against raw corosensei, measured side by side.
//!
//! * `switch`: one resume + suspend round trip, a `usize` each way.
//! * `create`: create a coroutine, run it to completion, drop it.
//! * `drop_suspended`: drop (force-unwind) a coroutine suspended once.
//!
//! Run: `cargo bench --bench coroutine`; ratios: `cargo run --release -p cogen-tools --bin bench_report`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use corosensei::stack::DefaultStack;
use criterion::{Criterion, criterion_group, criterion_main};

fn switch(c: &mut Criterion) {
    let mut group = c.benchmark_group("switch");
    let mut co = cogen::Coroutine::<usize, usize, ()>::new(|co, mut input| {
        loop {
            input = co.suspend(input);
        }
    });
    group.bench_function("cogen", |b| {
        b.iter(|| co.resume(black_box(1usize)).ok().and_then(|r| r.as_yield()))
    });
    let mut raw = corosensei::Coroutine::<usize, usize, ()>::new(|y, mut input| {
        loop {
            input = y.suspend(input);
        }
    });
    group.bench_function("corosensei", |b| {
        b.iter(|| raw.resume(black_box(1usize)).as_yield())
    });
    group.finish();
}

fn create(c: &mut Criterion) {
    let mut group = c.benchmark_group("create");
    // Warm the pool so the timed loop takes stacks from it.
    drop(cogen::Coroutine::<usize, (), usize>::new(|_, x| x));
    group.bench_function("cogen", |b| {
        b.iter(|| {
            let mut co = cogen::Coroutine::<usize, (), usize>::new(|_, x| x);
            co.resume(black_box(1)).ok().and_then(|r| r.as_return())
        })
    });
    let mut stack = DefaultStack::default();
    group.bench_function("corosensei_reused_stack", |b| {
        b.iter(|| {
            let co = corosensei::ScopedCoroutine::<usize, (), usize, _>::with_stack(
                &mut stack,
                |_, x| x,
            );
            co.scope(|mut co| co.resume(black_box(1)).as_return())
        })
    });
    group.bench_function("corosensei_fresh_stack", |b| {
        b.iter(|| {
            let mut co = corosensei::Coroutine::<usize, (), usize>::new(|_, x| x);
            co.resume(black_box(1)).as_return()
        })
    });
    group.finish();
}

/// A value with a destructor, so the unwind has something to do.
struct Guard(usize);

impl Drop for Guard {
    fn drop(&mut self) {
        black_box(self.0);
    }
}

fn drop_suspended(c: &mut Criterion) {
    let mut group = c.benchmark_group("drop_suspended");
    group.bench_function("cogen", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut co = cogen::Coroutine::<(), (), ()>::new(|co, ()| {
                    let _guard = Guard(1);
                    co.suspend(());
                });
                co.resume(()).expect("suspends");
                let start = Instant::now();
                drop(black_box(co));
                total += start.elapsed();
            }
            total
        })
    });
    let mut stack = DefaultStack::default();
    group.bench_function("corosensei", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let co = corosensei::ScopedCoroutine::<(), (), (), _>::with_stack(
                    &mut stack,
                    |y, ()| {
                        let _guard = Guard(1);
                        y.suspend(());
                    },
                );
                total += co.scope(|mut co| {
                    co.as_mut().resume(());
                    let start = Instant::now();
                    co.force_unwind();
                    start.elapsed()
                });
            }
            total
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = switch, create, drop_suspended
}
criterion_main!(benches);
