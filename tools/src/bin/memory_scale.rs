//! Resident memory per parked coroutine, at scale.
//!
//! ```text
//! cargo run --release -p cogen-tools --bin memory_scale                 # every kind, default N
//! cargo run --release -p cogen-tools --bin memory_scale -- stackless 1000000
//! ```
//!
//! Kinds:
//!
//! * `stackful_default`: `cogen::Coroutine` with the default stack
//!   ([`cogen::stack::DEFAULT_STACK_SIZE`]);
//! * `stackful_min`: the smallest safe stack,
//!   `Builder::new().stack_size(cogen::stack::MIN_STACK_SIZE)`;
//! * `stackless`: a `#[coroutine]` closure in `cogen::stackless::Stackless::pinned`
//!   (state machine boxed, as in the `cogen_stackless` bench id);
//! * `stackless_inline`: the same closure in `Stackless::new` (no box);
//! * `lua54`: a Lua 5.4 thread through `mlua`, for comparison.
//!
//! Each kind creates N coroutines, resumes each once so that it is parked in
//! a `yield` with its locals live (the first resume touches its stack), and
//! reads `VmRSS` and `VmPTE` from `/proc/self/status` before and after. The
//! difference over N is what one parked coroutine costs, including its slot
//! in the `Vec` that holds them. `VmPTE` (page tables, which the kernel
//! does not count in RSS) is printed beside it, because a stack's mapping
//! costs page tables too.
//!
//! Stackful coroutines are capped by Linux's `vm.max_map_count` (each
//! guarded stack is two mappings): the default N is 90% of what the limit
//! leaves free. Stackless coroutines default to 1,000,000. With `all` (the
//! default), every kind runs in its own child process so that one kind's
//! freed memory cannot be reused by the next.

#![feature(coroutines, coroutine_trait)]

use std::hint::black_box;
use std::ops::Coroutine as StdCoroutine;
use std::process::{Command, ExitCode};

use cogen::stackless::Stackless;
use cogen::{Builder, Coroutine, Resumable};

const KINDS: [&str; 5] = [
    "stackful_default",
    "stackful_min",
    "stackless",
    "stackless_inline",
    "lua54",
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let kind = args.first().map_or("all", String::as_str);
    if kind == "-h" || kind == "--help" {
        println!("usage: memory_scale [all|{}] [N]", KINDS.join("|"));
        return ExitCode::SUCCESS;
    }
    let n: Option<usize> = match args.get(1).map(|s| s.replace('_', "").parse()) {
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => {
            eprintln!("usage: memory_scale [all|{}] [N]", KINDS.join("|"));
            return ExitCode::FAILURE;
        }
        None => None,
    };
    if kind == "all" {
        return run_all(n);
    }
    if !KINDS.contains(&kind) {
        eprintln!("unknown kind {kind:?}; kinds: all, {}", KINDS.join(", "));
        return ExitCode::FAILURE;
    }
    let n = n.unwrap_or_else(|| default_n(kind));
    let row = measure(kind, n);
    println!("{row}");
    ExitCode::SUCCESS
}

/// Runs every kind in a child process and prints the table.
fn run_all(n: Option<usize>) -> ExitCode {
    let exe = std::env::current_exe().expect("own path");
    println!("| kind | N | RSS per coroutine | page tables per coroutine |");
    println!("|---|---:|---:|---:|");
    let mut ok = true;
    for kind in KINDS {
        let mut cmd = Command::new(&exe);
        cmd.arg(kind);
        if let Some(n) = n {
            cmd.arg(n.to_string());
        }
        match cmd.output() {
            Ok(out) if out.status.success() => {
                print!("{}", String::from_utf8_lossy(&out.stdout));
            }
            Ok(out) => {
                ok = false;
                println!("| {kind} | failed: {} | | |", out.status);
                eprint!("{}", String::from_utf8_lossy(&out.stderr));
            }
            Err(e) => {
                ok = false;
                println!("| {kind} | cannot run: {e} | | |");
            }
        }
    }
    println!(
        "\nFor reference, measured apart on the same machine: Lua 5.4 ~1,073 B and LuaJIT ~480 B per suspended coroutine."
    );
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn default_n(kind: &str) -> usize {
    if kind.starts_with("stackful") {
        stackful_limit()
    } else {
        1_000_000
    }
}

/// 90% of the stacks that still fit under `vm.max_map_count`.
fn stackful_limit() -> usize {
    let max = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(65_530);
    let used = std::fs::read_to_string("/proc/self/maps").map_or(0, |m| m.lines().count());
    max.saturating_sub(used) / 2 * 9 / 10
}

/// (VmRSS, VmPTE) of this process in bytes.
fn memory() -> (usize, usize) {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<usize>()
                    .ok()
            })
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmPTE:"))
}

fn fmt_bytes(b: f64) -> String {
    if b >= 10.0 * 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{b:.0} B")
    }
}

/// Creates `n` coroutines with `make`, parks each with `park`, keeps them
/// alive while measuring, and returns the table row.
fn scale<T>(
    kind: &str,
    n: usize,
    mut make: impl FnMut() -> T,
    mut park: impl FnMut(&mut T, usize),
) -> String {
    let (rss0, pte0) = memory();
    let mut all = Vec::with_capacity(n);
    for i in 0..n {
        let mut co = make();
        park(&mut co, i);
        all.push(co);
    }
    let (rss1, pte1) = memory();
    black_box(&mut all);
    let per = |a: usize, b: usize| b.saturating_sub(a) as f64 / n as f64;
    let row = format!(
        "| {kind} | {n} | {} | {} |",
        fmt_bytes(per(rss0, rss1)),
        fmt_bytes(per(pte0, pte1))
    );
    drop(all);
    row
}

fn stackful(builder: Builder) -> Coroutine<usize, usize, ()> {
    builder.build(|co, mut x: usize| {
        loop {
            x = co.suspend(x.wrapping_add(1));
        }
    })
}

fn park_stackful(co: &mut Coroutine<usize, usize, ()>, i: usize) {
    let y = co.resume(i).ok().and_then(|r| r.as_yield());
    assert_eq!(y, Some(i.wrapping_add(1)));
}

fn body() -> impl StdCoroutine<usize, Yield = usize, Return = ()> + Unpin {
    #[coroutine]
    |mut x: usize| {
        loop {
            x = yield x.wrapping_add(1);
        }
    }
}

fn park_stackless<G: Resumable<usize, Yield = usize>>(co: &mut G, i: usize) {
    let y = co.resume(i).ok().and_then(|r| r.as_yield());
    assert_eq!(y, Some(i.wrapping_add(1)));
}

fn measure(kind: &str, n: usize) -> String {
    match kind {
        "stackful_default" => scale(kind, n, || stackful(Builder::new()), park_stackful),
        "stackful_min" => scale(
            kind,
            n,
            || stackful(Builder::new().stack_size(cogen::stack::MIN_STACK_SIZE)),
            park_stackful,
        ),
        "stackless" => scale(kind, n, || Stackless::pinned(body()), park_stackless),
        "stackless_inline" => scale(kind, n, || Stackless::new(body()), park_stackless),
        "lua54" => {
            let lua = mlua::Lua::new();
            let f: mlua::Function = lua
                .load("return function(x) while true do x = coroutine.yield(x + 1) end end")
                .eval()
                .expect("valid Lua");
            scale(
                kind,
                n,
                || lua.create_thread(f.clone()).expect("thread"),
                |t, i| assert_eq!(t.resume::<usize>(i).expect("resume"), i + 1),
            )
        }
        _ => unreachable!("checked in main"),
    }
}
