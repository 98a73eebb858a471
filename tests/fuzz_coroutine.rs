//! Model-based fuzzing of the coroutine API, where the unsafe code is: random
//! programs run on real coroutines and on a model, and must agree after
//! every operation.
//!
//! `tests/model.rs` checks Lua's state machine for flat coroutines and for
//! coroutines that resume each other. This file covers what that one does
//! not: bodies that nest [`ScopedCoroutine`](cogen::ScopedCoroutine)s three
//! deep and suspend an ancestor from inside them (through its `Yielder`);
//! suspended coroutines moved out of a `Box`, by a `Vec` reallocation and by
//! `swap`; destructors that panic, catch a panic or run a coroutine of their
//! own, also while a close unwinds them; `catch_unwind` (cogen's and std's)
//! inside bodies; top-level scoped coroutines; handles cloned and queried
//! from inside and outside. The model predicts every resume result, every
//! `close` result, the statuses of all handles (from outside, and from
//! inside each body at `Observe` steps), and when each destructor runs: each
//! exactly once.
//!
//! By default it runs 2000 random programs (about 7 s in a debug build,
//! 15 s under AddressSanitizer). For a longer run, and under
//! AddressSanitizer:
//!
//! ```text
//! PROPTEST_CASES=100000 cargo test --release --all-features --test fuzz_coroutine
//! ASAN_OPTIONS=detect_stack_use_after_return=0 RUSTFLAGS="-Zsanitizer=address" \
//!     CARGO_TARGET_DIR=target/asan PROPTEST_CASES=10000 \
//!     cargo test --all-features --target x86_64-unknown-linux-gnu --test fuzz_coroutine
//! ```
//!
//! The programs: each coroutine runs a script of [`Step`]s. `Yield(k)`
//! suspends through the yielder `k` levels up (0: its own; clamped to the
//! outermost), `Nest` runs a script in a scoped coroutine that its parent
//! resumes a given number of times and then closes or drops, `Catch` runs a
//! script inside `cogen::catch_unwind` or `std::panic::catch_unwind` (which
//! swallows the unwinding of a close when it encloses a suspend,
//! corosensei#57: the body then runs on while it is being closed), `Hold` keeps a
//! destructor-counting token in the current frame, `ResumeOther` and
//! `CloseOther` act on another top-level coroutine. The model interprets the
//! same scripts with explicit frames instead of stacks.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::sync::Once;

use cogen::{Builder, Coroutine, CoroutineHandle, CoroutineResult, ResumeError, Status, Yielder};
use proptest::prelude::*;

/// Top-level coroutines alive at once.
const SLOTS: usize = 3;
/// Deepest nesting of scoped coroutines inside a top-level one.
const MAX_DEPTH: usize = 3;
const DEFAULT_CASES: u32 = 2000;

// ------------------------------------------------------------ programs

/// What a token does when dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TokKind {
    Plain,
    /// Panics, unless the thread is already unwinding (that would abort).
    PanicsOnDrop,
    /// Panics and catches it with `cogen::catch_unwind`, inside the drop.
    CatchesInDrop,
    /// Creates, resumes and drops (suspended) a coroutine of its own.
    RunsCoroutineInDrop,
}

#[derive(Clone, Debug)]
struct Step {
    /// Unique in a test case; set by `number`.
    id: u32,
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    Yield(u8),
    Observe,
    Hold(TokKind),
    Panic,
    Nest {
        script: Vec<Step>,
        resumes: u8,
        close: bool,
    },
    Catch {
        std: bool,
        script: Vec<Step>,
    },
    /// Resumes the top-level coroutine in another slot from inside this one.
    ResumeOther {
        slot: usize,
        input: u32,
    },
    /// Closes the top-level coroutine in another slot from inside this one.
    CloseOther(usize),
}

#[derive(Clone, Debug)]
enum Op {
    Create {
        slot: usize,
        script: Vec<Step>,
        captures: Vec<TokKind>,
    },
    Resume {
        slot: usize,
        input: u32,
    },
    Close(usize),
    Drop(usize),
    /// Moves the coroutine into a `Box` and out again (the box is freed).
    BoxTrip(usize),
    Swap(usize, usize),
    /// Moves every slot to a new `Vec` buffer and frees the old one.
    Realloc,
    /// Takes a fresh handle from the owner and queries it.
    Handle(usize),
    /// A top-level scoped coroutine, resumed `resumes` times in one go.
    Scoped {
        script: Vec<Step>,
        resumes: u8,
        close: bool,
    },
}

fn tok_kind() -> impl Strategy<Value = TokKind> {
    prop_oneof![
        4 => Just(TokKind::Plain),
        1 => Just(TokKind::PanicsOnDrop),
        1 => Just(TokKind::CatchesInDrop),
        1 => Just(TokKind::RunsCoroutineInDrop),
    ]
}

/// A script for a frame at nesting `depth`. Scripts that may not suspend
/// have no `Yield` and no `Nest`: inside `std::panic::catch_unwind` in a
/// nested coroutine. (It would swallow the unwinding of a close there,
/// corosensei issue 57, and the body would run on, even suspend its
/// ancestors, while its driver closes it: legal, but past what the model
/// follows. At depth 0 the model does follow it.)
fn script(depth: usize, can_suspend: bool, catches: u32) -> BoxedStrategy<Vec<Step>> {
    let mut kinds: Vec<(u32, BoxedStrategy<Kind>)> = vec![
        (2, Just(Kind::Observe).boxed()),
        (3, tok_kind().prop_map(Kind::Hold).boxed()),
        (1, Just(Kind::Panic).boxed()),
        (
            2,
            (0..SLOTS, 0..1000u32)
                .prop_map(|(slot, input)| Kind::ResumeOther { slot, input })
                .boxed(),
        ),
        (1, (0..SLOTS).prop_map(Kind::CloseOther).boxed()),
    ];
    if can_suspend {
        kinds.push((6, (0u8..=3).prop_map(Kind::Yield).boxed()));
        if depth < MAX_DEPTH {
            let nest = (script(depth + 1, true, catches), 0u8..5, any::<bool>()).prop_map(
                |(script, resumes, close)| Kind::Nest {
                    script,
                    resumes,
                    close,
                },
            );
            kinds.push((2, nest.boxed()));
        }
    }
    if catches > 0 {
        let catch = any::<bool>().prop_flat_map(move |std| {
            script(depth, can_suspend && (!std || depth == 0), catches - 1)
                .prop_map(move |script| Kind::Catch { std, script })
        });
        kinds.push((1, catch.boxed()));
    }
    let step = proptest::strategy::Union::new_weighted(kinds).prop_map(|kind| Step { id: 0, kind });
    prop::collection::vec(step, 0..8).boxed()
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..SLOTS, script(0, true, 2), prop::collection::vec(tok_kind(), 0..3))
            .prop_map(|(slot, script, captures)| Op::Create { slot, script, captures }),
        8 => (0..SLOTS, 0..1000u32).prop_map(|(slot, input)| Op::Resume { slot, input }),
        1 => (0..SLOTS).prop_map(Op::Close),
        1 => (0..SLOTS).prop_map(Op::Drop),
        2 => (0..SLOTS).prop_map(Op::BoxTrip),
        1 => (0..SLOTS, 0..SLOTS).prop_map(|(a, b)| Op::Swap(a, b)),
        1 => Just(Op::Realloc),
        1 => (0..SLOTS).prop_map(Op::Handle),
        1 => (script(0, true, 2), 0u8..5, any::<bool>())
            .prop_map(|(script, resumes, close)| Op::Scoped { script, resumes, close }),
    ]
}

/// Gives every step of `script` a fresh id.
fn number(script: &mut [Step], next: &mut u32) {
    for step in script {
        step.id = *next;
        *next += 1;
        match &mut step.kind {
            Kind::Nest { script, .. } | Kind::Catch { script, .. } => number(script, next),
            _ => {}
        }
    }
}

fn level_name(uid: u32, depth: usize) -> String {
    format!("c{uid}.{depth}")
}

// ------------------------------------------------------------ what both sides record

#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Yield(u32),
    Return(u32),
    Panicked(String),
    Dead(u32),
}

/// Statuses of every handle registered so far: per coroutine id, levels 0
/// (the top-level coroutine) to `MAX_DEPTH` (its latest nested coroutine at
/// that depth).
type Snapshot = Vec<(u32, [Option<Status>; MAX_DEPTH + 1])>;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Ev {
    /// A suspend (or a body's start, `step` being its root or nest id)
    /// received `input`.
    Resumed {
        step: u32,
        input: u32,
    },
    Observe {
        step: u32,
        running: Option<(String, Status)>,
        yieldable: bool,
        statuses: Snapshot,
    },
    /// A `Catch` step caught a panic.
    Caught {
        step: u32,
        message: String,
    },
    /// What a resume of the nested (or top-level scoped) coroutine of
    /// `step` returned to its driver.
    Child {
        step: u32,
        outcome: Outcome,
    },
    ChildClose {
        step: u32,
        ok: bool,
    },
    /// The coroutine's status at the end of its scope, before it is dropped.
    ChildEnd {
        step: u32,
        status: Status,
    },
    CaughtInDrop {
        token: usize,
        caught: bool,
    },
    /// What a `ResumeOther` or `CloseOther` step got.
    Other {
        step: u32,
        answer: Answer,
    },
    /// What the coroutine run by a token's destructor saw: itself, the
    /// coroutine the token belonged to, and `is_yieldable`.
    InDrop {
        token: usize,
        me: Option<Status>,
        owner: Option<Status>,
        yieldable: bool,
    },
}

/// What one operation returned, on either side.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Answer {
    Nothing,
    Empty,
    /// The slot's coroutine is running (on the chain): not resumable.
    Busy,
    Resumed(Outcome),
    Closed(Result<(), String>),
    /// The owner's `status()` and a fresh handle's.
    Status(Status, Status),
}

// ------------------------------------------------------------ the real side

struct Ctx {
    /// The top-level coroutines, reachable from inside bodies too.
    slots: Vec<RefCell<Option<Co>>>,
    log: RefCell<Vec<Ev>>,
    drops: RefCell<Vec<usize>>,
    registry: RefCell<BTreeMap<u32, [Option<CoroutineHandle>; MAX_DEPTH + 1]>>,
}

impl Ctx {
    fn new() -> Self {
        Ctx {
            slots: (0..SLOTS).map(|_| RefCell::new(None)).collect(),
            log: RefCell::default(),
            drops: RefCell::default(),
            registry: RefCell::default(),
        }
    }

    /// Resumes (with `Some(input)`) or closes the coroutine in `slot`.
    fn other(&self, slot: usize, input: Option<u32>) -> Answer {
        let Ok(mut slot) = self.slots[slot].try_borrow_mut() else {
            return Answer::Busy;
        };
        match (slot.as_mut(), input) {
            (None, _) => Answer::Empty,
            (Some(co), Some(input)) => Answer::Resumed(outcome(co.resume(input))),
            (Some(co), None) => Answer::Closed(co.close().map_err(|p| p.message().to_string())),
        }
    }

    fn log(&self, ev: Ev) {
        self.log.borrow_mut().push(ev);
    }

    fn register(&self, uid: u32, depth: usize, handle: CoroutineHandle) {
        self.registry.borrow_mut().entry(uid).or_default()[depth] = Some(handle);
    }

    fn snapshot(&self) -> Snapshot {
        self.registry
            .borrow()
            .iter()
            .map(|(uid, handles)| {
                (
                    *uid,
                    handles
                        .each_ref()
                        .map(|h| h.as_ref().map(CoroutineHandle::status)),
                )
            })
            .collect()
    }

    fn token(self: &Rc<Self>, kind: TokKind, owner: &Rc<OnceCell<CoroutineHandle>>) -> Token {
        let mut drops = self.drops.borrow_mut();
        drops.push(0);
        Token {
            id: drops.len() - 1,
            kind,
            ctx: self.clone(),
            owner: owner.clone(),
        }
    }
}

/// Counts its drops, and does what its kind says when dropped.
struct Token {
    id: usize,
    kind: TokKind,
    ctx: Rc<Ctx>,
    /// The coroutine (level) whose frame holds the token.
    owner: Rc<OnceCell<CoroutineHandle>>,
}

impl Drop for Token {
    fn drop(&mut self) {
        self.ctx.drops.borrow_mut()[self.id] += 1;
        let token = self.id;
        match self.kind {
            TokKind::Plain => {}
            TokKind::PanicsOnDrop => {
                if !std::thread::panicking() {
                    panic!("drop panic {token}");
                }
            }
            TokKind::CatchesInDrop => {
                let caught = cogen::catch_unwind(|| panic!("in drop {token}")).is_err();
                self.ctx.log(Ev::CaughtInDrop { token, caught });
            }
            TokKind::RunsCoroutineInDrop => {
                let owner = self.owner.get().cloned();
                let mut co: Coroutine<(), (Option<Status>, Option<Status>, bool), ()> =
                    Builder::new().name("in drop").build(move |co, ()| {
                        co.suspend((
                            cogen::running().map(|h| h.status()),
                            owner.map(|h| h.status()),
                            cogen::is_yieldable(),
                        ));
                    });
                let seen = co.resume(()).ok().and_then(CoroutineResult::as_yield);
                drop(co); // suspended: unwound here, maybe inside another unwinding
                let (me, owner, yieldable) = seen.unwrap_or((None, None, false));
                self.ctx.log(Ev::InDrop {
                    token,
                    me,
                    owner,
                    yieldable,
                });
            }
        }
    }
}

type Co = Coroutine<u32, u32, u32>;

/// One coroutine of a nest, as its body sees it.
struct Level<'a> {
    ctx: &'a Rc<Ctx>,
    uid: u32,
    depth: usize,
    /// The sum of the inputs this level's frames received: its return value.
    acc: Cell<u32>,
    handle: Rc<OnceCell<CoroutineHandle>>,
}

fn message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<not a string>".to_string()
    }
}

fn outcome(result: Result<CoroutineResult<u32, u32>, ResumeError<u32>>) -> Outcome {
    match result {
        Ok(CoroutineResult::Yield(tag)) => Outcome::Yield(tag),
        Ok(CoroutineResult::Return(value)) => Outcome::Return(value),
        Err(ResumeError::Panicked(p)) => Outcome::Panicked(p.message().to_string()),
        Err(ResumeError::Dead(input)) => Outcome::Dead(input),
    }
}

/// Runs `script` in a frame of `level`; `yielders[d]` suspends depth `d`.
fn exec(level: &Level<'_>, script: &[Step], yielders: &[&Yielder<u32, u32>]) {
    let mut held: Vec<Token> = Vec::new();
    for step in script {
        match &step.kind {
            Kind::Yield(up) => {
                let target = level.depth - usize::from(*up).min(level.depth);
                let input = yielders[target].suspend(step.id);
                level.ctx.log(Ev::Resumed {
                    step: step.id,
                    input,
                });
                level.acc.set(level.acc.get().wrapping_add(input));
            }
            Kind::Observe => {
                let running = cogen::running()
                    .map(|h| (h.name().unwrap_or_default().to_string(), h.status()));
                let ev = Ev::Observe {
                    step: step.id,
                    running,
                    yieldable: cogen::is_yieldable(),
                    statuses: level.ctx.snapshot(),
                };
                level.ctx.log(ev);
            }
            Kind::Hold(kind) => held.push(level.ctx.token(*kind, &level.handle)),
            Kind::Panic => panic!("fuzz panic {}", step.id),
            Kind::Nest {
                script,
                resumes,
                close,
            } => nest(level, step.id, script, *resumes, *close, yielders),
            Kind::ResumeOther { slot, input } => {
                let answer = level.ctx.other(*slot, Some(*input));
                level.ctx.log(Ev::Other {
                    step: step.id,
                    answer,
                });
            }
            Kind::CloseOther(slot) => {
                let answer = level.ctx.other(*slot, None);
                level.ctx.log(Ev::Other {
                    step: step.id,
                    answer,
                });
            }
            Kind::Catch { std, script } => {
                let body = AssertUnwindSafe(|| exec(level, script, yielders));
                let caught = if *std {
                    std::panic::catch_unwind(body)
                } else {
                    cogen::catch_unwind(body)
                };
                if let Err(payload) = caught {
                    level.ctx.log(Ev::Caught {
                        step: step.id,
                        message: message(&*payload),
                    });
                }
            }
        }
    }
}

/// Runs `script` in a scoped coroutine one level down, resumed up to
/// `resumes` times, then closed (if `close`) and dropped.
fn nest(
    parent: &Level<'_>,
    id: u32,
    script: &[Step],
    resumes: u8,
    close: bool,
    yielders: &[&Yielder<u32, u32>],
) {
    let ctx = parent.ctx;
    let child = Level {
        ctx,
        uid: parent.uid,
        depth: parent.depth + 1,
        acc: Cell::new(0),
        handle: Rc::new(OnceCell::new()),
    };
    Builder::new()
        .name(level_name(child.uid, child.depth))
        .build_scoped(|yielder: &Yielder<u32, u32>, first: u32| {
            let mut yielders = yielders.to_vec();
            yielders.push(yielder);
            ctx.log(Ev::Resumed {
                step: id,
                input: first,
            });
            child.acc.set(first);
            exec(&child, script, &yielders);
            child.acc.get()
        })
        .scope(|co| {
            let handle = co.handle();
            let _ = child.handle.set(handle.clone());
            ctx.register(child.uid, child.depth, handle);
            drive(ctx, id, co, resumes, close, 100);
        });
}

/// The driver loop shared by nested and top-level scoped coroutines.
fn drive(
    ctx: &Ctx,
    id: u32,
    co: &mut cogen::ScopedRef<'_, u32, u32, u32>,
    resumes: u8,
    close: bool,
    base: u32,
) {
    for i in 0..resumes {
        let outcome = outcome(co.resume(base + u32::from(i)));
        let again = matches!(outcome, Outcome::Yield(_));
        ctx.log(Ev::Child { step: id, outcome });
        if !again {
            break;
        }
    }
    if close {
        let ok = co.close().is_ok();
        ctx.log(Ev::ChildClose { step: id, ok });
    }
    ctx.log(Ev::ChildEnd {
        step: id,
        status: co.status(),
    });
}

fn create(ctx: &Rc<Ctx>, uid: u32, root: u32, script: Vec<Step>, captures: &[TokKind]) -> Co {
    let handle = Rc::new(OnceCell::new());
    let captured: Vec<Token> = captures.iter().map(|k| ctx.token(*k, &handle)).collect();
    let (c, h) = (ctx.clone(), handle.clone());
    let co = Builder::new()
        .name(level_name(uid, 0))
        .build(move |yielder, first: u32| {
            let _captured = captured;
            let level = Level {
                ctx: &c,
                uid,
                depth: 0,
                acc: Cell::new(first),
                handle: h,
            };
            c.log(Ev::Resumed {
                step: root,
                input: first,
            });
            exec(&level, &script, &[yielder]);
            level.acc.get()
        });
    let _ = handle.set(co.handle());
    ctx.register(uid, 0, co.handle());
    co
}

fn scoped(ctx: &Rc<Ctx>, uid: u32, root: u32, script: &[Step], resumes: u8, close: bool) {
    let borrowed = Cell::new(0u32); // what makes it scoped
    let level = Level {
        ctx,
        uid,
        depth: 0,
        acc: Cell::new(0),
        handle: Rc::new(OnceCell::new()),
    };
    Builder::new()
        .name(level_name(uid, 0))
        .build_scoped(|yielder: &Yielder<u32, u32>, first: u32| {
            borrowed.set(first);
            ctx.log(Ev::Resumed {
                step: root,
                input: first,
            });
            level.acc.set(first);
            exec(&level, script, &[yielder]);
            level.acc.get()
        })
        .scope(|co| {
            let handle = co.handle();
            let _ = level.handle.set(handle.clone());
            ctx.register(uid, 0, handle);
            drive(ctx, root, co, resumes, close, 200);
        });
}

/// Moves a value out of its box and frees the box at once.
#[allow(clippy::boxed_local)] // taking the box is the point
fn unbox<T>(b: Box<T>) -> T {
    *b
}

// ------------------------------------------------------------ the model

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Unstarted,
    Suspended,
    Dead,
}

/// One call of `exec`: a level's body, or the inside of a `Catch`.
#[derive(Debug)]
struct Frame {
    depth: usize,
    steps: Vec<Step>,
    pc: usize,
    held: Vec<usize>,
    /// The `Catch` step this frame runs inside, if it is not a body, and
    /// whether that is std's `catch_unwind`.
    catch: Option<(u32, bool)>,
}

/// One coroutine of a nest (level 0 is the top-level one).
#[derive(Debug)]
struct MLevel {
    /// The root or `Nest` step id.
    step: u32,
    script: Vec<Step>,
    resumes_left: u8,
    resumed: u32,
    close: bool,
    acc: u32,
}

#[derive(Debug)]
struct MCo {
    uid: u32,
    root: u32,
    script: Vec<Step>,
    captured: Vec<usize>,
    state: State,
    /// All levels' frames, outermost first; the top one runs or suspended.
    frames: Vec<Frame>,
    levels: Vec<MLevel>,
    /// The `Yield` step the next input goes to.
    suspended_at: Option<u32>,
    /// The message of a death panic that `close` has not reported yet.
    pending: Option<String>,
}

impl MCo {
    fn status(&self) -> Status {
        if self.state == State::Dead {
            Status::Dead
        } else {
            Status::Suspended
        }
    }
}

/// How a nested coroutine stands when its driver stops resuming it.
enum ChildEnd {
    Unstarted,
    Suspended,
    Returned,
    Panicked,
}

#[derive(Default)]
struct Model {
    /// A coroutine taken out to run is `None` here and `busy`.
    slots: Vec<Option<MCo>>,
    busy: Vec<bool>,
    /// The coroutines running, outermost first, each with the depth of the
    /// frame that ran its latest step.
    chain: Vec<(u32, usize)>,
    log: Vec<Ev>,
    drops: Vec<usize>,
    kinds: Vec<TokKind>,
    registry: BTreeMap<u32, [bool; MAX_DEPTH + 1]>,
}

impl Model {
    fn token(&mut self, kind: TokKind) -> usize {
        self.drops.push(0);
        self.kinds.push(kind);
        self.drops.len() - 1
    }

    /// Drops `tokens` in order; returns the panic the first one raised, if
    /// the thread was not unwinding already.
    fn drop_tokens(&mut self, tokens: &[usize], mut unwinding: bool) -> Option<String> {
        let mut raised = None;
        for &token in tokens {
            self.drops[token] += 1;
            match self.kinds[token] {
                TokKind::Plain => {}
                TokKind::PanicsOnDrop => {
                    if !unwinding {
                        raised = Some(format!("drop panic {token}"));
                        unwinding = true;
                    }
                }
                TokKind::CatchesInDrop => self.log.push(Ev::CaughtInDrop {
                    token,
                    caught: true,
                }),
                // The destructor runs on the stack of the coroutine that
                // held the token, which is therefore on the chain.
                TokKind::RunsCoroutineInDrop => self.log.push(Ev::InDrop {
                    token,
                    me: Some(Status::Running),
                    owner: Some(Status::Normal),
                    yieldable: true,
                }),
            }
        }
        raised
    }

    /// Statuses of all registered handles.
    fn snapshot(&self) -> Snapshot {
        self.registry
            .iter()
            .map(|(&uid, levels)| {
                let statuses = std::array::from_fn(|l| levels[l].then(|| self.status_of(uid, l)));
                (uid, statuses)
            })
            .collect()
    }

    fn status_of(&self, uid: u32, level: usize) -> Status {
        if let Some(i) = self.chain.iter().position(|&(r, _)| r == uid) {
            let depth = self.chain[i].1;
            let innermost = i + 1 == self.chain.len();
            return match level.cmp(&depth) {
                std::cmp::Ordering::Less => Status::Normal,
                std::cmp::Ordering::Equal if innermost => Status::Running,
                std::cmp::Ordering::Equal => Status::Normal,
                std::cmp::Ordering::Greater => Status::Dead,
            };
        }
        match self.slots.iter().flatten().find(|m| m.uid == uid) {
            Some(m) if m.state != State::Dead && (level == 0 || level < m.levels.len()) => {
                Status::Suspended
            }
            _ => Status::Dead,
        }
    }

    fn resume(&mut self, x: &mut MCo, input: u32) -> Outcome {
        match x.state {
            State::Dead => return Outcome::Dead(input),
            State::Unstarted => {
                self.log.push(Ev::Resumed {
                    step: x.root,
                    input,
                });
                x.levels = vec![MLevel {
                    step: x.root,
                    script: Vec::new(),
                    resumes_left: 0,
                    resumed: 0,
                    close: false,
                    acc: input,
                }];
                x.frames = vec![Frame {
                    depth: 0,
                    steps: x.script.clone(),
                    pc: 0,
                    held: Vec::new(),
                    catch: None,
                }];
            }
            State::Suspended => self.deliver(x, input),
        }
        self.chain.push((x.uid, 0));
        let end = self.run(x);
        self.chain.pop();
        match end {
            End::Yield(tag) => {
                x.state = State::Suspended;
                Outcome::Yield(tag)
            }
            End::Return(value) => {
                x.state = State::Dead;
                Outcome::Return(value)
            }
            End::Panicked(message) => {
                x.state = State::Dead;
                x.pending = Some(message.clone());
                Outcome::Panicked(message)
            }
        }
    }

    /// Hands `input` to the suspended `Yield`.
    fn deliver(&mut self, x: &mut MCo, input: u32) {
        let step = x.suspended_at.take().expect("suspended at a yield");
        self.log.push(Ev::Resumed { step, input });
        let depth = x.frames.last().expect("a frame").depth;
        x.levels[depth].acc = x.levels[depth].acc.wrapping_add(input);
    }

    /// Runs `x` until its top level suspends, returns or panics.
    fn run(&mut self, x: &mut MCo) -> End {
        loop {
            let top = x.frames.len() - 1;
            let frame = &mut x.frames[top];
            let Some(step) = frame.steps.get(frame.pc).cloned() else {
                if let Some(end) = self.end_frame(x) {
                    return end;
                }
                continue;
            };
            frame.pc += 1;
            let depth = frame.depth;
            self.chain.last_mut().expect("running").1 = depth;
            let end = match step.kind {
                Kind::Yield(up) => {
                    let target = depth - usize::from(up).min(depth);
                    x.suspended_at = Some(step.id);
                    if target == 0 {
                        return End::Yield(step.id);
                    }
                    self.driver(x, target, Outcome::Yield(step.id))
                }
                Kind::Observe => {
                    let statuses = self.snapshot();
                    self.log.push(Ev::Observe {
                        step: step.id,
                        running: Some((level_name(x.uid, depth), Status::Running)),
                        yieldable: true,
                        statuses,
                    });
                    None
                }
                Kind::Hold(kind) => {
                    let token = self.token(kind);
                    x.frames[top].held.push(token);
                    None
                }
                Kind::Panic => {
                    let frame = x.frames.pop().expect("the top frame");
                    self.drop_tokens(&frame.held, true);
                    self.frame_panicked(x, &frame, format!("fuzz panic {}", step.id))
                }
                Kind::Nest {
                    script,
                    resumes,
                    close,
                } => {
                    self.registry.entry(x.uid).or_default()[depth + 1] = true;
                    x.levels.push(MLevel {
                        step: step.id,
                        script,
                        resumes_left: resumes,
                        resumed: 0,
                        close,
                        acc: 0,
                    });
                    self.start_child(x, depth + 1)
                }
                Kind::ResumeOther { slot, input } => {
                    let answer = self.other(slot, Some(input));
                    self.log.push(Ev::Other {
                        step: step.id,
                        answer,
                    });
                    None
                }
                Kind::CloseOther(slot) => {
                    let answer = self.other(slot, None);
                    self.log.push(Ev::Other {
                        step: step.id,
                        answer,
                    });
                    None
                }
                Kind::Catch { std, script } => {
                    x.frames.push(Frame {
                        depth,
                        steps: script,
                        pc: 0,
                        held: Vec::new(),
                        catch: Some((step.id, std)),
                    });
                    None
                }
            };
            if let Some(end) = end {
                return end;
            }
        }
    }

    /// The top frame has run its last step: its tokens are dropped.
    fn end_frame(&mut self, x: &mut MCo) -> Option<End> {
        let frame = x.frames.pop().expect("the top frame");
        match self.drop_tokens(&frame.held, false) {
            Some(message) => self.frame_panicked(x, &frame, message),
            None if frame.catch.is_some() => None,
            None => self.level_returned(x, frame.depth),
        }
    }

    /// A panic left `frame` (already popped, its tokens dropped).
    fn frame_panicked(&mut self, x: &mut MCo, frame: &Frame, message: String) -> Option<End> {
        if let Some((step, _)) = frame.catch {
            self.log.push(Ev::Caught { step, message });
            return None;
        }
        let depth = frame.depth;
        if depth == 0 {
            let captured = x.captured.clone();
            self.drop_tokens(&captured, true);
            x.levels.clear();
            return Some(End::Panicked(message));
        }
        self.driver(x, depth, Outcome::Panicked(message))
    }

    fn level_returned(&mut self, x: &mut MCo, depth: usize) -> Option<End> {
        let value = x.levels[depth].acc;
        if depth == 0 {
            let captured = x.captured.clone();
            let raised = self.drop_tokens(&captured, false);
            x.levels.clear();
            return Some(raised.map_or(End::Return(value), End::Panicked));
        }
        self.driver(x, depth, Outcome::Return(value))
    }

    /// The first resume of the nested coroutine at `depth`, if any.
    fn start_child(&mut self, x: &mut MCo, depth: usize) -> Option<End> {
        let level = &mut x.levels[depth];
        if level.resumes_left == 0 {
            return self.end_nest(x, depth, ChildEnd::Unstarted);
        }
        level.resumes_left -= 1;
        let input = 100 + level.resumed;
        level.resumed += 1;
        level.acc = input;
        self.log.push(Ev::Resumed {
            step: level.step,
            input,
        });
        let steps = level.script.clone();
        x.frames.push(Frame {
            depth,
            steps,
            pc: 0,
            held: Vec::new(),
            catch: None,
        });
        None
    }

    /// The driver of the nested coroutine at `depth` got `outcome` from
    /// resuming it.
    fn driver(&mut self, x: &mut MCo, depth: usize, outcome: Outcome) -> Option<End> {
        let end = match outcome {
            Outcome::Yield(_) => ChildEnd::Suspended,
            Outcome::Panicked(_) => ChildEnd::Panicked,
            _ => ChildEnd::Returned,
        };
        self.log.push(Ev::Child {
            step: x.levels[depth].step,
            outcome,
        });
        let level = &mut x.levels[depth];
        if matches!(end, ChildEnd::Suspended) && level.resumes_left > 0 {
            level.resumes_left -= 1;
            let input = 100 + level.resumed;
            level.resumed += 1;
            self.deliver(x, input);
            return None;
        }
        self.end_nest(x, depth, end)
    }

    /// The scope of the nested coroutine at `depth` ends: closed if asked,
    /// then dropped.
    fn end_nest(&mut self, x: &mut MCo, depth: usize, end: ChildEnd) -> Option<End> {
        let (step, close) = (x.levels[depth].step, x.levels[depth].close);
        let ok = !matches!(end, ChildEnd::Panicked); // close reports a death panic
        match end {
            ChildEnd::Suspended if close => {
                self.unwind(x, depth);
                self.log.push(Ev::ChildClose { step, ok });
                self.log.push(Ev::ChildEnd {
                    step,
                    status: Status::Dead,
                });
            }
            ChildEnd::Suspended => {
                self.log.push(Ev::ChildEnd {
                    step,
                    status: Status::Suspended,
                });
                self.unwind(x, depth);
            }
            ChildEnd::Unstarted if !close => self.log.push(Ev::ChildEnd {
                step,
                status: Status::Suspended,
            }),
            _ => {
                if close {
                    self.log.push(Ev::ChildClose { step, ok });
                }
                self.log.push(Ev::ChildEnd {
                    step,
                    status: Status::Dead,
                });
            }
        }
        x.levels.truncate(depth);
        None
    }

    /// Closes the suspended levels from `depth` in: unwinds their frames.
    fn unwind(&mut self, x: &mut MCo, depth: usize) {
        while x.frames.last().is_some_and(|f| f.depth >= depth) {
            let frame = x.frames.pop().expect("a frame");
            self.drop_tokens(&frame.held, true);
        }
        x.suspended_at = None;
    }

    /// Resumes (with `Some(input)`) or closes the coroutine in `slot`.
    fn other(&mut self, slot: usize, input: Option<u32>) -> Answer {
        if self.busy[slot] {
            return Answer::Busy;
        }
        let Some(mut y) = self.slots[slot].take() else {
            return Answer::Empty;
        };
        self.busy[slot] = true;
        let answer = match input {
            Some(input) => Answer::Resumed(self.resume(&mut y, input)),
            None => Answer::Closed(self.close(&mut y)),
        };
        self.busy[slot] = false;
        self.slots[slot] = Some(y);
        answer
    }

    fn close(&mut self, x: &mut MCo) -> Result<(), String> {
        match x.state {
            State::Unstarted => {
                x.state = State::Dead;
                let captured = x.captured.clone();
                self.drop_tokens(&captured, false).map_or(Ok(()), Err)
            }
            State::Suspended => {
                let result = self.force_unwind(x);
                x.state = State::Dead;
                result
            }
            State::Dead => x.pending.take().map_or(Ok(()), Err),
        }
    }

    /// Unwinds the suspended `x` as its close does: from where it suspended
    /// down through every frame, unless std's `catch_unwind` swallows the
    /// unwinding (corosensei issue 57). Then the body runs on, is unwound
    /// again whenever it suspends itself, and a panic that reaches its root
    /// is what `close` reports.
    fn force_unwind(&mut self, x: &mut MCo) -> Result<(), String> {
        loop {
            x.suspended_at = None;
            let swallowed = loop {
                let Some(frame) = x.frames.pop() else {
                    break None;
                };
                self.drop_tokens(&frame.held, true);
                if let Some((step, true)) = frame.catch {
                    break Some((step, frame.depth));
                }
            };
            let Some((step, depth)) = swallowed else {
                x.levels.clear();
                let captured = x.captured.clone();
                self.drop_tokens(&captured, true);
                return Ok(());
            };
            self.log.push(Ev::Caught {
                step,
                message: "<not a string>".to_string(),
            });
            x.levels.truncate(depth + 1);
            self.chain.push((x.uid, 0));
            let end = self.run(x);
            self.chain.pop();
            match end {
                End::Yield(_) => continue,
                End::Return(_) => return Ok(()),
                End::Panicked(message) => return Err(message),
            }
        }
    }

    fn create(&mut self, uid: u32, root: u32, script: Vec<Step>, captures: &[TokKind]) -> MCo {
        let captured = captures.iter().map(|k| self.token(*k)).collect();
        self.registry.entry(uid).or_default()[0] = true;
        MCo {
            uid,
            root,
            script,
            captured,
            state: State::Unstarted,
            frames: Vec::new(),
            levels: Vec::new(),
            suspended_at: None,
            pending: None,
        }
    }

    fn scoped(&mut self, uid: u32, root: u32, script: Vec<Step>, resumes: u8, close: bool) {
        let mut x = self.create(uid, root, script, &[]);
        for i in 0..resumes {
            let outcome = self.resume(&mut x, 200 + u32::from(i));
            let again = matches!(outcome, Outcome::Yield(_));
            self.log.push(Ev::Child {
                step: root,
                outcome,
            });
            if !again {
                break;
            }
        }
        if close {
            let ok = self.close(&mut x).is_ok();
            self.log.push(Ev::ChildClose { step: root, ok });
        }
        self.log.push(Ev::ChildEnd {
            step: root,
            status: x.status(),
        });
        let _ = self.close(&mut x);
    }
}

/// How the top level of a model coroutine stopped.
enum End {
    Yield(u32),
    Return(u32),
    Panicked(String),
}

// ------------------------------------------------------------ the test

fn quiet_fuzz_panics() {
    static QUIET: Once = Once::new();
    QUIET.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let ours = info.payload_as_str().is_some_and(|m| {
                m.starts_with("fuzz panic")
                    || m.starts_with("drop panic")
                    || m.starts_with("in drop")
            });
            if !ours {
                previous(info);
            }
        }));
    });
}

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

/// Drops the coroutines left in the slots when a case ends early (they hold
/// the `Ctx` that holds them).
struct DropAll<'a>(&'a Ctx);

impl Drop for DropAll<'_> {
    fn drop(&mut self) {
        for slot in &self.0.slots {
            let co = slot.borrow_mut().take();
            drop(co);
        }
    }
}

/// Runs `ops` on real coroutines and on the model, comparing after each.
fn check(ops: Vec<Op>) -> Result<(), TestCaseError> {
    quiet_fuzz_panics();
    let ctx = Rc::new(Ctx::new());
    let _cleanup = DropAll(&ctx);
    let slots = &ctx.slots;
    let mut model = Model {
        slots: (0..SLOTS).map(|_| None).collect(),
        busy: vec![false; SLOTS],
        ..Model::default()
    };
    let (mut next_uid, mut next_step) = (0u32, 0u32);
    for (n, op) in ops.into_iter().enumerate() {
        let (got, expected) = match op {
            Op::Create {
                slot,
                mut script,
                captures,
            } => {
                let old = slots[slot].borrow_mut().take();
                drop(old);
                if let Some(mut old) = model.slots[slot].take() {
                    let _ = model.close(&mut old);
                }
                let (uid, root) = (next_uid, next_step);
                next_uid += 1;
                next_step += 1;
                number(&mut script, &mut next_step);
                let co = create(&ctx, uid, root, script.clone(), &captures);
                *slots[slot].borrow_mut() = Some(co);
                model.slots[slot] = Some(model.create(uid, root, script, &captures));
                (Answer::Nothing, Answer::Nothing)
            }
            Op::Resume { slot, input } => {
                (ctx.other(slot, Some(input)), model.other(slot, Some(input)))
            }
            Op::Close(slot) => (ctx.other(slot, None), model.other(slot, None)),
            Op::Drop(slot) => {
                let old = slots[slot].borrow_mut().take();
                drop(old);
                if let Some(mut x) = model.slots[slot].take() {
                    let _ = model.close(&mut x);
                }
                (Answer::Nothing, Answer::Nothing)
            }
            Op::BoxTrip(slot) => {
                let boxed = Box::new(slots[slot].borrow_mut().take());
                *slots[slot].borrow_mut() = unbox(boxed);
                (Answer::Nothing, Answer::Nothing)
            }
            Op::Swap(a, b) => {
                if a != b {
                    slots[a].swap(&slots[b]);
                }
                model.slots.swap(a, b);
                (Answer::Nothing, Answer::Nothing)
            }
            Op::Realloc => {
                // Every coroutine into a new buffer, and back: the buffer is freed.
                let mut moved: Vec<Option<Co>> = Vec::with_capacity(1);
                moved.extend(slots.iter().map(|s| s.borrow_mut().take()));
                for (slot, co) in slots.iter().zip(moved) {
                    *slot.borrow_mut() = co;
                }
                (Answer::Nothing, Answer::Nothing)
            }
            Op::Handle(slot) => {
                let got = slots[slot].borrow().as_ref().map_or(Answer::Empty, |co| {
                    let handle = co.handle().clone();
                    Answer::Status(co.status(), handle.status())
                });
                let expected = model.slots[slot]
                    .as_ref()
                    .map_or(Answer::Empty, |x| Answer::Status(x.status(), x.status()));
                (got, expected)
            }
            Op::Scoped {
                mut script,
                resumes,
                close,
            } => {
                let (uid, root) = (next_uid, next_step);
                next_uid += 1;
                next_step += 1;
                number(&mut script, &mut next_step);
                scoped(&ctx, uid, root, &script, resumes, close);
                model.scoped(uid, root, script, resumes, close);
                (Answer::Nothing, Answer::Nothing)
            }
        };
        prop_assert_eq!(got, expected, "answer to op {}", n);
        prop_assert_eq!(&*ctx.log.borrow(), &model.log, "events after op {}", n);
        prop_assert_eq!(&*ctx.drops.borrow(), &model.drops, "drops after op {}", n);
        prop_assert_eq!(ctx.snapshot(), model.snapshot(), "statuses after op {}", n);
        for (co, x) in slots.iter().zip(&model.slots) {
            prop_assert_eq!(
                co.borrow().as_ref().map(Co::status),
                x.as_ref().map(MCo::status)
            );
        }
        prop_assert!(cogen::running().is_none());
        prop_assert!(!cogen::is_yieldable());
    }
    for (slot, real) in slots.iter().enumerate() {
        let old = real.borrow_mut().take();
        drop(old);
        if let Some(mut x) = model.slots[slot].take() {
            let _ = model.close(&mut x);
        }
    }
    prop_assert_eq!(
        &*ctx.log.borrow(),
        &model.log,
        "events after the final drops"
    );
    prop_assert!(
        ctx.drops.borrow().iter().all(|&d| d == 1),
        "each destructor exactly once: {:?}",
        ctx.drops.borrow()
    );
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn coroutines_agree_with_the_model(ops in prop::collection::vec(op(), 1..60)) {
        check(ops)?;
    }
}
