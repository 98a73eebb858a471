//! Model-based fuzzer of the event loop: proptest generates random programs
//! (a few task scripts of every kind, scripts for the children they spawn,
//! operations done from outside between `try_tick`s, and how the run ends)
//! and runs each one against the invariants the loop promises.
//!
//! A program's tasks are stackful, future or (on a nightly compiler)
//! stackless. Their scripts yield, sleep, send and receive on bounded
//! channels, close them or drop their ends, join, cancel, spawn, poll a
//! [`JoinHandle`] as a future with a user [`Waker`] (whose `wake` calls back
//! into the loop: cancels a task, detaches it, sends, closes, spawns or
//! panics), wait for a future woken from another thread, hold values whose
//! destructors call back into the loop or panic, catch their own
//! cancellation, and panic. The
//! tasks' results have destructors that call back into the loop too. The run
//! ends with [`EventLoop::run`] or by dropping the loop after some
//! `try_tick`s.
//!
//! # Invariants
//!
//! * Every message is received exactly once, handed back to its sender, or
//!   dropped with its channel or its cancelled sender; received messages come
//!   in order per sender; a receive fails only on an empty channel.
//! * Every value (task closure, message, destructor, panic payload, result,
//!   waker) is dropped exactly once; nothing leaks, no task is left
//!   unfinished once its loop is dropped.
//! * No task runs after its cancellation: once `cancel` returned for a
//!   suspended task, its body observes nothing more; a task that cancelled
//!   itself (or was cancelled while it ran) stops at its next suspension.
//! * A cancelled result only comes from a cancel request or a dropped loop,
//!   and a task cancelled while suspended never returns a value.
//! * Every panic (of a body, a destructor, a waker, a result's destructor) is
//!   seen exactly once when the loop runs to its end: through a join, in
//!   `run`'s report, or raised out of the loop's method.
//! * A user waker left in a `JoinHandle` is woken when its task ends, or,
//!   if the handle is dropped first, given back with the handle.
//! * `run` returns (a value or a deadlock report) — it never hangs: each case
//!   runs on its own thread and fails if it takes longer than 10 s. A
//!   deadlock report names exactly the unfinished tasks, and each waits for
//!   something that cannot come (an empty open channel, a full one, an
//!   unfinished task).
//! * The thread stays usable: after each case, a fresh [`EventLoop`] on the
//!   same thread runs a task.
//!
//! # What it found
//!
//! Four bugs, fixed since; each has a regression test at the end of this
//! file (and in `nightly/fuzz_event_loop_stackless.rs`), and the fuzzer no
//! longer steers around any of them:
//!
//! | bug | regression test |
//! |---|---|
//! | a panic while the loop was dropped stopped it cancelling the other tasks (which then leaked) | `a_panic_while_dropping_the_loop_still_cancels_every_task` |
//! | a waker that panicked when its task ended lost that detached task's panic | `a_panicking_waker_does_not_lose_the_panic_of_a_detached_task` |
//! | a panic out of a stackless task's wait request left the task current: the thread was wrecked | `a_panic_out_of_a_stackless_wait_request_leaves_the_thread_usable` |
//! | a future awaiting the handle of a deadlocked task made `run` sleep forever | `a_future_awaiting_a_stuck_task_is_reported_as_a_deadlock` |
//!
//! # Running it
//!
//! ```text
//! cargo test --all-features --test fuzz_event_loop                 # bounded: 2,000 cases
//! PROPTEST_CASES=200000 cargo test --release --all-features --test fuzz_event_loop
//! ASAN_OPTIONS=detect_stack_use_after_return=0 RUSTFLAGS="-Zsanitizer=address" \
//!   RUSTDOCFLAGS="-Zsanitizer=address" CARGO_TARGET_DIR=target/asan \
//!   cargo test --all-features --target x86_64-unknown-linux-gnu --test fuzz_event_loop
//! ```
#![cfg_attr(cogen_nightly, feature(coroutines, stmt_expr_attributes))]

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, panic_any, resume_unwind};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use cogen::event_loop::{
    self as el, EventLoop, JoinError, JoinHandle, PanicPolicy, Receiver, RecvError, Sender,
    TryRecvError, WaitingOn,
};
use proptest::prelude::*;

mod support;
use support::{DropCounter, DropToken};

#[cfg(cogen_nightly)]
#[path = "nightly/fuzz_event_loop_stackless.rs"]
mod nightly;

// ---------------------------------------------------------------------------
// Programs
// ---------------------------------------------------------------------------

/// How many channels a program has.
const CHANNELS: usize = 2;
/// At most this many tasks per program (spawns past it do nothing).
const MAX_TASKS: usize = 10;
/// The sender number of messages sent from outside any task (or by a waker
/// or destructor).
const OUTSIDE: usize = MAX_TASKS;
/// How long a case may take before it counts as a hang: 10 s, or
/// `COGEN_FUZZ_TIMEOUT_SECS` (shorter makes shrinking a hang faster).
fn hang_timeout() -> Duration {
    let secs = std::env::var("COGEN_FUZZ_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    Duration::from_secs(secs)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Stackful,
    Future,
    /// A stackful task on a stable compiler.
    Stackless,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End2 {
    Send,
    Recv,
}

/// What a waker, a destructor or a result's destructor does when it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Nothing,
    Cancel(usize),
    /// Panics, unless the thread is already unwinding.
    Panic,
    Spawn(usize),
    TrySend(usize),
    Close(usize),
    /// Drops the task's handle.
    Detach(usize),
}

/// What a stackful body does after it caught its own cancellation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum After {
    Panic,
    Return,
    /// Tries to wait: that panics, as the task is being cancelled.
    Wait,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Op {
    Yield,
    SleepMs(u8),
    Send(usize),
    TrySend(usize),
    Recv(usize),
    TryRecv(usize),
    Close(usize, End2),
    /// The program drops its own end of the channel (tasks hold clones only
    /// while they use them), so the channel closes when the last user goes.
    DropEnd(usize, End2),
    Join(usize),
    TryJoin(usize),
    Cancel(usize),
    /// Polls the handle as a future with a user waker doing the action.
    Poll(usize, Action),
    Detach(usize),
    /// Spawns the program's child script with this number.
    Spawn(usize),
    /// Waits for a future that another thread wakes.
    External,
    /// Puts a value on the task's stack whose destructor does the action.
    Hold(Action),
    /// Stackful only: runs the rest of the script inside `catch_unwind`.
    CatchCancel(After),
    Panic,
}

#[derive(Clone, Debug)]
struct Script {
    kind: Kind,
    ops: Vec<Op>,
    /// What the destructor of the task's result does.
    ret: Action,
}

#[derive(Clone, Debug)]
enum Ending {
    Run,
    DropAfter(u8),
}

#[derive(Clone, Debug)]
struct Program {
    propagate: bool,
    capacities: Vec<usize>,
    tasks: Vec<Script>,
    children: Vec<Script>,
    /// `try_tick`s, then an operation from outside any task.
    outside: Vec<(u8, Op)>,
    ending: Ending,
}

/// Counts of what the cases did, printed with `COGEN_FUZZ_STATS=1` (to see
/// that the generator reaches the interesting paths).
#[derive(Debug, Default)]
struct Stats {
    cases: AtomicUsize,
    ran_to_end: AtomicUsize,
    deadlocks: AtomicUsize,
    dropped_mid_run: AtomicUsize,
    tasks: AtomicUsize,
    stackless_tasks: AtomicUsize,
    future_tasks: AtomicUsize,
    cancelled_suspended: AtomicUsize,
    cancelled_running: AtomicUsize,
    messages_received: AtomicUsize,
    messages_handed_back: AtomicUsize,
    panics_seen: AtomicUsize,
    panics_out_of_the_loop: AtomicUsize,
    loop_drop_panicked: AtomicUsize,
    user_wakers_fired: AtomicUsize,
}

static STATS: Stats = Stats {
    cases: AtomicUsize::new(0),
    ran_to_end: AtomicUsize::new(0),
    deadlocks: AtomicUsize::new(0),
    dropped_mid_run: AtomicUsize::new(0),
    tasks: AtomicUsize::new(0),
    stackless_tasks: AtomicUsize::new(0),
    future_tasks: AtomicUsize::new(0),
    cancelled_suspended: AtomicUsize::new(0),
    cancelled_running: AtomicUsize::new(0),
    messages_received: AtomicUsize::new(0),
    messages_handed_back: AtomicUsize::new(0),
    panics_seen: AtomicUsize::new(0),
    panics_out_of_the_loop: AtomicUsize::new(0),
    loop_drop_panicked: AtomicUsize::new(0),
    user_wakers_fired: AtomicUsize::new(0),
};

fn count(c: &AtomicUsize, n: usize) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// Whether the fuzzer exercises the paths of the bugs it found (see the
/// module docs): always, now that they are fixed. Kept as one switch so that
/// a regression can be bisected by turning it off.
fn known_bugs() -> bool {
    true
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => Just(Action::Nothing),
        2 => (0..MAX_TASKS).prop_map(Action::Cancel),
        1 => Just(Action::Panic),
        1 => (0..4usize).prop_map(Action::Spawn),
        1 => (0..CHANNELS).prop_map(Action::TrySend),
        1 => (0..CHANNELS).prop_map(Action::Close),
        1 => (0..MAX_TASKS).prop_map(Action::Detach),
    ]
}

fn end2() -> impl Strategy<Value = End2> {
    prop_oneof![Just(End2::Send), Just(End2::Recv)]
}

/// Operations that never wait: the ones done from outside, and by every kind.
fn non_waiting_op() -> impl Strategy<Value = Op> {
    let task = 0..MAX_TASKS;
    prop_oneof![
        2 => (0..CHANNELS).prop_map(Op::TrySend),
        2 => (0..CHANNELS).prop_map(Op::TryRecv),
        1 => ((0..CHANNELS), end2()).prop_map(|(c, e)| Op::Close(c, e)),
        1 => ((0..CHANNELS), end2()).prop_map(|(c, e)| Op::DropEnd(c, e)),
        1 => task.clone().prop_map(Op::TryJoin),
        3 => task.clone().prop_map(Op::Cancel),
        2 => (task.clone(), action()).prop_map(|(t, a)| Op::Poll(t, a)),
        1 => task.prop_map(Op::Detach),
        1 => (0..4usize).prop_map(Op::Spawn),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Yield),
        1 => (0u8..=2).prop_map(Op::SleepMs),
        3 => (0..CHANNELS).prop_map(Op::Send),
        3 => (0..CHANNELS).prop_map(Op::Recv),
        2 => (0..MAX_TASKS).prop_map(Op::Join),
        1 => Just(Op::External),
        1 => action().prop_map(Op::Hold),
        1 => prop_oneof![Just(After::Panic), Just(After::Return), Just(After::Wait)]
            .prop_map(Op::CatchCancel),
        1 => Just(Op::Panic),
        6 => non_waiting_op(),
    ]
}

fn script() -> impl Strategy<Value = Script> {
    let kind = prop_oneof![
        3 => Just(Kind::Stackful),
        1 => Just(Kind::Future),
        1 => Just(Kind::Stackless),
    ];
    let ret = prop_oneof![6 => Just(Action::Nothing), 1 => action()];
    (kind, prop::collection::vec(op(), 0..14), ret).prop_map(|(kind, ops, ret)| Script {
        kind,
        ops,
        ret,
    })
}

fn program() -> impl Strategy<Value = Program> {
    (
        prop::bool::weighted(0.2),
        prop::collection::vec(1usize..=3, CHANNELS),
        prop::collection::vec(script(), 1..=5),
        prop::collection::vec(script(), 0..=3),
        prop::collection::vec((0u8..4, non_waiting_op()), 0..8),
        prop_oneof![3 => Just(Ending::Run), 1 => (0u8..30).prop_map(Ending::DropAfter)],
    )
        .prop_map(
            |(propagate, capacities, tasks, children, outside, ending)| Program {
                propagate,
                capacities,
                tasks,
                children,
                outside,
                ending,
            },
        )
}

// ---------------------------------------------------------------------------
// The ledger: every tracked value, every panic, every violation (per thread,
// and each case runs on its own thread)
// ---------------------------------------------------------------------------

#[derive(Default)]
struct Ledger {
    next: Cell<u64>,
    made: RefCell<HashMap<u64, &'static str>>,
    drops: RefCell<HashMap<u64, u32>>,
    /// Panic payloads seen by the program (joined, reported or caught).
    observed: RefCell<HashSet<u64>>,
    /// Panic payloads dropped before anyone saw them.
    lost: RefCell<Vec<u64>>,
    /// A user waker panicked.
    waker_panicked: Cell<bool>,
    /// `Action::Panic` does nothing (while the loop is dropped).
    no_panics: Cell<bool>,
    violations: RefCell<Vec<String>>,
}

thread_local! {
    static LEDGER: Ledger = Ledger::default();
    /// The program of the case running on this thread, for wakers.
    static WORLD: RefCell<Option<Rc<World>>> = const { RefCell::new(None) };
}

fn violation(what: String) {
    let _ = LEDGER.try_with(|l| l.violations.borrow_mut().push(what));
}

/// A value whose drops the ledger counts, by id. `Send`, for panic payloads
/// and wakers.
struct Tracked {
    id: u64,
}

impl Tracked {
    fn new(what: &'static str) -> Self {
        LEDGER.with(|l| {
            let id = l.next.get();
            l.next.set(id + 1);
            l.made.borrow_mut().insert(id, what);
            Tracked { id }
        })
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let _ = LEDGER.try_with(|l| *l.drops.borrow_mut().entry(self.id).or_default() += 1);
    }
}

/// The payload of every panic a program raises.
struct Scripted {
    t: Tracked,
    what: &'static str,
}

impl Drop for Scripted {
    fn drop(&mut self) {
        let _ = LEDGER.try_with(|l| {
            if !l.observed.borrow().contains(&self.t.id) {
                l.lost.borrow_mut().push(self.t.id);
            }
        });
    }
}

fn scripted_panic(what: &'static str) -> ! {
    panic_any(Scripted {
        t: Tracked::new("panic payload"),
        what,
    })
}

fn payload_text(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<Scripted>() {
        format!("scripted panic ({})", s.what)
    } else if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string payload>".to_string()
    }
}

/// Panics of the loop that a program may provoke on purpose.
const EXPECTED_MESSAGES: &[&str] = &[
    // The regression tests of the bugs the fuzzer found.
    "scripted panic",
    // `After::Wait`: waiting while being cancelled.
    "is being cancelled",
    // `Action::Spawn` from a waker or destructor that runs outside the loop.
    "called outside a task",
];

/// A panic that came out of a method of the loop.
fn escaped(p: &(dyn Any + Send)) {
    count(&STATS.panics_out_of_the_loop, 1);
    observe_panic(p);
}

/// Records that the program saw the panic `p` (and lets it be dropped).
fn observe_panic(p: &(dyn Any + Send)) {
    count(&STATS.panics_seen, 1);
    if let Some(s) = p.downcast_ref::<Scripted>() {
        let fresh = LEDGER.with(|l| l.observed.borrow_mut().insert(s.t.id));
        if !fresh {
            violation(format!("panic payload {} seen twice", s.t.id));
        }
        return;
    }
    let text = payload_text(p);
    if !EXPECTED_MESSAGES.iter().any(|m| text.contains(m)) {
        violation(format!("unexpected panic: {text}"));
    }
}

// ---------------------------------------------------------------------------
// The world a program's tasks share
// ---------------------------------------------------------------------------

/// A message: its channel, sender and the sender's sequence number.
struct Msg {
    t: Tracked,
    chan: usize,
    sender: usize,
    seq: u32,
    _d: DropToken,
}

/// What a task returns: its number, and what its destructor does.
struct Ret {
    idx: usize,
    action: Action,
    _t: Tracked,
}

impl Ret {
    fn new(idx: usize, action: Action) -> Self {
        Ret {
            idx,
            action,
            _t: Tracked::new("task result"),
        }
    }
}

impl Drop for Ret {
    fn drop(&mut self) {
        act(self.action);
    }
}

/// A value on a task's stack whose destructor does an action.
struct Hold {
    action: Action,
    _t: Tracked,
}

impl Drop for Hold {
    fn drop(&mut self) {
        act(self.action);
    }
}

/// Per task: whether (and how) its cancellation was asked for.
const NOT_CANCELLED: u8 = 0;
/// `cancel` returned while the task was running: it stops at its next
/// suspension.
const CANCELLED_RUNNING: u8 = 1;
/// `cancel` returned while the task was suspended: it is done.
const CANCELLED: u8 = 2;

struct World {
    senders: RefCell<Vec<Option<Sender<Msg>>>>,
    receivers: RefCell<Vec<Option<Receiver<Msg>>>>,
    handles: RefCell<Vec<Option<JoinHandle<Ret>>>>,
    ids: RefCell<Vec<u64>>,
    cancel: RefCell<Vec<u8>>,
    /// The channel each task waits on, while it waits on one.
    waiting: RefCell<Vec<Option<(usize, End2)>>>,
    /// Tasks whose handle holds a user waker (that a join wakes first).
    polled: RefCell<HashSet<usize>>,
    children: Vec<Script>,
    /// (message, channel, sender, seq) of successful sends and of receives.
    sent: RefCell<Vec<(u64, usize, usize, u32)>>,
    received: RefCell<Vec<(u64, usize, usize, u32)>>,
    handed_back: RefCell<Vec<u64>>,
    outside_seq: Cell<u32>,
    /// User wakers a pending poll left in a handle.
    wakers: RefCell<Vec<Arc<UserWaker>>>,
    /// Tasks whose handle was dropped (detached) before they ended: the
    /// user wakers their polls left are given back, not woken.
    released: RefCell<HashSet<usize>>,
    loop_dropped: Cell<bool>,
    drops: DropCounter,
}

impl World {
    fn new(capacities: &[usize], children: Vec<Script>) -> Rc<World> {
        let (senders, receivers): (Vec<_>, Vec<_>) = capacities
            .iter()
            .map(|&c| {
                let (tx, rx) = el::channel::<Msg>(c);
                (Some(tx), Some(rx))
            })
            .unzip();
        Rc::new(World {
            senders: RefCell::new(senders),
            receivers: RefCell::new(receivers),
            handles: RefCell::new(Vec::new()),
            ids: RefCell::new(Vec::new()),
            cancel: RefCell::new(Vec::new()),
            waiting: RefCell::new(Vec::new()),
            polled: RefCell::new(HashSet::new()),
            children,
            sent: RefCell::new(Vec::new()),
            received: RefCell::new(Vec::new()),
            handed_back: RefCell::new(Vec::new()),
            outside_seq: Cell::new(0),
            wakers: RefCell::new(Vec::new()),
            released: RefCell::new(HashSet::new()),
            loop_dropped: Cell::new(false),
            drops: DropCounter::new(),
        })
    }

    fn sender(&self, c: usize) -> Option<Sender<Msg>> {
        self.senders.borrow()[c].clone()
    }

    fn receiver(&self, c: usize) -> Option<Receiver<Msg>> {
        self.receivers.borrow()[c].clone()
    }

    fn msg(&self, c: usize, me: Option<usize>, seq: &mut u32) -> Msg {
        let (sender, s) = match me {
            Some(me) => {
                *seq += 1;
                (me, *seq)
            }
            None => {
                self.outside_seq.set(self.outside_seq.get() + 1);
                (OUTSIDE, self.outside_seq.get())
            }
        };
        Msg {
            t: Tracked::new("message"),
            chan: c,
            sender,
            seq: s,
            _d: self.drops.token(),
        }
    }

    fn record_sent(&self, m: (u64, usize, usize, u32)) {
        self.sent.borrow_mut().push(m);
    }

    fn record_received(&self, c: usize, m: Msg) {
        if m.chan != c {
            violation(format!(
                "message {} of channel {} came out of channel {c}",
                m.t.id, m.chan
            ));
        }
        self.received
            .borrow_mut()
            .push((m.t.id, m.chan, m.sender, m.seq));
        drop(m);
    }

    fn record_handed_back(&self, m: Msg) {
        self.handed_back.borrow_mut().push(m.t.id);
        drop(m);
    }

    /// A receive failed: the channel must be closed and empty.
    fn recv_failed(&self, c: usize, rx: &Receiver<Msg>) {
        if !rx.is_closed() || !rx.is_empty() {
            violation(format!(
                "recv on channel {c} failed with {} messages in it, closed: {}",
                rx.len(),
                rx.is_closed()
            ));
        }
    }

    fn take_handle(&self, k: usize) -> Option<JoinHandle<Ret>> {
        self.handles.borrow_mut().get_mut(k).and_then(Option::take)
    }

    fn put_handle(&self, k: usize, h: JoinHandle<Ret>) {
        let mut handles = self.handles.borrow_mut();
        debug_assert!(handles[k].is_none());
        handles[k] = Some(h);
    }

    /// Checks, in task `me`'s body, that it is not running after its
    /// cancellation; `suspended` if it just came back from a suspension.
    fn observe(&self, me: usize, suspended: bool, what: &str) {
        let flag = self.cancel.borrow()[me];
        if flag == CANCELLED || (suspended && flag == CANCELLED_RUNNING) {
            violation(format!(
                "task {me} ran after its cancellation returned (flag {flag}, after {what})"
            ));
        }
    }

    fn set_waiting(&self, me: usize, w: Option<(usize, End2)>) {
        self.waiting.borrow_mut()[me] = w;
    }

    /// A join's result for task `k`.
    fn record_join(&self, k: usize, r: Result<Ret, JoinError>) {
        match r {
            Ok(ret) => {
                if ret.idx != k {
                    violation(format!("task {k} returned the result of task {}", ret.idx));
                }
                if self.cancel.borrow()[k] == CANCELLED {
                    violation(format!("task {k} returned a value after a cancellation"));
                }
                drop(ret);
            }
            Err(e) if e.is_panic() => observe_panic(&*e.into_panic()),
            Err(e) => {
                if !e.is_cancelled() {
                    violation(format!("join error neither panic nor cancellation: {e}"));
                }
                if self.cancel.borrow()[k] == NOT_CANCELLED && !self.loop_dropped.get() {
                    violation(format!("task {k} cancelled without a request"));
                }
            }
        }
    }
}

fn with_world(f: impl FnOnce(&Rc<World>)) {
    let world = WORLD.try_with(|w| w.borrow().clone()).ok().flatten();
    if let Some(world) = world {
        f(&world);
    }
}

/// Does what a waker, destructor or result asks.
fn act(action: Action) {
    if action == Action::Nothing {
        return;
    }
    with_world(|world| match action {
        Action::Nothing => {}
        Action::Cancel(k) => cancel_task(world, k),
        Action::Panic => {
            // A second panic while unwinding would abort the process.
            if !std::thread::panicking() && !LEDGER.with(|l| l.no_panics.get()) {
                scripted_panic("destructor or waker");
            }
        }
        Action::Spawn(i) => {
            let spawned = catch_unwind(AssertUnwindSafe(|| spawn_child(world, i, None)));
            if let Err(p) = spawned {
                observe_panic(&*p);
            }
        }
        Action::TrySend(c) => sync_op(world, None, &Op::TrySend(c), None, &mut 0, &mut Vec::new()),
        Action::Detach(k) => sync_op(world, None, &Op::Detach(k), None, &mut 0, &mut Vec::new()),
        Action::Close(c) => sync_op(
            world,
            None,
            &Op::Close(c, End2::Send),
            None,
            &mut 0,
            &mut Vec::new(),
        ),
    });
}

fn cancel_task(world: &Rc<World>, k: usize) {
    let Some(h) = world.take_handle(k) else {
        return;
    };
    let was_done = h.is_finished();
    h.cancel();
    if !was_done {
        // `cancel` leaves only a running task unfinished (it stops at its
        // next suspension); if a suspended one were left, it would be seen
        // running after a suspension.
        let flag = if h.is_finished() {
            count(&STATS.cancelled_suspended, 1);
            CANCELLED
        } else {
            count(&STATS.cancelled_running, 1);
            CANCELLED_RUNNING
        };
        let mut cancel = world.cancel.borrow_mut();
        cancel[k] = cancel[k].max(flag);
    }
    world.put_handle(k, h);
}

/// A waker that does an action when woken (on the loop's thread).
struct UserWaker {
    /// The task whose handle it was left in.
    task: usize,
    action: Action,
    fired: AtomicBool,
    _t: Tracked,
}

impl Wake for UserWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.fired.store(true, Ordering::SeqCst);
        count(&STATS.user_wakers_fired, 1);
        if self.action == Action::Panic
            && !std::thread::panicking()
            && !LEDGER.with(|l| l.no_panics.get())
        {
            LEDGER.with(|l| l.waker_panicked.set(true));
        }
        act(self.action);
    }
}

/// A future that another thread completes (and wakes) shortly after its
/// first poll.
struct External {
    state: Arc<Mutex<(bool, Option<Waker>)>>,
    started: bool,
}

impl External {
    fn new() -> Self {
        External {
            state: Arc::default(),
            started: false,
        }
    }
}

impl Future for External {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.state.lock().unwrap();
        if state.0 {
            return Poll::Ready(());
        }
        state.1 = Some(cx.waker().clone());
        drop(state);
        if !self.started {
            self.started = true;
            let shared = self.state.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_micros(200));
                let waker = {
                    let mut state = shared.lock().unwrap();
                    state.0 = true;
                    state.1.take()
                };
                if let Some(w) = waker {
                    w.wake();
                }
            });
        }
        Poll::Pending
    }
}

/// Returns `Pending` once (waking itself), then `Ready`: a future task's yield.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// Runs an operation that never waits, for task `me` (`None`: from outside
/// any task, or from a waker or destructor). `ev` spawns from outside.
fn sync_op(
    world: &Rc<World>,
    me: Option<usize>,
    op: &Op,
    ev: Option<&EventLoop>,
    seq: &mut u32,
    holds: &mut Vec<Hold>,
) {
    match *op {
        Op::TrySend(c) => {
            let Some(tx) = world.sender(c) else { return };
            let m = world.msg(c, me, seq);
            let rec = (m.t.id, m.chan, m.sender, m.seq);
            match tx.try_send(m) {
                Ok(()) => world.record_sent(rec),
                Err(e) => world.record_handed_back(e.into_inner()),
            }
            drop(tx);
        }
        Op::TryRecv(c) => {
            let Some(rx) = world.receiver(c) else { return };
            match rx.try_recv() {
                Ok(m) => world.record_received(c, m),
                Err(TryRecvError::Closed) => world.recv_failed(c, &rx),
                Err(TryRecvError::Empty) => {
                    if !rx.is_empty() {
                        violation(format!("try_recv on channel {c}: empty, but len > 0"));
                    }
                }
            }
            drop(rx);
        }
        Op::Close(c, End2::Send) => {
            if let Some(tx) = world.sender(c) {
                tx.close();
                drop(tx);
            }
        }
        Op::Close(c, End2::Recv) => {
            if let Some(rx) = world.receiver(c) {
                rx.close();
                drop(rx);
            }
        }
        Op::DropEnd(c, End2::Send) => {
            let tx = world.senders.borrow_mut()[c].take();
            drop(tx);
        }
        Op::DropEnd(c, End2::Recv) => {
            let rx = world.receivers.borrow_mut()[c].take();
            drop(rx);
        }
        Op::TryJoin(k) => {
            if let Some(h) = world.take_handle(k) {
                match h.try_join() {
                    Ok(r) => world.record_join(k, r),
                    Err(h) => world.put_handle(k, h),
                }
            }
        }
        Op::Cancel(k) => cancel_task(world, k),
        Op::Poll(k, action) => {
            let Some(mut h) = world.take_handle(k) else {
                return;
            };
            let uw = Arc::new(UserWaker {
                task: k,
                action,
                fired: AtomicBool::new(false),
                _t: Tracked::new("user waker"),
            });
            let waker = Waker::from(uw.clone());
            let polled = Pin::new(&mut h).poll(&mut Context::from_waker(&waker));
            drop(waker);
            match polled {
                Poll::Ready(r) => {
                    drop(h);
                    world.record_join(k, r);
                }
                Poll::Pending => {
                    world.wakers.borrow_mut().push(uw);
                    world.polled.borrow_mut().insert(k);
                    world.put_handle(k, h);
                }
            }
        }
        Op::Detach(k) => {
            if let Some(h) = world.take_handle(k) {
                let done = h.is_finished();
                h.detach();
                if !done {
                    world.released.borrow_mut().insert(k);
                }
            }
        }
        Op::Spawn(i) => spawn_child(world, i, ev),
        Op::Hold(action) => holds.push(Hold {
            action,
            _t: Tracked::new("held value"),
        }),
        Op::Panic => scripted_panic("body"),
        Op::Yield
        | Op::SleepMs(_)
        | Op::Send(_)
        | Op::Recv(_)
        | Op::Join(_)
        | Op::External
        | Op::CatchCancel(_) => unreachable!("{op:?} waits"),
    }
}

/// Spawns child script `i` as a new task (from outside if `ev` is given).
fn spawn_child(world: &Rc<World>, i: usize, ev: Option<&EventLoop>) {
    if world.children.is_empty() || world.handles.borrow().len() >= MAX_TASKS {
        return;
    }
    let script = world.children[i % world.children.len()].clone();
    spawn_task(world, script, ev);
}

/// Spawns a task running `script`, as the next task number.
fn spawn_task(world: &Rc<World>, script: Script, ev: Option<&EventLoop>) {
    let idx = world.handles.borrow().len();
    let kind = match script.kind {
        Kind::Stackless if !cfg!(cogen_nightly) => Kind::Stackful,
        k => k,
    };
    let token = world.drops.token();
    let tracked = Tracked::new("task closure");
    let w = world.clone();
    let h = match kind {
        Kind::Stackful => {
            let f = move || {
                let _captures = (token, tracked);
                stackful_body(&w, idx, &script.ops, script.ret)
            };
            match ev {
                Some(ev) => ev.spawn(f),
                None => el::spawn(f),
            }
        }
        Kind::Future => {
            let fut = async move {
                let _captures = (token, tracked);
                future_body(&w, idx, &script.ops, script.ret).await
            };
            match ev {
                Some(ev) => ev.spawn_future(fut),
                None => el::spawn_future(fut),
            }
        }
        #[cfg(cogen_nightly)]
        Kind::Stackless => nightly::spawn(w, idx, script, (token, tracked), ev),
        #[cfg(not(cogen_nightly))]
        Kind::Stackless => unreachable!(),
    };
    count(&STATS.tasks, 1);
    match kind {
        Kind::Future => count(&STATS.future_tasks, 1),
        Kind::Stackless => count(&STATS.stackless_tasks, 1),
        Kind::Stackful => {}
    }
    world.ids.borrow_mut().push(h.id());
    world.cancel.borrow_mut().push(NOT_CANCELLED);
    world.waiting.borrow_mut().push(None);
    world.handles.borrow_mut().push(Some(h));
}

// ---------------------------------------------------------------------------
// The interpreters of each kind of task
// ---------------------------------------------------------------------------

fn stackful_body(world: &Rc<World>, me: usize, ops: &[Op], ret: Action) -> Ret {
    let mut seq = 0;
    let mut holds = Vec::new();
    stackful_ops(world, me, ops, &mut seq, &mut holds);
    // Dropped before the result exists: a destructor that panics after the
    // return value is made leaks it (rust-lang/rust#47949).
    drop(holds);
    Ret::new(me, ret)
}

fn stackful_ops(world: &Rc<World>, me: usize, ops: &[Op], seq: &mut u32, holds: &mut Vec<Hold>) {
    for (i, op) in ops.iter().enumerate() {
        let suspended = match *op {
            Op::Yield => {
                el::yield_now();
                true
            }
            Op::SleepMs(ms) => {
                el::sleep(Duration::from_millis(ms.into()));
                ms > 0
            }
            Op::External => {
                el::wait_for(External::new());
                true
            }
            Op::Send(c) => {
                let Some(tx) = world.sender(c) else { continue };
                let m = world.msg(c, Some(me), seq);
                let rec = (m.t.id, m.chan, m.sender, m.seq);
                let parks = tx.len() >= tx.capacity() && !tx.is_closed();
                world.set_waiting(me, Some((c, End2::Send)));
                let r = tx.send(m);
                world.set_waiting(me, None);
                world.observe(me, parks, "send");
                match r {
                    Ok(()) => world.record_sent(rec),
                    Err(e) => world.record_handed_back(e.into_inner()),
                }
                false // observed above, right after the wait
            }
            Op::Recv(c) => {
                let Some(rx) = world.receiver(c) else {
                    continue;
                };
                let parks = rx.is_empty() && !rx.is_closed();
                world.set_waiting(me, Some((c, End2::Recv)));
                let r = rx.recv();
                world.set_waiting(me, None);
                world.observe(me, parks, "recv");
                match r {
                    Ok(m) => world.record_received(c, m),
                    Err(RecvError) => world.recv_failed(c, &rx),
                }
                false // observed above
            }
            Op::Join(k) => {
                if k == me {
                    continue;
                }
                let Some(h) = world.take_handle(k) else {
                    continue;
                };
                // A cancellation of this task drops the handle unfinished: a user
                // waker its polls left is then given back, not woken.
                world.released.borrow_mut().insert(k);
                // A user waker in the handle is woken first, and may end the
                // task: then the join does not suspend.
                let parks = !h.is_finished() && !world.polled.borrow().contains(&k);
                let r = h.join();
                world.observe(me, parks, "join");
                world.record_join(k, r);
                false // observed above
            }
            Op::CatchCancel(after) => {
                let rest = &ops[i + 1..];
                let caught = catch_unwind(AssertUnwindSafe(|| {
                    stackful_ops(world, me, rest, seq, holds);
                }));
                match caught {
                    Ok(()) => {}
                    Err(p) if cogen::is_close_unwind(&*p) => match after {
                        After::Panic => scripted_panic("after catching a cancellation"),
                        After::Return => {}
                        After::Wait => el::yield_now(),
                    },
                    Err(p) => resume_unwind(p),
                }
                return;
            }
            ref op => {
                sync_op(world, Some(me), op, None, seq, holds);
                false
            }
        };
        world.observe(me, suspended, &format!("{op:?}"));
    }
}

async fn future_body(world: &Rc<World>, me: usize, ops: &[Op], ret: Action) -> Ret {
    let mut seq = 0;
    let mut holds = Vec::new();
    for op in ops {
        let suspended = match *op {
            Op::Yield | Op::SleepMs(_) => {
                YieldOnce(false).await;
                true
            }
            Op::External => {
                External::new().await;
                true
            }
            Op::Send(c) => {
                sync_op(world, Some(me), &Op::TrySend(c), None, &mut seq, &mut holds);
                false
            }
            Op::Recv(c) => {
                sync_op(world, Some(me), &Op::TryRecv(c), None, &mut seq, &mut holds);
                false
            }
            Op::Join(k) if k != me && known_bugs() => {
                // Awaiting a handle whose task deadlocks hangs `run`: see
                // `a_future_awaiting_a_stuck_task_is_reported_as_a_deadlock`.
                let Some(h) = world.take_handle(k) else {
                    continue;
                };
                // A cancellation of this task drops the handle unfinished: a user
                // waker its polls left is then given back, not woken.
                world.released.borrow_mut().insert(k);
                let mut pending = false;
                let mut h = Some(h);
                let r = std::future::poll_fn(|cx| {
                    let p = Pin::new(h.as_mut().unwrap()).poll(cx);
                    pending |= p.is_pending();
                    p
                })
                .await;
                drop(h);
                world.observe(me, pending, "await join");
                world.record_join(k, r);
                false // observed above
            }
            Op::Join(k) => {
                sync_op(world, Some(me), &Op::TryJoin(k), None, &mut seq, &mut holds);
                false
            }
            Op::CatchCancel(_) => false,
            ref op => {
                sync_op(world, Some(me), op, None, &mut seq, &mut holds);
                false
            }
        };
        world.observe(me, suspended, &format!("{op:?}"));
    }
    drop(holds); // see `stackful_body`
    Ret::new(me, ret)
}

// ---------------------------------------------------------------------------
// Running a program and checking what it did
// ---------------------------------------------------------------------------

fn run_program(p: &Program) -> Vec<String> {
    let world = World::new(&p.capacities, p.children.clone());
    WORLD.with(|w| *w.borrow_mut() = Some(world.clone()));
    let drops = world.drops.clone();
    let ev = EventLoop::builder()
        .panic_policy(if p.propagate {
            PanicPolicy::Propagate
        } else {
            PanicPolicy::Collect
        })
        .build();
    for script in &p.tasks {
        spawn_task(&world, script.clone(), Some(&ev));
    }
    // Outside operations between `try_tick`s.
    for (ticks, op) in &p.outside {
        for _ in 0..*ticks {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| ev.try_tick())) {
                escaped(&*payload);
            }
        }
        let done = catch_unwind(AssertUnwindSafe(|| {
            sync_op(&world, None, op, Some(&ev), &mut 0, &mut Vec::new());
        }));
        if let Err(payload) = done {
            observe_panic(&*payload);
        }
    }
    let mut ran_to_end = false;
    match p.ending {
        Ending::Run => {
            for _ in 0..100 {
                match catch_unwind(AssertUnwindSafe(|| ev.run())) {
                    Ok(Ok(())) => {
                        ran_to_end = true;
                        break;
                    }
                    Ok(Err(e)) => {
                        if e.is_deadlock() {
                            count(&STATS.deadlocks, 1);
                            check_deadlock(&world, &ev, e.stuck_tasks());
                        } else {
                            ran_to_end = true;
                        }
                        for panic in e.into_panics() {
                            observe_panic(&*panic.into_panic());
                        }
                        break;
                    }
                    Err(payload) => escaped(&*payload),
                }
            }
            count(&STATS.ran_to_end, usize::from(ran_to_end));
            if ran_to_end && !ev.is_empty() {
                violation(format!("run returned with {} tasks left", ev.len()));
            }
        }
        Ending::DropAfter(ticks) => {
            count(&STATS.dropped_mid_run, 1);
            for _ in 0..ticks {
                if let Err(payload) = catch_unwind(AssertUnwindSafe(|| ev.try_tick())) {
                    escaped(&*payload);
                }
            }
        }
    }
    if ran_to_end {
        // Every panic must have been seen by now, once the handles are joined.
        let handles: Vec<_> = world
            .handles
            .borrow_mut()
            .iter_mut()
            .map(Option::take)
            .collect();
        for (k, h) in handles.into_iter().enumerate() {
            if let Some(h) = h {
                if !h.is_finished() {
                    violation(format!("task {k} unfinished after run returned"));
                }
                match catch_unwind(AssertUnwindSafe(|| {
                    if let Ok(r) = h.try_join() {
                        world.record_join(k, r);
                    }
                })) {
                    Ok(()) => {}
                    Err(payload) => observe_panic(&*payload),
                }
            }
        }
        for panic in ev.take_panics() {
            observe_panic(&*panic.into_panic());
        }
        let lost = LEDGER.with(|l| l.lost.borrow().clone());
        // Once a bug: a waker that panics when its task ends made the loop
        // drop that task's own panic if it was detached
        // (`a_panicking_waker_does_not_lose_the_panic_of_a_detached_task`).
        let waker_panicked = LEDGER.with(|l| l.waker_panicked.get());
        if !lost.is_empty() && (!waker_panicked || known_bugs()) {
            violation(format!("panic payloads dropped unseen: {lost:?}"));
        }
    }
    // Drop the loop: it cancels what is left. Once a bug: a panic out of the
    // loop's drop stops it cancelling the remaining tasks, which may then
    // leak (`a_panic_while_dropping_the_loop_still_cancels_every_task`);
    // so wakers and destructors do not panic meanwhile, unless asked to.
    world.loop_dropped.set(true);
    LEDGER.with(|l| l.no_panics.set(!known_bugs()));
    let mut drop_panicked = false;
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| drop(ev))) {
        escaped(&*payload);
        drop_panicked = true;
        count(&STATS.loop_drop_panicked, 1);
    }
    LEDGER.with(|l| l.no_panics.set(false));
    let drop_stopped_early = drop_panicked && !known_bugs();
    let handles: Vec<_> = world
        .handles
        .borrow_mut()
        .iter_mut()
        .map(Option::take)
        .collect();
    for (k, h) in handles.into_iter().enumerate() {
        if let Some(h) = h {
            let joined = catch_unwind(AssertUnwindSafe(|| match h.try_join() {
                Ok(r) => world.record_join(k, r),
                Err(h) => {
                    if !drop_stopped_early {
                        violation(format!("task {k} unfinished after its loop was dropped"));
                    }
                    drop(h);
                }
            }));
            if let Err(payload) = joined {
                observe_panic(&*payload);
            }
        }
    }
    for (k, w) in world.wakers.borrow().iter().enumerate() {
        if w.fired.load(Ordering::SeqCst) {
            continue;
        }
        if world.released.borrow().contains(&w.task) {
            if Arc::strong_count(w) != 1 {
                violation(format!(
                    "user waker {k} was kept after its handle was dropped"
                ));
            }
        } else if !drop_stopped_early {
            violation(format!("user waker {k} left in a handle was never woken"));
        }
    }
    check_messages(&world);
    // Drop the channels (and the messages still in them), then the world.
    WORLD.with(|w| w.borrow_mut().take());
    let ends = (
        std::mem::take(&mut *world.senders.borrow_mut()),
        std::mem::take(&mut *world.receivers.borrow_mut()),
    );
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| drop(ends))) {
        observe_panic(&*payload);
    }
    world.wakers.borrow_mut().clear();
    // The tasks the loop's drop left behind may hold one another (a joiner
    // and its target) and leak: the same known bug. Double drops never pass.
    let leaks_allowed = drop_stopped_early;
    if Rc::strong_count(&world) != 1 && !leaks_allowed {
        violation(format!(
            "{} references to the program's world leaked (a task or closure was not dropped)",
            Rc::strong_count(&world) - 1
        ));
    }
    drop(world);
    if drops.live() != 0 && !leaks_allowed {
        violation(format!("{} drop tokens never dropped", drops.live()));
    }
    check_ledger(leaks_allowed);
    LEDGER.with(|l| std::mem::take(&mut *l.violations.borrow_mut()))
}

fn check_deadlock(world: &World, ev: &EventLoop, stuck: &[el::StuckTask]) {
    if stuck.len() != ev.len() {
        violation(format!(
            "deadlock report names {} tasks, {} are unfinished",
            stuck.len(),
            ev.len()
        ));
    }
    let stuck_ids: HashSet<u64> = stuck.iter().map(|s| s.id).collect();
    let ids = world.ids.borrow().clone();
    for s in stuck {
        let Some(k) = ids.iter().position(|&id| id == s.id) else {
            violation(format!("deadlock report names unknown task {}", s.id));
            continue;
        };
        let waiting = world.waiting.borrow()[k];
        let channel = |c: usize| -> Option<(usize, usize, bool)> {
            if let Some(tx) = world.senders.borrow()[c].as_ref() {
                return Some((tx.len(), tx.capacity(), tx.is_closed()));
            }
            world.receivers.borrow()[c]
                .as_ref()
                .map(|rx| (rx.len(), rx.capacity(), rx.is_closed()))
        };
        match &s.waiting_on {
            WaitingOn::Recv => match waiting {
                Some((c, End2::Recv)) => {
                    if let Some((len, _, closed)) = channel(c)
                        && (len > 0 || closed)
                    {
                        violation(format!(
                            "task {k} stuck receiving on channel {c} with {len} messages, closed: \
                             {closed}"
                        ));
                    }
                }
                other => violation(format!("task {k} reported receiving, waits on {other:?}")),
            },
            WaitingOn::Send => match waiting {
                Some((c, End2::Send)) => {
                    if let Some((len, cap, closed)) = channel(c)
                        && (len < cap || closed)
                    {
                        violation(format!(
                            "task {k} stuck sending on channel {c} with {len}/{cap} messages, \
                             closed: {closed}"
                        ));
                    }
                }
                other => violation(format!("task {k} reported sending, waits on {other:?}")),
            },
            WaitingOn::Join(Some(target)) => {
                if !stuck_ids.contains(target) {
                    violation(format!(
                        "task {k} stuck joining task {target}, which is not stuck"
                    ));
                }
            }
            WaitingOn::Join(None) => {}
            other => violation(format!("task {k} stuck on {other:?}")),
        }
    }
}

fn check_messages(world: &World) {
    let sent = world.sent.borrow();
    let received = world.received.borrow();
    let handed_back = world.handed_back.borrow();
    count(&STATS.cases, 1);
    count(&STATS.messages_received, received.len());
    count(&STATS.messages_handed_back, handed_back.len());
    let sent_ids: HashSet<u64> = sent.iter().map(|m| m.0).collect();
    let mut seen = HashSet::new();
    for m in received.iter() {
        if !seen.insert(m.0) {
            violation(format!("message {} received twice", m.0));
        }
        if !sent_ids.contains(&m.0) {
            violation(format!("message {} received but never sent", m.0));
        }
    }
    for id in handed_back.iter() {
        if sent_ids.contains(id) || seen.contains(id) {
            violation(format!(
                "message {id} handed back and also sent or received"
            ));
        }
    }
    // In order per (channel, sender).
    let mut last: HashMap<(usize, usize), u32> = HashMap::new();
    for &(id, c, s, seq) in received.iter() {
        if let Some(prev) = last.insert((c, s), seq)
            && prev >= seq
        {
            violation(format!(
                "message {id} (seq {seq}) of sender {s} on {c} after seq {prev}"
            ));
        }
    }
}

/// Every tracked value dropped once (or, with `leaks_allowed`, at most once).
fn check_ledger(leaks_allowed: bool) {
    LEDGER.with(|l| {
        let made = l.made.borrow();
        let drops = l.drops.borrow();
        let mut bad = Vec::new();
        for (id, what) in made.iter() {
            match drops.get(id).copied().unwrap_or(0) {
                1 => {}
                0 if leaks_allowed => {}
                n => bad.push(format!("{what} {id} dropped {n} times")),
            }
        }
        bad.sort();
        bad.truncate(8);
        for b in bad {
            violation(b);
        }
    });
}

/// Runs `p` on a thread of its own, with a timeout; then checks that the
/// thread can still run a loop.
fn run_case(p: Program) -> Result<(), String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let shown = format!("{p:#?}");
    std::thread::Builder::new()
        .name("fuzz case".into())
        .spawn(move || {
            let mut violations = match catch_unwind(AssertUnwindSafe(|| run_program(&p))) {
                Ok(violations) => violations,
                Err(payload) => vec![format!(
                    "the case panicked outside the program: {}",
                    payload_text(&*payload)
                )],
            };
            // The thread must still be able to run a loop.
            let fresh = catch_unwind(|| {
                assert!(el::current_task_id().is_none(), "a task is still current");
                assert!(cogen::running().is_none(), "a coroutine is still running");
                let ev = EventLoop::new();
                let h = ev.spawn(|| {
                    el::yield_now();
                    7
                });
                ev.run().unwrap();
                h.join().unwrap()
            });
            if !matches!(fresh, Ok(7)) {
                violations.push("a fresh loop on the same thread failed".into());
            }
            let _ = tx.send(violations);
        })
        .expect("spawn the case thread");
    let timeout = hang_timeout();
    match rx.recv_timeout(timeout) {
        Ok(v) if v.is_empty() => Ok(()),
        Ok(v) => Err(format!("{}\nprogram: {shown}", v.join("\n"))),
        Err(_) => Err(format!(
            "the case did not finish in {timeout:?} (hang)\nprogram: {shown}"
        )),
    }
}

/// Silences the panics the programs raise on purpose.
fn quiet_expected_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let p = info.payload();
            let expected = p.is::<Scripted>() || {
                let text = payload_text(p);
                EXPECTED_MESSAGES.iter().any(|m| text.contains(m))
            };
            if !expected {
                default(info);
            }
        }));
    });
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000)
}

#[test]
fn random_programs_keep_the_event_loop_invariants() {
    quiet_expected_panics();
    let config = ProptestConfig {
        cases: cases(),
        max_shrink_time: std::env::var("COGEN_FUZZ_SHRINK_SECS")
            .ok()
            .and_then(|s| s.parse::<u32>().ok())
            .unwrap_or(120)
            * 1000,
        source_file: Some(file!()),
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
        )),
        ..ProptestConfig::default()
    };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let result = runner.run(&program(), |p| run_case(p).map_err(TestCaseError::fail));
    if std::env::var_os("COGEN_FUZZ_STATS").is_some() {
        eprintln!("{STATS:#?}");
    }
    if let Err(e) = result {
        panic!("{e}");
    }
}

// ---------------------------------------------------------------------------
// Regression tests: minimal reproducers of what the fuzzer found (fixed)
// ---------------------------------------------------------------------------

/// A waker that panics when woken.
struct PanickingWaker;

impl Wake for PanickingWaker {
    fn wake(self: Arc<Self>) {
        panic!("scripted panic in a waker");
    }
}

fn panicking_waker() -> Waker {
    Waker::from(Arc::new(PanickingWaker))
}

#[test]
fn a_future_awaiting_a_stuck_task_is_reported_as_a_deadlock() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let ev = EventLoop::new();
        let (keep, chan) = el::channel::<u32>(1);
        let stuck = ev.spawn(move || chan.recv().is_ok()); // nobody sends
        ev.spawn_future(async move { stuck.await.is_ok() });
        let deadlock = ev.run().map_err(|e| e.stuck_tasks().len());
        let _ = tx.send(deadlock);
        drop(keep);
    });
    let result = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("run did not return: it sleeps, waiting for a wake-up only the loop could give");
    assert_eq!(result, Err(2), "both tasks are reported stuck");
}

#[test]
fn a_panicking_waker_does_not_lose_the_panic_of_a_detached_task() {
    quiet_expected_panics();
    let ev = EventLoop::new();
    let mut h = ev.spawn(|| {
        el::yield_now();
        panic!("scripted panic of the task");
    });
    let waker = panicking_waker();
    assert!(
        Pin::new(&mut h)
            .poll(&mut Context::from_waker(&waker))
            .is_pending()
    );
    drop(h); // detached: its panic is the loop's to report
    let mut messages = Vec::new();
    for _ in 0..3 {
        match catch_unwind(AssertUnwindSafe(|| ev.run())) {
            Ok(Ok(())) => break,
            Ok(Err(e)) => {
                messages.extend(e.panics().iter().map(|p| p.message().to_owned()));
                break;
            }
            Err(p) => messages.push(payload_text(&*p)), // the waker's panic
        }
    }
    messages.extend(ev.take_panics().iter().map(|p| p.message().to_owned()));
    assert!(
        messages.iter().any(|m| m == "scripted panic of the task"),
        "the detached task's panic was lost; seen: {messages:?}"
    );
}

#[test]
fn a_panic_while_dropping_the_loop_still_cancels_every_task() {
    quiet_expected_panics();
    let ev = EventLoop::new();
    let mut first = ev.spawn(|| ());
    let second = ev.spawn(|| ());
    let waker = panicking_waker();
    assert!(
        Pin::new(&mut first)
            .poll(&mut Context::from_waker(&waker))
            .is_pending()
    );
    // The waker's panic may come out of the drop; the tasks must be done anyway.
    let _ = catch_unwind(AssertUnwindSafe(|| drop(ev)));
    assert!(first.is_finished());
    assert!(
        second.is_finished(),
        "dropping the loop must cancel every task, even after a waker panicked"
    );
}
