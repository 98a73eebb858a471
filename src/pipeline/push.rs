//! [`Push`]: the consumer end of a push pipeline, which a producer sends
//! items to and then finishes.

use super::{PipelineItem, StageError};

/// The consumer end of a push pipeline: a [`Sink`](super::Sink), or several
/// of them ([`tee`](super::tee), `Vec<Sink>`).
pub trait Push<T>: Sized {
    /// What the consumers return at the end of the stream.
    type Output;

    /// Sends one item. Returns `false` once no consumer wants more items
    /// (each has returned or failed); the item is then dropped.
    fn send(&mut self, item: T) -> bool;

    /// True while some consumer still takes items.
    fn is_open(&self) -> bool;

    /// Ends the stream and returns what the consumers returned, or the
    /// error of the first consumer that failed.
    fn finish(self) -> Result<Self::Output, StageError>;

    /// Sends every item of a pull pipeline, stopping early when no consumer
    /// wants more, then ends the stream. If the pipeline fails, the
    /// consumers are closed (their destructors run) and its error returned.
    ///
    /// ```
    /// use cogen::pipeline::{Push, Sink, source};
    ///
    /// let sum = Sink::new("sum", |items| items.sum::<u64>());
    /// assert_eq!(sum.feed(source(1..=100)).unwrap(), 5050);
    /// ```
    fn feed<I>(mut self, items: I) -> Result<Self::Output, StageError>
    where
        I: IntoIterator<Item = PipelineItem<T>>,
    {
        for item in items {
            if !self.send(item?) {
                break;
            }
        }
        self.finish()
    }
}
