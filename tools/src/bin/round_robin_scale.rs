//! The cost of one resume in a round robin, as the number of coroutines
//! grows: what a user who keeps many coroutines alive pays per switch.
//!
//! ```text
//! cargo run --release -p cogen-tools --bin round_robin_scale            # every kind and N
//! cargo run --release -p cogen-tools --bin round_robin_scale -- stackful_min 30000
//! cargo run --release -p cogen-tools --bin round_robin_scale -- hinted_default 30000 32
//! ```
//!
//! Kinds: `stackful_default` (`cogen::Coroutine`, default stack size),
//! `stackful_min` (the smallest safe stack, `stack::MIN_STACK_SIZE`),
//! `corosensei` (raw corosensei, its default stack), `stackless` (a
//! `#[coroutine]` closure in `Stackless::pinned`), `touch_default` and
//! `touch_min` (no switch: a round that only touches, on the stack of each
//! parked coroutine of a `stackful_` ring, the two cache lines around the
//! frame it is parked in: the floor the memory system sets for that ring),
//! `hinted_default` and `hinted_min` (the `stackful_` ring, each resume
//! preceded by `Coroutine::prefetch` on the coroutine 8 places on, as a
//! scheduler that knows its order can do; a third argument sets another
//! distance: `-- hinted_default 30000 32`), and, named on the command line
//! only, `stackful_K`, `hinted_K` and `touch_K`: the same on stacks of K
//! KiB (`-- stackful_64 30000`). Each kind builds a ring of N coroutines that
//! loop on `suspend`, resumes each once, then times `ROUNDS` rounds over
//! the ring and prints the median nanoseconds per resume of 5 repetitions
//! (time ratios move with the host and its load; run the kinds in one go
//! to compare them). Stackful kinds are capped by `vm.max_map_count` (two
//! mappings per stack): the default Ns are 1,000, 10,000 and 30,000, and
//! 1,000,000 for `stackless` too.

#![feature(coroutines)]

use std::hint::black_box;
use std::time::Instant;

use cogen::stackless::Stackless;
use cogen::{Builder, Coroutine};

/// Resumes per measurement: the rounds cover at least this many.
const RESUMES: usize = 3_000_000;

/// A ring of `n` `cogen::Coroutine`s on stacks of `stack_size` bytes, each
/// answering `x + 1` to a resume with `x`.
fn parked_ring(n: usize, stack_size: usize) -> Vec<Coroutine<usize, usize, ()>> {
    let builder = Builder::new().stack_size(stack_size);
    builder.prewarm(n).expect("stacks");
    (0..n)
        .map(|_| {
            builder.clone().build(|co, mut x: usize| {
                loop {
                    x = co.suspend(x + 1);
                }
            })
        })
        .collect()
}

/// Median ns per resume over a ring of `n` `cogen::Coroutine`s on stacks
/// of `stack_size` bytes.
fn stackful(n: usize, stack_size: usize) -> f64 {
    let mut ring = parked_ring(n, stack_size);
    time(&mut ring, |co, x| {
        co.resume(x).ok().and_then(|r| r.as_yield()).unwrap_or(0)
    })
}

/// How many places ahead of the one it resumes a `hinted_` ring calls
/// `Coroutine::prefetch`, unless the command line says otherwise.
const HINT_AHEAD: usize = 8;

/// [`stackful`], with `Coroutine::prefetch` called before each resume on
/// the coroutine `ahead` places on.
fn hinted(n: usize, stack_size: usize, ahead: usize) -> f64 {
    assert!(
        ahead < n,
        "the hint's distance must be below the ring's size"
    );
    let mut ring = parked_ring(n, stack_size);
    for co in ring.iter_mut() {
        co.resume(0).expect("parked"); // each parked in its suspend
    }
    let rounds = RESUMES.div_ceil(n);
    median_of_5(|| {
        let start = Instant::now();
        for r in 0..rounds {
            for i in 0..n {
                let next = i + ahead;
                ring[if next >= n { next - n } else { next }].prefetch();
                let co = &mut ring[i];
                black_box(co.resume(black_box(r)).ok().and_then(|r| r.as_yield()));
            }
        }
        start.elapsed().as_nanos() as f64 / (rounds * n) as f64
    })
}

/// The median of five measurements.
fn median_of_5(mut measure: impl FnMut() -> f64) -> f64 {
    let mut samples: Vec<f64> = (0..5).map(|_| measure()).collect();
    samples.sort_by(f64::total_cmp);
    samples[2]
}

/// Median ns per element of a round over the stacks of `n` parked
/// `cogen::Coroutine`s on stacks of `stack_size` bytes that touches on each
/// stack the two cache lines a resume touches there (the line of the frame
/// the coroutine is parked in, and the line above it, toward the link and
/// the `Meta`), and switches to none of them: what the memory system (the
/// TLB's reach, the caches) costs a ring of that size before any switch.
fn touch(n: usize, stack_size: usize) -> f64 {
    let builder = Builder::new().stack_size(stack_size);
    builder.prewarm(n).expect("stacks");
    let mut ring: Vec<Coroutine<(), usize, ()>> = (0..n)
        .map(|_| {
            builder.clone().build(|co, ()| {
                let frame = 0u8;
                loop {
                    co.suspend(black_box(&frame) as *const u8 as usize);
                }
            })
        })
        .collect();
    // The line of each parked coroutine's `frame`, found by resuming it
    // once; the coroutines stay parked (and their stacks mapped) while
    // `lines` is timed.
    let mut lines: Vec<[usize; 2]> = ring
        .iter_mut()
        .map(|co| {
            let frame = co
                .resume(())
                .ok()
                .and_then(|r| r.as_yield())
                .expect("parked");
            [frame & !63, 0]
        })
        .collect();
    let ns = time(&mut lines, |line, r| {
        let words = [line[0], line[0] + 64].map(|at| {
            // SAFETY: both addresses lie in the mapped, parked stack of a
            // coroutine in `ring`, which is alive, in the page of `frame`
            // (a parked frame sits below corosensei's link, at least a
            // line below the stack's top); read as `MaybeUninit`, since
            // frame padding may be uninitialised, and written by nobody
            // while the coroutine stays parked.
            unsafe { std::ptr::read_volatile(at as *const std::mem::MaybeUninit<usize>) }
        });
        black_box(words);
        line[1] = r; // as a resume updates the `Coroutine` it resumes
        r
    });
    drop(ring);
    ns
}

/// The stack size a stackful kind names: `stackful_default`,
/// `stackful_min`, or `stackful_K` for K KiB.
fn stack_size_of(kind: &str) -> Option<usize> {
    match kind.strip_prefix("stackful_")? {
        "default" => Some(cogen::stack::DEFAULT_STACK_SIZE),
        "min" => Some(cogen::stack::MIN_STACK_SIZE),
        kib => kib.parse::<usize>().ok().map(|kib| kib * 1024),
    }
}

/// Median ns per resume over `ring`, resumed in turn.
fn time<T>(ring: &mut [T], mut resume: impl FnMut(&mut T, usize) -> usize) -> f64 {
    for co in ring.iter_mut() {
        resume(co, 0); // each parked in its suspend, its stack touched
    }
    let rounds = RESUMES.div_ceil(ring.len());
    median_of_5(|| {
        let start = Instant::now();
        for r in 0..rounds {
            for co in ring.iter_mut() {
                black_box(resume(co, black_box(r)));
            }
        }
        start.elapsed().as_nanos() as f64 / (rounds * ring.len()) as f64
    })
}

/// Median ns per resume of `kind` over `n` coroutines; `ahead` is the
/// hint's distance of a `hinted_` kind.
fn run(kind: &str, n: usize, ahead: usize) -> f64 {
    if let Some(stack_size) = stack_size_of(kind) {
        return stackful(n, stack_size);
    }
    if let Some(stack_size) = kind
        .strip_prefix("hinted_")
        .and_then(|size| stack_size_of(&format!("stackful_{size}")))
    {
        return hinted(n, stack_size, ahead);
    }
    if let Some(stack_size) = kind
        .strip_prefix("touch_")
        .and_then(|size| stack_size_of(&format!("stackful_{size}")))
    {
        return touch(n, stack_size);
    }
    match kind {
        "corosensei" => {
            let mut ring: Vec<_> = (0..n)
                .map(|_| {
                    corosensei::Coroutine::<usize, usize, ()>::new(|y, mut x| {
                        loop {
                            x = y.suspend(x + 1);
                        }
                    })
                })
                .collect();
            time(&mut ring, |co, x| co.resume(x).as_yield().unwrap_or(0))
        }
        "stackless" => {
            let mut ring: Vec<_> = (0..n)
                .map(|_| {
                    Stackless::pinned(
                        #[coroutine]
                        |mut x: usize| {
                            loop {
                                x = yield x + 1;
                            }
                        },
                    )
                })
                .collect();
            time(&mut ring, |co, x| {
                co.resume(x).ok().and_then(|r| r.as_yield()).unwrap_or(0)
            })
        }
        other => panic!("unknown kind {other}"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let kinds = [
        "stackful_default",
        "stackful_min",
        "hinted_default",
        "hinted_min",
        "touch_default",
        "touch_min",
        "corosensei",
        "stackless",
    ];
    let mut ahead = HINT_AHEAD;
    let jobs: Vec<(String, usize)> = match &args[..] {
        [] => kinds
            .iter()
            .flat_map(|k| {
                let ns: &[usize] = if *k == "stackless" {
                    &[1_000, 10_000, 30_000, 1_000_000]
                } else {
                    &[1_000, 10_000, 30_000]
                };
                ns.iter().map(|n| (k.to_string(), *n))
            })
            .collect(),
        [kind, n] => vec![(kind.clone(), n.parse().expect("N"))],
        [kind, n, distance] if kind.starts_with("hinted_") => {
            ahead = distance.parse().expect("AHEAD");
            vec![(kind.clone(), n.parse().expect("N"))]
        }
        _ => panic!("usage: round_robin_scale [KIND N [AHEAD, for a hinted_ kind]]"),
    };
    println!("| kind | N | ns per resume (median of 5) |");
    println!("|---|---:|---:|");
    for (kind, n) in jobs {
        // Each in a child process, so that one's memory does not help or
        // hurt the next.
        if args.is_empty() {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args([&kind, &n.to_string()])
                .output()
                .expect("child");
            let text = String::from_utf8_lossy(&out.stdout);
            print!(
                "{}",
                text.lines()
                    .skip(2)
                    .map(|l| format!("{l}\n"))
                    .collect::<String>()
            );
            if !out.status.success() {
                eprintln!("{kind} {n}: {}", String::from_utf8_lossy(&out.stderr));
            }
        } else {
            println!("| {kind} | {n} | {:.1} |", run(&kind, n, ahead));
        }
    }
}
