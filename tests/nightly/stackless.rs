//! The tests of `tests/stackless.rs`, in a module that is only parsed with
//! the `nightly` feature (`yield` and `#[coroutine]` do not parse on stable).

use std::cell::Cell;
use std::ops::{Coroutine as _, CoroutineState};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::rc::Rc;

use cogen::stackless::{self, Stackless};
use cogen::{Coroutine, CoroutineResult, Generator, Resumable, ResumeError, Status, generator};

use crate::support::DropCounter;

#[test]
fn values_flow_both_ways_and_the_first_input_is_the_argument() {
    let mut co = Stackless::new(
        #[coroutine]
        |(a, b): (i32, i32)| {
            let (c, d) = yield a + b;
            c * d
        },
    );
    assert_eq!(co.status(), Status::Suspended);
    assert_eq!(co.resume((1, 2)).unwrap(), CoroutineResult::Yield(3));
    assert_eq!(co.resume((4, 5)).unwrap(), CoroutineResult::Return(20));
    assert_eq!(co.status(), Status::Dead);
}

#[test]
fn resuming_after_return_is_dead_not_a_std_panic() {
    let mut co = Stackless::new(
        #[coroutine]
        |x: u8| {
            if x == 0 {
                yield x;
            }
            x + 1
        },
    );
    assert_eq!(co.resume(1).unwrap(), CoroutineResult::Return(2));
    for i in 2..5 {
        assert!(matches!(co.resume(i), Err(ResumeError::Dead(n)) if n == i));
    }
    assert!(co.is_dead());
    assert!(co.close().is_ok());
}

#[test]
fn a_panic_is_an_error_value_then_the_coroutine_is_dead() {
    let mut co = Stackless::new(
        #[coroutine]
        |x: u32| {
            let y = yield x;
            if y == 0 {
                panic!("division by zero");
            }
            x / y
        },
    )
    .with_name("divider");
    assert_eq!(co.resume(10).unwrap(), CoroutineResult::Yield(10));
    let err = co.resume(0).unwrap_err();
    assert!(err.is_panic());
    let panic = err.try_into_panic().unwrap();
    assert_eq!(panic.message(), "division by zero");
    assert_eq!(panic.coroutine_name(), Some("divider"));
    assert_eq!(
        panic.to_string(),
        "coroutine 'divider' panicked: division by zero"
    );
    // No "coroutine resumed after panicking" from std: a dead error instead.
    assert!(matches!(co.resume(5), Err(ResumeError::Dead(5))));
    // Like a stackful coroutine, the first close reports the death once.
    assert_eq!(co.close().unwrap_err().message(), "division by zero");
    assert!(co.close().is_ok());
}

#[test]
fn non_string_panic_payloads_are_kept() {
    let mut co = Stackless::new(
        #[coroutine]
        || {
            yield ();
            std::panic::panic_any(7u64);
        },
    );
    co.resume(()).unwrap();
    let payload = co.resume(()).unwrap_err().into_panic();
    assert_eq!(payload.downcast_ref::<u64>(), Some(&7));
}

#[test]
fn close_drops_live_values_once() {
    let drops = DropCounter::new();
    let d = drops.clone();
    let mut co = Stackless::new(
        #[coroutine]
        move || {
            let _guard = d.token();
            yield 1;
            yield 2;
        },
    );
    assert_eq!(co.resume(()).unwrap(), CoroutineResult::Yield(1));
    assert_eq!(drops.count(), 0);
    co.close().unwrap();
    assert_eq!(drops.count(), 1);
    assert_eq!(co.status(), Status::Dead);
    assert!(matches!(co.resume(()), Err(ResumeError::Dead(()))));
    drop(co);
    assert_eq!(drops.count(), 1);
}

#[test]
fn drop_of_suspended_and_of_unstarted_coroutines_drops_once() {
    let drops = DropCounter::new();
    // Suspended: the guard lives in the body's state.
    let d = drops.clone();
    let mut co = Stackless::new(
        #[coroutine]
        move || {
            let _guard = d.token();
            yield;
        },
    );
    co.resume(()).unwrap();
    drop(co);
    assert_eq!(drops.count(), 1);
    // Never started: the guard is only captured.
    let guard = drops.token();
    let co = Stackless::new(
        #[coroutine]
        move || {
            let _g = &guard;
            yield;
        },
    );
    drop(co);
    assert_eq!(drops.count(), 2);
    // Finished: dropped at the return, not again.
    let guard = drops.token();
    let mut co = Stackless::new(
        #[coroutine]
        move || {
            drop(guard);
            yield;
        },
    );
    co.resume(()).unwrap();
    assert_eq!(drops.count(), 3);
    assert!(matches!(co.resume(()), Ok(CoroutineResult::Return(()))));
    drop(co);
    assert_eq!(drops.count(), 3);
}

#[test]
fn a_panic_drops_the_body_values_once() {
    let drops = DropCounter::new();
    let d = drops.clone();
    let mut co = Stackless::new(
        #[coroutine]
        move || {
            let _guard = d.token();
            yield;
            panic!("boom");
        },
    );
    co.resume(()).unwrap();
    assert!(co.resume(()).unwrap_err().is_panic());
    assert_eq!(drops.count(), 1);
    drop(co);
    assert_eq!(drops.count(), 1);
}

#[test]
fn close_reports_a_panicking_destructor() {
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("bomb went off");
        }
    }
    let mut co = Stackless::new(
        #[coroutine]
        || {
            let _bomb = Bomb;
            yield;
        },
    )
    .with_name("bomber");
    co.resume(()).unwrap();
    let panic = co.close().unwrap_err();
    assert_eq!(panic.message(), "bomb went off");
    assert_eq!(panic.coroutine_name(), Some("bomber"));
    assert!(co.is_dead());
}

/// Panics when dropped, and counts that drop.
struct PanicsOnDrop(Rc<Cell<u32>>, &'static str);

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
        panic!("{}", self.1);
    }
}

/// A hand-written `std::ops::Coroutine` that keeps a value after its inner
/// coroutine returned: the value goes only when the finished coroutine is
/// dropped, after the `resume` that returned.
struct KeepsAfterReturn<C> {
    co: C,
    _kept: PanicsOnDrop,
}

impl<R, C: std::ops::Coroutine<R> + Unpin> std::ops::Coroutine<R> for KeepsAfterReturn<C> {
    type Yield = C::Yield;
    type Return = C::Return;

    fn resume(self: Pin<&mut Self>, arg: R) -> CoroutineState<C::Yield, C::Return> {
        Pin::new(&mut self.get_mut().co).resume(arg)
    }
}

#[test]
fn a_finished_coroutine_whose_drop_panics_is_a_panic_error_not_a_panic() {
    let drops = Rc::new(Cell::new(0));
    let mut co = Stackless::new(KeepsAfterReturn {
        co: #[coroutine]
        |x: u32| {
            let y = yield x;
            x + y
        },
        _kept: PanicsOnDrop(drops.clone(), "kept value"),
    })
    .with_name("keeper");
    assert_eq!(co.resume(1).unwrap(), CoroutineResult::Yield(1));
    // The body returns; dropping what is left of the coroutine panics. That
    // is this resume's panic (the return value is lost), not one of `resume`.
    let result = catch_unwind(AssertUnwindSafe(|| co.resume(2)));
    let error = result.expect("`resume` never panics itself").unwrap_err();
    let panic = error.try_into_panic().unwrap();
    assert_eq!(panic.message(), "kept value");
    assert_eq!(panic.coroutine_name(), Some("keeper"));
    assert_eq!(drops.get(), 1);
    // Dead afterwards, like after any panic: the input is handed back, and
    // the first close reports the death once.
    assert!(co.is_dead());
    assert!(matches!(co.resume(3), Err(ResumeError::Dead(3))));
    assert_eq!(co.close().unwrap_err().message(), "kept value");
    assert!(co.close().is_ok());
    drop(co);
    assert_eq!(drops.get(), 1);
}

#[test]
fn a_captured_value_that_panics_on_drop_after_the_return_is_a_panic_error() {
    // A `#[coroutine]` closure drops its captures as its body returns,
    // inside that `resume`.
    let drops = Rc::new(Cell::new(0));
    let kept = PanicsOnDrop(drops.clone(), "captured value");
    let mut co = Stackless::new(
        #[coroutine]
        move || {
            let _kept = &kept;
            yield 1;
            2
        },
    );
    assert_eq!(co.resume(()).unwrap(), CoroutineResult::Yield(1));
    let result = catch_unwind(AssertUnwindSafe(|| co.resume(())));
    let error = result.expect("`resume` never panics itself").unwrap_err();
    assert_eq!(error.panic().unwrap().message(), "captured value");
    assert_eq!(drops.get(), 1);
    assert!(co.is_dead());
    assert!(matches!(co.resume(()), Err(ResumeError::Dead(()))));
    drop(co);
    assert_eq!(drops.get(), 1);
}

#[test]
fn pinned_static_coroutines_may_borrow_across_yields() {
    let mut co = Stackless::pinned(
        #[coroutine]
        static |start: usize| {
            let words = [String::from("a"), String::from("b")];
            let mut total = start;
            for w in &words {
                total += yield w.len();
            }
            total
        },
    );
    assert_eq!(co.resume(0).unwrap(), CoroutineResult::Yield(1));
    assert_eq!(co.resume(10).unwrap(), CoroutineResult::Yield(1));
    assert_eq!(co.resume(20).unwrap(), CoroutineResult::Return(30));
    assert!(matches!(co.resume(0), Err(ResumeError::Dead(0))));
}

#[test]
fn stackless_generator_is_a_fused_iterator_with_a_return_value() {
    let mut g = stackless::generator(
        #[coroutine]
        || {
            for c in "xyz".chars() {
                yield c;
            }
            3
        },
    );
    assert_eq!(g.by_ref().collect::<String>(), "xyz");
    assert_eq!(g.next(), None);
    assert_eq!(g.take_return_value(), Some(3));
}

#[test]
fn stackless_generator_panic_is_reraised_in_the_consumer() {
    let mut g = stackless::generator(
        #[coroutine]
        || {
            yield 1;
            panic!("stackless failure");
        },
    );
    assert_eq!(g.next(), Some(1));
    let payload = catch_unwind(AssertUnwindSafe(|| g.next())).unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"stackless failure"));
    assert_eq!(g.next(), None);
}

#[test]
fn stackful_bodies_delegate_to_stackless_generators() {
    let mut g = generator(|co| {
        let a = co.delegate(Stackless::new(
            #[coroutine]
            || {
                yield 1;
                yield 2;
                "a"
            },
        ));
        let b = co.delegate(generator(|co| {
            co.suspend(3);
            "b"
        }));
        format!("{a}{b}")
    });
    assert_eq!(g.by_ref().collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(g.return_value().map(String::as_str), Some("ab"));
}

#[test]
fn stackless_coroutines_can_drive_stackful_ones() {
    let mut inner = generator(|co| {
        co.suspend(10);
        co.suspend(20);
    });
    let mut outer = Stackless::new(
        #[coroutine]
        move || {
            // A `for` loop would hold a borrow of `inner` across the yield.
            #[allow(clippy::while_let_on_iterator)]
            while let Some(x) = inner.next() {
                yield x + 1;
            }
        },
    );
    assert_eq!(outer.resume(()).unwrap(), CoroutineResult::Yield(11));
    assert_eq!(outer.resume(()).unwrap(), CoroutineResult::Yield(21));
    assert_eq!(outer.resume(()).unwrap(), CoroutineResult::Return(()));
}

#[test]
fn inside_a_stackful_coroutine_running_names_the_stackful_one() {
    let mut co = cogen::Builder::new().name("host").build(|co, ()| {
        let mut g = stackless::generator(
            #[coroutine]
            || {
                let me = cogen::running().expect("inside the host");
                yield me.name().map(str::to_owned);
            },
        );
        co.suspend(g.next().flatten());
    });
    assert_eq!(
        co.resume(()).unwrap().as_yield(),
        Some(Some("host".to_owned()))
    );
}

/// The same sequence of operations on a stackful and a stackless coroutine
/// gives the same results, errors included.
#[test]
fn stackful_and_stackless_agree_through_the_trait() {
    fn run<G: Resumable<i32, Yield = i32, Return = i32>>(mut co: G) -> Vec<String> {
        let mut log = Vec::new();
        for input in [5, 3, 0, 1, 2] {
            log.push(match co.resume(input) {
                Ok(CoroutineResult::Yield(y)) => format!("yield {y}"),
                Ok(CoroutineResult::Return(r)) => format!("return {r}"),
                Err(ResumeError::Dead(i)) => format!("dead {i}"),
                Err(ResumeError::Panicked(p)) => format!("panic {}", p.message()),
            });
            log.push(format!("{:?}", co.status()));
        }
        log.push(format!(
            "{:?}",
            co.close().map_err(|p| p.message().to_owned())
        ));
        log
    }
    let stackful = run(Coroutine::new(|co, first: i32| {
        let mut total = first;
        loop {
            let x = co.suspend(total);
            if x == 0 {
                panic!("zero");
            }
            total += x;
        }
    }));
    let stackless = run(Stackless::new(
        #[coroutine]
        |first: i32| {
            let mut total = first;
            loop {
                let x = yield total;
                if x == 0 {
                    panic!("zero");
                }
                total += x;
            }
        },
    ));
    assert_eq!(stackful, stackless);
    assert_eq!(
        stackful,
        [
            "yield 5",
            "Suspended",
            "yield 8",
            "Suspended",
            "panic zero",
            "Dead",
            "dead 1",
            "Dead",
            "dead 2",
            "Dead",
            "Err(\"zero\")"
        ]
    );
}

#[test]
fn generator_adapter_takes_both_kinds_in_one_collection() {
    type Dyn = Box<dyn Resumable<(), Yield = u8, Return = ()>>;
    let gens: Vec<Dyn> = vec![
        Box::new(generator(|co| co.suspend_all([1, 2]))),
        Box::new(Stackless::new(
            #[coroutine]
            || {
                yield 3;
                yield 4;
            },
        )),
    ];
    let all: Vec<u8> = gens.into_iter().flat_map(Generator::new).collect();
    assert_eq!(all, [1, 2, 3, 4]);
}

#[test]
fn the_adapter_costs_no_semantics_against_raw_resume() {
    // The same coroutine type, resumed raw and through the adapter.
    fn make() -> impl std::ops::Coroutine<u32, Yield = u32, Return = ()> + Unpin {
        #[coroutine]
        |mut x: u32| {
            while x < 100 {
                x = (yield x * 2) + x;
            }
        }
    }
    let mut raw = make();
    let mut wrapped = Stackless::new(make());
    for i in 1..20 {
        let a = Pin::new(&mut raw).resume(i);
        let b = wrapped.resume(i);
        match (a, b) {
            (std::ops::CoroutineState::Yielded(x), Ok(CoroutineResult::Yield(y))) => {
                assert_eq!(x, y)
            }
            (std::ops::CoroutineState::Complete(()), Ok(CoroutineResult::Return(()))) => break,
            other => panic!("diverged: {other:?}"),
        }
    }
}

/// A stackless coroutine resumed inside a stackful body may suspend the
/// stackful one (through a borrowed `Yielder`). Closing the stackful one
/// then unwinds through the stackless adapter's panic catching, which must
/// let that unwind go on
/// ([corosensei#57](https://github.com/Amanieu/corosensei/issues/57)) and
/// still drop everything once.
#[test]
fn closing_a_stackful_coroutine_unwinds_through_a_stackless_one() {
    let drops = DropCounter::new();
    let (outer_guard, inner_guard) = (drops.token(), drops.token());
    let mut outer = Coroutine::new(move |co: &cogen::Yielder<(), &'static str>, ()| {
        let _outer = outer_guard;
        let mut inner = Stackless::new(
            #[coroutine]
            || {
                let _inner = inner_guard;
                co.suspend("from inside the stackless body");
                yield ();
            },
        );
        let _ = inner.resume(());
        unreachable!("closed while suspended inside `inner`");
    });
    assert_eq!(
        outer.resume(()).unwrap(),
        CoroutineResult::Yield("from inside the stackless body")
    );
    assert_eq!(drops.count(), 0);
    outer.close().unwrap();
    assert_eq!(drops.count(), 2);
    assert_eq!(outer.status(), Status::Dead);
}

#[test]
fn a_stackless_coroutine_moves_to_another_thread_between_resumes() {
    fn assert_send<T: Send>(t: T) -> T {
        t
    }
    let mut co = assert_send(Stackless::new(
        #[coroutine]
        |x: u32| {
            let y = yield x + 1;
            x + y
        },
    ));
    assert_eq!(co.resume(1).unwrap(), CoroutineResult::Yield(2));
    let r = std::thread::spawn(move || co.resume(10).unwrap())
        .join()
        .unwrap();
    assert_eq!(r, CoroutineResult::Return(11));
}

/// An unnamed coroutine that panics has no name before or after, and its
/// first close still reports the death (the message is kept out of line,
/// in a record made only when there is something to keep).
#[test]
fn an_unnamed_panicking_coroutine_keeps_its_death_for_close() {
    let mut co = Stackless::new(
        #[coroutine]
        |x: u32| {
            if x == 0 {
                panic!("zero");
            }
            yield x;
        },
    );
    assert_eq!(co.name(), None);
    let panic = co.resume(0).unwrap_err().try_into_panic().unwrap();
    assert_eq!(panic.coroutine_name(), None);
    assert_eq!(panic.to_string(), "coroutine panicked: zero");
    assert_eq!(co.name(), None);
    assert_eq!(co.status(), Status::Dead);
    assert_eq!(co.close().unwrap_err().message(), "zero");
    assert!(co.close().is_ok());
}
