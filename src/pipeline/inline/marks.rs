//! Which stage of an inline chain an unwinding left: the marks that the
//! stages' inputs leave only while an unwinding crosses them (a landing pad,
//! nothing on the item's path), kept per thread and keyed by the chain's
//! number, and the guard that leaves them.

use std::cell::RefCell;

/// No mark: the unwinding left no stage's input (the last stage panicked).
pub(super) const UNMARKED: u32 = u32::MAX;
/// The mark of the consumer's closure (in `fold` and `try_fold`), whose
/// panic is not the chain's: lower than every stage's, so it wins.
pub(super) const CONSUMER: u32 = 0;
/// The most marks kept per thread: more can only be stale ones (of inputs
/// pulled outside their chain), which would otherwise pile up.
const MAX_MARKS: usize = 16;

thread_local! {
    /// The marks that unwindings on this thread have left and that no
    /// chain's end has taken yet, by chain number: the lowest stage number
    /// per chain. Empty but for the moment between a panic and its catch
    /// (and for the stale mark of a stage that caught a panic itself).
    /// Thread-local rather than in the chain's shared slot so that an input holds no
    /// pointer to drop: a stage's state with nothing to drop lets the
    /// compiler keep it in registers.
    static MARKS: RefCell<Vec<(u64, u32)>> = const { RefCell::new(Vec::new()) };
}

/// Marks stage `stage` of chain `chain` as the one an unwinding left, unless
/// a stage before it is marked already.
#[cold]
#[inline(never)]
pub(super) fn mark(chain: u64, stage: u32) {
    let _ = MARKS.try_with(|marks| {
        let mut marks = marks.borrow_mut();
        match marks.iter_mut().find(|(of, _)| *of == chain) {
            Some((_, lowest)) => *lowest = (*lowest).min(stage),
            None => {
                if marks.len() == MAX_MARKS {
                    marks.remove(0);
                }
                marks.push((chain, stage));
            }
        }
    });
}

/// Takes the mark of chain `chain`: the lowest stage number an unwinding
/// left, or [`UNMARKED`].
pub(super) fn take_mark(chain: u64) -> u32 {
    take_first(|&(of, _)| of == chain).unwrap_or(UNMARKED)
}

/// How many marks this thread holds: what an event loop's `timeout` notes
/// before it runs its closure.
pub(crate) fn marks_len() -> usize {
    MARKS.try_with(|marks| marks.borrow().len()).unwrap_or(0)
}

/// Forgets the marks added since there were `len`: the `timeout` that noted
/// `len` caught its own expiry, so the unwinding that left them is over (a
/// stage's time limit around a pull would otherwise leave the stage before
/// marked, and a later panic would be reported under its name).
pub(crate) fn forget_marks_since(len: usize) {
    let _ = MARKS.try_with(|marks| marks.borrow_mut().truncate(len));
}

/// Takes the mark of chain `chain` if it is `stage`'s: tells whether an
/// unwinding left `stage` (and no stage before it), leaving any other mark
/// for the chain's end.
pub(super) fn take_mark_if(chain: u64, stage: u32) -> bool {
    take_first(|&mark| mark == (chain, stage)).is_some()
}

/// Removes the first mark that `which` picks and gives its stage number;
/// `None` if there is none, or the thread's marks are gone (its teardown).
fn take_first(which: impl Fn(&(u64, u32)) -> bool) -> Option<u32> {
    MARKS
        .try_with(|marks| {
            let mut marks = marks.borrow_mut();
            let at = marks.iter().position(which)?;
            Some(marks.remove(at).1)
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
