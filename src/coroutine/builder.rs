//! [`Builder`]: a coroutine's stack size and name, set before it is created,
//! and the constructors of [`Coroutine`] and [`ScopedCoroutine`].

use std::borrow::Cow;
use std::marker::PhantomData;

use super::raw::Raw;
use super::{Coroutine, ScopedCoroutine, Yielder};
use crate::stack::{self, StackError};

/// Sets the stack size and the name of a coroutine before creating it.
///
/// ```
/// let mut co = cogen::Builder::new()
///     .name("counter")
///     .stack_size(64 * 1024)
///     .build(|co, start: u32| {
///         let mut n = start;
///         loop {
///             n += co.suspend(n);
///         }
///     });
/// let co: &mut cogen::Coroutine<u32, u32, ()> = &mut co;
/// assert_eq!(co.resume(10).unwrap().as_yield(), Some(10));
/// assert_eq!(co.resume(5).unwrap().as_yield(), Some(15));
/// assert_eq!(co.handle().name(), Some("counter"));
/// ```
#[derive(Clone, Debug)]
pub struct Builder {
    pub(super) stack_size: usize,
    pub(super) name: Option<Cow<'static, str>>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// A builder with [`DEFAULT_STACK_SIZE`](crate::stack::DEFAULT_STACK_SIZE) and no name.
    pub fn new() -> Self {
        Builder {
            stack_size: stack::DEFAULT_STACK_SIZE,
            name: None,
        }
    }

    /// The usable stack size in bytes, rounded up to a whole page and to at
    /// least [`MIN_STACK_SIZE`](crate::stack::MIN_STACK_SIZE). The top
    /// 2 KiB or so are cogen's: its record of the coroutine (80 bytes),
    /// below an offset of up to 1,984 bytes that spreads parked stacks over
    /// the cache; the rest is the body's.
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = bytes;
        self
    }

    /// A name, shown by handles, panics and the stack-overflow message.
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Maps stacks of this builder's size into this thread's pool until it
    /// holds `count` of them (raising the pool's capacity to `count` if it is
    /// lower), so that the next `count` coroutines of this size made on this
    /// thread start without a system call. Returns how many were mapped.
    ///
    /// For a program that creates bursts of many coroutines (or tasks) and
    /// wants no `mmap` while it runs: the memory is reserved now, and each
    /// stack's pages become resident only as they are touched.
    ///
    /// Once the thread is ending and its pool is closed (in a thread-local's
    /// destructor that runs after cogen's), it maps nothing and returns
    /// `Ok(0)`.
    ///
    /// ```
    /// let mapped = cogen::Builder::new().stack_size(64 * 1024).prewarm(100).unwrap();
    /// assert!(mapped <= 100);
    /// assert!(cogen::stack::pooled_stacks() >= 100);
    /// ```
    ///
    /// # Errors
    /// When a stack cannot be mapped (see [`StackError`]); the stacks mapped
    /// before stay in the pool.
    pub fn prewarm(&self, count: usize) -> Result<usize, StackError> {
        let size = stack::effective_size(self.stack_size)?;
        stack::prewarm(size, count, super::raw::STACK_USER)
    }

    /// Creates the coroutine; nothing runs until its first `resume`.
    ///
    /// # Panics
    /// If no stack can be mapped; the message says why (see [`StackError`]).
    /// [`try_build`](Builder::try_build) returns that error instead.
    #[track_caller]
    #[inline]
    pub fn build<Input, Yield, Return, F>(self, body: F) -> Coroutine<Input, Yield, Return>
    where
        F: FnOnce(&Yielder<Input, Yield>, Input) -> Return + 'static,
        Input: 'static,
        Yield: 'static,
        Return: 'static,
    {
        self.try_build(body).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Creates the coroutine, or says why no stack could be mapped.
    #[inline]
    pub fn try_build<Input, Yield, Return, F>(
        self,
        body: F,
    ) -> Result<Coroutine<Input, Yield, Return>, StackError>
    where
        F: FnOnce(&Yielder<Input, Yield>, Input) -> Return + 'static,
        Input: 'static,
        Yield: 'static,
        Return: 'static,
    {
        // SAFETY: everything the body and the value types hold is 'static.
        let raw = unsafe { Raw::new(self, body)? };
        Ok(Coroutine {
            raw,
            returned: None,
        })
    }

    /// Creates a [`ScopedCoroutine`] that may borrow from its environment.
    ///
    /// # Panics
    /// If no stack can be mapped, like [`build`](Builder::build).
    #[track_caller]
    pub fn build_scoped<'a, Input, Yield, Return, F>(
        self,
        body: F,
    ) -> ScopedCoroutine<'a, Input, Yield, Return>
    where
        F: FnOnce(&Yielder<Input, Yield>, Input) -> Return + 'a,
    {
        self.try_build_scoped(body)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Creates a [`ScopedCoroutine`], or says why no stack could be mapped.
    pub fn try_build_scoped<'a, Input, Yield, Return, F>(
        self,
        body: F,
    ) -> Result<ScopedCoroutine<'a, Input, Yield, Return>, StackError>
    where
        F: FnOnce(&Yielder<Input, Yield>, Input) -> Return + 'a,
    {
        // SAFETY: the coroutine can only be resumed inside `scope`, which
        // drops it (unwinding its stack) before the borrows of `'a` end.
        let raw = unsafe { Raw::new(self, body)? };
        Ok(ScopedCoroutine {
            raw,
            borrow: PhantomData,
        })
    }
}
