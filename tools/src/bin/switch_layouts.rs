//! Times one resume + suspend round trip of cogen and of raw corosensei in
//! many copies of the same code, each compiled at its own place in the
//! binary, to show how much of a switch's time is the machine's state
//! rather than the code.
//!
//! ```text
//! cargo run --release -p cogen-tools --bin switch_layouts               # 12 copies, 9 rounds
//! cargo run --release -p cogen-tools --bin switch_layouts -- 15         # 15 rounds
//! cargo run --release -p cogen-tools --bin switch_layouts -- --inline   # the loops in one function
//! ```
//!
//! Each copy is a coroutine whose body yields its input plus a constant of
//! its own (so the compiler cannot merge two copies), and a loop of its own
//! that resumes it: a `switch` round trip of `benches/coroutine.rs`, at
//! another address. Each copy's loop is a function of its own (a boxed
//! closure), or, with `--inline`, all the loops sit one after another in
//! one function, as the benches' loops sit in a criterion binary. The
//! copies take turns, round after round, and each copy's time is the
//! median of its rounds. Every copy executes the same
//! instructions per round trip as the bench (callgrind counts 36 for cogen
//! and 37 for corosensei there), so a spread between copies, or between
//! runs of the program, is not in the code's work. The last lines give the
//! median over the copies of each and their ratio: a comparison of the two
//! that does not depend on where one copy happened to land.

use std::hint::black_box;
use std::time::Instant;

/// Round trips per timed slice of one copy.
const ITERS: u64 = 200_000;

/// Times `ITERS` calls of `round_trip`, in nanoseconds per call.
#[inline(always)]
fn time(mut round_trip: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..ITERS {
        round_trip();
    }
    start.elapsed().as_nanos() as f64 / ITERS as f64
}

/// The coroutines of every copy, cogen's then corosensei's: each body
/// yields its input plus the copy's constant `$k`.
macro_rules! coroutines {
    ($($k:literal)*) => {{
        let cogen_cos: Vec<cogen::Coroutine<usize, usize, ()>> = vec![$(
            cogen::Coroutine::new(|co, mut input: usize| loop {
                input = co.suspend(input.wrapping_add($k));
            }),
        )*];
        let corosensei_cos: Vec<corosensei::Coroutine<usize, usize, ()>> = vec![$(
            corosensei::Coroutine::new(|y, mut input: usize| loop {
                input = y.suspend(input.wrapping_add($k));
            }),
        )*];
        (cogen_cos, corosensei_cos)
    }};
}

/// One timed slice of round trips of copy `$k`'s cogen coroutine `$co`.
macro_rules! cogen_slice {
    ($co:ident, $k:literal) => {
        time(|| {
            let out = $co
                .resume(black_box(1usize))
                .ok()
                .and_then(|r| r.as_yield());
            assert_eq!(black_box(out), Some(1 + $k));
        })
    };
}

/// One timed slice of round trips of copy `$k`'s corosensei coroutine `$co`.
macro_rules! corosensei_slice {
    ($co:ident, $k:literal) => {
        time(|| {
            let out = $co.resume(black_box(1usize)).as_yield();
            assert_eq!(black_box(out), Some(1 + $k));
        })
    };
}

/// One slice of every copy, the loops written out one after another in
/// the function that calls this: appends each copy's time to `cogen_times`
/// and `corosensei_times`.
macro_rules! inline_round {
    ($cogen:ident, $corosensei:ident, $cogen_times:ident, $corosensei_times:ident; $($k:literal)*) => {{
        $(
            let co = &mut $cogen[$k];
            $cogen_times[$k].push(cogen_slice!(co, $k));
        )*
        $(
            let co = &mut $corosensei[$k];
            $corosensei_times[$k].push(corosensei_slice!(co, $k));
        )*
    }};
}

/// Each copy's timing loop as a function of its own (a boxed closure that
/// owns the copy's coroutine), cogen's then corosensei's.
macro_rules! separate_loops {
    ($cogen:ident, $corosensei:ident; $($k:literal)*) => {{
        let mut cogen_cos = $cogen.into_iter();
        let mut corosensei_cos = $corosensei.into_iter();
        let cogen_slices: Vec<Box<dyn FnMut() -> f64>> = vec![$({
            let mut co = cogen_cos.next().unwrap();
            Box::new(move || cogen_slice!(co, $k))
        },)*];
        let corosensei_slices: Vec<Box<dyn FnMut() -> f64>> = vec![$({
            let mut co = corosensei_cos.next().unwrap();
            Box::new(move || corosensei_slice!(co, $k))
        },)*];
        (cogen_slices, corosensei_slices)
    }};
}

fn main() {
    let mut inline = false;
    let mut rounds = 9;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--inline" => inline = true,
            r => match r.parse::<usize>() {
                Ok(r) if r > 0 => rounds = r,
                _ => {
                    eprintln!("usage: switch_layouts [--inline] [ROUNDS]");
                    std::process::exit(2);
                }
            },
        }
    }
    let (mut cogen_cos, mut corosensei_cos) = coroutines!(0 1 2 3 4 5 6 7 8 9 10 11);
    let mut cogen_times = vec![Vec::new(); cogen_cos.len()];
    let mut corosensei_times = vec![Vec::new(); corosensei_cos.len()];
    if inline {
        for _ in 0..rounds {
            inline_round!(cogen_cos, corosensei_cos, cogen_times, corosensei_times;
                0 1 2 3 4 5 6 7 8 9 10 11);
        }
    } else {
        let (mut cogen_slices, mut corosensei_slices) =
            separate_loops!(cogen_cos, corosensei_cos; 0 1 2 3 4 5 6 7 8 9 10 11);
        for _ in 0..rounds {
            for (slice, times) in cogen_slices.iter_mut().zip(&mut cogen_times) {
                times.push(slice());
            }
            for (slice, times) in corosensei_slices.iter_mut().zip(&mut corosensei_times) {
                times.push(slice());
            }
        }
    }
    let cogen = medians(&mut cogen_times);
    let corosensei = medians(&mut corosensei_times);
    let mode = if inline {
        "loops in one function"
    } else {
        "each loop a function"
    };
    println!(
        "ns per round trip, median of {rounds} rounds, one column per copy of the code ({mode})"
    );
    println!("cogen      {}", row(&cogen));
    println!("corosensei {}", row(&corosensei));
    let (a, b) = (median(&mut cogen.clone()), median(&mut corosensei.clone()));
    println!(
        "median over the copies: cogen {a:.2} ns, corosensei {b:.2} ns, ratio {:.3}",
        a / b
    );
}

/// The median of each copy's times.
fn medians(times: &mut [Vec<f64>]) -> Vec<f64> {
    times.iter_mut().map(|t| median(t)).collect()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn row(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| format!("{v:6.2}"))
        .collect::<Vec<_>>()
        .join(" ")
}
