//! An inline chain: named stages that are plain iterators, behind one catch
//! at the chain's end, so that the compiler runs them as one loop.
//!
//! ```text
//! cargo run --example inline_chain
//! ```
//!
//! A log of temperature readings goes through four stages: `lines` (the
//! source), `parse` (fallible: a line that is not `sensor=value` fails it),
//! `fahrenheit` and `smooth` (a running mean of the last three readings).
//! The program runs the chain over a clean log, over a log with a bad line,
//! and over readings that make a stage panic: each failure reaches the
//! consumer as one `StageError` naming the stage, after the items before it.
//! With the `nightly` feature the same stages could be `gen` blocks; here
//! they are iterator adapters, which stable Rust has.

use std::collections::VecDeque;

use cogen::pipeline::{PipelineItem, StageError, inline_source};

/// The chain over `log`: the items the consumer sees.
fn readings(log: &'static str) -> impl Iterator<Item = PipelineItem<f64>> {
    inline_source("lines", log.lines())
        .try_inline_stage("parse", |lines| {
            lines.map(|line| {
                let (_sensor, value) = line.split_once('=').ok_or("no '=' in the line")?;
                value.trim().parse::<f64>().map_err(StageFailure::from)
            })
        })
        .inline_stage("fahrenheit", |celsius| {
            celsius.map(|c| {
                assert!(c > -273.15, "below absolute zero: {c}");
                c * 9.0 / 5.0 + 32.0
            })
        })
        .inline_stage("smooth", |mut values| {
            let mut window = VecDeque::with_capacity(3);
            std::iter::from_fn(move || {
                let value = values.next()?;
                if window.len() == 3 {
                    window.pop_front();
                }
                window.push_back(value);
                Some(window.iter().sum::<f64>() / window.len() as f64)
            })
        })
}

/// What makes a line fail to parse.
type StageFailure = Box<dyn std::error::Error + Send + Sync>;

/// Runs the chain over `log` and prints what the consumer receives.
fn run(title: &str, log: &'static str) {
    println!("{title}:");
    for item in readings(log) {
        match item {
            Ok(mean) => println!("  {mean:.1} °F"),
            Err(error) => {
                println!("  {}", describe(&error));
                break;
            }
        }
    }
}

/// The error as a consumer would report it.
fn describe(error: &StageError) -> String {
    match (error.panic(), error.error()) {
        (Some(panic), _) => format!("stage '{}' panicked: {}", error.stage(), panic.message()),
        (None, Some(cause)) => format!("stage '{}' failed: {cause}", error.stage()),
        (None, None) => error.to_string(),
    }
}

fn main() {
    // A panic inside a stage is an error value here, not a crash; keep the
    // default hook's message off the output.
    std::panic::set_hook(Box::new(|_| {}));
    run("clean", "a=20\nb=22\na=21\nb=23\n");
    run("a bad line", "a=20\nb=22\noops\na=21\n");
    run("a panicking stage", "a=20\nb=-300\na=21\n");
    // The whole chain summed in one call (a failure would come back as `Err`).
    let total: Result<f64, StageError> = readings("a=0\nb=100\n").sum();
    println!("sum of the means: {:.1} °F", total.unwrap());
}
