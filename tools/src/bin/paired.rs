//! Times ids of one bench group against each other in alternating slices,
//! so that a ratio of two ids is measured over the same moments of the
//! machine.
//!
//! ```text
//! cargo run --release -p cogen-tools --bin paired -- <group> <id> <id>...
//! cargo run --release -p cogen-tools --bin paired -- --goals [--rounds R] [--slice-ms M]
//! ```
//!
//! Criterion measures the ids of a group one after another, each for a few
//! seconds. On a shared host the machine's speed changes on that scale (on
//! the 2-vCPU hosts of `docs/BENCHMARKS.md`, one program's time per
//! iteration moved by 1.8× between runs a tenth of a second apart), so two
//! ids measured a few seconds apart can differ by the host's mood as much
//! as by their code. Here every id of the group gets one slice of about
//! `--slice-ms` (default 20 ms) per round, the ids in turn, their order
//! reversed every other round; each round gives one ratio per pair, taken
//! from slices a few milliseconds apart; and the report is the median of
//! those ratios over the rounds (default 30), with the quartiles.
//!
//! The workloads are the benches' own (`benches/workloads/*.rs`): each id's
//! routine runs in the loop criterion's `iter` uses (`black_box(routine())`),
//! its state built once, before the first round. `--goals` measures every
//! time goal of `bench_report` this way (its goals, from `tools/src/goals.rs`)
//! and prints them as a Markdown table, with the CPU model.

#![feature(coroutines, coroutine_trait, gen_blocks)]

use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[path = "../../../benches/workloads/coroutine.rs"]
mod coroutine;
#[path = "../../../benches/workloads/event_loop.rs"]
mod event_loop;
#[path = "../../../benches/workloads/harness.rs"]
mod harness;
#[path = "../../../benches/workloads/peers.rs"]
mod peers;
// `pipeline::check` is `op_count --check`'s.
#[allow(dead_code)]
#[path = "../../../benches/workloads/pipeline.rs"]
mod pipeline;

#[path = "../goals.rs"]
mod goals;
#[path = "../groups.rs"]
mod groups;

use goals::{GOALS, Measure};
use groups::{Group, groups};
use harness::{Harness, Stopwatch};

/// Runs `k` iterations of one id and returns the time they took.
type Slice = Box<dyn FnMut(u64) -> Duration>;

/// Collects the wanted ids' routines of a group, each behind a [`Slice`].
struct Paired {
    want: Vec<String>,
    /// Every id the group handed over, in order.
    ids: Vec<String>,
    slices: Vec<(String, Slice)>,
}

impl Harness for Paired {
    type Timer = Stopwatch;

    fn iter<O, R: FnMut() -> O + 'static>(&mut self, id: &str, mut make: impl FnMut() -> R) {
        self.ids.push(id.to_string());
        if !self.want.iter().any(|w| w == id) {
            return;
        }
        let mut routine = make();
        let slice = move |k: u64| {
            let start = Instant::now();
            for _ in 0..k {
                black_box(routine());
            }
            start.elapsed()
        };
        self.slices.push((id.to_string(), Box::new(slice)));
    }

    fn iter_timed<R: FnMut(&mut Stopwatch) + 'static>(
        &mut self,
        id: &str,
        mut make: impl FnMut() -> R,
    ) {
        self.ids.push(id.to_string());
        if !self.want.iter().any(|w| w == id) {
            return;
        }
        let mut routine = make();
        let slice = move |k: u64| {
            let mut watch = Stopwatch::default();
            for _ in 0..k {
                routine(&mut watch);
            }
            watch.total
        };
        self.slices.push((id.to_string(), Box::new(slice)));
    }
}

/// How long to measure.
#[derive(Clone, Copy)]
struct Plan {
    rounds: usize,
    slice: Duration,
}

/// Nanoseconds per operation of each wanted id (in `want`'s order), one
/// value per round.
struct Times {
    ids: Vec<String>,
    per_round: Vec<Vec<f64>>,
}

impl Times {
    fn of(&self, id: &str) -> Option<&[f64]> {
        let i = self.ids.iter().position(|x| x == id)?;
        Some(&self.per_round[i])
    }
}

/// Measures `want` (ids of `group`) in alternating slices.
fn measure(group: &Group<Paired>, want: &[&str], plan: Plan) -> Result<Times, String> {
    let mut h = Paired {
        want: want.iter().map(|s| s.to_string()).collect(),
        ids: Vec::new(),
        slices: Vec::new(),
    };
    (group.run)(&mut h);
    if let Some(missing) = want.iter().find(|w| !h.ids.iter().any(|id| id == *w)) {
        return Err(format!(
            "group {} has no id {missing:?}; ids: {}",
            group.name,
            h.ids.join(", ")
        ));
    }
    // The harness saw the ids in the group's order; report them in `want`'s.
    h.slices
        .sort_by_key(|(id, _)| want.iter().position(|w| w == id));
    // Iterations per slice: doubled from one until a slice takes a tenth of
    // the target, then scaled to it (an iteration longer than the target
    // makes a slice of one).
    let mut counts = Vec::new();
    for (_, slice) in &mut h.slices {
        slice(1); // warm-up: first-touch costs, pools, caches
        let mut k = 1u64;
        let took = loop {
            let took = slice(k);
            if took >= plan.slice / 10 || k >= 1 << 40 {
                break took;
            }
            k *= 2;
        };
        let per = took.as_secs_f64() / k as f64;
        counts.push(((plan.slice.as_secs_f64() / per) as u64).max(1));
    }
    let mut per_round = vec![Vec::with_capacity(plan.rounds); h.slices.len()];
    let n = h.slices.len();
    for round in 0..plan.rounds {
        for step in 0..n {
            let i = if round % 2 == 0 { step } else { n - 1 - step };
            let took = (h.slices[i].1)(counts[i]);
            per_round[i].push(took.as_nanos() as f64 / (counts[i] * group.ops) as f64);
        }
    }
    Ok(Times {
        ids: h.slices.into_iter().map(|(id, _)| id).collect(),
        per_round,
    })
}

/// The median and the two quartiles of `v`.
fn quartiles(v: &[f64]) -> (f64, f64, f64) {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let x = q * (v.len() - 1) as f64;
        let (lo, hi) = (x.floor() as usize, x.ceil() as usize);
        v[lo] + (v[hi] - v[lo]) * (x - lo as f64)
    };
    (at(0.5), at(0.25), at(0.75))
}

fn fmt_ns(ns: f64) -> String {
    if ns < 10.0 {
        format!("{ns:.2} ns")
    } else if ns < 1e3 {
        format!("{ns:.1} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{:.2} ms", ns / 1e6)
    }
}

/// `paired <group> <id>...`: each id's time per operation, and its ratio to
/// the first id, round by round.
fn one_group(name: &str, want: &[&str], plan: Plan) -> Result<(), String> {
    let group = groups::<Paired>()
        .into_iter()
        .find(|g| g.name == name)
        .ok_or_else(|| format!("no group {name:?}"))?;
    let times = measure(&group, want, plan)?;
    let first = &times.per_round[0];
    println!(
        "{name}, per {}: {} rounds of {} ms slices\n",
        group.op,
        plan.rounds,
        plan.slice.as_millis()
    );
    println!(
        "| id | median | quartiles | / {} (median) | quartiles |",
        want[0]
    );
    println!("|---|---:|---:|---:|---:|");
    for (id, t) in times.ids.iter().zip(&times.per_round) {
        let (m, q1, q3) = quartiles(t);
        let ratios: Vec<f64> = t.iter().zip(first).map(|(a, b)| a / b).collect();
        let (r, r1, r3) = quartiles(&ratios);
        println!(
            "| {id} | {} | {}–{} | {r:.3} | {r1:.3}–{r3:.3} |",
            fmt_ns(m),
            fmt_ns(q1),
            fmt_ns(q3)
        );
    }
    Ok(())
}

/// `paired --goals`: every time goal, each ratio taken round by round.
fn all_goals(plan: Plan) -> Result<(), String> {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!(
        "CPU: {}; kernel {}; {} rounds of {} ms slices per id\n",
        cpu_model(),
        kernel.trim(),
        plan.rounds,
        plan.slice.as_millis()
    );
    println!("| goal | median | quartiles | |");
    println!("|---|---:|---:|---|");
    let time_goals: Vec<_> = GOALS
        .iter()
        .filter(|g| g.measure == Measure::Time)
        .collect();
    // One measurement per group, of every id its goals name.
    let mut names: Vec<&str> = Vec::new();
    for goal in &time_goals {
        if !names.contains(&goal.group) {
            names.push(goal.group);
        }
    }
    for name in names {
        let mut want: Vec<&str> = Vec::new();
        for goal in time_goals.iter().filter(|g| g.group == name) {
            for id in std::iter::once(&goal.a).chain(goal.b) {
                if !want.contains(id) {
                    want.push(id);
                }
            }
        }
        let group = groups::<Paired>()
            .into_iter()
            .find(|g| g.name == name)
            .ok_or_else(|| format!("no group {name:?}"))?;
        let times = measure(&group, &want, plan)?;
        for goal in time_goals.iter().filter(|g| g.group == name) {
            let a = times.of(goal.a).expect("measured");
            let ratios: Vec<f64> = (0..plan.rounds)
                .map(|r| {
                    let best = goal
                        .b
                        .iter()
                        .map(|id| times.of(id).expect("measured")[r])
                        .fold(f64::INFINITY, f64::min);
                    goal.ratio(a[r], best)
                })
                .collect();
            let (m, q1, q3) = quartiles(&ratios);
            let verdict = match (goal.met(q1), goal.met(m), goal.met(q3)) {
                (true, true, true) => "met",
                (false, false, false) => "**not met**",
                (_, true, _) => "met in the median",
                _ => "**not met** in the median",
            };
            println!(
                "| {} | {} | {}–{} | {verdict} |",
                goal.text(),
                goal.fmt_ratio(m),
                goal.fmt_ratio(q1),
                goal.fmt_ratio(q3)
            );
        }
    }
    Ok(())
}

/// The CPU's model name (`/proc/cpuinfo`, as `lscpu` prints it).
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown".to_string())
}

const USAGE: &str = "\
usage: paired [--rounds R] [--slice-ms M] <group> <id> <id>...
       paired [--rounds R] [--slice-ms M] --goals";

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut plan = Plan {
        rounds: 30,
        slice: Duration::from_millis(20),
    };
    let mut take = |flag: &str| -> Option<Option<u64>> {
        let i = args.iter().position(|a| a == flag)?;
        let value = args.get(i + 1).and_then(|v| v.parse().ok());
        args.drain(i..(i + 2).min(args.len()));
        Some(value)
    };
    match (take("--rounds"), take("--slice-ms")) {
        (Some(None), _) | (_, Some(None)) | (Some(Some(0)), _) | (_, Some(Some(0))) => {
            eprintln!("{USAGE}");
            return ExitCode::FAILURE;
        }
        (rounds, slice) => {
            if let Some(Some(r)) = rounds {
                plan.rounds = r as usize;
            }
            if let Some(Some(ms)) = slice {
                plan.slice = Duration::from_millis(ms);
            }
        }
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args[..] {
        ["-h" | "--help"] => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        ["--goals"] => all_goals(plan),
        [group, ref ids @ ..] if !ids.is_empty() => one_group(group, ids, plan),
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
