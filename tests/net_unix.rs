//! Unix domain sockets: `UnixListener` / `UnixStream` served by stackful
//! tasks for std clients, `pair`, conversions to and from std, future
//! tasks on a pair, and the errors of connect.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::thread;

use cogen::event_loop::net::{UnixListener, UnixStream};
use cogen::event_loop::{EventLoop, spawn};

/// A fresh socket path for `name` in a directory of this process.
fn socket_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cogen-net-unix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    path
}

#[test]
fn a_line_echo_server_serves_std_clients_over_a_unix_socket() {
    const CLIENTS: usize = 6;
    let path = socket_path("echo.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let p = path.clone();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let p = p.clone();
            thread::spawn(move || {
                let mut s = std::os::unix::net::UnixStream::connect(&p).unwrap();
                let mut lines = BufReader::new(s.try_clone().unwrap());
                for round in 0..50 {
                    writeln!(s, "client {i} round {round}").unwrap();
                    let mut back = String::new();
                    lines.read_line(&mut back).unwrap();
                    assert_eq!(back, format!("client {i} round {round}\n"));
                }
            })
        })
        .collect();
    let served = EventLoop::new()
        .block_on(move || {
            let mut tasks = Vec::new();
            for stream in listener.incoming().take(CLIENTS) {
                let stream = stream.unwrap();
                tasks.push(spawn(move || -> io::Result<usize> {
                    let mut lines = BufReader::new(&stream);
                    let mut line = String::new();
                    let mut n = 0;
                    while lines.read_line(&mut line)? > 0 {
                        (&stream).write_all(line.as_bytes())?;
                        line.clear();
                        n += 1;
                    }
                    Ok(n)
                }));
            }
            tasks
                .into_iter()
                .map(|t| t.join().unwrap().unwrap())
                .sum::<usize>()
        })
        .unwrap();
    for c in clients {
        c.join().unwrap();
    }
    assert_eq!(served, CLIENTS * 50);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn connect_and_accept_in_one_loop() {
    let path = socket_path("connect.sock");
    let p = path.clone();
    let got = EventLoop::new()
        .block_on(move || -> io::Result<Vec<u8>> {
            let listener = UnixListener::bind(&p)?;
            let server = spawn(move || -> io::Result<()> {
                let (stream, _) = listener.accept()?;
                // Bigger than the socket buffers: both sides wait.
                (&stream).write_all(&vec![7u8; 4 << 20])
            });
            let mut client = UnixStream::connect(&p)?;
            assert!(client.peer_addr()?.as_pathname().is_some());
            let mut got = Vec::new();
            client.read_to_end(&mut got)?;
            server.join().unwrap()?;
            Ok(got)
        })
        .unwrap()
        .unwrap();
    assert_eq!(got.len(), 4 << 20);
    assert!(got.iter().all(|&b| b == 7));
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn a_pair_talks_both_ways_and_converts_to_and_from_std() {
    EventLoop::new()
        .block_on(|| {
            let (a, b) = UnixStream::pair().unwrap();
            let writer = spawn(move || {
                (&a).write_all(b"over").unwrap();
                a
            });
            let mut buf = [0; 4];
            (&b).read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"over");
            let a = writer.join().unwrap();
            // To std (blocking again) and back.
            let mut a_std = std::os::unix::net::UnixStream::try_from(a).unwrap();
            a_std.write_all(b"std!").unwrap();
            let b = UnixStream::try_from(b.into_std().unwrap()).unwrap();
            (&b).read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"std!");
            assert!(b.try_read(&mut buf).unwrap_err().kind() == io::ErrorKind::WouldBlock);
        })
        .unwrap();
}

#[test]
fn a_listener_converts_to_and_from_std() {
    let path = socket_path("convert.sock");
    let std_listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let listener = UnixListener::try_from(std_listener).unwrap();
    assert_eq!(
        listener.try_accept().unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    let back = std::os::unix::net::UnixListener::try_from(listener).unwrap();
    let _client = std::os::unix::net::UnixStream::connect(&path).unwrap();
    back.accept().unwrap(); // blocking again, and a connection is there
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn future_tasks_read_and_write_a_pair() {
    use futures_lite::{AsyncReadExt, AsyncWriteExt};
    let (a, b) = UnixStream::pair().unwrap();
    let ev = EventLoop::new();
    let reader = ev.spawn_future(async move {
        let mut got = Vec::new();
        AsyncReadExt::read_to_end(&mut &b, &mut got).await?;
        io::Result::Ok(got)
    });
    ev.spawn_future(async move {
        AsyncWriteExt::write_all(&mut &a, &vec![1u8; 1 << 20]).await?;
        AsyncWriteExt::close(&mut &a).await
    });
    ev.run().unwrap();
    assert_eq!(reader.join().unwrap().unwrap(), vec![1u8; 1 << 20]);
}

#[test]
fn connect_reports_a_missing_socket_and_bind_an_existing_path() {
    let path = socket_path("missing.sock");
    let p = path.clone();
    let err = EventLoop::new()
        .block_on(move || UnixStream::connect(&p).unwrap_err())
        .unwrap();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    let _first = UnixListener::bind(&path).unwrap();
    assert_eq!(
        UnixListener::bind(&path).unwrap_err().kind(),
        io::ErrorKind::AddrInUse
    );
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn a_unix_socket_outlives_its_loop_and_waits_in_the_next_one() {
    let (a, b) = UnixStream::pair().unwrap();
    let b = EventLoop::new()
        .block_on(move || {
            // `b` waits (and registers) in this loop, which then goes.
            let writer = spawn(move || (&a).write_all(b"1").map(|_| a));
            let mut buf = [0; 1];
            (&b).read_exact(&mut buf).unwrap();
            drop(writer.join().unwrap().unwrap());
            b
        })
        .unwrap();
    // The peer is gone: the next loop reads the end of the stream.
    let n = EventLoop::new()
        .block_on(move || (&b).read(&mut [0; 1]).unwrap())
        .unwrap();
    assert_eq!(n, 0);
}

#[test]
fn try_read_after_a_short_read_sees_new_data_without_a_wait() {
    use std::rc::Rc;

    use cogen::event_loop::yield_now;

    let (a, b) = UnixStream::pair().unwrap();
    let (got, outside) = EventLoop::new()
        .block_on(move || {
            let b = Rc::new(b);
            let b2 = b.clone();
            spawn(move || {
                yield_now();
                (&*b2).write_all(b"xy").unwrap();
            });
            let mut buf = [0u8; 16];
            // Parks, then takes all there is: a short read.
            assert_eq!((&a).read(&mut buf).unwrap(), 2);
            (&*b).write_all(b"more").unwrap();
            // Nothing waits on a socket, so the loop asks no poller: the
            // system call must decide.
            let mut got = None;
            for _ in 0..1000 {
                match a.try_read(&mut buf) {
                    Ok(n) => {
                        got = Some(n);
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => yield_now(),
                    Err(e) => panic!("{e}"),
                }
            }
            // And outside any task, after another short read.
            (&*b).write_all(b"later").unwrap();
            (got, a)
        })
        .unwrap();
    assert_eq!(got, Some(4));
    let mut buf = [0u8; 16];
    assert_eq!(outside.try_read(&mut buf).unwrap(), 5);
}
