//! Tutorial snippet 11: a coroutine that never suspends blocks its resumer.
//!
//! Scheduling is cooperative: `resume` returns only when the body suspends
//! or finishes. The tutorial's `while true` loop would never give control
//! back; like the Lua oracle, this port runs a bounded loop of 10,000,000
//! steps and then shows that `resume` returned only after all of them.
//!
//! The body borrows the counter `n` from `main`, so it is a scoped
//! coroutine.

use std::cell::Cell;

use cogen::ScopedCoroutine;

fn main() {
    let n = Cell::new(0_u64);
    ScopedCoroutine::new(|_co: &cogen::Yielder<(), ()>, ()| {
        for _ in 0..10_000_000 {
            // was: while true do
            n.set(n.get() + 1);
            // This loop never suspends: it blocks the whole program.
        }
    })
    .scope(|co| {
        co.resume(()).expect("runs to the end"); // the program "hangs" here
        println!(
            "resume returned after {} iterations; status:\t{}",
            n.get(),
            co.status()
        );
    });
}
