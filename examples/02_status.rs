//! Tutorial snippet 02: a coroutine's status as its owner sees it.
//!
//! The tutorial claims the second line is `running`; Lua 5.4 prints
//! `suspended`, and so does cogen: once `suspend` has handed control back,
//! the coroutine is suspended. Only code inside the coroutine sees it
//! running (see `cogen::running()`).

use cogen::{Coroutine, Status};

/// Lua's spelling of a status, as `coroutine.status` returns it.
fn lua_status(status: Status) -> &'static str {
    match status {
        Status::Suspended => "suspended",
        Status::Running => "running",
        Status::Normal => "normal",
        Status::Dead => "dead",
    }
}

fn main() {
    let mut co = Coroutine::new(|co, ()| {
        co.suspend(());
    });

    println!("{}", lua_status(co.status())); // suspended
    co.resume(()).expect("runs to the suspend");
    println!("{}", lua_status(co.status())); // suspended (not running)
    co.resume(()).expect("runs to the end");
    println!("{}", lua_status(co.status())); // dead
}
