//! Property test: random sequences of create / resume / close / drop on
//! several coroutines, whose bodies follow random scripts of suspends,
//! panics and returns, agree with a small model of Lua's coroutine state
//! machine: statuses (from the owner and from handles), resume results,
//! error kinds and messages, and how many values each coroutine dropped.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Once;

use cogen::{Coroutine, CoroutineHandle, CoroutineResult, ResumeError, Status, Yielder};
use proptest::prelude::*;

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

/// Counts drops of one coroutine's values.
struct Token(Rc<Cell<usize>>);

impl Drop for Token {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

/// The scripted body: each suspend happens one frame deeper, in a frame
/// that holds a token, so closing or dropping must unwind them all.
fn run(
    co: &Yielder<u32, Seen>,
    script: &[Step],
    drops: &Rc<Cell<usize>>,
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
            let _frame = Token(drops.clone());
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

fn create(script: Vec<Step>, drops: Rc<Cell<usize>>) -> Coroutine<u32, Seen, u32> {
    let captured = Token(drops.clone());
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
    drops: Rc<Cell<usize>>,
}

/// A coroutine that was dropped: its handle and drop counter live on.
struct Gone {
    handle: CoroutineHandle,
    drops: Rc<Cell<usize>>,
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
            prop_assert_eq!(slot.drops.get(), slot.model.dropped(), "slot {} drops", i);
        }
    }
    for g in gone {
        prop_assert_eq!(g.handle.status(), Status::Dead);
        prop_assert_eq!(g.drops.get(), g.dropped, "dropped coroutine drops");
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
                    let drops = Rc::new(Cell::new(0));
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
        for i in 0..SLOTS {
            drop_slot(slots[i].take(), &mut gone);
        }
        check_all(&slots, &gone)?;
    }
}
