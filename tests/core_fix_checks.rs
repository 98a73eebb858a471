//! Checks of the coroutine core's fixes for big bodies, the close of a
//! never-started coroutine and `ScopedCoroutine`'s drop: bodies at the
//! size and alignment boundary, and what an unwinding through an unstarted
//! close leaves behind (nothing: no panic for a later close, no `Meta`).

use std::cell::Cell;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;

use cogen::{Builder, Coroutine, ScopedCoroutine, Yielder};

/// Per-thread count of live heap bytes (coroutines run on their creator's
/// thread), so that the tests running beside one do not move its count.
struct Counting;
thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
}
// SAFETY: forwards to the system allocator, counting sizes.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: std::alloc::Layout) -> *mut u8 {
        let _ = LIVE.try_with(|c| c.set(c.get() + l.size() as isize));
        // SAFETY: forwarded.
        unsafe { std::alloc::System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: std::alloc::Layout) {
        let _ = LIVE.try_with(|c| c.set(c.get() - l.size() as isize));
        // SAFETY: forwarded.
        unsafe { std::alloc::System.dealloc(p, l) }
    }
}
#[global_allocator]
static A: Counting = Counting;
fn live() -> isize {
    LIVE.with(|c| c.get())
}

fn payload_str(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "<non-string payload>".into())
}

// ---------------------------------------------------------------- 1. sizes

/// A zero-sized capture aligned to a page: the body is 0 bytes (so it is
/// not boxed), but the root closure (body + `Meta` pointer) is 4096 bytes.
#[test]
fn a_zero_sized_page_aligned_body_builds() {
    #[repr(align(4096))]
    struct PageAligned;
    let z = PageAligned;
    let r = std::panic::catch_unwind(move || {
        Builder::new()
            .try_build(move |_: &Yielder<(), ()>, ()| {
                let _ = &z;
            })
            .map(drop)
    });
    match r {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("try_build returned an error: {e}"),
        Err(p) => panic!("try_build panicked: {}", payload_str(&*p)),
    }
}

#[test]
fn a_zero_sized_2k_aligned_generator_builds() {
    #[repr(align(2048))]
    struct A;
    let a = A;
    let r = std::panic::catch_unwind(move || {
        cogen::generator(move |co: &Yielder<(), u32>| {
            let _ = &a;
            co.suspend(1);
        })
        .collect::<Vec<_>>()
    });
    match r {
        Ok(v) => assert_eq!(v, [1]),
        Err(p) => panic!("generator panicked: {}", payload_str(&*p)),
    }
}

#[test]
fn a_body_at_the_boundary_builds() {
    #[repr(align(512))]
    #[derive(Clone, Copy)]
    struct A([u8; 512]);
    let a = A([9; 512]);
    let mut co = Coroutine::<(), u8, ()>::new(move |co, ()| {
        assert_eq!(&a as *const A as usize % 512, 0);
        co.suspend(a.0[511]);
    });
    assert_eq!(co.resume(()).unwrap().as_yield(), Some(9));
    let b = [1u8; 512];
    let mut co = Coroutine::<(), u8, ()>::new(move |co, ()| {
        co.suspend(b[511]);
    });
    assert_eq!(co.resume(()).unwrap().as_yield(), Some(1));
    let c = [2u8; 513];
    let mut co = Coroutine::<(), u8, ()>::new(move |co, ()| {
        co.suspend(c[512]);
    });
    assert_eq!(co.resume(()).unwrap().as_yield(), Some(2));
    #[repr(align(4096))]
    #[derive(Clone, Copy)]
    struct P([u8; 4096]);
    let p = P([3; 4096]);
    let mut co = Coroutine::<(), u8, ()>::new(move |co, ()| {
        assert_eq!(&p as *const P as usize % 4096, 0);
        co.suspend(p.0[0]);
    });
    assert_eq!(co.resume(()).unwrap().as_yield(), Some(3));
    let never = Coroutine::<(), u8, ()>::new(move |_, ()| {
        let _ = &p;
    });
    drop(never);
}

struct PanicsOnDrop(&'static str);
impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("{}", self.0);
    }
}

/// A big boxed body whose capture panics on drop: the box is freed (LSan),
/// the panic is the close's.
#[test]
fn a_big_boxed_body_with_panicking_capture_frees_its_box() {
    let big = [0u8; 4096];
    let p = PanicsOnDrop("boxed capture");
    let q = String::from("second capture, dropped after the panic");
    let mut co = Coroutine::<(), (), ()>::new(move |_, ()| {
        let _ = (&big, &p, &q);
    });
    let closed = co.close();
    assert_eq!(closed.unwrap_err().message(), "boxed capture");
    assert!(co.is_dead());
    assert!(co.close().is_ok());
}

/// A borrowing scoped body over 512 bytes, never scoped, dropped.
#[test]
fn a_big_borrowing_scoped_body_never_scoped() {
    let data = vec![1u64, 2, 3];
    struct Reader<'a>(&'a Vec<u64>, Rc<Cell<u64>>);
    impl Drop for Reader<'_> {
        fn drop(&mut self) {
            self.1.set(self.0.iter().sum());
        }
    }
    let out = Rc::new(Cell::new(0));
    let r = Reader(&data, out.clone());
    let big = [0u8; 2048];
    let co = ScopedCoroutine::<(), (), ()>::new(move |_, ()| {
        let _ = (&r, &big);
    });
    drop(co);
    assert_eq!(out.get(), 6);
}

// -------------------------------------------------- 2. unstarted closes

/// An unstarted named inner coroutine, dropped normally inside `outer`,
/// whose capture suspends `outer`; `outer` is then closed. The close's
/// unwinding passes out of the inner's `Raw::drop`: the inner's `Meta`
/// (its name, its handle) must still be dropped (LeakSanitizer).
#[test]
fn the_meta_of_an_unstarted_coroutine_whose_close_passes_an_unwinding_is_dropped() {
    once_meta(); // warm up (stack pool, probe)
    let before = live();
    for _ in 0..100 {
        once_meta();
    }
    let grown = live() - before;
    assert!(
        grown < 100 * 64,
        "100 rounds left {grown} bytes live on this thread"
    );
}

fn once_meta() {
    let mut outer = Coroutine::<(), u32, ()>::new(move |co, ()| {
        struct SuspendOnDrop<'y>(&'y Yielder<(), u32>);
        impl Drop for SuspendOnDrop<'_> {
            fn drop(&mut self) {
                self.0.suspend(1);
            }
        }
        let guard = SuspendOnDrop(co);
        let inner = Builder::new()
            .name("x".repeat(256))
            .build_scoped::<(), (), (), _>(move |_, ()| {
                let _g = &guard;
            });
        drop(inner);
        // `scope` dropped `inner` unstarted? No: scope with no resume drops
        // it at the end of `scope`, i.e. here, on outer's stack.
        unreachable!("outer was closed in the inner's drop");
    });
    assert_eq!(outer.resume(()).unwrap().as_yield(), Some(1));
    assert!(outer.close().is_ok());
    assert!(outer.is_dead());
}

/// Same as above but with a handle kept alive outside: the handle's view.
#[test]
fn a_handle_to_an_unstarted_coroutine_closed_by_an_outer_close_reads_dead() {
    let seen: Rc<Cell<Option<cogen::CoroutineHandle>>> = Rc::new(Cell::new(None));
    let s = seen.clone();
    let mut outer = Coroutine::<(), u32, ()>::new(move |co, ()| {
        struct SuspendOnDrop<'y>(&'y Yielder<(), u32>);
        impl Drop for SuspendOnDrop<'_> {
            fn drop(&mut self) {
                self.0.suspend(1);
            }
        }
        let guard = SuspendOnDrop(co);
        let inner = Builder::new()
            .name("inner")
            .build_scoped::<(), (), (), _>(move |_, ()| {
                let _g = &guard;
            });
        inner.scope(|r| s.set(Some(r.handle())));
        unreachable!();
    });
    assert_eq!(outer.resume(()).unwrap().as_yield(), Some(1));
    assert!(outer.close().is_ok());
    let h = seen.take().unwrap();
    assert_eq!(h.status(), cogen::Status::Dead);
}

/// A timeout expiring in the wait of an unstarted coroutine's capture: the
/// named coroutine's `Meta` must be dropped (LSan).
#[test]
fn a_timeout_through_an_unstarted_close_drops_the_meta() {
    use cogen::event_loop::{EventLoop, sleep, timeout};
    use std::time::Duration;
    let ev = EventLoop::new();
    let ok = ev
        .block_on(|| {
            timeout(Duration::from_millis(5), move || {
                struct SleepOnDrop;
                impl Drop for SleepOnDrop {
                    fn drop(&mut self) {
                        sleep(Duration::from_secs(30));
                    }
                }
                let g = SleepOnDrop;
                let c = Builder::new().name(String::from("leaky?")).build(
                    move |_: &Yielder<(), ()>, ()| {
                        let _g = &g;
                    },
                );
                let _h = c.handle();
                drop(c);
            })
            .is_ok()
        })
        .unwrap();
    assert!(!ok);
}

/// A page-aligned zero-sized capture whose destructor panics: creating the
/// coroutine panics (corosensei's size assertion), the unwinding drops the
/// root closure on this stack, its `Unstarted` guard stashes the capture's
/// panic in `CLOSE_PANIC`, and a later, clean, close reports it.
#[test]
fn a_failed_create_leaves_no_panic_for_the_next_close() {
    #[repr(align(4096))]
    struct Z;
    impl Drop for Z {
        fn drop(&mut self) {
            panic!("stale panic from a failed create");
        }
    }
    let z = Z;
    let created = std::panic::catch_unwind(AssertUnwindSafe(move || {
        drop(Coroutine::<(), (), ()>::new(move |_, ()| {
            let _ = &z;
        }))
    }));
    eprintln!(
        "create: {:?}",
        created.as_ref().err().map(|p| payload_str(&**p))
    );
    let mut clean = Coroutine::<(), (), ()>::new(|co, ()| co.suspend(()));
    clean.resume(()).unwrap();
    let closed = clean.close();
    assert!(
        closed.is_ok(),
        "a clean close reported {:?}",
        closed.unwrap_err().message()
    );
}

/// CLOSE_PANIC left dirty: a nested clean close inside a panicking drop.
#[test]
fn a_close_inside_a_panicking_unstarted_drop_is_clean() {
    struct ClosesAnother(Option<Coroutine<(), (), ()>>);
    impl Drop for ClosesAnother {
        fn drop(&mut self) {
            let mut c = self.0.take().unwrap();
            c.resume(()).unwrap();
            let r = c.close();
            assert!(
                r.is_ok(),
                "nested clean close: {:?}",
                r.err().map(|p| p.message().to_owned())
            );
        }
    }
    let mut other = Coroutine::<(), (), ()>::new(|co, ()| co.suspend(()));
    let _ = &mut other;
    let a = ClosesAnother(Some(other));
    let p = PanicsOnDrop("first");
    let mut co = Coroutine::<(), (), ()>::new(move |_, ()| {
        let _ = (&p, &a);
    });
    let closed = co.close();
    assert_eq!(closed.unwrap_err().message(), "first");
    let mut clean = Coroutine::<(), (), ()>::new(|co, ()| co.suspend(()));
    clean.resume(()).unwrap();
    assert!(clean.close().is_ok());
}

#[test]
fn closing_twice_and_status_after_an_unstarted_panicking_close() {
    let p = PanicsOnDrop("p");
    let mut co = Coroutine::<(), (), ()>::new(move |_, ()| {
        let _ = &p;
    });
    assert!(co.close().is_err());
    assert!(co.is_dead());
    assert!(co.close().is_ok());
    assert!(matches!(co.resume(()), Err(cogen::ResumeError::Dead(()))));
    let _ = AssertUnwindSafe(());
}

// ---------------------------------------------------------- 4. pipelines

mod pipelines {
    use cogen::pipeline::{PipelineExt, ResultState, read_chunks, source};
    use std::io::{self, Read};

    /// Gives `parts` one per read; an `Err` part is an error; after the
    /// parts, more bytes (which a fused reader must never hand on).
    struct Scripted(Vec<Result<&'static [u8], io::ErrorKind>>, usize);
    impl Read for Scripted {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let i = self.1;
            self.1 += 1;
            match self.0.get(i) {
                Some(Ok(b)) => {
                    buf[..b.len()].copy_from_slice(b);
                    Ok(b.len())
                }
                Some(Err(k)) => Err(io::Error::new(*k, "scripted")),
                None => {
                    buf[0] = b'!';
                    Ok(1)
                }
            }
        }
    }

    #[test]
    fn partial_chunk_then_error_then_nothing() {
        let r = Scripted(vec![Ok(b"abcd"), Ok(b"ef"), Err(io::ErrorKind::Other)], 0);
        let items: Vec<_> = read_chunks(r, 4).collect();
        let shown: Vec<String> = items
            .iter()
            .map(|i| match i {
                Ok(v) => String::from_utf8_lossy(v).into_owned(),
                Err(e) => format!("E:{}", e.stage()),
            })
            .collect();
        assert_eq!(shown, ["abcd", "ef", "E:read"]);
    }

    #[test]
    fn error_at_a_chunk_boundary() {
        let r = Scripted(vec![Ok(b"abcd"), Err(io::ErrorKind::Other)], 0);
        let shown: Vec<String> = read_chunks(r, 4)
            .map(|i| match i {
                Ok(v) => String::from_utf8_lossy(&v).into_owned(),
                Err(e) => format!("E:{}", e.stage()),
            })
            .collect();
        assert_eq!(shown, ["abcd", "E:read"]);
    }

    #[test]
    fn interrupted_is_retried_not_an_error() {
        let r = Scripted(
            vec![
                Ok(b"ab"),
                Err(io::ErrorKind::Interrupted),
                Ok(b"cd"),
                Ok(b""),
            ],
            0,
        );
        let shown: Vec<_> = read_chunks(r, 8).take(1).map(|i| i.unwrap()).collect();
        assert_eq!(shown, [b"abcd".to_vec()]);
    }

    #[test]
    fn byte_lines_over_a_partial_chunk_then_error() {
        let r = Scripted(vec![Ok(b"a\nb\nc"), Err(io::ErrorKind::Other)], 0);
        let shown: Vec<String> = read_chunks(r, 64)
            .byte_lines()
            .map(|i| match i {
                Ok(v) => String::from_utf8_lossy(&v).into_owned(),
                Err(e) => format!("E:{}", e.stage()),
            })
            .collect();
        eprintln!("{shown:?}");
        assert_eq!(&shown[..2], ["a", "b"]);
        assert_eq!(shown.last().unwrap(), "E:read");
    }

    #[test]
    fn stage_returning_after_upstream_failure_is_failed() {
        let up = source(1u32..=4).stage("src", |co, up| -> Result<(), &'static str> {
            for x in up {
                if x == 3 {
                    return Err("boom");
                }
                co.suspend(x);
            }
            Ok(())
        });
        let (st, result) = up.stage_returning("sum", |co, up| {
            let mut n = 0;
            for x in up {
                n += x;
                co.suspend(x);
            }
            n
        });
        let mut st = st.stage("after", |co, up| -> Result<(), &'static str> {
            for x in up {
                co.suspend(x);
            }
            Err("after's own error")
        });
        let mut shown = Vec::new();
        for i in &mut st {
            shown.push(match i {
                Ok(v) => v.to_string(),
                Err(e) => format!("E:{}:{}", e.stage(), e),
            });
        }
        assert_eq!(st.next().map(|_| ()), None);
        eprintln!("{shown:?}");
        assert_eq!(shown.len(), 3);
        assert_eq!(&shown[..2], ["1", "2"]);
        assert!(shown[2].starts_with("E:src"), "{shown:?}");
        assert_eq!(result.state(), ResultState::Failed);
        assert!(result.take().is_none());
    }
}
