//! An echo server: one task per connection, each echoing every byte back
//! until its client closes, and one thread serving them all (or, with
//! `--threads N`, N threads, each with its own loop and listener).
//!
//! ```text
//! cargo run --release --example echo_server -- [--addr HOST:PORT] [--threads N]
//! ```
//!
//! It prints `listening on ADDR` first (port 0 picks a free port), then
//! serves until it is killed. Try it with `nc 127.0.0.1 7878`.
//!
//! The connection's code reads like blocking code: read, write, loop. A
//! read with nothing to read parks the connection's task, and the loop
//! runs the others meanwhile.

use std::io::{self, Read, Write};
use std::net::ToSocketAddrs;
use std::process::ExitCode;
use std::time::Duration;

use cogen::event_loop::net::{TcpListener, TcpStream};
use cogen::event_loop::{EventLoop, Runtime, bind_reuseport, sleep, spawn};

const DEFAULT_ADDR: &str = "127.0.0.1:7878";

/// Echoes until the client closes its side; returns the bytes echoed.
fn echo(mut stream: TcpStream) -> io::Result<u64> {
    let mut buf = [0; 4096];
    let mut total = 0;
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        stream.write_all(&buf[..n])?;
        total += n as u64;
    }
}

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
                    if let Err(e) = echo(stream) {
                        eprintln!("connection: {e}");
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
                eprintln!("usage: echo_server [--addr HOST:PORT] [--threads N]");
                return ExitCode::FAILURE;
            }
        }
    }
    if threads > 1 {
        return match serve_threads(addr, threads) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("echo_server: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match EventLoop::new().block_on(move || serve(addr)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("echo_server: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("echo_server: {e}");
            ExitCode::FAILURE
        }
    }
}
