//! An HTTP/1.1 server with keep-alive and pipelining, after TechEmpower's
//! plaintext and JSON tests: `GET /` answers `Hello, World!`, `GET /json`
//! answers `{"message":"Hello, World!"}`, other paths 404; one task per
//! connection, one thread serving them all.
//!
//! ```text
//! cargo run --release --example http_server -- [--addr HOST:PORT]
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

use cogen::event_loop::net::TcpListener;
use cogen::event_loop::{EventLoop, sleep, spawn};

mod http;

const DEFAULT_ADDR: &str = "127.0.0.1:7880";
/// A connection silent this long, a request this slow, or a client that
/// leaves its answers unread this long, is closed.
const IDLE: Duration = Duration::from_secs(30);

fn serve(addr: String) -> io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    println!("listening on {}", listener.local_addr()?);
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                spawn(move || {
                    match http::serve_connection(stream, IDLE) {
                        // Closed by either side, too slow, or reset by a
                        // client that went away (load generators like
                        // `wrk` end that way): all in a day's work.
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
                });
            }
            // Out of descriptors, or a connection reset before it was
            // accepted: the listener is fine; wait a little, go on.
            Err(e) => {
                eprintln!("accept: {e}");
                sleep(Duration::from_millis(100));
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let mut addr = DEFAULT_ADDR.to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--addr", Some(value)) => addr = value,
            _ => {
                eprintln!("usage: http_server [--addr HOST:PORT]");
                return ExitCode::FAILURE;
            }
        }
    }
    match EventLoop::new().block_on(move || serve(addr)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("http_server: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("http_server: {e}");
            ExitCode::FAILURE
        }
    }
}
