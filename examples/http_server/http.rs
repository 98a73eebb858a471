//! The HTTP/1.1 part of `http_server`: [`handle`] answers the complete
//! requests at the start of a buffer (parsed with `httparse`, no I/O), and
//! [`serve_connection`] is one connection's task: read, answer, write, loop.
//!
//! The routes are TechEmpower's plaintext and JSON tests: `GET /` answers
//! `Hello, World!` as `text/plain`, `GET /json` answers
//! `{"message":"Hello, World!"}` as `application/json`; every response has
//! `Server`, `Date` and `Content-Length` headers. (TechEmpower also asks
//! for a JSON serializer to build the body on each request; without a JSON
//! dependency, this example writes a constant.)
//!
//! `benches/net.rs` and `tests/http.rs` include this file as it is, so the
//! server they measure and test is this one.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::mem::MaybeUninit;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cogen::event_loop::net::TcpStream;

/// The longest request head (request line and headers) a client may send;
/// a longer one is answered with 431 and the connection closed.
pub const MAX_HEAD: usize = 8 * 1024;
/// Headers per request, at most; more is a head too large (431) too.
const MAX_HEADERS: usize = 32;
/// The body of `GET /`.
pub const HELLO: &[u8] = b"Hello, World!";
/// The body of `GET /json`.
pub const JSON: &[u8] = br#"{"message":"Hello, World!"}"#;

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
    let mut date = Date::default();
    loop {
        let rest = &input[consumed..];
        if rest.is_empty() {
            return Handled {
                consumed,
                close: false,
            };
        }
        // Left uninitialised: httparse fills as many as the request has
        // (clearing 32 empty headers cost more than parsing a short head).
        let mut headers = [const { MaybeUninit::uninit() }; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut []);
        let head_len = match req.parse_with_uninit_headers(rest, &mut headers) {
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
            Err(httparse::Error::TooManyHeaders) => {
                return error(out, consumed, "431 Request Header Fields Too Large");
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
        let (status, content_type, body) = match (req.method, route(req.path)) {
            (_, None) => ("404 Not Found", TEXT, &b""[..]),
            (Some("GET" | "HEAD"), Some((content_type, body))) => ("200 OK", content_type, body),
            (_, Some(_)) => ("405 Method Not Allowed", TEXT, &b""[..]),
        };
        respond(out, date.text(), status, content_type, connection, body);
        if req.method == Some("HEAD") {
            // The head of the GET response, without its body.
            out.truncate(out.len() - body.len());
        }
        if !keep_alive {
            return Handled {
                consumed,
                close: true,
            };
        }
    }
}

const TEXT: &str = "text/plain";

/// The content type and body of a path's `GET`, or `None` for a path
/// that does not exist.
fn route(path: Option<&str>) -> Option<(&'static str, &'static [u8])> {
    match path? {
        "/" => Some((TEXT, HELLO)),
        "/json" => Some(("application/json", JSON)),
        _ => None,
    }
}

/// Appends one response.
fn respond(
    out: &mut Vec<u8>,
    date: &[u8; DATE_LEN],
    status: &str,
    content_type: &str,
    connection: &str,
    body: &[u8],
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_bytes());
    out.extend_from_slice(b"\r\nServer: cogen\r\nDate: ");
    out.extend_from_slice(date);
    out.extend_from_slice(b"\r\nContent-Type: ");
    out.extend_from_slice(content_type.as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(connection.as_bytes());
    out.extend_from_slice(b"Content-Length: ");
    push_decimal(out, body.len());
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
}

/// The answer to a request that ends the connection.
fn error(out: &mut Vec<u8>, consumed: usize, status: &str) -> Handled {
    respond_closing(out, status);
    Handled {
        consumed,
        close: true,
    }
}

/// Appends an empty answer with `status` that closes the connection (an
/// error, which ends it, reads the clock for its own `Date`).
fn respond_closing(out: &mut Vec<u8>, status: &str) {
    let close = "Connection: close\r\n";
    respond(out, &current_date(), status, TEXT, close, b"");
}

/// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`) is this long.
const DATE_LEN: usize = 29;

thread_local! {
    /// The `Date` header's value, formatted once a second: the second it
    /// is for, and its text.
    static DATE: Cell<(u64, [u8; DATE_LEN])> = const { Cell::new((u64::MAX, [0; DATE_LEN])) };
}

/// The `Date` header's text for the answers of one [`handle`] call: the
/// clock is read for the first of them only (a pipelined batch of 16
/// requests reads it once, not 16 times). An error, which ends the
/// connection, reads it itself.
#[derive(Default)]
struct Date(Option<[u8; DATE_LEN]>);

impl Date {
    fn text(&mut self) -> &[u8; DATE_LEN] {
        self.0.get_or_insert_with(current_date)
    }
}

/// The current time as an HTTP date (RFC 9110, IMF-fixdate).
fn current_date() -> [u8; DATE_LEN] {
    let now = unix_seconds();
    let (second, mut text) = DATE.get();
    if second != now {
        text = http_date(now);
        DATE.set((now, text));
    }
    text
}

/// Whole seconds since the Unix epoch. On Linux from the kernel's coarse
/// clock, which reads the time of the last timer tick (a few milliseconds'
/// resolution, plenty for a date to the second) without the precise
/// clock's arithmetic: about a third of `SystemTime::now`'s instructions.
fn unix_seconds() -> u64 {
    #[cfg(target_os = "linux")]
    {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `now` is a valid `timespec` to write to, and the clock
        // id is one Linux has.
        if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut now) } == 0 {
            return u64::try_from(now.tv_sec).unwrap_or(0);
        }
    }
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `secs` after the Unix epoch as an HTTP date.
pub fn http_date(secs: u64) -> [u8; DATE_LEN] {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let days = secs / 86_400;
    let of_day = secs % 86_400;
    // Days to a civil date (Howard Hinnant's `civil_from_days`), for
    // dates after 1970.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);

    let mut text = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    text[..3].copy_from_slice(DAYS[(days % 7) as usize]);
    two_digits(&mut text[5..7], day);
    text[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
    two_digits(&mut text[12..14], year / 100 % 100);
    two_digits(&mut text[14..16], year % 100);
    two_digits(&mut text[17..19], of_day / 3600);
    two_digits(&mut text[20..22], of_day / 60 % 60);
    two_digits(&mut text[23..25], of_day % 60);
    text
}

/// Writes `n` (below 100) as two decimal digits.
fn two_digits(to: &mut [u8], n: u64) {
    to[0] = b'0' + (n / 10) as u8;
    to[1] = b'0' + (n % 10) as u8;
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
/// it, or is too slow: read what has come, answer every complete request
/// in it, write all the answers at once, loop.
///
/// `idle` limits how long the connection may stay silent between
/// requests, how long a request may take to arrive once its first byte
/// has (so that a client dribbling a byte at a time cannot hold the
/// connection: a time limit per read alone would not stop it), and how
/// long a write may wait for a client that does not read its answers. A
/// request cut short by its limit is answered with 408; any of the three
/// ends the connection with an error of kind [`io::ErrorKind::TimedOut`].
/// `Ok` means the client closed its side, or a request ended the
/// connection (a 400, say).
pub fn serve_connection(stream: TcpStream, idle: Duration) -> io::Result<()> {
    stream.set_write_timeout(Some(idle))?;
    let mut input = vec![0u8; 2 * MAX_HEAD];
    let mut out = Vec::with_capacity(4096);
    let mut end = 0; // input[..end] is read and not yet answered
    // When the request begun in `input[..end]` must be complete (`None`
    // while `end` is 0). Whole requests, the common case, never read the
    // clock.
    let mut deadline: Option<Instant> = None;
    loop {
        // Wait `idle` for a new request, or what is left of the time for
        // the one begun. A read makes its system call before it waits, so
        // a client that always has a byte ready would never time out: the
        // deadline is checked here.
        let limit = match deadline {
            None => idle,
            Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => left,
                _ => return Err(request_timeout(&stream, &mut out)),
            },
        };
        stream.set_read_timeout(Some(limit))?;
        let n = match (&stream).read(&mut input[end..]) {
            Ok(0) => return Ok(()), // the client closed
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::TimedOut && end > 0 => {
                return Err(request_timeout(&stream, &mut out));
            }
            Err(e) => return Err(e),
        };
        let begun = end > 0;
        end += n;
        let handled = handle(&input[..end], &mut out);
        if !out.is_empty() {
            (&stream).write_all(&out)?;
            out.clear();
        }
        if handled.close {
            close_gracefully(&stream, &mut input, idle);
            return Ok(());
        }
        // What is left is the start of the next request: move it to the
        // front. It always fits: a head is at most `MAX_HEAD` bytes (431
        // otherwise), a body too (413), and the buffer holds both.
        input.copy_within(handled.consumed..end, 0);
        end -= handled.consumed;
        if end == 0 {
            deadline = None;
        } else if !begun || handled.consumed > 0 {
            // A request began in this read: its time starts now.
            deadline = Some(Instant::now() + idle);
        }
    }
}

/// Ends a connection whose last answer is written: closes the sending
/// side, then reads and drops what the client still sends, for a while.
///
/// Closing a socket with unread input makes the kernel reset the
/// connection, and a reset can destroy the answer before the client has
/// read it: a client that sent a request too large (431), or pipelined
/// more after the one that ended the connection, would see a reset instead
/// of its answer. At most `LINGER` bytes and `idle` (at most a second) are
/// spent.
fn close_gracefully(stream: &TcpStream, buf: &mut [u8], idle: Duration) {
    const LINGER: usize = 64 * 1024;
    if stream.shutdown(std::net::Shutdown::Write).is_err() {
        return;
    }
    let deadline = Instant::now() + idle.min(Duration::from_secs(1));
    let mut drained = 0;
    while drained < LINGER {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            return;
        };
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match (&*stream).read(buf) {
            Ok(0) | Err(_) => return, // the client closed too, or gave up
            Ok(n) => drained += n,
        }
    }
}

/// Answers a request that did not arrive in time with 408, and returns
/// the error that ends its connection.
fn request_timeout(stream: &TcpStream, out: &mut Vec<u8>) -> io::Error {
    respond_closing(out, "408 Request Timeout");
    // Best effort: a client this slow may not be reading either, and the
    // connection ends anyway.
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let _ = (&*stream).write_all(out);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    io::Error::new(io::ErrorKind::TimedOut, "request not complete in time")
}
