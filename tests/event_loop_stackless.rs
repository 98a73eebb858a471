//! Stackless event-loop tasks: the tests are in `nightly/event_loop_stackless.rs`,
//! compiled only on a nightly compiler (`yield` does not even parse on stable).
#![cfg_attr(cogen_nightly, feature(coroutines, coroutine_trait))]

#[cfg(cogen_nightly)]
mod support;

#[cfg(cogen_nightly)]
#[path = "nightly/event_loop_stackless.rs"]
mod nightly;
