//! Event-loop faults found by review: stale waker keys, a loop dropped by a
//! destructor its own cancellation runs, cancelled stackless joiners, and
//! tasks spawned while a loop drops its unstarted jobs.
#![cfg_attr(cogen_nightly, feature(coroutines))]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use cogen::event_loop::{EventLoop, JoinHandle, channel, sleep, spawn, wait_for};

/// Counts the live bytes each thread allocated (and freed), for the test
/// that a cancelled task's memory goes when it is cancelled: per thread, so
/// that the tests running beside it do not move its count.
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn count(bytes: isize) {
    // No destructor, so the slot is there as long as the thread is.
    let _ = LIVE.try_with(|live| live.set(live.get() + bytes));
}

#[cfg_attr(not(cogen_nightly), allow(dead_code))] // used by the nightly half
fn live() -> isize {
    LIVE.with(Cell::get)
}

// SAFETY: forwards to the system allocator, counting sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count(l.size() as isize);
        // SAFETY: forwarded.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        count(-(l.size() as isize));
        // SAFETY: forwarded.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        count(n as isize - l.size() as isize);
        // SAFETY: forwarded.
        unsafe { System.realloc(p, l, n) }
    }
}
#[global_allocator]
static A: Counting = Counting;

#[cfg(cogen_nightly)]
#[path = "nightly/loop_faults.rs"]
mod nightly;

/// Runs `f` on its own thread; fails if it has not finished in 60 s.
fn with_watchdog(name: &str, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            f();
            let _ = tx.send(());
        })
        .unwrap();
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(()) => {}
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("{name}: HANG (not finished after 60 s)")
        }
        Err(e) => panic!("{name}: thread died: {e}"),
    }
}

struct Flag(Rc<Cell<bool>>);
impl Drop for Flag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

#[test]
fn a_stale_waker_key_does_not_keep_a_detached_result_alive() {
    let dropped = Rc::new(Cell::new(false));
    let ev = EventLoop::new();
    let (tx_a, rx_a) = channel::<u32>(1);
    let (tx_b, rx_b) = channel::<u32>(1);
    let (tx_c, rx_c) = channel::<u32>(1);
    let rx_c_kept = rx_c.clone();
    tx_b.try_send(1).unwrap();
    let d = dropped.clone();
    ev.spawn(move || {
        // The first that is ready: b. a's pollers keep this task's key.
        let _ = wait_for(futures_lite::future::or(
            rx_a.recv_async(),
            rx_b.recv_async(),
        ));
        // Waits on c with a time limit; a send on a wakes it meanwhile.
        assert!(rx_c.recv_timeout(Duration::from_millis(50)).is_err());
        Flag(d)
    })
    .detach();
    ev.spawn(move || {
        tx_a.try_send(7).unwrap();
    });
    ev.run().unwrap();
    let after_run = dropped.get();
    drop(rx_c_kept);
    drop(tx_c);
    assert!(dropped.get(), "dropped only when the channel closed");
    assert!(
        after_run,
        "the detached task's result was not dropped when it finished: a stale \
         entry in channel c's wait list still holds the task"
    );
}

struct PanicOnDrop;
impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("PanicOnDrop: the detached task's result");
        }
    }
}

#[test]
fn a_stale_waker_key_does_not_drop_a_result_inside_another_task() {
    let ev = EventLoop::new();
    let (tx_a, rx_a) = channel::<u32>(1);
    let (tx_b, rx_b) = channel::<u32>(1);
    let (tx_c, rx_c) = channel::<u32>(1);
    let _rx_c_kept = rx_c.clone();
    tx_b.try_send(1).unwrap();
    ev.spawn(move || {
        let _ = wait_for(futures_lite::future::or(
            rx_a.recv_async(),
            rx_b.recv_async(),
        ));
        assert!(rx_c.recv_timeout(Duration::from_millis(50)).is_err());
        PanicOnDrop
    })
    .detach();
    ev.spawn(move || {
        tx_a.try_send(7).unwrap();
    });
    // A later, unrelated task that sends on c.
    let innocent = ev.spawn(move || {
        sleep(Duration::from_millis(100));
        tx_c.send(5).unwrap();
        "sent"
    });
    let run = ev.run();
    let joined = innocent.join();
    assert!(
        joined.is_ok(),
        "an unrelated task that sent on the channel died of the detached task's \
         result destructor: {:?} (run: {:?})",
        joined.err().map(|e| e.to_string()),
        run
    );
}

thread_local! {
    static LOOP: RefCell<Option<EventLoop>> = const { RefCell::new(None) };
}

struct DropsTheLoop;
impl Drop for DropsTheLoop {
    fn drop(&mut self) {
        let ev = LOOP.with(|l| l.borrow_mut().take());
        drop(ev);
    }
}

#[test]
fn a_cancellation_whose_destructor_drops_the_loop_ends() {
    with_watchdog("cancel_drops_loop", || {
        let ev = EventLoop::new();
        let h = ev.spawn(|| {
            let _g = DropsTheLoop;
            sleep(Duration::from_secs(3600));
        });
        assert!(ev.try_tick()); // parks in sleep
        LOOP.with(|l| *l.borrow_mut() = Some(ev));
        h.cancel(); // the destructor drops the loop
        assert!(h.join().unwrap_err().is_cancelled());
    });
}

#[test]
fn cancelling_the_task_that_owns_its_loop_ends() {
    with_watchdog("cancel_rc_loop", || {
        let ev = Rc::new(EventLoop::new());
        let owner = ev.clone();
        let h = ev.spawn(move || {
            let _owner = owner; // the task keeps its loop
            sleep(Duration::from_secs(3600));
        });
        assert!(ev.try_tick());
        drop(ev); // the task's `owner` is now the last reference
        h.cancel(); // unwinds `_owner`: the loop's drop runs inside the cancel
    });
}

thread_local! {
    static SPAWNED: RefCell<Option<JoinHandle<u32>>> = const { RefCell::new(None) };
}

struct SpawnsOnDrop;
impl Drop for SpawnsOnDrop {
    fn drop(&mut self) {
        if cogen::event_loop::current_task_id().is_none() {
            let h = spawn(|| 1u32);
            SPAWNED.with(|s| *s.borrow_mut() = Some(h));
        }
    }
}

#[test]
fn a_task_spawned_while_the_loop_drops_its_unstarted_jobs_is_cancelled() {
    let ev = EventLoop::new();
    let handle = ev.handle();
    let s = SpawnsOnDrop;
    let r = handle.spawn(move || {
        let _s = &s;
        0u32
    });
    drop(ev);
    assert!(r.join().unwrap_err().is_cancelled());
    let h = SPAWNED
        .with(|s| s.borrow_mut().take())
        .expect("spawned in the drop");
    assert!(
        h.is_finished(),
        "a task spawned into the loop while it was being dropped is neither run \
         nor cancelled: its handle never finishes"
    );
}

/// A future awaiting the `JoinHandle` of another loop of the same thread:
/// that loop cannot run while this one does, so waiting is a deadlock, and
/// `run` says so (it slept for ever while the waker was cloned into the
/// handle). Running the other loop then wakes the waiter through its
/// loop's inbox.
#[test]
fn awaiting_a_handle_of_another_loop_of_the_thread_is_a_deadlock_until_it_runs() {
    with_watchdog("cross_loop_await", || {
        let a = EventLoop::new();
        let b = EventLoop::new();
        let hb = b.spawn(|| 5u32);
        let ha = a.spawn_future(async move { hb.await.unwrap() + 1 });
        assert!(a.run().unwrap_err().is_deadlock());
        b.run().unwrap();
        a.run().unwrap();
        assert_eq!(ha.try_join().unwrap().unwrap(), 6);
    });
}

/// The same from a stackful task's `wait_for`.
#[test]
fn wait_for_a_handle_of_another_loop_of_the_thread_is_a_deadlock_until_it_runs() {
    with_watchdog("cross_loop_wait_for", || {
        let a = EventLoop::new();
        let b = EventLoop::new();
        let hb = b.spawn(|| 5u32);
        let ha = a.spawn(move || wait_for(hb).unwrap() * 2);
        assert!(a.run().unwrap_err().is_deadlock());
        b.run().unwrap();
        a.run().unwrap();
        assert_eq!(ha.try_join().unwrap().unwrap(), 10);
    });
}
