//! Tutorial snippet 05: a producer coroutine and a consumer loop.
//!
//! The Lua consumer tests `if item then`, which cannot tell an item, the
//! end of the stream and a failed producer apart (a producer error would be
//! printed as an item). Here each `resume` says which one happened: a
//! yielded item, the producer's return (end of stream), or its panic, which
//! the consumer passes on as an error.

use cogen::{Coroutine, CoroutineResult, Panic, ResumeError};

/// Generates five items, yielding each one to whoever resumes it.
fn producer() -> Coroutine<(), String> {
    Coroutine::new(|co, ()| {
        for i in 1..=5 {
            let item = format!("item-{i}");
            println!("Producing:\t{item}");
            co.suspend(item); // hand the item to the consumer
        }
    })
}

/// Processes items until the producer finishes, or reports its failure.
fn consumer(producer: &mut Coroutine<(), String>) -> Result<(), Panic> {
    loop {
        match producer.resume(()) {
            Ok(CoroutineResult::Yield(item)) => println!("Consuming:\t{item}"),
            Ok(CoroutineResult::Return(())) => return Ok(()), // end of stream
            Err(ResumeError::Panicked(panic)) => return Err(panic),
            // Only reachable if someone else finished the producer first.
            Err(ResumeError::Dead(())) => return Ok(()),
        }
    }
}

fn main() {
    let mut producer = producer();
    if let Err(panic) = consumer(&mut producer) {
        eprintln!("producer failed: {}", panic.message());
        std::process::exit(1);
    }
}
