//! Wake-ups that reach a task while it runs: a future (a future task's, or
//! one a stackful task waits for with `wait_for`) that files its waker with
//! one of the loop's channels, join handles or sockets and then, in the
//! same poll, causes the wake-up itself must be polled again, as any
//! executor would poll it, not parked for good and reported stuck.

use std::cell::Cell;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;

use cogen::event_loop::{EventLoop, channel, spawn, wait_for, yield_now};

mod support;
use support::watchdog;

/// A future that, on its first poll, waits on a channel (filing its waker
/// there) and then sends on that channel itself; it is ready with the
/// message once a later poll receives it. Counts its polls in `polls`.
fn self_send(polls: Rc<Cell<u32>>) -> impl Future<Output = u32> {
    let (tx, rx) = channel::<u32>(1);
    poll_fn(move |cx| {
        polls.set(polls.get() + 1);
        match rx.poll_recv(cx) {
            Poll::Ready(r) => Poll::Ready(r.unwrap()),
            Poll::Pending => {
                tx.try_send(7).unwrap();
                Poll::Pending
            }
        }
    })
}

#[test]
fn future_task_woken_by_its_own_send_is_polled_again() {
    watchdog("future_task_woken_by_its_own_send", || {
        let ev = EventLoop::new();
        let polls = Rc::new(Cell::new(0));
        let h = ev.spawn_future(self_send(polls.clone()));
        ev.run().expect("no task is stuck");
        assert_eq!(h.try_join().ok().unwrap().unwrap(), 7);
        assert_eq!(
            polls.get(),
            2,
            "one poll that files and wakes, one that receives"
        );
    });
}

#[test]
fn wait_for_woken_by_its_own_send_is_polled_again() {
    watchdog("wait_for_woken_by_its_own_send", || {
        let ev = EventLoop::new();
        let polls = Rc::new(Cell::new(0));
        let p = polls.clone();
        let got = ev.block_on(move || wait_for(self_send(p))).unwrap();
        assert_eq!(got, 7);
        assert_eq!(polls.get(), 2);
    });
}

#[test]
fn future_awaiting_a_handle_it_cancels_sees_the_cancellation() {
    watchdog("future_awaiting_a_handle_it_cancels", || {
        let ev = EventLoop::new();
        let h = ev.spawn_future(async {
            let target = spawn(|| {
                loop {
                    yield_now();
                }
            });
            let mut target = pin!(target);
            let mut first = true;
            poll_fn(|cx| {
                let r = target.as_mut().poll(cx);
                if first {
                    first = false;
                    assert!(r.is_pending(), "the target has not run yet");
                    target.cancel();
                }
                r
            })
            .await
        });
        ev.run().expect("no task is stuck");
        let joined = h.try_join().ok().unwrap().unwrap();
        assert!(joined.unwrap_err().is_cancelled());
    });
}

/// The wake-up of a poll is not kept for a later one: a stackful task that
/// was woken while running (by its own send) and then waits on a channel in
/// the ordinary way still parks there until a message comes.
#[test]
fn a_wake_while_running_does_not_cut_a_later_wait_short() {
    watchdog(
        "a_wake_while_running_does_not_cut_a_later_wait_short",
        || {
            let ev = EventLoop::new();
            let (tx, rx) = channel::<u32>(1);
            let order = Rc::new(std::cell::RefCell::new(Vec::new()));
            let o = order.clone();
            let waiter = ev.spawn(move || {
                // Files this task's key with the channel and wakes it at once:
                // the future is ready on its second poll.
                let polls = Rc::new(Cell::new(0));
                assert_eq!(wait_for(self_send(polls)), 7);
                o.borrow_mut().push("self-send done");
                let v = rx.recv().unwrap();
                o.borrow_mut().push("received");
                v
            });
            let o = order.clone();
            ev.spawn(move || {
                for _ in 0..5 {
                    yield_now();
                }
                o.borrow_mut().push("sending");
                tx.send(11).unwrap();
            });
            ev.run().unwrap();
            assert_eq!(waiter.try_join().ok().unwrap().unwrap(), 11);
            assert_eq!(*order.borrow(), ["self-send done", "sending", "received"]);
        },
    );
}

/// A task woken while running is queued behind the tasks already queued,
/// as a yield is: a future that wakes itself through a channel on every
/// poll does not starve the others.
#[test]
fn a_future_that_always_wakes_itself_lets_others_run() {
    watchdog("a_future_that_always_wakes_itself_lets_others_run", || {
        let ev = EventLoop::new();
        let stop = Rc::new(Cell::new(false));
        let s = stop.clone();
        let (tx, rx) = channel::<()>(1);
        let spinner = ev.spawn_future(poll_fn(move |cx| {
            if s.get() {
                return Poll::Ready(());
            }
            // Drained each time, so the send below always has room.
            while rx.try_recv().is_ok() {}
            assert!(rx.poll_recv(cx).is_pending());
            tx.try_send(()).unwrap();
            Poll::Pending
        }));
        let s = stop.clone();
        let other = ev.spawn(move || {
            for _ in 0..3 {
                yield_now();
            }
            s.set(true);
        });
        ev.run().unwrap();
        assert!(spinner.is_finished() && other.is_finished());
    });
}

/// A `wait_for` woken during each of its polls is polled again as a yield,
/// which obeys a time limit as a park does: the `timeout` around it ends.
#[test]
fn a_timeout_ends_a_wait_for_that_wakes_itself_on_every_poll() {
    watchdog("a_timeout_ends_a_wait_for_that_wakes_itself", || {
        let ev = EventLoop::new();
        let r = ev
            .block_on(|| {
                let (tx, rx) = channel::<u32>(1);
                cogen::event_loop::timeout(std::time::Duration::from_millis(20), || {
                    wait_for(poll_fn(|cx| {
                        let _ = rx.try_recv();
                        assert!(rx.poll_recv(cx).is_pending());
                        tx.try_send(0).unwrap();
                        Poll::<()>::Pending
                    }))
                })
            })
            .unwrap();
        assert!(r.is_err(), "the time limit ended it");
    });
}

/// A future whose poll files its key, causes the wake-up, and then waits
/// itself (a `wait_for` of its own, ready at once) is polled again: the
/// nested wait keeps the wake-up for the poll it is nested in.
#[test]
fn a_wake_up_before_a_wait_nested_in_the_poll_is_kept() {
    watchdog("a_wake_up_before_a_wait_nested_in_the_poll_is_kept", || {
        let ev = EventLoop::new();
        let h = ev.spawn(|| {
            let (tx, rx) = channel::<u32>(1);
            wait_for(poll_fn(|cx| match rx.poll_recv(cx) {
                Poll::Ready(v) => Poll::Ready(v.unwrap()),
                Poll::Pending => {
                    tx.try_send(7).unwrap();
                    wait_for(std::future::ready(()));
                    Poll::Pending
                }
            }))
        });
        ev.run().expect("not stuck");
        assert_eq!(h.try_join().ok().unwrap().unwrap(), 7);
    });
}

/// A wake-up that comes while the poll is parked in a wait of its own (a
/// sleep; a `wait_for` of another future) is kept for it too.
#[test]
fn a_wake_up_during_a_wait_nested_in_the_poll_is_kept() {
    watchdog("a_wake_up_during_a_wait_nested_in_the_poll_is_kept", || {
        for nested_future in [false, true] {
            let ev = EventLoop::new();
            let (tx, rx) = channel::<u32>(1);
            let (inner_tx, inner_rx) = channel::<()>(1);
            let h = ev.spawn(move || {
                wait_for(poll_fn(|cx| match rx.poll_recv(cx) {
                    Poll::Ready(v) => Poll::Ready(v.unwrap()),
                    Poll::Pending => {
                        if nested_future {
                            // Parks on a future of its own, which the
                            // sender below readies after its send.
                            let _ = wait_for(inner_rx.recv_async());
                        } else {
                            cogen::event_loop::sleep(std::time::Duration::from_millis(5));
                        }
                        Poll::Pending
                    }
                }))
            });
            ev.spawn(move || {
                tx.send(7).unwrap();
                yield_now();
                let _ = inner_tx.try_send(());
            });
            let run = ev.run();
            assert!(run.is_ok(), "stuck ({nested_future}): {run:?}");
            assert_eq!(h.try_join().ok().unwrap().unwrap(), 7);
        }
    });
}

/// Pending once, after waking its waker; then ready.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// A poll that waits itself each time (a `wait_for` woken once, or
/// `unblock`) and returns `Pending`: its own wake-ups are the nested
/// wait's, not the poll around it, which parks until its message comes
/// (a few polls, not a spin) and is reported stuck when none can come.
#[test]
fn a_wait_nested_in_every_poll_does_not_spin_the_poll_around_it() {
    watchdog("a_wait_nested_in_every_poll_does_not_spin", || {
        for (variant, send) in [(0, true), (1, true), (0, false), (1, false)] {
            let ev = EventLoop::new();
            let polls = Rc::new(Cell::new(0u32));
            let p = polls.clone();
            let (tx, rx) = channel::<u32>(1);
            let _kept = tx.clone(); // the channel stays open
            let h = ev.spawn(move || {
                wait_for(poll_fn(|cx| {
                    p.set(p.get() + 1);
                    if p.get() > 1000 {
                        return Poll::Ready(u32::MAX); // spun
                    }
                    if let Poll::Ready(v) = rx.poll_recv(cx) {
                        return Poll::Ready(v.unwrap());
                    }
                    match variant {
                        0 => cogen::event_loop::unblock(|| ()),
                        _ => wait_for(YieldOnce(false)),
                    }
                    Poll::Pending
                }))
            });
            if send {
                ev.spawn(move || {
                    for _ in 0..5 {
                        yield_now();
                    }
                    tx.send(7).unwrap();
                });
                ev.run().unwrap();
                assert_eq!(h.try_join().ok().unwrap().unwrap(), 7, "variant {variant}");
                assert!(polls.get() < 10, "variant {variant}: {} polls", polls.get());
            } else {
                drop(tx);
                let err = ev.run().expect_err("nothing can wake it: a deadlock");
                assert!(err.is_deadlock(), "variant {variant}");
                assert!(polls.get() < 10, "variant {variant}: {} polls", polls.get());
            }
        }
    });
}

/// A poll that wakes itself and then leaves a coroutine suspended inside
/// a `wait_for` of its own is polled again: the nested wait that never
/// ended does not keep the wake-up from it.
#[test]
fn a_wait_left_suspended_in_a_coroutine_keeps_no_wake_up_from_the_poll() {
    watchdog("a_wait_left_suspended_in_a_coroutine", || {
        let ev = EventLoop::new();
        let h = ev.spawn(|| {
            let (tx, rx) = channel::<u32>(1);
            let mut co: Option<cogen::Coroutine<(), (), ()>> = None;
            wait_for(poll_fn(|cx| {
                if let Poll::Ready(v) = rx.poll_recv(cx) {
                    return Poll::Ready(v.unwrap());
                }
                if co.is_none() {
                    tx.try_send(7).unwrap(); // wakes this very poll
                    let mut c = cogen::Coroutine::<(), (), ()>::new(|y, ()| {
                        wait_for(poll_fn(|_| {
                            y.suspend(());
                            Poll::Ready(())
                        }));
                    });
                    assert!(c.resume(()).unwrap().as_yield().is_some());
                    co = Some(c);
                }
                Poll::Pending
            }))
        });
        ev.run().expect("not stuck");
        assert_eq!(h.try_join().ok().unwrap().unwrap(), 7);
    });
}

type BoxFut = std::pin::Pin<Box<dyn Future<Output = ()>>>;

/// One wait depth more: its single poll runs a whole `wait_for(inner)`.
fn wrap(inner: BoxFut) -> BoxFut {
    let mut inner = Some(inner);
    Box::pin(poll_fn(move |_| {
        wait_for(inner.take().expect("polled once"));
        Poll::Ready(())
    }))
}

/// On its first poll: wakes its own waker, waits in a nested `wait_for`
/// (woken once), returns `Pending`; ready on its second poll.
fn self_wake_then_nested_wait(polls: Rc<Cell<u32>>) -> BoxFut {
    Box::pin(poll_fn(move |cx| {
        polls.set(polls.get() + 1);
        if polls.get() > 1 {
            return Poll::Ready(());
        }
        cx.waker().wake_by_ref();
        wait_for(YieldOnce(false));
        Poll::Pending
    }))
}

/// At every depth (depths from 7 share a bit of the mark), a poll's
/// wake-up is not taken by the wait nested in it.
#[test]
fn a_wake_up_at_any_depth_is_not_taken_by_the_wait_nested_in_it() {
    watchdog("a_wake_up_at_any_depth", || {
        for depth in 1..=10 {
            let ev = EventLoop::new();
            let polls = Rc::new(Cell::new(0));
            let mut fut = self_wake_then_nested_wait(polls.clone());
            for _ in 1..depth {
                fut = wrap(fut);
            }
            ev.spawn(move || wait_for(fut));
            ev.run().unwrap_or_else(|e| panic!("depth {depth}: {e:?}"));
            assert_eq!(polls.get(), 2, "depth {depth}");
        }
    });
}

/// A `wait_for` frame that began in one task (in a coroutine it suspended)
/// and ends in another's poll leaves that task's count of nested waits,
/// and its wake-ups, alone.
#[test]
fn a_wait_ending_in_another_task_keeps_that_tasks_wake_ups() {
    watchdog("a_wait_ending_in_another_task", || {
        type Co = cogen::Coroutine<(), (), ()>;
        let ev = EventLoop::new();
        let slot: Rc<std::cell::RefCell<Option<Co>>> = Rc::default();
        let s = slot.clone();
        ev.spawn(move || {
            let mut c = Co::new(|y, ()| {
                wait_for(poll_fn(|_| {
                    y.suspend(());
                    Poll::Ready(())
                }));
            });
            assert!(c.resume(()).unwrap().as_yield().is_some());
            *s.borrow_mut() = Some(c);
        });
        let polls = Rc::new(Cell::new(0u32));
        let p = polls.clone();
        ev.spawn(move || {
            wait_for(poll_fn(|cx| {
                p.set(p.get() + 1);
                if p.get() > 1 {
                    return Poll::Ready(());
                }
                cx.waker().wake_by_ref();
                let mut c = slot.borrow_mut().take().expect("the first task ran");
                assert!(c.resume(()).unwrap().as_yield().is_none());
                wait_for(YieldOnce(false));
                Poll::Pending
            }))
        });
        ev.run().expect("not stuck");
        assert_eq!(polls.get(), 2);
    });
}
