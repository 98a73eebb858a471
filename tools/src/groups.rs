//! The bench groups, for the tools that run the benches' workloads outside
//! criterion (`op_count`, `paired`): where each is declared, how to run it,
//! what one iteration is. Included by each tool with `#[path]`, beside the
//! workload modules it names (`crate::coroutine`, `crate::event_loop`, ...).

// Shared by the tools: each reads only some fields.
#![allow(dead_code)]

use crate::harness::{Harness, Timer};
use crate::{coroutine, event_loop, peers, pipeline};

/// One bench group: where it is declared, how to run it, what one
/// iteration is, and the two iteration counts to difference.
pub struct Group<H> {
    /// The bench file that declares the group (`-` for the baseline).
    pub bench: &'static str,
    /// The group's name.
    pub name: &'static str,
    /// Hands the group's ids to a harness.
    pub run: fn(&mut H),
    /// Operations per iteration (tasks, yields, items, ...).
    pub ops: u64,
    /// What one operation is.
    pub op: &'static str,
    /// The two iteration counts `count_all.sh` differences.
    pub n: (u64, u64),
}

/// Every group of the benches, and the baseline.
pub fn groups<H: Harness>() -> [Group<H>; 14] {
    [
        Group {
            bench: "-",
            name: "baseline",
            run: baseline::<H>,
            ops: 1,
            op: "iteration",
            n: (100_000, 200_000),
        },
        Group {
            bench: "coroutine",
            name: "switch",
            run: coroutine::switch::<H>,
            ops: 1,
            op: "round trip",
            n: (100_000, 200_000),
        },
        Group {
            bench: "coroutine",
            name: "create",
            run: coroutine::create::<H>,
            ops: 1,
            op: "coroutine",
            n: (20_000, 40_000),
        },
        Group {
            bench: "coroutine",
            name: "drop_suspended",
            run: coroutine::drop_suspended::<H>,
            ops: 1,
            op: "drop",
            n: (10_000, 20_000),
        },
        Group {
            bench: "peers",
            name: "peer_switch",
            run: peers::peer_switch::<H>,
            ops: 1,
            op: "round trip",
            n: (100_000, 200_000),
        },
        Group {
            bench: "peers",
            name: "peer_create",
            run: peers::peer_create::<H>,
            ops: 1,
            op: "coroutine",
            n: (10_000, 20_000),
        },
        Group {
            bench: "peers",
            name: "peer_round_robin",
            run: peers::peer_round_robin::<H>,
            ops: 1,
            op: "resume",
            n: (100_000, 200_000),
        },
        Group {
            bench: "pipeline",
            name: "pipeline_3_stages",
            run: pipeline::pipeline_3_stages::<H>,
            ops: pipeline::ITEMS,
            op: "item",
            n: (1, 2),
        },
        Group {
            bench: "pipeline",
            name: "stackless_switch",
            run: pipeline::nightly::stackless_switch::<H>,
            ops: 1,
            op: "round trip",
            n: (100_000, 200_000),
        },
        Group {
            bench: "event_loop",
            name: "yield_round_robin",
            run: event_loop::yield_round_robin::<H>,
            ops: 2 * event_loop::YIELDS,
            op: "yield",
            n: (2, 4),
        },
        Group {
            bench: "event_loop",
            name: "channel_ping_pong",
            run: event_loop::channel_ping_pong::<H>,
            ops: event_loop::ROUND_TRIPS,
            op: "round trip",
            n: (2, 4),
        },
        Group {
            bench: "event_loop",
            name: "spawn_join",
            run: event_loop::spawn_join::<H>,
            ops: event_loop::SPAWNS,
            op: "task",
            n: (20, 40),
        },
        Group {
            bench: "event_loop",
            name: "many_tasks",
            run: event_loop::many_tasks::<H>,
            ops: event_loop::MANY * event_loop::MANY_YIELDS,
            op: "yield",
            n: (1, 2),
        },
        Group {
            bench: "event_loop",
            name: "nested_yield",
            run: event_loop::nested_yield::<H>,
            ops: 2 * event_loop::YIELDS,
            op: "yield",
            n: (2, 4),
        },
    ]
}

/// The loop alone, for each kind of id.
fn baseline<H: Harness>(h: &mut H) {
    h.iter("iter", || || ());
    h.iter_timed("iter_timed", || {
        |t: &mut H::Timer| {
            t.start();
            t.stop();
        }
    });
}
