//! Pipelines on the event loop: a channel as a source and as a sink, and
//! a pipeline split in two tasks by `spawn_stage`.

mod support;

use std::cell::RefCell;
use std::rc::Rc;

use cogen::event_loop::{EventLoop, SpawnStage, channel, yield_now};
use cogen::pipeline::{PipelineExt, Push, source};
use support::DropCounter;

#[test]
fn a_spawned_stage_runs_ahead_of_the_rest_by_its_capacity() {
    let ev = EventLoop::new();
    let log = Rc::new(RefCell::new(Vec::new()));
    let (l1, l2) = (log.clone(), log.clone());
    let h = ev.spawn(move || {
        source(0..6)
            .stage("produce", move |co, up| {
                for n in up {
                    l1.borrow_mut().push(format!("p{n}"));
                    co.suspend(n);
                }
            })
            .spawn_stage(2)
            .stage("consume", move |co, up| {
                for n in up {
                    l2.borrow_mut().push(format!("c{n}"));
                    co.suspend(n * 10);
                }
            })
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
    });
    ev.run().unwrap();
    assert_eq!(h.join().unwrap(), [0, 10, 20, 30, 40, 50]);
    let log = log.borrow();
    // Every item in order on each side; the producer never more than the
    // channel's capacity (plus the one it holds while parked) ahead.
    let pos = |s: &str| log.iter().position(|e| e == s).unwrap();
    for n in 0..6 {
        assert!(pos(&format!("p{n}")) < pos(&format!("c{n}")), "{log:?}");
    }
    for n in 3..6 {
        assert!(
            pos(&format!("c{}", n - 3)) < pos(&format!("p{n}")),
            "{log:?}"
        );
    }
    // It did run ahead: the second item was produced before the first was consumed.
    assert!(pos("p1") < pos("c0"), "{log:?}");
}

#[test]
fn errors_cross_a_spawned_stage_in_order_and_end_the_stream() {
    let ev = EventLoop::new();
    let h = ev.spawn(|| {
        source(0..10)
            .stage("check", |co, up| {
                for n in up {
                    if n == 3 {
                        return Err(format!("bad item {n}"));
                    }
                    co.suspend(n);
                }
                Ok(())
            })
            .spawn_stage(4)
            .map(|item| item.map_err(|e| (e.stage().to_owned(), e.error().unwrap().to_string())))
            .collect::<Vec<_>>()
    });
    ev.run().unwrap();
    let items = h.join().unwrap();
    assert_eq!(items.len(), 4, "{items:?}");
    assert_eq!(items[..3], [Ok(0), Ok(1), Ok(2)]);
    let (stage, message) = items[3].clone().unwrap_err();
    assert_eq!(stage, "check");
    assert!(message.contains("bad item 3"), "{message}");
}

#[test]
fn a_spawned_half_that_dies_ends_the_stream_with_an_error() {
    let ev = EventLoop::new();
    let h = ev.spawn(|| {
        // A panic in the source itself (not in a stage) kills the task.
        let items = (0..5).map(|n| {
            if n == 2 {
                panic!("source broke")
            } else {
                Ok(n)
            }
        });
        items
            .spawn_stage(1)
            .map(|item| item.map_err(|e| e.stage().to_owned()))
            .collect::<Vec<_>>()
    });
    let _ = ev.run(); // the panic is also reported as unobserved or joined
    let items = h.join().unwrap();
    assert_eq!(items, [Ok(0), Ok(1), Err("spawned".to_owned())]);
}

#[test]
fn dropping_the_consumer_half_cancels_the_spawned_task() {
    let ev = EventLoop::new();
    let drops = DropCounter::new();
    let d = drops.clone();
    let h = ev.spawn(move || {
        let mut spawned = source(0..)
            .stage("endless", move |co, up| {
                let _held = d.token();
                for n in up {
                    co.suspend(n);
                }
            })
            .spawn_stage(2);
        let first: Vec<u32> = spawned.by_ref().take(3).map(Result::unwrap).collect();
        drop(spawned);
        yield_now();
        first
    });
    ev.run().unwrap();
    assert_eq!(h.join().unwrap(), [0, 1, 2]);
    assert_eq!((drops.count(), drops.live()), (1, 0));
    assert!(ev.is_empty());
}

#[test]
fn a_channel_is_a_source_and_a_sender_is_a_sink() {
    let ev = EventLoop::new();
    let (tx, rx) = channel::<u32>(1);
    let (out_tx, out_rx) = channel::<u32>(1);
    ev.spawn(move || (1..=5).for_each(|n| tx.send(n).unwrap()));
    let sent = ev.spawn(move || {
        let doubled = source(rx).stage("double", |co, up| {
            for n in up {
                co.suspend(n * 2);
            }
        });
        out_tx.into_sink().feed(doubled).unwrap()
    });
    let got = ev.spawn(move || out_rx.iter().collect::<Vec<_>>());
    ev.run().unwrap();
    assert_eq!(sent.join().unwrap(), 5);
    assert_eq!(got.join().unwrap(), [2, 4, 6, 8, 10]);
}

#[test]
fn a_sender_sink_stops_taking_items_when_the_receiver_is_gone() {
    let ev = EventLoop::new();
    let (tx, rx) = channel::<u32>(1);
    let h = ev.spawn(move || {
        let mut sink = tx.into_sink();
        assert!(sink.send(1));
        drop(rx);
        let taken = sink.send(2);
        (taken, sink.is_open(), sink.finish().unwrap())
    });
    ev.run().unwrap();
    assert_eq!(h.join().unwrap(), (false, false, 1));
}
