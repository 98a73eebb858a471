//! Pipelines at their edges: a reader that fails after some bytes, items
//! discarded after an upstream failure whose drop panics, waits in the
//! destructors of never-started stages and sinks cut short by a time limit
//! or a cancellation, and scoped, shared, nested and moved stages.
#![cfg_attr(cogen_nightly, feature(coroutines, stmt_expr_attributes))]

use std::cell::{Cell, RefCell};
use std::io::{self, Read};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::time::Duration;

use cogen::event_loop::{EventLoop, Receiver, channel, sleep, timeout, yield_now};
use cogen::pipeline::{
    self, PipelineExt, PipelineItem, Push, Sink, StageError, read_chunks, source, tee,
};

use std::sync::Mutex;

#[cfg(cogen_nightly)]
#[path = "nightly/pipeline_edges.rs"]
mod nightly;

/// Addresses of the values [`leak`] leaked.
static LEAKED: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// `mem::forget`, for a test: `value` is never dropped, and its memory stays
/// reachable from a static, so that LeakSanitizer (on under ASan) does not
/// report the leak that forgetting is.
fn leak<T>(value: T) {
    let address = Box::into_raw(Box::new(value)) as usize;
    LEAKED.lock().unwrap().push(address);
}

/// Exits with a message if the returned sender is not dropped within
/// 60 s: a hang fails the test instead of stalling the run.
fn watchdog(name: &'static str) -> std::sync::mpsc::Sender<()> {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
            rx.recv_timeout(Duration::from_secs(60))
        {
            eprintln!("WATCHDOG: {name} still running after 60 s: hang");
            std::process::exit(99);
        }
    });
    tx
}

/// A reader that hands out `good` bytes of `text`, then fails.
struct ThenFails {
    text: &'static [u8],
}

impl Read for ThenFails {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.text.is_empty() {
            return Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset"));
        }
        let n = buf.len().min(self.text.len());
        buf[..n].copy_from_slice(&self.text[..n]);
        self.text = &self.text[n..];
        Ok(n)
    }
}

#[test]
fn read_chunks_hands_on_the_bytes_read_before_an_error() {
    let lines: Vec<Result<String, String>> = read_chunks(
        ThenFails {
            text: b"GET /a\nGET /b\n",
        },
        64,
    )
    .lines()
    .map(|r| r.map_err(|e| e.stage().to_owned()))
    .collect();
    // Both lines were read whole before the connection reset.
    assert_eq!(
        lines,
        [
            Ok("GET /a".to_owned()),
            Ok("GET /b".to_owned()),
            Err("read".to_owned())
        ]
    );
}

/// An item whose drop panics when armed (a "drop bomb": must be consumed).
struct MustUse(u32, bool);

impl Drop for MustUse {
    fn drop(&mut self) {
        if self.1 && !std::thread::panicking() {
            panic!("MustUse({}) dropped unused", self.0);
        }
    }
}

#[test]
fn a_discarded_item_that_panics_on_drop_does_not_lose_the_upstream_error() {
    let up = vec![Ok(1u32), Err(StageError::new("source", "bad input"))].into_iter();
    let mut p = up.stage("flush", |co, up| {
        for x in up {
            co.suspend(MustUse(x, false));
        }
        // Flushing after its input ended: an item that must not be dropped.
        co.suspend(MustUse(99, true));
    });
    assert_eq!(p.next().unwrap().unwrap().0, 1);
    let second = catch_unwind(AssertUnwindSafe(|| {
        p.next()
            .map(|r| r.map(|m| m.0).map_err(|e| e.stage().to_owned()))
    }));
    let third = p.next().map(|r| r.map(|m| m.0).map_err(|e| e.to_string()));
    assert!(
        matches!(second, Ok(Some(Err(ref s))) if s == "source"),
        "expected the upstream's error as a value; got a panic? {} ; then {third:?}",
        second.is_err()
    );
}

/// Waits on its channel when dropped (a guard that flushes or acknowledges).
struct WaitsOnDrop(Option<Receiver<u32>>);

impl Drop for WaitsOnDrop {
    fn drop(&mut self) {
        if let Some(rx) = self.0.take() {
            let _ = rx.recv();
        }
    }
}

#[test]
fn a_task_cancelled_while_waiting_in_the_drop_of_a_never_started_stage_stops() {
    let _w = watchdog("bug4");
    let ev = EventLoop::new();
    let log = Rc::new(RefCell::new(Vec::<&'static str>::new()));
    let (tx, rx) = channel::<u32>(1);
    let l = log.clone();
    let victim = ev.spawn(move || {
        let guard = WaitsOnDrop(Some(rx));
        let stage = source(0..3u32).stage("never pulled", move |co, up| {
            let _g = &guard;
            for x in up {
                co.suspend(x);
            }
        });
        l.borrow_mut().push("victim: dropping the unstarted stage");
        drop(stage); // its body's capture waits in its Drop
        l.borrow_mut().push("victim: ran on after the drop");
    });
    let l = log.clone();
    ev.spawn(move || {
        yield_now();
        yield_now();
        l.borrow_mut().push("canceller: cancel");
        victim.cancel();
        l.borrow_mut().push("canceller: cancelled");
        let joined = victim.join();
        l.borrow_mut()
            .push(if matches!(joined, Err(ref e) if e.is_cancelled()) {
                "canceller: joined cancelled"
            } else {
                "canceller: joined something else"
            });
        drop(tx);
    });
    let run = ev.run();
    let log = log.borrow().clone();
    eprintln!("{log:?} {run:?}");
    assert!(
        !log.contains(&"victim: ran on after the drop"),
        "a cancelled task ran on: {log:?}"
    );
}

#[test]
fn a_time_limit_expiring_in_the_drop_of_a_never_started_stage_ends_the_wait() {
    let _w = watchdog("bug4b");
    let ev = EventLoop::new();
    let h = ev.spawn(move || {
        let (tx, rx) = channel::<u32>(1);
        let ran_on = Rc::new(Cell::new(false));
        let r = ran_on.clone();
        let result = timeout(Duration::from_millis(1), move || {
            let guard = WaitsOnDrop(Some(rx));
            let stage = source(0..3u32).stage("never pulled", move |co, up| {
                let _g = &guard;
                for x in up {
                    co.suspend(x);
                }
            });
            drop(stage);
            r.set(true);
        });
        drop(tx);
        (result.is_err(), ran_on.get())
    });
    ev.run().unwrap();
    let (elapsed, ran_on) = h.join().unwrap();
    assert!(
        elapsed && !ran_on,
        "elapsed: {elapsed}, code after the cut-short wait ran: {ran_on}"
    );
}

#[test]
fn scoped_stage_waiting_in_a_task_then_cancelled() {
    let _w = watchdog("probe_scoped_cancel");
    let ev = EventLoop::new();
    let drops = Rc::new(Cell::new(0));
    let (tx, rx) = channel::<u32>(1);
    let d = drops.clone();
    let victim = ev.spawn(move || {
        let mut local = Vec::new();
        pipeline::scope(|s| {
            let mut p = source(rx).stage_in(s, "waits", |co, up| {
                struct D(Rc<Cell<u32>>);
                impl Drop for D {
                    fn drop(&mut self) {
                        self.0.set(self.0.get() + 1);
                    }
                }
                let _d = D(d.clone());
                for x in up {
                    local.push(x);
                    co.suspend(x);
                }
            });
            let _ = p.next();
            let _ = p.next();
        });
        local
    });
    ev.spawn(move || {
        tx.send(1).unwrap();
        yield_now();
        yield_now();
        victim.cancel();
        assert!(victim.join().unwrap_err().is_cancelled());
        drop(tx);
    });
    ev.run().unwrap();
    assert_eq!(drops.get(), 1);
}

#[test]
fn scoped_stage_waiting_and_loop_dropped() {
    let _w = watchdog("probe_loop_dropped");
    let ev = EventLoop::new();
    let drops = Rc::new(Cell::new(0));
    let (tx, rx) = channel::<u32>(1);
    let d = drops.clone();
    let keep = Rc::new(RefCell::new(Some(tx)));
    let _h = ev.spawn(move || {
        let mut local = 0;
        pipeline::scope(|s| {
            let p = source(rx).stage_in(s, "waits", |co, up| {
                struct D(Rc<Cell<u32>>);
                impl Drop for D {
                    fn drop(&mut self) {
                        self.0.set(self.0.get() + 1);
                    }
                }
                let _d = D(d.clone());
                for x in up {
                    local += x;
                    co.suspend(x);
                }
            });
            // Forget it: the scope must still close it.
            let mut p = Box::new(p);
            let _ = p.next();
            leak(p);
        });
        local
    });
    let _ = ev.run();
    drop(ev);
    drop(keep);
    assert_eq!(drops.get(), 1);
}

#[test]
fn timeout_around_a_scoped_pull_then_scope_ends() {
    let _w = watchdog("probe_timeout_scoped");
    let ev = EventLoop::new();
    let h = ev.spawn(|| {
        let (_tx, rx) = channel::<u32>(1);
        let mut seen = Vec::new();
        let out = pipeline::scope(|s| {
            let mut p = source(rx).stage_in(s, "waits", |co, up| {
                for x in up {
                    seen.push(x);
                    co.suspend(x);
                }
            });
            let cut = timeout(Duration::from_millis(1), || p.next());
            let next = p.next().map(|r| r.map_err(|e| e.stage().to_owned()));
            (cut.is_err(), next, p.next().is_none())
        });
        (out, seen)
    });
    ev.run().unwrap();
    let ((cut, next, end), seen) = h.join().unwrap();
    assert!(cut && end);
    assert_eq!(next, Some(Err("waits".to_owned())));
    assert!(seen.is_empty());
}

#[test]
fn upstream_moved_to_another_task_and_pulled_there() {
    let _w = watchdog("probe_upstream_other_task");
    let ev = EventLoop::new();
    type Slot = Rc<RefCell<Option<Box<dyn Iterator<Item = u32>>>>>;
    let slot: Slot = Rc::new(RefCell::new(None));
    let keep = slot.clone();
    let h1 = ev.spawn(move || {
        let mut p = source(0..5u32)
            .stage("waits", |co, up| {
                for x in up {
                    sleep(Duration::from_millis(1));
                    co.suspend(x);
                }
            })
            .stage("gives away", move |co: &cogen::Yielder<(), u32>, mut up| {
                co.suspend(up.next().unwrap());
                *keep.borrow_mut() = Some(Box::new(up));
            });
        let v: Vec<_> = p.by_ref().collect();
        v.len()
    });
    let s = slot.clone();
    let h2 = ev.spawn(move || {
        loop {
            if let Some(mut up) = s.borrow_mut().take() {
                return up.by_ref().collect::<Vec<_>>();
            }
            yield_now();
        }
    });
    ev.run().unwrap();
    assert_eq!(h1.join().unwrap(), 1);
    assert_eq!(h2.join().unwrap(), [1, 2, 3, 4]);
}

#[test]
fn tee_sinks_dropped_mid_stream_with_guard() {
    let drops = Rc::new(Cell::new(0));
    struct D(Rc<Cell<u32>>);
    impl Drop for D {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }
    let (d1, d2) = (drops.clone(), drops.clone());
    let a = Sink::new("a", move |items| {
        let _d = D(d1);
        items.count()
    });
    let b = Sink::new("b", move |mut items| {
        let _d = D(d2);
        items.next();
        panic!("b gives up")
    });
    let mut t = tee(a, b);
    assert!(t.send(1u32));
    assert!(t.send(2));
    assert!(t.send(3));
    drop(t);
    assert_eq!(drops.get(), 2);
}

#[test]
fn nested_pipeline_inside_a_stage_fails() {
    let items: Vec<PipelineItem<u32>> = source(0..3u32)
        .stage("outer", |co, up| {
            for x in up {
                let inner = source(0..x)
                    .stage("inner", |co, up| {
                        for y in up {
                            if y == 1 {
                                panic!("inner boom");
                            }
                            co.suspend(y);
                        }
                    })
                    .collect::<Result<Vec<_>, _>>();
                match inner {
                    Ok(v) => co.suspend(v.len() as u32),
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        })
        .collect();
    assert_eq!(items.len(), 3);
    let e = items[2].as_ref().unwrap_err();
    assert_eq!(e.stage(), "outer");
}

#[test]
fn body_returns_err_after_upstream_failed() {
    let up = vec![Ok(1u32), Err(StageError::new("source", "bad"))].into_iter();
    let items: Vec<_> = up
        .stage("own error", |co, up| {
            for x in up {
                co.suspend(x);
            }
            Err::<(), _>("mine")
        })
        .map(|r| r.map_err(|e| e.stage().to_owned()))
        .collect();
    assert_eq!(items, [Ok(1), Err("source".to_owned())]);
}

#[test]
fn a_forgotten_scoped_stage_chain_is_closed_by_its_scope() {
    let mut total = 0;
    let mut log = Vec::new();
    pipeline::scope(|s| {
        let a = source(0..100u32).stage_in(s, "a", |co, up| {
            for x in up {
                total += x;
                co.suspend(x);
            }
        });
        let mut b = a.stage_in(s, "b", |co, up| {
            for x in up {
                log.push(x);
                co.suspend(x);
            }
        });
        b.next();
        b.next();
        leak(b);
    });
    assert_eq!(total, 1);
    assert_eq!(log, [0, 1]);
}

#[test]
fn spawned_dropped_with_the_loop() {
    let ev = EventLoop::new();
    let (tx, rx) = channel::<u32>(1);
    let keep = Rc::new(RefCell::new(Some(tx)));
    let _h = ev.spawn(move || {
        use cogen::event_loop::SpawnStage;
        let mut p = source(rx)
            .stage("pass", |co, up| {
                for x in up {
                    co.suspend(x);
                }
            })
            .spawn_stage(2);
        p.next()
    });
    // The stage waits on `rx`, whose sender is kept: a deadlock, reported.
    assert!(ev.run().unwrap_err().is_deadlock());
    // Dropping the loop cancels the task and its spawned half; the sender
    // outlives them both.
    drop(ev);
    assert!(keep.borrow().is_some());
    drop(keep);
}

#[test]
fn feed_a_vec_of_sinks_with_a_failing_pipeline() {
    let sinks: Vec<_> = (0..3)
        .map(|i| Sink::new(format!("s{i}"), |items| items.sum::<u32>()))
        .collect();
    let up = vec![Ok(1u32), Err(StageError::new("source", "bad"))].into_iter();
    let r = sinks.feed(up.stage("x", |co, up| {
        up.for_each(|x| {
            co.suspend(x);
        })
    }));
    assert_eq!(r.unwrap_err().stage(), "source");
}

#[test]
fn a_time_limit_expiring_in_the_close_of_a_forgotten_never_started_scoped_stage_ends_the_wait() {
    let _w = watchdog("bug4c");
    let ev = EventLoop::new();
    let h = ev.spawn(move || {
        let (tx, rx) = channel::<u32>(1);
        let mut ran_on = false;
        let result = timeout(Duration::from_millis(1), || {
            let guard = WaitsOnDrop(Some(rx));
            pipeline::scope(|s| {
                let stage = source(0..3u32).stage_in(s, "never pulled", move |co, up| {
                    let _g = &guard;
                    for x in up {
                        co.suspend(x);
                    }
                });
                leak(stage); // closed by the scope: its capture waits
            });
            ran_on = true;
        });
        drop(tx);
        (result.is_err(), ran_on)
    });
    ev.run().unwrap();
    let (elapsed, ran_on) = h.join().unwrap();
    assert!(
        elapsed && !ran_on,
        "elapsed: {elapsed}, code after the cut-short wait ran: {ran_on}"
    );
}

#[test]
fn a_task_cancelled_while_waiting_in_the_drop_of_an_unstarted_sink_stops() {
    let _w = watchdog("bug4d");
    let ev = EventLoop::new();
    let ran_on = Rc::new(Cell::new(false));
    let (tx, rx) = channel::<u32>(1);
    let r = ran_on.clone();
    let victim = ev.spawn(move || {
        let guard = WaitsOnDrop(Some(rx));
        let sink = Sink::new(
            "never fed",
            move |items: cogen::pipeline::SinkInput<'_, u32>| {
                let _g = &guard;
                items.count()
            },
        );
        drop(sink);
        r.set(true);
    });
    ev.spawn(move || {
        yield_now();
        victim.cancel();
        drop(tx);
    });
    ev.run().unwrap();
    assert!(
        !ran_on.get(),
        "the cancelled task ran on after the sink's drop"
    );
}

#[test]
fn nested_scopes_chain() {
    let mut outer_seen = Vec::new();
    let mut inner_seen = Vec::new();
    pipeline::scope(|outer| {
        let a = source(0..10u32).stage_in(outer, "a", |co, up| {
            for x in up {
                outer_seen.push(x);
                co.suspend(x);
            }
        });
        pipeline::scope(|inner| {
            let mut b = a.stage_in(inner, "b", |co, up| {
                for x in up {
                    inner_seen.push(x);
                    co.suspend(x);
                }
            });
            b.next();
            b.next();
            leak(b);
        });
    });
    assert_eq!(outer_seen, [0, 1]);
    assert_eq!(inner_seen, [0, 1]);
}

#[test]
fn scoped_stage_suspends_enclosing_coroutine_then_moved_and_dropped() {
    use cogen::Coroutine;
    let mut g = Coroutine::<(), u32, ()>::new(|g, ()| {
        let mut local = vec![1u32];
        pipeline::scope(|s| {
            let mut p = source(0..5u32).stage_in(s, "x", |co, up| {
                for x in up {
                    g.suspend(x + 100); // suspends the enclosing coroutine
                    local.push(x);
                    co.suspend(x);
                }
            });
            while let Some(Ok(_)) = p.next() {}
        });
    });
    assert_eq!(g.resume(()).unwrap().as_yield(), Some(100));
    let mut moved = Box::new(g);
    assert_eq!(moved.resume(()).unwrap().as_yield(), Some(101));
    drop(moved);
}

#[test]
fn stage_shared_between_tasks_parked_under_one_cancelled() {
    let _w = watchdog("probe_shared_between_tasks");
    let ev = EventLoop::new();
    let (tx, rx) = channel::<u32>(1);
    type Shared = Rc<RefCell<Box<dyn Iterator<Item = PipelineItem<u32>>>>>;
    let stage: Shared = Rc::new(RefCell::new(Box::new(source(rx).stage(
        "relay",
        |co, up| {
            for x in up {
                co.suspend(x);
            }
        },
    ))));
    let s1 = stage.clone();
    let t1 = ev.spawn(move || {
        yield_now();
        s1.borrow_mut().next().map(|r| r.map_err(|e| e.to_string()))
    });
    let s2 = stage.clone();
    let t2 = ev.spawn(move || {
        yield_now();
        yield_now();
        s2.borrow_mut().next().map(|r| r.map_err(|e| e.to_string()))
    });
    let s3 = stage.clone();
    let t3 = ev.spawn(move || {
        tx.send(7).unwrap();
        yield_now();
        yield_now();
        yield_now();
        yield_now();
        // t1 got 7; t2 is parked inside the stage now.
        t2.cancel();
        let after = s3.borrow_mut().next().map(|r| r.map_err(|e| e.to_string()));
        let end = s3.borrow_mut().next().is_none();
        drop(tx);
        (t2.join().is_err(), after, end)
    });
    ev.run().unwrap();
    assert_eq!(t1.join().unwrap(), Some(Ok(7)));
    let (t2_cancelled, after, end) = t3.join().unwrap();
    assert!(t2_cancelled);
    eprintln!("after the cancel: {after:?}");
    assert!(matches!(after, Some(Err(_))), "{after:?}");
    assert!(end);
}
