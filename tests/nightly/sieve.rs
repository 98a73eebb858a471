//! The stackless stages of `tests/sieve.rs`, only parsed with the `nightly`
//! feature (`yield` and `#[coroutine]` do not parse on stable Rust).

use cogen::pipeline::{PipelineExt, Stage};

use super::Numbers;

/// Lua's `gen(n)` as a stackless generator.
pub fn generate(n: u64) -> Numbers {
    Box::new(Stage::new(
        "gen",
        cogen::Stackless::new(
            #[coroutine]
            move || {
                for i in 2..=n {
                    yield i;
                }
            },
        ),
    ))
}

/// Lua's `filter(p, g)` as a stackless stage.
pub fn filter(numbers: Numbers, name: String, p: u64) -> Numbers {
    Box::new(numbers.stackless_stage(name, move |up| {
        #[coroutine]
        move || {
            for n in up {
                if n % p != 0 {
                    yield n;
                }
            }
        }
    }))
}
