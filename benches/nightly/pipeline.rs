//! The stackless half of `benches/pipeline.rs` (feature `nightly`).

use std::hint::black_box;
use std::time::Duration;

use cogen::pipeline::{PipelineExt, Stage, StageError};
use criterion::Criterion;

use super::{keep, map};

pub fn cogen_stackless(n: u64) -> u64 {
    let n = black_box(n);
    Stage::new(
        "source",
        cogen::Stackless::new(
            #[coroutine]
            move || {
                for i in 0..n {
                    yield i;
                }
            },
        ),
    )
    .stackless_stage("map", |up| {
        #[coroutine]
        move || {
            for x in up {
                yield map(x);
            }
        }
    })
    .stackless_stage("filter", |up| {
        #[coroutine]
        move || {
            for x in up {
                if keep(x) {
                    yield x;
                }
            }
        }
    })
    .sum::<Result<u64, StageError>>()
    .unwrap()
}

pub fn stackless_switch(c: &mut Criterion) {
    use std::ops::{Coroutine as _, CoroutineState};
    use std::pin::Pin;

    use cogen::{CoroutineResult, Resumable};

    // The same coroutine for both: adds its input to a running total.
    fn make() -> impl std::ops::Coroutine<usize, Yield = usize, Return = ()> + Unpin {
        #[coroutine]
        |mut x: usize| {
            let mut total = 0usize;
            loop {
                total = total.wrapping_add(x);
                x = yield total;
            }
        }
    }

    // The coroutine goes through `black_box` on every resume, in both: the
    // benchmark times one resume of a coroutine the optimiser cannot see
    // into, not how far LLVM can specialise a loop around a visible state
    // machine (with the raw coroutine in plain sight it peels the state
    // check out of the loop, which a real caller rarely allows).
    let mut group = c.benchmark_group("stackless_switch");
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("cogen", |b| {
        let mut co = cogen::Stackless::new(make());
        b.iter(
            || match Resumable::resume(black_box(&mut co), black_box(1)) {
                Ok(CoroutineResult::Yield(total)) => black_box(total),
                _ => unreachable!(),
            },
        )
    });
    group.bench_function("raw_nightly", |b| {
        let mut co = make();
        b.iter(|| match Pin::new(black_box(&mut co)).resume(black_box(1)) {
            CoroutineState::Yielded(total) => black_box(total),
            CoroutineState::Complete(()) => unreachable!(),
        })
    });
    group.finish();
}
