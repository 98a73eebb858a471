//! The kinds of task, one body type and its spawn function per file (like
//! crossbeam-channel's flavors): each implements [`TaskBody`](super::task::TaskBody)
//! for what runs and hands out a [`JoinHandle`](super::JoinHandle).
//!
//! | file | body | waits by |
//! |---|---|---|
//! | `stackful.rs` | a cogen [`Coroutine`](crate::Coroutine) on a pooled stack | calling a waiting function from any depth (it parks the task and suspends the stack) |
//! | `future.rs` | a `Future` | `.await`; its waker goes through the loop's remote inbox |
//! | `stackless.rs` (feature `nightly`) | a `#[coroutine]` closure | `yield`ing a [`Wait`](super::Wait) that its step files |

pub(crate) mod future;
pub(crate) mod stackful;
#[cfg(cogen_nightly)]
pub(crate) mod stackless;
