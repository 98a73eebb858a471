//! Rounds of 1,024 queued tasks and more, in which the loop asks the CPU
//! for the stack lines of a task a few places ahead before it runs each
//! one: tasks still run first in, first out, and tasks just ahead of the
//! running one may end, be cancelled or be joined by new ones meanwhile.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use cogen::event_loop::{CancelHandle, EventLoop, JoinHandle, spawn, yield_now};

mod support;
use support::DropCounter;

/// Tasks queued at the start: well over the 1,024 from which a round
/// prefetches.
const TASKS: usize = 3_000;
/// Steps of a task that neither ends early nor is cancelled.
const STEPS: usize = 4;

/// A future's yield: wakes itself and is pending once, which queues its
/// task at the back of the run queue, as `yield_now` does a stackful task.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// What a task of the ring does, by its number.
#[derive(Clone, Copy)]
enum Role {
    /// Steps `STEPS` times.
    Plain,
    /// Returns at its second step.
    EndsEarly,
    /// At its second step, cancels the task two places after it (queued
    /// ahead of it in that round, within the prefetch's reach).
    Cancels,
    /// Cancelled by the task two places before it, after its first step.
    Cancelled,
    /// At its third step, spawns a task that joins the back of the queue.
    Spawns,
}

impl Role {
    /// How many steps a task of this role runs (see [`step`]).
    fn steps(self) -> usize {
        match self {
            Role::EndsEarly => 2,
            Role::Cancelled => 1,
            _ => STEPS,
        }
    }
}

fn role(id: usize) -> Role {
    match id % 10 {
        3 => Role::EndsEarly,
        5 => Role::Cancels,
        7 => Role::Cancelled,
        9 => Role::Spawns,
        _ => Role::Plain,
    }
}

/// State the tasks share: the log of (step, task) in the order the steps
/// ran, the cancel handles, how many spawned tasks ran.
#[derive(Default)]
struct Shared {
    log: RefCell<Vec<(usize, usize)>>,
    cancels: RefCell<Vec<Option<CancelHandle>>>,
    children: Cell<usize>,
}

/// One step of task `id`: logs it and acts out the task's role. `None`
/// while the task goes on, the task's result when it ends here.
fn step(shared: &Rc<Shared>, id: usize, step: usize) -> Option<usize> {
    shared.log.borrow_mut().push((step, id));
    match (role(id), step) {
        (Role::EndsEarly, 1) => return Some(step),
        (Role::Cancels, 1) => {
            let victim = shared.cancels.borrow_mut()[id + 2].take();
            victim.expect("the victim's handle").cancel();
        }
        (Role::Spawns, 2) => {
            let shared = Rc::clone(shared);
            drop(spawn(move || {
                shared.children.set(shared.children.get() + 1)
            }));
        }
        _ => {}
    }
    (step + 1 == STEPS).then_some(STEPS)
}

#[test]
fn a_long_round_runs_first_in_first_out_while_tasks_ahead_end_are_cancelled_or_added() {
    let shared = Rc::new(Shared::default());
    let drops = DropCounter::new();
    let ev = EventLoop::new();
    // Even tasks stackful, odd ones futures: the prefetch asks for a
    // stackful task's stack and for any task's header.
    let handles: Vec<JoinHandle<usize>> = (0..TASKS)
        .map(|id| {
            let shared = Rc::clone(&shared);
            let token = drops.token();
            if id % 2 == 0 {
                ev.spawn(move || {
                    let _token = token;
                    for n in 0.. {
                        if let Some(result) = step(&shared, id, n) {
                            return result;
                        }
                        yield_now();
                    }
                    unreachable!()
                })
            } else {
                ev.spawn_future(async move {
                    let _token = token;
                    for n in 0.. {
                        if let Some(result) = step(&shared, id, n) {
                            return result;
                        }
                        YieldOnce(false).await;
                    }
                    unreachable!()
                })
            }
        })
        .collect();
    *shared.cancels.borrow_mut() = handles.iter().map(|h| Some(h.cancel_handle())).collect();
    ev.run().unwrap();

    // Every step of every task ran once, and each step's round kept the
    // tasks' first order among the tasks that yield the same way (a
    // stackful `yield_now` queues its task at once, a future's wake-up
    // from its own poll when the step is over: the order across the two
    // kinds is not the same in every round).
    let log = shared.log.borrow();
    let steps_of = |id: usize| role(id).steps();
    assert_eq!(log.len(), (0..TASKS).map(steps_of).sum::<usize>());
    for n in 0..STEPS {
        for kind in 0..2 {
            let ran: Vec<usize> = log
                .iter()
                .filter(|&&(s, id)| s == n && id % 2 == kind)
                .map(|&(_, id)| id)
                .collect();
            let want: Vec<usize> = (0..TASKS)
                .filter(|&id| id % 2 == kind && steps_of(id) > n)
                .collect();
            // Compared as a whole, but reported by the first difference:
            // the lists are thousands long.
            let first_difference = ran.iter().zip(&want).position(|(a, b)| a != b);
            assert!(
                ran == want,
                "step {n}, {} tasks: {} ran, {} expected, first difference at {first_difference:?}",
                if kind == 0 { "stackful" } else { "future" },
                ran.len(),
                want.len(),
            );
        }
    }
    assert_eq!(shared.children.get(), TASKS / 10);

    for (id, h) in handles.into_iter().enumerate() {
        match role(id) {
            Role::Cancelled => assert!(h.join().unwrap_err().is_cancelled(), "task {id}"),
            Role::EndsEarly => assert_eq!(h.join().unwrap(), 1, "task {id}"),
            _ => assert_eq!(h.join().unwrap(), STEPS, "task {id}"),
        }
    }
    // Each task's captures dropped once, the cancelled ones' too.
    assert_eq!((drops.count(), drops.live()), (TASKS, 0));
}
