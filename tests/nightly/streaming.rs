//! The stackless stage of `tests/streaming.rs`, only parsed with the
//! `nightly` feature (`yield` and `#[coroutine]` do not parse on stable Rust).

use cogen::pipeline::{PipelineExt, PipelineItem};

/// The length of each line, as a stackless stage.
pub fn line_lengths(
    lines: impl Iterator<Item = PipelineItem<String>> + 'static,
) -> impl Iterator<Item = PipelineItem<usize>> {
    lines.stackless_stage("lengths", |up| {
        #[coroutine]
        move || {
            for line in up {
                yield line.len();
            }
        }
    })
}
