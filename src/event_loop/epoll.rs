//! The loop's poller on Linux and Android (feature `net`): epoll and an
//! eventfd, with the subset of the `polling` crate's API that the reactor
//! (`reactor.rs`) uses, so that elsewhere the reactor uses `polling`
//! unchanged.
//!
//! Why not `polling` here too: its epoll backend re-arms a timerfd and its
//! notification descriptor on every wait, four system calls besides
//! `epoll_wait`, and the loop waits (or polls without waiting) once per
//! round. Here a wait is one `epoll_wait`, with its timeout rounded up to
//! whole milliseconds (as mio does), and the eventfd is read only after a
//! notification woke the wait.

use std::io;
use std::num::NonZeroUsize;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The key of the eventfd's own registration (never a socket's: the
/// reactor's keys are slot indices).
const NOTIFY_KEY: u64 = u64::MAX;

/// Interest in, or readiness of, a registered descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Event {
    pub(crate) key: usize,
    pub(crate) readable: bool,
    pub(crate) writable: bool,
    /// Reported only: the peer closed its side (`EPOLLRDHUP`), or the
    /// socket hung up or failed.
    pub(crate) read_closed: bool,
}

impl Event {
    pub(crate) fn new(key: usize, readable: bool, writable: bool) -> Event {
        Event {
            key,
            readable,
            writable,
            read_closed: false,
        }
    }

    pub(crate) fn all(key: usize) -> Event {
        Event::new(key, true, true)
    }

    pub(crate) fn none(key: usize) -> Event {
        Event::new(key, false, false)
    }

    /// The epoll flags for this interest (`polling`'s, and `EPOLLRDHUP`).
    fn flags(self, mode: PollMode) -> u32 {
        let mut flags = match mode {
            PollMode::Oneshot => libc::EPOLLONESHOT,
            PollMode::Edge => libc::EPOLLET,
        } as u32;
        if self.readable {
            flags |= READ_FLAGS;
        }
        if self.writable {
            flags |= WRITE_FLAGS;
        }
        flags
    }
}

const READ_FLAGS: u32 =
    (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR | libc::EPOLLPRI) as u32;
const CLOSED_FLAGS: u32 = (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;
const WRITE_FLAGS: u32 = (libc::EPOLLOUT | libc::EPOLLHUP | libc::EPOLLERR) as u32;

/// How a registration reports readiness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PollMode {
    /// Once, then the interest must be re-armed with `modify`.
    Oneshot,
    /// On every change to ready.
    Edge,
}

/// Room for the events of one wait.
pub(crate) struct Events {
    list: Vec<libc::epoll_event>,
    len: usize,
}

impl Events {
    pub(crate) fn with_capacity(capacity: NonZeroUsize) -> Events {
        Events {
            list: vec![libc::epoll_event { events: 0, u64: 0 }; capacity.get()],
            len: 0,
        }
    }

    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    /// The events of the last wait, the poller's own left out.
    pub(crate) fn iter(&self) -> impl Iterator<Item = Event> + '_ {
        self.list[..self.len].iter().filter_map(|ev| {
            // Copies: the struct is packed on some targets.
            let (flags, key) = (ev.events, ev.u64);
            (key != NOTIFY_KEY).then_some(Event {
                key: key as usize,
                readable: flags & READ_FLAGS != 0,
                writable: flags & WRITE_FLAGS != 0,
                read_closed: flags & CLOSED_FLAGS != 0,
            })
        })
    }
}

/// An epoll instance and the eventfd that other threads use to wake it.
#[derive(Debug)]
pub(crate) struct Poller {
    epoll: OwnedFd,
    eventfd: OwnedFd,
    /// A notification is written and not yet read: later ones need not
    /// write again.
    notified: AtomicBool,
}

impl Poller {
    pub(crate) fn new() -> io::Result<Poller> {
        // SAFETY: plain system calls; each new descriptor is checked, then
        // owned.
        let (epoll, eventfd) = unsafe {
            let epoll = check(libc::epoll_create1(libc::EPOLL_CLOEXEC))?;
            let epoll = OwnedFd::from_raw_fd(epoll);
            let eventfd = check(libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK))?;
            (epoll, OwnedFd::from_raw_fd(eventfd))
        };
        let poller = Poller {
            epoll,
            eventfd,
            notified: AtomicBool::new(false),
        };
        // Level-triggered: reported until the wait that sees it reads it.
        poller.ctl(
            libc::EPOLL_CTL_ADD,
            poller.eventfd.as_raw_fd(),
            libc::EPOLLIN as u32,
            NOTIFY_KEY,
        )?;
        Ok(poller)
    }

    /// Always: epoll has edge-triggered mode.
    pub(crate) fn supports_edge(&self) -> bool {
        true
    }

    /// Registers `fd` with interest `ev` in `mode`.
    ///
    /// # Safety
    /// `fd` must stay open until it is deleted from this poller, or the
    /// poller is dropped.
    pub(crate) unsafe fn add_with_mode(
        &self,
        fd: RawFd,
        ev: Event,
        mode: PollMode,
    ) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, ev.flags(mode), ev.key as u64)
    }

    /// Registers `fd` in oneshot mode.
    ///
    /// # Safety
    /// As for [`add_with_mode`](Poller::add_with_mode).
    pub(crate) unsafe fn add(&self, fd: RawFd, ev: Event) -> io::Result<()> {
        // SAFETY: the caller's promise, passed on.
        unsafe { self.add_with_mode(fd, ev, PollMode::Oneshot) }
    }

    /// Re-arms a oneshot registration with interest `ev`.
    pub(crate) fn modify(&self, fd: BorrowedFd<'_>, ev: Event) -> io::Result<()> {
        self.ctl(
            libc::EPOLL_CTL_MOD,
            fd.as_raw_fd(),
            ev.flags(PollMode::Oneshot),
            ev.key as u64,
        )
    }

    /// Removes a registration.
    pub(crate) fn delete(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd.as_raw_fd(), 0, 0)
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, flags: u32, key: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: flags,
            u64: key,
        };
        // SAFETY: `ev` is a valid event; the kernel checks the descriptors.
        check(unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), op, fd, &mut ev) }).map(drop)
    }

    /// Waits until a registered descriptor is ready, a notification comes,
    /// or `timeout` (rounded up to whole milliseconds) passes; `None` waits
    /// without a limit. A signal ends the wait early with no event.
    pub(crate) fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<usize> {
        let ms = match timeout {
            None => -1,
            Some(t) => {
                let ms = t.as_nanos().div_ceil(1_000_000);
                libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX)
            }
        };
        // SAFETY: `list` is valid for `len` events.
        let n = unsafe {
            libc::epoll_wait(
                self.epoll.as_raw_fd(),
                events.list.as_mut_ptr(),
                libc::c_int::try_from(events.list.len()).unwrap_or(libc::c_int::MAX),
                ms,
            )
        };
        events.len = match check(n) {
            Ok(n) => n as usize,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
            Err(e) => return Err(e),
        };
        if events.list[..events.len].iter().any(|ev| {
            let key = ev.u64;
            key == NOTIFY_KEY
        }) {
            // Read first, then allow the next notification to write: one
            // that comes in between finds `notified` still set and does
            // not write, but the loop is awake and looks at its inbox.
            let mut count = [0u8; 8];
            // SAFETY: reads at most 8 bytes into `count`.
            unsafe { libc::read(self.eventfd.as_raw_fd(), count.as_mut_ptr().cast(), 8) };
            self.notified.store(false, Ordering::SeqCst);
        }
        Ok(events.len)
    }

    /// Wakes a wait in progress, or the next one (from any thread).
    pub(crate) fn notify(&self) -> io::Result<()> {
        if self.notified.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from `one`.
        let n = unsafe { libc::write(self.eventfd.as_raw_fd(), one.as_ptr().cast(), 8) };
        check(n as libc::c_int).map(drop)
    }
}

/// A negative result as the OS error.
fn check(result: libc::c_int) -> io::Result<libc::c_int> {
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(result)
    }
}
