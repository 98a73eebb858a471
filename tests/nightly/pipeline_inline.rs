//! The nightly half of `tests/pipeline_inline.rs`: `gen` blocks as the
//! stages of an inline chain.
//!
//! Kept in its own file because `gen` blocks are rejected by the parser on
//! stable Rust even inside code that `cfg` removes; the parent only declares
//! this module with the `nightly` feature.

use super::*;

#[test]
fn gen_blocks_are_stages() {
    let words: Vec<String> = inline_source("lines", gen {
        yield "one two";
        yield "";
        yield "three";
    })
    .inline_stage("words", |up| gen move {
        for line in up {
            for word in line.split_whitespace() {
                yield word;
            }
        }
    })
    .inline_stage("upper", |up| gen move {
        for word in up {
            yield word.to_uppercase();
        }
    })
    .collect::<Result<_, _>>()
    .unwrap();
    assert_eq!(words, ["ONE", "TWO", "THREE"]);
}

#[test]
fn a_panicking_gen_block_is_reported_by_name_and_the_chain_ends() {
    let drops = DropCounter::new();
    let token = drops.token();
    let mut chain = inline_source("numbers", 1..)
        .inline_stage("holds", move |up| gen move {
            let _held = token;
            for x in up {
                yield x;
            }
        })
        .inline_stage("fails", |up| gen move {
            for x in up {
                if x == 3 {
                    panic!("gen block failed at {x}");
                }
                yield x;
            }
        })
        .inline_stage("last", |up| gen move {
            for x in up {
                yield x * 10;
            }
        });
    assert_eq!(chain.next().unwrap().unwrap(), 10);
    assert_eq!(chain.next().unwrap().unwrap(), 20);
    let error = chain.next().unwrap().unwrap_err();
    assert_eq!(error.stage(), "fails");
    assert_eq!(panic_message(&error), "gen block failed at 3");
    // The stage before the failed one, suspended in its loop, was dropped.
    assert_eq!(drops.live(), 0);
    // A poisoned `gen` block is never resumed again.
    assert!(chain.next().is_none());
}

#[test]
fn a_gen_block_after_a_failed_pipeline_sees_the_end_of_its_input() {
    let (items, error) = split(
        source(1..=5)
            .stage("stackful", |co, up| {
                for x in up {
                    if x == 3 {
                        return Err("three");
                    }
                    co.suspend(x);
                }
                Ok(())
            })
            .inline_stage("count", |up| {
                gen move {
                    let mut n = 0;
                    for x in up {
                        n += 1;
                        yield x;
                    }
                    // Discarded: the stage before failed.
                    yield 100 + n;
                }
            }),
    );
    assert_eq!(items, [1, 2]);
    let error = error.unwrap();
    assert_eq!(error.stage(), "stackful");
    assert_eq!(error.error().unwrap().to_string(), "three");
}
