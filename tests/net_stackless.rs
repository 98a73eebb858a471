//! Stackless tasks waiting on sockets (`Wait::readable` / `Wait::writable`):
//! the tests are in `nightly/net_stackless.rs`, compiled only on a nightly
//! compiler (`yield` does not even parse on stable).
#![cfg_attr(cogen_nightly, feature(coroutines))]

#[cfg(cogen_nightly)]
mod support;

#[cfg(cogen_nightly)]
#[path = "nightly/net_stackless.rs"]
mod nightly;
