//! `CancelHandle`: cancelling a task through a cloneable handle, from every
//! place the loop's thread can be — another task, outside the loop between
//! runs, the task itself, a destructor during a cancellation — and after
//! the task finished; each destructor on a cancelled stack runs once.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use cogen::event_loop::net::TcpStream;
use cogen::event_loop::{CancelHandle, EventLoop, channel, sleep, spawn, yield_now};

mod support;
use support::DropCounter;

const SHORT: Duration = Duration::from_millis(20);
const LONG: Duration = Duration::from_secs(3600);

#[test]
fn cancelling_a_slow_producer_after_a_deadline() {
    let drops = DropCounter::new();
    let token = drops.token();
    let ev = EventLoop::new();
    let (tx, rx) = channel(1);
    let producer = ev.spawn(move || {
        let _token = token;
        for i in 0u32.. {
            tx.send(i).unwrap();
            sleep(Duration::from_millis(1));
        }
    });
    let stop = producer.cancel_handle();
    ev.spawn(move || {
        sleep(SHORT);
        stop.cancel();
    });
    let consumer = ev.spawn(move || rx.iter().count());
    ev.run().unwrap();
    assert!(consumer.join().unwrap() > 0);
    assert!(producer.join().unwrap_err().is_cancelled());
    assert_eq!((drops.count(), drops.live()), (1, 0));
}

#[test]
fn cancel_is_idempotent_and_clones_cancel_the_same_task() {
    let drops = DropCounter::new();
    let token = drops.token();
    let ev = EventLoop::new();
    let h = ev.spawn(move || {
        let _token = token;
        sleep(LONG);
    });
    let c = h.cancel_handle();
    let c2 = c.clone();
    assert_eq!((c.id(), c2.id()), (h.id(), h.id()));
    assert!(!c.is_finished());
    c.cancel(); // never ran: its closure is dropped
    c2.cancel();
    c.cancel();
    h.cancel();
    assert!(c.is_finished() && c2.is_finished() && h.is_finished());
    assert_eq!((drops.count(), drops.live()), (1, 0));
    ev.run().unwrap();
    assert!(h.join().unwrap_err().is_cancelled());
    assert!(format!("{c:?}").contains("finished: true"), "{c:?}");
}

#[test]
fn cancel_from_another_task() {
    let drops = DropCounter::new();
    let token = drops.token();
    let ev = EventLoop::new();
    let victim = ev.spawn(move || {
        let _token = token;
        sleep(LONG);
    });
    let c = victim.cancel_handle();
    let d = drops.clone();
    let killer = ev.spawn(move || {
        yield_now(); // the victim parks first
        c.cancel();
        d.live() // unwound at once, before `cancel` returns
    });
    ev.run().unwrap();
    assert_eq!(killer.join().unwrap(), 0);
    assert!(victim.join().unwrap_err().is_cancelled());
    assert_eq!((drops.count(), drops.live()), (1, 0));
}

#[test]
fn cancel_from_outside_the_loop_between_runs() {
    let drops = DropCounter::new();
    let token = drops.token();
    let ev = EventLoop::new();
    let (tx, rx) = channel::<u32>(1);
    let victim = ev.spawn(move || {
        let _token = token;
        rx.recv()
    });
    let c = victim.cancel_handle();
    assert!(ev.try_tick()); // it runs and parks
    assert!(!c.is_finished());
    c.cancel();
    assert_eq!((drops.count(), drops.live()), (1, 0));
    ev.run().unwrap();
    assert!(victim.join().unwrap_err().is_cancelled());
    assert!(tx.is_closed(), "the receiver went with the task");
}

#[test]
fn a_task_cancelling_itself_is_unwound_at_its_next_wait() {
    let drops = DropCounter::new();
    let token = drops.token();
    let ev = EventLoop::new();
    let me: Rc<RefCell<Option<CancelHandle>>> = Rc::default();
    let m = me.clone();
    let after = Rc::new(Cell::new(false));
    let a = after.clone();
    let h = ev.spawn(move || {
        let _token = token;
        let c = m.borrow_mut().take().unwrap();
        c.cancel(); // takes effect at the next wait
        c.cancel();
        a.set(true); // still runs
        yield_now();
        unreachable!("cancelled at the yield");
    });
    *me.borrow_mut() = Some(h.cancel_handle());
    ev.run().unwrap();
    assert!(after.get());
    assert!(h.join().unwrap_err().is_cancelled());
    assert_eq!((drops.count(), drops.live()), (1, 0));
}

#[test]
fn cancel_after_the_task_finished_does_nothing() {
    let drops = DropCounter::new();
    let ev = EventLoop::new();
    let token = drops.token();
    let h = ev.spawn(move || token);
    let c = h.cancel_handle();
    ev.run().unwrap();
    assert!(c.is_finished());
    c.cancel();
    assert_eq!(drops.live(), 1, "the result is still there");
    drop(h.join().unwrap());
    c.cancel();
    assert_eq!((drops.count(), drops.live()), (1, 0));
}

#[test]
fn a_cancel_handle_does_not_keep_a_detached_result_alive() {
    let drops = DropCounter::new();
    let ev = EventLoop::new();
    let token = drops.token();
    let h = ev.spawn(move || token);
    let c = h.cancel_handle();
    drop(h); // detached
    ev.run().unwrap();
    assert_eq!((drops.count(), drops.live()), (1, 0));
    assert!(c.is_finished());
    c.cancel();
}

#[test]
fn cancel_from_a_destructor_during_a_cancellation() {
    /// Cancels the handles it holds when dropped: its own task (already
    /// being cancelled: no effect) and another task.
    struct CancelOnDrop(Vec<CancelHandle>);
    impl Drop for CancelOnDrop {
        fn drop(&mut self) {
            for c in &self.0 {
                c.cancel();
            }
        }
    }
    let drops = DropCounter::new();
    let ev = EventLoop::new();
    let other_token = drops.named("other");
    let other = ev.spawn(move || {
        let _token = other_token;
        sleep(LONG);
    });
    let slot: Rc<RefCell<Option<CancelHandle>>> = Rc::default();
    let s = slot.clone();
    let other_c = other.cancel_handle();
    let d = drops.clone();
    let victim = ev.spawn(move || {
        let own = s.borrow_mut().take().unwrap();
        let _first = d.named("victim");
        let _guard = CancelOnDrop(vec![own, other_c]);
        sleep(LONG);
    });
    *slot.borrow_mut() = Some(victim.cancel_handle());
    ev.block_on(yield_now).unwrap(); // both park
    victim.cancel_handle().cancel();
    assert_eq!(drops.log(), ["other", "victim"]);
    assert_eq!((drops.count(), drops.live()), (2, 0));
    ev.run().unwrap();
    assert!(victim.join().unwrap_err().is_cancelled());
    assert!(other.join().unwrap_err().is_cancelled());
}

#[test]
fn cancel_handles_outlive_their_loop() {
    let drops = DropCounter::new();
    let token = drops.token();
    let ev = EventLoop::new();
    let h = ev.spawn(move || {
        let _token = token;
        sleep(LONG);
    });
    let c = h.cancel_handle();
    ev.block_on(yield_now).unwrap();
    drop(ev); // cancels the task
    assert_eq!((drops.count(), drops.live()), (1, 0));
    assert!(c.is_finished());
    c.cancel();
    assert!(h.join().unwrap_err().is_cancelled());
}

#[test]
fn a_joiner_sees_a_cancellation_by_handle_during_join_timeout() {
    let ev = EventLoop::new();
    let e = ev
        .block_on(|| {
            let target = spawn(|| sleep(LONG));
            let cancel = target.cancel_handle();
            spawn(move || cancel.cancel());
            target.join_timeout(LONG).ok().unwrap().unwrap_err()
        })
        .unwrap();
    assert!(e.is_cancelled());
}

/// How a task's own handle is asked from one of its destructors.
#[derive(Clone, Copy, Debug)]
enum Ask {
    TryJoin,
    JoinTimeout,
    Join,
    Poll,
}

/// A task's own handle, asked from one of its destructors while the task is
/// being cancelled: its result is stored only after its destructors ran,
/// and will be that it was cancelled, so every form answers that now. A
/// panic instead, on a stackful task's unwinding stack, would abort the
/// process. Stackful and future tasks alike.
#[test]
fn a_task_asking_its_own_handle_from_a_destructor_while_cancelled_is_told_it_was_cancelled() {
    type Slot = Rc<RefCell<Option<cogen::event_loop::JoinHandle<()>>>>;
    /// What the destructor saw: `is_finished`, and whether the answer was
    /// "cancelled".
    type Seen = Rc<RefCell<Option<(bool, bool)>>>;
    struct AsksItsOwnHandle(Slot, Seen, Ask);
    impl Drop for AsksItsOwnHandle {
        fn drop(&mut self) {
            let mut handle = self.0.borrow_mut().take().expect("the task's own handle");
            let finished = handle.is_finished();
            let answer = match self.2 {
                Ask::TryJoin => handle.try_join().ok(),
                Ask::JoinTimeout => handle.join_timeout(Duration::from_secs(3600)).ok(),
                Ask::Join => Some(handle.join()),
                Ask::Poll => {
                    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
                    match std::pin::Pin::new(&mut handle).poll(&mut cx) {
                        std::task::Poll::Ready(answer) => Some(answer),
                        std::task::Poll::Pending => None,
                    }
                }
            };
            let cancelled = answer.is_some_and(|a| a.is_err_and(|e| e.is_cancelled()));
            *self.1.borrow_mut() = Some((finished, cancelled));
        }
    }

    for future in [false, true] {
        for ask in [Ask::TryJoin, Ask::JoinTimeout, Ask::Join, Ask::Poll] {
            let ev = EventLoop::new();
            let slot: Slot = Rc::default();
            let seen: Seen = Rc::default();
            let guard = AsksItsOwnHandle(slot.clone(), seen.clone(), ask);
            let handle = if future {
                ev.spawn_future(async move {
                    let _guard = guard;
                    std::future::pending::<()>().await;
                })
            } else {
                ev.spawn(move || {
                    let _guard = guard;
                    sleep(Duration::from_secs(3600));
                })
            };
            ev.try_tick();
            let cancel = handle.cancel_handle();
            *slot.borrow_mut() = Some(handle);
            cancel.cancel();
            assert_eq!(
                *seen.borrow(),
                Some((true, true)),
                "future task: {future}, {ask:?}"
            );
            assert!(cancel.is_finished());
            ev.run().unwrap();
        }
    }
}

/// Waits from its destructor on each kind of channel end it holds: sends on
/// full channels, receives on empty ones, and records what each answered.
struct Farewell {
    tx: cogen::event_loop::Sender<u32>,
    rx: cogen::event_loop::Receiver<u32>,
    sync_tx: cogen::event_loop::SyncSender<u32>,
    sync_rx: cogen::event_loop::SyncReceiver<u32>,
    seen: Rc<RefCell<Vec<String>>>,
}

impl Drop for Farewell {
    fn drop(&mut self) {
        let mut seen = self.seen.borrow_mut();
        seen.push(format!(
            "send {:?}",
            self.tx.send(7).map_err(|e| e.into_inner())
        ));
        seen.push(format!("recv {:?}", self.rx.recv()));
        let timed = self
            .tx
            .send_timeout(8, LONG)
            .map_err(|e| (e.is_timeout(), e.into_inner()));
        seen.push(format!("send_timeout {timed:?}"));
        seen.push(format!("recv_timeout {:?}", self.rx.recv_timeout(LONG)));
        let sync = self.sync_tx.send(9).map_err(|e| e.into_inner());
        seen.push(format!("sync send {sync:?}"));
        seen.push(format!("sync recv {:?}", self.sync_rx.recv()));
    }
}

#[test]
fn channel_waits_in_a_cancelled_tasks_destructor_fail_instead_of_aborting() {
    let (tx, _full) = channel::<u32>(1);
    tx.try_send(0).unwrap();
    let (_empty, rx) = channel::<u32>(1);
    let (sync_tx, _sync_full) = cogen::event_loop::sync_channel::<u32>(1);
    sync_tx.try_send(0).unwrap();
    let (_sync_empty, sync_rx) = cogen::event_loop::sync_channel::<u32>(1);
    let seen = Rc::new(RefCell::new(Vec::new()));
    let farewell = Farewell {
        tx,
        rx,
        sync_tx,
        sync_rx,
        seen: seen.clone(),
    };
    let ev = EventLoop::new();
    let victim = ev.spawn(move || {
        let _farewell = farewell;
        sleep(LONG);
    });
    assert!(ev.try_tick()); // it runs and parks
    victim.cancel_handle().cancel();
    ev.run().unwrap();
    assert!(victim.join().unwrap_err().is_cancelled());
    assert_eq!(
        *seen.borrow(),
        [
            "send Err(7)",
            "recv Err(RecvError)",
            "send_timeout Err((true, 8))",
            "recv_timeout Err(Timeout)",
            "sync send Err(9)",
            "sync recv Err(RecvError)",
        ]
    );
}

/// What a connection's destructor does with its sockets while its task is
/// cancelled (as a server's shutdown or a time limit cancels a slow
/// client's task): each operation is tried once, and fails where it would
/// wait, where the wait used to panic and abort the process.
struct Hangup {
    /// Its peer sent "hello", which the task never read.
    talk: TcpStream,
    /// Its peer neither writes nor reads; its send buffer is full.
    quiet: TcpStream,
    /// Bytes buffered for `quiet`, flushed by the `BufWriter`'s drop.
    buffered: Option<std::io::BufWriter<TcpStream>>,
    seen: Rc<RefCell<Vec<String>>>,
}

impl Drop for Hangup {
    fn drop(&mut self) {
        use std::io::{Read, Write};
        let mut seen = self.seen.borrow_mut();
        let mut buf = [0; 16];
        let read = (&self.talk).read(&mut buf);
        seen.push(format!("read {:?}", read.map(|n| &buf[..n])));
        seen.push(format!(
            "read again {}",
            outcome((&self.talk).read(&mut buf))
        ));
        seen.push(format!("write {:?}", (&self.talk).write_all(b"bye")));
        seen.push(format!("write full {}", outcome((&self.quiet).write(b"x"))));
        // `BufWriter`'s drop flushes into the full socket (and ignores the
        // error): it returns.
        drop(self.buffered.take());
        seen.push("buffered dropped".into());
    }
}

/// `Ok`, or the error's message with the operation's name cut off.
fn outcome<T: std::fmt::Debug>(r: std::io::Result<T>) -> String {
    match r {
        Ok(v) => format!("Ok({v:?})"),
        Err(e) => {
            let message = e.to_string();
            match message.split_once(" would have to wait") {
                Some((_, rest)) => format!("Err(would have to wait{rest})"),
                None => format!("Err({message})"),
            }
        }
    }
}

/// A connected pair over loopback: the std client and the server side.
fn tcp_pair(listener: &std::net::TcpListener) -> (std::net::TcpStream, std::net::TcpStream) {
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

/// Writes into `stream` until its send buffer (and the peer's receive
/// buffer) is full.
fn fill(stream: &TcpStream) {
    let chunk = [0u8; 65536];
    let mut written = 0usize;
    loop {
        match stream.try_write(&chunk) {
            Ok(n) => written += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("filling the socket: {e}"),
        }
        assert!(written < 1 << 30, "the socket never filled");
    }
}

#[test]
fn socket_io_in_a_cancelled_tasks_destructor_is_tried_once_instead_of_aborting() {
    use std::io::{Read, Write};

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (mut talk_peer, talk) = tcp_pair(&listener);
    let (_quiet_peer, quiet) = tcp_pair(&listener);
    let (_buffered_peer, buffered) = tcp_pair(&listener);
    // "hello" is there to read before the task runs.
    talk_peer.write_all(b"hello").unwrap();
    talk.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    while talk.peek(&mut [0; 5]).unwrap() < 5 {}
    let [talk, quiet, buffered] = [talk, quiet, buffered].map(|s| TcpStream::try_from(s).unwrap());
    fill(&quiet);
    fill(&buffered);
    let mut buffered = std::io::BufWriter::new(buffered);
    buffered.write_all(b"never sent").unwrap();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let hangup = Hangup {
        talk,
        quiet,
        buffered: Some(buffered),
        seen: seen.clone(),
    };
    let ev = EventLoop::new();
    let victim = ev.spawn(move || {
        let _hangup = hangup;
        sleep(LONG);
    });
    assert!(ev.try_tick()); // it runs and parks
    victim.cancel_handle().cancel();
    ev.run().unwrap();
    assert!(victim.join().unwrap_err().is_cancelled());
    let cannot = "Err(would have to wait, in a destructor that its task's cancellation runs: a \
                  cancelled task cannot wait)";
    assert_eq!(
        *seen.borrow(),
        [
            "read Ok([104, 101, 108, 108, 111])".to_string(),
            format!("read again {cannot}"),
            "write Ok(())".to_string(),
            format!("write full {cannot}"),
            "buffered dropped".to_string(),
        ]
    );
    // The goodbye written with room to spare reached the peer.
    let mut bye = [0; 3];
    talk_peer
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    talk_peer.read_exact(&mut bye).unwrap();
    assert_eq!(&bye, b"bye");
}
