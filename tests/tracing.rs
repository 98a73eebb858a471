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
