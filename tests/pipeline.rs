//! Pull pipelines (stages), push pipelines (sinks), their error paths, and
//! drop counting across a pipeline dropped half way.
#![cfg_attr(
    cogen_nightly,
    feature(coroutines, coroutine_trait, stmt_expr_attributes)
)]

// Stackless stages and sinks (their syntax does not parse on stable Rust).
#[cfg(cogen_nightly)]
#[path = "nightly/pipeline.rs"]
mod nightly;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io::{self, Read};
use std::rc::Rc;

use cogen::pipeline::{
    InvalidUtf8, PipelineExt, PipelineItem, Push, Sink, Stage, StageError, read_chunks, source, tee,
};
use cogen::{Builder, Coroutine};

mod support;
use support::{DropCounter, DropToken};

/// An error and its sources, joined the way error-chain printers join them.
fn chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        out += &format!(": {cause}");
        source = cause.source();
    }
    out
}

fn ok<T>(items: impl IntoIterator<Item = PipelineItem<T>>) -> Vec<T> {
    items
        .into_iter()
        .collect::<Result<_, _>>()
        .expect("no stage fails")
}

// ---------------------------------------------------------------- pull stages

#[test]
fn one_to_many_and_many_to_one_in_straight_line_code() {
    // Tokenizer: text in, tokens out (one to many), across nested loops.
    let tokens = source(["let x = 10;", "x += 2;"]).stage("tokens", |co, up| {
        for line in up {
            let mut number = String::new();
            for c in line.chars() {
                if c.is_ascii_digit() {
                    number.push(c);
                    continue;
                }
                if !number.is_empty() {
                    co.suspend(std::mem::take(&mut number));
                }
                if !c.is_whitespace() {
                    co.suspend(c.to_string());
                }
            }
        }
    });
    // Parser: tokens in, numbers out (many to one).
    let numbers = tokens.stage("numbers", |co, up| {
        for token in up {
            if let Ok(n) = token.parse::<u32>() {
                co.suspend(n);
            }
        }
    });
    assert_eq!(ok(numbers), [10, 2]);
}

#[test]
fn stages_may_suspend_from_nested_calls() {
    fn walk(co: &cogen::Yielder<(), u32>, depth: u32, n: u32) {
        if depth == 0 {
            co.suspend(n);
        } else {
            walk(co, depth - 1, n * 2);
            walk(co, depth - 1, n * 2 + 1);
        }
    }
    let leaves = source([1u32]).stage("tree", |co, up| {
        for root in up {
            walk(co, 3, root);
        }
    });
    assert_eq!(ok(leaves), (8..16).collect::<Vec<_>>());
}

#[test]
fn lines_words_and_windowed_adapters() {
    let chunks: Vec<&[u8]> = vec![
        b"the quick",
        b" brown\nfox\r\n\njumps over\n",
        b"the lazy dog",
    ];
    let lines = ok(source(chunks.clone()).lines());
    assert_eq!(
        lines,
        ["the quick brown", "fox", "", "jumps over", "the lazy dog"]
    );
    let words = ok(source(chunks).lines().words());
    assert_eq!(words.len(), 9);
    let lengths =
        ok(source(words).windowed(4, |w: &[String]| w.iter().map(String::len).sum::<usize>()));
    assert_eq!(lengths, [3 + 5 + 5 + 3, 5 + 4 + 3 + 4, 3]);
}

#[test]
fn lines_handle_any_chunking() {
    let text = "alpha\nbeta\r\n\ngamma delta\nlast";
    let expected: Vec<&str> = text.lines().collect();
    for size in 1..=text.len() {
        let chunks: Vec<Vec<u8>> = text.as_bytes().chunks(size).map(<[u8]>::to_vec).collect();
        assert_eq!(ok(source(chunks).lines()), expected, "chunk size {size}");
    }
    assert!(ok(source(Vec::<Vec<u8>>::new()).lines()).is_empty());
}

/// Every way to cut `text` into chunks of one size, for each size.
fn every_chunking(text: &[u8]) -> impl Iterator<Item = (usize, Vec<Vec<u8>>)> + '_ {
    (1..=text.len().max(1)).map(move |size| (size, text.chunks(size).map(<[u8]>::to_vec).collect()))
}

#[test]
fn byte_lines_keep_invalid_utf8_and_go_on() {
    // Invalid bytes mid-stream, CRLF, an empty line, a last line without
    // `\n`, and a multi-byte character that some chunkings cut in two.
    let text = b"GET /\r\nbad \xff\xfe bytes\n\ncaf\xc3\xa9\r\nlast";
    let expected: Vec<&[u8]> = vec![
        b"GET /",
        b"bad \xff\xfe bytes",
        b"",
        "café".as_bytes(),
        b"last",
    ];
    for (size, chunks) in every_chunking(text) {
        assert_eq!(
            ok(source(chunks).byte_lines()),
            expected,
            "chunk size {size}"
        );
    }
    assert!(ok(source(Vec::<Vec<u8>>::new()).byte_lines()).is_empty());
    assert!(ok(source([b""]).byte_lines()).is_empty());
    // A lone `\n` is one empty line; a `\r` not before `\n` stays.
    assert_eq!(ok(source([b"\n"]).byte_lines()), [b""]);
    assert_eq!(ok(source([&b"a\rb\r"[..]]).byte_lines()), [b"a\rb\r"]);
}

#[test]
fn an_unterminated_last_line_keeps_its_carriage_return_as_std_does() {
    // Only a `\r` before a `\n` is part of a line's end: a last line with
    // no `\n` after it keeps its `\r`, as `BufRead::lines` keeps it, in
    // all three line splitters and however the text is cut into chunks.
    for text in [
        &b"abc\r"[..],
        b"x\ny\r",
        b"\r",
        b"a\r\r\n",
        b"a\r\nb\r\n",
        b"a\r\nb\r",
    ] {
        let expected: Vec<String> = io::BufRead::lines(text).map(Result::unwrap).collect();
        for (size, chunks) in every_chunking(text) {
            let context = format!("{:?} in chunks of {size}", String::from_utf8_lossy(text));
            assert_eq!(ok(source(chunks.clone()).lines()), expected, "{context}");
            assert_eq!(
                ok(source(chunks.clone()).lossy_lines()),
                expected,
                "{context}"
            );
            let bytes: Vec<Vec<u8>> = expected.iter().map(|l| l.clone().into_bytes()).collect();
            assert_eq!(ok(source(chunks).byte_lines()), bytes, "{context}");
        }
    }
    assert_eq!(ok(source([&b"abc\r"[..]]).lines()), ["abc\r"]);
    assert_eq!(
        ok(source([&b"x\ny\r"[..]]).byte_lines()),
        [&b"x"[..], b"y\r"]
    );
    // A `\r` that ends one chunk and a `\n` that starts the next are one
    // line end.
    let chunks = [&b"a\r"[..], b"\nb\r", b"\n"];
    assert_eq!(ok(source(chunks).lines()), ["a", "b"]);
    assert_eq!(ok(source(chunks).byte_lines()), [b"a", b"b"]);
}

#[test]
fn lossy_lines_replace_invalid_utf8_and_go_on() {
    let text = b"GET /\r\nbad \xff\xfe bytes\n\ncaf\xc3\xa9\r\ntruncated \xe2\x82\nlast";
    let expected = [
        "GET /",
        "bad \u{FFFD}\u{FFFD} bytes",
        "",
        "café",
        "truncated \u{FFFD}",
        "last",
    ];
    for (size, chunks) in every_chunking(text) {
        assert_eq!(
            ok(source(chunks).lossy_lines()),
            expected,
            "chunk size {size}"
        );
    }
    assert!(ok(source(Vec::<Vec<u8>>::new()).lossy_lines()).is_empty());
    // `lines` fails at the same input, `lossy_lines` reads to its end.
    assert!(source([&text[..]]).lines().any(|line| line.is_err()));
    let through_reader = ok(read_chunks(&text[..], 3).lossy_lines());
    assert_eq!(through_reader, expected);
}

#[test]
fn read_chunks_reads_a_reader_in_chunks() {
    let data: Vec<u8> = (0..=255).cycle().take(1000).collect();
    let chunks = ok(read_chunks(&data[..], 300));
    assert_eq!(
        chunks.iter().map(Vec::len).collect::<Vec<_>>(),
        [300, 300, 300, 100]
    );
    assert_eq!(chunks.concat(), data);
}

/// Hands out at most 1000 bytes a read.
struct Dribble<'a>(&'a [u8]);

impl Read for Dribble<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(1000).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn read_chunks_with_a_chunk_size_larger_than_the_reader_gives_what_there_is() {
    // A chunk size far beyond the memory there is: only the bytes read are
    // held, in one short chunk.
    assert_eq!(ok(read_chunks(&b"hello"[..], 1 << 40)), [b"hello"]);
    // Chunks larger than what is reserved before the reads still hold
    // `chunk_size` bytes each, however few bytes each read hands out.
    let data: Vec<u8> = (0..=255).cycle().take(200_000).collect();
    let chunks = ok(read_chunks(Dribble(&data), 150_000));
    assert_eq!(
        chunks.iter().map(Vec::len).collect::<Vec<_>>(),
        [150_000, 50_000]
    );
    assert_eq!(chunks.concat(), data);
}

#[test]
fn read_chunks_larger_than_the_first_reservation_hold_about_their_bytes() {
    // A chunk that grew past what was reserved for it (64 KiB, as
    // `read_chunks` documents) gives back the room it grew into: a consumer
    // that keeps chunks holds their bytes, not up to twice as much.
    let data = vec![7u8; 1 << 20];
    for size in [65_537usize, 100_000, 300_000] {
        for chunk in ok(read_chunks(&data[..], size)) {
            assert!(
                chunk.capacity() <= (chunk.len() + chunk.len() / 8).max(64 * 1024),
                "chunk size {size}: {} bytes in {} of room",
                chunk.len(),
                chunk.capacity()
            );
        }
    }
}

#[test]
fn windowed_with_a_size_larger_than_the_stream_gives_one_short_window() {
    let sum = |w: &[u64]| w.iter().sum::<u64>();
    assert_eq!(ok(source([1u64, 2, 3]).windowed(1 << 40, sum)), [6]);
    // Windows larger than what is reserved before their items come.
    let sums = ok(source(0..250u64).windowed(100, sum));
    assert_eq!(
        sums,
        [(0..100).sum::<u64>(), (100..200).sum(), (200..250).sum()]
    );
}

#[test]
fn stage_with_takes_any_resumable() {
    let squares = source(1..=4u64).stage_with("squares", |up| {
        Builder::new()
            .stack_size(64 * 1024)
            .name("custom")
            .build(move |co, ()| {
                for x in up {
                    co.suspend(x * x);
                }
            })
    });
    assert_eq!(squares.name(), "squares");
    assert_eq!(squares.get_ref().name(), Some("custom"));
    assert_eq!(ok(squares), [1, 4, 9, 16]);
}

// ---------------------------------------------------------------- pull errors

#[derive(Debug)]
struct TooBig(u32);

impl std::fmt::Display for TooBig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is too big", self.0)
    }
}

impl std::error::Error for TooBig {}

#[test]
fn an_err_reaches_the_consumer_naming_the_stage() {
    let downstream_saw_end = Rc::new(Cell::new(false));
    let seen = downstream_saw_end.clone();
    let items: Vec<PipelineItem<u32>> = source(1..=10u32)
        .stage("check", |co, up| {
            for x in up {
                if x > 3 {
                    return Err(TooBig(x));
                }
                co.suspend(x);
            }
            Ok(())
        })
        .stage("pass", move |co, up| {
            for x in up {
                co.suspend(x);
            }
            seen.set(true);
        })
        .collect();
    assert_eq!(items.len(), 4, "three items, one error, then the end");
    assert_eq!(
        items[..3]
            .iter()
            .map(|r| *r.as_ref().unwrap())
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
    let error = items[3].as_ref().unwrap_err();
    assert_eq!(error.stage(), "check");
    assert!(!error.is_panic());
    assert!(error.panic().is_none());
    let cause = error.error().unwrap().downcast_ref::<TooBig>().unwrap();
    assert_eq!(cause.0, 4);
    // `Display` says only what failed; the stage's error is the source.
    assert_eq!(error.to_string(), "stage 'check' failed");
    assert_eq!(chain(error), "stage 'check' failed: 4 is too big");
    // The stage after the failed one saw the end of its input, and ran to
    // its end (its output, if any, was discarded).
    assert!(downstream_saw_end.get());
}

/// A source that hands on `good` items, then fails.
fn failing_after(good: u32) -> impl Iterator<Item = PipelineItem<u32>> {
    source(1..=good + 1).stage("read", move |co, up| {
        for x in up {
            if x > good {
                return Err(TooBig(x));
            }
            co.suspend(x);
        }
        Ok(())
    })
}

/// Holds a stage's upstream and pulls from it when dropped.
struct PullOnDrop<U: Iterator<Item = u32>> {
    up: U,
    pulled: Rc<Cell<Option<Option<u32>>>>,
}

impl<U: Iterator<Item = u32>> Drop for PullOnDrop<U> {
    fn drop(&mut self) {
        self.pulled.set(Some(self.up.next()));
    }
}

#[test]
fn an_upstream_is_fused_over_cogen_stages_and_fuse_makes_it_so_over_any_source() {
    use cogen::pipeline::Upstream;
    use std::iter::FusedIterator;

    fn fused<I: FusedIterator>(_: &I) {}
    // Over a stage of cogen's: `None` for good once the stage before failed,
    // however often the body pulls.
    let failing = source([1u32, 2, 3]).stage("fail", |co, up| -> Result<(), &'static str> {
        for x in up {
            if x == 2 {
                return Err("bad input");
            }
            co.suspend(x);
        }
        Ok(())
    });
    let seen: Rc<RefCell<Vec<Option<u32>>>> = Rc::default();
    let log = seen.clone();
    let mut next = failing.stage("pull", move |_co: &cogen::Yielder<(), u32>, mut up| {
        fused(&up);
        *log.borrow_mut() = (0..4).map(|_| up.next()).collect();
    });
    assert_eq!(next.next().unwrap().unwrap_err().stage(), "fail");
    assert!(next.next().is_none());
    assert_eq!(*seen.borrow(), [Some(1), None, None, None]);

    // Over a `Vec` of results, which goes on after its `Err`: not fused
    // (std's `Fuse` then keeps a flag of its own), and `fuse` ends it.
    type VecUpstream = Upstream<std::vec::IntoIter<PipelineItem<u32>>>;
    static_assertions::assert_not_impl_any!(VecUpstream: FusedIterator);
    let items: Vec<PipelineItem<u32>> = vec![Ok(1), Err(StageError::new("src", "bad")), Ok(2)];
    let log = seen.clone();
    let mut next = items
        .into_iter()
        .stage("pull", move |_co: &cogen::Yielder<(), u32>, up| {
            let mut up = up.fuse();
            *log.borrow_mut() = (0..4).map(|_| up.next()).collect();
        });
    assert_eq!(next.next().unwrap().unwrap_err().stage(), "src");
    assert!(next.next().is_none());
    assert_eq!(*seen.borrow(), [Some(1), None, None, None]);
}

#[test]
fn a_destructor_that_pulls_from_a_failing_upstream_while_unwinding_gets_none() {
    // The stage panics; a destructor on its way out pulls, and the upstream
    // fails just then: the pull ends the input (a second unwinding there
    // would abort the process). The consumer gets the upstream's error,
    // which the stage's end finds recorded, as for any failure before the
    // stage's own.
    let pulled = Rc::new(Cell::new(None));
    let seen = pulled.clone();
    let items: Vec<PipelineItem<u32>> = failing_after(1)
        .stage("pull on drop", move |co, mut up| {
            let first = up.next().unwrap();
            co.suspend(first);
            let _guard = PullOnDrop { up, pulled: seen };
            // (Conditional: a body of type `!` is a stage only on nightly.)
            if first == 1 {
                panic!("the stage's own panic");
            }
        })
        .collect();
    assert_eq!(pulled.get(), Some(None));
    assert_eq!(items.len(), 2);
    assert_eq!(*items[0].as_ref().unwrap(), 1);
    assert_eq!(items[1].as_ref().unwrap_err().stage(), "read");
}

#[test]
fn an_upstream_pulled_from_a_nested_coroutine_fails_the_stage_with_its_error() {
    // The body hands its upstream to a coroutine of its own, which sees the
    // end of its input when the upstream fails; whatever the body does
    // then, the consumer gets the upstream's error.
    let items: Vec<PipelineItem<u32>> = failing_after(2)
        .stage("nested", |co, up| {
            let mut inner = Coroutine::<(), u32, ()>::new(move |inner, ()| {
                for x in up {
                    inner.suspend(x * 10);
                }
            });
            loop {
                match inner.resume(()) {
                    Ok(cogen::CoroutineResult::Yield(x)) => co.suspend(x),
                    Ok(cogen::CoroutineResult::Return(())) => break,
                    Err(error) => panic!("the inner coroutine failed: {error}"),
                }
            }
        })
        .collect();
    assert_eq!(items.len(), 3);
    assert_eq!(*items[1].as_ref().unwrap(), 20);
    let error = items[2].as_ref().unwrap_err();
    assert_eq!(error.stage(), "read");
    assert!(!error.is_panic());
}

#[test]
fn a_stage_that_ended_stays_ended_when_an_upstream_it_gave_away_fails_later() {
    // The body hands its upstream out and returns: the stage ends. The
    // upstream, pulled afterwards, fails; the stage is fused and says
    // nothing more (its error went to whoever pulled).
    type Escaped = Rc<RefCell<Option<Box<dyn Iterator<Item = u32>>>>>;
    let slot: Escaped = Rc::new(RefCell::new(None));
    let keep = slot.clone();
    let mut stage = failing_after(0).stage(
        "gives its input away",
        move |_co: &cogen::Yielder<(), u32>, up| {
            *keep.borrow_mut() = Some(Box::new(up));
        },
    );
    assert!(stage.next().is_none());
    let pulled = slot.borrow_mut().as_mut().unwrap().next();
    assert_eq!(pulled, None, "the failure ends the escaped upstream");
    assert!(stage.next().is_none());
    assert!(stage.next().is_none());
}

#[test]
fn a_panic_reaches_the_consumer_as_a_value_and_every_stage_is_cleaned_up() {
    let drops = DropCounter::new();
    let (d1, d2, d3) = (drops.clone(), drops.clone(), drops.clone());
    let mut pipeline = source(0..100u32)
        .stage("first", move |co, up| {
            let _guard = d1.token();
            for x in up {
                co.suspend(x);
            }
        })
        .stage("explodes", move |co, up| {
            let _guard = d2.token();
            for x in up {
                if x == 2 {
                    std::panic::panic_any(x);
                }
                co.suspend(x);
            }
        })
        .stage("last", move |co, up| {
            let _guard = d3.token();
            for x in up {
                co.suspend(x);
            }
        });
    assert_eq!(pipeline.next().unwrap().unwrap(), 0);
    assert_eq!(pipeline.next().unwrap().unwrap(), 1);
    let error = pipeline.next().unwrap().unwrap_err();
    assert_eq!(error.stage(), "explodes");
    assert!(error.is_panic());
    let panic = error.try_into_panic().unwrap();
    assert_eq!(panic.downcast_ref::<u32>(), Some(&2));
    assert_eq!(panic.coroutine_name(), Some("explodes"));
    assert!(pipeline.next().is_none());
    assert!(pipeline.next().is_none());
    // "explodes" unwound (its guard dropped, which dropped "first" with its
    // upstream), and "last" was closed after it saw the end: all three once.
    assert_eq!(drops.count(), 3);
    drop(pipeline);
    assert_eq!(drops.count(), 3);
}

struct FailingReader {
    good: usize,
}

impl Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.good == 0 {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "disk on fire"));
        }
        let n = buf.len().min(self.good);
        buf[..n].fill(b'x');
        self.good -= n;
        Ok(n)
    }
}

#[test]
fn a_read_error_is_named_and_distinct_from_the_end() {
    let items: Vec<PipelineItem<String>> =
        read_chunks(FailingReader { good: 10 }, 4).lines().collect();
    // The 10 good bytes are one unfinished line: discarded with the failure.
    assert_eq!(items.len(), 1);
    let error = items[0].as_ref().unwrap_err();
    assert_eq!(error.stage(), "read");
    let io = error.error().unwrap().downcast_ref::<io::Error>().unwrap();
    assert_eq!(io.kind(), io::ErrorKind::BrokenPipe);
    assert_eq!(error.to_string(), "stage 'read' failed");
    assert_eq!(chain(error), "stage 'read' failed: disk on fire");
}

#[test]
fn invalid_utf8_fails_the_lines_stage_with_the_line_number() {
    let chunks: Vec<&[u8]> = vec![b"ok\nstill ok\n", b"bad \xff byte\nnever seen\n"];
    let items: Vec<PipelineItem<String>> = source(chunks).lines().collect();
    assert_eq!(items.len(), 3);
    assert_eq!(items[1].as_ref().unwrap(), "still ok");
    let error = items[2].as_ref().unwrap_err();
    assert_eq!(error.stage(), "lines");
    let cause = error
        .error()
        .unwrap()
        .downcast_ref::<InvalidUtf8>()
        .unwrap();
    assert_eq!(cause.line(), 3);
}

#[test]
fn a_custom_source_error_passes_through_later_stages() {
    let items = vec![
        Ok(1),
        Ok(2),
        Err(StageError::new("sensor", "unplugged")),
        Ok(3),
    ];
    let out: Vec<PipelineItem<i32>> = items
        .into_iter()
        .stage("double", |co, up| {
            for x in up {
                co.suspend(x * 2);
            }
        })
        .stage("inc", |co, up| {
            for x in up {
                co.suspend(x + 1);
            }
        })
        .collect();
    assert_eq!(out.len(), 3);
    assert_eq!(*out[1].as_ref().unwrap(), 5);
    assert_eq!(out[2].as_ref().unwrap_err().stage(), "sensor");
}

#[test]
fn a_named_producer_stage_turns_its_panic_into_an_error() {
    let mut producer = Stage::new(
        "producer",
        cogen::generator(|co| {
            co.suspend(1);
            if cogen::is_yieldable() {
                panic!("out of items");
            }
        }),
    );
    assert_eq!(producer.name(), "producer");
    assert_eq!(producer.next().unwrap().unwrap(), 1);
    let error = producer.next().unwrap().unwrap_err();
    assert_eq!(error.to_string(), "stage 'producer' panicked");
    // The source is the panic (of an unnamed coroutine here).
    assert_eq!(
        chain(&error),
        "stage 'producer' panicked: coroutine panicked: out of items"
    );
    assert!(producer.next().is_none());
}

#[cfg(cogen_nightly)]
#[test]
fn an_endless_producer_is_a_stage_too() {
    // The body's type is `!`: it never returns.
    let naturals = Stage::new(
        "naturals",
        cogen::generator(|co| {
            let mut n = 0u64;
            loop {
                co.suspend(n);
                n += 1;
            }
        }),
    );
    let squares = naturals.stage("squares", |co, up| {
        for n in up {
            co.suspend(n * n);
        }
    });
    assert_eq!(ok(squares.take(4)), [0, 1, 4, 9]);
}

// ---------------------------------------------------------------- pull drops

/// A value that counts its drops, carried through the pipeline.
struct Item(
    u32,
    #[expect(dead_code, reason = "only its drop counts")] DropToken,
);

#[test]
fn dropping_a_pipeline_half_way_runs_every_destructor_once() {
    let guards = DropCounter::new();
    let items = DropCounter::new();
    let made = Rc::new(Cell::new(0));
    let (g1, g2, g3) = (guards.clone(), guards.clone(), guards.clone());
    let (it, m) = (items.clone(), made.clone());
    let source_items = (0..1000).map(move |i| {
        m.set(m.get() + 1);
        Ok(Item(i, it.token()))
    });
    let mut pipeline = source_items
        .stage("hold", move |co, up| {
            let _guard = g1.token();
            // Holds one item across each suspend.
            let mut held: Option<Item> = None;
            for item in up {
                if let Some(prev) = held.replace(item) {
                    co.suspend(prev);
                }
            }
        })
        .stage("batch", move |co, up| {
            let _guard = g2.token();
            let mut batch = Vec::new();
            for item in up {
                batch.push(item);
                if batch.len() == 3 {
                    co.suspend(std::mem::take(&mut batch));
                }
            }
        })
        .stage("flatten", move |co, up| {
            let _guard = g3.token();
            for batch in up {
                for item in batch {
                    co.suspend(item);
                }
            }
        });
    let first: Vec<u32> = pipeline.by_ref().take(4).map(|r| r.unwrap().0).collect();
    assert_eq!(first, [0, 1, 2, 3]);
    assert_eq!(guards.count(), 0);
    drop(pipeline);
    assert_eq!(guards.count(), 3, "each stage's guard dropped once");
    assert_eq!(items.count(), made.get(), "each item made was dropped once");
    assert!(made.get() < 1000, "the source was not drained");
}

#[test]
fn dropping_an_unstarted_pipeline_drops_captured_values_once() {
    let drops = DropCounter::new();
    let (d1, d2) = (drops.token(), drops.token());
    let pipeline = source([1, 2])
        .stage("a", move |co, up| {
            let _g = d1;
            up.for_each(|x| {
                co.suspend(x);
            });
        })
        .stage("b", move |co, up| {
            let _g = d2;
            up.for_each(|x| {
                co.suspend(x);
            });
        });
    drop(pipeline);
    assert_eq!(
        (drops.count(), drops.live()),
        (2, 0),
        "both captures were dropped"
    );
}

// ---------------------------------------------------------------- push sinks

#[test]
fn a_sink_returns_its_result_at_the_end_of_the_stream() {
    let mut stats = Sink::new("stats", |items| {
        let (mut n, mut sum) = (0, 0);
        for x in items {
            n += 1;
            sum += x;
        }
        (n, sum)
    });
    assert!(stats.is_open());
    for x in [3, 4, 5] {
        assert!(stats.send(x));
    }
    assert_eq!(stats.finish().unwrap(), (3, 12));
}

#[test]
fn a_sink_with_no_items_still_returns() {
    let count = Sink::new("count", |items: cogen::pipeline::SinkInput<'_, u8>| {
        items.count()
    });
    assert_eq!(count.finish().unwrap(), 0);
}

#[test]
fn the_producer_and_consumer_interleave_like_lua() {
    // The tutorial's producer/consumer, with the consumer as the coroutine.
    let log = Rc::new(RefCell::new(Vec::new()));
    let consumer_log = log.clone();
    let mut consumer = Sink::new("consumer", move |items| {
        for item in items {
            consumer_log
                .borrow_mut()
                .push(format!("Consuming:\t{item}"));
        }
        "consumer done"
    });
    for i in 1..=3 {
        let item = format!("item-{i}");
        log.borrow_mut().push(format!("Producing:\t{item}"));
        assert!(consumer.send(item));
    }
    assert_eq!(consumer.finish().unwrap(), "consumer done");
    assert_eq!(
        *log.borrow(),
        [
            "Producing:\titem-1",
            "Consuming:\titem-1",
            "Producing:\titem-2",
            "Consuming:\titem-2",
            "Producing:\titem-3",
            "Consuming:\titem-3",
        ]
    );
}

#[test]
fn a_consumer_that_returns_early_stops_the_producer() {
    let pulled = Rc::new(Cell::new(0));
    let p = pulled.clone();
    let producer = source((0..100).inspect(move |_| p.set(p.get() + 1)));
    let first_three = Sink::new("take 3", |items| items.take(3).collect::<Vec<u32>>());
    assert_eq!(first_three.feed(producer).unwrap(), [0, 1, 2]);
    assert_eq!(
        pulled.get(),
        3,
        "nothing was pulled after the consumer returned"
    );
}

#[test]
fn sending_to_a_finished_sink_returns_false_and_drops_the_item() {
    let drops = DropCounter::new();
    let mut sink = Sink::new("one", |mut items| items.next().map(|i: Item| i.0));
    assert!(
        !sink.send(Item(7, drops.token())),
        "returned after one item"
    );
    assert!(!sink.is_open());
    assert!(!sink.send(Item(8, drops.token())));
    assert_eq!(drops.count(), 2);
    assert_eq!(sink.finish().unwrap(), Some(7));
}

#[test]
fn a_consumer_panic_comes_back_from_finish_naming_it() {
    let drops = DropCounter::new();
    let d = drops.clone();
    let mut sink = Sink::new("picky", move |items| {
        let _guard = d.token();
        for x in items {
            assert!(x < 2, "cannot take {x}");
        }
    });
    assert!(sink.send(0));
    assert!(sink.send(1));
    assert!(!sink.send(2));
    assert_eq!(drops.count(), 1, "unwound by the panic");
    let error = sink.finish().unwrap_err();
    assert_eq!(error.stage(), "picky");
    assert_eq!(error.to_string(), "stage 'picky' panicked");
    assert_eq!(error.panic().unwrap().message(), "cannot take 2");
}

#[test]
fn a_producer_failure_closes_the_consumer_and_is_returned() {
    let drops = DropCounter::new();
    let returned = Rc::new(Cell::new(false));
    let (d, r) = (drops.clone(), returned.clone());
    let sink = Sink::new("sum", move |items| {
        let _guard = d.token();
        let sum: u32 = items.sum();
        r.set(true);
        sum
    });
    let producer = Stage::new(
        "producer",
        cogen::generator(|co| {
            co.suspend(1);
            co.suspend(2);
            Err::<(), _>("ran dry")
        }),
    );
    let error = sink.feed(producer).unwrap_err();
    assert_eq!(error.stage(), "producer");
    assert_eq!(chain(&error), "stage 'producer' failed: ran dry");
    // The consumer did not see a normal end: it was unwound, not returned.
    assert!(!returned.get());
    assert_eq!(drops.count(), 1);
}

#[test]
fn dropping_an_unfinished_sink_closes_the_consumer() {
    let drops = DropCounter::new();
    let d = drops.clone();
    let mut sink = Sink::new("held", move |items| {
        let _guard = d.token();
        items.count()
    });
    assert!(sink.send(()));
    drop(sink);
    assert_eq!(drops.count(), 1);
}

#[test]
fn tee_feeds_two_consumers_and_returns_both() {
    let words = Sink::new("words", |items| items.count());
    let letters = Sink::new("letters", |items| {
        items.map(|w: &str| w.len()).sum::<usize>()
    });
    let (w, l) = tee(words, letters)
        .feed(source(["to", "be", "or"]))
        .unwrap();
    assert_eq!((w, l), (3, 6));
}

#[test]
fn tee_keeps_feeding_one_consumer_after_the_other_stops() {
    let first = Sink::new("first", |mut items| items.next());
    let all = Sink::new("all", |items| items.collect::<Vec<u8>>());
    let (first, all) = tee(first, all).feed(source(1..=4)).unwrap();
    assert_eq!(first, Some(1));
    assert_eq!(all, [1, 2, 3, 4]);
}

#[test]
fn tee_reports_the_first_failed_consumer() {
    let ok_sink = Sink::new("fine", |items| items.count());
    let bad = Sink::new("bad", |items| {
        for x in items {
            if x == 3 {
                panic!("three");
            }
        }
    });
    let error = tee(ok_sink, bad).feed(source(1..=5)).unwrap_err();
    assert_eq!(error.stage(), "bad");
}

#[test]
fn a_vec_of_sinks_fans_out() {
    let sinks: Vec<_> = (1..=3u32)
        .map(|k| {
            Sink::new(format!("multiples of {k}"), move |items| {
                items.filter(|x: &u32| x.is_multiple_of(k)).count()
            })
        })
        .collect();
    assert_eq!(sinks.feed(source(1..=12)).unwrap(), [12, 6, 4]);
}

#[test]
fn pull_stages_feed_push_sinks() {
    let counts = Sink::new("count", |words| {
        let mut counts: HashMap<String, u32> = HashMap::new();
        for w in words {
            *counts.entry(w).or_default() += 1;
        }
        counts
    });
    let text: &[u8] = b"a b a\nc a b\n";
    let counts = counts.feed(read_chunks(text, 3).lines().words()).unwrap();
    assert_eq!(counts["a"], 3);
    assert_eq!(counts["b"], 2);
    assert_eq!(counts["c"], 1);
}

#[test]
fn a_sink_over_a_dead_coroutine_reports_it() {
    let mut co: Coroutine<Option<u8>, (), ()> = Coroutine::new(|_, _| ());
    co.resume(None).unwrap();
    let mut sink = Sink::from_resumable("gone", co);
    assert!(!sink.send(1));
    let error = sink.finish().unwrap_err();
    assert_eq!(error.stage(), "gone");
    assert_eq!(
        chain(&error),
        "stage 'gone' failed: the consumer coroutine was already dead"
    );
}

#[test]
fn a_stage_over_a_finished_generator_is_empty() {
    let mut g = cogen::generator(|co| co.suspend(1u8));
    assert_eq!(g.by_ref().count(), 1);
    let mut stage = Stage::new("spent", g);
    assert!(stage.next().is_none());
    assert!(stage.next().is_none());
}

#[test]
fn a_sink_over_a_custom_resumable() {
    // Any `Resumable<Option<T>, Yield = ()>` works, e.g. a hand-built coroutine.
    let co: Coroutine<Option<u8>, (), usize> = Coroutine::new(|co, mut item: Option<u8>| {
        let mut n = 0;
        while item.is_some() {
            n += 1;
            item = co.suspend(());
        }
        n
    });
    let sink = Sink::from_resumable("manual", co);
    assert_eq!(sink.name(), "manual");
    assert_eq!(sink.feed(source([1, 2, 3])).unwrap(), 3);
}

// ---------------------------------------------------------------- property

/// What a stage of the random pipelines does to the items it pulls.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// One in, one out.
    Map,
    /// One in, zero or one out.
    Filter,
    /// One in, two out.
    Dup,
    /// Two in, one out; a leftover item comes out at the end of the input.
    Pair,
}

/// Where a stage fails: when it pulls its `at`th input (from 1).
#[derive(Clone, Copy, Debug)]
struct Fault {
    at: usize,
    panics: bool,
}

/// An item whose drop is counted; the items a stage makes from it count in
/// the same counter (one per test case).
struct Tracked(u32, DropToken);

impl Tracked {
    fn new(value: u32, ledger: &DropCounter) -> Self {
        Tracked(value, ledger.token())
    }
}

type Tracks = Box<dyn Iterator<Item = PipelineItem<Tracked>>>;

/// The stage's work on one input: what it hands on, given what it held.
fn step(kind: Kind, item: Tracked, held: &mut Option<Tracked>, out: &mut Vec<Tracked>) {
    let ledger = item.1.counter();
    match kind {
        Kind::Map => out.push(Tracked::new(item.0 * 2 + 1, &ledger)),
        Kind::Filter => {
            if !item.0.is_multiple_of(3) {
                out.push(item);
            }
        }
        Kind::Dup => {
            out.push(Tracked::new(item.0 + 1, &ledger));
            out.push(item);
        }
        Kind::Pair => match held.take() {
            None => *held = Some(item),
            Some(first) => out.push(Tracked::new(first.0 + item.0, &ledger)),
        },
    }
}

/// The same work on plain numbers, for the model.
fn model_stage(kind: Kind, input: &[u32], flush: bool) -> Vec<u32> {
    let ledger = DropCounter::new();
    let mut held = None;
    let mut out = Vec::new();
    for &x in input {
        step(kind, Tracked::new(x, &ledger), &mut held, &mut out);
    }
    if flush {
        out.extend(held);
    }
    out.iter().map(|t| t.0).collect()
}

/// What the consumer should see: the items, then the failing stage if any.
fn model(
    n: u32,
    stages: &[(Kind, bool)],
    fault: Option<(usize, Fault)>,
) -> (Vec<u32>, Option<String>) {
    let mut items: Vec<u32> = (0..n).collect();
    let mut failed = None;
    for (i, &(kind, _)) in stages.iter().enumerate() {
        match fault {
            // A failed stage's output so far goes on; later stages see the
            // end of their input, and their end-of-input output is dropped.
            _ if failed.is_some() => items = model_stage(kind, &items, false),
            Some((f, fault)) if f == i && fault.at <= items.len() => {
                items = model_stage(kind, &items[..fault.at - 1], false);
                failed = Some(format!("stage {i}"));
            }
            _ => items = model_stage(kind, &items, true),
        }
    }
    (items, failed)
}

/// Builds stage `i` as a stackful coroutine.
fn stackful_stage(
    up: Tracks,
    i: usize,
    kind: Kind,
    fault: Option<Fault>,
    guards: DropCounter,
) -> Tracks {
    Box::new(up.stage(format!("stage {i}"), move |co, up| {
        let _guard = guards.token();
        let mut held = None;
        let mut out = Vec::new();
        for (n, item) in up.enumerate() {
            if let Some(fault) = fault.filter(|f| f.at == n + 1) {
                if fault.panics {
                    panic!("stage {i} panics");
                }
                return Err(format!("stage {i} fails"));
            }
            step(kind, item, &mut held, &mut out);
            for item in out.drain(..) {
                co.suspend(item);
            }
        }
        if let Some(item) = held {
            co.suspend(item);
        }
        Ok(())
    }))
}

fn kind_strategy() -> impl proptest::strategy::Strategy<Value = Kind> {
    use proptest::prelude::*;
    prop_oneof![
        Just(Kind::Map),
        Just(Kind::Filter),
        Just(Kind::Dup),
        Just(Kind::Pair)
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]

    /// Random pipelines of random stages (stackful, or with the `nightly`
    /// feature a random mix with stackless ones), with a random failure
    /// (an `Err` or a panic at a random input of a random stage), pulled a
    /// random number of times and dropped: the consumer sees what the model
    /// says, the failure names the right stage, every item made is dropped
    /// once, and every stage body's guard is dropped.
    #[test]
    fn random_pipelines_agree_with_the_model(
        n in 0u32..24,
        stages in proptest::collection::vec((kind_strategy(), proptest::bool::ANY), 1..5),
        fault in proptest::option::of((0usize..5, 1usize..12, proptest::bool::ANY)),
        pulls in 0usize..60,
    ) {
        let fault = fault
            .filter(|&(i, _, _)| i < stages.len())
            .map(|(i, at, panics)| (i, Fault { at, panics }));
        let (expected, failed) = model(n, &stages, fault);

        let ledger = DropCounter::new();
        let guards = DropCounter::new();
        let source_ledger = ledger.clone();
        let mut pipeline: Tracks =
            Box::new((0..n).map(move |x| Ok(Tracked::new(x, &source_ledger))));
        for (i, &(kind, stackless)) in stages.iter().enumerate() {
            let stage_fault = fault.filter(|&(f, _)| f == i).map(|(_, f)| f);
            pipeline = if stackless && cfg!(cogen_nightly) {
                #[cfg(cogen_nightly)]
                {
                    nightly::stackless_stage(pipeline, i, kind, stage_fault, guards.clone())
                }
                #[cfg(not(cogen_nightly))]
                unreachable!()
            } else {
                stackful_stage(pipeline, i, kind, stage_fault, guards.clone())
            };
        }

        let mut seen = Vec::new();
        let mut error = None;
        for item in pipeline.by_ref().take(pulls) {
            match item {
                Ok(t) => seen.push(t.0),
                Err(e) => {
                    proptest::prop_assert!(error.is_none(), "one error at most");
                    error = Some(e);
                }
            }
        }
        let complete = seen.len() + usize::from(error.is_some()) < pulls;
        proptest::prop_assert_eq!(&seen[..], &expected[..seen.len()]);
        if complete {
            // The stream ended within `pulls`: all of it was seen.
            proptest::prop_assert_eq!(&seen, &expected);
            proptest::prop_assert_eq!(error.as_ref().map(|e| e.stage().to_owned()), failed.clone());
            if let (Some(e), Some((_, f))) = (&error, fault) {
                proptest::prop_assert_eq!(e.is_panic(), f.panics);
            }
            proptest::prop_assert!(pipeline.next().is_none(), "fused");
        }
        drop(error);
        drop(pipeline);
        proptest::prop_assert_eq!(ledger.live(), 0, "items dropped once");
        proptest::prop_assert_eq!(guards.live(), 0, "every stage body dropped its guard");
    }
}

/// A panic payload whose own destructor panics.
struct PanicsAgainWhenDropped;

impl Drop for PanicsAgainWhenDropped {
    fn drop(&mut self) {
        panic!("the payload's destructor");
    }
}

/// Dropping a sink that never ran drops its body's captures on its stack;
/// one of them panics with a payload that panics again when dropped. The
/// drop discards both (dropping a coroutine reports nothing), and the
/// coroutine's stack and record go back clean.
#[test]
fn dropping_an_unstarted_sink_whose_capture_panics_twice_discards_it() {
    struct Capture;
    impl Drop for Capture {
        fn drop(&mut self) {
            std::panic::panic_any(PanicsAgainWhenDropped);
        }
    }
    let capture = Capture;
    let sink = Sink::new(
        String::from("owned name"),
        move |items: cogen::pipeline::SinkInput<'_, u8>| {
            let _keep = &capture;
            items.count()
        },
    );
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(sink)));
    assert!(dropped.is_ok());
}

/// A tee whose first branch failed and whose second failed with a payload
/// that panics when dropped: `finish` reports the first error, and the
/// second is dropped without a panic escaping.
#[test]
fn a_tee_finish_reports_the_first_error_when_the_second_panics_again_when_dropped() {
    let a = Sink::new("a", |mut items: cogen::pipeline::SinkInput<'_, u8>| {
        if items.next().is_some() {
            panic!("a fails");
        }
    });
    let b = Sink::new("b", |mut items: cogen::pipeline::SinkInput<'_, u8>| {
        if items.next().is_some() {
            std::panic::panic_any(PanicsAgainWhenDropped);
        }
    });
    let mut both = tee(a, b);
    assert!(!both.send(1));
    let finished = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        both.finish().map_err(|e| e.stage().to_owned())
    }));
    assert_eq!(finished.ok(), Some(Err("a".to_owned())));
}

/// A stage built (with `stage_with`) over a coroutine that is already dead
/// is empty, as one made by `Stage::new` is: nothing was cut short.
#[test]
fn a_stage_with_over_a_dead_coroutine_is_empty() {
    let items: Vec<_> = source([1u32, 2])
        .stage_with("with", |up| {
            drop(up);
            let mut dead = Coroutine::<(), u32, ()>::new(|_, ()| {});
            dead.resume(()).unwrap();
            dead
        })
        .collect();
    assert!(items.is_empty());
}

/// `stage_with`'s `make` pulls an upstream that fails, and returns a dead
/// coroutine: the stage hands on the upstream's error, then ends.
#[test]
fn an_upstream_error_seen_by_stage_with_s_make_is_handed_on() {
    let items: Vec<_> = vec![Err::<u32, _>(StageError::new("source", "bad input"))]
        .into_iter()
        .stage_with("with", |mut up| {
            assert!(up.next().is_none()); // the upstream failed
            let mut dead = Coroutine::<(), u32, ()>::new(|_, ()| {});
            dead.resume(()).unwrap();
            dead
        })
        .map(|r| r.map_err(|e| e.stage().to_owned()))
        .collect();
    assert_eq!(items, vec![Err("source".to_owned())]);
}
