//! cogen's event loop against tokio's and smol's single-threaded executors
//! and `may`'s stackful coroutines on one worker.
//!
//! Ids, in every group:
//!
//! | id | runtime | spawn | channel (`channel_ping_pong`) |
//! |---|---|---|---|
//! | `cogen` | `EventLoop`, stackful tasks | `EventLoop::spawn` / `event_loop::spawn` | `event_loop::channel(1)` |
//! | `tokio` | `current_thread` runtime, `enable_all()` (as `#[tokio::main(flavor = "current_thread")]` builds) | `tokio::spawn` | `tokio::sync::mpsc::channel(1)` |
//! | `tokio_noio` | `current_thread` runtime without `enable_io`/`enable_time`: no I/O driver | `tokio::spawn` | `tokio::sync::mpsc::channel(1)` |
//! | `tokio_local` | `current_thread` runtime, `enable_all()`, a `LocalSet` | `tokio::task::spawn_local` | `tokio::sync::mpsc::channel(1)` |
//! | `tokio_local_noio` | `current_thread` runtime without drivers, a `LocalSet` | `tokio::task::spawn_local` | `tokio::sync::mpsc::channel(1)` |
//! | `smol` | `async_executor::LocalExecutor` driven by `async_io::block_on` | `LocalExecutor::spawn` | `async_channel::bounded(1)` |
//! | `may` | `may` 0.3, one worker thread (`may::config().set_workers(1)`), not pinned; the program runs in one coroutine joined from the bench's thread | `may::coroutine::spawn` | `may::sync::mpsc::channel()` (unbounded: `may` has no bounded channel; one value is in flight each way) |
//!
//! The loop / runtime / executor is built once per sample, outside the
//! timed part; spawning the tasks is inside it, as it is part of the
//! workload.
//!
//! * `yield_round_robin`: 2 tasks yield 10,000 times each (20,000 yields).
//! * `channel_ping_pong`: two tasks bounce a `u64` 10,000 times over two
//!   channels (10,000 round trips).
//! * `spawn_join`: spawn 1,000 trivial tasks and join them all.
//! * `many_tasks`: 10,000 tasks each yield 10 times (100,000 yields).
//! * `nested_yield` (cogen only, ids `depth_0` to `depth_3`): 2 tasks yield
//!   10,000 times each from inside 0 to 3 nested coroutines (20,000
//!   yields): what a wait from a pipeline stage costs.
//!
//! The workloads are in `benches/workloads/event_loop.rs`, shared with the
//! instruction counter (`tools/src/bin/op_count.rs`).
//!
//! Run: `CARGO_TARGET_DIR=target-bench cargo bench --bench event_loop`.
//! Divide the median time by the operation count above for a per-operation figure.

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};

#[path = "workloads/criterion_harness.rs"]
mod criterion_harness;
#[path = "workloads/harness.rs"]
mod harness;
#[path = "workloads/event_loop.rs"]
mod workloads;

use criterion_harness::Group;

fn yield_round_robin(c: &mut Criterion) {
    let mut g = c.benchmark_group("yield_round_robin");
    workloads::yield_round_robin(&mut Group(&mut g));
    g.finish();
}

fn channel_ping_pong(c: &mut Criterion) {
    let mut g = c.benchmark_group("channel_ping_pong");
    workloads::channel_ping_pong(&mut Group(&mut g));
    g.finish();
}

fn spawn_join(c: &mut Criterion) {
    let mut g = c.benchmark_group("spawn_join");
    workloads::spawn_join(&mut Group(&mut g));
    g.finish();
}

fn many_tasks(c: &mut Criterion) {
    let mut g = c.benchmark_group("many_tasks");
    workloads::many_tasks(&mut Group(&mut g));
    g.finish();
}

fn nested_yield(c: &mut Criterion) {
    let mut g = c.benchmark_group("nested_yield");
    workloads::nested_yield(&mut Group(&mut g));
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
    targets = yield_round_robin, channel_ping_pong, spawn_join, many_tasks, nested_yield
}
criterion_main!(benches);
