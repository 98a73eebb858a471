//! Errors of the coroutine layer: why a resume failed, and a caught panic.

use std::any::Any;
use std::borrow::Cow;
use std::fmt;
use std::mem::ManuallyDrop;
use std::panic::AssertUnwindSafe;

/// A panic caught at the root of a coroutine body (or a task, or a stage).
///
/// It keeps the original payload, like [`std::thread::JoinHandle::join`]'s
/// error, and knows which coroutine it came from when that one had a name.
/// [`message`](Panic::message) reads a `&str` or `String` payload, the usual
/// case for `panic!("...")`; [`downcast_ref`](Panic::downcast_ref) reads a
/// payload of another type.
///
/// `Panic` is `Send + Sync`, so it (and every error that holds one) goes
/// into `Box<dyn Error + Send + Sync>` with `?`. The payload is only `Send`,
/// so, like tokio's `JoinError`, a `Panic` never lends it out through `&self`
/// except as a type that is `Sync`: the whole payload is reachable through
/// [`payload_mut`](Panic::payload_mut) or [`into_panic`](Panic::into_panic).
///
/// Dropping a `Panic` never panics: if the payload's own destructor does,
/// that second panic is caught and its payload dropped in turn (std's
/// thread join aborts the process there instead).
///
/// ```
/// use cogen::Coroutine;
///
/// fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
///     let mut co: Coroutine<(), (), ()> = Coroutine::new(|_, ()| panic!("boom"));
///     co.resume(())?;
///     Ok(())
/// }
/// assert_eq!(run().unwrap_err().to_string(), "coroutine panicked: boom");
/// ```
pub struct Panic(Payload);

// One pointer, whose null is `ResumeError<()>::Dead`: see `Payload`.
const _: () = assert!(
    std::mem::size_of::<Panic>() == std::mem::size_of::<usize>()
        && std::mem::size_of::<ResumeError<()>>() == std::mem::size_of::<usize>()
);

/// What a [`Panic`] holds, behind one pointer.
struct Caught {
    payload: Box<dyn Any + Send + 'static>,
    name: Option<Cow<'static, str>>,
}

/// A caught panic behind a wall that makes it `Sync`: no `&self` method of
/// this type lends out the `dyn Any + Send` payload (which may be `!Sync`),
/// only values of a type that is itself `Sync`.
///
/// It is one pointer wide, so every `Result` with a `Panic` in its error is
/// no wider than its `Ok` side needs: a resume's result of a word or two
/// comes back in registers, where a payload and a name inline made it five
/// words in memory, on the path that holds no panic too. Its destructor is
/// out of line and cold: such a `Result` drops in a few inlined
/// instructions on that path.
struct Payload(ManuallyDrop<Box<Caught>>);

impl Drop for Payload {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: `self.0` is not used after this. By value, not by
        // reference: a reference would pin the enclosing `Result` to memory.
        // Dropping a `Panic` must not unwind: it is dropped in many places
        // that must not, by the crate and by its users.
        drop_quietly(unsafe { ManuallyDrop::take(&mut self.0) });
    }
}

/// Drops `value`, which nobody will see (a caught panic, the remains of a
/// task that failed for a reason reported instead), without letting a
/// panic of its destructor out: that panic's payload is dropped in turn,
/// and so on a few times, until one drops cleanly (a payload whose
/// destructor panics again each time is leaked in the end). A coroutine's
/// close, or a time limit's expiry, reaching into such a destructor goes
/// on, as [`crate::catch_unwind`] lets it.
#[cold]
#[inline(never)]
pub(crate) fn drop_quietly<T>(value: T) {
    let Err(mut payload) = crate::catch_unwind(AssertUnwindSafe(move || drop(value))) else {
        return;
    };
    for _ in 0..4 {
        match crate::catch_unwind(AssertUnwindSafe(move || drop(payload))) {
            Ok(()) => return,
            Err(again) => payload = again,
        }
    }
    std::mem::forget(payload);
}

// SAFETY: sharing `&Payload` between threads shares access to nothing that is
// not `Sync`. Its `&self` methods only downcast the payload (that calls
// `type_id` on it: the blanket `impl Any for T` returns a constant and reads
// nothing of the value) and return a reference only when the payload's type
// is `Sync` (`downcast_ref`'s bound; `&'static str` and `String` for
// `message`), or read the name, which is `Sync`. The payload itself is
// reached only through `&mut self` or by value.
unsafe impl Sync for Payload {}

impl Payload {
    #[inline]
    fn downcast_ref<T: Any + Sync>(&self) -> Option<&T> {
        self.0.payload.downcast_ref::<T>()
    }

    fn message(&self) -> &str {
        payload_message(&*self.0.payload)
    }

    fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }

    /// The payload, without running `Payload`'s destructor on it.
    #[inline]
    fn into_box(self) -> Box<dyn Any + Send + 'static> {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped, so the box is taken once.
        let caught = unsafe { ManuallyDrop::take(&mut this.0) };
        caught.payload
    }
}

impl Panic {
    #[cold]
    pub(crate) fn new(
        payload: Box<dyn Any + Send + 'static>,
        name: Option<Cow<'static, str>>,
    ) -> Self {
        Panic(Payload(ManuallyDrop::new(Box::new(Caught {
            payload,
            name,
        }))))
    }

    /// The panic message when the payload is a string, or `"Box<dyn Any>"`
    /// (what the standard library prints) when it is some other type.
    pub fn message(&self) -> &str {
        self.0.message()
    }

    /// The name of the coroutine that panicked, if it was given one.
    pub fn coroutine_name(&self) -> Option<&str> {
        self.0.name()
    }

    /// The payload, if it is a `T`: reads a non-string panic value, such as
    /// the `42` of `std::panic::panic_any(42)`.
    ///
    /// `T` must be `Sync`, since `Panic` is; a payload of a type that is not
    /// is reachable through [`payload_mut`](Panic::payload_mut).
    ///
    /// ```
    /// let mut co: cogen::Coroutine<(), (), ()> =
    ///     cogen::Coroutine::new(|_, ()| std::panic::panic_any(404_u16));
    /// let panic = co.resume(()).unwrap_err().try_into_panic().unwrap();
    /// assert_eq!(panic.downcast_ref::<u16>(), Some(&404));
    /// assert_eq!(panic.downcast_ref::<u32>(), None);
    /// ```
    ///
    /// A payload that is not `Sync` cannot be read through `&self`:
    ///
    /// ```compile_fail
    /// fn read(panic: &cogen::Panic) -> Option<&std::cell::Cell<u32>> {
    ///     panic.downcast_ref::<std::cell::Cell<u32>>()
    /// }
    /// ```
    pub fn downcast_ref<T: Any + Sync>(&self) -> Option<&T> {
        self.0.downcast_ref::<T>()
    }

    /// The payload, by exclusive reference, whatever its type.
    ///
    /// ```
    /// use std::cell::Cell;
    ///
    /// let mut co: cogen::Coroutine<(), (), ()> =
    ///     cogen::Coroutine::new(|_, ()| std::panic::panic_any(Cell::new(1_u32)));
    /// let mut panic = co.resume(()).unwrap_err().try_into_panic().unwrap();
    /// let cell = panic.payload_mut().downcast_mut::<Cell<u32>>().unwrap();
    /// assert_eq!(cell.get(), 1);
    /// ```
    pub fn payload_mut(&mut self) -> &mut (dyn Any + Send + 'static) {
        &mut *(self.0).0.payload
    }

    /// The payload, as [`std::panic::resume_unwind`] takes it.
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.0.into_box()
    }

    /// Continues the panic in the caller, with the original payload.
    pub fn resume_unwind(self) -> ! {
        std::panic::resume_unwind(self.0.into_box())
    }
}

/// The message of a panic payload: the `&str` or `String` it holds, or
/// `"Box<dyn Any>"` for any other type. (Only downcasts to those two types,
/// which are `Sync`: `Payload`'s `Sync` impl relies on it.)
pub(crate) fn payload_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "Box<dyn Any>"
    }
}

impl fmt::Debug for Panic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Panic")
            .field("message", &self.message())
            .field("coroutine", &self.coroutine_name())
            .finish()
    }
}

impl fmt::Display for Panic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.coroutine_name() {
            Some(name) => write!(f, "coroutine '{name}' panicked: {}", self.message()),
            None => write!(f, "coroutine panicked: {}", self.message()),
        }
    }
}

impl std::error::Error for Panic {}

/// Why [`Coroutine::resume`](crate::Coroutine::resume) failed.
///
/// Lua's `coroutine.resume` answers `false, message`; cogen says which of
/// the two failures it was and hands back what it can.
///
/// It is `Send + Sync` when `Input` is, so `?` puts it in a
/// `Box<dyn Error + Send + Sync>`.
pub enum ResumeError<Input> {
    /// The coroutine had already finished (returned, panicked or been
    /// closed): Lua's "cannot resume dead coroutine". The input that could
    /// not be delivered is handed back.
    Dead(Input),
    /// The body panicked during this resume. The coroutine is now dead.
    Panicked(Panic),
}

impl<Input> ResumeError<Input> {
    /// True if the coroutine was already dead.
    pub fn is_dead(&self) -> bool {
        matches!(self, ResumeError::Dead(_))
    }

    /// True if the body panicked during this resume.
    pub fn is_panic(&self) -> bool {
        matches!(self, ResumeError::Panicked(_))
    }

    /// The caught panic, if this error is one.
    pub fn panic(&self) -> Option<&Panic> {
        match self {
            ResumeError::Panicked(p) => Some(p),
            ResumeError::Dead(_) => None,
        }
    }

    /// The panic payload, like tokio's `JoinError::into_panic`.
    ///
    /// # Panics
    /// If the coroutine was dead rather than panicking; use
    /// [`try_into_panic`](ResumeError::try_into_panic) to check.
    #[track_caller]
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        match self {
            ResumeError::Panicked(p) => p.into_panic(),
            ResumeError::Dead(_) => panic!("`into_panic` called on a dead-coroutine error"),
        }
    }

    /// The caught panic, or this error back if it is not one.
    pub fn try_into_panic(self) -> Result<Panic, Self> {
        match self {
            ResumeError::Panicked(p) => Ok(p),
            dead => Err(dead),
        }
    }

    /// The undelivered input of a resume on a dead coroutine.
    pub fn into_input(self) -> Option<Input> {
        match self {
            ResumeError::Dead(input) => Some(input),
            ResumeError::Panicked(_) => None,
        }
    }
}

impl<Input> fmt::Debug for ResumeError<Input> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResumeError::Dead(_) => f.write_str("Dead(..)"),
            ResumeError::Panicked(p) => f.debug_tuple("Panicked").field(p).finish(),
        }
    }
}

impl<Input> fmt::Display for ResumeError<Input> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResumeError::Dead(_) => f.write_str("cannot resume dead coroutine"),
            ResumeError::Panicked(p) => fmt::Display::fmt(p, f),
        }
    }
}

impl<Input> std::error::Error for ResumeError<Input> {}
