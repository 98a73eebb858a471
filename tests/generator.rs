//! Generators: the short constructor, the `Generator` iterator over any
//! `Resumable`, delegation (`yield from`), and the common `Resumable` trait.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;

use cogen::{
    Coroutine, CoroutineResult, Generator, Resumable, ResumeError, ScopedCoroutine, Status,
    generator,
};

mod support;
use support::DropCounter;

#[test]
fn generator_iterates_and_keeps_its_return_value() {
    let mut g = generator(|co| {
        for i in 1..=3 {
            co.suspend(i * 10);
        }
        "done"
    });
    assert_eq!(g.by_ref().collect::<Vec<_>>(), [10, 20, 30]);
    assert_eq!(g.return_value(), Some(&"done"));
    // Fused: still `None`, and the return value stays until taken.
    assert_eq!(g.next(), None);
    assert_eq!(g.next(), None);
    assert_eq!(g.take_return_value(), Some("done"));
    assert_eq!(g.take_return_value(), None);
    assert_eq!(g.status(), Status::Dead);
}

#[test]
fn generator_runs_nothing_before_the_first_next() {
    let ran = Rc::new(Cell::new(false));
    let flag = ran.clone();
    let mut g = generator(move |co| {
        flag.set(true);
        co.suspend(1);
    });
    assert!(!ran.get());
    assert_eq!(g.next(), Some(1));
    assert!(ran.get());
}

#[test]
fn generator_panic_is_reraised_in_the_consumer_then_fused() {
    let mut g = generator(|co| {
        co.suspend(1);
        std::panic::panic_any(42u8);
    });
    assert_eq!(g.next(), Some(1));
    let payload = catch_unwind(AssertUnwindSafe(|| g.next())).unwrap_err();
    assert_eq!(payload.downcast_ref::<u8>(), Some(&42));
    assert_eq!(g.next(), None);
    assert_eq!(g.return_value(), None);
}

#[test]
fn generator_adapter_drives_any_resumable() {
    // A boxed trait object: generators of different bodies in one Vec.
    type Dyn = Box<dyn Resumable<(), Yield = u32, Return = usize>>;
    let mut gens: Vec<Generator<Dyn>> = (1..=3)
        .map(|n| {
            let co: Dyn = Box::new(generator(move |co| {
                for i in 0..n {
                    co.suspend(i);
                }
                n as usize
            }));
            Generator::new(co)
        })
        .collect();
    let items: Vec<Vec<u32>> = gens.iter_mut().map(|g| g.by_ref().collect()).collect();
    assert_eq!(items, [vec![0], vec![0, 1], vec![0, 1, 2]]);
    let returns: Vec<usize> = gens
        .iter_mut()
        .map(|g| g.take_return_value().unwrap())
        .collect();
    assert_eq!(returns, [1, 2, 3]);
    assert!(gens.iter().all(|g| g.get_ref().is_dead()));
}

#[test]
fn generator_adapter_reraises_panics_and_is_fused() {
    let mut g = Generator::new(generator(|co| {
        co.suspend("a");
        panic!("broken generator");
    }));
    assert_eq!(g.next(), Some("a"));
    let payload = catch_unwind(AssertUnwindSafe(|| g.next())).unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"broken generator"));
    assert_eq!(g.next(), None);
    assert_eq!(g.next(), None);
    // The panic was re-raised by `next`: closing does not report it again,
    // as with the coroutine's own iterator.
    assert!(g.get_mut().close().is_ok());
    let mut own = generator(|co| {
        co.suspend("a");
        panic!("broken generator");
    });
    assert_eq!(own.next(), Some("a"));
    catch_unwind(AssertUnwindSafe(|| own.next())).unwrap_err();
    assert!(own.close().is_ok());
}

#[test]
fn generator_adapter_over_a_scoped_coroutine_borrows() {
    let words = vec![String::from("tree"), String::from("sap")];
    let total = ScopedCoroutine::new(|co, ()| {
        for w in &words {
            co.suspend(w.as_str());
        }
        words.len()
    })
    .scope(|co| {
        let mut g = Generator::new(co);
        let joined: Vec<&str> = g.by_ref().collect();
        assert_eq!(joined, ["tree", "sap"]);
        g.take_return_value()
    });
    assert_eq!(total, Some(2));
}

#[test]
fn delegate_hands_on_items_and_returns_the_inner_value() {
    let mut outer = generator(|co| {
        co.suspend(0);
        let inner = generator(|co| {
            co.suspend(1);
            co.suspend(2);
            "inner"
        });
        let r = co.delegate(inner);
        co.suspend(3);
        r
    });
    assert_eq!(outer.by_ref().collect::<Vec<_>>(), [0, 1, 2, 3]);
    assert_eq!(outer.return_value(), Some(&"inner"));
}

#[test]
fn delegate_by_reference_leaves_the_inner_generator_dead() {
    let mut outer = generator(|co| {
        let mut inner = generator(|co| {
            co.suspend('x');
            7
        });
        let r = co.delegate(&mut inner);
        assert_eq!(inner.status(), Status::Dead);
        // Resuming it again is the ordinary dead error, input handed back.
        assert!(matches!(inner.resume(()), Err(ResumeError::Dead(()))));
        r
    });
    assert_eq!(outer.next(), Some('x'));
    assert_eq!(outer.next(), None);
    assert_eq!(outer.return_value(), Some(&7));
}

#[test]
fn delegate_from_deep_recursion() {
    // A recursive walk that hands on the items of generators it creates.
    fn count_down(co: &cogen::Yielder<(), u32>, n: u32) -> u32 {
        if n == 0 {
            return 0;
        }
        co.suspend(n);
        1 + co.delegate(generator(move |co| count_down(co, n - 1)))
    }
    let mut g = generator(|co| count_down(co, 50));
    let items: Vec<u32> = g.by_ref().collect();
    assert_eq!(items, (1..=50).rev().collect::<Vec<_>>());
    assert_eq!(g.return_value(), Some(&50));
}

#[test]
fn delegate_reraises_the_inner_panic_in_the_outer_body() {
    let mut outer = cogen::Builder::new().name("outer").build(|co, ()| {
        co.delegate(generator(|co| {
            co.suspend(1);
            panic!("inner failed");
        }))
    });
    assert_eq!(outer.resume(()).unwrap(), CoroutineResult::Yield(1));
    let err = outer.resume(()).unwrap_err();
    let panic = err.try_into_panic().unwrap();
    assert_eq!(panic.message(), "inner failed");
    assert_eq!(panic.coroutine_name(), Some("outer"));
    assert_eq!(outer.status(), Status::Dead);
}

#[test]
fn a_panic_that_delegate_reraised_is_not_reported_again_by_close() {
    // `inner`, passed by `&mut`, panics; `delegate` re-raises the panic in
    // the outer body, which catches it. That panic has been reported, so
    // closing `inner` afterwards reports nothing, as after a generator's
    // iterator re-raised it; for a coroutine and for a generator alike.
    fn reraise_then_close<G>(co: &cogen::Yielder<(), u32>, mut inner: G) -> (String, Status, bool)
    where
        G: Resumable<(), Yield = u32>,
    {
        let Err(payload) = catch_unwind(AssertUnwindSafe(|| co.delegate(&mut inner))) else {
            panic!("delegate returned instead of re-raising the panic");
        };
        let message = payload.downcast_ref::<&str>().unwrap().to_string();
        (message, inner.status(), inner.close().is_ok())
    }
    let mut outer = generator(|co| {
        let from_generator = reraise_then_close(
            co,
            generator(|co| {
                co.suspend(1);
                panic!("inner generator failed")
            }),
        );
        let from_coroutine = reraise_then_close(
            co,
            Coroutine::new(|co, ()| {
                co.suspend(2);
                panic!("inner coroutine failed")
            }),
        );
        (from_generator, from_coroutine)
    });
    assert_eq!(outer.by_ref().collect::<Vec<_>>(), [1, 2]);
    let (from_generator, from_coroutine) = outer.take_return_value().unwrap();
    assert_eq!(
        from_generator,
        ("inner generator failed".to_owned(), Status::Dead, true)
    );
    assert_eq!(
        from_coroutine,
        ("inner coroutine failed".to_owned(), Status::Dead, true)
    );
}

#[test]
fn delegate_to_a_dead_coroutine_panics_with_a_clear_message() {
    let mut outer = generator(|co| {
        let mut inner = generator(|_co: &cogen::Yielder<(), u8>| ());
        co.delegate(&mut inner);
        co.delegate(&mut inner);
    });
    let payload = catch_unwind(AssertUnwindSafe(|| outer.next())).unwrap_err();
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"cannot delegate to a dead coroutine")
    );
}

#[test]
fn delegate_with_forwards_every_input() {
    let mut outer = Coroutine::new(|co, first: i32| {
        let echo = Coroutine::new(|co, mut x: i32| {
            let mut seen = Vec::new();
            while x >= 0 {
                seen.push(x);
                x = co.suspend(x * 2);
            }
            seen
        });
        co.delegate_with(echo, first).len()
    });
    assert_eq!(outer.resume(1).unwrap(), CoroutineResult::Yield(2));
    assert_eq!(outer.resume(5).unwrap(), CoroutineResult::Yield(10));
    assert_eq!(outer.resume(-1).unwrap(), CoroutineResult::Return(2));
}

#[test]
fn suspend_all_yields_every_item_of_an_iterator() {
    let g = generator(|co| {
        co.suspend_all("abc".chars());
        co.suspend_all(Vec::<char>::new());
        co.suspend('!');
    });
    assert_eq!(g.collect::<String>(), "abc!");
}

#[test]
fn dropping_a_generator_inside_a_delegation_drops_everything_once() {
    let outer_drops = DropCounter::new();
    let inner_drops = DropCounter::new();
    let (o, i) = (outer_drops.clone(), inner_drops.clone());
    let mut g = generator(move |co| {
        let _outer_guard = o.token();
        co.delegate(generator(move |co| {
            let _inner_guard = i.token();
            for n in 0.. {
                co.suspend(n);
            }
        }));
    });
    assert_eq!(g.next(), Some(0));
    assert_eq!(g.next(), Some(1));
    assert_eq!((outer_drops.count(), inner_drops.count()), (0, 0));
    drop(g);
    assert_eq!((outer_drops.count(), inner_drops.count()), (1, 1));
}

#[test]
fn resumable_trait_has_the_coroutine_semantics() {
    fn check<G: Resumable<u32, Yield = u32, Return = &'static str>>(mut co: G) {
        assert_eq!(co.status(), Status::Suspended);
        assert_eq!(co.resume(1).unwrap(), CoroutineResult::Yield(2));
        assert_eq!(co.resume(2).unwrap(), CoroutineResult::Return("end"));
        assert!(co.is_dead());
        assert!(matches!(co.resume(3), Err(ResumeError::Dead(3))));
        assert!(co.close().is_ok());
    }
    let body = |co: &cogen::Yielder<u32, u32>, x: u32| {
        co.suspend(x * 2);
        "end"
    };
    check(Coroutine::new(body));
    let mut co = Coroutine::new(body);
    check(&mut co);
    check(Box::new(Coroutine::new(body)));
    ScopedCoroutine::new(body).scope(|co| check(co));
}

#[test]
fn resumable_trait_reports_panics_and_names() {
    let mut co: Box<dyn Resumable<(), Yield = (), Return = ()>> = Box::new(
        cogen::Builder::new()
            .name("worker")
            .build(|_, ()| panic!("oops")),
    );
    assert_eq!(co.name(), Some("worker"));
    let panic = co.resume(()).unwrap_err().try_into_panic().unwrap();
    assert_eq!(panic.message(), "oops");
    assert!(co.is_dead());
    // The first close reports the death, the second is clean.
    assert_eq!(co.close().unwrap_err().message(), "oops");
    assert!(co.close().is_ok());
}

#[test]
fn resumable_close_runs_destructors_once() {
    let drops = DropCounter::new();
    let d = drops.clone();
    let mut co = generator(move |co| {
        let _guard = d.token();
        co.suspend(());
    });
    assert!(Resumable::resume(&mut co, ()).is_ok());
    Resumable::close(&mut co).unwrap();
    assert_eq!(drops.count(), 1);
    drop(co);
    assert_eq!(drops.count(), 1);
}

#[test]
fn wrap_still_works() {
    let mut add = cogen::wrap(|co, mut total: i32| {
        loop {
            total += co.suspend(total);
        }
    });
    let _: CoroutineResult<i32, ()> = add(1);
    assert_eq!(add(2), CoroutineResult::Yield(3));
}
