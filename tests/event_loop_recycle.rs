//! Reused task memory: a loop keeps the allocations of finished tasks for
//! its next spawns. These tests try to break that from safe code — a
//! result whose destructor spawns, joins, drops handles, cancels or
//! panics while its task's memory is being recycled; handles dropped
//! during a step; bodies of different types and sizes reusing each
//! other's memory — and check that every value is dropped exactly once
//! (run them under AddressSanitizer too: see the contributor notes).

use std::cell::RefCell;
use std::rc::Rc;

use cogen::event_loop::{EventLoop, JoinHandle, TaskBuilder, spawn, yield_now};

mod support;
use support::{DropCounter, DropToken};

/// Runs `f` when dropped.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

#[test]
fn memory_is_reused_across_bursts_of_spawns() {
    let drops = DropCounter::new();
    let ev = EventLoop::new();
    for round in 0..5u64 {
        let tokens: Vec<DropToken> = (0..300).map(|_| drops.token()).collect();
        let sum = ev
            .block_on(move || {
                let hs: Vec<_> = tokens
                    .into_iter()
                    .enumerate()
                    .map(|(i, t)| {
                        spawn(move || {
                            if i % 3 == 0 {
                                yield_now();
                            }
                            (t, i as u64 + round)
                        })
                    })
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap().1).sum::<u64>()
            })
            .unwrap();
        assert_eq!(sum, (0..300).sum::<u64>() + 300 * round);
        assert_eq!(drops.live(), 0);
    }
    assert_eq!(drops.count(), 1500);
}

#[test]
fn bodies_of_other_types_and_sizes_share_the_memory() {
    let drops = DropCounter::new();
    let ev = EventLoop::new();
    for _ in 0..3 {
        for i in 0..50usize {
            let t = drops.token();
            drop(ev.spawn(move || (t, [i; 3])));
            let t = drops.token();
            drop(ev.spawn(move || (t, i as u8)));
            let t = drops.token();
            drop(ev.spawn(move || (t, [i as u128; 40])));
            let t = drops.token();
            drop(ev.spawn_future(async move { (t, String::from("future")) }));
        }
        ev.run().unwrap();
        assert_eq!(drops.live(), 0);
    }
    assert_eq!(drops.count(), 600);
}

#[test]
fn a_result_destructor_that_spawns_and_joins_while_recycled() {
    // The detached task's result is dropped when its memory is recycled;
    // its destructor spawns tasks (taking memory from the same lists) and
    // drops their handles (giving memory back) meanwhile.
    let drops = DropCounter::new();
    let ev = EventLoop::new();
    for _ in 0..20 {
        let inner = drops.clone();
        let t = drops.token();
        drop(ev.spawn(move || {
            let inner = inner.clone();
            (
                t,
                OnDrop(move || {
                    for _ in 0..3 {
                        let t = inner.token();
                        let h = spawn(move || t);
                        drop(h);
                        let t = inner.token();
                        drop(spawn(move || drop(t)));
                    }
                }),
            )
        }));
    }
    ev.run().unwrap();
    assert_eq!((drops.count(), drops.live()), (140, 0));
}

#[test]
fn a_result_destructor_that_drops_other_handles_while_recycled() {
    let drops = DropCounter::new();
    let ev = EventLoop::new();
    let handles: Rc<RefCell<Vec<JoinHandle<DropToken>>>> = Rc::default();
    for _ in 0..10 {
        let t = drops.token();
        handles.borrow_mut().push(ev.spawn(move || t));
    }
    let held = handles.clone();
    let t = drops.token();
    let dropper = ev.spawn(move || {
        (
            t,
            OnDrop(move || {
                // Each finished: dropping them recycles their memory while
                // the dropper's memory is being recycled.
                let hs = std::mem::take(&mut *held.borrow_mut());
                drop(hs);
            }),
        )
    });
    ev.run().unwrap();
    assert_eq!(drops.live(), 11);
    ev.block_on(move || drop(dropper)).unwrap();
    assert_eq!((drops.count(), drops.live()), (11, 0));
    assert!(handles.borrow().is_empty());
}

#[test]
fn a_result_destructor_that_panics_while_recycled() {
    let drops = DropCounter::new();
    let ev = EventLoop::new();
    for i in 0..10 {
        let t = drops.token();
        let t2 = drops.token();
        drop(ev.spawn(move || {
            (
                t,
                OnDrop(move || {
                    if i % 2 == 0 {
                        panic!("result destructor {i}");
                    }
                }),
                t2,
            )
        }));
    }
    let err = ev.run().unwrap_err();
    assert_eq!(err.panics().len(), 5);
    assert_eq!((drops.count(), drops.live()), (20, 0));
    // The loop stays usable, and its memory too.
    let h = ev.spawn(|| 7);
    ev.run().unwrap();
    assert_eq!(h.join().unwrap(), 7);
}

#[test]
fn a_handle_whose_result_panics_when_dropped_inside_a_task() {
    let drops = DropCounter::new();
    let ev = EventLoop::new();
    let t = drops.token();
    let h = ev.spawn(move || {
        (
            t,
            OnDrop(|| {
                panic!("result destructor");
            }),
        )
    });
    ev.run().unwrap();
    // The panic goes to whoever drops the handle: here a task, whose own
    // result is then that panic.
    let dropper = ev.spawn(move || drop(h));
    ev.run().unwrap();
    assert!(dropper.join().unwrap_err().is_panic());
    assert_eq!((drops.count(), drops.live()), (1, 0));
    let again = ev.spawn(|| 1 + 1);
    ev.run().unwrap();
    assert_eq!(again.join().unwrap(), 2);
}

#[test]
fn handles_dropped_during_a_step_and_tasks_cancelled_from_destructors() {
    let drops = DropCounter::new();
    let ev = EventLoop::new();
    let victims: Rc<RefCell<Vec<JoinHandle<()>>>> = Rc::default();
    for _ in 0..10 {
        let t = drops.token();
        victims.borrow_mut().push(ev.spawn(move || {
            let _t = t;
            loop {
                yield_now();
            }
        }));
    }
    let v = victims.clone();
    let t = drops.token();
    let killer = ev.spawn(move || {
        let _t = t;
        yield_now();
        // Cancels each victim from a destructor, then drops its handle,
        // while this task runs: each victim's memory is recycled now.
        for h in std::mem::take(&mut *v.borrow_mut()) {
            let _cancel = OnDrop(|| h.cancel());
        }
        // Those memory blocks serve these spawns.
        let hs: Vec<_> = (0..10).map(|i| spawn(move || i)).collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum::<i32>()
    });
    ev.run().unwrap();
    assert_eq!(killer.join().unwrap(), 45);
    assert_eq!((drops.count(), drops.live()), (11, 0));
}

#[test]
fn a_handle_dropped_outside_the_loop_and_after_it() {
    let drops = DropCounter::new();
    let ev = EventLoop::new();
    let t = drops.token();
    let h1 = ev.spawn(move || t);
    let t = drops.token();
    let h2 = ev.spawn(move || t);
    ev.run().unwrap();
    drop(h1); // outside `run`: freed, not kept
    drop(ev);
    assert_eq!(drops.live(), 1);
    drop(h2); // after the loop: freed
    assert_eq!((drops.count(), drops.live()), (2, 0));
}

/// Named tasks and tasks with joiners (the header's boxed extras) end in
/// every way a task can — joined from a task, cancelled before or after a
/// step, detached, panicking — and their memory goes to plain
/// tasks after them: each name, token and joiner list is dropped exactly
/// once, and no plain task sees a name of the task whose memory it took.
#[test]
fn named_and_joined_tasks_end_every_way_and_give_their_memory_on() {
    let drops = DropCounter::new();
    let ev = EventLoop::new();
    for round in 0..4usize {
        let tokens: Vec<DropToken> = (0..40).map(|_| drops.token()).collect();
        ev.block_on(move || {
            let mut tokens = tokens.into_iter();
            let mut named = Vec::new();
            for i in 0..10usize {
                let t = tokens.next().unwrap();
                let name = format!("named-{round}-{i}"); // owned: a leak shows
                named.push(TaskBuilder::new().name(name).spawn(move || {
                    if i % 2 == 0 {
                        yield_now();
                    }
                    if i == 7 {
                        panic!("named task panics");
                    }
                    (t, i)
                }));
            }
            // A task joined by another task (a joiner in the extras).
            let shared = Rc::new(RefCell::new(Some(named.remove(0))));
            let joiners: Vec<_> = (0..2)
                .map(|_| {
                    let shared = shared.clone();
                    spawn(move || {
                        let h = shared.borrow_mut().take();
                        h.map(|h| h.join().is_ok())
                    })
                })
                .collect();
            // Cancelled before its first step, and after one.
            named[0].cancel();
            let parked = named.remove(1);
            yield_now();
            parked.cancel();
            // Plain tasks that take the freed memory: no name.
            let plain: Vec<_> = tokens
                .map(|t| spawn(move || (t, cogen::event_loop::current_task_id().is_some())))
                .collect();
            for (i, h) in named.into_iter().enumerate() {
                let name = h.name().map(str::to_owned);
                assert!(name.is_some_and(|n| n.starts_with("named-")));
                match h.join() {
                    Ok((_, n)) => assert_ne!(n, 7),
                    Err(e) => assert!(e.is_panic() || e.is_cancelled(), "{i}: {e}"),
                }
            }
            assert!(parked.join().unwrap_err().is_cancelled());
            for j in joiners {
                j.join().unwrap();
            }
            for h in plain {
                assert_eq!(h.name(), None);
                assert!(h.join().unwrap().1);
            }
            // Detached named tasks, recycled at their end.
            for i in 0..5 {
                TaskBuilder::new()
                    .name(format!("detached-{i}"))
                    .spawn(move || i)
                    .detach();
            }
        })
        .unwrap();
        ev.run().unwrap();
        assert_eq!(drops.live(), 0);
    }
    assert_eq!(drops.count(), 160);
}
