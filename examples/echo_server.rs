//! An echo server: one task per connection, each echoing every byte back
//! until its client closes, and one thread serving them all.
//!
//! ```text
//! cargo run --release --example echo_server -- [--addr HOST:PORT]
//! ```
//!
//! It prints `listening on ADDR` first (port 0 picks a free port), then
//! serves until it is killed. Try it with `nc 127.0.0.1 7878`.
//!
//! The connection's code reads like blocking code: read, write, loop. A
//! read with nothing to read parks the connection's task, and the loop
//! runs the others meanwhile.

use std::io::{self, Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use cogen::event_loop::net::{TcpListener, TcpStream};
use cogen::event_loop::{EventLoop, sleep, spawn};

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
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--addr", Some(value)) => addr = value,
            _ => {
                eprintln!("usage: echo_server [--addr HOST:PORT]");
                return ExitCode::FAILURE;
            }
        }
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
