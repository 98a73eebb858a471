//! Where pipelines meet the loop: a stretch of a pipeline spawned as a task
//! of its own, feeding the rest through a bounded channel
//! ([`SpawnStage::spawn_stage`]), and a channel's [`Sender`] as a push
//! [`Sink`].
//!
//! A channel's [`Receiver`] needs nothing here: it is an iterator, so
//! `pipeline::source(rx)` is a pipeline source, whose stages park the task
//! whenever the channel is empty (a wait from a nested coroutine parks the
//! whole task, see the [module docs](super#waiting-from-nested-coroutines)).

use std::fmt;

use super::channel::{Receiver, Sender, channel};
use super::join::JoinHandle;
use super::runtime::spawn;
use crate::coroutine::Coroutine;
use crate::pipeline::{PipelineItem, Sink, StageError};

/// Runs a pipeline in a task of its own: the [`spawn_stage`](SpawnStage::spawn_stage)
/// method, for every pipeline (every `Iterator<Item = PipelineItem<T>>`).
pub trait SpawnStage<T: 'static>: Iterator<Item = PipelineItem<T>> + Sized + 'static {
    /// Moves this pipeline (its source and every stage so far) into a new
    /// stackful task on the current loop, which pulls its items and sends
    /// them into a bounded channel of `capacity`; returns the receiving end
    /// as a pipeline, to which more stages can be added.
    ///
    /// The two halves then run concurrently: while the spawned half waits
    /// (for a file, a socket, a timer), the rest of the pipeline works on
    /// the items already in the channel, and the spawned half runs ahead by
    /// at most `capacity` items. Items, errors included, arrive in order. If
    /// the spawned task ends without finishing the stream (it was cancelled,
    /// or its loop dropped it), the pipeline ends with an error naming the
    /// stage `"spawned"`. Dropping the returned pipeline cancels the task.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use cogen::event_loop::{EventLoop, SpawnStage, sleep};
    /// use cogen::pipeline::{PipelineExt, source};
    ///
    /// let ev = EventLoop::new();
    /// let total = ev
    ///     .block_on(|| {
    ///         source(1..=6)
    ///             .stage("fetch", |co, up| {
    ///                 for n in up {
    ///                     sleep(Duration::from_millis(1)); // slow I/O
    ///                     co.suspend(n);
    ///                 }
    ///             })
    ///             .spawn_stage(4) // fetch ahead while the rest computes
    ///             .stage("square", |co, up| {
    ///                 for n in up {
    ///                     co.suspend(n * n);
    ///                 }
    ///             })
    ///             .sum::<Result<u32, _>>()
    ///     })
    ///     .unwrap();
    /// assert_eq!(total.unwrap(), 91);
    /// ```
    ///
    /// # Panics
    /// Outside a task of a running loop; if `capacity` is 0 (as
    /// [`channel`](super::channel())).
    #[track_caller]
    fn spawn_stage(self, capacity: usize) -> Spawned<T> {
        let (tx, rx) = channel(capacity);
        let task = spawn(move || {
            for item in self {
                if tx.send(item).is_err() {
                    break; // the consumer is gone
                }
            }
        });
        Spawned {
            rx,
            task: Some(task),
        }
    }
}

impl<T: 'static, I: Iterator<Item = PipelineItem<T>> + 'static> SpawnStage<T> for I {}

/// The receiving half of a pipeline split by
/// [`spawn_stage`](SpawnStage::spawn_stage): a pipeline over what the
/// spawned task sends.
pub struct Spawned<T> {
    rx: Receiver<PipelineItem<T>>,
    /// `None` once the stream has ended.
    task: Option<JoinHandle<()>>,
}

impl<T> Iterator for Spawned<T> {
    type Item = PipelineItem<T>;

    #[track_caller]
    fn next(&mut self) -> Option<PipelineItem<T>> {
        self.task.as_ref()?;
        if let Ok(item) = self.rx.recv() {
            return Some(item);
        }
        // The channel is closed and empty: the task dropped its sender,
        // because it finished the stream, or was cancelled.
        let task = self.task.take()?;
        match task.join() {
            Ok(()) => None,
            Err(e) => Some(Err(StageError::new("spawned", e))),
        }
    }
}

impl<T> Drop for Spawned<T> {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.cancel();
        }
    }
}

impl<T> fmt::Debug for Spawned<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spawned")
            .field("task", &self.task.as_ref().map(JoinHandle::id))
            .field("buffered", &self.rx.len())
            .finish()
    }
}

impl<T: 'static> Sender<T> {
    /// A push [`Sink`] that sends every item it is given on this channel,
    /// parking the task while the channel is full, and returns how many it
    /// sent. It stops taking items once every receiver is gone (the
    /// producer's [`Push::send`](crate::pipeline::Push::send) then returns
    /// `false`), and the channel closes for this sender when the stream
    /// ends.
    ///
    /// ```
    /// use cogen::event_loop::{EventLoop, channel};
    /// use cogen::pipeline::{Push, source};
    ///
    /// let ev = EventLoop::new();
    /// let (tx, rx) = channel(2);
    /// let consumer = ev.spawn(move || rx.iter().collect::<Vec<u32>>());
    /// let sent = ev.spawn(move || tx.into_sink().feed(source([1, 2, 3])).unwrap());
    /// ev.run().unwrap();
    /// assert_eq!(sent.join().unwrap(), 3);
    /// assert_eq!(consumer.join().unwrap(), [1, 2, 3]);
    /// ```
    pub fn into_sink(self) -> Sink<T, Coroutine<Option<T>, (), usize>> {
        Sink::new("sender", move |items| {
            let mut sent = 0;
            for item in items {
                if self.send(item).is_err() {
                    break;
                }
                sent += 1;
            }
            sent
        })
    }
}
