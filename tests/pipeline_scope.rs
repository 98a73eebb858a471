//! Scoped pipelines (`pipeline::scope`, `stage_in`): stages that borrow from
//! the enclosing function, and every way safe code can try to make a stage
//! outlive those borrows: forgetting a stage (suspended, or never started,
//! or in an `Rc` cycle), panicking in the scope or in a stage while others
//! are suspended, a body that suspends inside `thread::scope`, a stage that
//! suspends the coroutine the scope runs in. Each test checks that every
//! body was closed, its destructors run once, before `scope` returned.
//! Run them under AddressSanitizer too (see the contributing notes).

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use cogen::pipeline::{self, PipelineExt, ResultState, source};
use cogen::{Coroutine, CoroutineResult};

mod support;
use support::DropCounter;

/// Addresses of the values [`leak`] leaked.
static LEAKED: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// `mem::forget`, for a test: `value` is never dropped. Its memory stays
/// reachable from a static, so that LeakSanitizer (on under ASan) does not
/// report the leak that forgetting is (a plain `mem::forget` passes the
/// same tests, and leaks the stage's small allocations).
fn leak<T>(value: T) {
    let address = Box::into_raw(Box::new(value)) as usize;
    LEAKED.lock().unwrap().push(address);
}

/// Runs its closure when dropped: a destructor on a stage's stack that
/// writes through a borrow of the enclosing function.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

#[test]
fn scoped_stages_borrow_locals_and_chain_after_static_ones() {
    let text = String::from("one two\nthree four five\nsix");
    let mut lengths = Vec::new();
    let mut words = 0;
    let prefix = String::from("#");
    let out: Vec<String> = pipeline::scope(|s| {
        source([text.clone().into_bytes()])
            .lines()
            .words()
            .stage_in(s, "count", |co, up| {
                for word in up {
                    words += 1;
                    co.suspend(word);
                }
            })
            .stage_in(s, "tag", |co, up| {
                for word in up {
                    lengths.push(word.len());
                    co.suspend(format!("{prefix}{word}"));
                }
            })
            .collect::<Result<_, _>>()
            .unwrap()
    });
    assert_eq!(out, ["#one", "#two", "#three", "#four", "#five", "#six"]);
    assert_eq!(words, 6);
    assert_eq!(lengths, [3, 3, 5, 4, 4, 3]);
}

#[test]
fn a_scoped_stage_reports_its_err_and_panic_like_any_stage() {
    let mut seen = 0;
    let (failed, panicked) = pipeline::scope(|s| {
        let failed: Vec<_> = source(["1", "x"])
            .stage_in(s, "parse", |co, up| {
                for text in up {
                    seen += 1;
                    co.suspend(text.parse::<u32>()?);
                }
                Ok::<(), std::num::ParseIntError>(())
            })
            .collect();
        let panicked: Vec<_> = source([1])
            .stage_in(s, "boom", |co, up| {
                if let Some(x) = up.into_iter().next() {
                    co.suspend(x);
                    panic!("boom");
                }
            })
            .collect();
        (failed, panicked)
    });
    assert_eq!(seen, 2);
    assert_eq!(failed.len(), 2);
    assert_eq!(failed[1].as_ref().unwrap_err().stage(), "parse");
    assert_eq!(panicked.len(), 2);
    assert!(panicked[1].as_ref().unwrap_err().is_panic());
}

#[test]
fn a_stage_dropped_half_way_is_closed_at_once() {
    let log = RefCell::new(Vec::new());
    pipeline::scope(|s| {
        let mut stage = source(1..=10).stage_in(s, "first", |co, up| {
            let _closed = OnDrop(|| log.borrow_mut().push("first closed"));
            up.for_each(|x| co.suspend(x));
        });
        assert_eq!(stage.next().unwrap().unwrap(), 1);
        drop(stage);
        log.borrow_mut().push("closure ends");
    });
    assert_eq!(*log.borrow(), ["first closed", "closure ends"]);
}

#[test]
fn a_forgotten_suspended_stage_is_closed_before_scope_returns() {
    let drops = DropCounter::new();
    // Boxed so that a write after `scope` returned would be a use after
    // free, which ASan reports.
    let log = Box::new(RefCell::new(Vec::new()));
    let mut total = Box::new(0);
    pipeline::scope(|s| {
        let token = drops.token();
        let mut stage = source(1..=10).stage_in(s, "sum", |co, up| {
            let _token = token;
            let _closed = OnDrop(|| log.borrow_mut().push("sum closed"));
            for x in up {
                *total += x;
                co.suspend(x);
            }
        });
        assert_eq!(stage.next().unwrap().unwrap(), 1);
        assert_eq!(stage.next().unwrap().unwrap(), 2);
        leak(stage);
        log.borrow_mut().push("closure ends");
    });
    assert_eq!(*log.borrow(), ["closure ends", "sum closed"]);
    assert_eq!(drops.live(), 0);
    assert_eq!(*total, 3);
    drop(log);
    drop(total);
}

#[test]
fn a_forgotten_never_started_stage_drops_its_body_before_scope_returns() {
    let drops = DropCounter::new();
    let dropped = Cell::new(false);
    pipeline::scope(|s| {
        let token = drops.token();
        let guard = OnDrop(|| dropped.set(true));
        let stage = source(1..=3).stage_in(s, "unstarted", move |co, up| {
            let _keep = (token, guard);
            up.for_each(|x| co.suspend(x));
        });
        leak(stage);
        assert_eq!(drops.live(), 1);
    });
    assert!(dropped.get());
    assert_eq!(drops.live(), 0);
}

#[test]
fn a_stage_in_an_rc_cycle_is_closed() {
    let drops = DropCounter::new();
    pipeline::scope(|s| {
        type Slot<'s> = Rc<RefCell<Option<Box<dyn Iterator<Item = u32> + 's>>>>;
        let slot: Slot<'_> = Rc::new(RefCell::new(None));
        let inside = slot.clone();
        let token = drops.token();
        let mut stage = source(1..=3)
            .stage_in(s, "cycle", move |co, up| {
                let _keep = (inside, token); // the stage holds the slot that holds it
                up.for_each(|x| co.suspend(x));
            })
            .map(Result::unwrap);
        assert_eq!(stage.next(), Some(1));
        *slot.borrow_mut() = Some(Box::new(stage));
    });
    assert_eq!(drops.live(), 0);
}

#[test]
fn a_body_suspended_inside_thread_scope_is_closed_before_its_borrows_end() {
    // The exploit of corosensei issue 27
    // (https://github.com/Amanieu/corosensei/issues/27), in safe code: a body suspends
    // inside `std::thread::scope` while a thread it spawned uses a borrow
    // of the enclosing function. Forgetting the stage must not let that
    // thread outlive the borrow: closing the stage unwinds the thread
    // scope, which stops and joins the thread.
    let ticks = Box::new(AtomicUsize::new(0));
    let stop = Box::new(AtomicBool::new(false));
    pipeline::scope(|s| {
        let mut stage = source(1..=10).stage_in(s, "threads", |co, up| {
            std::thread::scope(|threads| {
                threads.spawn(|| {
                    while !stop.load(Ordering::Acquire) {
                        ticks.fetch_add(1, Ordering::Relaxed);
                        std::thread::yield_now();
                    }
                });
                let _stop = OnDrop(|| stop.store(true, Ordering::Release));
                up.for_each(|x| co.suspend(x));
            });
        });
        assert_eq!(stage.next().unwrap().unwrap(), 1);
        leak(stage);
    });
    assert!(stop.load(Ordering::Acquire));
    let after = ticks.load(Ordering::Relaxed);
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(
        ticks.load(Ordering::Relaxed),
        after,
        "the thread was joined"
    );
    drop((ticks, stop));
}

#[test]
fn a_panic_in_the_scope_closes_every_suspended_stage() {
    let drops = DropCounter::new();
    let log = Box::new(RefCell::new(Vec::new()));
    let caught = catch_unwind(AssertUnwindSafe(|| {
        pipeline::scope(|s| {
            let first = drops.token();
            let second = drops.token();
            let mut a = source(1..=10).stage_in(s, "a", |co, up| {
                let _token = first;
                let _closed = OnDrop(|| log.borrow_mut().push("a closed"));
                up.for_each(|x| co.suspend(x));
            });
            let mut b = source(1..=10).stage_in(s, "b", |co, up| {
                let _token = second;
                let _closed = OnDrop(|| log.borrow_mut().push("b closed"));
                up.for_each(|x| co.suspend(x));
            });
            a.next();
            b.next();
            leak(a); // closed by the scope
            panic!("the scope's closure panics"); // `b` is dropped by the unwinding
        })
    }));
    assert!(caught.is_err());
    assert_eq!(*log.borrow(), ["b closed", "a closed"]);
    assert_eq!(drops.live(), 0);
}

#[test]
fn a_panic_in_a_stage_while_others_are_suspended() {
    let drops = DropCounter::new();
    let log = RefCell::new(Vec::new());
    let (items, other) = pipeline::scope(|s| {
        let (t1, t2, t3) = (drops.token(), drops.token(), drops.token());
        // An unrelated pipeline, suspended and forgotten meanwhile.
        let mut other = source(1..=10).stage_in(s, "other", |co, up| {
            let _token = t3;
            let _closed = OnDrop(|| log.borrow_mut().push("other closed"));
            up.for_each(|x| co.suspend(x));
        });
        let other_first = other.next().unwrap().unwrap();
        leak(other);
        let items: Vec<_> = source(1..=10)
            .stage_in(s, "before", |co, up| {
                let _token = t1;
                let _closed = OnDrop(|| log.borrow_mut().push("before closed"));
                up.for_each(|x| co.suspend(x));
            })
            .stage_in(s, "boom", |co, up| {
                for x in up {
                    if x == 3 {
                        panic!("three");
                    }
                    co.suspend(x);
                }
            })
            .stage_in(s, "after", |co, up| {
                let _token = t2;
                let _closed = OnDrop(|| log.borrow_mut().push("after closed"));
                up.for_each(|x| co.suspend(x));
            })
            .collect();
        // The panicking stage's stack unwound, dropping its upstream, and
        // the stage after it, seeing its upstream fail, was closed.
        assert_eq!(*log.borrow(), ["before closed", "after closed"]);
        (items, other_first)
    });
    assert_eq!(other, 1);
    assert_eq!(items.len(), 3);
    let error = items[2].as_ref().unwrap_err();
    assert_eq!(error.stage(), "boom");
    assert!(error.is_panic());
    assert_eq!(
        *log.borrow(),
        ["before closed", "after closed", "other closed"]
    );
    assert_eq!(drops.live(), 0);
}

#[test]
fn forgotten_stages_are_closed_last_started_first() {
    let drops = DropCounter::new();
    pipeline::scope(|s| {
        let (a, b, c) = (drops.named("a"), drops.named("b"), drops.named("c"));
        let mut first = source(1..=10).stage_in(s, "a", |co, up| {
            let _token = a;
            up.for_each(|x| co.suspend(x));
        });
        let mut second = source(1..=10).stage_in(s, "b", |co, up| {
            let _token = b;
            up.for_each(|x| co.suspend(x));
        });
        let third = source(1..=10).stage_in(s, "c", |co, up| {
            let _token = c;
            up.for_each(|x| co.suspend(x));
        });
        first.next();
        second.next();
        leak(first);
        leak(second);
        leak(third);
    });
    assert_eq!(drops.log(), ["c", "b", "a"]);
}

#[test]
fn a_forgotten_chain_is_closed_once() {
    let drops = DropCounter::new();
    pipeline::scope(|s| {
        let (up_token, down_token) = (drops.named("upstream"), drops.named("downstream"));
        let mut chain = source(1..=10)
            .stage_in(s, "upstream", |co, up| {
                let _token = up_token;
                up.for_each(|x| co.suspend(x));
            })
            .stage_in(s, "downstream", |co, up| {
                let _token = down_token;
                up.for_each(|x| co.suspend(x));
            });
        chain.next();
        leak(chain);
    });
    // Closing the downstream stage unwinds its stack from the innermost
    // frame: the `for_each` that owns the upstream goes first.
    assert_eq!(drops.log(), ["upstream", "downstream"]);
    assert_eq!(drops.live(), 0);
}

#[test]
fn stages_started_while_the_scope_closes_are_closed_too() {
    let drops = DropCounter::new();
    pipeline::scope(|s| {
        let late = drops.named("late");
        let mut stage = source(1..=10).stage_in(s, "starter", move |co, up| {
            let mut late = Some(late);
            // Its destructor starts, runs and forgets another stage.
            let _start = OnDrop(|| {
                let token = late.take();
                let mut stage = source(1..=10).stage_in(s, "late", move |co, up| {
                    let _token = token;
                    up.for_each(|x| co.suspend(x));
                });
                stage.next();
                leak(stage);
            });
            up.for_each(|x| co.suspend(x));
        });
        stage.next();
        leak(stage);
    });
    assert_eq!(drops.log(), ["late"]);
    assert_eq!(drops.live(), 0);
}

#[test]
fn a_stage_that_suspends_the_coroutine_around_the_scope_is_closed_with_it() {
    // The scope runs inside a coroutine, and a stage suspends that
    // coroutine (the chain of stacks suspends at once). Dropping the outer
    // coroutine then unwinds through the stage, the closure and the scope.
    let drops = DropCounter::new();
    let counter = drops.clone();
    let mut outer = Coroutine::<(), u32, ()>::new(move |outer, ()| {
        let mut seen = 0;
        let token = counter.named("stage");
        pipeline::scope(|s| {
            let stage = source(1..=10).stage_in(s, "suspends outer", |co, up| {
                let _token = token;
                for x in up {
                    seen += 1;
                    outer.suspend(x); // suspends `outer` from the stage's stack
                    co.suspend(x);
                }
            });
            assert_eq!(stage.map(Result::unwrap).take(5).count(), 5);
        });
        let _ = seen;
    });
    assert_eq!(outer.resume(()).unwrap(), CoroutineResult::Yield(1));
    assert_eq!(outer.resume(()).unwrap(), CoroutineResult::Yield(2));
    assert_eq!(drops.live(), 1);
    drop(outer);
    assert_eq!(drops.live(), 0);
}

#[test]
fn a_stage_that_suspends_the_coroutine_around_the_scope_runs_to_the_end() {
    let mut outer = Coroutine::<(), u32, u32>::new(|outer, ()| {
        let mut seen = 0;
        let taken = pipeline::scope(|s| {
            source(1..=10)
                .stage_in(s, "suspends outer", |co, up| {
                    for x in up {
                        seen += 1;
                        outer.suspend(x);
                        co.suspend(x);
                    }
                })
                .map(Result::unwrap)
                .take(3)
                .count()
        });
        seen * 100 + taken as u32
    });
    let mut yielded = Vec::new();
    let returned = loop {
        match outer.resume(()).unwrap() {
            CoroutineResult::Yield(x) => yielded.push(x),
            CoroutineResult::Return(r) => break r,
        }
    };
    assert_eq!(yielded, [1, 2, 3]);
    assert_eq!(returned, 303);
}

#[test]
fn a_scoped_stage_may_follow_a_stage_returning_a_value() {
    let mut kept = Vec::new();
    let result = pipeline::scope(|s| {
        let (lines, skipped) =
            source([&b"a\n\xff\nb"[..]])
                .byte_lines()
                .stage_returning("utf8", |co, up| {
                    let mut skipped = 0;
                    for line in up {
                        match String::from_utf8(line) {
                            Ok(line) => co.suspend(line),
                            Err(_) => skipped += 1,
                        }
                    }
                    skipped
                });
        lines
            .stage_in(s, "keep", |co, up| {
                for line in up {
                    kept.push(line);
                    co.suspend(());
                }
            })
            .for_each(drop);
        assert_eq!(skipped.state(), ResultState::Returned);
        skipped.take()
    });
    assert_eq!(result, Some(1));
    assert_eq!(kept, ["a", "b"]);
}

#[test]
fn a_long_scope_of_many_short_stages_keeps_its_registry_small() {
    // Each body borrows `total` for the whole scope: shared, so a `Cell`.
    let total = Cell::new(0);
    pipeline::scope(|s| {
        for i in 0..10_000u64 {
            let stage = source([i]).stage_in(s, "short", |co, up| {
                for x in up {
                    total.set(total.get() + x);
                    co.suspend(());
                }
            });
            stage.for_each(drop);
        }
        let live = format!("{s:?}");
        assert!(live.contains("live: 0"), "{live}");
        let stages: usize = live
            .split("stages: ")
            .nth(1)
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap();
        assert!(stages <= 16, "{live}");
    });
    assert_eq!(total.get(), (0..10_000).sum::<u64>());
}

/// Panics when dropped: a panic payload whose own destructor panics.
struct PanicsWhenDropped;

impl Drop for PanicsWhenDropped {
    fn drop(&mut self) {
        panic!("the payload's destructor panicked");
    }
}

/// Panics with a [`PanicsWhenDropped`] payload when dropped.
struct PanicsWithABadPayload;

impl Drop for PanicsWithABadPayload {
    fn drop(&mut self) {
        std::panic::panic_any(PanicsWhenDropped);
    }
}

/// Adds one to its counter when dropped.
struct Bumps<'a>(&'a Cell<u32>);

impl Drop for Bumps<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn a_close_whose_panic_panics_again_when_dropped_still_closes_every_other_stage() {
    // Stage `b`, started last, is closed first: closing it drops its
    // capture, whose panic carries a payload that panics again when the
    // scope drops what the close reports. That second panic is caught where
    // the report is dropped (dropping a `Panic` never panics), and stage
    // `a`, suspended with a borrow of `closed`, is closed all the same
    // before `scope` returns.
    let closed = Cell::new(0);
    let ended = catch_unwind(AssertUnwindSafe(|| {
        pipeline::scope(|s| {
            let guard = Bumps(&closed);
            let mut a = source(0..2).stage_in(s, "a", move |co, up| {
                let _guard = guard;
                for x in up {
                    co.suspend(x);
                }
            });
            assert_eq!(a.next().unwrap().unwrap(), 0);
            leak(a);
            let bad = PanicsWithABadPayload;
            let b = source(0..1).stage_in(s, "b", move |co, up| {
                let _bad = &bad;
                for x in up {
                    co.suspend(x);
                }
            });
            leak(b);
        })
    }));
    assert!(ended.is_ok(), "the scope ended normally");
    assert_eq!(closed.get(), 1, "stage a was closed before scope ended");
}

/// What [`PullsItsStageOnDrop`] saw of its own stage while the scope
/// closed it.
#[derive(Debug, Default)]
struct SeenWhileClosing {
    status: Option<cogen::Status>,
    debug: String,
    pulls: Vec<Option<Result<u32, String>>>,
}

/// Pulls, when dropped, the stage whose stack it lives on (taken from the
/// slot that the stage's body holds), and records what it sees.
struct PullsItsStageOnDrop<'s, 'e> {
    slot: Rc<RefCell<Option<pipeline::ScopedStage<'s, u32>>>>,
    seen: &'e RefCell<SeenWhileClosing>,
}

impl Drop for PullsItsStageOnDrop<'_, '_> {
    fn drop(&mut self) {
        let mut slot = self.slot.borrow_mut();
        let stage = slot.as_mut().expect("the stage is in its slot");
        let mut seen = self.seen.borrow_mut();
        seen.status = Some(cogen::Resumable::status(stage.get_ref()));
        seen.debug = format!("{:?}", stage.get_ref());
        for _ in 0..2 {
            let pulled = stage
                .next()
                .map(|item| item.map_err(|e| format!("{}: {}", e.stage(), e.error().unwrap())));
            seen.pulls.push(pulled);
        }
    }
}

#[test]
fn a_destructor_pulling_its_own_stage_while_the_scope_closes_it_sees_it_ended() {
    // The stage is left in an `Rc` cycle, so the scope closes it; the
    // close runs the guard on the stage's stack, which pulls the stage.
    // That pull must not panic (a panic in a destructor that runs during
    // the close's unwinding aborts the process): the stage being closed
    // cannot be resumed, so its stream ends with the error of a stage
    // that died unfinished, then with `None`.
    let seen = RefCell::new(SeenWhileClosing::default());
    pipeline::scope(|s| {
        let slot = Rc::new(RefCell::new(None));
        let guard = PullsItsStageOnDrop {
            slot: slot.clone(),
            seen: &seen,
        };
        let stage = source(1..=3u32).stage_in(s, "self-pull", move |co, up| {
            let _guard = guard;
            for x in up {
                co.suspend(x);
            }
        });
        *slot.borrow_mut() = Some(stage);
        let first = slot.borrow_mut().as_mut().unwrap().next();
        assert_eq!(first.unwrap().unwrap(), 1);
    });
    let seen = seen.into_inner();
    assert_eq!(seen.status, Some(cogen::Status::Running));
    assert!(seen.debug.contains("Running"), "{}", seen.debug);
    assert_eq!(seen.pulls.len(), 2);
    let error = seen.pulls[0].clone().unwrap().unwrap_err();
    assert!(
        error.starts_with("self-pull: the stage died unfinished"),
        "{error}"
    );
    assert_eq!(seen.pulls[1], None);
}
