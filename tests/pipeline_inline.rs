//! Inline chains (`inline_source`, `inline_stage`, `try_inline_stage`):
//! their items, which stage a panic or an `Err` is reported under, what
//! happens to the stages after a failure, drops, and an unwinding that is
//! not a panic (a time limit) crossing a chain.
#![cfg_attr(cogen_nightly, feature(gen_blocks))]

// `gen` blocks as stages (their syntax does not parse on stable Rust).
#[cfg(cogen_nightly)]
#[path = "nightly/pipeline_inline.rs"]
mod nightly;

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::time::Duration;

use cogen::event_loop::{EventLoop, channel, timeout};
use cogen::pipeline::{PipelineExt, PipelineItem, StageError, inline_source, source};

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

/// The message of a stage's panic.
fn panic_message(error: &StageError) -> &str {
    error.panic().expect("a panic").message()
}

#[test]
fn a_chain_of_adapters_hands_on_every_item_and_ends() {
    let mut chain = inline_source("numbers", 1..=6u32)
        .inline_stage("squares", |up| up.map(|x| x * x))
        .inline_stage("even", |up| up.filter(|x| x % 2 == 0));
    assert_eq!(chain.size_hint(), (0, Some(7)));
    let (items, error) = split(chain.by_ref());
    assert_eq!(items, [4, 16, 36]);
    assert!(error.is_none());
    // Fused: the end stays the end.
    assert!(chain.next().is_none());
    assert!(chain.next().is_none());
    assert_eq!(chain.names(), ["numbers", "squares", "even"]);
}

#[test]
fn a_stage_turns_one_item_into_many_and_many_into_one() {
    let sums: Vec<u32> = inline_source("lines", ["1 2", "", "3 4 5"])
        .inline_stage("numbers", |up| {
            up.flat_map(|line| line.split_whitespace().map(|w| w.parse::<u32>().unwrap()))
        })
        .inline_stage("pairs", |mut up| {
            std::iter::from_fn(move || Some(up.next()? + up.next().unwrap_or(0)))
        })
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(sums, [3, 7, 5]);
}

#[test]
fn a_panic_is_reported_under_the_stage_that_panicked() {
    // The panic in each of the three places: the source, a middle stage,
    // the last stage.
    for (at, stage) in [(0, "numbers"), (1, "checked"), (2, "last")] {
        let boom = move |here: usize, x: u32| {
            if here == at && x == 3 {
                panic!("boom at {x}");
            }
            x
        };
        let chain = inline_source("numbers", (1..).map(move |x| boom(0, x)))
            .inline_stage("checked", move |up| up.map(move |x| boom(1, x)))
            .inline_stage("last", move |up| up.map(move |x| boom(2, x)));
        let (items, error) = split(chain);
        assert_eq!(items, [1, 2], "{stage}");
        let error = error.expect("an error");
        assert_eq!(error.stage(), stage);
        assert!(error.is_panic());
        assert_eq!(panic_message(&error), "boom at 3");
        assert_eq!(error.panic().unwrap().coroutine_name(), Some(stage));
        assert_eq!(error.to_string(), format!("stage '{stage}' panicked"));
    }
}

#[test]
fn a_chain_ends_after_its_error_and_drops_every_stage_then() {
    let drops = DropCounter::new();
    let (a, b, c) = (drops.token(), drops.token(), drops.token());
    let mut chain = inline_source("numbers", (1..).map(move |x: u32| (&a, x).1))
        .inline_stage("checked", move |up| {
            up.inspect(move |&x| {
                let _held = &b;
                assert!(x < 3, "too big");
            })
        })
        .inline_stage("last", move |up| up.map(move |x| (&c, x).1));
    assert_eq!(chain.next().unwrap().unwrap(), 1);
    assert_eq!(chain.next().unwrap().unwrap(), 2);
    assert_eq!(drops.live(), 3);
    let error = chain.next().unwrap().unwrap_err();
    assert_eq!(error.stage(), "checked");
    assert_eq!(panic_message(&error), "too big");
    // The stages are gone before the chain is.
    assert_eq!(drops.live(), 0);
    assert!(chain.next().is_none());
    assert!(chain.next().is_none());
}

#[test]
fn dropping_a_chain_half_way_drops_every_stage_once() {
    let drops = DropCounter::new();
    let (a, b) = (drops.named("source"), drops.named("map"));
    let mut chain = inline_source("numbers", (0..).map(move |x: u32| (&a, x).1))
        .inline_stage("map", move |up| up.map(move |x| (&b, x + 1).1));
    assert_eq!(chain.next().unwrap().unwrap(), 1);
    assert_eq!(drops.live(), 2);
    drop(chain);
    assert_eq!(drops.live(), 0);
    let mut log = drops.log();
    log.sort_unstable();
    assert_eq!(log, ["map", "source"]);
}

#[test]
fn the_end_of_the_stream_drops_the_stages_before_the_chain_is_dropped() {
    let drops = DropCounter::new();
    let token = drops.token();
    let mut chain = inline_source("numbers", [1, 2])
        .inline_stage("hold", move |up| up.map(move |x: u32| (&token, x).1));
    assert_eq!(drops.live(), 1);
    assert_eq!(chain.by_ref().count(), 2);
    assert_eq!(drops.live(), 0);
}

#[test]
fn a_destructor_that_panics_at_the_end_of_the_stream_is_an_error() {
    let drops = DropCounter::new();
    let guard = PanicsOnDrop(drops.token());
    let mut chain = inline_source("numbers", [1, 2])
        .inline_stage("guarded", move |up| up.map(move |x: u32| (&guard, x).1));
    let (items, error) = split(chain.by_ref());
    assert_eq!(items, [1, 2]);
    let error = error.expect("the destructor's panic");
    assert_eq!(error.stage(), "guarded");
    assert_eq!(panic_message(&error), "a destructor panicked");
    assert_eq!(drops.live(), 0);
    assert!(chain.next().is_none());
}

#[test]
fn a_destructor_that_panics_after_a_stage_panicked_does_not_hide_that_panic() {
    let drops = DropCounter::new();
    let guard = PanicsOnDrop(drops.token());
    let chain = inline_source("numbers", 1..)
        .inline_stage("holds", move |up| up.map(move |x: u32| (&guard, x).1))
        .inline_stage("fails", |up| {
            up.map(|x| if x < 2 { x } else { panic!("first") })
        });
    let (items, error) = split(chain);
    assert_eq!(items, [1]);
    let error = error.unwrap();
    assert_eq!(error.stage(), "fails");
    assert_eq!(panic_message(&error), "first");
    assert_eq!(drops.live(), 0);
}

#[test]
fn a_fallible_stage_fails_with_its_err_and_the_stages_after_it_are_discarded() {
    let after_the_end = Rc::new(Cell::new(false));
    let seen = after_the_end.clone();
    let mut chain = inline_source("lines", ["1", "2", "x", "4"])
        .try_inline_stage("parse", |up| up.map(str::parse::<u32>))
        // A stage that yields one more item at the end of its input: after
        // the failure, it is discarded.
        .inline_stage("with total", move |mut up| {
            let mut total = 0;
            let mut done = false;
            std::iter::from_fn(move || {
                if done {
                    return None;
                }
                match up.next() {
                    Some(x) => {
                        total += x;
                        Some(x)
                    }
                    None => {
                        done = true;
                        seen.set(true);
                        Some(1000 + total)
                    }
                }
            })
        });
    assert_eq!(chain.next().unwrap().unwrap(), 1);
    assert_eq!(chain.next().unwrap().unwrap(), 2);
    let error = chain.next().unwrap().unwrap_err();
    assert!(
        after_the_end.get(),
        "the stage after saw the end of its input"
    );
    assert_eq!(error.stage(), "parse");
    assert!(!error.is_panic());
    let cause = error.error().expect("the stage's error").to_string();
    assert_eq!(cause, "invalid digit found in string");
    assert!(chain.next().is_none());
}

#[test]
fn the_last_stage_may_be_fallible() {
    let (items, error) = split(
        inline_source("numbers", 1..=5u32).try_inline_stage("small", |up| {
            up.map(|x| if x < 3 { Ok(x) } else { Err("too big") })
        }),
    );
    assert_eq!(items, [1, 2]);
    let error = error.unwrap();
    assert_eq!(error.stage(), "small");
    assert_eq!(error.to_string(), "stage 'small' failed");
    assert_eq!(error.error().unwrap().to_string(), "too big");
}

#[test]
fn after_a_pipeline_its_error_reaches_the_consumer_and_later_items_are_discarded() {
    let ended = Rc::new(Cell::new(false));
    let seen = ended.clone();
    let (items, error) = split(
        source(1..)
            .stage("tens", |co, up| {
                for x in up {
                    assert!(x < 3, "stackful stage failed at {x}");
                    co.suspend(x * 10);
                }
            })
            .inline_stage("plus one", |up| up.map(|x| x + 1))
            .inline_stage("with end", move |mut up| {
                let mut done = false;
                std::iter::from_fn(move || match up.next() {
                    Some(x) => Some(x),
                    None if !done => {
                        done = true;
                        seen.set(true);
                        Some(0)
                    }
                    None => None,
                })
            }),
    );
    assert_eq!(items, [11, 21]);
    assert!(ended.get());
    let error = error.unwrap();
    assert_eq!(error.stage(), "tens");
    assert_eq!(panic_message(&error), "stackful stage failed at 3");
}

#[test]
fn after_a_pipeline_a_panic_of_its_source_iterator_is_the_first_stages() {
    let (items, error) = split(
        source((1..).map(|x: u32| if x < 3 { x } else { panic!("source broke") }))
            .inline_stage("first", |up| up.map(|x| x * 2))
            .inline_stage("second", |up| up.map(|x| x + 1)),
    );
    assert_eq!(items, [3, 5]);
    let error = error.unwrap();
    assert_eq!(error.stage(), "first");
    assert_eq!(panic_message(&error), "source broke");
}

#[test]
fn a_stackful_stage_after_an_inline_chain_sees_its_items_and_its_error() {
    let (items, error) = split(
        inline_source("numbers", 1..)
            .inline_stage("checked", |up| {
                up.map(|x: u32| if x < 4 { x } else { panic!("four") })
            })
            .stage("sum so far", |co, up| {
                let mut sum = 0;
                for x in up {
                    sum += x;
                    co.suspend(sum);
                }
            }),
    );
    assert_eq!(items, [1, 3, 6]);
    let error = error.unwrap();
    assert_eq!(error.stage(), "checked");
}

#[test]
fn a_panic_of_the_consumer_is_not_the_chains() {
    let mut chain =
        inline_source("numbers", 1..=3u32).inline_stage("double", |up| up.map(|x| x * 2));
    let caught = catch_unwind(AssertUnwindSafe(|| {
        for item in chain.by_ref() {
            if item.unwrap() == 4 {
                panic!("the consumer's own");
            }
        }
    }));
    let payload = caught.unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"the consumer's own"));
    // The chain is untouched and goes on where it was.
    assert_eq!(chain.next().unwrap().unwrap(), 6);
    assert!(chain.next().is_none());
}

#[test]
fn chains_nested_in_a_stage_report_their_own_stages() {
    // The outer stage runs an inner chain per item; the inner chain's third
    // run fails in its second stage, and the outer stage panics on that.
    let chain = inline_source("runs", 1..=4u32).inline_stage("outer", |up| {
        up.map(|run| {
            let inner = inline_source("inner source", 0..run)
                .inline_stage("inner check", move |up| {
                    up.map(move |x| if run == 3 { panic!("inner {x}") } else { x })
                });
            match split(inner) {
                (items, None) => items.len() as u32,
                (_, Some(error)) => {
                    assert_eq!(error.stage(), "inner check");
                    assert_eq!(panic_message(&error), "inner 0");
                    panic!("outer gave up at run {run}");
                }
            }
        })
    });
    let (items, error) = split(chain);
    assert_eq!(items, [1, 2]);
    let error = error.unwrap();
    assert_eq!(error.stage(), "outer");
    assert_eq!(panic_message(&error), "outer gave up at run 3");
}

#[test]
fn a_time_limit_cutting_a_wait_inside_a_stage_is_reported_once() {
    let ev = EventLoop::new();
    let h = ev.spawn(|| {
        let (_tx, rx) = channel::<u32>(1); // nobody sends
        let mut chain = source(rx).inline_stage("pass", |up| up.map(|x| x + 1));
        let cut = timeout(Duration::from_millis(1), || chain.next());
        let error = chain.next().map(|item| item.unwrap_err());
        (cut.is_err(), error, chain.next().is_none())
    });
    ev.run().unwrap();
    let (cut, error, then_ends) = h.join().unwrap();
    assert!(cut, "the time limit expired");
    let error = error.expect("an error, not the end of the stream");
    assert_eq!(error.stage(), "pass");
    let cause = std::error::Error::source(&error).unwrap().to_string();
    assert!(cause.starts_with("the stage died unfinished"), "{cause}");
    assert!(then_ends, "reported once");
}

#[test]
fn adding_a_stage_to_an_ended_chain_panics() {
    let mut chain = inline_source("empty", std::iter::empty::<u32>());
    assert!(chain.next().is_none());
    let caught = catch_unwind(AssertUnwindSafe(|| chain.inline_stage("late", |up| up)));
    let payload = caught.unwrap_err();
    let message = payload.downcast_ref::<String>().unwrap();
    assert_eq!(message, "inline_stage: the chain has already ended");
}

#[test]
fn an_input_moved_out_of_its_chain_and_pulled_later_is_safe() {
    // The stage hands its input out; the chain is dropped; the input is
    // pulled afterwards, and its stage panics on the way.
    let stash = Rc::new(Cell::new(None));
    let keep = stash.clone();
    let chain = inline_source(
        "numbers",
        (1..).map(|x: u32| if x < 2 { x } else { panic!("late") }),
    )
    .inline_stage("stasher", move |up| {
        keep.set(Some(up));
        std::iter::empty::<u32>()
    });
    assert_eq!(split(chain).0, Vec::<u32>::new());
    let mut input = stash.take().unwrap();
    assert_eq!(input.next(), Some(1));
    let caught = catch_unwind(AssertUnwindSafe(|| input.next()));
    assert!(caught.is_err());
    // Another chain afterwards is not confused by the mark left behind.
    let (items, error) = split(
        inline_source("a", 1..)
            .inline_stage("b", |up| up.map(|x: u32| x))
            .inline_stage("c", |up| up.map(|x| if x < 2 { x } else { panic!("c") })),
    );
    assert_eq!(items, [1]);
    assert_eq!(error.unwrap().stage(), "c");
}

// The fold path: `fold`, `try_fold` and what is built on them (`sum`,
// `collect`, `for_each`, `try_for_each`) run the whole loop behind one
// catch, on the stages moved into the consumer's frame.

/// A chain whose stage "checked" panics at 4.
fn failing_at_four() -> impl Iterator<Item = PipelineItem<u32>> {
    inline_source("numbers", 1..=10u32)
        .inline_stage("checked", |up| {
            up.map(|x| {
                if x < 4 {
                    x
                } else {
                    panic!("four or more: {x}")
                }
            })
        })
        .inline_stage("doubled", |up| up.map(|x| x * 2))
}

#[test]
fn sum_stops_at_a_stage_panic_and_names_the_stage() {
    let error = failing_at_four().sum::<Result<u32, _>>().unwrap_err();
    assert_eq!(error.stage(), "checked");
    assert_eq!(panic_message(&error), "four or more: 4");
    let total: u32 = inline_source("numbers", 1..=10u32)
        .inline_stage("doubled", |up| up.map(|x| x * 2))
        .sum::<Result<u32, _>>()
        .unwrap();
    assert_eq!(total, 110);
}

#[test]
fn fold_hands_the_items_then_the_error_to_the_closure() {
    let seen = failing_at_four().fold(Vec::new(), |mut seen, item| {
        seen.push(item.map_err(|error| error.stage().to_string()));
        seen
    });
    assert_eq!(seen, [Ok(2), Ok(4), Ok(6), Err("checked".to_string())]);
}

#[test]
fn a_fold_that_stops_early_leaves_the_chain_where_it_stopped() {
    let mut chain =
        inline_source("numbers", 1..=6u32).inline_stage("tens", |up| up.map(|x| x * 10));
    let stopped = chain.by_ref().try_for_each(|item| {
        if item.unwrap() < 30 {
            Ok(())
        } else {
            Err("stop")
        }
    });
    assert_eq!(stopped, Err("stop"));
    assert_eq!(chain.next().unwrap().unwrap(), 40);
    // And a second fold goes on from there.
    assert_eq!(
        chain.by_ref().map(Result::unwrap).collect::<Vec<_>>(),
        [50, 60]
    );
    assert!(chain.next().is_none());
}

#[test]
fn the_consumers_panic_in_a_fold_goes_on_and_the_chain_stays_usable() {
    let drops = DropCounter::new();
    let token = drops.token();
    let mut chain = inline_source("numbers", 1..=5u32)
        .inline_stage("held", move |up| up.map(move |x| (&token, x).1));
    let caught = catch_unwind(AssertUnwindSafe(|| {
        chain.by_ref().for_each(|item| {
            if item.unwrap() == 2 {
                panic!("the consumer's own");
            }
        });
    }));
    let payload = caught.unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"the consumer's own"));
    assert_eq!(drops.live(), 1, "the stages are kept");
    assert_eq!(chain.next().unwrap().unwrap(), 3);
    assert_eq!(chain.count(), 2);
    assert_eq!(drops.live(), 0);
}

#[test]
fn a_fold_after_a_failed_pipeline_hands_on_its_error_and_discards_the_rest() {
    let items: Vec<_> = source(1..)
        .stage("stackful", |co, up| {
            for x in up {
                if x == 3 {
                    return Err("three");
                }
                co.suspend(x);
            }
            Ok(())
        })
        .inline_stage("with end", |mut up| {
            let mut done = false;
            std::iter::from_fn(move || match up.next() {
                Some(x) => Some(x),
                None if !done => {
                    done = true;
                    Some(0)
                }
                None => None,
            })
        })
        .collect();
    assert_eq!(items.len(), 3, "two items and the error, not the end's 0");
    assert_eq!(*items[0].as_ref().unwrap(), 1);
    assert_eq!(*items[1].as_ref().unwrap(), 2);
    assert_eq!(items[2].as_ref().unwrap_err().stage(), "stackful");
}

#[test]
fn collect_into_a_result_stops_at_a_fallible_stages_err() {
    let parsed: Result<Vec<u32>, _> = inline_source("lines", ["1", "2", "x", "4"])
        .try_inline_stage("parse", |up| up.map(str::parse::<u32>))
        .collect();
    let error = parsed.unwrap_err();
    assert_eq!(error.stage(), "parse");
    assert!(!error.is_panic());
}

#[test]
fn next_and_fold_give_the_same_items_and_error() {
    let by_next: Vec<_> = {
        let mut chain = failing_at_four();
        std::iter::from_fn(|| chain.next())
            .map(|item| item.map_err(|e| e.stage().to_string()))
            .collect()
    };
    let by_fold: Vec<_> = failing_at_four()
        .map(|item| item.map_err(|e| e.stage().to_string()))
        .collect();
    assert_eq!(by_next, by_fold);
    assert_eq!(by_next.len(), 4);
}
