//! Checks of the event loop's fixes for stale waker keys, a loop dropped
//! inside a task, the order of a loop's drop and stackless joins by key:
//! every path that files a waker key still wakes, a loop's drop cannot be
//! used to drive the loop of the running task, and what is spawned while a
//! loop is dropped is cancelled.
#![cfg_attr(cogen_nightly, feature(coroutines))]

#[cfg(cogen_nightly)]
#[path = "nightly/loop_fix_checks.rs"]
mod nightly;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use cogen::event_loop::{EventLoop, JoinHandle, channel, sleep, spawn, wait_for};

/// Runs `f` on its own thread; aborts the process if it has not finished in 60 s.
fn with_watchdog(name: &str, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            f();
            let _ = tx.send(());
        })
        .unwrap();
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(()) => {
            t.join().unwrap();
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            eprintln!("{name}: HANG (not finished after 60 s)");
            std::process::abort();
        }
        Err(_) => {
            if let Err(p) = t.join() {
                std::panic::resume_unwind(p);
            }
        }
    }
}

// ---- 1. a wake-up by key that lands while the task is Running (same poll) ----

// ---- 3. a spawn from a destructor after an earlier one dropped the loop ----

thread_local! {
    static SPAWNED: RefCell<Option<JoinHandle<u32>>> = const { RefCell::new(None) };
}

struct SpawnsOnDrop;
impl Drop for SpawnsOnDrop {
    fn drop(&mut self) {
        let h = spawn(|| 1u32);
        SPAWNED.with(|s| *s.borrow_mut() = Some(h));
    }
}

#[test]
fn a_spawn_after_the_loop_was_dropped_by_the_same_cancellation_finishes() {
    let ev = Rc::new(EventLoop::new());
    let owner = ev.clone();
    let h = ev.spawn(move || {
        let _spawns = SpawnsOnDrop; // dropped second: after the loop
        let _owner = owner; // dropped first: the loop's drop runs here
        sleep(Duration::from_secs(3600));
    });
    assert!(ev.try_tick());
    drop(ev);
    h.cancel();
    assert!(h.join().unwrap_err().is_cancelled());
    let s = SPAWNED.with(|s| s.borrow_mut().take()).expect("spawned");
    assert!(
        s.is_finished(),
        "a task spawned into a loop already dropped is neither run nor cancelled"
    );
}

struct Flag(Rc<Cell<bool>>);
impl Drop for Flag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

// ---- 4. stackless joins by key: what the deadlock report and tasks() say ----

// ---- 2. for_drop hides the running task: does it also open the "a task must not drive a loop" guard? ----

struct Drives(Rc<EventLoop>, Rc<RefCell<Option<String>>>);
impl Drop for Drives {
    fn drop(&mut self) {
        let ev = self.0.clone();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ev.try_tick()));
        *self.1.borrow_mut() = Some(match r {
            Ok(ran) => format!("try_tick returned {ran}"),
            Err(p) => format!(
                "panicked: {}",
                p.downcast_ref::<String>().cloned().unwrap_or_default()
            ),
        });
    }
}

#[test]
fn a_task_cannot_drive_its_own_loop_from_a_destructor_of_another_loops_drop() {
    let a = Rc::new(EventLoop::new());
    let a2 = a.clone();
    let seen = Rc::new(RefCell::new(None));
    let s2 = seen.clone();
    let other_ran = Rc::new(Cell::new(false));
    let o2 = other_ran.clone();
    let b = EventLoop::new();
    b.spawn(move || {
        let _d = Drives(a2, s2);
        sleep(Duration::from_secs(3600));
    });
    b.try_tick();
    let outer = a.spawn(move || {
        drop(b); // B's drop cancels its task; its destructor drives loop A
        o2.get() // did the other task of A run while this one was running?
    });
    let _other = a.spawn(move || other_ran.set(true));
    let _ = a.run();
    let seen = seen.borrow().clone();
    let ran_inside = outer.join().unwrap();
    assert!(
        !ran_inside && seen.as_deref().is_some_and(|s| s.contains("inside a task")),
        "loop A was driven from inside its own running task: {seen:?}, other task stepped meanwhile: {ran_inside}"
    );
}

thread_local! {
    static LOOP_A: RefCell<Option<Rc<EventLoop>>> = const { RefCell::new(None) };
    static SEEN: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Send: reaches loop A through a thread-local when dropped.
struct DrivesA;
impl Drop for DrivesA {
    fn drop(&mut self) {
        eprintln!(
            "DrivesA::drop in task {:?}",
            cogen::event_loop::current_task_id()
        );
        let Some(a) = LOOP_A.with(|l| l.borrow().clone()) else {
            return;
        };
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| a.try_tick()));
        let s = match r {
            Ok(ran) => format!("try_tick returned {ran}"),
            Err(p) => format!(
                "panicked: {}",
                p.downcast_ref::<String>().cloned().unwrap_or_default()
            ),
        };
        SEEN.with(|x| *x.borrow_mut() = Some(s));
    }
}

#[test]
fn an_unstarted_jobs_destructor_cannot_drive_the_loop_whose_task_drops_its_loop() {
    let a = Rc::new(EventLoop::new());
    LOOP_A.with(|l| *l.borrow_mut() = Some(a.clone()));
    let b = EventLoop::new();
    let d = DrivesA;
    let _r = b.handle().spawn(move || {
        let _d = &d;
    }); // never started: dropped in B's drop
    let other_ran = Rc::new(Cell::new(false));
    let o2 = other_ran.clone();
    let outer = a.spawn(move || {
        drop(b); // B's drop drops the unstarted job; its destructor drives loop A
        o2.get()
    });
    let _other = a.spawn(move || other_ran.set(true));
    let _ = a.run();
    LOOP_A.with(|l| l.borrow_mut().take());
    let seen = SEEN.with(|x| x.borrow_mut().take());
    let ran_inside = outer.join().unwrap();
    assert!(
        !ran_inside && seen.as_deref().is_some_and(|s| s.contains("inside a task")),
        "loop A was driven from inside its own running task: {seen:?}, other task of A stepped meanwhile: {ran_inside}"
    );
}

// ---- the same bypass, driving with run(): a false deadlock report ----

thread_local! {
    static RUN_SEEN: RefCell<Option<String>> = const { RefCell::new(None) };
}

struct RunsA;
impl Drop for RunsA {
    fn drop(&mut self) {
        let Some(a) = LOOP_A.with(|l| l.borrow().clone()) else {
            return;
        };
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| a.run()));
        let s = match r {
            Ok(r) => format!("returned {r:?}"),
            Err(p) => format!(
                "panicked: {}",
                (p.downcast_ref::<String>().cloned())
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            ),
        };
        RUN_SEEN.with(|x| *x.borrow_mut() = Some(s));
    }
}

#[test]
fn an_unstarted_jobs_destructor_runs_the_loop_of_the_running_task() {
    let a = Rc::new(EventLoop::new());
    LOOP_A.with(|l| *l.borrow_mut() = Some(a.clone()));
    let b = EventLoop::new();
    let d = RunsA;
    let _r = b.handle().spawn(move || {
        let _d = &d;
    });
    let outer = a.spawn(move || drop(b));
    let first = a.run();
    LOOP_A.with(|l| l.borrow_mut().take());
    let seen = RUN_SEEN.with(|x| x.borrow_mut().take());
    assert!(first.is_ok() && outer.join().is_ok());
    assert!(
        seen.as_deref().is_some_and(|s| s.contains("inside a task")),
        "EventLoop::run of the running task's own loop, from inside it: {seen:?}"
    );
}

// ---- a detached task spawned after the loop's drop: when are its captures dropped? ----

struct SpawnsDetachedOnDrop(Rc<Cell<bool>>, Rc<Cell<u32>>);
impl Drop for SpawnsDetachedOnDrop {
    fn drop(&mut self) {
        let f = Flag(self.0.clone());
        let ran = self.1.clone();
        spawn(move || {
            let _f = &f;
            ran.set(ran.get() + 1);
        })
        .detach();
    }
}

#[test]
fn a_detached_spawn_after_the_loop_was_dropped() {
    with_watchdog("detached_after_drop", || {
        let dropped = Rc::new(Cell::new(false));
        let ran = Rc::new(Cell::new(0));
        let ev = Rc::new(EventLoop::new());
        let owner = ev.clone();
        let (d, r) = (dropped.clone(), ran.clone());
        let h = ev.spawn(move || {
            let _spawns = SpawnsDetachedOnDrop(d, r);
            let _owner = owner;
            sleep(Duration::from_secs(3600));
        });
        assert!(ev.try_tick());
        drop(ev);
        h.cancel();
        eprintln!(
            "after cancel: captures dropped: {}, ran: {}",
            dropped.get(),
            ran.get()
        );
        assert_eq!(ran.get(), 0);
        assert!(dropped.get());
    });
}

// ---- legitimate wake-ups through keys: must all arrive ----

#[test]
fn every_key_path_wakes() {
    use futures_lite::StreamExt;
    with_watchdog("key_paths", || {
        let ev = EventLoop::new();
        for _ in 0..50 {
            let (tx, mut rx) = channel::<u32>(1);
            let (tx2, rx2) = channel::<u32>(1);
            let target = ev.spawn(|| {
                sleep(Duration::from_millis(1));
                7u32
            });
            let target2 = ev.spawn(|| {
                cogen::event_loop::yield_now();
                8u32
            });
            // future task: JoinHandle (Local), channel stream (Local)
            let f = ev.spawn_future(async move {
                let a = target.await.unwrap();
                let b = rx.next().await.unwrap();
                a + b
            });
            // wait_for: JoinHandle and a channel stream, then a stackful recv
            // while the earlier registrations are stale
            let s = ev.spawn(move || {
                let a = wait_for(target2).unwrap();
                let b = wait_for(rx2.recv_async()).unwrap();
                let c = cogen::event_loop::unblock(|| 3u32);
                a + b + c
            });
            let h = ev.handle();
            let remote = h.spawn(|| 5u32);
            let r = ev.spawn_future(async move { remote.await.unwrap() });
            let sender = ev.spawn(move || {
                sleep(Duration::from_millis(2));
                tx.send(1).unwrap();
                tx2.send(2).unwrap();
            });
            ev.run().unwrap();
            assert_eq!(f.join().unwrap(), 8);
            assert_eq!(s.join().unwrap(), 13);
            assert_eq!(r.join().unwrap(), 5);
            sender.join().unwrap();
        }
    });
}
