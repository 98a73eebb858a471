//! Turning a coroutine stack overflow into a message instead of a bare crash.
//!
//! A coroutine that overflows its stack touches the guard page below it and
//! the kernel sends `SIGSEGV`. The default action kills the process with no
//! word of which coroutine it was. Like the standard library does for thread
//! stacks, cogen installs a handler, run on an alternate signal stack (the
//! faulting stack is full), that asks a [`DescribeOverflow`] function whether
//! the faulting address is in the guard page of the coroutine running on this
//! thread. On a match it prints the description (which coroutine overflowed,
//! its stack size and how to raise it), then aborts. Any other fault is
//! handed to the handler that was installed before (usually the standard
//! library's), or to the default action.
//!
//! This layer knows nothing of coroutines: the describer comes from the
//! coroutine layer, which passes it with every stack it takes, and the first
//! one is kept for the life of the process.
//!
//! The handler and the describer only read atomics and a thread-local pointer
//! and format into a buffer on the handler's stack: they do not allocate or
//! take locks.

use std::cell::Cell;
use std::fmt::{self, Write as _};
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::{Once, OnceLock};

/// Tells the handler about a fault at `addr`: if it is in the guard page of
/// the coroutine running on this thread, writes what to print to `out` and
/// returns true. It runs inside the signal handler, so it must not allocate
/// or take locks.
pub(crate) type DescribeOverflow = fn(addr: usize, out: &mut dyn fmt::Write) -> bool;

static INSTALL: Once = Once::new();
/// The describer given to the first `install`, set before the handler exists.
/// Reading it is one atomic load, which is safe in a signal handler.
static DESCRIBE: OnceLock<DescribeOverflow> = OnceLock::new();
static mut PREV_SEGV: MaybeUninit<libc::sigaction> = MaybeUninit::zeroed();
static mut PREV_BUS: MaybeUninit<libc::sigaction> = MaybeUninit::zeroed();

thread_local! {
    static ALTSTACK_CHECKED: Cell<bool> = const { Cell::new(false) };
}

/// Installs the handler (once per process, with `describe` as its
/// describer) and makes sure this thread has an alternate signal stack, so
/// the handler can run when the faulting stack is exhausted. Called whenever
/// a stack is mapped.
pub(crate) fn install(describe: DescribeOverflow) {
    INSTALL.call_once(|| {
        let _ = DESCRIBE.set(describe);
        // SAFETY: `install_handlers` runs once, guarded by the `Once`.
        unsafe { install_handlers() }
    });
    if ALTSTACK_CHECKED.with(|c| c.replace(true)) {
        return;
    }
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
    // SAFETY: plain sigaction calls; the previous actions are saved before our
    // handler can run, because it is installed by the same call that saves them.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(
            libc::SIGSEGV,
            &action,
            (&raw mut PREV_SEGV).cast::<libc::sigaction>(),
        );
        libc::sigaction(
            libc::SIGBUS,
            &action,
            (&raw mut PREV_BUS).cast::<libc::sigaction>(),
        );
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
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
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
    // Not ours: chain to whoever handled this signal before us.
    let prev = if signum == libc::SIGBUS {
        &raw const PREV_BUS
    } else {
        &raw const PREV_SEGV
    };
    // SAFETY: PREV_* were filled by sigaction before this handler existed.
    let prev = unsafe { (*prev).assume_init_ref() };
    let h = prev.sa_sigaction;
    if h == libc::SIG_DFL || h == libc::SIG_IGN {
        // Restore the default action and return: the faulting instruction
        // runs again and the kernel kills the process with the signal.
        // SAFETY: resetting a signal's action to the default.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(signum, &action, ptr::null_mut());
        }
    } else if prev.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous handler was installed with this signature.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(h) };
        f(signum, info, context);
    } else {
        // SAFETY: the previous handler was installed with this signature.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(h) };
        f(signum);
    }
}
