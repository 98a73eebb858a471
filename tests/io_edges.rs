//! Files and sockets at their edges: files with no position (FIFOs) read
//! and written through one `fs::File`, reads and seeks cut short by a time
//! limit, sockets shut down by their own end while other tasks wait on
//! them, a future read outside any loop after a drained read, and a
//! differential run of `fs::File` against `std::fs::File`.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::Shutdown;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use cogen::event_loop::net::{TcpStream, UnixStream};
use cogen::event_loop::{EventLoop, fs, spawn, spawn_future, timeout, yield_now};

mod support;
use support::watchdog;

/// A fresh path in this test process's directory (removed when the
/// process exits).
fn path(name: &str) -> PathBuf {
    let path = support::process_dir("cogen-io-edges").join(name);
    let _ = std::fs::remove_file(&path);
    path
}

/// A new FIFO (named pipe): a file with no position.
fn fifo(name: &str) -> PathBuf {
    let p = path(name);
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    // SAFETY: `c` is a valid C string for the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    p
}

fn read_write() -> std::fs::OpenOptions {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true).write(true);
    opts
}

/// Writes and reads in turn through one `fs::File` on a FIFO (opened for
/// both, so it is its own writer): each write after a read goes through,
/// as with a `std::fs::File`; a reader left waiting on the pool held it up
/// for ever.
#[test]
fn a_fifo_read_and_written_through_one_file_does_not_hang() {
    watchdog("a_fifo_read_and_written_through_one_file", || {
        let p = fifo("rw");
        let ev = EventLoop::new();
        let got = ev
            .block_on(move || {
                let mut f = fs::File::open_with(&read_write(), &p).unwrap();
                let mut got = Vec::new();
                for byte in *b"abc" {
                    f.write_all(&[byte]).unwrap();
                    f.flush().unwrap();
                    let mut b = [0u8; 1];
                    f.read_exact(&mut b).unwrap();
                    got.push(b[0]);
                }
                got
            })
            .unwrap();
        assert_eq!(got, b"abc");
    });
}

/// A read of a FIFO takes no more than it is asked for: the bytes after
/// stay for the next read and for the std file `into_std` hands back.
#[test]
fn fifo_reads_take_nothing_ahead() {
    watchdog("fifo_reads_take_nothing_ahead", || {
        let p = fifo("ahead");
        let ev = EventLoop::new();
        let (first, second, rest) = ev
            .block_on(move || {
                let mut f = fs::File::open_with(&read_write(), &p).unwrap();
                f.write_all(b"abc").unwrap();
                f.flush().unwrap();
                let mut one = [0u8; 1];
                f.read_exact(&mut one).unwrap();
                f.write_all(b"d").unwrap();
                let mut six = [0u8; 6];
                let n = f.read(&mut six).unwrap();
                let second = six[..n].to_vec();
                f.write_all(b"efg").unwrap();
                f.read_exact(&mut one).unwrap();
                let mut std_file = f.into_std();
                let mut rest = [0u8; 2];
                std_file.read_exact(&mut rest).unwrap();
                (one, second, rest)
            })
            .unwrap();
        assert_eq!((&first, &second[..], &rest), (b"e", &b"bcd"[..], b"fg"));
    });
}

/// Dropping a `fs::File` that read from a FIFO closes it: its writer sees
/// `BrokenPipe`, as after dropping a `std::fs::File`.
#[test]
fn dropping_a_file_that_read_a_fifo_closes_it() {
    watchdog("dropping_a_file_that_read_a_fifo_closes_it", || {
        let p = fifo("drop");
        let p2 = p.clone();
        let opener =
            std::thread::spawn(move || std::fs::OpenOptions::new().write(true).open(&p2).unwrap());
        let ev = EventLoop::new();
        let got = ev
            .block_on(move || {
                let mut f = fs::File::open(&p).unwrap();
                let mut w = opener.join().unwrap();
                w.write_all(b"x").unwrap();
                let mut b = [0u8; 1];
                f.read_exact(&mut b).unwrap();
                drop(f);
                (b, w.write_all(b"y").map_err(|e| e.kind()))
            })
            .unwrap();
        assert_eq!(got, (*b"x", Err(io::ErrorKind::BrokenPipe)));
    });
}

/// A read of a FIFO cut short by a time limit loses nothing: the next
/// read gets what was written after.
#[test]
fn a_fifo_read_cut_short_loses_nothing() {
    watchdog("a_fifo_read_cut_short_loses_nothing", || {
        let p = fifo("cut");
        let ev = EventLoop::new();
        let got = ev
            .block_on(move || {
                let mut f = fs::File::open_with(&read_write(), &p).unwrap();
                let mut buf = [0u8; 8];
                // Nothing to read yet: cut short, its read left waiting.
                let cut = timeout(Duration::from_millis(10), || f.read(&mut buf));
                assert!(cut.is_err(), "nothing was written");
                // Another writer; the next read takes what it wrote.
                let mut w = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
                w.write_all(b"xyz").unwrap();
                let mut two = [0u8; 2];
                let n = f.read(&mut two).unwrap();
                let mut one = [0u8; 1];
                let m = f.read(&mut one).unwrap();
                (two[..n].to_vec(), one[..m].to_vec())
            })
            .unwrap();
        assert_eq!(got, (b"xy".to_vec(), b"z".to_vec()));
    });
}

/// A read of a FIFO cut short takes nothing once it gives up: a write of
/// the file's own after it goes through (the read no longer holds the file
/// on the pool), and `into_std` hands over a file with nothing taken.
#[test]
fn a_fifo_read_cut_short_takes_nothing_and_holds_nothing() {
    watchdog("a_fifo_read_cut_short_takes_nothing", || {
        let p = fifo("cut-nothing");
        let ev = EventLoop::new();
        let (own, handed_over) = ev
            .block_on(move || {
                let mut f = fs::File::open_with(&read_write(), &p).unwrap();
                let mut buf = [0u8; 3];
                let cut = timeout(Duration::from_millis(10), || f.read(&mut buf));
                assert!(cut.is_err(), "nothing was written");
                f.write_all(b"abc").unwrap();
                f.flush().unwrap();
                f.read_exact(&mut buf).unwrap();
                let own = buf;
                // Cut short again, then written by another writer and
                // handed over as a std file.
                let cut = timeout(Duration::from_millis(10), || f.read(&mut buf));
                assert!(cut.is_err(), "nothing was written");
                let mut w = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
                let mut std_file = f.into_std();
                w.write_all(b"hello").unwrap();
                let mut five = [0u8; 5];
                std_file.read_exact(&mut five).unwrap();
                (own, five)
            })
            .unwrap();
        assert_eq!((&own, &handed_over), (b"abc", b"hello"));
    });
}

/// A read of the write end of a pipe fails at once with `EBADF`, as a
/// `std::fs::File`'s does (it used to wait for it to become readable).
#[test]
fn reading_the_write_end_of_a_pipe_fails_at_once() {
    watchdog("reading_the_write_end_of_a_pipe_fails_at_once", || {
        let ev = EventLoop::new();
        let got = ev
            .block_on(|| {
                let (_reader, writer) = std::io::pipe().unwrap();
                let fd: std::os::fd::OwnedFd = writer.into();
                let mut f = fs::File::from(std::fs::File::from(fd));
                f.read(&mut [0u8; 8]).map_err(|e| e.raw_os_error())
            })
            .unwrap();
        assert_eq!(got, Err(Some(libc::EBADF)));
    });
}

/// `metadata` and `sync_all` cut short stop the pool's read-ahead all the
/// same: the next read starts where the reads so far ended.
#[test]
fn a_read_after_metadata_or_sync_all_cut_short_goes_on_where_the_reads_ended() {
    watchdog("a_read_after_metadata_or_sync_all_cut_short", || {
        let p = path("meta-cut");
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&p, &data).unwrap();
        for sync in [false, true] {
            let p = p.clone();
            let ev = EventLoop::new();
            let (pos, got) = ev
                .block_on(move || {
                    let mut f = fs::File::open_with(&read_write(), &p).unwrap();
                    let mut pos = 0;
                    loop {
                        let mut one = [0u8; 1];
                        f.read_exact(&mut one).unwrap(); // the reader runs ahead
                        pos += 1;
                        let cut = if sync {
                            timeout(Duration::ZERO, || f.sync_all().map(drop)).is_err()
                        } else {
                            timeout(Duration::ZERO, || f.metadata().map(drop)).is_err()
                        };
                        if cut {
                            break;
                        }
                    }
                    let mut b = [0u8; 10];
                    f.read_exact(&mut b).unwrap();
                    (pos, b)
                })
                .unwrap();
            assert_eq!(&got[..], &data[pos..pos + 10], "sync_all: {sync}");
        }
    });
}

/// A seek cut short by a time limit still runs on the pool; a failing one
/// used to hand its error to the next seek, which did not run.
#[test]
fn a_failing_seek_cut_short_does_not_fail_the_next() {
    watchdog("a_failing_seek_cut_short_does_not_fail_the_next", || {
        let p = path("seek-fail");
        std::fs::write(&p, b"0123456789").unwrap();
        let ev = EventLoop::new();
        let got = ev
            .block_on(move || {
                let mut f = fs::File::open(&p).unwrap();
                // The limit has passed at the seek's first wait, if it
                // waits (it may find its seek done at once: then again).
                while timeout(Duration::ZERO, || f.seek(SeekFrom::Start(u64::MAX))).is_ok() {}
                let s = f.seek(SeekFrom::Start(3)).map_err(|e| e.kind());
                let mut b = [0u8; 2];
                let r = f.read(&mut b).map_err(|e| e.kind());
                (s, r, b)
            })
            .unwrap();
        assert_eq!(got, (Ok(3), Ok(2), *b"34"));
    });
}

/// A seek cut short leaves the caller's position where it was, after
/// writes too (when the file did not know where they ended).
#[test]
fn a_seek_cut_short_after_writes_keeps_the_position() {
    watchdog("a_seek_cut_short_after_writes_keeps_the_position", || {
        let p = path("seek-write");
        for learn_position_first in [false, true] {
            std::fs::write(&p, b"0123456789abcdef").unwrap();
            let p = p.clone();
            let ev = EventLoop::new();
            let got = ev
                .block_on(move || {
                    loop {
                        let mut f = fs::File::open_with(&read_write(), &p).unwrap();
                        f.write_all(b"XY").unwrap();
                        f.flush().unwrap();
                        if learn_position_first {
                            assert_eq!(f.stream_position().unwrap(), 2);
                        }
                        if timeout(Duration::ZERO, || f.seek(SeekFrom::Start(7))).is_ok() {
                            continue; // done at once, not cut short: again
                        }
                        let mut b = [0u8; 2];
                        let r = f.read(&mut b).map_err(|e| e.kind());
                        return (r, b, f.stream_position().unwrap());
                    }
                })
                .unwrap();
            assert_eq!(got, (Ok(2), *b"23", 4), "{learn_position_first}");
        }
    });
}

/// The same after reads, and for a write after the cut seek.
#[test]
fn a_seek_cut_short_after_reads_keeps_the_position() {
    watchdog("a_seek_cut_short_after_reads_keeps_the_position", || {
        let p = path("seek-read");
        std::fs::write(&p, b"0123456789abcdef").unwrap();
        let ev = EventLoop::new();
        let p2 = p.clone();
        ev.block_on(move || {
            loop {
                let mut f = fs::File::open_with(&read_write(), &p2).unwrap();
                let mut b = [0u8; 2];
                f.read_exact(&mut b).unwrap();
                if timeout(Duration::ZERO, || f.seek(SeekFrom::Start(7))).is_ok() {
                    continue; // done at once, not cut short: again
                }
                f.write_all(b"..").unwrap();
                f.flush().unwrap();
                return;
            }
        })
        .unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"01..456789abcdef");
    });
}

fn tcp_pair() -> (TcpStream, std::net::TcpStream) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (p, _) = l.accept().unwrap();
    (s, p)
}

/// Writes a MiB at a time through `write` until it fails: the error's kind.
fn write_until_error(write: impl Fn(&[u8]) -> io::Result<usize>) -> io::ErrorKind {
    let buf = vec![0u8; 1 << 20];
    loop {
        if let Err(e) = write(&buf) {
            return e.kind();
        }
    }
}

/// A task writes until it parks on a full send buffer; another shuts the
/// write side down: the writer wakes with `BrokenPipe`, as a std writer
/// blocked in `write` does. The kernel reports no readiness for a Unix
/// socket shut down by its own end, so the shutdown itself wakes it.
#[test]
fn shutting_the_write_side_wakes_a_parked_writer() {
    watchdog("shutting_the_write_side_wakes_a_parked_writer", || {
        let ev = EventLoop::new();
        let got = ev
            .block_on(|| {
                let (u, _unix_peer) = UnixStream::pair().unwrap();
                let (t, _tcp_peer) = tcp_pair();
                let (u, t) = (Rc::new(u), Rc::new(t));
                let (u2, t2) = (u.clone(), t.clone());
                let unix = spawn(move || write_until_error(|b| (&*u2).write(b)));
                let tcp = spawn(move || write_until_error(|b| (&*t2).write(b)));
                for _ in 0..20 {
                    yield_now();
                }
                u.shutdown(Shutdown::Write).unwrap();
                t.shutdown(Shutdown::Write).unwrap();
                (unix.join().unwrap(), tcp.join().unwrap())
            })
            .unwrap();
        assert_eq!(got, (io::ErrorKind::BrokenPipe, io::ErrorKind::BrokenPipe));
    });
}

/// The same for a future task writing through `AsyncWrite`.
#[test]
fn shutting_the_write_side_wakes_a_future_writer() {
    use futures_lite::AsyncWriteExt;
    watchdog("shutting_the_write_side_wakes_a_future_writer", || {
        let ev = EventLoop::new();
        let got = ev
            .block_on(|| {
                let (u, _peer) = UnixStream::pair().unwrap();
                let u = Rc::new(u);
                let w = u.clone();
                let writer = spawn_future(async move {
                    let buf = vec![0u8; 1 << 20];
                    loop {
                        if let Err(e) = AsyncWriteExt::write(&mut &*w, &buf).await {
                            return e.kind();
                        }
                    }
                });
                for _ in 0..20 {
                    yield_now();
                }
                u.shutdown(Shutdown::Write).unwrap();
                writer.join().unwrap()
            })
            .unwrap();
        assert_eq!(got, io::ErrorKind::BrokenPipe);
    });
}

/// A reader parked on a socket wakes with the end of the stream when its
/// own end shuts the read side down.
#[test]
fn shutting_the_read_side_wakes_a_parked_reader() {
    watchdog("shutting_the_read_side_wakes_a_parked_reader", || {
        let ev = EventLoop::new();
        let got = ev
            .block_on(|| {
                let (u, _unix_peer) = UnixStream::pair().unwrap();
                let (t, _tcp_peer) = tcp_pair();
                let (u, t) = (Rc::new(u), Rc::new(t));
                let (u2, t2) = (u.clone(), t.clone());
                let unix = spawn(move || (&*u2).read(&mut [0u8; 8]).map_err(|e| e.kind()));
                let tcp = spawn(move || (&*t2).read(&mut [0u8; 8]).map_err(|e| e.kind()));
                yield_now();
                u.shutdown(Shutdown::Read).unwrap();
                t.shutdown(Shutdown::Read).unwrap();
                (unix.join().unwrap(), tcp.join().unwrap())
            })
            .unwrap();
        assert_eq!(got, (Ok(0), Ok(0)));
    });
}

/// A connected pair whose cogen end a task of `ev` read until a read took
/// all there was (a short read: the socket is marked drained in `ev`).
fn drained_pair(ev: &EventLoop) -> (TcpStream, std::net::TcpStream) {
    ev.block_on(|| {
        let (s, mut peer) = tcp_pair();
        let writer = std::thread::spawn(move || {
            peer.write_all(b"abc").unwrap();
            peer
        });
        let mut buf = [0u8; 100];
        let mut n = 0;
        while n < 3 {
            n += Read::read(&mut &s, &mut buf[n..]).unwrap();
        }
        (s, writer.join().unwrap())
    })
    .unwrap()
}

/// A socket whose last read in its loop took all there was (the loop then
/// waits for the poller before reading again) is read as a future outside
/// any loop: the system call decides, and finds the data queued since. It
/// panicked ("called outside a task"), as if it had to wait.
#[test]
fn a_future_read_outside_any_loop_reads_what_came_after_a_drained_read() {
    use futures_lite::AsyncReadExt;
    watchdog(
        "a_future_read_outside_any_loop_after_a_drained_read",
        || {
            let ev = EventLoop::new();
            let (s, mut peer) = drained_pair(&ev);
            peer.write_all(b"more").unwrap();
            let mut buf = [0u8; 4];
            futures_lite::future::block_on(AsyncReadExt::read_exact(&mut &s, &mut buf)).unwrap();
            assert_eq!(&buf, b"more");
            drop(ev);
        },
    );
}

/// A stream that a read in its loop drained is read by a stackful task of
/// another loop of the thread, after data came: the system call decides
/// (the hint belongs to the first loop, whose poller would correct it),
/// and the read takes the data instead of trying to wait in the first
/// loop's reactor (a panic).
#[test]
fn a_read_in_another_loop_reads_what_came_after_a_drained_read() {
    watchdog("a_read_in_another_loop_after_a_drained_read", || {
        let first = EventLoop::new();
        let (s, mut peer) = drained_pair(&first);
        peer.write_all(b"more").unwrap();
        let s = Rc::new(s);
        let next = EventLoop::new();
        let got = next
            .block_on(move || {
                let mut buf = [0u8; 4];
                Read::read_exact(&mut &*s, &mut buf).unwrap();
                buf
            })
            .unwrap();
        assert_eq!(&got, b"more");
        drop(first);
    });
}

/// Random sequences of reads, writes, seeks, positions, metadata and
/// flushes (300 of 40 steps, writable and appending) give what a
/// `std::fs::File` gives on a copy of the same file, contents included.
#[test]
fn file_operations_match_std() {
    watchdog("file_operations_match_std", || {
        let dir = std::env::temp_dir().join(format!("cogen-io-edges-diff-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ev = EventLoop::new();
        let d2 = dir.clone();
        ev.block_on(move || {
        let mut seed: u64 = 0x1234_5678;
        let mut rnd = move |n: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        for case in 0..300 {
            let append = case % 5 == 4;
            let pa = d2.join(format!("a{case}"));
            let pb = d2.join(format!("b{case}"));
            let init: Vec<u8> = (0..rnd(20000)).map(|i| (i % 251) as u8).collect();
            std::fs::write(&pa, &init).unwrap();
            std::fs::write(&pb, &init).unwrap();
            let mut opts = std::fs::OpenOptions::new();
            opts.read(true);
            if append { opts.append(true); } else { opts.write(true); }
            let mut a = std::fs::File::options().read(true).write(!append).append(append).open(&pa).unwrap();
            let mut b = fs::File::open_with(&opts, &pb).unwrap();
            let mut log = Vec::new();
            for step in 0..40 {
                let op = rnd(9);
                let desc;
                let (ra, rb): (String, String) = match op {
                    0 | 1 => {
                        let n = rnd(5000) as usize;
                        desc = format!("read {n}");
                        let mut ba = vec![0; n];
                        let mut bb = vec![0; n];
                        // read fully what is there (a read may be short in either)
                        let xa = read_up_to(&mut a, &mut ba);
                        let xb = read_up_to(&mut b, &mut bb);
                        (format!("{:?}", xa.map(|k| ba[..k].to_vec())), format!("{:?}", xb.map(|k| bb[..k].to_vec())))
                    }
                    2 => {
                        let n = rnd(3000) as usize;
                        let v: Vec<u8> = (0..n).map(|i| (step * 7 + i) as u8).collect();
                        desc = format!("write {n}");
                        (format!("{:?}", a.write_all(&v).map_err(|e| e.kind())), format!("{:?}", b.write_all(&v).map_err(|e| e.kind())))
                    }
                    3 => {
                        let p = rnd(25000);
                        desc = format!("seek start {p}");
                        (format!("{:?}", a.seek(SeekFrom::Start(p)).map_err(|e| e.kind())), format!("{:?}", b.seek(SeekFrom::Start(p)).map_err(|e| e.kind())))
                    }
                    4 => {
                        let p = rnd(10000) as i64 - 5000;
                        desc = format!("seek cur {p}");
                        (format!("{:?}", a.seek(SeekFrom::Current(p)).map_err(|e| e.kind())), format!("{:?}", b.seek(SeekFrom::Current(p)).map_err(|e| e.kind())))
                    }
                    5 => {
                        let p = rnd(10000) as i64 - 8000;
                        desc = format!("seek end {p}");
                        (format!("{:?}", a.seek(SeekFrom::End(p)).map_err(|e| e.kind())), format!("{:?}", b.seek(SeekFrom::End(p)).map_err(|e| e.kind())))
                    }
                    6 => {
                        desc = "pos".into();
                        (format!("{:?}", a.stream_position().map_err(|e| e.kind())), format!("{:?}", b.stream_position().map_err(|e| e.kind())))
                    }
                    7 => {
                        desc = "metadata len".into();
                        (format!("{:?}", a.metadata().map(|m| m.len()).map_err(|e| e.kind())), format!("{:?}", b.metadata().map(|m| m.len()).map_err(|e| e.kind())))
                    }
                    _ => {
                        desc = "flush".into();
                        (format!("{:?}", a.flush().map_err(|e| e.kind())), format!("{:?}", b.flush().map_err(|e| e.kind())))
                    }
                };
                log.push(desc.clone());
                if ra != rb {
                    let short = |s: &str| s.chars().take(200).collect::<String>();
                    panic!("case {case} append={append} step {step} ({desc}): std {} vs cogen {}\nlog: {log:?}", short(&ra), short(&rb));
                }
            }
            drop(b);
            assert_eq!(std::fs::read(&pa).unwrap(), std::fs::read(&pb).unwrap(), "case {case} contents, log {log:?}");
        }
    })
    .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    });
}

/// Reads until `buf` is full or the file ends.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}
