//! Other threads into a loop, and one loop per thread: `LoopHandle` spawns
//! from many threads at once, `RemoteJoinHandle` awaited by a task of
//! another loop and joined from a plain thread, spawning onto a dropped
//! loop, and the `Runtime`: placement, panics, shutdown of tasks parked on
//! sockets and channels (each destructor once), drop; and the races of a
//! remote handle's join, await and drop with its task's end, and of spawns
//! with the loop's drop; user wakers that panic when a cancellation wakes
//! them, a runtime's detached panics, and a remote handle waited on inside
//! its own task's loop (a deadlock is reported, a blocking join refused);
//! a remote handle dropped with the loop awaiting it keeps no descriptor.

use std::collections::HashSet;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use cogen::event_loop::net::TcpListener;
use cogen::event_loop::{
    EventLoop, Runtime, bind_reuseport, channel, sleep, spawn, sync_channel, wait_for, yield_now,
};

mod support;
use support::SendDropCounter;

/// Long enough to count as "forever" in a test that must end before it.
const FOREVER: Duration = Duration::from_secs(60);

#[test]
fn spawns_from_several_threads_at_once_each_run_once() {
    const THREADS: usize = 4;
    const EACH: usize = 500;
    let (done_tx, done_rx) = sync_channel::<()>(1);
    let (handle_tx, handle_rx) = std::sync::mpsc::channel();
    // One loop on its own thread, kept alive by a main task parked on a
    // `Send` channel; the test thread ends it by dropping the sender.
    let lp = thread::spawn(move || {
        let ev = EventLoop::new();
        handle_tx.send(ev.handle()).unwrap();
        ev.block_on(move || assert!(done_rx.recv().is_err()))
            .unwrap();
    });
    let handle = handle_rx.recv().unwrap();
    let barrier = Arc::new(Barrier::new(THREADS));
    let spawners: Vec<_> = (0..THREADS)
        .map(|t| {
            let handle = handle.clone();
            let barrier = barrier.clone();
            thread::spawn(move || {
                barrier.wait();
                let joins: Vec<_> = (0..EACH)
                    .map(|i| {
                        handle.spawn(move || {
                            if i % 7 == 0 {
                                yield_now(); // a real task: it can wait
                            }
                            (t, i)
                        })
                    })
                    .collect();
                joins
                    .into_iter()
                    .map(|h| h.join().unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut seen = HashSet::new();
    for s in spawners {
        for r in s.join().unwrap() {
            assert!(seen.insert(r), "{r:?} received twice");
        }
    }
    assert_eq!(seen.len(), THREADS * EACH);
    drop(done_tx);
    lp.join().unwrap();
}

#[test]
fn remote_handle_awaited_by_a_future_task_of_another_loop_and_joined_from_a_thread() {
    let rt = Runtime::builder().threads(2).build().unwrap();
    let slow = rt.spawn(|| {
        sleep(Duration::from_millis(20));
        "slow"
    });
    let fast = rt.spawn(|| 7);
    let ev = EventLoop::new();
    let awaited = ev.spawn_future(async move { slow.await.unwrap() });
    let joined = thread::spawn(move || fast.join().unwrap());
    ev.run().unwrap();
    assert_eq!(awaited.join().unwrap(), "slow");
    assert_eq!(joined.join().unwrap(), 7);
}

#[test]
fn remote_handle_joined_inside_a_stackful_task_parks_it() {
    let rt = Runtime::builder().threads(1).build().unwrap();
    let ev = EventLoop::new();
    let ticks = ev.spawn(|| {
        let mut n = 0;
        for _ in 0..5 {
            sleep(Duration::from_millis(2));
            n += 1;
        }
        n
    });
    let remote = rt.spawn(|| {
        sleep(Duration::from_millis(5));
        1
    });
    let joiner = ev.spawn(move || remote.join().unwrap());
    ev.run().unwrap();
    assert_eq!((joiner.join().unwrap(), ticks.join().unwrap()), (1, 5));
}

#[test]
fn spawning_onto_a_dropped_loop_is_refused() {
    let ev = EventLoop::new();
    let handle = ev.handle();
    assert!(!handle.is_closed());
    // Accepted, never started: dropped with the loop, reported cancelled.
    let drops = SendDropCounter::new();
    let token = drops.token();
    let unstarted = handle.spawn(move || drop(token));
    drop(ev);
    assert!(handle.is_closed());
    assert_eq!(drops.count(), 1);
    assert!(unstarted.join().unwrap_err().is_cancelled());
    // After the drop: `try_spawn` hands the closure back ...
    let token = drops.token();
    let refused = handle.try_spawn(move || drop(token)).unwrap_err();
    assert_eq!(drops.live(), 1);
    drop(refused.into_inner());
    assert_eq!(drops.live(), 0);
    // ... and `spawn` gives a handle that reports a cancellation.
    let h = handle.spawn(|| 1);
    assert!(h.is_finished());
    assert!(h.join().unwrap_err().is_cancelled());
}

#[test]
fn spawn_places_tasks_round_robin_and_they_stay_on_their_thread() {
    let rt = Runtime::builder()
        .threads(3)
        .thread_name(|i| format!("rr-{i}"))
        .build()
        .unwrap();
    let names: Vec<String> = (0..6)
        .map(|_| {
            rt.spawn(|| {
                let before = thread::current().id();
                for _ in 0..10 {
                    sleep(Duration::from_millis(1));
                    assert_eq!(thread::current().id(), before, "a task moved");
                }
                thread::current().name().unwrap().to_owned()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    assert_eq!(names, ["rr-0", "rr-1", "rr-2", "rr-0", "rr-1", "rr-2"]);
}

#[test]
fn pinned_runtime_runs() {
    let rt = Runtime::builder().threads(2).pin(true).build().unwrap();
    let sum: u32 = (0..4)
        .map(|i| rt.spawn(move || i))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .sum();
    assert_eq!(sum, 6);
}

#[test]
fn a_panicking_task_does_not_disturb_the_others() {
    let rt = Runtime::builder().threads(2).build().unwrap();
    let (tx, rx) = sync_channel::<u32>(1);
    // A long-lived task on each loop, mid-work when the panics happen.
    let workers: Vec<_> = rt
        .handles()
        .iter()
        .map(|h| {
            let rx = rx.clone();
            h.spawn(move || std::iter::from_fn(|| rx.recv().ok()).sum::<u32>())
        })
        .collect();
    let panics: Vec<_> = (0..4)
        .map(|i| rt.spawn(move || -> u32 { panic!("task {i} failed") }))
        .collect();
    // A detached one too: its loop collects the panic.
    rt.spawn(|| panic!("detached")).detach();
    for (i, h) in panics.into_iter().enumerate() {
        let err = h.join().unwrap_err();
        assert!(err.is_panic());
        assert_eq!(err.panic().unwrap().message(), format!("task {i} failed"));
    }
    for v in 1..=10 {
        tx.send(v).unwrap();
    }
    drop(tx);
    let total: u32 = workers.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(total, 55);
    assert_eq!(rt.block_on(|| 42), 42);
}

#[test]
#[should_panic(expected = "from the block_on task")]
fn block_on_raises_the_task_panic() {
    let rt = Runtime::builder().threads(1).build().unwrap();
    rt.block_on(|| panic!("from the block_on task"));
}

#[test]
fn shutdown_cancels_tasks_parked_on_sockets_and_channels_once() {
    let rt = Runtime::builder().threads(2).build().unwrap();
    let drops = SendDropCounter::new();
    let addr = bind_reuseport("127.0.0.1:0".parse().unwrap())
        .unwrap()
        .local_addr()
        .unwrap();
    let (_keep_tx, rx) = sync_channel::<u32>(1);
    let mut parked = Vec::new();
    let mut started = Vec::new();
    for h in rt.handles() {
        // A listener per loop on one address, parked in accept.
        let (token, (ready_tx, ready_rx)) = (drops.token(), sync_channel(1));
        parked.push(h.spawn(move || {
            let _token = token;
            let listener = TcpListener::try_from(bind_reuseport(addr).unwrap()).unwrap();
            ready_tx.send(()).unwrap();
            let _ = listener.accept();
        }));
        started.push(ready_rx);
        // Parked on a `Send` channel whose sender the test keeps.
        let (token, rx) = (drops.token(), rx.clone());
        parked.push(h.spawn(move || {
            let _token = token;
            let _ = rx.recv();
        }));
        // Parked on a loop channel nobody will send on (a deadlock), with
        // a token on the stack of a nested call.
        let token = drops.token();
        parked.push(h.spawn(move || {
            let (_tx, rx) = channel::<u32>(1);
            let stuck = spawn(move || {
                let _token = token;
                let _ = rx.recv();
            });
            let _ = stuck.join();
        }));
        // Sleeping past the deadline.
        let token = drops.token();
        parked.push(h.spawn(move || {
            let _token = token;
            sleep(FOREVER);
        }));
    }
    // Finishes before the deadline: its value is kept.
    let finishes = rt.spawn(|| {
        sleep(Duration::from_millis(5));
        "done"
    });
    for r in started {
        r.recv().unwrap();
    }
    let t0 = Instant::now();
    rt.shutdown_timeout(Duration::from_millis(100));
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(100), "{took:?}");
    assert!(took < FOREVER / 2, "{took:?}");
    assert_eq!(finishes.join().unwrap(), "done");
    for h in parked {
        assert!(h.join().unwrap_err().is_cancelled());
    }
    assert_eq!((drops.count(), drops.live()), (8, 0));
}

#[test]
fn shutdown_returns_once_every_task_is_done() {
    let rt = Runtime::builder().threads(2).build().unwrap();
    let handles: Vec<_> = (0..4)
        .map(|i| {
            rt.spawn(move || {
                sleep(Duration::from_millis(10));
                i
            })
        })
        .collect();
    let t0 = Instant::now();
    rt.shutdown_timeout(FOREVER);
    assert!(t0.elapsed() < FOREVER / 2);
    let sum: i32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(sum, 6);
}

#[test]
fn dropping_the_runtime_cancels_at_once_and_refuses_spawns() {
    let rt = Runtime::builder().threads(2).build().unwrap();
    let drops = SendDropCounter::new();
    let parked: Vec<_> = (0..4)
        .map(|_| {
            let token = drops.token();
            rt.spawn(move || {
                let _token = token;
                sleep(FOREVER);
            })
        })
        .collect();
    let handle = rt.handles()[0].clone();
    // Let them start, so that they are parked, not unstarted.
    assert_eq!(rt.block_on(|| 1), 1);
    let t0 = Instant::now();
    drop(rt);
    assert!(t0.elapsed() < FOREVER / 2);
    assert_eq!((drops.count(), drops.live()), (4, 0));
    for h in parked {
        assert!(h.join().unwrap_err().is_cancelled());
    }
    assert!(handle.is_closed());
    assert!(handle.try_spawn(|| ()).is_err());
}

#[test]
fn handles_and_join_handles_are_send() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<cogen::event_loop::LoopHandle>();
    assert_send_sync::<cogen::event_loop::RemoteJoinHandle<u32>>();
    assert_send_sync::<cogen::event_loop::SyncSender<u32>>();
    assert_send_sync::<cogen::event_loop::SyncReceiver<u32>>();
    assert_send_sync::<Runtime>();
    let ev = EventLoop::new();
    let h = ev.handle();
    let remote = thread::spawn(move || h.spawn(|| wait_for(async { 5 })))
        .join()
        .unwrap();
    ev.run().unwrap();
    assert_eq!(remote.join().unwrap(), 5);
}

#[test]
fn a_task_that_gets_no_stack_reports_why() {
    // More address space than a process can map: the loop cannot start the
    // task, and says so through the handle instead of panicking itself.
    let rt = Runtime::builder()
        .threads(1)
        .stack_size(1 << 50)
        .build()
        .unwrap();
    let err = rt.spawn(|| 1).join().unwrap_err();
    assert!(err.is_panic(), "{err}");
    // The loop itself goes on.
    assert!(!rt.handles()[0].is_closed());
    assert!(rt.handles()[0].spawn(|| 2).join().unwrap_err().is_panic());
}

#[test]
fn join_races_the_task_s_end() {
    // The test thread joins each handle as soon as it has it: the join finds
    // the task done, or spins, or blocks, whichever the race gives; a task
    // that sleeps first makes it block. Each value arrives once, and each
    // is dropped once.
    let rt = Runtime::builder().threads(1).build().unwrap();
    let drops = SendDropCounter::new();
    for i in 0..2000u32 {
        let token = drops.token();
        let h = rt.spawn(move || {
            if i % 100 == 0 {
                sleep(Duration::from_millis(1));
            }
            (i, token)
        });
        let (j, token) = h.join().unwrap();
        assert_eq!(i, j);
        drop(token);
    }
    // Joined from another thread than the one that spawned.
    let hs: Vec<_> = (0..200u32).map(|i| rt.spawn(move || i)).collect();
    let sum = thread::spawn(move || hs.into_iter().map(|h| h.join().unwrap()).sum::<u32>())
        .join()
        .unwrap();
    assert_eq!(sum, (0..200).sum());
    assert_eq!((drops.count(), drops.live()), (2000, 0));
}

#[test]
fn remote_handles_awaited_by_another_loop_race_the_tasks_ends() {
    // The awaiting task's poll stores its waker while the task may be
    // ending: either the end sees the waker, or the poll sees the end.
    let rt = Runtime::builder().threads(1).build().unwrap();
    let handle = rt.handles()[0].clone();
    let ev = EventLoop::new();
    let sum = ev
        .block_on(move || {
            (0..1000u64)
                .map(|i| wait_for(handle.spawn(move || i)).unwrap())
                .sum::<u64>()
        })
        .unwrap();
    assert_eq!(sum, (0..1000).sum());
}

#[test]
fn dropping_handles_races_the_tasks_ends() {
    // Another thread drops each handle while its task may be ending: the
    // value is then dropped by whichever side comes second, once.
    let rt = Runtime::builder().threads(1).build().unwrap();
    let drops = SendDropCounter::new();
    let (tx, rx) = std::sync::mpsc::channel();
    let dropper = thread::spawn(move || {
        for h in rx {
            drop(h);
        }
    });
    for i in 0..2000u32 {
        let token = drops.token();
        tx.send(rt.spawn(move || (i, token))).unwrap();
    }
    drop(tx);
    dropper.join().unwrap();
    rt.shutdown_timeout(FOREVER);
    assert_eq!((drops.count(), drops.live()), (2000, 0));
}

#[test]
fn spawning_races_the_loop_s_drop() {
    // Threads spawn while the runtime is dropped: each spawn either runs to
    // its end, is cancelled unstarted, or is refused (a handle that reports
    // a cancellation); every closure and value is dropped once.
    let rt = Runtime::builder().threads(1).build().unwrap();
    let handle = rt.handles()[0].clone();
    let drops = SendDropCounter::new();
    let start = Arc::new(Barrier::new(3));
    let spawners: Vec<_> = (0..2)
        .map(|_| {
            let (handle, drops, start) = (handle.clone(), drops.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                let mut hs = Vec::new();
                for _ in 0..2000 {
                    if handle.is_closed() {
                        break;
                    }
                    let token = drops.token();
                    hs.push(handle.spawn(move || token));
                }
                while !handle.is_closed() {
                    thread::sleep(Duration::from_millis(1));
                }
                // Refused: their handles report a cancellation.
                for _ in 0..5 {
                    let token = drops.token();
                    hs.push(handle.spawn(move || token));
                }
                hs.into_iter()
                    .map(|h| match h.join() {
                        Ok(token) => {
                            drop(token);
                            0
                        }
                        Err(e) => {
                            assert!(e.is_cancelled(), "{e}");
                            1
                        }
                    })
                    .sum::<usize>()
            })
        })
        .collect();
    start.wait();
    thread::sleep(Duration::from_millis(2));
    drop(rt);
    let cancelled: usize = spawners.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(cancelled >= 10, "{cancelled}");
    assert_eq!(drops.live(), 0);
}

/// The last `Arc<Runtime>` dropped inside one of its own tasks: the drop
/// does not try to join the thread it runs on (which panicked with "failed
/// to join thread"), the task returns its value, and that thread ends.
#[test]
fn the_last_runtime_dropped_inside_its_own_task_does_not_join_its_own_thread() {
    let rt = Arc::new(Runtime::builder().threads(2).build().unwrap());
    let (tx, rx) = std::sync::mpsc::channel::<Arc<Runtime>>();
    let handle = rt.spawn(move || {
        let last = rx.recv().unwrap();
        drop(last);
        "dropped"
    });
    tx.send(rt).unwrap(); // the only `Arc` left now goes into the task
    assert_eq!(handle.join().unwrap(), "dropped");
}

/// A waker that panics when woken.
struct PanickingWaker;

impl std::task::Wake for PanickingWaker {
    fn wake(self: Arc<Self>) {
        panic!("this waker panics");
    }
}

#[test]
fn a_panicking_waker_on_a_remote_handle_whose_task_is_cancelled_is_caught() {
    use std::future::Future;
    use std::task::{Context, Waker};

    let waker = Waker::from(Arc::new(PanickingWaker));
    let ev = EventLoop::new();
    let mut handle = ev.handle().spawn(|| sleep(FOREVER));
    ev.try_tick(); // starts the task, which parks in its sleep
    let mut cx = Context::from_waker(&waker);
    assert!(std::pin::Pin::new(&mut handle).poll(&mut cx).is_pending());
    // The cancellation wakes the waker from the task's unwinding: its
    // panic is caught (a second panic there would abort the process).
    drop(ev);
    assert!(handle.join().unwrap_err().is_cancelled());
}

#[test]
fn a_panicking_poller_woken_by_a_close_during_a_cancellation_is_caught() {
    use std::task::{Context, Waker};

    let waker = Waker::from(Arc::new(PanickingWaker));
    let ev = EventLoop::new();
    let (tx, rx) = channel::<u32>(1);
    let task = ev.spawn(move || {
        let _tx = tx; // its drop, as the task unwinds, closes the channel
        sleep(FOREVER)
    });
    ev.try_tick();
    assert!(rx.poll_recv(&mut Context::from_waker(&waker)).is_pending());
    task.cancel();
    // The waker's panic is the loop's to report, like any waker's.
    assert_eq!(ev.take_panics().len(), 1);
    assert!(rx.try_recv().is_err());
}

#[test]
fn a_runtime_keeps_no_panic_of_a_detached_task() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    static DROPPED: AtomicUsize = AtomicUsize::new(0);
    struct Payload;
    impl Drop for Payload {
        fn drop(&mut self) {
            DROPPED.fetch_add(1, Ordering::SeqCst);
        }
    }
    let rt = Runtime::builder().threads(1).build().unwrap();
    for _ in 0..100 {
        rt.spawn(|| std::panic::panic_any(Payload)).detach();
    }
    // One loop runs its tasks in order: this one runs after the hundred.
    rt.block_on(|| ());
    assert_eq!(DROPPED.load(Ordering::SeqCst), 100);
    // A panic with a handle still reaches the handle.
    let error = rt.spawn(|| panic!("seen")).join().unwrap_err();
    assert_eq!(error.panic().unwrap().message(), "seen");
}

#[test]
fn waiting_on_a_remote_handle_of_a_stuck_task_of_the_same_loop_is_a_deadlock() {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    // On a thread of its own, so that a hang fails the test instead of
    // stopping it.
    thread::spawn(move || {
        let ev = EventLoop::new();
        let handle = ev.handle();
        let result = ev.block_on(move || {
            let stuck = handle.spawn(|| {
                let (tx, rx) = channel::<u32>(1);
                let _keep = tx.clone();
                let _ = rx.recv(); // nothing will ever come
            });
            wait_for(stuck)
        });
        let _ = done_tx.send(result.map(drop).map_err(|e| e.to_string()));
    });
    let result = done_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("block_on hung instead of reporting the deadlock");
    let error = result.unwrap_err();
    assert!(error.contains("deadlock"), "{error}");
}

#[test]
fn a_remote_handle_of_the_same_loop_awaited_by_a_task_still_wakes_it() {
    let ev = EventLoop::new();
    let handle = ev.handle();
    let got = ev
        .block_on(move || {
            let remote = handle.spawn(|| {
                sleep(Duration::from_millis(5));
                7
            });
            wait_for(remote).unwrap()
        })
        .unwrap();
    assert_eq!(got, 7);
}

#[test]
fn joining_a_remote_handle_on_its_loop_s_thread_outside_a_task_panics() {
    let ev = EventLoop::new();
    let handle = ev.handle().spawn(|| 1);
    let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handle.join()))
        .expect_err("a join that could never end must panic");
    let message = payload.downcast_ref::<&str>().copied().unwrap_or("");
    assert!(message.contains("own loop"), "{message}");
    // Once the loop has run the task, its result is there to take.
    let handle = ev.handle().spawn(|| 2);
    ev.run().unwrap();
    assert_eq!(handle.join().unwrap(), 2);
}

#[test]
fn a_shutdown_does_not_wait_for_tasks_that_are_deadlocked() {
    let rt = Runtime::builder().threads(1).build().unwrap();
    let stuck = rt.spawn(|| {
        let (tx, rx) = channel::<u32>(1);
        let _keep = tx.clone();
        let _ = rx.recv(); // nothing will ever come
    });
    let sleeper = rt.spawn(|| sleep(Duration::from_millis(20)));
    thread::sleep(Duration::from_millis(5));
    let start = Instant::now();
    rt.shutdown_timeout(FOREVER);
    // Well short of the minute: the shutdown ended when only the
    // deadlocked task was left (after the sleeper's 20 ms).
    assert!(start.elapsed() < FOREVER / 2);
    assert!(sleeper.join().is_ok());
    assert!(stuck.join().unwrap_err().is_cancelled());
}

/// `shutdown_timeout` called from one of the runtime's own tasks, while a
/// task of another loop waits for a task of the caller's loop: it returns
/// at once (waiting would block the caller's loop, and with
/// `Duration::MAX` the two loops for ever), and the tasks still finish.
#[test]
fn shutdown_timeout_from_an_own_task_does_not_block_its_loop() {
    // On a thread of its own, so that a hang fails the test instead of
    // hanging it.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let rt = Runtime::builder().threads(2).build().unwrap();
        let h0 = rt.handles()[0].clone();
        let h1 = rt.handles()[1].clone();
        let t0 = h0.spawn(|| {
            sleep(Duration::from_millis(5));
            1
        });
        let t1 = h1.spawn(move || wait_for(t0).unwrap() + 1);
        let (tx, rx) = std::sync::mpsc::channel();
        h0.spawn(move || {
            rt.shutdown_timeout(Duration::MAX);
            tx.send("returned").unwrap();
        })
        .detach();
        let returned = rx.recv().unwrap();
        done_tx.send((returned, t1.join().unwrap())).unwrap();
    });
    let outcome = done_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the shutdown from an own task blocked its loop");
    assert_eq!(outcome, ("returned", 2));
}

/// A remote handle awaited by a future task of another loop of the same
/// thread keeps that loop's inbox (with its poller's waker, a descriptor)
/// while it waits; dropped with the loop, it must let go of it, even though
/// the remote task runs on. Counted in a child process (this same test
/// binary, this test only): the tests beside it open descriptors too.
#[test]
fn a_remote_handle_dropped_with_its_awaiting_loop_keeps_no_descriptor() {
    support::in_child_process(
        "a_remote_handle_dropped_with_its_awaiting_loop_keeps_no_descriptor",
        "COGEN_RUNTIME_FD_CHILD",
        "descriptors: flat",
        dropped_awaiting_loops_keep_no_descriptor,
    );
}

/// The child's part: twenty loops, each with a poller, each dropped while
/// one of its tasks awaits a remote task that never ends.
fn dropped_awaiting_loops_keep_no_descriptor() {
    use cogen::event_loop::net::UnixStream;
    use std::io::{Read, Write};

    let fds = || std::fs::read_dir("/proc/self/fd").unwrap().count();
    let remote_loop = EventLoop::new();
    let handle = remote_loop.handle();
    let mut counts = Vec::new();
    for _ in 0..20 {
        let remote = handle.spawn(|| sleep(FOREVER));
        assert!(remote_loop.try_tick());
        let ev = EventLoop::new();
        ev.block_on(|| {
            // A read that waits: the loop makes its poller.
            let (a, b) = UnixStream::pair().unwrap();
            let reader = spawn(move || (&a).read(&mut [0u8; 1]).unwrap());
            yield_now();
            (&b).write_all(b"x").unwrap();
            reader.join().unwrap();
        })
        .unwrap();
        ev.spawn_future(async move {
            let _ = remote.await;
        });
        assert!(ev.try_tick()); // parked on the remote handle, by key
        drop(ev); // cancels the future task, which drops the handle
        counts.push(fds());
    }
    assert_eq!(
        counts.first(),
        counts.last(),
        "descriptors kept: {counts:?}"
    );
    println!("descriptors: flat");
    drop(remote_loop);
}

/// The same from a task of a loop that is not the runtime's: a runtime task
/// waits for a task of that loop, which could not run while the shutdown
/// waited for the runtime's threads.
#[test]
fn shutdown_timeout_from_a_task_of_another_loop_does_not_block_that_loop() {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let rt = Runtime::builder().threads(1).build().unwrap();
        let ev = EventLoop::new();
        let local = ev.handle().spawn(|| {
            yield_now();
            10
        });
        let t = rt.spawn(move || wait_for(local).unwrap() + 1);
        ev.block_on(move || rt.shutdown_timeout(Duration::MAX))
            .unwrap();
        // The loop's task runs after the shutdown returned.
        ev.run().unwrap();
        done_tx.send(t.join().unwrap()).unwrap();
    });
    let outcome = done_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the shutdown from another loop's task blocked that loop");
    assert_eq!(outcome, 11);
}
