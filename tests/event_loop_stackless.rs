//! Stackless tasks (feature `nightly`): `#[coroutine]` closures yielding
//! wait requests to the same loop as stackful tasks.
#![feature(coroutines)]

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use cogen::event_loop::{
    EventLoop, TaskBuilder, TryRecvError, Wait, WaitingOn, channel, spawn_stackless, yield_now,
};

#[test]
fn stackless_and_stackful_tasks_share_the_round_robin() {
    let ev = EventLoop::new();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    ev.spawn_stackless(
        #[coroutine]
        move || {
            for i in 0..3 {
                l.borrow_mut().push(format!("s{i}"));
                yield Wait::yield_now();
            }
        },
    );
    let l = log.clone();
    ev.spawn(move || {
        for i in 0..3 {
            l.borrow_mut().push(format!("f{i}"));
            yield_now();
        }
    });
    ev.run().unwrap();
    assert_eq!(*log.borrow(), ["s0", "f0", "s1", "f1", "s2", "f2"]);
}

#[test]
fn stackless_sleep_join_and_channels() {
    let ev = EventLoop::new();
    let (tx, rx) = channel::<u32>(1);
    let producer = ev.spawn(move || {
        for i in 1..=5 {
            tx.send(i).unwrap();
        }
    });
    let consumer = TaskBuilder::new().name("sum").spawn_stackless_on(
        &ev,
        #[coroutine]
        move || {
            let mut sum = 0;
            loop {
                match rx.try_recv() {
                    Ok(v) => sum += v,
                    Err(TryRecvError::Empty) => yield Wait::recv(&rx),
                    Err(TryRecvError::Closed) => break,
                }
            }
            yield Wait::sleep(Duration::from_millis(2));
            yield Wait::join(&producer);
            (sum, producer.try_join().ok().unwrap().is_ok())
        },
    );
    assert_eq!(consumer.name(), Some("sum"));
    let outer = ev.spawn(move || consumer.join().unwrap());
    ev.run().unwrap();
    assert_eq!(outer.join().unwrap(), (15, true));
}

#[test]
fn stackless_send_waits_for_room_and_spawn_from_a_task() {
    let ev = EventLoop::new();
    let got = ev
        .block_on(|| {
            let (tx, rx) = channel::<u32>(1);
            let sender = spawn_stackless(
                #[coroutine]
                move || {
                    for i in 0..4 {
                        let mut v = i;
                        while let Err(e) = tx.try_send(v) {
                            v = e.into_inner();
                            yield Wait::send(&tx);
                        }
                    }
                },
            );
            let got: Vec<u32> = rx.iter().collect();
            sender.join().unwrap();
            got
        })
        .unwrap();
    assert_eq!(got, [0, 1, 2, 3]);
}

#[test]
fn stackless_panic_cancel_drop_and_deadlock() {
    struct D(Rc<Cell<u32>>);
    impl Drop for D {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }
    let drops = Rc::new(Cell::new(0));
    let ev = EventLoop::new();
    let bad = ev.spawn_stackless(
        #[coroutine]
        || {
            yield Wait::yield_now();
            panic!("stackless failed");
        },
    );
    let (_tx, rx) = channel::<u32>(1);
    let d = D(drops.clone());
    let stuck = TaskBuilder::new().name("stuck").spawn_stackless_on(
        &ev,
        #[coroutine]
        move || {
            let _d = d;
            loop {
                match rx.try_recv() {
                    Ok(_) => {}
                    Err(_) => yield Wait::recv(&rx),
                }
            }
        },
    );
    let err = ev.run().unwrap_err();
    assert!(err.is_deadlock());
    assert_eq!(err.stuck_tasks()[0].name.as_deref(), Some("stuck"));
    assert_eq!(err.stuck_tasks()[0].waiting_on, WaitingOn::Recv);
    assert_eq!(
        bad.join().unwrap_err().panic().unwrap().message(),
        "stackless failed"
    );
    stuck.cancel();
    assert_eq!(drops.get(), 1);
    assert!(stuck.join().unwrap_err().is_cancelled());

    let d = D(drops.clone());
    {
        let ev = EventLoop::new();
        ev.spawn_stackless(
            #[coroutine]
            move || {
                let _d = d;
                yield Wait::sleep(Duration::from_secs(3600));
            },
        );
        ev.try_tick();
    }
    assert_eq!(drops.get(), 2);
}

#[test]
fn ten_thousand_stackless_tasks_parked_on_one_channel() {
    many_stackless(10_000);
}

#[test]
#[ignore = "a million tasks: run with --ignored (about a second in release)"]
fn a_million_concurrent_stackless_tasks() {
    many_stackless(1_000_000);
}

fn many_stackless(n: u32) {
    let ev = EventLoop::new();
    let (tx, rx) = channel::<u32>(1024);
    let done = Rc::new(Cell::new(0u32));
    for _ in 0..n {
        let rx = rx.clone();
        let done = done.clone();
        ev.spawn_stackless(
            #[coroutine]
            move || {
                loop {
                    match rx.try_recv() {
                        Ok(_) => break,
                        Err(TryRecvError::Empty) => yield Wait::recv(&rx),
                        Err(TryRecvError::Closed) => unreachable!(),
                    }
                }
                done.set(done.get() + 1);
            },
        );
    }
    drop(rx);
    // Every task runs once and parks: all n are alive at once.
    assert!(ev.try_tick());
    for _ in 1..n {
        ev.try_tick();
    }
    assert_eq!(ev.len(), n as usize);
    assert_eq!(done.get(), 0);
    ev.spawn(move || {
        for i in 0..n {
            tx.send(i).unwrap();
        }
    });
    ev.run().unwrap();
    assert_eq!(done.get(), n);
}
