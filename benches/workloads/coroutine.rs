//! The workloads of `benches/coroutine.rs`: cogen's typed coroutine against
//! raw corosensei, one function per group.

use std::hint::black_box;

use corosensei::stack::DefaultStack;

use crate::harness::{Harness, Timer};

/// `switch`: one resume + suspend round trip, a `usize` each way.
pub fn switch<H: Harness>(h: &mut H) {
    h.iter("cogen", || {
        let mut co = cogen::Coroutine::<usize, usize, ()>::new(|co, mut input| {
            loop {
                input = co.suspend(input);
            }
        });
        move || co.resume(black_box(1usize)).ok().and_then(|r| r.as_yield())
    });
    h.iter("corosensei", || {
        let mut raw = corosensei::Coroutine::<usize, usize, ()>::new(|y, mut input| {
            loop {
                input = y.suspend(input);
            }
        });
        move || raw.resume(black_box(1usize)).as_yield()
    });
}

/// `create`: create a coroutine, run it to completion, drop it.
pub fn create<H: Harness>(h: &mut H) {
    h.iter("cogen", || {
        // Warm the pool so the measured loop takes stacks from it.
        drop(cogen::Coroutine::<usize, (), usize>::new(|_, x| x));
        || {
            let mut co = cogen::Coroutine::<usize, (), usize>::new(|_, x| x);
            co.resume(black_box(1)).ok().and_then(|r| r.as_return())
        }
    });
    h.iter("corosensei_reused_stack", || {
        let mut stack = DefaultStack::default();
        move || {
            let co = corosensei::ScopedCoroutine::<usize, (), usize, _>::with_stack(
                &mut stack,
                |_, x| x,
            );
            co.scope(|mut co| co.resume(black_box(1)).as_return())
        }
    });
    h.iter("corosensei_fresh_stack", || {
        || {
            let mut co = corosensei::Coroutine::<usize, (), usize>::new(|_, x| x);
            co.resume(black_box(1)).as_return()
        }
    });
}

/// A value with a destructor, so the unwind has something to do.
struct Guard(usize);

impl Drop for Guard {
    fn drop(&mut self) {
        black_box(self.0);
    }
}

/// `drop_suspended`: drop (force-unwind) a coroutine suspended once; making
/// and resuming it is outside the measurement.
pub fn drop_suspended<H: Harness>(h: &mut H) {
    h.iter_timed("cogen", || {
        |t: &mut H::Timer| {
            let mut co = cogen::Coroutine::<(), (), ()>::new(|co, ()| {
                let _guard = Guard(1);
                co.suspend(());
            });
            co.resume(()).expect("suspends");
            t.start();
            drop(black_box(co));
            t.stop();
        }
    });
    h.iter_timed("corosensei", || {
        let mut stack = DefaultStack::default();
        move |t: &mut H::Timer| {
            let co =
                corosensei::ScopedCoroutine::<(), (), (), _>::with_stack(&mut stack, |y, ()| {
                    let _guard = Guard(1);
                    y.suspend(());
                });
            co.scope(|mut co| {
                co.as_mut().resume(());
                t.start();
                co.force_unwind();
                t.stop();
            });
        }
    });
}
