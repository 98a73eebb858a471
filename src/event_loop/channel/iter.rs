//! The iterators over a channel's [`Receiver`]: [`Iter`] (waits for each
//! message), [`TryIter`] (takes what is there now) and [`IntoIter`] (the
//! owning form), and `IntoIterator` for a receiver and a reference to one,
//! which make a receiver a pipeline source.

use super::Receiver;

impl<T> Receiver<T> {
    /// A blocking iterator: [`recv`](Receiver::recv) until the channel is
    /// closed and drained.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// An iterator over the messages there now, without waiting.
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }
}

/// The iterator of [`Receiver::iter`].
#[derive(Debug)]
#[must_use = "iterators do nothing unless consumed"]
pub struct Iter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

/// The iterator of [`Receiver::try_iter`].
#[derive(Debug)]
#[must_use = "iterators do nothing unless consumed"]
pub struct TryIter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

/// The owning iterator of a [`Receiver`].
#[derive(Debug)]
#[must_use = "iterators do nothing unless consumed"]
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;

    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;

    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}
