//! The workloads of `benches/pipeline.rs`: a three-stage pipeline as
//! coroutine stages and as its alternatives. The stackless variants are in
//! `pipeline_nightly.rs` (`cfg(cogen_nightly)`), since `yield` and
//! `#[coroutine]` do not parse on stable Rust, even in code that `cfg`
//! removes; the includer enables `coroutines`, `coroutine_trait` and
//! `gen_blocks` under the same `cfg`.

use std::hint::black_box;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use cogen::pipeline::{PipelineExt, Stage, StageError};

use crate::harness::Harness;

#[cfg(cogen_nightly)]
#[path = "pipeline_nightly.rs"]
pub mod nightly;

/// Items through the pipeline per iteration of `pipeline_3_stages`.
pub const ITEMS: u64 = 1_000_000;

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

/// The same chain pulled one item at a time with `next()` (a `for` loop
/// calls nothing else), each item through `black_box`: no internal
/// iteration (`fold`), no vectorisation, as a consumer that cannot see into
/// the chain would pull it.
fn iterator_next(n: u64) -> u64 {
    let mut sum = 0u64;
    for x in (0..black_box(n)).map(map).filter(|&x| keep(x)) {
        sum = sum.wrapping_add(black_box(x));
    }
    sum
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

/// The stages of `cogen_stackful` handing on `Vec`s of up to 64 items
/// instead of single items (the source fills a chunk, the map stage maps
/// it in place, the filter stage `retain`s), each chunk summed by the
/// consumer: one stack round trip per chunk and stage, and each stage's
/// loop over a chunk in its own frame, where the compiler keeps it in
/// registers. The pattern a stackful pipeline of cheap stages can use
/// for throughput; the same sum.
fn cogen_stackful_chunks(n: u64) -> u64 {
    let n = black_box(n);
    Stage::new(
        "source",
        cogen::generator(move |co| {
            let mut buf = Vec::with_capacity(64);
            for i in 0..n {
                buf.push(i);
                if buf.len() == 64 {
                    co.suspend(std::mem::replace(&mut buf, Vec::with_capacity(64)));
                }
            }
            if !buf.is_empty() {
                co.suspend(buf);
            }
        }),
    )
    .stage("map", |co, up| {
        for mut chunk in up {
            for x in &mut chunk {
                *x = map(*x);
            }
            co.suspend(chunk);
        }
    })
    .stage("filter", |co, up| {
        for mut chunk in up {
            chunk.retain(|&x| keep(x));
            co.suspend(chunk);
        }
    })
    .map(|c| c.map(|v: Vec<u64>| v.iter().sum::<u64>()))
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

/// Panics unless every variant gives the same sum over `ITEMS` items.
pub fn check() {
    let want = expected(ITEMS);
    assert_eq!(iterator(ITEMS), want);
    assert_eq!(iterator_next(ITEMS), want);
    assert_eq!(cogen_stackful(ITEMS), want);
    assert_eq!(cogen_stackful_chunks(ITEMS), want);
    #[cfg(cogen_nightly)]
    {
        assert_eq!(nightly::cogen_stackless(ITEMS), want);
        assert_eq!(nightly::cogen_inline(ITEMS), want);
        assert_eq!(nightly::cogen_inline_outlined(ITEMS), want);
        assert_eq!(nightly::gen_blocks_outlined(ITEMS), want);
        assert_eq!(nightly::gen_blocks(ITEMS), want);
        assert_eq!(nightly::gen_blocks_checked(ITEMS), want);
    }
    assert_eq!(mpsc_threads(ITEMS), want);
}

/// `pipeline_3_stages`: `ITEMS` `u64`s through source → map-like stage →
/// filter-like stage → sum.
pub fn pipeline_3_stages<H: Harness>(h: &mut H) {
    h.iter("iterator", || || black_box(iterator(ITEMS)));
    h.iter("iterator_next", || || black_box(iterator_next(ITEMS)));
    h.iter("cogen_stackful", || || black_box(cogen_stackful(ITEMS)));
    h.iter("cogen_stackful_chunks", || {
        || black_box(cogen_stackful_chunks(ITEMS))
    });
    #[cfg(cogen_nightly)]
    {
        h.iter("cogen_stackless", || {
            || black_box(nightly::cogen_stackless(ITEMS))
        });
        h.iter("cogen_inline", || {
            || black_box(nightly::cogen_inline(ITEMS))
        });
        h.iter("gen_blocks", || || black_box(nightly::gen_blocks(ITEMS)));
        h.iter("cogen_inline_outlined", || {
            || black_box(nightly::cogen_inline_outlined(ITEMS))
        });
        h.iter("gen_blocks_outlined", || {
            || black_box(nightly::gen_blocks_outlined(ITEMS))
        });
        h.iter("gen_blocks_checked", || {
            || black_box(nightly::gen_blocks_checked(ITEMS))
        });
    }
    h.long_samples(10, Duration::from_secs(8));
    h.iter("mpsc_threads", || || black_box(mpsc_threads(ITEMS)));
}
