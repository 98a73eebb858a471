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
