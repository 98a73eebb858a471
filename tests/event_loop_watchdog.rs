//! The watchdog names a task that runs too long without yielding.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cogen::event_loop::{EventLoop, TaskBuilder, WatchdogReport, yield_now};

#[test]
fn watchdog_names_a_runaway_task_once() {
    let reports: Arc<Mutex<Vec<WatchdogReport>>> = Arc::default();
    let reported = Arc::new(AtomicBool::new(false));
    let (r, flag) = (reports.clone(), reported.clone());
    let ev = EventLoop::builder()
        .watchdog_with(Duration::from_millis(50), move |report| {
            r.lock().unwrap().push(report.clone());
            flag.store(true, Ordering::SeqCst);
        })
        .build();
    TaskBuilder::new().name("polite").spawn_on(&ev, || {
        for _ in 0..100 {
            yield_now();
        }
    });
    let flag = reported.clone();
    TaskBuilder::new().name("spinner").spawn_on(&ev, move || {
        // Runs without yielding until the watchdog has named it.
        while !flag.load(Ordering::SeqCst) {
            std::hint::spin_loop();
        }
    });
    ev.run().unwrap();
    drop(ev); // stops the watchdog thread
    let reports = reports.lock().unwrap();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].task_name.as_deref(), Some("spinner"));
    assert!(reports[0].running_for >= Duration::from_millis(50));
    let text = reports[0].to_string();
    assert!(
        text.contains("'spinner'") && text.contains("cannot be preempted"),
        "{text}"
    );
}

#[test]
fn a_report_that_panics_does_not_end_the_watchdog() {
    use std::sync::atomic::AtomicUsize;
    use std::time::Instant;

    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let ev = EventLoop::builder()
        .watchdog_with(Duration::from_millis(20), move |_| {
            if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("the report fails once");
            }
        })
        .build();
    // Each task runs without yielding until the watchdog has reported it
    // (the second, within a bound, so that a dead watchdog fails the test
    // instead of hanging it).
    for (name, until) in [("first", 1), ("second", 2)] {
        let calls = calls.clone();
        TaskBuilder::new().name(name).spawn_on(&ev, move || {
            let start = Instant::now();
            while calls.load(Ordering::SeqCst) < until && start.elapsed() < Duration::from_secs(30)
            {
                std::hint::spin_loop();
            }
        });
    }
    ev.run().unwrap();
    drop(ev);
    assert_eq!(calls.load(Ordering::SeqCst), 2, "both runaways reported");
}
