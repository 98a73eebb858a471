//! Values that stages return at the end of the stream (`stage_returning`,
//! `try_stage_returning`): read after a normal end, and what the handle says
//! when the stage fails, panics, or the consumer stops early.

use std::io;

use cogen::pipeline::{
    PipelineExt, ResultState, StageError, StageResult, Upstream, read_chunks, source,
};
use cogen::{Coroutine, Yielder};

mod support;
use support::DropCounter;

/// A stage body that hands on the lines that are UTF-8 and counts the others.
fn skip_invalid<U>(co: &Yielder<(), String>, up: Upstream<U>) -> u64
where
    U: Iterator<Item = Result<Vec<u8>, StageError>>,
{
    let mut skipped = 0;
    for line in up {
        match String::from_utf8(line) {
            Ok(line) => co.suspend(line),
            Err(_) => skipped += 1,
        }
    }
    skipped
}

#[test]
fn the_value_is_there_after_the_stream_ends_and_not_before() {
    let log = b"a\n\xff\nb\n\xfe\xfd\nc";
    let (mut lines, skipped) = read_chunks(&log[..], 3)
        .byte_lines()
        .stage_returning("utf8", skip_invalid);
    assert_eq!(skipped.state(), ResultState::Unfinished);
    assert_eq!(lines.next().unwrap().unwrap(), "a");
    assert_eq!(skipped.get(), None);
    assert_eq!(
        lines.by_ref().map(Result::unwrap).collect::<Vec<_>>(),
        ["b", "c"]
    );
    assert_eq!(skipped.state(), ResultState::Returned);
    assert_eq!(skipped.get(), Some(2));
    assert_eq!(skipped.take(), Some(2));
    assert_eq!(skipped.take(), None);
    assert_eq!(skipped.state(), ResultState::Taken);
    // The pipeline is fused; pulling on after the end changes nothing.
    assert!(lines.next().is_none());
    assert_eq!(skipped.state(), ResultState::Taken);
}

#[test]
fn a_later_stage_sees_the_value_as_soon_as_the_returning_stage_ended() {
    let (counted, n) = source(0..10).stage_returning("count", |co, up| {
        let mut n = 0;
        for x in up {
            n += 1;
            co.suspend(x);
        }
        n
    });
    // The last stage stops pulling at the end of its input: the value is
    // ready as soon as the whole stream has been pulled.
    let sum: u32 = counted.map(Result::unwrap).sum();
    assert_eq!((sum, n.take()), (45, Some(10)));
}

#[test]
fn an_err_of_the_stage_fails_it_and_reaches_the_consumer() {
    let (stage, result): (_, StageResult<u32>) = source(["1", "2", "three", "4"])
        .try_stage_returning("parse", |co, up| {
            let mut sum = 0;
            for text in up {
                let n = text.parse::<u32>()?;
                sum += n;
                co.suspend(n);
            }
            Ok::<_, std::num::ParseIntError>(sum)
        });
    let items: Vec<_> = stage.collect();
    assert_eq!(items.len(), 3);
    let error = items[2].as_ref().unwrap_err();
    assert_eq!(error.stage(), "parse");
    assert!(!error.is_panic());
    assert_eq!(result.state(), ResultState::Failed);
    assert_eq!(result.take(), None);
    assert_eq!(result.get(), None);
}

#[test]
fn an_ok_of_a_fallible_stage_is_the_value() {
    let (stage, result) = source(["1", "2"]).try_stage_returning("parse", |co, up| {
        let mut sum = 0;
        for text in up {
            sum += text.parse::<u32>()?;
            co.suspend(());
        }
        Ok::<_, std::num::ParseIntError>(sum)
    });
    assert_eq!(stage.count(), 2);
    assert_eq!(result.take(), Some(3));
}

#[test]
fn a_failed_upstream_discards_the_value_the_stage_returns_afterwards() {
    let failing = source([Ok(1), Ok(2), Err(io::Error::other("disk"))]).stage(
        "read",
        |co, up| -> io::Result<()> {
            for item in up {
                co.suspend(item?);
            }
            Ok(())
        },
    );
    let (stage, count) = failing.stage_returning("count", |co, up| {
        let mut n = 0;
        for x in up {
            n += 1;
            co.suspend(x);
        }
        n // reached with a partial count once the upstream failed
    });
    let items: Vec<_> = stage.collect();
    assert_eq!(items.len(), 3);
    assert_eq!(items[2].as_ref().unwrap_err().stage(), "read");
    assert_eq!(count.state(), ResultState::Failed);
    assert_eq!(count.take(), None);
}

#[test]
fn a_panic_in_the_stage_fails_it() {
    let drops = DropCounter::new();
    let token = drops.token();
    let (stage, result): (_, StageResult<u32>) =
        source(1..=3u32).stage_returning("boom", move |co, up| {
            let _token = token;
            for x in up {
                if x == 2 {
                    panic!("two");
                }
                co.suspend(x);
            }
            0
        });
    let items: Vec<_> = stage.collect();
    assert_eq!(items.len(), 2);
    let error = items[1].as_ref().unwrap_err();
    assert!(error.is_panic());
    assert_eq!(error.panic().unwrap().message(), "two");
    assert_eq!(result.state(), ResultState::Failed);
    assert_eq!(result.take(), None);
    assert_eq!(drops.live(), 0);
}

#[test]
fn a_consumer_that_stops_early_leaves_the_result_unfinished() {
    let drops = DropCounter::new();
    let token = drops.token();
    let (mut stage, result) = source(1..=100u32).stage_returning("sum", move |co, up| {
        let _token = token;
        let mut sum = 0;
        for x in up {
            sum += x;
            co.suspend(x);
        }
        sum
    });
    assert_eq!(stage.next().unwrap().unwrap(), 1);
    drop(stage); // closes the suspended stage: its body never returns
    assert_eq!(drops.live(), 0);
    assert_eq!(result.state(), ResultState::Unfinished);
    assert_eq!(result.take(), None);
    // Pulling every item but not the end also leaves the body suspended.
    let (stage, result) = source(1..=2u32).stage_returning("sum", |co, up| {
        let mut sum = 0;
        for x in up {
            sum += x;
            co.suspend(x);
        }
        sum
    });
    let firsts: Vec<_> = stage.take(2).collect();
    assert_eq!(firsts.len(), 2);
    assert_eq!(result.state(), ResultState::Unfinished);
}

#[test]
fn a_failure_after_the_returning_stage_keeps_its_value() {
    let (counted, n) = source(1..=3u32).stage_returning("count", |co, up| {
        let mut n = 0;
        for x in up {
            n += 1;
            co.suspend(x);
        }
        n
    });
    // A later stage that fails only after its input ended.
    let last = counted.stage("check", |co, up| -> Result<(), &'static str> {
        for x in up {
            co.suspend(x);
        }
        Err("checked too late")
    });
    let items: Vec<_> = last.collect();
    assert_eq!(items.len(), 4);
    assert_eq!(n.take(), Some(3));
}

#[test]
fn a_returning_stage_is_an_ordinary_stage() {
    let (stage, result) = source(["x y", "z"])
        .words()
        .stage_returning("upper", |co, up| {
            up.map(|w| co.suspend(w.to_uppercase())).count()
        });
    let _: &cogen::pipeline::Stage<Coroutine<(), String>> = &stage;
    assert_eq!(stage.name(), "upper");
    let words: Vec<String> = stage.collect::<Result<_, _>>().unwrap();
    assert_eq!(words, ["X", "Y", "Z"]);
    assert_eq!(result.take(), Some(3));
    assert!(format!("{result:?}").contains("Taken"));
}

#[test]
fn a_clone_that_panics_in_get_leaves_the_value_in_place() {
    use std::cell::Cell;
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::rc::Rc;

    /// Panics on its first `clone` only.
    struct Flaky(Rc<Cell<bool>>, u32);
    impl Clone for Flaky {
        fn clone(&self) -> Self {
            if self.0.replace(false) {
                panic!("clone failed once");
            }
            Flaky(self.0.clone(), self.1)
        }
    }
    let first = Rc::new(Cell::new(true));
    let flaky = first.clone();
    let (stage, result) = source([1u32, 2])
        .stage_returning("sum", move |_co: &Yielder<(), u32>, up| {
            Flaky(flaky, up.sum())
        });
    assert_eq!(stage.count(), 0);
    assert_eq!(result.state(), ResultState::Returned);
    let panicked = catch_unwind(AssertUnwindSafe(|| result.get()));
    assert!(panicked.is_err());
    // The value survived the failed copy: a second copy and the value
    // itself are still there.
    assert_eq!(result.state(), ResultState::Returned);
    assert_eq!(result.get().map(|v| v.1), Some(3));
    assert_eq!(result.take().map(|v| v.1), Some(3));
    assert_eq!(result.state(), ResultState::Taken);
}
