//! The workloads of `benches/event_loop.rs`: the same task programs on
//! cogen's event loop, four tokio `current_thread` variants, smol's
//! `LocalExecutor` and `may` with one worker, one function per group.
//!
//! Each runtime is built in the id's set-up (outside the measurement); an
//! iteration spawns the tasks, runs them to completion and joins them.

use std::future::Future;
use std::hint::black_box;
use std::sync::Once;

use async_executor::LocalExecutor;
use cogen::event_loop::{self as el, EventLoop};
use tokio::task::{JoinHandle, LocalSet};

use crate::harness::Harness;

/// Yields per task in `yield_round_robin` (2 tasks).
pub const YIELDS: u64 = 10_000;
/// Round trips per iteration of `channel_ping_pong`.
pub const ROUND_TRIPS: u64 = 10_000;
/// Tasks per iteration of `spawn_join`.
pub const SPAWNS: u64 = 1_000;
/// Tasks per iteration of `many_tasks`.
pub const MANY: u64 = 10_000;
/// Yields per task in `many_tasks`.
pub const MANY_YIELDS: u64 = 10;

// ---------------------------------------------------------------- tokio

/// A tokio `current_thread` runtime, with or without its drivers, whose
/// tasks are spawned with `tokio::spawn` or, `LOCAL`, with `spawn_local`
/// on a `LocalSet`.
struct Tokio<const LOCAL: bool> {
    rt: tokio::runtime::Runtime,
    local: LocalSet,
}

impl<const LOCAL: bool> Tokio<LOCAL> {
    /// `drivers`: `enable_all()` (I/O and time drivers, as
    /// `#[tokio::main(flavor = "current_thread")]` builds); without, the
    /// runtime has no I/O driver and parks on a condition variable.
    fn new(drivers: bool) -> Self {
        let mut b = tokio::runtime::Builder::new_current_thread();
        if drivers {
            b.enable_all();
        }
        Tokio {
            rt: b.build().expect("tokio runtime"),
            local: LocalSet::new(),
        }
    }

    fn block_on<F: Future>(&self, f: F) -> F::Output {
        if LOCAL {
            self.rt.block_on(self.local.run_until(f))
        } else {
            self.rt.block_on(f)
        }
    }

    fn spawn<F>(f: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        if LOCAL {
            tokio::task::spawn_local(f)
        } else {
            tokio::spawn(f)
        }
    }
}

/// A group's program for tokio, run on each variant.
trait TokioWork: Copy + 'static {
    fn run<const LOCAL: bool>(self, t: &Tokio<LOCAL>) -> u64;
}

/// Ids `tokio` (`enable_all`, `tokio::spawn`), `tokio_noio` (no drivers,
/// `tokio::spawn`), `tokio_local` (`enable_all`, `LocalSet` +
/// `spawn_local`) and `tokio_local_noio` (no drivers, `LocalSet` +
/// `spawn_local`).
fn tokio_ids<H: Harness>(h: &mut H, work: impl TokioWork) {
    h.iter("tokio", || {
        let t = Tokio::<false>::new(true);
        move || work.run(&t)
    });
    h.iter("tokio_noio", || {
        let t = Tokio::<false>::new(false);
        move || work.run(&t)
    });
    h.iter("tokio_local", || {
        let t = Tokio::<true>::new(true);
        move || work.run(&t)
    });
    h.iter("tokio_local_noio", || {
        let t = Tokio::<true>::new(false);
        move || work.run(&t)
    });
}

// ---------------------------------------------------------------- may

/// Configures `may` once, before its scheduler starts: one worker thread,
/// not pinned to a core, and a coroutine pool as large as `many_tasks`
/// needs (as cogen's stack pool there).
fn may_init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        may::config()
            .set_workers(1)
            .set_pool_capacity(MANY as usize)
            .set_worker_pin(false);
    });
}

/// Spawns a `may` coroutine.
fn may_go<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> may::coroutine::JoinHandle<T> {
    // SAFETY: `may::coroutine::spawn` is unsafe because a coroutine may move
    // between worker threads, which breaks thread-local storage held across a
    // switch; here there is one worker, and the bodies use no thread-locals.
    unsafe { may::coroutine::spawn(f) }
}

/// Id `may`: the program runs in one coroutine on `may`'s single worker,
/// joined from the bench's thread.
fn may_id<H: Harness>(h: &mut H, work: fn() -> u64) {
    h.iter("may", || {
        may_init();
        move || may_go(work).join().expect("may task")
    });
}

// ---------------------------------------------------------------- yielders

/// `tasks` tasks that each yield `yields` times, on each runtime: the
/// workload of both `yield_round_robin` and `many_tasks`.
fn yielders<H: Harness, const TASKS: u64, const YIELDS_EACH: u64>(h: &mut H) {
    h.iter("cogen", || {
        let ev = EventLoop::new();
        move || {
            for _ in 0..TASKS {
                ev.spawn(move || {
                    for _ in 0..YIELDS_EACH {
                        el::yield_now();
                    }
                });
            }
            ev.run().unwrap();
        }
    });

    #[derive(Clone, Copy)]
    struct Yielders<const TASKS: u64, const YIELDS_EACH: u64>;
    impl<const TASKS: u64, const YIELDS_EACH: u64> TokioWork for Yielders<TASKS, YIELDS_EACH> {
        fn run<const LOCAL: bool>(self, t: &Tokio<LOCAL>) -> u64 {
            t.block_on(async {
                let hs: Vec<_> = (0..TASKS)
                    .map(|_| {
                        Tokio::<LOCAL>::spawn(async move {
                            for _ in 0..YIELDS_EACH {
                                tokio::task::yield_now().await;
                            }
                        })
                    })
                    .collect();
                for h in hs {
                    h.await.unwrap();
                }
                TASKS
            })
        }
    }
    tokio_ids(h, Yielders::<TASKS, YIELDS_EACH>);

    h.iter("smol", || {
        let ex = LocalExecutor::new();
        move || {
            async_io::block_on(ex.run(async {
                let hs: Vec<_> = (0..TASKS)
                    .map(|_| {
                        ex.spawn(async move {
                            for _ in 0..YIELDS_EACH {
                                futures_lite::future::yield_now().await;
                            }
                        })
                    })
                    .collect();
                for h in hs {
                    h.await;
                }
            }))
        }
    });

    may_id(h, || {
        let hs: Vec<_> = (0..TASKS)
            .map(|_| {
                may_go(|| {
                    for _ in 0..YIELDS_EACH {
                        may::coroutine::yield_now();
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().expect("may task");
        }
        TASKS
    });
}

/// `yield_round_robin`: 2 tasks yield `YIELDS` times each.
pub fn yield_round_robin<H: Harness>(h: &mut H) {
    yielders::<H, 2, YIELDS>(h);
}

/// `many_tasks`: `MANY` tasks each yield `MANY_YIELDS` times.
pub fn many_tasks<H: Harness>(h: &mut H) {
    // The thread's stack pool keeps 1,024 stacks per size by default: with
    // 10,000 live tasks, 9,000 stacks would be mapped and unmapped on every
    // iteration (~9 µs each). A program that runs bursts of N tasks raises
    // the pool to N, as done here; the cost is memory kept for reuse.
    cogen::stack::set_pool_capacity(MANY as usize);
    yielders::<H, MANY, MANY_YIELDS>(h);
}

// ---------------------------------------------------------------- nested_yield

/// Runs `f` inside `depth` coroutines nested in each other (0: directly).
fn nested(depth: usize, f: &mut dyn FnMut()) {
    if depth == 0 {
        return f();
    }
    let co = cogen::ScopedCoroutine::<(), (), ()>::new(|_, ()| nested(depth - 1, f));
    co.scope(|co| {
        let _ = co.resume(());
    });
}

/// `nested_yield`: 2 tasks yield `YIELDS` times each from inside `depth`
/// nested coroutines (ids `depth_0` to `depth_3`; cogen only: no peer can
/// wait from a nested coroutine). A wait from any depth suspends the whole
/// chain in one switch, so the ids should cost the same per yield.
pub fn nested_yield<H: Harness>(h: &mut H) {
    for depth in 0..4 {
        h.iter(&format!("depth_{depth}"), || {
            let ev = EventLoop::new();
            move || {
                for _ in 0..2 {
                    ev.spawn(move || {
                        nested(depth, &mut || {
                            for _ in 0..YIELDS {
                                el::yield_now();
                            }
                        })
                    });
                }
                ev.run().unwrap();
            }
        });
    }
}

// ---------------------------------------------------------------- channel_ping_pong

/// `channel_ping_pong`: two tasks bounce a `u64` `ROUND_TRIPS` times over
/// two channels (bounded, capacity 1, where the runtime has bounded ones).
pub fn channel_ping_pong<H: Harness>(h: &mut H) {
    h.iter("cogen", || {
        let ev = EventLoop::new();
        move || {
            let (to_b, from_a) = el::channel::<u64>(1);
            let (to_a, from_b) = el::channel::<u64>(1);
            ev.spawn(move || {
                for i in 0..ROUND_TRIPS {
                    to_b.send(i).unwrap();
                    black_box(from_b.recv().unwrap());
                }
            });
            ev.spawn(move || {
                while let Ok(v) = from_a.recv() {
                    to_a.send(v + 1).unwrap();
                }
            });
            ev.run().unwrap();
        }
    });

    #[derive(Clone, Copy)]
    struct PingPong;
    impl TokioWork for PingPong {
        fn run<const LOCAL: bool>(self, t: &Tokio<LOCAL>) -> u64 {
            t.block_on(async {
                let (to_b, mut from_a) = tokio::sync::mpsc::channel::<u64>(1);
                let (to_a, mut from_b) = tokio::sync::mpsc::channel::<u64>(1);
                let a = Tokio::<LOCAL>::spawn(async move {
                    for i in 0..ROUND_TRIPS {
                        to_b.send(i).await.unwrap();
                        black_box(from_b.recv().await.unwrap());
                    }
                });
                let b = Tokio::<LOCAL>::spawn(async move {
                    while let Some(v) = from_a.recv().await {
                        to_a.send(v + 1).await.unwrap();
                    }
                });
                a.await.unwrap();
                b.await.unwrap();
                ROUND_TRIPS
            })
        }
    }
    tokio_ids(h, PingPong);

    h.iter("smol", || {
        let ex = LocalExecutor::new();
        move || {
            async_io::block_on(ex.run(async {
                let (to_b, from_a) = async_channel::bounded::<u64>(1);
                let (to_a, from_b) = async_channel::bounded::<u64>(1);
                let a = ex.spawn(async move {
                    for i in 0..ROUND_TRIPS {
                        to_b.send(i).await.unwrap();
                        black_box(from_b.recv().await.unwrap());
                    }
                });
                let b = ex.spawn(async move {
                    while let Ok(v) = from_a.recv().await {
                        to_a.send(v + 1).await.unwrap();
                    }
                });
                a.await;
                b.await;
            }))
        }
    });

    // `may` has no bounded channel; with one value in flight each way, a
    // capacity of 1 would never be the limit anyway.
    may_id(h, || {
        let (to_b, from_a) = may::sync::mpsc::channel::<u64>();
        let (to_a, from_b) = may::sync::mpsc::channel::<u64>();
        let a = may_go(move || {
            for i in 0..ROUND_TRIPS {
                to_b.send(i).unwrap();
                black_box(from_b.recv().unwrap());
            }
        });
        let b = may_go(move || {
            while let Ok(v) = from_a.recv() {
                to_a.send(v + 1).unwrap();
            }
        });
        a.join().expect("may task");
        b.join().expect("may task");
        ROUND_TRIPS
    });
}

// ---------------------------------------------------------------- spawn_join

/// `spawn_join`: spawn `SPAWNS` trivial tasks and join them all.
pub fn spawn_join<H: Harness>(h: &mut H) {
    h.iter("cogen", || {
        let ev = EventLoop::new();
        move || {
            ev.block_on(|| {
                let hs: Vec<_> = (0..SPAWNS)
                    .map(|i| el::spawn(move || black_box(i)))
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
            })
            .unwrap()
        }
    });

    #[derive(Clone, Copy)]
    struct SpawnJoin;
    impl TokioWork for SpawnJoin {
        fn run<const LOCAL: bool>(self, t: &Tokio<LOCAL>) -> u64 {
            t.block_on(async {
                let hs: Vec<_> = (0..SPAWNS)
                    .map(|i| Tokio::<LOCAL>::spawn(async move { black_box(i) }))
                    .collect();
                let mut sum = 0;
                for h in hs {
                    sum += h.await.unwrap();
                }
                sum
            })
        }
    }
    tokio_ids(h, SpawnJoin);

    h.iter("smol", || {
        let ex = LocalExecutor::new();
        move || {
            async_io::block_on(ex.run(async {
                let hs: Vec<_> = (0..SPAWNS)
                    .map(|i| ex.spawn(async move { black_box(i) }))
                    .collect();
                let mut sum = 0;
                for h in hs {
                    sum += h.await;
                }
                sum
            }))
        }
    });

    may_id(h, || {
        let hs: Vec<_> = (0..SPAWNS).map(|i| may_go(move || black_box(i))).collect();
        hs.into_iter()
            .map(|h| h.join().expect("may task"))
            .sum::<u64>()
    });
}
