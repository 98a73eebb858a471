//! Loops, sockets and runtimes at their edges: a shutdown with no time
//! limit, vectored reads past `IOV_MAX`, a Unix read cut short by passed
//! descriptors, a loop dropped inside a task of another, wakers and waits
//! that outlive their loop, waits from nested coroutines, a socket's waker
//! that drives its own loop.
#![cfg_attr(cogen_nightly, feature(unix_socket_ancillary_data))]

use std::io::{IoSliceMut, Read, Write};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use cogen::event_loop::net::{TcpStream, UnixStream};
use cogen::event_loop::{EventLoop, Runtime, spawn, sync_channel, timeout, yield_now};

mod support;
use support::watchdog;

/// A fresh path in a directory of this test process (removed when the
/// process exits).
fn socket_path(name: &str) -> PathBuf {
    let path = support::process_dir("cogen-loop-edges").join(name);
    let _ = std::fs::remove_file(&path);
    path
}

fn rss_bytes() -> usize {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = s.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[test]
fn shutdown_timeout_max_lets_tasks_finish() {
    use cogen::event_loop::sync_channel;
    let rt = Runtime::builder().threads(1).build().unwrap();
    let (tx, rx) = sync_channel::<u32>(1);
    let h = rt.spawn(move || rx.recv().unwrap());
    // The task's value comes from another thread, a little later.
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(3));
        let _ = tx.send(7);
    });
    let r = std::panic::catch_unwind(AssertUnwindSafe(move || {
        rt.shutdown_timeout(Duration::MAX) // "no deadline": wait for the tasks
    }));
    let joined = h.join();
    sender.join().unwrap();
    eprintln!(
        "shutdown returned normally: {}; the task's result: {:?}",
        r.is_ok(),
        joined.as_ref().map_err(|e| e.to_string())
    );
    assert!(r.is_ok(), "shutdown_timeout(Duration::MAX) panicked");
    assert_eq!(joined.unwrap(), 7);
}

#[test]
fn read_vectored_past_iov_max_does_not_hide_queued_data() {
    let (a, b) = UnixStream::pair().unwrap();
    let ev = EventLoop::new();
    let (n, rest) = watchdog("read_vectored", || {
        ev.block_on(move || {
            let b = Rc::new(b);
            let b2 = b.clone();
            let w = spawn(move || {
                yield_now();
                (&*b2).write_all(&[1]).unwrap();
                (&*b2).write_all(&[2u8; 3000]).unwrap();
            });
            let mut one = [0u8; 1];
            (&a).read_exact(&mut one).unwrap(); // parks: the socket registers
            w.join().unwrap();
            let mut mem = vec![[0u8; 1]; 2048];
            let mut bufs: Vec<IoSliceMut<'_>> = mem
                .iter_mut()
                .map(|b| IoSliceMut::new(&mut b[..]))
                .collect();
            let n = (&a).read_vectored(&mut bufs).unwrap();
            let mut rest = vec![0u8; 8192];
            // 3000 - n bytes are queued: this read must not wait at all.
            let r = timeout(Duration::from_secs(5), || (&a).read(&mut rest));
            if r.is_err() {
                // The data was there all along: a try_read (always a system
                // call) takes it at once.
                eprintln!(
                    "read timed out; try_read then got {:?} bytes",
                    a.try_read(&mut rest)
                );
            }
            let _keep_peer_open = b;
            (n, r.map(|r| r.unwrap()))
        })
        .unwrap()
    });
    assert_eq!(n, 1024, "readv takes at most IOV_MAX buffers");
    assert_eq!(
        rest.ok(),
        Some(3000 - n),
        "the read after a vectored read of 1024 of 3000 bytes waited for nothing"
    );
}

#[test]
fn tcp_read_vectored_past_iov_max_does_not_hide_queued_data() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let ev = EventLoop::new();
    let (n, rest) = watchdog("tcp read_vectored", || {
        ev.block_on(move || {
            let client = TcpStream::connect(addr).unwrap();
            let (peer, _) = listener.accept().unwrap();
            let peer = Rc::new(TcpStream::try_from(peer).unwrap());
            let p2 = peer.clone();
            client
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let w = spawn(move || {
                yield_now();
                (&*p2).write_all(&[1]).unwrap();
                (&*p2).write_all(&[2u8; 3000]).unwrap();
            });
            let mut one = [0u8; 1];
            (&client).read_exact(&mut one).unwrap();
            w.join().unwrap();
            // Let the 3000 bytes arrive (loopback: at once) and be seen.
            for _ in 0..3 {
                yield_now();
            }
            let mut mem = vec![[0u8; 1]; 2048];
            let mut bufs: Vec<IoSliceMut<'_>> = mem
                .iter_mut()
                .map(|b| IoSliceMut::new(&mut b[..]))
                .collect();
            let n = (&client).read_vectored(&mut bufs).unwrap();
            let mut rest = vec![0u8; 8192];
            let r = (&client).read(&mut rest).map_err(|e| e.kind());
            let _keep = peer;
            (n, r)
        })
        .unwrap()
    });
    assert_eq!(n, 1024);
    assert_eq!(rest, Ok(3000 - n), "queued data hidden by the drained hint");
}

#[test]
#[cfg(cogen_nightly)]
fn a_short_read_at_passed_descriptors_does_not_hide_the_data_after_them() {
    use std::os::unix::net::SocketAncillary;
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    let a = UnixStream::try_from(a).unwrap();
    let ev = EventLoop::new();
    let got = watchdog("scm_rights", || {
        ev.block_on(move || {
            let reader = spawn(move || {
                let mut one = [0u8; 1];
                (&a).read_exact(&mut one).unwrap(); // parks: the socket registers
                let mut buf = [0u8; 64];
                let n1 = (&a).read(&mut buf).unwrap();
                let first = buf[..n1].to_vec();
                let second = timeout(Duration::from_secs(5), || {
                    let n = (&a).read(&mut buf).unwrap();
                    buf[..n].to_vec()
                });
                if second.is_err() {
                    let n = a.try_read(&mut buf);
                    eprintln!(
                        "read timed out; try_read then got {:?}",
                        n.map(|n| String::from_utf8_lossy(&buf[..n]).into_owned())
                    );
                }
                (first, second)
            });
            yield_now(); // the reader parks
            (&b).write_all(&[0]).unwrap();
            let file = std::fs::File::open("/dev/null").unwrap();
            let mut space = [0u8; 128];
            let mut anc = SocketAncillary::new(&mut space);
            use std::os::fd::AsRawFd;
            assert!(anc.add_fds(&[file.as_raw_fd()]));
            b.send_vectored_with_ancillary(&[std::io::IoSlice::new(b"aaaa")], &mut anc)
                .unwrap();
            (&b).write_all(b"bbbb").unwrap();
            let r = reader.join().unwrap();
            drop(b);
            r
        })
        .unwrap()
    });
    assert_eq!(got.0, b"aaaa");
    assert_eq!(
        got.1.ok(),
        Some(b"bbbb".to_vec()),
        "the data queued after the descriptors was not seen"
    );
}

#[test]
fn dropping_a_loop_in_a_task_with_an_unstarted_job_holding_a_dirty_file() {
    use cogen::event_loop::fs;
    const LEN: usize = 1 << 20;
    // A FIFO whose reader starts reading a second later: the flush that
    // `File::drop` waits for cannot finish before then (no timing assertion:
    // this only makes the flush wait).
    let path = socket_path("dirty.fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap()
            .success()
    );
    let rp = path.clone();
    let reader = std::thread::spawn(move || {
        let mut f = std::fs::File::open(&rp).unwrap();
        std::thread::sleep(Duration::from_secs(1));
        let mut all = Vec::new();
        f.read_to_end(&mut all).unwrap();
        all.len()
    });
    let p = path.clone();
    let outer = EventLoop::new();
    let r = watchdog("drop loop in task", || {
        outer.block_on(move || {
            let mut file =
                fs::File::open_with(std::fs::OpenOptions::new().write(true), &p).unwrap();
            file.write_all(&vec![7u8; LEN]).unwrap(); // buffered in the adapter
            let inner = EventLoop::new();
            let _h = inner.handle().spawn(move || drop(file)); // never started
            drop(inner); // drops the job, and with it the file
            "done"
        })
    });
    let r = r.map_err(|e| e.to_string());
    // Dropping the outer loop must not panic either (it once found a wait
    // count the inner loop's drop had left wrong).
    let dropped = std::panic::catch_unwind(AssertUnwindSafe(move || drop(outer)));
    let got = reader.join().unwrap();
    assert_eq!(
        r,
        Ok("done"),
        "the task that dropped the loop did not get past the drop"
    );
    assert!(dropped.is_ok(), "dropping the outer loop panicked");
    // The file's writes reached the reader all the same (flushed elsewhere).
    assert_eq!(got, LEN);
}

#[test]
fn a_socket_read_in_a_nested_coroutine() {
    let (a, b) = UnixStream::pair().unwrap();
    let ev = EventLoop::new();
    let got = watchdog("nested", || {
        ev.block_on(move || {
            spawn(move || {
                yield_now();
                (&b).write_all(b"xy").unwrap();
                b
            });
            let mut co = cogen::Coroutine::<(), (), [u8; 2]>::new(move |_co, ()| {
                let mut buf = [0u8; 2];
                (&a).read_exact(&mut buf).unwrap();
                buf
            });
            match co.resume(()) {
                Ok(cogen::CoroutineResult::Return(v)) => v,
                _ => panic!("unexpected"),
            }
        })
        .unwrap()
    });
    assert_eq!(&got, b"xy");
}

#[test]
fn a_sync_channel_in_a_nested_coroutine_parks_the_task() {
    let rt = Runtime::builder().threads(1).build().unwrap();
    let (tx, rx) = sync_channel::<u32>(1);
    let h = rt.spawn(move || {
        let mut co = cogen::Coroutine::<(), (), u32>::new(move |_, ()| {
            // Waits (the channel is empty until the thread below sends),
            // from inside a coroutine nested in the task.
            rx.recv().unwrap() + rx.recv().unwrap()
        });
        co.resume(()).unwrap().as_return().unwrap()
    });
    let sender = std::thread::spawn(move || {
        tx.send(20).unwrap();
        tx.send(22).unwrap();
    });
    assert_eq!(
        watchdog("nested sync_channel", move || h.join()).unwrap(),
        42
    );
    sender.join().unwrap();
}

#[test]
fn a_task_joining_its_own_remote_handle_is_a_deadlock_not_a_hang() {
    use std::sync::Mutex;
    let ev = EventLoop::new();
    let slot: Arc<Mutex<Option<cogen::event_loop::RemoteJoinHandle<u32>>>> = Arc::default();
    let s = slot.clone();
    let h = ev.handle().spawn(move || {
        yield_now();
        let me = s.lock().unwrap().take().unwrap();
        me.join().map(|v| v + 1).unwrap_or(0)
    });
    *slot.lock().unwrap() = Some(h);
    let r = watchdog("self join", || ev.run());
    assert!(r.is_err_and(|e| e.is_deadlock()));
    drop(ev);
}

#[test]
#[allow(clippy::waker_clone_wake)] // a clone woken by value, on purpose
fn wakers_called_on_other_threads_after_the_loop_is_gone() {
    use std::sync::Mutex;
    use std::task::{Poll, Waker};
    let stash: Arc<Mutex<Vec<Waker>>> = Arc::default();
    for _ in 0..20 {
        let ev = EventLoop::new();
        let s = stash.clone();
        for _ in 0..5 {
            let s = s.clone();
            ev.spawn(move || {
                cogen::event_loop::wait_for(std::future::poll_fn(|cx| {
                    s.lock().unwrap().push(cx.waker().clone());
                    Poll::<()>::Pending
                }))
            });
            let s = stash.clone();
            ev.spawn_future(std::future::poll_fn(move |cx| {
                s.lock().unwrap().push(cx.waker().clone());
                Poll::<()>::Pending
            }));
        }
        while ev.try_tick() {}
        let ws: Vec<Waker> = stash.lock().unwrap().drain(..).collect();
        let t = std::thread::spawn(move || {
            for w in &ws {
                w.wake_by_ref();
            }
            ws
        });
        drop(ev);
        let ws = t.join().unwrap();
        std::thread::spawn(move || {
            for w in ws {
                w.clone().wake();
                w.wake();
            }
        })
        .join()
        .unwrap();
    }
}

#[test]
#[cfg(cogen_nightly)]
fn a_wait_kept_past_its_loop_does_not_pin_the_socket_to_that_loop() {
    let (a, b) = UnixStream::pair().unwrap();
    let ev = EventLoop::new();
    let (a, kept_wait) = ev
        .block_on(move || {
            let w = cogen::event_loop::Wait::readable(&a).unwrap();
            (a, w)
        })
        .unwrap();
    drop(ev); // the loop is gone; the socket should register with the next
    let ev2 = EventLoop::new();
    let r = std::panic::catch_unwind(AssertUnwindSafe(|| {
        watchdog("wait kept", || {
            ev2.block_on(move || {
                spawn(move || {
                    yield_now();
                    (&b).write_all(b"z").unwrap();
                    b
                });
                let mut buf = [0u8; 1];
                (&a).read_exact(&mut buf).unwrap();
                buf
            })
            .unwrap()
        })
    }));
    drop(kept_wait);
    assert_eq!(
        r.ok(),
        Some(*b"z"),
        "the socket stayed pinned to the dropped loop"
    );
}

#[test]
fn waking_a_waker_of_a_dropped_loop_does_not_grow_memory() {
    use std::sync::Mutex;
    use std::task::{Poll, Waker};
    let stash: Arc<Mutex<Option<Waker>>> = Arc::default();
    let ev = EventLoop::new();
    let s = stash.clone();
    ev.spawn(move || {
        cogen::event_loop::wait_for(std::future::poll_fn(|cx| {
            *s.lock().unwrap() = Some(cx.waker().clone());
            Poll::<()>::Pending
        }))
    });
    while ev.try_tick() {}
    drop(ev); // the loop is gone; its waker lives on
    let waker = stash.lock().unwrap().take().unwrap();
    let before = rss_bytes();
    for _ in 0..8_000_000 {
        waker.wake_by_ref();
    }
    let after = rss_bytes();
    eprintln!("RSS before {} MiB, after {} MiB", before >> 20, after >> 20);
    drop(waker);
    assert!(
        after < before + (32 << 20),
        "8M wake-ups of a dead loop's waker kept {} MiB",
        (after - before) >> 20
    );
}

#[test]
fn split_halves_one_cancelled_mid_read_while_futures_and_tasks_share_the_socket() {
    use futures_lite::AsyncReadExt;
    let (a, b) = UnixStream::pair().unwrap();
    let ev = EventLoop::new();
    let total = watchdog("split", || {
        ev.block_on(move || {
            let a = Rc::new(a);
            let b = Rc::new(b);
            let mut got = 0usize;
            for round in 0..200u32 {
                let a1 = a.clone();
                let a2 = a.clone();
                let r1 = spawn(move || {
                    let mut buf = [0u8; 3];
                    std::io::Read::read(&mut (&*a1), &mut buf).unwrap()
                });
                let r2 = cogen::event_loop::spawn_future(async move {
                    let mut buf = [0u8; 5];
                    AsyncReadExt::read(&mut (&*a2), &mut buf).await.unwrap()
                });
                yield_now();
                // Cancel one of them mid-read, then feed the other.
                if round % 2 == 0 {
                    r1.cancel();
                } else {
                    r2.cancel();
                }
                (&*b).write_all(&[9u8; 8]).unwrap();
                got += r1.join().unwrap_or(0) + r2.join().unwrap_or(0);
                // Drain what is left so that rounds do not mix.
                let mut buf = [0u8; 64];
                while let Ok(n) = a.try_read(&mut buf) {
                    got += n;
                }
            }
            got
        })
        .unwrap()
    });
    assert_eq!(total, 200 * 8);
}

thread_local! {
    static DRIVEN: std::cell::RefCell<Option<Rc<EventLoop>>> =
        const { std::cell::RefCell::new(None) };
    static TASK_WAKER: std::cell::RefCell<Option<std::task::Waker>> =
        const { std::cell::RefCell::new(None) };
    static NESTED: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A user waker that, when woken, drives the loop in `DRIVEN` again, logs
/// what that did in `NESTED`, then wakes the task in `TASK_WAKER`.
struct DriveTheLoopThenWake;

impl std::task::Wake for DriveTheLoopThenWake {
    fn wake(self: Arc<Self>) {
        let ev = DRIVEN.with(|e| e.borrow().clone()).unwrap();
        let entry = match std::panic::catch_unwind(AssertUnwindSafe(|| ev.run())) {
            Ok(r) => format!("nested run returned {r:?}"),
            Err(payload) => match payload.downcast_ref::<String>() {
                Some(message) => format!("nested run panicked: {message}"),
                None => "nested run panicked".to_owned(),
            },
        };
        NESTED.with(|l| l.borrow_mut().push(entry));
        if let Some(w) = TASK_WAKER.with(|w| w.borrow_mut().take()) {
            w.wake();
        }
    }
}

/// The reactor wakes a socket's user waker after taking the poller's
/// events: driving the same loop from that waker would sleep in the poller
/// for ever (the event is already taken). It panics with a message
/// instead, and the outer run goes on.
#[test]
fn driving_a_loop_from_a_socket_waker_it_is_waking_panics_instead_of_sleeping() {
    use std::future::poll_fn;
    use std::pin::Pin;
    use std::task::{Context, Waker};

    let (got, log) = watchdog("socket waker drives its loop", || {
        let ev = Rc::new(EventLoop::new());
        DRIVEN.with(|e| *e.borrow_mut() = Some(ev.clone()));
        let (a, b) = UnixStream::pair().unwrap();
        let reader = ev.spawn_future(async move {
            let own = Waker::from(Arc::new(DriveTheLoopThenWake));
            let mut buf = [0u8; 1];
            poll_fn(|cx| {
                TASK_WAKER.with(|w| *w.borrow_mut() = Some(cx.waker().clone()));
                let mut cx = Context::from_waker(&own);
                futures_lite::io::AsyncRead::poll_read(Pin::new(&mut &a), &mut cx, &mut buf)
            })
            .await
            .unwrap()
        });
        ev.spawn(move || {
            yield_now();
            (&b).write_all(b"x").unwrap();
        });
        let outer = ev.run();
        DRIVEN.with(|e| e.borrow_mut().take());
        let log = NESTED.with(std::cell::RefCell::take);
        (outer.map(|()| reader.join().unwrap()), log)
    });
    assert_eq!(got.unwrap(), 1);
    assert!(!log.is_empty());
    assert!(
        log.iter().all(|l| l.starts_with("nested run panicked")
            && l.contains("EventLoop::run called while this loop is already being driven")),
        "{log:?}"
    );
}
