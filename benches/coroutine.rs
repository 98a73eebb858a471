//! cogen's typed coroutine against raw corosensei, measured side by side.
//!
//! * `switch`: one resume + suspend round trip, a `usize` each way.
//! * `create`: create a coroutine, run it to completion, drop it.
//! * `drop_suspended`: drop (force-unwind) a coroutine suspended once.
//!
//! The workloads are in `benches/workloads/coroutine.rs`, shared with the
//! instruction counter (`tools/src/bin/op_count.rs`).
//!
//! Run: `cargo bench --bench coroutine`; ratios: `cargo run --release -p cogen-tools --bin bench_report`.

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};

#[path = "workloads/criterion_harness.rs"]
mod criterion_harness;
#[path = "workloads/harness.rs"]
mod harness;
#[path = "workloads/coroutine.rs"]
mod workloads;

use criterion_harness::Group;

fn switch(c: &mut Criterion) {
    let mut group = c.benchmark_group("switch");
    workloads::switch(&mut Group(&mut group));
    group.finish();
}

fn create(c: &mut Criterion) {
    let mut group = c.benchmark_group("create");
    workloads::create(&mut Group(&mut group));
    group.finish();
}

fn drop_suspended(c: &mut Criterion) {
    let mut group = c.benchmark_group("drop_suspended");
    workloads::drop_suspended(&mut Group(&mut group));
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
