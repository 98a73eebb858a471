//! Stacks: the minimum size is safe for panics and for unwinding a
//! suspended coroutine, the per-thread pool reuses stacks, a stack overflow
//! is reported with the coroutine's name and size, other faults reach the
//! program's own SIGSEGV handler or the default action as if cogen were not
//! there, running out of memory mappings or of address space is a clear
//! error that names the limit, and closing and dropping still work then.
//!
//! The fault and limit tests run in a child process: this test binary
//! re-executes itself for one test (`--exact NAME`), with an environment
//! variable that tells the test to do the fatal thing (a hung child is
//! killed after a deadline). They are skipped under AddressSanitizer
//! (`ASAN_OPTIONS` set), which installs its own SIGSEGV handling and shadow
//! mappings and reserves far more address space than `RLIMIT_AS` tests allow.

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

/// Each stack's frames begin a few cache lines below its top, by its
/// address (up to 192 bytes for the smallest stack), so a test on one
/// stack checks one offset: sixteen live ones cover every offset of the
/// smallest stack, each panicking and unwinding, and each dropped while
/// suspended.
#[test]
fn minimum_size_coroutines_at_every_offset_can_panic_and_be_dropped() {
    let drops = DropCounter::new();
    let mut panicking: Vec<_> = (0..16).map(|_| small(MIN_STACK_SIZE, &drops)).collect();
    let mut suspended: Vec<_> = (0..16).map(|_| small(MIN_STACK_SIZE, &drops)).collect();
    for co in panicking.iter_mut().chain(&mut suspended) {
        co.resume(false).unwrap();
    }
    for co in &mut panicking {
        let err = co.resume(true).unwrap_err();
        assert!(
            err.panic()
                .unwrap()
                .message()
                .starts_with("panic at depth 0")
        );
    }
    assert_eq!(drops.count(), 16 * 9);
    drop(suspended);
    assert_eq!(drops.count(), 32 * 9);
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

/// Coroutines parked on the stacks they were given, each with the address
/// of a local on its stack.
fn parked_on_stacks(n: usize) -> (Vec<Coroutine<(), usize, ()>>, Vec<usize>) {
    let mut parked: Vec<Coroutine<(), usize, ()>> = (0..n)
        .map(|_| {
            Coroutine::new(|co, ()| {
                let local = 0_u8;
                co.suspend(std::hint::black_box(&local) as *const u8 as usize);
            })
        })
        .collect();
    let at = parked
        .iter_mut()
        .map(|co| co.resume(()).unwrap().as_yield().unwrap())
        .collect();
    (parked, at)
}

/// With more stacks pooled than the length from which a take prefetches
/// for the next one (the list remembers the next stack's base), every
/// stack still comes back once, in the pool's order: the first given back
/// waits in the front slot, the others are taken last in, first out. The
/// same after lowering the capacity (which relinks the list).
#[test]
fn a_long_free_list_hands_back_every_stack_in_order() {
    std::thread::spawn(|| {
        const N: usize = 1_500;
        stack::set_pool_capacity(N);
        let (parked, first) = parked_on_stacks(N);
        drop(parked); // in order: the first one's stack goes to the front slot
        assert_eq!(stack::pooled_stacks(), N);

        let (parked, again) = parked_on_stacks(N);
        assert_eq!(stack::pooled_stacks(), 0);
        let mut want = vec![first[0]];
        want.extend(first[1..].iter().rev());
        assert_eq!(again, want, "taken in the pool's order, each once");
        drop(parked);

        // Lowering the capacity unlinks the surplus and relinks the rest.
        stack::set_pool_capacity(1_200);
        assert_eq!(stack::pooled_stacks(), 1_200);
        let (parked, kept) = parked_on_stacks(1_200);
        assert_eq!(stack::pooled_stacks(), 0);
        let mut distinct = kept.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 1_200, "no stack handed out twice");
        assert!(
            kept.iter().all(|at| first.contains(at)),
            "no stack mapped anew"
        );
        drop(parked);
        stack::set_pool_capacity(stack::DEFAULT_POOL_CAPACITY);
    })
    .join()
    .unwrap();
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

        // Lowering it keeps the stack in the pool's front slot, which the
        // next coroutine takes: here the one given back last, since the
        // create before it had emptied that slot.
        let last = stack_address(stack::DEFAULT_STACK_SIZE);
        stack::set_pool_capacity(1);
        assert_eq!(stack::pooled_stacks(), 1);
        assert_eq!(stack_address(stack::DEFAULT_STACK_SIZE), last);
        let live: Vec<Coroutine<(), (), ()>> = (0..3).map(|_| Coroutine::new(|_, ()| ())).collect();
        assert_eq!(stack::pooled_stacks(), 0);
        drop(live);
        assert_eq!(stack::pooled_stacks(), 1);
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

/// How long a child may run before it counts as hung and is killed.
const CHILD_DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs the test `name` of this binary in a child process with
/// `CHILD_ENV=name`, and returns its output. A child still running after
/// [`CHILD_DEADLINE`] is killed, and the test fails with what it printed.
fn run_child(name: &str) -> Output {
    use std::io::Read;
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let exe = std::env::current_exe().expect("path of the test binary");
    let mut child = Command::new(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, name)
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the test binary again");
    // Read both pipes as the child writes, so that a chatty child cannot
    // block on a full pipe.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stdout.read_to_end(&mut v);
        v
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stderr.read_to_end(&mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if start.elapsed() > CHILD_DEADLINE {
            child.kill().expect("kill the hung child");
            child.wait().expect("reap the hung child");
            let stderr = String::from_utf8_lossy(&err.join().unwrap()).into_owned();
            let stderr_tail = &stderr[stderr.len().saturating_sub(4000)..];
            panic!(
                "the child hung for {CHILD_DEADLINE:?} and was killed; stderr ends with:\n{stderr_tail}"
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
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
fn an_event_loop_task_overflow_names_the_task_and_its_builder() {
    const NAME: &str = "an_event_loop_task_overflow_names_the_task_and_its_builder";
    if is_child(NAME) {
        use cogen::event_loop::{EventLoop, TaskBuilder};
        let ev = EventLoop::new();
        TaskBuilder::new()
            .name("deep-task")
            .stack_size(64 * 1024)
            .spawn_on(&ev, || recurse_forever(0));
        let _ = ev.run();
        unreachable!("the overflow aborts the process");
    }
    if under_asan() {
        eprintln!("skipped under AddressSanitizer");
        return;
    }
    let output = run_child(NAME);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(signal_of(&output), Some(libc::SIGABRT), "stderr: {stderr}");
    for needle in [
        "coroutine 'deep-task' has overflowed its stack",
        "stack size 64 KiB",
        "TaskBuilder::new().stack_size(131072)",
    ] {
        assert!(
            stderr.contains(needle),
            "{needle:?} not in stderr:\n{stderr}"
        );
    }
}

#[test]
fn an_overflow_in_a_thread_local_destructor_is_reported() {
    const NAME: &str = "an_overflow_in_a_thread_local_destructor_is_reported";
    struct Late;
    impl Drop for Late {
        fn drop(&mut self) {
            // std has unmapped the thread's alternate signal stack by now.
            let mut co = Builder::new()
                .name("in-a-tls-destructor")
                .stack_size(64 * 1024)
                .build(|_: &Yielder<(), ()>, ()| recurse_forever(0));
            let _ = co.resume(());
        }
    }
    thread_local! {
        static LATE: Late = const { Late };
    }
    if is_child(NAME) {
        std::thread::spawn(|| {
            // The thread maps a stack (and checks its signal stack) first.
            let mut co: Coroutine<(), (), ()> = Coroutine::new(|_, ()| ());
            co.resume(()).unwrap();
            LATE.with(|_| ());
        })
        .join()
        .unwrap();
        unreachable!("the overflow aborts the process");
    }
    if under_asan() {
        eprintln!("skipped under AddressSanitizer");
        return;
    }
    let output = run_child(NAME);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(signal_of(&output), Some(libc::SIGABRT), "stderr: {stderr}");
    assert!(
        stderr.contains("coroutine 'in-a-tls-destructor' has overflowed its stack"),
        "stderr:\n{stderr}"
    );
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
        assert!(!line.contains("RLIMIT_AS"), "{line}");
    }
    assert!(
        stdout.contains(&format!("error size: {MIN_STACK_SIZE}")),
        "{stdout}"
    );
    assert!(stdout.contains("recovered"), "{stdout}");
}

// ------------------------------------------- sharing SIGSEGV with the program

/// Writes `bytes` to stderr from a signal handler (no allocation, no lock).
fn write_stderr(bytes: &[u8]) {
    // SAFETY: write(2) is async-signal-safe; the buffer is valid for its length.
    unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
}

/// Installs `handler` for `signum` with `flags` and the signals of `mask`
/// blocked while it runs.
fn install_handler(signum: i32, handler: usize, flags: i32, mask: &[i32]) {
    // SAFETY: a plain sigaction call with a fully initialised action.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler;
        action.sa_flags = flags;
        libc::sigemptyset(&mut action.sa_mask);
        for &s in mask {
            libc::sigaddset(&mut action.sa_mask, s);
        }
        assert_eq!(libc::sigaction(signum, &action, std::ptr::null_mut()), 0);
    }
}

/// The handler currently installed for `signum`.
fn current_handler(signum: i32) -> usize {
    // SAFETY: sigaction with a null new action only reads the current one.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signum, std::ptr::null(), &mut action);
        action.sa_sigaction
    }
}

/// True if `signum` is blocked on this thread.
fn is_blocked(signum: i32) -> bool {
    // SAFETY: pthread_sigmask with a null new set only reads the mask.
    unsafe {
        let mut mask: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut mask);
        libc::sigismember(&mask, signum) == 1
    }
}

/// Creates and runs a coroutine, which installs cogen's handler, and checks
/// that it did.
fn install_cogen_handler(previous: usize) {
    let mut co: Coroutine<(), (), ()> = Coroutine::new(|_, ()| ());
    co.resume(()).unwrap();
    assert_ne!(
        current_handler(libc::SIGSEGV),
        previous,
        "cogen installed no handler"
    );
}

/// An address no program maps.
const BAD_ADDRESS: usize = 16;

extern "C" fn siginfo_handler(signum: i32, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    write_stderr(b"program's handler: ");
    write_stderr(if signum == libc::SIGSEGV {
        b"SIGSEGV"
    } else {
        b"another signal"
    });
    write_stderr(if addr == BAD_ADDRESS {
        b" at the faulting address"
    } else {
        b" at another address"
    });
    write_stderr(if is_blocked(libc::SIGUSR1) {
        b", its sa_mask blocked"
    } else {
        b", its sa_mask not blocked"
    });
    write_stderr(if is_blocked(libc::SIGSEGV) {
        b", SIGSEGV blocked\n"
    } else {
        b", SIGSEGV not blocked\n"
    });
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(42) };
}

#[test]
fn a_handler_installed_before_the_first_coroutine_gets_other_faults() {
    const NAME: &str = "a_handler_installed_before_the_first_coroutine_gets_other_faults";
    if is_child(NAME) {
        let handler = siginfo_handler as *const () as usize;
        install_handler(libc::SIGSEGV, handler, libc::SA_SIGINFO, &[libc::SIGUSR1]);
        install_cogen_handler(handler);
        // A fault inside a coroutine that is not a stack overflow.
        let mut co: Coroutine<usize, (), ()> = Coroutine::new(|_, addr| {
            // SAFETY: none; this child process is meant to fault here.
            unsafe { std::ptr::write_volatile(addr as *mut u8, 1) };
        });
        let _ = co.resume(std::hint::black_box(BAD_ADDRESS));
        unreachable!("the program's handler exits");
    }
    if under_asan() {
        return;
    }
    let output = run_child(NAME);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(42), "stderr:\n{stderr}");
    assert!(
        stderr.contains(
            "program's handler: SIGSEGV at the faulting address, its sa_mask blocked, SIGSEGV blocked\n"
        ),
        "stderr:\n{stderr}"
    );
}

static PLAIN_CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

extern "C" fn plain_handler(signum: i32) {
    if PLAIN_CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) > 0 {
        write_stderr(b"program's handler called again\n");
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(3) };
    }
    write_stderr(b"program's handler: ");
    write_stderr(if current_handler(signum) == libc::SIG_DFL {
        b"reset to the default"
    } else {
        b"not reset"
    });
    write_stderr(if is_blocked(signum) {
        b", signal blocked\n"
    } else {
        b", signal not blocked\n"
    });
    // Returning runs the faulting instruction again, now with the default action.
}

#[test]
fn a_previous_one_shot_handler_runs_once_then_the_default_action_kills() {
    const NAME: &str = "a_previous_one_shot_handler_runs_once_then_the_default_action_kills";
    if is_child(NAME) {
        let handler = plain_handler as *const () as usize;
        install_handler(
            libc::SIGSEGV,
            handler,
            libc::SA_RESETHAND | libc::SA_NODEFER,
            &[],
        );
        install_cogen_handler(handler);
        // SAFETY: none; this child process is meant to fault here.
        unsafe { std::ptr::write_volatile(std::hint::black_box(BAD_ADDRESS) as *mut u8, 1) };
        unreachable!("the default action kills the process");
    }
    if under_asan() {
        return;
    }
    let output = run_child(NAME);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(signal_of(&output), Some(libc::SIGSEGV), "stderr:\n{stderr}");
    assert_eq!(
        stderr.matches("program's handler").count(),
        1,
        "stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("program's handler: reset to the default, signal not blocked\n"),
        "stderr:\n{stderr}"
    );
}

/// Sets `signum`'s action to `action` (`SIG_DFL` or `SIG_IGN`).
fn set_disposition(signum: i32, action: usize) {
    install_handler(signum, action, 0, &[]);
}

#[test]
fn a_null_write_outside_coroutines_with_no_previous_handler_kills_with_sigsegv() {
    const NAME: &str =
        "a_null_write_outside_coroutines_with_no_previous_handler_kills_with_sigsegv";
    if is_child(NAME) {
        // Without the standard library's handler: the default action before cogen.
        set_disposition(libc::SIGSEGV, libc::SIG_DFL);
        install_cogen_handler(libc::SIG_DFL);
        // SAFETY: none; this child process is meant to fault here.
        unsafe { std::ptr::write_volatile(std::hint::black_box(std::ptr::null_mut::<u8>()), 1) };
        println!("survived");
        return;
    }
    if under_asan() {
        return;
    }
    let output = run_child(NAME);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        signal_of(&output),
        Some(libc::SIGSEGV),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(!stderr.contains("overflowed"), "stderr:\n{stderr}");
}

#[test]
fn a_null_write_with_sigsegv_ignored_still_kills_with_sigsegv() {
    const NAME: &str = "a_null_write_with_sigsegv_ignored_still_kills_with_sigsegv";
    if is_child(NAME) {
        set_disposition(libc::SIGSEGV, libc::SIG_IGN);
        install_cogen_handler(libc::SIG_IGN);
        // SAFETY: none; this child process is meant to fault here.
        unsafe { std::ptr::write_volatile(std::hint::black_box(std::ptr::null_mut::<u8>()), 1) };
        println!("survived");
        return;
    }
    if under_asan() {
        return;
    }
    let output = run_child(NAME);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(signal_of(&output), Some(libc::SIGSEGV), "stderr:\n{stderr}");
}

#[test]
fn a_sent_sigsegv_with_no_previous_handler_kills_with_sigsegv() {
    const NAME: &str = "a_sent_sigsegv_with_no_previous_handler_kills_with_sigsegv";
    if is_child(NAME) {
        set_disposition(libc::SIGSEGV, libc::SIG_DFL);
        install_cogen_handler(libc::SIG_DFL);
        // SAFETY: raise has no preconditions.
        unsafe { libc::raise(libc::SIGSEGV) };
        println!("survived");
        return;
    }
    if under_asan() {
        return;
    }
    let output = run_child(NAME);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(signal_of(&output), Some(libc::SIGSEGV), "stdout:\n{stdout}");
}
// --------------------------------------------- running out of address space

/// Lowers this process's address-space limit (RLIMIT_AS, `ulimit -v`) to
/// what it uses now plus `headroom` bytes, so that only a few hundred
/// default-size stacks fit.
fn limit_address_space(headroom: usize) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let used_kib: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("VmSize in /proc/self/status");
    let limit = (used_kib * 1024 + headroom) as libc::rlim_t;
    // SAFETY: plain getrlimit/setrlimit calls on initialised structs.
    unsafe {
        let mut rlimit: libc::rlimit = std::mem::zeroed();
        assert_eq!(libc::getrlimit(libc::RLIMIT_AS, &mut rlimit), 0);
        rlimit.rlim_cur = limit;
        assert_eq!(libc::setrlimit(libc::RLIMIT_AS, &rlimit), 0);
    }
}

/// Counts the destructors of the bodies' locals.
type Destructors = std::rc::Rc<std::cell::Cell<usize>>;

/// A local whose destructor is counted.
struct Counted(Destructors);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

const HEADROOM: usize = 256 << 20;
const MAX_LIVE: usize = 4096;

/// Creates suspended default-size coroutines, each holding a drop counter,
/// until no stack can be mapped. No coroutine has been closed yet.
fn exhaust_address_space(drops: &Destructors) -> (Vec<Coroutine<(), (), ()>>, cogen::StackError) {
    let mut live = Vec::with_capacity(MAX_LIVE);
    limit_address_space(HEADROOM);
    let error = loop {
        let drops = drops.clone();
        match Builder::new().try_build(move |co: &Yielder<(), ()>, ()| {
            let _counted = Counted(drops);
            co.suspend(());
        }) {
            Ok(mut co) => {
                co.resume(()).unwrap();
                live.push(co);
            }
            Err(e) => break e,
        }
        assert!(live.len() < MAX_LIVE, "no address-space limit was hit");
    };
    (live, error)
}

#[test]
fn closing_and_dropping_after_the_stacks_ran_out_needs_no_new_stack() {
    const NAME: &str = "closing_and_dropping_after_the_stacks_ran_out_needs_no_new_stack";
    if is_child(NAME) {
        let drops = Destructors::default();
        let (mut live, _) = exhaust_address_space(&drops);
        let created = live.len();
        // The first close of this process, with no room for another stack.
        let closed = live[0].close();
        println!("close: {closed:?}");
        println!("destructors after close: {}", drops.get());
        drop(live);
        println!("created {created}, destructors after drop: {}", drops.get());
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
    assert!(stdout.contains("close: Ok(())\n"), "stdout:\n{stdout}");
    assert!(
        stdout.contains("destructors after close: 1\n"),
        "stdout:\n{stdout}"
    );
    let (created, dropped) = stdout
        .lines()
        .find_map(|l| l.split_once("created ").map(|(_, rest)| rest))
        .and_then(|l| l.split_once(", destructors after drop: "))
        .expect("the child reports what it created and dropped");
    assert_eq!(created, dropped, "stdout:\n{stdout}");
    assert!(!stderr.contains("panicked"), "stderr:\n{stderr}");
}

#[test]
fn a_constructor_loop_that_runs_out_unwinds_quietly() {
    const NAME: &str = "a_constructor_loop_that_runs_out_unwinds_quietly";
    if is_child(NAME) {
        let drops = Destructors::default();
        let created = std::cell::Cell::new(0);
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let mut live = Vec::with_capacity(MAX_LIVE);
            limit_address_space(HEADROOM);
            loop {
                let drops = drops.clone();
                // Panics when no stack can be mapped; the unwinding drops `live`.
                let mut co = Coroutine::new(move |co: &Yielder<(), ()>, ()| {
                    let _counted = Counted(drops);
                    co.suspend(());
                });
                co.resume(()).unwrap();
                live.push(co);
                created.set(live.len());
                assert!(live.len() < MAX_LIVE, "no address-space limit was hit");
            }
        }));
        assert!(result.is_err());
        println!("created {}, destructors: {}", created.get(), drops.get());
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
    let (created, dropped) = stdout
        .lines()
        .find_map(|l| l.split_once("created ").map(|(_, rest)| rest))
        .and_then(|l| l.split_once(", destructors: "))
        .expect("the child reports what it created and dropped");
    assert_eq!(created, dropped, "stdout:\n{stdout}");
    // The constructor's own panic, and nothing else.
    assert_eq!(stderr.matches("panicked").count(), 1, "stderr:\n{stderr}");
    assert!(
        stderr.contains("cannot map a 1024 KiB coroutine stack"),
        "stderr:\n{stderr}"
    );
}
#[test]
fn running_out_of_address_space_blames_the_address_space_limit() {
    const NAME: &str = "running_out_of_address_space_blames_the_address_space_limit";
    if is_child(NAME) {
        let drops = Destructors::default();
        let (live, error) = exhaust_address_space(&drops);
        println!("created {}", live.len());
        println!("error: {error}");
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
    let error = stdout
        .lines()
        .find_map(|l| l.split_once("error: ").map(|(_, rest)| rest))
        .expect("the child prints the error");
    assert!(
        error.contains("cannot map a 1024 KiB coroutine stack"),
        "{error}"
    );
    assert!(error.contains("RLIMIT_AS"), "{error}");
    assert!(error.contains("ulimit -v"), "{error}");
    assert!(!error.contains("max_map_count"), "{error}");
}

#[test]
fn prewarm_fills_this_threads_pool_so_creates_take_from_it() {
    std::thread::spawn(|| {
        let builder = cogen::Builder::new().stack_size(64 * 1024);
        cogen::stack::set_pool_capacity(10);
        assert_eq!(builder.prewarm(40).unwrap(), 40); // raises the capacity
        assert_eq!(cogen::stack::pooled_stacks(), 40);
        assert_eq!(builder.prewarm(40).unwrap(), 0); // already there
        let cos: Vec<_> = (0..40)
            .map(|i| {
                builder
                    .clone()
                    .build(move |_: &cogen::Yielder<(), ()>, ()| i)
            })
            .collect();
        assert_eq!(
            cogen::stack::pooled_stacks(),
            0,
            "each took a prewarmed stack"
        );
        drop(cos);
        assert_eq!(cogen::stack::pooled_stacks(), 40);
        // Another size has its own stacks.
        assert_eq!(
            cogen::Builder::new()
                .stack_size(128 * 1024)
                .prewarm(5)
                .unwrap(),
            5
        );
        assert_eq!(cogen::stack::pooled_stacks(), 45);
    })
    .join()
    .unwrap();
}

/// In a process whose first stack is mapped by `prewarm` (so no coroutine
/// was created before the first one that runs), closing a suspended
/// coroutine, and the chain of running coroutines (which follows what
/// cogen learns about corosensei when the first stack is mapped), work
/// from the first coroutine on.
#[test]
fn a_process_that_prewarms_before_its_first_coroutine_closes_and_reads_the_chain() {
    const NAME: &str =
        "a_process_that_prewarms_before_its_first_coroutine_closes_and_reads_the_chain";
    if is_child(NAME) {
        assert_eq!(cogen::Builder::new().prewarm(2).unwrap(), 2);
        let outer_seen = std::rc::Rc::new(std::cell::Cell::new(None));
        let seen = outer_seen.clone();
        let mut outer: cogen::Coroutine<(), (), ()> = cogen::Coroutine::new(move |co, ()| {
            let me = cogen::running().expect("inside");
            let mut inner: cogen::Coroutine<(), (), ()> = cogen::Coroutine::new(move |_, ()| {
                seen.set(Some(me.status()));
            });
            inner.resume(()).unwrap();
            co.suspend(());
            unreachable!("closed while suspended");
        });
        outer.resume(()).unwrap();
        assert_eq!(outer_seen.get(), Some(cogen::Status::Normal));
        assert!(outer.close().is_ok(), "the close's unwinding is recognised");
        assert!(outer.is_dead());
        println!("child ok");
        return;
    }
    let output = run_child(NAME);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("child ok"),
        "stdout: {stdout}\nstderr: {stderr}"
    );
}
