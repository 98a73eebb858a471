//! Stacks: the minimum size is safe for panics and for unwinding a
//! suspended coroutine, the per-thread pool reuses stacks, a stack overflow
//! is reported with the coroutine's name and size, and running out of
//! memory mappings is a clear error.
//!
//! The overflow and mapping-limit tests run in a child process: this test
//! binary re-executes itself for one test (`--exact NAME`), with an
//! environment variable that tells the test to do the fatal thing. They are
//! skipped under AddressSanitizer (`ASAN_OPTIONS` set), which installs its
//! own SIGSEGV handling and shadow mappings.

use std::panic::AssertUnwindSafe;
use std::process::{Command, Output};

use cogen::stack::{self, MIN_STACK_SIZE};
use cogen::{Builder, Coroutine, CoroutineResult, Yielder};

mod support;
use support::DropCounter;

/// A body that suspends `depth` frames down, each frame holding a token and
/// some stack, then panics on request.
fn nested(co: &Yielder<bool, ()>, drops: &DropCounter, depth: u32) {
    let _token = drops.token();
    let buf = std::hint::black_box([depth as u8; 256]);
    if depth == 0 {
        if co.suspend(()) {
            panic!("panic at depth 0 with {} bytes nearby", buf.len());
        }
    } else {
        nested(co, drops, depth - 1);
    }
}

fn small(size: usize, drops: &DropCounter) -> Coroutine<bool, (), ()> {
    let drops = drops.clone();
    Builder::new()
        .name("small")
        .stack_size(size)
        .build(move |co, _| nested(co, &drops, 8))
}

/// MIN_STACK_SIZE itself and a tiny request, which is rounded up to it.
const SMALL_SIZES: [usize; 3] = [MIN_STACK_SIZE, 4096, 1];

#[test]
fn a_minimum_size_coroutine_can_be_dropped_while_suspended() {
    for size in SMALL_SIZES {
        let drops = DropCounter::new();
        let mut co = small(size, &drops);
        assert_eq!(co.resume(false).unwrap(), CoroutineResult::Yield(()));
        drop(co);
        assert_eq!(drops.count(), 9, "size {size}");
    }
}

#[test]
fn a_minimum_size_coroutine_can_be_closed_while_suspended() {
    for size in SMALL_SIZES {
        let drops = DropCounter::new();
        let mut co = small(size, &drops);
        co.resume(false).unwrap();
        assert!(co.close().is_ok());
        assert_eq!(drops.count(), 9, "size {size}");
        assert!(co.is_dead());
    }
}

#[test]
fn a_minimum_size_coroutine_can_panic() {
    for size in SMALL_SIZES {
        let drops = DropCounter::new();
        let mut co = small(size, &drops);
        co.resume(false).unwrap();
        let err = co.resume(true).unwrap_err();
        assert!(
            err.panic()
                .unwrap()
                .message()
                .starts_with("panic at depth 0")
        );
        assert_eq!(drops.count(), 9, "size {size}");
        assert!(co.close().is_err()); // reports the death once
    }
}

#[test]
fn a_minimum_size_coroutine_can_be_dropped_from_a_panicking_owner() {
    let drops = DropCounter::new();
    let mut co = small(4096, &drops);
    co.resume(false).unwrap();
    let r = std::panic::catch_unwind(AssertUnwindSafe(move || {
        let _co = co;
        panic!("owner");
    }));
    assert!(r.is_err());
    assert_eq!(drops.count(), 9);
}

/// The address of a local in the body: equal for two coroutines that ran
/// on the same stack.
fn stack_address(size: usize) -> usize {
    let mut co = Builder::new()
        .stack_size(size)
        .build(|co: &Yielder<(), usize>, ()| {
            let local = 0_u8;
            co.suspend(std::hint::black_box(&local) as *const u8 as usize);
        });
    co.resume(()).unwrap().as_yield().unwrap()
}

#[test]
fn the_pool_reuses_stacks() {
    // A thread of its own: the pool is per thread.
    std::thread::spawn(|| {
        stack::set_pool_capacity(stack::DEFAULT_POOL_CAPACITY);
        assert_eq!(stack::pooled_stacks(), 0);

        // Live coroutines hold their stacks; dropped ones give them back.
        let live: Vec<Coroutine<(), (), ()>> = (0..5)
            .map(|_| Coroutine::new(|co, ()| co.suspend(())))
            .collect();
        assert_eq!(stack::pooled_stacks(), 0);
        drop(live);
        assert_eq!(stack::pooled_stacks(), 5);

        // Creating takes from the pool, whatever state the last owner left.
        let mut a: Coroutine<(), (), ()> = Coroutine::new(|_, ()| panic!("x"));
        let mut b: Coroutine<(), (), ()> = Coroutine::new(|co, ()| co.suspend(()));
        assert_eq!(stack::pooled_stacks(), 3);
        let _ = a.resume(());
        b.resume(()).unwrap();
        b.close().unwrap();
        drop((a, b));
        assert_eq!(stack::pooled_stacks(), 5);

        // The same stack, hence the same address for the same local.
        let first = stack_address(stack::DEFAULT_STACK_SIZE);
        let second = stack_address(stack::DEFAULT_STACK_SIZE);
        assert_eq!(first, second);

        // Sizes are pooled apart: a 64 KiB coroutine maps its own stack.
        let other = stack_address(64 * 1024);
        assert_ne!(other, first);
        assert_eq!(stack::pooled_stacks(), 6);

        // Capacity 0 unmaps every pooled stack and stops pooling.
        stack::set_pool_capacity(0);
        assert_eq!(stack::pooled_stacks(), 0);
        stack_address(stack::DEFAULT_STACK_SIZE);
        assert_eq!(stack::pooled_stacks(), 0);

        // A capacity of 2 keeps 2 of each size.
        stack::set_pool_capacity(2);
        let live: Vec<Coroutine<(), (), ()>> = (0..4).map(|_| Coroutine::new(|_, ()| ())).collect();
        drop(live);
        assert_eq!(stack::pooled_stacks(), 2);
    })
    .join()
    .unwrap();
}

#[test]
fn an_unmappable_stack_size_is_an_error() {
    let err = Builder::new()
        .stack_size(1 << 60)
        .try_build(|_: &Yielder<(), ()>, ()| ())
        .unwrap_err();
    assert_eq!(err.stack_size(), 1 << 60);
    assert!(err.to_string().starts_with("cannot map a "), "{err}");
    assert!(err.io_error().raw_os_error().is_some());
    let err: Box<dyn std::error::Error> = Box::new(err);
    assert!(err.source().is_some());
}

/// Sizes so large that rounding them up to a page overflows.
#[test]
fn a_stack_size_that_overflows_when_rounded_is_an_error() {
    for size in [usize::MAX, usize::MAX - 10] {
        let result = std::panic::catch_unwind(|| {
            Builder::new()
                .stack_size(size)
                .try_build(|_: &Yielder<(), ()>, ()| ())
                .map(drop)
        });
        match result {
            Ok(Err(_stack_error)) => {}
            Ok(Ok(())) => panic!("a coroutine was created with stack_size({size})"),
            Err(_) => panic!("try_build panicked for stack_size({size})"),
        }
    }
}

// ------------------------------------------------------- child processes

/// The variable that tells a re-executed test binary which fatal case to run.
const CHILD_ENV: &str = "COGEN_STACK_TEST_CHILD";

/// True when running under AddressSanitizer, where these child tests are skipped.
fn under_asan() -> bool {
    std::env::var_os("ASAN_OPTIONS").is_some()
}

/// Runs the test `name` of this binary in a child process with
/// `CHILD_ENV=name`, and returns its output.
fn run_child(name: &str) -> Output {
    let exe = std::env::current_exe().expect("path of the test binary");
    Command::new(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, name)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run the test binary again")
}

fn is_child(name: &str) -> bool {
    std::env::var(CHILD_ENV).as_deref() == Ok(name)
}

#[cfg(unix)]
fn signal_of(output: &Output) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    output.status.signal()
}

/// Recurses forever, with a frame the optimiser cannot remove.
#[allow(unconditional_recursion)]
fn recurse_forever(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 32]);
    recurse_forever(depth + 1) + frame[0]
}

#[test]
fn a_coroutine_stack_overflow_names_the_coroutine() {
    const NAME: &str = "a_coroutine_stack_overflow_names_the_coroutine";
    if is_child(NAME) {
        let mut co = Builder::new()
            .name("runaway-recursion")
            .stack_size(64 * 1024)
            .build(|_: &Yielder<(), ()>, ()| recurse_forever(0));
        let _ = co.resume(());
        unreachable!("the overflow aborts the process");
    }
    if under_asan() {
        eprintln!("skipped under AddressSanitizer");
        return;
    }
    let output = run_child(NAME);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the child must fail: {stderr}");
    assert_eq!(signal_of(&output), Some(libc::SIGABRT), "stderr: {stderr}");
    for needle in [
        "coroutine 'runaway-recursion' has overflowed its stack",
        "stack size 64 KiB",
        "cogen::Builder::new().stack_size(131072)",
        "coroutine stack overflow, aborting",
    ] {
        assert!(
            stderr.contains(needle),
            "{needle:?} not in stderr:\n{stderr}"
        );
    }
}

#[test]
fn an_unnamed_nested_coroutine_overflow_is_reported_as_its_own() {
    const NAME: &str = "an_unnamed_nested_coroutine_overflow_is_reported_as_its_own";
    if is_child(NAME) {
        let mut outer = Builder::new()
            .name("outer")
            .build(|_: &Yielder<(), ()>, ()| {
                let mut inner = Builder::new()
                    .stack_size(MIN_STACK_SIZE)
                    .build(|_: &Yielder<(), ()>, ()| recurse_forever(0));
                let _ = inner.resume(());
            });
        let _ = outer.resume(());
        unreachable!("the overflow aborts the process");
    }
    if under_asan() {
        return;
    }
    let output = run_child(NAME);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(signal_of(&output), Some(libc::SIGABRT), "stderr: {stderr}");
    assert!(
        stderr.contains("coroutine '<unnamed>' has overflowed its stack (stack size 32 KiB)"),
        "stderr:\n{stderr}"
    );
    assert!(!stderr.contains("'outer'"), "stderr:\n{stderr}");
}

#[test]
fn a_thread_stack_overflow_still_reaches_the_standard_handler() {
    const NAME: &str = "a_thread_stack_overflow_still_reaches_the_standard_handler";
    if is_child(NAME) {
        // Install cogen's handler first, by creating a coroutine.
        let mut co: Coroutine<(), (), ()> = Coroutine::new(|_, ()| ());
        co.resume(()).unwrap();
        std::thread::Builder::new()
            .name("plain-thread".into())
            .stack_size(256 * 1024)
            .spawn(|| recurse_forever(0))
            .unwrap()
            .join()
            .unwrap();
        unreachable!("the overflow aborts the process");
    }
    if under_asan() {
        return;
    }
    let output = run_child(NAME);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("thread 'plain-thread'") && stderr.contains("has overflowed its stack"),
        "std's message expected, stderr:\n{stderr}"
    );
    assert!(!stderr.contains("coroutine"), "stderr:\n{stderr}");
}

#[test]
fn an_ordinary_segfault_is_not_blamed_on_a_coroutine() {
    const NAME: &str = "an_ordinary_segfault_is_not_blamed_on_a_coroutine";
    if is_child(NAME) {
        let mut co: Coroutine<usize, (), ()> = Coroutine::new(|_, addr| {
            // SAFETY: none; this child process is meant to crash here.
            unsafe { std::ptr::read_volatile(addr as *const u8) };
        });
        let _ = co.resume(std::hint::black_box(8));
        unreachable!("the fault kills the process");
    }
    if under_asan() {
        return;
    }
    let output = run_child(NAME);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(signal_of(&output), Some(libc::SIGSEGV), "stderr:\n{stderr}");
    assert!(!stderr.contains("overflowed"), "stderr:\n{stderr}");
}

#[test]
fn running_out_of_mappings_is_a_clear_error() {
    const NAME: &str = "running_out_of_mappings_is_a_clear_error";
    if is_child(NAME) {
        // Keep every coroutine alive (one suspended, one never started) until
        // creation fails. The smallest stacks keep the address space small.
        let mut live: Vec<Coroutine<(), (), ()>> = Vec::with_capacity(100_000);
        let error = loop {
            match Builder::new()
                .stack_size(MIN_STACK_SIZE)
                .try_build(|co: &Yielder<(), ()>, ()| co.suspend(()))
            {
                Ok(mut co) => {
                    if live.len().is_multiple_of(2) {
                        co.resume(()).unwrap();
                    }
                    live.push(co);
                }
                Err(e) => break e,
            }
            assert!(live.len() < 100_000, "no mapping limit was hit");
        };
        let message = error.to_string();
        println!("created {} coroutines", live.len());
        println!("error: {message}");
        println!("error size: {}", error.stack_size());
        // The plain constructor panics with the same message.
        let panic = std::panic::catch_unwind(|| {
            Builder::new()
                .stack_size(MIN_STACK_SIZE)
                .build(|_: &Yielder<(), ()>, ()| ())
        })
        .unwrap_err();
        let panic_message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        println!("panic: {panic_message}");
        // Freeing some makes creation work again.
        live.truncate(live.len() - 10);
        let mut again: Coroutine<(), (), u8> = Builder::new()
            .stack_size(MIN_STACK_SIZE)
            .try_build(|_, ()| 7)
            .expect("creation works again after dropping some");
        assert_eq!(again.resume(()).unwrap(), CoroutineResult::Return(7));
        println!("recovered");
        return;
    }
    if under_asan() {
        return;
    }
    let output = run_child(NAME);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let created: usize = stdout
        .lines()
        .find_map(|l| l.split_once("created ").map(|(_, rest)| rest))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("the child reports how many it created");
    // Two mappings per guarded stack: about half of vm.max_map_count.
    if let Some(max) = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
    {
        assert!(
            created <= max / 2,
            "created {created} with max_map_count {max}"
        );
        assert!(
            created > max / 2 - 1000,
            "created {created} with max_map_count {max}"
        );
    }
    let error_line = stdout.lines().find(|l| l.starts_with("error: ")).unwrap();
    let panic_line = stdout.lines().find(|l| l.starts_with("panic: ")).unwrap();
    for line in [error_line, panic_line] {
        assert!(line.contains("vm.max_map_count"), "{line}");
        assert!(
            line.contains("cannot map a 32 KiB coroutine stack"),
            "{line}"
        );
        assert!(line.contains("sysctl -w vm.max_map_count="), "{line}");
    }
    assert!(
        stdout.contains(&format!("error size: {MIN_STACK_SIZE}")),
        "{stdout}"
    );
    assert!(stdout.contains("recovered"), "{stdout}");
}
