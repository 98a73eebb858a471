//! Helpers shared by the integration tests; a test file includes them with
//! `mod support;`. This module owns the drop counter the tests use to check
//! that every value a coroutine, pipeline or task holds is dropped exactly
//! once, and the way a test runs its part in a child process.

// Each test file uses only some of the helpers.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// Counts drops of the tokens it hands out, and records the names of named
/// tokens in the order they were dropped. Clones share the counts.
///
/// ```ignore
/// let drops = DropCounter::new();
/// let token = drops.token();
/// assert_eq!((drops.count(), drops.live()), (0, 1));
/// drop(token);
/// assert_eq!((drops.count(), drops.live()), (1, 0));
/// ```
#[derive(Clone, Debug, Default)]
pub struct DropCounter(Rc<Counts>);

#[derive(Debug, Default)]
struct Counts {
    /// Tokens handed out.
    made: Cell<usize>,
    /// Tokens dropped.
    dropped: Cell<usize>,
    /// Names of the named tokens dropped, in drop order.
    log: RefCell<Vec<&'static str>>,
}

impl DropCounter {
    /// A counter with no token handed out yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A token that counts one drop here when it is dropped. Its drop
    /// neither allocates nor borrows: it is as cheap as a destructor can be,
    /// for bodies on the smallest stacks.
    pub fn token(&self) -> DropToken {
        self.make(None)
    }

    /// A token that counts one drop here, and appends `name` to the log,
    /// when it is dropped.
    pub fn named(&self, name: &'static str) -> DropToken {
        self.make(Some(name))
    }

    fn make(&self, name: Option<&'static str>) -> DropToken {
        self.0.made.set(self.0.made.get() + 1);
        DropToken {
            name,
            counts: self.0.clone(),
        }
    }

    /// How many tokens have been dropped.
    pub fn count(&self) -> usize {
        self.0.dropped.get()
    }

    /// How many tokens have been handed out and not dropped yet.
    pub fn live(&self) -> usize {
        self.0
            .made
            .get()
            .checked_sub(self.count())
            .expect("more drops than tokens: a token was dropped twice")
    }

    /// The names of the dropped named tokens, in the order they were
    /// dropped.
    pub fn log(&self) -> Vec<&'static str> {
        self.0.log.borrow().clone()
    }
}

/// Counts one drop in the [`DropCounter`] that made it, when dropped.
#[derive(Debug)]
pub struct DropToken {
    name: Option<&'static str>,
    counts: Rc<Counts>,
}

impl DropToken {
    /// The counter this token counts in.
    pub fn counter(&self) -> DropCounter {
        DropCounter(self.counts.clone())
    }
}

impl Drop for DropToken {
    fn drop(&mut self) {
        self.counts.dropped.set(self.counts.dropped.get() + 1);
        if let Some(name) = self.name {
            self.counts.log.borrow_mut().push(name);
        }
    }
}

/// A value whose destructor panics (with "a destructor panicked") after
/// counting its drop in the token's [`DropCounter`]: a test checks both that
/// the panic is reported and that nothing leaked.
pub struct PanicsOnDrop(pub DropToken);

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("a destructor panicked");
    }
}

/// A [`DropCounter`] for values that cross threads: counts the drops of its
/// tokens with atomics. Clones share the counts.
#[derive(Clone, Debug, Default)]
pub struct SendDropCounter(std::sync::Arc<SendCounts>);

#[derive(Debug, Default)]
struct SendCounts {
    made: std::sync::atomic::AtomicUsize,
    dropped: std::sync::atomic::AtomicUsize,
}

impl SendDropCounter {
    /// A counter with no token handed out yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A `Send` token that counts one drop here when it is dropped.
    pub fn token(&self) -> SendDropToken {
        self.0
            .made
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        SendDropToken(self.0.clone())
    }

    /// How many tokens have been dropped.
    pub fn count(&self) -> usize {
        self.0.dropped.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// How many tokens have been handed out and not dropped yet.
    pub fn live(&self) -> usize {
        self.0
            .made
            .load(std::sync::atomic::Ordering::SeqCst)
            .checked_sub(self.count())
            .expect("more drops than tokens: a token was dropped twice")
    }
}

/// Counts one drop in the [`SendDropCounter`] that made it, when dropped.
#[derive(Debug)]
pub struct SendDropToken(std::sync::Arc<SendCounts>);

impl Drop for SendDropToken {
    fn drop(&mut self) {
        self.0
            .dropped
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Runs `f`, and aborts the process with a message if it has not returned
/// within 60 s: a hang fails the test run instead of stalling it. No
/// assertion depends on the time.
pub fn watchdog<T>(name: &'static str, f: impl FnOnce() -> T) -> T {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    struct Done(Arc<AtomicBool>);
    impl Drop for Done {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    std::thread::spawn(move || {
        for _ in 0..600 {
            std::thread::sleep(Duration::from_millis(100));
            if d.load(Ordering::SeqCst) {
                return;
            }
        }
        eprintln!("{name} did not return within 60 s: a hang");
        std::process::abort();
    });
    let _done = Done(done);
    f()
}

/// A waker that counts its live instances (clones included) in `live` and
/// its wake-ups in `woken`: see [`counted_waker`].
pub struct CountedWaker {
    live: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    woken: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl std::task::Wake for CountedWaker {
    fn wake(self: std::sync::Arc<Self>) {
        self.woken.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for CountedWaker {
    fn drop(&mut self) {
        self.live.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A new [`CountedWaker`]: one more in `live`, and each wake-up one more
/// in `woken`.
pub fn counted_waker(
    live: &std::sync::Arc<std::sync::atomic::AtomicUsize>,
    woken: &std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> std::task::Waker {
    live.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    std::task::Waker::from(std::sync::Arc::new(CountedWaker {
        live: live.clone(),
        woken: woken.clone(),
    }))
}

/// Runs `part` in a child process: this same test binary, with only the
/// test named `test` (which calls this) and one thread, for a test that
/// changes or counts what the whole process shares (its descriptor limit,
/// its open descriptors), which the tests running beside it would disturb.
/// In the parent, checks that the child succeeded and printed `done`; in
/// the child (where the environment variable `var` is set), runs `part`,
/// which prints `done` when it has checked what it came for.
pub fn in_child_process(test: &str, var: &str, done: &str, part: impl FnOnce()) {
    if std::env::var_os(var).is_some() {
        return part();
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(var, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(done),
        "the child did not run the test:\n{stdout}"
    );
}

/// The directories [`process_dir`] made, removed when the process exits.
static PROCESS_DIRS: std::sync::Mutex<Vec<std::path::PathBuf>> = std::sync::Mutex::new(Vec::new());

/// A directory of this test process in the system's temporary directory,
/// named `prefix` and the process id: made by the first call, and removed
/// with everything in it when the process exits, once every test of the
/// file has run (the tests of a file share it while they run, so no test
/// can remove it itself).
pub fn process_dir(prefix: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut dirs = PROCESS_DIRS.lock().unwrap_or_else(|e| e.into_inner());
    if !dirs.contains(&dir) {
        if dirs.is_empty() {
            // SAFETY: registers a function with no arguments that runs at
            // the process's exit; it does not unwind (see below).
            assert_eq!(unsafe { libc::atexit(remove_process_dirs) }, 0);
        }
        dirs.push(dir.clone());
    }
    dir
}

/// Removes the directories of [`process_dir`] at the process's exit,
/// ignoring every error (a directory already gone, a lock poisoned by a
/// failed test): nothing may unwind out of an `atexit` function.
extern "C" fn remove_process_dirs() {
    let _ = std::panic::catch_unwind(|| {
        let dirs = PROCESS_DIRS.lock().unwrap_or_else(|e| e.into_inner());
        for dir in dirs.iter() {
            let _ = std::fs::remove_dir_all(dir);
        }
    });
}
