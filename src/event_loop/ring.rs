//! `Ring<T>`: the first-in, first-out ring buffer behind the run queue and
//! a channel's message buffer, whose push and pop are a few instructions
//! each and inline into their callers (a `VecDeque`'s push stays a call).

use std::mem::MaybeUninit;

/// A ring buffer whose capacity is a power of two, so that an index wraps
/// with a mask. It grows when full and shrinks only when asked.
///
/// Invariant: the `len` slots from `head` on (wrapping) are initialized,
/// the others are not; `slots.len()` is a power of two and at least `len`.
pub(crate) struct Ring<T> {
    slots: Box<[MaybeUninit<T>]>,
    head: usize,
    len: usize,
}

impl<T> Ring<T> {
    /// An empty ring with room for `capacity` values (rounded up to a
    /// power of two, and at least 1).
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Ring {
            slots: Box::new_uninit_slice(capacity.max(1).next_power_of_two()),
            head: 0,
            len: 0,
        }
    }

    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline(always)]
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    #[inline(always)]
    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    #[inline(always)]
    pub(crate) fn push_back(&mut self, value: T) {
        if self.len == self.slots.len() {
            self.resize(self.slots.len() * 2);
        }
        let i = (self.head + self.len) & self.mask();
        // SAFETY: `i` is masked to below the capacity (a power of two), and
        // that slot is outside the initialized run (the ring is not full),
        // so it holds no value to leak.
        unsafe { self.slots.get_unchecked_mut(i).write(value) };
        self.len += 1;
    }

    #[inline(always)]
    pub(crate) fn pop_front(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        // SAFETY: `head` is below the capacity, and its slot is the first
        // of the initialized run (the ring is not empty); the slot counts
        // as uninitialized from here on, so the value is read out once.
        let value = unsafe { self.slots.get_unchecked(self.head).assume_init_read() };
        self.head = (self.head + 1) & self.mask();
        self.len -= 1;
        Some(value)
    }

    /// The value `i` places behind the front (0: the one `pop_front` takes
    /// next), if there is one.
    #[inline(always)]
    pub(crate) fn get(&self, i: usize) -> Option<&T> {
        if i >= self.len {
            return None;
        }
        let at = (self.head + i) & self.mask();
        // SAFETY: `at` is masked to below the capacity, and is within the
        // initialized run (`i < len`).
        Some(unsafe { self.slots.get_unchecked(at).assume_init_ref() })
    }

    /// Moves the values, in order, into a new buffer of `capacity` slots
    /// (a power of two, at least `len`).
    #[cold]
    #[inline(never)]
    pub(crate) fn resize(&mut self, capacity: usize) {
        assert!(capacity.is_power_of_two() && capacity >= self.len);
        let mut slots = Box::new_uninit_slice(capacity);
        let mask = self.mask();
        for (k, slot) in slots.iter_mut().enumerate().take(self.len) {
            // SAFETY: slot `(head + k) & mask` for `k < len` is in the
            // initialized run; the old buffer is freed below without
            // dropping its values (it holds `MaybeUninit`s), so each value
            // is moved exactly once.
            let value = unsafe { self.slots[(self.head + k) & mask].assume_init_read() };
            slot.write(value);
        }
        self.slots = slots;
        self.head = 0;
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        /// Drops the values left if dropping one of them panics, as a
        /// slice's drop does.
        struct Rest<'a, T>(&'a mut Ring<T>);
        impl<T> Drop for Rest<'_, T> {
            fn drop(&mut self) {
                while self.0.pop_front().is_some() {}
            }
        }
        let rest = Rest(self);
        while rest.0.pop_front().is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;

    use super::Ring;

    #[test]
    fn keeps_order_across_wrapping_and_growth() {
        let mut ring = Ring::with_capacity(3);
        assert_eq!(ring.capacity(), 4);
        let mut expected = std::collections::VecDeque::new();
        for i in 0..100 {
            ring.push_back(i);
            expected.push_back(i);
            if i % 3 == 0 {
                assert_eq!(ring.pop_front(), expected.pop_front());
            }
        }
        ring.resize(128);
        while let Some(v) = ring.pop_front() {
            assert_eq!(Some(v), expected.pop_front());
        }
        assert!(expected.is_empty());
        assert_eq!(ring.len(), 0);
    }

    #[test]
    fn drops_each_value_left_once() {
        let drops = Rc::new(Cell::new(0));
        struct D(Rc<Cell<u32>>);
        impl Drop for D {
            fn drop(&mut self) {
                self.0.set(self.0.get() + 1);
            }
        }
        let mut ring = Ring::with_capacity(2);
        for _ in 0..5 {
            ring.push_back(D(drops.clone()));
        }
        drop(ring.pop_front());
        assert_eq!(drops.get(), 1);
        drop(ring);
        assert_eq!(drops.get(), 5);
    }
}
