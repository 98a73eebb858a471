//! `examples/http_server`'s HTTP code (its `http.rs`, included as it is):
//! the request handler on its own (pipelining, partial requests, errors),
//! and the connection task against real clients, `curl` among them.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
/// `idle` as their read time limit, until the returned guard is dropped.
fn start_server(idle: Duration) -> (SocketAddr, ServerGuard) {
    let stop = Arc::new(AtomicBool::new(false));
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let stopping = stop.clone();
    let thread = thread::spawn(move || {
        EventLoop::new()
            .block_on(move || {
                let listener = TcpListener::bind("127.0.0.1:0").unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                while !stopping.load(Ordering::Relaxed) {
                    if let Ok((stream, _)) = listener.accept_timeout(Duration::from_millis(50)) {
                        spawn(move || http::serve_connection(stream, idle).unwrap());
                    }
                }
            })
            .unwrap();
    });
    let addr = addr_rx.recv().unwrap();
    (addr, ServerGuard(stop, Some(thread)))
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
    let (addr, _server) = start_server(Duration::from_secs(10));
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
fn an_idle_connection_is_closed_by_its_read_time_limit() {
    let (addr, _server) = start_server(Duration::from_millis(200));
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(GET).unwrap();
    let mut answer = vec![0; 1024];
    let n = conn.read(&mut answer).unwrap();
    assert!(answer[..n].ends_with(b"Hello, World!"));
    // Silent from now on: the server closes the connection.
    let mut rest = Vec::new();
    conn.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
}
