//! Wake-ups and spawns from outside the loop: [`Remote`], the loop's only
//! thread-safe part, the [`Waker`]s that feed it, and the [`Job`]s that
//! other threads' [`LoopHandle`](super::LoopHandle)s leave in it.
//!
//! A waker names its task by registry index and id. Waking pushes that key
//! into the loop's `Remote` (a mutex-protected inbox and an atomic flag),
//! then wakes the loop's thread: it unparks it, or, once the loop has a
//! readiness poller (feature `net`, see `reactor.rs`), wakes the poller
//! the idle loop waits in through its `mio::Waker`. The loop looks at the
//! flag (one relaxed load) once per round and when idle.
//!
//! A spawn from another thread is the same path with a boxed `Send` closure
//! (a [`Job`]) in place of a key: the loop starts it as a stackful task when
//! it takes its inbox. A loop that no handle ever spawned onto pays nothing
//! more than before: the jobs share the wake-ups' flag and lock. When the
//! loop is dropped (or its runtime shuts down) the inbox is closed: later
//! spawns are refused, and jobs still in it are dropped unstarted.
//!
//! This file names `core::Core` as a type only (the loop a job starts on).
//!
//! A task parked on its waker is "externally wakeable" only while a clone of
//! the waker exists outside the loop (another thread, the blocking pool, the
//! OS, a future that stored it): the waker counts its clones, and when the
//! last one is dropped without waking it tells the loop, which then reports
//! a deadlock instead of sleeping forever. A `JoinHandle` awaited by a task
//! of its own loop keeps the task's key, not a clone.

#[cfg(feature = "net")]
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
use std::sync::{Arc, Mutex};
use std::task::{RawWaker, RawWakerVTable, Waker};
use std::thread::Thread;
use std::time::Duration;

use super::core::Core;
use super::task::{Header, depth_key, key_id};

/// A closure sent from another thread, to run as a task of the loop.
pub(crate) trait Job: Send {
    /// Spawns the job as a task of `core` (on the loop's thread).
    fn start(self: Box<Self>, core: &Core);
}

/// Jobs taken from the inbox, to start or drop.
pub(crate) type Jobs = Vec<Box<dyn Job>>;

/// What other threads left for the loop since it last looked.
#[derive(Default)]
struct Inbox {
    /// Keys of tasks woken by a waker.
    woken: Vec<(u32, u64)>,
    /// Closures to start as tasks.
    jobs: Jobs,
    /// No more jobs are accepted (the loop is going away).
    closed: bool,
    /// The loop is gone: wake-ups are dropped rather than kept for nobody.
    gone: bool,
}

/// The inbox of wake-ups and jobs that other threads leave for a loop, and
/// the loop's thread to unpark (or its poller to wake).
pub(crate) struct Remote {
    pending: AtomicBool,
    /// The loop took something from its inbox since it last slept (see
    /// [`Remote::yield_for_pending`]); only the loop's thread touches it.
    took: AtomicBool,
    inbox: Mutex<Inbox>,
    thread: Thread,
    /// The waker of the poller the idle loop waits in, once it has one:
    /// set once, by the loop's thread, when its first socket has to wait.
    #[cfg(feature = "net")]
    poller_waker: OnceLock<mio::Waker>,
}

impl Remote {
    /// An inbox for a loop driven on the current thread.
    pub(crate) fn new() -> Self {
        Remote {
            pending: AtomicBool::new(false),
            took: AtomicBool::new(false),
            inbox: Mutex::new(Inbox::default()),
            thread: std::thread::current(),
            #[cfg(feature = "net")]
            poller_waker: OnceLock::new(),
        }
    }

    /// The thread that drives the loop.
    pub(crate) fn thread_id(&self) -> std::thread::ThreadId {
        self.thread.id()
    }

    /// True if a wake-up is waiting in the inbox. A relaxed load: the
    /// loop reads it every round, and a late `false` only delays the
    /// wake-up by a round. Where it must not be missed (before reporting a
    /// deadlock), the count of outside wakers was read with `Acquire` just
    /// before, which orders this load after the waker's wake-up.
    #[inline]
    pub(crate) fn has_pending(&self) -> bool {
        self.pending.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inbox> {
        // Nothing panics while holding the lock; a poisoned one is fine.
        self.inbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The keys woken and the jobs sent since the last call, if any.
    pub(crate) fn take(&self) -> Option<(Vec<(u32, u64)>, Jobs)> {
        if !self.pending.swap(false, Ordering::Acquire) {
            return None;
        }
        self.took.store(true, Ordering::Relaxed);
        let mut inbox = self.lock();
        Some((
            std::mem::take(&mut inbox.woken),
            std::mem::take(&mut inbox.jobs),
        ))
    }

    /// Leaves the key of a task for the loop to wake, from any thread.
    pub(crate) fn wake(&self, key: (u32, u64)) {
        {
            let mut inbox = self.lock();
            if inbox.gone {
                return;
            }
            inbox.woken.push(key);
        }
        self.notify();
    }

    /// Leaves `job` for the loop and wakes it, or hands the job back if
    /// the inbox is closed.
    pub(crate) fn send_job<J: Job + 'static>(&self, job: Box<J>) -> Result<(), Box<J>> {
        {
            let mut inbox = self.lock();
            if inbox.closed {
                return Err(job);
            }
            inbox.jobs.push(job);
        }
        self.notify();
        Ok(())
    }

    /// Refuses jobs from now on; the ones already sent stay in the inbox.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
    }

    /// True once [`close`](Remote::close) was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Closes the inbox and takes the jobs still in it (the loop is being
    /// dropped: the caller drops them unstarted).
    pub(crate) fn close_and_take_jobs(&self) -> Jobs {
        let mut inbox = self.lock();
        inbox.closed = true;
        inbox.gone = true;
        inbox.woken = Vec::new();
        std::mem::take(&mut inbox.jobs)
    }

    /// Makes the loop look at its inbox (and, idle, re-check whether it is
    /// deadlocked) even with no key in it.
    pub(crate) fn notify(&self) {
        // Already pending: whoever set the flag wakes the loop (it does so
        // after setting it, below), and the loop takes the whole inbox
        // before it next sleeps. So a burst of wake-ups or spawns costs the
        // loop's thread one wake-up (a system call), not one each.
        if self.pending.swap(true, Ordering::AcqRel) {
            return;
        }
        // Pairs with the fence in `is_pending_before_wait`: either the loop
        // sees `pending` before it waits in its poller, or this sees the
        // poller and notifies it. (Unparking a thread that waits in the
        // poller would be lost.)
        fence(Ordering::SeqCst);
        #[cfg(feature = "net")]
        if let Some(waker) = self.poller_waker.get() {
            // An error here would mean the waker's descriptor is gone;
            // the loop's own wait reports errors of the poller.
            let _ = waker.wake();
            return;
        }
        self.thread.unpark();
    }

    /// From now on, wake-ups wake the poller through `waker` instead of
    /// unparking the thread (the loop then waits in the poller when idle).
    #[cfg(feature = "net")]
    pub(crate) fn use_waker(&self, waker: mio::Waker) {
        let _ = self.poller_waker.set(waker);
        fence(Ordering::SeqCst);
    }

    /// True if a wake-up is pending; called by the loop right before it
    /// waits in its poller (see `notify`).
    #[cfg(feature = "net")]
    pub(crate) fn is_pending_before_wait(&self) -> bool {
        fence(Ordering::SeqCst);
        self.pending.load(Ordering::Acquire)
    }

    /// Gives the thread's time slice away a few times, looking at the flag
    /// after each, before the idle loop sleeps: true as soon as a wake-up
    /// or a job is pending. A thread that sends a burst of spawns often
    /// shares the CPU with the loop (the kernel runs a woken thread where
    /// its waker ran): yielding lets it send the next one while the loop is
    /// still awake, where sleeping would cost it a system call to wake the
    /// loop and a context switch per spawn. Busy-waiting instead (a spin
    /// loop) would keep the sender off that CPU: measured ten times slower.
    /// On an otherwise idle CPU each yield returns at once (a system call,
    /// well under a microsecond).
    ///
    /// Only after the loop took something from its inbox since it last
    /// slept: a loop woken by its poller or its timers alone (a server
    /// between requests) sleeps at once, with no system call more.
    pub(crate) fn yield_for_pending(&self) -> bool {
        if !self.took.swap(false, Ordering::Relaxed) {
            return false;
        }
        for _ in 0..IDLE_YIELDS {
            if self.pending.load(Ordering::Relaxed) {
                return true;
            }
            std::thread::yield_now();
        }
        false
    }

    /// Sleeps the loop's thread until a wake-up or the timeout.
    pub(crate) fn park(&self, timeout: Option<Duration>) {
        if self.pending.load(Ordering::Acquire) {
            return;
        }
        match timeout {
            Some(t) => std::thread::park_timeout(t),
            None => std::thread::park(),
        }
    }
}

/// How many times [`Remote::yield_for_pending`] yields.
const IDLE_YIELDS: u32 = 4;

/// What a task's waker points to: the loop's inbox, the task's key, and
/// how many `Waker` handles exist besides the loop's own.
struct TaskWaker {
    remote: Arc<Remote>,
    key: (u32, u64),
    /// Live clones of the loop's own waker (see [`TaskWaker::is_held_outside`]).
    clones: AtomicUsize,
}

impl TaskWaker {
    /// True if some handle of this waker exists besides the loop's own
    /// (the one a future task's body or a `wait_for` frame keeps): then
    /// something may still wake the task. When the last such handle is
    /// dropped without waking, the loop is told (it re-checks for a
    /// deadlock).
    fn is_held_outside(&self) -> bool {
        self.clones.load(Ordering::Acquire) > 0
    }
}

/// The vtable of a task's waker. A hand-written one (not `std::task::Wake`)
/// because the loop must know when the last clone goes.
static VTABLE: RawWakerVTable = RawWakerVTable::new(clone_raw, wake_raw, wake_by_ref_raw, drop_raw);

/// # Safety (for the four functions below)
/// `data` came from `Arc::into_raw` of a `TaskWaker`, and the handle it
/// belongs to owns one strong count of it.
unsafe fn clone_raw(data: *const ()) -> RawWaker {
    // SAFETY: see above; the new handle owns the count added here.
    unsafe { Arc::increment_strong_count(data.cast::<TaskWaker>()) };
    // SAFETY: see above: the `TaskWaker` is alive.
    let w = unsafe { &*data.cast::<TaskWaker>() };
    w.clones.fetch_add(1, Ordering::AcqRel);
    RawWaker::new(data, &VTABLE)
}

unsafe fn wake_raw(data: *const ()) {
    // SAFETY: see `clone_raw`.
    unsafe {
        wake_by_ref_raw(data);
        drop_raw(data);
    }
}

unsafe fn wake_by_ref_raw(data: *const ()) {
    // SAFETY: see `clone_raw`.
    let w = unsafe { &*data.cast::<TaskWaker>() };
    w.remote.wake(w.key);
}

unsafe fn drop_raw(data: *const ()) {
    // SAFETY: see `clone_raw`; this handle gives its count back.
    let w = unsafe { Arc::from_raw(data.cast::<TaskWaker>()) };
    if w.clones.fetch_sub(1, Ordering::AcqRel) == 1 {
        // The last handle besides the loop's own is gone: nothing outside
        // can wake the task any more; let an idle loop look again.
        w.remote.notify();
    }
}

/// The loop's own waker for the task of `header`: wakes it through `remote`
/// from any thread. Clones of it count as "held outside" until dropped;
/// this handle itself does not.
pub(crate) struct OwnWaker {
    inner: Arc<TaskWaker>,
    waker: std::mem::ManuallyDrop<Waker>,
}

impl OwnWaker {
    /// The waker of a poll at wait `depth` (see `Header::notified`) of the
    /// task of `header`.
    pub(crate) fn new(remote: &Arc<Remote>, header: &Header, depth: u8) -> Self {
        let inner = Arc::new(TaskWaker {
            remote: remote.clone(),
            key: (header.index.get(), depth_key(header.id, depth)),
            clones: AtomicUsize::new(0),
        });
        let data = Arc::into_raw(inner.clone()).cast::<()>();
        // SAFETY: `data` came from `Arc::into_raw` of a `TaskWaker` and this
        // handle owns that count; the vtable's functions keep the contract.
        // The handle is never dropped through the vtable (see `Drop`), so it
        // is not counted as a clone.
        let waker = unsafe { Waker::from_raw(RawWaker::new(data, &VTABLE)) };
        OwnWaker {
            inner,
            waker: std::mem::ManuallyDrop::new(waker),
        }
    }

    pub(crate) fn waker(&self) -> &Waker {
        &self.waker
    }

    /// True if this waker wakes the task of `header` in the loop of
    /// `remote`. (It keeps its own loop's `remote` alive, so a later loop
    /// cannot have the same one.)
    pub(crate) fn wakes(&self, remote: &Arc<Remote>, header: &Header) -> bool {
        let (index, id) = self.inner.key;
        Arc::ptr_eq(&self.inner.remote, remote)
            && (index, key_id(id)) == (header.index.get(), header.id)
    }

    /// See [`TaskWaker::is_held_outside`].
    pub(crate) fn is_held_outside(&self) -> bool {
        self.inner.is_held_outside()
    }
}

impl Drop for OwnWaker {
    fn drop(&mut self) {
        // SAFETY: `waker` is not used again; its data pointer owns one count
        // of `inner`, given back here without going through `drop_raw`
        // (which would count it as a clone going).
        let waker = unsafe { std::mem::ManuallyDrop::take(&mut self.waker) };
        let data = waker.data();
        std::mem::forget(waker);
        // SAFETY: see above.
        drop(unsafe { Arc::from_raw(data.cast::<TaskWaker>()) });
    }
}

impl std::fmt::Debug for OwnWaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnWaker")
            .field("key", &self.inner.key)
            .finish()
    }
}

/// If `waker` is a cogen task waker of a loop of this thread, that loop's
/// inbox and its task's key: a `JoinHandle` of another loop of the thread,
/// awaited by such a task, wakes it through the inbox without a clone of
/// the waker. A clone would count as "held outside" and hide a deadlock,
/// as neither loop can run while the other does. (A waker of a loop on
/// another thread is cloned: that loop does run meanwhile.)
pub(crate) fn task_key(waker: &Waker) -> Option<(Arc<Remote>, (u32, u64))> {
    if !std::ptr::eq(waker.vtable(), &VTABLE) {
        return None;
    }
    // SAFETY: as in `local_key`.
    let w = unsafe { &*waker.data().cast::<TaskWaker>() };
    (w.remote.thread_id() == std::thread::current().id()).then(|| (w.remote.clone(), w.key))
}

/// If `waker` is a cogen task waker of the loop whose inbox is `remote`, the
/// key of its task: a `JoinHandle` awaited by such a task keeps the key
/// rather than a clone, so that clones mean "held outside the loop".
pub(crate) fn local_key(waker: &Waker, remote: &Arc<Remote>) -> Option<(u32, u64)> {
    if !std::ptr::eq(waker.vtable(), &VTABLE) {
        return None;
    }
    // SAFETY: a waker with our vtable has a live `TaskWaker` behind its data
    // pointer (see `clone_raw`), kept alive by `waker` itself.
    let w = unsafe { &*waker.data().cast::<TaskWaker>() };
    Arc::ptr_eq(&w.remote, remote).then_some(w.key)
}
