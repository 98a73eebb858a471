//! Wake-ups by key and the depth of the poll they are for: a waker key's
//! id carries the wait depth in its top bits, and each depth has its bit
//! in [`Header::notified`].
//!
//! A future's waker wakes by key (slot and id, no park number), and may be
//! woken during the very poll that filed it, or while that poll waits: a
//! wake-up by key sets a bit of [`Header::notified`], and the poll's
//! `Pending` then queues the task again, as any executor polls such a
//! future again. A key names the depth of the poll it is for (a future
//! task's poll is 0, a `wait_for` one more than the `wait_for` whose poll
//! it runs in), so a wait nested in a poll neither takes nor hides the
//! wake-ups of the poll around it.

use super::Header;

/// Where a waker key's id keeps the wait depth of the poll it is for: the
/// bits above this; a task's id is far below them.
const KEY_DEPTH_SHIFT: u32 = 56;

/// A task's waker key id for a poll at wait `depth` (see
/// [`Header::notified`]).
pub(crate) fn depth_key(id: u64, depth: u8) -> u64 {
    id | (u64::from(depth) << KEY_DEPTH_SHIFT)
}

/// The task id of a waker key's id.
#[inline]
pub(crate) fn key_id(id: u64) -> u64 {
    id & ((1 << KEY_DEPTH_SHIFT) - 1)
}

/// The [`Header::notified`] bit of a wait depth: one per depth up to 7,
/// which deeper ones share.
#[inline]
pub(crate) fn depth_bit(depth: u8) -> u8 {
    1 << depth.min(7)
}

/// The [`Header::notified`] bit of a waker key's id.
#[inline]
pub(crate) fn key_depth_bit(id: u64) -> u8 {
    depth_bit((id >> KEY_DEPTH_SHIFT) as u8)
}

impl Header {
    /// Sets the [`notified`](Header::notified) bit `bit`.
    #[inline]
    pub(crate) fn mark_notified(&self, bit: u8) {
        self.notified.set(self.notified.get() | bit);
    }

    /// Takes the [`notified`](Header::notified) bit `bit`: true if it was set.
    #[inline]
    pub(crate) fn take_notified(&self, bit: u8) -> bool {
        let bits = self.notified.get();
        self.notified.set(bits & !bit);
        bits & bit != 0
    }
}
