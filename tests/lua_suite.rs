//! The applicable parts of Lua 5.4's own coroutine test suite
//! (`testes/coroutine.lua` in the lua/lua repository), ported to cogen.
//!
//! Each test names the Lua section it ports. Parts that do not apply:
//! resuming the running or a normal coroutine, and closing the running one,
//! are compile errors in cogen (`resume` and `close` take `&mut self`);
//! debug hooks, `debug.getinfo` and the C API (`T`) have no counterpart;
//! the "infinite recursion of coroutines" case (stack exhaustion) is covered
//! by the child-process test in `tests/stack.rs`; and a Rust destructor that
//! panics during unwinding aborts, so Lua's erroring `__close` handlers are
//! ported as bodies that catch the close and then panic.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;

use cogen::{
    Builder, Coroutine, CoroutineHandle, CoroutineResult, ResumeError, Status, Yielder, wrap,
};

// A drop token stands in for Lua's to-be-closed variables: its drop is the
// `__close` call.
mod support;
use support::DropCounter;

/// A Lua value, enough of it for the multiple-values test.
#[derive(Clone, Debug, PartialEq)]
enum V {
    Int(i64),
    Str(&'static str),
    List(Vec<V>),
}

fn ints(v: &[i64]) -> Vec<V> {
    v.iter().copied().map(V::Int).collect()
}

/// `local main, ismain = coroutine.running()` / `isyieldable()` outside.
#[test]
fn the_main_thread_is_not_a_coroutine() {
    assert!(cogen::running().is_none());
    assert!(!cogen::is_yieldable());
}

/// "tests for multiple yield/resume arguments": `foo(a, ...)` yields each
/// extra argument unpacked, records what each resume passes in, and
/// returns `a` unpacked.
#[test]
fn multiple_yield_and_resume_arguments() {
    let x: Rc<RefCell<Vec<V>>> = Rc::default();
    let received = x.clone();
    let mut f: Coroutine<(CoroutineHandle, Vec<V>), Vec<V>, Vec<V>> =
        Coroutine::new(move |co, (me, args): (CoroutineHandle, Vec<V>)| {
            let running = cogen::running().unwrap();
            assert!(running.same_coroutine(&me));
            assert_eq!(me.status(), Status::Running);
            assert!(cogen::is_yieldable());
            let (a, rest) = args.split_first().unwrap();
            for arg in rest {
                let V::List(values) = arg else {
                    panic!("not a list")
                };
                let (_, next) = co.suspend(values.clone());
                *received.borrow_mut() = next;
            }
            let V::List(a) = a else { panic!("not a list") };
            a.clone()
        });
    let h = f.handle();
    assert_eq!(f.status(), Status::Suspended);
    let first = vec![
        V::List(ints(&[1, 2, 3])),
        V::List(vec![]),
        V::List(ints(&[1])),
        V::List(vec![V::Str("a"), V::Str("b"), V::Str("c")]),
    ];
    // s, a = resume(f, {1,2,3}, {}, {1}, {'a','b','c'}): yields nothing.
    assert_eq!(
        f.resume((h.clone(), first)).unwrap(),
        CoroutineResult::Yield(vec![])
    );
    assert_eq!(f.status(), Status::Suspended);
    // resume(f): x = {}, yields 1.
    assert_eq!(
        f.resume((h.clone(), vec![])).unwrap(),
        CoroutineResult::Yield(ints(&[1]))
    );
    assert_eq!(*x.borrow(), vec![]);
    // resume(f, 1, 2, 3): x = {1, 2, 3}, yields 'a', 'b', 'c'.
    assert_eq!(
        f.resume((h.clone(), ints(&[1, 2, 3]))).unwrap(),
        CoroutineResult::Yield(vec![V::Str("a"), V::Str("b"), V::Str("c")])
    );
    assert_eq!(*x.borrow(), ints(&[1, 2, 3]));
    // resume(f, "xuxu"): x = {"xuxu"}, returns 1, 2, 3.
    assert_eq!(
        f.resume((h.clone(), vec![V::Str("xuxu")])).unwrap(),
        CoroutineResult::Return(ints(&[1, 2, 3]))
    );
    assert_eq!(*x.borrow(), vec![V::Str("xuxu")]);
    assert_eq!(f.status(), Status::Dead);
    // s, a = resume(f, "xuxu"): not s and a contains "dead".
    let err = f.resume((h, vec![V::Str("xuxu")])).unwrap_err();
    assert!(err.to_string().contains("dead"));
    assert_eq!(err.into_input().unwrap().1, vec![V::Str("xuxu")]);
    assert_eq!(f.status(), Status::Dead);
}

/// "yields in tail calls".
#[test]
fn yields_in_tail_calls() {
    fn foo(co: &Yielder<i32, i32>, i: i32) -> i32 {
        co.suspend(i)
    }
    let x = Rc::new(Cell::new(0));
    let xs = x.clone();
    let mut f = wrap(move |co: &Yielder<i32, i32>, _first: i32| {
        for i in 1..=10 {
            assert_eq!(foo(co, i), xs.get());
        }
        "a"
    });
    for i in 1..=10 {
        x.set(i);
        assert_eq!(f(i), CoroutineResult::Yield(i));
    }
    x.set(-1);
    assert_eq!(f(-1), CoroutineResult::Return("a"));
}

/// "recursive": `pf(n, i)` yields `n` then recurses forever.
#[test]
fn yields_from_unbounded_recursion() {
    #[allow(unconditional_recursion)] // it suspends forever, like Lua's
    fn pf(co: &Yielder<(u64, u64), u64>, n: u64, i: u64) {
        co.suspend(n);
        pf(co, n * i, i + 1);
    }
    let mut f = wrap(|co: &Yielder<(u64, u64), u64>, (n, i)| pf(co, n, i));
    let mut s = 1;
    for i in 1..=10 {
        assert_eq!(f((1, 1)), CoroutineResult::Yield(s));
        s *= i;
    }
    // Dropping `f` unwinds the ten suspended frames.
}

type Gen = Box<dyn FnMut(()) -> CoroutineResult<u32, ()>>;

/// `gen(n)`: a wrapped coroutine yielding 2..=n.
fn gen_wrap(n: u32) -> Gen {
    Box::new(wrap(move |co: &Yielder<(), u32>, ()| {
        for i in 2..=n {
            co.suspend(i);
        }
    }))
}

/// `filter(p, g)`: a wrapped coroutine passing on what `g` yields that `p`
/// does not divide.
fn filter_wrap(p: u32, mut g: Gen) -> Gen {
    Box::new(wrap(move |co: &Yielder<(), u32>, ()| {
        while let CoroutineResult::Yield(n) = g(()) {
            if n % p != 0 {
                co.suspend(n);
            }
        }
    }))
}

/// "sieve": a chain of wrapped filters, one per prime found.
#[test]
fn sieve_of_chained_wrap_filters() {
    let mut x = gen_wrap(80);
    let mut a = Vec::new();
    while let CoroutineResult::Yield(n) = x(()) {
        a.push(n);
        x = filter_wrap(n, x);
    }
    assert_eq!(a.len(), 22);
    assert_eq!(a.last(), Some(&79));
    assert_eq!(a[..5], [2, 3, 5, 7, 11]);
}

/// The same sieve with generators as iterators (Lua's `for n in wrap(...)`).
#[test]
fn sieve_of_chained_generators() {
    fn filter(p: u32, g: Box<dyn Iterator<Item = u32>>) -> Box<dyn Iterator<Item = u32>> {
        Box::new(Coroutine::new(move |co: &Yielder<(), u32>, ()| {
            for n in g {
                if n % p != 0 {
                    co.suspend(n);
                }
            }
        }))
    }
    let mut x: Box<dyn Iterator<Item = u32>> =
        Box::new(Coroutine::new(|co: &Yielder<(), u32>, ()| {
            for i in 2..=80 {
                co.suspend(i);
            }
        }));
    let mut a = Vec::new();
    while let Some(n) = x.next() {
        a.push(n);
        x = filter(n, x);
    }
    assert_eq!(a.len(), 22);
    assert_eq!(a.last(), Some(&79));
}

/// "ok to close a dead coroutine".
#[test]
fn close_a_dead_coroutine() {
    let mut co: Coroutine<&'static str, (), &'static str> = Coroutine::new(|_, s| s);
    assert_eq!(
        co.resume("testing 'coroutine.close'").unwrap(),
        CoroutineResult::Return("testing 'coroutine.close'")
    );
    assert_eq!(co.status(), Status::Dead);
    assert!(co.close().is_ok());
}

/// "closing a coroutine after an error": `create(error)`, `resume(co, 100)`.
#[test]
fn close_after_an_error() {
    let mut co: Coroutine<i32, (), ()> = Coroutine::new(|_, e| std::panic::panic_any(e));
    let err = co.resume(100).unwrap_err();
    assert_eq!(err.into_panic().downcast_ref::<i32>(), Some(&100));
    // Lua's close answers `false, 100`. cogen handed the payload to resume;
    // close reports the death again, by message.
    assert!(co.close().is_err());
    assert!(co.close().is_ok());
}

/// "to-be-closed variables in coroutines": close runs the pending closer.
#[test]
fn close_runs_pending_closers() {
    let x = DropCounter::new();
    let closer = x.clone();
    let mut co: Coroutine<(), (), ()> = Coroutine::new(move |co, ()| {
        let _x = closer.token();
        co.suspend(());
    });
    co.resume(()).unwrap();
    assert_eq!(x.count(), 0);
    assert!(co.close().is_ok());
    assert_eq!(x.count(), 1);
    assert_eq!(co.status(), Status::Dead);
}

/// "error closing a coroutine": the error raised while closing is what
/// close returns, and the remaining closers still run.
#[test]
fn error_while_closing() {
    let x = DropCounter::new();
    let closer = x.clone();
    let mut co: Coroutine<(), (), ()> = Coroutine::new(move |co, ()| {
        let _y = closer.token();
        // The body sees the close (a Lua closer sees it as `err == nil`)...
        let closing = std::panic::catch_unwind(AssertUnwindSafe(|| co.suspend(())));
        assert!(closing.is_err());
        // ...and fails while handling it.
        std::panic::panic_any(200_i32);
    });
    co.resume(()).unwrap();
    assert_eq!(x.count(), 0);
    let err = co.close().unwrap_err();
    assert_eq!(err.downcast_ref::<i32>(), Some(&200));
    assert_eq!(co.status(), Status::Dead);
    assert_eq!(x.count(), 1);
}

/// "<close> versus pcall in coroutines": a body that catches its own error
/// returns normally, and its closer saw the error.
#[test]
fn pcall_inside_a_coroutine() {
    let x = DropCounter::new();
    let closer = x.clone();
    let mut co: Coroutine<(), (), Result<(), i32>> = Coroutine::new(move |_, ()| {
        let foo = || {
            let _x = closer.token();
            std::panic::panic_any(43_i32);
        };
        cogen::catch_unwind(AssertUnwindSafe(foo)).map_err(|e| *e.downcast::<i32>().unwrap())
    });
    assert_eq!(co.resume(()).unwrap(), CoroutineResult::Return(Err(43)));
    assert_eq!(x.count(), 1);
}

/// "yielding across C boundaries": Lua cannot yield from inside
/// `table.sort`'s comparator; a stackful coroutine can suspend from any
/// Rust frame, here from inside `sort_by`.
#[test]
fn suspend_from_inside_a_library_callback() {
    let mut co = wrap(|co: &Yielder<(), (u8, u8)>, ()| {
        let mut v = vec![3_u8, 1, 2];
        v.sort_by(|a, b| {
            assert!(cogen::is_yieldable());
            co.suspend((*a, *b));
            a.cmp(b)
        });
        v
    });
    let mut comparisons = 0;
    let sorted = loop {
        match co(()) {
            CoroutineResult::Yield(_) => comparisons += 1,
            CoroutineResult::Return(v) => break v,
        }
    };
    assert!(comparisons >= 2);
    assert_eq!(sorted, [1, 2, 3]);
}

/// `xpcall(pcall, handler, function () for i in f, nil, 1 do pcall(...) end error({s}) end)`:
/// yields inside nested protected calls, then an error with a table value.
#[test]
fn yields_inside_protected_calls() {
    let mut f1 = wrap(|co: &Yielder<Option<u32>, u32>, _first: Option<u32>| {
        cogen::catch_unwind(AssertUnwindSafe(|| {
            let mut s = 0;
            let mut i = 1;
            while let Some(next) = co.suspend(i) {
                i = next;
                let _ = cogen::catch_unwind(AssertUnwindSafe(|| s += i));
            }
            std::panic::panic_any(vec![s]);
        }))
        .map_err(|e| e.downcast::<Vec<u32>>().unwrap()[0])
    });
    assert_eq!(f1(None), CoroutineResult::Yield(1));
    for i in 1..=10 {
        assert_eq!(f1(Some(i)), CoroutineResult::Yield(i));
    }
    assert_eq!(f1(None), CoroutineResult::Return(Err((10 + 1) * 10 / 2)));
}

/// `f(a, b) a = yield(a); error{a + b}` under `xpcall(f, g)` with
/// `g(x) = x[1] * 2`.
#[test]
fn error_handler_after_a_yield() {
    let mut co = wrap(|co: &Yielder<i32, i32>, _first: i32| {
        let f = |a: i32, b: i32| -> i32 {
            let a = co.suspend(a);
            std::panic::panic_any(vec![a + b])
        };
        let g = |x: Box<dyn Any + Send>| x.downcast::<Vec<i32>>().unwrap()[0] * 2;
        co.suspend(match cogen::catch_unwind(AssertUnwindSafe(|| f(10, 20))) {
            Ok(v) => v,
            Err(e) => -g(e),
        });
    });
    assert_eq!(co(0), CoroutineResult::Yield(10));
    assert_eq!(co(100), CoroutineResult::Yield(-240));
}

/// "errors in coroutines": `goo` calls `foo`, which yields 3 and then
/// raises an error whose value is the function `foo` itself.
#[test]
fn errors_that_are_not_strings() {
    fn foo(co: &Yielder<(), i32>) {
        co.suspend(3);
        std::panic::panic_any(foo as fn(&Yielder<(), i32>));
    }
    fn goo(co: &Yielder<(), i32>, (): ()) {
        foo(co);
    }
    let is_foo = |e: &(dyn Any + Send)| {
        e.downcast_ref::<fn(&Yielder<(), i32>)>()
            .is_some_and(|f| std::ptr::fn_addr_eq(*f, foo as fn(&Yielder<(), i32>)))
    };

    // Through wrap: x() == 3, then pcall(x) fails with foo.
    let mut x = wrap(goo);
    assert_eq!(x(()), CoroutineResult::Yield(3));
    let e = std::panic::catch_unwind(AssertUnwindSafe(|| x(()))).unwrap_err();
    assert!(is_foo(&*e));

    // Through create/resume.
    let mut x = Coroutine::new(goo);
    assert_eq!(x.resume(()).unwrap(), CoroutineResult::Yield(3));
    let err = x.resume(()).unwrap_err();
    assert!(is_foo(err.try_into_panic().unwrap().payload_mut()));
    assert_eq!(x.status(), Status::Dead);
    let err = x.resume(()).unwrap_err();
    assert!(err.to_string().contains("dead"));
    assert_eq!(x.status(), Status::Dead);
}

/// "co-routines x for loop": `all(a, n, k)` yields every k-tuple over 1..=n.
#[test]
fn coroutines_as_for_loop_iterators() {
    fn all(co: &Yielder<(), Vec<u32>>, a: &mut Vec<u32>, n: u32, k: usize) {
        if k == 0 {
            co.suspend(a.clone());
        } else {
            for i in 1..=n {
                a[k - 1] = i;
                all(co, a, n, k - 1);
            }
        }
    }
    let tuples = Coroutine::new(|co, ()| all(co, &mut vec![0; 4], 5, 4));
    let mut count = 0;
    let mut distinct = HashSet::new();
    for t in tuples {
        count += 1;
        distinct.insert(t);
    }
    assert_eq!(count, 5_usize.pow(4));
    assert_eq!(distinct.len(), count);
}

/// Permutations through wrap (Programming in Lua, `permgen`).
#[test]
fn permutations_through_wrap() {
    fn permgen(co: &Yielder<(), Vec<u8>>, a: &mut Vec<u8>, n: usize) {
        if n <= 1 {
            co.suspend(a.clone());
        } else {
            for i in 0..n {
                a.swap(n - 1, i);
                permgen(co, a, n - 1);
                a.swap(n - 1, i);
            }
        }
    }
    let mut next = wrap(|co: &Yielder<(), Vec<u8>>, ()| {
        let mut a = vec![1, 2, 3, 4];
        permgen(co, &mut a, 4);
    });
    let mut perms = Vec::new();
    while let CoroutineResult::Yield(p) = next(()) {
        let mut sorted = p.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [1, 2, 3, 4]);
        perms.push(p);
    }
    assert_eq!(perms.len(), 24);
    assert_eq!(perms.iter().collect::<HashSet<_>>().len(), 24);
}

/// "access to locals of collected coroutines": closures yielded by a
/// coroutine share its locals, and outlive it.
#[test]
fn locals_outlive_their_coroutine() {
    type Counter = Rc<dyn Fn() -> i32>;
    let mut x = Coroutine::new(|co: &Yielder<(), Counter>, ()| {
        let a = Rc::new(Cell::new(10));
        let a2 = a.clone();
        let f: Counter = Rc::new(move || {
            a2.set(a2.get() + 10);
            a2.get()
        });
        loop {
            a.set(a.get() + 1);
            co.suspend(f.clone());
        }
    });
    let f = x.next().unwrap();
    assert_eq!(f(), 21);
    assert_eq!(x.next().unwrap()(), 32);
    assert!(Rc::ptr_eq(&x.next().unwrap(), &f));
    let handle = x.handle();
    drop(x); // collected
    assert_eq!(handle.status(), Status::Dead);
    assert_eq!(f(), 43);
    assert_eq!(f(), 53);
}

/// "old bug: attempt to resume itself": resuming itself does not compile
/// in cogen; what remains is that `running()` is the coroutine itself.
#[test]
fn running_is_the_coroutine_itself() {
    let mut co: Coroutine<CoroutineHandle, (i32, i32), i32> = Coroutine::new(|co, current| {
        assert!(cogen::running().unwrap().same_coroutine(&current));
        co.suspend((10, 20));
        co.suspend((23, 0));
        10
    });
    let h = co.handle();
    assert_eq!(
        co.resume(h.clone()).unwrap(),
        CoroutineResult::Yield((10, 20))
    );
    assert_eq!(
        co.resume(h.clone()).unwrap(),
        CoroutineResult::Yield((23, 0))
    );
    assert_eq!(co.resume(h.clone()).unwrap(), CoroutineResult::Return(10));
    assert!(co.resume(h.clone()).unwrap_err().is_dead());
    assert!(co.resume(h).unwrap_err().is_dead());
}

/// "attempt to resume 'normal' coroutine": `co1` calls the wrapped `co2`,
/// which sees `co1` as normal and yields 3 through it.
#[test]
fn a_resumer_is_normal() {
    let mut co2 = wrap(|co: &Yielder<CoroutineHandle, i32>, co1: CoroutineHandle| {
        assert_eq!(co1.status(), Status::Normal);
        co.suspend(3);
    });
    let mut co1: Coroutine<CoroutineHandle, (), Option<i32>> = Builder::new()
        .name("co1")
        .build(move |_, me| co2(me).as_yield());
    let h = co1.handle();
    assert_eq!(
        co1.resume(h.clone()).unwrap(),
        CoroutineResult::Return(Some(3))
    );
    assert_eq!(co1.status(), Status::Dead);
    assert_eq!(h.status(), Status::Dead);
}

/// `probes/p1_status_states.lua` from the seed: every status, seen from
/// where Lua shows it.
#[test]
fn status_probe() {
    let outer_handle: Rc<RefCell<Option<CoroutineHandle>>> = Rc::default();
    let log: Rc<RefCell<Vec<String>>> = Rc::default();
    let (oh, l) = (outer_handle.clone(), log.clone());
    let mut inner: Coroutine<(), (), ()> = Coroutine::new(move |co, ()| {
        let outer = oh.borrow().clone().unwrap();
        l.borrow_mut()
            .push(format!("inner sees outer as: {:?}", outer.status()));
        let me = cogen::running().unwrap();
        l.borrow_mut()
            .push(format!("inner sees itself as: {:?}", me.status()));
        co.suspend(());
    });
    let mut outer: Coroutine<(), (), ()> = Coroutine::new(move |co, ()| {
        inner.resume(()).unwrap();
        co.suspend(());
    });
    *outer_handle.borrow_mut() = Some(outer.handle());
    let mut lines = vec![format!("before first resume: {:?}", outer.status())];
    outer.resume(()).unwrap();
    lines.append(&mut log.borrow_mut());
    lines.push(format!("after outer yielded: {:?}", outer.status()));
    lines.push(format!(
        "main thread: {:?}",
        cogen::running().map(|h| h.status())
    ));
    outer.resume(()).unwrap();
    lines.push(format!("after outer returned: {:?}", outer.status()));
    lines.push(format!("resume dead: {}", outer.resume(()).unwrap_err()));
    assert_eq!(
        lines,
        [
            "before first resume: Suspended",
            "inner sees outer as: Normal",
            "inner sees itself as: Running",
            "after outer yielded: Suspended",
            "main thread: None",
            "after outer returned: Dead",
            "resume dead: cannot resume dead coroutine",
        ]
    );
}

/// "access to locals of erroneous coroutines": a closure made by a body
/// that then failed keeps working; resuming the dead body again fails.
#[test]
fn locals_of_a_failed_coroutine() {
    type Slot = Rc<RefCell<Option<Box<dyn Fn() -> i32>>>>;
    let f: Slot = Rc::default();
    let slot = f.clone();
    let mut x: Coroutine<Vec<i32>, (), ()> = Coroutine::new(move |_, _| {
        let a = Rc::new(Cell::new(10));
        *slot.borrow_mut() = Some(Box::new(move || {
            a.set(a.get() + 1);
            a.get()
        }));
        panic!("x");
    });
    let err = x.resume(vec![]).unwrap_err();
    assert_eq!(err.panic().unwrap().message(), "x");
    // Resuming again, with values that would overwrite the old stack.
    match x.resume(vec![1; 7]) {
        Err(ResumeError::Dead(v)) => assert_eq!(v, [1; 7]),
        other => panic!("expected dead, got {other:?}"),
    }
    let f = f.borrow();
    let f = f.as_ref().unwrap();
    assert_eq!(f(), 11);
    assert_eq!(f(), 12);
}

/// `probes/p7_forgot_resume_close.lua`: closing a never-resumed and a
/// suspended coroutine. Unlike Lua's garbage collector, dropping a suspended
/// coroutine also runs its pending destructors.
#[test]
fn close_probe() {
    let cleanups = DropCounter::new();
    let mut never: Coroutine<(), (), ()> = Coroutine::new(|co, ()| {
        if cogen::is_yieldable() {
            unreachable!("This never runs");
        }
        co.suspend(());
    });
    assert_eq!(never.status(), Status::Suspended);
    assert!(never.close().is_ok());
    assert_eq!(never.status(), Status::Dead);

    let c = cleanups.clone();
    let mut co2: Coroutine<(), (), ()> = Coroutine::new(move |co, ()| {
        let _guard = c.token();
        co.suspend(());
        unreachable!("never reached");
    });
    co2.resume(()).unwrap();
    assert!(co2.close().is_ok());
    assert_eq!(co2.status(), Status::Dead);
    assert_eq!(cleanups.count(), 1);

    let c = cleanups.clone();
    let mut co3: Coroutine<(), (), ()> = Coroutine::new(move |co, ()| {
        let _guard = c.token();
        co.suspend(());
    });
    co3.resume(()).unwrap();
    drop(co3);
    assert_eq!(cleanups.count(), 2);
}
