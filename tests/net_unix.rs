//! Unix domain sockets: `UnixListener` / `UnixStream` served by stackful
//! tasks for std clients, `pair`, conversions to and from std, future
//! tasks on a pair, and the errors of connect.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::thread;

use cogen::event_loop::net::{UnixListener, UnixStream};
use cogen::event_loop::{EventLoop, spawn};

mod support;

/// A fresh socket path for `name` in a directory of this process (removed
/// when the process exits).
fn socket_path(name: &str) -> PathBuf {
    let path = support::process_dir("cogen-net-unix").join(name);
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

/// A listener on `path` with the smallest backlog the kernel allows (one
/// connection waiting to be accepted; std's `bind` asks for many more).
fn listener_with_a_tiny_backlog(path: &std::path::Path) -> std::os::unix::net::UnixListener {
    use std::os::fd::FromRawFd;
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: plain system calls on a socket this function owns; the
    // address is a zeroed `sockaddr_un` with the path copied into it
    // (shorter than `sun_path`, checked).
    unsafe {
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", io::Error::last_os_error());
        let listener = std::os::unix::net::UnixListener::from_raw_fd(fd);
        let mut addr: libc::sockaddr_un = std::mem::zeroed();
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let bytes = path.as_os_str().as_bytes();
        assert!(bytes.len() < addr.sun_path.len());
        for (dst, &src) in addr.sun_path.iter_mut().zip(bytes) {
            *dst = src as libc::c_char;
        }
        let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
        let bound = libc::bind(fd, (&raw const addr).cast(), len);
        assert_eq!(bound, 0, "bind: {}", io::Error::last_os_error());
        assert_eq!(
            libc::listen(fd, 0),
            0,
            "listen: {}",
            io::Error::last_os_error()
        );
        listener
    }
}

#[test]
fn connect_waits_for_room_in_a_full_backlog() {
    let path = socket_path("full-backlog.sock");
    let listener = listener_with_a_tiny_backlog(&path);
    // Fill the backlog: non-blocking connects until the kernel says
    // "try again" (what a Unix socket's connect says for a full backlog).
    let mut queued = Vec::new();
    let full = loop {
        match mio::net::UnixStream::connect(&path) {
            Ok(s) => queued.push(s),
            Err(e) => break e,
        }
        assert!(queued.len() < 1000, "the backlog never filled");
    };
    assert_eq!(full.kind(), io::ErrorKind::WouldBlock);
    let listener = UnixListener::try_from(listener).unwrap();
    let p = path.clone();
    let (got, accepted_before) = EventLoop::new()
        .block_on(move || {
            let client = spawn(move || {
                let mut s = UnixStream::connect(&p)?;
                s.write_all(b"made it")?;
                io::Result::Ok(())
            });
            // The client finds the backlog full and waits; make room after
            // it has tried a few times.
            cogen::event_loop::sleep(std::time::Duration::from_millis(30));
            let accepted_before = client.is_finished();
            for _ in 0..queued.len() {
                listener.accept().unwrap();
            }
            drop(queued);
            // The client connects into the room made, writes and ends.
            client.join().unwrap().unwrap();
            let (mut server, _) = listener.accept().unwrap();
            let mut got = String::new();
            server.read_to_string(&mut got).unwrap();
            (got, accepted_before)
        })
        .unwrap();
    assert!(
        !accepted_before,
        "the client connected while the backlog was full"
    );
    assert_eq!(got, "made it");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn a_connect_waiting_for_room_is_bounded_by_a_timeout() {
    use cogen::event_loop::timeout;
    use std::time::Duration;

    let path = socket_path("full-backlog-timeout.sock");
    let _listener = listener_with_a_tiny_backlog(&path);
    let mut queued = Vec::new();
    while let Ok(s) = mio::net::UnixStream::connect(&path) {
        queued.push(s);
        assert!(queued.len() < 1000, "the backlog never filled");
    }
    let p = path.clone();
    let outcome = EventLoop::new()
        .block_on(move || timeout(Duration::from_millis(40), || UnixStream::connect(&p)).is_err())
        .unwrap();
    assert!(
        outcome,
        "the connect returned although the backlog stayed full"
    );
    drop(queued);
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

#[test]
fn a_connect_to_a_full_backlog_in_a_cancelled_tasks_destructor_fails_instead_of_aborting() {
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::time::Duration;

    /// Connects to `path` when dropped, and says how it went.
    struct ConnectOnDrop {
        path: PathBuf,
        seen: Rc<RefCell<Option<io::Result<UnixStream>>>>,
    }
    impl Drop for ConnectOnDrop {
        fn drop(&mut self) {
            *self.seen.borrow_mut() = Some(UnixStream::connect(&self.path));
        }
    }

    let path = socket_path("full-backlog-cancelled.sock");
    let _listener = listener_with_a_tiny_backlog(&path);
    let mut queued = Vec::new();
    while let Ok(s) = mio::net::UnixStream::connect(&path) {
        queued.push(s);
        assert!(queued.len() < 1000, "the backlog never filled");
    }
    let seen = Rc::new(RefCell::new(None));
    let guard = ConnectOnDrop {
        path: path.clone(),
        seen: seen.clone(),
    };
    let ev = EventLoop::new();
    let victim = ev.spawn(move || {
        let _guard = guard;
        cogen::event_loop::sleep(Duration::from_secs(3600));
    });
    assert!(ev.try_tick()); // it runs and parks
    victim.cancel_handle().cancel();
    ev.run().unwrap();
    assert!(victim.join().unwrap_err().is_cancelled());
    let error = seen.borrow_mut().take().unwrap().unwrap_err();
    assert_eq!(
        error.to_string(),
        "cogen::event_loop::net::UnixStream::connect would have to wait, in a destructor that \
         its task's cancellation runs: a cancelled task cannot wait"
    );
    drop(queued);
    std::fs::remove_file(&path).unwrap();
}
