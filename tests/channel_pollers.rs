//! The wakers a channel keeps for futures waiting to receive: each
//! `recv_async` future takes its own out when dropped (a race lost, a time
//! limit), `poll_recv` keeps one per waker, and keys of tasks of different
//! loops (which may be equal) are told apart.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use cogen::event_loop::{EventLoop, channel, sleep, spawn, timeout, wait_for};

mod support;
use support::{counted_waker, watchdog};

/// 10,000 `recv_async` futures on an idle channel, each polled once with a
/// waker of its own and dropped: the channel keeps none of their wakers.
#[test]
fn dropped_recv_async_futures_leave_no_waker_behind() {
    let (live, woken) = (Arc::default(), Arc::default());
    let (tx, rx) = channel::<u32>(1);
    for _ in 0..10_000 {
        let waker = counted_waker(&live, &woken);
        let mut fut = pin!(rx.recv_async());
        assert!(
            fut.as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
    }
    assert_eq!(live.load(Ordering::SeqCst), 0, "wakers still held");
    // One kept: the send wakes it, once.
    let waker = counted_waker(&live, &woken);
    let mut fut = pin!(rx.recv_async());
    assert!(
        fut.as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending()
    );
    drop(waker);
    assert_eq!(
        live.load(Ordering::SeqCst),
        1,
        "the channel keeps the one pending"
    );
    tx.try_send(4).unwrap();
    assert_eq!(woken.load(Ordering::SeqCst), 1);
    assert_eq!(live.load(Ordering::SeqCst), 0);
    let waker = counted_waker(&live, &woken);
    assert_eq!(
        fut.as_mut().poll(&mut Context::from_waker(&waker)),
        Poll::Ready(Ok(4))
    );
}

/// One future polled again with another waker keeps one entry: the last
/// waker's, and only that one is woken.
#[test]
fn a_recv_async_future_polled_again_keeps_only_its_last_waker() {
    let (live, woken) = (Arc::default(), Arc::default());
    let (first_live, first_woken) = (Arc::default(), Arc::default());
    let (tx, rx) = channel::<u32>(1);
    let mut fut = pin!(rx.recv_async());
    let first = counted_waker(&first_live, &first_woken);
    assert!(
        fut.as_mut()
            .poll(&mut Context::from_waker(&first))
            .is_pending()
    );
    drop(first);
    let second = counted_waker(&live, &woken);
    assert!(
        fut.as_mut()
            .poll(&mut Context::from_waker(&second))
            .is_pending()
    );
    assert_eq!(first_live.load(Ordering::SeqCst), 0, "replaced");
    tx.try_send(1).unwrap();
    assert_eq!(first_woken.load(Ordering::SeqCst), 0);
    assert_eq!(woken.load(Ordering::SeqCst), 1);
}

/// `poll_recv` keeps one entry per waker, however often it is polled.
#[test]
fn poll_recv_keeps_one_entry_per_waker() {
    let (live, woken) = (Arc::default(), Arc::default());
    let (tx, rx) = channel::<u32>(1);
    let waker = counted_waker(&live, &woken);
    for _ in 0..1000 {
        assert!(rx.poll_recv(&mut Context::from_waker(&waker)).is_pending());
    }
    drop(waker);
    assert_eq!(live.load(Ordering::SeqCst), 1);
    tx.try_send(1).unwrap();
    assert_eq!(woken.load(Ordering::SeqCst), 1);
    assert_eq!(live.load(Ordering::SeqCst), 0);
}

/// A `recv_async` future inside a time limit that ran out leaves nothing
/// in the channel: a task of the next loop on the thread (whose key may
/// equal the first's) is woken by the next send.
#[test]
fn a_channel_kept_past_its_loop_wakes_a_task_of_the_next_loop() {
    watchdog("a_channel_kept_past_its_loop", || {
        let (tx, rx) = channel::<u32>(4);
        let rx = Rc::new(rx);
        {
            let rx = rx.clone();
            let first = EventLoop::new();
            let r = first
                .block_on(move || timeout(Duration::from_millis(5), || wait_for(rx.recv_async())))
                .unwrap();
            assert!(r.is_err(), "nothing was sent");
        }
        let next = EventLoop::new();
        let got = next.block_on(move || {
            spawn(move || {
                sleep(Duration::from_millis(5));
                tx.send(5).unwrap();
            });
            wait_for(rx.recv_async())
        });
        assert_eq!(got.unwrap(), Ok(5));
    });
}

/// Two loops driven in turn on one thread, a future task of each waiting on
/// one channel (the first task of each loop: equal keys), through
/// `recv_async` and through `poll_recv`: both get a message.
#[test]
fn equal_keys_of_tasks_of_two_loops_are_both_woken() {
    watchdog("equal_keys_of_tasks_of_two_loops", || {
        for through_poll_recv in [false, true] {
            let a = EventLoop::new();
            let b = EventLoop::new();
            let (tx, rx) = channel::<u32>(4);
            let rx2 = rx.clone();
            let (ha, hb) = if through_poll_recv {
                (
                    a.spawn_future(async move { poll_fn(|cx| rx.poll_recv(cx)).await }),
                    b.spawn_future(async move { poll_fn(|cx| rx2.poll_recv(cx)).await }),
                )
            } else {
                (
                    a.spawn_future(async move { rx.recv_async().await }),
                    b.spawn_future(async move { rx2.recv_async().await }),
                )
            };
            assert!(a.try_tick());
            assert!(b.try_tick());
            tx.try_send(1).unwrap();
            tx.try_send(2).unwrap();
            a.run().unwrap();
            b.run().unwrap();
            let mut got = [ha.join().unwrap().unwrap(), hb.join().unwrap().unwrap()];
            got.sort();
            assert_eq!(got, [1, 2], "through poll_recv: {through_poll_recv}");
        }
    });
}

/// Future tasks each poll a receive once (with a waker of a foreign
/// executor, counted) and give it up, 2,000 times over on an idle channel:
/// the channel keeps none of those wakers.
#[test]
fn receives_given_up_in_future_tasks_leave_nothing_behind() {
    watchdog("receives_given_up_in_future_tasks", || {
        let ev = EventLoop::new();
        let (live, woken): (Arc<AtomicUsize>, Arc<AtomicUsize>) = (Arc::default(), Arc::default());
        let (_tx, rx) = channel::<u32>(1);
        let rx = Rc::new(rx);
        for _ in 0..2000 {
            let rx = rx.clone();
            let waker = counted_waker(&live, &woken);
            ev.spawn_future(async move {
                let mut recv = pin!(rx.recv_async());
                assert!(
                    recv.as_mut()
                        .poll(&mut Context::from_waker(&waker))
                        .is_pending()
                );
            });
        }
        ev.run().unwrap();
        assert_eq!(live.load(Ordering::SeqCst), 0, "wakers still held");
        assert_eq!(woken.load(Ordering::SeqCst), 0);
    });
}
