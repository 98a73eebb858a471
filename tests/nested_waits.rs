//! Waiting from coroutines nested inside a task: a wait at any depth parks
//! the whole task, and waking the task resumes the chain where it waited,
//! with typed values still flowing between the nested coroutines. Also the
//! loop's guarantees across the chain: fairness, deadlock detection,
//! cancellation (every destructor once), time limits and panics.

mod support;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use cogen::event_loop::{self as el, EventLoop, channel, sleep, timeout, yield_now};
use cogen::pipeline::{PipelineExt, Sink, source};
use cogen::{Coroutine, CoroutineResult, ScopedCoroutine};
use support::DropCounter;

/// Runs `f` inside `depth` coroutines nested in each other (0: directly).
fn nested<T>(depth: usize, f: &mut dyn FnMut() -> T) -> T {
    if depth == 0 {
        return f();
    }
    ScopedCoroutine::<(), (), T>::new(|_, ()| nested(depth - 1, f)).scope(|co| {
        match co.resume(()).unwrap() {
            CoroutineResult::Return(value) => value,
            CoroutineResult::Yield(()) => unreachable!("never yields"),
        }
    })
}

#[test]
fn a_yield_from_any_depth_lets_the_other_tasks_run() {
    for depth in 0..4 {
        let ev = EventLoop::new();
        let log = Rc::new(RefCell::new(Vec::new()));
        for name in ["a", "b"] {
            let log = log.clone();
            ev.spawn(move || {
                nested(depth, &mut || {
                    for i in 0..3 {
                        log.borrow_mut().push(format!("{name}{i}"));
                        yield_now();
                    }
                })
            });
        }
        ev.run().unwrap();
        assert_eq!(
            *log.borrow(),
            ["a0", "b0", "a1", "b1", "a2", "b2"],
            "depth {depth}"
        );
    }
}

#[test]
fn typed_values_keep_flowing_between_nested_coroutines_around_waits() {
    let ev = EventLoop::new();
    let h = ev.spawn(|| {
        // A generator that sleeps between items, and a coroutine that
        // receives values and answers them, both nested in the task.
        let items: Vec<u32> = cogen::generator(|co| {
            for i in 0..3 {
                sleep(Duration::from_millis(1));
                co.suspend(i);
            }
        })
        .collect();
        let mut doubler = Coroutine::<u32, u32, &'static str>::new(|co, mut n| {
            for _ in 0..3 {
                yield_now();
                n = co.suspend(n * 2);
            }
            "done"
        });
        let mut out = Vec::new();
        for i in items {
            match doubler.resume(i).unwrap() {
                CoroutineResult::Yield(n) => out.push(n),
                CoroutineResult::Return(_) => unreachable!("three values"),
            }
        }
        match doubler.resume(0).unwrap() {
            CoroutineResult::Return(r) => (out, r),
            CoroutineResult::Yield(_) => unreachable!("three values"),
        }
    });
    ev.run().unwrap();
    assert_eq!(h.join().unwrap(), (vec![0, 2, 4], "done"));
}

/// The composition the loop's users asked for: a three-stage pipeline inside
/// a task whose source is a channel fed by another task, with a stage that
/// sleeps and reads a file, and a sink that sends its results on.
#[test]
fn a_pipeline_inside_a_task_reads_a_channel_sleeps_and_reads_a_file() {
    let dir = std::env::temp_dir().join(format!("cogen-nested-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("factor.txt");
    std::fs::write(&path, "10").unwrap();

    let ev = EventLoop::new();
    let (tx, rx) = channel::<u32>(1);
    let (out_tx, out_rx) = channel::<u32>(1);
    ev.spawn(move || {
        for i in 1..=5 {
            tx.send(i).unwrap();
            yield_now();
        }
    });
    let consumer = ev.spawn(move || out_rx.iter().collect::<Vec<_>>());
    let pipeline = ev.spawn(move || {
        let sink = Sink::new("forward", move |items| {
            let mut n = 0;
            for item in items {
                out_tx.send(item).unwrap();
                n += 1;
            }
            n
        });
        let stream = source(rx) // parks the task while the channel is empty
            .stage("slow", |co, up| {
                for n in up {
                    sleep(Duration::from_millis(1));
                    co.suspend(n);
                }
            })
            .stage("scale", move |co, up| {
                let factor: u32 = el::fs::read_to_string(&path)?.trim().parse()?;
                for n in up {
                    co.suspend(n * factor);
                }
                Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
            })
            .stage("odd", |co, up| {
                for n in up {
                    if (n / 10) % 2 == 1 {
                        co.suspend(n + 1);
                    }
                }
            });
        cogen::pipeline::Push::feed(sink, stream).unwrap()
    });
    ev.run().unwrap();
    assert_eq!(pipeline.join().unwrap(), 3);
    assert_eq!(consumer.join().unwrap(), [11, 31, 51]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn cancelling_a_task_parked_deep_in_a_chain_drops_everything_once() {
    for depth in 1..4 {
        let ev = EventLoop::new();
        let drops = DropCounter::new();
        let (tx, rx) = channel::<()>(1);
        let d = drops.clone();
        let h = ev.spawn(move || {
            let _outer = d.token();
            nested(depth, &mut || {
                let _inner = d.token();
                rx.recv().unwrap(); // never comes
            });
            unreachable!("cancelled while parked");
        });
        assert!(ev.try_tick());
        assert_eq!(drops.live(), 2);
        h.cancel();
        assert_eq!((drops.count(), drops.live()), (2, 0), "depth {depth}");
        let err = h.join().unwrap_err();
        assert!(err.is_cancelled());
        // The channel is free for another receiver: nothing was left behind.
        drop(tx);
    }
}

#[test]
fn dropping_the_loop_unwinds_chains_parked_in_nested_coroutines() {
    let drops = DropCounter::new();
    {
        let ev = EventLoop::new();
        for _ in 0..3 {
            let d = drops.clone();
            ev.spawn(move || {
                let _outer = d.token();
                nested(2, &mut || {
                    let _inner = d.token();
                    sleep(Duration::from_secs(3600));
                })
            });
        }
        while ev.try_tick() {}
        assert_eq!(drops.live(), 6);
    }
    assert_eq!((drops.count(), drops.live()), (6, 0));
}

#[test]
fn a_time_limit_outside_the_chain_ends_a_wait_inside_it() {
    let ev = EventLoop::new();
    let drops = DropCounter::new();
    let d = drops.clone();
    let h = ev.spawn(move || {
        let (_tx, rx) = channel::<u32>(1);
        let limited = timeout(Duration::from_millis(5), || {
            nested(3, &mut || {
                let _inner = d.token();
                // `cogen::catch_unwind` does not swallow the time limit.
                cogen::catch_unwind(std::panic::AssertUnwindSafe(|| rx.recv())).map(|r| r.ok())
            })
        });
        (limited.is_err(), d.live())
    });
    ev.run().unwrap();
    assert_eq!(h.join().unwrap(), (true, 0));
    assert_eq!(drops.count(), 1);
}

#[test]
fn a_time_limit_inside_the_chain_is_caught_there() {
    let ev = EventLoop::new();
    let h = ev.spawn(|| {
        nested(2, &mut || {
            let (_tx, rx) = channel::<u32>(1);
            let first = timeout(Duration::from_millis(1), || rx.recv()).is_err();
            // The chain goes on waiting normally after the scope ended.
            sleep(Duration::from_millis(1));
            first
        })
    });
    ev.run().unwrap();
    assert!(h.join().unwrap());
}

#[test]
fn a_nested_coroutine_that_panics_after_a_wait_reports_to_its_resumer() {
    let ev = EventLoop::new();
    let h = ev.spawn(|| {
        let mut co = Coroutine::<(), (), ()>::new(|_, ()| {
            yield_now();
            panic!("boom after a wait");
        });
        let err = co.resume(()).unwrap_err();
        // The task itself goes on, and can still wait.
        yield_now();
        err.panic().unwrap().message().to_string()
    });
    ev.run().unwrap();
    assert_eq!(h.join().unwrap(), "boom after a wait");
}

#[test]
fn a_chain_parked_on_a_channel_nobody_feeds_is_a_deadlock() {
    let ev = EventLoop::new();
    let (tx, rx) = channel::<u32>(1);
    let h = ev.spawn(move || nested(2, &mut || rx.recv().ok()));
    let err = ev.run().unwrap_err();
    assert!(err.is_deadlock(), "{err}");
    assert_eq!(err.stuck_tasks().len(), 1);
    // Feeding it afterwards resumes the chain where it waited.
    tx.try_send(7).unwrap();
    ev.run().unwrap();
    assert_eq!(h.join().unwrap(), Some(7));
}

#[test]
fn nested_waits_still_need_a_stackful_task() {
    let ev = EventLoop::new();
    let h = ev.spawn_future(async {
        let mut co = Coroutine::<(), (), ()>::new(|_, ()| yield_now());
        match co.resume(()) {
            Err(e) => e.panic().unwrap().message().to_string(),
            Ok(_) => "no panic".into(),
        }
    });
    ev.run().unwrap();
    let msg = h.join().unwrap();
    assert!(msg.contains("inside a future or stackless task"), "{msg}");
}

/// A `timeout` around a pull whose deadline passes during a wait inside the
/// stage: the expiry's unwinding crosses the stage and leaves it dead,
/// unfinished. The next pull says so, once, rather than end the stream as
/// if it were complete; the stage's result is failed.
#[test]
fn a_stage_cut_short_by_a_time_limit_reports_it_instead_of_ending_cleanly() {
    let ev = EventLoop::new();
    let h = ev.spawn(|| {
        let (_tx, rx) = channel::<u32>(1); // nobody sends
        let (mut p, result) = source(rx).stage_returning("pass", |co, up| {
            for x in up {
                co.suspend(x);
            }
            7
        });
        let cut = timeout(Duration::from_millis(1), || p.next());
        let error = p.next().map(|item| item.unwrap_err());
        (cut.is_err(), error, p.next().is_none(), result.state())
    });
    ev.run().unwrap();
    let (cut, error, then_ends, state) = h.join().unwrap();
    assert!(cut);
    let error = error.expect("an error, not the end of the stream");
    assert_eq!(error.stage(), "pass");
    let cause = std::error::Error::source(&error).unwrap().to_string();
    assert!(cause.starts_with("the stage died unfinished"), "{cause}");
    assert!(then_ends, "reported once");
    assert_eq!(state, cogen::pipeline::ResultState::Failed);
}

/// The same for a sink: a `timeout` around a send whose deadline passes
/// during a wait in the consumer leaves it dead without a result. It is no
/// longer open, and finishing it reports why.
#[test]
fn a_sink_cut_short_by_a_time_limit_is_closed_and_says_why() {
    use cogen::pipeline::Push;
    let ev = EventLoop::new();
    let h = ev.spawn(|| {
        let (_tx, rx) = channel::<u32>(1); // nobody sends
        let mut sink = Sink::new("waits", move |items| {
            for _ in items {
                let _ = rx.recv();
            }
        });
        let cut = timeout(Duration::from_millis(1), || sink.send(1u32));
        let open = sink.is_open();
        let sent = sink.send(2);
        (cut.is_err(), open, sent, sink.finish().unwrap_err())
    });
    ev.run().unwrap();
    let (cut, open, sent, error) = h.join().unwrap();
    assert!(cut);
    assert!(!open && !sent);
    assert_eq!(error.stage(), "waits");
    let cause = std::error::Error::source(&error).unwrap().to_string();
    assert!(cause.starts_with("the consumer died unfinished"), "{cause}");
}

/// The stage's upstream failed, and the stage, flushing after its input
/// ended, is then cut short by a `timeout`: the upstream's error is what
/// the consumer gets, not the stage's death.
#[test]
fn an_upstream_error_comes_first_when_the_stage_is_then_cut_short() {
    let ev = EventLoop::new();
    let h = ev.spawn(|| {
        let (_tx, rx) = channel::<u32>(1); // nobody sends
        let up = vec![
            Ok(1u32),
            Err(cogen::pipeline::StageError::new("source", "bad input")),
        ]
        .into_iter();
        let mut stage = up.stage("flush", move |co, up| {
            for x in up {
                co.suspend(x);
            }
            let _ = rx.recv(); // flushing after the input ended: waits
        });
        assert_eq!(stage.next().unwrap().unwrap(), 1);
        let cut = timeout(Duration::from_millis(1), || stage.next().is_some());
        let after: Vec<_> = stage
            .by_ref()
            .map(|r| r.map_err(|e| e.stage().to_owned()))
            .collect();
        (cut.is_err(), after)
    });
    ev.run().unwrap();
    let (cut, after) = h.join().unwrap();
    assert!(cut);
    assert_eq!(after, vec![Err("source".to_owned())]);
}
