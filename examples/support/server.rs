//! What the example servers share: the command line (`--addr HOST:PORT`,
//! `--threads N`), the accept loop that gives each connection a task of
//! its own, and serving it on one loop or, with N > 1, on the N loops of a
//! `Runtime`, each accepting on its own `SO_REUSEPORT` listener.

use std::io;
use std::net::ToSocketAddrs;
use std::process::ExitCode;
use std::time::Duration;

use cogen::event_loop::net::{TcpListener, TcpStream};
use cogen::event_loop::{EventLoop, Runtime, bind_reuseport, sleep, spawn};

/// Parses the command line, prints `listening on ADDR` and serves every
/// connection with `handle` (in a task of its own) until killed.
pub fn main(name: &str, default_addr: &str, handle: fn(TcpStream)) -> ExitCode {
    let mut addr = default_addr.to_string();
    let mut threads = 1;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--addr", Some(value)) => addr = value,
            ("--threads", Some(value)) if value.parse::<usize>().is_ok_and(|n| n > 0) => {
                threads = value.parse().unwrap_or(1);
            }
            _ => {
                eprintln!("usage: {name} [--addr HOST:PORT] [--threads N]");
                return ExitCode::FAILURE;
            }
        }
    }
    let served = if threads > 1 {
        serve_threads(addr, threads, handle)
    } else {
        EventLoop::new()
            .block_on(move || serve(addr, handle))
            .unwrap_or_else(|e| Err(io::Error::other(e)))
    };
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(addr: String, handle: fn(TcpStream)) -> io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    println!("listening on {}", listener.local_addr()?);
    accept_loop(&listener, handle)
}

/// `--threads N` with N > 1: a `Runtime` of N loops, each accepting on its
/// own listener; the listeners share the address (`SO_REUSEPORT`) and the
/// kernel spreads the connections over them. A connection's task stays on
/// the loop that accepted it.
fn serve_threads(addr: String, threads: usize, handle: fn(TcpStream)) -> io::Result<()> {
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
        .map(|(lp, listener)| {
            lp.spawn(move || accept_loop(&TcpListener::try_from(listener)?, handle))
        })
        .collect();
    for a in accepting {
        a.join().map_err(io::Error::other)??;
    }
    Ok(())
}

/// Accepts connections forever, one task each.
fn accept_loop(listener: &TcpListener, handle: fn(TcpStream)) -> io::Result<()> {
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                spawn(move || handle(stream));
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
