//! Bounded MPMC channels between the tasks of one loop: backpressure,
//! closing, `try_` forms, iteration, no loss or duplication.

use std::cell::RefCell;
use std::rc::Rc;

use cogen::event_loop::{
    EventLoop, RecvError, SendError, TryRecvError, TrySendError, channel, spawn, yield_now,
};

mod support;
use support::{DropCounter, DropToken};

#[test]
fn send_parks_while_full_and_recv_while_empty() {
    let ev = EventLoop::new();
    let log = Rc::new(RefCell::new(Vec::new()));
    let (tx, rx) = channel::<u32>(2);
    let l = log.clone();
    ev.spawn(move || {
        for i in 0..5 {
            tx.send(i).unwrap();
            l.borrow_mut().push(format!("sent {i}"));
        }
    });
    let l = log.clone();
    ev.spawn(move || {
        while let Ok(v) = rx.recv() {
            l.borrow_mut().push(format!("got {v}"));
        }
    });
    ev.run().unwrap();
    // The producer runs ahead by at most the capacity.
    assert_eq!(
        *log.borrow(),
        [
            "sent 0", "sent 1", "got 0", "got 1", "sent 2", "sent 3", "got 2", "got 3", "sent 4",
            "got 4"
        ]
    );
}

#[test]
fn try_forms_and_accessors() {
    let (tx, rx) = channel::<String>(1);
    assert_eq!(tx.capacity(), 1);
    assert!(rx.is_empty());
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    tx.try_send("a".into()).unwrap();
    assert_eq!(rx.len(), 1);
    let full = tx.try_send("b".into()).unwrap_err();
    assert!(full.is_full());
    assert_eq!(full.to_string(), "sending on a full channel");
    assert_eq!(format!("{full:?}"), "Full(..)");
    assert_eq!(full.into_inner(), "b");
    assert_eq!(rx.try_recv().unwrap(), "a");
    rx.close();
    assert!(tx.is_closed());
    let closed = tx.try_send("c".into()).unwrap_err();
    assert!(closed.is_closed());
    assert_eq!(closed.into_inner(), "c");
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    assert_eq!(
        TryRecvError::Closed.to_string(),
        "receiving on a closed and empty channel"
    );
}

#[test]
fn close_is_observable_and_receivers_drain_first() {
    let ev = EventLoop::new();
    let (tx, rx) = channel::<u32>(4);
    let out = ev
        .block_on(move || {
            tx.send(1).unwrap();
            tx.send(2).unwrap();
            tx.close();
            let refused = tx.send(3).unwrap_err();
            assert_eq!(refused, SendError(3));
            assert_eq!(refused.to_string(), "sending on a closed channel");
            let got: Vec<u32> = rx.iter().collect();
            (got, rx.recv(), rx.try_recv())
        })
        .unwrap();
    assert_eq!(out, (vec![1, 2], Err(RecvError), Err(TryRecvError::Closed)));
}

#[test]
fn close_wakes_parked_senders_and_receivers() {
    let ev = EventLoop::new();
    let (tx, rx) = channel::<u32>(1);
    let (tx2, rx2) = channel::<u32>(1);
    tx.try_send(0).unwrap();
    let tx_c = tx.clone();
    let sender = ev.spawn(move || tx_c.send(1)); // parks: full
    let receiver = ev.spawn(move || rx2.recv()); // parks: empty
    assert!(ev.try_tick() && ev.try_tick());
    rx.close();
    tx2.close();
    ev.run().unwrap();
    assert_eq!(sender.join().unwrap(), Err(SendError(1)));
    assert_eq!(receiver.join().unwrap(), Err(RecvError));
    drop(tx);
}

#[test]
fn dropping_every_sender_or_receiver_closes() {
    let (tx, rx) = channel::<u32>(1);
    let tx2 = tx.clone();
    drop(tx);
    assert!(!rx.is_closed());
    drop(tx2);
    assert!(rx.is_closed());
    let (tx, rx) = channel::<u32>(1);
    let rx2 = rx.clone();
    drop(rx);
    assert!(!tx.is_closed());
    drop(rx2);
    assert_eq!(tx.try_send(1), Err(TrySendError::Closed(1)));
}

#[test]
fn mpmc_delivers_every_message_exactly_once_in_order_per_producer() {
    let ev = EventLoop::new();
    let (tx, rx) = channel::<(u32, u32)>(3);
    let received = Rc::new(RefCell::new(Vec::new()));
    for p in 0..4 {
        let tx = tx.clone();
        ev.spawn(move || {
            for i in 0..100 {
                tx.send((p, i)).unwrap();
                if i % 7 == p {
                    yield_now();
                }
            }
        });
    }
    drop(tx);
    for c in 0..3 {
        let rx = rx.clone();
        let received = received.clone();
        ev.spawn(move || {
            for (n, msg) in rx.iter().enumerate() {
                received.borrow_mut().push((c, msg));
                if n % 5 == c {
                    yield_now();
                }
            }
        });
    }
    drop(rx);
    ev.run().unwrap();
    let received = received.borrow();
    assert_eq!(received.len(), 400);
    // Per producer, messages arrive in order (each consumer sees an increasing
    // subsequence, and together they see each message once).
    for p in 0..4 {
        let mut all: Vec<u32> = received
            .iter()
            .filter(|(_, (q, _))| *q == p)
            .map(|(_, (_, i))| *i)
            .collect();
        for c in 0..3 {
            let mine: Vec<u32> = received
                .iter()
                .filter(|(cc, (q, _))| *cc == c && *q == p)
                .map(|(_, (_, i))| *i)
                .collect();
            assert!(mine.windows(2).all(|w| w[0] < w[1]));
        }
        all.sort();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
    }
    // Fairness among consumers: everyone got some.
    for c in 0..3 {
        assert!(received.iter().any(|(cc, _)| *cc == c));
    }
}

#[test]
fn iteration_forms() {
    let ev = EventLoop::new();
    let (tx, rx) = channel::<u32>(8);
    for i in 0..5 {
        tx.try_send(i).unwrap();
    }
    assert_eq!(rx.try_iter().take(2).collect::<Vec<_>>(), [0, 1]);
    drop(tx);
    let h = ev.spawn(move || {
        let mut v: Vec<u32> = (&rx).into_iter().take(1).collect();
        v.extend(rx); // owning iterator, ends at close
        v
    });
    ev.run().unwrap();
    assert_eq!(h.join().unwrap(), [2, 3, 4]);
}

#[test]
fn a_cancelled_woken_receiver_passes_the_message_on() {
    let ev = EventLoop::new();
    let (tx, rx) = channel::<u32>(1);
    let rx2 = rx.clone();
    let first = ev.spawn(move || rx.recv());
    let second = ev.spawn(move || rx2.recv());
    assert!(ev.try_tick() && ev.try_tick()); // both parked, first in line
    tx.try_send(7).unwrap(); // wakes `first` only
    first.cancel(); // before it could take the message
    ev.run().unwrap();
    assert!(first.join().unwrap_err().is_cancelled());
    assert_eq!(second.join().unwrap(), Ok(7));
}

#[test]
fn channels_work_between_spawned_tasks_and_from_outside() {
    let ev = EventLoop::new();
    let (tx, rx) = channel::<u32>(1);
    let h = ev.spawn(move || {
        let inner = spawn(move || rx.recv().unwrap() * 2);
        inner.join().unwrap()
    });
    assert!(ev.try_tick() && ev.try_tick()); // outer waits on inner, inner on rx
    tx.try_send(21).unwrap(); // from outside the loop
    ev.run().unwrap();
    assert_eq!(h.join().unwrap(), 42);
}

#[test]
#[should_panic(expected = "capacity must be at least 1")]
fn zero_capacity_is_refused() {
    let _ = channel::<u32>(0);
}

#[test]
fn debug_does_not_need_debug_messages() {
    struct Opaque;
    let (tx, rx) = channel::<Opaque>(2);
    assert!(format!("{tx:?}").contains("capacity: 2"));
    assert!(format!("{rx:?}").contains("closed: false"));
    let e = tx
        .try_send(Opaque)
        .and_then(|_| tx.try_send(Opaque))
        .and_then(|_| tx.try_send(Opaque));
    assert_eq!(format!("{:?}", e.unwrap_err()), "Full(..)");
}

// ------------------------------------------------------------ async receivers

#[test]
fn a_future_task_receives_through_the_stream_until_the_channel_closes() {
    use futures_lite::StreamExt;
    let ev = EventLoop::new();
    let (tx, mut rx) = channel::<u32>(1);
    ev.spawn(move || (0..5).for_each(|n| tx.send(n).unwrap()));
    let got = ev.spawn_future(async move {
        let mut got = Vec::new();
        while let Some(n) = rx.next().await {
            got.push(n);
        }
        got
    });
    ev.run().unwrap();
    assert_eq!(got.join().unwrap(), [0, 1, 2, 3, 4]);
}

#[test]
fn several_async_receivers_share_the_messages_without_loss() {
    let ev = EventLoop::new();
    let (tx, rx) = channel::<u32>(2);
    let receivers: Vec<_> = (0..3)
        .map(|_| {
            let rx = rx.clone();
            ev.spawn_future(async move {
                let mut got = Vec::new();
                while let Ok(n) = rx.recv_async().await {
                    got.push(n);
                }
                got
            })
        })
        .collect();
    drop(rx);
    ev.spawn(move || (0..100).for_each(|n| tx.send(n).unwrap()));
    ev.run().unwrap();
    let mut all: Vec<u32> = receivers
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort();
    assert_eq!(all, (0..100).collect::<Vec<_>>());
}

#[test]
fn a_future_task_awaiting_a_channel_nobody_feeds_is_a_deadlock() {
    let ev = EventLoop::new();
    let (tx, rx) = channel::<u32>(1);
    let h = ev.spawn_future(async move { rx.recv_async().await.ok() });
    let err = ev.run().unwrap_err();
    assert!(err.is_deadlock(), "{err}");
    // Fed from outside the loop afterwards, it is woken and finishes.
    tx.try_send(9).unwrap();
    ev.run().unwrap();
    assert_eq!(h.join().unwrap(), Some(9));
}

#[test]
fn a_receiver_polled_by_a_foreign_waker_is_woken_by_a_send_and_by_the_close() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll, Wake, Waker};
    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let count = Arc::new(Count(AtomicUsize::new(0)));
    let waker = Waker::from(count.clone());
    let mut cx = Context::from_waker(&waker);
    let (tx, rx) = channel::<u32>(1);
    assert!(rx.poll_recv(&mut cx).is_pending());
    assert!(rx.poll_recv(&mut cx).is_pending()); // the same waker, kept once
    tx.try_send(1).unwrap();
    assert_eq!(count.0.load(Ordering::SeqCst), 1);
    assert_eq!(rx.poll_recv(&mut cx), Poll::Ready(Ok(1)));
    assert!(rx.poll_recv(&mut cx).is_pending());
    drop(tx);
    assert_eq!(count.0.load(Ordering::SeqCst), 2);
    assert!(matches!(rx.poll_recv(&mut cx), Poll::Ready(Err(_))));
}

/// A message that carries a sender of its own channel (a reply address, a
/// way to requeue itself): once both ends are dropped with it still in the
/// buffer, nothing else holds it, and it must be dropped rather than keep
/// the channel, and itself, alive in a cycle (LeakSanitizer, on under
/// AddressSanitizer, reports that leak).
#[test]
fn dropping_the_last_receiver_drops_the_messages_left_even_those_holding_a_sender() {
    struct Requeue {
        _back: cogen::event_loop::Sender<Requeue>,
        _token: DropToken,
    }
    let drops = DropCounter::new();
    let (tx, rx) = channel::<Requeue>(4);
    for _ in 0..3 {
        tx.try_send(Requeue {
            _back: tx.clone(),
            _token: drops.token(),
        })
        .unwrap();
    }
    drop(tx);
    assert_eq!(drops.count(), 0, "the receiver can still drain them");
    let rx2 = rx.clone();
    drop(rx);
    assert_eq!(drops.count(), 0, "one receiver is left");
    drop(rx2);
    assert_eq!(drops.count(), 3);
}

/// A message's destructor that panics while the last receiver drops the
/// rest: the panic comes out of the receiver's drop, and the messages after
/// it are dropped all the same; one that sends on the closed channel from
/// its destructor gets its message back.
#[test]
fn a_message_panicking_when_dropped_with_the_channel_does_not_leak_the_rest() {
    enum Message {
        Panics,
        SendsFromDrop(cogen::event_loop::Sender<Message>, Option<DropToken>),
        Plain(#[allow(dead_code)] DropToken),
    }
    impl Drop for Message {
        fn drop(&mut self) {
            match self {
                Message::Panics => panic!("a message's destructor"),
                Message::SendsFromDrop(tx, token) => {
                    let back = tx.try_send(Message::Plain(token.take().unwrap()));
                    assert!(matches!(back, Err(TrySendError::Closed(_))));
                }
                Message::Plain(_) => {}
            }
        }
    }
    let drops = DropCounter::new();
    let (tx, rx) = channel::<Message>(4);
    tx.try_send(Message::Panics).unwrap();
    tx.try_send(Message::SendsFromDrop(tx.clone(), Some(drops.token())))
        .unwrap();
    tx.try_send(Message::Plain(drops.token())).unwrap();
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(rx)));
    assert_eq!(
        unwound.unwrap_err().downcast_ref::<&str>(),
        Some(&"a message's destructor")
    );
    assert_eq!(drops.count(), 2, "both messages after the panicking one");
    assert!(tx.is_closed() && tx.is_empty());
}
