//! Feature `tracing`: the loop's spans and events reach a subscriber.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cogen::event_loop::{EventLoop, TaskBuilder, channel, sleep};

/// A writer that keeps what the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn captured(f: impl FnOnce()) -> String {
    let out = Captured::default();
    let writer = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .without_time()
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
}

#[test]
fn tasks_have_spans_and_their_life_is_in_events() {
    let log = captured(|| {
        let ev = EventLoop::new();
        let (tx, rx) = channel::<u32>(1);
        TaskBuilder::new()
            .name("consumer")
            .spawn_on(&ev, move || rx.recv().unwrap());
        ev.spawn(move || {
            sleep(Duration::from_millis(1));
            tx.send(1).unwrap();
        });
        ev.run().unwrap();
    });
    for needle in [
        "task{id=1 name=\"consumer\"}",
        "spawn",
        "park task=1 reason=Recv",
        "park task=2 reason=Sleep",
        "wake task=1",
        "finish",
    ] {
        assert!(log.contains(needle), "no {needle:?} in:\n{log}");
    }
}

#[test]
fn panics_and_deadlocks_are_error_events() {
    let log = captured(|| {
        let ev = EventLoop::new();
        TaskBuilder::new()
            .name("broken")
            .spawn_on(&ev, || panic!("bad input"));
        let _ = ev.run();
        let (_tx, rx) = channel::<u32>(1);
        ev.spawn(move || rx.recv().ok());
        assert!(ev.run().unwrap_err().is_deadlock());
    });
    assert!(
        log.contains("ERROR") && log.contains("task panicked") && log.contains("bad input"),
        "{log}"
    );
    assert!(log.contains("deadlock: task stuck task=2"), "{log}");
}

/// A subscriber that hands each event's message and `task` field (0 where
/// it has none) to `on`, and each entry into a span as the message
/// "enter": the loop's events, to subscribers that act on them.
struct Calls<F> {
    next: std::sync::atomic::AtomicU64,
    on: F,
}

impl<F> Calls<F> {
    fn new(on: F) -> Self {
        Calls {
            next: std::sync::atomic::AtomicU64::new(0),
            on,
        }
    }
}

/// The fields of an event that `Calls` hands on.
#[derive(Default)]
struct Fields {
    message: String,
    task: u64,
}

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        }
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        if field.name() == "task" {
            self.task = value;
        }
    }
}

impl<F: Fn(&str, u64) + Send + Sync + 'static> tracing::Subscriber for Calls<F> {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let next = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::span::Id::from_u64(next + 1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        (self.on)(&fields.message, fields.task);
    }
    fn enter(&self, _: &tracing::span::Id) {
        (self.on)("enter", 0);
    }
    fn exit(&self, _: &tracing::span::Id) {}
}

mod unruly_subscribers {
    //! Subscribers that panic or spawn from inside the loop's bookkeeping.

    use std::cell::Cell;
    use std::sync::atomic::{AtomicBool, Ordering};

    use std::time::Duration;

    use cogen::event_loop::{EventLoop, sleep, spawn};

    #[derive(Clone, Copy)]
    enum Act {
        /// Panic, once, at the event with this message, or at `enter`.
        Panic(&'static str),
        /// Spawn a task, once, at the event with this message.
        Spawn(&'static str),
    }

    struct Unruly {
        act: Act,
        done: AtomicBool,
    }

    thread_local! {
        static SPAWNED_RAN: Cell<bool> = const { Cell::new(false) };
    }

    impl Unruly {
        fn at(&self, what: &str) {
            match self.act {
                Act::Panic(at) if at == what && !self.done.swap(true, Ordering::SeqCst) => {
                    panic!("the subscriber fails at {what}")
                }
                Act::Spawn(at) if at == what && !self.done.swap(true, Ordering::SeqCst) => {
                    drop(spawn(|| SPAWNED_RAN.with(|r| r.set(true))));
                }
                _ => {}
            }
        }
    }

    /// Runs a loop of two tasks under the subscriber, on a thread of its
    /// own so that a hang fails the test; then drops the loop. True if the
    /// task spawned by the subscriber ran.
    fn run_under(act: Act) -> bool {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let unruly = Unruly {
                act,
                done: AtomicBool::new(false),
            };
            let subscriber = super::Calls::new(move |what: &str, _| unruly.at(what));
            tracing::subscriber::with_default(subscriber, || {
                let ev = EventLoop::new();
                // Task a parks once (a park event), b never.
                let a = ev.spawn(|| {
                    sleep(Duration::from_millis(1));
                    1
                });
                let b = ev.spawn(|| 2);
                ev.run().unwrap();
                assert_eq!((a.join().unwrap(), b.join().unwrap()), (1, 2));
                drop(ev);
            });
            let _ = done_tx.send(SPAWNED_RAN.with(Cell::get));
        });
        done_rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the loop hung (or panicked) under the subscriber")
    }

    #[test]
    fn a_subscriber_that_panics_leaves_the_loop_whole() {
        for at in ["spawn", "enter", "park", "finish"] {
            run_under(Act::Panic(at));
        }
    }

    #[test]
    fn a_subscriber_may_spawn_from_a_task_s_finish_event() {
        // The loop runs, so `spawn` works there (the map of spans is not
        // borrowed while the subscriber runs).
        assert!(run_under(Act::Spawn("finish")));
    }
}

mod waiting_subscribers {
    //! Subscribers that try to wait on the loop, or wake or cancel a task,
    //! from inside its events. No wait can happen there (each panics,
    //! saying why); the park and wake events go out where the task's state
    //! is whole (once it has parked, registered where its wake-up comes
    //! from; once a wake-up has queued it), so a wake-up or a cancellation
    //! from there is an ordinary one.

    use std::cell::{Cell, RefCell};
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::rc::Rc;
    use std::time::Duration;

    use cogen::event_loop::{CancelHandle, EventLoop, Sender, channel, sleep, timeout, yield_now};

    type Hook = Box<dyn FnMut(&str, u64)>;

    thread_local! {
        /// What the subscriber does at each event: (message, task id).
        static HOOK: RefCell<Option<Hook>> = RefCell::new(None);
        /// What the hooks saw: why each wait they tried was refused, or
        /// which parks were reported.
        static SEEN: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    }

    /// Hands each event's message and task to the thread's `HOOK` (not
    /// span entries); events of what the hook itself does are not handed
    /// on: it is taken out while it runs.
    fn call_hook(message: &str, task: u64) {
        if message == "enter" {
            return;
        }
        let Some(mut hook) = HOOK.with(|h| h.borrow_mut().take()) else {
            return;
        };
        hook(message, task);
        HOOK.with(|h| *h.borrow_mut() = Some(hook));
    }

    /// Runs `f` under a subscriber that calls `hook` at each event, on a
    /// thread of its own, so that a hang fails the test.
    fn under_hook<T: Send + 'static>(
        hook: impl FnOnce() -> Hook + Send + 'static,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            HOOK.with(|h| *h.borrow_mut() = Some(hook()));
            let out = tracing::subscriber::with_default(super::Calls::new(call_hook), f);
            HOOK.with(|h| *h.borrow_mut() = None);
            let _ = done_tx.send(out);
        });
        done_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the loop hung (or panicked) under the subscriber")
    }

    /// Makes the hook run `act` once, at task `id`'s first `event`.
    fn once_at(event: &'static str, id: u64, act: impl FnOnce() + 'static) {
        let mut act = Some(act);
        HOOK.with(|h| {
            *h.borrow_mut() = Some(Box::new(move |message: &str, task: u64| {
                if message == event
                    && task == id
                    && let Some(act) = act.take()
                {
                    act();
                }
            }))
        });
    }

    /// What each wait a hook tries gave: the panic's message, or a note
    /// that it went through.
    fn refused(tried: &str, outcome: std::thread::Result<()>) -> String {
        match outcome {
            Ok(()) => format!("{tried}: the wait went through"),
            Err(payload) => payload
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_default(),
        }
    }

    #[test]
    fn a_subscriber_cannot_wait_in_the_loop_s_events() {
        // At every event of task 1 (its parks, from the loop; its wake-ups,
        // from the loop and on another task's stack), the subscriber tries
        // to sleep, to yield, to set a time limit and to receive from an
        // empty channel. Each try panics, saying why, and the task's own
        // waits go on as if nothing happened.
        let (run, joined, messages) = under_hook(
            || {
                let (keep, empty) = channel::<u32>(1);
                Box::new(move |message: &str, task: u64| {
                    if task != 1 {
                        return;
                    }
                    let _ = &keep; // moved in: the channel stays open, and empty
                    let tries = [
                        refused(message, catch_unwind(|| sleep(Duration::from_millis(1)))),
                        refused(message, catch_unwind(yield_now)),
                        refused(
                            message,
                            catch_unwind(|| {
                                let _ = timeout(Duration::from_millis(1), || ());
                            }),
                        ),
                        refused(
                            message,
                            catch_unwind(AssertUnwindSafe(|| {
                                let _ = empty.recv();
                            })),
                        ),
                    ];
                    SEEN.with(|r| r.borrow_mut().extend(tries));
                })
            },
            || {
                let ev = EventLoop::new();
                let (tx, rx) = channel::<u32>(1);
                // Task 1 runs first: it parks in `recv` before task 2 sends.
                let task = ev.spawn(move || {
                    let got = rx.recv().unwrap();
                    sleep(Duration::from_millis(1));
                    got
                });
                ev.spawn(move || {
                    sleep(Duration::from_millis(5));
                    tx.send(7).unwrap();
                });
                let run = ev.run().map_err(|e| e.to_string());
                let messages = SEEN.with(|r| r.take());
                (run, task.try_join().ok().map(Result::unwrap), messages)
            },
        );
        assert_eq!(run, Ok(()));
        assert_eq!(joined, Some(7));
        // Its two parks (the receive, the sleep) and their wake-ups (by the
        // send, on task 2's stack; by a timer, from the loop): four tries
        // each.
        assert_eq!(messages.len(), 16, "{messages:?}");
        for message in &messages {
            assert!(
                message
                    .contains("called by a `tracing` subscriber handling one of the loop's events"),
                "{message}"
            );
        }
    }

    #[test]
    fn a_subscriber_may_wake_a_task_from_its_park_event() {
        // The "park" event goes out once the task is parked and registered
        // as the channel's receiver: a message the subscriber sends there
        // wakes it.
        let (run, joined) = under_hook(
            || Box::new(|_: &str, _: u64| {}),
            || {
                let ev = EventLoop::new();
                let (tx, rx) = channel::<u32>(1);
                let task = ev.spawn(move || rx.recv().unwrap());
                once_at("park", task.id(), move || tx.try_send(5).unwrap());
                let run = ev.run().map_err(|e| e.to_string());
                (run, task.try_join().ok().map(Result::unwrap))
            },
        );
        assert_eq!(run, Ok(()));
        assert_eq!(joined, Some(5));
    }

    #[test]
    fn every_park_is_reported_once_even_one_cancelled_before_its_step_ends() {
        // Task 1 asks for its own cancellation, then sleeps: the loop
        // cancels it as soon as its step ends, parked; task 2 just sleeps.
        let (parks, cancelled) = under_hook(
            || {
                Box::new(|message: &str, task: u64| {
                    if message == "park" {
                        SEEN.with(|r| r.borrow_mut().push(format!("park of {task}")));
                    }
                })
            },
            || {
                let ev = EventLoop::new();
                let handle: Rc<RefCell<Option<CancelHandle>>> = Rc::new(RefCell::new(None));
                let own = handle.clone();
                let task = ev.spawn(move || {
                    if let Some(handle) = own.borrow_mut().take() {
                        handle.cancel();
                    }
                    sleep(Duration::from_secs(60));
                });
                *handle.borrow_mut() = Some(task.cancel_handle());
                ev.spawn(|| sleep(Duration::from_millis(1)));
                ev.run().unwrap();
                let parks = SEEN.with(|r| r.take());
                (parks, task.join().unwrap_err().is_cancelled())
            },
        );
        assert!(cancelled);
        assert_eq!(parks, ["park of 1", "park of 2"]);
    }

    /// Waits in its destructor, which a cancellation runs: a send on a full
    /// channel and a time limit, which must give their error and run their
    /// closure there, as in any cancellation (a wait would panic, and a
    /// panic during the unwinding abort the process).
    struct WaitsInDrop {
        full: Sender<u32>,
        outcome: Rc<Cell<Option<(bool, bool)>>>,
    }

    impl Drop for WaitsInDrop {
        fn drop(&mut self) {
            let send_failed = self.full.send(1).is_err();
            let limit_ran = timeout(Duration::from_millis(1), || 5).ok() == Some(5);
            self.outcome.set(Some((send_failed, limit_ran)));
        }
    }

    /// What became of a task cancelled by the subscriber at its first
    /// `event` ("park" or "wake"): whether its result is the cancellation,
    /// whether it ran on after its sleep (of `sleep_for`), and what the
    /// waits in its destructor gave.
    fn cancelled_at(
        event: &'static str,
        sleep_for: Duration,
    ) -> (bool, bool, Option<(bool, bool)>) {
        under_hook(
            || Box::new(|_: &str, _: u64| {}),
            move || {
                let ev = EventLoop::new();
                let (full, _keep) = channel::<u32>(1);
                full.try_send(0).unwrap();
                let outcome = Rc::new(Cell::new(None));
                let went_on = Rc::new(Cell::new(false));
                let waits = WaitsInDrop {
                    full,
                    outcome: outcome.clone(),
                };
                let flag = went_on.clone();
                let task = ev.spawn(move || {
                    let _waits = waits;
                    sleep(sleep_for);
                    flag.set(true);
                });
                let handle = task.cancel_handle();
                once_at(event, task.id(), move || handle.cancel());
                ev.run().unwrap();
                let cancelled = task.join().unwrap_err().is_cancelled();
                (cancelled, went_on.get(), outcome.get())
            },
        )
    }

    #[test]
    fn a_subscriber_may_cancel_a_task_from_its_park_or_wake_event() {
        // At the park the task is parked, at the wake-up queued: either way
        // the cancellation unwinds it there, from inside the subscriber's
        // event, and its destructor runs as in any cancellation.
        for (event, sleep_for) in [
            ("park", Duration::from_secs(60)),
            ("wake", Duration::from_millis(5)),
        ] {
            let (cancelled, went_on, waits) = cancelled_at(event, sleep_for);
            assert!(cancelled, "{event}: the task's result is its cancellation");
            assert!(!went_on, "{event}: a cancelled task does not run on");
            assert_eq!(
                waits,
                Some((true, true)),
                "{event}: the destructor ran once, its send failed and its time limit ran"
            );
        }
    }
}
