//! Memory per idle connection: N connections open at once on one loop, one
//! task each, every task parked in `read` after one echo; reads the
//! process's resident memory (`/proc/self/statm`) and page tables
//! (`VmPTE`) before and after, and divides the growth by N.
//!
//! ```text
//! cargo run --release -p cogen-tools --bin net_memory -- [N] [--buf BYTES] [--stack BYTES]
//! ```
//!
//! (defaults: 10,000 connections; each task echoes through a `--buf`-byte
//! buffer on its stack, 1024 as in `examples/echo_server.rs`; `--stack`
//! sets the tasks' stack size, default cogen's.) The clients are a child
//! process (this program again), so that they add nothing to the figures,
//! and each process needs one descriptor per connection: the soft
//! `RLIMIT_NOFILE` is raised to the hard limit, which must allow N plus a
//! few. Kernel memory (socket buffers) is not resident memory of the
//! process: the kernel's slab growth, both ends of every connection, is
//! shown apart (machine-wide, so other activity blurs it).
//!
//! The figures measured with it are in `docs/BENCHMARKS.md`.

use std::cell::Cell;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Command, ExitCode, Stdio};
use std::rc::Rc;
use std::time::Duration;

use cogen::event_loop::net::{TcpListener, TcpStream};
use cogen::event_loop::{EventLoop, TaskBuilder, sleep, spawn};

const USAGE: &str = "usage: net_memory [N] [--buf BYTES] [--stack BYTES]  (defaults 10000, 1024, cogen's default stack)";
/// One echo per connection, this long.
const MESSAGE: &[u8] = b"0123456789abcdef";

/// Resident bytes of this process (`/proc/self/statm`'s second field).
fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux /proc");
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("statm's resident field");
    // SAFETY: a plain query with no arguments.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize
}

/// A `kB` line of a `/proc` status file, in bytes.
fn kb_line(path: &str, name: &str) -> usize {
    let text = std::fs::read_to_string(path).expect("Linux /proc");
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<usize>().ok())
        .unwrap_or_else(|| panic!("{name} in {path}"))
        * 1024
}

/// Raises the soft limit on descriptors to the hard limit; false if that
/// leaves fewer than `needed`.
fn raise_descriptor_limit(needed: usize) -> bool {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls; `limit` is a valid out-pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return false;
        }
        limit.rlim_cur = limit.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
            return false;
        }
    }
    if (limit.rlim_cur as usize) < needed {
        eprintln!(
            "net_memory: RLIMIT_NOFILE's hard limit is {}, {needed} descriptors needed",
            limit.rlim_max
        );
        return false;
    }
    true
}

/// The client process: connects `n` times, one echo on each, says `ready`,
/// and keeps the connections open until its standard input closes.
fn client(addr: SocketAddr, n: usize) -> ExitCode {
    if !raise_descriptor_limit(n + 64) {
        return ExitCode::FAILURE;
    }
    let mut streams: Vec<std::net::TcpStream> = (0..n)
        .map(|_| std::net::TcpStream::connect(addr).expect("connect"))
        .collect();
    for s in &mut streams {
        s.write_all(MESSAGE).expect("write");
    }
    for s in &mut streams {
        let mut back = [0; MESSAGE.len()];
        s.read_exact(&mut back).expect("read the echo");
        assert_eq!(back, MESSAGE);
    }
    println!("ready");
    let mut rest = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut rest);
    ExitCode::SUCCESS
}

/// One connection: echoes through a `BUF`-byte buffer on the task's stack.
fn echo<const BUF: usize>(mut stream: TcpStream) {
    let mut buf = [0; BUF];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

fn server(n: usize, buf: usize, stack: Option<usize>) -> ExitCode {
    if !raise_descriptor_limit(n + 64) {
        return ExitCode::FAILURE;
    }
    let echo: fn(TcpStream) = match buf {
        256 => echo::<256>,
        1024 => echo::<1024>,
        4096 => echo::<4096>,
        16384 => echo::<16384>,
        _ => {
            eprintln!("net_memory: --buf is one of 256, 1024, 4096, 16384");
            return ExitCode::FAILURE;
        }
    };
    let ev = EventLoop::new();
    let listener = Rc::new(TcpListener::bind("127.0.0.1:0").expect("bind"));
    let addr = listener.local_addr().expect("its address");
    // The poller is made on the first wait: make it now, outside the count.
    let first = listener.clone();
    ev.block_on(move || {
        let _ = first.accept_timeout(Duration::from_millis(1));
    })
    .expect("the first wait");
    let mut child = Command::new(std::env::current_exe().expect("this program"))
        .args(["--client", &addr.to_string(), &n.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the client process");
    let ready = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = ready.clone();
    let child_out = child.stdout.take().expect("piped");
    let watcher = std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(child_out).read_line(&mut line);
        flag.store(line.trim() == "ready", std::sync::atomic::Ordering::SeqCst);
    });
    let (rss_before, pte_before) = (resident_bytes(), kb_line("/proc/self/status", "VmPTE:"));
    let slab_before = kb_line("/proc/meminfo", "Slab:");
    let accepted = Rc::new(Cell::new(0usize));
    let count = accepted.clone();
    let (rss, pte, slab) = ev
        .block_on(move || {
            let acceptor = spawn(move || {
                for _ in 0..n {
                    let (stream, _) = listener.accept().expect("accept");
                    let mut builder = TaskBuilder::new();
                    if let Some(bytes) = stack {
                        builder = builder.stack_size(bytes);
                    }
                    builder.spawn(move || echo(stream));
                    count.set(count.get() + 1);
                }
            });
            while !watcher.is_finished() {
                sleep(Duration::from_millis(10));
            }
            acceptor.join().expect("the acceptor");
            (
                resident_bytes(),
                kb_line("/proc/self/status", "VmPTE:"),
                kb_line("/proc/meminfo", "Slab:"),
            )
        })
        .expect("the server");
    if !ready.load(std::sync::atomic::Ordering::SeqCst) || accepted.get() != n {
        eprintln!("net_memory: the client process failed");
        let _ = child.kill();
        let _ = child.wait();
        return ExitCode::FAILURE;
    }
    let per = |after: usize, before: usize| after.saturating_sub(before) as f64 / n as f64;
    let stack_name = stack.map_or("default".to_owned(), |b| format!("{b} B"));
    println!(
        "{n} idle connections, {buf}-byte buffer on a {stack_name} stack: \
         resident {:.0} B per connection (RSS {:.1} -> {:.1} MiB), page tables {:.0} B, \
         kernel slab (both ends, machine-wide) {:.0} B",
        per(rss, rss_before),
        rss_before as f64 / 1048576.0,
        rss as f64 / 1048576.0,
        per(pte, pte_before),
        per(slab, slab_before),
    );
    drop(child.stdin.take()); // the client closes its connections and exits
    let _ = child.wait();
    ev.run().expect("every connection closed");
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    if let [flag, addr, n] = args.as_slice()
        && flag == "--client"
    {
        return match (addr.parse(), n.parse()) {
            (Ok(addr), Ok(n)) => client(addr, n),
            _ => ExitCode::FAILURE,
        };
    }
    let (mut n, mut buf, mut stack) = (10_000, 1024, None);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let parsed = match arg.as_str() {
            "--buf" => it.next().and_then(|v| v.parse().ok()).map(|v| buf = v),
            "--stack" => it
                .next()
                .and_then(|v| v.parse().ok())
                .map(|v| stack = Some(v)),
            count => count.replace('_', "").parse().ok().map(|v| n = v),
        };
        if parsed.is_none() {
            eprintln!("{USAGE}");
            return ExitCode::FAILURE;
        }
    }
    server(n, buf, stack)
}
