//! Inline chains at their edges: which error wins when several things go
//! wrong at once, time limits and destructors that wait, the fold path's
//! early breaks and panics, moved-out inputs, threads, and the event loop.
#![cfg_attr(cogen_nightly, feature(gen_blocks))]
#![allow(unused_features)]

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::time::Duration;

use cogen::event_loop::{self as el, EventLoop, channel, sleep, timeout};
use cogen::pipeline::{
    Fallible, InlineChain, InlineInput, PipelineExt, PipelineInput, PipelineItem, Source,
    StageError, inline_source, source,
};

mod support;
use support::{DropCounter, PanicsOnDrop};

/// The items up to the first error, and that error.
fn split<T>(items: impl IntoIterator<Item = PipelineItem<T>>) -> (Vec<T>, Option<StageError>) {
    let mut good = Vec::new();
    for item in items {
        match item {
            Ok(item) => good.push(item),
            Err(error) => return (good, Some(error)),
        }
    }
    (good, None)
}

/// Every item of `items`, errors by their stage's name.
fn named<T>(items: impl IntoIterator<Item = PipelineItem<T>>) -> Vec<Result<T, String>> {
    items
        .into_iter()
        .map(|item| item.map_err(|e| e.stage().to_string()))
        .collect()
}

/// Drains `chain` with `fold` only (`collect::<Vec<_>>()` would pull with
/// `next`).
fn by_fold<I: Iterator>(chain: I) -> Vec<I::Item> {
    chain.fold(Vec::new(), |mut items, item| {
        items.push(item);
        items
    })
}

/// Drains `chain` with `next` only (no fold).
fn by_next<I: Iterator>(mut chain: I) -> Vec<I::Item> {
    std::iter::from_fn(|| chain.next()).collect()
}

// ---------------------------------------------------------------------------
// Send / Sync
// ---------------------------------------------------------------------------

static_assertions::assert_not_impl_any!(InlineChain<std::ops::Range<u32>, false>: Send, Sync);
static_assertions::assert_not_impl_any!(InlineChain<std::ops::Range<u32>, true>: Send, Sync);
static_assertions::assert_not_impl_any!(PipelineInput<Source<std::ops::Range<u32>>>: Send, Sync);
static_assertions::assert_not_impl_any!(Fallible<std::ops::Range<u32>>: Send, Sync);
static_assertions::assert_not_impl_any!(InlineInput<PipelineInput<Source<std::ops::Range<u32>>>>: Send, Sync);
// An input over a `Send` iterator is `Send` (it holds no handle): see
// `a_moved_out_input_pulled_on_another_thread_is_harmless`.
static_assertions::assert_impl_all!(InlineInput<std::ops::Range<u32>>: Send, Sync);

// ---------------------------------------------------------------------------
// The error of the pipeline before the chain (or of a fallible stage) comes
// before a later stage's panic at the end of its input, as it does through a
// stackful `Stage`.
// ---------------------------------------------------------------------------

#[test]
fn an_upstream_error_comes_before_a_panic_of_a_stage_at_the_end_of_its_input() {
    // A stage that needs a header: `expect` on its first pull.
    let failing = || {
        source(1..=5u32).stage("stackful", |co, up| {
            for x in up {
                if x == 1 {
                    return Err("io error in stackful");
                }
                co.suspend(x);
            }
            Ok(())
        })
    };
    // Reference: the same header stage as a stackful stage.
    let (_, stackful) = split(failing().stage("header", |co, mut up| {
        let header = up.next().expect("a header line");
        co.suspend(header);
        for x in up {
            co.suspend(x);
        }
    }));
    assert_eq!(
        stackful.unwrap().stage(),
        "stackful",
        "a Stage hands on the upstream's error"
    );
    // The same as an inline stage.
    let (_, inline) = split(failing().inline_stage("header", |mut up| {
        let mut header = None;
        std::iter::from_fn(move || {
            if header.is_none() {
                header = Some(up.next().expect("a header line"));
                return header;
            }
            up.next()
        })
    }));
    let inline = inline.unwrap();
    assert_eq!(
        inline.stage(),
        "stackful",
        "docs: the pipeline's error 'reaches the consumer as it would through any stage'; got {inline:?}"
    );
}

#[test]
fn a_fallible_stages_err_comes_before_a_later_stages_panic_at_the_end() {
    let (_, error) = split(
        inline_source("lines", ["x", "1"])
            .try_inline_stage("parse", |up| up.map(str::parse::<u32>))
            .inline_stage("header", |mut up| {
                let mut started = false;
                std::iter::from_fn(move || {
                    if !started {
                        started = true;
                        return Some(up.next().expect("a header"));
                    }
                    up.next()
                })
            }),
    );
    let error = error.unwrap();
    assert_eq!(
        error.stage(),
        "parse",
        "the first Err should win; got {error:?}"
    );
}

// ---------------------------------------------------------------------------
// A time limit that expires while a destructor waits, as the chain's stages
// are dropped after a stage's panic, does not lose that panic: the next pull
// hands it on.
// ---------------------------------------------------------------------------

/// Waits in its destructor.
struct WaitsOnDrop;

impl Drop for WaitsOnDrop {
    fn drop(&mut self) {
        sleep(Duration::from_millis(200));
    }
}

fn chain_that_panics_with_a_waiting_destructor() -> impl Iterator<Item = PipelineItem<u32>> {
    let guard = WaitsOnDrop;
    inline_source("numbers", 1..=3u32)
        .inline_stage("holds", move |up| up.map(move |x| (&guard, x).1))
        .inline_stage("fails", |up| {
            up.map(|x: u32| -> u32 { panic!("fails at {x}") })
        })
}

/// On an event loop: makes a chain with `make`, runs `pull` on it under a
/// time limit of `ms` milliseconds, then pulls once more. Whether the limit
/// expired, and that next item (an error as its stage's name).
fn next_after_a_time_limit<C, T>(
    ms: u64,
    make: impl FnOnce() -> C + 'static,
    pull: impl FnOnce(&mut C) + 'static,
) -> (bool, Option<Result<T, String>>)
where
    C: Iterator<Item = PipelineItem<T>>,
    T: 'static,
{
    let ev = EventLoop::new();
    let h = ev.spawn(move || {
        let mut chain = make();
        let cut = timeout(Duration::from_millis(ms), || pull(&mut chain));
        let after = chain
            .next()
            .map(|item| item.map_err(|e| e.stage().to_string()));
        (cut.is_err(), after)
    });
    ev.run().unwrap();
    h.join().unwrap()
}

#[test]
fn a_time_limit_cutting_a_destructors_wait_after_a_stage_panic_keeps_the_panic_next() {
    let (cut, after) =
        next_after_a_time_limit(20, chain_that_panics_with_a_waiting_destructor, |chain| {
            chain.next();
        });
    assert!(cut, "the time limit expired in the destructor");
    assert!(
        matches!(after, Some(Err(_))),
        "the stage panicked: the next pull should say so (an error), not end the stream; got {after:?}"
    );
}

#[test]
fn a_time_limit_cutting_a_destructors_wait_after_a_stage_panic_keeps_the_panic_fold() {
    let (cut, after) =
        next_after_a_time_limit(20, chain_that_panics_with_a_waiting_destructor, |chain| {
            chain.by_ref().for_each(drop)
        });
    assert!(cut, "the time limit expired in the destructor");
    assert!(matches!(after, Some(Err(_))), "got {after:?}");
}

// ---------------------------------------------------------------------------
// After a failure, an item discarded whose destructor panics is dropped
// quietly, by `fold` as by `next`, and the failure is handed on.
// ---------------------------------------------------------------------------

/// An item whose destructor panics when `armed`.
struct Bomb(u32, bool);

impl Drop for Bomb {
    fn drop(&mut self) {
        if self.1 && !std::thread::panicking() {
            panic!("an item's destructor panicked");
        }
    }
}

fn fallible_then_a_bomb_at_the_end() -> impl Iterator<Item = PipelineItem<Bomb>> {
    inline_source("lines", ["1", "x"])
        .try_inline_stage("parse", |up| up.map(str::parse::<u32>))
        .inline_stage("wrap", |up| {
            up.map(|x| Bomb(x, false))
                .chain(std::iter::once(Bomb(0, true)))
        })
}

#[test]
fn fold_and_next_agree_on_a_discarded_item_whose_drop_panics() {
    let next: Vec<_> = named(by_next(fallible_then_a_bomb_at_the_end()))
        .into_iter()
        .map(|r| r.map(|b| b.0))
        .collect();
    assert_eq!(
        next,
        [Ok(1), Err("parse".to_string())],
        "next: the Err of 'parse'"
    );
    let fold: Vec<_> = named(by_fold(fallible_then_a_bomb_at_the_end()))
        .into_iter()
        .map(|r| r.map(|b| b.0))
        .collect();
    assert_eq!(fold, next, "fold should agree with next");
}

// ---------------------------------------------------------------------------
// A `timeout` around a pull inside a stage (a heartbeat) leaves no mark on
// the stage before it: a later panic of another stage is reported under its
// own name.
// ---------------------------------------------------------------------------

/// A chain whose first pull waits long ("slow"), behind a stage that pulls
/// under a time limit of `limit` and hands on 0 when it expires
/// ("heartbeat"), and a stage that panics at 3 ("check").
fn heartbeat_chain(limit: Duration) -> impl Iterator<Item = PipelineItem<u32>> {
    let mut n = 0u32;
    // The first pull waits long; the others answer at once.
    let slow = std::iter::from_fn(move || {
        n += 1;
        if n == 1 {
            sleep(Duration::from_secs(10));
        }
        Some(n)
    });
    inline_source("slow", slow)
        .inline_stage("heartbeat", move |mut up| {
            std::iter::from_fn(move || timeout(limit, || up.next()).unwrap_or(Some(0)))
        })
        .inline_stage("check", |up| {
            up.map(|x| {
                if x < 3 {
                    x
                } else {
                    panic!("check failed at {x}")
                }
            })
        })
}

/// The items and the failing stage's name of [`heartbeat_chain`] with a
/// limit of `limit`, drained in a task: items 0 (the expiry) and 2, then
/// "check" fails, unless a stale mark names another stage.
fn heartbeat_outcome(limit: Duration) -> (Vec<u32>, Option<String>) {
    let (items, error) = split(heartbeat_chain(limit));
    (items, error.map(|e| e.stage().to_string()))
}

/// Asserts what a run of [`heartbeat_outcome`] must give; `run` says which.
fn assert_heartbeat_outcome((items, error): (Vec<u32>, Option<String>), run: &str) {
    assert_eq!(items, [0, 2], "{run}");
    assert_eq!(
        error.as_deref(),
        Some("check"),
        "{run}: 'check' panicked; 'slow' never did"
    );
}

/// A chain whose second stage catches the panic of the first ("panics", at
/// its first item) and hands on 0 instead (see `InlineChain`'s docs: the
/// first stage's mark then stays on the thread until the chain is
/// dropped, once the chain has been pulled).
fn panics_then_catches() -> InlineChain<impl Iterator<Item = u32>, false> {
    inline_source(
        "panics",
        (0..).map(|x: u32| if x == 0 { panic!("first") } else { x }),
    )
    .inline_stage("catches", |mut up| {
        std::iter::from_fn(move || catch_unwind(AssertUnwindSafe(|| up.next())).unwrap_or(Some(0)))
    })
}

/// A [`panics_then_catches`] chain pulled once: it has left a stale mark.
fn chain_with_a_stale_mark() -> impl Iterator<Item = PipelineItem<u32>> {
    let mut chain = panics_then_catches();
    assert_eq!(chain.next().unwrap().unwrap(), 0);
    chain
}

#[test]
fn a_time_limit_around_a_pull_inside_a_stage_leaves_no_stale_mark() {
    let ev = EventLoop::new();
    let h = ev.spawn(|| heartbeat_outcome(Duration::from_millis(1)));
    ev.run().unwrap();
    assert_heartbeat_outcome(h.join().unwrap(), "alone");
}

#[test]
fn a_time_limit_forgets_its_own_marks_when_the_thread_holds_the_most_it_keeps() {
    // Sixteen stale marks (the most a thread keeps): the expiry's mark on
    // "slow" pushes the oldest out, and must still go when it is caught.
    for stale in [15, 16] {
        let ev = EventLoop::new();
        let h = ev.spawn(move || {
            let kept: Vec<_> = (0..stale).map(|_| chain_with_a_stale_mark()).collect();
            let outcome = heartbeat_outcome(Duration::from_millis(1));
            drop(kept);
            outcome
        });
        ev.run().unwrap();
        assert_heartbeat_outcome(h.join().unwrap(), &format!("{stale} stale marks"));
    }
}

#[test]
fn a_time_limit_forgets_only_its_own_marks_while_other_tasks_take_theirs() {
    // Task U holds a stale mark when task T's time limit starts, and takes
    // it (drops its chain) while T waits inside the limit: T's expiry must
    // still forget the mark it left on "slow", and nothing of U's.
    let ev = EventLoop::new();
    let u = ev.spawn(|| {
        let chain = chain_with_a_stale_mark();
        sleep(Duration::from_millis(5));
        drop(chain);
    });
    let t = ev.spawn(|| heartbeat_outcome(Duration::from_millis(20)));
    ev.run().unwrap();
    u.join().unwrap();
    assert_heartbeat_outcome(t.join().unwrap(), "U takes its mark meanwhile");
}

#[test]
fn a_time_limit_keeps_the_marks_other_tasks_make_meanwhile() {
    // A stage that catches the panic of the stage before leaves that
    // stage's mark, and a later panic after it is reported under the first
    // one's name (see `InlineChain`'s docs). Task U's chain leaves such a
    // mark while task T waits inside a time limit; T's expiry must leave
    // it, whether the loop runs on the thread's own stack or inside a
    // coroutine (where every task's chain of stacks ends at that one).
    fn run(inside_a_coroutine: bool) -> (Option<String>, (Vec<u32>, Option<String>)) {
        let work = || {
            let ev = EventLoop::new();
            // T runs first: its time limit starts before U's mark is made.
            let t = ev.spawn(|| heartbeat_outcome(Duration::from_millis(1)));
            let u = ev.spawn(|| {
                let mut chain = panics_then_catches().inline_stage("later", |up| {
                    up.map(|x| if x < 2 { x } else { panic!("later fails") })
                });
                assert_eq!(chain.next().unwrap().unwrap(), 0);
                // T's expiry is caught meanwhile.
                sleep(Duration::from_millis(20));
                let (items, error) = split(chain);
                assert_eq!(items, [1]);
                error.map(|e| e.stage().to_string())
            });
            ev.run().unwrap();
            (u.join().unwrap(), t.join().unwrap())
        };
        if !inside_a_coroutine {
            return work();
        }
        let mut driver = cogen::Coroutine::<(), (), _>::new(move |_, ()| work());
        driver.resume(()).unwrap().as_return().unwrap()
    }
    for inside_a_coroutine in [false, true] {
        let (u, t) = run(inside_a_coroutine);
        assert_eq!(
            u.as_deref(),
            Some("panics"),
            "inside a coroutine: {inside_a_coroutine}: U's mark stays"
        );
        assert_heartbeat_outcome(t, &format!("inside a coroutine: {inside_a_coroutine}"));
    }
}

// ---------------------------------------------------------------------------
// `collect::<Result<Vec<_>, _>>()` (std's GenericShunt calls `try_fold` once
// per item) does not move the stages out of their box and back per item:
// no allocation per item, as with `next`.
// ---------------------------------------------------------------------------

mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        pub static ALLOCS: Cell<usize> = const { Cell::new(0) };
    }

    pub struct Counting;

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let _ = ALLOCS.try_with(|a| a.set(a.get() + 1));
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    pub fn allocs() -> usize {
        ALLOCS.with(Cell::get)
    }
}

#[global_allocator]
static GLOBAL: counting::Counting = counting::Counting;

#[test]
fn collect_into_a_result_does_not_allocate_per_item() {
    let make =
        || inline_source("numbers", 0..10_000u64).inline_stage("double", |up| up.map(|x| x * 2));
    let chain = make();
    let before = counting::allocs();
    let mut out = Vec::new();
    for item in by_next(chain) {
        out.push(item.unwrap());
    }
    let with_next = counting::allocs() - before;
    let chain = make();
    let before = counting::allocs();
    let collected: Vec<u64> = chain.collect::<Result<_, _>>().unwrap();
    let with_collect = counting::allocs() - before;
    assert_eq!(collected, out);
    assert!(
        with_collect < 100,
        "collect::<Result<Vec<_>, _>> made {with_collect} allocations for 10000 items (next-based: {with_next})"
    );
}

// ---------------------------------------------------------------------------
// A fold whose consumer panics while the thread's locals are being destroyed
// (the marks' thread-local gone) lets the consumer's panic go on.
// ---------------------------------------------------------------------------

struct FoldsOnDrop(std::sync::mpsc::Sender<String>);

impl Drop for FoldsOnDrop {
    fn drop(&mut self) {
        let chain = inline_source("numbers", 1..=3u32).inline_stage("same", |up| up);
        let caught = catch_unwind(AssertUnwindSafe(|| {
            // At the second item: the first is pulled before the fold's loop.
            chain.for_each(|item| {
                if item.unwrap() == 2 {
                    std::panic::panic_any("the consumer's own".to_string());
                }
            });
        }));
        let message = match caught {
            Ok(()) => "no panic".to_string(),
            Err(payload) => payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default(),
        };
        let _ = self.0.send(message);
    }
}

thread_local! {
    static FOLDS_ON_DROP: RefCell<Option<FoldsOnDrop>> = const { RefCell::new(None) };
}

#[test]
fn a_consumer_panic_in_a_fold_during_thread_local_teardown_goes_on() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Registered first, destroyed last (after the marks' thread-local,
        // which the chain below registers).
        FOLDS_ON_DROP.with(|slot| *slot.borrow_mut() = Some(FoldsOnDrop(tx)));
        drop(inline_source("registers the marks", 0..1u32));
    })
    .join()
    .unwrap();
    let message = rx.recv().unwrap();
    assert_eq!(message, "the consumer's own");
}

// ---------------------------------------------------------------------------
// The fold path
// ---------------------------------------------------------------------------

#[test]
fn early_breaks_leave_the_chain_where_it_stopped() {
    let make = || inline_source("numbers", 1..=10u32).inline_stage("same", |up| up);
    let mut chain = make();
    assert_eq!(
        chain
            .by_ref()
            .find(|r| *r.as_ref().unwrap() == 3)
            .unwrap()
            .unwrap(),
        3
    );
    assert_eq!(chain.next().unwrap().unwrap(), 4);
    assert_eq!(chain.by_ref().position(|r| r.unwrap() == 6), Some(1));
    assert_eq!(chain.next().unwrap().unwrap(), 7);
    let taken: Vec<_> = chain
        .by_ref()
        .take_while(|r| *r.as_ref().unwrap() < 8)
        .collect();
    assert_eq!(taken.len(), 0); // 7 was pulled above; 8 fails the test and is consumed
    assert_eq!(chain.next().unwrap().unwrap(), 9);
    assert!(chain.by_ref().any(|r| r.unwrap() == 10));
    assert!(chain.next().is_none());

    let mut chain = make();
    assert_eq!(chain.by_ref().take(3).map(Result::unwrap).sum::<u32>(), 6);
    assert_eq!(chain.by_ref().take(2).sum::<Result<u32, _>>().unwrap(), 9);
    assert_eq!(chain.next().unwrap().unwrap(), 6);
    // A consumer that breaks with its own error.
    let r: Result<(), u32> = chain.by_ref().try_for_each(|x| {
        let x = x.unwrap();
        if x == 8 { Err(x) } else { Ok(()) }
    });
    assert_eq!(r, Err(8));
    assert_eq!(by_next(chain).len(), 2);
}

#[test]
fn a_stage_panic_in_a_fold_gives_one_error_then_ends() {
    for (at, stage) in [(0, "numbers"), (1, "second"), (2, "third")] {
        let boom = move |here: usize, x: u32| {
            if here == at && x == 3 {
                panic!("boom")
            } else {
                x
            }
        };
        let make = || {
            inline_source("numbers", (1..=5).map(move |x| boom(0, x)))
                .inline_stage("second", move |up| up.map(move |x| boom(1, x)))
                .inline_stage("third", move |up| up.map(move |x| boom(2, x)))
        };
        let expected = vec![Ok(1), Ok(2), Err(stage.to_string())];
        assert_eq!(named(by_next(make())), expected, "next, {stage}");
        assert_eq!(named(by_fold(make())), expected, "fold, {stage}");
        // try_fold: the consumer sees the error once, and the chain has ended.
        let mut chain = make();
        let mut seen = Vec::new();
        let r: Result<(), ()> = chain.by_ref().try_for_each(|item| {
            seen.push(item.map_err(|e| e.stage().to_string()));
            Ok(())
        });
        assert!(r.is_ok());
        assert_eq!(seen, expected, "try_fold, {stage}");
        assert!(chain.next().is_none());
        // collect::<Result<..>> stops at the error.
        assert_eq!(
            make().collect::<Result<Vec<_>, _>>().unwrap_err().stage(),
            stage
        );
    }
}

#[test]
fn errors_before_the_chain_reach_the_fold_as_they_reach_next() {
    let make_pipeline = || {
        source(1..=6u32)
            .stage("stackful", |co, up| {
                for x in up {
                    assert!(x < 4, "stackful at {x}");
                    co.suspend(x);
                }
            })
            .inline_stage("first", |up| up.map(|x| x * 10))
            .inline_stage("with end", |up| up.chain(std::iter::once(999)))
    };
    let expected = vec![Ok(10), Ok(20), Ok(30), Err("stackful".to_string())];
    assert_eq!(named(by_next(make_pipeline())), expected);
    assert_eq!(named(by_fold(make_pipeline())), expected);

    let make_fallible = || {
        inline_source("lines", ["1", "2", "x", "4"])
            .try_inline_stage("parse", |up| up.map(str::parse::<u32>))
            .inline_stage("with end", |up| up.chain(std::iter::once(999)))
    };
    let expected = vec![Ok(1), Ok(2), Err("parse".to_string())];
    assert_eq!(named(by_next(make_fallible())), expected);
    assert_eq!(named(by_fold(make_fallible())), expected);
    let mut chain = make_fallible();
    assert_eq!(chain.by_ref().take(1).count(), 1);
    assert_eq!(named(by_fold(chain.by_ref())), expected[1..]);
    assert!(chain.next().is_none());
}

#[test]
fn the_consumers_panic_goes_on_unchanged_even_with_a_stale_mark() {
    // "catcher" catches the panic of the stage before it once (a stale mark).
    let mut calls = 0;
    let mut chain = inline_source(
        "flaky",
        std::iter::from_fn(move || {
            calls += 1;
            if calls == 2 {
                panic!("flaky");
            }
            Some(calls)
        }),
    )
    .inline_stage("catcher", |mut up| {
        std::iter::from_fn(move || {
            loop {
                if let Ok(x) = catch_unwind(AssertUnwindSafe(|| up.next())) {
                    return x;
                }
            }
        })
    })
    .inline_stage("same", |up| up);
    let caught = catch_unwind(AssertUnwindSafe(|| {
        chain.by_ref().for_each(|x| {
            if x.unwrap() == 3 {
                std::panic::panic_any(42u8);
            }
        })
    }));
    assert_eq!(caught.unwrap_err().downcast_ref::<u8>(), Some(&42));
    assert_eq!(chain.next().unwrap().unwrap(), 4);
    let caught = catch_unwind(AssertUnwindSafe(|| {
        chain.by_ref().find(|_| panic!("find's own"))
    }));
    assert_eq!(
        caught.unwrap_err().downcast_ref::<&str>(),
        Some(&"find's own")
    );
    assert_eq!(chain.next().unwrap().unwrap(), 6);
}

#[test]
fn a_consumer_that_pulls_another_chain_that_panics_is_not_confused() {
    let mut other = inline_source("other", 1..).inline_stage("other check", |up| {
        up.map(|x: u32| if x < 2 { x } else { panic!("other") })
    });
    let mut seen = Vec::new();
    let sum: u32 = inline_source("mine", 1..=3u32)
        .inline_stage("mine same", |up| up)
        .map(|x| {
            seen.push(other.next().map(|r| r.map_err(|e| e.stage().to_string())));
            x.unwrap()
        })
        .sum();
    assert_eq!(sum, 6);
    assert_eq!(
        seen,
        [Some(Ok(1)), Some(Err("other check".to_string())), None]
    );
    // And a later panic of the first kind of chain is named right.
    let (_, error) = split(
        inline_source("a", 1..)
            .inline_stage("b", |up| up.map(|x: u32| x))
            .inline_stage("c", |up| up.map(|x| if x < 2 { x } else { panic!("c") })),
    );
    assert_eq!(error.unwrap().stage(), "c");
}

#[test]
fn a_chain_folded_inside_another_chains_stage_reports_its_own_stages() {
    let chain = inline_source("runs", 1..=4u32)
        .inline_stage("outer", |up| {
            up.map(|run| {
                let inner = inline_source("inner source", 0..run)
                    .inline_stage("inner check", move |up| {
                        up.map(move |x| if run == 3 { panic!("inner {x}") } else { x })
                    });
                // Folded (sum), not pulled.
                match inner.sum::<Result<u32, _>>() {
                    Ok(total) => total,
                    Err(error) => {
                        assert_eq!(error.stage(), "inner check");
                        1000
                    }
                }
            })
        })
        .inline_stage("last", |up| {
            up.map(|x| if x < 1000 { x } else { panic!("last gave up") })
        });
    let expected = vec![Ok(0), Ok(1), Err("last".to_string())];
    assert_eq!(named(by_fold(chain)), expected);
}

#[test]
fn a_catch_unwind_around_a_stages_own_code_leaves_no_mark() {
    let chain = inline_source("numbers", 1..=5u32)
        .inline_stage("careful", |up| {
            up.map(|x| catch_unwind(|| if x == 2 { panic!("own") } else { x }).unwrap_or(0))
        })
        .inline_stage("last", |up| {
            up.map(|x| if x < 4 { x } else { panic!("last") })
        });
    assert_eq!(
        named(by_fold(chain)),
        [Ok(1), Ok(0), Ok(3), Err("last".to_string())]
    );
}

#[test]
fn chains_as_stages_of_a_chain_name_their_own_stages_on_both_paths() {
    // The last stage of "outer" is itself an inline chain (so the outer fold
    // runs the inner fold with the outer consumer).
    let make = || {
        inline_source("src", 1..=5u32).inline_stage("inner chain", |up| {
            inline_source("inner src", up).inline_stage("inner check", |up| {
                up.map(|x| if x < 4 { x } else { panic!("inner") })
            })
        })
    };
    let expected = |items: Vec<PipelineItem<PipelineItem<u32>>>| {
        items
            .into_iter()
            .map(|r| r.unwrap().map_err(|e| e.stage().to_string()))
            .collect::<Vec<_>>()
    };
    let want = vec![Ok(1), Ok(2), Ok(3), Err("inner check".to_string())];
    assert_eq!(expected(by_next(make())), want);
    assert_eq!(expected(by_fold(make())), want);
    // The outer consumer's panic inside the nested fold goes on, both chains kept.
    let mut chain = make();
    let caught = catch_unwind(AssertUnwindSafe(|| {
        // At the second item: the first is pulled before the fold's loop.
        chain.by_ref().for_each(|item| {
            if matches!(item.unwrap(), Ok(2)) {
                panic!("outer consumer")
            }
        })
    }));
    assert_eq!(
        caught.unwrap_err().downcast_ref::<&str>(),
        Some(&"outer consumer")
    );
    assert_eq!(expected(by_fold(chain)), want[2..]);
}

// ---------------------------------------------------------------------------
// Moved-out inputs, destructors, leaks (run under AddressSanitizer by CI)
// ---------------------------------------------------------------------------

/// Adds a last stage to `chain` that hands its input out and yields
/// nothing, drains the chain (nothing comes out) and drops it: gives that
/// input, moved out of a chain that is gone.
fn input_moved_out_of<J, const C: bool>(chain: InlineChain<J, C>) -> InlineInput<J>
where
    J: Iterator + 'static,
{
    let stash = Rc::new(Cell::new(None));
    let keep = stash.clone();
    let chain = chain.inline_stage("stasher", move |up| {
        keep.set(Some(up));
        std::iter::empty::<J::Item>()
    });
    assert_eq!(chain.count(), 0);
    stash.take().unwrap()
}

#[test]
fn moved_out_pipeline_input_and_fallible_are_safe_after_the_chain_is_dropped() {
    let stash: Rc<Cell<Option<InlineInput<PipelineInput<_>>>>> = Rc::new(Cell::new(None));
    let keep = stash.clone();
    let chain = source((1..=3u32).map(|x| if x < 3 { x } else { panic!("late source") }))
        .stage("fails later", |co, up| {
            for x in up {
                if x == 2 {
                    return Err("two");
                }
                co.suspend(x);
            }
            Ok(())
        })
        .inline_stage("stasher", move |up| {
            keep.set(Some(up));
            std::iter::empty::<u32>()
        });
    assert_eq!(named(chain.collect::<Vec<_>>()), []);
    let mut input = stash.take().unwrap();
    assert_eq!(input.next(), Some(1));
    assert_eq!(input.next(), None); // the failure goes to a chain that is gone
    drop(input);

    let mut input = input_moved_out_of(
        inline_source("lines", ["1", "x", "3"])
            .try_inline_stage("parse", |up| up.map(str::parse::<u32>)),
    );
    assert_eq!(input.next(), Some(1));
    assert_eq!(input.next(), None);
    assert_eq!(input.next(), Some(3)); // not fused, as documented for Upstream
    assert!(format!("{input:?}").contains("InlineInput"));
}

#[test]
fn a_moved_out_input_pulled_on_another_thread_is_harmless() {
    let mut input = input_moved_out_of(inline_source(
        "numbers",
        (1..).map(|x: u32| if x < 2 { x } else { panic!("late") }),
    ));
    let joined = std::thread::spawn(move || {
        assert_eq!(input.next(), Some(1));
        input.next()
    })
    .join();
    assert!(joined.is_err());
}

#[test]
fn a_destructor_that_panics_while_the_chain_is_dropped_goes_on_and_leaks_nothing() {
    let drops = DropCounter::new();
    let guard = PanicsOnDrop(drops.token());
    let other = drops.token();
    let mut chain = source(1..)
        .stage("stackful", |co, up| {
            for x in up {
                co.suspend(x);
            }
        })
        .inline_stage("guarded", move |up| up.map(move |x: u32| (&guard, x).1))
        .try_inline_stage("ok", move |up| {
            up.map(move |x| Ok::<_, String>((&other, x).1))
        });
    assert_eq!(chain.next().unwrap().unwrap(), 1);
    let caught = catch_unwind(AssertUnwindSafe(move || drop(chain)));
    assert!(caught.is_err());
    assert_eq!(drops.live(), 0);
}

#[test]
fn a_destructor_that_panics_at_the_end_of_a_fold_is_the_last_stages_error() {
    let drops = DropCounter::new();
    let guard = PanicsOnDrop(drops.token());
    let items = by_fold(
        inline_source("numbers", [1u32, 2])
            .inline_stage("guarded", move |up| up.map(move |x| (&guard, x).1))
            .inline_stage("last", |up| up),
    );
    assert_eq!(named(items), [Ok(1), Ok(2), Err("last".to_string())]);
    assert_eq!(drops.live(), 0);
}

#[test]
fn a_generator_suspended_inside_a_stage_of_a_fold_drops_everything_once() {
    for fold in [false, true] {
        let drops = DropCounter::new();
        let (a, b) = (drops.token(), drops.token());
        let mut gen_ = cogen::generator(move |co| {
            let chain = inline_source("numbers", (1..).map(move |x: u32| (&a, x).1))
                .inline_stage("suspends", |up| {
                    up.inspect(|&x| {
                        co.suspend(x);
                    })
                })
                .inline_stage("held", move |up| up.map(move |x| (&b, x).1));
            if fold {
                chain.for_each(drop);
            } else {
                by_next(chain);
            }
        });
        assert_eq!(gen_.next(), Some(1));
        assert_eq!(gen_.next(), Some(2));
        assert_eq!(drops.live(), 2);
        drop(gen_);
        assert_eq!(drops.live(), 0, "fold {fold}");
    }
}

// ---------------------------------------------------------------------------
// The event loop
// ---------------------------------------------------------------------------

#[test]
fn a_stage_that_waits_works_in_a_fold() {
    let ev = EventLoop::new();
    let (tx, rx) = channel::<u32>(1);
    ev.spawn(move || {
        for i in 1..=5 {
            sleep(Duration::from_millis(1));
            tx.send(i).unwrap();
        }
    });
    let h = ev.spawn(move || {
        source(rx)
            .inline_stage("double", |up| up.map(|x| x * 2))
            .inline_stage("slow", |up| {
                up.inspect(|_| {
                    el::yield_now();
                })
            })
            .sum::<Result<u32, _>>()
    });
    ev.run().unwrap();
    assert_eq!(h.join().unwrap().unwrap(), 30);
}

#[test]
fn a_timeout_around_a_fold_that_expires_in_a_stage_is_reported_once() {
    let ev = EventLoop::new();
    let h = ev.spawn(|| {
        let (tx, rx) = channel::<u32>(4);
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        let mut chain = source(rx)
            .inline_stage("pass", |up| up.map(|x| x + 1))
            .inline_stage("last", |up| up);
        let mut got = Vec::new();
        let cut = timeout(Duration::from_millis(5), || {
            chain.by_ref().for_each(|x| got.push(x.unwrap()))
        });
        let error = chain.next().map(|item| item.unwrap_err());
        drop(tx);
        (cut.is_err(), got, error, chain.next().is_none())
    });
    ev.run().unwrap();
    let (cut, got, error, then_ends) = h.join().unwrap();
    assert!(cut);
    assert_eq!(got, [2, 3]);
    let error = error.expect("an error, not the end");
    assert_eq!(error.stage(), "pass");
    let cause = std::error::Error::source(&error).unwrap().to_string();
    assert!(cause.starts_with("the stage died unfinished"), "{cause}");
    assert!(then_ends);
}

#[test]
fn a_timeout_around_a_fold_that_expires_in_the_consumer_keeps_the_chain() {
    let ev = EventLoop::new();
    let h = ev.spawn(|| {
        let mut chain = inline_source("numbers", 1..=5u32).inline_stage("same", |up| up);
        let cut = timeout(Duration::from_millis(5), || {
            chain.by_ref().for_each(|x| {
                if x.unwrap() == 2 {
                    sleep(Duration::from_secs(10));
                }
            })
        });
        (cut.is_err(), named(by_next(chain)))
    });
    ev.run().unwrap();
    let (cut, rest) = h.join().unwrap();
    assert!(cut);
    assert_eq!(rest, [Ok(3), Ok(4), Ok(5)]);
}

#[test]
fn cancelling_a_task_while_a_stage_waits_drops_everything_once() {
    for fold in [false, true] {
        let ev = EventLoop::new();
        let drops = DropCounter::new();
        let (tx, rx) = channel::<u32>(1);
        let (a, b) = (drops.token(), drops.token());
        let h = ev.spawn(move || {
            let chain = source(rx)
                .inline_stage("holds", move |up| up.map(move |x| (&a, x).1))
                .inline_stage("holds too", move |up| up.map(move |x| (&b, x).1));
            if fold {
                chain.for_each(drop);
            } else {
                by_next(chain);
            }
            unreachable!("cancelled while waiting");
        });
        assert!(ev.try_tick());
        assert_eq!(drops.live(), 2);
        h.cancel();
        assert_eq!(drops.live(), 0, "fold {fold}");
        assert!(h.join().unwrap_err().is_cancelled());
        drop(tx);
    }
}

// ---------------------------------------------------------------------------
// The same without any panic: a time limit that cuts a wait inside a stage,
// when a stage's destructor waits too. The destructor's wait (past the
// deadline) unwinds again; the next pull still says that the stage died
// unfinished rather than that the stream ended.
// ---------------------------------------------------------------------------

#[test]
fn a_time_limit_cutting_a_stages_wait_with_a_waiting_destructor_is_reported() {
    let (tx, rx) = channel::<u32>(1); // nobody sends
    let (cut, after) = next_after_a_time_limit(
        5,
        move || {
            let guard = WaitsOnDrop;
            source(rx).inline_stage("holds", move |up| up.map(move |x| (&guard, x).1))
        },
        |chain| {
            chain.next();
        },
    );
    drop(tx);
    assert!(cut);
    assert!(
        matches!(after, Some(Err(_))),
        "docs: 'the next pull says once that the stream did not end'; got {after:?}"
    );
}

#[test]
fn collect_into_a_result_that_stops_at_an_items_err_leaves_the_chain_there() {
    // The items are themselves `Result`s; the consumer stops at the first Err.
    let mut chain = inline_source("lines", ["1", "2", "x", "4", "5"])
        .inline_stage("parse", |up| up.map(str::parse::<u32>));
    let stopped: Result<Vec<u32>, _> = chain.by_ref().map(Result::unwrap).collect();
    assert!(stopped.is_err());
    assert_eq!(chain.next().unwrap().unwrap(), Ok(4));
    let rest: Result<Vec<u32>, _> = chain.by_ref().map(Result::unwrap).collect();
    assert_eq!(rest.unwrap(), [5]);
    assert!(chain.next().is_none());
}
