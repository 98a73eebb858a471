//! `event_loop::timeout`: a deadline on any waiting code of a stackful
//! task. What it cuts short, what it leaves behind (destructors run once,
//! a channel's wake-up passed on, the deadline gone afterwards), nesting,
//! panics going through it, and waits in destructors while it unwinds.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use cogen::event_loop::{EventLoop, channel, sleep, spawn, timeout, timeout_at, yield_now};

mod support;
use support::DropCounter;

/// A deadline used as behaviour (never as a measurement).
const SHORT: Duration = Duration::from_millis(20);

#[test]
fn a_wait_past_the_deadline_is_cut_short_instead_of_reported_as_a_deadlock() {
    let ev = EventLoop::new();
    let got = ev
        .block_on(|| {
            let (_tx, rx) = channel::<u32>(1); // nobody sends
            timeout(SHORT, || rx.recv())
        })
        .unwrap();
    assert!(got.is_err());
}

#[test]
fn code_that_finishes_in_time_returns_its_value_and_the_deadline_is_gone() {
    let ev = EventLoop::new();
    ev.block_on(|| {
        let (tx, rx) = channel::<u32>(1);
        let sender = spawn(move || tx.send(7).unwrap());
        assert_eq!(timeout(Duration::from_secs(60), || rx.recv()), Ok(Ok(7)));
        sender.join().unwrap();
        // A short deadline that has passed by the time of the next wait
        // outside it: that wait is not cut short.
        assert_eq!(timeout(SHORT, || 1), Ok(1));
        sleep(SHORT * 2);
    })
    .unwrap();
}

#[test]
fn every_destructor_on_the_unwound_stack_runs_once() {
    fn deep(depth: u32, drops: &DropCounter) {
        let _token = drops.token();
        if depth == 0 {
            sleep(Duration::from_secs(3600));
        } else {
            deep(depth - 1, drops);
        }
    }
    let drops = DropCounter::new();
    let d = drops.clone();
    let ev = EventLoop::new();
    let got = ev
        .block_on(move || timeout(SHORT, || deep(10, &d)))
        .unwrap();
    assert!(got.is_err());
    assert_eq!((drops.count(), drops.live()), (11, 0), "each dropped once");
}

#[test]
fn a_receiver_woken_after_its_deadline_passes_the_message_on() {
    let ev = EventLoop::new();
    let (tx, rx) = channel::<u32>(1);
    let rx2 = rx.clone();
    let deadline = Instant::now() + SHORT;
    let first = ev.spawn(move || timeout_at(deadline, || rx.recv()));
    let second = ev.spawn(move || rx2.recv());
    // The sender is kept (closing the channel would wake `second` anyway).
    let _tx = ev
        .block_on(move || {
            yield_now(); // both receivers park, `first` in front
            // Block the loop's thread past the deadline: when `first` runs,
            // it has been woken for the message and is also out of time.
            std::thread::sleep(SHORT * 2);
            tx.send(42).unwrap(); // wakes `first` (in front)
            tx
        })
        .unwrap();
    ev.run().unwrap();
    assert!(first.join().unwrap().is_err(), "first timed out");
    assert_eq!(second.join().unwrap(), Ok(42), "the message went on");
}

#[test]
fn nested_time_limits() {
    let ev = EventLoop::new();
    ev.block_on(|| {
        // The inner one is shorter: it fires, the outer goes on.
        let outer = timeout(Duration::from_secs(3600), || {
            let inner = timeout(SHORT, || sleep(Duration::from_secs(3600)));
            assert!(inner.is_err());
            "outer finished"
        });
        assert_eq!(outer, Ok("outer finished"));
        // The outer one is shorter: it unwinds through the inner one.
        let reached = Cell::new(false);
        let outer = timeout(SHORT, || {
            let inner = timeout(Duration::from_secs(3600), || {
                sleep(Duration::from_secs(3600))
            });
            reached.set(true);
            inner
        });
        assert!(outer.is_err());
        assert!(!reached.get(), "the inner timeout did not return");
        // And afterwards no deadline is left over.
        sleep(SHORT * 2);
    })
    .unwrap();
}

#[test]
fn a_panic_inside_goes_through() {
    let ev = EventLoop::new();
    let h = ev.spawn(|| timeout(Duration::from_secs(3600), || panic!("boom")));
    ev.run().unwrap();
    let err = h.join().unwrap_err();
    assert_eq!(err.panic().unwrap().message(), "boom");
}

#[test]
fn a_destructor_that_waits_while_the_timeout_unwinds_waits_normally() {
    struct WaitsOnDrop(Rc<Cell<bool>>);
    impl Drop for WaitsOnDrop {
        fn drop(&mut self) {
            // Longer than the deadline, which has passed by now.
            sleep(SHORT * 2);
            self.0.set(true);
        }
    }
    let flushed = Rc::new(Cell::new(false));
    let f = flushed.clone();
    let ev = EventLoop::new();
    let got = ev
        .block_on(move || {
            timeout(SHORT, move || {
                let _guard = WaitsOnDrop(f);
                sleep(Duration::from_secs(3600));
            })
        })
        .unwrap();
    assert!(got.is_err());
    assert!(flushed.get());
}

#[test]
fn other_tasks_run_while_one_waits_under_a_time_limit() {
    let ev = EventLoop::new();
    let ticks = Rc::new(Cell::new(0));
    let t = ticks.clone();
    ev.spawn(move || {
        for _ in 0..3 {
            t.set(t.get() + 1);
            yield_now();
        }
    });
    let got = ev
        .block_on(|| timeout(SHORT, || sleep(Duration::from_secs(3600))))
        .unwrap();
    assert!(got.is_err());
    assert_eq!(ticks.get(), 3);
}

#[test]
fn timeout_panics_outside_a_stackful_task() {
    let err = std::panic::catch_unwind(|| timeout(SHORT, || ())).unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(msg.contains("timeout called outside a task"), "{msg}");
}

#[test]
fn elapsed_is_an_error_and_converts_to_a_timed_out_io_error() {
    let ev = EventLoop::new();
    let err = ev
        .block_on(|| timeout(SHORT, || sleep(Duration::from_secs(3600))).unwrap_err())
        .unwrap();
    assert_eq!(err.to_string(), "deadline has elapsed");
    let io: std::io::Error = err.into();
    assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
}

#[test]
fn a_wait_cut_short_leaves_no_entry_that_keeps_the_task_alive() {
    // A detached task's result is dropped with the task's last reference:
    // an entry left in the channel's wait list would keep it.
    let drops = DropCounter::new();
    let token = drops.token();
    let ev = EventLoop::new();
    let (tx, rx) = channel::<u32>(1);
    let rx_kept = rx.clone(); // the channel stays open and idle
    ev.spawn(move || {
        for _ in 0..3 {
            assert!(timeout(Duration::from_millis(1), || rx.recv()).is_err());
        }
        token
    })
    .detach();
    ev.run().unwrap();
    assert_eq!((drops.count(), drops.live()), (1, 0));
    drop((tx, rx_kept));
}

#[test]
fn a_caught_expiry_unwinds_again_at_the_next_wait() {
    let ev = EventLoop::new();
    let (tx, rx) = channel::<u32>(1);
    // Keeps the channel open, and the loop from finding a deadlock, for 3 s.
    ev.spawn(move || {
        sleep(Duration::from_secs(3));
        drop(tx);
    });
    let (second, result, took) = ev
        .block_on(move || {
            let start = Instant::now();
            let second = Rc::new(Cell::new(false));
            let reached = second.clone();
            let result = timeout(Duration::from_millis(20), || {
                let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rx.recv()));
                assert!(first.is_err(), "the first wait was cut short");
                reached.set(true);
                rx.recv() // unwinds again, at once
            });
            (second.get(), result, start.elapsed())
        })
        .unwrap();
    assert!(second, "the code after the caught expiry ran");
    assert!(result.is_err(), "Elapsed, not {result:?}");
    // The sender task ends after 3 s; the second wait must not last that long.
    assert!(took < Duration::from_secs(2), "took {took:?}");

    // Nested: an outer expiry caught inside the inner `timeout` (around it)
    // raises again at the next wait, out to the outer scope.
    let ev = EventLoop::new();
    let (tx, rx) = channel::<u32>(1);
    ev.spawn(move || {
        sleep(Duration::from_secs(3));
        drop(tx);
    });
    let (inner_caught, outer) = ev
        .block_on(move || {
            let mut inner_caught = false;
            let outer = timeout(Duration::from_millis(20), || {
                let inner = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    timeout(Duration::from_secs(60), || rx.recv())
                }));
                inner_caught = inner.is_err();
                rx.recv()
            });
            (inner_caught, outer)
        })
        .unwrap();
    assert!(
        inner_caught,
        "the outer expiry went through the inner timeout"
    );
    assert!(outer.is_err(), "the outer timeout elapsed: {outer:?}");
}

/// A generator resumed inside a task enters a `timeout` and suspends from
/// inside its closure. The limit belongs to the generator's frames: the
/// task's own waits meanwhile do not obey it (nothing on the task's stack
/// would catch its expiry), and it applies again when the generator, once
/// resumed, waits inside the closure.
#[test]
fn a_time_limit_entered_inside_a_generator_binds_only_the_generator() {
    let ev = EventLoop::new();
    let result = ev
        .block_on(|| {
            let mut g = cogen::Coroutine::<(), u32, Result<(), cogen::event_loop::Elapsed>>::new(
                |co, ()| {
                    timeout(SHORT, || {
                        co.suspend(1);
                        sleep(Duration::from_secs(3600)); // past the limit
                    })
                },
            );
            assert_eq!(g.resume(()).unwrap().as_yield(), Some(1));
            // The task waits past the generator's deadline, outside it.
            sleep(SHORT * 2);
            let (tx, rx) = channel(1);
            spawn(move || tx.send(7).unwrap());
            let got = rx.recv().unwrap();
            // Back inside the closure, the expired limit cuts the wait short.
            let returned = g.resume(()).unwrap();
            (got, returned.as_return())
        })
        .unwrap();
    assert_eq!(result.0, 7);
    assert!(matches!(result.1, Some(Err(_))), "{:?}", result.1);
}

/// A task inside a time limit of its own closes a generator suspended
/// inside another: the generator's unwinding takes out only its own limit,
/// and the task's still cuts its wait short.
#[test]
fn closing_a_generator_inside_a_time_limit_keeps_the_task_s_own_limit() {
    let ev = EventLoop::new();
    let got = ev
        .block_on(|| {
            let mut g = cogen::Coroutine::<(), u32, ()>::new(|co, ()| {
                let _ = timeout(Duration::from_secs(3600), || co.suspend(1));
            });
            assert_eq!(g.resume(()).unwrap().as_yield(), Some(1));
            timeout(SHORT, move || {
                drop(g);
                let (_tx, rx) = channel::<u32>(1); // nobody sends
                rx.recv()
            })
        })
        .unwrap();
    assert!(got.is_err(), "the task's own limit still holds");
}

/// A generator suspended inside a time limit moves to another task, which
/// resumes it: the limit goes with the generator's frames, whichever task
/// runs them, and the first task is not bound by it.
#[test]
fn a_time_limit_goes_with_the_generator_to_another_task() {
    let ev = EventLoop::new();
    let (tx, rx) = channel(1);
    let first = ev.spawn(move || {
        let mut g = cogen::Coroutine::<(), u32, bool>::new(|co, ()| {
            timeout(SHORT, || {
                co.suspend(1);
                sleep(Duration::from_secs(3600));
            })
            .is_err()
        });
        assert_eq!(g.resume(()).unwrap().as_yield(), Some(1));
        tx.send(g).unwrap();
        sleep(SHORT * 2); // not bound by the generator's limit
        "slept"
    });
    let second = ev.spawn(move || {
        let mut g = rx.recv().unwrap();
        g.resume(()).unwrap().as_return()
    });
    ev.run().unwrap();
    assert_eq!(first.join().unwrap(), "slept");
    assert_eq!(
        second.join().unwrap(),
        Some(true),
        "cut short in the second task"
    );
}

/// A loop kept in a thread-local, with a task parked inside a time limit,
/// is dropped as the thread ends, after the thread-locals the first
/// `timeout` used may be gone: the task's unwinding still leaves its
/// `timeout` cleanly (no panic on the way), and the thread ends normally.
#[test]
fn a_loop_in_a_thread_local_with_a_task_inside_a_time_limit_ends_with_the_thread() {
    use std::cell::RefCell;
    use std::sync::{Arc, Mutex};
    thread_local! {
        static LOOP: RefCell<Option<EventLoop>> = const { RefCell::new(None) };
    }
    const THREAD: &str = "a loop in a thread-local";
    // Panics on that thread, whatever catches them (the hook is the
    // process's, so the other tests' go on to the default one).
    let panics = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = panics.clone();
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() == Some(THREAD) {
            seen.lock().unwrap().push(info.to_string());
        } else {
            default_hook(info);
        }
    }));
    let drops = support::SendDropCounter::new();
    let token = drops.token();
    let ended = std::thread::Builder::new()
        .name(THREAD.into())
        .spawn(move || {
            // The loop's thread-local is set before any `timeout` runs, so
            // it is dropped after the thread-locals `timeout` sets up.
            LOOP.with(|l| *l.borrow_mut() = Some(EventLoop::new()));
            LOOP.with_borrow(|ev| {
                let ev = ev.as_ref().unwrap();
                ev.spawn(move || {
                    let _token = token;
                    let _ = timeout(Duration::from_secs(3600), || {
                        sleep(Duration::from_secs(3600))
                    });
                });
                assert!(ev.try_tick());
            });
        })
        .unwrap()
        .join();
    assert!(ended.is_ok());
    assert_eq!(drops.count(), 1, "the task was unwound");
    assert_eq!(*panics.lock().unwrap(), Vec::<String>::new());
}

/// `timeout` called on a stack of another library (a raw corosensei
/// coroutine resumed in a task) panics, saying why: which waits its frame
/// is around could not be told from there.
#[test]
fn timeout_on_a_foreign_stack_panics_clearly() {
    let ev = EventLoop::new();
    let message = ev
        .block_on(|| {
            let mut raw = corosensei::Coroutine::<(), (), String>::new(|_, ()| {
                let caught = std::panic::catch_unwind(|| timeout(SHORT, || 1));
                let payload = caught.expect_err("a panic");
                (payload.downcast_ref::<&str>().map(|s| s.to_string()))
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_default()
            });
            match raw.resume(()) {
                corosensei::CoroutineResult::Return(message) => message,
                corosensei::CoroutineResult::Yield(()) => unreachable!(),
            }
        })
        .unwrap();
    assert!(message.contains("not a cogen coroutine's"), "{message}");
}

/// A loop driven from inside a cogen coroutine: the chain of a task's
/// stacks goes on below the task's own stack, and a generator of the task
/// suspended inside its `timeout` still binds none of the task's waits.
#[test]
fn a_suspended_generator_s_limit_binds_no_wait_of_a_loop_driven_inside_a_coroutine() {
    let mut outer = cogen::Coroutine::<(), (), bool>::new(|_, ()| {
        let ev = EventLoop::new();
        ev.block_on(|| {
            let mut g = cogen::Coroutine::<(), (), ()>::new(|y, ()| {
                let _ = timeout(SHORT, || y.suspend(()));
            });
            g.resume(()).unwrap();
            sleep(SHORT * 3); // outside every timeout
            drop(g);
        })
        .is_ok()
    });
    assert_eq!(outer.resume(()).unwrap().as_return(), Some(true));
}

/// A task's `timeout` around a raw corosensei coroutine that resumes a
/// cogen one, which waits: the chain of stacks cannot be read across the
/// foreign stack, and the task's limit still cuts the wait short.
#[test]
fn a_time_limit_reaches_a_wait_beyond_a_foreign_stack() {
    let ev = EventLoop::new();
    let got = ev
        .block_on(|| {
            let (_tx, rx) = channel::<u32>(1); // nobody sends
            timeout(SHORT, move || {
                let mut g = corosensei::Coroutine::<(), (), u32>::new(move |_, ()| {
                    let mut inner =
                        cogen::Coroutine::<(), (), u32>::new(move |_, ()| rx.recv().unwrap_or(0));
                    inner.resume(()).unwrap().as_return().unwrap()
                });
                matches!(g.resume(()), corosensei::CoroutineResult::Return(_))
            })
        })
        .unwrap();
    assert!(got.is_err(), "cut short: {got:?}");
}

/// A destructor that a task's cancellation runs calls `timeout`: nothing
/// can wait there, so its closure just runs (a panic instead, during the
/// cancellation's unwinding, would abort the process).
#[test]
fn timeout_in_a_destructor_of_a_cancelled_task_just_runs_its_closure() {
    struct RunsATimeout(Rc<Cell<Option<u32>>>);
    impl Drop for RunsATimeout {
        fn drop(&mut self) {
            self.0.set(timeout(SHORT, || 7).ok());
        }
    }
    let ev = EventLoop::new();
    let seen = Rc::new(Cell::new(None));
    let guard = RunsATimeout(seen.clone());
    let task = ev.spawn(move || {
        let _guard = guard;
        sleep(Duration::from_secs(3600));
    });
    assert!(ev.try_tick());
    task.cancel();
    assert_eq!(seen.get(), Some(7));
}

/// A generator suspended inside its own `timeout` in one task, resumed in
/// another from inside a raw corosensei coroutine, waits: the chain cannot
/// be read past the foreign stack, and the generator's limit, on the part
/// that can be read, still cuts the wait short.
#[test]
fn a_generator_s_limit_holds_behind_a_foreign_stack_in_another_task() {
    let ev = EventLoop::new();
    let slot: Rc<std::cell::RefCell<Option<cogen::Coroutine<(), (), bool>>>> = Rc::default();
    let (tx, rx) = channel::<u32>(1);
    let kept = slot.clone();
    let _first = ev.spawn(move || {
        let mut g = cogen::Coroutine::<(), (), bool>::new(move |y, ()| {
            timeout(SHORT, || {
                y.suspend(());
                rx.recv()
            })
            .is_err()
        });
        assert!(g.resume(()).unwrap().as_yield().is_some());
        *kept.borrow_mut() = Some(g);
    });
    ev.run().unwrap();
    let got = ev
        .block_on(move || {
            let mut g = slot.borrow_mut().take().unwrap();
            let mut raw = corosensei::Coroutine::<(), (), bool>::new(move |_, ()| {
                g.resume(()).unwrap().as_return().unwrap()
            });
            match raw.resume(()) {
                corosensei::CoroutineResult::Return(cut) => cut,
                corosensei::CoroutineResult::Yield(()) => unreachable!(),
            }
        })
        .unwrap();
    drop(tx);
    assert!(got, "the generator's wait was cut short");
}

thread_local! {
    /// Generators kept suspended inside their `timeout` past their task.
    static KEPT: std::cell::RefCell<Vec<cogen::Coroutine<(), (), ()>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// One body for two tasks, so that the second takes the first's memory.
fn keeps_a_limited_generator_or_sleeps_behind_a_foreign_stack(keep: bool) -> &'static str {
    if keep {
        let mut g = cogen::Coroutine::<(), (), ()>::new(|y, ()| {
            let _ = timeout(SHORT, || y.suspend(()));
        });
        g.resume(()).unwrap();
        KEPT.with(|k| k.borrow_mut().push(g));
        "kept"
    } else {
        let mut raw = corosensei::Coroutine::<(), (), ()>::new(|_, ()| sleep(SHORT * 3));
        assert!(matches!(
            raw.resume(()),
            corosensei::CoroutineResult::Return(())
        ));
        "slept"
    }
}

/// A generator kept suspended inside its `timeout` after its task ended
/// binds no later task, not even one that reuses that task's memory and
/// waits behind a foreign stack, past the generator's deadline.
#[test]
fn a_limit_kept_past_its_task_binds_no_task_that_reuses_its_memory() {
    let ev = EventLoop::new();
    ev.spawn(|| keeps_a_limited_generator_or_sleeps_behind_a_foreign_stack(true))
        .detach();
    ev.run().unwrap();
    let second = ev.spawn(|| keeps_a_limited_generator_or_sleeps_behind_a_foreign_stack(false));
    let run = ev.run();
    KEPT.with(|k| k.borrow_mut().clear());
    run.unwrap();
    assert_eq!(second.join().unwrap(), "slept");
}

/// A loop driven from inside a `timeout`'s closure, on a generator resumed
/// outside any task: the limit is below the tasks' own stacks, around the
/// code that drives the loop, and binds none of their waits (its expiry
/// would have to unwind a task and the loop's `block_on` to reach it).
#[test]
fn a_limit_around_code_that_drives_a_loop_binds_none_of_its_tasks() {
    let inner = Rc::new(EventLoop::new());
    let driver = inner.clone();
    let mut g = {
        let ev = EventLoop::new();
        ev.block_on(move || {
            let mut g = cogen::Coroutine::<(), (), Result<&str, String>>::new(move |y, ()| {
                timeout(SHORT, || {
                    y.suspend(());
                    driver
                        .block_on(|| {
                            sleep(SHORT * 3); // past the limit
                            "slept"
                        })
                        .map_err(|e| e.to_string())
                })
                .unwrap_or_else(|_| Err("elapsed".into()))
            });
            g.resume(()).unwrap();
            g
        })
        .unwrap()
    };
    assert_eq!(g.resume(()).unwrap().as_return(), Some(Ok("slept")));
}

/// A task parks while a limit is live around the code that drives its loop;
/// the limit's scope then returns while the task is still parked, and the
/// loop is run again outside it: the task sleeps its full time, and no
/// expiry unwinds out of `run`.
#[test]
fn a_wait_outliving_a_limit_around_its_loop_is_not_cut_short() {
    let inner = Rc::new(EventLoop::new());
    let driver = inner.clone();
    let sleeper = Rc::new(std::cell::RefCell::new(None));
    let kept = sleeper.clone();
    let mut g = {
        let ev = EventLoop::new();
        ev.block_on(move || {
            let mut g = cogen::Coroutine::<(), (), ()>::new(move |y, ()| {
                let _ = timeout(SHORT, || {
                    y.suspend(());
                    let h = driver.spawn(|| {
                        sleep(SHORT * 3);
                        "slept"
                    });
                    assert!(driver.try_tick()); // now parked in its sleep
                    *kept.borrow_mut() = Some(h);
                });
            });
            g.resume(()).unwrap();
            g
        })
        .unwrap()
    };
    assert!(g.resume(()).unwrap().as_return().is_some()); // the scope is gone
    inner.run().unwrap();
    let h = sleeper.borrow_mut().take().unwrap();
    assert_eq!(h.join().unwrap(), "slept");
}

/// An expiry caught inside its `timeout` and raised again after that
/// `timeout` returned has no scope left: it ends its task as a panic that
/// says so, and the loop runs on (it used to leave `run`).
#[test]
fn an_expiry_raised_again_after_its_timeout_returned_is_a_panic_of_its_task() {
    use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
    let ev = EventLoop::new();
    let stray = ev.spawn(|| {
        let (_tx, rx) = channel::<u32>(1); // nobody sends
        let mut kept = None;
        let r = timeout(Duration::from_millis(1), || {
            kept = catch_unwind(AssertUnwindSafe(|| rx.recv())).err();
        });
        assert!(r.is_ok(), "the closure returned");
        resume_unwind(kept.expect("the expiry was caught"));
    });
    let after = ev.spawn(|| {
        yield_now();
        7
    });
    ev.run().unwrap();
    let err = stray.try_join().ok().unwrap().unwrap_err();
    let message = err.panic().expect("a panic").message().to_owned();
    assert!(message.contains("raised again"), "{message}");
    assert_eq!(after.try_join().ok().unwrap().unwrap(), 7);
}
