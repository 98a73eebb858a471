//! cogen's event loop against tokio's and smol's single-threaded executors.
//!
//! Every group has ids `cogen` (stackful tasks on an `EventLoop`), `tokio`
//! (a `current_thread` runtime with `enable_all()`, as
//! `#[tokio::main(flavor = "current_thread")]` builds) and `smol`
//! (`async_executor::LocalExecutor` driven by `async_io::block_on`). The
//! loop / runtime / executor is built once, outside the timed part; spawning
//! the tasks is inside it, as it is part of the workload.
//!
//! * `yield_round_robin`: 2 tasks yield 10,000 times each (20,000 yields).
//! * `channel_ping_pong`: two tasks bounce a `u64` 10,000 times over two
//!   bounded channels of capacity 1 (10,000 round trips).
//! * `spawn_join`: spawn 1,000 trivial tasks and join them all.
//! * `many_tasks`: 10,000 tasks each yield 10 times (100,000 yields).
//!
//! Run: `CARGO_TARGET_DIR=target-bench cargo bench --bench event_loop`.
//! Divide the median time by the operation count above for a per-operation figure.

use std::hint::black_box;
use std::time::Duration;

use async_executor::LocalExecutor;
use cogen::event_loop::{self as el, EventLoop};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};

const YIELDS: u64 = 10_000;
const ROUND_TRIPS: u64 = 10_000;
const SPAWNS: u64 = 1_000;
const MANY: u64 = 10_000;
const MANY_YIELDS: u64 = 10;

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn yield_round_robin(c: &mut Criterion) {
    let mut g = c.benchmark_group("yield_round_robin");
    yielders(&mut g, 2, YIELDS);
    g.finish();
}

/// `tasks` tasks that each yield `yields` times, on each runtime: the
/// workload of both `yield_round_robin` and `many_tasks`.
fn yielders(g: &mut BenchmarkGroup<'_, WallTime>, tasks: u64, yields: u64) {
    let ev = EventLoop::new();
    g.bench_function("cogen", |b| {
        b.iter(|| {
            for _ in 0..tasks {
                ev.spawn(move || {
                    for _ in 0..yields {
                        el::yield_now();
                    }
                });
            }
            ev.run().unwrap();
        })
    });
    let rt = tokio_rt();
    g.bench_function("tokio", |b| {
        b.iter(|| {
            rt.block_on(async {
                let hs: Vec<_> = (0..tasks)
                    .map(|_| {
                        tokio::spawn(async move {
                            for _ in 0..yields {
                                tokio::task::yield_now().await;
                            }
                        })
                    })
                    .collect();
                for h in hs {
                    h.await.unwrap();
                }
            })
        })
    });
    let ex = LocalExecutor::new();
    g.bench_function("smol", |b| {
        b.iter(|| {
            async_io::block_on(ex.run(async {
                let hs: Vec<_> = (0..tasks)
                    .map(|_| {
                        ex.spawn(async move {
                            for _ in 0..yields {
                                futures_lite::future::yield_now().await;
                            }
                        })
                    })
                    .collect();
                for h in hs {
                    h.await;
                }
            }))
        })
    });
}

fn channel_ping_pong(c: &mut Criterion) {
    let mut g = c.benchmark_group("channel_ping_pong");
    let ev = EventLoop::new();
    g.bench_function("cogen", |b| {
        b.iter(|| {
            let (to_b, from_a) = el::channel::<u64>(1);
            let (to_a, from_b) = el::channel::<u64>(1);
            ev.spawn(move || {
                for i in 0..ROUND_TRIPS {
                    to_b.send(i).unwrap();
                    black_box(from_b.recv().unwrap());
                }
            });
            ev.spawn(move || {
                while let Ok(v) = from_a.recv() {
                    to_a.send(v + 1).unwrap();
                }
            });
            ev.run().unwrap();
        })
    });
    let rt = tokio_rt();
    g.bench_function("tokio", |b| {
        b.iter(|| {
            rt.block_on(async {
                let (to_b, mut from_a) = tokio::sync::mpsc::channel::<u64>(1);
                let (to_a, mut from_b) = tokio::sync::mpsc::channel::<u64>(1);
                let a = tokio::spawn(async move {
                    for i in 0..ROUND_TRIPS {
                        to_b.send(i).await.unwrap();
                        black_box(from_b.recv().await.unwrap());
                    }
                });
                let b = tokio::spawn(async move {
                    while let Some(v) = from_a.recv().await {
                        to_a.send(v + 1).await.unwrap();
                    }
                });
                a.await.unwrap();
                b.await.unwrap();
            })
        })
    });
    let ex = LocalExecutor::new();
    g.bench_function("smol", |b| {
        b.iter(|| {
            async_io::block_on(ex.run(async {
                let (to_b, from_a) = async_channel::bounded::<u64>(1);
                let (to_a, from_b) = async_channel::bounded::<u64>(1);
                let a = ex.spawn(async move {
                    for i in 0..ROUND_TRIPS {
                        to_b.send(i).await.unwrap();
                        black_box(from_b.recv().await.unwrap());
                    }
                });
                let b = ex.spawn(async move {
                    while let Ok(v) = from_a.recv().await {
                        to_a.send(v + 1).await.unwrap();
                    }
                });
                a.await;
                b.await;
            }))
        })
    });
    g.finish();
}

fn spawn_join(c: &mut Criterion) {
    let mut g = c.benchmark_group("spawn_join");
    let ev = EventLoop::new();
    g.bench_function("cogen", |b| {
        b.iter(|| {
            ev.block_on(|| {
                let hs: Vec<_> = (0..SPAWNS)
                    .map(|i| el::spawn(move || black_box(i)))
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
            })
            .unwrap()
        })
    });
    let rt = tokio_rt();
    g.bench_function("tokio", |b| {
        b.iter(|| {
            rt.block_on(async {
                let hs: Vec<_> = (0..SPAWNS)
                    .map(|i| tokio::spawn(async move { black_box(i) }))
                    .collect();
                let mut sum = 0;
                for h in hs {
                    sum += h.await.unwrap();
                }
                sum
            })
        })
    });
    let ex = LocalExecutor::new();
    g.bench_function("smol", |b| {
        b.iter(|| {
            async_io::block_on(ex.run(async {
                let hs: Vec<_> = (0..SPAWNS)
                    .map(|i| ex.spawn(async move { black_box(i) }))
                    .collect();
                let mut sum = 0;
                for h in hs {
                    sum += h.await;
                }
                sum
            }))
        })
    });
    g.finish();
}

fn many_tasks(c: &mut Criterion) {
    // The thread's stack pool keeps 1,024 stacks per size by default: with
    // 10,000 live tasks, 9,000 stacks would be mapped and unmapped on every
    // iteration (~9 µs each). A program that runs bursts of N tasks raises
    // the pool to N, as done here; the cost is memory kept for reuse.
    cogen::stack::set_pool_capacity(MANY as usize);
    let mut g = c.benchmark_group("many_tasks");
    yielders(&mut g, MANY, MANY_YIELDS);
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = yield_round_robin, channel_ping_pong, spawn_join, many_tasks
}
criterion_main!(benches);
