//! The stackless half of the pipeline workloads (`cfg(cogen_nightly)`):
//! `#[coroutine]` stages through cogen, the same chain as nightly `gen`
//! blocks, and the `stackless_switch` group.

use std::hint::black_box;

use cogen::pipeline::{PipelineExt, Stage, StageError};

use super::{keep, map};
use crate::harness::Harness;

/// `pipeline_3_stages/cogen_stackless`: `#[coroutine]` stages through
/// cogen's `Resumable` trait (`Stackless`, `PipelineExt::stackless_stage`).
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

/// `pipeline_3_stages/cogen_inline`: the `gen_blocks` stages as one cogen
/// `InlineChain` (`inline_source`, `InlineChain::inline_stage`): named
/// stages, a panic of any of them a `StageError` naming it, behind one
/// catch at the chain's end. Written out here, as a user writes it, rather
/// than through [`inline_chain`]: built in a helper, the same chain counted
/// 42.3 instructions per item instead of 39.3 (the optimiser's choices move
/// with the code around the chain).
pub fn cogen_inline(n: u64) -> u64 {
    let n = black_box(n);
    cogen::pipeline::inline_source("source", gen move {
        for i in 0..n {
            yield i;
        }
    })
    .inline_stage("map", |up| gen move {
        for x in up {
            yield map(x);
        }
    })
    .inline_stage("filter", |up| gen move {
        for x in up {
            if keep(x) {
                yield x;
            }
        }
    })
    .sum::<Result<u64, StageError>>()
    .unwrap()
}

/// The chain of `cogen_inline` over `0..n`, for `cogen_inline_outlined`.
#[inline(always)]
fn inline_chain(n: u64) -> impl Iterator<Item = Result<u64, StageError>> {
    cogen::pipeline::inline_source("source", gen move {
        for i in 0..n {
            yield i;
        }
    })
    .inline_stage("map", |up| gen move {
        for x in up {
            yield map(x);
        }
    })
    .inline_stage("filter", |up| gen move {
        for x in up {
            if keep(x) {
                yield x;
            }
        }
    })
}

/// `pipeline_3_stages/gen_blocks`: the same three stages as a chain of
/// hand-written nightly `gen` blocks (each an `Iterator` over the one
/// before), summed: what the compiler makes of the stages without cogen.
pub fn gen_blocks(n: u64) -> u64 {
    gen_chain(black_box(n)).sum()
}

/// The chain of `gen_blocks` over `0..n`.
#[inline(always)]
fn gen_chain(n: u64) -> impl Iterator<Item = u64> {
    let source = gen move {
        for i in 0..n {
            yield i;
        }
    };
    let mapped = gen move {
        for x in source {
            yield map(x);
        }
    };
    gen move {
        for x in mapped {
            if keep(x) {
                yield x;
            }
        }
    }
}

/// `pipeline_3_stages/gen_blocks_checked`: the `gen_blocks` chain with the
/// bookkeeping a cogen stage does, written by hand: each stage holds its
/// name (a `String`) and, before every item it hands on, checks a failure
/// flag shared through an `Rc<Cell<bool>>` (a cogen stage checks the flag
/// its upstream sets when the stage before fails). It does not catch
/// panics, which cogen's stages turn into errors. What the compiler makes
/// of stages that own something and look at shared state, against
/// `gen_blocks`, whose state has no destructor and no shared part.
pub fn gen_blocks_checked(n: u64) -> u64 {
    use std::cell::Cell;
    use std::rc::Rc;

    let n = black_box(n);
    let flags = [(); 3].map(|()| Rc::new(Cell::new(false)));
    let [source_failed, map_failed, filter_failed] = flags.clone();
    let names = ["source", "map", "filter"].map(String::from);
    let [source_name, map_name, filter_name] = names;
    let source = gen move {
        let _name = source_name;
        for i in 0..n {
            if source_failed.get() {
                return;
            }
            yield i;
        }
    };
    let mapped = gen move {
        let _name = map_name;
        for x in source {
            if map_failed.get() {
                return;
            }
            yield map(x);
        }
    };
    let filtered = gen move {
        let _name = filter_name;
        for x in mapped {
            if filter_failed.get() {
                return;
            }
            if keep(x) {
                yield x;
            }
        }
    };
    let sum = filtered.sum();
    // The flags stay shared until the end, as a stage's slot is.
    drop(black_box(flags));
    sum
}

/// `stackless_switch`: one resume round trip of a stackless coroutine
/// through cogen's `Stackless` (`cogen`) against `Coroutine::resume` on the
/// same pinned nightly coroutine (`raw_nightly`).
pub fn stackless_switch<H: Harness>(h: &mut H) {
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
    h.iter("cogen", || {
        let mut co = cogen::Stackless::new(make());
        move || match Resumable::resume(black_box(&mut co), black_box(1)) {
            Ok(CoroutineResult::Yield(total)) => black_box(total),
            _ => unreachable!(),
        }
    });
    h.iter("raw_nightly", || {
        let mut co = make();
        move || match Pin::new(black_box(&mut co)).resume(black_box(1)) {
            CoroutineState::Yielded(total) => black_box(total),
            CoroutineState::Complete(()) => unreachable!(),
        }
    });
}

/// Sums `items` in a function of its own that is never inlined: what the
/// `_outlined` ids measure, a chain built in one function and drained in
/// another, as std's `sum` of `Result`s drains it (in `try_process`) when
/// the compiler does not inline that.
#[inline(never)]
fn sum_outlined<E: std::fmt::Debug, I: Iterator<Item = Result<u64, E>>>(items: I) -> u64 {
    items.sum::<Result<u64, E>>().unwrap()
}

/// `pipeline_3_stages/cogen_inline_outlined`: `cogen_inline`'s chain, summed
/// by [`sum_outlined`].
pub fn cogen_inline_outlined(n: u64) -> u64 {
    sum_outlined(inline_chain(black_box(n)))
}

/// `pipeline_3_stages/gen_blocks_outlined`: `gen_blocks`' chain, summed by
/// [`sum_outlined`] (its items wrapped in `Ok`, as a cogen pipeline's are).
pub fn gen_blocks_outlined(n: u64) -> u64 {
    sum_outlined(gen_chain(black_box(n)).map(Ok::<u64, ()>))
}
