//! Tutorial snippet 04: the input of the second `resume` becomes the value
//! that `suspend` returns inside the body.

use cogen::Coroutine;

fn main() {
    // Every resume passes a list of words (Lua: a table); the first one's is
    // not used, as the Lua body takes no parameters.
    let mut co = Coroutine::new(|co, _first: Vec<&str>| {
        let values = co.suspend(());
        println!("Got:\t{}\t{}", values[0], values[1]);
    });

    co.resume(vec![]).expect("runs to the suspend");
    co.resume(vec!["hello", "world"]).expect("runs to the end"); // Got: hello world
}
