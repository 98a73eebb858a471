//! [`Runtime`]: one [`EventLoop`] per thread, fed through
//! [`LoopHandle`]s, and [`RuntimeBuilder`], its settings (threads, pinning,
//! names, stack sizes). Also the shutdown: stop accepting, let tasks finish
//! until a deadline, cancel the rest, join the threads.
//!
//! Each worker thread builds its own loop and runs a main task that waits
//! for the shutdown signal (a future whose waker the runtime keeps), so the
//! loop neither returns when it has no task nor reports a deadlock while
//! the runtime lives.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle as ThreadHandle;
use std::time::{Duration, Instant};

use super::core::PanicPolicy;
use super::handle::{LoopHandle, RemoteJoinHandle};
use super::runtime::EventLoop;
use super::wait_for::wait_for;

/// Names a worker thread after its index.
type NameFn = Box<dyn Fn(usize) -> String + Send + Sync>;

/// Several [`EventLoop`]s, one per thread (by default one per available
/// CPU), that take `Send` closures from any thread.
///
/// ```
/// use cogen::event_loop::{Runtime, sleep};
/// use std::time::Duration;
///
/// let rt = Runtime::builder().threads(2).build().unwrap();
/// let handles: Vec<_> = (0..4u64)
///     .map(|i| {
///         rt.spawn(move || {
///             sleep(Duration::from_millis(1)); // parks the task, not the thread
///             i * 10
///         })
///     })
///     .collect();
/// let total: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
/// assert_eq!(total, 60);
/// assert_eq!(rt.block_on(|| 6 * 7), 42);
/// ```
///
/// # Placement
///
/// [`spawn`](Runtime::spawn) places tasks round robin: the `n`-th spawn
/// goes to loop `n % threads`, whatever the loops' load. To place a task on
/// a given loop, use that loop's handle ([`handles`](Runtime::handles));
/// tasks spawned from inside a task with [`spawn`](super::spawn) stay on the
/// spawning task's loop.
///
/// # Tasks never migrate
///
/// A task runs on the thread of the loop it was placed on, from its first
/// step to its last. A suspended stackful task's stack may hold references
/// to that thread's thread-locals and `!Send` values (an `Rc`, a `RefCell`
/// borrow, the loop's own channels); resuming it on another thread would be
/// unsound. So there is no work stealing: a loop whose tasks all wait sits
/// idle while another is busy. Spread the work when you spawn it.
///
/// # Panics
///
/// A task's panic goes to its handle, as a [`JoinError`](super::JoinError).
/// A detached task's panic (its handle dropped) has nobody to go to: the
/// panic hook reports it when it happens, as on any thread, and the worker's
/// loop drops it ([`PanicPolicy::Discard`]), so a runtime that runs for
/// good does not pile them up.
///
/// # Shutdown and drop
///
/// [`shutdown_timeout`](Runtime::shutdown_timeout) stops accepting spawns
/// (the handles refuse them, see [`LoopHandle`]), lets every loop run until
/// its tasks are done, deadlocked, or the deadline passes, then drops the loops (every
/// task left is cancelled: its stack is unwound, every destructor on it runs
/// once, and its handle reports a cancellation) and joins the threads.
/// Dropping the runtime is `shutdown_timeout(Duration::ZERO)`: every task
/// still there is cancelled at once. From inside one of its own tasks (the
/// last `Arc<Runtime>` dropped there), the other threads are joined, and
/// that task's own thread ends by itself once the task returns.
/// `shutdown_timeout` with a longer time from one of its own tasks (or a
/// task of any other loop on the calling thread) does not wait: that
/// task's loop could not run meanwhile, so its tasks (and the runtime's
/// tasks waiting for them) would only be cancelled at the deadline, or wait
/// for ever with `Duration::MAX`. It closes the runtime to spawns, sets
/// the deadline and returns; the loops finish (or cancel at the deadline)
/// and their threads end on their own. (A shutdown called on a thread of
/// its own that a runtime task waits for, an [`unblock`](super::unblock)
/// closure say, is such a wait too: give it a finite timeout.)
pub struct Runtime {
    handles: Vec<LoopHandle>,
    signals: Vec<Arc<Signal>>,
    threads: Vec<ThreadHandle<()>>,
    next: AtomicUsize,
}

impl Runtime {
    /// A runtime with the default settings (see [`RuntimeBuilder`]).
    ///
    /// # Errors
    /// If a thread cannot be started.
    pub fn new() -> io::Result<Runtime> {
        RuntimeBuilder::new().build()
    }

    /// A [`RuntimeBuilder`].
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::new()
    }

    /// Sends `f` to the next loop, round robin, which runs it as a stackful
    /// task; the handle waits for its value from any thread.
    pub fn spawn<F, T>(&self, f: F) -> RemoteJoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.handles[n % self.handles.len()].spawn(f)
    }

    /// Runs `f` as a task on one of the loops and blocks the calling thread
    /// until it returns its value.
    ///
    /// # Panics
    /// If `f` panics (with its payload), or if called from inside a task of
    /// a loop that is not stackful (see [`RemoteJoinHandle::join`]).
    #[track_caller]
    pub fn block_on<F, T>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        match self.spawn(f).join() {
            Ok(value) => value,
            Err(e) => match e.try_into_panic() {
                Ok(p) => p.resume_unwind(),
                Err(e) => panic!("the task of Runtime::block_on ended: {e}"),
            },
        }
    }

    /// One handle per loop, in thread order: to place tasks yourself (for
    /// example, one listener task per loop).
    pub fn handles(&self) -> &[LoopHandle] {
        &self.handles
    }

    /// The number of loops (and threads).
    pub fn threads(&self) -> usize {
        self.handles.len()
    }

    /// Stops accepting spawns, lets the tasks run until they are all done or
    /// `timeout` has passed, cancels the rest and joins the threads. A loop
    /// whose tasks left are deadlocked (each waits for another, and nothing
    /// outside can wake them) stops waiting at once. Called from a task (of
    /// the runtime's own loops or of any other loop of the calling thread),
    /// it returns without waiting (unless `timeout` is zero). See
    /// [Shutdown and drop](Runtime#shutdown-and-drop).
    pub fn shutdown_timeout(mut self, timeout: Duration) {
        self.shutdown(timeout);
    }

    fn shutdown(&mut self, timeout: Duration) {
        // Saturating: `Duration::MAX` means "until the tasks are done".
        let deadline = super::timer::deadline_after(timeout);
        for handle in &self.handles {
            handle.remote().close();
        }
        // Drained: the drop that follows `shutdown_timeout` (which may have
        // returned without waiting) must not raise a zero deadline.
        for signal in self.signals.drain(..) {
            signal.raise(deadline);
        }
        let here = std::thread::current().id();
        // From a task (of one of its own loops or of any other loop of this
        // thread), that task's loop cannot run while its thread waits here,
        // and the runtime's tasks may be waiting for its tasks: only a
        // shutdown that cancels everything at once (a drop) may wait for
        // the workers, which then need nothing from this thread.
        let in_a_loop = self.threads.iter().any(|t| t.thread().id() == here)
            || super::current::driving_a_loop();
        let join_others = !in_a_loop || timeout.is_zero();
        for thread in self.threads.drain(..) {
            // Shut down from one of its own tasks (the last `Arc` of it
            // dropped there): that worker cannot join itself, and ends on
            // its own once the task returns to its loop.
            if thread.thread().id() == here || !join_others {
                continue;
            }
            // A worker's loop catches its tasks' panics; a worker thread
            // that panicked anyway has nothing more to clean up.
            let _ = thread.join();
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.shutdown(Duration::ZERO);
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("threads", &self.handles.len())
            .finish_non_exhaustive()
    }
}

/// Configures a [`Runtime`].
///
/// ```
/// use cogen::event_loop::Runtime;
///
/// let rt = Runtime::builder()
///     .threads(2)
///     .thread_name(|i| format!("worker-{i}"))
///     .stack_size(256 * 1024)
///     .build()
///     .unwrap();
/// let name = rt.block_on(|| std::thread::current().name().map(str::to_owned));
/// assert!(name.unwrap().starts_with("worker-"));
/// ```
pub struct RuntimeBuilder {
    threads: Option<usize>,
    pin: bool,
    name: NameFn,
    stack_size: Option<usize>,
    thread_stack_size: Option<usize>,
}

impl Default for RuntimeBuilder {
    fn default() -> Self {
        RuntimeBuilder::new()
    }
}

impl fmt::Debug for RuntimeBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeBuilder")
            .field("threads", &self.threads)
            .field("pin", &self.pin)
            .field("stack_size", &self.stack_size)
            .field("thread_stack_size", &self.thread_stack_size)
            .finish_non_exhaustive()
    }
}

impl RuntimeBuilder {
    /// One thread per CPU available to the process
    /// ([`std::thread::available_parallelism`], 1 if unknown), not pinned,
    /// named `cogen-N`, tasks on stacks of the default size.
    pub fn new() -> Self {
        RuntimeBuilder {
            threads: None,
            pin: false,
            name: Box::new(|i| format!("cogen-{i}")),
            stack_size: None,
            thread_stack_size: None,
        }
    }

    /// The number of threads, each with its own loop (at least 1).
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = Some(n.max(1));
        self
    }

    /// Pins thread `i` to the `i`-th CPU the process may run on (modulo
    /// their number), with `sched_setaffinity`. Linux only; elsewhere, and
    /// if the call fails, the thread runs unpinned.
    pub fn pin(mut self, pin: bool) -> Self {
        self.pin = pin;
        self
    }

    /// Names thread `i` `name(i)`.
    pub fn thread_name(mut self, name: impl Fn(usize) -> String + Send + Sync + 'static) -> Self {
        self.name = Box::new(name);
        self
    }

    /// The stack size of the tasks that [`Runtime::spawn`] and the
    /// runtime's handles create (rounded up like
    /// [`TaskBuilder::stack_size`](super::TaskBuilder::stack_size)).
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// The stack size of the worker threads themselves (the loop's own
    /// stack, not the tasks'); the standard library's default otherwise.
    pub fn thread_stack_size(mut self, bytes: usize) -> Self {
        self.thread_stack_size = Some(bytes);
        self
    }

    /// Starts the threads, each with its own loop.
    ///
    /// # Errors
    /// If a thread cannot be started (the ones already started are shut
    /// down).
    pub fn build(self) -> io::Result<Runtime> {
        let n = self.threads.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        });
        let cpus = if self.pin { allowed_cpus() } else { Vec::new() };
        let mut rt = Runtime {
            handles: Vec::with_capacity(n),
            signals: Vec::with_capacity(n),
            threads: Vec::with_capacity(n),
            next: AtomicUsize::new(0),
        };
        for i in 0..n {
            let signal = Arc::new(Signal::default());
            let (tx, rx) = mpsc::channel();
            let mut thread = std::thread::Builder::new().name((self.name)(i));
            if let Some(size) = self.thread_stack_size {
                thread = thread.stack_size(size);
            }
            let cpu = (!cpus.is_empty()).then(|| cpus[i % cpus.len()]);
            let worker_signal = signal.clone();
            let spawned = thread.spawn(move || worker(cpu, &tx, &worker_signal));
            let handle = spawned.and_then(|thread| {
                rt.threads.push(thread);
                rx.recv()
                    .map_err(|_| io::Error::other("a runtime thread ended before its loop started"))
            });
            // On an error, dropping `rt` shuts down the threads started so far.
            let handle = handle?;
            rt.handles
                .push(LoopHandle::new(handle.remote().clone(), self.stack_size));
            rt.signals.push(signal);
        }
        Ok(rt)
    }
}

/// A worker thread: its loop serves spawns until the shutdown signal, then
/// runs its tasks until the deadline, and is dropped (cancelling the rest).
fn worker(cpu: Option<usize>, tx: &mpsc::Sender<LoopHandle>, signal: &Arc<Signal>) {
    if let Some(cpu) = cpu {
        pin_to(cpu);
    }
    // Nothing could read the panics of detached tasks: the panic hook has
    // reported each, and the loop keeps none (a list would only grow).
    let ev = EventLoop::builder()
        .panic_policy(PanicPolicy::Discard)
        .build();
    if tx.send(ev.handle()).is_err() {
        return;
    }
    let wait = WaitSignal(signal.clone());
    // The main task waits on a future whose waker the runtime holds: the
    // loop sleeps between spawns and never reports a deadlock meanwhile.
    let deadline = match ev.block_on(move || wait_for(wait)) {
        Ok(deadline) => deadline,
        Err(_) => Instant::now(),
    };
    ev.run_until_deadline(deadline);
    drop(ev);
}

/// The shutdown signal of one worker: its deadline once raised, and the
/// waker of its main task.
#[derive(Default)]
struct Signal {
    state: Mutex<(Option<Instant>, Option<Waker>)>,
}

impl Signal {
    fn raise(&self, deadline: Instant) {
        let waker = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.0 = Some(deadline);
            state.1.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The future the worker's main task waits on: ready with the deadline once
/// the signal is raised.
struct WaitSignal(Arc<Signal>);

impl Future for WaitSignal {
    type Output = Instant;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Instant> {
        let mut state = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
        match state.0 {
            Some(deadline) => Poll::Ready(deadline),
            None => {
                state.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// The CPUs this process may run on, in order.
#[cfg(target_os = "linux")]
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: an all-zero `cpu_set_t` is a valid (empty) set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable `cpu_set_t` of the size passed.
    let r = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) };
    if r != 0 {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `cpu` is below CPU_SETSIZE, within the set.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}

#[cfg(not(target_os = "linux"))]
fn allowed_cpus() -> Vec<usize> {
    Vec::new()
}

/// Pins the calling thread to `cpu`; on failure it stays unpinned.
#[cfg(target_os = "linux")]
fn pin_to(cpu: usize) {
    // SAFETY: an all-zero `cpu_set_t` is a valid (empty) set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` came from `allowed_cpus`, so it is below CPU_SETSIZE.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid `cpu_set_t` of the size passed; 0 is the
    // calling thread.
    let _ = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
}

#[cfg(not(target_os = "linux"))]
fn pin_to(_cpu: usize) {}
