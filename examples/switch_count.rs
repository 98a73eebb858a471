//! Runs N resume/yield round trips of one coroutine implementation and
//! nothing else, for counting instructions with callgrind.
//!
//! ```text
//! cargo run --release --example switch_count -- <peer> <N> [RING]
//! valgrind --tool=callgrind target/release/examples/switch_count cogen 1000000
//! ```
//!
//! Peers: `cogen`, `cogen_stackless`, `corosensei`, `nightly_raw`,
//! `generator_rs`, `lua54` (the ids of `benches/peers.rs`), and `baseline`:
//! the same driving loop around a plain `x + 1`, whose count is the loop's
//! own cost (subtract it to get the switch alone). Every peer passes
//! a `usize` in and out of the coroutine on every round trip, as in the
//! bench. Run it for two values of N and subtract: the difference divided by
//! the difference in N is the cost of one round trip, with the set-up
//! (creating the coroutine, loading Lua, process start) cancelled out.
//! `docs/count_instructions.sh` does exactly that for every peer.
//!
//! With a third argument RING > 1, it makes RING coroutines and resumes
//! them in turn (the `peer_round_robin` bench's access pattern), for
//! callgrind's cache simulation (`--cache-sim=yes`): misses per round trip
//! show what a cold coroutine costs.

#![feature(coroutines, coroutine_trait)]

use std::hint::black_box;
use std::ops::{Coroutine as StdCoroutine, CoroutineState};
use std::pin::Pin;
use std::process::ExitCode;

use cogen::{CoroutineResult, Resumable};

const PEERS: [&str; 7] = [
    "baseline",
    "cogen",
    "cogen_stackless",
    "corosensei",
    "nightly_raw",
    "generator_rs",
    "lua54",
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let peer = args.first();
    let n = args.get(1).and_then(|n| n.parse::<usize>().ok());
    let ring = match args.get(2) {
        None => Some(1),
        Some(r) => r.parse::<usize>().ok().filter(|&r| r > 0),
    };
    let (Some(peer), Some(n), Some(ring)) = (peer, n, ring) else {
        eprintln!(
            "usage: switch_count <peer> <N> [RING]\npeers: {}",
            PEERS.join(", ")
        );
        return ExitCode::FAILURE;
    };
    let sum = match peer.as_str() {
        "baseline" => run(n, ring, || (), |_, i| i.wrapping_add(1)),
        "cogen" => run(n, ring, cogen_make, cogen_resume),
        "cogen_stackless" => run(n, ring, stackless_make, stackless_resume),
        "corosensei" => run(n, ring, corosensei_make, corosensei_resume),
        "nightly_raw" => run(n, ring, nightly_make, nightly_resume),
        "generator_rs" => run(n, ring, generator_make, |g, i| g.send(i)),
        "lua54" => {
            let lua = mlua::Lua::new();
            let f: mlua::Function = lua
                .load("return function(x) while true do x = coroutine.yield(x + 1) end end")
                .eval()
                .expect("valid Lua");
            run(
                n,
                ring,
                || lua.create_thread(f.clone()).expect("thread"),
                |t, i| t.resume::<usize>(i).expect("resume"),
            )
        }
        other => {
            eprintln!("unknown peer {other:?}; peers: {}", PEERS.join(", "));
            return ExitCode::FAILURE;
        }
    };
    // Every peer yields its input + 1, so the sum over 1..=n is known.
    let expected = (1..=n).fold(0usize, |acc, i| acc.wrapping_add(i + 1));
    assert_eq!(sum, expected, "{peer} passed wrong values");
    println!("{peer}: {n} round trips over {ring} coroutine(s)");
    ExitCode::SUCCESS
}

/// Makes `ring` coroutines and resumes them in turn, `n` times in all.
fn run<T>(
    n: usize,
    ring: usize,
    mut make: impl FnMut() -> T,
    mut resume: impl FnMut(&mut T, usize) -> usize,
) -> usize {
    if ring == 1 {
        let mut co = make();
        drive(n, |i| resume(&mut co, i))
    } else {
        let mut cos: Vec<T> = (0..ring).map(|_| make()).collect();
        let mut idx = 0;
        drive(n, |i| {
            let out = resume(&mut cos[idx], i);
            idx += 1;
            if idx == cos.len() {
                idx = 0;
            }
            out
        })
    }
}

/// Calls `round_trip(i)` for i in 1..=n, summing what comes back.
#[inline(never)]
fn drive(n: usize, mut round_trip: impl FnMut(usize) -> usize) -> usize {
    let mut sum = 0usize;
    for i in 1..=n {
        sum = sum.wrapping_add(black_box(round_trip(black_box(i))));
    }
    sum
}

fn cogen_make() -> cogen::Coroutine<usize, usize, ()> {
    cogen::Coroutine::new(|co, mut x: usize| {
        loop {
            x = co.suspend(x.wrapping_add(1));
        }
    })
}

#[inline(always)]
fn cogen_resume(co: &mut cogen::Coroutine<usize, usize, ()>, i: usize) -> usize {
    match co.resume(i) {
        Ok(CoroutineResult::Yield(y)) => y,
        _ => unreachable!("the body loops forever"),
    }
}

fn boxed<C: StdCoroutine<usize, Yield = usize, Return = ()>>(c: C) -> Pin<Box<C>> {
    Box::pin(c)
}

fn nightly_make() -> Pin<Box<impl StdCoroutine<usize, Yield = usize, Return = ()>>> {
    boxed(
        #[coroutine]
        |mut x: usize| {
            loop {
                x = yield x.wrapping_add(1);
            }
        },
    )
}

#[inline(always)]
fn nightly_resume<C: StdCoroutine<usize, Yield = usize, Return = ()>>(
    co: &mut Pin<Box<C>>,
    i: usize,
) -> usize {
    match co.as_mut().resume(i) {
        CoroutineState::Yielded(y) => y,
        CoroutineState::Complete(()) => unreachable!("the body loops forever"),
    }
}

/// Boxed like `nightly_raw`, driven through cogen's `Resumable` trait.
fn stackless_make()
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

#[inline(always)]
fn stackless_resume<G: Resumable<usize, Yield = usize>>(co: &mut G, i: usize) -> usize {
    match co.resume(i) {
        Ok(CoroutineResult::Yield(y)) => y,
        _ => unreachable!("the body loops forever"),
    }
}

fn corosensei_make() -> corosensei::Coroutine<usize, usize, ()> {
    corosensei::Coroutine::new(|y, mut x: usize| {
        loop {
            x = y.suspend(x.wrapping_add(1));
        }
    })
}

#[inline(always)]
fn corosensei_resume(co: &mut corosensei::Coroutine<usize, usize, ()>, i: usize) -> usize {
    match co.resume(i) {
        corosensei::CoroutineResult::Yield(y) => y,
        corosensei::CoroutineResult::Return(()) => unreachable!("the body loops forever"),
    }
}

fn generator_make() -> generator::Generator<'static, usize, usize> {
    generator::Gn::<usize>::new_scoped(|mut s| {
        let mut x = s.get_yield().unwrap_or(0);
        loop {
            x = s.yield_(x.wrapping_add(1)).unwrap_or(0);
        }
    })
}
