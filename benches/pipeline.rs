//! Pipelines of coroutine stages against their alternatives.
//!
//! * `pipeline_3_stages`: 1,000,000 `u64`s through source → map-like stage
//!   → filter-like stage → sum, each stage a coroutine:
//!   - `cogen_stackful`: stackful stages (`Stage::new`, `PipelineExt::stage`);
//!   - `cogen_stackful_chunks`: the same stages handing on `Vec`s of 64
//!     items instead of single items;
//!   - `cogen_stackless` (nightly): `#[coroutine]` stages through cogen's
//!     `Resumable` trait (`Stackless`, `PipelineExt::stackless_stage`);
//!   - `cogen_inline` (nightly): the `gen_blocks` stages as one cogen
//!     `InlineChain` (`inline_source`, `inline_stage`); `cogen_inline_outlined`
//!     and `gen_blocks_outlined`: those two chains summed by a function that
//!     is never inlined;
//!   - `iterator`: the same work as a plain `Iterator` chain (the floor:
//!     summed with internal iteration, which LLVM vectorises);
//!   - `iterator_next`: the same chain pulled with `next()` only, each item
//!     through `black_box` (not vectorised);
//!   - `gen_blocks` (nightly): the same three stages as a chain of
//!     hand-written nightly `gen` blocks;
//!   - `gen_blocks_checked` (nightly): that chain with a cogen stage's
//!     bookkeeping written by hand (each stage holds its name and checks a
//!     shared failure flag before every item);
//!   - `mpsc_threads`: the same three stages as threads joined by
//!     `std::sync::mpsc` channels, what many people write today.
//! * `stackless_switch` (nightly): one resume round trip of a stackless
//!   coroutine through cogen's `Stackless` (`cogen`) against
//!   `Coroutine::resume` on the same pinned nightly coroutine (`raw_nightly`).
//!
//! The workloads are in `benches/workloads/pipeline.rs` and
//! `pipeline_nightly.rs` beside it, shared with the instruction counter
//! (`tools/src/bin/op_count.rs`).
//!
//! Run: `CARGO_TARGET_DIR=target-bench cargo bench --bench pipeline`.
#![cfg_attr(cogen_nightly, feature(coroutines, coroutine_trait, gen_blocks))]

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

#[path = "workloads/criterion_harness.rs"]
mod criterion_harness;
#[path = "workloads/harness.rs"]
mod harness;
#[path = "workloads/pipeline.rs"]
mod workloads;

use criterion_harness::Group;

fn pipeline_3_stages(c: &mut Criterion) {
    workloads::check();
    let mut group = c.benchmark_group("pipeline_3_stages");
    group.throughput(Throughput::Elements(workloads::ITEMS));
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    workloads::pipeline_3_stages(&mut Group(&mut group));
    group.finish();
}

#[cfg(cogen_nightly)]
fn stackless_switch(c: &mut Criterion) {
    let mut group = c.benchmark_group("stackless_switch");
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    workloads::nightly::stackless_switch(&mut Group(&mut group));
    group.finish();
}

#[cfg(cogen_nightly)]
criterion_group!(benches, pipeline_3_stages, stackless_switch);
#[cfg(not(cogen_nightly))]
criterion_group!(benches, pipeline_3_stages);
criterion_main!(benches);
