//! Streaming word count: a file is read in chunks, split into lines, then
//! words, normalised, and counted, one item at a time. Memory stays constant
//! whatever the size of the file (a chunk, a line and the table of distinct
//! words).
//!
//! ```text
//! cargo run --release --example word_count -- [FILE] [--top N]
//! ```
//!
//! Without `FILE` it counts the shipped `examples/data/sample.txt`. It prints
//! the number of words and of distinct words, then the `N` (default 10) most
//! frequent words, ties in alphabetical order.
//!
//! The pull stages (`read_chunks` → `lines` → `words` → `normalise`) feed a
//! push consumer (`count`, a coroutine fed item by item). With the `nightly`
//! feature the `normalise` stage is a stackless `#[coroutine]`, mixed with
//! the stackful stages around it.
#![cfg_attr(cogen_nightly, feature(coroutines))]

use std::collections::HashMap;
use std::fs::File;
use std::process::ExitCode;

use cogen::pipeline::{PipelineExt, PipelineItem, Push, Sink, read_chunks};

// The stackless stage: `yield` and `#[coroutine]` do not parse on stable
// Rust, even in code that `cfg` removes, so it lives in its own file.
#[cfg(cogen_nightly)]
#[path = "nightly/word_count_normalise.rs"]
mod stackless;

const CHUNK_SIZE: usize = 64 * 1024;

/// Lower case, without the punctuation around the word.
fn normalise(word: &str) -> Option<String> {
    let word = word.trim_matches(|c: char| !c.is_alphanumeric());
    (!word.is_empty()).then(|| word.to_lowercase())
}

/// The normalising stage: stackless on nightly, stackful otherwise.
fn normalised(
    words: impl Iterator<Item = PipelineItem<String>> + 'static,
) -> impl Iterator<Item = PipelineItem<String>> {
    #[cfg(cogen_nightly)]
    return stackless::normalised(words);
    #[cfg(not(cogen_nightly))]
    return words.stage("normalise", |co, up| {
        for word in up {
            if let Some(word) = normalise(&word) {
                co.suspend(word);
            }
        }
    });
}

fn main() -> ExitCode {
    let mut path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/sample.txt").to_string();
    let mut top = 10;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--top" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) => top = n,
                None => {
                    eprintln!("--top needs a number");
                    return ExitCode::FAILURE;
                }
            },
            _ => path = arg,
        }
    }
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) => {
            eprintln!("cannot open {path}: {e}");
            return ExitCode::FAILURE;
        }
    };

    let words = normalised(read_chunks(file, CHUNK_SIZE).lines().words());
    let count = Sink::new("count", |words| {
        let mut counts: HashMap<String, u64> = HashMap::new();
        let mut total = 0u64;
        for word in words {
            total += 1;
            *counts.entry(word).or_default() += 1;
        }
        (total, counts)
    });
    let (total, counts) = match count.feed(words) {
        Ok(result) => result,
        Err(e) => {
            // The stage's own error (an I/O error, invalid UTF-8) is the source.
            match std::error::Error::source(&e) {
                Some(cause) => eprintln!("word_count: {e}: {cause}"),
                None => eprintln!("word_count: {e}"),
            }
            return ExitCode::FAILURE;
        }
    };

    let mut ranked: Vec<(&str, u64)> = counts.iter().map(|(w, &n)| (w.as_str(), n)).collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    println!("{total} words, {} distinct", counts.len());
    for (word, n) in ranked.into_iter().take(top) {
        println!("{n:>8}  {word}");
    }
    ExitCode::SUCCESS
}
