//! `close()` in every state and `Drop`: every destructor on a suspended
//! coroutine's stack runs exactly once, on close, on drop and on panic; a
//! body that catches panics cannot swallow the unwinding of a close
//! ([corosensei#57](https://github.com/Amanieu/corosensei/issues/57)).

use std::cell::{Cell, RefCell};
use std::panic::AssertUnwindSafe;
use std::rc::Rc;

use cogen::{Builder, Coroutine, CoroutineResult, ResumeError, ScopedCoroutine, Status, Yielder};

mod support;
use support::{DropCounter, DropToken};

/// A body that holds tokens in three frames (plus one captured by the
/// closure) and suspends in the deepest one.
fn three_frames(drops: &DropCounter) -> Coroutine<(), u32, ()> {
    fn level(co: &Yielder<(), u32>, drops: &DropCounter, names: &[&'static str]) {
        let Some((first, rest)) = names.split_first() else {
            co.suspend(1);
            co.suspend(2);
            return;
        };
        let _token = drops.named(first);
        level(co, drops, rest);
    }
    let captured = drops.named("captured");
    let drops = drops.clone();
    Coroutine::new(move |co, ()| {
        let _captured = captured;
        level(co, &drops, &["outer", "middle", "inner"]);
    })
}

// ------------------------------------------------------------ close

#[test]
fn close_an_unstarted_coroutine() {
    let drops = DropCounter::new();
    let token = drops.named("captured");
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let mut co: Coroutine<u8, (), ()> = Coroutine::new(move |_, _| {
        let _t = token;
        r.set(true);
    });
    assert!(co.close().is_ok());
    assert!(!ran.get(), "close must not run the body");
    assert_eq!(drops.log(), ["captured"]);
    assert_eq!(co.status(), Status::Dead);
    assert_eq!(co.resume(9).unwrap_err().into_input(), Some(9));
    assert!(co.close().is_ok());
    drop(co);
    assert_eq!(drops.count(), 1);
}

#[test]
fn close_a_suspended_coroutine_runs_each_destructor_once() {
    let drops = DropCounter::new();
    let mut co = three_frames(&drops);
    assert_eq!(co.resume(()).unwrap(), CoroutineResult::Yield(1));
    assert_eq!(drops.count(), 0);
    assert!(co.close().is_ok());
    // Innermost frame first, the closure's capture last.
    assert_eq!(drops.log(), ["inner", "middle", "outer", "captured"]);
    assert_eq!(co.status(), Status::Dead);
    assert!(co.is_dead());
    assert!(co.resume(()).unwrap_err().is_dead());
    // Closing twice is fine and runs nothing again.
    assert!(co.close().is_ok());
    drop(co);
    assert_eq!(drops.count(), 4);
}

#[test]
fn close_a_returned_coroutine() {
    let drops = DropCounter::new();
    let mut co = three_frames(&drops);
    while let Ok(CoroutineResult::Yield(_)) = co.resume(()) {}
    assert_eq!(drops.log(), ["inner", "middle", "outer", "captured"]);
    assert!(co.close().is_ok());
    assert!(co.close().is_ok());
    drop(co);
    assert_eq!(drops.count(), 4);
}

#[test]
fn close_a_coroutine_that_died_by_panic_reports_it_once() {
    let drops = DropCounter::new();
    let d = drops.clone();
    let mut co: Coroutine<(), (), ()> = Builder::new().name("doomed").build(move |co, ()| {
        let _t = d.named("frame");
        co.suspend(());
        panic!("Something went wrong!");
    });
    co.resume(()).unwrap();
    let err = co.resume(()).unwrap_err();
    assert_eq!(err.panic().unwrap().message(), "Something went wrong!");
    assert_eq!(drops.log(), ["frame"]); // dropped by the panic's unwinding
    // Lua: close returns false, err for a coroutine in error...
    let closed = co.close().unwrap_err();
    assert_eq!(closed.message(), "Something went wrong!");
    assert_eq!(closed.coroutine_name(), Some("doomed"));
    // ...once.
    assert!(co.close().is_ok());
    assert_eq!(co.status(), Status::Dead);
    drop(co);
    assert_eq!(drops.count(), 1);
}

#[test]
fn close_after_a_non_string_panic_reports_it() {
    let mut co: Coroutine<(), (), ()> = Coroutine::new(|_, ()| std::panic::panic_any(100_i32));
    let err = co.resume(()).unwrap_err();
    assert_eq!(err.into_panic().downcast_ref::<i32>(), Some(&100));
    // The payload went to resume; close reports the death with its message.
    let closed = co.close().unwrap_err();
    assert_eq!(closed.message(), "Box<dyn Any>");
    assert!(co.close().is_ok());
}

#[test]
fn a_panic_while_closing_is_reported_by_close() {
    // A destructor that panics while the stack is being unwound would abort
    // the process (a panic during unwinding), so the body catches the
    // forced unwind itself and then panics normally.
    let drops = DropCounter::new();
    let d = drops.clone();
    let mut co: Coroutine<(), (), ()> = Coroutine::new(move |co, ()| {
        let _outer = d.named("outer");
        let caught = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let _inner = d.named("inner");
            co.suspend(());
        }));
        assert!(caught.is_err(), "the close unwinds through suspend");
        panic!("cleanup failed");
    });
    co.resume(()).unwrap();
    let err = co.close().unwrap_err();
    assert_eq!(err.message(), "cleanup failed");
    assert_eq!(drops.log(), ["inner", "outer"]);
    assert_eq!(co.status(), Status::Dead);
    assert!(co.close().is_ok(), "the panic is reported once");
    drop(co);
    assert_eq!(drops.count(), 2);
}

#[test]
fn close_from_inside_another_coroutine() {
    let drops = DropCounter::new();
    let d = drops.clone();
    let mut outer: Coroutine<(), (), bool> = Coroutine::new(move |co, ()| {
        let me = cogen::running().unwrap();
        let seen = Rc::new(Cell::new(None));
        let s = seen.clone();
        let mut inner: Coroutine<(), (), ()> = Builder::new().name("inner").build(move |co, ()| {
            struct Probe(Rc<Cell<Option<&'static str>>>);
            impl Drop for Probe {
                fn drop(&mut self) {
                    // Destructors run on the closing coroutine's stack.
                    let running = cogen::running().map(|h| h.name() == Some("inner"));
                    self.0.set(Some(if running == Some(true) {
                        "inner"
                    } else {
                        "other"
                    }));
                }
            }
            let _probe = Probe(s);
            let _t = d.named("inner frame");
            co.suspend(());
        });
        inner.resume(()).unwrap();
        co.suspend(());
        inner.close().unwrap();
        assert_eq!(seen.get(), Some("inner"));
        // Back in the outer coroutine.
        cogen::running().unwrap().same_coroutine(&me) && me.status() == Status::Running
    });
    outer.resume(()).unwrap();
    assert_eq!(drops.count(), 0);
    assert_eq!(outer.resume(()).unwrap(), CoroutineResult::Return(true));
    assert_eq!(drops.log(), ["inner frame"]);
    assert!(cogen::running().is_none());
}

// ------------------------------------------------------------ drop

#[test]
fn drop_an_unstarted_coroutine_drops_the_closure_once() {
    let drops = DropCounter::new();
    let token = drops.named("captured");
    let co: Coroutine<(), (), ()> = Coroutine::new(move |_, ()| drop(token));
    drop(co);
    assert_eq!(drops.log(), ["captured"]);
}

#[test]
fn drop_a_suspended_coroutine_runs_each_destructor_once() {
    let drops = DropCounter::new();
    let mut co = three_frames(&drops);
    co.resume(()).unwrap();
    co.resume(()).unwrap(); // second suspend in the same frame
    let handle = co.handle();
    drop(co);
    assert_eq!(drops.log(), ["inner", "middle", "outer", "captured"]);
    assert_eq!(handle.status(), Status::Dead);
}

#[test]
fn drop_a_returned_or_panicked_coroutine_drops_nothing_twice() {
    let drops = DropCounter::new();
    let mut co = three_frames(&drops);
    while let Ok(CoroutineResult::Yield(_)) = co.resume(()) {}
    drop(co);
    assert_eq!(drops.count(), 4);

    let drops = DropCounter::new();
    let d = drops.clone();
    let mut co: Coroutine<(), (), ()> = Coroutine::new(move |co, ()| {
        let _a = d.named("a");
        co.suspend(());
        let _b = d.named("b");
        panic!("x");
    });
    co.resume(()).unwrap();
    co.resume(()).unwrap_err();
    assert_eq!(drops.log(), ["b", "a"]);
    drop(co); // the unreported panic is discarded silently
    assert_eq!(drops.count(), 2);
}

#[test]
fn a_capture_that_panics_on_drop_as_the_body_returns_is_a_panic_error() {
    // The body closure is called by value, so its captures are dropped as
    // it returns, inside the panic guard at the root of the stack: like a
    // panic of the body, not a panic of `resume`.
    struct PanicsOnDrop {
        _token: DropToken,
    }
    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            panic!("captured value");
        }
    }
    let drops = DropCounter::new();
    let kept = PanicsOnDrop {
        _token: drops.named("kept"),
    };
    let mut co: Coroutine<u32, u32, u32> = Builder::new().name("keeper").build(move |co, x| {
        let _kept = &kept;
        x + co.suspend(x)
    });
    assert_eq!(co.resume(1).unwrap(), CoroutineResult::Yield(1));
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| co.resume(2)));
    let error = result.expect("`resume` never panics itself").unwrap_err();
    let panic = error.try_into_panic().unwrap();
    assert_eq!(panic.message(), "captured value");
    assert_eq!(panic.coroutine_name(), Some("keeper"));
    assert_eq!(drops.log(), ["kept"]);
    assert_eq!(co.status(), Status::Dead);
    assert!(matches!(co.resume(3), Err(ResumeError::Dead(3))));
    assert_eq!(co.close().unwrap_err().message(), "captured value");
    assert!(co.close().is_ok());
    drop(co);
    assert_eq!(drops.count(), 1);
}

#[test]
fn a_panic_drops_each_value_once() {
    let drops = DropCounter::new();
    let captured = drops.named("captured");
    let d = drops.clone();
    let mut co: Coroutine<DropToken, (), ()> = Coroutine::new(move |co, first| {
        let _captured = captured;
        let _first = first;
        let _second = co.suspend(());
        let _local = d.named("local");
        panic!("boom");
    });
    co.resume(drops.named("first input")).unwrap();
    assert!(
        co.resume(drops.named("second input"))
            .unwrap_err()
            .is_panic()
    );
    assert_eq!(
        drops.log(),
        ["local", "second input", "first input", "captured"]
    );
    drop(co);
    assert_eq!(drops.count(), 4);
}

#[test]
fn yielded_and_returned_values_are_dropped_once_by_their_receiver() {
    let drops = DropCounter::new();
    let d = drops.clone();
    let mut co: Coroutine<(), DropToken, DropToken> = Coroutine::new(move |co, ()| {
        co.suspend(d.named("yielded"));
        d.named("returned")
    });
    let y = co.resume(()).unwrap();
    assert_eq!(drops.count(), 0);
    drop(y);
    let r = co.resume(()).unwrap();
    assert_eq!(drops.log(), ["yielded"]);
    drop(co);
    drop(r);
    assert_eq!(drops.log(), ["yielded", "returned"]);
}

#[test]
fn dropping_a_coroutine_unwinds_the_coroutines_on_its_stack() {
    let drops = DropCounter::new();
    let d = drops.clone();
    let mut outer: Coroutine<(), (), ()> = Coroutine::new(move |co, ()| {
        let _o = d.named("outer");
        let d2 = d.clone();
        let mut inner: Coroutine<(), (), ()> = Coroutine::new(move |co, ()| {
            let _i = d2.named("inner");
            co.suspend(());
        });
        inner.resume(()).unwrap();
        co.suspend(());
    });
    outer.resume(()).unwrap();
    drop(outer);
    // `inner` (declared later) is dropped first, unwinding its own stack.
    assert_eq!(drops.log(), ["inner", "outer"]);
}

#[test]
fn dropping_while_the_owner_panics_still_unwinds_once() {
    let drops = DropCounter::new();
    let mut co = three_frames(&drops);
    co.resume(()).unwrap();
    let result = std::panic::catch_unwind(AssertUnwindSafe(move || {
        let _owned_here = co;
        panic!("owner fails");
    }));
    assert!(result.is_err());
    assert_eq!(drops.log(), ["inner", "middle", "outer", "captured"]);
}

#[test]
fn a_scoped_coroutine_is_unwound_when_its_scope_panics() {
    let drops = DropCounter::new();
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        ScopedCoroutine::new(|co: &Yielder<(), ()>, ()| {
            let _t = drops.named("scoped");
            co.suspend(());
        })
        .scope(|co| {
            co.resume(()).unwrap();
            panic!("scope fails");
        })
    }));
    assert!(result.is_err());
    assert_eq!(drops.log(), ["scoped"]);
}

// ---------------- corosensei#57 (https://github.com/Amanieu/corosensei/issues/57)

#[test]
fn std_catch_unwind_in_the_body_cannot_stop_a_close() {
    let drops = DropCounter::new();
    let d = drops.clone();
    let after_catch = Rc::new(Cell::new(0));
    let a = after_catch.clone();
    let mut co: Coroutine<(), u32, ()> = Coroutine::new(move |co, ()| {
        let _outer = d.named("outer");
        let caught = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let _inner = d.named("inner");
            co.suspend(1);
        }));
        // The body swallowed the unwinding of the close and goes on...
        a.set(a.get() + 1);
        assert!(caught.is_err());
        // ...but the next suspend unwinds again, and this one is not caught.
        let _late = d.named("late");
        co.suspend(2);
        a.set(a.get() + 100); // never reached
    });
    assert_eq!(co.resume(()).unwrap(), CoroutineResult::Yield(1));
    assert!(co.close().is_ok());
    assert_eq!(after_catch.get(), 1);
    assert_eq!(drops.log(), ["inner", "late", "outer"]);
    assert_eq!(co.status(), Status::Dead);
    assert!(co.resume(()).unwrap_err().is_dead());
    drop(co);
    assert_eq!(drops.count(), 3);
}

#[test]
fn std_catch_unwind_then_return_still_closes() {
    let drops = DropCounter::new();
    let d = drops.clone();
    let mut co: Coroutine<(), (), &'static str> = Coroutine::new(move |co, ()| {
        let _t = d.named("frame");
        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| co.suspend(())));
        "returned normally"
    });
    co.resume(()).unwrap();
    let handle = co.handle();
    assert!(co.close().is_ok());
    assert_eq!(handle.status(), Status::Dead);
    assert_eq!(drops.log(), ["frame"]);
}

#[test]
fn std_catch_unwind_in_the_body_cannot_stop_a_drop() {
    let drops = DropCounter::new();
    let d = drops.clone();
    let mut co: Coroutine<(), (), ()> = Coroutine::new(move |co, ()| {
        let _t = d.named("frame");
        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| co.suspend(())));
        co.suspend(());
    });
    co.resume(()).unwrap();
    drop(co);
    assert_eq!(drops.log(), ["frame"]);
}

#[test]
fn cogen_catch_unwind_lets_the_close_through() {
    let drops = DropCounter::new();
    let d = drops.clone();
    let after_catch = Rc::new(Cell::new(false));
    let a = after_catch.clone();
    let mut co: Coroutine<(), (), ()> = Coroutine::new(move |co, ()| {
        let _outer = d.named("outer");
        let _ = cogen::catch_unwind(AssertUnwindSafe(|| {
            let _inner = d.named("inner");
            co.suspend(());
        }));
        a.set(true);
    });
    co.resume(()).unwrap();
    assert!(co.close().is_ok());
    assert!(!after_catch.get(), "the code after the catch must not run");
    assert_eq!(drops.log(), ["inner", "outer"]);
    assert_eq!(co.status(), Status::Dead);
}

#[test]
fn cogen_catch_unwind_lets_a_drop_through() {
    let drops = DropCounter::new();
    let d = drops.clone();
    let mut co: Coroutine<(), (), ()> = Coroutine::new(move |co, ()| {
        loop {
            // Would never end if the forced unwind were caught.
            let _ = cogen::catch_unwind(AssertUnwindSafe(|| {
                let _t = d.named("iteration");
                co.suspend(());
            }));
        }
    });
    co.resume(()).unwrap();
    co.resume(()).unwrap();
    assert_eq!(drops.count(), 1);
    drop(co);
    assert_eq!(drops.count(), 2);
}

#[test]
fn cogen_catch_unwind_catches_ordinary_panics() {
    let mut co: Coroutine<u32, String, u32> = Coroutine::new(|co, _| {
        let mut recovered = 0;
        for i in 0..3 {
            let r = cogen::catch_unwind(AssertUnwindSafe(|| {
                let reply = co.suspend(format!("step {i}"));
                if reply % 2 == 0 {
                    panic!("step {i} failed");
                }
                reply
            }));
            if r.is_err() {
                recovered += 1;
            }
        }
        recovered
    });
    assert_eq!(co.resume(0).unwrap().as_yield().unwrap(), "step 0");
    assert_eq!(co.resume(0).unwrap().as_yield().unwrap(), "step 1");
    assert_eq!(co.resume(1).unwrap().as_yield().unwrap(), "step 2");
    assert_eq!(co.resume(2).unwrap(), CoroutineResult::Return(2));
    // Outside any coroutine it is the standard catch_unwind.
    assert!(cogen::catch_unwind(|| panic!("outside")).is_err());
    assert_eq!(cogen::catch_unwind(|| 5).unwrap(), 5);
}

#[test]
fn cogen_catch_unwind_inside_a_coroutine_closed_by_its_parent() {
    // The closing flag belongs to the coroutine being closed: a coroutine
    // that closes a child is not itself closing, so its catch_unwind still
    // catches ordinary panics.
    let mut outer: Coroutine<(), (), bool> = Coroutine::new(|_, ()| {
        let mut inner: Coroutine<(), (), ()> = Coroutine::new(|co, ()| {
            co.suspend(());
        });
        inner.resume(()).unwrap();
        inner.close().unwrap();
        cogen::catch_unwind(|| panic!("ordinary")).is_err()
    });
    assert_eq!(outer.resume(()).unwrap(), CoroutineResult::Return(true));
}

#[test]
fn resume_errors_after_close_hand_the_input_back() {
    let mut co: Coroutine<String, (), ()> = Coroutine::new(|co, _| {
        co.suspend(());
    });
    co.resume(String::new()).unwrap();
    co.close().unwrap();
    match co.resume("late".into()) {
        Err(ResumeError::Dead(s)) => assert_eq!(s, "late"),
        other => panic!("expected Dead, got {other:?}"),
    }
}

/// A destructor that guards a callback with `cogen::catch_unwind` while its
/// coroutine is being closed: the callback's ordinary panic should be
/// caught there, not turned into a second panic out of the destructor
/// (which, during the close's unwinding, aborts the process).
///
/// This test wraps the destructor's body in `std::panic::catch_unwind` so
/// that the wrong behaviour shows up as a failed assertion, not an abort.
#[test]
fn cogen_catch_unwind_in_a_destructor_during_close_catches_ordinary_panics() {
    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Outcome {
        CaughtByCogen,
        EscapedCogen,
    }
    struct Guard(Rc<Cell<Option<Outcome>>>);
    impl Drop for Guard {
        fn drop(&mut self) {
            let escaped = std::panic::catch_unwind(|| {
                let r = cogen::catch_unwind(|| panic!("callback failed"));
                assert!(r.is_err());
            });
            self.0.set(Some(if escaped.is_ok() {
                Outcome::CaughtByCogen
            } else {
                Outcome::EscapedCogen
            }));
        }
    }
    let outcome = Rc::new(Cell::new(None));
    let o = outcome.clone();
    let mut co: Coroutine<(), (), ()> = Coroutine::new(move |co, ()| {
        let _guard = Guard(o);
        co.suspend(());
    });
    co.resume(()).unwrap();
    assert!(co.close().is_ok());
    assert_eq!(outcome.get(), Some(Outcome::CaughtByCogen));
}

#[test]
fn a_destructor_run_by_close_can_resume_another_coroutine() {
    // While A is being closed, a destructor on A's stack drives B: B runs
    // with A as its (normal) resumer, and B's own suspended stack is unwound
    // when the destructor drops it.
    struct DrivesB {
        b: Option<Coroutine<(), Status, ()>>,
        a: cogen::CoroutineHandle,
        log: Rc<RefCell<Vec<String>>>,
    }
    impl Drop for DrivesB {
        fn drop(&mut self) {
            let mut b = self.b.take().unwrap();
            let seen = b.resume(()).unwrap().as_yield().unwrap();
            self.log
                .borrow_mut()
                .push(format!("b saw a as {seen:?}, a is {:?}", self.a.status()));
            // b is dropped here, suspended: a nested forced unwind.
        }
    }
    let drops = DropCounter::new();
    let log: Rc<RefCell<Vec<String>>> = Rc::default();
    let (d, l) = (drops.clone(), log.clone());
    let mut a: Coroutine<(), (), ()> = Coroutine::new(move |co, ()| {
        let me = cogen::running().unwrap();
        let (d2, me2) = (d.clone(), me.clone());
        let b = Coroutine::new(move |co: &Yielder<(), Status>, ()| {
            let _t = d2.named("b frame");
            co.suspend(me2.status());
            co.suspend(me2.status());
        });
        let _driver = DrivesB {
            b: Some(b),
            a: me,
            log: l,
        };
        co.suspend(());
    });
    a.resume(()).unwrap();
    assert!(a.close().is_ok());
    assert_eq!(*log.borrow(), ["b saw a as Normal, a is Running"]);
    assert_eq!(drops.log(), ["b frame"]);
    assert!(cogen::running().is_none());
}

#[test]
fn a_suspended_coroutine_in_a_thread_local_is_unwound_at_thread_exit() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Count(Arc<AtomicUsize>);
    impl Drop for Count {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    thread_local! {
        static PARKED: RefCell<Vec<Coroutine<(), (), ()>>> = const { RefCell::new(Vec::new()) };
    }
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    std::thread::spawn(move || {
        for _ in 0..3 {
            let c = c.clone();
            let mut co: Coroutine<(), (), ()> = Coroutine::new(move |co, ()| {
                let _t = Count(c);
                co.suspend(());
            });
            co.resume(()).unwrap();
            PARKED.with(|p| p.borrow_mut().push(co));
        }
        // The thread ends with three suspended coroutines in a thread local,
        // possibly after this thread's stack pool is gone.
    })
    .join()
    .unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 3);
}

/// A scoped coroutine can borrow its parent's `Yielder` and suspend the
/// parent from its own stack (the parent's suspend point is then inside the
/// child). Closing the parent there unwinds through the child's resume: that
/// unwinding belongs to the parent's close and must pass through, not be
/// reported to the parent's body as a panic of the child.
#[test]
fn closing_a_parent_suspended_inside_its_child_unwinds_through_the_child() {
    let drops = DropCounter::new();
    let d = drops.clone();
    let child_result = Rc::new(RefCell::new(None::<String>));
    let cr = child_result.clone();
    let mut parent: Coroutine<u32, u32, u32> = Coroutine::new(move |parent_co, x| {
        let _p = d.named("parent frame");
        let r = ScopedCoroutine::new(|_child: &Yielder<(), ()>, ()| {
            let _c = d.named("child frame");
            parent_co.suspend(x + 1) * 2 // suspends the parent, from the child's stack
        })
        .scope(|child| match child.resume(()) {
            Ok(r) => r.as_return().unwrap(),
            Err(e) => {
                *cr.borrow_mut() = Some(e.to_string());
                0
            }
        });
        r + 1
    });
    // Resuming through works: the child returns 2 * 10, the parent adds 1.
    let mut again: Coroutine<u32, u32, u32> = Coroutine::new(|parent_co, x| {
        ScopedCoroutine::new(|_child: &Yielder<(), ()>, ()| parent_co.suspend(x + 1) * 2)
            .scope(|child| child.resume(()).unwrap().as_return().unwrap())
            + 1
    });
    assert_eq!(again.resume(1).unwrap(), CoroutineResult::Yield(2));
    assert_eq!(again.resume(10).unwrap(), CoroutineResult::Return(21));

    assert_eq!(parent.resume(1).unwrap(), CoroutineResult::Yield(2));
    let closed = parent.close();
    assert_eq!(
        *child_result.borrow(),
        None,
        "the child's resume saw the parent's close"
    );
    assert!(closed.is_ok(), "close reported {closed:?}");
    assert_eq!(drops.log(), ["child frame", "parent frame"]);
    assert!(parent.is_dead());
}

/// A value captured by a body that never started, whose destructor panics
/// (not during an unwind, so the panic is an ordinary one): `close` should
/// report it, leave the coroutine dead, and never drop the capture again.
///
/// corosensei drops the unstarted closure before marking the coroutine
/// finished, so after the panic the coroutine still looks unstarted and the
/// next close (or the drop) drops the same closure a second time: a double
/// drop. With a capture that panics every time, the second panic happens in
/// corosensei's `Drop` and aborts the process.
#[test]
fn a_capture_that_panics_when_dropped_unstarted_is_dropped_once() {
    thread_local! {
        static BOMB_DROPS: Cell<u32> = const { Cell::new(0) };
    }
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            let n = BOMB_DROPS.with(|d| {
                d.set(d.get() + 1);
                d.get()
            });
            if n == 1 {
                panic!("bomb");
            }
        }
    }
    let bomb = Bomb;
    let mut co: Coroutine<(), (), ()> = Coroutine::new(move |_, ()| {
        let _bomb = &bomb;
    });
    let closed = co.close().map_err(|p| p.message().to_string());
    assert_eq!(closed, Err("bomb".to_string()));
    assert!(co.is_dead(), "the coroutine still looks unstarted");
    drop(co);
    assert_eq!(
        BOMB_DROPS.with(Cell::get),
        1,
        "the capture was dropped twice"
    );
}

#[test]
fn a_panicking_body_unwinds_the_suspended_coroutines_it_owns() {
    let drops = DropCounter::new();
    let d = drops.clone();
    let mut parent: Coroutine<(), (), ()> = Coroutine::new(move |co, ()| {
        let _p = d.named("parent");
        let d2 = d.clone();
        let mut child: Coroutine<(), (), ()> = Coroutine::new(move |co, ()| {
            let _c = d2.named("child");
            co.suspend(());
        });
        child.resume(()).unwrap();
        co.suspend(());
        panic!("parent fails with a suspended child");
    });
    parent.resume(()).unwrap();
    let err = parent.resume(()).unwrap_err();
    assert_eq!(
        err.panic().unwrap().message(),
        "parent fails with a suspended child"
    );
    assert_eq!(drops.log(), ["child", "parent"]);
    assert!(parent.is_dead());
}

/// Lua's `wrap` closes a coroutine that raised: once the iterator has
/// re-raised a body's panic, `close` has nothing left to report.
#[test]
fn close_after_the_iterator_reraised_a_panic_is_ok() {
    let mut co: Coroutine<(), u32, ()> = Coroutine::new(|co, ()| {
        co.suspend(1);
        panic!("generator failed");
    });
    assert_eq!(co.next(), Some(1));
    let reraised = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| co.next()));
    assert_eq!(
        reraised.unwrap_err().downcast_ref::<&str>().copied(),
        Some("generator failed")
    );
    assert!(co.is_dead());
    assert!(co.close().is_ok());
    assert_eq!(co.next(), None);
}
