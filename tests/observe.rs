//! Seeing into a loop: the task snapshot, the counters, and the task's name
//! in the message of a panic inside it.

use std::rc::Rc;
use std::time::Duration;

use cogen::event_loop::{
    self as el, EventLoop, TaskBuilder, TaskStatus, WaitingOn, channel, sleep, wait_for, yield_now,
};

#[test]
fn the_snapshot_says_what_each_task_waits_for() {
    let ev = Rc::new(EventLoop::new());
    let (tx_full, _rx_unread) = channel::<u32>(1);
    tx_full.try_send(0).unwrap();
    let (_tx_idle, rx_empty) = channel::<u32>(1);
    let receiver = TaskBuilder::new()
        .name("receiver")
        .spawn_on(&ev, move || rx_empty.recv().ok());
    let receiver_id = receiver.id();
    TaskBuilder::new()
        .name("sender")
        .spawn_on(&ev, move || tx_full.send(1).ok());
    ev.spawn(move || receiver.join().ok());
    ev.spawn(|| sleep(Duration::from_secs(3600)));
    ev.spawn(|| wait_for(std::future::pending::<()>()));
    let me = ev.clone();
    let seen = ev.spawn(move || {
        let tasks = me.tasks();
        yield_now();
        tasks
    });
    ev.spawn(|| ()); // still queued when the snapshot is taken
    ev.try_tick();
    ev.try_tick();
    ev.try_tick();
    ev.try_tick();
    ev.try_tick();
    ev.try_tick(); // the snapshot
    let inside = ev.tasks();
    let waiting = |name: Option<&str>| {
        inside
            .iter()
            .find(|t| t.name.as_deref() == name)
            .map(|t| t.state.clone())
    };
    assert_eq!(
        waiting(Some("receiver")),
        Some(TaskStatus::Waiting(WaitingOn::Recv))
    );
    assert_eq!(
        waiting(Some("sender")),
        Some(TaskStatus::Waiting(WaitingOn::Send))
    );
    let states: Vec<_> = inside.iter().map(|t| (t.id, t.state.clone())).collect();
    assert_eq!(
        states,
        [
            (1, TaskStatus::Waiting(WaitingOn::Recv)),
            (2, TaskStatus::Waiting(WaitingOn::Send)),
            (3, TaskStatus::Waiting(WaitingOn::Join(Some(receiver_id)))),
            (4, TaskStatus::Waiting(WaitingOn::Sleep)),
            (5, TaskStatus::Waiting(WaitingOn::Future)),
            (6, TaskStatus::Queued), // yielded after its snapshot
            (7, TaskStatus::Queued),
        ]
    );
    // From inside task 6, task 6 was running and task 7 queued.
    ev.try_tick();
    ev.try_tick();
    let snapshot = seen.try_join().ok().unwrap().unwrap();
    assert_eq!(snapshot[5].state, TaskStatus::Running);
    assert_eq!(snapshot[6].state, TaskStatus::Queued);
    assert_eq!(
        inside[2].to_string(),
        format!("task 3: waiting to join task {receiver_id}")
    );
}

#[test]
fn the_counters_count_spawns_steps_parks_and_idle_time() {
    let ev = EventLoop::new();
    assert_eq!(ev.stats(), Default::default());
    let (tx, rx) = channel::<u32>(1);
    ev.spawn(move || {
        for i in 0..3 {
            tx.send(i).unwrap();
        }
    });
    ev.spawn(move || rx.iter().count());
    // Long enough that the loop is still early when it runs out of work,
    // even under valgrind: it then sleeps until the timer.
    ev.spawn(|| sleep(Duration::from_millis(200)));
    ev.run().unwrap();
    let stats = ev.stats();
    assert_eq!((stats.spawned, stats.finished), (3, 3));
    assert!(stats.steps >= 3 + stats.parks, "{stats:?}");
    assert!(stats.parks >= 3, "{stats:?}"); // the sleep, and channel waits
    assert!(stats.idle > Duration::ZERO, "{stats:?}");
    // A task that yields 10 times takes 11 steps and never parks.
    let ev = EventLoop::new();
    ev.spawn(|| (0..10).for_each(|_| yield_now()));
    ev.run().unwrap();
    let stats = ev.stats();
    assert_eq!((stats.steps, stats.parks, stats.finished), (11, 0, 1));
}

/// The child half of `a_panic_inside_a_task_names_the_task`.
#[test]
fn child_panics_in_a_named_task() {
    if std::env::var_os("COGEN_OBSERVE_CHILD").is_none() {
        return;
    }
    let ev = EventLoop::new();
    TaskBuilder::new()
        .name("parser")
        .spawn_on(&ev, || panic!("bad input"));
    ev.spawn(|| panic!("unnamed"));
    let _ = ev.run();
    // Outside any task, the hook adds nothing.
    let _ = std::panic::catch_unwind(|| panic!("outside"));
    let _ = el::current_task_id();
}

#[test]
fn a_panic_inside_a_task_names_the_task() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_panics_in_a_named_task",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("COGEN_OBSERVE_CHILD", "1")
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let before = |needle: &str| {
        let at = lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| {
                panic!("no {needle:?} in {stderr}");
            });
        // The line before the hook's "thread … panicked at …" line.
        assert!(lines[at - 1].contains("panicked at"), "{stderr}");
        lines[..at - 1]
            .iter()
            .rev()
            .find(|l| !l.is_empty())
            .copied()
            .unwrap_or_default()
    };
    assert_eq!(
        before("bad input"),
        "cogen: in task 1 'parser' of an event loop:"
    );
    assert_eq!(before("unnamed"), "cogen: in task 2 of an event loop:");
    assert!(!before("outside").starts_with("cogen:"), "{stderr}");
}
