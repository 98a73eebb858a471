//! The project's performance goals: which ids each compares, how, and its
//! limit. Shared by `bench_report` (criterion medians and callgrind counts)
//! and `paired` (times measured in alternating slices).

/// What a goal compares.
#[derive(Clone, Copy, PartialEq)]
pub enum Measure {
    /// Time per operation.
    Time,
    /// callgrind's instructions per operation (`op_counts.json`).
    Instructions,
}

/// A performance goal of the project: `a`'s measure against the best (the
/// fastest, or the fewest instructions) of the ids in `b`, compared with
/// `limit`; with `b` empty, `a`'s instructions against `limit` itself.
pub struct Goal {
    pub group: &'static str,
    pub a: &'static str,
    pub b: &'static [&'static str],
    pub measure: Measure,
    /// True: `b / a >= limit` ("a is at least limit× faster than b").
    /// False: `a / b <= limit` ("a is within limit× of b"), or `a <= limit`
    /// when `b` is empty.
    pub faster: bool,
    pub limit: f64,
}

/// tokio's four variants in the event-loop groups.
pub const TOKIO: &[&str] = &["tokio", "tokio_noio", "tokio_local", "tokio_local_noio"];

/// Names of groups and ids.
type Ids = &'static [&'static str];

/// A goal: `a`'s `measure` against the best of `b`, `faster` as in [`Goal`].
const fn goal(
    group: &'static str,
    a: &'static str,
    b: Ids,
    measure: Measure,
    faster: bool,
    limit: f64,
) -> Goal {
    Goal {
        group,
        a,
        b,
        measure,
        faster,
        limit,
    }
}

/// `a` at least `limit` times faster than the fastest of `b`.
const fn faster(group: &'static str, a: &'static str, b: Ids, limit: f64) -> Goal {
    goal(group, a, b, Measure::Time, true, limit)
}

/// `a`'s time within `limit` times the fastest of `b`'s.
const fn within(group: &'static str, a: &'static str, b: Ids, limit: f64) -> Goal {
    goal(group, a, b, Measure::Time, false, limit)
}

/// `a`'s instructions within `limit` times the fewest of `b`'s.
const fn fewer(group: &'static str, a: &'static str, b: Ids, limit: f64) -> Goal {
    goal(group, a, b, Measure::Instructions, false, limit)
}

/// `a`'s instructions at most `limit`.
const fn at_most(group: &'static str, a: &'static str, limit: f64) -> Goal {
    goal(group, a, &[], Measure::Instructions, false, limit)
}

/// Every goal, in the order the reports print them.
pub const GOALS: &[Goal] = &[
    // Peers (`benches/peers.rs`).
    faster("peer_switch", "cogen", &["generator_rs"], 4.0),
    faster("peer_switch", "cogen", &["lua54"], 20.0),
    within("peer_switch", "cogen_stackless", &["nightly_raw"], 1.2),
    faster("peer_create", "cogen", &["lua54"], 10.0),
    faster("peer_create", "cogen", &["generator_rs"], 100.0),
    within("peer_round_robin", "cogen", &["corosensei"], 1.2),
    faster("peer_round_robin", "cogen", &["lua54"], 10.0),
    faster("peer_round_robin", "cogen_prefetch", &["lua54"], 10.0),
    // The coroutine (`benches/coroutine.rs`).
    within("switch", "cogen", &["corosensei"], 1.10),
    at_most("switch", "cogen", 40.0),
    within("create", "cogen", &["corosensei_reused_stack"], 2.0),
    fewer("create", "cogen", &["corosensei_reused_stack"], 2.0),
    faster("create", "cogen", &["corosensei_fresh_stack"], 200.0),
    within("drop_suspended", "cogen", &["corosensei"], 1.0),
    // Pipelines (`benches/pipeline.rs`).
    within("pipeline_3_stages", "cogen_stackless", &["gen_blocks"], 1.2),
    within("pipeline_3_stages", "cogen_inline", &["gen_blocks"], 1.2),
    faster(
        "pipeline_3_stages",
        "cogen_stackful",
        &["mpsc_threads"],
        10.0,
    ),
    within("stackless_switch", "cogen", &["raw_nightly"], 1.10),
    fewer("pipeline_3_stages", "cogen_stackless", &["gen_blocks"], 1.2),
    fewer("pipeline_3_stages", "cogen_inline", &["gen_blocks"], 1.2),
    // The event loop (`benches/event_loop.rs`): times against tokio and smol,
    // instructions against tokio's best variant and smol, and no slower than `may`.
    faster("channel_ping_pong", "cogen", &["tokio"], 3.0),
    faster("channel_ping_pong", "cogen", TOKIO, 3.0),
    faster("spawn_join", "cogen", &["smol"], 1.5),
    faster("many_tasks", "cogen", &["smol"], 1.5),
    fewer("channel_ping_pong", "cogen", TOKIO, 0.334),
    fewer("channel_ping_pong", "cogen", &["smol"], 0.5),
    fewer("spawn_join", "cogen", TOKIO, 0.334),
    fewer("spawn_join", "cogen", &["smol"], 0.5),
    fewer("many_tasks", "cogen", TOKIO, 0.334),
    fewer("many_tasks", "cogen", &["smol"], 0.5),
    faster("yield_round_robin", "cogen", &["may"], 1.0),
    faster("channel_ping_pong", "cogen", &["may"], 1.0),
    faster("spawn_join", "cogen", &["may"], 1.0),
    faster("many_tasks", "cogen", &["may"], 1.0),
];

impl Goal {
    /// The goal in words, as the reports print it.
    pub fn text(&self) -> String {
        let what = match self.measure {
            Measure::Time => "",
            Measure::Instructions => " (instructions)",
        };
        let against = match self.b {
            [] => String::new(),
            [one] => one.to_string(),
            many => format!("the best of {}", many.join(", ")),
        };
        match (self.faster, self.b.is_empty()) {
            (_, true) => format!("`{}`{what}: {} ≤ {}", self.group, self.a, self.limit),
            (true, false) => format!(
                "`{}`{what}: {} ≥ {}× faster than {against}",
                self.group, self.a, self.limit
            ),
            (false, false) => format!(
                "`{}`{what}: {} within {}× of {against}",
                self.group, self.a, self.limit
            ),
        }
    }

    /// The goal's ratio for `a`'s measure against the best of `b`'s: how
    /// many times faster `a` is (`b / a`) for a "faster" goal, else `a / b`.
    pub fn ratio(&self, a: f64, best_b: f64) -> f64 {
        if self.faster { best_b / a } else { a / best_b }
    }

    /// Whether a [`ratio`](Goal::ratio) meets the goal.
    pub fn met(&self, ratio: f64) -> bool {
        if self.faster {
            ratio >= self.limit
        } else {
            ratio <= self.limit
        }
    }

    /// A [`ratio`](Goal::ratio) as the reports print it.
    pub fn fmt_ratio(&self, r: f64) -> String {
        if !self.faster {
            return format!("{r:.3}×");
        }
        let r = if r >= 100.0 {
            format!("{r:.0}×")
        } else if r >= 10.0 {
            format!("{r:.1}×")
        } else {
            format!("{r:.2}×")
        };
        format!("{r} faster")
    }
}
