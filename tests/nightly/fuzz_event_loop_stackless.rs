//! The stackless tasks of `fuzz_event_loop.rs`: the interpreter of a script
//! as a `#[coroutine]` closure yielding [`Wait`] requests. Included only on
//! a nightly compiler (`yield` does not parse on stable).

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Waker};
use std::time::Duration;

use cogen::event_loop::{self as el, EventLoop, JoinHandle, TryRecvError, TrySendError, Wait};

use super::support::DropToken;
use super::{
    End2, Hold, Op, Ret, Script, Tracked, World, known_bugs, panicking_waker,
    quiet_expected_panics, sync_op,
};

/// Spawns `script` as stackless task `me` (from outside if `ev` is given).
pub(super) fn spawn(
    world: Rc<World>,
    me: usize,
    script: Script,
    captures: (DropToken, Tracked),
    ev: Option<&EventLoop>,
) -> JoinHandle<Ret> {
    let co = #[coroutine]
    move || {
        let _captures = captures;
        let mut seq = 0u32;
        let mut holds: Vec<Hold> = Vec::new();
        for i in 0..script.ops.len() {
            let op = script.ops[i].clone();
            let suspended = match op {
                Op::Yield | Op::External => {
                    yield Wait::yield_now();
                    true
                }
                Op::SleepMs(ms) => {
                    yield Wait::sleep(Duration::from_millis(ms.into()));
                    true
                }
                Op::Send(c) => {
                    let Some(tx) = world.sender(c) else { continue };
                    let mut m = world.msg(c, Some(me), &mut seq);
                    let rec = (m.t.id, m.chan, m.sender, m.seq);
                    world.set_waiting(me, Some((c, End2::Send)));
                    loop {
                        match tx.try_send(m) {
                            Ok(()) => {
                                world.record_sent(rec);
                                break;
                            }
                            Err(TrySendError::Closed(back)) => {
                                world.record_handed_back(back);
                                break;
                            }
                            Err(TrySendError::Full(back)) => {
                                m = back;
                                yield Wait::send(&tx);
                                world.observe(me, true, "stackless send");
                            }
                        }
                    }
                    world.set_waiting(me, None);
                    false // observed after each wait
                }
                Op::Recv(c) => {
                    let Some(rx) = world.receiver(c) else {
                        continue;
                    };
                    world.set_waiting(me, Some((c, End2::Recv)));
                    loop {
                        match rx.try_recv() {
                            Ok(m) => {
                                world.record_received(c, m);
                                break;
                            }
                            Err(TryRecvError::Closed) => {
                                world.recv_failed(c, &rx);
                                break;
                            }
                            Err(TryRecvError::Empty) => {
                                yield Wait::recv(&rx);
                                world.observe(me, true, "stackless recv");
                            }
                        }
                    }
                    world.set_waiting(me, None);
                    false // observed after each wait
                }
                Op::Join(k) if k != me => {
                    let Some(mut h) = world.take_handle(k) else {
                        continue;
                    };
                    // A cancellation of this task drops the handle unfinished: a user
                    // waker its polls left is then given back, not woken.
                    world.released.borrow_mut().insert(k);
                    loop {
                        match h.try_join() {
                            Ok(r) => {
                                world.record_join(k, r);
                                break;
                            }
                            Err(back) => {
                                h = back;
                                let polled = world.polled.borrow_mut().remove(&k);
                                if polled && !known_bugs() {
                                    // Known bug: the join request wakes the
                                    // handle's user waker inside the loop, where
                                    // its panic wrecks the loop
                                    // (`a_panic_out_of_a_stackless_wait_request_leaves_the_thread_usable`):
                                    // wake it from here instead (once: the
                                    // join request then wakes our no-op waker).
                                    let noop = Waker::noop();
                                    let _ = Pin::new(&mut h).poll(&mut Context::from_waker(noop));
                                }
                                yield Wait::join(&h);
                                world.observe(me, true, "stackless join");
                            }
                        }
                    }
                    false // observed after each wait
                }
                Op::Join(_) | Op::CatchCancel(_) => false,
                ref op => {
                    sync_op(&world, Some(me), op, None, &mut seq, &mut holds);
                    false
                }
            };
            world.observe(me, suspended, "a stackless step");
        }
        drop(holds);
        Ret::new(me, script.ret)
    };
    match ev {
        Some(ev) => ev.spawn_stackless(co),
        None => el::spawn_stackless(co),
    }
}

#[test]
fn a_panic_out_of_a_stackless_wait_request_leaves_the_thread_usable() {
    quiet_expected_panics();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let ev = EventLoop::new();
        let mut target = ev.spawn(el::yield_now);
        let waker = panicking_waker();
        assert!(
            Pin::new(&mut target)
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
        let joiner = ev.spawn_stackless(
            #[coroutine]
            move || {
                yield Wait::join(&target);
                target.try_join().is_ok()
            },
        );
        // The waker's panic may come out of `run`; after it, the loop must
        // go on and the thread must be usable.
        let _ = catch_unwind(AssertUnwindSafe(|| ev.run()));
        let _ = tx.send(("current task after run", el::current_task_id()));
        let rerun = catch_unwind(AssertUnwindSafe(|| ev.run()));
        let _ = tx.send(("second run panicked", rerun.is_err().then_some(0)));
        let _ = tx.send(("joiner unfinished", (!joiner.is_finished()).then_some(0)));
        drop(ev);
        let _ = tx.send(("loop dropped", None));
    });
    let mut seen = Vec::new();
    while let Ok(step) = rx.recv_timeout(Duration::from_secs(5)) {
        seen.push(step);
    }
    assert_eq!(
        seen,
        [
            ("current task after run", None),
            ("second run panicked", None),
            ("joiner unfinished", None),
            ("loop dropped", None)
        ]
    );
}
