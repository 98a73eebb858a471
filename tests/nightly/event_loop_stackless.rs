//! Stackless tasks (feature `nightly`): `#[coroutine]` closures yielding
//! wait requests to the same loop as stackful tasks. Included by
//! `tests/event_loop_stackless.rs` on a nightly compiler only.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use cogen::event_loop::{
    EventLoop, TaskBuilder, TryRecvError, Wait, WaitingOn, channel, spawn_stackless, yield_now,
};

use super::support::DropCounter;

#[test]
fn stackless_and_stackful_tasks_share_the_round_robin() {
    let ev = EventLoop::new();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    ev.spawn_stackless(
        #[coroutine]
        move || {
            for i in 0..3 {
                l.borrow_mut().push(format!("s{i}"));
                yield Wait::yield_now();
            }
        },
    );
    let l = log.clone();
    ev.spawn(move || {
        for i in 0..3 {
            l.borrow_mut().push(format!("f{i}"));
            yield_now();
        }
    });
    ev.run().unwrap();
    assert_eq!(*log.borrow(), ["s0", "f0", "s1", "f1", "s2", "f2"]);
}

#[test]
fn stackless_sleep_join_and_channels() {
    let ev = EventLoop::new();
    let (tx, rx) = channel::<u32>(1);
    let producer = ev.spawn(move || {
        for i in 1..=5 {
            tx.send(i).unwrap();
        }
    });
    let consumer = TaskBuilder::new().name("sum").spawn_stackless_on(
        &ev,
        #[coroutine]
        move || {
            let mut sum = 0;
            loop {
                match rx.try_recv() {
                    Ok(v) => sum += v,
                    Err(TryRecvError::Empty) => yield Wait::recv(&rx),
                    Err(TryRecvError::Closed) => break,
                }
            }
            yield Wait::sleep(Duration::from_millis(2));
            yield Wait::join(&producer);
            (sum, producer.try_join().ok().unwrap().is_ok())
        },
    );
    assert_eq!(consumer.name(), Some("sum"));
    let outer = ev.spawn(move || consumer.join().unwrap());
    ev.run().unwrap();
    assert_eq!(outer.join().unwrap(), (15, true));
}

#[test]
fn stackless_send_waits_for_room_and_spawn_from_a_task() {
    let ev = EventLoop::new();
    let got = ev
        .block_on(|| {
            let (tx, rx) = channel::<u32>(1);
            let sender = spawn_stackless(
                #[coroutine]
                move || {
                    for i in 0..4 {
                        let mut v = i;
                        while let Err(e) = tx.try_send(v) {
                            v = e.into_inner();
                            yield Wait::send(&tx);
                        }
                    }
                },
            );
            let got: Vec<u32> = rx.iter().collect();
            sender.join().unwrap();
            got
        })
        .unwrap();
    assert_eq!(got, [0, 1, 2, 3]);
}

#[test]
fn stackless_panic_cancel_drop_and_deadlock() {
    let drops = DropCounter::new();
    let ev = EventLoop::new();
    let bad = ev.spawn_stackless(
        #[coroutine]
        || {
            yield Wait::yield_now();
            panic!("stackless failed");
        },
    );
    let (_tx, rx) = channel::<u32>(1);
    let d = drops.token();
    let stuck = TaskBuilder::new().name("stuck").spawn_stackless_on(
        &ev,
        #[coroutine]
        move || {
            let _d = d;
            loop {
                match rx.try_recv() {
                    Ok(_) => {}
                    Err(_) => yield Wait::recv(&rx),
                }
            }
        },
    );
    let err = ev.run().unwrap_err();
    assert!(err.is_deadlock());
    assert_eq!(err.stuck_tasks()[0].name.as_deref(), Some("stuck"));
    assert_eq!(err.stuck_tasks()[0].waiting_on, WaitingOn::Recv);
    assert_eq!(
        bad.join().unwrap_err().panic().unwrap().message(),
        "stackless failed"
    );
    stuck.cancel();
    assert_eq!(drops.count(), 1);
    assert!(stuck.join().unwrap_err().is_cancelled());

    let d = drops.token();
    {
        let ev = EventLoop::new();
        ev.spawn_stackless(
            #[coroutine]
            move || {
                let _d = d;
                yield Wait::sleep(Duration::from_secs(3600));
            },
        );
        ev.try_tick();
    }
    assert_eq!(drops.count(), 2);
}

#[test]
fn a_stackless_task_joining_itself_panics_instead_of_deadlocking() {
    let ev = EventLoop::new();
    let me: Rc<RefCell<Option<cogen::event_loop::JoinHandle<u32>>>> = Rc::new(RefCell::new(None));
    let m = me.clone();
    let h = ev.spawn_stackless(
        #[coroutine]
        move || {
            let h = m.borrow_mut().take().unwrap();
            yield Wait::join(&h);
            7
        },
    );
    let id = h.id();
    let cancel = h.cancel_handle();
    *me.borrow_mut() = Some(h);
    // The task held its own handle: its panic is unobserved, so `run`
    // reports it, as for a stackful task joining itself.
    let err = ev.run().unwrap_err();
    cancel.cancel();
    assert!(!err.is_deadlock(), "{err}");
    assert_eq!(err.panics().len(), 1, "{err}");
    assert!(
        err.panics()[0]
            .message()
            .contains(&format!("task {id} tried to join itself")),
        "{err}"
    );
    assert!(ev.is_empty());
}

#[test]
fn ten_thousand_stackless_tasks_parked_on_one_channel() {
    many_stackless(10_000);
}

#[test]
#[ignore = "a million tasks: run with --ignored (about a second in release)"]
fn a_million_concurrent_stackless_tasks() {
    many_stackless(1_000_000);
}

fn many_stackless(n: u32) {
    let ev = EventLoop::new();
    let (tx, rx) = channel::<u32>(1024);
    let done = Rc::new(Cell::new(0u32));
    for _ in 0..n {
        let rx = rx.clone();
        let done = done.clone();
        ev.spawn_stackless(
            #[coroutine]
            move || {
                loop {
                    match rx.try_recv() {
                        Ok(_) => break,
                        Err(TryRecvError::Empty) => yield Wait::recv(&rx),
                        Err(TryRecvError::Closed) => unreachable!(),
                    }
                }
                done.set(done.get() + 1);
            },
        );
    }
    drop(rx);
    // Every task runs once and parks: all n are alive at once.
    assert!(ev.try_tick());
    for _ in 1..n {
        ev.try_tick();
    }
    assert_eq!(ev.len(), n as usize);
    assert_eq!(done.get(), 0);
    ev.spawn(move || {
        for i in 0..n {
            tx.send(i).unwrap();
        }
    });
    ev.run().unwrap();
    assert_eq!(done.get(), n);
}

/// The coroutine and its result share the task's bytes: each must still be
/// dropped exactly once, whether the result is joined, left unread, or never
/// produced (cancelled before or after starting, or dropped with the loop).
#[test]
fn stackless_bodies_and_results_drop_once() {
    let bodies = DropCounter::new();
    let results = DropCounter::new();
    let ev = EventLoop::new();
    let task = |ev: &EventLoop| {
        let (body, result) = (bodies.token(), results.clone());
        ev.spawn_stackless(
            #[coroutine]
            move || {
                let _body = body;
                yield Wait::yield_now();
                result.token()
            },
        )
    };
    let joined = task(&ev);
    let unread = task(&ev);
    let never_started = task(&ev);
    never_started.cancel();
    assert_eq!((bodies.count(), results.count()), (1, 0));
    assert!(ev.try_tick() && ev.try_tick()); // both suspended at their yield
    let cancelled = task(&ev);
    assert!(ev.try_tick());
    cancelled.cancel();
    assert_eq!((bodies.count(), results.count()), (2, 0));
    ev.run().unwrap();
    assert_eq!((bodies.count(), results.count()), (4, 0));
    let value = joined.join().ok().unwrap();
    drop(unread);
    assert_eq!(results.count(), 1);
    drop(value);
    assert_eq!(results.count(), 2);
    assert!(never_started.join().err().unwrap().is_cancelled());
    assert!(cancelled.join().err().unwrap().is_cancelled());

    let (body, result) = (bodies.token(), results.clone());
    {
        let ev = EventLoop::new();
        ev.spawn_stackless(
            #[coroutine]
            move || {
                let _body = body;
                yield Wait::sleep(Duration::from_secs(3600));
                result.token()
            },
        );
        ev.try_tick();
    }
    assert_eq!((bodies.count(), results.count()), (5, 2));
}

/// A stackless receiver woken by a message, then cancelled before it could
/// take it, hands the wake-up to the next receiver in line.
#[test]
fn a_cancelled_woken_stackless_receiver_passes_the_message_on() {
    let ev = EventLoop::new();
    let (tx, rx) = channel::<u32>(1);
    let receiver = |rx: cogen::event_loop::Receiver<u32>| {
        #[coroutine]
        move || loop {
            match rx.try_recv() {
                Ok(v) => return Some(v),
                Err(TryRecvError::Empty) => yield Wait::recv(&rx),
                Err(TryRecvError::Closed) => return None,
            }
        }
    };
    let first = ev.spawn_stackless(receiver(rx.clone()));
    let second = ev.spawn_stackless(receiver(rx));
    assert!(ev.try_tick() && ev.try_tick()); // both parked, first in line
    tx.try_send(7).unwrap(); // wakes `first` only
    first.cancel(); // before it could take the message
    ev.run().unwrap();
    assert!(first.join().unwrap_err().is_cancelled());
    assert_eq!(second.join().unwrap(), Some(7));
}

/// The run queue gives capacity back as it drains after a burst of spawns;
/// the order stays first-in, first-out throughout.
#[test]
fn a_burst_of_tasks_keeps_fifo_order_while_the_queue_shrinks() {
    const N: u32 = 20_000;
    let ev = EventLoop::new();
    let log = Rc::new(RefCell::new(Vec::new()));
    for i in 0..N {
        let log = log.clone();
        ev.spawn_stackless(
            #[coroutine]
            move || {
                log.borrow_mut().push(i);
                if i % 2 == 1 {
                    yield Wait::yield_now();
                    log.borrow_mut().push(i);
                }
            },
        );
    }
    while ev.try_tick() {}
    assert!(ev.is_empty());
    let expected: Vec<u32> = (0..N).chain((0..N).filter(|i| i % 2 == 1)).collect();
    assert_eq!(*log.borrow(), expected);
}

/// A stackless task's result takes the bytes of its coroutine once that is
/// dropped. A destructor of the coroutine that reaches the task's own handle
/// (the task is being cancelled) must not read a result that is not there
/// yet: the task is finished, and joining it says it was cancelled (as for
/// stackful and future tasks); dropping the handle is fine too.
#[test]
fn a_cancelled_stackless_task_reaching_its_own_handle_from_a_destructor() {
    type Shared = Rc<RefCell<Option<cogen::event_loop::JoinHandle<u32>>>>;
    struct Holder {
        handle: Shared,
        /// `None`: drop the handle at once; `Some`: try to join it first,
        /// and record whether it said the task was cancelled.
        joined: Rc<Cell<Option<bool>>>,
    }
    impl Drop for Holder {
        fn drop(&mut self) {
            let h = self.handle.borrow_mut().take().expect("the handle");
            assert!(h.is_finished());
            if self.joined.get().is_some() {
                // Joining now must not read the coroutine's bytes.
                let answer = h.try_join().ok().and_then(Result::err);
                self.joined
                    .set(Some(answer.is_some_and(|e| e.is_cancelled())));
            } else {
                drop(h); // must not look for a panic in the result either
            }
        }
    }
    for try_join_first in [true, false] {
        let ev = EventLoop::new();
        let handle: Shared = Rc::new(RefCell::new(None));
        let joined = Rc::new(Cell::new(try_join_first.then_some(false)));
        let holder = Holder {
            handle: handle.clone(),
            joined: joined.clone(),
        };
        let h = ev.spawn_stackless(
            #[coroutine]
            move || {
                let _holder = holder;
                yield Wait::sleep(Duration::from_secs(3600));
                1
            },
        );
        *handle.borrow_mut() = Some(h);
        assert!(ev.try_tick()); // now asleep
        drop(ev); // cancels it: the holder drops while the task is cancelled
        assert!(handle.borrow().is_none());
        assert_eq!(joined.get(), try_join_first.then_some(true));
    }
}

#[test]
fn two_stackless_tasks_waiting_on_one_handle_are_each_woken_once_when_it_is_done() {
    let ev = EventLoop::new();
    let target = Rc::new(ev.spawn(|| {
        for _ in 0..5 {
            yield_now();
        }
    }));
    let steps = Rc::new(Cell::new(0u32));
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            let (target, steps) = (target.clone(), steps.clone());
            ev.spawn_stackless(
                #[coroutine]
                move || {
                    while !target.is_finished() {
                        steps.set(steps.get() + 1);
                        yield Wait::join(&target);
                    }
                },
            )
        })
        .collect();
    ev.run().unwrap();
    for w in waiters {
        w.join().unwrap();
    }
    // Each waited once: neither displaced the other (which woke them early,
    // to wait again, round after round).
    assert_eq!(steps.get(), 2);
}

#[test]
fn a_stackless_task_whose_state_panics_on_drop_after_returning_is_a_panicked_task() {
    use std::ops::{Coroutine, CoroutineState};
    use std::pin::Pin;

    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("state dropped");
        }
    }
    /// A hand-written coroutine that returns at once and keeps a value
    /// until it is dropped (a `#[coroutine]` closure drops its captures as
    /// it returns, inside `resume`).
    struct KeepsAfterReturn(#[allow(dead_code)] Bomb);
    impl Coroutine for KeepsAfterReturn {
        type Yield = Wait;
        type Return = u32;
        fn resume(self: Pin<&mut Self>, _: ()) -> CoroutineState<Wait, u32> {
            CoroutineState::Complete(5)
        }
    }
    let ev = EventLoop::new();
    let h = ev.spawn_stackless(KeepsAfterReturn(Bomb));
    let other = ev.spawn(|| 1);
    ev.run().unwrap();
    let err = h.join().unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.panic().unwrap().message(), "state dropped");
    assert_eq!(other.join().unwrap(), 1);
    // The thread can drive a loop again.
    assert_eq!(EventLoop::new().block_on(|| 2).unwrap(), 2);
}

/// A result whose destructor panics, of each kind of task (stackful,
/// future, stackless), named or not, with a joiner that gave up (so the task
/// has its box of extras), left unread in each way a task's last reference
/// can go: the panic comes out where the result is dropped, or is reported
/// by `run` for a detached task, and nothing of the task is lost, nor the
/// thread's use of loops. A stackless task keeps its result in its own
/// allocation, so its drop unwound through the task's and once skipped the
/// extras: CI runs this under LeakSanitizer, which reported them lost.
#[test]
fn unread_results_that_panic_in_their_drop_of_every_kind_of_task() {
    use std::panic::{AssertUnwindSafe, catch_unwind};

    use cogen::event_loop::{JoinHandle, Sender};

    #[derive(Debug)]
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("result dropped");
        }
    }
    fn is_bomb(payload: &(dyn std::any::Any + Send)) -> bool {
        payload.downcast_ref::<&str>() == Some(&"result dropped")
    }
    /// A task of `kind` that returns a `Bomb` once the gate (the sender
    /// handed back) is dropped, and that a joiner has given up on.
    fn make(
        ev: &EventLoop,
        kind: &str,
        name: Option<&'static str>,
    ) -> (JoinHandle<Bomb>, Sender<()>) {
        let (gate, rx) = channel::<()>(1);
        let builder = match name {
            Some(name) => TaskBuilder::new().name(name),
            None => TaskBuilder::new(),
        };
        let h = match kind {
            "stackful" => builder.spawn_on(ev, move || {
                let _ = rx.recv();
                Bomb
            }),
            "future" => builder.spawn_future_on(ev, async move {
                let _ = rx.recv_async().await;
                Bomb
            }),
            _ => builder.spawn_stackless_on(
                ev,
                #[coroutine]
                move || {
                    while let Err(TryRecvError::Empty) = rx.try_recv() {
                        yield Wait::recv(&rx);
                    }
                    Bomb
                },
            ),
        };
        // A joiner that gives up (the gate is shut): the task gets a joiner
        // list.
        let h = ev
            .block_on(move || h.join_timeout(Duration::from_millis(1)).unwrap_err())
            .unwrap();
        (h, gate)
    }

    for kind in ["stackful", "future", "stackless"] {
        for name in [None, Some("bomb maker")] {
            let case = format!("{kind} task named {name:?}");
            // Dropped unread outside the loop, after it ran.
            let ev = EventLoop::new();
            let (h, gate) = make(&ev, kind, name);
            drop(gate);
            ev.run().unwrap();
            let dropped = catch_unwind(AssertUnwindSafe(move || drop(h)));
            assert!(is_bomb(&*dropped.unwrap_err()), "{case}");

            // Dropped unread by another task of the same loop.
            let ev = EventLoop::new();
            let (h, gate) = make(&ev, kind, name);
            drop(gate);
            let caught = ev
                .block_on(move || {
                    while !h.is_finished() {
                        yield_now();
                    }
                    catch_unwind(AssertUnwindSafe(move || drop(h))).map_err(|p| is_bomb(&*p))
                })
                .unwrap();
            assert_eq!(caught, Err(true), "{case}");

            // The loop dropped first: the task is cancelled, no result made.
            let ev = EventLoop::new();
            let (h, gate) = make(&ev, kind, name);
            drop(ev);
            drop(gate);
            assert!(h.join().unwrap_err().is_cancelled(), "{case}");

            // Detached: the loop drops the result and reports its panic.
            let ev = EventLoop::new();
            let (h, gate) = make(&ev, kind, name);
            h.detach();
            drop(gate);
            let err = ev.run().unwrap_err();
            assert_eq!(err.panics().len(), 1, "{case}");
            assert_eq!(err.panics()[0].message(), "result dropped", "{case}");
        }
    }
    assert_eq!(EventLoop::new().block_on(|| 3).unwrap(), 3);
}

/// A value that waits on a channel nobody sends on when it is dropped, and
/// then drops its token.
struct WaitsOnDrop {
    rx: Option<cogen::event_loop::Receiver<u32>>,
    _token: super::support::DropToken,
}

impl Drop for WaitsOnDrop {
    fn drop(&mut self) {
        let _ = self.rx.take().unwrap().recv();
    }
}

/// Runs `body` in a stackful task of a new loop (passing a drop counter),
/// to its end, and checks that it dropped exactly one token.
fn in_a_task_dropping_one_token(body: impl FnOnce(DropCounter) + 'static) {
    let ev = EventLoop::new();
    let drops = DropCounter::new();
    let d = drops.clone();
    let h = ev.spawn(move || body(d));
    ev.run().unwrap();
    h.join().unwrap();
    assert_eq!((drops.count(), drops.live()), (1, 0));
}

#[test]
fn a_time_limit_around_a_stackless_coroutine_ends_a_wait_in_its_body() {
    use cogen::Stackless;
    use cogen::event_loop::{sleep, timeout};
    in_a_task_dropping_one_token(|d| {
        let (_tx, rx) = channel::<u32>(1);
        let mut co = Stackless::new(
            #[coroutine]
            move || {
                let _held = d.token();
                let _ = rx.recv();
                yield 1u32;
            },
        );
        // The deadline's unwinding crosses the coroutine on its way to the
        // scope: the scope reports it, not the coroutine as a panic.
        let limited = timeout(Duration::from_millis(2), || co.resume(()).is_ok());
        assert!(limited.is_err());
        // What the body held is gone, and nothing is left to report.
        assert!(co.is_dead());
        assert!(co.close().is_ok());
        assert!(matches!(co.resume(()), Err(cogen::ResumeError::Dead(()))));
        // The task goes on waiting normally.
        sleep(Duration::from_millis(1));
    });
}

#[test]
fn a_time_limit_around_a_stackless_close_ends_a_wait_in_a_destructor() {
    use cogen::Stackless;
    use cogen::event_loop::timeout;
    in_a_task_dropping_one_token(|d| {
        let (_tx, rx) = channel::<u32>(1);
        let mut co = Stackless::new(
            #[coroutine]
            move || {
                let _w = WaitsOnDrop {
                    rx: Some(rx),
                    _token: d.token(),
                };
                yield 1u32;
            },
        );
        assert_eq!(co.resume(()).unwrap().as_yield(), Some(1));
        // `close` lets the deadline's unwinding through rather than
        // reporting it as the destructor's panic.
        let limited = timeout(Duration::from_millis(2), || co.close().is_ok());
        assert!(limited.is_err());
        assert!(co.is_dead());
        assert!(co.close().is_ok());
    });
}
