//! Stackless tasks (feature `nightly`): a task body that is a `#[coroutine]`
//! closure yielding [`Wait`] requests, which its step files (queued again,
//! or parked on a timer, a task or a channel). The user-facing docs are in
//! the [`stackless`](super::super::stackless) module.

use std::cell::UnsafeCell;
use std::fmt;
#[cfg(feature = "net")]
use std::io;
use std::mem::ManuallyDrop;
use std::ops::{Coroutine as StdCoroutine, CoroutineState};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::ptr::{self, NonNull};
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use crate::error::Panic;

use super::super::channel::{ChanWait, Receiver, Sender, Side, ThinChan};
use super::super::core::Core;
use super::super::error::JoinError;
use super::super::join::JoinHandle;
#[cfg(feature = "net")]
use super::super::net::Socket;
#[cfg(feature = "net")]
use super::super::net::source::Target;
use super::super::prefetch::Prefetch;
#[cfg(feature = "net")]
use super::super::reactor::Direction;
use super::super::task::{
    Header, RESULT_PENDING, ResultCell, Step, TaskBody, TaskOptions, TaskRef, TaskState,
    WaitReason, Waiter,
};
use super::super::timer::deadline_after;
use crate::error::drop_quietly;

/// What a stackless task waits for: the value it `yield`s.
#[must_use = "a Wait does nothing unless yielded from a stackless task"]
pub struct Wait(WaitKind);

enum WaitKind {
    Yield,
    Until(Instant),
    Join(TaskRef),
    Channel(Rc<dyn ChanWait>, Side),
    #[cfg(feature = "net")]
    Io(Target, Direction),
}

impl Wait {
    /// Go to the back of the run queue (like [`yield_now`](super::super::yield_now)).
    pub fn yield_now() -> Wait {
        Wait(WaitKind::Yield)
    }

    /// Sleep for at least `duration`.
    pub fn sleep(duration: Duration) -> Wait {
        Wait(WaitKind::Until(deadline_after(duration)))
    }

    /// Sleep until `deadline`.
    pub fn sleep_until(deadline: Instant) -> Wait {
        Wait(WaitKind::Until(deadline))
    }

    /// Wait until the task of `handle` is done; then take its result with
    /// [`JoinHandle::try_join`]. A task that yields a join of itself fails
    /// instead, its [`JoinError`] holding the panic a stackful task's
    /// [`JoinHandle::join`] of itself raises.
    pub fn join<T>(handle: &JoinHandle<T>) -> Wait {
        Wait(WaitKind::Join(handle.task().clone()))
    }

    /// Wait until `rx` has a message or is closed; then call `try_recv`.
    pub fn recv<T: 'static>(rx: &Receiver<T>) -> Wait {
        Wait(WaitKind::Channel(rx.chan.clone(), Side::Recv))
    }

    /// Wait until `tx` has room or is closed; then call `try_send`.
    pub fn send<T: 'static>(tx: &Sender<T>) -> Wait {
        Wait(WaitKind::Channel(tx.chan.clone(), Side::Send))
    }

    /// Wait until `socket` may be readable (or accept a connection, or
    /// has a datagram, or failed); then try again with its non-waiting
    /// form (`try_read`, `try_accept`, `try_recv_from`). Feature `net`.
    ///
    /// Yield it only after that form returned
    /// [`WouldBlock`](io::ErrorKind::WouldBlock): the socket's readiness
    /// is reported as it changes (edge-triggered), so a socket that was
    /// already readable may never wake the task. A wake-up may be
    /// spurious: the retry may say `WouldBlock` again, and the task waits
    /// again.
    ///
    /// ```
    /// #![feature(coroutines, coroutine_trait, stmt_expr_attributes)]
    /// use cogen::event_loop::net::TcpListener;
    /// use cogen::event_loop::{EventLoop, Wait};
    /// use std::io::{self, Write};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let addr = listener.local_addr().unwrap();
    /// let ev = EventLoop::new();
    /// let server = ev.spawn_stackless(#[coroutine] move || -> io::Result<Vec<u8>> {
    ///     let (stream, _) = loop {
    ///         match listener.try_accept() {
    ///             Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
    ///             accepted => break accepted?,
    ///         }
    ///         yield Wait::readable(&listener)?;
    ///     };
    ///     let mut buf = [0; 16];
    ///     loop {
    ///         match stream.try_read(&mut buf) {
    ///             Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
    ///             read => return Ok(buf[..read?].to_vec()),
    ///         }
    ///         yield Wait::readable(&stream)?;
    ///     }
    /// });
    /// let client = std::thread::spawn(move || {
    ///     std::net::TcpStream::connect(addr).unwrap().write_all(b"hi").unwrap()
    /// });
    /// ev.run().unwrap();
    /// client.join().unwrap();
    /// assert_eq!(server.join().unwrap().unwrap(), b"hi");
    /// ```
    ///
    /// # Errors
    /// The first wait on a socket registers it with the loop's poller,
    /// which can fail (out of memory, out of descriptors for the poller).
    ///
    /// # Panics
    /// Outside a task of a running loop, and when the socket waits in
    /// another loop (see the [`net`](super::super::net) module). A `Wait`
    /// made in one loop and yielded by a task of another fails that task
    /// instead, its [`JoinError`] holding the same message.
    #[cfg(feature = "net")]
    #[track_caller]
    pub fn readable(socket: &impl Socket) -> io::Result<Wait> {
        let target = socket.target("Wait::readable")?;
        Ok(Wait(WaitKind::Io(target, Direction::Read)))
    }

    /// Wait until `socket` may be writable (or its connection is set up,
    /// or it failed); then try again with its non-waiting form
    /// (`try_write`, `try_send_to`). Feature `net`. As with
    /// [`readable`](Wait::readable), yield it only after that form
    /// returned [`WouldBlock`](io::ErrorKind::WouldBlock).
    ///
    /// # Errors
    /// As [`readable`](Wait::readable).
    ///
    /// # Panics
    /// As [`readable`](Wait::readable).
    #[cfg(feature = "net")]
    #[track_caller]
    pub fn writable(socket: &impl Socket) -> io::Result<Wait> {
        let target = socket.target("Wait::writable")?;
        Ok(Wait(WaitKind::Io(target, Direction::Write)))
    }
}

impl fmt::Debug for Wait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            WaitKind::Yield => f.write_str("Wait::yield_now"),
            WaitKind::Until(t) => f.debug_tuple("Wait::sleep_until").field(t).finish(),
            WaitKind::Join(t) => f.debug_tuple("Wait::join").field(&t.header.id).finish(),
            WaitKind::Channel(_, side) => f.debug_tuple("Wait::channel").field(side).finish(),
            #[cfg(feature = "net")]
            WaitKind::Io(target, dir) => {
                f.debug_tuple("Wait::io").field(dir).field(target).finish()
            }
        }
    }
}

/// True if `wait` is a socket's made in another loop (and carried into
/// this one): it names that loop's reactor, which this loop never polls.
#[cfg(feature = "net")]
fn waits_elsewhere(wait: &Wait, core: &Core) -> bool {
    match &wait.0 {
        WaitKind::Io(target, _) => !core
            .reactor
            .get()
            .is_some_and(|here| Rc::ptr_eq(here, &target.reactor)),
        _ => false,
    }
}

#[cfg(not(feature = "net"))]
fn waits_elsewhere(_: &Wait, _: &Core) -> bool {
    false
}

/// What a task that yielded a `Wait` of another loop fails with: the
/// panic that making the `Wait` in this loop would have raised.
#[cold]
fn waits_elsewhere_payload() -> Box<dyn std::any::Any + Send> {
    Box::new(
        "cogen::event_loop::Wait: the socket waits in another event loop (a socket stays with \
         the first loop it waited in while that loop exists)",
    )
}

/// Why `task` must fail instead of waiting for the `wait` it yielded,
/// which would never end: the panic that a stackful task waiting for the
/// same thing raises. `None` if the wait is fine.
fn refusal(wait: &Wait, task: &TaskRef, core: &Core) -> Option<Box<dyn std::any::Any + Send>> {
    match &wait.0 {
        WaitKind::Join(target) if ptr::addr_eq(Rc::as_ptr(target), Rc::as_ptr(task)) => Some(
            Box::new(format!("task {} tried to join itself", task.header.id)),
        ),
        _ if waits_elsewhere(wait, core) => Some(waits_elsewhere_payload()),
        _ => None,
    }
}

/// The coroutine and, once it is gone, the result cell: they never live at
/// the same time, so they share their bytes (which one is there is
/// the stage in `StacklessBody`'s docs). A parked task is mostly this, so it matters.
union Body<C, R> {
    co: ManuallyDrop<C>,
    result: ManuallyDrop<ResultCell<R>>,
}

/// What the body holds, in the header's `body_byte`: the coroutine.
const LIVE: u8 = 0;
/// The body holds the result cell (set, or taken by the handle).
const RESULT: u8 = 1;
/// The body holds nothing (the coroutine's drop is under way): the handle
/// must not read the result yet, even though the task is done.
const EMPTY: u8 = RESULT_PENDING;

/// A stackless task's body. Its small state lives in the header's spare
/// bytes: `body_byte` is the stage (`LIVE`, `RESULT` or `EMPTY`: what
/// `body` holds; a new header says `LIVE`), `body_byte2` the side of the
/// channel in `last` (0 for send, 1 for receive).
struct StacklessBody<C: StdCoroutine<Yield = Wait>> {
    body: UnsafeCell<Body<C, C::Return>>,
    /// The channel it last parked on, to pass a wake-up on if cancelled.
    last: UnsafeCell<Option<ThinChan>>,
}

// SAFETY (for every access to `body` and `last` below): a body is only
// touched on the loop's thread, by the loop stepping or closing the task,
// by the task's handle reading the result once the task is done, and by
// the task's drop; none of these overlap and none keeps a reference across
// another. `body.co` is only touched while the stage is `LIVE`,
// `body.result` only while it is `RESULT`.
impl<C: StdCoroutine<Yield = Wait>> StacklessBody<C> {
    fn new(co: C) -> Self {
        const { assert!(LIVE == 0, "a new header's body_byte is 0") };
        StacklessBody {
            body: UnsafeCell::new(Body {
                co: ManuallyDrop::new(co),
            }),
            last: UnsafeCell::new(None),
        }
    }

    /// Where the result will be, for the handle (valid to read once the
    /// task is done: `stage` is then `RESULT`).
    fn result_ptr(&self) -> NonNull<ResultCell<C::Return>> {
        // SAFETY: a pointer into our own field, no reference is made; `ManuallyDrop`
        // is `repr(transparent)`.
        unsafe {
            NonNull::new_unchecked(
                ptr::addr_of_mut!((*self.body.get()).result).cast::<ResultCell<C::Return>>(),
            )
        }
    }

    /// Drops the coroutine, catching a panic of its destructors.
    fn drop_co(&self, header: &Header) -> std::thread::Result<()> {
        debug_assert_eq!(header.body_byte.get(), LIVE);
        header.body_byte.set(EMPTY);
        // SAFETY: stage was LIVE, so `co` is there; it is dropped once, as
        // the stage now says EMPTY.
        std::panic::catch_unwind(AssertUnwindSafe(|| unsafe {
            ManuallyDrop::drop(&mut (*self.body.get()).co)
        }))
    }

    /// Stores the result in the emptied body.
    fn store(&self, header: &Header, value: Result<C::Return, JoinError>) {
        debug_assert_eq!(header.body_byte.get(), EMPTY);
        let cell = ResultCell::new();
        cell.set(value);
        // SAFETY: the body is EMPTY: nothing to drop, nothing borrowed.
        unsafe { (*self.body.get()).result = ManuallyDrop::new(cell) };
        header.body_byte.set(RESULT);
    }
}

/// The coroutine's state is in the task's own allocation: nothing to ask
/// for.
impl<C: StdCoroutine<Yield = Wait>> Prefetch for StacklessBody<C> {}

impl<C: StdCoroutine<Yield = Wait>> TaskBody for StacklessBody<C> {
    fn drop_body(&mut self, header: &Header) {
        let body = self.body.get_mut();
        match header.body_byte.replace(EMPTY) {
            // SAFETY: the stage says which field is there; dropped once.
            LIVE => unsafe { ManuallyDrop::drop(&mut body.co) },
            // SAFETY: as above.
            RESULT => unsafe { ManuallyDrop::drop(&mut body.result) },
            _ => {}
        }
    }

    fn step(&self, task: &TaskRef, core: &Core) -> Step {
        let header = &task.header;
        if header.body_byte.get() != LIVE {
            return Step::Done;
        }
        // SAFETY: only the loop steps a task, never re-entrantly; the
        // coroutine is LIVE and lives in an `Rc` allocation that never moves
        // and is dropped in place, so pinning it there is sound.
        let c = unsafe { Pin::new_unchecked(&mut *(*self.body.get()).co) };
        match std::panic::catch_unwind(AssertUnwindSafe(|| c.resume(()))) {
            Ok(CoroutineState::Yielded(wait)) => match refusal(&wait, task, core) {
                None => {
                    self.file(task, core, wait);
                    Step::Suspended
                }
                Some(payload) => {
                    // It would never be woken: the task fails as if making
                    // the `Wait` here had panicked.
                    drop(wait);
                    drop_quietly(self.drop_co(header));
                    let panic = Panic::new(payload, header.name_cow());
                    self.store(header, Err(JoinError::panicked(header.id, panic)));
                    Step::Done
                }
            },
            Ok(CoroutineState::Complete(value)) => {
                match self.drop_co(header) {
                    Ok(()) => self.store(header, Ok(value)),
                    Err(payload) => {
                        // Its captures' destructors are part of the body: a
                        // panic there makes the task a panicked one.
                        drop_quietly(value);
                        let panic = Panic::new(payload, header.name_cow());
                        self.store(header, Err(JoinError::panicked(header.id, panic)));
                    }
                }
                Step::Done
            }
            Err(payload) => {
                drop_quietly(self.drop_co(header));
                let panic = Panic::new(payload, header.name_cow());
                self.store(header, Err(JoinError::panicked(header.id, panic)));
                Step::Done
            }
        }
    }

    fn close(&self, header: &Header) -> Result<(), Panic> {
        let dropped = match header.body_byte.get() {
            LIVE => self.drop_co(header),
            _ => Ok(()),
        };
        if header.body_byte.get() == EMPTY {
            self.store(
                header,
                Err(JoinError::cancelled(header.id, header.name_cow())),
            );
        }
        dropped.map_err(|payload| Panic::new(payload, header.name_cow()))
    }

    fn take_panic(&self, header: &Header) -> Option<Panic> {
        if header.body_byte.get() != RESULT {
            return None;
        }
        // SAFETY: the stage is RESULT, so the result cell is there.
        unsafe { (*self.body.get()).result.take_panic() }
    }

    fn pass_on(&self, header: &Header) {
        // SAFETY: loop-thread only, no other reference is alive.
        if let Some(chan) = unsafe { (*self.last.get()).take() } {
            let side = match header.body_byte2.get() {
                0 => Side::Send,
                _ => Side::Recv,
            };
            chan.pass_on(side);
        }
    }
}

impl<C: StdCoroutine<Yield = Wait>> StacklessBody<C> {
    /// Files the task according to the request it yielded: queued again if
    /// it can go on at once, else parked where its wake-up will come from.
    /// Whatever may run user code (a waker, the last reference to a channel
    /// or task going) happens while the task is still `Running`, before its
    /// state changes: a cancellation from there is then only a request.
    fn file(&self, task: &TaskRef, core: &Core, wait: Wait) {
        let requeue = || task.header.state.set(TaskState::Queued);
        match wait.0 {
            WaitKind::Yield => requeue(),
            WaitKind::Until(at) => {
                let seq = core.begin_park(&task.header, WaitReason::Sleep);
                core.timers.add(at, task.clone(), seq);
            }
            WaitKind::Join(target) => {
                if target.header.is_done() {
                    core.drop_reporting(target);
                    requeue();
                } else {
                    // `target` is unfinished, so its loop's registry holds
                    // it, and `replaced` can only be this task's own entry
                    // of an earlier wait: dropping either runs nothing.
                    let seq = core.begin_park(&task.header, WaitReason::Join);
                    let h = &task.header;
                    // By key within one loop: the entry stays in the
                    // target's waiters if this task is cancelled, and must
                    // not keep it (and what its body held) alive until the
                    // target ends. A key is looked up in the target's own
                    // registry, so a join across loops keeps a reference.
                    let entry = if Weak::ptr_eq(&h.core, &target.header.core) {
                        Waiter::Parked(h.index.get(), h.id, seq)
                    } else {
                        Waiter::Task(task.clone(), seq)
                    };
                    let replaced = target.header.add_waiter(entry);
                    drop(replaced);
                }
            }
            #[cfg(feature = "net")]
            WaitKind::Io(target, dir) => {
                let h = &task.header;
                // The socket is there unless the task dropped it between
                // making the `Wait` and yielding it: then it retries.
                if target.reactor.id(target.key) != Some(target.id) {
                    requeue();
                    return;
                }
                let seq = core.begin_park(h, WaitReason::Io);
                // By key, not a reference: the entry stays in the reactor
                // if the task is cancelled, and must not keep it alive.
                let entry = Waiter::Parked(h.index.get(), h.id, seq);
                let added = target.reactor.add_waiter(target.key, target.id, dir, entry);
                debug_assert!(matches!(added, Ok(None)), "filed, replacing nothing");
            }
            WaitKind::Channel(chan, side) => {
                // SAFETY: loop-thread only, no other reference is alive. The
                // channel of an earlier wait may be dropped here (its
                // messages with it): while the task still runs.
                core.drop_reporting(unsafe { (*self.last.get()).take() });
                if chan.ready(side) {
                    core.drop_reporting(chan);
                    requeue();
                } else {
                    let reason = match side {
                        Side::Send => WaitReason::Send,
                        Side::Recv => WaitReason::Recv,
                    };
                    let seq = core.begin_park(&task.header, reason);
                    // SAFETY: as above. `last` keeps the channel alive, so
                    // dropping `chan` at the end runs nothing.
                    unsafe { *self.last.get() = Some(chan.clone().thin()) };
                    task.header.body_byte2.set(side as u8);
                    chan.register(side, task.clone(), seq);
                }
            }
        }
    }
}

/// Spawns a stackless task running `co` on `core`.
pub(crate) fn spawn<C>(core: &Core, opts: TaskOptions, co: C) -> JoinHandle<C::Return>
where
    C: StdCoroutine<Yield = Wait> + 'static,
    C::Return: 'static,
{
    let task = core.spawn_body(opts.name, StacklessBody::new(co));
    let result = task.body.result_ptr();
    JoinHandle::new(task, result)
}
