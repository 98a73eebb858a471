//! The tour's stackless section (nightly `#[coroutine]` closures).

use cogen::pipeline::{PipelineExt, source};

/// A stackless stage and a stackful one in the same typed pipeline.
pub fn section() {
    println!("\n== 10. stackless (nightly) and stackful stages mix");
    let squares: Vec<u32> = source(1..=10u32)
        .stackless_stage("evens", |up| {
            #[coroutine]
            move || {
                for x in up {
                    if x % 2 == 0 {
                        yield x;
                    }
                }
            }
        })
        .stage("square", |co, up| {
            up.for_each(|x| {
                co.suspend(x * x);
            })
        })
        .collect::<Result<_, _>>()
        .expect("no stage fails");
    println!("  even squares: {squares:?}");
}

/// Stackless tasks on the event loop: no stack each, so they scale past the
/// ~32,000 guarded stacks Linux allows a process.
pub fn tasks() {
    use cogen::event_loop::{EventLoop, Wait};

    println!("\n== 14. stackless tasks (nightly) on the event loop");
    let ev = EventLoop::new();
    let handles: Vec<_> = (0..50_000u64)
        .map(|i| {
            ev.spawn_stackless(
                #[coroutine]
                move || {
                    yield Wait::yield_now(); // every task parks once
                    i
                },
            )
        })
        .collect();
    ev.run().expect("no task fails");
    let sum: u64 = handles
        .into_iter()
        .map(|h| h.join().expect("no panic"))
        .sum();
    println!("  50,000 stackless tasks, each yielded once; their results sum to {sum}");
}
