//! Runs N resume/yield round trips of one coroutine implementation and
//! nothing else, for counting instructions with callgrind.
//!
//! ```text
//! cargo run --release -p cogen-tools --bin switch_count -- <peer> <N> [RING]
//! valgrind --tool=callgrind target/release/switch_count cogen 1000000
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
//! `tools/scripts/count_instructions.sh` does exactly that for every peer.
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
    if args.first().is_some_and(|a| a == "-h" || a == "--help") {
        println!(
            "usage: switch_count <peer> <N> [RING]\npeers: {}",
            PEERS.join(", ")
        );
        return ExitCode::SUCCESS;
    }
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
        "baseline" => run(n, ring, Baseline),
        "cogen" => run(n, ring, Cogen),
        "cogen_stackless" => run(n, ring, CogenStackless(nightly_body)),
        "corosensei" => run(n, ring, Corosensei),
        "nightly_raw" => run(n, ring, NightlyRaw(nightly_body)),
        "generator_rs" => run(n, ring, GeneratorRs),
        "lua54" => run(n, ring, Lua54::new()),
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

/// One coroutine implementation: how to make one, and one round trip.
trait Peer {
    type Co;
    fn make(&mut self) -> Self::Co;
    /// Resumes `co` with `input`; returns what it yields (`input + 1`).
    fn resume(co: &mut Self::Co, input: usize) -> usize;
}

/// Makes `ring` coroutines and resumes them in turn, `n` times in all.
/// (`Peer::resume` is a static call, so it inlines into the loop; a
/// closure or fn item passed in here did not always.)
fn run<P: Peer>(n: usize, ring: usize, mut peer: P) -> usize {
    if ring == 1 {
        let mut co = peer.make();
        drive(n, |i| P::resume(&mut co, i))
    } else {
        let mut cos: Vec<P::Co> = (0..ring).map(|_| peer.make()).collect();
        let mut idx = 0;
        drive(n, |i| {
            let out = P::resume(&mut cos[idx], i);
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

/// The driving loop alone, around a plain `x + 1`.
struct Baseline;

impl Peer for Baseline {
    type Co = ();
    fn make(&mut self) {}
    #[inline(always)]
    fn resume(_: &mut (), input: usize) -> usize {
        input.wrapping_add(1)
    }
}

struct Cogen;

impl Peer for Cogen {
    type Co = cogen::Coroutine<usize, usize, ()>;
    fn make(&mut self) -> Self::Co {
        cogen::Coroutine::new(|co, mut x: usize| {
            loop {
                x = co.suspend(x.wrapping_add(1));
            }
        })
    }
    #[inline(always)]
    fn resume(co: &mut Self::Co, input: usize) -> usize {
        match co.resume(input) {
            Ok(CoroutineResult::Yield(y)) => y,
            _ => unreachable!("the body loops forever"),
        }
    }
}

fn nightly_body() -> impl StdCoroutine<usize, Yield = usize, Return = ()> {
    #[coroutine]
    |mut x: usize| {
        loop {
            x = yield x.wrapping_add(1);
        }
    }
}

/// Boxed like `nightly_raw`, driven through cogen's `Resumable` trait.
/// (Holds the body's constructor, which names the coroutine's type.)
struct CogenStackless<F>(F);

impl<C, F> Peer for CogenStackless<F>
where
    C: StdCoroutine<usize, Yield = usize, Return = ()>,
    F: FnMut() -> C,
{
    type Co = cogen::Stackless<Pin<Box<C>>>;
    fn make(&mut self) -> Self::Co {
        cogen::Stackless::pinned((self.0)())
    }
    #[inline(always)]
    fn resume(co: &mut Self::Co, input: usize) -> usize {
        match Resumable::resume(co, input) {
            Ok(CoroutineResult::Yield(y)) => y,
            _ => unreachable!("the body loops forever"),
        }
    }
}

/// A pinned, boxed `std::ops::Coroutine`, resumed directly.
struct NightlyRaw<F>(F);

impl<C, F> Peer for NightlyRaw<F>
where
    C: StdCoroutine<usize, Yield = usize, Return = ()>,
    F: FnMut() -> C,
{
    type Co = Pin<Box<C>>;
    fn make(&mut self) -> Self::Co {
        Box::pin((self.0)())
    }
    #[inline(always)]
    fn resume(co: &mut Self::Co, input: usize) -> usize {
        match co.as_mut().resume(input) {
            CoroutineState::Yielded(y) => y,
            CoroutineState::Complete(()) => unreachable!("the body loops forever"),
        }
    }
}

struct Corosensei;

impl Peer for Corosensei {
    type Co = corosensei::Coroutine<usize, usize, ()>;
    fn make(&mut self) -> Self::Co {
        corosensei::Coroutine::new(|y, mut x: usize| {
            loop {
                x = y.suspend(x.wrapping_add(1));
            }
        })
    }
    #[inline(always)]
    fn resume(co: &mut Self::Co, input: usize) -> usize {
        match co.resume(input) {
            corosensei::CoroutineResult::Yield(y) => y,
            corosensei::CoroutineResult::Return(()) => unreachable!("the body loops forever"),
        }
    }
}

struct GeneratorRs;

impl Peer for GeneratorRs {
    type Co = generator::Generator<'static, usize, usize>;
    fn make(&mut self) -> Self::Co {
        generator::Gn::<usize>::new_scoped(|mut s| {
            let mut x = s.get_yield().unwrap_or(0);
            loop {
                x = s.yield_(x.wrapping_add(1)).unwrap_or(0);
            }
        })
    }
    #[inline(always)]
    fn resume(co: &mut Self::Co, input: usize) -> usize {
        co.send(input)
    }
}

struct Lua54 {
    lua: mlua::Lua,
    body: mlua::Function,
}

impl Lua54 {
    fn new() -> Self {
        let lua = mlua::Lua::new();
        let body = lua
            .load("return function(x) while true do x = coroutine.yield(x + 1) end end")
            .eval()
            .expect("valid Lua");
        Lua54 { lua, body }
    }
}

impl Peer for Lua54 {
    type Co = mlua::Thread;
    fn make(&mut self) -> Self::Co {
        self.lua.create_thread(self.body.clone()).expect("thread")
    }
    #[inline(always)]
    fn resume(co: &mut Self::Co, input: usize) -> usize {
        co.resume::<usize>(input).expect("resume")
    }
}
