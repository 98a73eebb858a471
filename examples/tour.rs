//! A guided run through everything cogen can do: `cargo run --example tour`.
//!
//! Each section prints what it shows; read this file beside its output.
#![cfg_attr(cogen_nightly, feature(coroutines))]

use std::cell::RefCell;
use std::rc::Rc;

use std::time::Duration;

use cogen::pipeline::{PipelineExt, Push, Sink, read_chunks, source};
use cogen::{Builder, Coroutine, CoroutineResult, ResumeError, ScopedCoroutine, Status};

// Stackless coroutines: `yield` and `#[coroutine]` do not even parse on
// stable Rust, so that section lives in its own file.
#[cfg(cogen_nightly)]
#[path = "nightly/tour_stackless.rs"]
mod stackless;

fn section(title: &str) {
    println!("\n== {title}");
}

fn main() {
    values_both_ways();
    status_in_every_state();
    errors_are_values();
    close_and_drop();
    suspend_from_any_depth();
    generators_and_wrap();
    scoped_borrowing();
    stacks();
    generators_and_pipelines();
    #[cfg(cogen_nightly)]
    stackless::section();
    event_loop();
    sockets();
    #[cfg(cogen_nightly)]
    stackless::tasks();
    nested_waits();
    one_loop_per_core();
}

/// Lua: `coroutine.create`, `resume`, `yield`, with values in and out.
fn values_both_ways() {
    section("1. create / resume / suspend: values flow both ways");
    // Input = i32, Yield = String, Return = i32.
    let mut co = Coroutine::new(|co, first: i32| {
        println!("  body starts with first input {first}");
        let second = co.suspend(format!("got {first}"));
        println!("  suspend returned the next input {second}");
        first + second
    });
    println!("  created; nothing has run yet (status {:?})", co.status());
    match co.resume(40) {
        Ok(CoroutineResult::Yield(text)) => println!("  resume(40) -> Yield({text:?})"),
        other => println!("  unexpected {other:?}"),
    }
    match co.resume(2) {
        Ok(CoroutineResult::Return(sum)) => println!("  resume(2) -> Return({sum})"),
        other => println!("  unexpected {other:?}"),
    }
    if let Err(ResumeError::Dead(input)) = co.resume(7) {
        println!(
            "  resume(7) -> Err(Dead): cannot resume dead coroutine; input {input} handed back"
        );
    }
}

/// Lua's four states, seen from outside, from inside, and as `normal`.
fn status_in_every_state() {
    section("2. status: suspended, running, normal, dead");
    let outer_handle: Rc<RefCell<Option<cogen::CoroutineHandle>>> = Rc::default();
    let seen = outer_handle.clone();
    let mut outer = Builder::new().name("outer").build(move |co, ()| {
        let me = cogen::running().expect("inside a coroutine");
        println!("  inside 'outer': running() says {:?}", me.status());
        *seen.borrow_mut() = Some(me.clone());
        let mut inner = Coroutine::<(), (), ()>::new(move |_, ()| {
            println!("  inside 'inner': 'outer' is {:?}", me.status());
        });
        inner.resume(()).expect("inner runs");
        co.suspend(());
    });
    let handle = outer.handle();
    println!("  before the first resume: {:?}", handle.status());
    outer.resume(()).expect("outer suspends");
    println!("  after it suspended: {:?}", handle.status());
    drop(outer);
    println!("  after drop: {:?}", handle.status());
    println!(
        "  outside any coroutine: running() = {:?}, is_yieldable() = {}",
        cogen::running().map(|h| h.status()),
        cogen::is_yieldable()
    );
    assert!(outer_handle.borrow().is_some());
}

/// Lua: `error(...)` in the body becomes `false, msg` from `resume`.
fn errors_are_values() {
    section("3. a panic in the body is an error value; the coroutine is dead");
    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {})); // keep the tour's output clean
    let mut co = Coroutine::<(), (), ()>::new(|_, ()| panic!("Something went wrong!"));
    match co.resume(()) {
        Err(ResumeError::Panicked(p)) => println!("  caught: {}", p.message()),
        other => println!("  unexpected {other:?}"),
    }
    println!("  status now: {:?}", co.status());
    let mut typed = Coroutine::<(), (), ()>::new(|_, ()| std::panic::panic_any(404u16));
    if let Err(e) = typed.resume(()) {
        let code = e.into_panic().downcast::<u16>().map(|b| *b);
        println!("  non-string payloads survive too: {code:?}");
    }
    std::panic::set_hook(previous_hook);
}

struct Noisy(&'static str);

impl Drop for Noisy {
    fn drop(&mut self) {
        println!("  dropped {}", self.0);
    }
}

/// Lua 5.4's `coroutine.close`, and what dropping a suspended coroutine does.
fn close_and_drop() {
    section("4. close and drop unwind a suspended stack, destructors run once");
    let mut co = Coroutine::<(), (), ()>::new(|co, ()| {
        let _file = Noisy("the 'file' held by a suspended coroutine");
        co.suspend(());
        unreachable!("never resumed again");
    });
    co.resume(()).expect("suspends");
    println!("  close() -> {:?}", co.close().map_err(|p| p.to_string()));
    println!(
        "  status: {:?}; closing again -> {:?}",
        co.status(),
        co.close().is_ok()
    );
    let mut forgotten = Coroutine::<(), (), ()>::new(|co, ()| {
        let _lock = Noisy("the 'lock' of a coroutine nobody resumed again");
        co.suspend(());
    });
    forgotten.resume(()).expect("suspends");
    drop(forgotten);
}

/// What stackful buys: `suspend` from a recursive walk.
fn suspend_from_any_depth() {
    section("5. suspend from any depth: an in-order tree walk");
    enum Tree {
        Leaf,
        Node(Box<Tree>, u32, Box<Tree>),
    }
    fn node(l: Tree, v: u32, r: Tree) -> Tree {
        Tree::Node(Box::new(l), v, Box::new(r))
    }
    fn walk(tree: &Tree, co: &cogen::Yielder<(), u32>) {
        if let Tree::Node(left, value, right) = tree {
            walk(left, co);
            co.suspend(*value);
            walk(right, co);
        }
    }
    use Tree::Leaf;
    let tree = node(node(Leaf, 1, node(Leaf, 2, Leaf)), 3, node(Leaf, 4, Leaf));
    let walker = Coroutine::new(move |co, ()| walk(&tree, co));
    let values: Vec<u32> = walker.collect();
    println!("  in order: {values:?}");
}

/// Lua's `wrap`: generators are iterators; `cogen::wrap` for input.
fn generators_and_wrap() {
    section("6. generators are iterators; wrap makes a function");
    let mut fib = Coroutine::new(|co, ()| {
        let (mut a, mut b) = (0u64, 1u64);
        for _ in 0..10 {
            co.suspend(a);
            (a, b) = (b, a + b);
        }
        "ten numbers"
    });
    let numbers: Vec<u64> = fib.by_ref().collect();
    println!(
        "  fibonacci: {numbers:?}, then returned {:?}",
        fib.return_value()
    );
    let mut running_total = cogen::wrap(|co, mut total: i32| {
        loop {
            total += co.suspend(total);
        }
    });
    let totals: Vec<_> = [3, 4, 5]
        .into_iter()
        .map(|x| running_total(x).as_yield())
        .collect();
    println!("  running total of 3, 4, 5: {totals:?}");
}

/// Borrowing the caller's locals, soundly.
fn scoped_borrowing() {
    section("7. scoped coroutines borrow local data");
    let words = ["alpha", "beta", "gamma"];
    let mut letters = 0;
    ScopedCoroutine::new(|co, ()| {
        for word in &words {
            letters += word.len();
            co.suspend(*word);
        }
    })
    .scope(|co| {
        while let Ok(CoroutineResult::Yield(word)) = co.resume(()) {
            println!("  borrowed {word:?}");
        }
        assert_eq!(co.status(), Status::Dead);
    });
    println!("  letters counted through a mutable borrow: {letters}");
}

fn stacks() {
    section("8. stacks: pooled, sized, named");
    let before = cogen::stack::pooled_stacks();
    let co = Builder::new()
        .name("small")
        .stack_size(64 * 1024)
        .build::<(), (), (), _>(|_, ()| ());
    println!("  built {:?} with a 64 KiB stack", co.name().unwrap_or("?"));
    drop(co);
    println!(
        "  its stack went back to the pool: {} -> {} pooled",
        before,
        cogen::stack::pooled_stacks()
    );
}

/// Generators with a return value, `yield from`, pull stages and a push sink.
fn generators_and_pipelines() {
    section("9. generators and pipelines");
    let mut g = cogen::generator(|co| {
        co.suspend_all([1, 2]);
        co.delegate(cogen::generator(|co| {
            co.suspend(3);
            "inner done"
        }))
    });
    println!(
        "  generator with delegation: {:?}, returned {:?}",
        g.by_ref().collect::<Vec<_>>(),
        g.return_value()
    );

    // Pull: chunks -> lines -> words; push: a consumer coroutine counts.
    let text: &[u8] = b"to be or\nnot to be\n";
    let words = read_chunks(text, 4).lines().words();
    let count = Sink::new("count", |words| {
        words.filter(|w: &String| w == "be").count()
    });
    println!(
        "  'be' appears {} times (read 4 bytes at a time)",
        count.feed(words).expect("no stage fails")
    );

    // A failing stage reaches the consumer as an error value that names it.
    let err = source(1..=3)
        .stage("picky", |co, up| {
            for x in up {
                if x >= 3 {
                    return Err(format!("{x} is too big"));
                }
                co.suspend(x);
            }
            Ok(())
        })
        .find_map(Result::err)
        .expect("the stage fails");
    println!("  error: {err}");
    // The stage's own error is the source, not part of the message.
    if let Some(cause) = std::error::Error::source(&err) {
        println!("  caused by: {cause}");
    }
}

/// The round-robin event loop: tasks that wait without blocking the thread.
fn event_loop() {
    use cogen::event_loop::{EventLoop, TaskBuilder, channel, sleep, spawn, yield_now};

    section("11. the event loop: tasks, channels, sleep, join");
    let ev = EventLoop::new();
    let total = ev
        .block_on(|| {
            let (tx, rx) = channel::<u32>(2); // bounded: send parks while full
            let producer = spawn(move || {
                for i in 1..=5 {
                    tx.send(i).expect("the consumer is alive");
                    println!("  produced {i}");
                }
            }); // the last sender is dropped here: the channel closes
            let consumer = spawn(move || {
                sleep(Duration::from_millis(5)); // the producer runs meanwhile
                rx.iter()
                    .inspect(|v| println!("  consumed {v}"))
                    .sum::<u32>()
            });
            yield_now();
            producer.join().expect("the producer does not panic");
            consumer.join().expect("the consumer does not panic") // a panic would be a JoinError
        })
        .expect("no deadlock");
    println!("  total = {total}");

    section("12. the event loop: panics, deadlocks, files that do not block");
    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {})); // keep the tour's output clean
    let ev = EventLoop::new();
    let failing = ev.spawn(|| -> u32 { panic!("task failed") });
    let survivor = ev.spawn(|| {
        yield_now();
        "still running"
    });
    ev.run().expect("every panic is joined below");
    let err = failing.join().expect_err("it panicked");
    println!("  a panicking task: is_panic() = {}, {err}", err.is_panic());
    println!("  the loop went on: {:?}", survivor.join());
    std::panic::set_hook(previous_hook);

    // Two tasks that each wait for a message only the other could send.
    let stuck = EventLoop::new();
    let (tx_a, rx_a) = channel::<u32>(1);
    let (tx_b, rx_b) = channel::<u32>(1);
    let (a, b) = (
        TaskBuilder::new()
            .name("waits-for-b")
            .spawn_on(&stuck, move || {
                let got = rx_b.recv();
                drop(tx_a);
                got
            }),
        TaskBuilder::new()
            .name("waits-for-a")
            .spawn_on(&stuck, move || {
                let got = rx_a.recv();
                drop(tx_b);
                got
            }),
    );
    match stuck.run() {
        Err(e) if e.is_deadlock() => {
            let names: Vec<_> = e.stuck_tasks().iter().map(|t| t.to_string()).collect();
            println!("  deadlock reported, not a hang: {}", names.join("; "));
        }
        other => println!("  unexpected {other:?}"),
    }
    drop((a, b));

    // A file read runs on a thread pool; the task parks, others keep running.
    let ev = EventLoop::new();
    let read = ev.block_on(|| {
        let ticker = spawn(|| {
            yield_now();
            "ticked"
        });
        let text = cogen::event_loop::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/data/myfile.txt"
        ));
        (text.map(|t| t.len()), ticker.join().expect("no panic"))
    });
    println!("  fs::read_to_string while another task ran: {read:?}");
    let missing = ev.block_on(|| cogen::event_loop::fs::read("no/such/file").map_err(|e| e.kind()));
    println!("  a missing file is an io::Error value: {missing:?}");
}

/// Sockets: a server and its clients, all tasks of one loop on one thread.
fn sockets() {
    use cogen::event_loop::net::{TcpListener, TcpStream};
    use cogen::event_loop::{EventLoop, spawn};
    use std::io::{self, BufRead, BufReader, Read, Write};

    /// One connection: every line back in upper case, until the client
    /// closes (`Ok(lines answered)`) or stays silent for 100 ms (an error
    /// of kind `TimedOut`).
    fn shout(stream: TcpStream) -> io::Result<usize> {
        stream.set_read_timeout(Some(Duration::from_millis(100)))?;
        let mut lines = BufReader::new(&stream);
        let (mut line, mut answered) = (String::new(), 0);
        while lines.read_line(&mut line)? > 0 {
            (&stream).write_all(line.to_uppercase().as_bytes())?;
            line.clear();
            answered += 1;
        }
        Ok(answered)
    }

    section("13. sockets: a server and its clients in one thread");
    let ev = EventLoop::new();
    let (replies, silent, served) = ev
        .block_on(|| -> io::Result<_> {
            let listener = TcpListener::bind("127.0.0.1:0")?; // port 0: any free port
            let addr = listener.local_addr()?;
            // The server: an accept loop, one task per connection. (This
            // one stops after four connections; a real one loops forever.)
            let server = spawn(move || -> io::Result<Vec<_>> {
                let mut connections = Vec::new();
                for _ in 0..4 {
                    let (stream, _peer) = listener.accept()?; // parks until a client comes
                    connections.push(spawn(move || shout(stream).map_err(|e| e.kind())));
                }
                Ok(connections
                    .into_iter()
                    .map(|c| c.join().expect("no panic"))
                    .collect())
            });
            // Three clients, each a task: send lines, read the answers.
            let clients: Vec<_> = [
                &["hello", "world"][..],
                &["coroutines"],
                &["tcp", "on", "loopback"],
            ]
            .into_iter()
            .map(|words| {
                spawn(move || -> io::Result<Vec<String>> {
                    let stream = TcpStream::connect(addr)?; // parks until connected
                    let mut answers = BufReader::new(&stream);
                    let mut replies = Vec::new();
                    for word in words {
                        writeln!(&stream, "{word}")?;
                        let mut reply = String::new();
                        answers.read_line(&mut reply)?; // parks until the answer comes
                        replies.push(format!("{word} -> {}", reply.trim_end()));
                    }
                    Ok(replies) // dropping the stream closes the connection
                })
            })
            .collect();
            // A fourth client connects and says nothing.
            let silent = spawn(move || -> io::Result<usize> {
                let stream = TcpStream::connect(addr)?;
                (&stream).read(&mut [0; 16]) // 0: the server closed the connection
            });
            let replies: Vec<String> = clients
                .into_iter()
                .map(|c| c.join().expect("no panic"))
                .collect::<io::Result<Vec<_>>>()?
                .concat();
            let silent = silent.join().expect("no panic")?;
            let served = server.join().expect("no panic")?;
            Ok((replies, silent, served))
        })
        .expect("no deadlock")
        .expect("loopback works");
    println!("  {}", replies.join(", "));
    println!("  the silent client read {silent} bytes: the server closed it");
    let mut served: Vec<String> = served.iter().map(|s| format!("{s:?}")).collect();
    served.sort(); // which client was accepted first is up to the loop
    println!("  the server's connections ended: {}", served.join(", "));
}

fn nested_waits() {
    use cogen::event_loop::{EventLoop, SpawnStage, channel, sleep};

    section("15. waits from nested coroutines: a pipeline inside a task reads a channel");
    let ev = EventLoop::new();
    let (tx, rx) = channel::<u32>(1);
    ev.spawn(move || {
        for n in 1..=6 {
            tx.send(n).unwrap(); // parks while the pipeline is busy
        }
    });
    let report = ev
        .block_on(move || {
            // Every stage is a coroutine nested in this task; a wait in any
            // of them (the channel, the sleep) parks the whole task.
            let (counted, count) = source(rx)
                .stage("slow", |co, up| {
                    for n in up {
                        sleep(Duration::from_millis(1));
                        co.suspend(n);
                    }
                })
                .spawn_stage(2) // runs ahead in a task of its own
                .stage_returning("count", |co, up| {
                    let mut seen = 0;
                    for n in up {
                        seen += 1;
                        co.suspend(n * n);
                    }
                    seen
                });
            let squares: Vec<u32> = counted.map(Result::unwrap).collect();
            (squares, count.take())
        })
        .unwrap();
    println!(
        "  squares {:?}, the counting stage returned {:?}",
        report.0, report.1
    );
}

fn one_loop_per_core() {
    use std::io::{BufRead, BufReader, Write};

    use cogen::event_loop::net::TcpListener;
    use cogen::event_loop::{Runtime, bind_reuseport, sleep, spawn};

    section("16. one loop per core: a Runtime, and a server on every loop");
    let rt = Runtime::builder().threads(2).build().expect("threads");
    let handles: Vec<_> = (1..=4u64)
        .map(|i| {
            rt.spawn(move || {
                sleep(Duration::from_millis(1)); // parks the task, not its thread
                i * i
            })
        })
        .collect();
    let squares: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    println!(
        "  {} loops, squares {squares:?} (each task stays on its loop)",
        rt.threads()
    );

    // One listener per loop on the same port (SO_REUSEPORT): the kernel
    // spreads the connections, and each loop serves the ones it accepted.
    let first = bind_reuseport("127.0.0.1:0".parse().unwrap()).expect("bind");
    let addr = first.local_addr().unwrap();
    let mut listeners = vec![first];
    listeners.push(bind_reuseport(addr).expect("bind the same port"));
    for (loop_handle, listener) in rt.handles().iter().zip(listeners) {
        loop_handle.spawn(move || {
            let listener = TcpListener::try_from(listener)?;
            loop {
                let (stream, _) = listener.accept()?;
                spawn(move || {
                    let mut line = String::new();
                    let mut reader = BufReader::new(&stream);
                    while reader.read_line(&mut line).unwrap_or(0) > 0 {
                        let _ = (&stream).write_all(line.to_uppercase().as_bytes());
                        line.clear();
                    }
                });
            }
            #[allow(unreachable_code)]
            Ok::<(), std::io::Error>(())
        });
    }
    // Clients on plain threads, as other programs would be.
    let clients: Vec<_> = (0..8)
        .map(|i| {
            std::thread::spawn(move || {
                let mut stream = std::net::TcpStream::connect(addr).expect("connect");
                writeln!(stream, "client {i}").unwrap();
                let mut answer = String::new();
                BufReader::new(&stream).read_line(&mut answer).unwrap();
                answer.trim_end().to_owned()
            })
        })
        .collect();
    let answers: Vec<String> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    println!("  8 clients answered: {}, ..., {}", answers[0], answers[7]);
    println!("  block_on from main: {}", rt.block_on(|| 6 * 7));
    // The accept loops never end: shutting down cancels them.
    rt.shutdown_timeout(Duration::from_millis(10));
}
