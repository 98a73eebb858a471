//! Network servers under load, cogen against its peers: one load generator
//! (the same client code for every server) drives each server over
//! loopback, and this file owns both sides. Groups `net_echo` (64-byte
//! echo over 100 connections) and `net_http` (`GET /` over 64 connections,
//! pipelining depth 16 and depth 1), each server on one thread; and their
//! two-thread twins `net_echo_mt` and `net_http_mt`.
//!
//! ```text
//! cargo bench --bench net                          # every group and id, ~2 min
//! NET_BENCH_SECS=10 cargo bench --bench net        # longer runs per id and mode
//! cargo bench --bench net -- net_echo/tokio        # only the ids whose name contains this
//! cargo bench --bench net -- serve net_echo/tokio  # serve one id until killed
//! cargo bench --bench net -- client net_echo ADDR  # drive a server elsewhere
//! ```
//!
//! Each server runs in this process on its own thread (or, for `may`, on
//! its one worker thread), pinned to core 0; the client runs on its own
//! thread, pinned to core 1 (no pinning on a machine with one core). For
//! each id: the maximum rate (saturating mode: every connection sends its
//! next request as soon as the last answer is in), the server's CPU time
//! per request (user and system, read from `/proc/self/task/TID/stat` of
//! the server's threads), and the latency percentiles at a fixed offered
//! rate (open loop: requests go out on a schedule, and latency counts from
//! the scheduled time, so a stalled server is not hidden). The fixed rate
//! is half the lowest maximum of the group's ids, so that every server
//! keeps up with it (`NET_BENCH_RATE` sets it instead). Each id's measured
//! time (`NET_BENCH_SECS`, default 2 s per mode) is split into
//! `NET_BENCH_ROUNDS` slices (default 4), each after a short warm-up on new
//! connections, and the ids take turns, so that other load on the machine
//! falls on every id alike; the table adds up each id's slices.
//!
//! The `_mt` groups run servers of two threads, thread `i` pinned to core
//! `i`: `cogen` (a `Runtime` of two loops, each accepting on its own
//! `SO_REUSEPORT` listener), `cogen_1t` (the same with one loop, on core
//! 0), `tokio` (its `multi_thread` runtime, two workers), `may` and
//! `may_minihttp` (two workers). With two cores, the client shares core 1
//! with a server thread, so these groups have no saturating mode: only a
//! fixed rate (`MT_RATE_*`, or `NET_BENCH_RATE`), at which the client
//! sleeps until each batch is due rather than polling for it. They report
//! the server's CPU per request from its threads' CPU-time clocks (to the
//! nanosecond), and its system calls, `futex` calls and context switches
//! per request, counted by perf events on its threads.
//! `NET_BENCH_FIFO=1` runs their server threads and client under
//! `SCHED_FIFO` (see `fn fifo`). may's scheduler is one per
//! process, with one number of workers: the `_mt` groups run in a second
//! process, this program again.
//!
//! `serve` and `client` split the two sides into two processes, so that
//! `strace -c -f -p PID` can attach to a server alone; the client prints
//! how many requests it completed.
//!
//! Linux only (epoll, `/proc`, `sched_setaffinity`).

#[cfg(target_os = "linux")]
#[allow(dead_code)] // the example uses what the bench does not
#[path = "../examples/http_server/http.rs"]
mod http;

#[cfg(target_os = "linux")]
fn main() {
    linux::main();
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("benches/net.rs runs on Linux only");
}

#[cfg(target_os = "linux")]
mod linux {
    use std::collections::VecDeque;
    use std::io::{self, Read, Write};
    use std::net::SocketAddr;
    use std::os::fd::AsRawFd;
    use std::sync::OnceLock;
    use std::sync::mpsc;
    use std::thread;
    use std::time::{Duration, Instant};

    use hdrhistogram::Histogram;

    use super::http;

    // ---------------------------------------------------------------- setup

    /// Connections, bytes per echo, and the HTTP request.
    const ECHO_CONNS: usize = 100;
    const ECHO_SIZE: usize = 64;
    const HTTP_CONNS: usize = 64;
    const HTTP_REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n";
    /// The idle time limit of the HTTP servers that have one.
    const IDLE: Duration = Duration::from_secs(60);
    /// Warm-up before each measured run.
    const WARM_UP: Duration = Duration::from_millis(300);

    /// What a connection sends and what answers it.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Workload {
        Echo,
        /// HTTP with `depth` pipelined requests per write.
        Http {
            depth: usize,
        },
    }

    impl Workload {
        fn conns(self) -> usize {
            match self {
                Workload::Echo => ECHO_CONNS,
                Workload::Http { .. } => HTTP_CONNS,
            }
        }

        /// Requests per write.
        fn depth(self) -> usize {
            match self {
                Workload::Echo => 1,
                Workload::Http { depth } => depth,
            }
        }

        /// One write's bytes.
        fn batch(self) -> Vec<u8> {
            match self {
                Workload::Echo => vec![b'x'; ECHO_SIZE],
                Workload::Http { depth } => HTTP_REQUEST.repeat(depth),
            }
        }
    }

    /// The cores to pin the server and the client to, if the machine has
    /// two or more.
    fn cores() -> Option<(usize, usize)> {
        let n = thread::available_parallelism().map_or(1, |n| n.get());
        (n >= 2).then_some((0, 1))
    }

    /// Pins the calling thread to `core`.
    fn pin(core: usize) {
        // SAFETY: `set` is a plain bit set, initialised before use; the
        // call only reads it.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(core, &mut set);
            if libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) != 0 {
                eprintln!(
                    "net bench: cannot pin to core {core}: {}",
                    io::Error::last_os_error()
                );
            }
        }
    }

    fn pin_server() {
        if let Some((server, _)) = cores() {
            pin(server);
        }
    }

    fn pin_client() {
        if let Some((_, client)) = cores() {
            pin(client);
        }
    }

    fn gettid() -> i32 {
        // SAFETY: a plain system call without arguments.
        unsafe { libc::gettid() }
    }

    /// User and system CPU time of thread `tid` of this process.
    fn thread_cpu(tid: i32) -> (Duration, Duration) {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")) else {
            return (Duration::ZERO, Duration::ZERO);
        };
        // The fields after the command name (which may hold spaces) start
        // at the third; utime and stime are the 14th and 15th.
        let rest = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // SAFETY: a plain query.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (
            Duration::from_secs_f64(ticks(11) / hz),
            Duration::from_secs_f64(ticks(12) / hz),
        )
    }

    /// CPU time of a set of threads.
    fn cpu_of(tids: &[i32]) -> (Duration, Duration) {
        tids.iter()
            .map(|&t| thread_cpu(t))
            .fold((Duration::ZERO, Duration::ZERO), |(u, s), (u2, s2)| {
                (u + u2, s + s2)
            })
    }

    /// CPU time (user and system) of a set of threads of this process, to
    /// the nanosecond: their CPU-time clocks (the clock id of a thread is
    /// `MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED)`, what glibc's
    /// `pthread_getcpuclockid` returns).
    fn cpu_clock_of(tids: &[i32]) -> Duration {
        tids.iter()
            .map(|&tid| {
                let clock = ((!tid) << 3) | 6;
                let mut ts = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                // SAFETY: `ts` is a valid, writable timespec; a clock of a
                // thread that ended is an error, read as zero.
                if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
                    return Duration::ZERO;
                }
                Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
            })
            .sum()
    }

    /// The leading fields of the kernel's `perf_event_attr`
    /// (`PERF_ATTR_SIZE_VER0`, 64 bytes): all a counting event needs.
    #[repr(C)]
    #[derive(Default)]
    struct PerfEventAttr {
        kind: u32,
        size: u32,
        config: u64,
        sample_period: u64,
        sample_type: u64,
        read_format: u64,
        /// Bit fields (`disabled`, `exclude_kernel`, ...): all clear, so
        /// the event counts from its opening, in user and kernel mode.
        flags: u64,
        wakeup_events: u32,
        bp_type: u32,
        config1: u64,
    }

    /// One perf event counting for one thread.
    struct PerfCounter(std::os::fd::OwnedFd);

    impl PerfCounter {
        /// `None` if the kernel refuses (no perf events, not permitted).
        fn open(kind: u32, config: u64, tid: i32) -> Option<PerfCounter> {
            let attr = PerfEventAttr {
                kind,
                size: size_of::<PerfEventAttr>() as u32,
                config,
                ..PerfEventAttr::default()
            };
            const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
            // SAFETY: `attr` is valid for the size it declares; the
            // result is checked, and a descriptor then owned.
            unsafe {
                let fd = libc::syscall(
                    libc::SYS_perf_event_open,
                    &attr as *const PerfEventAttr,
                    tid,
                    -1,
                    -1,
                    PERF_FLAG_FD_CLOEXEC,
                );
                (fd >= 0).then(|| PerfCounter(std::os::fd::FromRawFd::from_raw_fd(fd as i32)))
            }
        }

        fn read(&self) -> u64 {
            let mut value = 0u64;
            // SAFETY: `value` is 8 writable bytes; a counting event
            // without a read format reads as one u64.
            let n = unsafe {
                libc::read(
                    self.0.as_raw_fd(),
                    (&mut value as *mut u64).cast(),
                    size_of::<u64>(),
                )
            };
            if n == size_of::<u64>() as isize {
                value
            } else {
                0
            }
        }
    }

    /// The id of a kernel tracepoint (`raw_syscalls/sys_enter`), if tracefs
    /// is there to say.
    fn tracepoint(name: &str) -> Option<u64> {
        [
            "/sys/kernel/tracing/events",
            "/sys/kernel/debug/tracing/events",
        ]
        .iter()
        .find_map(|dir| std::fs::read_to_string(format!("{dir}/{name}/id")).ok())
        .and_then(|id| id.trim().parse().ok())
    }

    /// What [`Counters`] counts, in this order.
    const COUNTED: usize = 3;

    /// System calls, `futex` calls and context switches of a set of threads
    /// (perf events: a tracepoint counter costs each system call of those
    /// threads a little, the same for every id).
    struct Counters(Vec<[PerfCounter; COUNTED]>);

    impl Counters {
        /// `None` if any counter cannot be opened.
        fn open(tids: &[i32]) -> Option<Counters> {
            const PERF_TYPE_SOFTWARE: u32 = 1;
            const PERF_TYPE_TRACEPOINT: u32 = 2;
            const PERF_COUNT_SW_CONTEXT_SWITCHES: u64 = 3;
            let syscalls = tracepoint("raw_syscalls/sys_enter")?;
            let futex = tracepoint("syscalls/sys_enter_futex")?;
            tids.iter()
                .map(|&tid| {
                    Some([
                        PerfCounter::open(PERF_TYPE_TRACEPOINT, syscalls, tid)?,
                        PerfCounter::open(PERF_TYPE_TRACEPOINT, futex, tid)?,
                        PerfCounter::open(PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CONTEXT_SWITCHES, tid)?,
                    ])
                })
                .collect::<Option<Vec<_>>>()
                .map(Counters)
        }

        /// The sums over the threads.
        fn read(&self) -> [u64; COUNTED] {
            let mut sums = [0; COUNTED];
            for thread in &self.0 {
                for (sum, counter) in sums.iter_mut().zip(thread) {
                    *sum += counter.read();
                }
            }
            sums
        }
    }

    /// The ids of this process's threads.
    fn threads() -> Vec<i32> {
        std::fs::read_dir("/proc/self/task")
            .map(|dir| {
                dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    // -------------------------------------------------------------- servers

    /// A server running in this process: where it listens and the threads
    /// whose CPU time is its cost.
    struct Server {
        addr: SocketAddr,
        tids: Vec<i32>,
    }

    /// Starts `serve` on a new thread, pinned to the server core; `serve`
    /// sends its address once it listens, then serves forever (the thread
    /// stays parked in its poller once the clients are gone). The server's
    /// threads are those that appeared meanwhile (the runtime's helpers too).
    fn on_thread(serve: impl FnOnce(mpsc::Sender<SocketAddr>) + Send + 'static) -> Server {
        let before = threads();
        let (tx, rx) = mpsc::channel();
        thread::Builder::new()
            .name("server".into())
            .spawn(move || {
                pin_server();
                serve(tx);
            })
            .expect("spawn the server thread");
        let addr = rx.recv().expect("the server's address");
        let tids = new_threads(&before);
        Server { addr, tids }
    }

    const ANY_PORT: &str = "127.0.0.1:0";

    /// The threads that appeared since `before` (a snapshot of [`threads`]).
    fn new_threads(before: &[i32]) -> Vec<i32> {
        threads()
            .into_iter()
            .filter(|t| !before.contains(t))
            .collect()
    }

    /// The echo of `examples/echo_server.rs`.
    fn cogen_echo_conn(mut stream: cogen::event_loop::net::TcpStream) -> io::Result<()> {
        let mut buf = [0; 4096];
        loop {
            let n = stream.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            stream.write_all(&buf[..n])?;
        }
    }

    /// The connection task of `examples/http_server`.
    fn cogen_http_conn(stream: cogen::event_loop::net::TcpStream) -> io::Result<()> {
        http::serve_connection(stream, IDLE)
    }

    /// A cogen connection task.
    type CogenConn = fn(cogen::event_loop::net::TcpStream) -> io::Result<()>;

    /// Accepts on `listener` forever, one task per connection.
    fn cogen_accept(listener: cogen::event_loop::net::TcpListener, conn: CogenConn) {
        for stream in listener.incoming() {
            let stream = stream.unwrap();
            stream.set_nodelay(true).unwrap();
            cogen::event_loop::spawn(move || conn(stream));
        }
    }

    /// One `EventLoop` on the server thread.
    fn cogen_loop(conn: CogenConn) -> Server {
        use cogen::event_loop::EventLoop;
        use cogen::event_loop::net::TcpListener;
        on_thread(move |tx| {
            EventLoop::new()
                .block_on(move || {
                    let listener = TcpListener::bind(ANY_PORT).unwrap();
                    tx.send(listener.local_addr().unwrap()).unwrap();
                    cogen_accept(listener, conn);
                })
                .unwrap();
        })
    }

    fn cogen_echo() -> Server {
        cogen_loop(cogen_echo_conn)
    }

    fn cogen_http() -> Server {
        cogen_loop(cogen_http_conn)
    }

    /// A `Runtime` of `n` loops, thread `i` pinned to core `i`, each
    /// accepting on its own `SO_REUSEPORT` listener (as `--threads N` of
    /// the examples). Called from the unpinned main thread, so that the
    /// runtime's threads may be pinned to every core; the runtime is
    /// leaked: it serves until the process ends.
    fn cogen_runtime(n: usize, conn: CogenConn) -> Server {
        use cogen::event_loop::net::TcpListener;
        use cogen::event_loop::{Runtime, bind_reuseport};
        let before = threads();
        let first = bind_reuseport(ANY_PORT.parse().unwrap()).unwrap();
        let addr = first.local_addr().unwrap();
        let mut listeners = vec![first];
        for _ in 1..n {
            listeners.push(bind_reuseport(addr).unwrap());
        }
        let rt = Runtime::builder()
            .threads(n)
            .pin(cores().is_some())
            .build()
            .unwrap();
        for (handle, listener) in rt.handles().iter().zip(listeners) {
            handle
                .spawn(move || cogen_accept(TcpListener::try_from(listener).unwrap(), conn))
                .detach();
        }
        let tids = new_threads(&before);
        std::mem::forget(rt);
        Server { addr, tids }
    }

    fn tokio_runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// The echo, one task per connection.
    async fn tokio_echo_conn(mut stream: tokio::net::TcpStream) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut buf = [0; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if stream.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// `http::serve_connection`, line for line, on tokio.
    async fn tokio_http_conn(mut stream: tokio::net::TcpStream) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut input = vec![0u8; 2 * http::MAX_HEAD];
        let mut out = Vec::with_capacity(4096);
        let mut end = 0;
        loop {
            let read = tokio::time::timeout(IDLE, stream.read(&mut input[end..]));
            let n = match read.await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
                Ok(Ok(n)) => n,
            };
            end += n;
            let handled = http::handle(&input[..end], &mut out);
            if !out.is_empty() {
                if stream.write_all(&out).await.is_err() {
                    return;
                }
                out.clear();
            }
            if handled.close {
                return;
            }
            input.copy_within(handled.consumed..end, 0);
            end -= handled.consumed;
        }
    }

    /// Binds, sends the address, and accepts forever, one task per
    /// connection.
    async fn tokio_accept<F>(tx: mpsc::Sender<SocketAddr>, conn: fn(tokio::net::TcpStream) -> F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let listener = tokio::net::TcpListener::bind(ANY_PORT).await.unwrap();
        tx.send(listener.local_addr().unwrap()).unwrap();
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            stream.set_nodelay(true).unwrap();
            tokio::spawn(conn(stream));
        }
    }

    fn tokio_echo() -> Server {
        on_thread(|tx| tokio_runtime().block_on(tokio_accept(tx, tokio_echo_conn)))
    }

    fn tokio_http() -> Server {
        on_thread(|tx| tokio_runtime().block_on(tokio_accept(tx, tokio_http_conn)))
    }

    /// tokio's `multi_thread` runtime with 2 workers, worker `i` pinned to
    /// core `i`, the accept loop a task on it (one listener: tokio spreads
    /// the connections' tasks by itself). Called from the unpinned main
    /// thread; the runtime is leaked.
    fn tokio_mt<F>(conn: fn(tokio::net::TcpStream) -> F) -> Server
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let before = threads();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .on_thread_start(move || {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if cores().is_some() {
                    pin(i % 2);
                }
            })
            .enable_all()
            .build()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        rt.spawn(tokio_accept(tx, conn));
        let addr = rx.recv().expect("the server's address");
        let tids = new_threads(&before);
        std::mem::forget(rt);
        Server { addr, tids }
    }

    fn smol_echo() -> Server {
        use async_io::Async;
        use futures_lite::{AsyncReadExt, AsyncWriteExt};
        on_thread(|tx| {
            let ex = async_executor::LocalExecutor::new();
            async_io::block_on(ex.run(async {
                let listener = Async::<std::net::TcpListener>::bind(([127, 0, 0, 1], 0)).unwrap();
                tx.send(listener.get_ref().local_addr().unwrap()).unwrap();
                loop {
                    let (mut stream, _) = listener.accept().await.unwrap();
                    stream.get_ref().set_nodelay(true).unwrap();
                    ex.spawn(async move {
                        let mut buf = [0; 4096];
                        loop {
                            match stream.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => {
                                    if stream.write_all(&buf[..n]).await.is_err() {
                                        return;
                                    }
                                }
                            }
                        }
                    })
                    .detach();
                }
            }));
        })
    }

    /// may's scheduler, set up once for the process with `n` workers: the
    /// threads whose CPU time is its cost. One worker: pinned to the server
    /// core, its thread id (the timer thread is left out: idle here,
    /// nothing uses may's time limits). More: may pins worker `i` to core
    /// `i` itself (set up from the unpinned main thread), and the ids are
    /// every thread it started, its timer thread too.
    ///
    /// # Panics
    /// If the scheduler was set up with another number of workers: it is
    /// global to the process (hence `run_all` runs the `_mt` groups in a
    /// process of their own).
    fn may_workers(n: usize) -> Vec<i32> {
        static WORKERS: OnceLock<(usize, Vec<i32>)> = OnceLock::new();
        let (count, tids) = WORKERS.get_or_init(|| {
            let before = threads();
            may::config().set_workers(n);
            may::config().set_worker_pin(n > 1 && cores().is_some());
            let h = may::go!(move || {
                if n == 1 {
                    pin_server();
                }
                gettid()
            });
            let worker = h.join().expect("may's worker");
            if n == 1 {
                (1, vec![worker])
            } else {
                (n, new_threads(&before))
            }
        });
        assert_eq!(
            *count, n,
            "may's scheduler is global to the process and has {count} workers, not {n}"
        );
        tids.clone()
    }

    fn may_echo(workers: usize) -> Server {
        let tids = may_workers(workers);
        let listener = may::net::TcpListener::bind(ANY_PORT).unwrap();
        let addr = listener.local_addr().unwrap();
        may::go!(move || {
            for stream in listener.incoming() {
                let mut stream = stream.unwrap();
                stream.set_nodelay(true).unwrap();
                may::go!(move || {
                    let mut buf = [0; 4096];
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
                });
            }
        });
        Server { addr, tids }
    }

    fn may_minihttp(workers: usize) -> Server {
        use may_minihttp::{HttpServer, HttpService, Request, Response};
        #[derive(Clone)]
        struct Hello;
        impl HttpService for Hello {
            fn call(&mut self, req: Request, rsp: &mut Response) -> io::Result<()> {
                rsp.header("Content-Type: text/plain");
                if req.path() == "/" {
                    rsp.body("Hello, World!");
                } else {
                    rsp.status_code(404, "Not Found");
                }
                Ok(())
            }
        }
        let tids = may_workers(workers);
        // `start` binds, then serves in a coroutine; find a free port first.
        let addr = std::net::TcpListener::bind(ANY_PORT)
            .unwrap()
            .local_addr()
            .unwrap();
        HttpServer(Hello).start(addr).unwrap();
        Server { addr, tids }
    }

    /// Starts one id's server.
    type Start = fn() -> Server;

    /// Every group's ids, in order, with their server.
    const IDS: &[(&str, &str, Start)] = &[
        ("net_echo", "cogen", cogen_echo),
        ("net_echo", "tokio", tokio_echo),
        ("net_echo", "smol", smol_echo),
        ("net_echo", "may", || may_echo(1)),
        ("net_http", "cogen", cogen_http),
        ("net_http", "tokio", tokio_http),
        ("net_http", "may_minihttp", || may_minihttp(1)),
        ("net_echo_mt", "cogen", || cogen_runtime(2, cogen_echo_conn)),
        ("net_echo_mt", "cogen_1t", || {
            cogen_runtime(1, cogen_echo_conn)
        }),
        ("net_echo_mt", "tokio", || tokio_mt(tokio_echo_conn)),
        ("net_echo_mt", "may", || may_echo(2)),
        ("net_http_mt", "cogen", || cogen_runtime(2, cogen_http_conn)),
        ("net_http_mt", "cogen_1t", || {
            cogen_runtime(1, cogen_http_conn)
        }),
        ("net_http_mt", "tokio", || tokio_mt(tokio_http_conn)),
        ("net_http_mt", "may_minihttp", || may_minihttp(2)),
    ];

    // --------------------------------------------------------------- client

    /// How the client paces its requests.
    #[derive(Clone, Copy, Debug)]
    enum Pace {
        /// Each connection sends its next batch once the last is answered.
        Saturate,
        /// Batches go out on a fixed schedule, `rate` requests per second
        /// over all connections, answered or not.
        Fixed { rate: f64 },
    }

    /// What one measured run saw.
    struct Outcome {
        requests: u64,
        elapsed: Duration,
        latency: Histogram<u64>,
        /// Server CPU time over the measured window: user, system.
        cpu: (Duration, Duration),
        errors: u64,
        /// Requests answered over the whole run, warm-up included.
        total: u64,
        /// The client thread's CPU time over the measured window.
        client_cpu: Duration,
        /// Server CPU time over the measured window, from the threads'
        /// CPU-time clocks (nanoseconds, where `cpu` has clock ticks).
        cpu_clock: Duration,
        /// The server threads' [`Counters`] over the measured window, if
        /// counted.
        counts: Option<[u64; COUNTED]>,
    }

    impl Outcome {
        fn rate(&self) -> f64 {
            self.requests as f64 / self.elapsed.as_secs_f64()
        }

        /// Server CPU per request, µs: user, system.
        fn cpu_per_request(&self) -> (f64, f64) {
            let per = |d: Duration| d.as_secs_f64() * 1e6 / self.requests.max(1) as f64;
            (per(self.cpu.0), per(self.cpu.1))
        }

        /// Adds another slice of the same id and mode.
        fn add(&mut self, other: Outcome) {
            self.requests += other.requests;
            self.elapsed += other.elapsed;
            self.latency.add(&other.latency).expect("same bounds");
            self.cpu = (self.cpu.0 + other.cpu.0, self.cpu.1 + other.cpu.1);
            self.errors += other.errors;
            self.total += other.total;
            self.client_cpu += other.client_cpu;
            self.cpu_clock += other.cpu_clock;
            self.counts = match (self.counts, other.counts) {
                (Some(a), Some(b)) => Some(std::array::from_fn(|i| a[i] + b[i])),
                _ => None,
            };
        }

        /// Server CPU time per request from the threads' clocks, µs.
        fn cpu_clock_per_request(&self) -> f64 {
            self.cpu_clock.as_secs_f64() * 1e6 / self.requests.max(1) as f64
        }

        /// Counted events per request (`Counters`' order), if counted.
        fn counts_per_request(&self) -> Option<[f64; COUNTED]> {
            let counts = self.counts?;
            Some(counts.map(|c| c as f64 / self.requests.max(1) as f64))
        }

        /// Server CPU time over wall time.
        fn busy(&self) -> f64 {
            (self.cpu.0 + self.cpu.1).as_secs_f64() / self.elapsed.as_secs_f64()
        }

        /// Client CPU time over wall time.
        fn client_busy(&self) -> f64 {
            self.client_cpu.as_secs_f64() / self.elapsed.as_secs_f64()
        }
    }

    /// One client connection.
    struct Conn {
        stream: std::net::TcpStream,
        /// Scheduled send times (ns since the run's start) of the requests
        /// not yet answered, oldest first.
        sent: VecDeque<u64>,
        /// Bytes received and not yet parsed into whole answers.
        input: Vec<u8>,
        /// Bytes of a batch that did not fit in the socket's buffer.
        output: Vec<u8>,
    }

    /// Minimal epoll, level-triggered, for the client.
    struct Epoll(std::os::fd::OwnedFd);

    impl Epoll {
        fn new() -> Epoll {
            // SAFETY: a plain system call; the descriptor is checked and
            // then owned.
            unsafe {
                let fd = libc::epoll_create1(libc::EPOLL_CLOEXEC);
                assert!(fd >= 0, "epoll_create1: {}", io::Error::last_os_error());
                Epoll(std::os::fd::FromRawFd::from_raw_fd(fd))
            }
        }

        fn add(&self, fd: i32, key: u64) {
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: key,
            };
            // SAFETY: both descriptors are open; `ev` is valid.
            let r =
                unsafe { libc::epoll_ctl(self.0.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
            assert_eq!(r, 0, "epoll_ctl: {}", io::Error::last_os_error());
        }

        /// Ready keys into `keys`; `timeout_ms` as in epoll_wait.
        fn wait(&self, events: &mut [libc::epoll_event], keys: &mut Vec<u64>, timeout_ms: i32) {
            keys.clear();
            // SAFETY: `events` is valid for `len` entries.
            let n = unsafe {
                libc::epoll_wait(
                    self.0.as_raw_fd(),
                    events.as_mut_ptr(),
                    events.len() as i32,
                    timeout_ms,
                )
            };
            for ev in events.iter().take(n.max(0) as usize) {
                keys.push(ev.u64);
            }
        }

        /// As `wait`, with a timeout to the nanosecond (`epoll_pwait2`).
        fn wait_ns(&self, events: &mut [libc::epoll_event], keys: &mut Vec<u64>, timeout_ns: u64) {
            keys.clear();
            let timeout = libc::timespec {
                tv_sec: (timeout_ns / 1_000_000_000) as libc::time_t,
                tv_nsec: (timeout_ns % 1_000_000_000) as libc::c_long,
            };
            // SAFETY: `events` is valid for `len` entries, `timeout` for
            // reading; no signal mask.
            let n = unsafe {
                libc::syscall(
                    libc::SYS_epoll_pwait2,
                    self.0.as_raw_fd(),
                    events.as_mut_ptr(),
                    events.len() as libc::c_int,
                    &timeout as *const libc::timespec,
                    std::ptr::null::<libc::sigset_t>(),
                    0usize,
                )
            };
            for ev in events.iter().take(n.max(0) as usize) {
                keys.push(ev.u64);
            }
        }
    }

    /// Takes the whole answers at the start of `input`; how many.
    fn answers(work: Workload, input: &mut Vec<u8>, errors: &mut u64) -> usize {
        match work {
            Workload::Echo => {
                let n = input.len() / ECHO_SIZE;
                input.drain(..n * ECHO_SIZE);
                n
            }
            Workload::Http { .. } => {
                let mut at = 0;
                let mut n = 0;
                while let Some(len) = http_answer_len(&input[at..]) {
                    if !input[at..].starts_with(b"HTTP/1.1 200 ") {
                        *errors += 1;
                    }
                    at += len;
                    n += 1;
                }
                input.drain(..at);
                n
            }
        }
    }

    /// The length of the whole HTTP answer at the start of `buf`, if it is
    /// all there: its head, and the body `Content-Length` gives.
    fn http_answer_len(buf: &[u8]) -> Option<usize> {
        let head = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
        let mut body = 0;
        for line in buf[..head].split(|&b| b == b'\n') {
            if line.len() > 15 && line[..15].eq_ignore_ascii_case(b"content-length:") {
                body = std::str::from_utf8(&line[15..]).ok()?.trim().parse().ok()?;
            }
        }
        (buf.len() >= head + body).then_some(head + body)
    }

    /// Opens the connections and drives `addr` with `work` at `pace`: a
    /// warm-up, then `secs` measured; the server's CPU is read from `tids`.
    /// With `shared` (see [`drive_pinned`]), the server's system calls are
    /// counted, and at a fixed pace the client sleeps until its next batch
    /// is due, to the nanosecond, instead of polling for it when it is less
    /// than a millisecond away.
    fn drive(
        addr: SocketAddr,
        work: Workload,
        pace: Pace,
        secs: Duration,
        tids: &[i32],
        shared: bool,
    ) -> Outcome {
        let counters = if shared { Counters::open(tids) } else { None };
        if shared && counters.is_none() {
            eprintln!("net bench: cannot count system calls (perf events); left out");
        }
        let batch = work.batch();
        let depth = work.depth() as u64;
        let epoll = Epoll::new();
        let mut conns: Vec<Conn> = (0..work.conns())
            .map(|i| {
                let stream = std::net::TcpStream::connect(addr).expect("connect");
                stream.set_nodelay(true).unwrap();
                stream.set_nonblocking(true).unwrap();
                epoll.add(stream.as_raw_fd(), i as u64);
                Conn {
                    stream,
                    sent: VecDeque::new(),
                    input: Vec::with_capacity(64 * 1024),
                    output: Vec::new(),
                }
            })
            .collect();
        let mut latency = Histogram::<u64>::new_with_bounds(1_000, 60_000_000_000, 3).unwrap();
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; conns.len()];
        let mut keys = Vec::with_capacity(conns.len());
        let mut buf = vec![0u8; 64 * 1024];
        let (mut requests, mut errors, mut total) = (0u64, 0u64, 0u64);

        let start = Instant::now();
        let ns = |t: Instant| t.duration_since(start).as_nanos() as u64;
        let measure_from = start + WARM_UP;
        let end = measure_from + secs;
        let mut measuring = false;
        let mut cpu_start = (Duration::ZERO, Duration::ZERO);
        let mut clock_start = Duration::ZERO;
        let mut counts_start = [0; COUNTED];
        let me = [gettid()];
        let mut client_start = Duration::ZERO;
        let mut window_start = measure_from;
        // Fixed pace: batch k goes out on connection k % conns at k * gap.
        let gap_ns = match pace {
            Pace::Fixed { rate } => (1e9 * depth as f64 / rate) as u64,
            Pace::Saturate => 0,
        };
        let mut next_batch = 0u64;

        let send = |conn: &mut Conn, at: u64, errors: &mut u64| {
            for _ in 0..depth {
                conn.sent.push_back(at);
            }
            if !conn.output.is_empty() {
                conn.output.extend_from_slice(&batch);
                return;
            }
            match conn.stream.write(&batch) {
                Ok(n) => conn.output.extend_from_slice(&batch[n..]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    conn.output.extend_from_slice(&batch)
                }
                Err(_) => *errors += 1,
            }
        };

        if let Pace::Saturate = pace {
            for conn in &mut conns {
                send(conn, 0, &mut errors);
            }
        }
        loop {
            let now = Instant::now();
            if !measuring && now >= measure_from {
                measuring = true;
                requests = 0;
                latency.reset();
                cpu_start = cpu_of(tids);
                clock_start = cpu_clock_of(tids);
                if let Some(c) = &counters {
                    counts_start = c.read();
                }
                client_start = {
                    let (u, s) = cpu_of(&me);
                    u + s
                };
                window_start = now;
            }
            if now >= end {
                let cpu_end = cpu_of(tids);
                let clock_end = cpu_clock_of(tids);
                let counts = counters.as_ref().map(|c| {
                    let end = c.read();
                    std::array::from_fn(|i| end[i] - counts_start[i])
                });
                let client_end = cpu_of(&me);
                return Outcome {
                    client_cpu: (client_end.0 + client_end.1).saturating_sub(client_start),
                    requests,
                    elapsed: now - window_start,
                    latency,
                    cpu: (cpu_end.0 - cpu_start.0, cpu_end.1 - cpu_start.1),
                    errors,
                    total,
                    cpu_clock: clock_end - clock_start,
                    counts,
                };
            }
            let now_ns = ns(now);
            let mut timeout = 1;
            let mut timeout_ns = None;
            if let Pace::Fixed { .. } = pace {
                while next_batch * gap_ns <= now_ns {
                    let i = (next_batch % conns.len() as u64) as usize;
                    send(&mut conns[i], next_batch * gap_ns, &mut errors);
                    next_batch += 1;
                }
                let wait_ns = next_batch * gap_ns - now_ns;
                timeout_ns = shared.then_some(wait_ns);
                timeout = if wait_ns > 1_000_000 {
                    (wait_ns / 1_000_000) as i32
                } else {
                    0
                };
            }
            // Output the socket could not take at once (rare): retry now.
            for conn in conns.iter_mut().filter(|c| !c.output.is_empty()) {
                match conn.stream.write(&conn.output) {
                    Ok(n) => {
                        conn.output.drain(..n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => errors += 1,
                }
            }
            match timeout_ns {
                Some(ns) => epoll.wait_ns(&mut events, &mut keys, ns),
                None => epoll.wait(&mut events, &mut keys, timeout),
            }
            let now_ns = ns(Instant::now());
            for &key in &keys {
                let conn = &mut conns[key as usize];
                let n = match conn.stream.read(&mut buf) {
                    Ok(0) => panic!("the server closed a connection"),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => panic!("read: {e}"),
                };
                conn.input.extend_from_slice(&buf[..n]);
                let done = answers(work, &mut conn.input, &mut errors);
                for _ in 0..done {
                    let at = conn.sent.pop_front().expect("an answer to a request sent");
                    if measuring {
                        let _ = latency.record(now_ns.saturating_sub(at).max(1_000));
                    }
                }
                total += done as u64;
                if measuring {
                    requests += done as u64;
                }
                if let Pace::Saturate = pace
                    && conn.sent.is_empty()
                {
                    send(conn, now_ns, &mut errors);
                }
            }
        }
    }

    /// `drive` on a new client thread pinned to the client core.
    /// With `shared` (the `_mt` groups, whose servers have a thread on the
    /// client's core too), the client does not poll for its next batch but
    /// sleeps until it is due (with a timer slack of 1 ns), so that the
    /// core is free for the server thread meanwhile, and the server's
    /// threads are counted (see [`Counters`]).
    fn drive_pinned(
        server: &Server,
        work: Workload,
        pace: Pace,
        secs: Duration,
        shared: bool,
    ) -> Outcome {
        let (addr, tids) = (server.addr, server.tids.clone());
        thread::Builder::new()
            .name("client".into())
            .spawn(move || {
                pin_client();
                if shared {
                    // SAFETY: a plain system call on the calling thread.
                    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
                    if fifo() {
                        for tid in tids.iter().copied().chain([gettid()]) {
                            set_fifo(tid);
                        }
                    }
                }
                drive(addr, work, pace, secs, &tids, shared)
            })
            .unwrap()
            .join()
            .expect("the client thread")
    }

    /// `NET_BENCH_FIFO=1`: the `_mt` groups run the server's threads and
    /// the client under `SCHED_FIFO` (priority 1), so that other processes
    /// on a shared machine do not delay them when they are woken (which
    /// would make a server batch its requests and look cheaper per request
    /// than it is). Needs the privilege to (`CAP_SYS_NICE`); the kernel's
    /// real-time throttling still leaves other processes a share.
    fn fifo() -> bool {
        std::env::var("NET_BENCH_FIFO").is_ok_and(|v| v == "1")
    }

    /// Moves thread `tid` to `SCHED_FIFO`, priority 1.
    fn set_fifo(tid: i32) {
        let param = libc::sched_param { sched_priority: 1 };
        // SAFETY: `param` is valid for reading; a thread that is gone or a
        // refusal is an error, reported.
        if unsafe { libc::sched_setscheduler(tid, libc::SCHED_FIFO, &param) } != 0 {
            eprintln!(
                "net bench: cannot make thread {tid} SCHED_FIFO: {}",
                io::Error::last_os_error()
            );
        }
    }

    // -------------------------------------------------------------- reports

    /// Both runs of one id.
    struct Row {
        id: &'static str,
        max: Outcome,
        fixed: Option<(f64, Outcome)>,
    }

    fn print_table(title: &str, rows: &[Row]) {
        println!("\n### {title}\n");
        println!(
            "| id | max req/s | server CPU per req at max: user | system | server busy | client busy | fixed rate req/s | p50 | p99 | server CPU per req at fixed rate | errors |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for row in rows {
            let (user, sys) = row.max.cpu_per_request();
            let fixed = match &row.fixed {
                Some((rate, f)) => {
                    let (u, s) = f.cpu_per_request();
                    format!(
                        "{rate:.0} | {} | {} | {:.2} µs",
                        micros(f.latency.value_at_quantile(0.5)),
                        micros(f.latency.value_at_quantile(0.99)),
                        u + s
                    )
                }
                None => "– | – | – | –".into(),
            };
            let errors = row.max.errors + row.fixed.as_ref().map_or(0, |f| f.1.errors);
            println!(
                "| {} | {:.0} | {user:.2} µs | {sys:.2} µs | {:.0} % | {:.0} % | {fixed} | {errors} |",
                row.id,
                row.max.rate(),
                row.max.busy() * 100.0,
                row.max.client_busy() * 100.0
            );
        }
    }

    fn micros(ns: u64) -> String {
        format!("{:.0} µs", ns as f64 / 1e3)
    }

    fn secs() -> Duration {
        let secs = std::env::var("NET_BENCH_SECS")
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(2.0);
        Duration::from_secs_f64(secs)
    }

    /// Rounds per id and mode (`NET_BENCH_ROUNDS`, default 4): each id's
    /// measured time is split into this many slices, and the ids take
    /// turns, so that other load on the machine falls on all of them alike.
    fn rounds() -> u32 {
        std::env::var("NET_BENCH_ROUNDS")
            .ok()
            .and_then(|r| r.parse().ok())
            .filter(|&r| r > 0)
            .unwrap_or(4)
    }

    /// Runs every id at `pace` in turns, `rounds()` times, and adds up
    /// each id's slices (`shared`: see [`drive_pinned`]).
    fn in_turns(
        title: &str,
        work: Workload,
        pace: Pace,
        servers: &[(&'static str, Server)],
        shared: bool,
    ) -> Vec<Outcome> {
        let rounds = rounds();
        let slice = secs() / rounds;
        let mut sums: Vec<Option<Outcome>> = servers.iter().map(|_| None).collect();
        for round in 0..rounds {
            for ((id, server), sum) in servers.iter().zip(&mut sums) {
                eprintln!("{title} / {id}: {pace:?}, round {}", round + 1);
                let out = drive_pinned(server, work, pace, slice, shared);
                match sum {
                    Some(sum) => sum.add(out),
                    None => *sum = Some(out),
                }
            }
        }
        sums.into_iter()
            .map(|s| s.expect("one round at least"))
            .collect()
    }

    /// One group at one workload: every selected id at full speed, then at
    /// the fixed rate.
    fn run_group(title: &str, work: Workload, servers: &[(&'static str, Server)]) {
        let maxes = in_turns(title, work, Pace::Saturate, servers, false);
        let rate = std::env::var("NET_BENCH_RATE")
            .ok()
            .and_then(|r| r.parse::<f64>().ok())
            .unwrap_or_else(|| {
                0.5 * maxes
                    .iter()
                    .map(Outcome::rate)
                    .fold(f64::INFINITY, f64::min)
            });
        let fixed = in_turns(title, work, Pace::Fixed { rate }, servers, false);
        let rows: Vec<Row> = servers
            .iter()
            .zip(maxes.into_iter().zip(fixed))
            .map(|((id, _), (max, fixed))| Row {
                id,
                max,
                fixed: Some((rate, fixed)),
            })
            .collect();
        print_table(title, &rows);
    }

    /// A `_mt` group at one workload: every selected id at the fixed rate
    /// only (`NET_BENCH_RATE`, or `rate`), in turns; the client shares a
    /// core with the servers (see [`drive_pinned`]).
    fn run_mt_group(title: &str, work: Workload, rate: f64, servers: &[(&'static str, Server)]) {
        let rate = std::env::var("NET_BENCH_RATE")
            .ok()
            .and_then(|r| r.parse::<f64>().ok())
            .unwrap_or(rate);
        let fixed = in_turns(title, work, Pace::Fixed { rate }, servers, true);
        println!("\n### {title}, {rate:.0} requests/s offered\n");
        println!(
            "| id | server threads | answered req/s | p50 | p99 | server CPU per req | of which system | server busy | client busy | system calls per req | futex per req | context switches per req | errors |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for ((id, server), out) in servers.iter().zip(&fixed) {
            let (user, sys) = out.cpu_per_request();
            let counts = match out.counts_per_request() {
                Some([calls, futex, switches]) => {
                    format!("{calls:.3} | {futex:.4} | {switches:.3}")
                }
                None => "– | – | –".into(),
            };
            println!(
                "| {id} | {} | {:.0} | {} | {} | {:.2} µs | {:.0} % | {:.0} % | {:.0} % | {counts} | {} |",
                server.tids.len(),
                out.rate(),
                micros(out.latency.value_at_quantile(0.5)),
                micros(out.latency.value_at_quantile(0.99)),
                out.cpu_clock_per_request(),
                100.0 * sys / (user + sys).max(f64::MIN_POSITIVE),
                100.0 * out.cpu_clock.as_secs_f64() / out.elapsed.as_secs_f64(),
                out.client_busy() * 100.0,
                out.errors
            );
        }
    }

    pub fn main() {
        let args: Vec<String> = std::env::args()
            .skip(1)
            .filter(|a| !a.starts_with("--"))
            .collect();
        match args
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            ["serve", name] => serve_only(name),
            ["client", group, addr] => client_only(group, addr),
            filter => run_all(filter.first().copied().unwrap_or("")),
        }
    }

    /// Set in the child process that runs the `_mt` groups.
    const MT_CHILD: &str = "NET_BENCH_MT_CHILD";

    /// The fixed rates of the `_mt` groups (requests per second; see
    /// docs/BENCHMARKS.md#network for why these): well below what one
    /// cogen thread serves on its core (the 1-thread id must keep up), and
    /// low enough that the client, which shares its core with a server
    /// thread, stays far from busy.
    const MT_RATE_ECHO: f64 = 40_000.0;
    const MT_RATE_HTTP16: f64 = 400_000.0;
    const MT_RATE_HTTP1: f64 = 40_000.0;

    fn run_all(filter: &str) {
        let mt_child = std::env::var_os(MT_CHILD).is_some();
        let model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|c| {
                c.lines()
                    .find(|l| l.starts_with("model name"))
                    .map(|l| l.to_owned())
            })
            .unwrap_or_default();
        if !mt_child {
            println!(
                "net bench: {model}; pinning: {}; {:?} per id and mode, in {} turns of the ids, each after {WARM_UP:?} of warm-up",
                match cores() {
                    Some((s, c)) => format!("server on core {s}, client on core {c}"),
                    None => "none (one core)".into(),
                },
                secs(),
                rounds()
            );
        }
        // The 1-thread groups, then (`Some(rate)`) the `_mt` groups, whose
        // servers have their threads on every core and whose client shares
        // one of them.
        for (group, title, work, mt_rate) in [
            (
                "net_echo",
                "net_echo: 64-byte echo, 100 connections",
                Workload::Echo,
                None,
            ),
            (
                "net_http",
                "net_http: GET /, 64 connections, pipelining depth 16",
                Workload::Http { depth: 16 },
                None,
            ),
            (
                "net_http",
                "net_http: GET /, 64 connections, pipelining depth 1",
                Workload::Http { depth: 1 },
                None,
            ),
            (
                "net_echo_mt",
                "net_echo_mt: 64-byte echo, 100 connections, 2 server threads",
                Workload::Echo,
                Some(MT_RATE_ECHO),
            ),
            (
                "net_http_mt",
                "net_http_mt: GET /, 64 connections, pipelining depth 16, 2 server threads",
                Workload::Http { depth: 16 },
                Some(MT_RATE_HTTP16),
            ),
            (
                "net_http_mt",
                "net_http_mt: GET /, 64 connections, pipelining depth 1, 2 server threads",
                Workload::Http { depth: 1 },
                Some(MT_RATE_HTTP1),
            ),
        ] {
            if mt_rate.is_some() != mt_child {
                continue;
            }
            let servers: Vec<(&'static str, Server)> = IDS
                .iter()
                .filter(|(g, id, _)| *g == group && format!("{g}/{id}").contains(filter))
                .map(|(_, id, start)| (*id, start()))
                .collect();
            if servers.is_empty() {
                continue;
            }
            match mt_rate {
                Some(rate) => run_mt_group(title, work, rate, &servers),
                None => run_group(title, work, &servers),
            }
        }
        let any_mt = IDS
            .iter()
            .any(|(g, id, _)| g.ends_with("_mt") && format!("{g}/{id}").contains(filter));
        if !mt_child && any_mt {
            // may's scheduler is global to a process, with one number of
            // workers: the `_mt` groups (may with two) run in a process of
            // their own, this program again.
            let status = std::process::Command::new(std::env::current_exe().expect("this program"))
                .args((!filter.is_empty()).then_some(filter))
                .env(MT_CHILD, "1")
                .status()
                .expect("run the _mt groups");
            assert!(status.success(), "the _mt groups failed: {status}");
        }
    }

    /// The client's workload for a group (`_mt` groups as their 1-thread
    /// group).
    fn workload(group: &str) -> Workload {
        match group.strip_suffix("_mt").unwrap_or(group) {
            "net_echo" => Workload::Echo,
            "net_http" => Workload::Http { depth: 16 },
            "net_http1" => Workload::Http { depth: 1 },
            other => panic!(
                "unknown group {other}: net_echo, net_http or net_http1 (depth 1), each with an optional _mt"
            ),
        }
    }

    /// Serves one id (`GROUP/ID`) until killed.
    fn serve_only(name: &str) {
        let Some((_, _, start)) = IDS.iter().find(|(g, id, _)| format!("{g}/{id}") == name) else {
            panic!("unknown id {name}");
        };
        let server = start();
        println!("listening on {}", server.addr);
        println!(
            "server threads {:?} of process {}",
            server.tids,
            std::process::id()
        );
        loop {
            thread::park();
        }
    }

    /// Drives a server elsewhere at full speed for `NET_BENCH_SECS` (on
    /// the client core), and prints what it completed.
    fn client_only(group: &str, addr: &str) {
        let addr: SocketAddr = addr.parse().expect("HOST:PORT");
        let server = Server {
            addr,
            tids: Vec::new(),
        };
        let out = drive_pinned(&server, workload(group), Pace::Saturate, secs(), false);
        println!(
            "{} requests in all, {} in the {:.2?} measured ({:.0} requests/s), {} errors",
            out.total,
            out.requests,
            out.elapsed,
            out.rate(),
            out.errors
        );
    }
}
