//! How a pipeline fails: [`StageError`] names the stage that failed and
//! keeps its panic or error, and [`PipelineItem`] carries it between stages
//! in place of an item.

use std::borrow::Cow;
use std::error::Error;
use std::fmt;

use crate::error::Panic;

/// A boxed error of a failed stage.
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// What flows between pipeline stages: an item, or the error that ended the
/// stream. Every pipeline is an `Iterator<Item = PipelineItem<T>>`; what a
/// stage's body returns at its end is a [`StageReturn`](super::StageReturn).
pub type PipelineItem<T> = Result<T, StageError>;

/// A pipeline stage failed: it panicked, or its body returned `Err`.
///
/// It names the stage, and keeps the panic (with its payload) or the error.
/// It is `Send + Sync`, so `?` puts it in a `Box<dyn Error + Send + Sync>`.
pub struct StageError(Box<StageErrorInner>);

struct StageErrorInner {
    stage: Cow<'static, str>,
    kind: ErrorKind,
}

enum ErrorKind {
    Panicked(Panic),
    Failed(BoxError),
}

impl StageError {
    /// The stage named `stage` failed with `error`. Sources that can fail
    /// (such as [`read_chunks`](super::read_chunks)) yield this.
    pub fn new(stage: impl Into<Cow<'static, str>>, error: impl Into<BoxError>) -> Self {
        StageError(Box::new(StageErrorInner {
            stage: stage.into(),
            kind: ErrorKind::Failed(error.into()),
        }))
    }

    /// The stage named `stage` panicked.
    pub fn panicked(stage: impl Into<Cow<'static, str>>, panic: Panic) -> Self {
        StageError(Box::new(StageErrorInner {
            stage: stage.into(),
            kind: ErrorKind::Panicked(panic),
        }))
    }

    /// The name of the stage that failed.
    pub fn stage(&self) -> &str {
        &self.0.stage
    }

    /// True if the stage panicked (rather than returning `Err`).
    pub fn is_panic(&self) -> bool {
        matches!(self.0.kind, ErrorKind::Panicked(_))
    }

    /// The panic, if the stage panicked.
    pub fn panic(&self) -> Option<&Panic> {
        match &self.0.kind {
            ErrorKind::Panicked(p) => Some(p),
            ErrorKind::Failed(_) => None,
        }
    }

    /// The error the stage returned, if it did not panic.
    pub fn error(&self) -> Option<&(dyn Error + Send + Sync + 'static)> {
        match &self.0.kind {
            ErrorKind::Failed(e) => Some(&**e),
            ErrorKind::Panicked(_) => None,
        }
    }

    /// The panic, or this error back if the stage did not panic.
    pub fn try_into_panic(self) -> Result<Panic, Self> {
        match self.0.kind {
            ErrorKind::Panicked(p) => Ok(p),
            ErrorKind::Failed(_) => Err(self),
        }
    }

    /// The error the stage returned, or this error back if it panicked.
    pub fn try_into_error(self) -> Result<BoxError, Self> {
        match self.0.kind {
            ErrorKind::Failed(e) => Ok(e),
            ErrorKind::Panicked(_) => Err(self),
        }
    }
}

impl fmt::Debug for StageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("StageError");
        d.field("stage", &self.stage());
        match &self.0.kind {
            ErrorKind::Panicked(p) => d.field("panicked", &p.message()),
            ErrorKind::Failed(e) => d.field("failed", e),
        };
        d.finish()
    }
}

/// Says only which stage failed and how; the panic or the stage's error is
/// the [`source`](Error::source), so that error-chain printers show it once.
impl fmt::Display for StageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0.kind {
            ErrorKind::Panicked(_) => write!(f, "stage '{}' panicked", self.stage()),
            ErrorKind::Failed(_) => write!(f, "stage '{}' failed", self.stage()),
        }
    }
}

/// The source is the [`Panic`] or the error the stage returned.
impl Error for StageError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match &self.0.kind {
            ErrorKind::Panicked(p) => Some(p),
            ErrorKind::Failed(e) => Some(&**e),
        }
    }
}
