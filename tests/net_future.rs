//! Future tasks on sockets: `AsyncRead` / `AsyncWrite` of `TcpStream`,
//! `accept_async` and the UDP `poll_` forms, an echo server of future
//! tasks serving std clients, and what a cancelled or dropped wait leaves
//! behind.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::task::Poll;
use std::thread;
use std::time::Duration;

use cogen::event_loop::net::{TcpListener, TcpStream, UdpSocket};
use cogen::event_loop::{EventLoop, JoinHandle, spawn, spawn_future, yield_now};
use futures_lite::{AsyncReadExt, AsyncWriteExt};

/// One connection, served by a future task: echo until the peer closes.
fn serve(stream: TcpStream) -> JoinHandle<io::Result<usize>> {
    spawn_future(async move {
        let mut buf = vec![0; 4096];
        let mut total = 0;
        loop {
            let n = (&stream).read(&mut buf).await?;
            if n == 0 {
                return Ok(total);
            }
            (&stream).write_all(&buf[..n]).await?;
            total += n;
        }
    })
}

/// A std client on its own thread: `rounds` echoes of `size` bytes.
fn client(addr: SocketAddr, rounds: usize, size: usize) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        let msg: Vec<u8> = (0..size).map(|i| (i * 7) as u8).collect();
        let mut back = vec![0; size];
        for _ in 0..rounds {
            s.write_all(&msg).unwrap();
            s.read_exact(&mut back).unwrap();
            assert_eq!(back, msg);
        }
    })
}

#[test]
fn a_future_echo_server_serves_std_clients() {
    const CLIENTS: usize = 8;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let ev = EventLoop::new();
    let acceptor = ev.spawn_future(async move {
        let mut served = Vec::new();
        while served.len() < CLIENTS {
            let (stream, _) = listener.accept_async().await?;
            served.push(serve(stream));
        }
        io::Result::Ok(served)
    });
    // Big messages (more than a socket buffer) make writes wait too.
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| client(addr, 20, if i % 2 == 0 { 64 } else { 1 << 20 }))
        .collect();
    ev.run().unwrap();
    for c in clients {
        c.join().unwrap();
    }
    let mut totals: Vec<usize> = acceptor
        .join()
        .unwrap()
        .unwrap()
        .into_iter()
        .map(|h| h.join().unwrap().unwrap())
        .collect();
    totals.sort();
    assert_eq!(totals[..CLIENTS / 2], [20 * 64; CLIENTS / 2]);
    assert_eq!(totals[CLIENTS / 2..], [20 << 20; CLIENTS / 2]);
}

#[test]
fn owned_streams_read_and_write_and_close_shuts_the_write_half() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let ev = EventLoop::new();
    let server = ev.spawn_future(async move {
        let (mut stream, _) = listener.accept_async().await?;
        let mut got = Vec::new();
        stream.read_to_end(&mut got).await?;
        stream.write_all(&got).await?;
        stream.close().await?;
        io::Result::Ok(got.len())
    });
    let peer = thread::spawn(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(b"to the end").unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut back = Vec::new();
        s.read_to_end(&mut back).unwrap(); // ends: the server closed
        back
    });
    ev.run().unwrap();
    assert_eq!(server.join().unwrap().unwrap(), 10);
    assert_eq!(peer.join().unwrap(), b"to the end");
}

#[test]
fn udp_poll_forms_wait_in_a_future_task() {
    let ev = EventLoop::new();
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = a.local_addr().unwrap();
    let task = ev.spawn_future(async move {
        let mut buf = [0; 16];
        let (n, from) = poll_fn(|cx| a.poll_recv_from(cx, &mut buf)).await?;
        poll_fn(|cx| a.poll_send_to(cx, &buf[..n], from)).await?;
        io::Result::Ok(buf[..n].to_vec())
    });
    let peer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        b.send_to(b"dgram", to).unwrap();
        let mut buf = [0; 16];
        let (n, from) = b.recv_from(&mut buf).unwrap();
        assert_eq!(from, to);
        buf[..n].to_vec()
    });
    ev.run().unwrap();
    assert_eq!(task.join().unwrap().unwrap(), b"dgram");
    assert_eq!(peer.join().unwrap(), b"dgram");
}

#[test]
fn any_waker_is_woken_by_the_reactor_and_replaced_when_polled_again() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Wake, Waker};

    /// A waker of no executor: counts its wake-ups.
    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        thread::sleep(Duration::from_millis(30));
        io::Write::write_all(&mut s, b"x").unwrap();
        s
    });
    let count = Arc::new(Count(AtomicUsize::new(0)));
    let c = count.clone();
    EventLoop::new()
        .block_on(move || {
            let (stream, _) = listener.accept().unwrap();
            let waker = Waker::from(c.clone());
            let mut cx = Context::from_waker(&waker);
            let mut buf = [0; 4];
            // Polled twice before anything comes: one entry, replaced.
            for _ in 0..2 {
                let polled = futures_lite::AsyncRead::poll_read(
                    std::pin::Pin::new(&mut &stream),
                    &mut cx,
                    &mut buf,
                );
                assert!(polled.is_pending());
            }
            // A stackful task sleeps while the loop waits in its poller.
            while c.0.load(Ordering::SeqCst) == 0 {
                cogen::event_loop::sleep(Duration::from_millis(5));
            }
            let polled = futures_lite::AsyncRead::poll_read(
                std::pin::Pin::new(&mut &stream),
                &mut cx,
                &mut buf,
            );
            assert!(matches!(polled, Poll::Ready(Ok(1))));
        })
        .unwrap();
    assert_eq!(
        count.0.load(Ordering::SeqCst),
        1,
        "woken once, not per poll"
    );
    drop(peer.join().unwrap());
}

#[test]
fn a_cancelled_future_wait_leaves_the_socket_to_another_task() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = thread::spawn(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        let mut b = [0; 1];
        s.read_exact(&mut b).unwrap(); // the go-ahead
        s.write_all(b"late").unwrap();
        s
    });
    let got = EventLoop::new()
        .block_on(move || -> io::Result<Vec<u8>> {
            let (stream, _) = listener.accept()?;
            let stream = Rc::new(stream);
            let s = stream.clone();
            let reader = spawn_future(async move {
                let mut buf = [0; 8];
                (&*s).read(&mut buf).await
            });
            yield_now(); // it parks on the socket
            assert!(!reader.is_finished());
            reader.cancel();
            assert!(reader.is_finished());
            // The stackful forms, named: the async ones are in scope too.
            io::Write::write_all(&mut &*stream, b"!")?;
            let mut got = [0; 4];
            io::Read::read_exact(&mut &*stream, &mut got)?;
            Ok(got.to_vec())
        })
        .unwrap()
        .unwrap();
    assert_eq!(got, b"late");
    drop(peer.join().unwrap());
}

#[test]
fn dropping_a_socket_wakes_the_future_waiting_on_it() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = thread::spawn(move || std::net::TcpStream::connect(addr).unwrap());
    let woken = EventLoop::new()
        .block_on(move || {
            let (stream, _) = listener.accept().unwrap();
            let holder = Rc::new(RefCell::new(Some(stream)));
            let h = holder.clone();
            // Polls a read once (it registers), then reports whether the
            // socket was gone when it was woken.
            let waiter = spawn_future(async move {
                let mut first = true;
                poll_fn(|cx| {
                    let held = h.borrow();
                    let Some(stream) = held.as_ref() else {
                        return Poll::Ready(true);
                    };
                    if !first {
                        return Poll::Ready(false);
                    }
                    first = false;
                    let mut buf = [0; 8];
                    match futures_lite::AsyncRead::poll_read(
                        std::pin::Pin::new(&mut &*stream),
                        cx,
                        &mut buf,
                    ) {
                        Poll::Pending => Poll::Pending,
                        Poll::Ready(_) => Poll::Ready(false),
                    }
                })
                .await
            });
            spawn(move || drop(holder.borrow_mut().take()));
            waiter.join().unwrap()
        })
        .unwrap();
    assert!(woken);
    drop(peer.join().unwrap());
}

#[test]
fn a_future_task_waiting_on_a_socket_is_not_a_deadlock() {
    // The loop has nothing else to do: it must wait in its poller for the
    // peer, not report the future task as stuck.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let ev = EventLoop::new();
    let task = ev.spawn_future(async move {
        let (mut s, _) = listener.accept_async().await?;
        let mut buf = [0; 3];
        s.read_exact(&mut buf).await?;
        io::Result::Ok(buf)
    });
    let peer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(30));
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        thread::sleep(Duration::from_millis(30));
        io::Write::write_all(&mut s, b"abc").unwrap();
    });
    ev.run().unwrap();
    peer.join().unwrap();
    assert_eq!(&task.join().unwrap().unwrap(), b"abc");
}

#[test]
#[should_panic(expected = "outside a task")]
fn a_future_that_must_wait_outside_a_loop_panics() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let _ = listener.poll_accept(&mut cx);
}

#[test]
fn dropping_the_loop_drops_future_tasks_parked_on_sockets_once() {
    use std::cell::Cell;
    /// Counts its drops.
    struct Guard(Rc<Cell<usize>>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }

    let dropped = Rc::new(Cell::new(0));
    let ev = EventLoop::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = thread::spawn(move || std::net::TcpStream::connect(addr).unwrap());
    let (stream, _) = ev.block_on(move || listener.accept().unwrap()).unwrap();
    let guard = Guard(dropped.clone());
    ev.spawn_future(async move {
        let _guard = guard;
        let mut buf = [0; 8];
        (&stream).read(&mut buf).await
    });
    let idle = TcpListener::bind("127.0.0.1:0").unwrap();
    let guard = Guard(dropped.clone());
    ev.spawn_future(async move {
        let _guard = guard;
        idle.accept_async().await.map(drop)
    });
    assert!(ev.try_tick() && ev.try_tick()); // both park
    assert_eq!(dropped.get(), 0);
    drop(ev);
    assert_eq!(dropped.get(), 2);
    drop(peer.join().unwrap());
}

#[test]
fn a_cancelled_future_s_read_does_not_hide_a_deadlock() {
    use std::time::Duration;

    use cogen::event_loop::net::UnixStream;

    // On a thread of its own, so that a hang fails the test instead of
    // stopping it. `true` if `run` reported the deadlock.
    fn run_stuck(with_a_cancelled_read: bool) -> Option<bool> {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let ev = EventLoop::new();
            let (a, b) = UnixStream::pair().unwrap();
            let a = std::rc::Rc::new(a);
            if with_a_cancelled_read {
                let a1 = a.clone();
                let read = ev.spawn_future(async move {
                    let mut buf = [0u8; 8];
                    futures_lite::AsyncReadExt::read(&mut &*a1, &mut buf).await
                });
                ev.spawn(move || {
                    cogen::event_loop::yield_now(); // the read has filed its waker
                    read.cancel();
                });
            }
            let (tx, rx) = cogen::event_loop::channel::<u32>(1);
            let _stuck = ev.spawn(move || {
                let _keep = (tx, a, b); // the socket and the channel stay open
                rx.recv().ok()
            });
            let _ = done_tx.send(ev.run().is_err());
        });
        done_rx.recv_timeout(Duration::from_secs(20)).ok()
    }
    assert_eq!(run_stuck(false), Some(true));
    assert_eq!(
        run_stuck(true),
        Some(true),
        "the loop slept instead of reporting"
    );
}
