//! Soak test of the event loop: churns many short stackful tasks, cancelled
//! long sleepers and channels, on a loop replaced every few rounds, and
//! checks that the process's memory mappings (`/proc/self/maps`) and
//! resident memory (`/proc/self/statm`) stay flat: nothing a finished task,
//! a cancelled task, a channel or a dropped loop held is kept.
//!
//! The stack pool keeps up to [`DEFAULT_POOL_CAPACITY`] finished stacks per
//! thread (two mappings each): the warm-up runs the same rounds first, so
//! the pool is as full before the measurement as it will ever be.
//!
//! ```text
//! cargo test --all-features --test soak                         # short: ~400,000 tasks
//! COGEN_SOAK_TASKS=5000000 cargo test --release --all-features --test soak -- --ignored --nocapture
//! ```
//!
//! Linux only (it reads `/proc`); elsewhere the tests do nothing. Under
//! AddressSanitizer (`ASAN_OPTIONS` set) the short form churns 50,000 tasks
//! and checks the mappings only: ASan's quarantine keeps freed memory
//! resident on purpose.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use cogen::event_loop::{EventLoop, channel, sleep, spawn, yield_now};
use cogen::stack::{DEFAULT_POOL_CAPACITY, pooled_stacks};

mod support;
use support::DropCounter;

/// The tests of this file measure the whole process: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// The number of memory mappings of this process.
fn mappings() -> Option<usize> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    Some(maps.lines().count())
}

/// Resident memory of this process, in KiB.
fn rss_kib() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * usize::try_from(page).ok()? / 1024)
}

/// Producers per round (each sends 3 messages, yielding after each).
const PRODUCERS: usize = 200;
/// Sleepers per round (each sleeps an hour, and is cancelled).
const SLEEPERS: usize = 50;
/// Tasks per round: the main task, a consumer, producers and sleepers.
const TASKS_PER_ROUND: usize = PRODUCERS + SLEEPERS + 2;
/// Rounds on one loop before it is dropped and a new one made.
const ROUNDS_PER_LOOP: usize = 20;

/// One round on `ev`: producers and a consumer over a bounded channel,
/// sleepers cancelled once the exchange is done. Every task holds a drop
/// token.
fn round(ev: &EventLoop, drops: &DropCounter) {
    let d = drops.clone();
    let total = ev
        .block_on(move || {
            let sleepers: Vec<_> = (0..SLEEPERS)
                .map(|_| {
                    let token = d.token();
                    spawn(move || {
                        let _token = token;
                        sleep(Duration::from_secs(3600));
                    })
                })
                .collect();
            let (tx, rx) = channel::<u64>(8);
            let token = d.token();
            let consumer = spawn(move || {
                let _token = token;
                rx.iter().sum::<u64>()
            });
            let producers: Vec<_> = (0..PRODUCERS)
                .map(|_| {
                    let tx = tx.clone();
                    let token = d.token();
                    spawn(move || {
                        let _token = token;
                        for k in 1..=3 {
                            tx.send(k).unwrap();
                            yield_now();
                        }
                    })
                })
                .collect();
            drop(tx);
            for p in producers {
                p.join().unwrap();
            }
            let total = consumer.join().unwrap();
            for s in &sleepers {
                s.cancel();
            }
            for s in sleepers {
                assert!(s.join().unwrap_err().is_cancelled());
            }
            total
        })
        .unwrap();
    assert_eq!(total, 6 * PRODUCERS as u64);
    assert_eq!(drops.live(), 0, "a task's values were not dropped");
}

/// Figures of one soak run.
#[derive(Debug)]
struct Soak {
    tasks: usize,
    maps_start: usize,
    maps_end: usize,
    maps_max: usize,
    rss_start_kib: usize,
    rss_end_kib: usize,
    rss_max_kib: usize,
    elapsed: Duration,
}

/// Runs rounds (warm-up first) until `tasks` tasks have run, sampling the
/// mappings and resident memory after every loop.
fn soak(tasks: usize) -> Option<Soak> {
    let drops = DropCounter::new();
    // Warm-up: fills the stack pool, the allocator's caches and the
    // channel and queue capacities to their steady state.
    for _ in 0..2 {
        let ev = EventLoop::new();
        for _ in 0..ROUNDS_PER_LOOP {
            round(&ev, &drops);
        }
    }
    let maps_start = mappings()?;
    let rss_start_kib = rss_kib()?;
    let (mut maps_max, mut rss_max_kib) = (maps_start, rss_start_kib);
    let started = Instant::now();
    let mut done = 0;
    while done < tasks {
        let ev = EventLoop::new();
        for _ in 0..ROUNDS_PER_LOOP {
            round(&ev, &drops);
            done += TASKS_PER_ROUND;
        }
        drop(ev);
        maps_max = maps_max.max(mappings()?);
        rss_max_kib = rss_max_kib.max(rss_kib()?);
        assert!(pooled_stacks() <= DEFAULT_POOL_CAPACITY);
    }
    let soak = Soak {
        tasks: done,
        maps_start,
        maps_end: mappings()?,
        maps_max,
        rss_start_kib,
        rss_end_kib: rss_kib()?,
        rss_max_kib,
        elapsed: started.elapsed(),
    };
    eprintln!(
        "soak: {} tasks in {:.1?}; mappings {} -> {} (max {}); resident {} -> {} KiB (max {})",
        soak.tasks,
        soak.elapsed,
        soak.maps_start,
        soak.maps_end,
        soak.maps_max,
        soak.rss_start_kib,
        soak.rss_end_kib,
        soak.rss_max_kib
    );
    Some(soak)
}

/// True under AddressSanitizer (the CI's ASan step sets `ASAN_OPTIONS`):
/// its quarantine holds freed memory back, so resident memory grows by
/// design there, and everything runs several times slower.
fn under_asan() -> bool {
    std::env::var_os("ASAN_OPTIONS").is_some()
}

/// Checks that a soak run stayed flat.
fn assert_flat(s: &Soak) {
    // A few mappings may come and go (the allocator's arenas, the test
    // harness's threads); stacks are two each, so a leaked stack per loop
    // would show as hundreds.
    assert!(
        s.maps_end <= s.maps_start + 16 && s.maps_max <= s.maps_start + 64,
        "memory mappings grew: {s:?}"
    );
    if under_asan() {
        return;
    }
    assert!(
        s.rss_end_kib <= s.rss_start_kib + 16 * 1024
            && s.rss_max_kib <= s.rss_start_kib + 32 * 1024,
        "resident memory grew: {s:?}"
    );
}

#[test]
fn soak_short() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tasks = if under_asan() { 50_000 } else { 400_000 };
    if let Some(s) = soak(tasks) {
        assert_flat(&s);
    }
}

/// The long form: `COGEN_SOAK_TASKS` tasks (default two million).
#[test]
#[ignore = "long: run with --ignored (and --release)"]
fn soak_long() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tasks = std::env::var("COGEN_SOAK_TASKS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000_000);
    if let Some(s) = soak(tasks) {
        assert_flat(&s);
    }
}

/// A finished task whose handle is kept must not keep its stack: its
/// coroutine is dead, so the stack can go back to the pool (or be unmapped)
/// when it finishes, not when the handle is dropped.
#[test]
fn finished_tasks_with_live_handles_give_their_stacks_back() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let ev = EventLoop::new();
    ev.block_on(|| ()).unwrap(); // warm-up: one stack in the pool
    let Some(before) = mappings() else { return };
    let mut handles = Vec::new();
    for i in 0..2000u32 {
        // One at a time: with the fix every task reuses the same stack.
        let h = ev.spawn(move || i);
        ev.run().unwrap();
        handles.push(h);
    }
    // Cancelled ones too.
    let mut cancelled = Vec::new();
    for _ in 0..1000 {
        let h = ev.spawn(|| sleep(Duration::from_secs(3600)));
        assert!(ev.try_tick());
        h.cancel();
        cancelled.push(h);
    }
    let after = mappings().unwrap();
    assert!(
        after < before + 100,
        "3,000 finished or cancelled tasks whose handles are alive hold {} more mappings \
         (two per stack)",
        after - before
    );
    drop((handles, cancelled));
}
