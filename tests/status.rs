//! `Status` in every state, from the owner, from inside the coroutine
//! (`running()`), and from a coroutine that resumed another one (Normal);
//! `running()` and `is_yieldable()` inside and outside coroutines.

use std::cell::RefCell;
use std::rc::Rc;

use cogen::{Builder, Coroutine, CoroutineHandle, CoroutineResult, Status, Yielder};

#[test]
fn status_as_the_owner_sees_it() {
    let mut co: Coroutine<(), (), ()> = Coroutine::new(|co, ()| co.suspend(()));
    let handle = co.handle();
    // Not started yet: suspended (Lua too).
    assert_eq!(co.status(), Status::Suspended);
    assert_eq!(handle.status(), Status::Suspended);
    // Stopped in suspend: suspended (the tutorial's "running" is wrong).
    co.resume(()).unwrap();
    assert_eq!(co.status(), Status::Suspended);
    assert_eq!(handle.status(), Status::Suspended);
    // Returned: dead.
    co.resume(()).unwrap();
    assert_eq!(co.status(), Status::Dead);
    assert_eq!(handle.status(), Status::Dead);
}

#[test]
fn status_after_a_panic_and_after_close() {
    let mut co: Coroutine<(), (), ()> = Coroutine::new(|_, ()| panic!("x"));
    let handle = co.handle();
    co.resume(()).unwrap_err();
    assert_eq!(co.status(), Status::Dead);
    assert_eq!(handle.status(), Status::Dead);

    let mut co: Coroutine<(), (), ()> = Coroutine::new(|co, ()| co.suspend(()));
    co.resume(()).unwrap();
    let handle = co.handle();
    co.close().unwrap();
    assert_eq!(co.status(), Status::Dead);
    assert_eq!(handle.status(), Status::Dead);

    let mut unstarted: Coroutine<(), (), ()> = Coroutine::new(|_, ()| ());
    let handle = unstarted.handle();
    unstarted.close().unwrap();
    assert_eq!(unstarted.status(), Status::Dead);
    assert_eq!(handle.status(), Status::Dead);
}

#[test]
fn a_handle_taken_late_reads_the_current_status() {
    let mut co: Coroutine<(), (), ()> = Coroutine::new(|co, ()| co.suspend(()));
    co.resume(()).unwrap();
    assert_eq!(co.handle().status(), Status::Suspended);
    co.resume(()).unwrap();
    assert_eq!(co.handle().status(), Status::Dead);
}

#[test]
fn inside_the_coroutine_it_is_running() {
    // The handle is passed in as the first input.
    let mut co: Coroutine<CoroutineHandle, (Status, Status, bool), ()> =
        Coroutine::new(|co, me: CoroutineHandle| {
            let running = cogen::running().expect("inside a coroutine");
            co.suspend((me.status(), running.status(), running.same_coroutine(&me)));
        });
    let handle = co.handle();
    assert_eq!(
        co.resume(handle.clone()).unwrap(),
        CoroutineResult::Yield((Status::Running, Status::Running, true))
    );
    assert_eq!(handle.status(), Status::Suspended);
}

#[test]
fn running_without_a_prior_handle() {
    // running() creates the handle from inside; the owner's handle is the same one.
    let mut co: Coroutine<(), CoroutineHandle, ()> =
        Builder::new().name("inner").build(|co, ()| {
            co.suspend(cogen::running().unwrap());
        });
    let from_inside = co.resume(()).unwrap().as_yield().unwrap();
    assert_eq!(from_inside.name(), Some("inner"));
    assert_eq!(from_inside.status(), Status::Suspended);
    assert!(from_inside.same_coroutine(&co.handle()));
    co.resume(()).unwrap();
    assert_eq!(from_inside.status(), Status::Dead);
}

#[test]
fn running_and_is_yieldable_outside_any_coroutine() {
    assert!(cogen::running().is_none());
    assert!(!cogen::is_yieldable());
}

#[test]
fn is_yieldable_inside_at_any_depth() {
    fn deep(n: u32) -> bool {
        if n == 0 {
            cogen::is_yieldable()
        } else {
            deep(n - 1)
        }
    }
    let mut co: Coroutine<(), bool, bool> = Coroutine::new(|co, ()| {
        co.suspend(cogen::is_yieldable());
        deep(50)
    });
    assert_eq!(co.resume(()).unwrap(), CoroutineResult::Yield(true));
    assert!(!cogen::is_yieldable()); // back outside
    assert_eq!(co.resume(()).unwrap(), CoroutineResult::Return(true));
    assert!(!cogen::is_yieldable());
    assert!(cogen::running().is_none());
}

#[test]
fn running_is_restored_after_a_panic() {
    let mut co: Coroutine<(), (), ()> = Coroutine::new(|_, ()| panic!("p"));
    co.resume(()).unwrap_err();
    assert!(cogen::running().is_none());
    assert!(!cogen::is_yieldable());
}

/// What a child coroutine saw while its parent was resuming it.
#[derive(Debug, PartialEq)]
struct Seen {
    parent: Status,
    child: Status,
    running_is_child: bool,
}

#[test]
fn a_coroutine_that_resumed_another_is_normal() {
    let mut parent: Coroutine<CoroutineHandle, Seen, Status> =
        Coroutine::new(|co, me: CoroutineHandle| {
            let parent = me.clone();
            let mut child: Coroutine<(), Seen, ()> =
                Builder::new().name("child").build(move |co, ()| {
                    let running = cogen::running().unwrap();
                    co.suspend(Seen {
                        parent: parent.status(),
                        child: running.status(),
                        running_is_child: running.name() == Some("child"),
                    });
                });
            let child_handle = child.handle();
            let seen = child.resume(()).unwrap().as_yield().unwrap();
            // The child has yielded back: the parent runs again, the child is suspended.
            assert_eq!(me.status(), Status::Running);
            assert_eq!(child_handle.status(), Status::Suspended);
            assert!(cogen::running().unwrap().same_coroutine(&me));
            co.suspend(seen);
            child.resume(()).unwrap();
            child_handle.status()
        });
    let handle = parent.handle();
    let seen = parent.resume(handle.clone()).unwrap().as_yield().unwrap();
    assert_eq!(
        seen,
        Seen {
            parent: Status::Normal,
            child: Status::Running,
            running_is_child: true,
        }
    );
    assert_eq!(handle.status(), Status::Suspended);
    assert_eq!(
        parent.resume(handle.clone()).unwrap(),
        CoroutineResult::Return(Status::Dead)
    );
    assert_eq!(handle.status(), Status::Dead);
}

/// Three levels: each ancestor of the running coroutine is normal.
#[test]
fn every_ancestor_is_normal() {
    type Log = Rc<RefCell<Vec<Vec<Status>>>>;
    let log: Log = Rc::default();
    let handles: Rc<RefCell<Vec<CoroutineHandle>>> = Rc::default();

    fn snapshot(log: &Log, handles: &Rc<RefCell<Vec<CoroutineHandle>>>) {
        let statuses = handles
            .borrow()
            .iter()
            .map(CoroutineHandle::status)
            .collect();
        log.borrow_mut().push(statuses);
    }

    let (l, h) = (log.clone(), handles.clone());
    let mut top: Coroutine<(), (), ()> = Coroutine::new(move |co, ()| {
        h.borrow_mut().push(cogen::running().unwrap());
        let (l2, h2) = (l.clone(), h.clone());
        let mut mid: Coroutine<(), (), ()> = Coroutine::new(move |co, ()| {
            h2.borrow_mut().push(cogen::running().unwrap());
            let (l3, h3) = (l2.clone(), h2.clone());
            let mut bottom: Coroutine<(), (), ()> = Coroutine::new(move |co, ()| {
                h3.borrow_mut().push(cogen::running().unwrap());
                snapshot(&l3, &h3); // [Normal, Normal, Running]
                co.suspend(());
            });
            bottom.resume(()).unwrap();
            snapshot(&l2, &h2); // [Normal, Running, Suspended]
            co.suspend(());
            drop(bottom);
            snapshot(&l2, &h2); // [Normal, Running, Dead]
        });
        mid.resume(()).unwrap();
        snapshot(&l, &h); // [Running, Suspended, Suspended]
        co.suspend(());
        mid.resume(()).unwrap();
        snapshot(&l, &h); // [Running, Dead, Dead]
    });
    top.resume(()).unwrap();
    snapshot(&log, &handles); // [Suspended, Suspended, Suspended]
    top.resume(()).unwrap();
    snapshot(&log, &handles); // [Dead, Dead, Dead]

    use Status::*;
    assert_eq!(
        *log.borrow(),
        vec![
            vec![Normal, Normal, Running],
            vec![Normal, Running, Suspended],
            vec![Running, Suspended, Suspended],
            vec![Suspended, Suspended, Suspended],
            vec![Normal, Running, Dead],
            vec![Running, Dead, Dead],
            vec![Dead, Dead, Dead],
        ]
    );
}

#[test]
fn a_parent_runs_again_after_its_child_panics() {
    let mut parent: Coroutine<(), Status, ()> = Coroutine::new(|co, ()| {
        let mut child: Coroutine<(), (), ()> = Coroutine::new(|_, ()| panic!("child"));
        assert!(child.resume(()).unwrap_err().is_panic());
        co.suspend(cogen::running().unwrap().status());
    });
    assert_eq!(
        parent.resume(()).unwrap(),
        CoroutineResult::Yield(Status::Running)
    );
}

#[test]
fn status_is_observable_from_a_generic_helper() {
    fn lua_status(h: &CoroutineHandle) -> &'static str {
        match h.status() {
            Status::Suspended => "suspended",
            Status::Running => "running",
            Status::Normal => "normal",
            Status::Dead => "dead",
        }
    }
    let mut co = Coroutine::new(|co: &Yielder<(), &'static str>, ()| {
        co.suspend(lua_status(&cogen::running().unwrap()));
    });
    let h = co.handle();
    let mut seen = vec![lua_status(&h)];
    seen.push(co.resume(()).unwrap().as_yield().unwrap());
    seen.push(lua_status(&h));
    co.resume(()).unwrap();
    seen.push(lua_status(&h));
    assert_eq!(seen, ["suspended", "running", "suspended", "dead"]);
}

#[test]
fn status_displays_luas_names() {
    let names: Vec<String> = [
        Status::Suspended,
        Status::Running,
        Status::Normal,
        Status::Dead,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(names, ["suspended", "running", "normal", "dead"]);
    assert_eq!(Status::Dead.as_str(), "dead");
}

/// Destructors run by a close see the closed coroutine running, whether it
/// was suspended or never started (its captures are dropped on its own
/// stack too), and its closer normal.
#[test]
fn destructors_run_by_close_see_the_closed_coroutine_running() {
    type Seen = Rc<RefCell<Vec<(Option<String>, Status)>>>;
    struct Report(Seen, Option<CoroutineHandle>);
    impl Drop for Report {
        fn drop(&mut self) {
            let running = cogen::running().expect("inside the closed coroutine");
            self.0
                .borrow_mut()
                .push((running.name().map(str::to_owned), running.status()));
            if let Some(closer) = &self.1 {
                self.0
                    .borrow_mut()
                    .push((closer.name().map(str::to_owned), closer.status()));
            }
        }
    }
    let seen: Seen = Rc::default();
    let s = seen.clone();
    let mut closer: Coroutine<(), (), ()> = Builder::new().name("closer").build(move |_, ()| {
        let me = cogen::running();
        let report = Report(s.clone(), me.clone());
        let mut unstarted: Coroutine<(), (), ()> = Builder::new()
            .name("unstarted")
            .build(move |_, ()| drop(report));
        unstarted.close().unwrap();
        let report = Report(s.clone(), me);
        let mut suspended: Coroutine<(), (), ()> =
            Builder::new().name("suspended").build(move |co, ()| {
                let _report = report;
                co.suspend(());
            });
        suspended.resume(()).unwrap();
        suspended.close().unwrap();
    });
    closer.resume(()).unwrap();
    let name = |n: &str| Some(n.to_string());
    assert_eq!(
        *seen.borrow(),
        [
            (name("unstarted"), Status::Running),
            (name("closer"), Status::Normal),
            (name("suspended"), Status::Running),
            (name("closer"), Status::Normal),
        ]
    );
}

/// A chain of 40 coroutines, each resumed from inside the one before, on
/// stacks whose frames begin at different offsets below their tops (the
/// stack layer spreads them over the cache): from the innermost, every
/// coroutine on the chain reads Normal and the innermost Running, each is
/// found by its name, and all read Dead once they return.
#[test]
fn a_deep_chain_over_many_stacks_reads_right_from_the_inside() {
    type Seen = Rc<RefCell<Vec<(Option<String>, Vec<Status>)>>>;

    fn link(depth: usize, handles: Rc<RefCell<Vec<CoroutineHandle>>>, seen: Seen) {
        if depth == 40 {
            let running = cogen::running().expect("inside the chain");
            let statuses = handles
                .borrow()
                .iter()
                .map(CoroutineHandle::status)
                .collect();
            seen.borrow_mut()
                .push((running.name().map(str::to_owned), statuses));
            return;
        }
        let (h, s) = (Rc::clone(&handles), Rc::clone(&seen));
        let mut co: Coroutine<(), (), ()> = Builder::new()
            .name(format!("link {depth}"))
            .build(move |_, ()| link(depth + 1, h, s));
        handles.borrow_mut().push(co.handle());
        co.resume(()).unwrap();
        assert_eq!(co.status(), Status::Dead);
    }

    let handles = Rc::new(RefCell::new(Vec::new()));
    let seen: Seen = Rc::new(RefCell::new(Vec::new()));
    link(0, Rc::clone(&handles), Rc::clone(&seen));
    let seen = seen.borrow();
    let (name, statuses) = &seen[0];
    assert_eq!(name.as_deref(), Some("link 39"));
    assert_eq!(statuses.len(), 40);
    assert!(statuses[..39].iter().all(|s| *s == Status::Normal));
    assert_eq!(statuses[39], Status::Running);
    assert!(handles.borrow().iter().all(|h| h.status() == Status::Dead));
}
