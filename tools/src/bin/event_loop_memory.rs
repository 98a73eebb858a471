//! Memory per parked task: parks N tasks on one empty channel and reads the
//! process's resident memory (VmRSS in /proc/self/status) before and after.
//!
//! ```text
//! cargo run --release -p cogen-tools --bin event_loop_memory -- [STACKFUL_N] [STACKLESS_N]
//! ```
//!
//! (defaults 10,000 and 1,000,000; stackful tasks are capped near 32,000 by
//! `vm.max_map_count`, each guarded stack being two mappings). Needs a
//! nightly compiler (the stackless tasks are `#[coroutine]` closures).
//!
//! The figures measured with it, and the goals they are held to, are in
//! `docs/BENCHMARKS.md`.
#![feature(coroutines)]

use std::process::ExitCode;

use cogen::event_loop::{EventLoop, channel};

const USAGE: &str = "usage: event_loop_memory [STACKFUL_N] [STACKLESS_N]  (defaults 10000 1000000)";

fn vm_rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS line");
    let kib: usize = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmRSS value");
    kib * 1024
}

fn report(kind: &str, n: usize, before: usize, after: usize) {
    let per = (after.saturating_sub(before)) as f64 / n as f64;
    println!(
        "{kind}: {n} parked tasks, RSS {:.1} MiB -> {:.1} MiB: {per:.0} bytes per task",
        before as f64 / 1048576.0,
        after as f64 / 1048576.0
    );
}

fn stackful(n: usize) {
    let ev = EventLoop::new();
    let (tx, rx) = channel::<u32>(1);
    let before = vm_rss_bytes();
    for _ in 0..n {
        let rx = rx.clone();
        ev.spawn(move || rx.recv().ok());
    }
    for _ in 0..n {
        ev.try_tick(); // each task runs once and parks in recv
    }
    let after = vm_rss_bytes();
    report("stackful ", n, before, after);
    drop(rx);
    drop(tx); // closes the channel: every task finishes
    ev.run().unwrap();
}

fn stackless(n: usize) {
    use cogen::event_loop::{TryRecvError, Wait};
    let ev = EventLoop::new();
    let (tx, rx) = channel::<u32>(1);
    let before = vm_rss_bytes();
    for _ in 0..n {
        let rx = rx.clone();
        ev.spawn_stackless(
            #[coroutine]
            move || {
                loop {
                    match rx.try_recv() {
                        Err(TryRecvError::Empty) => yield Wait::recv(&rx),
                        _ => return,
                    }
                }
            },
        );
    }
    for _ in 0..n {
        ev.try_tick();
    }
    let after = vm_rss_bytes();
    report("stackless", n, before, after);
    drop(rx);
    drop(tx);
    ev.run().unwrap();
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let counts: Result<Vec<usize>, _> = args.iter().map(|a| a.replace('_', "").parse()).collect();
    let (stackful_n, stackless_n) = match counts.as_deref() {
        Ok([]) => (10_000, 1_000_000),
        Ok([a]) => (*a, 1_000_000),
        Ok([a, b]) => (*a, *b),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    if stackful_n > 0 {
        stackful(stackful_n);
    }
    if stackless_n > 0 {
        stackless(stackless_n);
    }
    ExitCode::SUCCESS
}
