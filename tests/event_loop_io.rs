//! Futures, files and idling: `block_on` inside tasks with wake-ups from
//! other threads, futures as tasks, non-blocking `fs`, and an idle loop
//! that sleeps instead of spinning (measured in CPU time).

use std::cell::Cell;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use cogen::event_loop::{self as el, EventLoop, fs, sleep, yield_now};

mod support;
use support::DropCounter;

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cogen-el-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// CPU time (user + system) used by the calling thread so far.
fn thread_cpu_time() -> Duration {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_THREAD, &mut usage), 0);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

#[test]
fn block_on_awaits_a_future_woken_from_another_thread_while_others_run() {
    let ev = EventLoop::new();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let (val_tx, val_rx) = async_channel::bounded::<u32>(1);
    let helper = std::thread::spawn(move || {
        go_rx.recv().unwrap(); // only after the other task ran
        val_tx.send_blocking(42).unwrap();
    });
    let other_ran = Rc::new(Cell::new(false));
    let o = other_ran.clone();
    let waiter = ev.spawn(move || {
        let v = el::wait_for(val_rx.recv()).unwrap();
        (v, o.get())
    });
    let o = other_ran.clone();
    ev.spawn(move || {
        yield_now();
        o.set(true);
        go_tx.send(()).unwrap();
    });
    ev.run().unwrap();
    helper.join().unwrap();
    assert_eq!(waiter.join().unwrap(), (42, true));
}

#[test]
fn futures_run_as_tasks_and_await_stackful_handles() {
    let ev = EventLoop::new();
    let stackful = ev.spawn(|| {
        sleep(Duration::from_millis(2));
        20
    });
    let fut = ev.spawn_future(async move { stackful.await.unwrap() + 1 });
    let outer = ev.spawn(move || {
        let inner = el::spawn_future(async { 21 });
        fut.join().unwrap() + inner.join().unwrap()
    });
    ev.run().unwrap();
    assert_eq!(outer.join().unwrap(), 42);
}

#[test]
fn a_panicking_future_task_reports_its_panic_and_cancel_drops_it() {
    let ev = EventLoop::new();
    let bad = ev.spawn_future(async { panic!("future failed") });
    let dropped = DropCounter::new();
    let d = dropped.token();
    let pending = ev.spawn_future(async move {
        let _d = d;
        std::future::pending::<()>().await;
    });
    ev.try_tick();
    ev.try_tick();
    pending.cancel();
    assert_eq!(dropped.count(), 1);
    ev.run().unwrap();
    assert_eq!(
        bad.join().unwrap_err().panic().unwrap().message(),
        "future failed"
    );
    assert!(pending.join().unwrap_err().is_cancelled());
}

#[test]
fn fs_operations_and_their_errors() {
    let dir = temp_dir("fs");
    let ev = EventLoop::new();
    let d = dir.clone();
    let out = ev
        .block_on(move || {
            let file = d.join("a.txt");
            fs::write(&file, b"hello world").unwrap();
            let bytes = fs::read(&file).unwrap();
            let text = fs::read_to_string(&file).unwrap();
            let len = fs::metadata(&file).unwrap().len();
            fs::create_dir_all(d.join("sub")).unwrap();
            let mut names: Vec<String> = fs::read_dir(&d)
                .unwrap()
                .into_iter()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            let missing = fs::read(d.join("missing")).unwrap_err();
            let missing_dir = fs::read_dir(d.join("missing")).unwrap_err();
            fs::remove_file(&file).unwrap();
            let gone = fs::metadata(&file).unwrap_err();
            let n = el::unblock(|| 6 * 7);
            (
                bytes,
                text,
                len,
                names,
                missing.kind(),
                missing_dir.kind(),
                gone.kind(),
                n,
            )
        })
        .unwrap();
    use std::io::ErrorKind::NotFound;
    assert_eq!(
        out,
        (
            b"hello world".to_vec(),
            "hello world".to_string(),
            11,
            vec!["a.txt".to_string(), "sub".to_string()],
            NotFound,
            NotFound,
            NotFound,
            42
        )
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn fs_does_not_block_the_loop_a_fifo_read_completes_with_a_writer_task() {
    // Opening a FIFO for reading blocks until a writer opens it. If the read
    // blocked the loop's thread, the writer task could never run.
    let dir = temp_dir("fifo");
    let fifo = dir.join("pipe");
    let c = CString::new(fifo.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let ev = EventLoop::new();
    let f = fifo.clone();
    let reader = ev.spawn(move || fs::read_to_string(&f));
    let f = fifo.clone();
    let writer = ev.spawn(move || {
        yield_now(); // the reader is parked in its read by now
        fs::write(&f, "through the pipe")
    });
    ev.run().unwrap();
    writer.join().unwrap().unwrap();
    assert_eq!(reader.join().unwrap().unwrap(), "through the pipe");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn an_idle_loop_sleeps_instead_of_spinning_on_a_timer() {
    let ev = EventLoop::new();
    ev.spawn(|| sleep(Duration::from_millis(400)));
    let before = thread_cpu_time();
    ev.run().unwrap();
    let used = thread_cpu_time() - before;
    // A spinning loop would burn ~400 ms of CPU here.
    assert!(
        used < Duration::from_millis(100),
        "used {used:?} of CPU while idle"
    );
}

#[test]
fn an_idle_loop_sleeps_while_waiting_for_another_thread() {
    let ev = EventLoop::new();
    let (tx, rx) = async_channel::bounded::<()>(1);
    let helper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        tx.send_blocking(()).unwrap();
    });
    ev.spawn(move || el::wait_for(rx.recv()).unwrap());
    let before = thread_cpu_time();
    ev.run().unwrap(); // no deadlock: an outside wake-up can come
    let used = thread_cpu_time() - before;
    helper.join().unwrap();
    assert!(
        used < Duration::from_millis(100),
        "used {used:?} of CPU while idle"
    );
}

#[test]
fn other_tasks_run_while_one_waits_on_a_file() {
    let ev = EventLoop::new();
    let progress = Rc::new(Cell::new(0));
    let p = progress.clone();
    let reader = ev.spawn(move || {
        let before = p.get();
        let r = el::unblock(|| {
            std::thread::sleep(Duration::from_millis(50));
            7
        });
        (r, p.get() > before)
    });
    let p = progress.clone();
    let ticker = ev.spawn(move || {
        while !reader_done(&p) {
            p.set(p.get() + 1);
            sleep(Duration::from_millis(1));
        }
    });
    fn reader_done(p: &Rc<Cell<i32>>) -> bool {
        p.get() >= 5
    }
    ev.run().unwrap();
    ticker.join().unwrap();
    assert_eq!(reader.join().unwrap(), (7, true));
}

#[test]
fn a_file_streams_writes_and_reads_in_many_calls_with_seek() {
    use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
    let dir = temp_dir("file-stream");
    let path = dir.join("big.txt");
    let ev = EventLoop::new();
    let p = path.clone();
    let h = ev.spawn(move || {
        let mut file = fs::File::create(&p)?;
        for i in 0..20_000 {
            writeln!(file, "line {i}")?;
        }
        file.sync_all()?;
        let len = file.metadata()?.len();
        drop(file);
        let lines = BufReader::new(fs::File::open(&p)?).lines().count();
        let mut file = fs::File::open(&p)?;
        file.seek(SeekFrom::Start(5))?;
        let mut first = [0; 2];
        file.read_exact(&mut first)?;
        let std_file = file.into_std();
        Ok::<_, std::io::Error>((len, lines, first, std_file.metadata()?.len()))
    });
    ev.run().unwrap();
    let (len, lines, first, std_len) = h.join().unwrap().unwrap();
    assert_eq!(len, std::fs::metadata(&path).unwrap().len());
    assert_eq!(std_len, len);
    assert_eq!(lines, 20_000);
    assert_eq!(&first, b"0\n");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_file_read_parks_only_its_task_and_feeds_a_pipeline() {
    use cogen::pipeline::{PipelineExt, read_chunks};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    // The file is a FIFO whose writer (another thread) opens it only once
    // the other task has run twice: the task reading it must park
    // meanwhile (its open waits for the writer), or that never happens. A
    // plain file could be read ahead by the pool before the task asks.
    let dir = temp_dir("file-pipeline");
    let path = dir.join("words");
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let ticks = Arc::new(AtomicU32::new(0));
    let writer = {
        let (path, ticks) = (path.clone(), ticks.clone());
        std::thread::spawn(move || {
            while ticks.load(Ordering::SeqCst) < 2 {
                std::thread::sleep(Duration::from_millis(1));
            }
            std::fs::write(&path, "a b\nc\n".repeat(50_000)).unwrap();
        })
    };
    let ev = EventLoop::new();
    let done = Rc::new(Cell::new(false));
    let (t, d) = (ticks.clone(), done.clone());
    ev.spawn(move || {
        while !d.get() {
            t.fetch_add(1, Ordering::SeqCst);
            yield_now();
        }
    });
    let d = done.clone();
    let h = ev.spawn(move || {
        let file = fs::File::open(&path).unwrap();
        // The file is read from inside the pipeline's stages (nested
        // coroutines): each read that finds the buffer empty parks the task.
        let words = read_chunks(file, 1024).lines().words().count();
        d.set(true);
        words
    });
    ev.run().unwrap();
    writer.join().unwrap();
    assert_eq!(h.join().unwrap(), 150_000);
    assert!(
        ticks.load(Ordering::SeqCst) > 1,
        "the other task ran meanwhile"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn file_errors_and_a_cancelled_read() {
    let dir = temp_dir("file-errors");
    let ev = EventLoop::new();
    let missing = dir.join("missing");
    let h = ev.spawn(move || fs::File::open(&missing).map(|_| ()).unwrap_err().kind());
    ev.run().unwrap();
    assert_eq!(h.join().unwrap(), std::io::ErrorKind::NotFound);

    // A task cancelled while parked in a read of a fifo nobody writes to
    // yet: the file and everything on the task's stack are dropped once.
    let fifo = dir.join("fifo");
    let c = CString::new(fifo.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    // Held open for writing, so that opening it for reading does not block.
    let mut writer = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .unwrap();
    let drops = DropCounter::new();
    let d = drops.clone();
    let f = fifo.clone();
    let h = ev.spawn(move || {
        use std::io::Read;
        let _token = d.token();
        let mut file = fs::File::open(&f).unwrap();
        let mut buf = [0; 8];
        file.read(&mut buf)
    });
    // Run until the task is parked in its read (it opened the file first).
    for _ in 0..1000 {
        ev.try_tick();
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(!h.is_finished());
    assert_eq!(drops.live(), 1);
    h.cancel();
    assert_eq!((drops.count(), drops.live()), (1, 0));
    assert!(h.join().unwrap_err().is_cancelled());
    // Let the pool thread's read end.
    std::io::Write::write_all(&mut writer, b"x").unwrap();
    drop(writer);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
#[should_panic(expected = "outside a task")]
fn a_file_cannot_be_opened_outside_a_task() {
    let _ = fs::File::open("/");
}

#[test]
fn a_file_s_position_after_reads_is_where_the_reads_ended() {
    use std::io::{Read, Seek, SeekFrom, Write};

    let dir = temp_dir("position");
    let path = dir.join("data");
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    let p = path.clone();
    let (pos, after_seek, std_pos) = EventLoop::new()
        .block_on(move || {
            let mut f = fs::File::open(&p).unwrap();
            let mut buf = [0u8; 10];
            f.read_exact(&mut buf).unwrap(); // bytes 0..10, the pool reads ahead
            let pos = f.stream_position().unwrap();
            f.seek(SeekFrom::Current(5)).unwrap();
            f.read_exact(&mut buf).unwrap(); // bytes 15..25
            let after_seek = buf;
            f.read_exact(&mut buf).unwrap(); // bytes 25..35
            let std_pos = f.into_std().stream_position().unwrap();
            (pos, after_seek, std_pos)
        })
        .unwrap();
    assert_eq!(pos, 10);
    assert_eq!(&after_seek[..], &data[15..25]);
    assert_eq!(std_pos, 35);
    // A write after a read lands where the read ended, and a read after a
    // write starts where the write ended.
    let p = path.clone();
    let tail = EventLoop::new()
        .block_on(move || {
            let mut f = open_read_write(&p);
            let mut buf = [0u8; 4];
            f.read_exact(&mut buf).unwrap();
            f.write_all(b"ZZZZ").unwrap(); // bytes 4..8
            f.read_exact(&mut buf).unwrap(); // bytes 8..12
            assert_eq!(f.stream_position().unwrap(), 12);
            buf
        })
        .unwrap();
    assert_eq!(&tail[..], &data[8..12]);
    let back = std::fs::read(&path).unwrap();
    assert_eq!(back.len(), data.len());
    assert_eq!(&back[4..8], b"ZZZZ");
    assert_eq!(&back[..4], &data[..4]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_file_dropped_with_writes_in_its_buffer_writes_them() {
    use std::io::Write;

    let dir = temp_dir("drop-flush");
    let path = dir.join("data");
    for _ in 0..20 {
        let p = path.clone();
        EventLoop::new()
            .block_on(move || {
                let mut f = fs::File::create(&p).unwrap();
                f.write_all(b"first ").unwrap();
                sleep(Duration::from_millis(2)); // the pool writes that and waits
                f.write_all(b"second").unwrap();
                drop(f); // no flush: the drop parks the task until it is written
            })
            .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"first second");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `path` opened with the loop's `fs::File` for reading and writing.
fn open_read_write(path: &std::path::Path) -> fs::File {
    let options = std::fs::OpenOptions::new().read(true).write(true).clone();
    fs::File::open_with(&options, path).unwrap()
}

/// A file of `len` bytes (`i % 251` each) in a fresh directory.
fn file_of(tag: &str, len: usize) -> (PathBuf, Vec<u8>) {
    let path = temp_dir(tag).join("data");
    let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    (path, data)
}

#[test]
fn a_file_read_after_flush_metadata_or_a_failed_seek_goes_on_where_the_reads_ended() {
    use std::io::{Read, Seek, SeekFrom, Write};

    let (path, data) = file_of("read-on", 1000);
    let p = path.clone();
    let got = EventLoop::new()
        .block_on(move || {
            let mut f = fs::File::open(&p).unwrap();
            let mut buf = [0u8; 10];
            f.read_exact(&mut buf).unwrap(); // 0..10, the pool reads ahead
            f.flush().unwrap(); // nothing to flush: a no-op, as in std
            f.read_exact(&mut buf).unwrap(); // 10..20
            let mut got = buf.to_vec();
            f.metadata().unwrap(); // stops the pool's reader
            f.read_exact(&mut buf).unwrap(); // 20..30
            got.extend_from_slice(&buf);
            // A seek that fails leaves the position, as in std.
            assert!(f.seek(SeekFrom::End(-100_000)).is_err());
            f.read_exact(&mut buf).unwrap(); // 30..40
            got.extend_from_slice(&buf);
            // Relative to a position the pool has read past: the same error
            // as a `std::fs::File` gives (EINVAL), and the position stays.
            let mut std_file = std::fs::File::open(&p).unwrap();
            std_file.seek(SeekFrom::Start(40)).unwrap();
            let std_error = std_file.seek(SeekFrom::Current(-41)).unwrap_err();
            let error = f.seek(SeekFrom::Current(-41)).unwrap_err();
            assert_eq!(error.kind(), std_error.kind());
            assert_eq!(error.raw_os_error(), std_error.raw_os_error());
            assert_eq!(error.raw_os_error(), Some(libc::EINVAL));
            assert_eq!(f.stream_position().unwrap(), 40);
            let mut rest = Vec::new();
            f.read_to_end(&mut rest).unwrap();
            (got, rest.len())
        })
        .unwrap();
    assert_eq!(got.0, &data[10..40]);
    assert_eq!(got.1, data.len() - 40);
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[test]
fn a_write_error_reaches_the_read_after_it() {
    use std::io::{Read, Write};

    let (path, _) = file_of("write-error", 100);
    let p = path.clone();
    let read = EventLoop::new()
        .block_on(move || {
            let mut f = fs::File::open(&p).unwrap(); // read-only
            f.write_all(b"x").unwrap(); // buffered; the pool's write fails
            let mut buf = [0u8; 10];
            f.read(&mut buf).map_err(|e| e.raw_os_error())
        })
        .unwrap();
    assert_eq!(read, Err(Some(libc::EBADF)));
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[test]
fn a_task_that_panics_with_an_unflushed_file_can_be_cancelled() {
    use std::io::Write;

    let dir = temp_dir("panic-drop");
    let path = dir.join("data");
    let p = path.clone();
    EventLoop::new()
        .block_on(move || {
            let (tx, rx) = el::channel::<()>(1);
            let task = el::spawn(move || {
                let mut f = fs::File::create(&p).unwrap();
                f.write_all(b"data").unwrap();
                tx.send(()).unwrap();
                // The file's drop, during this unwinding, must not wait: a
                // cancellation reaching that wait would abort the process.
                panic!("with a file to flush");
            });
            rx.recv().unwrap();
            yield_now();
            task.cancel();
            assert!(task.join().is_err());
        })
        .unwrap();
    wait_for_contents(&path, b"data");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Waits (a bounded while) for a file that cogen's flushing thread writes.
fn wait_for_contents(path: &std::path::Path, want: &[u8]) {
    for _ in 0..2000 {
        if std::fs::read(path).is_ok_and(|got| got == want) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{} never held {want:?}", path.display());
}

#[test]
fn a_file_dropped_where_it_cannot_wait_keeps_its_writes() {
    use std::io::Write;

    let dir = temp_dir("drop-elsewhere");
    let d = dir.clone();
    EventLoop::new()
        .block_on(move || {
            for i in 0..20 {
                let mut f = fs::File::create(d.join(i.to_string())).unwrap();
                // Taken into the buffer (outside the limit, which could
                // otherwise cut the write itself short).
                f.write_all(b"data").unwrap();
                // The wait in the drop is cut short by the time limit.
                let _ = el::timeout(Duration::from_millis(1), move || {
                    std::thread::sleep(Duration::from_millis(3));
                    drop(f);
                });
            }
        })
        .unwrap();
    // Dropped outside any task, with writes in its buffer.
    let p = dir.join("outside");
    let file = EventLoop::new()
        .block_on(move || {
            let mut f = fs::File::create(&p).unwrap();
            f.write_all(b"data").unwrap();
            f
        })
        .unwrap();
    drop(file);
    for i in 0..20 {
        wait_for_contents(&dir.join(i.to_string()), b"data");
    }
    wait_for_contents(&dir.join("outside"), b"data");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn files_dropped_outside_a_task_do_not_wedge_a_one_thread_pool() {
    use std::io::Write;
    use std::process::Command;

    const CHILD: &str = "COGEN_TEST_ONE_THREAD_POOL";
    if std::env::var_os(CHILD).is_some() {
        // In the child, whose pool has one thread.
        let dir = temp_dir("one-thread-pool");
        let d = dir.clone();
        let files = EventLoop::new()
            .block_on(move || {
                (0..4)
                    .map(|i| {
                        let mut f = fs::File::create(d.join(i.to_string())).unwrap();
                        f.write_all(b"x").unwrap();
                        f
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap();
        drop(files); // outside any task: flushed by cogen's own thread
        let d = dir.clone();
        let len = EventLoop::new()
            .block_on(move || fs::metadata(d.join("3")).map(|m| m.len()))
            .unwrap()
            .unwrap();
        assert!(len <= 1);
        for i in 0..4 {
            wait_for_contents(&dir.join(i.to_string()), b"x");
        }
        std::fs::remove_dir_all(&dir).unwrap();
        return;
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "files_dropped_outside_a_task_do_not_wedge_a_one_thread_pool",
        ])
        .env(CHILD, "1")
        .env("BLOCKING_MAX_THREADS", "1")
        .spawn()
        .unwrap();
    for _ in 0..6000 {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success());
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    panic!("the blocking pool is wedged: an fs call after the drops never finished");
}

#[test]
fn a_zero_length_read_is_a_no_op() {
    use std::io::{Read, Seek};

    let (path, data) = file_of("zero-read", 9 << 20);
    let p = path.clone();
    let got = EventLoop::new()
        .block_on(move || {
            let mut f = fs::File::open(&p).unwrap();
            // At once, as std (the adapter would wait for its reader to
            // reach the end of this file, bigger than its buffer).
            assert_eq!(f.read(&mut []).unwrap(), 0);
            let mut buf = [0u8; 5];
            f.read_exact(&mut buf).unwrap();
            (buf, f.stream_position().unwrap())
        })
        .unwrap();
    assert_eq!((&got.0[..], got.1), (&data[..5], 5));
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[test]
fn a_read_cut_short_by_a_time_limit_leaves_the_position() {
    use std::io::{Read, Seek, Write};

    let (path, _) = file_of("read-cut-short", 100_000);
    let p = path.clone();
    let (pos, ok) = EventLoop::new()
        .block_on(move || {
            let mut f = open_read_write(&p);
            let mut buf = [0u8; 10];
            // The first read sets the pool's reader going and waits: the
            // expired limit cuts it short.
            let cut = el::timeout(Duration::ZERO, || f.read(&mut buf).map(drop));
            std::thread::sleep(Duration::from_millis(20)); // the pool reads ahead meanwhile
            let pos = f.stream_position().unwrap();
            f.write_all(b"X").unwrap();
            f.flush().unwrap();
            (pos, cut.is_err())
        })
        .unwrap();
    let back = std::fs::read(&path).unwrap();
    assert_eq!(back.len(), 100_000);
    if ok {
        // Nothing was read: the position and the write are at 0, as in std.
        assert_eq!(pos, 0);
        assert_eq!(back[0], b'X');
    }
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[test]
fn a_write_cut_short_after_a_read_leaves_the_next_read_at_the_position() {
    use std::io::{Read, Write};

    // Twice the adapter's read-ahead (8 MiB), so that the reader is still
    // busy when the write stops it.
    let (path, data) = file_of("write-cut-short", 16 << 20);
    let p = path.clone();
    let got = EventLoop::new()
        .block_on(move || {
            let mut f = open_read_write(&p);
            let mut first = [0u8; 4];
            f.read_exact(&mut first).unwrap();
            // The pool reads ahead meanwhile, until its pipe is full.
            sleep(Duration::from_millis(50));
            // The write puts the pool's cursor back first; the expired
            // limit cuts that short while the reader stops.
            let cut = el::timeout(Duration::ZERO, || f.write(b"XXXX"));
            let mut next = [0u8; 4];
            f.read_exact(&mut next).unwrap();
            (first, next, cut.is_err())
        })
        .unwrap();
    assert_eq!(got.0, data[..4]);
    if got.2 {
        // Nothing was written: the read goes on where the first one ended.
        assert_eq!(got.1, data[4..8]);
    }
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[test]
fn into_std_cut_short_by_a_time_limit_keeps_the_writes() {
    use std::io::Write;

    let dir = temp_dir("into-std-cut-short");
    let d = dir.clone();
    EventLoop::new()
        .block_on(move || {
            for i in 0..20 {
                let mut f = fs::File::create(d.join(i.to_string())).unwrap();
                f.write_all(&[b'x'; 100_000]).unwrap(); // into the buffer
                let _ = el::timeout(Duration::ZERO, move || drop(f.into_std()));
            }
        })
        .unwrap();
    for i in 0..20 {
        wait_for_contents(&dir.join(i.to_string()), &[b'x'; 100_000]);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
