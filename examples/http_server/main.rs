//! An HTTP/1.1 server with keep-alive and pipelining, after TechEmpower's
//! plaintext and JSON tests: `GET /` answers `Hello, World!`, `GET /json`
//! answers `{"message":"Hello, World!"}`, other paths 404; one task per
//! connection, one thread serving them all (or, with `--threads N`, N
//! threads, each with its own loop and listener).
//!
//! ```text
//! cargo run --release --example http_server -- [--addr HOST:PORT] [--threads N]
//! ```
//!
//! It prints `listening on ADDR` first (port 0 picks a free port), then
//! serves until it is killed. Try it with `curl http://127.0.0.1:7880/json`.
//!
//! Each connection's task is straight-line code (`http.rs`): read into a
//! buffer, answer every complete request in it (a client may pipeline
//! several), write all the answers in one write, loop. A malformed request
//! gets a 400 and a request head over 8 KiB a 431, and the connection is
//! closed; so is a connection silent for `IDLE`, one whose request takes
//! longer than `IDLE` to arrive (it gets a 408), and one that leaves its
//! answers unread for `IDLE`.

use std::io;
use std::process::ExitCode;
use std::time::Duration;

use cogen::event_loop::net::TcpStream;

mod http;
#[path = "../support/server.rs"]
mod server;

const DEFAULT_ADDR: &str = "127.0.0.1:7880";
/// A connection silent this long, a request this slow, or a client that
/// leaves its answers unread this long, is closed.
const IDLE: Duration = Duration::from_secs(30);

/// One connection's task.
fn handle(stream: TcpStream) {
    match http::serve_connection(stream, IDLE) {
        // Closed by either side, too slow, or reset by a client that went
        // away (load generators like `wrk` end that way): all in a day's
        // work.
        Ok(()) => {}
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::TimedOut
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::BrokenPipe
            ) => {}
        Err(e) => eprintln!("connection: {e}"),
    }
}

fn main() -> ExitCode {
    server::main("http_server", DEFAULT_ADDR, handle)
}
