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
//! Ids: `cogen` (stackful, pooled stacks), `cogen_stackless` (a nightly
//! `#[coroutine]` closure driven through cogen's stackless adapter),
//! `corosensei` (raw, `DefaultStack`), `nightly_raw` (a pinned, boxed
//! `std::ops::Coroutine` resumed directly), `generator_rs` (the `generator`
//! crate 0.8), `lua54` (Lua 5.4 through `mlua`, vendored).
//!
//! Run: `CARGO_TARGET_DIR=target-bench cargo bench --bench peers`, then
//! `CARGO_TARGET_DIR=target-bench cargo run --release -p cogen-tools --bin bench_report`
//! for the table and chart.

#![feature(coroutines, coroutine_trait)]

use std::hint::black_box;
use std::ops::{Coroutine as StdCoroutine, CoroutineState};
use std::pin::Pin;
use std::time::Duration;

use cogen::{CoroutineResult, Resumable};
use criterion::{
    BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime,
};

/// Coroutines in the `peer_round_robin` ring.
const RING: usize = 10_000;

/// Lua source of the peers' bodies.
const LUA_LOOP: &str = "return function(x) while true do x = coroutine.yield(x + 1) end end";
const LUA_ONCE: &str = "return function(x) return x + 1 end";

fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    g
}

// ---------------------------------------------------------------- bodies

fn cogen_loop() -> cogen::Coroutine<usize, usize, ()> {
    cogen::Coroutine::new(|co, mut x: usize| {
        loop {
            x = co.suspend(x.wrapping_add(1));
        }
    })
}

fn corosensei_loop() -> corosensei::Coroutine<usize, usize, ()> {
    corosensei::Coroutine::new(|y, mut x: usize| {
        loop {
            x = y.suspend(x.wrapping_add(1));
        }
    })
}

fn boxed<C: StdCoroutine<usize, Yield = usize, Return = usize>>(c: C) -> Pin<Box<C>> {
    Box::pin(c)
}

fn nightly_loop() -> Pin<Box<impl StdCoroutine<usize, Yield = usize, Return = usize>>> {
    boxed(
        #[coroutine]
        |mut x: usize| {
            loop {
                x = yield x.wrapping_add(1);
            }
        },
    )
}

fn stackless_loop()
-> cogen::Stackless<Pin<Box<impl StdCoroutine<usize, Yield = usize, Return = ()>>>> {
    cogen::Stackless::pinned(
        #[coroutine]
        |mut x: usize| {
            loop {
                x = yield x.wrapping_add(1);
            }
        },
    )
}

/// One resume through cogen's `Resumable` trait, expecting a yield.
#[inline(always)]
fn resume_yield<G: Resumable<usize, Yield = usize>>(co: &mut G, input: usize) -> usize {
    match co.resume(input) {
        Ok(CoroutineResult::Yield(y)) => y,
        _ => unreachable!("the body loops forever"),
    }
}

/// One resume of a raw corosensei coroutine, expecting a yield. (Matching
/// and black-boxing the `usize`, not the whole `CoroutineResult`: a
/// black-boxed 16-byte enum costs ~5 ns more per iteration on this machine,
/// which would measure the bench, not the switch.)
#[inline(always)]
fn corosensei_yield(co: &mut corosensei::Coroutine<usize, usize, ()>, input: usize) -> usize {
    match co.resume(input) {
        corosensei::CoroutineResult::Yield(y) => y,
        corosensei::CoroutineResult::Return(()) => unreachable!("the body loops forever"),
    }
}

fn generator_loop() -> generator::Generator<'static, usize, usize> {
    generator::Gn::<usize>::new_scoped(|mut s| {
        let mut x = s.get_yield().unwrap_or(0);
        loop {
            x = s.yield_(x.wrapping_add(1)).unwrap_or(0);
        }
    })
}

fn lua_function(lua: &mlua::Lua, src: &str) -> mlua::Function {
    lua.load(src).eval().expect("valid Lua")
}

// ---------------------------------------------------------------- peer_switch

fn peer_switch(c: &mut Criterion) {
    let mut g = group(c, "peer_switch");

    g.bench_function("cogen", |b| {
        let mut co = cogen_loop();
        let mut i = 0usize;
        b.iter(|| {
            i += 1;
            black_box(resume_yield(&mut co, black_box(i)))
        });
    });

    g.bench_function("cogen_stackless", |b| {
        let mut co = stackless_loop();
        let mut i = 0usize;
        b.iter(|| {
            i += 1;
            black_box(resume_yield(&mut co, black_box(i)))
        });
    });

    g.bench_function("corosensei", |b| {
        let mut co = corosensei_loop();
        let mut i = 0usize;
        b.iter(|| {
            i += 1;
            black_box(corosensei_yield(&mut co, black_box(i)))
        });
    });

    g.bench_function("nightly_raw", |b| {
        let mut co = nightly_loop();
        let mut i = 0usize;
        b.iter(|| {
            i += 1;
            match co.as_mut().resume(black_box(i)) {
                CoroutineState::Yielded(y) | CoroutineState::Complete(y) => black_box(y),
            }
        });
    });

    g.bench_function("generator_rs", |b| {
        let mut co = generator_loop();
        let mut i = 0usize;
        b.iter(|| {
            i += 1;
            black_box(co.send(black_box(i)))
        });
    });

    g.bench_function("lua54", |b| {
        let lua = mlua::Lua::new();
        let thread = lua
            .create_thread(lua_function(&lua, LUA_LOOP))
            .expect("thread");
        let mut i = 0usize;
        b.iter(|| {
            i += 1;
            black_box(thread.resume::<usize>(black_box(i)).expect("resume"))
        });
    });

    g.finish();
}

// ---------------------------------------------------------------- peer_create

fn peer_create(c: &mut Criterion) {
    let mut g = group(c, "peer_create");

    g.bench_function("cogen", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i += 1;
            let mut co = cogen::Coroutine::<usize, usize, usize>::new(|_, x| x.wrapping_add(1));
            black_box(
                co.resume(black_box(i))
                    .ok()
                    .and_then(|r| r.as_return())
                    .unwrap_or(0),
            )
        });
    });

    g.bench_function("cogen_stackless", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i += 1;
            // black_box: keep the allocation (LLVM may elide an unused box).
            let mut co = black_box(cogen::Stackless::pinned(
                #[coroutine]
                |x: usize| {
                    if x == usize::MAX {
                        yield 0;
                    }
                    x.wrapping_add(1)
                },
            ));
            black_box(
                co.resume(black_box(i))
                    .ok()
                    .and_then(|r| r.as_return())
                    .unwrap_or(0),
            )
        });
    });

    g.bench_function("corosensei", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i += 1;
            let mut co =
                corosensei::Coroutine::<usize, usize, usize>::new(|_, x| x.wrapping_add(1));
            black_box(co.resume(black_box(i)).as_return().unwrap_or(0))
        });
    });

    g.bench_function("nightly_raw", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i += 1;
            // black_box: keep the allocation (LLVM may elide an unused box).
            let mut co = black_box(boxed(
                #[coroutine]
                |x: usize| {
                    if x == usize::MAX {
                        yield 0;
                    }
                    x.wrapping_add(1)
                },
            ));
            match co.as_mut().resume(black_box(i)) {
                CoroutineState::Yielded(y) | CoroutineState::Complete(y) => black_box(y),
            }
        });
    });

    g.bench_function("generator_rs", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i += 1;
            let mut co = generator::Gn::<usize>::new_scoped(|mut s| {
                s.get_yield().unwrap_or(0).wrapping_add(1)
            });
            black_box(co.raw_send(Some(black_box(i))).unwrap_or(0))
        });
    });

    g.bench_function("lua54", |b| {
        let lua = mlua::Lua::new();
        let f = lua_function(&lua, LUA_ONCE);
        let mut i = 0usize;
        b.iter(|| {
            i += 1;
            let thread = lua.create_thread(f.clone()).expect("thread");
            black_box(thread.resume::<usize>(black_box(i)).expect("resume"))
        });
    });

    g.finish();
}

// ---------------------------------------------------------------- peer_round_robin

/// Resumes the ring's members in turn, one per criterion iteration.
fn ring<T>(
    b: &mut criterion::Bencher<'_>,
    ring: &mut [T],
    mut resume: impl FnMut(&mut T, usize) -> usize,
) {
    let mut idx = 0usize;
    let mut i = 0usize;
    b.iter(|| {
        i += 1;
        let out = resume(&mut ring[idx], black_box(i));
        idx += 1;
        if idx == ring.len() {
            idx = 0;
        }
        black_box(out)
    });
}

fn peer_round_robin(c: &mut Criterion) {
    let mut g = group(c, "peer_round_robin");
    // Cache-bound and so noisier on a shared machine: measure longer. Each
    // sample rebuilds the ring (untimed), then resumes it in turn from the start.
    g.measurement_time(Duration::from_secs(3));

    g.bench_function("cogen", |b| {
        let mut cos: Vec<_> = (0..RING).map(|_| cogen_loop()).collect();
        ring(b, &mut cos, |co, i| {
            co.resume(i).ok().and_then(|r| r.as_yield()).unwrap_or(0)
        });
    });

    g.bench_function("cogen_stackless", |b| {
        let mut cos: Vec<_> = (0..RING).map(|_| stackless_loop()).collect();
        ring(b, &mut cos, resume_yield);
    });

    g.bench_function("corosensei", |b| {
        let mut cos: Vec<_> = (0..RING).map(|_| corosensei_loop()).collect();
        ring(b, &mut cos, corosensei_yield);
    });

    g.bench_function("nightly_raw", |b| {
        let mut cos: Vec<_> = (0..RING).map(|_| nightly_loop()).collect();
        ring(b, &mut cos, |co, i| match co.as_mut().resume(i) {
            CoroutineState::Yielded(y) | CoroutineState::Complete(y) => y,
        });
    });

    g.bench_function("generator_rs", |b| {
        let mut cos: Vec<_> = (0..RING).map(|_| generator_loop()).collect();
        ring(b, &mut cos, |co, i| co.send(i));
    });

    g.bench_function("lua54", |b| {
        let lua = mlua::Lua::new();
        let f = lua_function(&lua, LUA_LOOP);
        let mut threads: Vec<_> = (0..RING)
            .map(|_| lua.create_thread(f.clone()).expect("thread"))
            .collect();
        ring(b, &mut threads, |t, i| {
            t.resume::<usize>(i).expect("resume")
        });
    });

    g.finish();
}

criterion_group!(benches, peer_switch, peer_create, peer_round_robin);
criterion_main!(benches);
