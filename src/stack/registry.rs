//! Which of this thread's stacks holds an address.
//!
//! This file owns the per-thread registry of the stacks the thread has
//! mapped, kept from the `mmap` to the `munmap` (so changed only on those
//! slow paths, never when a pooled stack is taken or given back), and
//! [`MappedStack`], the mapping that registers itself. A question about a
//! stack pointer ("which coroutine stack is this code running on?") is
//! answered from it (`stack_holding`) with no bookkeeping on the switch
//! itself; the overflow handler asks which stack's guard page a faulting
//! address is in (`stack_starting_at`).
//!
//! The registry is read from the `SIGSEGV` handler too. It lives behind a
//! `const`-initialised thread-local pointer without a destructor (reading it
//! never runs lazy initialisation or registers anything), it is allocated by
//! the first registration and freed when its last stack is unmapped (so it
//! outlives every stack of the thread, even those dropped by other
//! thread-locals' destructors), and while it is being changed a flag says
//! so and readers see no stack at all.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::ptr;
use std::sync::atomic::{Ordering, compiler_fence};
use std::sync::{Mutex, PoisonError};

use corosensei::stack::{DefaultStack, Stack};

/// This thread's stacks, twice: by lowest address in a `BTreeMap`, for the
/// stack that holds any address, and in [`Guards`], for the stack whose
/// mapping starts at a given address, which the signal handler asks about:
/// its search runs in a few bytes of stack, where the `BTreeMap`'s generic
/// search takes kilobytes in a debug build, more than the handler's
/// alternate stack has left.
struct Registry {
    /// The lowest address of each mapping (its guard page), with its top.
    by_limit: BTreeMap<usize, usize>,
    guards: Guards,
}

thread_local! {
    /// Null while this thread has no stack mapped.
    static REGISTRY: Cell<*mut Registry> = const { Cell::new(ptr::null_mut()) };
    /// True while `REGISTRY` is being changed (a signal handler may look).
    static CHANGING: Cell<bool> = const { Cell::new(false) };
}

/// The mapping of a stack, from its guard page to its top.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StackBounds {
    /// The lowest address of the mapping, where its guard page starts.
    pub(crate) limit: usize,
    /// The address just above the mapping.
    pub(crate) top: usize,
}

impl StackBounds {
    /// Where the stack's own use begins: [`colored_top`] of the mapping's
    /// top.
    #[inline]
    pub(crate) fn colored_top(&self) -> usize {
        colored_top(self.top, self.limit)
    }
}

/// How many cache lines apart the tops of stacks of 256 KiB and more are
/// spread (see [`colored_top`]); smaller stacks use fewer.
const COLORS: usize = 32;

/// Where a stack whose mapping spans `limit..top` (guard page included)
/// begins to be used: up to `COLORS - 1` cache lines (1,984 bytes) below
/// the top, by the top's page number, in a stack of 256 KiB or more; in a
/// smaller one up to a 128th of the mapping, rounded down to a power of
/// two number of lines (4 colors, 192 bytes, for the smallest stack: its
/// room for a panic is measured with that, in `tests/stack.rs`). The hot
/// data of a parked coroutine stays within the top page.
///
/// Every mapping ends on a page boundary, and a parked coroutine's hot data
/// (its `Meta`, corosensei's link, the frame it suspended in) lies at the
/// same distance below its stack's top in every coroutine. Without this
/// offset, a round robin suspends one coroutine by storing to its stack and
/// resumes the next by loading from the same offset in another page, which
/// some CPUs take for a dependency (the low 12 bits match) and wait on; and
/// all of them share the same few cache sets, which those bits pick.
///
/// How many colors is a trade between CPUs. Measured on a Zen 5 host over
/// 1,000 / 10,000 / 30,000 coroutines (default stacks), ns per resume: no
/// offset 5.8 / 6.8 / 16.6, 2 colors 2.2 / 6.9 / 13.5, 4 colors
/// 2.3 / 7.0 / 11.4, 8 colors 2.2 / 7.1 / 9.3, 16 colors 2.2 / 7.6 / 8.2.
/// On a Zen 3 host the same rings ran 17–23 / 27–32 / 161–185 with no
/// offset, 18–24 / 43–184 / 242–278 with 4 colors, 41–65 / 94–265 /
/// 515–548 with 2, 11–14 / 29–34 / 178–195 with 16, and 9–15 / 26–30 /
/// 120–193 with 32 (runs of the two builds alternated): few colors, and 2
/// or 4 above all, are slow there at every size. 32 is the fastest there
/// and within 10 % of the best on the Zen 5 host, where more colors cost
/// the 10,000 ring a little (the hot lines then spread over more of the
/// L2) and help the 30,000 one. (The smallest stacks ran about as fast
/// with 4, 8 or 32 colors on the Zen 3 host.) Consecutive mappings of the
/// same size are a whole number of pages apart (the default stack and its
/// guard 257 pages, the smallest 9), so their page numbers, and their
/// offsets, differ. A pure function of the mapping, so that whoever finds
/// a stack by its bounds finds its `Meta`.
#[inline]
pub(crate) fn colored_top(top: usize, limit: usize) -> usize {
    top - ((top / 4096) % colors(top - limit)) * 64
}

/// The number of colors of a mapping of `bytes`: a power of two from 1 to
/// [`COLORS`], at most a 128th of the mapping in cache lines.
#[inline]
fn colors(bytes: usize) -> usize {
    1 << (bytes / 8192).clamp(1, COLORS).ilog2()
}

/// This thread's registry, unless it has none or is changing it.
#[inline]
fn registry<'a>() -> Option<&'a Registry> {
    if CHANGING.get() {
        return None;
    }
    // SAFETY: the registry is only changed by `change`, on this thread,
    // which `CHANGING` says is not running (a signal handler that
    // interrupted it sees `CHANGING` set), and freed only there. The
    // callers hold the reference only while they do not call out.
    unsafe { REGISTRY.get().as_ref() }
}

/// The stack mapped by this thread (and not yet unmapped) whose mapping,
/// guard page included, holds `addr`; `None` for any other address (a
/// thread's own stack, the heap, another thread's coroutine stacks).
#[inline]
pub(crate) fn stack_holding(addr: usize) -> Option<StackBounds> {
    let (&limit, &top) = registry()?.by_limit.range(..=addr).next_back()?;
    (addr < top).then_some(StackBounds { limit, top })
}

/// The stack mapped by this thread whose mapping starts at `limit`.
///
/// Async-signal-safe, and frugal with stack: it allocates nothing, takes no
/// lock and calls nothing generic.
pub(crate) fn stack_starting_at(limit: usize) -> Option<StackBounds> {
    let top = registry()?.guards.get(limit)?;
    Some(StackBounds { limit, top })
}

/// The address of every thread's registry, while it has one.
///
/// A thread that ends with stacks still mapped (their owners leaked with
/// `mem::forget`) keeps its registry as it keeps those mappings, for good;
/// this list keeps it reachable, like them, rather than a leak that
/// LeakSanitizer reports. Touched only when a registry is allocated or
/// freed, on the mapping's slow path, never by a lookup.
fn all_registries() -> std::sync::MutexGuard<'static, Vec<usize>> {
    static ALL: Mutex<Vec<usize>> = Mutex::new(Vec::new());
    ALL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Changes this thread's registry, allocating it if need be and freeing it
/// once it is empty.
fn change(f: impl FnOnce(&mut Registry)) {
    CHANGING.set(true);
    // The flag is set before the registry changes, as a signal handler on
    // this thread sees it.
    compiler_fence(Ordering::SeqCst);
    let mut registry = REGISTRY.get();
    if registry.is_null() {
        registry = Box::into_raw(Box::new(Registry {
            by_limit: BTreeMap::new(),
            guards: Guards::default(),
        }));
        REGISTRY.set(registry);
        all_registries().push(registry as usize);
    }
    // SAFETY: allocated above or by an earlier `change`, freed only below;
    // no other reference to it is alive (readers hold theirs only while
    // they do not call out, and none is on this thread's call stack).
    let map = unsafe { &mut *registry };
    f(map);
    if map.by_limit.is_empty() {
        REGISTRY.set(ptr::null_mut());
        let mut all = all_registries();
        if let Some(i) = all.iter().position(|&r| r == registry as usize) {
            all.swap_remove(i);
        }
        drop(all);
        // SAFETY: allocated by `Box::into_raw` above; unreachable now.
        drop(unsafe { Box::from_raw(registry) });
    }
    compiler_fence(Ordering::SeqCst);
    CHANGING.set(false);
}

/// A set of mappings by their lowest address: an open-addressing hash
/// table with linear probing, whose lookup is a short loop over a slice.
#[derive(Default)]
struct Guards {
    /// `(limit, top)`, or `(0, 0)` for a free slot; the length is zero or
    /// a power of two, and at most half the slots are used.
    slots: Vec<(usize, usize)>,
    used: usize,
}

impl Guards {
    /// The first slot to look at for `limit`.
    fn home(&self, limit: usize) -> usize {
        // Mappings are page-aligned: the bits above the page's are spread
        // by a multiplicative hash.
        ((limit >> 12).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) & (self.slots.len() - 1)
    }

    fn get(&self, limit: usize) -> Option<usize> {
        if self.slots.is_empty() || limit == 0 {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(limit);
        loop {
            let (l, top) = self.slots[i];
            if l == limit {
                return Some(top);
            }
            if l == 0 {
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    fn insert(&mut self, limit: usize, top: usize) {
        if 2 * (self.used + 1) > self.slots.len() {
            let len = (2 * self.slots.len()).max(16);
            let old = std::mem::replace(&mut self.slots, vec![(0, 0); len]);
            self.used = 0;
            for (l, t) in old {
                if l != 0 {
                    self.insert(l, t);
                }
            }
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(limit);
        while self.slots[i].0 != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i] = (limit, top);
        self.used += 1;
    }

    fn remove(&mut self, limit: usize) {
        if self.slots.is_empty() {
            return;
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(limit);
        loop {
            match self.slots[i].0 {
                0 => return,
                l if l == limit => break,
                _ => i = (i + 1) & mask,
            }
        }
        // Backward-shift deletion: move up every later entry of the run
        // that the hole would cut off from its home slot.
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let (l, _) = self.slots[j];
            if l == 0 {
                break;
            }
            let home = self.home(l);
            // Does `home` lie cyclically in (hole, j]? Then the entry can stay.
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                self.slots[hole] = self.slots[j];
                hole = j;
            }
        }
        self.slots[hole] = (0, 0);
        self.used -= 1;
    }
}

/// A stack mapped by this thread, in the registry until it is unmapped.
pub(crate) struct MappedStack(DefaultStack);

impl MappedStack {
    /// Maps a stack of `size` usable bytes and registers it.
    #[cold]
    pub(crate) fn new(size: usize) -> std::io::Result<Self> {
        let stack = DefaultStack::new(size)?;
        let (limit, top) = (stack.limit().get(), stack.base().get());
        change(|registry| {
            registry.by_limit.insert(limit, top);
            registry.guards.insert(limit, top);
        });
        Ok(MappedStack(stack))
    }

    /// The top of the mapping: the base of the stack.
    #[inline]
    pub(crate) fn top(&self) -> usize {
        self.0.base().get()
    }

    /// The lowest address of the mapping, where its guard page starts.
    #[inline]
    pub(crate) fn limit(&self) -> usize {
        self.0.limit().get()
    }
}

impl Drop for MappedStack {
    fn drop(&mut self) {
        // Unregistered before the `DefaultStack` unmaps it.
        let limit = self.limit();
        change(|registry| {
            registry.by_limit.remove(&limit);
            registry.guards.remove(limit);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::{COLORS, Guards, colored_top};

    #[test]
    fn colored_tops_spread_over_every_color_and_stay_aligned_and_close() {
        // Mappings (guard page included) of the default stack, of the
        // smallest, and of sizes between, laid out as the pool maps them:
        // a mapping and nothing else between consecutive tops.
        for (mapping, colors) in [
            ((1 << 20) + 4096, COLORS),
            ((32 << 10) + 4096, 4),
            ((64 << 10) + 4096, 8),
            ((128 << 10) + 4096, 16),
            ((256 << 10) + 4096, 32),
        ] {
            let mut seen = std::collections::BTreeSet::new();
            for i in 0..colors {
                let top = 0x7f00_0000_0000 + i * mapping;
                let colored = colored_top(top, top - mapping);
                assert!(colored <= top && top - colored < colors * 64);
                assert!(top - colored <= mapping / 128);
                assert_eq!(colored % 64, 0);
                seen.insert(colored % 4096);
            }
            assert_eq!(seen.len(), colors, "mapping {mapping}");
        }
    }

    #[test]
    fn guards_find_what_was_inserted_and_not_what_was_removed() {
        let mut g = Guards::default();
        let limits: Vec<usize> = (1..2000).map(|i| (i * 7919 % 4001 + 1) << 12).collect();
        for &l in &limits {
            g.insert(l, l + 1);
        }
        for (n, &l) in limits.iter().enumerate() {
            if n % 3 == 0 {
                g.remove(l);
            }
        }
        for (n, &l) in limits.iter().enumerate() {
            assert_eq!(g.get(l), (n % 3 != 0).then_some(l + 1), "limit {l:#x}");
        }
        assert_eq!(g.get(0x7777_7000_0000), None);
    }
}
