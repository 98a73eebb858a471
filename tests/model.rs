//! Property test: random sequences of create / resume / close / drop on
//! several coroutines, whose bodies follow random scripts of suspends,
//! panics and returns, agree with a small model of Lua's coroutine state
//! machine: statuses (from the owner and from handles), resume results,
//! error kinds and messages, and how many values each coroutine dropped.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Once;

use cogen::{Coroutine, CoroutineHandle, CoroutineResult, ResumeError, Status, Yielder};
use proptest::prelude::*;

mod support;
use support::DropCounter;

/// How a scripted body panics.
#[derive(Clone, Copy, Debug)]
enum PanicKind {
    /// `panic!("model panic")`: a `&'static str` payload.
    Str,
    /// `panic!("model panic {step}")`: a `String` payload.
    Formatted,
    /// `panic_any(step)`: a `usize` payload.
    NonString,
}

/// One step of a body's script; the script ends with an implicit return.
#[derive(Clone, Copy, Debug)]
enum Step {
    Suspend,
    Panic(PanicKind),
    Return,
}

/// What the body yields at a suspend: the step, the last input it got, and
/// what it saw of itself (status through `running()`, `is_yieldable()`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seen {
    step: usize,
    last_input: u32,
    running: Status,
    yieldable: bool,
}

#[derive(Clone, Debug)]
enum Op {
    Create(usize, Vec<Step>),
    Resume(usize, u32),
    Close(usize),
    Drop(usize),
}

const SLOTS: usize = 3;

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => Just(Step::Suspend),
        1 => Just(Step::Panic(PanicKind::Str)),
        1 => Just(Step::Panic(PanicKind::Formatted)),
        1 => Just(Step::Panic(PanicKind::NonString)),
        1 => Just(Step::Return),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..SLOTS, prop::collection::vec(step(), 0..6)).prop_map(|(s, v)| Op::Create(s, v)),
        6 => (0..SLOTS, 0..1000_u32).prop_map(|(s, v)| Op::Resume(s, v)),
        1 => (0..SLOTS).prop_map(Op::Close),
        1 => (0..SLOTS).prop_map(Op::Drop),
    ]
}

/// The scripted body: each suspend happens one frame deeper, in a frame
/// that holds a token, so closing or dropping must unwind them all.
fn run(
    co: &Yielder<u32, Seen>,
    script: &[Step],
    drops: &DropCounter,
    step: usize,
    last_input: u32,
    total: u32,
) -> u32 {
    match script.get(step).copied().unwrap_or(Step::Return) {
        Step::Return => total,
        Step::Panic(PanicKind::Str) => panic!("model panic"),
        Step::Panic(PanicKind::Formatted) => panic!("model panic {step}"),
        Step::Panic(PanicKind::NonString) => std::panic::panic_any(step),
        Step::Suspend => {
            let _frame = drops.token();
            let seen = Seen {
                step,
                last_input,
                running: cogen::running().map_or(Status::Dead, |h| h.status()),
                yieldable: cogen::is_yieldable(),
            };
            let input = co.suspend(seen);
            run(co, script, drops, step + 1, input, total + input)
        }
    }
}

fn create(script: Vec<Step>, drops: DropCounter) -> Coroutine<u32, Seen, u32> {
    let captured = drops.token();
    Coroutine::new(move |co, first| {
        let _captured = captured;
        run(co, &script, &drops, 0, first, first)
    })
}

/// The model of one coroutine.
#[derive(Debug)]
struct Model {
    script: Vec<Step>,
    started: bool,
    dead: bool,
    /// Index of the step the body runs at its next resume.
    step: usize,
    total: u32,
    /// Frames entered (one per suspend), each holding a token.
    frames: usize,
    /// The message of a panic not yet reported by `close`.
    pending_panic: Option<String>,
}

/// What the model says a resume returns.
#[derive(Debug, PartialEq)]
enum Expect {
    Yield(Seen),
    Return(u32),
    Panicked(String),
    Dead(u32),
}

impl Model {
    fn new(script: Vec<Step>) -> Self {
        Model {
            script,
            started: false,
            dead: false,
            step: 0,
            total: 0,
            frames: 0,
            pending_panic: None,
        }
    }

    fn status(&self) -> Status {
        if self.dead {
            Status::Dead
        } else {
            Status::Suspended
        }
    }

    /// Values dropped so far: the captured token once the body is gone, and
    /// every frame token.
    fn dropped(&self) -> usize {
        if self.dead { 1 + self.frames } else { 0 }
    }

    fn resume(&mut self, input: u32) -> Expect {
        if self.dead {
            return Expect::Dead(input);
        }
        self.started = true;
        self.total += input;
        let step = self.step;
        match self.script.get(step).copied().unwrap_or(Step::Return) {
            Step::Suspend => {
                self.frames += 1;
                self.step += 1;
                Expect::Yield(Seen {
                    step,
                    last_input: input,
                    running: Status::Running,
                    yieldable: true,
                })
            }
            Step::Return => {
                self.dead = true;
                Expect::Return(self.total)
            }
            Step::Panic(kind) => {
                self.dead = true;
                let message = match kind {
                    PanicKind::Str => "model panic".to_string(),
                    PanicKind::Formatted => format!("model panic {step}"),
                    PanicKind::NonString => "Box<dyn Any>".to_string(),
                };
                self.pending_panic = Some(message.clone());
                Expect::Panicked(message)
            }
        }
    }

    fn close(&mut self) -> Result<(), String> {
        self.dead = true;
        match self.pending_panic.take() {
            Some(message) => Err(message),
            None => Ok(()),
        }
    }
}

/// A live coroutine with its model.
struct Slot {
    co: Coroutine<u32, Seen, u32>,
    model: Model,
    drops: DropCounter,
}

/// A coroutine that was dropped: its handle and drop counter live on.
struct Gone {
    handle: CoroutineHandle,
    drops: DropCounter,
    dropped: usize,
}

fn actual(result: Result<CoroutineResult<Seen, u32>, ResumeError<u32>>) -> Expect {
    match result {
        Ok(CoroutineResult::Yield(seen)) => Expect::Yield(seen),
        Ok(CoroutineResult::Return(total)) => Expect::Return(total),
        Err(ResumeError::Panicked(p)) => Expect::Panicked(p.message().to_string()),
        Err(ResumeError::Dead(input)) => Expect::Dead(input),
    }
}

/// Silences the panic hook for the bodies' scripted panics only.
fn quiet_scripted_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let scripted = payload.is::<usize>()
                || payload
                    .downcast_ref::<&str>()
                    .is_some_and(|s| s.starts_with("model panic"))
                || payload
                    .downcast_ref::<String>()
                    .is_some_and(|s| s.starts_with("model panic"));
            if !scripted {
                default(info);
            }
        }));
    });
}

fn check_all(
    slots: &[Option<(Slot, CoroutineHandle)>],
    gone: &[Gone],
) -> Result<(), TestCaseError> {
    for (i, entry) in slots.iter().enumerate() {
        if let Some((slot, handle)) = entry {
            prop_assert_eq!(slot.co.status(), slot.model.status(), "slot {} status", i);
            prop_assert_eq!(handle.status(), slot.model.status(), "slot {} handle", i);
            prop_assert_eq!(slot.co.is_dead(), slot.model.dead);
            prop_assert_eq!(slot.drops.count(), slot.model.dropped(), "slot {} drops", i);
        }
    }
    for g in gone {
        prop_assert_eq!(g.handle.status(), Status::Dead);
        prop_assert_eq!(g.drops.count(), g.dropped, "dropped coroutine drops");
    }
    prop_assert!(cogen::running().is_none());
    prop_assert!(!cogen::is_yieldable());
    Ok(())
}

fn drop_slot(entry: Option<(Slot, CoroutineHandle)>, gone: &mut Vec<Gone>) {
    if let Some((slot, handle)) = entry {
        let mut model = slot.model;
        model.dead = true;
        let dropped = model.dropped();
        drop(slot.co);
        gone.push(Gone {
            handle,
            drops: slot.drops,
            dropped,
        });
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn coroutines_follow_luas_state_machine(ops in prop::collection::vec(op(), 1..60)) {
        quiet_scripted_panics();
        let mut slots: Vec<Option<(Slot, CoroutineHandle)>> = (0..SLOTS).map(|_| None).collect();
        let mut gone: Vec<Gone> = Vec::new();
        for op in ops {
            match op {
                Op::Create(i, script) => {
                    drop_slot(slots[i].take(), &mut gone);
                    let drops = DropCounter::new();
                    let co = create(script.clone(), drops.clone());
                    let handle = co.handle();
                    slots[i] = Some((Slot { co, model: Model::new(script), drops }, handle));
                }
                Op::Resume(i, input) => {
                    if let Some((slot, _)) = &mut slots[i] {
                        let expected = slot.model.resume(input);
                        let got = actual(slot.co.resume(input));
                        prop_assert_eq!(got, expected);
                    }
                }
                Op::Close(i) => {
                    if let Some((slot, _)) = &mut slots[i] {
                        let expected = slot.model.close();
                        let got = slot.co.close().map_err(|p| p.message().to_string());
                        prop_assert_eq!(got, expected);
                    }
                }
                Op::Drop(i) => drop_slot(slots[i].take(), &mut gone),
            }
            check_all(&slots, &gone)?;
        }
        // Dropping everything that is left drops every value exactly once.
        for slot in &mut slots {
            drop_slot(slot.take(), &mut gone);
        }
        check_all(&slots, &gone)?;
    }
}

// ------------------------------------------------------------------------
// Nested coroutines: bodies that resume and close each other.
// ------------------------------------------------------------------------

/// One step of a nesting body's script; the script ends with a return.
#[derive(Clone, Copy, Debug)]
enum NStep {
    Suspend,
    Panic,
    /// Resume the coroutine in another slot with a value, then go on.
    Resume(usize, u32),
    /// Close the coroutine in another slot, then go on.
    Close(usize),
}

/// What a body saw at a suspend: its step, and every slot's status through
/// the handles (`None` for an empty slot).
#[derive(Clone, Debug, PartialEq, Eq)]
struct NSeen {
    slot: usize,
    step: usize,
    statuses: Vec<Option<Status>>,
}

/// The result of a resume or close made from inside a body, as Lua would
/// report it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Yield(NSeen),
    Return(u32),
    Panicked,
    Dead(u32),
    Closed(bool),
    /// Lua's "cannot resume non-suspended coroutine" (or close a running /
    /// normal one). In cogen this cannot even be written; here the slot is
    /// mutably borrowed by an active resume, so the `RefCell` refuses.
    NotSuspended,
    Empty,
}

type NCo = Coroutine<u32, NSeen, u32>;

/// The shared world the bodies see: the slots, their handles, a log of
/// nested outcomes, and drop counters.
#[derive(Default)]
struct World {
    slots: Vec<RefCell<Option<NCo>>>,
    handles: RefCell<Vec<Option<CoroutineHandle>>>,
    log: RefCell<Vec<(usize, Outcome)>>,
}

fn statuses(world: &World) -> Vec<Option<Status>> {
    world
        .handles
        .borrow()
        .iter()
        .map(|h| h.as_ref().map(CoroutineHandle::status))
        .collect()
}

fn nested_resume(world: &World, j: usize, value: u32) -> Outcome {
    let Ok(mut slot) = world.slots[j].try_borrow_mut() else {
        return Outcome::NotSuspended;
    };
    let Some(co) = slot.as_mut() else {
        return Outcome::Empty;
    };
    match co.resume(value) {
        Ok(CoroutineResult::Yield(seen)) => Outcome::Yield(seen),
        Ok(CoroutineResult::Return(total)) => Outcome::Return(total),
        Err(ResumeError::Panicked(_)) => Outcome::Panicked,
        Err(ResumeError::Dead(v)) => Outcome::Dead(v),
    }
}

fn nested_close(world: &World, j: usize) -> Outcome {
    let Ok(mut slot) = world.slots[j].try_borrow_mut() else {
        return Outcome::NotSuspended;
    };
    match slot.as_mut() {
        Some(co) => Outcome::Closed(co.close().is_ok()),
        None => Outcome::Empty,
    }
}

fn nrun(
    co: &Yielder<u32, NSeen>,
    world: &World,
    me: usize,
    script: &[NStep],
    drops: &DropCounter,
    mut step: usize,
    total: u32,
) -> u32 {
    loop {
        match script.get(step).copied() {
            None => return total,
            Some(NStep::Panic) => panic!("model panic"),
            Some(NStep::Resume(j, v)) => {
                let outcome = nested_resume(world, j, v);
                world.log.borrow_mut().push((me, outcome));
            }
            Some(NStep::Close(j)) => {
                let outcome = nested_close(world, j);
                world.log.borrow_mut().push((me, outcome));
            }
            Some(NStep::Suspend) => {
                let _frame = drops.token();
                let seen = NSeen {
                    slot: me,
                    step,
                    statuses: statuses(world),
                };
                let input = co.suspend(seen);
                return nrun(co, world, me, script, drops, step + 1, total + input);
            }
        }
        step += 1;
    }
}

/// The model of one nesting coroutine.
#[derive(Debug)]
struct NModel {
    script: Vec<NStep>,
    dead: bool,
    step: usize,
    total: u32,
    frames: usize,
    pending_panic: bool,
}

/// The model of the world: the slots and the stack of active coroutines.
struct NWorld {
    slots: Vec<Option<NModel>>,
    active: Vec<usize>,
    log: Vec<(usize, Outcome)>,
}

impl NWorld {
    fn statuses(&self) -> Vec<Option<Status>> {
        (0..self.slots.len())
            .map(|k| {
                let m = self.slots[k].as_ref()?;
                Some(if self.active.last() == Some(&k) {
                    Status::Running
                } else if self.active.contains(&k) {
                    Status::Normal
                } else if m.dead {
                    Status::Dead
                } else {
                    Status::Suspended
                })
            })
            .collect()
    }

    fn resume(&mut self, i: usize, input: u32) -> Outcome {
        if self.active.contains(&i) {
            return Outcome::NotSuspended;
        }
        let Some(m) = self.slots[i].as_mut() else {
            return Outcome::Empty;
        };
        if m.dead {
            return Outcome::Dead(input);
        }
        m.total += input;
        self.active.push(i);
        let outcome = loop {
            let m = self.slots[i].as_mut().unwrap();
            let step = m.step;
            m.step += 1;
            match m.script.get(step).copied() {
                None => {
                    m.dead = true;
                    break Outcome::Return(m.total);
                }
                Some(NStep::Panic) => {
                    m.dead = true;
                    m.pending_panic = true;
                    break Outcome::Panicked;
                }
                Some(NStep::Suspend) => {
                    m.frames += 1;
                    break Outcome::Yield(NSeen {
                        slot: i,
                        step,
                        statuses: self.statuses(),
                    });
                }
                Some(NStep::Resume(j, v)) => {
                    let o = self.resume(j, v);
                    self.log.push((i, o));
                }
                Some(NStep::Close(j)) => {
                    let o = self.close(j);
                    self.log.push((i, o));
                }
            }
        };
        self.active.pop();
        outcome
    }

    fn close(&mut self, j: usize) -> Outcome {
        if self.active.contains(&j) {
            return Outcome::NotSuspended;
        }
        let Some(m) = self.slots[j].as_mut() else {
            return Outcome::Empty;
        };
        m.dead = true;
        Outcome::Closed(!std::mem::take(&mut m.pending_panic))
    }

    fn dropped(&self, i: usize) -> usize {
        self.slots[i]
            .as_ref()
            .map_or(0, |m| if m.dead { 1 + m.frames } else { 0 })
    }
}

fn nstep() -> impl Strategy<Value = NStep> {
    prop_oneof![
        4 => Just(NStep::Suspend),
        1 => Just(NStep::Panic),
        4 => (0..SLOTS, 0..100_u32).prop_map(|(j, v)| NStep::Resume(j, v)),
        1 => (0..SLOTS).prop_map(NStep::Close),
    ]
}

#[derive(Clone, Debug)]
enum NOp {
    Create(usize, Vec<NStep>),
    Resume(usize, u32),
    Close(usize),
    Drop(usize),
}

fn nop() -> impl Strategy<Value = NOp> {
    prop_oneof![
        3 => (0..SLOTS, prop::collection::vec(nstep(), 0..6)).prop_map(|(s, v)| NOp::Create(s, v)),
        6 => (0..SLOTS, 0..100_u32).prop_map(|(s, v)| NOp::Resume(s, v)),
        1 => (0..SLOTS).prop_map(NOp::Close),
        1 => (0..SLOTS).prop_map(NOp::Drop),
    ]
}

/// Drops slot `i` in both worlds and checks its drop count.
fn ndrop(
    world: &World,
    model: &mut NWorld,
    counters: &mut [DropCounter],
    i: usize,
) -> Result<(), TestCaseError> {
    let co = world.slots[i].borrow_mut().take();
    if let Some(co) = co {
        drop(co);
        let handle = world.handles.borrow_mut()[i].take().unwrap();
        prop_assert_eq!(handle.status(), Status::Dead);
        if let Some(m) = model.slots[i].as_mut() {
            m.dead = true;
        }
        prop_assert_eq!(counters[i].count(), model.dropped(i), "drops of slot {}", i);
        model.slots[i] = None;
        counters[i] = DropCounter::new();
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn nested_coroutines_follow_luas_state_machine(ops in prop::collection::vec(nop(), 1..50)) {
        quiet_scripted_panics();
        let world = Rc::new(World {
            slots: (0..SLOTS).map(|_| RefCell::new(None)).collect(),
            handles: RefCell::new(vec![None; SLOTS]),
            log: RefCell::default(),
        });
        let mut model = NWorld {
            slots: (0..SLOTS).map(|_| None).collect(),
            active: Vec::new(),
            log: Vec::new(),
        };
        let mut counters: Vec<DropCounter> = (0..SLOTS).map(|_| DropCounter::new()).collect();
        for op in ops {
            match op {
                NOp::Create(i, script) => {
                    ndrop(&world, &mut model, &mut counters, i)?;
                    let drops = DropCounter::new();
                    counters[i] = drops.clone();
                    let captured = drops.token();
                    let (w, s) = (world.clone(), script.clone());
                    let co: NCo = Coroutine::new(move |co, first| {
                        let _captured = captured;
                        nrun(co, &w, i, &s, &drops, 0, first)
                    });
                    world.handles.borrow_mut()[i] = Some(co.handle());
                    *world.slots[i].borrow_mut() = Some(co);
                    model.slots[i] = Some(NModel {
                        script,
                        dead: false,
                        step: 0,
                        total: 0,
                        frames: 0,
                        pending_panic: false,
                    });
                }
                NOp::Resume(i, v) => {
                    let got = nested_resume(&world, i, v);
                    let expected = model.resume(i, v);
                    prop_assert_eq!(got, expected);
                }
                NOp::Close(i) => {
                    let got = nested_close(&world, i);
                    let expected = model.close(i);
                    prop_assert_eq!(got, expected);
                }
                NOp::Drop(i) => ndrop(&world, &mut model, &mut counters, i)?,
            }
            prop_assert_eq!(&*world.log.borrow(), &model.log);
            prop_assert_eq!(statuses(&world), model.statuses());
            for (i, counter) in counters.iter().enumerate() {
                prop_assert_eq!(counter.count(), model.dropped(i), "drops of slot {}", i);
            }
            prop_assert!(cogen::running().is_none());
        }
        for i in 0..SLOTS {
            ndrop(&world, &mut model, &mut counters, i)?;
        }
    }
}
