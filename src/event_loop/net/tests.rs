//! White-box tests of the sockets' waits: what a wait leaves among a
//! socket's waiters in the reactor (nothing, however it ends), that a
//! dropped socket is deregistered, the drained-read hint (and the urgent
//! data that turns it off), and a read's time limit across wake-ups that
//! find nothing.

use std::cell::Cell;
use std::io::{Read, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::super::context::current_core;
use super::super::core::POLL_INTERVAL;
use super::super::reactor::Reactor;
use super::super::{EventLoop, channel, sleep, spawn, timeout, yield_now};
use super::{TcpListener, TcpStream};

/// The reactor of the loop running the current task.
fn reactor() -> Rc<Reactor> {
    current_core("test")
        .reactor
        .get()
        .expect("a socket has waited")
        .clone()
}

/// A connected pair on the current loop: (server side, client side).
fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = TcpStream::connect(addr).unwrap();
    let (server, _) = listener.accept().unwrap();
    (server, client)
}

#[test]
fn a_cancelled_wait_leaves_no_entry_and_a_dropped_socket_no_registration() {
    EventLoop::new()
        .block_on(|| {
            let (server, client) = pair();
            let server = Rc::new(server);
            let s = server.clone();
            let reader = spawn(move || {
                let mut buf = [0; 8];
                (&*s).read(&mut buf).unwrap()
            });
            yield_now(); // the reader parks
            let key = server.source.key().expect("registered by its wait");
            let reactor = reactor();
            assert_eq!(reactor.waiters(key), (1, 0));
            reader.cancel();
            assert_eq!(reactor.waiters(key), (0, 0));
            // Another task reads what comes.
            (&client).write_all(b"x").unwrap();
            let mut buf = [0; 8];
            assert_eq!((&*server).read(&mut buf).unwrap(), 1);
            assert_eq!(reactor.waiters(key), (0, 0));
            let before = reactor.registered();
            drop(server);
            assert_eq!(reactor.registered(), before - 1);
        })
        .unwrap();
}

#[test]
fn a_wait_ended_by_its_time_limit_leaves_no_entry() {
    EventLoop::new()
        .block_on(|| {
            let (server, _client) = pair();
            server
                .set_read_timeout(Some(Duration::from_millis(5)))
                .unwrap();
            let mut buf = [0; 8];
            let err = (&server).read(&mut buf).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
            let key = server.source.key().unwrap();
            assert_eq!(reactor().waiters(key), (0, 0));
        })
        .unwrap();
}

/// Wakes the readers parked on `socket` without any data for them, `times`
/// times, `every` apart: each wake-up is spurious (their reads find
/// nothing and park again). The count of wake-ups made goes to `made`.
fn wake_readers_spuriously(
    socket: Rc<TcpStream>,
    times: u32,
    every: Duration,
    made: Rc<Cell<u32>>,
) {
    let core = current_core("test");
    let key = socket.source.key().expect("registered by its wait");
    for _ in 0..times {
        sleep(every);
        let (_, waiters) = reactor().take_shut(key, true, false);
        waiters.into_iter().for_each(|w| core.wake_waiter(w));
        made.set(made.get() + 1);
    }
}

/// A read with a 200 ms limit on a silent socket, its task woken for
/// nothing every 20 ms (100 times in all), inside an hour-long `timeout`
/// if `enclosed`: it must time out with its own limit's error, not before
/// the limit, and long before the wake-ups are over (each wait after one
/// keeps the read's deadline: it neither starts the limit again nor loses
/// it).
fn read_limit_under_spurious_wake_ups(enclosed: bool) {
    EventLoop::new()
        .block_on(move || {
            let (server, _client) = pair();
            let server = Rc::new(server);
            let limit = Duration::from_millis(200);
            server.set_read_timeout(Some(limit)).unwrap();
            let made = Rc::new(Cell::new(0));
            let (s, m) = (server.clone(), made.clone());
            let waker = spawn(move || {
                yield_now(); // the reader parks first
                wake_readers_spuriously(s, 100, Duration::from_millis(20), m);
            });
            let start = Instant::now();
            let read = || (&*server).read(&mut [0; 8]).unwrap_err();
            let err = if enclosed {
                timeout(Duration::from_secs(3600), read).expect("the read's own limit first")
            } else {
                read()
            };
            let (waited, wakes) = (start.elapsed(), made.get());
            assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
            assert!(waited >= limit, "timed out after {waited:?}");
            assert!((2..100).contains(&wakes), "{wakes} spurious wake-ups");
            waker.cancel();
        })
        .unwrap();
}

#[test]
fn spurious_wake_ups_do_not_renew_a_reads_time_limit() {
    read_limit_under_spurious_wake_ups(false);
}

#[test]
fn a_reads_own_limit_inside_a_longer_timeout_survives_spurious_wake_ups() {
    // The enclosing limit and the read's own are asked for the same park.
    read_limit_under_spurious_wake_ups(true);
}

#[test]
fn time_limits_of_waits_that_end_early_do_not_pile_up_in_the_timers() {
    EventLoop::new()
        .block_on(|| {
            // A silent connection: its reader's time limit comes first.
            let (silent, _peer) = pair();
            silent
                .set_read_timeout(Some(Duration::from_secs(3600)))
                .unwrap();
            let idle = spawn(move || (&silent).read(&mut [0; 1]).map(drop));
            yield_now();
            let (a, b) = pair();
            for s in [&a, &b] {
                s.set_read_timeout(Some(Duration::from_secs(7200))).unwrap();
            }
            // Ping-pong: every read parks with a time limit, and every
            // wait ends long before it.
            let pong = spawn(move || {
                let mut buf = [0; 1];
                while (&b).read(&mut buf).unwrap() == 1 {
                    (&b).write_all(&buf).unwrap();
                }
            });
            let mut buf = [0; 1];
            for _ in 0..2000 {
                (&a).write_all(b"p").unwrap();
                (&a).read_exact(&mut buf).unwrap();
            }
            let timers = current_core("test").timers.len();
            assert!(timers < 200, "{timers} timer entries for 3 waiting tasks");
            drop(a);
            pong.join().unwrap();
            idle.cancel();
        })
        .unwrap();
}

#[test]
fn data_queued_after_urgent_data_is_read_though_the_read_before_was_short() {
    // A read stops at TCP urgent data's mark: short, with the data after
    // it already queued. The poller has taken the data's edges before the
    // reads, so the drained-read hint must not park the next read.
    EventLoop::new()
        .block_on(|| {
            let (server, client) = pair();
            // A first read that waits, so the socket is registered.
            let c = Rc::new(client);
            let c2 = c.clone();
            let writer = spawn(move || (&*c2).write_all(b"a").unwrap());
            let mut buf = [0; 64];
            assert_eq!((&server).read(&mut buf).unwrap(), 1);
            writer.join().unwrap();
            (&*c).write_all(b"hello").unwrap();
            // SAFETY: send(2) of one valid byte on an open socket.
            let sent = unsafe {
                libc::send(
                    std::os::fd::AsRawFd::as_raw_fd(&*c),
                    b"!".as_ptr().cast(),
                    1,
                    libc::MSG_OOB,
                )
            };
            assert_eq!(sent, 1);
            (&*c).write_all(b"world").unwrap();
            // The round ends with a look at the poller: it takes the edges.
            yield_now();
            let n = (&server).read(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"hello");
            assert!(!server.source.drained(), "urgent data turns the hint off");
            // (A limit, so that a read parked for ever fails instead.)
            server
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let n = (&server).read(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"world");
        })
        .unwrap();
}

#[test]
fn the_end_of_the_stream_that_came_with_the_last_data_is_read() {
    EventLoop::new()
        .block_on(|| {
            let (server, client) = pair();
            server
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            // The last data and the FIN come together, while the server
            // is parked: one event reports both.
            spawn(move || {
                (&client).write_all(b"bye").unwrap();
                client.shutdown(std::net::Shutdown::Write).unwrap();
            });
            let mut buf = [0; 8];
            assert_eq!((&server).read(&mut buf).unwrap(), 3); // short
            // Not drained: the next read must see the end of the stream,
            // not park waiting for an event that already came.
            assert!(!server.source.drained());
            assert_eq!((&server).read(&mut buf).unwrap(), 0);
        })
        .unwrap();
}

#[test]
fn a_ready_socket_is_taken_within_the_poll_interval_while_tasks_stay_runnable() {
    EventLoop::new()
        .block_on(|| {
            let (server, client) = pair();
            // Two tasks that keep waking each other through channels (no
            // yields): the loop never goes idle.
            let (to_b, from_a) = channel::<u32>(1);
            let (to_a, from_b) = channel::<u32>(1);
            let steps = Rc::new(Cell::new(0u32));
            let st = steps.clone();
            let ping = spawn(move || {
                while to_b.send(0).is_ok() && from_b.recv().is_ok() {
                    st.set(st.get() + 1);
                }
            });
            let pong = spawn(move || {
                while let Ok(v) = from_a.recv() {
                    if to_a.send(v).is_err() {
                        break;
                    }
                }
            });
            // No task yields from here on (a yield would make the loop
            // look at the poller at the end of its round).
            let (started, start) = channel::<()>(1);
            let reader = spawn(move || {
                started.send(()).unwrap();
                let mut buf = [0; 8];
                (&server).read(&mut buf).unwrap() // parks
            });
            start.recv().unwrap();
            (&client).write_all(b"x").unwrap();
            let from = steps.get();
            // Joining parks this task: only the ping-pong runs.
            assert_eq!(reader.join().unwrap(), 1);
            let late = steps.get() - from;
            // Each ping-pong round trip is about four steps.
            assert!(
                late <= POLL_INTERVAL / 2,
                "the reader ran {late} round trips after its data came"
            );
            ping.cancel();
            pong.cancel();
        })
        .unwrap();
}

#[test]
fn a_task_that_yields_runs_again_after_the_ready_sockets() {
    EventLoop::new()
        .block_on(|| {
            let (server, client) = pair();
            let reader = spawn(move || {
                let mut buf = [0; 8];
                (&server).read(&mut buf).unwrap()
            });
            yield_now(); // the reader parks
            (&client).write_all(b"x").unwrap();
            // The round of this yield ends with a look at the poller: the
            // reader is queued before this task runs again, and runs first.
            yield_now();
            yield_now();
            assert!(reader.is_finished());
        })
        .unwrap();
}

#[test]
fn a_busy_loop_asks_the_poller_once_per_poll_interval_not_once_per_round() {
    EventLoop::new()
        .block_on(|| {
            let (server, _client) = pair();
            // Parked on a socket that stays silent.
            let reader = spawn(move || (&server).read(&mut [0; 8]).map(drop));
            yield_now();
            let reactor = reactor();
            let before = reactor.polls();
            // Two tasks ping-pong over channels: rounds of a step or two,
            // none of which yields.
            let (to_b, from_a) = channel::<u32>(1);
            let (to_a, from_b) = channel::<u32>(1);
            let pong = spawn(move || {
                while let Ok(v) = from_a.recv() {
                    if to_a.send(v).is_err() {
                        break;
                    }
                }
            });
            for i in 0..1000 {
                to_b.send(i).unwrap();
                assert_eq!(from_b.recv().unwrap(), i);
            }
            let polls = reactor.polls() - before;
            let most = 4000 / POLL_INTERVAL as usize + 2;
            assert!(polls <= most, "{polls} polls for 1000 round trips");
            drop(to_b);
            pong.join().unwrap();
            reader.cancel();
        })
        .unwrap();
}
