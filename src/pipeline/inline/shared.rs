//! What an inline chain's stages share with its end ([`Shared`], behind a
//! [`Handle`]): the stages' names, the slot a failure of the pipeline before
//! the chain or of a fallible stage goes to, the error owed to the next
//! pull; and the decision of what the chain's end hands on when it is not
//! an item ([`Shared::not_an_item`]).

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::mem::ManuallyDrop;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::marks::{CONSUMER, UNMARKED, take_mark, take_mark_if};
use crate::error::Panic;
use crate::pipeline::StageError;

/// The next chain's number: marks name their chain by it.
static NEXT_CHAIN: AtomicU64 = AtomicU64::new(0);

/// What the stages' inputs share with the chain's end: everything but the
/// stages themselves, so that only a pointer to it sits beside them.
pub(super) struct Shared {
    /// The chain's number, which its inputs' marks carry.
    pub(super) chain: u64,
    /// Set once the pipeline before the chain, or a fallible stage of it
    /// ([`InlineChain::try_inline_stage`]), has failed.
    pub(super) failed: Cell<bool>,
    /// That failure, until the chain's end hands it on.
    pub(super) error: Cell<Option<StageError>>,
    /// The stages' names, the first stage's first.
    pub(super) names: RefCell<Vec<Cow<'static, str>>>,
    /// The error to hand on at the next pull after the chain died during an
    /// unwinding it let through (a `timeout` or a close crossing it).
    pub(super) pending: Cell<Option<StageError>>,
}

/// An `Rc<Shared>` whose drop hands the pointer to an out-of-line function
/// by value. `Rc`'s own drop passes the address of the `Rc` to its slow
/// path, and that address is inside the chain's state: the compiler then
/// keeps every stage's state in memory, on the item's path too, where it
/// could otherwise keep them in registers.
pub(super) struct Handle(ManuallyDrop<Rc<Shared>>);

impl Handle {
    #[inline(never)]
    pub(super) fn new(first: Cow<'static, str>) -> Handle {
        Handle(ManuallyDrop::new(Rc::new(Shared {
            chain: NEXT_CHAIN.fetch_add(1, Ordering::Relaxed),
            failed: Cell::new(false),
            error: Cell::new(None),
            names: RefCell::new(vec![first]),
            pending: Cell::new(None),
        })))
    }

    pub(super) fn share(&self) -> Handle {
        Handle(ManuallyDrop::new(Rc::clone(&self.0)))
    }
}

impl std::ops::Deref for Handle {
    type Target = Shared;

    #[inline(always)]
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl Drop for Handle {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: `self.0` is taken once, here, and never used again.
        let shared = unsafe { ManuallyDrop::take(&mut self.0) };
        release(shared);
    }
}

#[cold]
#[inline(never)]
fn release(shared: Rc<Shared>) {
    if Rc::strong_count(&shared) == 1 {
        // A stale mark (a stage caught a panic of the stage before it).
        take_mark(shared.chain);
    }
    drop(shared);
}

/// What a pull gave other than an item to hand on.
pub(super) enum End<T> {
    /// An item, after the pipeline before the chain failed: discarded.
    Discarded(T),
    /// The end of the stream.
    Ended,
    /// A stage panicked (or an unwinding crossed the chain).
    Unwound(Payload),
}

/// A panic's payload, as `catch_unwind` gives it.
pub(super) type Payload = Box<dyn std::any::Any + Send>;

impl Shared {
    /// The error to hand on after `end`; the stages were dropped already,
    /// `dropped` says how that went. Out of line, and given the parts by
    /// value: a reference into the chain would keep its state in memory.
    #[cold]
    #[inline(never)]
    pub(super) fn not_an_item<T>(
        &self,
        checked: bool,
        end: End<T>,
        dropped: std::thread::Result<()>,
    ) -> Option<StageError> {
        let last = self.names.borrow().len() - 1;
        let stage = match take_mark(self.chain) {
            UNMARKED => last,
            mark => mark as usize - 1,
        };
        // A failure recorded before the end (the pipeline before, a fallible
        // stage) comes first, whatever the stages did after it: a panic of a
        // stage that then saw the end of its input is secondary, as is
        // anything it yielded.
        let failed = checked && self.failed.get();
        let mut unwinding = None;
        let error = match end {
            End::Unwound(payload) if crate::coroutine::passes_through(&*payload) => {
                // Not a panic but an unwinding on its way to an enclosing
                // root or scope: it goes on, and the next pull says once that
                // the stream did not end.
                unwinding = Some(payload);
                if failed {
                    self.error.take()
                } else {
                    Some(StageError::new(
                        self.name(stage),
                        "the stage died unfinished: an unwinding crossed it (a time limit that \
                         expired during a wait inside it, or the close of an enclosing \
                         coroutine)",
                    ))
                }
            }
            End::Unwound(payload) if failed => {
                crate::error::drop_quietly(payload);
                self.error.take()
            }
            End::Unwound(payload) => Some(self.panicked(stage, payload)),
            end if failed => {
                crate::error::drop_quietly(end);
                self.error.take()
            }
            _ => None,
        };
        // Then what dropping the stages gave.
        let error = match dropped {
            Ok(()) => error,
            Err(payload) if crate::coroutine::passes_through(&*payload) => {
                // A destructor's wait cut short by a time limit, or closed:
                // that unwinding goes on (unless another one already does).
                match unwinding {
                    Some(_) => crate::error::drop_quietly(payload),
                    None => unwinding = Some(payload),
                }
                error
            }
            // Secondary to the error there is.
            Err(payload) if error.is_some() => {
                crate::error::drop_quietly(payload);
                error
            }
            // A stage's destructor panicked at the end of the stream.
            Err(payload) => Some(self.panicked(last, payload)),
        };
        if let Some(payload) = unwinding {
            self.pending.set(error);
            std::panic::resume_unwind(payload);
        }
        error
    }

    /// True if the unwinding caught around a fold is the consumer's own
    /// panic (which is not the chain's and goes on); otherwise a stage's
    /// mark stays for `not_an_item`. (Where the marks' thread-local is gone,
    /// the fold tells the consumer's panic by its taken accumulator.)
    #[cold]
    #[inline(never)]
    pub(super) fn consumer_unwound(&self) -> bool {
        take_mark_if(self.chain, CONSUMER)
    }

    /// Adds the name of the chain's next stage; returns the number of the
    /// stage before it (1 is the first). Out of line: a chain is built in
    /// the caller's frame, so that the compiler can keep it in registers.
    #[inline(never)]
    pub(super) fn push_name(&self, name: Cow<'static, str>) -> u32 {
        let mut names = self.names.borrow_mut();
        let before = u32::try_from(names.len()).expect("too many stages");
        names.push(name);
        before
    }

    pub(super) fn name(&self, stage: usize) -> Cow<'static, str> {
        self.names.borrow()[stage].clone()
    }

    /// Records a failure of the pipeline before the chain or of a fallible
    /// stage: the first one only (`error` is not even made for a later
    /// one), for the chain's end to hand on.
    pub(super) fn fail_first(&self, error: impl FnOnce() -> StageError) {
        if !self.failed.replace(true) {
            self.error.set(Some(error()));
        }
    }

    /// The error of the stage numbered `stage` (0 is the first), which
    /// panicked with `payload`.
    pub(super) fn panicked(&self, stage: usize, payload: Payload) -> StageError {
        let name = self.name(stage);
        StageError::panicked(name.clone(), Panic::new(payload, Some(name)))
    }
}
