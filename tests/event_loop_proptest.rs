//! Random programs of spawn / yield / sleep / join / send / recv / cancel /
//! panic over a few tasks, checked against the loop's invariants:
//! every task finishes or is reported (stuck in a deadlock), each message is
//! delivered exactly once and in order per channel, each destructor runs
//! exactly once, and the loop never hangs.

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;
use std::time::Duration;

use cogen::event_loop::{
    EventLoop, JoinHandle, Receiver, Sender, channel, sleep, spawn, yield_now,
};
use proptest::prelude::*;

mod support;
use support::{DropCounter, DropToken};

#[derive(Clone, Debug)]
enum Op {
    Yield,
    SleepMs(u64),
    Send(usize),
    Recv(usize),
    TryRecv(usize),
    Join(usize),
    Cancel(usize),
    Spawn,
    Panic,
}

const CHANNELS: usize = 2;

fn op(tasks: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Yield),
        1 => (0u64..=2).prop_map(Op::SleepMs),
        3 => (0..CHANNELS).prop_map(Op::Send),
        3 => (0..CHANNELS).prop_map(Op::Recv),
        1 => (0..CHANNELS).prop_map(Op::TryRecv),
        1 => (0..tasks).prop_map(Op::Join),
        1 => (0..tasks).prop_map(Op::Cancel),
        1 => Just(Op::Spawn),
        1 => Just(Op::Panic),
    ]
}

fn program() -> impl Strategy<Value = (Vec<usize>, Vec<Vec<Op>>)> {
    (2usize..=4).prop_flat_map(|n| {
        (
            prop::collection::vec(1usize..=3, CHANNELS),
            prop::collection::vec(prop::collection::vec(op(n), 0..8), n),
        )
    })
}

/// (channel, sender task, sequence number)
type Msg = (usize, usize, u32);

struct World {
    senders: Vec<Sender<Msg>>,
    receivers: Vec<Receiver<Msg>>,
    handles: RefCell<Vec<Option<JoinHandle<()>>>>,
    sent: RefCell<Vec<Msg>>,
    received: RefCell<Vec<Msg>>,
    drops: DropCounter,
}

impl World {
    fn guard(&self) -> DropToken {
        self.drops.token()
    }
}

fn run_task(world: Rc<World>, me: usize, ops: Vec<Op>) {
    let _g = world.guard();
    let mut seq = 0u32;
    for op in ops {
        match op {
            Op::Yield => yield_now(),
            Op::SleepMs(ms) => sleep(Duration::from_millis(ms)),
            Op::Send(c) => {
                let msg = (c, me, seq);
                seq += 1;
                if world.senders[c].send(msg).is_ok() {
                    world.sent.borrow_mut().push(msg);
                }
            }
            Op::Recv(c) => {
                if let Ok(m) = world.receivers[c].recv() {
                    world.received.borrow_mut().push(m);
                }
            }
            Op::TryRecv(c) => {
                if let Ok(m) = world.receivers[c].try_recv() {
                    world.received.borrow_mut().push(m);
                }
            }
            Op::Join(j) if j != me => {
                let h = world.handles.borrow_mut().get_mut(j).and_then(Option::take);
                if let Some(h) = h {
                    let _ = h.join();
                }
            }
            Op::Join(_) => {}
            Op::Cancel(j) => {
                let handles = world.handles.borrow();
                if let Some(Some(h)) = handles.get(j) {
                    h.cancel();
                }
            }
            Op::Spawn => {
                let g = world.guard();
                spawn(move || {
                    let _g = g;
                    yield_now();
                })
                .detach();
            }
            Op::Panic => panic!("scripted panic in task {me}"),
        }
    }
}

fn check(capacities: Vec<usize>, programs: Vec<Vec<Op>>) -> Result<(), TestCaseError> {
    let (senders, receivers): (Vec<_>, Vec<_>) =
        capacities.iter().map(|&c| channel::<Msg>(c)).unzip();
    let world = Rc::new(World {
        senders,
        receivers,
        handles: RefCell::new(Vec::new()),
        sent: RefCell::new(Vec::new()),
        received: RefCell::new(Vec::new()),
        drops: DropCounter::new(),
    });
    let ev = EventLoop::new();
    let mut ids = Vec::new();
    for (i, ops) in programs.iter().cloned().enumerate() {
        let w = world.clone();
        let h = ev.spawn(move || run_task(w, i, ops));
        ids.push(h.id());
        world.handles.borrow_mut().push(Some(h));
    }
    let result = ev.run(); // must return: Ok, or a deadlock / panic report
    let stuck: HashSet<u64> = match &result {
        Ok(()) => HashSet::new(),
        Err(e) => {
            // A panic is reported only if its handle left the table (taken by
            // a joiner that was then cancelled, dropping it unjoined).
            for p in e.panics() {
                let k: usize = p
                    .message()
                    .strip_prefix("scripted panic in task ")
                    .and_then(|k| k.parse().ok())
                    .expect("only scripted panics");
                prop_assert!(
                    world.handles.borrow()[k].is_none(),
                    "panic of task {} reported while its handle is live",
                    k
                );
            }
            e.stuck_tasks().iter().map(|s| s.id).collect()
        }
    };
    // Every task whose handle is still here finished or is reported stuck.
    for (i, h) in world.handles.borrow().iter().enumerate() {
        if let Some(h) = h {
            prop_assert!(
                h.is_finished() || stuck.contains(&ids[i]),
                "task {i} neither finished nor reported"
            );
        }
    }
    // Take the handles' results (observing panics), then drop the loop: it
    // unwinds the stuck tasks.
    let handles: Vec<_> = world.handles.borrow_mut().drain(..).collect();
    for h in handles.into_iter().flatten() {
        if h.is_finished() {
            let _ = h.join();
        } else {
            drop(h);
        }
    }
    drop(ev);
    // Messages: received ∪ left in the channel == successfully sent, each once.
    let mut delivered = world.received.borrow().clone();
    for rx in &world.receivers {
        delivered.extend(rx.try_iter());
    }
    let unique: HashSet<Msg> = delivered.iter().copied().collect();
    prop_assert_eq!(unique.len(), delivered.len(), "a message was duplicated");
    let sent: HashSet<Msg> = world.sent.borrow().iter().copied().collect();
    prop_assert_eq!(&unique, &sent, "lost or invented messages");
    // In order per (channel, sender), in the order they were received.
    for c in 0..CHANNELS {
        for s in 0..programs.len() {
            let seqs: Vec<u32> = world
                .received
                .borrow()
                .iter()
                .filter(|m| m.0 == c && m.1 == s)
                .map(|m| m.2)
                .collect();
            prop_assert!(
                seqs.windows(2).all(|w| w[0] < w[1]),
                "out of order: {:?}",
                seqs
            );
        }
    }
    // Each task's guard (and each spawned child's) was dropped exactly once.
    prop_assert_eq!(world.drops.live(), 0);
    Ok(())
}

/// Silences the scripted task panics, and only those.
fn quiet_scripted_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let scripted = info
                .payload()
                .downcast_ref::<String>()
                .is_some_and(|m| m.starts_with("scripted panic"));
            if !scripted {
                default(info);
            }
        }));
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]
    #[test]
    fn random_programs_keep_the_invariants((caps, programs) in program()) {
        quiet_scripted_panics();
        check(caps, programs)?;
    }
}
