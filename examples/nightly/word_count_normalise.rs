//! The stackless `normalise` stage of `examples/word_count.rs` (feature
//! `nightly`): a `#[coroutine]` closure between stackful stages.

use cogen::pipeline::{PipelineExt, PipelineItem};

/// Normalises each word, dropping those with no letter or digit.
pub fn normalised(
    words: impl Iterator<Item = PipelineItem<String>> + 'static,
) -> impl Iterator<Item = PipelineItem<String>> {
    words.stackless_stage("normalise", |up| {
        #[coroutine]
        move || {
            for word in up {
                if let Some(word) = super::normalise(&word) {
                    yield word;
                }
            }
        }
    })
}
