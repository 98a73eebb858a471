//! cogen against its peers, side by side in one run.
//!
//! Groups (every id passes a `usize` in and out):
//!
//! * `peer_switch`: one resume + yield round trip of a coroutine created once.
//! * `peer_create`: create a coroutine, resume it once so that it runs to
//!   completion, drop it.
//! * `peer_round_robin`: 10,000 suspended coroutines resumed in turn; the
//!   reported time is **per resume** (each criterion iteration resumes the
//!   next coroutine of the ring), so it shows what cache misses on cold
//!   stacks and control blocks cost.
//!
//! Ids: `cogen` (stackful, pooled stacks), `cogen_prefetch` (in
//! `peer_round_robin` only: `cogen`'s ring, each resume preceded by
//! `Coroutine::prefetch` on the coroutine 8 places ahead), `cogen_stackless` (a nightly
//! `#[coroutine]` closure driven through cogen's stackless adapter),
//! `corosensei` (raw, `DefaultStack`), `nightly_raw` (a pinned, boxed
//! `std::ops::Coroutine` resumed directly), `generator_rs` (the `generator`
//! crate 0.8), `lua54` (Lua 5.4 through `mlua`, vendored).
//!
//! The workloads are in `benches/workloads/peers.rs`, shared with the
//! instruction counter (`tools/src/bin/op_count.rs`).
//!
//! Run: `CARGO_TARGET_DIR=target-bench cargo bench --bench peers`, then
//! `CARGO_TARGET_DIR=target-bench cargo run --release -p cogen-tools --bin bench_report`
//! for the table and chart.

#![feature(coroutines, coroutine_trait)]

use std::time::Duration;

use criterion::{
    BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime,
};

#[path = "workloads/criterion_harness.rs"]
mod criterion_harness;
#[path = "workloads/harness.rs"]
mod harness;
#[path = "workloads/peers.rs"]
mod workloads;

use criterion_harness::Group;

fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    g
}

fn peer_switch(c: &mut Criterion) {
    let mut g = group(c, "peer_switch");
    workloads::peer_switch(&mut Group(&mut g));
    g.finish();
}

fn peer_create(c: &mut Criterion) {
    let mut g = group(c, "peer_create");
    workloads::peer_create(&mut Group(&mut g));
    g.finish();
}

fn peer_round_robin(c: &mut Criterion) {
    let mut g = group(c, "peer_round_robin");
    // Cache-bound and so noisier on a shared machine: measure longer. Each
    // sample rebuilds the ring (untimed), then resumes it in turn from the start.
    g.measurement_time(Duration::from_secs(3));
    workloads::peer_round_robin(&mut Group(&mut g));
    g.finish();
}

criterion_group!(benches, peer_switch, peer_create, peer_round_robin);
criterion_main!(benches);
