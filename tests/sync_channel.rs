//! The `Send` channel (`event_loop::sync_channel`): several producer and
//! consumer threads and tasks at once with no value lost or duplicated,
//! closing when every sender or every receiver goes, the `try_` forms, and
//! a task parked on it while its loop runs the others.

use std::collections::HashSet;
use std::thread;
use std::time::Duration;

use cogen::event_loop::{
    EventLoop, Runtime, TryRecvError, TrySendError, sleep, sync_channel, yield_now,
};

#[test]
fn producers_and_consumers_on_threads_and_tasks_lose_and_duplicate_nothing() {
    const PER_PRODUCER: u64 = 2_000;
    let rt = Runtime::builder().threads(2).build().unwrap();
    let (tx, rx) = sync_channel::<u64>(8);
    // Three producer tasks (round robin over both loops), three threads.
    let mut task_producers = Vec::new();
    for p in 0..3 {
        let tx = tx.clone();
        task_producers.push(rt.spawn(move || {
            for n in 0..PER_PRODUCER {
                tx.send(p * 1_000_000 + n).unwrap();
                if n % 100 == 0 {
                    yield_now();
                }
            }
        }));
    }
    let thread_producers: Vec<_> = (3..6)
        .map(|p| {
            let tx = tx.clone();
            thread::spawn(move || {
                for n in 0..PER_PRODUCER {
                    tx.send(p * 1_000_000 + n).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    // Two consumer tasks and two consumer threads.
    let task_consumers: Vec<_> = (0..2)
        .map(|_| {
            let rx = rx.clone();
            rt.spawn(move || std::iter::from_fn(|| rx.recv().ok()).collect::<Vec<_>>())
        })
        .collect();
    let thread_consumers: Vec<_> = (0..2)
        .map(|_| {
            let rx = rx.clone();
            thread::spawn(move || std::iter::from_fn(|| rx.recv().ok()).collect::<Vec<_>>())
        })
        .collect();
    drop(rx);
    for h in task_producers {
        h.join().unwrap();
    }
    for h in thread_producers {
        h.join().unwrap();
    }
    let mut seen = HashSet::new();
    let received = task_consumers
        .into_iter()
        .map(|h| h.join().unwrap())
        .chain(thread_consumers.into_iter().map(|h| h.join().unwrap()));
    for values in received {
        for v in values {
            assert!(seen.insert(v), "{v} received twice");
        }
    }
    assert_eq!(seen.len() as u64, 6 * PER_PRODUCER);
}

#[test]
fn closes_when_every_sender_or_every_receiver_is_dropped() {
    let (tx, rx) = sync_channel::<u32>(2);
    let tx2 = tx.clone();
    tx.send(1).unwrap();
    drop(tx);
    assert!(!rx.is_closed());
    tx2.send(2).unwrap();
    drop(tx2);
    assert!(rx.is_closed());
    // What is left is still received, then the channel reports closed.
    assert_eq!((rx.recv(), rx.recv()), (Ok(1), Ok(2)));
    assert!(rx.recv().is_err());
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));

    let (tx, rx) = sync_channel::<String>(2);
    let rx2 = rx.clone();
    drop((rx, rx2));
    let err = tx.send("back".to_owned()).unwrap_err();
    assert_eq!(err.into_inner(), "back");
    assert!(tx.try_send("x".to_owned()).unwrap_err().is_closed());
}

#[test]
fn try_forms_never_wait() {
    let (tx, rx) = sync_channel::<u8>(1);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    tx.try_send(1).unwrap();
    assert!(matches!(tx.try_send(2), Err(TrySendError::Full(2))));
    assert_eq!((tx.len(), tx.capacity()), (1, 1));
    assert_eq!(rx.try_recv(), Ok(1));
}

#[test]
fn a_task_parked_on_it_lets_the_others_run_and_a_thread_wakes_it() {
    let (tx, rx) = sync_channel::<u32>(1);
    let ev = EventLoop::new();
    let receiver = ev.spawn(move || rx.recv().unwrap());
    let ticker = ev.spawn(|| {
        let mut ticks = 0;
        for _ in 0..5 {
            sleep(Duration::from_millis(2));
            ticks += 1;
        }
        ticks
    });
    let sender = thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        tx.send(9).unwrap();
    });
    ev.run().unwrap();
    sender.join().unwrap();
    assert_eq!((receiver.join().unwrap(), ticker.join().unwrap()), (9, 5));
}

#[test]
fn future_tasks_await_it() {
    let (tx, rx) = sync_channel::<u32>(1);
    let ev = EventLoop::new();
    let consumer = ev.spawn_future(async move {
        let mut sum = 0;
        while let Ok(v) = rx.recv_async().await {
            sum += v;
        }
        sum
    });
    ev.spawn_future(async move {
        for v in 1..=4 {
            tx.send_async(v).await.unwrap();
        }
    })
    .detach();
    ev.run().unwrap();
    assert_eq!(consumer.join().unwrap(), 10);
}

#[test]
#[should_panic(expected = "inside a future or stackless task")]
fn blocking_send_inside_a_future_task_panics() {
    let (tx, _rx) = sync_channel::<u32>(1);
    tx.send(0).unwrap();
    let ev = EventLoop::new();
    let h = ev.spawn_future(async move { tx.send(1) });
    ev.run().unwrap();
    let _ = h
        .join()
        .map_err(|e| e.into_panic())
        .map_err(std::panic::resume_unwind);
}
