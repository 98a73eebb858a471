//! Sockets (`event_loop::net`) against real clients: std sockets on other
//! threads. Echo round trips, time limits, back-pressure, half-close,
//! running out of descriptors, cancellation and drop of parked tasks, UDP,
//! and the deadlock detector's view of socket waits.

use std::cell::Cell;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::thread;
use std::time::Duration;

use cogen::event_loop::net::{TcpListener, TcpStream, UdpSocket};
use cogen::event_loop::{EventLoop, channel, sleep, spawn, timeout, wait_for, yield_now};

mod support;
use support::DropCounter;

/// A time limit used as behaviour (never as a measurement): long enough
/// for a loaded machine, short enough to keep the tests quick.
const LIMIT: Duration = Duration::from_millis(300);

/// Echoes every byte back until the peer closes; returns the bytes echoed.
fn echo(stream: &TcpStream) -> io::Result<usize> {
    let mut buf = [0; 1024];
    let mut total = 0;
    loop {
        let n = (&*stream).read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        (&*stream).write_all(&buf[..n])?;
        total += n;
    }
}

/// A std client on its own thread: connects, sends `rounds` messages,
/// checks each echo, then closes. Returns the bytes it got back.
fn echo_client(addr: SocketAddr, id: usize, rounds: usize) -> thread::JoinHandle<usize> {
    thread::spawn(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        let mut total = 0;
        for round in 0..rounds {
            let msg = format!("client {id} round {round}\n");
            stream.write_all(msg.as_bytes()).unwrap();
            let mut back = vec![0; msg.len()];
            stream.read_exact(&mut back).unwrap();
            assert_eq!(back, msg.as_bytes());
            total += back.len();
        }
        total
    })
}

/// Serves `clients` echo clients on one loop, one task per connection,
/// and checks every byte came back.
fn echo_round_trips(clients: usize, rounds: usize) {
    let ev = EventLoop::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let threads: Vec<_> = (0..clients)
        .map(|id| echo_client(addr, id, rounds))
        .collect();
    let served = ev
        .block_on(move || {
            let handles: Vec<_> = (0..clients)
                .map(|_| {
                    let (stream, _) = listener.accept().unwrap();
                    spawn(move || echo(&stream).unwrap())
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .sum::<usize>()
        })
        .unwrap();
    let received: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(served, received);
    assert!(ev.is_empty());
}

#[test]
fn echo_one_connection() {
    echo_round_trips(1, 50);
}

#[test]
fn echo_a_hundred_concurrent_connections_on_one_loop() {
    echo_round_trips(100, 10);
}

#[test]
fn buffered_line_reading_and_io_copy_work_unchanged() {
    let ev = EventLoop::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = thread::spawn(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.write_all(b"first line\nsecond line\n").unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let mut back = String::new();
        stream.read_to_string(&mut back).unwrap();
        back
    });
    ev.block_on(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(&stream);
        let mut first = String::new();
        reader.read_line(&mut first).unwrap();
        assert_eq!(first, "first line\n");
        (&stream)
            .write_all(first.to_uppercase().as_bytes())
            .unwrap();
        // The rest, copied as it comes until the client's end of stream.
        io::copy(&mut reader, &mut &stream).unwrap();
    })
    .unwrap();
    assert_eq!(client.join().unwrap(), "FIRST LINE\nsecond line\n");
}

#[test]
fn a_silent_client_is_closed_by_the_read_timeout_while_others_are_served() {
    let ev = EventLoop::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // The silent client connects first and sends nothing; it sees the
    // server close the connection.
    let silent = thread::spawn(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).unwrap();
        rest.len()
    });
    let (results, active) = ev
        .block_on(move || {
            let (first, _) = listener.accept().unwrap();
            first.set_read_timeout(Some(LIMIT)).unwrap();
            assert_eq!(first.read_timeout(), Some(LIMIT));
            let silent_task = spawn(move || echo(&first).map_err(|e| e.kind()));
            // Only now is the busy client started: it is served while the
            // silent one is parked.
            let active = echo_client(addr, 1, 20);
            let (second, _) = listener.accept().unwrap();
            second.set_read_timeout(Some(LIMIT * 10)).unwrap();
            let active_task = spawn(move || echo(&second).map_err(|e| e.kind()));
            let results = (silent_task.join().unwrap(), active_task.join().unwrap());
            (results, active)
        })
        .unwrap();
    assert_eq!(results.0, Err(io::ErrorKind::TimedOut));
    let echoed = active.join().unwrap();
    assert_eq!(results.1, Ok(echoed));
    assert_eq!(silent.join().unwrap(), 0, "the silent client got nothing");
}

#[test]
fn an_idle_limit_counts_from_each_read_and_fires_once_the_client_goes_quiet() {
    // Each read's limit starts with that read: a client that sends within
    // the limit every time is never cut off, however long it goes on, and
    // one that stops is cut off one limit after the last read began.
    let ev = EventLoop::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // Far more than the gaps between the client's bytes, even on a loaded
    // machine; and the bytes go on past it.
    let limit = Duration::from_millis(400);
    let client = thread::spawn(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        // Five bytes, 100 ms apart: 500 ms in all, past one limit.
        for b in 0..5u8 {
            thread::sleep(Duration::from_millis(100));
            stream.write_all(&[b]).unwrap();
        }
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).unwrap();
    });
    let (got, error, waited) = ev
        .block_on(move || {
            let (stream, _) = listener.accept().unwrap();
            stream.set_read_timeout(Some(limit)).unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 16];
            loop {
                let start = std::time::Instant::now();
                match (&stream).read(&mut buf) {
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) => break (got, e.kind(), start.elapsed()),
                }
            }
        })
        .unwrap();
    assert_eq!(got, [0, 1, 2, 3, 4]);
    assert_eq!(error, io::ErrorKind::TimedOut);
    assert!(waited >= limit, "cut off after {waited:?}");
    client.join().unwrap();
}

#[test]
fn writes_park_when_the_peer_stops_reading_and_the_write_timeout_fires() {
    let ev = EventLoop::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    // Connects, then reads nothing until told to, then drains everything.
    let lazy = thread::spawn(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stop_rx.recv().unwrap();
        let mut sink = Vec::new();
        stream.read_to_end(&mut sink).unwrap();
        sink.len()
    });
    let others_ran = Rc::new(Cell::new(0u32));
    let ran = others_ran.clone();
    let (written, error) = ev
        .block_on(move || {
            // A task that keeps running while the writer is parked.
            let ticker = spawn(move || {
                loop {
                    ran.set(ran.get() + 1);
                    sleep(Duration::from_millis(5));
                }
            });
            let (stream, _) = listener.accept().unwrap();
            stream.set_write_timeout(Some(LIMIT)).unwrap();
            let chunk = vec![7u8; 64 * 1024];
            let mut written = 0usize;
            let error = loop {
                match (&stream).write(&chunk) {
                    Ok(n) => written += n,
                    Err(e) => break e,
                }
                // Far more than any socket buffers: the writes must park.
                assert!(written < 256 << 20, "writes never parked");
            };
            ticker.cancel();
            drop(stream);
            (written, error)
        })
        .unwrap();
    assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    assert!(written > 0);
    assert!(others_ran.get() > 0, "the loop ran other tasks meanwhile");
    stop_tx.send(()).unwrap();
    // Everything written before the time limit reaches the peer.
    assert_eq!(lazy.join().unwrap(), written);
}

#[test]
fn half_close_is_seen_as_end_of_stream() {
    let ev = EventLoop::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // The std client half-closes; the cogen server sees EOF, then answers.
    let client = thread::spawn(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.write_all(b"question").unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    });
    let got = ev
        .block_on(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut question = String::new();
            stream.read_to_string(&mut question).unwrap(); // returns at EOF
            stream.write_all(b"answer").unwrap();
            question
        })
        .unwrap();
    assert_eq!(got, "question");
    assert_eq!(client.join().unwrap(), "answer");

    // The other way round: the cogen client half-closes.
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    let peer = thread::spawn(move || {
        let (mut stream, _) = server.accept().unwrap();
        let mut question = String::new();
        stream.read_to_string(&mut question).unwrap();
        stream
            .write_all(question.to_uppercase().as_bytes())
            .unwrap();
    });
    let answer = ev
        .block_on(move || {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream.write_all(b"shout").unwrap();
            stream.shutdown(Shutdown::Write).unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).unwrap();
            answer
        })
        .unwrap();
    peer.join().unwrap();
    assert_eq!(answer, "SHOUT");
}

#[test]
fn one_task_reads_while_another_writes_the_same_connection() {
    let ev = EventLoop::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    const N: usize = 4 << 20;
    // The peer sends N bytes and reads N bytes at the same time (each
    // side's buffers fill up, so both directions have to wait).
    let peer = thread::spawn(move || {
        let stream = std::net::TcpStream::connect(addr).unwrap();
        let mut reader = stream.try_clone().unwrap();
        let sender = thread::spawn(move || (&stream).write_all(&vec![1u8; N]).unwrap());
        let mut got = 0;
        let mut buf = [0; 65536];
        while got < N {
            let n = reader.read(&mut buf).unwrap();
            assert!(n > 0);
            got += n;
        }
        sender.join().unwrap();
        got
    });
    let (read, written) = ev
        .block_on(move || {
            let (stream, _) = listener.accept().unwrap();
            let stream = Rc::new(stream);
            let r = stream.clone();
            let reader = spawn(move || {
                let mut buf = [0; 65536];
                let mut got = 0;
                while got < N {
                    got += (&*r).read(&mut buf).unwrap();
                }
                got
            });
            let w = stream.clone();
            let writer = spawn(move || {
                (&*w).write_all(&vec![2u8; N]).unwrap();
                N
            });
            (reader.join().unwrap(), writer.join().unwrap())
        })
        .unwrap();
    assert_eq!((read, written), (N, N));
    assert_eq!(peer.join().unwrap(), N);
}

/// `accept` under `EMFILE`: run in a child process (this same test binary,
/// this test only), because lowering the descriptor limit in the test
/// process would break the tests running beside it.
#[test]
fn accept_keeps_going_when_out_of_descriptors() {
    support::in_child_process(
        "accept_keeps_going_when_out_of_descriptors",
        "COGEN_NET_EMFILE_CHILD",
        "emfile: served again",
        accept_under_emfile,
    );
}

/// The child's part: use up every descriptor, see `accept` fail with
/// `EMFILE` without harm, free one, and serve again.
fn accept_under_emfile() {
    let ev = EventLoop::new();
    ev.block_on(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // Waits once, so that the poller exists before descriptors run out.
        let waited = listener.accept_timeout(Duration::from_millis(1));
        assert_eq!(waited.unwrap_err().kind(), io::ErrorKind::TimedOut);
        // Two clients wait in the backlog (a connect to a listening socket
        // completes without an accept).
        let first = std::net::TcpStream::connect(addr).unwrap();
        let second = std::net::TcpStream::connect(addr).unwrap();
        // No descriptor left: the limit is the lowest free one.
        // SAFETY: plain system calls with valid arguments.
        let lowest_free = unsafe {
            let fd = libc::dup(0);
            assert!(fd >= 0);
            libc::close(fd);
            fd
        };
        let mut limit: libc::rlimit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: as above; `limit` is a valid out-pointer.
        unsafe {
            assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
            limit.rlim_cur = lowest_free as libc::rlim_t;
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        }
        for _ in 0..3 {
            let err = listener.accept().unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EMFILE), "{err}");
        }
        // A task can still wait on the listener meanwhile without a new
        // descriptor; freeing one lets the pending connection in.
        drop(second);
        let (stream, _) = listener.accept().unwrap();
        let talker = thread::spawn(move || {
            let mut first = first;
            first.write_all(b"ping").unwrap();
            let mut back = [0; 4];
            first.read_exact(&mut back).unwrap();
            back
        });
        let mut buf = [0; 4];
        (&stream).read_exact(&mut buf).unwrap();
        (&stream).write_all(&buf).unwrap();
        assert_eq!(&talker.join().unwrap(), b"ping");
        println!("emfile: served again");
    })
    .unwrap();
}

#[test]
fn a_cancelled_reader_leaves_the_socket_to_another_task() {
    let ev = EventLoop::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let client = thread::spawn(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        go_rx.recv().unwrap();
        stream.write_all(b"for the second reader").unwrap();
    });
    let drops = DropCounter::new();
    let token = drops.token();
    let got = ev
        .block_on(move || {
            let (stream, _) = listener.accept().unwrap();
            let stream = Rc::new(stream);
            let s = stream.clone();
            let first = spawn(move || {
                let _token = token;
                let mut buf = [0; 64];
                (&*s).read(&mut buf).unwrap()
            });
            yield_now(); // `first` parks in `read`
            first.cancel();
            assert!(first.join().unwrap_err().is_cancelled());
            go_tx.send(()).unwrap();
            let mut text = String::new();
            (&*stream).read_to_string(&mut text).unwrap();
            text
        })
        .unwrap();
    assert_eq!(got, "for the second reader");
    assert_eq!(drops.count(), 1);
    client.join().unwrap();
}

#[test]
fn dropping_the_loop_unwinds_tasks_parked_on_sockets() {
    let drops = DropCounter::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = thread::spawn(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        // The server never answers; dropping its loop closes the socket.
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).unwrap();
        rest.len()
    });
    let ev = EventLoop::new();
    let (reader_token, acceptor_token) = (drops.token(), drops.token());
    let accepted = Rc::new(Cell::new(false));
    let flag = accepted.clone();
    ev.spawn(move || {
        let _token = reader_token;
        let (stream, _) = listener.accept().unwrap();
        flag.set(true);
        // Parks for good: the client sends nothing.
        let mut buf = [0; 16];
        let _ = (&stream).read(&mut buf);
        unreachable!("the client sent nothing");
    });
    let other = TcpListener::bind("127.0.0.1:0").unwrap();
    ev.spawn(move || {
        let _token = acceptor_token;
        let _ = other.accept(); // nobody connects
        unreachable!("nobody connects");
    });
    while !accepted.get() {
        ev.try_tick();
    }
    while ev.try_tick() {}
    assert_eq!((drops.count(), ev.len()), (0, 2));
    drop(ev);
    assert_eq!(drops.count(), 2, "each parked task unwound once");
    assert_eq!(client.join().unwrap(), 0, "the client saw the socket close");
}

#[test]
fn udp_round_trip() {
    let ev = EventLoop::new();
    // A std peer echoes datagrams on its thread.
    let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let peer_addr = peer.local_addr().unwrap();
    let echo_peer = thread::spawn(move || {
        let mut buf = [0; 64];
        for _ in 0..2 {
            let (n, from) = peer.recv_from(&mut buf).unwrap();
            peer.send_to(&buf[..n], from).unwrap();
        }
    });
    let (a, b) = ev
        .block_on(move || {
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            socket.send_to(b"one", peer_addr).unwrap();
            let mut buf = [0; 64];
            let (n, from) = socket.recv_from(&mut buf).unwrap();
            assert_eq!(from, peer_addr);
            let a = buf[..n].to_vec();
            socket.connect(peer_addr).unwrap();
            assert_eq!(socket.peer_addr().unwrap(), peer_addr);
            socket.send(b"two").unwrap();
            let n = socket.recv(&mut buf).unwrap();
            (a, buf[..n].to_vec())
        })
        .unwrap();
    echo_peer.join().unwrap();
    assert_eq!((a.as_slice(), b.as_slice()), (&b"one"[..], &b"two"[..]));
}

#[test]
fn udp_between_two_tasks_and_its_receive_timeout() {
    let ev = EventLoop::new();
    let got = ev
        .block_on(|| {
            let a = UdpSocket::bind("127.0.0.1:0").unwrap();
            let b = UdpSocket::bind("127.0.0.1:0").unwrap();
            let b_addr = b.local_addr().unwrap();
            let receiver = spawn(move || {
                let mut buf = [0; 16];
                let (n, _) = b.recv_from(&mut buf).unwrap(); // parks first
                b.set_read_timeout(Some(LIMIT)).unwrap();
                let late = b.recv_from(&mut buf).unwrap_err();
                (buf[..n].to_vec(), late.kind())
            });
            yield_now();
            a.send_to(b"hi", b_addr).unwrap();
            receiver.join().unwrap()
        })
        .unwrap();
    assert_eq!(got, (b"hi".to_vec(), io::ErrorKind::TimedOut));
}

#[test]
fn a_task_waiting_on_a_socket_is_not_a_deadlock() {
    let ev = EventLoop::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = channel::<u32>(1);
    let client = thread::spawn(move || {
        thread::sleep(LIMIT); // the loop has nothing else to do meanwhile
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.write_all(b"late").unwrap();
    });
    // Besides the socket wait, a task that really is stuck (nobody sends).
    let stuck = ev.spawn(move || rx.recv());
    let got = ev
        .block_on(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut got = String::new();
            stream.read_to_string(&mut got).unwrap();
            got
        })
        .unwrap();
    assert_eq!(got, "late");
    client.join().unwrap();
    // With the socket wait over, the stuck task is reported as before.
    let err = ev.run().unwrap_err();
    assert!(err.is_deadlock());
    drop((tx, stuck));
}

#[test]
fn wake_ups_from_other_threads_reach_a_loop_waiting_in_its_poller() {
    let ev = EventLoop::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    ev.block_on(move || {
        // The poller exists and the loop waits in it: a task is parked on a
        // socket, and nothing else is runnable.
        let acceptor = spawn(move || listener.accept().map(|_| ()));
        yield_now();
        // This future is woken from another thread, which must wake the
        // loop out of its poller wait.
        let (tx, rx) = std::sync::mpsc::channel::<std::task::Waker>();
        let woken = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = woken.clone();
        let waker_thread = thread::spawn(move || {
            let waker = rx.recv().unwrap();
            thread::sleep(Duration::from_millis(20));
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
            waker.wake();
        });
        let mut tx = Some(tx);
        wait_for(std::future::poll_fn(|cx| {
            if woken.load(std::sync::atomic::Ordering::SeqCst) {
                std::task::Poll::Ready(())
            } else {
                if let Some(tx) = tx.take() {
                    tx.send(cx.waker().clone()).unwrap();
                }
                std::task::Poll::Pending
            }
        }));
        waker_thread.join().unwrap();
        acceptor.cancel();
    })
    .unwrap();
}

#[test]
fn connect_reports_a_refused_connection() {
    // A port with no listener: bind one, note its address, close it.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let ev = EventLoop::new();
    let err = ev
        .block_on(move || TcpStream::connect(addr).unwrap_err())
        .unwrap();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
}

#[test]
fn conversions_to_and_from_std_sockets() {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = std_listener.local_addr().unwrap();
    let listener = TcpListener::try_from(std_listener).unwrap();
    let client = thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(b"abc").unwrap();
        let mut back = [0; 3];
        s.read_exact(&mut back).unwrap();
        back
    });
    let ev = EventLoop::new();
    let (listener, stream) = ev
        .block_on(move || {
            let (stream, peer) = listener.accept().unwrap();
            assert_eq!(stream.peer_addr().unwrap(), peer);
            stream.set_nodelay(true).unwrap();
            assert!(stream.nodelay().unwrap());
            let mut buf = [0; 3];
            (&stream).read_exact(&mut buf).unwrap(); // registers and waits
            (listener, stream)
        })
        .unwrap();
    // Back to std, blocking again, usable without any loop.
    let mut stream = stream.into_std().unwrap();
    stream.write_all(b"xyz").unwrap();
    assert_eq!(&client.join().unwrap(), b"xyz");
    let listener: std::net::TcpListener = listener.try_into().unwrap();
    assert_eq!(listener.local_addr().unwrap(), addr);
    // And a std stream into a cogen one.
    let client = thread::spawn(move || std::net::TcpStream::connect(addr).unwrap());
    let (server_side, _) = listener.accept().unwrap();
    let mut client_side = client.join().unwrap();
    let server_side = TcpStream::try_from(server_side).unwrap();
    client_side.write_all(b"!").unwrap();
    let got = EventLoop::new()
        .block_on(move || {
            let mut b = [0; 1];
            (&server_side).read_exact(&mut b).unwrap();
            b[0]
        })
        .unwrap();
    assert_eq!(got, b'!');
}

#[test]
fn a_socket_outlives_its_loop_and_waits_in_the_next_one() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let listener = Rc::new(listener);
    for round in 0..2 {
        let client = thread::spawn(move || {
            thread::sleep(Duration::from_millis(10));
            std::net::TcpStream::connect(addr).unwrap()
        });
        let l = listener.clone();
        let ev = EventLoop::new();
        ev.block_on(move || l.accept().map(|_| ()).unwrap())
            .unwrap();
        drop(ev);
        drop(client.join().unwrap());
        let _ = round;
    }
}

/// A socket stays with the first loop it waited in while that loop exists:
/// a wait in a second loop (the first one alive, only not running) panics
/// and says why, rather than filing the task with the wrong reactor; once
/// the first loop is gone, the second one takes the socket.
#[test]
fn a_socket_waits_only_in_its_first_loop_while_that_loop_exists() {
    let listener = Rc::new(TcpListener::bind("127.0.0.1:0").unwrap());
    let addr = listener.local_addr().unwrap();
    // One connection accepted by a task of `ev` that waits for it (so that
    // the listener registers with `ev`): the client connects only once the
    // accepting task has parked.
    let accept_in = |ev: &EventLoop| {
        let l = listener.clone();
        ev.block_on(move || {
            let accepting = spawn(move || l.accept().map(|_| ()).unwrap());
            yield_now();
            let client = std::net::TcpStream::connect(addr).unwrap();
            accepting.join().unwrap();
            client
        })
        .unwrap();
    };
    let first = EventLoop::new();
    accept_in(&first);
    let second = EventLoop::new();
    let l = listener.clone();
    let error = second
        .block_on(move || spawn(move || l.accept().map(|_| ())).join().unwrap_err())
        .unwrap();
    let message = error.into_panic();
    let message = message.downcast_ref::<String>().unwrap();
    assert!(
        message.contains("net::TcpListener::accept: the socket waits in another event loop"),
        "{message}"
    );
    drop(first);
    accept_in(&second);
}

#[test]
fn waiting_functions_panic_outside_a_stackful_task() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = listener.accept();
    }))
    .unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(
        msg.contains("net::TcpListener::accept called outside a task"),
        "{msg}"
    );
    // In a future task: it says why too.
    let ev = EventLoop::new();
    let h = ev.spawn_future(async move {
        let _ = listener.accept();
    });
    ev.run().unwrap();
    let msg = h.join().unwrap_err().into_panic();
    let msg = msg.downcast_ref::<String>().unwrap();
    assert!(msg.contains("only stackful tasks can wait"), "{msg}");
}

#[test]
fn zero_time_limits_are_rejected_like_std() {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    assert_eq!(
        socket
            .set_read_timeout(Some(Duration::ZERO))
            .unwrap_err()
            .kind(),
        io::ErrorKind::InvalidInput
    );
    assert_eq!(socket.read_timeout(), None);
}

#[test]
fn a_general_timeout_cuts_a_socket_wait_short_and_leaves_the_socket_usable() {
    let ev = EventLoop::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let client = thread::spawn(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        go_rx.recv().unwrap();
        stream.write_all(b"later").unwrap();
    });
    let got = ev
        .block_on(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut buf = [0; 16];
            let cut = timeout(Duration::from_millis(20), || (&stream).read(&mut buf));
            assert!(cut.is_err());
            go_tx.send(()).unwrap();
            let mut text = String::new();
            (&stream).read_to_string(&mut text).unwrap();
            text
        })
        .unwrap();
    assert_eq!(got, "later");
    client.join().unwrap();
}

/// Raises this process's soft limit on open descriptors to its hard limit
/// and returns how many connections fit in it, at most `wanted` (one
/// descriptor each, and some kept for the rest of the process).
fn connections_that_fit(wanted: usize) -> usize {
    const SPARE: usize = 256;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls; `limit` is a valid out-pointer.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
    let fit = usize::try_from(limit.rlim_cur)
        .unwrap_or(usize::MAX)
        .saturating_sub(SPARE);
    if fit < wanted {
        println!(
            "RLIMIT_NOFILE's hard limit is {}: {fit} connections instead of {wanted}",
            limit.rlim_max
        );
    }
    fit.min(wanted)
}

/// Set in the client process of [`many_idle_connections`]: `ADDR N ROUNDS`.
const MANY_CLIENT: &str = "COGEN_NET_MANY_CLIENT";

/// `n` connections open at once on one loop, one task each. The clients
/// are in a child process (this test binary, running `test` with
/// [`MANY_CLIENT`] set), so that each process needs one descriptor per
/// connection: it connects them all, then, `rounds` times, writes a
/// message on every connection before it reads any echo, and checks every
/// echo. So every task is parked in `read` at once, with all `n` sockets
/// waiting in the reactor.
fn many_idle_connections(test: &str, wanted: usize, rounds: usize) {
    if let Ok(args) = std::env::var(MANY_CLIENT) {
        many_clients(&args);
        return;
    }
    let n = connections_that_fit(wanted);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = std::process::Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--include-ignored"])
        .env(MANY_CLIENT, format!("{addr} {n} {rounds}"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let ev = EventLoop::new();
    let served = ev
        .block_on(move || {
            let tasks: Vec<_> = (0..n)
                .map(|_| {
                    let (stream, _) = listener.accept().unwrap();
                    spawn(move || echo(&stream).unwrap())
                })
                .collect();
            tasks.into_iter().map(|t| t.join().unwrap()).sum::<usize>()
        })
        .unwrap();
    let out = client.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the client process failed:\n{said}");
    assert!(
        said.contains(&format!("many: {n} echoes checked")),
        "{said}"
    );
    // Every byte of every round came back: 8 digits, '/', the round, '\n'.
    let per_round: usize = (0..rounds).map(|r| 10 + r.to_string().len()).sum();
    assert_eq!(served, n * per_round);
    println!("{n} connections at once, {rounds} rounds, every echo checked");
}

/// The client process's part of [`many_idle_connections`].
fn many_clients(args: &str) {
    let mut args = args.split(' ');
    let addr: SocketAddr = args.next().unwrap().parse().unwrap();
    let n: usize = args.next().unwrap().parse().unwrap();
    let rounds: usize = args.next().unwrap().parse().unwrap();
    assert_eq!(connections_that_fit(n), n);
    let mut streams: Vec<std::net::TcpStream> = (0..n)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    for round in 0..rounds {
        for (i, s) in streams.iter_mut().enumerate() {
            s.write_all(format!("{i:>8}/{round}\n").as_bytes()).unwrap();
        }
        for (i, s) in streams.iter_mut().enumerate() {
            let want = format!("{i:>8}/{round}\n");
            let mut back = vec![0; want.len()];
            s.read_exact(&mut back).unwrap();
            assert_eq!(back, want.as_bytes(), "connection {i}, round {round}");
        }
    }
    println!("many: {n} echoes checked");
    // Dropping the streams closes every connection: the server's tasks end.
}

#[test]
fn five_hundred_connections_at_once_on_one_loop() {
    many_idle_connections("five_hundred_connections_at_once_on_one_loop", 500, 3);
}

/// Run with `cargo test --release --test net -- --ignored --nocapture`.
#[test]
#[ignore = "10,000 sockets and tasks: run it on its own"]
fn ten_thousand_connections_at_once_on_one_loop() {
    many_idle_connections("ten_thousand_connections_at_once_on_one_loop", 10_000, 3);
}

#[test]
fn accept_reports_the_peer_address_over_ipv4_and_ipv6() {
    for local in ["127.0.0.1:0", "[::1]:0"] {
        let Ok(listener) = TcpListener::bind(local) else {
            println!("cannot bind {local}: skipped");
            continue;
        };
        let addr = listener.local_addr().unwrap();
        let client = thread::spawn(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            let me = s.local_addr().unwrap();
            s.write_all(b"hi").unwrap();
            me
        });
        let (peer, got) = EventLoop::new()
            .block_on(move || {
                let (stream, peer) = listener.accept().unwrap();
                let mut got = String::new();
                (&stream).read_to_string(&mut got).unwrap(); // parks, not blocks
                (peer, got)
            })
            .unwrap();
        assert_eq!(peer, client.join().unwrap());
        assert_eq!(got, "hi");
    }
}
