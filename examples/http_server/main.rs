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
use std::net::ToSocketAddrs;
use std::process::ExitCode;
use std::time::Duration;

use cogen::event_loop::net::TcpListener;
use cogen::event_loop::{EventLoop, Runtime, bind_reuseport, sleep, spawn};

mod http;

const DEFAULT_ADDR: &str = "127.0.0.1:7880";
/// A connection silent this long, a request this slow, or a client that
/// leaves its answers unread this long, is closed.
const IDLE: Duration = Duration::from_secs(30);

fn serve(addr: String) -> io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    println!("listening on {}", listener.local_addr()?);
    accept_loop(&listener)
}

/// `--threads N` with N > 1: a `Runtime` of N loops, each accepting on its
/// own listener; the listeners share the address (`SO_REUSEPORT`) and the
/// kernel spreads the connections over them. A connection's task stays on
/// the loop that accepted it.
fn serve_threads(addr: String, threads: usize) -> io::Result<()> {
    let addr = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address"))?;
    let first = bind_reuseport(addr)?;
    // Port 0 picked a port: the other listeners bind that one.
    let addr = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..threads {
        listeners.push(bind_reuseport(addr)?);
    }
    println!("listening on {addr}");
    let rt = Runtime::builder().threads(threads).build()?;
    let accepting: Vec<_> = rt
        .handles()
        .iter()
        .zip(listeners)
        .map(|(lp, listener)| lp.spawn(move || accept_loop(&TcpListener::try_from(listener)?)))
        .collect();
    for a in accepting {
        a.join().map_err(io::Error::other)??;
    }
    Ok(())
}

/// Accepts connections forever, one task each.
fn accept_loop(listener: &TcpListener) -> io::Result<()> {
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
    let mut threads = 1;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--addr", Some(value)) => addr = value,
            ("--threads", Some(value)) if value.parse::<usize>().is_ok_and(|n| n > 0) => {
                threads = value.parse().unwrap_or(1);
            }
            _ => {
                eprintln!("usage: http_server [--addr HOST:PORT] [--threads N]");
                return ExitCode::FAILURE;
            }
        }
    }
    if threads > 1 {
        return match serve_threads(addr, threads) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("http_server: {e}");
                ExitCode::FAILURE
            }
        };
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
