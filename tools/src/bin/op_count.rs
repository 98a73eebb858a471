//! Runs one (group, id) of the criterion benches N times and nothing else,
//! for counting instructions and branch mispredictions with callgrind.
//!
//! ```text
//! cargo run --release -p cogen-tools --bin op_count -- <group> <id> <N>
//! cargo run --release -p cogen-tools --bin op_count -- --list
//! valgrind --tool=callgrind --branch-sim=yes target/release/op_count switch cogen 100000
//! ```
//!
//! The workloads are the benches' own: `benches/workloads/*.rs`, included
//! here as they are in the benches, run through a [`Harness`] that calls
//! the chosen id's routine N times in the loop criterion's `iter` uses
//! (`black_box(routine())`). Run it for two values of N and subtract: the
//! difference divided by the difference in N is one iteration, with the
//! set-up (the runtime, the ring of coroutines, the process) cancelled out.
//! For ids whose iteration has untimed set-up of its own (criterion's
//! `iter_custom`, e.g. `drop_suspended`), callgrind's collection is switched
//! off around it with a client request, on the calling thread.
//!
//! `--list` prints one line per (group, id): bench, group, id, kind
//! (`iter` or `iter_timed`), operations per iteration, the operation's name and the two N the count script uses.
//! Group `baseline` holds the loop alone: `iter` (a routine that does
//! nothing) and `iter_timed` (a timer started and stopped around nothing).
//! `tools/scripts/count_all.sh` runs every line under callgrind. `--check`
//! runs the pipeline variants once and checks that they agree.

#![feature(coroutines, coroutine_trait, gen_blocks)]

use std::hint::black_box;
use std::process::ExitCode;

#[path = "../../../benches/workloads/coroutine.rs"]
mod coroutine;
#[path = "../../../benches/workloads/event_loop.rs"]
mod event_loop;
#[path = "../../../benches/workloads/harness.rs"]
mod harness;
#[path = "../../../benches/workloads/peers.rs"]
mod peers;
#[path = "../../../benches/workloads/pipeline.rs"]
mod pipeline;

#[path = "../groups.rs"]
mod groups;

use groups::groups;
use harness::{Harness, Timer};

/// Runs the wanted id `n` times; or, with no id wanted, lists the ids.
struct Counter {
    want: Option<String>,
    n: u64,
    /// Every id the group handed over, in order, with its kind (`iter` or
    /// `iter_timed`).
    ids: Vec<(String, &'static str)>,
    ran: bool,
}

impl Counter {
    fn wants(&mut self, id: &str, kind: &'static str) -> bool {
        self.ids.push((id.to_string(), kind));
        self.want.as_deref() == Some(id)
    }
}

impl Harness for Counter {
    type Timer = Callgrind;

    fn iter<O, R: FnMut() -> O + 'static>(&mut self, id: &str, mut make: impl FnMut() -> R) {
        if !self.wants(id, "iter") {
            return;
        }
        iterate(self.n, make());
        self.ran = true;
    }

    fn iter_timed<R: FnMut(&mut Callgrind) + 'static>(
        &mut self,
        id: &str,
        mut make: impl FnMut() -> R,
    ) {
        if !self.wants(id, "iter_timed") {
            return;
        }
        let mut routine = make();
        // Collection off but between each start and stop.
        toggle_collect();
        for _ in 0..self.n {
            routine(&mut Callgrind);
        }
        toggle_collect();
        self.ran = true;
    }
}

/// Criterion's `Bencher::iter` loop, the routine taken by value as there
/// (so that it inlines the same way).
fn iterate<O>(n: u64, mut routine: impl FnMut() -> O) {
    for _ in 0..n {
        black_box(routine());
    }
}

/// Switches callgrind's collection on at `start` and off at `stop` (on the
/// calling thread); not under valgrind, it does nothing.
struct Callgrind;

impl Timer for Callgrind {
    #[inline(always)]
    fn start(&mut self) {
        toggle_collect();
    }

    #[inline(always)]
    fn stop(&mut self) {
        toggle_collect();
    }
}

/// `CALLGRIND_TOGGLE_COLLECT` from valgrind's `callgrind.h`: the client
/// request sequence for amd64 (`valgrind.h`), which is a no-op on a real
/// CPU (`rdi` rotated by 128 bits in all, `xchg rbx, rbx`). Elsewhere it
/// does nothing, and timed ids count their set-up too.
#[inline(always)]
fn toggle_collect() {
    #[cfg(target_arch = "x86_64")]
    {
        /// `VG_USERREQ_TOOL_BASE('C', 'T') + 2`.
        const TOGGLE_COLLECT: u64 = (((b'C' as u64) << 24) | ((b'T' as u64) << 16)) + 2;
        let request: [u64; 6] = [TOGGLE_COLLECT, 0, 0, 0, 0, 0];
        let mut _result: u64 = 0;
        // SAFETY: the four rotations of `rdi` add up to 128 bits, so `rdi`
        // ends as it began; `xchg rbx, rbx` changes nothing; `rdx` is
        // declared as written (valgrind puts the request's result there);
        // valgrind reads the six words at `rax`, which live until the end of
        // the block. The sequence touches no other state.
        unsafe {
            std::arch::asm!(
                "rol rdi, 3",
                "rol rdi, 13",
                "rol rdi, 61",
                "rol rdi, 51",
                "xchg rbx, rbx",
                in("rax") request.as_ptr(),
                inout("rdx") _result,
                options(nostack),
            );
        }
    }
}

const USAGE: &str = "\
usage: op_count <group> <id> <N>    run the id's iteration N times
       op_count --list              every (group, id): bench group id kind ops op n1 n2
       op_count --check             check that the pipeline variants agree";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["-h" | "--help"] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        ["--check"] => {
            pipeline::check();
            println!("pipeline_3_stages: every variant gives the same sum");
            ExitCode::SUCCESS
        }
        ["--list"] => {
            for g in groups::<Counter>() {
                let mut c = Counter {
                    want: None,
                    n: 0,
                    ids: Vec::new(),
                    ran: false,
                };
                (g.run)(&mut c);
                for (id, kind) in c.ids {
                    println!(
                        "{} {} {id} {kind} {} {} {} {}",
                        g.bench,
                        g.name,
                        g.ops,
                        g.op.replace(' ', "_"),
                        g.n.0,
                        g.n.1
                    );
                }
            }
            ExitCode::SUCCESS
        }
        [group, id, n] => {
            let (Some(g), Ok(n)) = (
                groups::<Counter>().into_iter().find(|g| g.name == group),
                n.parse(),
            ) else {
                eprintln!("{USAGE}");
                return ExitCode::FAILURE;
            };
            let mut c = Counter {
                want: Some(id.to_string()),
                n,
                ids: Vec::new(),
                ran: false,
            };
            (g.run)(&mut c);
            if !c.ran {
                let ids: Vec<&str> = c.ids.iter().map(|(id, _)| id.as_str()).collect();
                eprintln!("group {group} has no id {id:?}; ids: {}", ids.join(", "));
                return ExitCode::FAILURE;
            }
            println!("{group}/{id}: {n} iterations");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::FAILURE
        }
    }
}
