//! The coroutine core at its edges: bodies bigger than corosensei moves by
//! value, closes and cancellations that cross the close of a never-started
//! coroutine, and sizes, values and alignments at their limits.

use std::cell::Cell;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;

use cogen::{Builder, Coroutine, ScopedCoroutine, Yielder};

fn payload_str(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "<non-string payload>".into())
}

// ------------------------------------------------------- big bodies
// corosensei refuses a root closure over 1 KiB ("type is too big to
// transfer"); cogen boxes such bodies. `try_build` promises a `Result`, and
// `new` a panic only when no stack can be mapped.

#[test]
fn try_build_takes_a_body_that_captures_more_than_a_kib() {
    let big = [7u8; 2048];
    let r = std::panic::catch_unwind(move || {
        Builder::new().try_build(move |_: &Yielder<(), ()>, ()| {
            std::hint::black_box(&big);
        })
    });
    match r {
        Ok(Ok(mut co)) => {
            co.resume(()).unwrap();
        }
        Ok(Err(e)) => panic!("try_build returned an error: {e}"),
        Err(p) => panic!("try_build panicked: {}", payload_str(&*p)),
    }
}

#[test]
fn a_task_body_that_captures_more_than_a_kib_runs() {
    let big = [7u8; 4096];
    let ev = cogen::event_loop::EventLoop::new();
    let r = std::panic::catch_unwind(AssertUnwindSafe(|| {
        ev.block_on(move || big.iter().map(|&b| b as u32).sum::<u32>())
    }));
    match r {
        Ok(v) => assert_eq!(v.unwrap(), 7 * 4096),
        Err(p) => panic!("block_on panicked: {}", payload_str(&*p)),
    }
}

struct PanicsOnDrop;
impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("a capture's destructor panics");
    }
}

/// A big body whose capture panics in its destructor, dropped unstarted:
/// its panic is its own close's (here lost with the drop), never reported
/// by the next, clean, close on the thread.
#[test]
fn a_big_body_dropped_unstarted_reports_its_panic_to_its_own_close_only() {
    let big = [0u8; 2048];
    let p = PanicsOnDrop;
    let mut unstarted = Coroutine::<(), (), ()>::new(move |_, ()| {
        let _ = (&big, &p);
    });
    // Its close drops the body, whose capture panics: that close reports it.
    let closed = unstarted.close();
    assert_eq!(
        closed.unwrap_err().message(),
        "a capture's destructor panics"
    );
    // And no later close on the thread does.
    let mut co = Coroutine::<(), (), ()>::new(|co, ()| {
        co.suspend(());
    });
    co.resume(()).unwrap();
    let closed = co.close();
    assert!(
        closed.is_ok(),
        "a clean close reported {:?}",
        closed.unwrap_err().message()
    );
}

/// A named coroutine with a big body builds, and its name (an owned `String`
/// in the `Meta`) is dropped with it (LeakSanitizer in `.ci/run` would
/// report it otherwise).
#[test]
fn a_big_named_body_builds_and_drops() {
    let big = [5u8; 2048];
    let mut co =
        Builder::new()
            .name(format!("big body {}", 42))
            .build(move |co: &Yielder<(), u32>, ()| {
                co.suspend(big.iter().map(|&b| u32::from(b)).sum());
            });
    assert_eq!(co.name(), Some("big body 42"));
    assert_eq!(co.resume(()).unwrap().as_yield(), Some(5 * 2048));
    drop(co); // suspended: closed, and the name dropped with the `Meta`
}

// ------------------------------------- closes that cross an unstarted close
// A never-started coroutine's captures are dropped by its close on its own
// stack. If such a destructor suspends an enclosing coroutine (through its
// yielder, or an event-loop wait), the close (or time limit, or
// cancellation) of that enclosing coroutine unwinds out of that destructor,
// and must go on to it, not be taken for the destructor's panic.

#[test]
fn closing_the_outer_is_not_swallowed_by_an_unstarted_inner_close() {
    let ran_after = Rc::new(Cell::new(false));
    let r = ran_after.clone();
    let mut outer = Coroutine::<(), u32, ()>::new(move |co, ()| {
        struct SuspendOnDrop<'y>(&'y Yielder<(), u32>);
        impl Drop for SuspendOnDrop<'_> {
            fn drop(&mut self) {
                self.0.suspend(1);
            }
        }
        let guard = SuspendOnDrop(co);
        let inner = ScopedCoroutine::<(), (), ()>::new(move |_, ()| {
            let _g = &guard;
        });
        // Never started: its close drops `guard` on its own stack, and
        // `guard`'s destructor suspends `outer`.
        drop(inner);
        r.set(true); // must not run: `outer` was closed before this
        co.suspend(2);
    });
    assert_eq!(outer.resume(()).unwrap().as_yield(), Some(1));
    let closed = outer.close();
    assert!(outer.is_dead());
    assert!(
        !ran_after.get(),
        "the body ran on after its close was requested (close: {:?})",
        closed.as_ref().err().map(|p| p.message())
    );
}

#[test]
fn a_timeout_is_not_swallowed_by_an_unstarted_coroutines_close() {
    use cogen::event_loop::{EventLoop, sleep, timeout};
    use std::time::Duration;
    let ev = EventLoop::new();
    let (result, after) = ev
        .block_on(|| {
            let after = Rc::new(Cell::new(false));
            let a = after.clone();
            let result = timeout(Duration::from_millis(20), move || {
                struct SleepOnDrop;
                impl Drop for SleepOnDrop {
                    fn drop(&mut self) {
                        sleep(Duration::from_secs(30));
                    }
                }
                let g = SleepOnDrop;
                let c = Coroutine::<(), (), ()>::new(move |_, ()| {
                    let _g = &g;
                });
                drop(c); // unstarted: drops `g` on `c`'s stack: it waits
                a.set(true); // must not run: the deadline passed in the wait
            });
            (result.is_ok(), after.get())
        })
        .unwrap();
    assert!(
        !result && !after,
        "timeout returned Ok={result}, code after the expired wait ran={after}"
    );
}

#[test]
fn a_cancel_is_not_swallowed_by_an_unstarted_coroutines_close() {
    use cogen::event_loop::{EventLoop, sleep, spawn, yield_now};
    use std::time::Duration;
    thread_local! {
        static AFTER: Cell<bool> = const { Cell::new(false) };
    }
    let ev = EventLoop::new();
    ev.block_on(|| {
        let h = spawn(|| {
            struct SleepOnDrop;
            impl Drop for SleepOnDrop {
                fn drop(&mut self) {
                    sleep(Duration::from_secs(30));
                }
            }
            let g = SleepOnDrop;
            let c = Coroutine::<(), (), ()>::new(move |_, ()| {
                let _g = &g;
            });
            drop(c);
            AFTER.set(true); // must not run: the task was cancelled
        });
        yield_now();
        yield_now();
        h.cancel();
        let _ = h.join();
    })
    .unwrap();
    assert!(
        !AFTER.get(),
        "a cancelled task ran on after its cancellation"
    );
}

// ---------------------------------------------------------------- limits

#[test]
fn huge_stack_sizes_are_errors_not_panics() {
    for size in [
        usize::MAX,
        usize::MAX - 4096,
        usize::MAX - 3 * 4096,
        usize::MAX / 2,
        1 << 46,
    ] {
        let r = std::panic::catch_unwind(|| {
            Builder::new()
                .stack_size(size)
                .try_build(|_: &Yielder<(), ()>, ()| ())
                .map(|_| ())
        });
        match r {
            Ok(res) => assert!(res.is_err(), "size {size:#x} was mapped"),
            Err(p) => panic!("size {size:#x}: panicked: {}", payload_str(&*p)),
        }
    }
}

#[test]
fn big_values_pass_through_resume() {
    let mut co = Coroutine::<[u8; 8192], [u8; 8192], [u8; 8192]>::new(|co, mut a| {
        for _ in 0..3 {
            a[0] = a[0].wrapping_add(1);
            a = co.suspend(a);
        }
        a
    });
    let mut v = [1u8; 8192];
    for _ in 0..3 {
        v = co.resume(v).unwrap().as_yield().unwrap();
    }
    let r = co.resume(v).unwrap().as_return().unwrap();
    assert_eq!(r[0], 4);
}

#[test]
fn an_over_aligned_capture_stays_aligned() {
    #[repr(align(256))]
    #[derive(Clone, Copy)]
    struct A([u8; 256]);
    let a = A([3; 256]);
    let mut co = Coroutine::<(), u8, ()>::new(move |co, ()| {
        assert_eq!(&a as *const A as usize % 256, 0);
        co.suspend(a.0[0]);
    });
    assert_eq!(co.resume(()).unwrap().as_yield(), Some(3));
    drop(co);
    // never started
    let co = Coroutine::<(), u8, ()>::new(move |_, ()| {
        let _ = &a;
    });
    drop(co);
}

/// The destructor of an unstarted coroutine's capture suspends the
/// enclosing coroutine, which is then resumed normally: the chain reads
/// right and everything is dropped once.
#[test]
fn a_suspend_from_an_unstarted_close_then_resume() {
    use cogen::Status;
    let seen = Rc::new(std::cell::RefCell::new(Vec::new()));
    let s = seen.clone();
    let mut outer = Coroutine::<(), u32, u32>::new(move |co, ()| {
        let me = cogen::running().unwrap();
        struct SuspendOnDrop<'y>(
            &'y Yielder<(), u32>,
            cogen::CoroutineHandle,
            Rc<std::cell::RefCell<Vec<Status>>>,
        );
        impl Drop for SuspendOnDrop<'_> {
            fn drop(&mut self) {
                self.2.borrow_mut().push(self.1.status());
                self.0.suspend(1);
                self.2.borrow_mut().push(self.1.status());
                self.2.borrow_mut().push(cogen::running().unwrap().status());
            }
        }
        let guard = SuspendOnDrop(co, me.clone(), s.clone());
        let inner = ScopedCoroutine::<(), (), ()>::new(move |_, ()| {
            let _g = &guard;
        });
        let ih = inner.scope(|r| r.handle());
        assert_eq!(ih.status(), Status::Dead);
        co.suspend(2);
        7
    });
    let h = outer.handle();
    assert_eq!(outer.resume(()).unwrap().as_yield(), Some(1));
    assert_eq!(h.status(), Status::Suspended);
    let mut moved = Box::new(outer);
    assert_eq!(moved.resume(()).unwrap().as_yield(), Some(2));
    assert_eq!(moved.resume(()).unwrap().as_return(), Some(7));
    assert_eq!(h.status(), Status::Dead);
    assert_eq!(
        *seen.borrow(),
        [Status::Normal, Status::Normal, Status::Running]
    );
}

#[test]
fn a_pipeline_stage_over_a_source_of_an_array() {
    use cogen::pipeline::{PipelineExt, source};
    let r = std::panic::catch_unwind(|| {
        source([1u32; 512])
            .stage("double", |co, up| {
                for x in up {
                    co.suspend(x * 2);
                }
            })
            .map(|r| r.unwrap())
            .sum::<u32>()
    });
    match r {
        Ok(sum) => assert_eq!(sum, 1024),
        Err(p) => panic!("pipeline panicked: {}", payload_str(&*p)),
    }
}

// ---------------------------------------------------------------- bug 3
// `ScopedCoroutine<'a, ..>` has no `Drop` impl and holds `'a` only in a
// `PhantomData<&'a mut ()>`, so dropck lets `'a` end before the coroutine
// is dropped. Dropping a never-scoped coroutine still runs its body's
// captures' destructors (on its stack), which may read the borrowed data.
