//! The result cell: where a task's body leaves its value, panic or
//! cancellation for its [`JoinHandle`](crate::event_loop::JoinHandle).

use std::cell::UnsafeCell;

use crate::error::Panic;

use super::super::error::JoinError;

/// Where a task's body leaves its value, panic or cancellation; a
/// [`JoinHandle`](crate::event_loop::JoinHandle) takes it out.
pub(crate) struct ResultCell<T>(UnsafeCell<Option<Result<T, JoinError>>>);

impl<T> ResultCell<T> {
    pub(crate) fn new() -> Self {
        ResultCell(UnsafeCell::new(None))
    }

    // SAFETY (for the methods below): the cell is only touched on the loop's
    // thread, by short non-reentrant accesses that never hold a reference
    // across user code (setting or taking moves the value in or out).
    pub(crate) fn set(&self, value: Result<T, JoinError>) {
        // SAFETY: see above.
        let old = unsafe { (*self.0.get()).replace(value) };
        drop(old);
    }

    pub(crate) fn is_set(&self) -> bool {
        // SAFETY: see above.
        unsafe { (*self.0.get()).is_some() }
    }

    pub(crate) fn take(&self) -> Option<Result<T, JoinError>> {
        // SAFETY: see above.
        unsafe { (*self.0.get()).take() }
    }

    #[inline]
    pub(crate) fn take_panic(&self) -> Option<Panic> {
        // SAFETY: see above.
        let slot = unsafe { &mut *self.0.get() };
        match slot {
            Some(Err(e)) if e.is_panic() => slot.take()?.err()?.try_into_panic().ok(),
            _ => None,
        }
    }
}
