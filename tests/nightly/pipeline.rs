//! The nightly half of `tests/pipeline.rs`: stackless stages and sinks.
//!
//! Kept in its own file because `yield` and `#[coroutine]` are rejected by
//! the parser on stable Rust even inside code that `cfg` removes; the parent
//! only declares this module with the `nightly` feature.

use std::ops::{Coroutine as StdCoroutine, CoroutineState};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;

use cogen::Stackless;

use super::*;

/// Panics when dropped, after its token counts that drop.
struct PanicsOnDrop(Option<DropToken>);

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        drop(self.0.take());
        panic!("kept value");
    }
}

/// A hand-written `std::ops::Coroutine` that keeps a value after its inner
/// coroutine returned, until the finished coroutine is dropped.
struct KeepsAfterReturn<C> {
    co: C,
    _kept: PanicsOnDrop,
}

impl<R, C: StdCoroutine<R> + Unpin> StdCoroutine<R> for KeepsAfterReturn<C> {
    type Yield = C::Yield;
    type Return = C::Return;

    fn resume(self: Pin<&mut Self>, arg: R) -> CoroutineState<C::Yield, C::Return> {
        Pin::new(&mut self.get_mut().co).resume(arg)
    }
}

#[test]
fn a_stage_whose_finished_coroutine_panics_on_drop_fails_with_a_stage_error() {
    let drops = DropCounter::new();
    let kept = drops.token();
    let pipeline = source(1..=3_u32)
        .stage_with("keeper", move |up| {
            Stackless::new(KeepsAfterReturn {
                co: #[coroutine]
                move || {
                    for x in up {
                        yield x;
                    }
                },
                _kept: PanicsOnDrop(Some(kept)),
            })
        })
        .stage("double", |co, up| {
            for x in up {
                co.suspend(x * 2);
            }
        });
    // The pipeline does not panic: the last item is the stage's error.
    let items = catch_unwind(AssertUnwindSafe(|| pipeline.collect::<Vec<_>>()))
        .expect("a pipeline hands on a stage's panic, it does not raise it");
    assert_eq!(items.len(), 4);
    assert_eq!(*items[2].as_ref().unwrap(), 6);
    let error = items[3].as_ref().unwrap_err();
    assert_eq!(error.stage(), "keeper");
    assert!(error.is_panic());
    assert_eq!(error.panic().unwrap().message(), "kept value");
    assert_eq!(drops.count(), 1);
}

#[test]
fn a_stage_that_panics_and_whose_remains_panic_on_drop_reports_its_own_panic() {
    // The body panics; dropping what is left of the coroutine panics too.
    // The stage fails with the body's panic, the second one is lost, and
    // neither comes out of the consumer's `next`.
    let drops = DropCounter::new();
    let kept = drops.token();
    let pipeline = source(1..=3_u32).stage_with("keeper", move |up| {
        Stackless::new(KeepsAfterReturn {
            co: #[coroutine]
            move || {
                for x in up {
                    if x == 2 {
                        panic!("body panic");
                    }
                    yield x;
                }
            },
            _kept: PanicsOnDrop(Some(kept)),
        })
    });
    let items = catch_unwind(AssertUnwindSafe(|| pipeline.collect::<Vec<_>>()))
        .expect("a pipeline hands on a stage's panic, it does not raise it");
    assert_eq!(items.len(), 2);
    assert_eq!(*items[0].as_ref().unwrap(), 1);
    let error = items[1].as_ref().unwrap_err();
    assert_eq!(error.stage(), "keeper");
    assert_eq!(error.panic().unwrap().message(), "body panic");
    assert_eq!(drops.count(), 1);

    // The same through `Stackless` itself: `resume` reports the body's
    // panic and does not panic; `close` reports it once.
    let drops = DropCounter::new();
    let mut co = Stackless::new(KeepsAfterReturn {
        co: #[coroutine]
        || {
            yield 1;
            panic!("body panic");
        },
        _kept: PanicsOnDrop(Some(drops.token())),
    });
    assert_eq!(co.resume(()).unwrap().as_yield(), Some(1));
    let resumed =
        catch_unwind(AssertUnwindSafe(|| co.resume(()))).expect("resume never panics itself");
    match resumed {
        Err(cogen::ResumeError::Panicked(panic)) => assert_eq!(panic.message(), "body panic"),
        other => panic!("expected the body's panic, got {other:?}"),
    }
    assert!(co.is_dead());
    assert_eq!(drops.count(), 1);
    assert_eq!(co.close().unwrap_err().message(), "body panic");
    assert!(co.close().is_ok());
}

#[test]
fn a_sink_whose_finished_coroutine_panics_on_drop_fails_with_a_stage_error() {
    let drops = DropCounter::new();
    let sink = Sink::from_resumable(
        "keeper",
        Stackless::new(KeepsAfterReturn {
            co: #[coroutine]
            |mut item: Option<u32>| {
                let mut sum = 0;
                while let Some(x) = item {
                    sum += x;
                    item = yield;
                }
                sum
            },
            _kept: PanicsOnDrop(Some(drops.token())),
        }),
    );
    let result = catch_unwind(AssertUnwindSafe(|| sink.feed(source(1..=3_u32))))
        .expect("a sink hands on its consumer's panic, it does not raise it");
    let error = result.unwrap_err();
    assert_eq!(error.stage(), "keeper");
    assert_eq!(error.panic().unwrap().message(), "kept value");
    assert_eq!(drops.count(), 1);
}

#[test]
fn stackful_and_stackless_stages_mix() {
    let out = source(1..=10u32)
        .stackless_stage("odd", |up| {
            #[coroutine]
            move || {
                for x in up {
                    if x % 2 == 1 {
                        yield x;
                    }
                }
            }
        })
        .stage("pairs", |co, up| {
            for x in up {
                co.suspend((x, x * 10));
            }
        })
        .stackless_stage("sum pairs", |up| {
            #[coroutine]
            move || {
                for (a, b) in up {
                    yield a + b;
                }
            }
        });
    assert_eq!(ok(out), [11, 33, 55, 77, 99]);
}

#[test]
fn dropping_a_mixed_pipeline_half_way_runs_every_destructor_once() {
    let guards = DropCounter::new();
    let (g1, g2, g3) = (guards.clone(), guards.clone(), guards.clone());
    let mut pipeline = source(0..u32::MAX)
        .stackless_stage("a", move |up| {
            #[coroutine]
            move || {
                let _guard = g1.token();
                for x in up {
                    yield x;
                }
            }
        })
        .stage("b", move |co, up| {
            let _guard = g2.token();
            for x in up {
                co.suspend(x);
            }
        })
        .stackless_stage("c", move |up| {
            #[coroutine]
            move || {
                let _guard = g3.token();
                for x in up {
                    yield x;
                }
            }
        });
    assert_eq!(pipeline.next().unwrap().unwrap(), 0);
    assert_eq!(pipeline.next().unwrap().unwrap(), 1);
    drop(pipeline);
    assert_eq!(guards.count(), 3);
}

#[test]
fn stackless_sinks_have_the_same_semantics() {
    let sum = Sink::stackless(
        "sum",
        #[coroutine]
        |mut item: Option<u64>| {
            let mut sum = 0;
            while let Some(x) = item {
                sum += x;
                item = yield;
            }
            sum
        },
    );
    let max = Sink::new("max", |items| items.max());
    let (sum, max) = tee(sum, max).feed(source(1..=10u64)).unwrap();
    assert_eq!((sum, max), (55, Some(10)));

    // A panic is named; a consumer that ignores the end is an error too.
    let mut bad = Sink::stackless(
        "bad",
        #[coroutine]
        |item: Option<u8>| {
            if item == Some(0) {
                panic!("zero");
            }
            yield;
        },
    );
    assert!(!bad.send(0));
    let error = bad.finish().unwrap_err();
    assert_eq!(error.to_string(), "stage 'bad' panicked");
    assert_eq!(error.panic().unwrap().message(), "zero");
    let deaf = Sink::stackless(
        "deaf",
        #[coroutine]
        |_: Option<u8>| loop {
            yield;
        },
    );
    let error = deaf.finish().unwrap_err();
    assert_eq!(error.stage(), "deaf");
    assert!(!error.is_panic());
}

/// Builds stage `i` of the property test as a stackless coroutine.
pub(crate) fn stackless_stage(
    up: Tracks,
    i: usize,
    kind: Kind,
    fault: Option<Fault>,
    guards: DropCounter,
) -> Tracks {
    Box::new(up.stackless_stage(format!("stage {i}"), move |up| {
        #[coroutine]
        move || {
            let _guard = guards.token();
            let mut held = None;
            let mut out = Vec::new();
            for (n, item) in up.enumerate() {
                if let Some(fault) = fault.filter(|f| f.at == n + 1) {
                    if fault.panics {
                        panic!("stage {i} panics");
                    }
                    return Err(format!("stage {i} fails"));
                }
                step(kind, item, &mut held, &mut out);
                for item in std::mem::take(&mut out) {
                    yield item;
                }
            }
            if let Some(item) = held {
                yield item;
            }
            Ok(())
        }
    }))
}
