//! The chain of running coroutines (`running()`, `is_yieldable()`,
//! `CoroutineHandle::status()`, `close`) under what safe user code can do to
//! it: coroutines dropped by thread-local destructors, threads that end with
//! coroutines alive, destructors that ask about the chain while a coroutine
//! is closed or unwinds, nested suspends, foreign (raw corosensei) stacks,
//! coroutines that move between resumes, and handles that outlive their
//! coroutine while its stack is reused.
//!
//! Tests that end a thread during thread-local destruction, or could abort,
//! run in a child process (this binary re-executed with `--exact NAME`), as
//! `tests/stack.rs` does.

use std::cell::{Cell, RefCell};
use std::process::{Command, Output};
use std::rc::Rc;

use cogen::{Builder, Coroutine, CoroutineHandle, ScopedCoroutine, Status, Yielder};

const CHILD_ENV: &str = "COGEN_CHAIN_ADVERSARIAL_CHILD";

fn is_child(name: &str) -> bool {
    std::env::var(CHILD_ENV).as_deref() == Ok(name)
}

fn under_asan() -> bool {
    std::env::var_os("ASAN_OPTIONS").is_some()
}

/// Runs the test `name` of this binary in a child process and returns its output.
fn run_child(name: &str) -> Output {
    let exe = std::env::current_exe().expect("path of the test binary");
    Command::new(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, name)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run the test binary again")
}

/// Asserts that the child ran to its end and exited cleanly.
fn assert_child_ok(name: &str) {
    let output = run_child(name);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "child failed ({:?})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    assert!(
        stdout.contains("CHILD DONE"),
        "child did not finish\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
}

/// Everything a destructor on a coroutine's stack may ask about the chain.
/// Returns what `running()` said, and its status.
fn ask_the_chain(handle: Option<&CoroutineHandle>) -> (bool, Option<Status>) {
    let running = cogen::running();
    let yieldable = cogen::is_yieldable();
    assert_eq!(running.is_some(), yieldable);
    if let Some(h) = handle {
        let _ = h.status();
        let _ = format!("{h:?}");
    }
    (running.is_some(), running.map(|r| r.status()))
}

/// What a destructor saw of the chain: see [`ask_the_chain`].
type Seen = Rc<Cell<Option<(bool, Option<Status>)>>>;

/// A value whose drop asks the chain, and creates, resumes and drops a
/// coroutine.
struct Asker {
    handle: Rc<RefCell<Option<CoroutineHandle>>>,
    seen: Seen,
}

impl Drop for Asker {
    fn drop(&mut self) {
        let seen = ask_the_chain(self.handle.borrow().as_ref());
        self.seen.set(Some(seen));
        let mut other = Coroutine::<(), u32, u32>::new(|co, ()| {
            co.suspend(1);
            2
        });
        assert_eq!(other.resume(()).unwrap().as_yield(), Some(1));
        assert_eq!(other.resume(()).unwrap().as_return(), Some(2));
        let mut suspended = Coroutine::<(), (), ()>::new(|co, ()| co.suspend(()));
        suspended.resume(()).unwrap();
        drop(suspended);
    }
}

/// A suspended coroutine holding an [`Asker`] alive across its suspend.
fn suspended_asker() -> Coroutine<(), (), ()> {
    let asker = Asker {
        handle: Rc::new(RefCell::new(None)),
        seen: Rc::new(Cell::new(None)),
    };
    let mut co = Coroutine::<(), (), ()>::new(move |co, ()| {
        *asker.handle.borrow_mut() = cogen::running();
        let _keep = asker;
        co.suspend(());
    });
    co.resume(()).unwrap();
    co
}

/// Closes a coroutine that ran, to touch every thread-local `close` uses.
fn close_one() {
    let mut co = Coroutine::<(), (), ()>::new(|co, ()| co.suspend(()));
    co.resume(()).unwrap();
    co.close().unwrap();
    let mut unstarted = Coroutine::<(), (), ()>::new(|_, ()| ());
    unstarted.close().unwrap();
}

thread_local! {
    static KEPT: RefCell<Vec<Coroutine<(), (), ()>>> = const { RefCell::new(Vec::new()) };
    static KEPT_OTHER_SIZE: RefCell<Vec<Coroutine<(), (), ()>>> = const { RefCell::new(Vec::new()) };
    static MADE_LATE: Late = const { Late };
}

/// A thread-local whose destructor creates, runs and drops coroutines.
struct Late;

impl Drop for Late {
    fn drop(&mut self) {
        let mut co = Builder::new()
            .stack_size(64 * 1024)
            .build(|co: &Yielder<(), ()>, ()| {
                assert!(cogen::running().is_some());
                co.suspend(());
            });
        co.resume(()).unwrap();
        let h = co.handle();
        assert_eq!(h.status(), Status::Suspended);
        drop(co);
        assert_eq!(h.status(), Status::Dead);
        let mut co = Coroutine::<(), (), u8>::new(|_, ()| 7);
        assert_eq!(co.resume(()).unwrap().as_return(), Some(7));
        let _ = suspended_asker();
        // The pool's public functions, possibly after it was closed.
        let _ = cogen::stack::pooled_stacks();
        let _ = Builder::new().prewarm(2);
        let _ = Builder::new().stack_size(64 * 1024).prewarm(2);
        let _ = cogen::stack::pooled_stacks();
        cogen::stack::set_pool_capacity(1);
        let mut co = Coroutine::<(), (), ()>::new(|_, ()| ());
        co.resume(()).unwrap();
    }
}

/// Thread-local destructors run in some order relative to cogen's own
/// thread-locals; both orders are tried: the user's thread-local touched
/// before any coroutine is closed, and after.
fn thread_ending_with_kept_coroutines(touch_user_tls_first: bool) {
    std::thread::spawn(move || {
        if touch_user_tls_first {
            KEPT.with(|_| ());
            KEPT_OTHER_SIZE.with(|_| ());
            MADE_LATE.with(|_| ());
        }
        close_one();
        KEPT.with(|k| k.borrow_mut().push(suspended_asker()));
        let mut small = Builder::new()
            .stack_size(48 * 1024)
            .build(|co: &Yielder<(), ()>, ()| {
                let _asker = Asker {
                    handle: Rc::new(RefCell::new(cogen::running())),
                    seen: Rc::new(Cell::new(None)),
                };
                co.suspend(());
            });
        small.resume(()).unwrap();
        KEPT_OTHER_SIZE.with(|k| k.borrow_mut().push(small));
        // A coroutine never started, dropped by the destructor.
        KEPT.with(|k| {
            k.borrow_mut()
                .push(Coroutine::new(|_: &Yielder<(), ()>, ()| ()))
        });
        // Destructors that panic while the thread-locals' destructors
        // close them: dropping discards the panic.
        struct PanicsOnDrop;
        impl Drop for PanicsOnDrop {
            fn drop(&mut self) {
                assert!(cogen::is_yieldable());
                panic!("a capture's destructor panics");
            }
        }
        let p = PanicsOnDrop;
        KEPT.with(|k| {
            k.borrow_mut()
                .push(Coroutine::new(move |_: &Yielder<(), ()>, ()| {
                    let _p = &p;
                }))
        });
        // (A destructor that panics during the close's unwinding aborts,
        // as any panic during unwinding does; a body that swallows the
        // unwinding and then panics does not.)
        let mut co = Coroutine::new(|co: &Yielder<(), ()>, ()| {
            let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| co.suspend(())));
            assert!(caught.is_err());
            drop(PanicsOnDrop);
        });
        co.resume(()).unwrap();
        KEPT.with(|k| k.borrow_mut().push(co));
        MADE_LATE.with(|_| ());
    })
    .join()
    .unwrap();
}

#[test]
fn suspended_coroutines_in_thread_locals_are_dropped_at_thread_exit() {
    const NAME: &str = "suspended_coroutines_in_thread_locals_are_dropped_at_thread_exit";
    if is_child(NAME) {
        thread_ending_with_kept_coroutines(true);
        thread_ending_with_kept_coroutines(false);
        println!("CHILD DONE");
        return;
    }
    assert_child_ok(NAME);
}

/// The addresses of coroutines leaked on purpose, which outlive their
/// thread: a `static` cannot hold a `!Send` coroutine itself. Kept here so
/// that LeakSanitizer sees them reachable, as a program that leaks a
/// coroutine into a `static` would keep it.
static LEAKED: std::sync::Mutex<Vec<usize>> = std::sync::Mutex::new(Vec::new());

/// Threads that end with coroutines alive: leaked ones (their stacks stay
/// mapped and registered for good), ones kept in a thread-local, stacks of
/// several sizes, prewarmed pools, and pool capacities changed at the end.
#[test]
fn threads_end_with_coroutines_alive() {
    let mut threads = Vec::new();
    for t in 0..8usize {
        threads.push(std::thread::spawn(move || {
            for i in 0..50usize {
                let size = [16 * 1024, 64 * 1024, 100_000, 1 << 20][(t + i) % 4];
                if i % 10 == 0 {
                    Builder::new().stack_size(size).prewarm(3).unwrap();
                }
                let mut co =
                    Builder::new()
                        .stack_size(size)
                        .build(move |co: &Yielder<usize, usize>, x| {
                            // The one to be leaked keeps nothing on the
                            // heap (its stack is not scanned for pointers).
                            if x % 5 != 0 {
                                let h = cogen::running().unwrap();
                                assert_eq!(h.status(), Status::Running);
                            }
                            let y = co.suspend(x + 1);
                            y * 2
                        });
                assert_eq!(co.resume(i).unwrap().as_yield(), Some(i + 1));
                match i % 5 {
                    0 => LEAKED
                        .lock()
                        .unwrap()
                        .push(Box::into_raw(Box::new(co)) as usize),
                    1 => drop(co),
                    2 => assert_eq!(co.resume(3).unwrap().as_return(), Some(6)),
                    _ => KEPT.with(|k| {
                        let mut inner = Coroutine::<(), (), ()>::new(|co, ()| co.suspend(()));
                        inner.resume(()).unwrap();
                        k.borrow_mut().push(inner);
                        drop(co);
                    }),
                }
            }
            cogen::stack::set_pool_capacity(t % 3);
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn the_chain_from_destructors_run_by_close_and_by_drop() {
    for close in [true, false] {
        let asker = Asker {
            handle: Rc::new(RefCell::new(None)),
            seen: Rc::new(Cell::new(None)),
        };
        let seen = asker.seen.clone();
        let handle_slot = asker.handle.clone();
        let mut co = Coroutine::<(), (), ()>::new(move |co, ()| {
            *asker.handle.borrow_mut() = cogen::running();
            let _keep = asker;
            co.suspend(());
        });
        co.resume(()).unwrap();
        let handle = co.handle();
        if close {
            co.close().unwrap();
        } else {
            drop(co);
        }
        assert_eq!(seen.get(), Some((true, Some(Status::Running))));
        assert_eq!(handle.status(), Status::Dead);
        assert_eq!(
            handle_slot.borrow().as_ref().unwrap().status(),
            Status::Dead
        );
    }
}

#[test]
fn the_chain_from_destructors_of_an_unstarted_body() {
    let asker = Asker {
        handle: Rc::new(RefCell::new(None)),
        seen: Rc::new(Cell::new(None)),
    };
    let seen = asker.seen.clone();
    let co = Coroutine::<(), (), ()>::new(move |_, ()| drop(asker));
    let handle = co.handle();
    drop(co);
    // Dropped on the coroutine's own stack, with it running.
    assert_eq!(seen.get(), Some((true, Some(Status::Running))));
    assert_eq!(handle.status(), Status::Dead);
}

#[test]
fn the_chain_during_a_panic_unwinding_out_of_a_body() {
    struct OnUnwind(Seen);
    impl Drop for OnUnwind {
        fn drop(&mut self) {
            assert!(std::thread::panicking());
            self.0.set(Some(ask_the_chain(None)));
        }
    }
    let seen = Rc::new(Cell::new(None));
    let s = seen.clone();
    let mut co = Coroutine::<(), (), ()>::new(move |_, ()| {
        let _guard = OnUnwind(s);
        panic!("on purpose");
    });
    let handle = co.handle();
    assert!(co.resume(()).is_err());
    assert_eq!(seen.get(), Some((true, Some(Status::Running))));
    assert_eq!(handle.status(), Status::Dead);
}

#[test]
fn the_chain_from_the_return_values_destructor() {
    struct Ret(Seen, CoroutineHandle);
    impl Drop for Ret {
        fn drop(&mut self) {
            self.0.set(Some(ask_the_chain(Some(&self.1))));
            assert_eq!(self.1.status(), Status::Dead);
        }
    }
    let seen = Rc::new(Cell::new(None));
    let s = seen.clone();
    let mut co = Coroutine::<(), (), Ret>::new(move |_, ()| Ret(s, cogen::running().unwrap()));
    drop(co.resume(()).unwrap());
    assert_eq!(seen.get(), Some((false, None)));
    // Kept in the coroutine, dropped with it.
    let seen2 = Rc::new(Cell::new(None));
    let s2 = seen2.clone();
    let mut co2 = Coroutine::<(), (), Ret>::new(move |_, ()| Ret(s2, cogen::running().unwrap()));
    let _ = co2.resume(());
    drop(co);
    drop(co2);
}

#[test]
fn the_chain_of_a_nested_suspend_after_the_outer_was_resumed_from_elsewhere() {
    let mut outer = Coroutine::<(), &'static str, ()>::new(|co, ()| {
        let outer_handle = cogen::running().unwrap();
        let inner = ScopedCoroutine::<(), (), ()>::new(|_, ()| {
            let me = cogen::running().unwrap();
            // Suspends the whole chain through the outer yielder.
            co.suspend("from inner");
            assert_eq!(me.status(), Status::Running);
            assert_eq!(outer_handle.status(), Status::Normal);
            let mut third = Coroutine::<(), Status, ()>::new({
                let me = me.clone();
                move |c, ()| {
                    c.suspend(me.status());
                }
            });
            assert_eq!(third.resume(()).unwrap().as_yield(), Some(Status::Normal));
            co.suspend("again");
        });
        inner.scope(|r| {
            r.resume(()).unwrap();
        });
    });
    assert_eq!(outer.resume(()).unwrap().as_yield(), Some("from inner"));
    let outer_handle = outer.handle();
    assert_eq!(outer_handle.status(), Status::Suspended);
    // Resumed from inside another coroutine this time.
    let mut outer_slot = Some(outer);
    let mut driver = Coroutine::<(), (), Coroutine<(), &'static str, ()>>::new(move |_, ()| {
        let mut outer = outer_slot.take().unwrap();
        assert_eq!(outer.resume(()).unwrap().as_yield(), Some("again"));
        outer
    });
    let mut outer = driver.resume(()).unwrap().as_return().unwrap();
    assert_eq!(outer_handle.status(), Status::Suspended);
    // Dropping it unwinds through both stacks.
    outer.close().unwrap();
    assert_eq!(outer_handle.status(), Status::Dead);
}

/// A cogen body that switches to a raw corosensei coroutine (a stack cogen
/// did not map), which runs a cogen coroutine in turn.
#[test]
fn a_foreign_stack_inside_a_body() {
    let mut outer = Coroutine::<(), (), ()>::new(|_, ()| {
        let outer_handle = cogen::running().unwrap();
        let oh = outer_handle.clone();
        let mut foreign = corosensei::Coroutine::<(), (), ()>::new(move |y, ()| {
            let outer_handle = oh;
            // Not a cogen coroutine's stack: outside any coroutine.
            assert!(cogen::running().is_none());
            assert!(!cogen::is_yieldable());
            // The chain seen from here stops at this stack.
            assert_eq!(outer_handle.status(), Status::Suspended);
            let mut inner = Coroutine::<(), Status, ()>::new({
                let outer_handle = outer_handle.clone();
                move |c, ()| {
                    assert_eq!(cogen::running().unwrap().status(), Status::Running);
                    c.suspend(outer_handle.status());
                    // Close from the foreign stack below.
                    c.suspend(outer_handle.status());
                }
            });
            assert_eq!(
                inner.resume(()).unwrap().as_yield(),
                Some(Status::Suspended)
            );
            y.suspend(());
            assert_eq!(
                inner.resume(()).unwrap().as_yield(),
                Some(Status::Suspended)
            );
            drop(inner);
        });
        foreign.resume(());
        assert_eq!(outer_handle.status(), Status::Running);
        foreign.resume(());
    });
    outer.resume(()).unwrap();
    assert!(outer.is_dead());
}

#[test]
fn a_coroutine_moved_between_resumes() {
    let make = |n: u32| {
        Coroutine::<(), (u32, Status), ()>::new(move |co, ()| {
            let me = cogen::running().unwrap();
            loop {
                co.suspend((n, me.status()));
            }
        })
    };
    let mut a = make(1);
    let mut b = Box::new(make(2));
    assert_eq!(a.resume(()).unwrap().as_yield(), Some((1, Status::Running)));
    std::mem::swap(&mut a, &mut b);
    assert_eq!(a.resume(()).unwrap().as_yield(), Some((2, Status::Running)));
    assert_eq!(b.resume(()).unwrap().as_yield(), Some((1, Status::Running)));
    let mut v = Vec::with_capacity(1);
    v.push(*b);
    let h = v[0].handle();
    for i in 0..100 {
        v.push(make(10 + i)); // reallocates
        assert_eq!(h.status(), Status::Suspended);
        assert_eq!(
            v[0].resume(()).unwrap().as_yield(),
            Some((1, Status::Running))
        );
    }
}

#[test]
fn a_stale_handle_reads_dead_while_its_stack_is_reused() {
    for _ in 0..3 {
        let mut old = Coroutine::<(), (), ()>::new(|co, ()| co.suspend(()));
        old.resume(()).unwrap();
        let stale = old.handle();
        let stale_running = Rc::new(RefCell::new(None));
        drop(old);
        assert_eq!(stale.status(), Status::Dead);
        // Probably the same pooled stack (and the same place for its `Meta`).
        let s = stale.clone();
        let sr = stale_running.clone();
        let mut new = Coroutine::<(), Status, ()>::new(move |co, ()| {
            *sr.borrow_mut() = cogen::running();
            co.suspend(s.status());
        });
        let fresh = new.handle();
        assert_eq!(new.resume(()).unwrap().as_yield(), Some(Status::Dead));
        assert!(!fresh.same_coroutine(&stale));
        assert!(
            stale_running
                .borrow()
                .as_ref()
                .unwrap()
                .same_coroutine(&fresh)
        );
        assert_eq!(fresh.status(), Status::Suspended);
        assert_eq!(stale.status(), Status::Dead);
        drop(new);
        assert_eq!(fresh.status(), Status::Dead);
    }
}

/// Recurses forever, with a frame the optimiser cannot remove.
#[allow(unconditional_recursion)]
fn recurse_forever(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 32]);
    recurse_forever(depth + 1) + frame[0]
}

#[test]
fn an_overflow_after_a_nested_suspend_names_the_nested_coroutine() {
    const NAME: &str = "an_overflow_after_a_nested_suspend_names_the_nested_coroutine";
    if is_child(NAME) {
        let mut outer = Builder::new()
            .name("outer")
            .build(|co: &Yielder<(), ()>, ()| {
                let inner = Builder::new()
                    .name("inner")
                    .stack_size(64 * 1024)
                    .build_scoped(|_: &Yielder<(), ()>, ()| {
                        co.suspend(());
                        recurse_forever(0);
                    });
                inner.scope(|r| {
                    let _ = r.resume(());
                });
            });
        outer.resume(()).unwrap();
        let mut driver = Builder::new()
            .name("driver")
            .build(move |_: &Yielder<(), ()>, ()| {
                let _ = outer.resume(());
            });
        let _ = driver.resume(());
        unreachable!("the overflow aborts the process");
    }
    if under_asan() {
        return;
    }
    let output = run_child(NAME);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("coroutine 'inner' has overflowed its stack"),
        "stderr:\n{stderr}"
    );
    assert!(!stderr.contains("'outer'") && !stderr.contains("'driver'"));
}

/// Tasks of the event loop are coroutines: the chain inside them, and inside
/// coroutines nested in them, across waits that park the whole chain (and
/// are resumed by the loop, from its own stack).
#[test]
fn the_chain_inside_event_loop_tasks_across_nested_waits() {
    use cogen::event_loop::{EventLoop, yield_now};
    let ev = EventLoop::new();
    let handles = Rc::new(RefCell::new(Vec::new()));
    for _ in 0..3 {
        let handles = handles.clone();
        ev.spawn(move || {
            let task = cogen::running().expect("a task is a coroutine");
            handles.borrow_mut().push(task.clone());
            let nested = ScopedCoroutine::<(), (), ()>::new(|_, ()| {
                let me = cogen::running().unwrap();
                for _ in 0..3 {
                    yield_now();
                    assert_eq!(me.status(), Status::Running);
                    assert_eq!(task.status(), Status::Normal);
                    for other in handles.borrow().iter() {
                        if !other.same_coroutine(&task) {
                            assert_ne!(other.status(), Status::Running);
                            assert_ne!(other.status(), Status::Normal);
                        }
                    }
                }
            });
            nested.scope(|r| {
                r.resume(()).unwrap();
            });
            assert_eq!(task.status(), Status::Running);
        });
    }
    ev.run().unwrap();
    for h in handles.borrow().iter() {
        assert_eq!(h.status(), Status::Dead);
    }
}

/// A global allocator that asks about the chain on every allocation while
/// [`ASK`] is set: the chain must read right from wherever memory is
/// allocated, including the probe that cogen runs on the first stack of
/// the process.
struct AskingAllocator;

static ASK: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

thread_local! {
    static ASKING: Cell<bool> = const { Cell::new(false) };
    /// The handles to nameless coroutines that the allocator got.
    static NAMELESS: RefCell<Vec<CoroutineHandle>> = const { RefCell::new(Vec::new()) };
}

// SAFETY: forwards to the system allocator; the question asked first
// neither allocates from this allocator re-entrantly (the flag) nor
// touches the memory being allocated.
unsafe impl std::alloc::GlobalAlloc for AskingAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        if ASK.load(std::sync::atomic::Ordering::Relaxed) && !ASKING.replace(true) {
            if let Some(me) = cogen::running() {
                assert_eq!(me.status(), Status::Running);
                if me.name().is_none() {
                    NAMELESS.with(|n| n.borrow_mut().push(me));
                }
            }
            ASKING.set(false);
        }
        // SAFETY: forwarded from our caller.
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: forwarded from our caller.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: AskingAllocator = AskingAllocator;

#[test]
fn a_global_allocator_that_asks_about_the_chain_from_the_first_stack() {
    const NAME: &str = "a_global_allocator_that_asks_about_the_chain_from_the_first_stack";
    if is_child(NAME) {
        ASK.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut co = Builder::new()
            .name("first")
            .build(|co: &Yielder<(), ()>, ()| {
                let v = vec![1u8; 100];
                co.suspend(());
                drop(v);
            });
        // The probe ran on the first stack, mapped for `co`, allocating;
        // to the allocator it was a nameless coroutine, finished now.
        let nameless = NAMELESS.with(|n| n.take());
        assert!(!nameless.is_empty());
        for h in &nameless {
            assert_eq!(h.status(), Status::Dead);
        }
        co.resume(()).unwrap();
        drop(co);
        ASK.store(false, std::sync::atomic::Ordering::Relaxed);
        println!("CHILD DONE");
        return;
    }
    assert_child_ok(NAME);
}

thread_local! {
    static KEPT_LOOP: RefCell<Option<(cogen::event_loop::EventLoop, Box<dyn std::any::Any>)>> =
        const { RefCell::new(None) };
}

/// An event loop kept in a thread-local, with tasks parked in waits (in
/// nested coroutines too), dropped when the thread ends: the tasks are
/// cancelled from the thread-local's destructor.
fn thread_ending_with_a_kept_loop(touch_user_tls_first: bool) {
    use cogen::event_loop::{EventLoop, channel};
    std::thread::spawn(move || {
        if touch_user_tls_first {
            KEPT_LOOP.with(|_| ());
        }
        close_one();
        let ev = EventLoop::new();
        let (tx, rx) = channel::<u32>(1);
        for depth in 0..3 {
            let rx = rx.clone();
            let asker = Asker {
                handle: Rc::new(RefCell::new(None)),
                seen: Rc::new(Cell::new(None)),
            };
            ev.spawn(move || {
                *asker.handle.borrow_mut() = cogen::running();
                let _keep = asker;
                if depth == 0 {
                    let _ = rx.recv();
                } else {
                    ScopedCoroutine::<(), (), ()>::new(|_, ()| {
                        let _ = rx.recv();
                    })
                    .scope(|r| {
                        let _ = r.resume(());
                    });
                }
            });
        }
        // Every task runs to its wait; then the loop is kept, not run out.
        for _ in 0..10 {
            ev.try_tick();
        }
        // The sender too, so that the waits stay parked.
        KEPT_LOOP.with(|k| *k.borrow_mut() = Some((ev, Box::new(tx))));
    })
    .join()
    .unwrap();
}

#[test]
fn an_event_loop_in_a_thread_local_is_dropped_at_thread_exit() {
    const NAME: &str = "an_event_loop_in_a_thread_local_is_dropped_at_thread_exit";
    if is_child(NAME) {
        thread_ending_with_a_kept_loop(true);
        thread_ending_with_a_kept_loop(false);
        println!("CHILD DONE");
        return;
    }
    assert_child_ok(NAME);
}
