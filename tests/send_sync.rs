//! Compile-time facts: coroutines and everything that reaches into one stay
//! on their thread (`!Send`, `!Sync`), whatever their value types are; the
//! error types can cross threads and go into `Box<dyn Error + Send + Sync>`
//! with `?`, even those that carry a panic payload (which is only `Send`).

use std::error::Error;

use cogen::event_loop::{
    CancelHandle, Elapsed, EventLoop, JoinError, PanicPolicy, RecvError, RecvTimeoutError,
    RunError, Select, SendError, SendTimeoutError, StuckTask, TryRecvError, TrySendError,
    WaitingOn,
};
use cogen::pipeline::{BoxError, InvalidUtf8, PipelineExt, StageError, source};
use cogen::{
    Builder, Coroutine, CoroutineHandle, CoroutineResult, Panic, ResumeError, ScopedCoroutine,
    ScopedRef, StackError, Status, Yielder,
};
use static_assertions::{assert_impl_all, assert_not_impl_any};

// A coroutine's stack may hold references to thread-locals: moving it, or
// sharing it, across threads would be unsound. Even with `Send` value types.
assert_not_impl_any!(Coroutine<(), (), ()>: Send, Sync);
assert_not_impl_any!(Coroutine<u32, String, Vec<u8>>: Send, Sync);
assert_not_impl_any!(ScopedCoroutine<'static, (), (), ()>: Send, Sync);
assert_not_impl_any!(ScopedCoroutine<'static, u32, u32, u32>: Send, Sync);
assert_not_impl_any!(ScopedRef<'static, (), (), ()>: Send, Sync);
assert_not_impl_any!(ScopedRef<'static, u32, u32, u32>: Send, Sync);
// A body only ever gets `&Yielder`, which must not leave the thread: that
// needs `Yielder: !Sync`. (`Yielder` itself is `Send`, from corosensei's
// type, but no code can own one, so only the reference matters.)
assert_not_impl_any!(Yielder<(), ()>: Sync);
assert_not_impl_any!(Yielder<u32, u32>: Sync);
assert_not_impl_any!(&'static Yielder<u32, u32>: Send, Sync);
// Handles share the status record of a coroutine on this thread.
assert_not_impl_any!(CoroutineHandle: Send, Sync);
// Sockets wait in their loop's reactor, on the loop's thread.
#[cfg(feature = "net")]
mod net {
    use cogen::event_loop::net::{Incoming, TcpListener, TcpStream, UdpSocket};
    use static_assertions::assert_not_impl_any;
    assert_not_impl_any!(TcpListener: Send, Sync);
    assert_not_impl_any!(TcpStream: Send, Sync);
    assert_not_impl_any!(UdpSocket: Send, Sync);
    assert_not_impl_any!(Incoming<'static>: Send, Sync);
}

// Values that describe a coroutine, not reach into it, are ordinary data.
assert_impl_all!(Status: Send, Sync, Copy, Eq, std::hash::Hash, std::fmt::Debug);
assert_impl_all!(CoroutineResult<u32, String>: Send, Sync, Clone, Eq, std::hash::Hash);
assert_impl_all!(Builder: Send, Sync, Clone, std::fmt::Debug, Default);
assert_impl_all!(StackError: Send, Sync, std::error::Error);
assert_impl_all!(CoroutineHandle: Clone, std::fmt::Debug);
assert_impl_all!(Coroutine<(), u32, ()>: Iterator, std::iter::FusedIterator, std::fmt::Debug);

// Every error type is `Send + Sync + 'static + Error`, so `?` turns it into a
// `Box<dyn Error + Send + Sync>`. Those that carry a panic keep its payload
// (`Box<dyn Any + Send>`) where `&self` cannot reach it.
assert_impl_all!(Panic: Send, Sync, Error);
assert_impl_all!(ResumeError<u32>: Send, Sync, Error);
assert_impl_all!(ResumeError<String>: Send, Sync, Error);
assert_impl_all!(ResumeError<()>: Send, Sync, Error);
assert_impl_all!(JoinError: Send, Sync, Error);
assert_impl_all!(RunError: Send, Sync, Error);
assert_impl_all!(StuckTask: Send, Sync, Clone);
assert_impl_all!(WaitingOn: Send, Sync, Clone);
assert_impl_all!(StageError: Send, Sync, Error);
assert_impl_all!(BoxError: Send, Sync);
assert_impl_all!(InvalidUtf8: Send, Sync, Error);
assert_impl_all!(SendError<u32>: Send, Sync, Error);
assert_impl_all!(TrySendError<u32>: Send, Sync, Error);
assert_impl_all!(RecvError: Send, Sync, Error);
assert_impl_all!(Elapsed: Send, Sync, Copy, Eq, std::hash::Hash, Error);
assert_impl_all!(TryRecvError: Send, Sync, Error);
assert_impl_all!(SendTimeoutError<u32>: Send, Sync, Error);
assert_impl_all!(RecvTimeoutError: Send, Sync, Copy, Eq, Error);
// An error that hands back a value is as thread-safe as that value.
assert_impl_all!(ResumeError<std::cell::Cell<u32>>: Send, Error);
assert_not_impl_any!(ResumeError<std::cell::Cell<u32>>: Sync);
assert_not_impl_any!(ResumeError<std::rc::Rc<u32>>: Send, Sync);
assert_not_impl_any!(SendError<std::rc::Rc<u32>>: Send, Sync);
assert_not_impl_any!(SendTimeoutError<std::rc::Rc<u32>>: Send, Sync);

// Handles into a loop stay on its thread.
assert_impl_all!(CancelHandle: Clone, std::fmt::Debug);
assert_not_impl_any!(CancelHandle: Send, Sync);
assert_not_impl_any!(Select<'static, u32>: Send, Sync);

type AnyError = Box<dyn Error + Send + Sync + 'static>;

/// Silences the panics these tests raise on purpose.
fn quiet() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::panic::set_hook(Box::new(|_| {})));
}

#[test]
fn question_mark_boxes_a_resume_error() {
    fn run() -> Result<(), AnyError> {
        let mut co: Coroutine<u32, (), ()> = Coroutine::new(|_, _| panic!("in the body"));
        co.resume(1)?;
        Ok(())
    }
    quiet();
    let err = run().unwrap_err();
    assert_eq!(err.to_string(), "coroutine panicked: in the body");
    let err = err.downcast::<ResumeError<u32>>().unwrap();
    assert_eq!(err.panic().unwrap().message(), "in the body");
}

#[test]
fn question_mark_boxes_a_panic() {
    fn run() -> Result<(), AnyError> {
        let mut co: Coroutine<(), (), ()> = Coroutine::new(|_, ()| std::panic::panic_any(7_u8));
        let panic = co.resume(()).unwrap_err().try_into_panic().unwrap();
        Err(panic)?
    }
    quiet();
    let err = run().unwrap_err();
    let panic = err.downcast::<Panic>().unwrap();
    assert_eq!(panic.downcast_ref::<u8>(), Some(&7));
}

#[test]
fn question_mark_boxes_a_join_error() {
    fn run() -> Result<u32, AnyError> {
        let ev = EventLoop::new();
        let task = ev.spawn(|| -> u32 { panic!("in the task") });
        ev.run()?;
        Ok(task.join()?)
    }
    quiet();
    let err = run().unwrap_err();
    let err = err.downcast::<JoinError>().unwrap();
    assert_eq!(err.panic().unwrap().message(), "in the task");
}

#[test]
fn question_mark_boxes_a_run_error() {
    fn run() -> Result<(), AnyError> {
        let ev = EventLoop::builder()
            .panic_policy(PanicPolicy::Collect)
            .build();
        ev.spawn(|| panic!("detached")).detach();
        ev.run()?;
        Ok(())
    }
    quiet();
    let err = run().unwrap_err();
    let err = err.downcast::<RunError>().unwrap();
    assert_eq!(err.panics()[0].message(), "detached");
}

#[test]
fn question_mark_boxes_a_stage_error() {
    fn run() -> Result<u32, AnyError> {
        let mut sum = 0;
        for item in source([1_u32, 2, 3]).stage("broken", |co, up| {
            for x in up {
                assert!(x < 2, "in the stage");
                co.suspend(x);
            }
        }) {
            sum += item?;
        }
        Ok(sum)
    }
    quiet();
    let err = run().unwrap_err();
    let err = err.downcast::<StageError>().unwrap();
    assert_eq!(err.stage(), "broken");
    assert_eq!(err.panic().unwrap().message(), "in the stage");
}

#[test]
fn errors_cross_threads() {
    let mut co: Coroutine<u32, (), ()> = Coroutine::new(|_, _| panic!("sent"));
    let err = co.resume(1).unwrap_err();
    // Shared by reference...
    let message = std::thread::scope(|s| s.spawn(|| err.to_string()).join().unwrap());
    assert_eq!(message, "coroutine panicked: sent");
    // ...and moved.
    let message = std::thread::spawn(move || err.to_string()).join().unwrap();
    assert_eq!(message, "coroutine panicked: sent");
}
