//! Fan-out: several consumers as one [`Push`], [`tee`] for two of any
//! types, a `Vec` for many of one type.

use super::{Push, StageError};

/// Sends each item to both `a` and `b` (cloning it): fan-out to two
/// consumers. Their outputs come back as a pair. For more consumers of one
/// type, a `Vec` of them is a [`Push`] too.
///
/// ```
/// use cogen::pipeline::{Push, Sink, source, tee};
///
/// let evens = Sink::new("evens", |xs| xs.filter(|x: &u32| x % 2 == 0).count());
/// let firsts: Vec<_> = (0..2)
///     .map(|i| Sink::new(format!("first {i}"), |mut xs| xs.next()))
///     .collect();
/// let (evens, firsts) = tee(evens, firsts).feed(source(1..=5)).unwrap();
/// assert_eq!(evens, 2);
/// assert_eq!(firsts, [Some(1), Some(1)]);
/// ```
pub fn tee<A, B>(a: A, b: B) -> Tee<A, B> {
    Tee { a, b }
}

/// Two consumers fed the same items: made by [`tee`].
#[derive(Debug)]
pub struct Tee<A, B> {
    a: A,
    b: B,
}

impl<T: Clone, A: Push<T>, B: Push<T>> Push<T> for Tee<A, B> {
    type Output = (A::Output, B::Output);

    fn send(&mut self, item: T) -> bool {
        match (self.a.is_open(), self.b.is_open()) {
            (true, true) => {
                let a = self.a.send(item.clone());
                self.b.send(item) || a
            }
            (true, false) => self.a.send(item),
            (false, true) => self.b.send(item),
            (false, false) => false,
        }
    }

    fn is_open(&self) -> bool {
        self.a.is_open() || self.b.is_open()
    }

    /// Finishes both, and returns both outputs or the first error (`a`'s
    /// before `b`'s).
    fn finish(self) -> Result<Self::Output, StageError> {
        let a = self.a.finish();
        let b = self.b.finish();
        Ok((a?, b?))
    }
}

impl<T: Clone, S: Push<T>> Push<T> for Vec<S> {
    type Output = Vec<S::Output>;

    fn send(&mut self, item: T) -> bool {
        let mut open = false;
        for sink in self.iter_mut().filter(|s| s.is_open()) {
            open |= sink.send(item.clone());
        }
        open
    }

    fn is_open(&self) -> bool {
        self.iter().any(Push::is_open)
    }

    /// Finishes each consumer in order; the outputs in the same order, or
    /// the first error (the consumers after it are closed).
    fn finish(self) -> Result<Self::Output, StageError> {
        self.into_iter().map(Push::finish).collect()
    }
}
