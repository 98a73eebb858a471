//! Tutorial snippet 09: an error inside a coroutine comes back as a value.
//!
//! Lua's `error(msg)` becomes a panic in the body. `resume` catches it at
//! the root of the coroutine's stack and returns it as
//! `Err(ResumeError::Panicked(_))`; the coroutine is dead afterwards. Unlike
//! Lua, the message has no `file:line:` prefix (the default panic hook still
//! reports the location on stderr).

use cogen::{Coroutine, ResumeError};

fn main() {
    let mut co: Coroutine<(), ()> = Coroutine::new(|_co, ()| {
        panic!("Something went wrong!");
    });

    match co.resume(()) {
        Err(ResumeError::Panicked(err)) => {
            println!("Caught error:\t{}", err.message()); // Caught error: Something went wrong!
        }
        Err(ResumeError::Dead(())) => unreachable!("a fresh coroutine is not dead"),
        Ok(result) => unreachable!("the body panics, it cannot finish with {result:?}"),
    }
    assert!(co.is_dead());
}
