//! Typed, Lua-style stackful coroutines for Rust.
//!
//! cogen gives Rust the whole of Lua 5.4's `coroutine` library with types:
//! a [`Coroutine<Input, Yield, Return>`](Coroutine) runs a closure on its own
//! stack, suspends from any depth of its call stack, passes values both ways,
//! and reports panics as values. It is a thin layer over
//! [corosensei](https://docs.rs/corosensei)'s stack switching, with pooled
//! stacks so that creating a coroutine makes no system call.
//!
//! ```
//! use cogen::{Coroutine, CoroutineResult};
//!
//! // Input u32, Yield String, Return u32.
//! let mut co = Coroutine::new(|co, first: u32| {
//!     let second = co.suspend(format!("got {first}"));
//!     first + second
//! });
//! assert_eq!(co.resume(40).unwrap(), CoroutineResult::Yield("got 40".to_string()));
//! assert_eq!(co.resume(2).unwrap(), CoroutineResult::Return(42));
//! assert_eq!(co.status(), cogen::Status::Dead);
//! ```
//!
//! # Lua 5.4 → cogen
//!
//! The `coroutine` library, then LuaSocket and copas (the README has the
//! longer table):
//!
//! | Lua | cogen |
//! |---|---|
//! | `coroutine.create(f)` | [`Coroutine::new(\|co, first_input\| ...)`](Coroutine::new), [`Builder`] for stack size and name |
//! | `coroutine.resume(co, ...)` | [`co.resume(input)`](Coroutine::resume) → `Ok(Yield(y))`, `Ok(Return(r))` or `Err(ResumeError)` |
//! | `coroutine.yield(v)` | [`co.suspend(v)`](Yielder::suspend), returns the next resume's input |
//! | `coroutine.status(co)` | [`co.status()`](Coroutine::status), [`CoroutineHandle::status`] for all four [`Status`]es |
//! | `coroutine.running()` | [`running()`] |
//! | `coroutine.isyieldable()` | [`is_yieldable()`] |
//! | `coroutine.close(co)` | [`co.close()`](Coroutine::close); dropping does the same silently |
//! | `coroutine.wrap(f)` | a `Coroutine<(), Y, R>` is an [`Iterator`]; [`wrap`] for coroutines with input |
//! | `error(e)` in the body | a panic: [`ResumeError::Panicked`] with the payload |
//! | "cannot resume dead coroutine" | [`ResumeError::Dead`], which hands the input back |
//! | "cannot resume non-suspended coroutine" | does not compile: `resume` takes `&mut self` |
//! | LuaSocket `socket.bind` / `socket.connect` / `server:accept()` | `event_loop::net`'s `TcpListener::bind`, `TcpStream::connect`, `listener.accept()` (feature `net`): they park the task, not the thread |
//! | LuaSocket `skt:settimeout(t)` | `set_read_timeout` / `set_write_timeout`: past the limit, an error of kind `TimedOut` |
//! | copas `copas.addserver(server, handler)` / `copas.addthread(f)` | an accept loop in a task, one task per connection: [`event_loop::spawn`] |
//! | copas `copas.loop()` | [`event_loop::EventLoop::block_on`] |
//! | copas `copas.receive` / `copas.send` | `read_line` on a `BufReader<&TcpStream>`, `write_all`: they park the task |
//! | copas `copas.sleep(t)` | [`event_loop::sleep`] |
//!
//! # The layers
//!
//! Lowest layer first; each module uses only the modules in the rows before it:
//!
//! | module | what it owns |
//! |---|---|
//! | [`stack`] | stack sizes, guard pages, the per-thread stack pool, the stack-overflow signal handler |
//! | [`error`] | [`ResumeError`] and [`Panic`] |
//! | [`coroutine`] | [`Coroutine`], [`Yielder`], [`Status`], handles, [`running`], close and drop, [`ScopedCoroutine`], the stack-overflow message |
//! | [`resumable`] | [`Resumable`]: one API for stackful and stackless coroutines |
//! | [`generator`](mod@generator) | `Input = ()` coroutines as iterators, delegation, Lua's [`wrap`] |
//! | `stackless` (feature `nightly`) | `std::ops::Coroutine` values behind [`Resumable`] |
//! | [`pipeline`] | typed pull stages and push sinks, for either kind |
//! | [`event_loop`] | a round-robin scheduler of tasks: join, sleep, channels, futures, files |

#![cfg_attr(cogen_nightly, feature(coroutine_trait, never_type, try_trait_v2))]
#![cfg_attr(feature = "sanitizer", feature(cfg_sanitize))]
#![warn(
    missing_docs,
    missing_debug_implementations,
    clippy::undocumented_unsafe_blocks
)]

pub mod coroutine;
pub mod error;
pub mod event_loop;
pub mod generator;
pub mod pipeline;
pub mod resumable;
pub mod stack;
// Empty ASan hooks for `--all-features` builds that are not sanitized.
#[cfg(feature = "sanitizer")]
mod sanitizer;
#[cfg(cogen_nightly)]
pub mod stackless;

pub use coroutine::{
    Builder, Coroutine, CoroutineHandle, CoroutineResult, ScopedCoroutine, ScopedRef, Status,
    Yielder, catch_unwind, is_close_unwind, is_yieldable, running,
};
pub use error::{Panic, ResumeError};
pub use generator::{Generator, generator, wrap};
pub use resumable::Resumable;
pub use stack::StackError;
#[cfg(cogen_nightly)]
pub use stackless::Stackless;

// The README's examples are compiled and run as doctests (with the `net`
// feature, which its network example needs).
#[cfg(all(doctest, feature = "net"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
