//! cogen's event loop against tokio's and smol's single-threaded executors
//! and `may`'s stackful coroutines on one worker.
//!
//! Ids, in every group:
//!
//! | id | runtime | spawn | channel (`channel_ping_pong`) |
//! |---|---|---|---|
//! | `cogen` | `EventLoop`, stackful tasks | `EventLoop::spawn` / `event_loop::spawn` | `event_loop::channel(1)` |
//! | `tokio` | `current_thread` runtime, `enable_all()` (as `#[tokio::main(flavor = "current_thread")]` builds) | `tokio::spawn` | `tokio::sync::mpsc::channel(1)` |
//! | `tokio_noio` | `current_thread` runtime without `enable_io`/`enable_time`: no I/O driver | `tokio::spawn` | `tokio::sync::mpsc::channel(1)` |
//! | `tokio_local` | `current_thread` runtime, `enable_all()`, a `LocalSet` | `tokio::task::spawn_local` | `tokio::sync::mpsc::channel(1)` |
//! | `tokio_local_noio` | `current_thread` runtime without drivers, a `LocalSet` | `tokio::task::spawn_local` | `tokio::sync::mpsc::channel(1)` |
//! | `smol` | `async_executor::LocalExecutor` driven by `async_io::block_on` | `LocalExecutor::spawn` | `async_channel::bounded(1)` |
//! | `may` | `may` 0.3, one worker thread (`may::config().set_workers(1)`), not pinned; the program runs in one coroutine joined from the bench's thread | `may::coroutine::spawn` | `may::sync::mpsc::channel()` (unbounded: `may` has no bounded channel; one value is in flight each way) |
//!
//! The loop / runtime / executor is built once per sample, outside the
//! timed part; spawning the tasks is inside it, as it is part of the
//! workload.
//!
//! * `yield_round_robin`: 2 tasks yield 10,000 times each (20,000 yields).
//! * `channel_ping_pong`: two tasks bounce a `u64` 10,000 times over two
//!   channels (10,000 round trips).
//! * `spawn_join`: spawn 1,000 trivial tasks and join them all.
//! * `many_tasks`: 10,000 tasks each yield 10 times (100,000 yields).
//! * `nested_yield` (cogen only, ids `depth_0` to `depth_3`): 2 tasks yield
//!   10,000 times each from inside 0 to 3 nested coroutines (20,000
//!   yields): what a wait from a pipeline stage costs.
//! * `remote_spawn`: the bench's thread spawns 100 trivial tasks onto one
//!   loop running on another thread and blocks until it has joined them
//!   all. Its ids differ from the table: `cogen` is a one-thread
//!   `Runtime` (`Runtime::spawn`, `RemoteJoinHandle::join`); `tokio` a
//!   `current_thread` runtime with `enable_all()` driven on its own
//!   thread (`Handle::spawn`, the `JoinHandle` awaited with
//!   `futures_lite::future::block_on`); `smol` an `async_executor::Executor`
//!   run by its own thread (`Executor::spawn`, the `Task` awaited the same
//!   way). Not in the instruction counter: it measures two threads.
//!
//! The workloads are in `benches/workloads/event_loop.rs`, shared with the
//! instruction counter (`tools/src/bin/op_count.rs`).
//!
//! Run: `CARGO_TARGET_DIR=target-bench cargo bench --bench event_loop`.
//! Divide the median time by the operation count above for a per-operation figure.

use std::future::Future;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};

#[path = "workloads/criterion_harness.rs"]
mod criterion_harness;
#[path = "workloads/harness.rs"]
mod harness;
#[path = "workloads/event_loop.rs"]
mod workloads;

use criterion_harness::Group;
use harness::Harness;

fn yield_round_robin(c: &mut Criterion) {
    let mut g = c.benchmark_group("yield_round_robin");
    workloads::yield_round_robin(&mut Group(&mut g));
    g.finish();
}

fn channel_ping_pong(c: &mut Criterion) {
    let mut g = c.benchmark_group("channel_ping_pong");
    workloads::channel_ping_pong(&mut Group(&mut g));
    g.finish();
}

fn spawn_join(c: &mut Criterion) {
    let mut g = c.benchmark_group("spawn_join");
    workloads::spawn_join(&mut Group(&mut g));
    g.finish();
}

fn many_tasks(c: &mut Criterion) {
    let mut g = c.benchmark_group("many_tasks");
    workloads::many_tasks(&mut Group(&mut g));
    g.finish();
}

fn nested_yield(c: &mut Criterion) {
    let mut g = c.benchmark_group("nested_yield");
    workloads::nested_yield(&mut Group(&mut g));
    g.finish();
}

fn remote_spawn(c: &mut Criterion) {
    let mut g = c.benchmark_group("remote_spawn");
    remote_spawn_ids(&mut Group(&mut g));
    g.finish();
}

// ---------------------------------------------------------- remote_spawn

/// Tasks per iteration of `remote_spawn`.
const REMOTE_SPAWNS: u64 = 100;

/// `remote_spawn`: the calling thread spawns `REMOTE_SPAWNS` trivial tasks
/// onto one loop that runs on another thread, then blocks until it has
/// joined them all. Each runtime's loop thread is started in the set-up and
/// stopped when the sample is over. Here, not in `workloads/`: the
/// instruction counter does not run it (the work is on two threads).
fn remote_spawn_ids<H: Harness>(h: &mut H) {
    h.iter("cogen", || {
        let rt = cogen::event_loop::Runtime::builder()
            .threads(1)
            .build()
            .expect("runtime");
        move || {
            let hs: Vec<_> = (0..REMOTE_SPAWNS)
                .map(|i| rt.spawn(move || black_box(i)))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
        }
    });

    h.iter("tokio", || {
        let remote = RemoteThread::start(|stop| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            let handle = rt.handle().clone();
            let thread = std::thread::spawn(move || rt.block_on(stop));
            (handle, thread)
        });
        move || {
            let hs: Vec<_> = (0..REMOTE_SPAWNS)
                .map(|i| remote.on.spawn(async move { black_box(i) }))
                .collect();
            hs.into_iter()
                .map(|h| futures_lite::future::block_on(h).unwrap())
                .sum::<u64>()
        }
    });

    h.iter("smol", || {
        let remote = RemoteThread::start(|stop| {
            let ex = std::sync::Arc::new(async_executor::Executor::new());
            let runner = ex.clone();
            let thread = std::thread::spawn(move || async_io::block_on(runner.run(stop)));
            (ex, thread)
        });
        move || {
            let hs: Vec<_> = (0..REMOTE_SPAWNS)
                .map(|i| remote.on.spawn(async move { black_box(i) }))
                .collect();
            hs.into_iter()
                .map(futures_lite::future::block_on)
                .sum::<u64>()
        }
    });
}

/// An executor running on its own thread until dropped, and what spawns
/// onto it (`on`).
struct RemoteThread<S> {
    on: S,
    stop: Option<async_channel::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl<S> RemoteThread<S> {
    /// `start(stop)` starts the executor's thread, running until `stop`
    /// completes, and returns what spawns onto it and the thread.
    fn start(
        start: impl FnOnce(
            std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
        ) -> (S, std::thread::JoinHandle<()>),
    ) -> Self {
        let (tx, rx) = async_channel::bounded::<()>(1);
        let stop = Box::pin(async move {
            let _ = rx.recv().await;
        });
        let (on, thread) = start(stop);
        RemoteThread {
            on,
            stop: Some(tx),
            thread: Some(thread),
        }
    }
}

impl<S> Drop for RemoteThread<S> {
    fn drop(&mut self) {
        drop(self.stop.take()); // closes the channel: `stop` completes
        if let Some(t) = self.thread.take() {
            t.join().expect("executor thread");
        }
    }
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = yield_round_robin, channel_ping_pong, spawn_join, many_tasks, nested_yield,
        remote_spawn
}
criterion_main!(benches);
