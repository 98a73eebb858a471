//! The typed coroutine: values both ways, return values, errors, panics as
//! values, suspending from deep recursion, iterators, `wrap`, scoped
//! coroutines, the builder and handles.

use std::cell::{Cell, RefCell};
use std::panic::AssertUnwindSafe;
use std::rc::Rc;

use cogen::{
    Builder, Coroutine, CoroutineHandle, CoroutineResult, Panic, ResumeError, ScopedCoroutine,
    Status, Yielder,
};

mod support;
use support::{DropCounter, DropToken};

// ---------------------------------------------------------------- values

#[test]
fn nothing_runs_before_the_first_resume() {
    let ran = Rc::new(Cell::new(false));
    let flag = ran.clone();
    let mut co: Coroutine<(), ()> = Coroutine::new(move |_, ()| flag.set(true));
    assert!(!ran.get());
    assert_eq!(co.status(), Status::Suspended);
    assert_eq!(co.resume(()).unwrap(), CoroutineResult::Return(()));
    assert!(ran.get());
}

#[test]
fn first_resume_input_is_the_body_argument() {
    let mut co: Coroutine<(i32, &'static str), (), String> =
        Coroutine::new(|_, (n, s)| format!("{s}{n}"));
    assert_eq!(
        co.resume((7, "x")).unwrap(),
        CoroutineResult::Return("x7".to_string())
    );
}

#[test]
fn values_flow_both_ways() {
    // Each suspend passes the running total out and returns the next input.
    let mut co = Coroutine::new(|co: &Yielder<i64, i64>, first| {
        let mut total = first;
        let mut inputs = vec![first];
        for _ in 0..3 {
            let next = co.suspend(total);
            inputs.push(next);
            total += next;
        }
        (total, inputs)
    });
    assert_eq!(co.resume(1).unwrap(), CoroutineResult::Yield(1));
    assert_eq!(co.resume(10).unwrap(), CoroutineResult::Yield(11));
    assert_eq!(co.resume(100).unwrap(), CoroutineResult::Yield(111));
    assert_eq!(
        co.resume(1000).unwrap(),
        CoroutineResult::Return((1111, vec![1, 10, 100, 1000]))
    );
    assert!(co.is_dead());
}

#[test]
fn yield_and_return_types_differ() {
    let mut co = Coroutine::new(|co: &Yielder<(), &'static str>, ()| {
        co.suspend("one");
        co.suspend("two");
        2_usize
    });
    let r = co.resume(()).unwrap();
    assert_eq!(r.as_yield(), Some("one"));
    assert_eq!(r.as_return(), None);
    assert_eq!(co.resume(()).unwrap().as_yield(), Some("two"));
    let r = co.resume(()).unwrap();
    assert_eq!(r.as_return(), Some(2));
    assert_eq!(r.as_yield(), None);
}

#[test]
fn coroutine_result_is_a_plain_value_type() {
    use std::collections::HashSet;
    let a: CoroutineResult<u8, u8> = CoroutineResult::Yield(1);
    let b = a; // Copy
    let set: HashSet<_> = [a, b, CoroutineResult::Return(1)].into_iter().collect();
    assert_eq!(set.len(), 2);
    assert_eq!(format!("{a:?}"), "Yield(1)");
}

#[test]
fn resuming_a_returned_coroutine_hands_the_input_back() {
    let mut co: Coroutine<String, (), ()> = Coroutine::new(|_, _| ());
    co.resume("first".into()).unwrap();
    let err = co.resume("undelivered".to_string()).unwrap_err();
    assert!(err.is_dead());
    assert!(!err.is_panic());
    assert!(err.panic().is_none());
    assert_eq!(err.to_string(), "cannot resume dead coroutine");
    assert_eq!(format!("{err:?}"), "Dead(..)");
    assert_eq!(err.into_input().as_deref(), Some("undelivered"));
    // Still dead, still handing inputs back.
    match co.resume("again".into()) {
        Err(ResumeError::Dead(input)) => assert_eq!(input, "again"),
        other => panic!("expected Dead, got {other:?}"),
    }
}

#[test]
fn dead_error_is_not_a_panic() {
    let mut co: Coroutine<u8, (), ()> = Coroutine::new(|_, _| ());
    co.resume(0).unwrap();
    let err = co.resume(5).unwrap_err();
    let err = err.try_into_panic().unwrap_err();
    assert_eq!(err.into_input(), Some(5));
}

#[test]
#[should_panic(expected = "`into_panic` called on a dead-coroutine error")]
fn into_panic_on_a_dead_error_panics() {
    let mut co: Coroutine<(), (), ()> = Coroutine::new(|_, ()| ());
    co.resume(()).unwrap();
    let _ = co.resume(()).unwrap_err().into_panic();
}

#[test]
fn undelivered_input_is_not_dropped() {
    let drops = DropCounter::default();
    let mut co: Coroutine<DropToken, (), ()> = Coroutine::new(|_, _first| ());
    co.resume(drops.token()).unwrap();
    assert_eq!(drops.count(), 1); // the body dropped its argument
    let back = co.resume(drops.token()).unwrap_err().into_input().unwrap();
    assert_eq!(drops.count(), 1); // handed back, not dropped
    drop(back);
    assert_eq!(drops.count(), 2);
}

// ---------------------------------------------------------------- panics

fn panicked<I>(result: Result<CoroutineResult<(), ()>, ResumeError<I>>) -> Panic {
    match result {
        Err(ResumeError::Panicked(p)) => p,
        Err(ResumeError::Dead(_)) => panic!("expected a panic, got Dead"),
        Ok(r) => panic!("expected a panic, got {r:?}"),
    }
}

#[test]
fn a_str_panic_comes_back_as_a_value() {
    let mut co: Coroutine<u32, (), ()> = Coroutine::new(|_, _| panic!("boom"));
    let err = co.resume(1).unwrap_err();
    assert!(err.is_panic());
    assert!(!err.is_dead());
    assert_eq!(err.panic().unwrap().message(), "boom");
    assert_eq!(err.to_string(), "coroutine panicked: boom");
    assert!(format!("{err:?}").contains("boom"));
    assert_eq!(
        err.into_panic().downcast_ref::<&str>().copied(),
        Some("boom")
    );
    // Dead after the panic; the next input is handed back.
    assert_eq!(co.status(), Status::Dead);
    assert!(co.is_dead());
    assert_eq!(co.resume(2).unwrap_err().into_input(), Some(2));
}

#[test]
fn a_string_panic_keeps_its_message() {
    let mut co: Coroutine<u32, (), ()> = Coroutine::new(|_, n| panic!("failed at {n}"));
    let p = panicked(co.resume(3));
    assert_eq!(p.message(), "failed at 3");
    assert_eq!(
        p.downcast_ref::<String>().map(String::as_str),
        Some("failed at 3")
    );
    assert!(p.coroutine_name().is_none());
}

#[test]
fn a_panic_with_a_non_string_payload_keeps_it() {
    #[derive(Debug, PartialEq)]
    struct Custom {
        code: i32,
    }
    let mut co: Coroutine<(), (), ()> =
        Coroutine::new(|_, ()| std::panic::panic_any(Custom { code: 100 }));
    let p = panicked(co.resume(()));
    assert_eq!(p.message(), "Box<dyn Any>");
    assert_eq!(p.downcast_ref::<Custom>(), Some(&Custom { code: 100 }));
    let payload = p.into_panic();
    assert_eq!(*payload.downcast::<Custom>().unwrap(), Custom { code: 100 });

    let mut co: Coroutine<(), (), ()> = Coroutine::new(|_, ()| std::panic::panic_any(42_u64));
    let err = co.resume(()).unwrap_err();
    assert_eq!(*err.into_panic().downcast::<u64>().unwrap(), 42);
}

#[test]
fn a_payload_that_is_not_sync_is_reached_by_exclusive_reference_or_by_value() {
    // `Cell` is `Send` but not `Sync`: `Panic` (which is `Sync`) lends it out
    // only through `&mut self` or by value, never through `&self`.
    let mut co: Coroutine<(), (), ()> =
        Coroutine::new(|_, ()| std::panic::panic_any(std::cell::Cell::new(5_u32)));
    let mut p = panicked(co.resume(()));
    assert_eq!(p.message(), "Box<dyn Any>");
    let cell = p
        .payload_mut()
        .downcast_mut::<std::cell::Cell<u32>>()
        .unwrap();
    cell.set(cell.get() + 1);
    let payload = p.into_panic();
    assert_eq!(payload.downcast::<std::cell::Cell<u32>>().unwrap().get(), 6);
}

#[test]
fn a_panic_after_suspending_is_reported_by_that_resume() {
    let mut co: Coroutine<bool, u8, ()> = Coroutine::new(|co, _| {
        if co.suspend(1) {
            panic!("asked to fail");
        }
    });
    assert_eq!(co.resume(false).unwrap(), CoroutineResult::Yield(1));
    let err = co.resume(true).unwrap_err();
    assert_eq!(err.panic().unwrap().message(), "asked to fail");
    assert!(co.is_dead());
}

#[test]
fn a_named_coroutine_names_its_panic() {
    let mut co: Coroutine<(), (), ()> = Builder::new().name("worker").build(|_, ()| panic!("oops"));
    let p = panicked(co.resume(()));
    assert_eq!(p.coroutine_name(), Some("worker"));
    assert_eq!(p.to_string(), "coroutine 'worker' panicked: oops");
    assert!(format!("{p:?}").contains("worker"));
}

#[test]
fn panic_resume_unwind_rethrows_the_original_payload() {
    let mut co: Coroutine<(), (), ()> = Coroutine::new(|_, ()| std::panic::panic_any(7_i32));
    let p = panicked(co.resume(()));
    let caught = std::panic::catch_unwind(AssertUnwindSafe(|| p.resume_unwind())).unwrap_err();
    assert_eq!(caught.downcast_ref::<i32>(), Some(&7));
}

#[test]
fn panics_are_errors_also_through_std_error() {
    let mut co: Coroutine<(), (), ()> = Coroutine::new(|_, ()| panic!("e"));
    let err = co.resume(()).unwrap_err();
    let dyn_err: &dyn std::error::Error = &err;
    assert_eq!(dyn_err.to_string(), "coroutine panicked: e");
    let p = err.try_into_panic().unwrap();
    let dyn_err: Box<dyn std::error::Error> = Box::new(p);
    assert_eq!(dyn_err.to_string(), "coroutine panicked: e");
}

// ------------------------------------------------------- deep recursion

enum Tree {
    Leaf(u32),
    Node(Box<Tree>, Box<Tree>),
}

fn build(lo: u32, hi: u32) -> Tree {
    if lo == hi {
        Tree::Leaf(lo)
    } else {
        let mid = (lo + hi) / 2;
        Tree::Node(Box::new(build(lo, mid)), Box::new(build(mid + 1, hi)))
    }
}

/// Suspends once per leaf, from whatever depth the leaf is at.
fn walk(tree: &Tree, co: &Yielder<(), u32>) {
    match tree {
        Tree::Leaf(v) => co.suspend(*v),
        Tree::Node(l, r) => {
            walk(l, co);
            walk(r, co);
        }
    }
}

#[test]
fn suspends_from_a_recursive_tree_walk() {
    let tree = Rc::new(build(1, 1000));
    let t = tree.clone();
    let leaves: Vec<u32> = Coroutine::new(move |co, ()| walk(&t, co)).collect();
    assert_eq!(leaves, (1..=1000).collect::<Vec<_>>());
}

/// Two tree walks interleaved: Lua's "same fringe" problem, which needs
/// stackful coroutines.
#[test]
fn same_fringe_of_differently_shaped_trees() {
    fn left_comb(values: &[u32]) -> Tree {
        values
            .iter()
            .map(|&v| Tree::Leaf(v))
            .reduce(|acc, leaf| Tree::Node(Box::new(acc), Box::new(leaf)))
            .unwrap()
    }
    let a = Rc::new(build(1, 64));
    let b = Rc::new(left_comb(&(1..=64).collect::<Vec<_>>()));
    let (ta, tb) = (a.clone(), b.clone());
    let fa = Coroutine::new(move |co, ()| walk(&ta, co));
    let fb = Coroutine::new(move |co, ()| walk(&tb, co));
    assert!(fa.eq(fb));
}

#[test]
fn suspends_from_deep_linear_recursion() {
    fn down(depth: u32, co: &Yielder<u32, u32>) -> u32 {
        if depth == 0 {
            return 0;
        }
        // Suspend on the way down and on the way up.
        let got = co.suspend(depth);
        got + down(depth - 1, co)
    }
    let mut co = Coroutine::new(|co: &Yielder<u32, u32>, first: u32| first + down(2000, co));
    let mut expect = 2000;
    let mut r = co.resume(1).unwrap();
    while let CoroutineResult::Yield(depth) = r {
        assert_eq!(depth, expect);
        expect -= 1;
        r = co.resume(1).unwrap();
    }
    assert_eq!(expect, 0);
    assert_eq!(r, CoroutineResult::Return(2001));
}

// ---------------------------------------------------------------- iterator

#[test]
fn a_generator_is_a_fused_iterator_that_keeps_its_return_value() {
    let mut squares = Coroutine::new(|co: &Yielder<(), u32>, ()| {
        for i in 1..=4 {
            co.suspend(i * i);
        }
        "done".to_string()
    });
    assert_eq!(squares.return_value(), None);
    assert_eq!(squares.by_ref().collect::<Vec<_>>(), [1, 4, 9, 16]);
    assert_eq!(squares.return_value().map(String::as_str), Some("done"));
    for _ in 0..3 {
        assert_eq!(squares.next(), None); // fused
    }
    assert_eq!(squares.take_return_value().as_deref(), Some("done"));
    assert_eq!(squares.take_return_value(), None);
    assert!(squares.is_dead());
}

#[test]
fn generators_work_with_iterator_adapters() {
    let naturals = Coroutine::new(|co: &Yielder<(), u64>, ()| {
        let mut n = 0;
        loop {
            co.suspend(n);
            n += 1;
        }
    });
    let v: Vec<u64> = naturals.filter(|n| n % 3 == 0).skip(1).take(4).collect();
    assert_eq!(v, [3, 6, 9, 12]);
}

#[test]
fn a_panicking_generator_re_raises_in_the_caller() {
    let mut g = Coroutine::new(|co: &Yielder<(), u8>, ()| {
        co.suspend(1);
        std::panic::panic_any(99_u16);
    });
    assert_eq!(g.next(), Some(1));
    let caught = std::panic::catch_unwind(AssertUnwindSafe(|| g.next())).unwrap_err();
    assert_eq!(caught.downcast_ref::<u16>(), Some(&99));
    assert!(g.is_dead());
    assert_eq!(g.next(), None);
    assert_eq!(g.return_value(), None);
}

// ---------------------------------------------------------------- wrap

/// The message of a `&str` or `String` panic payload.
fn payload_str(payload: &(dyn std::any::Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

#[test]
fn wrap_passes_values_both_ways() {
    let mut echo = cogen::wrap(|co: &Yielder<String, usize>, first: String| {
        let mut total = first.len();
        loop {
            let s = co.suspend(total);
            if s.is_empty() {
                return total;
            }
            total += s.len();
        }
    });
    assert_eq!(echo("ab".into()), CoroutineResult::Yield(2));
    assert_eq!(echo("cde".into()), CoroutineResult::Yield(5));
    assert_eq!(echo(String::new()), CoroutineResult::Return(5));
}

#[test]
fn wrap_re_raises_a_panic_of_the_body() {
    let mut f = cogen::wrap(|co: &Yielder<u8, u8>, x| {
        let y = co.suspend(x);
        if y == 0 {
            panic!("division by zero");
        }
        x / y
    });
    assert_eq!(f(10), CoroutineResult::Yield(10));
    let caught = std::panic::catch_unwind(AssertUnwindSafe(|| f(0))).unwrap_err();
    assert_eq!(payload_str(&*caught), Some("division by zero"));
    // The coroutine is dead now: calling again is Lua's "cannot resume dead coroutine".
    let caught = std::panic::catch_unwind(AssertUnwindSafe(|| f(1))).unwrap_err();
    assert_eq!(payload_str(&*caught), Some("cannot resume dead coroutine"));
}

#[test]
#[should_panic(expected = "cannot resume dead coroutine")]
fn wrap_panics_when_called_after_returning() {
    let mut f = cogen::wrap(|_: &Yielder<(), ()>, ()| 1);
    assert_eq!(f(()), CoroutineResult::Return(1));
    f(());
}

// ---------------------------------------------------------------- scoped

#[test]
fn a_scoped_coroutine_borrows_locals_mutably() {
    let mut log = Vec::new();
    let words = ["alpha".to_string(), "beta".to_string()];
    let total = ScopedCoroutine::new(|co: &Yielder<usize, &str>, mut n: usize| {
        for w in &words {
            log.push(format!("yield {w}"));
            n += co.suspend(w.as_str());
        }
        n
    })
    .scope(|co| {
        assert_eq!(co.status(), Status::Suspended);
        assert_eq!(co.resume(1).unwrap(), CoroutineResult::Yield("alpha"));
        assert_eq!(co.resume(10).unwrap(), CoroutineResult::Yield("beta"));
        let r = co.resume(100).unwrap();
        assert!(co.is_dead());
        assert_eq!(co.status(), Status::Dead);
        r.as_return().unwrap()
    });
    assert_eq!(total, 111);
    assert_eq!(log, ["yield alpha", "yield beta"]); // the borrow ended with the scope
}

#[test]
fn a_scoped_coroutine_is_unwound_at_the_end_of_its_scope() {
    let drops = DropCounter::default();
    let mut reached_end = false;
    let handle = ScopedCoroutine::new(|co: &Yielder<(), ()>, ()| {
        let _on_stack = drops.token();
        co.suspend(());
        reached_end = true;
    })
    .scope(|co| {
        co.resume(()).unwrap();
        assert_eq!(drops.count(), 0);
        co.handle()
    });
    assert_eq!(drops.count(), 1);
    assert!(!reached_end);
    assert_eq!(handle.status(), Status::Dead);
}

#[test]
fn a_scoped_coroutine_never_resumed_drops_its_closure() {
    let drops = DropCounter::default();
    let token = drops.token();
    let mut ran = false;
    ScopedCoroutine::<(), (), ()>::new(|_, ()| {
        let _t = token;
        ran = true;
    })
    .scope(|co| assert_eq!(co.status(), Status::Suspended));
    assert!(!ran);
    assert_eq!(drops.count(), 1);
}

#[test]
fn a_scoped_coroutine_can_be_closed_and_reports_panics() {
    let drops = DropCounter::default();
    ScopedCoroutine::new(|co: &Yielder<(), ()>, ()| {
        let _t = drops.token();
        co.suspend(());
    })
    .scope(|co| {
        co.resume(()).unwrap();
        assert_eq!(co.close().map_err(|p| p.to_string()), Ok(()));
        assert_eq!(drops.count(), 1);
        assert!(co.is_dead());
        assert_eq!(co.close().map_err(|p| p.to_string()), Ok(()));
    });
    assert_eq!(drops.count(), 1);

    let mut counter = 0;
    ScopedCoroutine::<(), (), ()>::new(|_, ()| {
        counter += 1;
        panic!("scoped {counter}");
    })
    .scope(|co| {
        let err = co.resume(()).unwrap_err();
        assert_eq!(err.panic().unwrap().message(), "scoped 1");
        assert_eq!(co.close().unwrap_err().message(), "scoped 1");
        assert!(co.close().is_ok());
    });
    assert_eq!(counter, 1);
}

#[test]
fn builder_scoped_coroutines_have_names() {
    let local = 5;
    Builder::new()
        .name("scoped")
        .stack_size(64 * 1024)
        .build_scoped(|_: &Yielder<(), ()>, ()| local * 2)
        .scope(|co| {
            assert_eq!(co.handle().name(), Some("scoped"));
            assert!(format!("{co:?}").contains("scoped"));
            assert_eq!(co.resume(()).unwrap(), CoroutineResult::Return(10));
        });
    let co = Builder::new()
        .try_build_scoped(|_: &Yielder<(), ()>, ()| local)
        .unwrap();
    assert!(format!("{co:?}").contains("ScopedCoroutine"));
}

// ------------------------------------------------------ builder, handles

#[test]
fn builder_sets_name_and_stack_size() {
    let mut co: Coroutine<(), usize, ()> = Builder::new()
        .name(String::from("big"))
        .stack_size(8 * 1024 * 1024)
        .build(|co, ()| {
            // Use most of an 8 MiB stack: would overflow the 1 MiB default.
            let buf = [1_u8; 6 * 1024 * 1024];
            co.suspend(std::hint::black_box(&buf).iter().map(|&b| b as usize).sum());
        });
    assert_eq!(co.name(), Some("big"));
    assert_eq!(co.handle().name(), Some("big"));
    assert_eq!(
        co.resume(()).unwrap(),
        CoroutineResult::Yield(6 * 1024 * 1024)
    );
    assert!(format!("{co:?}").contains("big"));
}

#[test]
fn builder_defaults() {
    let b = Builder::default();
    assert!(format!("{b:?}").contains(&cogen::stack::DEFAULT_STACK_SIZE.to_string()));
    let mut co: Coroutine<(), (), u8> = b.try_build(|_, ()| 3).unwrap();
    assert_eq!(co.name(), None);
    assert_eq!(co.resume(()).unwrap(), CoroutineResult::Return(3));
}

#[test]
fn a_handle_outlives_its_coroutine_and_reads_dead() {
    let co: Coroutine<(), (), ()> = Coroutine::new(|co, ()| co.suspend(()));
    let handle = co.handle();
    let copy = handle.clone();
    assert_eq!(handle.status(), Status::Suspended);
    drop(co);
    assert_eq!(handle.status(), Status::Dead);
    assert_eq!(copy.status(), Status::Dead);
    assert!(handle.same_coroutine(&copy));
}

#[test]
fn a_handle_of_a_suspended_coroutine_reads_dead_after_drop() {
    let mut co: Coroutine<(), (), ()> = Coroutine::new(|co, ()| co.suspend(()));
    co.resume(()).unwrap();
    let handle = co.handle();
    drop(co);
    assert_eq!(handle.status(), Status::Dead);
}

#[test]
fn handles_tell_coroutines_apart() {
    let a: Coroutine<(), (), ()> = Builder::new().name("a").build(|_, ()| ());
    let b: Coroutine<(), (), ()> = Builder::new().name("b").build(|_, ()| ());
    let (ha, hb): (CoroutineHandle, CoroutineHandle) = (a.handle(), b.handle());
    assert!(ha.same_coroutine(&a.handle()));
    assert!(!ha.same_coroutine(&hb));
    assert_eq!(
        format!("{ha:?}"),
        r#"CoroutineHandle { name: Some("a"), status: Suspended }"#
    );
}

#[test]
fn debug_output_does_not_need_debug_types() {
    struct Opaque;
    let mut co: Coroutine<Opaque, Opaque, Opaque> = Coroutine::new(|co, _| {
        co.suspend(Opaque);
        Opaque
    });
    assert!(format!("{co:?}").starts_with("Coroutine {"));
    let _ = co.resume(Opaque);
    let _ = co.resume(Opaque);
    let err = co.resume(Opaque).err().unwrap();
    assert_eq!(format!("{err:?}"), "Dead(..)");
}

#[test]
fn many_coroutines_interleave() {
    let log = Rc::new(RefCell::new(String::new()));
    let mut cos: Vec<Coroutine<(), (), ()>> = ["a", "b", "c"]
        .into_iter()
        .map(|name| {
            let log = log.clone();
            Coroutine::new(move |co, ()| {
                for i in 0..2 {
                    log.borrow_mut().push_str(&format!("{name}{i} "));
                    co.suspend(());
                }
            })
        })
        .collect();
    while cos.iter().any(|c| !c.is_dead()) {
        for c in &mut cos {
            let _ = c.resume(());
        }
    }
    assert_eq!(log.borrow().as_str(), "a0 b0 c0 a1 b1 c1 ");
}

#[test]
fn a_scoped_coroutine_keeps_its_builder_name() {
    use cogen::Resumable;
    let local = 5;
    cogen::Builder::new()
        .name("scoped")
        .build_scoped(|_: &cogen::Yielder<(), ()>, ()| local)
        .scope(|co| {
            assert_eq!(co.name(), Some("scoped"));
            assert_eq!(Resumable::name(co), Some("scoped"));
            assert_eq!(co.resume(()).unwrap().as_return(), Some(5));
        });
}

// ---------------------------------------------------------------- prefetch

/// `prefetch` is a hint: in every state, on the owner's value after a move,
/// inside a scope and through `Resumable`, it changes nothing a resume,
/// the status or a close reports.
#[test]
fn prefetch_changes_nothing_in_any_state() {
    use cogen::Resumable;

    let mut co: Coroutine<u32, u32, u32> = Coroutine::new(|co, mut x| {
        for _ in 0..2 {
            x = co.suspend(x + 1);
        }
        x * 10
    });
    co.prefetch(); // not started
    assert_eq!(co.status(), Status::Suspended);
    assert_eq!(co.resume(1).unwrap(), CoroutineResult::Yield(2));
    co.prefetch(); // suspended
    let mut moved = Box::new(co);
    moved.prefetch(); // suspended, after a move
    assert_eq!(moved.resume(5).unwrap(), CoroutineResult::Yield(6));
    Resumable::prefetch(&moved); // through `Box`'s `Resumable`
    assert_eq!(moved.resume(7).unwrap(), CoroutineResult::Return(70));
    moved.prefetch(); // returned
    assert!(moved.is_dead());
    assert!(matches!(moved.resume(8), Err(ResumeError::Dead(8))));

    let mut panicked: Coroutine<(), (), ()> = Coroutine::new(|_, ()| panic!("boom"));
    assert!(panicked.resume(()).is_err());
    panicked.prefetch(); // died by a panic, not yet reported by `close`
    assert_eq!(panicked.close().unwrap_err().message(), "boom");
    panicked.prefetch(); // closed
    assert!(panicked.close().is_ok());

    let counter = DropCounter::new();
    let token = counter.token();
    let mut closed: Coroutine<(), (), ()> = Coroutine::new(move |co, ()| {
        let _token = token;
        co.suspend(());
    });
    closed.resume(()).unwrap();
    closed.prefetch();
    closed.close().unwrap();
    assert_eq!((counter.count(), counter.live()), (1, 0));
    closed.prefetch();

    let total = ScopedCoroutine::<u32, u32, ()>::new(|co, x| {
        co.suspend(x + 1);
    })
    .scope(|co| {
        co.prefetch();
        let first = co.resume(1).unwrap().as_yield().unwrap();
        co.prefetch();
        assert!(co.resume(0).unwrap().as_return().is_some());
        co.prefetch();
        first
    });
    assert_eq!(total, 2);
}

/// A ring of parked coroutines resumed in turn, each hinted at a few
/// resumes ahead of its turn, as a scheduler of many coroutines does:
/// every resume still gets its own coroutine's answer.
#[test]
fn a_hinted_ring_resumes_each_coroutine_in_turn() {
    let mut ring: Vec<Coroutine<u64, u64, ()>> = (0..64u64)
        .map(|id| {
            Coroutine::new(move |co, mut x| {
                loop {
                    x = co.suspend(id * 1000 + x);
                }
            })
        })
        .collect();
    for round in 0..3 {
        for i in 0..ring.len() {
            ring[(i + 8) % ring.len()].prefetch();
            let got = ring[i].resume(round).unwrap().as_yield().unwrap();
            assert_eq!(got, i as u64 * 1000 + round);
        }
    }
}
