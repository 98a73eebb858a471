//! Join handles at their edges: a `RemoteJoinHandle` of another loop of
//! the same thread awaited (a deadlock to report, unless a task drives that
//! loop), and a `JoinHandle` polled and then dropped (it leaves no joiner
//! behind in `tasks()`, deadlock reports or the task's waker list).

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use cogen::event_loop::{EventLoop, TaskStatus, WaitingOn, channel, wait_for, yield_now};

mod support;
use support::{counted_waker, watchdog};

/// A stackful task (through `join`) and a future task (through `.await`)
/// waiting for a task of another loop of their thread: that loop cannot
/// run while theirs sleeps, so their loop reports the deadlock. (It slept
/// for ever: the handle kept a clone of the waiter's waker, which counted
/// as held outside the loop.)
#[test]
fn a_remote_handle_of_another_loop_of_the_thread_is_a_deadlock() {
    watchdog("a_remote_handle_of_another_loop_of_the_thread", || {
        let ev1 = EventLoop::new();
        let ev2 = EventLoop::new();
        let stackful = ev2.handle().spawn(|| 5);
        let future = ev2.handle().spawn(|| 6);
        ev1.spawn(move || stackful.join());
        ev1.spawn_future(future);
        let err = ev1.run().unwrap_err();
        assert!(err.is_deadlock());
        let mut stuck: Vec<_> = err
            .stuck_tasks()
            .iter()
            .map(|t| t.waiting_on.clone())
            .collect();
        stuck.sort_by_key(|w| format!("{w:?}"));
        assert_eq!(stuck, [WaitingOn::Future, WaitingOn::Future]);
        // Once the other loop runs, its tasks are done, and the waiters
        // are woken by key.
        ev2.run().unwrap();
        ev1.run().unwrap();
    });
}

/// The same waits, with the two loops driven in turn from outside: the
/// other loop's tasks wake the waiters by key, through their loop's inbox.
#[test]
fn a_remote_handle_of_another_loop_of_the_thread_wakes_its_waiter_by_key() {
    watchdog("a_remote_handle_wakes_its_waiter_by_key", || {
        let ev1 = EventLoop::new();
        let ev2 = EventLoop::new();
        let stackful = ev2.handle().spawn(|| {
            yield_now();
            5
        });
        let future = ev2.handle().spawn(|| 6);
        let a = ev1.spawn(move || stackful.join().unwrap());
        let b = ev1.spawn_future(async move { future.await.unwrap() });
        while ev1.try_tick() {}
        assert!(!a.is_finished() && !b.is_finished());
        ev2.run().unwrap();
        ev1.run().unwrap();
        assert_eq!((a.join().unwrap(), b.join().unwrap()), (5, 6));
    });
}

/// A future task that polled a `JoinHandle` and dropped it, and then waits
/// for a message, is reported as waiting for its future, not as joining
/// the task it gave up on.
#[test]
fn a_join_given_up_is_not_reported() {
    watchdog("a_join_given_up_is_not_reported", || {
        let ev = EventLoop::new();
        let (_tx_a, rx_a) = channel::<u32>(1);
        let target = ev.spawn(move || {
            let _ = rx_a.recv();
        });
        let (tx_b, rx_b) = channel::<u32>(1);
        let waiter = ev.spawn_future(async move {
            let mut target = target;
            poll_fn(|cx| {
                assert!(Pin::new(&mut target).poll(cx).is_pending());
                Poll::Ready(())
            })
            .await;
            drop(target);
            rx_b.recv_async().await.ok()
        });
        let waiter_id = waiter.id();
        for _ in 0..10 {
            ev.try_tick();
        }
        let tasks = ev.tasks();
        let info = tasks.iter().find(|t| t.id == waiter_id).unwrap();
        assert_eq!(info.state, TaskStatus::Waiting(WaitingOn::Future), "{info}");
        drop(tx_b);
        ev.run().unwrap_err(); // the target waits for ever: a deadlock
    });
}

/// A `JoinHandle` polled with a foreign waker and dropped gives the waker
/// back at once, not when its task ends.
#[test]
fn a_dropped_handle_gives_its_waker_back() {
    let (live, woken) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let waker = counted_waker(&live, &woken);
    let ev = EventLoop::new();
    let (tx, rx) = channel::<u32>(1);
    let mut target = ev.spawn(move || rx.recv().unwrap());
    assert!(
        Pin::new(&mut target)
            .poll(&mut Context::from_waker(&waker))
            .is_pending()
    );
    drop(waker);
    assert_eq!(live.load(Ordering::SeqCst), 1, "the handle's clone");
    drop(target);
    assert_eq!(live.load(Ordering::SeqCst), 0, "given back with the handle");
    assert_eq!(woken.load(Ordering::SeqCst), 0);
    // The task runs on, detached.
    ev.spawn(move || tx.send(1).unwrap());
    ev.run().unwrap();
}

/// A stackful `wait_for` of a handle, then the same handle dropped: the
/// task's own entry went with its park; nothing is left to report.
#[test]
fn a_wait_for_a_handle_cut_short_leaves_nothing() {
    watchdog("a_wait_for_a_handle_cut_short_leaves_nothing", || {
        let ev = EventLoop::new();
        let (_tx, rx) = channel::<u32>(1);
        let target = ev.spawn(move || {
            let _ = rx.recv();
        });
        let (tx_b, rx_b) = channel::<u32>(1);
        let waiter = ev.spawn(move || {
            let r = cogen::event_loop::timeout(std::time::Duration::from_millis(1), || {
                wait_for(target)
            });
            assert!(r.is_err());
            rx_b.recv().ok()
        });
        let waiter_id = waiter.id();
        // Until the time limit has cut the wait short and the task waits
        // for its message.
        let state = || {
            let tasks = ev.tasks();
            tasks
                .iter()
                .find(|t| t.id == waiter_id)
                .unwrap()
                .state
                .clone()
        };
        loop {
            while ev.try_tick() {}
            match state() {
                TaskStatus::Waiting(WaitingOn::Recv) => break,
                // Still in `wait_for(target)`.
                TaskStatus::Waiting(WaitingOn::Join(Some(_))) => {
                    std::thread::sleep(std::time::Duration::from_millis(1))
                }
                other => panic!("{other:?}"),
            }
        }
        drop(tx_b);
        ev.run().unwrap_err(); // the target waits for ever: a deadlock
    });
}
