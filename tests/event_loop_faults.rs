//! The event loop under faults and misuse from safe code: wakers that call
//! back into the loop, destructors that panic, wakers nobody will ever call,
//! several waiters on one task, finished tasks whose handles live on. Each
//! test failed (hung, panicked out of the loop, or leaked stacks) before the
//! fix it guards. Tests that could hang run on a thread with a deadline.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use cogen::event_loop::{self as el, EventLoop, JoinHandle, channel, yield_now};

mod support;
use support::DropCounter;

/// Runs `f` on its own thread and fails if it does not finish in time
/// (instead of hanging the test run).
fn within_deadline<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let value = f();
        let _ = tx.send(value);
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(value) => value,
        Err(_) => panic!("hung: the loop did not return within 30 s"),
    }
}

/// After a fault, the thread can still drive a fresh loop.
fn thread_is_usable() {
    let ev = EventLoop::new();
    assert_eq!(ev.block_on(|| 6 * 7).unwrap(), 42);
    let h = ev.spawn(|| {
        yield_now();
        1
    });
    ev.run().unwrap();
    assert_eq!(h.join().unwrap(), 1);
}

thread_local! {
    static VICTIM: RefCell<Option<JoinHandle<()>>> = const { RefCell::new(None) };
}

/// A user waker that cancels the task in `VICTIM` when woken.
struct CancelVictim;

impl Wake for CancelVictim {
    fn wake(self: Arc<Self>) {
        VICTIM.with(|v| {
            if let Some(h) = v.borrow().as_ref() {
                h.cancel();
            }
        });
    }
}

#[test]
fn a_waker_cannot_cancel_a_task_in_the_middle_of_parking_it() {
    let ev = EventLoop::new();
    let log = Rc::new(RefCell::new(Vec::new()));
    let mut target = ev.spawn(|| {
        yield_now();
        yield_now();
    });
    // The handle is polled as a future first, with a waker that cancels
    // the joiner below when called.
    let waker = Waker::from(Arc::new(CancelVictim));
    assert!(
        Pin::new(&mut target)
            .poll(&mut Context::from_waker(&waker))
            .is_pending()
    );
    let l = log.clone();
    let joiner = ev.spawn(move || {
        let _ = target.join();
        l.borrow_mut().push("after join");
    });
    VICTIM.with(|v| *v.borrow_mut() = Some(joiner));
    ev.run().unwrap();
    let joiner = VICTIM.with(|v| v.borrow_mut().take()).unwrap();
    assert!(joiner.join().unwrap_err().is_cancelled());
    assert!(
        log.borrow().is_empty(),
        "the cancelled task ran on: {log:?}"
    );
    assert!(ev.is_empty());
}

thread_local! {
    static DRIVEN: RefCell<Option<Rc<EventLoop>>> = const { RefCell::new(None) };
    static REENTRIES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// A user waker that, when woken, drives the loop in `DRIVEN` again, then
/// a fresh loop, and logs what each did in `REENTRIES`.
struct DriveTheLoop;

impl Wake for DriveTheLoop {
    fn wake(self: Arc<Self>) {
        let ev = DRIVEN.with(|e| e.borrow().clone()).unwrap();
        let nested = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ev.run())) {
            Ok(r) => format!("nested run returned {r:?}"),
            Err(payload) => match payload.downcast_ref::<String>() {
                Some(message) => format!("nested run panicked: {message}"),
                None => "nested run panicked".to_owned(),
            },
        };
        let other = EventLoop::new().block_on(|| 5);
        REENTRIES.with(|l| {
            l.borrow_mut()
                .extend([nested, format!("other loop: {other:?}")])
        });
    }
}

/// A loop wakes a user waker from its own bookkeeping (here as a task ends,
/// with no task current): driving that same loop from there would see the
/// joiner parked while its wake-up is still pending in the outer frame, and
/// report a false deadlock (or, for a socket, sleep in the poller for
/// ever). It panics with a message instead; another loop may still be run
/// there, and the outer run goes on.
#[test]
fn driving_a_loop_from_a_waker_it_is_waking_panics_and_the_outer_run_goes_on() {
    let (log, joined) = within_deadline(|| {
        let ev = Rc::new(EventLoop::new());
        DRIVEN.with(|e| *e.borrow_mut() = Some(ev.clone()));
        let mut a = ev.spawn(|| {
            yield_now();
            1
        });
        let waker = Waker::from(Arc::new(DriveTheLoop));
        assert!(
            Pin::new(&mut a)
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
        let b = ev.spawn(move || a.join().unwrap() + 1);
        let outer = ev.run();
        DRIVEN.with(|e| e.borrow_mut().take());
        thread_is_usable();
        (
            REENTRIES.with(RefCell::take),
            outer.map(|()| b.join().unwrap()),
        )
    });
    assert_eq!(joined.unwrap(), 2);
    assert_eq!(log.len(), 2, "{log:?}");
    assert!(
        log[0].starts_with("nested run panicked")
            && log[0].contains("EventLoop::run called while this loop is already being driven"),
        "{log:?}"
    );
    assert_eq!(log[1], "other loop: Ok(5)");
}

/// A future that completes at once and whose destructor panics.
struct PanicsOnDrop(u32);

impl Future for PanicsOnDrop {
    type Output = u32;
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u32> {
        Poll::Ready(self.0)
    }
}

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("future dropped");
    }
}

#[test]
fn a_future_whose_destructor_panics_is_a_panicked_task_and_the_thread_stays_usable() {
    let ev = EventLoop::new();
    let h = ev.spawn_future(PanicsOnDrop(7));
    let other = ev.spawn(|| 5);
    ev.run().unwrap();
    let err = h.join().unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.panic().unwrap().message(), "future dropped");
    assert_eq!(other.join().unwrap(), 5);
    drop(ev);
    thread_is_usable();
}

/// A value whose destructor panics.
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("bomb");
    }
}

#[test]
fn a_detached_task_whose_result_panics_on_drop_is_reported_by_run() {
    let ev = EventLoop::new();
    ev.spawn(|| Bomb).detach();
    let other = ev.spawn(|| 1);
    let err = ev.run().unwrap_err();
    assert!(!err.is_deadlock());
    assert_eq!(err.panics().len(), 1);
    assert_eq!(err.panics()[0].message(), "bomb");
    assert_eq!(other.join().unwrap(), 1);
    thread_is_usable();
}

#[test]
fn finished_stackful_tasks_give_their_stacks_back_while_their_handles_live() {
    let ev = EventLoop::new();
    // Warm the pool, then empty it into live tasks.
    let handles: Vec<_> = (0..64)
        .map(|i| {
            ev.spawn(move || {
                yield_now();
                i
            })
        })
        .collect();
    let before = cogen::stack::pooled_stacks();
    ev.run().unwrap();
    // Every task is done; the handles still hold the tasks.
    assert!(
        cogen::stack::pooled_stacks() >= before + 64,
        "stacks of finished tasks were not returned: {} pooled before, {} after",
        before,
        cogen::stack::pooled_stacks()
    );
    let sum: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(sum, (0..64).sum());
}

#[test]
fn cancelled_stackful_tasks_give_their_stacks_back_while_their_handles_live() {
    let ev = EventLoop::new();
    let handles: Vec<_> = (0..32)
        .map(|_| ev.spawn(|| el::sleep(Duration::from_secs(3600))))
        .collect();
    for _ in 0..64 {
        ev.try_tick();
    }
    let before = cogen::stack::pooled_stacks();
    for h in &handles {
        h.cancel();
    }
    assert!(cogen::stack::pooled_stacks() >= before + 32);
    assert!(
        handles
            .into_iter()
            .all(|h| h.join().unwrap_err().is_cancelled())
    );
}

#[test]
fn a_future_awaiting_a_deadlocked_task_is_reported_not_waited_for_forever() {
    within_deadline(|| {
        let ev = EventLoop::new();
        let (tx, rx) = channel::<u32>(1);
        // Receives on a channel whose only sender it holds itself.
        let stuck = ev.spawn(move || {
            let _tx = tx;
            rx.recv()
        });
        let watcher = ev.spawn_future(async move { stuck.await.is_ok() });
        let err = ev.run().unwrap_err();
        assert!(err.is_deadlock(), "{err}");
        let stuck = err.stuck_tasks();
        assert_eq!(stuck.len(), 2, "{err}");
        assert_eq!(stuck[0].waiting_on, el::WaitingOn::Recv);
        assert_eq!(stuck[1].waiting_on, el::WaitingOn::Join(Some(stuck[0].id)));
        drop(ev);
        assert!(watcher.join().unwrap_err().is_cancelled());
    });
}

#[test]
fn a_stackful_task_awaiting_a_future_nobody_can_wake_is_reported() {
    within_deadline(|| {
        let ev = EventLoop::new();
        // `pending` never stores the waker: nothing can ever wake the task.
        let h = ev.spawn(|| el::wait_for(std::future::pending::<()>()));
        let err = ev.run().unwrap_err();
        assert!(err.is_deadlock(), "{err}");
        assert_eq!(err.stuck_tasks()[0].waiting_on, el::WaitingOn::Future);
        drop(ev);
        assert!(h.join().unwrap_err().is_cancelled());
    });
}

/// A future that hands its waker to a thread, which drops it after a while
/// without waking: from then on nothing can wake the task.
struct WakerToThread {
    sent: bool,
    wake_it: bool,
}

impl Future for WakerToThread {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.sent {
            return Poll::Ready(());
        }
        self.sent = true;
        let waker = cx.waker().clone();
        let wake_it = self.wake_it;
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            if wake_it {
                waker.wake();
            } else {
                drop(waker);
            }
        });
        Poll::Pending
    }
}

#[test]
fn a_waker_dropped_by_another_thread_without_waking_ends_in_a_deadlock_report() {
    within_deadline(|| {
        let ev = EventLoop::new();
        ev.spawn_future(WakerToThread {
            sent: false,
            wake_it: false,
        })
        .detach();
        let err = ev.run().unwrap_err();
        assert!(err.is_deadlock(), "{err}");
    });
}

#[test]
fn a_waker_held_by_another_thread_is_waited_for_until_it_wakes() {
    within_deadline(|| {
        let ev = EventLoop::new();
        let h = ev.spawn_future(WakerToThread {
            sent: false,
            wake_it: true,
        });
        let s = ev.spawn(|| {
            el::wait_for(WakerToThread {
                sent: false,
                wake_it: true,
            })
        });
        ev.run().unwrap();
        h.join().unwrap();
        s.join().unwrap();
    });
}

/// Counts wake-ups, for a user future that polls a handle.
#[derive(Default)]
struct CountWakes(Mutex<u32>);

impl Wake for CountWakes {
    fn wake(self: Arc<Self>) {
        *self.0.lock().unwrap() += 1;
    }
}

#[test]
fn a_future_and_a_task_waiting_for_one_task_are_both_woken_once_it_is_done() {
    within_deadline(|| {
        let ev = EventLoop::new();
        let steps = Rc::new(Cell::new(0));
        let s = steps.clone();
        let mut target = ev.spawn(move || {
            for _ in 0..3 {
                s.set(s.get() + 1);
                yield_now();
            }
            9
        });
        let counter = Arc::new(CountWakes::default());
        let waker = Waker::from(counter.clone());
        assert!(
            Pin::new(&mut target)
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
        let joiner = ev.spawn(move || target.join().unwrap());
        ev.run().unwrap();
        assert_eq!(joiner.join().unwrap(), 9);
        // The user's waker was not woken early by the joiner (displaced) and
        // was woken when the target finished.
        assert_eq!(*counter.0.lock().unwrap(), 1);
        assert_eq!(steps.get(), 3);
    });
}

/// A user waker that panics when the task it waits for finishes: its panic
/// is reported by `run` (not raised through it), the loop goes on, and the
/// thread stays usable. (`tests/nightly/fuzz_event_loop_stackless.rs` checks
/// that a second waiter behind it is still woken.)
#[test]
fn a_panicking_waker_is_reported_by_run_and_the_loop_goes_on() {
    struct Panics;
    impl Wake for Panics {
        fn wake(self: Arc<Self>) {
            panic!("waker panicked");
        }
    }
    let ev = EventLoop::new();
    let mut target = ev.spawn(yield_now);
    let waker = Waker::from(Arc::new(Panics));
    assert!(
        Pin::new(&mut target)
            .poll(&mut Context::from_waker(&waker))
            .is_pending()
    );
    let other = ev.spawn(|| {
        yield_now();
        yield_now();
        3
    });
    let err = ev.run().unwrap_err();
    assert!(!err.is_deadlock(), "{err}");
    assert_eq!(err.panics().len(), 1);
    assert_eq!(err.panics()[0].message(), "waker panicked");
    assert!(target.is_finished());
    assert_eq!(other.join().unwrap(), 3);
    drop(ev);
    thread_is_usable();
}

/// Dropping the loop cancels every task; destructors that panic outside an
/// unwinding (a never-started task's closure, a parked future) are caught
/// and reported, and every other destructor still runs exactly once. (A
/// destructor that panics *during* the unwinding of a suspended stack
/// aborts the process, as it would on a thread: Rust allows no panic
/// during a panic.)
#[test]
fn destructors_of_cancelled_tasks_run_once_even_when_some_panic() {
    let drops = DropCounter::new();
    let ev = EventLoop::new();
    for i in 0..4 {
        let token = drops.token();
        let bomb = (i % 2 == 0).then(|| Bomb);
        ev.spawn(move || {
            let _token = token;
            let _bomb = bomb;
        })
        .detach();
        let token = drops.token();
        let bomb = (i % 2 == 1).then(|| Bomb);
        ev.spawn_future(async move {
            let _token = token;
            let _bomb = bomb;
            std::future::pending::<()>().await
        })
        .detach();
        let token = drops.token();
        ev.spawn(move || {
            let _token = token;
            el::sleep(Duration::from_secs(3600));
        })
        .detach();
    }
    // The futures and sleepers park; the first stackful tasks are left
    // unstarted by ticking only partly.
    for _ in 0..6 {
        ev.try_tick();
    }
    let panics = ev.take_panics();
    drop(ev);
    assert_eq!(drops.count(), 12);
    assert_eq!(drops.live(), 0);
    assert!(panics.len() <= 4);
    thread_is_usable();
}

/// A future's waker slot, filled by its poll and fired by another thread.
#[derive(Default)]
struct Shot {
    done: bool,
    waker: Option<Waker>,
}

/// Fires `shot` from another thread as soon as a poll has left its waker
/// there (no timing involved: it waits for the waker).
fn fire_when_polled(shot: Arc<Mutex<Shot>>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        loop {
            let mut s = shot.lock().unwrap();
            if let Some(w) = s.waker.take() {
                s.done = true;
                w.wake();
                return;
            }
            drop(s);
            std::thread::sleep(Duration::from_millis(1));
        }
    })
}

/// A future whose first poll suspends the generator it is awaited in
/// (through the generator's own yielder), then waits for `shot`.
struct SuspendsItsGenerator<'a> {
    co: &'a cogen::Yielder<(), u32>,
    polls: u32,
    shot: Option<Arc<Mutex<Shot>>>,
}

impl Future for SuspendsItsGenerator<'_> {
    type Output = u32;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        self.polls += 1;
        if self.polls == 1 {
            self.co.suspend(1);
        }
        let Some(shot) = &self.shot else {
            return Poll::Ready(7);
        };
        let mut s = shot.lock().unwrap();
        if s.done {
            return Poll::Ready(7);
        }
        s.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// A generator, started in the running task, suspended by the future's
/// first poll in the middle of its `wait_for`.
fn suspended_in_wait_for(shot: Option<Arc<Mutex<Shot>>>) -> cogen::Coroutine<(), u32, u32> {
    let mut g =
        cogen::generator(move |co| el::wait_for(SuspendsItsGenerator { co, polls: 0, shot }));
    assert_eq!(g.resume(()).unwrap().as_yield(), Some(1));
    g
}

/// A generator suspended by a future's poll in the middle of `wait_for`
/// outlives the task (and the loop) it started in; resumed afterwards, the
/// `wait_for` finishes without touching the gone task (a use after free of
/// its context, under AddressSanitizer, before the fix).
#[test]
fn a_generator_suspended_inside_wait_for_may_outlive_its_task_and_loop() {
    let ev = EventLoop::new();
    let h = ev.spawn(|| suspended_in_wait_for(None));
    ev.run().unwrap();
    let mut g = h.join().unwrap();
    drop(ev);
    assert_eq!(g.resume(()).unwrap().as_return(), Some(7));
}

/// The same generator resumed by another task, where its future is pending:
/// that task parks with a waker of its own, and the other thread's wake-up
/// reaches it (before the fix the waker still named the first task, and the
/// loop reported a deadlock).
#[test]
fn a_generator_suspended_inside_wait_for_waits_on_in_the_task_that_resumes_it() {
    within_deadline(|| {
        let shot: Arc<Mutex<Shot>> = Arc::default();
        let firing = fire_when_polled(shot.clone());
        let ev = EventLoop::new();
        let first = ev.spawn(move || suspended_in_wait_for(Some(shot)));
        let got = ev.block_on(move || {
            let mut g = first.join().unwrap();
            g.resume(()).unwrap().as_return()
        });
        firing.join().unwrap();
        assert_eq!(got.expect("woken from the other thread"), Some(7));
    });
}

/// A `wait_for` called inside the poll of another one's future returns at
/// once; the outer one then parks with its own waker shown to the loop,
/// which another thread holds: not a deadlock (before the fix the inner
/// wait hid it on its way out).
#[test]
fn a_wait_for_inside_a_poll_leaves_the_outer_waker_shown() {
    within_deadline(|| {
        let shot: Arc<Mutex<Shot>> = Arc::default();
        let firing = fire_when_polled(shot.clone());
        let ev = EventLoop::new();
        let got = ev.block_on(move || {
            el::wait_for(std::future::poll_fn(move |cx| {
                el::wait_for(std::future::ready(()));
                let mut s = shot.lock().unwrap();
                if s.done {
                    return Poll::Ready(5);
                }
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }))
        });
        firing.join().unwrap();
        assert_eq!(got.expect("not a deadlock"), 5);
    });
}

/// The generator of the test above, its first loop gone, resumed by a task
/// of a new loop that has the same id (and perhaps the same memory) as the
/// first task: the waker it waits with is the new loop's, and the other
/// thread's wake-up reaches it (before the fix the old waker was kept, and
/// the new loop reported a deadlock).
#[test]
fn a_generator_suspended_inside_wait_for_waits_on_in_a_later_loop() {
    within_deadline(|| {
        let shot: Arc<Mutex<Shot>> = Arc::default();
        let firing = fire_when_polled(shot.clone());
        let g = {
            let ev = EventLoop::new();
            let first = ev.spawn(move || Some(suspended_in_wait_for(Some(shot))));
            ev.run().unwrap();
            first.join().unwrap().unwrap()
        };
        let ev = EventLoop::new();
        let mut g = Some(g);
        let second = ev.spawn(move || g.take().unwrap().resume(()).unwrap().as_return());
        ev.run().expect("not a deadlock");
        firing.join().unwrap();
        assert_eq!(second.join().unwrap(), Some(7));
    });
}
