//! The workloads of `benches/peers.rs`: cogen and its peers (corosensei,
//! nightly `#[coroutine]`, the `generator` crate, Lua 5.4), one function per
//! group. Needs `#![feature(coroutines, coroutine_trait)]` in the includer.

use std::hint::black_box;
use std::ops::{Coroutine as StdCoroutine, CoroutineState};
use std::pin::Pin;

use cogen::{CoroutineResult, Resumable};

use crate::harness::Harness;

/// Coroutines in the `peer_round_robin` ring.
pub const RING: usize = 10_000;

/// Lua source of the peers' bodies.
const LUA_LOOP: &str = "return function(x) while true do x = coroutine.yield(x + 1) end end";
const LUA_ONCE: &str = "return function(x) return x + 1 end";

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

/// `peer_switch`: one resume + yield round trip of a coroutine created once.
///
/// Every id resumes with `black_box(1)`, as `benches/coroutine.rs` does, not
/// with a counter kept in the closure: with a counter, the compiler stored
/// it to the closure's memory on every iteration of `cogen_stackless`'s
/// loop and kept it in a register in `nightly_raw`'s (why, from the same
/// resume path, was not pinned down), and in a loop of nine instructions
/// that one store was a quarter of the time (`cogen_stackless` measured
/// 1.25× `nightly_raw` with the counter, 0.96–1.03× without). The benchmark
/// times the round trip, not its own bookkeeping.
pub fn peer_switch<H: Harness>(h: &mut H) {
    h.iter("cogen", || {
        let mut co = cogen_loop();
        move || black_box(resume_yield(&mut co, black_box(1)))
    });

    h.iter("cogen_stackless", || {
        let mut co = stackless_loop();
        move || black_box(resume_yield(&mut co, black_box(1)))
    });

    h.iter("corosensei", || {
        let mut co = corosensei_loop();
        move || black_box(corosensei_yield(&mut co, black_box(1)))
    });

    h.iter("nightly_raw", || {
        let mut co = nightly_loop();
        move || match co.as_mut().resume(black_box(1)) {
            CoroutineState::Yielded(y) | CoroutineState::Complete(y) => black_box(y),
        }
    });

    h.iter("generator_rs", || {
        let mut co = generator_loop();
        move || black_box(co.send(black_box(1)))
    });

    h.iter("lua54", || {
        let lua = mlua::Lua::new();
        let thread = lua
            .create_thread(lua_function(&lua, LUA_LOOP))
            .expect("thread");
        move || {
            let _state = &lua; // keep the Lua state alive with its thread
            black_box(thread.resume::<usize>(black_box(1)).expect("resume"))
        }
    });
}

// ---------------------------------------------------------------- peer_create

/// `peer_create`: create a coroutine, resume it once so that it runs to
/// completion, drop it. The input is `black_box(1)`, as in `peer_switch`.
pub fn peer_create<H: Harness>(h: &mut H) {
    h.iter("cogen", || {
        move || {
            let mut co = cogen::Coroutine::<usize, usize, usize>::new(|_, x| x.wrapping_add(1));
            black_box(
                co.resume(black_box(1))
                    .ok()
                    .and_then(|r| r.as_return())
                    .unwrap_or(0),
            )
        }
    });

    h.iter("cogen_stackless", || {
        move || {
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
                co.resume(black_box(1))
                    .ok()
                    .and_then(|r| r.as_return())
                    .unwrap_or(0),
            )
        }
    });

    h.iter("corosensei", || {
        move || {
            let mut co =
                corosensei::Coroutine::<usize, usize, usize>::new(|_, x| x.wrapping_add(1));
            black_box(co.resume(black_box(1)).as_return().unwrap_or(0))
        }
    });

    h.iter("nightly_raw", || {
        move || {
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
            match co.as_mut().resume(black_box(1)) {
                CoroutineState::Yielded(y) | CoroutineState::Complete(y) => black_box(y),
            }
        }
    });

    h.iter("generator_rs", || {
        move || {
            let mut co = generator::Gn::<usize>::new_scoped(|mut s| {
                s.get_yield().unwrap_or(0).wrapping_add(1)
            });
            black_box(co.raw_send(Some(black_box(1))).unwrap_or(0))
        }
    });

    h.iter("lua54", || {
        let lua = mlua::Lua::new();
        let f = lua_function(&lua, LUA_ONCE);
        move || {
            let thread = lua.create_thread(f.clone()).expect("thread");
            black_box(thread.resume::<usize>(black_box(1)).expect("resume"))
        }
    });
}

// ---------------------------------------------------------------- peer_round_robin

/// Resumes the ring's members in turn, one per iteration.
fn ring<T>(ring: Vec<T>, resume: impl FnMut(&mut T, usize) -> usize) -> impl FnMut() -> usize {
    ring_with::<false, T>(ring, |_| {}, resume)
}

/// How many places ahead of the one it resumes `cogen_prefetch` hints at.
const HINT_AHEAD: usize = 8;

/// [`ring`] with a hint before each resume: `hint` is called on the member
/// [`HINT_AHEAD`] places on, the one resumed that many iterations later.
fn hinted_ring<T>(
    ring: Vec<T>,
    hint: impl Fn(&T),
    resume: impl FnMut(&mut T, usize) -> usize,
) -> impl FnMut() -> usize {
    ring_with::<true, T>(ring, hint, resume)
}

/// [`ring`], and [`hinted_ring`] with `HINT`: without it, the index of the
/// member ahead is not computed at all (the code of the ids without a hint
/// is that of the ring before hints existed).
fn ring_with<const HINT: bool, T>(
    mut ring: Vec<T>,
    hint: impl Fn(&T),
    mut resume: impl FnMut(&mut T, usize) -> usize,
) -> impl FnMut() -> usize {
    let mut idx = 0usize;
    let mut i = 0usize;
    move || {
        i += 1;
        if HINT {
            let ahead = idx + HINT_AHEAD;
            let ahead = if ahead >= ring.len() {
                ahead - ring.len()
            } else {
                ahead
            };
            hint(&ring[ahead]);
        }
        let out = resume(&mut ring[idx], black_box(i));
        idx += 1;
        if idx == ring.len() {
            idx = 0;
        }
        black_box(out)
    }
}

/// `peer_round_robin`: `RING` suspended coroutines resumed in turn, one
/// resume per iteration. The ring is built outside the measurement.
pub fn peer_round_robin<H: Harness>(h: &mut H) {
    h.iter("cogen", || {
        let cos: Vec<_> = (0..RING).map(|_| cogen_loop()).collect();
        ring(cos, |co, i| {
            co.resume(i).ok().and_then(|r| r.as_yield()).unwrap_or(0)
        })
    });

    // The same ring, telling each coroutine 8 resumes ahead of its turn
    // that it comes soon (`Coroutine::prefetch`).
    h.iter("cogen_prefetch", || {
        let cos: Vec<_> = (0..RING).map(|_| cogen_loop()).collect();
        hinted_ring(cos, cogen::Coroutine::prefetch, |co, i| {
            co.resume(i).ok().and_then(|r| r.as_yield()).unwrap_or(0)
        })
    });

    h.iter("cogen_stackless", || {
        let cos: Vec<_> = (0..RING).map(|_| stackless_loop()).collect();
        ring(cos, resume_yield)
    });

    h.iter("corosensei", || {
        let cos: Vec<_> = (0..RING).map(|_| corosensei_loop()).collect();
        ring(cos, corosensei_yield)
    });

    h.iter("nightly_raw", || {
        let cos: Vec<_> = (0..RING).map(|_| nightly_loop()).collect();
        ring(cos, |co, i| match co.as_mut().resume(i) {
            CoroutineState::Yielded(y) | CoroutineState::Complete(y) => y,
        })
    });

    h.iter("generator_rs", || {
        let cos: Vec<_> = (0..RING).map(|_| generator_loop()).collect();
        ring(cos, |co, i| co.send(i))
    });

    h.iter("lua54", || {
        let lua = mlua::Lua::new();
        let f = lua_function(&lua, LUA_LOOP);
        let threads: Vec<_> = (0..RING)
            .map(|_| lua.create_thread(f.clone()).expect("thread"))
            .collect();
        ring(threads, move |t, i| {
            let _state = &lua; // keep the Lua state alive with its threads
            t.resume::<usize>(i).expect("resume")
        })
    });
}
