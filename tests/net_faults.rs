//! Clients that misbehave, against servers on a loop of their own thread:
//! a line server written here and `examples/http_server`'s connection task
//! (its `http.rs`, included as it is). Clients that connect and say
//! nothing, dribble a request a byte at a time, never read their answers,
//! half-close, reset the connection mid-request or mid-answer, send
//! garbage or too much: each
//! bad connection ends the way it should, and the server serves the
//! others meanwhile.
//!
//! "Meanwhile" is checked as an order of events, never as a measured
//! time: a good client gets its answer while the bad one is still
//! connected (its task has not ended, its socket is open). The time limits
//! are short (`LIMIT`) so that the tests are quick, and long enough that
//! a good exchange over loopback fits in one many times over.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use cogen::event_loop::net::{TcpListener, TcpStream};
use cogen::event_loop::{EventLoop, spawn};

#[allow(dead_code)] // the example uses what this test does not
#[path = "../examples/http_server/http.rs"]
mod http;

/// The servers' time limit, used as behaviour (never as a measurement).
const LIMIT: Duration = Duration::from_millis(300);
/// How long a client waits for the server before the test fails: a broken
/// server fails the test instead of hanging it.
const PATIENCE: Duration = Duration::from_secs(20);

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n";

/// What a server reports, in the order it happens on its loop.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Event {
    /// Connection `id` (numbered from 0 in accept order) is accepted.
    Accepted(usize),
    /// The line server read this many bytes from connection `id`.
    Received(usize, usize),
    /// Connection `id`'s task ended: `Ok`, or the kind of its error.
    Ended(usize, Result<(), io::ErrorKind>),
}

/// What a connection's task gets besides its stream.
struct Conn {
    id: usize,
    events: mpsc::Sender<Event>,
}

/// A connection's task: serves `stream` until it ends.
type Handler = fn(TcpStream, &Conn) -> io::Result<()>;

/// A server on a loop of its own thread, one task per connection running
/// `handler`, until dropped (dropping its loop cancels the connections
/// still open). Its events are read through [`Server::wait_for`].
struct Server {
    addr: SocketAddr,
    events: mpsc::Receiver<Event>,
    /// Every event received so far, in order.
    seen: Vec<Event>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Server {
    fn start(handler: Handler) -> Server {
        let stop = Arc::new(AtomicBool::new(false));
        let (addr_tx, addr_rx) = mpsc::channel();
        let (events_tx, events) = mpsc::channel();
        let stopping = stop.clone();
        let thread = thread::spawn(move || {
            EventLoop::new()
                .block_on(move || {
                    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
                    addr_tx.send(listener.local_addr().unwrap()).unwrap();
                    let mut next_id = 0;
                    while !stopping.load(Ordering::Relaxed) {
                        // An accept error (a connection reset before it
                        // was accepted) leaves the listener fine.
                        let Ok((stream, _)) = listener.accept_timeout(Duration::from_millis(50))
                        else {
                            continue;
                        };
                        let conn = Conn {
                            id: next_id,
                            events: events_tx.clone(),
                        };
                        next_id += 1;
                        let _ = conn.events.send(Event::Accepted(conn.id));
                        spawn(move || {
                            let result = handler(stream, &conn).map_err(|e| e.kind());
                            let _ = conn.events.send(Event::Ended(conn.id, result));
                        });
                    }
                })
                .unwrap();
        });
        let addr = addr_rx.recv().unwrap();
        Server {
            addr,
            events,
            seen: Vec::new(),
            stop,
            thread: Some(thread),
        }
    }

    /// Connects a client, and waits until the server has accepted it:
    /// returns the connection's id and the client's stream.
    fn connect(&mut self) -> (usize, std::net::TcpStream) {
        let stream = client(self.addr);
        let accepted = self
            .seen
            .iter()
            .filter(|e| matches!(e, Event::Accepted(_)))
            .count();
        let id = accepted; // ids count accepts from 0
        self.wait_for(&Event::Accepted(id));
        (id, stream)
    }

    /// Waits until the server reports `event` (or it was reported before).
    fn wait_for(&mut self, event: &Event) {
        while !self.seen.contains(event) {
            let next = self.events.recv_timeout(PATIENCE).unwrap_or_else(|_| {
                panic!("waited for {event:?}; the server reported {:?}", self.seen)
            });
            self.seen.push(next);
        }
    }

    /// Waits until connection `id`'s task ends, and returns how.
    fn ended(&mut self, id: usize) -> Result<(), io::ErrorKind> {
        loop {
            let end = self.seen.iter().find_map(|e| match e {
                Event::Ended(i, result) if *i == id => Some(*result),
                _ => None,
            });
            if let Some(end) = end {
                return end;
            }
            let next = self.events.recv_timeout(PATIENCE).unwrap_or_else(|_| {
                panic!(
                    "waited for connection {id} to end; the server reported {:?}",
                    self.seen
                )
            });
            self.seen.push(next);
        }
    }

    /// Checks that the server still serves: a new client's exchange, then
    /// its close, which ends its connection's task well.
    fn still_serves(&mut self, kind: Kind) {
        let (id, mut stream) = self.connect();
        good_exchange(kind, &mut stream);
        drop(stream);
        assert_eq!(self.ended(id), Ok(()), "{kind:?}");
    }

    /// Whether connection `id`'s task has ended, from what the server has
    /// reported so far (without waiting).
    fn has_ended(&mut self, id: usize) -> bool {
        self.seen.extend(self.events.try_iter());
        self.seen
            .iter()
            .any(|e| matches!(e, Event::Ended(i, _) if *i == id))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A std client, with time limits so that a broken server fails the test
/// instead of hanging it.
fn client(addr: SocketAddr) -> std::net::TcpStream {
    let stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.set_write_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// The line server's connection task: every line that comes back in
/// upper case, with a read time limit of `LIMIT`; a last line without a
/// newline is answered when the client closes its side.
fn upper_lines(stream: TcpStream, conn: &Conn) -> io::Result<()> {
    stream.set_read_timeout(Some(LIMIT))?;
    let mut pending = Vec::new();
    let mut buf = [0; 4096];
    loop {
        let n = (&stream).read(&mut buf)?;
        if n == 0 {
            (&stream).write_all(&pending.to_ascii_uppercase())?;
            return Ok(());
        }
        let _ = conn.events.send(Event::Received(conn.id, n));
        pending.extend_from_slice(&buf[..n]);
        if let Some(last) = pending.iter().rposition(|&b| b == b'\n') {
            let lines: Vec<u8> = pending.drain(..=last).collect();
            (&stream).write_all(&lines.to_ascii_uppercase())?;
        }
    }
}

/// `examples/http_server`'s connection task, with `LIMIT` as its time
/// limit.
fn http_server(stream: TcpStream, _: &Conn) -> io::Result<()> {
    http::serve_connection(stream, LIMIT)
}

/// The two servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// [`upper_lines`].
    Lines,
    /// [`http_server`].
    Http,
}

impl Kind {
    fn start(self) -> Server {
        Server::start(match self {
            Kind::Lines => upper_lines,
            Kind::Http => http_server,
        })
    }
}

/// A good client's exchange with either server: a line, or a request.
fn good_exchange(kind: Kind, stream: &mut std::net::TcpStream) {
    if kind == Kind::Lines {
        stream.write_all(b"hello\n").unwrap();
        let mut back = [0; 6];
        stream.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"HELLO\n");
    } else {
        stream.write_all(GET).unwrap();
        let (status, body) = read_response(stream);
        assert_eq!(
            (status.as_str(), body.as_slice()),
            ("HTTP/1.1 200 OK", &b"Hello, World!"[..])
        );
    }
}

/// Reads one HTTP response: its status line and its body (framed by
/// `Content-Length`). Reads byte by byte, so that nothing after the
/// response is taken from the stream.
fn read_response(stream: &mut std::net::TcpStream) -> (String, Vec<u8>) {
    let mut head = Vec::new();
    let mut byte = [0];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .expect("Content-Length")
        .parse()
        .unwrap();
    let mut body = vec![0; len];
    stream.read_exact(&mut body).unwrap();
    (head.lines().next().unwrap().to_owned(), body)
}

/// Whether the server has closed `stream`: a read finds the end of the
/// stream (or a reset), not "nothing yet".
fn is_closed(stream: &std::net::TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let closed = match (&*stream).read(&mut [0; 64]) {
        Ok(0) => true,
        Ok(_) => panic!("unexpected bytes from the server"),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => true,
        Err(e) => panic!("{e}"),
    };
    stream.set_nonblocking(false).unwrap();
    closed
}

/// Reads what is left of `stream` up to its end, which must come (a reset
/// after the end counts as the end).
fn read_to_close(stream: &mut std::net::TcpStream) -> Vec<u8> {
    let mut rest = Vec::new();
    let mut buf = [0; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return rest,
            Ok(n) => rest.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return rest,
            Err(e) => panic!("reading to the end: {e}"),
        }
    }
}

/// Makes dropping `stream` reset the connection (RST) instead of closing
/// it (FIN): `SO_LINGER` on, with a zero time.
fn reset_on_drop(stream: &std::net::TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the descriptor is `stream`'s, open; the option value is a
    // `linger` that lives across the call, and its size is passed.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            std::ptr::from_ref(&linger).cast(),
            size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(
        rc,
        0,
        "setsockopt(SO_LINGER): {}",
        io::Error::last_os_error()
    );
}

#[test]
fn silent_clients_are_closed_by_the_time_limit_while_others_are_served() {
    for kind in [Kind::Lines, Kind::Http] {
        let mut server = kind.start();
        let silent: Vec<_> = (0..3).map(|_| server.connect()).collect();
        // A good client, served while the silent ones are still connected.
        let (good, mut stream) = server.connect();
        for _ in 0..3 {
            good_exchange(kind, &mut stream);
        }
        for (id, silent) in &silent {
            assert!(
                !server.has_ended(*id),
                "{kind:?}: {id} ended before {good} was served"
            );
            assert!(
                !is_closed(silent),
                "{kind:?}: {id} closed before {good} was served"
            );
        }
        // Then the time limit closes each silent one.
        for (id, mut silent) in silent {
            assert_eq!(server.ended(id), Err(io::ErrorKind::TimedOut), "{kind:?}");
            assert_eq!(read_to_close(&mut silent), b"", "{kind:?}");
        }
        drop(stream);
        // The good one closed first, or timed out if it was slow to.
        assert!(
            matches!(server.ended(good), Ok(()) | Err(io::ErrorKind::TimedOut)),
            "{kind:?}"
        );
    }
}

#[test]
fn slowloris_is_closed_while_others_are_served() {
    let mut server = Kind::Http.start();
    let (slow_id, slow) = server.connect();
    slow.set_nodelay(true).unwrap();
    // The slow client dribbles a head that never ends, a byte every
    // `LIMIT / 6`: each read gets a byte well within the time limit, but
    // the request does not arrive within it. It stops when the server
    // closes the connection (a write fails).
    let sent = Arc::new(AtomicUsize::new(0));
    let dribbling = Arc::new(AtomicBool::new(true));
    let dribbler = {
        let mut slow = slow.try_clone().unwrap();
        let (sent, dribbling) = (sent.clone(), dribbling.clone());
        thread::spawn(move || {
            let head = [b"GET / HTTP/1.1\r\nX-Slow: ".as_slice(), &[b'a'; 1 << 16]].concat();
            let mut result = Ok(());
            for byte in head.chunks(1) {
                result = slow.write_all(byte);
                if result.is_err() {
                    break;
                }
                sent.fetch_add(1, Ordering::Relaxed);
                thread::sleep(LIMIT / 6);
            }
            dribbling.store(false, Ordering::Relaxed);
            result
        })
    };
    while sent.load(Ordering::Relaxed) < 2 {
        thread::sleep(Duration::from_millis(1));
    }
    // A good client is served while the slow one is still dribbling.
    let (good, mut stream) = server.connect();
    good_exchange(Kind::Http, &mut stream);
    assert!(dribbling.load(Ordering::Relaxed) && !server.has_ended(slow_id));
    // The slow one is closed for taking too long. The server answers 408
    // first, but closing a socket whose input is unread (the byte the
    // client dribbled meanwhile) resets the connection, and the reset may
    // destroy the answer before the client reads it: the end is certain,
    // the answer is not.
    assert_eq!(server.ended(slow_id), Err(io::ErrorKind::TimedOut));
    let mut slow = slow;
    let got = read_to_close(&mut slow);
    let got = String::from_utf8_lossy(&got);
    assert!(
        got.is_empty() || got.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{got}"
    );
    // The dribbler's writes fail once the server has closed (the first
    // write after the close is answered by a reset, the next one fails).
    assert!(dribbler.join().unwrap().is_err());
    assert!(sent.load(Ordering::Relaxed) < 1 << 16);
    // The server goes on serving (the good client's own connection has
    // been idle about as long as the slow one took: a new one).
    drop(stream);
    let (_, mut another) = server.connect();
    good_exchange(Kind::Http, &mut another);
    assert!(matches!(
        server.ended(good),
        Ok(()) | Err(io::ErrorKind::TimedOut)
    ));
}

#[test]
fn a_half_closed_client_still_gets_its_answer_then_the_server_sees_the_end() {
    for kind in [Kind::Lines, Kind::Http] {
        let mut server = kind.start();
        let (id, mut stream) = server.connect();
        let (request, answer): (&[u8], &[u8]) = if kind == Kind::Lines {
            // The last line without its newline: answered at the end.
            (b"one\ntwo\nthree", b"ONE\nTWO\nTHREE")
        } else {
            (GET, b"Hello, World!")
        };
        stream.write_all(request).unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let got = read_to_close(&mut stream);
        assert!(
            got.ends_with(answer),
            "{kind:?}: {}",
            String::from_utf8_lossy(&got)
        );
        assert_eq!(server.ended(id), Ok(()), "{kind:?}");
    }
}

#[test]
fn a_reset_mid_request_ends_that_connection_only() {
    for kind in [Kind::Lines, Kind::Http] {
        let mut server = kind.start();
        let (id, stream) = server.connect();
        // Half a line, or half a request: the server reads it and waits
        // for the rest.
        let half: &[u8] = if kind == Kind::Lines {
            b"half a li"
        } else {
            b"GET / HTTP/1.1\r\nHo"
        };
        (&stream).write_all(half).unwrap();
        if kind == Kind::Lines {
            server.wait_for(&Event::Received(id, half.len()));
        } else {
            thread::sleep(LIMIT / 10); // no event to wait for: best effort
        }
        reset_on_drop(&stream);
        drop(stream);
        let end = server.ended(id);
        assert!(
            matches!(end, Ok(()) | Err(io::ErrorKind::ConnectionReset)),
            "{kind:?}: {end:?}"
        );
        server.still_serves(kind);
    }
}

#[test]
fn a_reset_while_the_server_writes_ends_that_connection_only() {
    let mut server = Kind::Lines.start();
    let (id, stream) = server.connect();
    // Lines the client never reads: the answers fill the socket buffers,
    // the server's write parks, it stops reading, and the client's writes
    // stop going through. Then the client resets the connection.
    let line = [&[b'x'; 1023][..], b"\n"].concat();
    stream.set_nonblocking(true).unwrap();
    let (mut sent, mut stalled) = (0, 0);
    while stalled < 20 && sent < 64 << 20 {
        match (&stream).write(&line) {
            Ok(n) => {
                sent += n;
                stalled = 0;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                stalled += 1;
                thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("{e}"),
        }
    }
    server.wait_for(&Event::Accepted(id));
    reset_on_drop(&stream);
    drop(stream);
    // The write (or the read, if the server was not parked in a write
    // after all) fails.
    let end = server.ended(id);
    assert!(
        matches!(
            end,
            Err(io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe)
        ),
        "{end:?}"
    );
    server.still_serves(Kind::Lines);
}

#[test]
fn a_client_that_does_not_read_its_answers_is_closed_by_the_write_limit() {
    let mut server = Kind::Http.start();
    let (id, stream) = server.connect();
    // Requests, pipelined, whose answers the client never reads: the
    // answers fill the socket buffers and the server's write parks; it
    // stops reading, and the client's writes stop going through.
    let requests = GET.repeat(1000);
    stream.set_nonblocking(true).unwrap();
    let mut stalled = 0;
    while stalled < 5 {
        match (&stream).write(&requests) {
            Ok(_) => stalled = 0,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                stalled += 1;
                thread::sleep(Duration::from_millis(10));
            }
            // The server timed out and closed already.
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("{e}"),
        }
    }
    // The server goes on serving others, and the write limit ends the
    // connection that does not read.
    server.still_serves(Kind::Http);
    assert_eq!(server.ended(id), Err(io::ErrorKind::TimedOut));
}

#[test]
fn garbage_gets_400_and_is_closed() {
    let mut server = Kind::Http.start();
    // Bytes that are no request (a fixed pseudo-random sequence), in one
    // write and dribbled in pieces.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let garbage: Vec<u8> = (0..3000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 56) as u8
        })
        .collect();
    let mut variants: Vec<Vec<u8>> = vec![
        garbage.clone(),
        b"GET /\r\n\r\n".to_vec(),
        b"GET / HTTP/9.9\r\n\r\n".to_vec(),
        b"GET\0/ HTTP/1.1\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nContent-Length: lots\r\n\r\n".to_vec(),
    ];
    variants.push([GET, garbage.as_slice()].concat());
    for (i, bytes) in variants.iter().enumerate() {
        let (id, mut stream) = server.connect();
        for piece in bytes.chunks(700) {
            // The server may have answered and closed already.
            if stream.write_all(piece).is_err() {
                break;
            }
        }
        let got = read_to_close(&mut stream);
        let got = String::from_utf8_lossy(&got);
        assert!(
            got.contains("HTTP/1.1 400 Bad Request\r\n")
                && got.ends_with("Content-Length: 0\r\n\r\n"),
            "variant {i}: {got}"
        );
        drop(stream);
        assert_eq!(server.ended(id), Ok(()), "variant {i}");
        server.still_serves(Kind::Http);
    }
}

#[test]
fn an_oversized_request_gets_431_and_is_closed() {
    let mut server = Kind::Http.start();
    let (id, stream) = server.connect();
    // Headers without end, written by a thread of its own as fast as the
    // server takes them; it stops when the server has closed (it is
    // stopped at 1 GiB, far more than all the socket buffers between the
    // two can hold).
    let writer = {
        let mut stream = stream.try_clone().unwrap();
        thread::spawn(move || {
            stream.write_all(b"GET / HTTP/1.1\r\n")?;
            let mut headers = Vec::new();
            while headers.len() < 1 << 16 {
                headers.extend_from_slice(b"X-Big: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
            }
            for _ in 0..(1 << 30) / headers.len() {
                stream.write_all(&headers)?;
            }
            Ok::<(), io::Error>(())
        })
    };
    // The answer, unless the reset destroyed it (see `slowloris_...`): the
    // server drains some of what comes after the answer before it closes,
    // but not a gigabyte.
    let mut stream = stream;
    let got = read_to_close(&mut stream);
    let got = String::from_utf8_lossy(&got);
    assert!(
        got.is_empty() || got.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{got}"
    );
    assert!(writer.join().unwrap().is_err());
    assert_eq!(server.ended(id), Ok(()));
    server.still_serves(Kind::Http);
}
