//! A line-based chat server: every line a client sends goes to every other
//! client, as `client N: line`. One thread serves them all.
//!
//! ```text
//! cargo run --release --example chat_server -- [--addr HOST:PORT]
//! ```
//!
//! It prints `listening on ADDR` first (port 0 picks a free port), then
//! serves until it is killed. Try it with two or more `nc 127.0.0.1 7879`.
//! A new client is greeted with `welcome, client N`.
//!
//! Each client has two tasks: one reads its lines and hands each to the
//! other clients' queues; the other writes the lines queued for it.
//!
//! **Slow clients are disconnected.** Each client's queue holds at most
//! `QUEUE` lines. A client that does not read falls behind: first its
//! socket's buffers fill, then its queue; when a line finds its queue
//! full, the client is disconnected (its socket is shut down, which also
//! ends a write parked on it). So one slow client can neither stall the
//! others nor make the server hold an unbounded backlog for it. Lines are
//! cut at `MAX_LINE` bytes, for the same reason (between characters: one
//! cut in two goes on with the next piece). Bytes that are not UTF-8 are
//! relayed as U+FFFD.

use std::cell::RefCell;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::Shutdown;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

use cogen::event_loop::net::{TcpListener, TcpStream};
use cogen::event_loop::{EventLoop, Sender, TrySendError, channel, sleep, spawn, yield_now};

const DEFAULT_ADDR: &str = "127.0.0.1:7879";
/// Lines waiting for one client, at most.
const QUEUE: usize = 64;
/// The longest line, in bytes; longer ones are cut.
const MAX_LINE: u64 = 1024;

/// A connected client, as the others see it.
struct Client {
    id: u64,
    queue: Sender<Rc<str>>,
    stream: Rc<TcpStream>,
}

/// Everyone connected.
type Room = Rc<RefCell<Vec<Client>>>;

/// Queues `line` for every client but `from`; disconnects those whose
/// queue is full.
fn broadcast(room: &Room, from: u64, line: &Rc<str>) {
    let mut slow = Vec::new();
    for client in room.borrow().iter().filter(|c| c.id != from) {
        if let Err(TrySendError::Full(_)) = client.queue.try_send(line.clone()) {
            slow.push(client.id);
        }
    }
    for id in slow {
        eprintln!("client {id} is too slow: disconnected");
        leave(room, id);
    }
}

/// Takes client `id` out of the room and shuts its socket down: its
/// writer stops (its queue is closed, a parked write fails) and its
/// reader sees the end of the stream.
fn leave(room: &Room, id: u64) {
    let client = {
        let mut room = room.borrow_mut();
        let i = room.iter().position(|c| c.id == id);
        i.map(|i| room.swap_remove(i))
    };
    if let Some(client) = client {
        let _ = client.stream.shutdown(Shutdown::Both);
    }
}

/// One client's life: greet it, start its writer, relay its lines.
fn serve_client(id: u64, stream: TcpStream, room: Room) {
    let stream = Rc::new(stream);
    let (queue, lines) = channel::<Rc<str>>(QUEUE);
    let out = stream.clone();
    let writer = spawn(move || {
        for line in lines.iter() {
            if (&*out).write_all(line.as_bytes()).is_err() {
                break;
            }
        }
        let _ = out.shutdown(Shutdown::Both);
    });
    let welcome: Rc<str> = format!("welcome, client {id}\n").into();
    let _ = queue.try_send(welcome); // the queue is empty
    room.borrow_mut().push(Client {
        id,
        queue,
        stream: stream.clone(),
    });

    let mut reader = BufReader::new(&*stream);
    // The first bytes of a character that the last cut split.
    let mut carried = Vec::new();
    loop {
        let mut bytes = std::mem::take(&mut carried);
        let ended = match (&mut reader).take(MAX_LINE).read_until(b'\n', &mut bytes) {
            // The client left (or was disconnected): what was carried, if
            // anything, goes out as it is.
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => {
                eprintln!("client {id}: {e}");
                break;
            }
        };
        if ended && bytes.is_empty() {
            break;
        }
        if bytes.last() != Some(&b'\n') {
            if !ended {
                // Cut at `MAX_LINE`: a character cut in two goes on with
                // the next piece.
                let cut = bytes.len() - incomplete_tail(&bytes);
                carried = bytes.split_off(cut);
            }
            bytes.push(b'\n');
        }
        let line = String::from_utf8_lossy(&bytes);
        broadcast(&room, id, &format!("client {id}: {line}").into());
        if ended {
            break;
        }
        // Lets the writers send it before this reader takes the next line
        // from its buffer: a burst from one client must not fill the
        // queues of clients that keep up.
        yield_now();
    }
    leave(&room, id);
    let _ = writer.join();
}

/// How many bytes at the end of `bytes` are the start of a UTF-8
/// character cut off: 0 if it ends with a whole one (or with bytes that
/// are not UTF-8 anyway).
fn incomplete_tail(bytes: &[u8]) -> usize {
    let from = bytes.len().saturating_sub(3);
    // The last byte that is not a continuation byte starts the last
    // character.
    match (from..bytes.len()).rev().find(|&i| bytes[i] & 0xC0 != 0x80) {
        Some(start) => match std::str::from_utf8(&bytes[start..]) {
            Err(e) if e.error_len().is_none() => bytes.len() - start,
            _ => 0,
        },
        None => 0,
    }
}

fn serve(addr: String) -> io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    println!("listening on {}", listener.local_addr()?);
    let room = Room::default();
    let mut next_id = 1;
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let (id, room) = (next_id, room.clone());
                next_id += 1;
                spawn(move || serve_client(id, stream, room));
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
                eprintln!("usage: chat_server [--addr HOST:PORT]");
                return ExitCode::FAILURE;
            }
        }
    }
    match EventLoop::new().block_on(move || serve(addr)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("chat_server: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("chat_server: {e}");
            ExitCode::FAILURE
        }
    }
}
