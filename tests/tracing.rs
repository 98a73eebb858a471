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

mod unruly_subscribers {
    //! Subscribers that panic or spawn from inside the loop's bookkeeping.

    use std::cell::Cell;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    use cogen::event_loop::{EventLoop, spawn};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    /// The message of an event.
    struct Message(String);

    impl tracing::field::Visit for Message {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                self.0 = format!("{value:?}");
            }
        }
    }

    #[derive(Clone, Copy)]
    enum Act {
        /// Panic, once, at the event with this message, or at `enter`.
        Panic(&'static str),
        /// Spawn a task, once, at the event with this message.
        Spawn(&'static str),
    }

    struct Unruly {
        act: Act,
        next: AtomicU64,
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

    impl Subscriber for Unruly {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(self.next.fetch_add(1, Ordering::Relaxed) + 1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut message = Message(String::new());
            event.record(&mut message);
            self.at(&message.0);
        }
        fn enter(&self, _: &Id) {
            self.at("enter");
        }
        fn exit(&self, _: &Id) {}
    }

    /// Runs a loop of two tasks under the subscriber, on a thread of its
    /// own so that a hang fails the test; then drops the loop. True if the
    /// task spawned by the subscriber ran.
    fn run_under(act: Act) -> bool {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let subscriber = Unruly {
                act,
                next: AtomicU64::new(0),
                done: AtomicBool::new(false),
            };
            tracing::subscriber::with_default(subscriber, || {
                let ev = EventLoop::new();
                let a = ev.spawn(|| 1);
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
