//! Stackless tasks on sockets: an echo server of stackless tasks serving
//! std clients, waits in both directions, and what a cancelled or dropped
//! wait leaves behind. Included by `tests/net_stackless.rs` on a nightly
//! compiler only.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::thread;
use std::time::Duration;

use cogen::event_loop::net::{TcpListener, TcpStream, UdpSocket};
use cogen::event_loop::{EventLoop, JoinHandle, Wait, spawn, spawn_stackless};

use super::support::DropCounter;

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

/// One connection, served by a stackless task: echo until the peer closes.
/// Returns the bytes echoed.
fn serve(stream: TcpStream) -> JoinHandle<io::Result<usize>> {
    spawn_stackless(
        #[coroutine]
        move || {
            let mut buf = [0; 1024];
            let mut total = 0;
            loop {
                let n = match stream.try_read(&mut buf) {
                    Ok(0) => return Ok(total),
                    Ok(n) => n,
                    Err(e) if would_block(&e) => {
                        yield Wait::readable(&stream)?;
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                let mut done = 0;
                while done < n {
                    match stream.try_write(&buf[done..n]) {
                        Ok(m) => done += m,
                        Err(e) if would_block(&e) => yield Wait::writable(&stream)?,
                        Err(e) => return Err(e),
                    }
                }
                total += n;
            }
        },
    )
}

/// A std client on its own thread: `rounds` echoes of `size` bytes.
fn client(addr: SocketAddr, rounds: usize, size: usize) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        let msg: Vec<u8> = (0..size).map(|i| i as u8).collect();
        let mut back = vec![0; size];
        for _ in 0..rounds {
            s.write_all(&msg).unwrap();
            s.read_exact(&mut back).unwrap();
            assert_eq!(back, msg);
        }
    })
}

#[test]
fn a_stackless_echo_server_serves_std_clients() {
    const CLIENTS: usize = 8;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let ev = EventLoop::new();
    // The acceptor is stackless too: it spawns a stackless task per
    // connection and returns their handles.
    let acceptor = ev.spawn_stackless(
        #[coroutine]
        move || -> io::Result<Vec<JoinHandle<io::Result<usize>>>> {
            let mut served = Vec::new();
            while served.len() < CLIENTS {
                match listener.try_accept() {
                    Ok((stream, _)) => served.push(serve(stream)),
                    Err(e) if would_block(&e) => yield Wait::readable(&listener)?,
                    Err(e) => return Err(e),
                }
            }
            Ok(served)
        },
    );
    // Big messages (more than a socket buffer) make writes wait too.
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| client(addr, 20, if i % 2 == 0 { 16 } else { 1 << 20 }))
        .collect();
    ev.run().unwrap();
    for c in clients {
        c.join().unwrap();
    }
    let served = acceptor.join().unwrap().unwrap();
    let mut totals: Vec<usize> = served
        .into_iter()
        .map(|h| h.join().unwrap().unwrap())
        .collect();
    totals.sort();
    assert_eq!(totals[..CLIENTS / 2], [20 * 16; CLIENTS / 2]);
    assert_eq!(totals[CLIENTS / 2..], [20 << 20; CLIENTS / 2]);
}

#[test]
fn udp_receives_wait_in_a_stackless_task() {
    let ev = EventLoop::new();
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = a.local_addr().unwrap();
    let receiver = ev.spawn_stackless(
        #[coroutine]
        move || -> io::Result<Vec<u8>> {
            let mut buf = [0; 16];
            loop {
                match a.try_recv_from(&mut buf) {
                    Ok((n, _)) => return Ok(buf[..n].to_vec()),
                    Err(e) if would_block(&e) => yield Wait::readable(&a)?,
                    Err(e) => return Err(e),
                }
            }
        },
    );
    let sender = thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        b.send_to(b"dgram", to).unwrap();
    });
    ev.run().unwrap();
    sender.join().unwrap();
    assert_eq!(receiver.join().unwrap().unwrap(), b"dgram");
}

#[test]
fn a_cancelled_stackless_wait_is_dropped_and_the_socket_serves_another_task() {
    let ev = EventLoop::new();
    let drops = DropCounter::new();
    let token = drops.token();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        let mut b = [0; 1];
        // Waits for the go-ahead before sending.
        s.read_exact(&mut b).unwrap();
        s.write_all(b"late").unwrap();
        s
    });
    let got = ev
        .block_on(move || -> io::Result<Vec<u8>> {
            let (stream, _) = listener.accept()?;
            let stream = Rc::new(stream);
            let s = stream.clone();
            let waiter = spawn_stackless(
                #[coroutine]
                move || {
                    let _token = token;
                    loop {
                        match s.try_read(&mut [0; 8]) {
                            Err(e) if would_block(&e) => {}
                            other => return other.map(drop),
                        }
                        yield Wait::readable(&*s)?;
                    }
                },
            );
            cogen::event_loop::yield_now(); // it parks on the socket
            assert!(!waiter.is_finished());
            waiter.cancel();
            // Cancelled: its coroutine (and what it held) is dropped now,
            // though its entry stays among the socket's waiters.
            assert!(waiter.is_finished());
            assert_eq!(drops.count(), 1);
            // A stackful task reads the socket next; the stale entry wakes
            // nobody.
            (&*stream).write_all(b"!")?;
            let mut got = [0; 4];
            (&*stream).read_exact(&mut got)?;
            Ok(got.to_vec())
        })
        .unwrap()
        .unwrap();
    assert_eq!(got, b"late");
    drop(peer.join().unwrap());
}

#[test]
fn dropping_a_socket_wakes_the_stackless_task_waiting_on_it() {
    let ev = EventLoop::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = thread::spawn(move || std::net::TcpStream::connect(addr).unwrap());
    let outcome = ev
        .block_on(move || {
            let (stream, _) = listener.accept().unwrap();
            let holder = Rc::new(std::cell::RefCell::new(Some(stream)));
            let h = holder.clone();
            // Waits on a socket it does not own: another task drops it.
            let waiter = spawn_stackless(
                #[coroutine]
                move || {
                    let wait = {
                        let s = h.borrow();
                        let s = s.as_ref().unwrap();
                        assert!(would_block(&s.try_read(&mut [0; 8]).unwrap_err()));
                        Wait::readable(s).unwrap()
                    };
                    yield wait;
                    // Woken by the drop: the socket is gone.
                    h.borrow().is_none()
                },
            );
            spawn(move || drop(holder.borrow_mut().take()));
            waiter.join().unwrap()
        })
        .unwrap();
    assert!(outcome);
    drop(peer.join().unwrap());
}

#[test]
fn a_wait_made_for_a_socket_dropped_before_it_is_yielded_retries_at_once() {
    let ev = EventLoop::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let task = ev.spawn_stackless(
        #[coroutine]
        move || {
            let wait = Wait::readable(&listener).unwrap();
            drop(listener);
            // Another socket takes the freed slot: the wait must not land
            // among its waiters.
            let other = UdpSocket::bind("127.0.0.1:0").unwrap();
            let _ = Wait::readable(&other).unwrap();
            yield wait;
            "retried"
        },
    );
    ev.run().unwrap();
    assert_eq!(task.join().unwrap(), "retried");
}

#[test]
#[should_panic(expected = "outside a task")]
fn a_wait_outside_a_task_panics() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let _ = Wait::readable(&listener);
}

#[test]
fn a_stackless_task_reads_a_unix_socket_pair() {
    use cogen::event_loop::net::UnixStream;
    let (a, b) = UnixStream::pair().unwrap();
    let ev = EventLoop::new();
    let reader = ev.spawn_stackless(
        #[coroutine]
        move || -> io::Result<Vec<u8>> {
            let mut got = Vec::new();
            let mut buf = [0; 4096];
            loop {
                match b.try_read(&mut buf) {
                    Ok(0) => return Ok(got),
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) if would_block(&e) => yield Wait::readable(&b)?,
                    Err(e) => return Err(e),
                }
            }
        },
    );
    ev.spawn(move || (&a).write_all(&[5u8; 300_000]).unwrap());
    ev.run().unwrap();
    assert_eq!(reader.join().unwrap().unwrap(), vec![5u8; 300_000]);
}

#[test]
fn dropping_the_loop_drops_stackless_tasks_parked_on_sockets_once() {
    let drops = DropCounter::new();
    let ev = EventLoop::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = thread::spawn(move || std::net::TcpStream::connect(addr).unwrap());
    let (stream, _) = ev.block_on(move || listener.accept().unwrap()).unwrap();
    let (reader, acceptor) = (drops.token(), drops.token());
    ev.spawn_stackless(
        #[coroutine]
        move || {
            let _token = reader;
            loop {
                match stream.try_read(&mut [0; 8]) {
                    Err(e) if would_block(&e) => yield Wait::readable(&stream).unwrap(),
                    _ => return,
                }
            }
        },
    );
    let idle = TcpListener::bind("127.0.0.1:0").unwrap();
    ev.spawn_stackless(
        #[coroutine]
        move || {
            let _token = acceptor;
            loop {
                match idle.try_accept() {
                    Err(e) if would_block(&e) => yield Wait::readable(&idle).unwrap(),
                    _ => return,
                }
            }
        },
    );
    // Both park; the loop has nothing else to do but wait for the peers.
    assert!(ev.try_tick() && ev.try_tick());
    assert_eq!(drops.count(), 0);
    // Dropping the loop cancels them: each coroutine (and the socket it
    // owns, deregistering it) is dropped once.
    drop(ev);
    assert_eq!(drops.count(), 2);
    drop(peer.join().unwrap());
}

#[test]
fn a_drained_socket_reads_again_once_its_loop_is_gone() {
    let (stream, peer) = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (s, _) = listener.accept().unwrap();
        (TcpStream::try_from(s).unwrap(), peer)
    };
    let writer = thread::spawn(move || {
        let mut peer = peer;
        thread::sleep(Duration::from_millis(20));
        peer.write_all(b"ab").unwrap();
        peer
    });
    let ev = EventLoop::new();
    let stream = ev
        .block_on(move || {
            let mut buf = [0; 8];
            // Waits (registering the socket), then a short read: the
            // socket is drained.
            assert_eq!(Read::read(&mut &stream, &mut buf).unwrap(), 2);
            stream
        })
        .unwrap();
    drop(ev);
    let mut peer = writer.join().unwrap();
    peer.write_all(b"cd").unwrap();
    thread::sleep(Duration::from_millis(20));
    // No loop, no poller to report the new bytes: the hint of the loop
    // that is gone must not make this say `WouldBlock`.
    let mut buf = [0; 8];
    assert_eq!(stream.try_read(&mut buf).unwrap(), 2);
    assert_eq!(&buf[..2], b"cd");
}

#[test]
fn a_wait_made_in_another_loop_fails_the_task_that_yields_it() {
    use std::cell::RefCell;
    use std::rc::Rc;

    let (a, _peer) = std::os::unix::net::UnixStream::pair().unwrap();
    let a = Rc::new(cogen::event_loop::net::UnixStream::try_from(a).unwrap());
    let loop_a = EventLoop::new();
    let a1 = a.clone();
    // Made in loop A, which registers the socket there and stays alive.
    let wait = loop_a
        .block_on(move || Wait::readable(&*a1).unwrap())
        .unwrap();
    let wait = RefCell::new(Some(wait));
    let loop_b = EventLoop::new();
    let task = loop_b.spawn_stackless(
        #[coroutine]
        move || {
            let w = wait.borrow_mut().take().unwrap();
            yield w; // loop B never polls loop A's reactor
        },
    );
    let _ = loop_b.run();
    let error = task.join().unwrap_err();
    let message = error.panic().unwrap().message().to_string();
    assert!(message.contains("another event loop"), "{message}");
    drop(loop_a);
}
