//! `Select`: waiting for the first of several channel operations. Each
//! kind of operation chosen, the deadline, a closed channel, fairness over
//! repeated selects, and what a select leaves behind (exactly one
//! operation completed, no waiter, no wake-up lost), also when the task is
//! cancelled or a `timeout` expires while it waits.

use std::time::{Duration, Instant};

use cogen::event_loop::{
    EventLoop, RecvError, Select, WaitingOn, channel, sleep, spawn, timeout, yield_now,
};

mod support;
use support::DropCounter;

const SHORT: Duration = Duration::from_millis(20);
const LONG: Duration = Duration::from_secs(3600);

#[derive(Debug, PartialEq)]
enum Got {
    A(Result<u32, RecvError>),
    B(Result<u32, RecvError>),
    Sent(bool),
    TimedOut,
}

#[test]
fn each_receive_can_be_chosen_and_only_its_channel_gives_a_message() {
    let ev = EventLoop::new();
    ev.block_on(|| {
        let (tx_a, rx_a) = channel::<u32>(1);
        let (tx_b, rx_b) = channel::<u32>(1);
        let _senders = spawn(move || {
            sleep(SHORT);
            tx_b.send(2).unwrap();
            sleep(SHORT);
            tx_a.send(1).unwrap();
            (tx_a, tx_b) // kept open: a closed channel would complete too
        });
        for want in [Got::B(Ok(2)), Got::A(Ok(1))] {
            let got = Select::new().recv(&rx_a, Got::A).recv(&rx_b, Got::B).wait();
            assert_eq!(got, want);
        }
        assert!(rx_a.is_empty() && rx_b.is_empty());
    })
    .unwrap();
}

#[test]
fn a_send_is_chosen_when_room_comes_and_the_unchosen_value_is_dropped_once() {
    let drops = DropCounter::new();
    let ev = EventLoop::new();
    let d = drops.clone();
    ev.block_on(move || {
        let (tx, rx) = channel(1);
        tx.send(d.named("first")).unwrap(); // full
        let (_tx_b, rx_b) = channel::<u32>(1);
        let drain = spawn(move || {
            sleep(SHORT);
            let first = rx.recv().unwrap();
            drop(first);
            rx.recv().unwrap()
        });
        let got = Select::new()
            .recv(&rx_b, Got::B)
            .send(&tx, d.named("second"), |r| Got::Sent(r.is_ok()))
            .wait();
        assert_eq!(got, Got::Sent(true));
        drop(drain.join().unwrap());
        // Not chosen: the value goes with the select.
        let (tx2, _rx2) = channel(1);
        tx2.send(d.named("in the channel")).unwrap();
        let (tx_c, rx_c) = channel::<u32>(1);
        tx_c.send(3).unwrap();
        let got = Select::new()
            .send(&tx2, d.named("not chosen"), |r| Got::Sent(r.is_ok()))
            .recv(&rx_c, Got::A)
            .wait();
        assert_eq!(got, Got::A(Ok(3)));
    })
    .unwrap();
    assert_eq!(
        drops.log(),
        ["first", "second", "not chosen", "in the channel"]
    );
    assert_eq!(drops.live(), 0);
}

#[test]
fn the_deadline_is_chosen_only_when_nothing_is_ready() {
    let ev = EventLoop::new();
    ev.block_on(|| {
        let (tx, rx) = channel::<u32>(1);
        let start = Instant::now();
        let got = Select::new()
            .recv(&rx, Got::A)
            .timeout(SHORT, || Got::TimedOut)
            .wait();
        assert_eq!(got, Got::TimedOut);
        assert!(start.elapsed() >= SHORT);
        // Ready and past the deadline: the operation wins.
        tx.send(4).unwrap();
        let got = Select::new()
            .recv(&rx, Got::A)
            .deadline(Instant::now(), || Got::TimedOut)
            .wait();
        assert_eq!(got, Got::A(Ok(4)));
        // The earliest of several deadlines counts; a zero one only tries.
        let got = Select::new()
            .recv(&rx, Got::A)
            .timeout(LONG, || unreachable!())
            .timeout(Duration::ZERO, || Got::TimedOut)
            .wait();
        assert_eq!(got, Got::TimedOut);
        // Only a deadline: a sleep.
        let start = Instant::now();
        assert_eq!(Select::new().timeout(SHORT, || 5).wait(), 5);
        assert!(start.elapsed() >= SHORT);
    })
    .unwrap();
}

#[test]
fn a_closed_channel_completes_its_operation_with_its_error() {
    let ev = EventLoop::new();
    ev.block_on(|| {
        let (tx_a, rx_a) = channel::<u32>(1);
        let (_tx_b, rx_b) = channel::<u32>(1);
        spawn(move || {
            yield_now();
            drop(tx_a);
        });
        let got = Select::new()
            .recv(&rx_a, Got::A)
            .recv(&rx_b, Got::B)
            .timeout(LONG, || Got::TimedOut)
            .wait();
        assert_eq!(got, Got::A(Err(RecvError)));
        let (tx, rx) = channel::<u32>(1);
        tx.send(0).unwrap();
        drop(rx);
        let got = Select::new()
            .send(&tx, 1, |r| r.unwrap_err().into_inner())
            .wait();
        assert_eq!(got, 1, "the value comes back");
    })
    .unwrap();
}

#[test]
fn repeated_selects_over_ready_channels_are_fair() {
    let ev = EventLoop::new();
    let counts = ev
        .block_on(|| {
            let (tx_a, rx_a) = channel::<u32>(1);
            let (tx_b, rx_b) = channel::<u32>(1);
            let (tx_c, rx_c) = channel::<u32>(1);
            let mut counts = [0u32; 3];
            for _ in 0..3000 {
                for tx in [&tx_a, &tx_b, &tx_c] {
                    let _ = tx.try_send(0); // keep each one ready
                }
                let i = Select::new()
                    .recv(&rx_a, |_| 0)
                    .recv(&rx_b, |_| 1)
                    .recv(&rx_c, |_| 2)
                    .wait();
                counts[i] += 1;
            }
            counts
        })
        .unwrap();
    for c in counts {
        assert!(c > 700, "{counts:?}");
    }
}

#[test]
fn a_select_works_outside_a_task_when_it_need_not_wait() {
    let (tx, rx) = channel::<u32>(1);
    tx.send(1).unwrap();
    assert_eq!(Select::new().recv(&rx, Got::A).wait(), Got::A(Ok(1)));
    let got = Select::new()
        .recv(&rx, Got::A)
        .timeout(Duration::ZERO, || Got::TimedOut)
        .wait();
    assert_eq!(got, Got::TimedOut);
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Select::new().recv(&rx, Got::A).wait()
    }))
    .unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(msg.contains("Select::wait called outside a task"), "{msg}");
    let err = std::panic::catch_unwind(|| Select::<()>::new().wait()).unwrap_err();
    let msg = err.downcast_ref::<&str>().unwrap();
    assert!(msg.contains("no operation"), "{msg}");
}

#[test]
fn after_a_select_the_task_is_in_no_wait_list_a_later_message_reaches_another() {
    let ev = EventLoop::new();
    let (tx_a, rx_a) = channel::<u32>(1);
    let (tx_b, rx_b) = channel::<u32>(1);
    let rx_b2 = rx_b.clone();
    let selector = ev.spawn(move || Select::new().recv(&rx_a, Got::A).recv(&rx_b, Got::B).wait());
    let other = ev.spawn(move || rx_b2.recv());
    ev.block_on(move || {
        yield_now(); // both park: the selector first on `b`
        tx_a.send(1).unwrap(); // the selector takes `a`
        yield_now();
        tx_b.send(2).unwrap(); // must reach `other`
    })
    .unwrap();
    ev.run().unwrap();
    assert_eq!(selector.join().unwrap(), Got::A(Ok(1)));
    assert_eq!(other.join().unwrap(), Ok(2));
}

#[test]
fn a_finished_select_leaves_no_entry_that_keeps_the_task_alive() {
    // A detached task's result is dropped with the task's last reference:
    // an entry left in a wait list would keep it.
    let drops = DropCounter::new();
    let token = drops.token();
    let ev = EventLoop::new();
    let (tx_a, rx_a) = channel::<u32>(1);
    let (tx_b, rx_b) = channel::<u32>(1);
    let kept = (rx_a.clone(), rx_b.clone()); // open and idle
    ev.spawn(move || {
        let got = Select::new()
            .recv(&rx_a, Got::A)
            .recv(&rx_b, Got::B)
            .timeout(LONG, || Got::TimedOut)
            .wait();
        assert_eq!(got, Got::B(Ok(1)));
        let got = Select::new()
            .recv(&rx_a, Got::A)
            .recv(&rx_b, Got::B)
            .timeout(Duration::from_millis(1), || Got::TimedOut)
            .wait();
        assert_eq!(got, Got::TimedOut);
        token
    })
    .detach();
    let _tx_b = ev.spawn(move || {
        sleep(SHORT);
        tx_b.send(1).unwrap();
        tx_b
    });
    ev.run().unwrap();
    assert_eq!((drops.count(), drops.live()), (1, 0));
    drop((tx_a, kept));
}

#[test]
fn a_wake_up_the_select_took_but_did_not_use_is_handed_on() {
    // The start of a select's rotation is pseudo-random: repeat, so that
    // both choices happen.
    for _ in 0..8 {
        let ev = EventLoop::new();
        let (tx_a, rx_a) = channel::<u32>(1);
        let (tx_b, rx_b) = channel::<u32>(1);
        let rx_a2 = rx_a.clone();
        let rx_b2 = rx_b.clone();
        let selector =
            ev.spawn(move || Select::new().recv(&rx_a, Got::A).recv(&rx_b, Got::B).wait());
        let other_a = ev.spawn(move || rx_a2.recv());
        let other_b = ev.spawn(move || rx_b2.recv());
        let senders = ev
            .block_on(move || {
                yield_now(); // all park, the selector in front on both channels
                // `a` wakes the selector; `b` finds it queued and wakes
                // `other_b`. Whichever message the selector takes, the other
                // one must reach its other receiver: if it takes `b`'s, the
                // wake-up it took from `a` is handed on to `other_a`.
                tx_a.send(1).unwrap();
                tx_b.send(2).unwrap();
                (tx_a, tx_b)
            })
            .unwrap();
        // The senders stay open: a receiver left parked is a deadlock.
        let stuck = ev.run().err().map(|e| e.stuck_tasks().len());
        let chose = selector.join().unwrap();
        let (served, waiting) = match chose {
            Got::A(_) => (&other_b, &other_a),
            _ => (&other_a, &other_b),
        };
        assert!(
            served.is_finished(),
            "{chose:?}: the other message was not received"
        );
        assert_eq!(
            stuck,
            Some(1),
            "{chose:?}: the receiver without a message waits"
        );
        assert!(!waiting.is_finished());
        drop(senders);
    }
}

#[test]
fn cancelled_while_parked_in_a_select_leaves_no_waiter_behind() {
    let drops = DropCounter::new();
    let ev = EventLoop::new();
    let (tx, rx) = channel::<u32>(1);
    let (tx_b, rx_b) = channel::<u32>(1);
    let rx2 = rx.clone();
    let token = drops.token();
    let selector = ev.spawn(move || {
        let _token = token;
        Select::new()
            .recv(&rx, Got::A)
            .recv(&rx_b, Got::B)
            .timeout(LONG, || Got::TimedOut)
            .wait()
    });
    let other = ev.spawn(move || rx2.recv());
    let tx = ev
        .block_on(move || {
            yield_now(); // both park, the selector first
            tx.send(7).unwrap(); // wakes the selector...
            tx
        })
        .unwrap();
    selector.cancel(); // ...which is cancelled before it runs
    assert_eq!((drops.count(), drops.live()), (1, 0));
    ev.run().unwrap();
    assert!(selector.join().unwrap_err().is_cancelled());
    assert_eq!(other.join().unwrap(), Ok(7), "the wake-up went on");
    drop((tx, tx_b));
}

#[test]
fn a_timeout_expiring_around_a_select_unwinds_it_cleanly() {
    let ev = EventLoop::new();
    let (tx, rx) = channel::<u32>(1);
    let rx2 = rx.clone();
    let got = ev.spawn(move || {
        timeout(SHORT, || {
            Select::new()
                .recv(&rx, Got::A)
                .timeout(LONG, || Got::TimedOut)
                .wait()
        })
    });
    let other = ev.spawn(move || rx2.recv());
    ev.spawn(move || {
        sleep(SHORT * 2);
        tx.send(1).unwrap();
    });
    ev.run().unwrap();
    assert!(got.join().unwrap().is_err());
    assert_eq!(other.join().unwrap(), Ok(1));
}

#[test]
fn a_select_nobody_can_complete_is_reported_as_a_deadlock() {
    let ev = EventLoop::new();
    let (_tx_a, rx_a) = channel::<u32>(1);
    let (_tx_b, rx_b) = channel::<u32>(1);
    ev.spawn(move || Select::new().recv(&rx_a, Got::A).recv(&rx_b, Got::B).wait());
    let err = ev.run().unwrap_err();
    assert_eq!(err.stuck_tasks()[0].waiting_on, WaitingOn::Select);
    assert!(err.to_string().contains("waiting in a select"), "{err}");
}

#[test]
fn the_same_channel_twice_and_a_send_and_receive_on_one_channel() {
    let ev = EventLoop::new();
    ev.block_on(|| {
        let (tx, rx) = channel::<u32>(1);
        let tx2 = tx.clone();
        spawn(move || {
            sleep(SHORT);
            tx2.send(1).unwrap();
        });
        let got = Select::new().recv(&rx, Got::A).recv(&rx, Got::B).wait();
        assert!(matches!(got, Got::A(Ok(1)) | Got::B(Ok(1))), "{got:?}");
        // Room: the send completes (the receive could not).
        let got = Select::new()
            .recv(&rx, Got::A)
            .send(&tx, 2, |r| Got::Sent(r.is_ok()))
            .wait();
        assert_eq!(got, Got::Sent(true));
        assert_eq!(rx.try_recv(), Ok(2));
    })
    .unwrap();
}
