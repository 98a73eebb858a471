//! The stackless half of `tests/loop_fix_checks.rs` (feature `nightly`):
//! included only on a nightly compiler (`yield` does not parse on stable).

use std::time::Duration;

use cogen::event_loop::{EventLoop, channel, sleep};

use super::with_watchdog;

#[test]
fn a_stuck_stackless_joiner_names_its_target() {
    use cogen::event_loop::{TaskStatus, Wait, WaitingOn};
    let ev = EventLoop::new();
    let (_tx, rx) = channel::<u32>(1);
    let waiter = ev.spawn(move || rx.recv().ok());
    let wid = waiter.id();
    let joiner = ev.spawn_stackless(
        #[coroutine]
        move || {
            yield Wait::join(&waiter);
        },
    );
    let jid = joiner.id();
    ev.try_tick();
    ev.try_tick();
    let tasks = ev.tasks();
    let j = tasks.iter().find(|t| t.id == jid).unwrap();
    let snapshot = j.state.clone();
    let err = ev.run().unwrap_err();
    assert!(err.is_deadlock());
    let stuck = err.stuck_tasks();
    let j = stuck.iter().find(|t| t.id == jid).unwrap();
    assert_eq!(
        (snapshot, j.waiting_on.clone()),
        (
            TaskStatus::Waiting(WaitingOn::Join(Some(wid))),
            WaitingOn::Join(Some(wid))
        ),
        "a stackless joiner no longer names the task it joins"
    );
}

#[test]
fn stackless_joiner_of_a_cancelled_target_and_reused_slots() {
    use cogen::event_loop::Wait;
    with_watchdog("stackless_join_cancel", || {
        let ev = EventLoop::new();
        for _round in 0..200u32 {
            let target = ev.spawn(|| sleep(Duration::from_secs(3600)));
            let t2 = ev.spawn(|| sleep(Duration::from_secs(3600)));
            let stop = target.cancel_handle();
            let stop2 = t2.cancel_handle();
            let a = ev.spawn_stackless(
                #[coroutine]
                move || {
                    yield Wait::join(&target);
                    yield Wait::join(&t2);
                    (
                        target.try_join().ok().map(|r| r.is_err()),
                        t2.try_join().ok().map(|r| r.is_err()),
                    )
                },
            );
            let b_target = ev.spawn(|| sleep(Duration::from_millis(1)));
            let b = ev.spawn_stackless(
                #[coroutine]
                move || {
                    yield Wait::join(&b_target);
                    1
                },
            );
            for _ in 0..6 {
                ev.try_tick();
            }
            b.cancel();
            assert!(b.join().unwrap_err().is_cancelled());
            let fill: Vec<_> = (0..3).map(|_| ev.spawn(|| ())).collect();
            stop.cancel();
            for _ in 0..3 {
                ev.try_tick();
            }
            stop2.cancel();
            ev.run().unwrap();
            assert_eq!(a.join().unwrap(), (Some(true), Some(true)));
            drop(fill);
        }
    });
}
