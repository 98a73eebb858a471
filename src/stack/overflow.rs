//! Turning a coroutine stack overflow into a message instead of a bare crash.
//!
//! A coroutine that overflows its stack touches the guard page below it and
//! the kernel sends `SIGSEGV` (or `SIGBUS`). The default action kills the
//! process with no word of which coroutine it was. Like the standard library
//! does for thread stacks, cogen installs a handler, run on an alternate
//! signal stack (the faulting stack is full), that asks a [`DescribeOverflow`]
//! function whether the faulting address is in the guard page of a
//! coroutine's stack on this thread. On a match it prints the description
//! (which coroutine overflowed, its stack size and how to raise it), then
//! aborts.
//!
//! This layer knows nothing of coroutines: the describer comes from the
//! coroutine layer, which passes it with every stack it takes, and the first
//! one is kept for the life of the process.
//!
//! # Sharing the signal with the program
//!
//! The handler is installed once per process, when the first stack is
//! mapped, and keeps the action it replaced (usually the standard library's
//! thread-overflow handler, or one the program installed). Every fault that
//! is not a hit on a coroutine's guard page goes to that previous
//! action, as the kernel would have delivered it:
//!
//! * a previous handler is called with the same arguments, with the signal
//!   mask the kernel would have set for it (the interrupted code's mask plus
//!   its `sa_mask`, plus the signal itself unless it has `SA_NODEFER`); with
//!   `SA_RESETHAND` the action is reset to the default first. A previous
//!   plain (non-`SA_SIGINFO`) handler gets the signal number only. It runs on
//!   the alternate signal stack whether or not it asked for `SA_ONSTACK`;
//! * a previous `SIG_DFL` or `SIG_IGN` is put back exactly (handler, flags
//!   and mask) and the handler returns: the faulting instruction runs again
//!   and the kernel applies that action (for a fault, `SIG_IGN` counts as
//!   the default: the process dies by the signal). A signal that some process
//!   sent (`kill`) is sent again, so it, too, meets the restored action.
//!
//! A program that installs its own handler *after* the first coroutine
//! replaces cogen's; it should keep the action it replaced and pass on the
//! faults it does not handle, or coroutine overflows are reported by its
//! handler instead (a plain `SIGSEGV` for most).
//!
//! # Signal safety
//!
//! The handler only loads atomics, looks the faulting page up in this
//! thread's registry of stacks (`registry.rs`: no allocation, no lock, a
//! few bytes of stack), formats into a buffer on its own stack and makes async-signal-safe calls
//! (`sigaction`, `pthread_sigmask`, `sig*set`, `raise`, `write`, `abort`).
//! Everything it reads is written before it is installed: the page size is
//! cached, the describer set, and the previous action published (see
//! [`Previous`]).

use std::cell::UnsafeCell;
use std::fmt::{self, Write as _};
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Once, OnceLock};

/// Tells the handler about a fault at `addr`: if it is in the guard page of
/// a coroutine's stack on this thread, writes what to print to `out` and
/// returns true. It runs inside the signal handler, so it must not allocate
/// or take locks.
pub(crate) type DescribeOverflow = fn(addr: usize, out: &mut dyn fmt::Write) -> bool;

static INSTALL: Once = Once::new();
/// The describer given to the first `install`, set before the handler exists.
/// Reading it is one atomic load, which is safe in a signal handler.
static DESCRIBE: OnceLock<DescribeOverflow> = OnceLock::new();
static PREV_SEGV: Previous = Previous::new();
static PREV_BUS: Previous = Previous::new();

/// The action that cogen's handler replaced for one signal.
///
/// The kernel writes the replaced action to memory only after the new
/// handler is in place, so a fault on another thread could run the handler
/// before it is saved. Hence two slots: the current action is read into the
/// first and published *before* cogen's handler is installed; installing
/// writes the action it really replaced (the same, unless another thread
/// changed it meanwhile) into the second, which is published next. A slot is
/// written only before it is published and never after, and the handler
/// reads only the published one (acquire, paired with the release of the
/// publication), so the handler never sees a half-written action.
struct Previous {
    slots: [UnsafeCell<MaybeUninit<libc::sigaction>>; 2],
    published: AtomicPtr<libc::sigaction>,
}

// SAFETY: the slots are written only by `replace`, which runs once, inside
// `INSTALL`, and only before their publication; afterwards they are only read.
unsafe impl Sync for Previous {}

impl Previous {
    const fn new() -> Self {
        Previous {
            slots: [
                UnsafeCell::new(MaybeUninit::zeroed()),
                UnsafeCell::new(MaybeUninit::zeroed()),
            ],
            published: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Installs `ours` as the action for `signum`, keeping the one it replaces.
    ///
    /// # Safety
    /// Called at most once per `Previous`, and never concurrently with itself.
    unsafe fn replace(&self, signum: libc::c_int, ours: &libc::sigaction) {
        let [first, second] = &self.slots;
        let (first, second) = (first.get().cast(), second.get().cast());
        // SAFETY: `first` is valid for writes and not yet published, so no
        // handler reads it; a null new action only reads the current one.
        if unsafe { libc::sigaction(signum, ptr::null(), first) } != 0 {
            return;
        }
        self.published.store(first, Ordering::Release);
        // SAFETY: as above for `second`; from here on a fault may run our
        // handler, which reads `first`, published above.
        if unsafe { libc::sigaction(signum, ours, second) } != 0 {
            return;
        }
        self.published.store(second, Ordering::Release);
    }

    /// The replaced action, once published.
    fn get(&self) -> Option<&libc::sigaction> {
        // SAFETY: a published slot holds an action written by the kernel and
        // is never written again (see the type's docs).
        unsafe { self.published.load(Ordering::Acquire).as_ref() }
    }
}

/// Installs the handler (once per process, with `describe` as its
/// describer) and makes sure this thread has an alternate signal stack, so
/// the handler can run when the faulting stack is exhausted. Called whenever
/// a stack is mapped.
pub(crate) fn install(describe: DescribeOverflow) {
    INSTALL.call_once(|| {
        // Everything the handler and the describer read is set first: the
        // page size (the first call may not run in a signal handler), the
        // describer, and (inside `replace`) the previous action.
        super::page_size();
        let _ = DESCRIBE.set(describe);
        // SAFETY: `install_handlers` runs once, guarded by the `Once`.
        unsafe { install_handlers() }
    });
    // Looked at on every mapping, not once per thread: std unmaps a
    // thread's alternate stack before the thread-locals' destructors run,
    // and a coroutine made in one of them needs one again. (One system call
    // beside the mapping's two.)
    // SAFETY: sigaltstack with a null new stack only reads the current one.
    unsafe {
        let mut old: libc::stack_t = std::mem::zeroed();
        if libc::sigaltstack(ptr::null(), &mut old) != 0 {
            return;
        }
        if old.ss_flags & libc::SS_DISABLE == 0 {
            return; // std (or the user) already gave this thread one
        }
    }
    let size = (libc::SIGSTKSZ).max(64 * 1024);
    // SAFETY: a fresh anonymous mapping; on success it is handed to the kernel
    // as this thread's signal stack and deliberately leaked (threads that are
    // not spawned by std are rare, and the stack must outlive every signal).
    unsafe {
        let mem = libc::mmap(
            ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if mem == libc::MAP_FAILED {
            return;
        }
        let stack = libc::stack_t {
            ss_sp: mem,
            ss_flags: 0,
            ss_size: size,
        };
        libc::sigaltstack(&stack, ptr::null_mut());
    }
}

/// # Safety
/// Called once, from `INSTALL`.
unsafe fn install_handlers() {
    // SAFETY: a zeroed sigaction is a valid value, completed below.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = handler as *const () as usize;
    action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
    // SAFETY: `action.sa_mask` is a valid sigset_t to initialise.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    // SAFETY: once per signal, inside `INSTALL` (our caller's contract).
    unsafe {
        PREV_SEGV.replace(libc::SIGSEGV, &action);
        PREV_BUS.replace(libc::SIGBUS, &action);
    }
}

/// A fixed buffer that `fmt` can write into without allocating.
struct Buffer {
    bytes: [u8; 1024],
    len: usize,
}

impl std::fmt::Write for Buffer {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let room = self.bytes.len() - self.len;
        let n = s.len().min(room);
        self.bytes[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

extern "C" fn handler(signum: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let _errno = SavedErrno::save();
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as usize) };
    // Only a fault the kernel raised has a faulting address; for a signal a
    // process sent (si_code <= 0) the same bytes hold its pid and uid.
    if code > 0 {
        let mut buffer = Buffer {
            bytes: [0; 1024],
            len: 0,
        };
        if DESCRIBE
            .get()
            .is_some_and(|describe| describe(addr, &mut buffer))
        {
            let _ = buffer.write_str("fatal runtime error: coroutine stack overflow, aborting\n");
            // SAFETY: write(2) and abort(3) are async-signal-safe.
            unsafe {
                libc::write(2, buffer.bytes.as_ptr().cast(), buffer.len);
                libc::abort();
            }
        }
    }
    let previous = if signum == libc::SIGBUS {
        &PREV_BUS
    } else {
        &PREV_SEGV
    };
    // SAFETY: forwarded from the kernel.
    unsafe { chain(signum, info, context, previous.get(), code <= 0) }
}

/// Hands a fault that is not a coroutine overflow to the action cogen
/// replaced, as the kernel would have delivered it (see the module docs).
///
/// # Safety
/// Called from [`handler`] with the arguments the kernel gave it.
unsafe fn chain(
    signum: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
    previous: Option<&libc::sigaction>,
    sent: bool,
) {
    // SAFETY: a zeroed sigaction is SIG_DFL with no flags and an empty mask.
    let default: libc::sigaction = unsafe { std::mem::zeroed() };
    // Unpublished only if installing failed half-way: the default, then.
    let previous = previous.unwrap_or(&default);
    let h = previous.sa_sigaction;
    if h == libc::SIG_DFL || h == libc::SIG_IGN {
        // Put the previous action back as it was and return: the faulting
        // instruction runs again and the kernel applies that action. A signal
        // that was sent is not raised again by returning, so send it again:
        // it stays pending (blocked while this handler runs) until we return.
        // SAFETY: sigaction and raise are async-signal-safe; `previous` is a
        // complete action the kernel gave us.
        unsafe {
            libc::sigaction(signum, previous, ptr::null_mut());
            if sent {
                libc::raise(signum);
            }
        }
        return;
    }
    // The mask the kernel would have set for the previous handler: the
    // interrupted code's, which is ours now without `signum` (ours has an
    // empty `sa_mask`, and `signum` was not blocked or the kernel would not
    // have delivered it to us), plus its `sa_mask`, plus `signum` unless
    // `SA_NODEFER`.
    // SAFETY: only async-signal-safe calls on local, initialised sigset_t values.
    unsafe {
        let mut entry: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_SETMASK, ptr::null(), &mut entry);
        let mut mask = entry;
        libc::sigdelset(&mut mask, signum);
        for s in 1..=MAX_SIGNAL {
            if libc::sigismember(&previous.sa_mask, s) == 1 {
                libc::sigaddset(&mut mask, s);
            }
        }
        if previous.sa_flags & libc::SA_NODEFER == 0 {
            libc::sigaddset(&mut mask, signum);
        }
        if previous.sa_flags & libc::SA_RESETHAND != 0 {
            libc::sigaction(signum, &default, ptr::null_mut());
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &mask, ptr::null_mut());
        if previous.sa_flags & libc::SA_SIGINFO != 0 {
            // SAFETY: the previous handler was installed with this signature.
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                std::mem::transmute(h);
            f(signum, info, context);
        } else {
            // SAFETY: the previous handler was installed with this signature.
            let f: extern "C" fn(libc::c_int) = std::mem::transmute(h);
            f(signum);
        }
        // Returning restores the interrupted code's mask anyway; until then,
        // this handler's.
        libc::pthread_sigmask(libc::SIG_SETMASK, &entry, ptr::null_mut());
    }
}

/// The highest signal number a signal set holds here (the kernel's, on
/// Linux: glibc's `sigset_t` has room for more than the kernel uses).
#[cfg(any(target_os = "linux", target_os = "android"))]
const MAX_SIGNAL: libc::c_int = 64;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const MAX_SIGNAL: libc::c_int = {
    let bits = 8 * std::mem::size_of::<libc::sigset_t>();
    if bits < 128 {
        bits as libc::c_int - 1
    } else {
        127
    }
};

/// Saves `errno` and puts it back when dropped: the calls a signal handler
/// makes must not change what the interrupted code sees. (On a platform
/// whose errno location cogen does not know, it does nothing.)
struct SavedErrno(libc::c_int);

impl SavedErrno {
    fn save() -> Self {
        // SAFETY: `errno_location` points at this thread's errno.
        SavedErrno(errno_location().map_or(0, |errno| unsafe { *errno }))
    }
}

impl Drop for SavedErrno {
    fn drop(&mut self) {
        if let Some(errno) = errno_location() {
            // SAFETY: `errno_location` points at this thread's errno.
            unsafe { *errno = self.0 }
        }
    }
}

/// This thread's `errno`.
fn errno_location() -> Option<*mut libc::c_int> {
    // SAFETY: these functions have no preconditions and are async-signal-safe.
    #[cfg(target_os = "linux")]
    return Some(unsafe { libc::__errno_location() });
    // SAFETY: as above.
    #[cfg(target_os = "android")]
    return Some(unsafe { libc::__errno() });
    // SAFETY: as above.
    #[cfg(any(
        target_vendor = "apple",
        target_os = "freebsd",
        target_os = "dragonfly"
    ))]
    return Some(unsafe { libc::__error() });
    #[allow(unreachable_code)]
    None
}
