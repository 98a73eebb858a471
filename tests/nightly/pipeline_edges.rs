//! The stackless half of `tests/pipeline_edges.rs` (feature `nightly`):
//! included only on a nightly compiler (`yield` does not parse on stable).

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::time::Duration;

use cogen::event_loop::{EventLoop, channel, sleep, timeout, yield_now};
use cogen::pipeline::{self, PipelineExt, StageError, source};

use super::{MustUse, WaitsOnDrop, leak, watchdog};

#[test]
fn a_discarded_item_of_a_stackless_stage_that_panics_on_drop_does_not_lose_the_upstream_error() {
    let up = vec![Ok(1u32), Err(StageError::new("source", "bad input"))].into_iter();
    let mut p = up.stackless_stage("flush", |up| {
        #[coroutine]
        move || {
            for x in up {
                yield MustUse(x, false);
            }
            yield MustUse(99, true);
        }
    });
    assert_eq!(p.next().unwrap().unwrap().0, 1);
    let second = catch_unwind(AssertUnwindSafe(|| {
        p.next()
            .map(|r| r.map(|m| m.0).map_err(|e| e.stage().to_owned()))
    }));
    let third = p.next().map(|r| r.map(|m| m.0).map_err(|e| e.to_string()));
    assert!(
        matches!(second, Ok(Some(Err(ref s))) if s == "source"),
        "panicked: {}; then {third:?}",
        second.is_err()
    );
}

#[test]
fn a_time_limit_expiring_while_a_stackless_stage_is_closed_keeps_the_upstream_error() {
    let _w = watchdog("bug3");
    let ev = EventLoop::new();
    let h = ev.spawn(|| {
        let (tx, rx) = channel::<u32>(1); // nobody sends
        let up = vec![Ok(1u32), Err(StageError::new("source", "bad input"))].into_iter();
        let mut p = up.stackless_stage("flush", move |up| {
            #[coroutine]
            move || {
                let _guard = WaitsOnDrop(Some(rx));
                for x in up {
                    yield x;
                }
                yield 99; // after its input ended
            }
        });
        assert_eq!(p.next().unwrap().unwrap(), 1);
        let cut = timeout(Duration::from_millis(1), || p.next().is_some());
        let after: Vec<_> = p
            .by_ref()
            .map(|r| {
                r.map_err(|e| {
                    let cause = std::error::Error::source(&e).unwrap().to_string();
                    (e.stage().to_owned(), cause)
                })
            })
            .collect();
        drop(tx);
        (cut.is_err(), after)
    });
    ev.run().unwrap();
    let (cut, after) = h.join().unwrap();
    assert!(cut);
    assert!(
        matches!(after.as_slice(), [Err((s, _))] if s == "source"),
        "the upstream's error should reach the consumer: {after:?}"
    );
}

#[test]
fn stackless_after_scoped_forgotten() {
    let mut seen = Vec::new();
    let text = String::from("borrowed");
    pipeline::scope(|s| {
        let a = source(0..10u32).stage_in(s, "a", |co, up| {
            for x in up {
                seen.push(x);
                co.suspend(x);
            }
        });
        let t = &text;
        let mut b = a.stackless_stage("b", move |up| {
            #[coroutine]
            move || {
                for x in up {
                    yield format!("{t}{x}");
                }
            }
        });
        assert_eq!(b.next().unwrap().unwrap(), "borrowed0");
        leak(b);
    });
    assert_eq!(seen, [0]);
}

#[test]
fn deep_mixed_pipeline_parked_innermost_then_cancelled_and_timed_out() {
    let _w = watchdog("probe_deep_mixed");
    let ev = EventLoop::new();
    let drops = Rc::new(Cell::new(0u32));
    struct D(Rc<Cell<u32>>);
    impl Drop for D {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }
    let (tx, rx) = channel::<u32>(1);
    let d = drops.clone();
    let victim = ev.spawn(move || {
        let (d1, d2, d3, d4) = (d.clone(), d.clone(), d.clone(), d.clone());
        let mut p = source(rx)
            .stage("a", move |co, up| {
                let _g = D(d1);
                for x in up {
                    co.suspend(x);
                }
            })
            .stackless_stage("b", move |up| {
                #[coroutine]
                move || {
                    let _g = D(d2);
                    for x in up {
                        yield x + 1;
                    }
                }
            })
            .stage("c", move |co, up| {
                let _g = D(d3);
                let mut inner = cogen::generator(move |g| {
                    let _g = D(d4);
                    for x in up {
                        g.suspend(x * 2);
                    }
                });
                for x in inner.by_ref() {
                    co.suspend(x);
                }
            });
        let first = p.next();
        // Cut short once (the whole chain dies unfinished) ...
        let cut = timeout(Duration::from_millis(1), || p.next());
        let after = p.next().map(|r| r.map_err(|e| e.stage().to_owned()));
        assert!(cut.is_err());
        assert_eq!(after, Some(Err("c".to_owned())));
        first
    });
    ev.spawn(move || {
        tx.send(1).unwrap();
        sleep(Duration::from_millis(20));
        drop(tx);
    });
    ev.run().unwrap();
    assert_eq!(victim.join().unwrap().unwrap().unwrap(), 4);
    assert_eq!(drops.get(), 4);

    // And cancelled while parked four stacks deep.
    let ev = EventLoop::new();
    let drops = Rc::new(Cell::new(0u32));
    let (tx, rx) = channel::<u32>(1);
    let d = drops.clone();
    let victim = ev.spawn(move || {
        let (d1, d2, d3) = (d.clone(), d.clone(), d.clone());
        let mut p = source(rx)
            .stage("a", move |co, up| {
                let _g = D(d1);
                for x in up {
                    co.suspend(x);
                }
            })
            .stackless_stage("b", move |up| {
                #[coroutine]
                move || {
                    let _g = D(d2);
                    for x in up {
                        yield x + 1;
                    }
                }
            })
            .stage("c", move |co, up| {
                let _g = D(d3);
                for x in up {
                    co.suspend(x);
                }
            });
        p.next()
    });
    ev.spawn(move || {
        yield_now();
        victim.cancel();
        assert!(victim.join().unwrap_err().is_cancelled());
        drop(tx);
    });
    ev.run().unwrap();
    assert_eq!(drops.get(), 3);
}
