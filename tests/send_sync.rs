//! Compile-time facts: coroutines and everything that reaches into one stay
//! on their thread (`!Send`, `!Sync`), whatever their value types are; the
//! error types can cross threads.

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

// Values that describe a coroutine, not reach into it, are ordinary data.
assert_impl_all!(Status: Send, Sync, Copy, Eq, std::hash::Hash, std::fmt::Debug);
assert_impl_all!(CoroutineResult<u32, String>: Send, Sync, Clone, Eq, std::hash::Hash);
assert_impl_all!(Builder: Send, Sync, Clone, std::fmt::Debug, Default);
assert_impl_all!(Panic: Send, std::error::Error);
assert_impl_all!(ResumeError<u32>: Send, std::error::Error);
assert_impl_all!(StackError: Send, Sync, std::error::Error);
assert_impl_all!(CoroutineHandle: Clone, std::fmt::Debug);
assert_impl_all!(Coroutine<(), u32, ()>: Iterator, std::iter::FusedIterator, std::fmt::Debug);

#[test]
fn errors_cross_threads() {
    let mut co: Coroutine<u32, (), ()> = Coroutine::new(|_, _| panic!("sent"));
    let err = co.resume(1).unwrap_err();
    let message = std::thread::spawn(move || err.to_string()).join().unwrap();
    assert_eq!(message, "coroutine panicked: sent");
}
