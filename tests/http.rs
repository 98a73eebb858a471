//! `examples/http_server`'s HTTP code (its `http.rs`, included as it is):
//! the request handler on its own (routes, headers, pipelining, partial
//! requests, errors), and the connection task against real clients, `curl`
//! among them (skipped when it is not installed). Clients that misbehave
//! are in `tests/net_faults.rs`.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use cogen::event_loop::net::TcpListener;
use cogen::event_loop::{EventLoop, spawn};

#[allow(dead_code)] // the example uses what this test does not
#[path = "../examples/http_server/http.rs"]
mod http;
use http::{Handled, handle};

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n";

/// `handle` on `input`: what it did, and its output as text.
fn answer(input: &[u8]) -> (Handled, String) {
    let mut out = Vec::new();
    let handled = handle(input, &mut out);
    (handled, String::from_utf8(out).unwrap())
}

/// The status lines in `out`, in order (a body runs straight into the
/// next response).
fn statuses(out: &str) -> Vec<&str> {
    out.match_indices("HTTP/1.1 ")
        .map(|(i, _)| &out[i..i + out[i..].find("\r\n").unwrap()])
        .collect()
}

#[test]
fn one_request_gets_the_greeting() {
    let (handled, out) = answer(GET);
    assert_eq!(
        handled,
        Handled {
            consumed: GET.len(),
            close: false
        }
    );
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.contains("\r\nContent-Length: 13\r\n"), "{out}");
    assert!(out.ends_with("\r\n\r\nHello, World!"), "{out}");
}

/// The value of header `name` in the one response `out`.
fn header<'a>(out: &'a str, name: &str) -> Option<&'a str> {
    let head = &out[..out.find("\r\n\r\n")?];
    head.split("\r\n").skip(1).find_map(|line| {
        let (n, v) = line.split_once(": ")?;
        n.eq_ignore_ascii_case(name).then_some(v)
    })
}

#[test]
fn json_route_and_the_headers_techempower_asks_for() {
    let (_, out) = answer(b"GET /json HTTP/1.1\r\nHost: test\r\n\r\n");
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(
        out.ends_with("\r\n\r\n{\"message\":\"Hello, World!\"}"),
        "{out}"
    );
    assert_eq!(header(&out, "content-type"), Some("application/json"));
    assert_eq!(header(&out, "content-length"), Some("27"));
    assert_eq!(header(&out, "server"), Some("cogen"));
    let date = header(&out, "date").expect("a Date header");
    assert!(date.len() == 29 && date.ends_with(" GMT"), "{date:?}");

    let (_, out) = answer(GET);
    assert_eq!(header(&out, "content-type"), Some("text/plain"));
    assert!(header(&out, "date").is_some() && header(&out, "server").is_some());
    // Errors carry them too.
    let (_, out) = answer(b"GET /nowhere HTTP/1.1\r\n\r\n");
    assert!(out.starts_with("HTTP/1.1 404 Not Found\r\n"), "{out}");
    assert_eq!(header(&out, "content-length"), Some("0"));
    assert!(header(&out, "date").is_some());
    // HEAD on /json: the head of the GET, no body.
    let (_, out) = answer(b"HEAD /json HTTP/1.1\r\n\r\n");
    assert!(out.ends_with("Content-Length: 27\r\n\r\n"), "{out}");
    assert_eq!(header(&out, "content-type"), Some("application/json"));
}

#[test]
fn http_dates() {
    let date = |secs| String::from_utf8(http::http_date(secs).to_vec()).unwrap();
    assert_eq!(date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    // RFC 9110's example.
    assert_eq!(date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
    // A leap day, the last second of a century year, far ahead.
    assert_eq!(date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
    assert_eq!(date(978_307_199), "Sun, 31 Dec 2000 23:59:59 GMT");
    assert_eq!(date(4_102_444_800), "Fri, 01 Jan 2100 00:00:00 GMT");
}

#[test]
fn pipelined_requests_are_answered_in_order_and_a_partial_one_waits() {
    let mut input = Vec::new();
    input.extend_from_slice(GET);
    input.extend_from_slice(b"GET /missing HTTP/1.1\r\nHost: test\r\n\r\n");
    input.extend_from_slice(GET);
    let complete = input.len();
    input.extend_from_slice(b"GET / HTTP/1.1\r\nHo"); // the next one, cut short
    let (handled, out) = answer(&input);
    assert_eq!(
        handled,
        Handled {
            consumed: complete,
            close: false
        }
    );
    assert_eq!(
        statuses(&out),
        [
            "HTTP/1.1 200 OK",
            "HTTP/1.1 404 Not Found",
            "HTTP/1.1 200 OK"
        ]
    );
    // Nothing complete: nothing consumed, nothing written.
    assert_eq!(
        answer(b"GET / HT"),
        (
            Handled {
                consumed: 0,
                close: false
            },
            String::new()
        )
    );
}

#[test]
fn a_malformed_request_is_answered_with_400_and_ends_the_connection() {
    let mut input = GET.to_vec();
    input.extend_from_slice(b"NOT HTTP\r\n\r\n");
    input.extend_from_slice(GET); // never answered
    let (handled, out) = answer(&input);
    assert!(handled.close);
    assert_eq!(
        statuses(&out),
        ["HTTP/1.1 200 OK", "HTTP/1.1 400 Bad Request"]
    );
    assert!(
        out.ends_with("Connection: close\r\nContent-Length: 0\r\n\r\n"),
        "{out}"
    );
}

#[test]
fn connection_close_http_1_0_head_bodies_and_limits() {
    // `Connection: close` and HTTP/1.0 end the connection after the answer.
    let (handled, out) = answer(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert!(handled.close && out.contains("Connection: close\r\n"));
    let (handled, _) = answer(b"GET / HTTP/1.0\r\n\r\n");
    assert!(handled.close);
    let (handled, _) = answer(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert!(!handled.close);
    // HEAD: the same head, no body.
    let (_, out) = answer(b"HEAD / HTTP/1.1\r\n\r\n");
    assert!(out.ends_with("Content-Length: 13\r\n\r\n"), "{out}");
    // Another method on `/`.
    let (_, out) = answer(b"DELETE / HTTP/1.1\r\n\r\n");
    assert_eq!(statuses(&out), ["HTTP/1.1 405 Method Not Allowed"]);
    // A body is skipped once it is all there.
    let post = b"POST /form HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
    let (handled, _) = answer(&post[..post.len() - 1]);
    assert_eq!(handled.consumed, 0);
    let (handled, out) = answer(post);
    assert_eq!(handled.consumed, post.len());
    assert_eq!(statuses(&out), ["HTTP/1.1 404 Not Found"]);
    // Too large a head, chunked bodies.
    let mut huge = b"GET / HTTP/1.1\r\nX: ".to_vec();
    huge.resize(http::MAX_HEAD + 1, b'a');
    let (handled, out) = answer(&huge);
    assert!(handled.close);
    assert_eq!(
        statuses(&out),
        ["HTTP/1.1 431 Request Header Fields Too Large"]
    );
    let (handled, out) = answer(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert!(handled.close);
    assert_eq!(statuses(&out), ["HTTP/1.1 501 Not Implemented"]);
}

/// The example's connection tasks on a loop of their own thread, with
/// `idle` as their time limit, until the returned guard is dropped; each
/// connection's result comes out of the receiver when it ends.
fn start_server(idle: Duration) -> (SocketAddr, mpsc::Receiver<io::Result<()>>, ServerGuard) {
    let stop = Arc::new(AtomicBool::new(false));
    let (addr_tx, addr_rx) = mpsc::channel();
    let (end_tx, end_rx) = mpsc::channel();
    let stopping = stop.clone();
    let thread = thread::spawn(move || {
        EventLoop::new()
            .block_on(move || {
                let listener = TcpListener::bind("127.0.0.1:0").unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                while !stopping.load(Ordering::Relaxed) {
                    if let Ok((stream, _)) = listener.accept_timeout(Duration::from_millis(50)) {
                        let end_tx = end_tx.clone();
                        spawn(move || {
                            let _ = end_tx.send(http::serve_connection(stream, idle));
                        });
                    }
                }
            })
            .unwrap();
    });
    let addr = addr_rx.recv().unwrap();
    (addr, end_rx, ServerGuard(stop, Some(thread)))
}

/// Stops the server's accept loop and waits for its thread (dropping its
/// loop cancels the connections still open).
struct ServerGuard(Arc<AtomicBool>, Option<thread::JoinHandle<()>>);

impl Drop for ServerGuard {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
        if let Some(t) = self.1.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn curl_reuses_one_connection_for_two_requests() {
    let curl = "curl";
    if Command::new(curl).arg("--version").output().is_err() {
        eprintln!("curl is not installed: skipping the keep-alive check with curl");
        return;
    }
    let (addr, _ends, _server) = start_server(Duration::from_secs(10));
    let url = format!("http://{addr}/");
    let out = Command::new(curl)
        .args(["--silent", "--show-error", "--max-time", "10"])
        .args(["--write-out", " connects=%{num_connects}\n"])
        .args([&url, &url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The second transfer reused the first one's connection: no new connect.
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Hello, World! connects=1\nHello, World! connects=0\n"
    );
}

#[test]
fn an_idle_connection_is_closed_by_its_time_limit() {
    let (addr, ends, _server) = start_server(Duration::from_millis(200));
    let mut conn = client(addr);
    conn.get_mut().write_all(GET).unwrap();
    let response = read_response(&mut conn);
    assert_eq!(response.body, b"Hello, World!");
    // Silent from now on: the server closes the connection, without an
    // answer (no request was begun), and its task ends with `TimedOut`.
    let mut rest = Vec::new();
    conn.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    assert_eq!(
        ends.recv().unwrap().unwrap_err().kind(),
        io::ErrorKind::TimedOut
    );
}

/// A client connection, with time limits so that a broken server fails
/// the test instead of hanging it.
fn client(addr: SocketAddr) -> BufReader<std::net::TcpStream> {
    let conn = std::net::TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    BufReader::new(conn)
}

/// One response, read off a connection.
#[derive(Debug)]
struct Response {
    status: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one response, its body framed by `Content-Length`.
fn read_response(conn: &mut BufReader<std::net::TcpStream>) -> Response {
    let mut status = String::new();
    conn.read_line(&mut status).unwrap();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        conn.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').expect("a header line");
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    let mut response = Response {
        status: status.trim_end().to_owned(),
        headers,
        body: Vec::new(),
    };
    let len = response
        .header("content-length")
        .expect("Content-Length")
        .parse()
        .unwrap();
    response.body = vec![0; len];
    conn.read_exact(&mut response.body).unwrap();
    response
}

/// Reads the rest of the connection, which must end without more bytes.
fn assert_closed(conn: &mut BufReader<std::net::TcpStream>) {
    let mut rest = Vec::new();
    conn.read_to_end(&mut rest).unwrap();
    assert_eq!(String::from_utf8_lossy(&rest), "", "the server closed");
}

#[test]
fn the_routes_over_a_connection_kept_alive() {
    let (addr, ends, server) = start_server(Duration::from_secs(10));
    let mut conn = client(addr);
    // One request after the other on one connection: keep-alive.
    for _ in 0..3 {
        conn.get_mut().write_all(GET).unwrap();
        let r = read_response(&mut conn);
        assert_eq!(
            (r.status.as_str(), &r.body[..]),
            ("HTTP/1.1 200 OK", HELLO_BODY)
        );
        assert_eq!(r.header("content-type"), Some("text/plain"));

        conn.get_mut()
            .write_all(b"GET /json HTTP/1.1\r\nHost: test\r\n\r\n")
            .unwrap();
        let r = read_response(&mut conn);
        assert_eq!(
            (r.status.as_str(), &r.body[..]),
            ("HTTP/1.1 200 OK", &br#"{"message":"Hello, World!"}"#[..])
        );
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("server"), Some("cogen"));
        assert!(r.header("date").is_some_and(|d| d.ends_with(" GMT")));

        conn.get_mut()
            .write_all(b"GET /nowhere HTTP/1.1\r\nHost: test\r\n\r\n")
            .unwrap();
        let r = read_response(&mut conn);
        assert_eq!(
            (r.status.as_str(), &r.body[..]),
            ("HTTP/1.1 404 Not Found", &b""[..])
        );
    }
    // The client closes: the connection's task ends well.
    drop(conn);
    assert!(ends.recv().unwrap().is_ok());
    drop(server);
}

const HELLO_BODY: &[u8] = b"Hello, World!";

#[test]
fn pipelined_requests_in_one_write_and_split_across_writes() {
    let (addr, _ends, _server) = start_server(Duration::from_secs(10));
    let mut conn = client(addr);
    // 100 requests in one write, answered in order.
    let mut burst = Vec::new();
    for i in 0..100 {
        burst.extend_from_slice(if i % 2 == 0 {
            GET
        } else {
            b"GET /json HTTP/1.1\r\nHost: test\r\n\r\n"
        });
    }
    conn.get_mut().write_all(&burst).unwrap();
    for i in 0..100 {
        let r = read_response(&mut conn);
        let expected: &[u8] = if i % 2 == 0 {
            HELLO_BODY
        } else {
            br#"{"message":"Hello, World!"}"#
        };
        assert_eq!(r.body, expected, "response {i}");
    }
    // Two requests cut anywhere, written in two pieces: both answered.
    let two = [GET, GET].concat();
    for cut in [1, 10, GET.len() - 1, GET.len(), GET.len() + 3] {
        conn.get_mut().write_all(&two[..cut]).unwrap();
        conn.get_mut().flush().unwrap();
        thread::sleep(Duration::from_millis(5));
        conn.get_mut().write_all(&two[cut..]).unwrap();
        for _ in 0..2 {
            assert_eq!(read_response(&mut conn).body, HELLO_BODY, "cut at {cut}");
        }
    }
}

#[test]
fn a_bad_request_gets_400_and_the_connection_closed() {
    let (addr, ends, _server) = start_server(Duration::from_secs(10));
    let mut conn = client(addr);
    conn.get_mut()
        .write_all(b"GET / HTTP/1.1\r\nBad Header\r\n\r\nGET / HTTP/1.1\r\n\r\n")
        .unwrap();
    let r = read_response(&mut conn);
    assert_eq!(r.status, "HTTP/1.1 400 Bad Request");
    assert_eq!(r.header("connection"), Some("close"));
    // The request after it is never answered.
    assert_closed(&mut conn);
    drop(conn);
    assert!(ends.recv().unwrap().is_ok());
}

#[test]
fn a_head_over_8_kib_gets_431_and_the_connection_closed() {
    let (addr, ends, _server) = start_server(Duration::from_secs(10));
    // Many headers of 100 bytes (more than the server parses), or one
    // long one; a head that ends, or one still going.
    for (many, complete) in [(true, false), (true, true), (false, false), (false, true)] {
        let mut conn = client(addr);
        // Headers until the head is over the limit: the answer comes as
        // soon as it is, whether or not the head ends.
        let mut head = b"GET / HTTP/1.1\r\nHost: test\r\n".to_vec();
        if many {
            let mut i = 0;
            while head.len() <= http::MAX_HEAD {
                head.extend_from_slice(
                    format!("X-Filler-{i:04}: {}\r\n", "a".repeat(82)).as_bytes(),
                );
                i += 1;
            }
        } else {
            head.extend_from_slice(b"X-Long: ");
            head.resize(http::MAX_HEAD + 100, b'a');
            head.extend_from_slice(b"\r\n");
        }
        if complete {
            head.extend_from_slice(b"\r\n");
        }
        // The server may close before it has read everything: a write
        // error then is fine, the answer is still there to read.
        let _ = conn.get_mut().write_all(&head);
        let r = read_response(&mut conn);
        assert_eq!(r.status, "HTTP/1.1 431 Request Header Fields Too Large");
        assert_eq!(r.header("connection"), Some("close"));
        assert_closed(&mut conn);
        // The server reads on until the client closes too (so that unread
        // input does not reset the connection before the answer is read).
        drop(conn);
        assert!(ends.recv().unwrap().is_ok());
    }
}

#[test]
fn curl_gets_both_routes() {
    let curl = "curl";
    if Command::new(curl).arg("--version").output().is_err() {
        eprintln!("curl is not installed: skipping the routes check with curl");
        return;
    }
    let (addr, _ends, _server) = start_server(Duration::from_secs(10));
    let out = Command::new(curl)
        .args(["--silent", "--show-error", "--max-time", "10"])
        .args(["--write-out", " %{http_code} %{content_type}\n"])
        .arg(format!("http://{addr}/json"))
        .arg(format!("http://{addr}/nowhere"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{\"message\":\"Hello, World!\"} 200 application/json\n 404 text/plain\n"
    );
}
