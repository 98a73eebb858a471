//! Tutorial snippet 03: the first `resume`'s input becomes the body's
//! argument (Lua: the function's parameters).

use cogen::Coroutine;

fn main() {
    // Input (i32, i32, i32), nothing yielded, nothing returned.
    let mut co: Coroutine<(i32, i32, i32), ()> = Coroutine::new(|_co, (a, b, c)| {
        println!("Received:\t{a}\t{b}\t{c}");
    });

    co.resume((1, 2, 3)).expect("runs to the end"); // Received: 1 2 3
}
