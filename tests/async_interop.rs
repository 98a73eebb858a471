//! Calling async libraries from stackful tasks, and awaiting tasks from
//! async code: what the event loop's docs ("Async code") promise.

use std::time::Duration;

use cogen::event_loop::{EventLoop, spawn_future, wait_for, yield_now};

/// A future that needs no runtime of its own (async-channel's) is awaited
/// in place with `wait_for`, woken from another thread.
#[test]
fn a_runtime_free_future_is_awaited_in_place() {
    let ev = EventLoop::new();
    let (tx, rx) = async_channel::bounded::<u32>(1);
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(5));
        tx.send_blocking(7).unwrap();
    });
    let ticker = ev.spawn(|| {
        let mut ticks = 0;
        for _ in 0..3 {
            ticks += 1;
            yield_now();
        }
        ticks
    });
    let got = ev.spawn(move || wait_for(rx.recv()).unwrap());
    ev.run().unwrap();
    assert_eq!(got.join().unwrap(), 7);
    assert_eq!(ticker.join().unwrap(), 3);
}

/// A future that needs tokio's reactor or timers (an async HTTP client, a
/// tokio socket) runs on a tokio runtime on its own thread; the task waits
/// for tokio's `JoinHandle`, which is a future woken from that thread.
#[test]
fn a_tokio_future_runs_on_a_tokio_thread_and_the_task_waits_for_it() {
    // A tokio runtime driven by a thread of its own until told to stop.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let tokio = rt.handle().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let tokio_thread = std::thread::spawn(move || rt.block_on(stopped));
    let ev = EventLoop::new();
    let h = ev.spawn(move || {
        // A tokio listener and client, driven by tokio's reactor.
        let echoed = wait_for(tokio.spawn(async {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            let server = tokio::spawn(async move {
                let (mut s, _) = listener.accept().await?;
                let mut buf = [0; 5];
                s.read_exact(&mut buf).await?;
                s.write_all(&buf).await?;
                Ok::<_, std::io::Error>(())
            });
            let mut c = tokio::net::TcpStream::connect(addr).await?;
            tokio::time::sleep(Duration::from_millis(1)).await;
            c.write_all(b"hello").await?;
            let mut buf = [0; 5];
            c.read_exact(&mut buf).await?;
            server.await??;
            Ok::<_, std::io::Error>(buf)
        }));
        echoed
            .expect("the tokio task ran")
            .expect("the echo worked")
    });
    ev.run().unwrap();
    assert_eq!(&h.join().unwrap(), b"hello");
    stop.send(()).unwrap();
    tokio_thread.join().unwrap().unwrap();
}

/// Async code on the loop (a future task) awaits a stackful task's
/// `JoinHandle`, and a stackful task joins a future task.
#[test]
fn future_tasks_and_stackful_tasks_await_each_other() {
    let ev = EventLoop::new();
    let h = ev.spawn_future(async {
        let stackful = cogen::event_loop::spawn(|| {
            yield_now();
            20
        });
        stackful.await.unwrap() + 1
    });
    let outer = ev.spawn(move || {
        let inner = spawn_future(async { 1 });
        inner.join().unwrap() + h.join().unwrap()
    });
    ev.run().unwrap();
    assert_eq!(outer.join().unwrap(), 22);
}
