//! A suspended coroutine is an ordinary Rust value: its owner may move it
//! while it is suspended (out of a `Box`, by a `Vec` reallocation, with
//! `mem::swap` or `mem::replace`, into a closure or a thread-local) and then
//! resume, query, close or drop it. These tests do each of those to plain
//! coroutines and to coroutines suspended from inside nested
//! [`ScopedCoroutine`](cogen::ScopedCoroutine)s (depth 1 and 2), whose
//! stacks hold pointers to the enclosing coroutine's bookkeeping, and check
//! the values, every status (from inside and outside) and that each
//! destructor runs exactly once.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use cogen::{Builder, Coroutine, CoroutineHandle, CoroutineResult, Status, Yielder};

/// The names of the coroutines of one nest, outermost first.
const LEVELS: [&str; 3] = ["level 0", "level 1", "level 2"];

/// What the innermost body saw of itself each time it was resumed.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    /// The sum of the inputs so far.
    total: u32,
    /// Name and status of `cogen::running()`.
    running: Option<(String, Status)>,
    /// The status of each level's handle, outermost first.
    levels: Vec<Status>,
    /// The status of each handle in `WATCHED`.
    watched: Vec<Status>,
    yieldable: bool,
}

thread_local! {
    /// Handles of other coroutines whose status the innermost body reports.
    static WATCHED: RefCell<Vec<CoroutineHandle>> = const { RefCell::new(Vec::new()) };
}

type Co = Coroutine<u32, Seen, u32>;

/// Counts the drops of a nest's values.
struct Token(Rc<Cell<usize>>);

impl Drop for Token {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

/// What a test keeps to watch a nest from outside.
struct Probe {
    depth: usize,
    drops: Rc<Cell<usize>>,
    /// The handle of each level, outermost first, once it has started.
    handles: Rc<RefCell<Vec<CoroutineHandle>>>,
}

impl Probe {
    /// Every value of the nest: the captured one and one per level's frame.
    fn values(&self) -> usize {
        self.depth + 2
    }

    fn statuses(&self) -> Vec<Status> {
        self.handles.borrow().iter().map(|h| h.status()).collect()
    }

    /// As seen from a plain thread stack while the nest is suspended.
    fn check_suspended(&self) {
        assert!(cogen::running().is_none());
        assert!(!cogen::is_yieldable());
        assert_eq!(self.statuses(), vec![Status::Suspended; self.depth + 1]);
        assert_eq!(self.drops.get(), 0, "nothing dropped while suspended");
    }

    /// After close or drop: every level dead, every value dropped once.
    fn check_finished(&self) {
        assert_eq!(self.statuses(), vec![Status::Dead; self.depth + 1]);
        assert_eq!(self.drops.get(), self.values(), "each value dropped once");
        assert!(cogen::running().is_none());
    }

    /// What the innermost body reports when resumed from a plain thread
    /// stack with the inputs summing to `total`.
    fn expected(&self, total: u32) -> Seen {
        let mut levels = vec![Status::Normal; self.depth];
        levels.push(Status::Running);
        Seen {
            total,
            running: Some((LEVELS[self.depth].to_string(), Status::Running)),
            levels,
            watched: Vec::new(),
            yieldable: true,
        }
    }
}

/// A coroutine named `level 0` that nests `depth` scoped coroutines, each
/// holding a token in its frame; the innermost suspends the outermost
/// through its `Yielder` (from the innermost stack) until an input is 0.
fn nest(depth: usize) -> (Co, Probe) {
    let drops = Rc::new(Cell::new(0));
    let handles = Rc::new(RefCell::new(Vec::new()));
    let captured = Token(drops.clone());
    let (d, h) = (drops.clone(), handles.clone());
    let co = Builder::new().name(LEVELS[0]).build(move |co, first| {
        let _captured = captured;
        h.borrow_mut()
            .push(cogen::running().expect("inside level 0"));
        descend(co, &h, &d, depth, 1, first)
    });
    let probe = Probe {
        depth,
        drops,
        handles,
    };
    (co, probe)
}

fn descend(
    co: &Yielder<u32, Seen>,
    handles: &Rc<RefCell<Vec<CoroutineHandle>>>,
    drops: &Rc<Cell<usize>>,
    depth: usize,
    level: usize,
    first: u32,
) -> u32 {
    let _frame = Token(drops.clone());
    if level > depth {
        return innermost(co, handles, first);
    }
    Builder::new()
        .name(LEVELS[level])
        .build_scoped(|_: &Yielder<(), ()>, ()| {
            handles
                .borrow_mut()
                .push(cogen::running().expect("inside a child"));
            descend(co, handles, drops, depth, level + 1, first)
        })
        .scope(|child| match child.resume(()) {
            Ok(CoroutineResult::Return(total)) => total,
            other => panic!("the child should return, got {other:?}"),
        })
}

fn innermost(
    co: &Yielder<u32, Seen>,
    handles: &Rc<RefCell<Vec<CoroutineHandle>>>,
    first: u32,
) -> u32 {
    let mut total = first;
    loop {
        let seen = Seen {
            total,
            running: cogen::running().map(|h| (h.name().unwrap_or("").to_string(), h.status())),
            levels: handles.borrow().iter().map(|h| h.status()).collect(),
            watched: WATCHED.with_borrow(|w| w.iter().map(|h| h.status()).collect()),
            yieldable: cogen::is_yieldable(),
        };
        match co.suspend(seen) {
            0 => return total,
            input => total += input,
        }
    }
}

fn yielded(co: &mut Co, input: u32) -> Seen {
    match co.resume(input) {
        Ok(CoroutineResult::Yield(seen)) => seen,
        other => panic!("expected a yield, got {other:?}"),
    }
}

/// Starts a nest (first input `first`) in a `Box` and checks its first
/// report. Starting it on the heap means that moving it out frees the
/// place where it first suspended: a pointer left behind there is a
/// use-after-free that AddressSanitizer reports, not a read of stale but
/// still mapped stack memory.
fn started(depth: usize, first: u32) -> (Box<Co>, Probe) {
    let (co, probe) = nest(depth);
    let mut co = Box::new(co);
    assert_eq!(yielded(&mut co, first), probe.expected(first));
    probe.check_suspended();
    (co, probe)
}

/// Resumes a moved nest twice more and lets it return.
fn finish(mut co: Co, probe: &Probe, first: u32) {
    assert_eq!(yielded(&mut co, 5), probe.expected(first + 5));
    probe.check_suspended();
    assert_eq!(yielded(&mut co, 7), probe.expected(first + 12));
    assert_eq!(co.resume(0).unwrap(), CoroutineResult::Return(first + 12));
    assert!(co.is_dead());
    assert_eq!(co.status(), Status::Dead);
    // The body has returned: its frames and its captures are gone.
    probe.check_finished();
    drop(co);
    probe.check_finished();
}

/// Moves a value out of its box and frees the box at once (a plain `*b`
/// keeps the allocation until the end of the enclosing block).
#[allow(clippy::boxed_local)] // taking the box is the point
fn unbox<T>(b: Box<T>) -> T {
    *b
}

const DEPTHS: [usize; 3] = [0, 1, 2];

// ------------------------------------------------------------ the report

/// The reproducer as reported: before the fix, resuming `m` read and wrote
/// the freed `Box` (heap-use-after-free under AddressSanitizer).
#[test]
fn resume_after_moving_out_of_a_box_from_a_nested_suspend() {
    let mut b = Box::new(Coroutine::<(), (), ()>::new(|co, ()| {
        cogen::ScopedCoroutine::<(), (), ()>::new(|_, ()| co.suspend(())).scope(|c| {
            let _ = c.resume(());
        });
        let _ = cogen::running();
    }));
    b.resume(()).unwrap();
    let mut m = {
        let b = b;
        *b
    };
    m.resume(()).unwrap();
    assert!(m.is_dead());
}

// ------------------------------------------------------------ moves, then resume

#[test]
fn move_out_of_a_box() {
    for depth in DEPTHS {
        let (boxed, probe) = started(depth, 1);
        let co = unbox(boxed);
        finish(co, &probe, 1);
    }
}

#[test]
fn move_into_another_box_and_resume_there() {
    for depth in DEPTHS {
        let (co, probe) = started(depth, 2);
        let mut boxed = Box::new(unbox(co));
        assert_eq!(yielded(&mut boxed, 3), probe.expected(5));
        let co = unbox(boxed); // and out again
        finish(co, &probe, 5);
    }
}

#[test]
fn move_by_vec_reallocation() {
    for depth in DEPTHS {
        let mut cos = Vec::with_capacity(1);
        let mut probes = Vec::new();
        for i in 0..40 {
            // Each push may reallocate and move every suspended nest so far.
            let (co, probe) = started(depth, i);
            cos.push(unbox(co));
            probes.push(probe);
            for (j, (co, probe)) in cos.iter_mut().zip(&probes).enumerate() {
                let seen = yielded(co, 1);
                assert_eq!(seen, probe.expected(j as u32 + (i - j as u32) + 1));
            }
        }
        // Removing the first shifts (moves) all the others.
        let first = cos.remove(0);
        drop(first);
        probes[0].check_finished();
        for (co, probe) in cos.into_iter().zip(&probes[1..]) {
            probe.check_suspended();
            drop(co);
            probe.check_finished();
        }
    }
}

#[test]
fn move_by_swap() {
    for depth in DEPTHS {
        let (mut a, probe_a) = started(depth, 10);
        let (mut b, probe_b) = started(depth, 20);
        std::mem::swap(&mut *a, &mut *b);
        // `a` now holds the nest that started with 20.
        assert_eq!(yielded(&mut a, 1), probe_b.expected(21));
        assert_eq!(yielded(&mut b, 1), probe_a.expected(11));
        std::mem::swap(&mut a, &mut b); // the boxes, this time
        finish(unbox(a), &probe_a, 11);
        finish(unbox(b), &probe_b, 21);
    }
}

#[test]
fn move_by_replace() {
    for depth in DEPTHS {
        let (mut slot, probe_a) = started(depth, 30);
        let (other, probe_b) = started(depth, 40);
        let old = std::mem::replace(&mut *slot, unbox(other));
        finish(old, &probe_a, 30);
        finish(unbox(slot), &probe_b, 40);
    }
}

#[test]
fn move_into_a_closure() {
    for depth in DEPTHS {
        let (co, probe) = started(depth, 4);
        // Moved into the closure's captures, and the closure into a box.
        let step: Box<dyn FnOnce(u32) -> (Seen, Co)> = Box::new(move |input| {
            let mut co = unbox(co);
            (yielded(&mut co, input), co)
        });
        let (seen, co) = step(1);
        assert_eq!(seen, probe.expected(5));
        finish(co, &probe, 5);
    }
}

thread_local! {
    static PARKED: RefCell<Option<Co>> = const { RefCell::new(None) };
}

#[test]
fn move_into_a_thread_local() {
    for depth in DEPTHS {
        let (co, probe) = started(depth, 6);
        PARKED.set(Some(unbox(co)));
        // Resume it where it lies, in the thread-local.
        let seen = PARKED.with_borrow_mut(|c| yielded(c.as_mut().unwrap(), 1));
        assert_eq!(seen, probe.expected(7));
        let co = PARKED.take().unwrap();
        finish(co, &probe, 7);
    }
}

/// Moved, then resumed from inside another coroutine: the nest's levels
/// and the resuming coroutine all read the statuses Lua gives them.
#[test]
fn resume_a_moved_nest_from_inside_another_coroutine() {
    for depth in DEPTHS {
        let (co, probe) = started(depth, 1);
        let co = unbox(co);
        let mut driver: Coroutine<Co, Seen, Co> = Coroutine::new(|driver, mut co: Co| {
            let seen = yielded(&mut co, 2);
            assert_eq!(cogen::running().unwrap().status(), Status::Running);
            driver.suspend(seen);
            co
        });
        WATCHED.set(vec![driver.handle()]);
        let seen = driver.resume(co).unwrap().as_yield().unwrap();
        WATCHED.set(Vec::new());
        let mut expected = probe.expected(3);
        expected.watched = vec![Status::Normal];
        assert_eq!(seen, expected);
        probe.check_suspended();
        let co = driver
            .resume(co_placeholder())
            .unwrap()
            .as_return()
            .unwrap();
        finish(co, &probe, 3);
    }
}

/// A throwaway input for the driver's last resume (it ignores it).
fn co_placeholder() -> Co {
    Coroutine::new(|_, x| x)
}

// ------------------------------------------------------------ moves, then close or drop

#[test]
fn close_after_a_move() {
    for depth in DEPTHS {
        let (co, probe) = started(depth, 1);
        let mut co = unbox(co);
        assert!(co.close().is_ok());
        assert!(co.is_dead());
        assert_eq!(co.resume(9).unwrap_err().into_input(), Some(9));
        assert!(co.close().is_ok(), "closing twice is fine");
        drop(co);
        probe.check_finished();
    }
}

#[test]
fn drop_after_a_move() {
    for depth in DEPTHS {
        let (co, probe) = started(depth, 1);
        let mut v = Vec::with_capacity(1);
        v.push(unbox(co));
        v.extend((0..16).map(|_| co_placeholder()));
        drop(v.swap_remove(0));
        probe.check_finished();
    }
}

/// Moved several times between resumes, and the handles taken from
/// outside before the first move still read right.
#[test]
fn handles_survive_every_move() {
    for depth in DEPTHS {
        let (mut boxed, probe) = started(depth, 0);
        let handle = boxed.handle();
        assert_eq!(handle.status(), Status::Suspended);
        for i in 1..=5 {
            let mut co = unbox(boxed);
            assert_eq!(yielded(&mut co, 1), probe.expected(i));
            assert_eq!(handle.status(), Status::Suspended);
            boxed = Box::new(co);
        }
        assert!(handle.same_coroutine(&probe.handles.borrow()[0]));
        drop(boxed);
        assert_eq!(handle.status(), Status::Dead);
        probe.check_finished();
    }
}

/// Closing a moved nest from inside another coroutine.
#[test]
fn close_a_moved_nest_from_inside_another_coroutine() {
    for depth in DEPTHS {
        let (co, probe) = started(depth, 1);
        let co = unbox(co);
        let mut closer: Coroutine<Co, (), bool> =
            Coroutine::new(|_, mut co: Co| co.close().is_ok());
        assert_eq!(closer.resume(co).unwrap(), CoroutineResult::Return(true));
        probe.check_finished();
    }
}
