//! Which stage of an inline chain an unwinding left: the marks that the
//! stages' inputs leave only while an unwinding crosses them (a landing pad,
//! nothing on the item's path), kept per thread and keyed by the chain's
//! number, and the guard that leaves them.

use std::cell::{Cell, RefCell};

use crate::coroutine::{StackId, chain};

/// No mark: the unwinding left no stage's input (the last stage panicked).
pub(super) const UNMARKED: u32 = u32::MAX;
/// The mark of the consumer's closure (in `fold` and `try_fold`), whose
/// panic is not the chain's: lower than every stage's, so it wins.
pub(super) const CONSUMER: u32 = 0;
/// The most marks kept per thread: more can only be stale ones (of inputs
/// pulled outside their chain), which would otherwise pile up.
const MAX_MARKS: usize = 16;

/// A mark an unwinding left: the lowest stage of chain `chain` it left, when
/// (`seq`, this thread's count of marks made) and on which stacks (`on`,
/// the chain of running coroutines where it was made, the running one
/// first, as far as it can be read: see [`chain`]).
struct Left {
    chain: u64,
    stage: u32,
    seq: u64,
    on: Box<[StackId]>,
}

thread_local! {
    /// The marks that unwindings on this thread have left and that no
    /// chain's end has taken yet, one per chain. Empty but for the moment
    /// between a panic and its catch (and for the stale mark of a stage that
    /// caught a panic itself). Thread-local rather than in the chain's
    /// shared slot so that an input holds no pointer to drop: a stage's
    /// state with nothing to drop lets the compiler keep it in registers.
    static MARKS: RefCell<Vec<Left>> = const { RefCell::new(Vec::new()) };
    /// The `seq` of the next mark made (or lowered) on this thread.
    static NEXT_SEQ: Cell<u64> = const { Cell::new(0) };
}

/// Marks stage `stage` of chain `chain` as the one an unwinding left, unless
/// a stage before it is marked already.
#[cold]
#[inline(never)]
pub(super) fn mark(chain: u64, stage: u32) {
    let on: Box<[StackId]> = self::chain().collect();
    let _ = MARKS.try_with(|marks| {
        let seq = NEXT_SEQ.replace(NEXT_SEQ.get() + 1);
        let mut marks = marks.borrow_mut();
        match marks.iter_mut().find(|left| left.chain == chain) {
            // This unwinding owns the mark now: a `timeout` that catches it
            // forgets the mark with the rest of what it left.
            Some(left) if stage < left.stage => {
                *left = Left {
                    chain,
                    stage,
                    seq,
                    on,
                }
            }
            Some(_) => {}
            None => {
                if marks.len() == MAX_MARKS {
                    marks.remove(0);
                }
                marks.push(Left {
                    chain,
                    stage,
                    seq,
                    on,
                });
            }
        }
    });
}

/// Takes the mark of chain `chain`: the lowest stage number an unwinding
/// left, or [`UNMARKED`].
pub(super) fn take_mark(chain: u64) -> u32 {
    take_first(|left| left.chain == chain).unwrap_or(UNMARKED)
}

/// Where this thread's marks stand: what an event loop's `timeout` notes
/// before it runs its closure, for [`forget_marks_since`].
pub(crate) fn marks_now() -> u64 {
    NEXT_SEQ.try_with(Cell::get).unwrap_or(0)
}

/// Forgets the marks made since `since` (a [`marks_now`]) on a chain of
/// running coroutines that held `stack`: the `timeout` whose frame is on
/// `stack` noted `since` and has caught its own expiry, so the unwinding
/// that left them (on that stack or on a coroutine resumed from it) is over
/// (a stage's time limit around a pull would otherwise leave the stage
/// before marked, and a later panic would be reported under its name). The
/// marks other tasks made or took meanwhile, while this one waited inside
/// the `timeout`, were made on other stacks, and stay. (A mark made behind
/// a stack of another library, where the chain cannot be read, stays too,
/// stale.)
pub(crate) fn forget_marks_since(since: u64, stack: StackId) {
    let _ = MARKS.try_with(|marks| {
        marks
            .borrow_mut()
            .retain(|left| left.seq < since || !left.on.contains(&stack));
    });
}

/// Takes the mark of chain `chain` if it is `stage`'s: tells whether an
/// unwinding left `stage` (and no stage before it), leaving any other mark
/// for the chain's end.
pub(super) fn take_mark_if(chain: u64, stage: u32) -> bool {
    take_first(|left| left.chain == chain && left.stage == stage).is_some()
}

/// Removes the first mark that `which` picks and gives its stage number;
/// `None` if there is none, or the thread's marks are gone (its teardown).
fn take_first(which: impl Fn(&Left) -> bool) -> Option<u32> {
    MARKS
        .try_with(|marks| {
            let mut marks = marks.borrow_mut();
            let at = marks.iter().position(which)?;
            Some(marks.remove(at).stage)
        })
        .ok()
        .flatten()
}

/// Dropped only by an unwinding that leaves a stage's pull (the item's path
/// forgets it): marks that stage as the one that failed, unless a stage
/// before it is marked already.
pub(super) struct Mark {
    pub(super) chain: u64,
    pub(super) stage: u32,
}

impl Drop for Mark {
    #[inline]
    fn drop(&mut self) {
        mark(self.chain, self.stage);
    }
}
