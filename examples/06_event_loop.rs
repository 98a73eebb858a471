//! Tutorial snippet 06: a round-robin event loop of two tasks.
//!
//! Lua's version is a table of coroutines that the loop resumes in turn;
//! here each task is a stackful task and `yield_now` sends it to the back
//! of the loop's FIFO run queue. Unlike the tutorial's loop, this one would
//! report a task's panic instead of dropping it, and would sleep instead of
//! spinning if every task waited.

use cogen::event_loop::{EventLoop, yield_now};

fn main() {
    let ev = EventLoop::new();

    ev.spawn(|| {
        println!("Task A: Step 1");
        yield_now();
        println!("Task A: Step 2");
    });

    ev.spawn(|| {
        println!("Task B: Start");
        yield_now();
        println!("Task B: Done");
    });

    println!("Running event loop...");
    ev.run().expect("no task panics or deadlocks");
}
