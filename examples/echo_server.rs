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
use std::process::ExitCode;

use cogen::event_loop::net::TcpStream;

#[path = "support/server.rs"]
mod server;

const DEFAULT_ADDR: &str = "127.0.0.1:7878";

/// Echoes until the client closes its side; returns the bytes echoed.
fn echo(mut stream: TcpStream) -> io::Result<u64> {
    // 1 KiB: with the frames above it, a connection parked in `read` keeps
    // one page of its stack resident; a 4 KiB buffer would make it two.
    let mut buf = [0; 1024];
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

/// One connection's task.
fn handle(stream: TcpStream) {
    if let Err(e) = echo(stream) {
        eprintln!("connection: {e}");
    }
}

fn main() -> ExitCode {
    server::main("echo_server", DEFAULT_ADDR, handle)
}
