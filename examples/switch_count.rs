//! Runs N resume/yield round trips of one coroutine implementation and
//! nothing else, for counting instructions with callgrind.
//!
//! ```text
//! cargo run --release --example switch_count -- <peer> <N>
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
    let (Some(peer), Some(n)) = (args.first(), args.get(1).and_then(|n| n.parse().ok())) else {
        eprintln!(
            "usage: switch_count <peer> <N>\npeers: {}",
            PEERS.join(", ")
        );
        return ExitCode::FAILURE;
    };
    let sum = match peer.as_str() {
        "baseline" => drive(n, |i| i.wrapping_add(1)),
        "cogen" => cogen(n),
        "cogen_stackless" => cogen_stackless(n),
        "corosensei" => corosensei(n),
        "nightly_raw" => nightly_raw(n),
        "generator_rs" => generator_rs(n),
        "lua54" => lua54(n),
        other => {
            eprintln!("unknown peer {other:?}; peers: {}", PEERS.join(", "));
            return ExitCode::FAILURE;
        }
    };
    // Every peer yields its input + 1, so the sum over 1..=n is known.
    let expected = (1..=n).fold(0usize, |acc, i| acc.wrapping_add(i + 1));
    assert_eq!(sum, expected, "{peer} passed wrong values");
    println!("{peer}: {n} round trips");
    ExitCode::SUCCESS
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

fn cogen(n: usize) -> usize {
    let mut co = cogen::Coroutine::<usize, usize, ()>::new(|co, mut x| {
        loop {
            x = co.suspend(x.wrapping_add(1));
        }
    });
    drive(n, |i| match co.resume(i) {
        Ok(CoroutineResult::Yield(y)) => y,
        _ => unreachable!("the body loops forever"),
    })
}

fn cogen_stackless(n: usize) -> usize {
    // Boxed like `nightly_raw`, driven through cogen's `Resumable` trait.
    let mut co = cogen::Stackless::pinned(
        #[coroutine]
        |mut x: usize| {
            loop {
                x = yield x.wrapping_add(1);
            }
        },
    );
    drive(n, |i| match Resumable::resume(&mut co, i) {
        Ok(CoroutineResult::Yield(y)) => y,
        _ => unreachable!("the body loops forever"),
    })
}

fn corosensei(n: usize) -> usize {
    let mut co = corosensei::Coroutine::<usize, usize, ()>::new(|y, mut x| {
        loop {
            x = y.suspend(x.wrapping_add(1));
        }
    });
    drive(n, |i| match co.resume(i) {
        corosensei::CoroutineResult::Yield(y) => y,
        corosensei::CoroutineResult::Return(()) => unreachable!("the body loops forever"),
    })
}

fn boxed<C: StdCoroutine<usize, Yield = usize, Return = usize>>(c: C) -> Pin<Box<C>> {
    Box::pin(c)
}

fn nightly_raw(n: usize) -> usize {
    let mut co = boxed(
        #[coroutine]
        |mut x: usize| {
            loop {
                x = yield x.wrapping_add(1);
            }
        },
    );
    drive(n, |i| match co.as_mut().resume(i) {
        CoroutineState::Yielded(y) | CoroutineState::Complete(y) => y,
    })
}

fn generator_rs(n: usize) -> usize {
    let mut co = generator::Gn::<usize>::new_scoped(|mut s| {
        let mut x = s.get_yield().unwrap_or(0);
        loop {
            x = s.yield_(x.wrapping_add(1)).unwrap_or(0);
        }
    });
    drive(n, |i| co.send(i))
}

fn lua54(n: usize) -> usize {
    let lua = mlua::Lua::new();
    let f: mlua::Function = lua
        .load("return function(x) while true do x = coroutine.yield(x + 1) end end")
        .eval()
        .expect("valid Lua");
    let thread = lua.create_thread(f).expect("thread");
    drive(n, |i| thread.resume::<usize>(i).expect("resume"))
}
