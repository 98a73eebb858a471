//! Stackless tasks (feature `nightly`): `#[coroutine]` closures that yield
//! [`Wait`] requests for the loop to act on.
//!
//! A stackless task has no stack of its own: its state lives in the task's
//! allocation, a few dozen bytes, so a loop can hold millions of them (a
//! stackful task needs a guarded stack mapping, and Linux allows about
//! 32,000 of those per process). The price is that it can only wait from
//! its own body, by `yield`ing a request; it then retries the operation
//! with its non-waiting (`try_`) form:
//!
//! ```
//! #![feature(coroutines, coroutine_trait, stmt_expr_attributes)]
//! use cogen::event_loop::{EventLoop, Wait, channel, TryRecvError};
//! use std::time::Duration;
//!
//! let ev = EventLoop::new();
//! let (tx, rx) = channel::<u32>(1);
//! let consumer = ev.spawn_stackless(#[coroutine] move || {
//!     let mut sum = 0;
//!     loop {
//!         match rx.try_recv() {
//!             Ok(v) => sum += v,
//!             Err(TryRecvError::Empty) => yield Wait::recv(&rx),
//!             Err(TryRecvError::Closed) => return sum,
//!         }
//!     }
//! });
//! let producer = ev.spawn_stackless(#[coroutine] move || {
//!     for i in 1..=3 {
//!         let mut v = i;
//!         while let Err(e) = tx.try_send(v) {
//!             v = e.into_inner();
//!             yield Wait::send(&tx);
//!         }
//!         yield Wait::sleep(Duration::from_millis(1));
//!     }
//! });
//! let joiner = ev.spawn_stackless(#[coroutine] move || {
//!     yield Wait::join(&producer);
//!     producer.try_join().ok().unwrap().is_ok()
//! });
//! ev.run().unwrap();
//! assert_eq!(consumer.join().unwrap(), 6);
//! assert!(joiner.join().unwrap());
//! ```
//!
//! Panics, cancellation, joining and deadlock detection work as for
//! stackful tasks.

pub use super::kind::stackless::Wait;
