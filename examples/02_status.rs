//! Tutorial snippet 02: a coroutine's status as its owner sees it.
//!
//! The tutorial claims the second line is `running`; Lua 5.4 prints
//! `suspended`, and so does cogen: once `suspend` has handed control back,
//! the coroutine is suspended. Only code inside the coroutine sees it
//! running (see `cogen::running()`).

use cogen::Coroutine;

fn main() {
    let mut co = Coroutine::new(|co, ()| {
        co.suspend(());
    });

    println!("{}", co.status()); // suspended
    co.resume(()).expect("runs to the suspend");
    println!("{}", co.status()); // suspended (not running)
    co.resume(()).expect("runs to the end");
    println!("{}", co.status()); // dead
}
