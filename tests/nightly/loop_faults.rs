//! The stackless half of `tests/loop_faults.rs` (feature `nightly`):
//! included only on a nightly compiler (`yield` does not parse on stable).

use std::rc::Rc;

use cogen::event_loop::{EventLoop, Wait, channel};

use super::live;

#[test]
fn cancelled_stackless_joiners_do_not_stay_in_their_targets_waiters() {
    let ev = EventLoop::new();
    let (tx, rx) = channel::<()>(1);
    let target = Rc::new(ev.spawn(move || {
        let _ = rx.recv();
    }));
    ev.try_tick(); // target parks
    // Warm up (blocks, vectors).
    let round = |n: usize| {
        for _ in 0..n {
            let t = target.clone();
            let h = ev.spawn_stackless(
                #[coroutine]
                move || {
                    let big = [7u8; 16 * 1024];
                    yield Wait::join(&t);
                    big[0]
                },
            );
            ev.try_tick(); // parks in the join
            h.cancel();
            assert!(h.join().unwrap_err().is_cancelled());
        }
    };
    round(10);
    let before = live();
    round(200);
    let grown = live() - before;
    tx.try_send(()).unwrap();
    ev.run().unwrap();
    let after_target = live() - before;
    assert!(
        grown < 200 * 16 * 1024 / 2,
        "200 cancelled stackless joiners kept {grown} bytes alive (freed only when the \
         target finished: {after_target})"
    );
}
