//! The event loop's scheduler: spawning, running, fairness, yielding,
//! sleeping, joining, cancelling, panics, deadlocks, drop, and the errors of
//! calling waiting functions outside a task.

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::time::{Duration, Instant};

use cogen::event_loop::{
    self as el, EventLoop, PanicPolicy, TaskBuilder, WaitingOn, channel, sleep, sleep_until, spawn,
    yield_now,
};

mod support;
use support::DropCounter;

type Log = Rc<RefCell<Vec<String>>>;

fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

fn push(log: &Log, s: impl Into<String>) {
    log.borrow_mut().push(s.into());
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string>".into()
    }
}

fn expect_panic(f: impl FnOnce()) -> String {
    let err = catch_unwind(AssertUnwindSafe(f)).expect_err("expected a panic");
    panic_message(&*err)
}

#[test]
fn spawn_run_and_join_values() {
    let ev = EventLoop::new();
    assert!(ev.is_empty());
    let a = ev.spawn(|| 1 + 1);
    let b = ev.spawn(|| "two".to_string());
    assert_eq!(ev.len(), 2);
    assert!(!a.is_finished());
    ev.run().unwrap();
    assert!(ev.is_empty());
    assert!(a.is_finished());
    assert_eq!(a.join().unwrap(), 2);
    assert_eq!(b.join().unwrap(), "two");
}

#[test]
fn run_on_an_empty_loop_returns_at_once() {
    let ev = EventLoop::new();
    ev.run().unwrap();
    assert!(!ev.try_tick());
}

#[test]
fn fifo_round_robin_fairness() {
    // Guarantee: with n runnable tasks, each runs once per n steps, in spawn order.
    let ev = EventLoop::new();
    let log = log();
    for t in 0..4 {
        let log = log.clone();
        ev.spawn(move || {
            for step in 0..3 {
                push(&log, format!("{t}.{step}"));
                yield_now();
            }
        });
    }
    ev.run().unwrap();
    let expected: Vec<String> = (0..3)
        .flat_map(|step| (0..4).map(move |t| format!("{t}.{step}")))
        .collect();
    assert_eq!(*log.borrow(), expected);
}

#[test]
fn a_task_woken_or_spawned_goes_to_the_back() {
    let ev = EventLoop::new();
    let log = log();
    let l = log.clone();
    ev.spawn(move || {
        push(&l, "a0");
        let l2 = l.clone();
        spawn(move || push(&l2, "c0")); // spawned behind b
        yield_now();
        push(&l, "a1");
    });
    let l = log.clone();
    ev.spawn(move || {
        push(&l, "b0");
        yield_now();
        push(&l, "b1");
    });
    ev.run().unwrap();
    assert_eq!(*log.borrow(), ["a0", "b0", "c0", "a1", "b1"]);
}

#[test]
fn try_tick_runs_one_step_at_a_time() {
    let ev = EventLoop::new();
    let log = log();
    let l = log.clone();
    ev.spawn(move || {
        push(&l, "1");
        yield_now();
        push(&l, "2");
    });
    assert!(ev.try_tick());
    assert_eq!(*log.borrow(), ["1"]);
    assert!(!ev.is_empty());
    assert!(ev.try_tick());
    assert_eq!(*log.borrow(), ["1", "2"]);
    assert!(ev.is_empty());
    assert!(!ev.try_tick());
}

fn deep_yield(depth: u32, log: &Log) {
    if depth == 0 {
        push(log, "deep");
        yield_now();
        push(log, "back");
    } else {
        deep_yield(depth - 1, log);
    }
}

#[test]
fn yield_from_any_depth_of_the_call_stack() {
    let ev = EventLoop::new();
    let log = log();
    let l = log.clone();
    ev.spawn(move || deep_yield(100, &l));
    let l = log.clone();
    ev.spawn(move || push(&l, "other"));
    ev.run().unwrap();
    assert_eq!(*log.borrow(), ["deep", "other", "back"]);
}

#[test]
fn block_on_returns_the_main_value_and_leaves_other_tasks() {
    let ev = EventLoop::new();
    let v = ev
        .block_on(|| {
            spawn(|| loop_forever_politely(3));
            41 + 1
        })
        .unwrap();
    assert_eq!(v, 42);
    assert_eq!(ev.len(), 1);
    ev.run().unwrap();
    assert!(ev.is_empty());
}

fn loop_forever_politely(n: u32) {
    for _ in 0..n {
        yield_now();
    }
}

#[test]
fn block_on_propagates_the_main_panic() {
    let ev = EventLoop::new();
    let msg = expect_panic(|| {
        let _ = ev.block_on(|| -> u32 { panic!("main failed") });
    });
    assert_eq!(msg, "main failed");
}

#[test]
fn sleep_orders_tasks_by_deadline() {
    let ev = EventLoop::new();
    let log = log();
    for (name, ms) in [("slow", 20u64), ("fast", 5), ("mid", 10)] {
        let l = log.clone();
        ev.spawn(move || {
            let start = Instant::now();
            sleep(Duration::from_millis(ms));
            assert!(start.elapsed() >= Duration::from_millis(ms));
            push(&l, name);
        });
    }
    ev.run().unwrap();
    assert_eq!(*log.borrow(), ["fast", "mid", "slow"]);
}

#[test]
fn sleep_until_a_past_deadline_returns_at_once_and_others_run_while_sleeping() {
    let ev = EventLoop::new();
    let log = log();
    let l = log.clone();
    ev.spawn(move || {
        sleep_until(Instant::now() - Duration::from_millis(1));
        push(&l, "past");
        sleep(Duration::from_millis(5));
        push(&l, "slept");
    });
    let l = log.clone();
    ev.spawn(move || {
        for i in 0..3 {
            push(&l, format!("busy{i}"));
            yield_now();
        }
    });
    ev.run().unwrap();
    assert_eq!(*log.borrow(), ["past", "busy0", "busy1", "busy2", "slept"]);
}

#[test]
fn join_waits_from_inside_a_task_at_any_depth() {
    let ev = EventLoop::new();
    let out = ev
        .block_on(|| {
            let worker = spawn(|| {
                sleep(Duration::from_millis(2));
                yield_now();
                "done"
            });
            fn deep(h: el::JoinHandle<&'static str>, d: u32) -> &'static str {
                if d == 0 {
                    h.join().unwrap()
                } else {
                    deep(h, d - 1)
                }
            }
            deep(worker, 20)
        })
        .unwrap();
    assert_eq!(out, "done");
}

#[test]
fn join_error_for_a_panic_keeps_the_payload() {
    let ev = EventLoop::new();
    let h = TaskBuilder::new()
        .name("boom")
        .spawn_on(&ev, || -> u32 { std::panic::panic_any(7u8) });
    let h2 = ev.spawn(|| -> u32 { panic!("text panic") });
    ev.run().unwrap(); // both are observed through their handles
    let e = h.join().unwrap_err();
    assert!(e.is_panic());
    assert!(!e.is_cancelled());
    assert_eq!(e.panic().unwrap().coroutine_name(), Some("boom"));
    assert!(e.to_string().contains("'boom' panicked"), "{e}");
    assert_eq!(*e.into_panic().downcast::<u8>().unwrap(), 7);
    let e = h2.join().unwrap_err();
    assert_eq!(e.panic().unwrap().message(), "text panic");
    let p = e.try_into_panic().unwrap();
    assert_eq!(p.message(), "text panic");
}

#[test]
fn a_panicking_task_does_not_stop_the_others() {
    let ev = EventLoop::new();
    let log = log();
    let bad = ev.spawn(|| {
        yield_now();
        panic!("bad task");
    });
    let l = log.clone();
    ev.spawn(move || {
        for i in 0..3 {
            push(&l, format!("good{i}"));
            yield_now();
        }
    });
    ev.run().unwrap();
    assert_eq!(log.borrow().len(), 3);
    assert!(bad.join().unwrap_err().is_panic());
}

#[test]
fn unjoined_panics_are_collected_by_run() {
    let ev = EventLoop::new();
    ev.spawn(|| panic!("detached one")).detach();
    let dropped_later = ev.spawn(|| -> u32 { panic!("dropped handle") });
    let ok = ev.spawn(|| 5);
    let err = ev.run().unwrap_err();
    // The handle still exists: only the detached panic is reported so far.
    assert!(!err.is_deadlock());
    assert_eq!(err.panics().len(), 1);
    assert_eq!(err.panics()[0].message(), "detached one");
    assert!(err.to_string().contains("detached one"), "{err}");
    drop(dropped_later); // dropping a panicked handle unobserved reports it
    let err = ev.run().unwrap_err();
    let panics = err.into_panics();
    assert_eq!(panics.len(), 1);
    assert_eq!(panics[0].message(), "dropped handle");
    assert_eq!(ok.join().unwrap(), 5);
    ev.run().unwrap(); // reported once only
}

#[test]
fn propagate_policy_re_raises_the_first_unjoined_panic() {
    let ev = EventLoop::builder()
        .panic_policy(PanicPolicy::Propagate)
        .build();
    let log = log();
    ev.spawn(|| panic!("propagated")).detach();
    let l = log.clone();
    ev.spawn(move || {
        yield_now();
        push(&l, "still here");
    });
    let msg = expect_panic(|| {
        let _ = ev.run();
    });
    assert_eq!(msg, "propagated");
    // The loop stays usable and the other task is still in it.
    assert_eq!(ev.len(), 1);
    ev.run().unwrap();
    assert_eq!(*log.borrow(), ["still here"]);
}

#[test]
fn cancel_a_parked_task_unwinds_its_stack_once() {
    let ev = EventLoop::new();
    let drops = DropCounter::new();
    let d = drops.clone();
    let (tx, rx) = channel::<u32>(1);
    let victim = ev.spawn(move || {
        let _g = d.token();
        let _g2 = d.token();
        rx.recv().unwrap() // parks forever
    });
    assert!(ev.try_tick());
    assert_eq!(drops.count(), 0);
    victim.cancel();
    assert_eq!(drops.count(), 2);
    assert!(victim.is_finished());
    victim.cancel(); // no effect the second time
    let e = victim.join().unwrap_err();
    assert!(e.is_cancelled() && !e.is_panic());
    assert!(e.to_string().contains("cancelled"), "{e}");
    assert!(tx.is_closed()); // the receiver on its stack was dropped
    ev.run().unwrap();
    assert_eq!(drops.count(), 2);
}

#[test]
fn cancel_a_task_that_never_ran_drops_its_closure() {
    let ev = EventLoop::new();
    let drops = DropCounter::new();
    let g = drops.token();
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let h = ev.spawn(move || {
        let _g = g;
        r.set(true);
    });
    h.cancel();
    assert_eq!(drops.count(), 1);
    ev.run().unwrap();
    assert!(!ran.get());
    assert!(h.join().unwrap_err().is_cancelled());
}

#[test]
fn cancel_from_another_task_and_from_itself() {
    let ev = EventLoop::new();
    let drops = DropCounter::new();
    let d = drops.clone();
    let sleeper = ev.spawn(move || {
        let _g = d.token();
        sleep(Duration::from_secs(3600));
    });
    let killer = ev.spawn(move || {
        yield_now();
        sleeper.cancel();
        sleeper.join().unwrap_err().is_cancelled()
    });
    let d = drops.clone();
    let suicidal = ev.spawn(move || {
        let _g = d.token();
        let me = Rc::new(RefCell::new(None::<el::JoinHandle<()>>));
        let _ = me;
        yield_now();
    });
    let d = drops.clone();
    let self_cancel: Rc<RefCell<Option<el::JoinHandle<()>>>> = Rc::new(RefCell::new(None));
    let sc = self_cancel.clone();
    let h = ev.spawn(move || {
        let _g = d.token();
        sc.borrow().as_ref().unwrap().cancel(); // takes effect at the next wait
        yield_now();
        unreachable!("cancelled at the yield");
    });
    *self_cancel.borrow_mut() = Some(h);
    ev.run().unwrap();
    assert!(killer.join().unwrap());
    suicidal.join().unwrap();
    assert_eq!(drops.count(), 3);
    let h = self_cancel.borrow_mut().take().unwrap();
    assert!(h.join().unwrap_err().is_cancelled());
}

#[test]
fn cancel_after_finish_has_no_effect() {
    let ev = EventLoop::new();
    let h = ev.spawn(|| 3);
    ev.run().unwrap();
    h.cancel();
    assert_eq!(h.join().unwrap(), 3);
}

#[test]
fn detached_tasks_keep_running() {
    let ev = EventLoop::new();
    let done = Rc::new(Cell::new(false));
    let d = done.clone();
    drop(ev.spawn(move || {
        yield_now();
        d.set(true);
    }));
    ev.run().unwrap();
    assert!(done.get());
}

#[test]
fn dropping_the_loop_unwinds_every_unfinished_task_once() {
    let drops = DropCounter::new();
    let handles;
    {
        let ev = EventLoop::new();
        let (tx, rx) = channel::<u32>(1);
        let d = drops.clone();
        let a = ev.spawn(move || {
            let _g = d.token();
            rx.recv().unwrap();
        });
        let d = drops.clone();
        let b = ev.spawn(move || {
            let _g = d.token();
            sleep(Duration::from_secs(3600));
        });
        let d = drops.clone();
        let c = ev.spawn(move || {
            let _g = d.token();
            loop {
                yield_now();
            }
        });
        let d = drops.clone();
        let spawner = ev.spawn(move || {
            let _g = d.token();
            let d2 = d.clone();
            // A task spawned by a destructor during teardown is dropped too.
            struct SpawnOnDrop(DropCounter);
            impl Drop for SpawnOnDrop {
                fn drop(&mut self) {
                    let g = self.0.token();
                    spawn(move || drop(g));
                }
            }
            let _s = SpawnOnDrop(d2);
            yield_now();
            yield_now();
        });
        for _ in 0..5 {
            ev.try_tick();
        }
        let g = drops.token();
        let never = ev.spawn(move || drop(g));
        drop(tx);
        assert_eq!(drops.count(), 0);
        handles = (a, b, c, never, spawner);
    }
    assert_eq!(drops.count(), 6);
    let (a, b, c, never, spawner) = handles;
    assert!(a.join().unwrap_err().is_cancelled());
    assert!(b.join().unwrap_err().is_cancelled());
    assert!(c.join().unwrap_err().is_cancelled());
    assert!(never.join().unwrap_err().is_cancelled());
    assert!(spawner.join().unwrap_err().is_cancelled());
}

#[test]
fn deadlock_is_reported_with_the_stuck_tasks() {
    let ev = EventLoop::new();
    let (tx, rx) = channel::<u32>(1);
    let waiter = TaskBuilder::new()
        .name("waiter")
        .spawn_on(&ev, move || rx.recv().ok());
    let joiner = TaskBuilder::new().name("joiner").spawn_on(&ev, move || {
        let _ = waiter.join();
    });
    let err = ev.run().unwrap_err();
    assert!(err.is_deadlock());
    let stuck = err.stuck_tasks();
    assert_eq!(stuck.len(), 2);
    assert_eq!(stuck[0].name.as_deref(), Some("waiter"));
    assert_eq!(stuck[0].waiting_on, WaitingOn::Recv);
    assert_eq!(stuck[1].name.as_deref(), Some("joiner"));
    assert_eq!(stuck[1].waiting_on, WaitingOn::Join(Some(stuck[0].id)));
    let text = err.to_string();
    assert!(text.starts_with("deadlock"), "{text}");
    assert!(text.contains("'waiter' (waiting to receive"), "{text}");
    // Delivering what they wait for un-sticks them.
    tx.try_send(1).unwrap();
    ev.run().unwrap();
    assert!(joiner.join().is_ok());
}

#[test]
fn deadlock_in_block_on_and_a_full_channel() {
    let ev = EventLoop::new();
    let err = ev
        .block_on(|| {
            let (tx, _rx) = channel::<u32>(1);
            tx.send(1).unwrap();
            tx.send(2).unwrap(); // full, and the only receiver is ours
        })
        .unwrap_err();
    assert!(err.is_deadlock());
    assert_eq!(err.stuck_tasks()[0].name.as_deref(), Some("main"));
    assert_eq!(err.stuck_tasks()[0].waiting_on, WaitingOn::Send);
}

#[test]
fn waiting_functions_outside_a_task_panic_clearly() {
    let msg = expect_panic(yield_now);
    assert!(msg.contains("yield_now called outside a task"), "{msg}");
    let msg = expect_panic(|| sleep(Duration::from_millis(1)));
    assert!(msg.contains("sleep called outside a task"), "{msg}");
    let msg = expect_panic(|| {
        spawn(|| ());
    });
    assert!(msg.contains("spawn called outside a task"), "{msg}");
    let msg = expect_panic(|| {
        el::wait_for(async {});
    });
    assert!(msg.contains("wait_for called outside a task"), "{msg}");
    #[cfg(feature = "blocking")]
    {
        let msg = expect_panic(|| {
            let _ = el::fs::read("/dev/null");
        });
        assert!(msg.contains("outside a task"), "{msg}");
    }
    let (tx, rx) = channel::<u32>(1);
    assert_eq!(rx.try_recv(), Err(el::TryRecvError::Empty));
    let msg = expect_panic(|| {
        let _ = rx.recv();
    });
    assert!(
        msg.contains("Receiver::recv called outside a task"),
        "{msg}"
    );
    tx.send(1).unwrap(); // does not need to wait: fine anywhere
    let msg = expect_panic(|| {
        let _ = tx.send(2);
    });
    assert!(msg.contains("Sender::send called outside a task"), "{msg}");
    let ev = EventLoop::new();
    let h = ev.spawn(|| 1);
    let msg = expect_panic(|| {
        let _ = h.join();
    });
    assert!(msg.contains("outside a task while task"), "{msg}");
}

#[test]
fn driving_a_loop_from_inside_a_task_panics() {
    let ev = EventLoop::new();
    let h = ev.spawn(|| {
        let inner = EventLoop::new();
        inner.run().unwrap();
    });
    ev.run().unwrap();
    let e = h.join().unwrap_err();
    assert!(
        e.panic().unwrap().message().contains("from inside a task"),
        "{e}"
    );
}

#[test]
fn a_task_joining_itself_panics() {
    let ev = EventLoop::new();
    let slot: Rc<RefCell<Option<el::JoinHandle<()>>>> = Rc::new(RefCell::new(None));
    let s = slot.clone();
    let h = ev.spawn(move || {
        yield_now();
        let me = s.borrow_mut().take().unwrap();
        let _ = me.join();
    });
    let id = h.id();
    *slot.borrow_mut() = Some(h);
    let err = ev.run().unwrap_err(); // the handle was consumed by the panicking join
    assert!(
        err.panics()[0]
            .message()
            .contains(&format!("task {id} tried to join itself")),
        "{err}"
    );
}

#[test]
fn current_task_id_names_the_running_task() {
    let ev = EventLoop::new();
    assert_eq!(el::current_task_id(), None);
    let h = ev.spawn(el::current_task_id);
    let id = h.id();
    ev.run().unwrap();
    assert_eq!(h.join().unwrap(), Some(id));
}

#[test]
fn ten_thousand_concurrent_stackful_tasks_with_default_stacks() {
    let ev = EventLoop::new();
    let (tx, rx) = channel::<u32>(16);
    let done = Rc::new(Cell::new(0u32));
    for i in 0..10_000u32 {
        let tx = tx.clone();
        let done = done.clone();
        ev.spawn(move || {
            yield_now(); // all 10,000 are alive at once here
            tx.send(i).unwrap();
            done.set(done.get() + 1);
        });
    }
    drop(tx);
    let sum = ev.spawn(move || rx.iter().map(u64::from).sum::<u64>());
    ev.run().unwrap();
    assert_eq!(done.get(), 10_000);
    assert_eq!(sum.join().unwrap(), (0..10_000u64).sum::<u64>());
}

#[test]
fn task_builder_try_spawn_and_stack_size() {
    let ev = EventLoop::new();
    let h = TaskBuilder::new()
        .name("small")
        .stack_size(64 * 1024)
        .try_spawn_on(&ev, || {
            fn rec(n: u32) -> u32 {
                if n == 0 { 0 } else { 1 + rec(n - 1) }
            }
            rec(100)
        })
        .unwrap();
    ev.run().unwrap();
    assert_eq!(h.join().unwrap(), 100);
    let ev2 = EventLoop::new();
    let inner = ev2
        .block_on(|| TaskBuilder::new().name("inner").spawn(|| 1).join().unwrap())
        .unwrap();
    assert_eq!(inner, 1);
}

#[test]
fn debug_output() {
    let ev = EventLoop::new();
    let h = ev.spawn(|| ());
    assert!(format!("{ev:?}").contains("tasks: 1"));
    assert!(format!("{h:?}").contains("finished: false"));
    ev.run().unwrap();
}

#[test]
fn try_join_hands_the_handle_back_until_done_and_take_panics() {
    let ev = EventLoop::new();
    let h = ev.spawn(|| {
        yield_now();
        9
    });
    let h = h.try_join().unwrap_err(); // not finished: the handle comes back
    ev.spawn(|| panic!("collected")).detach();
    while ev.try_tick() {}
    assert_eq!(h.try_join().ok().unwrap().unwrap(), 9);
    let panics = ev.take_panics();
    assert_eq!(panics.len(), 1);
    assert_eq!(panics[0].message(), "collected");
    ev.run().unwrap(); // already taken
}

#[test]
fn propagate_policy_in_try_tick() {
    let ev = EventLoop::builder()
        .panic_policy(PanicPolicy::Propagate)
        .build();
    ev.spawn(|| panic!("tick panic")).detach();
    let msg = expect_panic(|| {
        ev.try_tick();
    });
    assert_eq!(msg, "tick panic");
    assert!(ev.is_empty());
}

#[test]
fn sleeping_tasks_are_not_a_deadlock_and_wake_in_deadline_order_with_ties_fifo() {
    let ev = EventLoop::new();
    let log = log();
    let at = Instant::now() + Duration::from_millis(3);
    for name in ["first", "second", "third"] {
        let l = log.clone();
        ev.spawn(move || {
            sleep_until(at);
            push(&l, name);
        });
    }
    ev.run().unwrap();
    assert_eq!(*log.borrow(), ["first", "second", "third"]);
}
