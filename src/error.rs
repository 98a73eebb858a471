//! Errors of the coroutine layer: why a resume failed, and a caught panic.

use std::any::Any;
use std::borrow::Cow;
use std::fmt;

/// A panic caught at the root of a coroutine body (or a task, or a stage).
///
/// It keeps the original payload, like [`std::thread::JoinHandle::join`]'s
/// error, and knows which coroutine it came from when that one had a name.
/// [`message`](Panic::message) reads a `&str` or `String` payload, the usual
/// case for `panic!("...")`.
pub struct Panic {
    payload: Box<dyn Any + Send + 'static>,
    name: Option<Cow<'static, str>>,
}

impl Panic {
    pub(crate) fn new(
        payload: Box<dyn Any + Send + 'static>,
        name: Option<Cow<'static, str>>,
    ) -> Self {
        Panic { payload, name }
    }

    /// The panic message when the payload is a string, or `"Box<dyn Any>"`
    /// (what the standard library prints) when it is some other type.
    pub fn message(&self) -> &str {
        payload_message(&*self.payload)
    }

    /// The name of the coroutine that panicked, if it was given one.
    pub fn coroutine_name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The payload, by reference: downcast it to read a non-string panic value.
    pub fn payload(&self) -> &(dyn Any + Send + 'static) {
        &*self.payload
    }

    /// The payload, as [`std::panic::resume_unwind`] takes it.
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.payload
    }

    /// Continues the panic in the caller, with the original payload.
    pub fn resume_unwind(self) -> ! {
        std::panic::resume_unwind(self.payload)
    }
}

/// The message of a panic payload: the `&str` or `String` it holds, or
/// `"Box<dyn Any>"` for any other type.
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
            .field("coroutine", &self.name)
            .finish()
    }
}

impl fmt::Display for Panic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
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
