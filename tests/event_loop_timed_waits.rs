//! Time limits on single waits: `Receiver::recv_timeout` / `recv_deadline`,
//! `Sender::send_timeout` / `send_deadline`, `JoinHandle::join_timeout` /
//! `join_deadline`. Each path: done in time, timed out, closed (or
//! finished) during the wait, a zero limit, cancelled while waiting, and
//! what a wait that gave up leaves behind (nothing: no waiter, no task kept
//! alive, no wake-up lost).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use cogen::event_loop::{
    EventLoop, RecvTimeoutError, SendTimeoutError, channel, sleep, sleep_until, spawn, timeout,
    yield_now,
};

mod support;
use support::DropCounter;

/// A deadline used as behaviour (never as a measurement).
const SHORT: Duration = Duration::from_millis(20);
const LONG: Duration = Duration::from_secs(3600);

#[test]
fn recv_timeout_gets_a_message_that_comes_in_time() {
    let ev = EventLoop::new();
    let got = ev
        .block_on(|| {
            let (tx, rx) = channel::<u32>(1);
            spawn(move || {
                sleep(SHORT);
                tx.send(7).unwrap();
            });
            rx.recv_timeout(LONG)
        })
        .unwrap();
    assert_eq!(got, Ok(7));
}

#[test]
fn recv_timeout_times_out_and_the_loop_does_not_report_a_deadlock() {
    let ev = EventLoop::new();
    let got = ev
        .block_on(|| {
            let (_tx, rx) = channel::<u32>(1);
            let start = Instant::now();
            let got = rx.recv_timeout(SHORT);
            assert!(start.elapsed() >= SHORT);
            got
        })
        .unwrap();
    assert_eq!(got, Err(RecvTimeoutError::Timeout));
    assert!(got.unwrap_err().is_timeout());
    assert_eq!(
        got.unwrap_err().to_string(),
        "timed out receiving on an empty channel"
    );
}

#[test]
fn recv_timeout_sees_the_channel_closed_during_the_wait() {
    let ev = EventLoop::new();
    let got = ev
        .block_on(|| {
            let (tx, rx) = channel::<u32>(1);
            spawn(move || {
                yield_now();
                drop(tx);
            });
            rx.recv_timeout(LONG)
        })
        .unwrap();
    assert_eq!(got, Err(RecvTimeoutError::Closed));
}

#[test]
fn zero_limits_do_not_wait_and_work_outside_tasks() {
    let (tx, rx) = channel::<u32>(1);
    assert_eq!(
        rx.recv_timeout(Duration::ZERO),
        Err(RecvTimeoutError::Timeout)
    );
    tx.send_timeout(1, Duration::ZERO).unwrap();
    let e = tx.send_timeout(2, Duration::ZERO).unwrap_err();
    assert!(e.is_timeout() && !e.is_closed());
    assert_eq!(e.into_inner(), 2);
    assert_eq!(rx.recv_timeout(Duration::ZERO), Ok(1));
    assert_eq!(
        rx.recv_deadline(Instant::now()),
        Err(RecvTimeoutError::Timeout)
    );
    drop(tx);
    assert_eq!(
        rx.recv_timeout(Duration::ZERO),
        Err(RecvTimeoutError::Closed)
    );
    let (tx, rx) = channel::<u32>(1);
    drop(rx);
    let e = tx.send_deadline(3, Instant::now()).unwrap_err();
    assert!(e.is_closed());
    assert_eq!(e.to_string(), "sending on a closed channel");
}

#[test]
fn a_limit_that_would_wait_outside_a_task_panics() {
    let (_tx, rx) = channel::<u32>(1);
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rx.recv_timeout(SHORT)))
        .unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(msg.contains("recv_timeout called outside a task"), "{msg}");
}

#[test]
fn send_timeout_in_time_timed_out_and_closed_hand_the_value_back() {
    let ev = EventLoop::new();
    ev.block_on(|| {
        let (tx, rx) = channel::<&str>(1);
        tx.send("full").unwrap();
        // Timed out: the value comes back.
        let e = tx.send_timeout("late", SHORT).unwrap_err();
        assert!(matches!(e, SendTimeoutError::Timeout("late")));
        assert_eq!(format!("{e:?}"), "Timeout(..)");
        // In time: a receiver makes room.
        let rx2 = rx.clone();
        let drain = spawn(move || {
            sleep(SHORT);
            rx2.recv().unwrap()
        });
        tx.send_timeout("in time", LONG).unwrap();
        assert_eq!(drain.join().unwrap(), "full");
        // Closed during the wait.
        let closer = spawn(move || {
            yield_now();
            drop(rx);
        });
        let e = tx.send_timeout("closed", LONG).unwrap_err();
        assert!(matches!(e, SendTimeoutError::Closed("closed")));
        closer.join().unwrap();
    })
    .unwrap();
}

#[test]
fn a_message_that_comes_as_the_deadline_passes_is_received_not_lost() {
    let ev = EventLoop::new();
    let (tx, rx) = channel::<u32>(1);
    let receiver = ev.spawn(move || rx.recv_timeout(SHORT));
    ev.spawn(move || {
        // Block the thread past the deadline, then send: the receiver is
        // woken by both the message and its timer.
        std::thread::sleep(SHORT * 2);
        tx.send(5).unwrap();
    });
    ev.run().unwrap();
    assert_eq!(receiver.join().unwrap(), Ok(5));
}

#[test]
fn a_receiver_that_timed_out_leaves_no_waiter_the_next_message_reaches_another() {
    let ev = EventLoop::new();
    let (tx, rx) = channel::<u32>(1);
    let rx2 = rx.clone();
    let impatient = ev.spawn(move || rx.recv_timeout(SHORT));
    let patient = ev.spawn(move || rx2.recv());
    ev.spawn(move || {
        sleep(SHORT * 2);
        tx.send(9).unwrap();
    });
    ev.run().unwrap();
    assert_eq!(impatient.join().unwrap(), Err(RecvTimeoutError::Timeout));
    assert_eq!(patient.join().unwrap(), Ok(9));
}

#[test]
fn a_finished_task_that_waited_with_a_limit_is_not_kept_alive() {
    // The result of a detached task is dropped with the task's last
    // reference: a wait-list entry or a timer left behind would keep it.
    let drops = DropCounter::new();
    let ev = EventLoop::new();
    let (tx, rx) = channel::<u32>(1);
    let (tx2, rx2) = channel::<u32>(1);
    // Kept open and idle: closing would empty their wait lists anyway.
    let kept = (rx.clone(), rx2.clone());
    let token = drops.token();
    ev.spawn(move || {
        let _ = rx.recv_timeout(SHORT); // times out: its timer fired
        let _ = rx2.recv_timeout(LONG); // gets a value: its timer is pending
        token
    })
    .detach();
    ev.spawn(move || {
        sleep(SHORT * 2);
        tx2.send(1).unwrap();
        tx2
    });
    ev.run().unwrap();
    assert_eq!((drops.count(), drops.live()), (1, 0));
    drop((tx, kept));
}

#[test]
fn cancelled_while_waiting_in_recv_timeout_unwinds_once_and_passes_the_wake_up_on() {
    let drops = DropCounter::new();
    let ev = EventLoop::new();
    let (tx, rx) = channel::<u32>(1);
    let rx2 = rx.clone();
    let token = drops.token();
    let victim = ev.spawn(move || {
        let _token = token;
        rx.recv_timeout(LONG)
    });
    let other = ev.spawn(move || rx2.recv());
    let tx = ev
        .block_on(move || {
            yield_now(); // both park, the victim in front
            tx.send(3).unwrap(); // wakes the victim
            tx
        })
        .unwrap();
    victim.cancel(); // before it ran: the wake-up must go on to `other`
    assert_eq!(drops.live(), 0, "unwound at once");
    ev.run().unwrap();
    assert!(victim.join().unwrap_err().is_cancelled());
    assert_eq!(other.join().unwrap(), Ok(3));
    assert_eq!((drops.count(), drops.live()), (1, 0));
    drop(tx);
}

#[test]
fn cancelled_while_waiting_in_send_timeout() {
    let drops = DropCounter::new();
    let ev = EventLoop::new();
    let (tx, rx) = channel::<u32>(1);
    tx.try_send(0).unwrap();
    let token = drops.token();
    let victim = ev.spawn(move || {
        let _token = token;
        tx.send_timeout(1, LONG)
    });
    ev.block_on(yield_now).unwrap();
    victim.cancel();
    ev.run().unwrap();
    assert!(victim.join().unwrap_err().is_cancelled());
    assert_eq!((drops.count(), drops.live()), (1, 0));
    assert_eq!(rx.try_recv(), Ok(0));
    assert!(rx.is_closed(), "the sender went with the task");
}

#[test]
fn a_shorter_enclosing_timeout_wins_and_a_shorter_own_limit_wins() {
    let ev = EventLoop::new();
    ev.block_on(|| {
        let (_tx, rx) = channel::<u32>(1);
        assert!(timeout(SHORT, || rx.recv_timeout(LONG)).is_err());
        assert_eq!(
            timeout(LONG, || rx.recv_timeout(SHORT)),
            Ok(Err(RecvTimeoutError::Timeout))
        );
    })
    .unwrap();
}

#[test]
fn join_timeout_in_time() {
    let ev = EventLoop::new();
    let got = ev
        .block_on(|| {
            let h = spawn(|| {
                sleep(SHORT);
                4
            });
            h.join_timeout(LONG).ok().unwrap().unwrap()
        })
        .unwrap();
    assert_eq!(got, 4);
}

#[test]
fn join_timeout_hands_the_handle_back_to_wait_again_or_cancel() {
    let ev = EventLoop::new();
    ev.block_on(|| {
        let h = spawn(|| {
            sleep(SHORT * 2);
            "done"
        });
        let h = h.join_timeout(Duration::from_millis(1)).unwrap_err();
        assert!(!h.is_finished());
        assert_eq!(h.join_timeout(LONG).ok().unwrap().unwrap(), "done");

        let slow = spawn(|| sleep(LONG));
        let slow = slow.join_timeout(SHORT).unwrap_err();
        slow.cancel();
        assert!(slow.join().unwrap_err().is_cancelled());
    })
    .unwrap();
}

#[test]
fn join_timeout_sees_a_panic_during_the_wait() {
    let ev = EventLoop::new();
    ev.block_on(|| {
        let h = spawn(|| {
            yield_now();
            panic!("boom")
        });
        let e = h.join_timeout(LONG).ok().unwrap().unwrap_err();
        assert_eq!(e.panic().unwrap().message(), "boom");
    })
    .unwrap();
}

#[test]
fn join_timeout_with_a_zero_limit_is_try_join() {
    let ev = EventLoop::new();
    let h = ev.spawn(|| 1);
    let h = h.join_timeout(Duration::ZERO).unwrap_err(); // not run yet, outside a task
    ev.run().unwrap();
    assert_eq!(h.join_deadline(Instant::now()).ok().unwrap().unwrap(), 1);
}

#[test]
fn a_joiner_cancelled_while_waiting_is_not_left_in_the_target() {
    let drops = DropCounter::new();
    let ev = EventLoop::new();
    let target = ev.spawn(|| sleep(SHORT));
    let token = drops.token();
    let finished = Rc::new(Cell::new(false));
    let f = finished.clone();
    let joiner = ev.spawn(move || {
        let _token = token;
        let r = target.join_timeout(LONG);
        f.set(true);
        r.is_ok()
    });
    ev.block_on(yield_now).unwrap();
    joiner.cancel();
    assert_eq!((drops.count(), drops.live()), (1, 0));
    ev.run().unwrap(); // the target finishes; nobody to wake
    assert!(!finished.get());
    assert!(joiner.join().unwrap_err().is_cancelled());
}

#[test]
fn a_joiner_that_timed_out_is_not_woken_by_the_target_later() {
    let ev = EventLoop::new();
    let wakes = Rc::new(Cell::new(0));
    let w = wakes.clone();
    ev.block_on(move || {
        let target = spawn(|| sleep(SHORT * 2));
        let target = target.join_timeout(Duration::from_millis(1)).unwrap_err();
        drop(target); // detached: it finishes on its own
        // Parked on a channel nobody touches, with a longer limit: the
        // target finishing must not wake this park.
        let (_tx, rx) = channel::<u32>(1);
        let start = Instant::now();
        assert_eq!(rx.recv_timeout(SHORT * 4), Err(RecvTimeoutError::Timeout));
        assert!(start.elapsed() >= SHORT * 4);
        w.set(w.get() + 1);
    })
    .unwrap();
    assert_eq!(wakes.get(), 1);
}

// A limit asked for on every wait: the timers keep one entry per task and
// push it again, for the later time, when it comes up while the task waits
// with a limit asked for since. These check that the wake-up the task
// wants is the one it gets: not earlier, not lost, not another task's.

#[test]
fn a_limit_asked_for_again_times_out_from_the_later_wait_not_the_first() {
    let ev = EventLoop::new();
    let t0 = Instant::now();
    let limit = Duration::from_millis(300);
    let log = Rc::new(RefCell::new(Vec::new()));
    let (tx, rx) = channel::<u32>(1);
    ev.spawn(move || {
        sleep_until(t0 + Duration::from_millis(100));
        tx.send(1).unwrap();
        sleep(Duration::from_secs(2));
        drop(tx);
    })
    .detach();
    let l = log.clone();
    ev.spawn(move || {
        // Before the reader's second limit ends (t0 + 400 ms or later),
        // and after its first wait's entry comes up (t0 + 300 ms or so).
        sleep_until(t0 + Duration::from_millis(350));
        l.borrow_mut().push("marker");
    })
    .detach();
    let l = log.clone();
    let reader = ev.spawn(move || {
        assert_eq!(rx.recv_timeout(limit), Ok(1));
        let start = Instant::now();
        let second = rx.recv_timeout(limit);
        let waited = start.elapsed();
        l.borrow_mut().push("timed out");
        (second, waited)
    });
    ev.run().unwrap();
    let (second, waited) = reader.join().unwrap();
    assert_eq!(second, Err(RecvTimeoutError::Timeout));
    assert!(waited >= limit, "timed out after {waited:?}");
    assert_eq!(*log.borrow(), ["marker", "timed out"]);
}

#[test]
fn a_shorter_limit_after_a_longer_one_wakes_at_its_own_time() {
    // The first wait leaves an entry an hour away; the second, with a
    // short limit, must get an entry of its own.
    let ev = EventLoop::new();
    let log = Rc::new(RefCell::new(Vec::new()));
    let (tx, rx) = channel::<u32>(1);
    let l = log.clone();
    let reader = ev.spawn(move || {
        assert_eq!(rx.recv_timeout(LONG), Ok(1));
        let got = rx.recv_timeout(SHORT);
        l.borrow_mut().push("timed out");
        got
    });
    let l = log.clone();
    ev.spawn(move || {
        tx.send(1).unwrap();
        sleep(Duration::from_secs(2));
        l.borrow_mut().push("marker");
        drop(tx);
    })
    .detach();
    ev.run().unwrap();
    assert_eq!(reader.join().unwrap(), Err(RecvTimeoutError::Timeout));
    assert_eq!(*log.borrow(), ["timed out", "marker"]);
}

#[test]
fn a_task_in_the_registry_slot_of_one_that_ended_waiting_gets_its_own_wake_up() {
    // The first task ends with its timer entry still in the heap (its
    // message came first); the next task spawned takes its slot in the
    // loop's registry and sleeps past that entry's time. Its sleep must
    // end: the entry of the task that ended is not the new task's.
    let ev = EventLoop::new();
    let (tx, rx) = channel::<u32>(1);
    let first = ev.spawn(move || rx.recv_timeout(Duration::from_millis(50)));
    ev.block_on(move || {
        tx.send(3).unwrap();
        yield_now();
        tx
    })
    .unwrap();
    assert_eq!(first.join().unwrap(), Ok(3));
    let second = ev.spawn(|| {
        let start = Instant::now();
        sleep(Duration::from_millis(150));
        start.elapsed()
    });
    ev.run().unwrap();
    assert!(second.join().unwrap() >= Duration::from_millis(150));
}

#[test]
fn many_tasks_waiting_with_limits_again_and_again_all_time_out_once_idle() {
    // Ping-pongs over channels with a limit on every receive, then
    // silence: every receiver times out, each after its own last wait.
    let ev = EventLoop::new();
    let limit = Duration::from_millis(60);
    let mut handles = Vec::new();
    for i in 0..20u32 {
        let (tx, rx) = channel::<u32>(1);
        handles.push(ev.spawn(move || {
            let mut got = 0;
            let start = loop {
                let start = Instant::now();
                match rx.recv_timeout(limit) {
                    Ok(_) => got += 1,
                    Err(e) => {
                        assert_eq!(e, RecvTimeoutError::Timeout);
                        break start;
                    }
                }
            };
            (got, start.elapsed())
        }));
        ev.spawn(move || {
            for k in 0..5 {
                sleep(Duration::from_millis(u64::from(k + i % 3) * 10));
                tx.send(k).unwrap();
            }
            sleep(limit * 4);
            drop(tx);
        })
        .detach();
    }
    ev.run().unwrap();
    for h in handles {
        let (got, waited) = h.join().unwrap();
        assert_eq!(got, 5);
        assert!(waited >= limit, "timed out after {waited:?}");
    }
}

#[test]
fn wake_ups_due_together_come_in_the_order_of_their_times() {
    // The reader's first wait leaves an entry for its own limit; its
    // second wait wants a later wake-up. The marker's time lies between
    // the two. The loop is then held up past all of them: the marker must
    // still be woken before the reader, as their times say.
    let ev = EventLoop::new();
    let limit = Duration::from_millis(100);
    let log = Rc::new(RefCell::new(Vec::new()));
    let parked = Rc::new(Cell::new(false));
    let (tx, rx) = channel::<u32>(1);
    ev.spawn(move || {
        sleep(Duration::from_millis(30));
        tx.send(1).unwrap();
        sleep(Duration::from_secs(2));
        drop(tx);
    })
    .detach();
    let (l, p) = (log.clone(), parked.clone());
    let reader = ev.spawn(move || {
        let first = Instant::now();
        assert_eq!(rx.recv_timeout(limit), Ok(1));
        let second = Instant::now();
        // After the first wait's limit, before the second's.
        let between = first + limit + (second - first) / 2;
        let m = l.clone();
        spawn(move || {
            sleep_until(between);
            m.borrow_mut().push("marker");
        })
        .detach();
        p.set(true);
        let got = rx.recv_timeout(limit);
        l.borrow_mut().push("timed out");
        got
    });
    ev.spawn(move || {
        while !parked.get() {
            yield_now();
        }
        // Let the marker park too, then hold the loop past every time.
        for _ in 0..3 {
            yield_now();
        }
        std::thread::sleep(Duration::from_millis(400));
    })
    .detach();
    ev.run().unwrap();
    assert_eq!(reader.join().unwrap(), Err(RecvTimeoutError::Timeout));
    assert_eq!(*log.borrow(), ["marker", "timed out"]);
}

#[test]
fn equal_times_wake_in_the_order_asked_even_when_one_task_asks_twice() {
    // A asks for time `d` (a receive's deadline), B then asks for `d`
    // too, and A, woken by data, asks for `d` again: B asked before A's
    // second ask, so B is woken first. (A's first ask left an entry for
    // `d` in the heap with the place of that first ask.)
    let ev = EventLoop::new();
    let d = Instant::now() + Duration::from_millis(150);
    let log = Rc::new(RefCell::new(Vec::new()));
    let (tx, rx) = channel::<u32>(1);
    let l = log.clone();
    ev.spawn(move || {
        assert_eq!(rx.recv_deadline(d), Ok(1));
        sleep_until(d);
        l.borrow_mut().push("A");
    })
    .detach();
    let l = log.clone();
    ev.spawn(move || {
        sleep_until(d);
        l.borrow_mut().push("B");
    })
    .detach();
    ev.spawn(move || {
        sleep(SHORT);
        tx.send(1).unwrap();
    })
    .detach();
    ev.run().unwrap();
    assert_eq!(*log.borrow(), ["B", "A"]);
}

/// Runs `f` on a thread of its own and fails if it has not finished after
/// a minute: a hang guard for tests whose failure is a loop asleep for an
/// hour, not a measurement.
fn within_a_minute(f: impl FnOnce() + Send + 'static) {
    let (done, finished) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        f();
        let _ = done.send(());
    });
    match finished.recv_timeout(Duration::from_secs(60)) {
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("the loop slept instead"),
        _ => {
            if let Err(panic) = t.join() {
                std::panic::resume_unwind(panic);
            }
        }
    }
}

#[test]
fn a_deadlock_after_a_long_limit_that_data_ended_is_reported_at_once() {
    // The timer entry of a wait with an hour's limit, ended by data, is
    // still in the heap, its task alive: it must not make the loop sleep
    // for the hour when the tasks left can never be woken.
    within_a_minute(|| {
        let ev = EventLoop::new();
        let (tx, rx) = channel::<u32>(1);
        let keep = tx.clone();
        ev.spawn(move || {
            assert_eq!(rx.recv_timeout(LONG), Ok(1));
            let _ = rx.recv(); // nobody sends again
        })
        .detach();
        ev.spawn(move || tx.send(1).unwrap()).detach();
        let err = ev.run().unwrap_err();
        assert!(err.is_deadlock());
        assert_eq!(err.stuck_tasks().len(), 1);
        drop(keep);
    });
}

#[test]
fn a_deadlock_in_the_slot_of_a_task_that_left_a_long_entry_is_reported_at_once() {
    // The first task ends with an hour-long entry in the heap (its handle
    // kept, so the entry's task is still there); the next task takes its
    // registry slot and waits for ever with no limit.
    within_a_minute(|| {
        let ev = EventLoop::new();
        let (tx, rx) = channel::<u32>(1);
        let first = ev.spawn(move || rx.recv_timeout(LONG));
        ev.block_on(move || tx.send(1).unwrap()).unwrap();
        ev.run().unwrap();
        assert!(first.is_finished());
        let (keep, rx2) = channel::<u32>(1);
        ev.spawn(move || {
            let _ = rx2.recv();
        })
        .detach();
        let err = ev.run().unwrap_err();
        assert!(err.is_deadlock());
        drop((first, keep));
    });
}

/// One step of a task in [`random_timed_waits_end_and_never_early`].
#[derive(Clone, Debug)]
enum Step {
    /// `recv_timeout` on a channel, with a limit in milliseconds.
    Recv(usize, u64),
    /// `send_timeout` on a channel (capacity 1), with a limit.
    Send(usize, u64),
    /// `sleep` for some milliseconds.
    Sleep(u64),
    /// `recv_timeout` inside an enclosing `timeout`: two deadlines asked
    /// for one park.
    RecvIn(usize, u64, u64),
    /// Spawns a task that receives on a channel with a limit (it may take
    /// the registry slot of a task that has ended).
    Child(usize, u64),
    Yield,
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        4 => (0..3usize, 0..12u64).prop_map(|(c, ms)| Step::Recv(c, ms)),
        3 => (0..3usize, 0..12u64).prop_map(|(c, ms)| Step::Send(c, ms)),
        2 => (0..8u64).prop_map(Step::Sleep),
        2 => (0..3usize, 0..12u64, 0..12u64).prop_map(|(c, a, b)| Step::RecvIn(c, a, b)),
        2 => (0..3usize, 0..12u64).prop_map(|(c, ms)| Step::Child(c, ms)),
        1 => Just(Step::Yield),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 48,
        ..proptest::prelude::ProptestConfig::default()
    })]

    /// Tasks that only ever wait with a time limit, on three channels they
    /// share and that stay open: every wait ends (no wake-up lost, so every
    /// task finishes and the loop reports no deadlock), and none that timed
    /// out, nor any sleep, ended before its limit. However the timers keep their entries
    /// (one per task, moved on when they come up), this is what a user
    /// sees.
    #[test]
    fn random_timed_waits_end_and_never_early(
        scripts in proptest::collection::vec(proptest::collection::vec(step(), 1..8), 1..7)
    ) {
        let ev = EventLoop::new();
        let channels: Vec<_> = (0..3).map(|_| channel::<u32>(1)).collect();
        let early = Rc::new(RefCell::new(Vec::<String>::new()));
        let mut handles = Vec::new();
        for (t, script) in scripts.into_iter().enumerate() {
            let ends: Vec<_> = channels.iter().map(|(tx, rx)| (tx.clone(), rx.clone())).collect();
            let early = early.clone();
            handles.push(ev.spawn(move || {
                let ms = Duration::from_millis;
                for (i, step) in script.iter().enumerate() {
                    let start = Instant::now();
                    let (limit, timed_out) = match *step {
                        Step::Recv(c, l) => (
                            ms(l),
                            ends[c].1.recv_timeout(ms(l)) == Err(RecvTimeoutError::Timeout),
                        ),
                        Step::Send(c, l) => (
                            ms(l),
                            matches!(
                                ends[c].0.send_timeout(i as u32, ms(l)),
                                Err(SendTimeoutError::Timeout(_))
                            ),
                        ),
                        Step::Sleep(l) => {
                            sleep(ms(l));
                            (ms(l), true)
                        }
                        Step::RecvIn(c, outer, own) => {
                            match timeout(ms(outer), || ends[c].1.recv_timeout(ms(own))) {
                                Err(_) => (ms(outer), true),
                                Ok(Err(RecvTimeoutError::Timeout)) => (ms(own), true),
                                Ok(_) => (Duration::ZERO, false),
                            }
                        }
                        Step::Child(c, l) => {
                            let rx = ends[c].1.clone();
                            let early = early.clone();
                            spawn(move || {
                                let start = Instant::now();
                                if rx.recv_timeout(ms(l)) == Err(RecvTimeoutError::Timeout)
                                    && start.elapsed() < ms(l)
                                {
                                    early.borrow_mut().push(format!(
                                        "a child of task {t}: ended after {:?}",
                                        start.elapsed()
                                    ));
                                }
                            })
                            .detach();
                            (Duration::ZERO, false)
                        }
                        Step::Yield => {
                            yield_now();
                            (Duration::ZERO, false)
                        }
                    };
                    let waited = start.elapsed();
                    if timed_out && waited < limit {
                        early.borrow_mut().push(format!(
                            "task {t}, step {i} ({step:?}): ended after {waited:?}"
                        ));
                    }
                }
            }));
        }
        // Kept open: a wait can end only by its message or its limit, so a
        // lost timer leaves its task parked, and the loop reports it.
        proptest::prop_assert!(ev.run().is_ok(), "the loop reported waits that cannot end");
        drop(channels);
        for h in handles {
            proptest::prop_assert!(h.join().is_ok());
        }
        proptest::prop_assert!(early.borrow().is_empty(), "{:?}", early.borrow());
    }
}
