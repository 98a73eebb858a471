//! Tutorial snippet 01: nothing runs until the first `resume`, and each
//! `resume` runs the body up to its next `suspend`.
//!
//! Lua: `coroutine.create` / `coroutine.resume` / `coroutine.yield`.

use cogen::Coroutine;

fn main() {
    let mut co = Coroutine::new(|co, ()| {
        println!("First line");
        co.suspend(());
        println!("Third line");
    });

    println!("Before resume");
    co.resume(()).expect("runs to the first suspend"); // prints: First line
    println!("After first resume");
    co.resume(()).expect("runs to the end"); // prints: Third line
}
