//! Scoped pipelines: [`scope`] runs a closure in which stages added with
//! [`stage_in`](super::PipelineExt::stage_in) may borrow from the enclosing
//! function, and closes every such stage before it returns. This file owns
//! [`Scope`], its registry of stages, and [`InScope`], a scoped stage's
//! coroutine.
//!
//! # Why borrowing is sound
//!
//! A scoped stage's body borrows data that lives only as long as `'env`, but
//! runs on a coroutine of its own, which an owner could forget
//! (`mem::forget`, an `Rc` cycle) while the body is suspended: the borrows on
//! its stack would then outlive `'env`, and code still on that stack (a
//! `thread::scope` the body suspended inside, a guard's destructor) could
//! use them after they end ([corosensei issue 27] and its neighbours 59 and
//! 60 show how). So the soundness of this module must not depend on any
//! destructor of a value the user holds; it rests on four facts instead:
//!
//! 1. Every scoped coroutine is created by [`Scope::start`], which records a
//!    weak reference to it in the scope, and is owned by an `Rc` that only
//!    its [`InScope`] handle holds. Leaking the handle leaks that `Rc`, which
//!    keeps the coroutine reachable through the weak reference.
//! 2. [`scope`] closes every coroutine still alive before it returns, and
//!    also when the closure unwinds (a guard's `Drop`, on the `scope`
//!    frame, which the user cannot leak), and a panic during one close
//!    (a destructor's, or one from dropping what the close reports) does
//!    not stop it closing the rest: it goes on once all are closed. Closing unwinds the suspended
//!    stack, or drops a never-started body, so that afterwards nothing of the
//!    body, and none of its borrows, remains. Only the body is erased to
//!    `'static` (see [`Scope::start`]); the items and the return value are
//!    `'static` types, so a dead coroutine holds nothing borrowed.
//! 3. A handle's type names `'scope`, which the closure given to [`scope`]
//!    receives as a higher-ranked lifetime: no handle can leave the closure
//!    (returned, stored outside, sent to another thread: it is `!Send`),
//!    so no body runs after `scope` has closed it. A body must outlive
//!    `'scope`, so it borrows only what outlives the call to `scope`, never
//!    the closure's own locals (which die before the guard runs).
//! 4. No scoped coroutine is running when the guard closes them: a body
//!    runs only inside a resume made through its handle, from within the
//!    closure, and a panic in a body is caught at its coroutine's root. (A
//!    body that suspends a coroutine enclosing the scope leaves its resume
//!    on that coroutine's stack; closing that coroutine unwinds through the
//!    body, its resume and the closure before it reaches the guard.) If a
//!    coroutine is found borrowed all the same, the process aborts rather
//!    than return while a body may still hold its borrows.
//!
//! [corosensei issue 27]: https://github.com/Amanieu/corosensei/issues/27

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::rc::{Rc, Weak};

use super::Stage;
use crate::coroutine::{Builder, Coroutine, CoroutineResult, Status, Yielder};
use crate::error::{Panic, ResumeError, drop_quietly};
use crate::resumable::Resumable;

/// Runs `f` with a [`Scope`] in which pipeline stages may borrow from the
/// enclosing function (add them with
/// [`PipelineExt::stage_in`](super::PipelineExt::stage_in)), and closes
/// every such stage before returning, as [`std::thread::scope`] joins its
/// threads.
///
/// A scoped stage can push into a local `Vec` or bump a local counter:
///
/// ```
/// use cogen::pipeline::{self, PipelineExt, read_chunks};
///
/// let log: &[u8] = b"GET /a 200\nGET /\xff 404\nPOST /b 500\n";
/// let mut skipped = 0;
/// let mut statuses = Vec::new();
/// pipeline::scope(|s| {
///     let requests = read_chunks(log, 8).byte_lines().stage_in(s, "utf8", |co, up| {
///         for line in up {
///             match String::from_utf8(line) {
///                 Ok(line) => co.suspend(line),
///                 Err(_) => skipped += 1,
///             }
///         }
///     });
///     for request in requests {
///         statuses.push(request.unwrap().rsplit(' ').next().unwrap().to_owned());
///     }
/// });
/// assert_eq!(skipped, 1);
/// assert_eq!(statuses, ["200", "500"]);
/// ```
///
/// Whatever the closure does with a stage (drops it half way, forgets it,
/// panics while stages are suspended), every stage's coroutine has been
/// closed, running each destructor on its stack, when `scope` returns or
/// unwinds. A stage cannot leave the closure:
///
/// ```compile_fail
/// use cogen::pipeline::{self, PipelineExt, source};
///
/// let escaped = pipeline::scope(|s| {
///     source(1..=3).stage_in(s, "double", |co, up| up.for_each(|x| { co.suspend(x * 2); }))
/// });
/// ```
///
/// ```compile_fail
/// use cogen::pipeline::{self, PipelineExt, source};
///
/// let mut kept = None;
/// pipeline::scope(|s| {
///     kept = Some(source(1..=3).stage_in(s, "id", |co, up| up.for_each(|x| { co.suspend(x); })));
/// });
/// ```
///
/// nor move to another thread:
///
/// ```compile_fail
/// use cogen::pipeline::{self, PipelineExt, source};
///
/// std::thread::scope(|threads| {
///     pipeline::scope(|s| {
///         let stage = source(1..=3).stage_in(s, "id", |co, up| up.for_each(|x| { co.suspend(x); }));
///         threads.spawn(move || stage.count());
///     });
/// });
/// ```
///
/// nor into an outer scope from an inner one:
///
/// ```compile_fail
/// use cogen::pipeline::{self, PipelineExt, source};
///
/// pipeline::scope(|outer| {
///     let mut kept = Vec::new();
///     pipeline::scope(|inner| {
///         kept.push(source(1..=3).stage_in(inner, "id", |co, up| up.for_each(|x| { co.suspend(x); })));
///     });
/// });
/// ```
///
/// and a stage's body may not borrow the closure's own locals, which die
/// before the scope closes the stage:
///
/// ```compile_fail
/// use cogen::pipeline::{self, PipelineExt, source};
///
/// pipeline::scope(|s| {
///     let mut count = 0;
///     let stage = source(1..=3).stage_in(s, "count", |co, up| {
///         up.for_each(|x| { count += 1; co.suspend(x); })
///     });
///     std::mem::forget(stage);
/// });
/// ```
pub fn scope<'env, F, T>(f: F) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    let scope = Scope {
        stages: RefCell::new(Vec::new()),
        scope: PhantomData,
        env: PhantomData,
    };
    let close = CloseAll(&scope);
    let out = f(&scope);
    drop(close);
    out
}

/// The scope of [`scope`]: pipeline stages added in it with
/// [`stage_in`](super::PipelineExt::stage_in) may borrow anything that
/// outlives `'env`, and are closed when the scope ends.
///
/// Like [`std::thread::Scope`], `'scope` is the scope's own lifetime and
/// `'env` that of what its stages borrow.
pub struct Scope<'scope, 'env: 'scope> {
    /// Every coroutine started in the scope, by a weak reference: a dead
    /// entry is one whose handle was dropped, which closed it.
    stages: RefCell<Vec<Weak<dyn CloseAtEnd>>>,
    /// Invariant in both lifetimes, as `std::thread::Scope` is.
    scope: PhantomData<&'scope mut &'scope ()>,
    env: PhantomData<&'env mut &'env ()>,
}

impl<'scope> Scope<'scope, '_> {
    /// Starts (creates, suspended before its first line) a coroutine running
    /// `body` in this scope, and records it so that the scope closes it.
    #[track_caller]
    pub(super) fn start<Out, R, F>(
        &'scope self,
        builder: Builder,
        body: F,
    ) -> InScope<'scope, Out, R>
    where
        Out: 'static,
        R: 'static,
        F: FnOnce(&Yielder<(), Out>, ()) -> R + 'scope,
    {
        let body: Body<'scope, Out, R> = Box::new(body);
        // SAFETY: only the lifetime bound of the trait object changes, which
        // does not change its layout. The erased body runs, and is dropped,
        // only within 'scope: the coroutine that owns it is recorded below
        // (before it can first be resumed) and closed by `scope` before
        // 'scope ends, even if its handle is leaked, and the handle cannot
        // outlive 'scope (see the module docs).
        let body: Body<'static, Out, R> = unsafe { std::mem::transmute(body) };
        let co = Rc::new(RefCell::new(builder.build(body)));
        let weak: Weak<RefCell<Coroutine<(), Out, R>>> = Rc::downgrade(&co);
        let mut stages = self.stages.borrow_mut();
        if stages.len() == stages.capacity() {
            // Before the registry grows, forget the stages already dropped
            // (each dead entry keeps a small allocation): a long scope that
            // starts many short stages stays within twice its live ones.
            stages.retain(|stage| stage.strong_count() > 0);
        }
        stages.push(weak);
        drop(stages);
        InScope {
            co,
            scope: PhantomData,
        }
    }
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stages = self.stages.borrow();
        f.debug_struct("Scope")
            .field("stages", &stages.len())
            .field(
                "live",
                &stages.iter().filter(|s| s.strong_count() > 0).count(),
            )
            .finish()
    }
}

/// A scoped stage's body, boxed so that its lifetime bound can be erased.
type Body<'a, Out, R> = Box<dyn FnOnce(&Yielder<(), Out>, ()) -> R + 'a>;

/// Closes every coroutine of the scope still alive, when `scope` returns
/// or unwinds.
struct CloseAll<'a, 'scope, 'env>(&'a Scope<'scope, 'env>);

impl Drop for CloseAll<'_, '_, '_> {
    fn drop(&mut self) {
        // Last started first: a later stage holds the earlier ones as its
        // upstream. The borrow ends before each close, whose destructors
        // may start (and so record) more stages: they are closed too.
        //
        // Every stage is closed before this returns, whatever panics on the
        // way: user code runs here (the destructors a close runs, and those
        // of the panic a close reports, whose payload may itself panic when
        // dropped), and a panic that left the loop would leave the stages
        // after it suspended with their borrows live. The first such panic
        // (or an unwinding on its way out, such as the close of a coroutine
        // around the scope: std's `catch_unwind` holds it too) goes on once
        // all are closed, unless the scope is unwinding already.
        let mut first = None;
        loop {
            let Some(stage) = self.0.stages.borrow_mut().pop() else {
                break;
            };
            if let Some(stage) = stage.upgrade() {
                let closed = catch_unwind(AssertUnwindSafe(|| stage.close_at_end()));
                if let Err(payload) = closed {
                    if first.is_none() {
                        first = Some(payload);
                    } else {
                        drop_quietly(payload);
                    }
                }
            }
        }
        if let Some(payload) = first {
            if std::thread::panicking() {
                drop_quietly(payload);
            } else {
                resume_unwind(payload);
            }
        }
    }
}

/// A coroutine that the scope closes at its end, whatever its types.
trait CloseAtEnd {
    /// Closes the coroutine, or aborts if it is running.
    fn close_at_end(&self);
}

impl<Out, R> CloseAtEnd for RefCell<Coroutine<(), Out, R>> {
    fn close_at_end(&self) {
        match self.try_borrow_mut() {
            // A panic of a destructor on its stack was the stage's to
            // report; the scope only guarantees that the stack is gone.
            Ok(mut co) => drop(co.close()),
            // Running: returning now would let its body outlive its borrows.
            // Unreachable (see the module docs), so never a silent leak.
            Err(_) => std::process::abort(),
        }
    }
}

/// The coroutine of a scoped stage: a handle, valid within `'scope`, to a
/// coroutine that its [`Scope`] closes when it ends. Dropping the handle
/// closes the coroutine at once.
///
/// It is the [`Resumable`] that a [`ScopedStage`] drives; made by
/// [`PipelineExt::stage_in`](super::PipelineExt::stage_in).
pub struct InScope<'scope, Out, R = ()> {
    co: Rc<RefCell<Coroutine<(), Out, R>>>,
    scope: PhantomData<&'scope ()>,
}

/// A pipeline stage whose body borrows from the enclosing function: made by
/// [`PipelineExt::stage_in`](super::PipelineExt::stage_in) inside a
/// [`scope`].
pub type ScopedStage<'scope, Out, R = ()> = Stage<InScope<'scope, Out, R>>;

/// A coroutine found borrowed is running: only code on its own stack can
/// reach its handle then (its body, or a destructor that the scope's close
/// of it runs, which must not panic: it may be unwinding). It cannot be
/// resumed, so `resume` answers as for a dead coroutine and `close` has
/// nothing to do; `status` says [`Status::Running`], as a coroutine's own
/// code sees it.
impl<Out, R> Resumable<()> for InScope<'_, Out, R> {
    type Yield = Out;
    type Return = R;

    #[inline]
    fn resume(&mut self, input: ()) -> Result<CoroutineResult<Out, R>, ResumeError<()>> {
        match self.co.try_borrow_mut() {
            Ok(mut co) => co.resume(input),
            Err(_) => Err(ResumeError::Dead(input)),
        }
    }

    #[inline]
    fn status(&self) -> Status {
        match self.co.try_borrow() {
            Ok(co) => co.status(),
            Err(_) => Status::Running,
        }
    }

    fn close(&mut self) -> Result<(), Panic> {
        match self.co.try_borrow_mut() {
            Ok(mut co) => co.close(),
            Err(_) => Ok(()),
        }
    }
}

impl<Out, R> fmt::Debug for InScope<'_, Out, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.co.try_borrow() {
            Ok(co) => f.debug_tuple("InScope").field(&*co).finish(),
            // Running (see the `Resumable` impl).
            Err(_) => f.debug_tuple("InScope").field(&Status::Running).finish(),
        }
    }
}
