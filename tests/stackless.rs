//! Nightly stackless coroutines through `cogen::stackless::Stackless`: the
//! same resume / status / close / error semantics as stackful coroutines.
//!
//! The tests live in `nightly/stackless.rs`: on stable Rust the parser rejects
//! `yield` and `#[coroutine]` even in code that `cfg` removes, so this file
//! only declares that module with the `nightly` feature.
#![cfg_attr(
    cogen_nightly,
    feature(coroutines, coroutine_trait, stmt_expr_attributes)
)]

#[cfg(cogen_nightly)]
mod support;

#[cfg(cogen_nightly)]
#[path = "nightly/stackless.rs"]
mod stackless;
