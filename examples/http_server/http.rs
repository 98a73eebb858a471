//! The HTTP/1.1 part of `http_server`: [`handle`] answers the complete
//! requests at the start of a buffer (parsed with `httparse`, no I/O), and
//! [`serve_connection`] is one connection's task: read, answer, write, loop.
//!
//! `benches/net.rs` and `tests/http.rs` include this file as it is, so the
//! server they measure and test is this one.

use std::io::{self, Read, Write};
use std::time::Duration;

use cogen::event_loop::net::TcpStream;

/// The longest request head (request line and headers) a client may send;
/// a longer one is answered with 431 and the connection closed.
pub const MAX_HEAD: usize = 8 * 1024;
/// Headers per request, at most; more is a malformed request (400).
const MAX_HEADERS: usize = 32;
/// The body of `GET /`.
pub const HELLO: &[u8] = b"Hello, World!";

/// What [`handle`] did with its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handled {
    /// Bytes of the input taken by complete requests (the rest is the
    /// start of a request still coming).
    pub consumed: usize,
    /// The last response says `Connection: close`: write the responses,
    /// then close the connection.
    pub close: bool,
}

/// Answers every complete request at the start of `input` (pipelined
/// requests one after the other), appending the responses to `out` in
/// order. Stops after a request that ends the connection: a malformed one
/// (400), one too large (431), a body it cannot frame (501), or one that
/// asks for `Connection: close`.
pub fn handle(input: &[u8], out: &mut Vec<u8>) -> Handled {
    let mut consumed = 0;
    loop {
        let rest = &input[consumed..];
        if rest.is_empty() {
            return Handled {
                consumed,
                close: false,
            };
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        let head_len = match req.parse(rest) {
            Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD => len,
            Ok(httparse::Status::Complete(_)) => {
                return error(out, consumed, "431 Request Header Fields Too Large");
            }
            Ok(httparse::Status::Partial) if rest.len() >= MAX_HEAD => {
                return error(out, consumed, "431 Request Header Fields Too Large");
            }
            Ok(httparse::Status::Partial) => {
                return Handled {
                    consumed,
                    close: false,
                };
            }
            Err(_) => return error(out, consumed, "400 Bad Request"),
        };
        // Keep-alive is HTTP/1.1's default, HTTP/1.0's exception.
        let mut keep_alive = req.version == Some(1);
        let mut body_len = 0usize;
        for h in req.headers.iter() {
            if h.name.eq_ignore_ascii_case("connection") {
                if h.value.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if h.value.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive = true;
                }
            } else if h.name.eq_ignore_ascii_case("content-length") {
                match std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse().ok())
                {
                    Some(n) => body_len = n,
                    None => return error(out, consumed, "400 Bad Request"),
                }
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                return error(out, consumed, "501 Not Implemented");
            }
        }
        if body_len > MAX_HEAD {
            return error(out, consumed, "413 Content Too Large");
        }
        if rest.len() < head_len + body_len {
            // The body is still coming: answer once it is all here.
            return Handled {
                consumed,
                close: false,
            };
        }
        consumed += head_len + body_len;
        let connection = if keep_alive {
            ""
        } else {
            "Connection: close\r\n"
        };
        match (req.method, req.path) {
            (Some("GET"), Some("/")) => {
                respond(out, "200 OK", connection, HELLO);
            }
            (Some("HEAD"), Some("/")) => {
                // The head of the GET response, without its body.
                respond(out, "200 OK", connection, HELLO);
                out.truncate(out.len() - HELLO.len());
            }
            (_, Some("/")) => {
                respond(out, "405 Method Not Allowed", connection, b"");
            }
            _ => respond(out, "404 Not Found", connection, b""),
        }
        if !keep_alive {
            return Handled {
                consumed,
                close: true,
            };
        }
    }
}

/// Appends one response with a plain-text `body`.
fn respond(out: &mut Vec<u8>, status: &str, connection: &str, body: &[u8]) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_bytes());
    out.extend_from_slice(b"\r\nServer: cogen\r\nContent-Type: text/plain\r\n");
    out.extend_from_slice(connection.as_bytes());
    out.extend_from_slice(b"Content-Length: ");
    push_decimal(out, body.len());
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
}

/// The answer to a request that ends the connection.
fn error(out: &mut Vec<u8>, consumed: usize, status: &str) -> Handled {
    respond(out, status, "Connection: close\r\n", b"");
    Handled {
        consumed,
        close: true,
    }
}

/// Appends `n` in decimal.
fn push_decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

/// One connection, until the client closes it, sends something that ends
/// it, or stays silent for `idle`: read what has come, answer every
/// complete request in it, write all the answers at once, loop.
pub fn serve_connection(stream: TcpStream, idle: Duration) -> io::Result<()> {
    stream.set_read_timeout(Some(idle))?;
    let mut input = vec![0u8; 2 * MAX_HEAD];
    let mut out = Vec::with_capacity(4096);
    let mut end = 0; // input[..end] is read and not yet answered
    loop {
        let n = match (&stream).read(&mut input[end..]) {
            Ok(0) => return Ok(()), // the client closed
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::TimedOut => return Ok(()), // idle
            Err(e) => return Err(e),
        };
        end += n;
        let handled = handle(&input[..end], &mut out);
        if !out.is_empty() {
            (&stream).write_all(&out)?;
            out.clear();
        }
        if handled.close {
            return Ok(());
        }
        // What is left is the start of the next request: move it to the
        // front. It always fits: a head is at most `MAX_HEAD` bytes (431
        // otherwise), a body too (413), and the buffer holds both.
        input.copy_within(handled.consumed..end, 0);
        end -= handled.consumed;
    }
}
