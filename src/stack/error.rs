//! [`StackError`], and finding out what ran out when a stack could not be
//! mapped: the process's memory mappings, its address space, or memory.
//!
//! `mmap` and `mprotect` say only `ENOMEM` for three different limits, each
//! with its own remedy. So when mapping fails, cogen looks at the process
//! right then ([`Usage::now`]) and [`diagnose`]s which one it hit:
//!
//! | what ran out | how it is recognised | what to do |
//! |---|---|---|
//! | memory mappings | `/proc/self/maps` has about `vm.max_map_count` lines | raise `vm.max_map_count`, fewer live coroutines, stackless ones |
//! | address space | `RLIMIT_AS` (`ulimit -v`) is set and the stack does not fit under it | raise the limit, fewer live coroutines, smaller stacks |
//! | memory | neither (the kernel's overcommit policy or a memory cgroup refused) | fewer live coroutines, smaller stacks |

use std::fmt;
use std::fs::File;
use std::io::{self, Read};

use super::page_size;

/// A stack could not be mapped, so a coroutine could not be created.
///
/// The message says what ran out, found when the mapping failed: the
/// process's memory mappings (Linux's `vm.max_map_count`, which caps live
/// guarded stacks near 32,000 by default), its address space (`RLIMIT_AS`,
/// `ulimit -v`) or memory, and what to do about it.
#[derive(Debug)]
pub struct StackError {
    size: usize,
    source: io::Error,
    cause: Cause,
}

impl StackError {
    /// An error for a request that can never be mapped, whatever the limits.
    pub(super) fn invalid(size: usize, source: io::Error) -> Self {
        StackError {
            size,
            source,
            cause: Cause::Other,
        }
    }

    /// Mapping a stack of `size` bytes failed with `source`: finds out why,
    /// now, while the process is still in the state that made it fail.
    #[cold]
    pub(super) fn mapping_failed(size: usize, source: io::Error) -> Self {
        let cause = if source.raw_os_error() == Some(libc::ENOMEM) {
            diagnose(size, &Usage::now())
        } else {
            Cause::Other
        };
        StackError {
            size,
            source,
            cause,
        }
    }

    /// The stack size that was requested, in bytes.
    pub fn stack_size(&self) -> usize {
        self.size
    }

    /// The operating system's error.
    pub fn io_error(&self) -> &io::Error {
        &self.source
    }
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot map a {} KiB coroutine stack: {}",
            self.size / 1024,
            self.source
        )?;
        self.cause.explain(self.size, f)
    }
}

impl std::error::Error for StackError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// What ran out, as far as cogen could tell when the mapping failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cause {
    /// The process has `mappings` memory mappings and may have `max`
    /// (`vm.max_map_count`).
    MapCount { mappings: usize, max: usize },
    /// The address-space limit (`RLIMIT_AS`) of `limit` bytes, of which
    /// `used` were mapped (if known).
    AddressSpace { used: Option<u64>, limit: u64 },
    /// No per-process limit was reached: the system refused the memory.
    Memory,
    /// Not a shortage (or not one cogen recognises): the OS error says it all.
    Other,
}

/// What the process had when a mapping failed; `None` where unknown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Usage {
    /// Lines of `/proc/self/maps`: one per mapping.
    mappings: Option<usize>,
    /// `/proc/sys/vm/max_map_count`.
    max_mappings: Option<usize>,
    /// Bytes of address space mapped (`VmSize`).
    address_space: Option<u64>,
    /// The soft `RLIMIT_AS` in bytes, `None` when unlimited.
    address_space_limit: Option<u64>,
}

/// A mapping count this close to `vm.max_map_count` is the limit: a stack
/// needs two more mappings, and `/proc/self/maps` may list a pseudo-mapping
/// or two that the kernel does not count.
const MAP_COUNT_SLACK: usize = 8;

/// Which limit an `ENOMEM` for a `size`-byte stack hit, given the `usage`.
fn diagnose(size: usize, usage: &Usage) -> Cause {
    if let (Some(mappings), Some(max)) = (usage.mappings, usage.max_mappings)
        && mappings + MAP_COUNT_SLACK >= max
    {
        return Cause::MapCount { mappings, max };
    }
    if let Some(limit) = usage.address_space_limit {
        // The stack's mapping: its size and a guard page, rounded (generously).
        let needed = size as u64 + 2 * page_size() as u64;
        if usage
            .address_space
            .is_none_or(|used| used.saturating_add(needed) > limit)
        {
            return Cause::AddressSpace {
                used: usage.address_space,
                limit,
            };
        }
    }
    Cause::Memory
}

impl Cause {
    /// Completes the message: what ran out and what to do about it.
    fn explain(self, size: usize, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MIB: u64 = 1024 * 1024;
        match self {
            Cause::MapCount { mappings, max } => write!(
                f,
                "; the process has {mappings} memory mappings and may have {max} \
                 (vm.max_map_count), and each guarded stack takes two, so about {} stackful \
                 coroutines can be alive at once: drop finished coroutines, raise the limit \
                 (`sysctl -w vm.max_map_count=262144`), or use stackless coroutines (cogen's \
                 `nightly` feature) past that",
                max / 2
            ),
            Cause::AddressSpace { used, limit } => {
                write!(
                    f,
                    "; the process's address-space limit (RLIMIT_AS, `ulimit -v`) is {} MiB",
                    limit / MIB
                )?;
                if let Some(used) = used {
                    write!(f, " and {} MiB of it is mapped", used / MIB)?;
                }
                write!(
                    f,
                    ", and each stack reserves all of its {} KiB and a guard page even though \
                     only the pages it touches use memory: raise the limit (`ulimit -v`), drop \
                     finished coroutines, or give coroutines smaller stacks \
                     (`Builder::stack_size`)",
                    size / 1024
                )
            }
            Cause::Memory => f.write_str(
                "; no per-process limit was reached, the system refused the memory (see the \
                 kernel's overcommit policy, vm.overcommit_memory, and any memory cgroup \
                 limit): drop finished coroutines or give coroutines smaller stacks \
                 (`Builder::stack_size`)",
            ),
            Cause::Other => Ok(()),
        }
    }
}

impl Usage {
    /// Reads the process's usage. It runs when mappings may have run out,
    /// so it maps nothing: files are read into a buffer on the stack.
    fn now() -> Self {
        Usage {
            mappings: count_lines("/proc/self/maps"),
            max_mappings: read_number("/proc/sys/vm/max_map_count", 0),
            // The first field of statm is VmSize, in pages.
            address_space: read_number("/proc/self/statm", 0)
                .map(|pages| pages as u64 * page_size() as u64),
            address_space_limit: address_space_limit(),
        }
    }
}

/// The lines of the file at `path`, counted without allocating.
fn count_lines(path: &str) -> Option<usize> {
    let mut file = File::open(path).ok()?;
    let mut buffer = [0_u8; 8192];
    let mut lines = 0;
    loop {
        match file.read(&mut buffer) {
            Ok(0) => return Some(lines),
            Ok(n) => lines += buffer[..n].iter().filter(|&&b| b == b'\n').count(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

/// The `field`th whitespace-separated number at the start of the file at
/// `path`, read without allocating.
fn read_number(path: &str, field: usize) -> Option<usize> {
    let mut file = File::open(path).ok()?;
    let mut buffer = [0_u8; 256];
    let n = file.read(&mut buffer).ok()?;
    std::str::from_utf8(&buffer[..n])
        .ok()?
        .split_ascii_whitespace()
        .nth(field)?
        .parse()
        .ok()
}

/// The soft `RLIMIT_AS`, or `None` if unlimited or unknown.
fn address_space_limit() -> Option<u64> {
    // SAFETY: getrlimit only writes the struct it is given.
    let limit = unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_AS, &mut limit) != 0 {
            return None;
        }
        limit.rlim_cur
    };
    #[allow(clippy::useless_conversion)] // rlim_t is not u64 on every platform
    (limit != libc::RLIM_INFINITY).then(|| u64::try_from(limit).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;
    const STACK: usize = 1024 * 1024;

    fn message(cause: Cause) -> String {
        StackError {
            size: STACK,
            source: io::Error::from_raw_os_error(libc::ENOMEM),
            cause,
        }
        .to_string()
    }

    #[test]
    fn at_the_mapping_limit_the_mapping_count_is_blamed() {
        let usage = Usage {
            mappings: Some(65_529),
            max_mappings: Some(65_530),
            address_space: Some(40_000 * MIB),
            address_space_limit: None,
        };
        let cause = diagnose(STACK, &usage);
        assert_eq!(
            cause,
            Cause::MapCount {
                mappings: 65_529,
                max: 65_530
            }
        );
        let message = message(cause);
        assert!(
            message.starts_with("cannot map a 1024 KiB coroutine stack: "),
            "{message}"
        );
        for needle in [
            "has 65529 memory mappings and may have 65530 (vm.max_map_count)",
            "about 32765 stackful coroutines",
            "sysctl -w vm.max_map_count=",
            "stackless",
        ] {
            assert!(message.contains(needle), "{needle:?} not in {message}");
        }
        assert!(!message.contains("RLIMIT_AS"), "{message}");
    }

    #[test]
    fn the_mapping_count_is_blamed_even_under_an_address_space_limit() {
        let usage = Usage {
            mappings: Some(65_525),
            max_mappings: Some(65_530),
            address_space: Some(100 * MIB),
            address_space_limit: Some(200_000 * MIB),
        };
        assert!(matches!(diagnose(STACK, &usage), Cause::MapCount { .. }));
    }

    #[test]
    fn under_an_exhausted_address_space_limit_the_limit_is_blamed() {
        let usage = Usage {
            mappings: Some(700),
            max_mappings: Some(65_530),
            address_space: Some(511 * MIB + MIB / 2),
            address_space_limit: Some(512 * MIB),
        };
        let cause = diagnose(STACK, &usage);
        assert_eq!(
            cause,
            Cause::AddressSpace {
                used: Some(511 * MIB + MIB / 2),
                limit: 512 * MIB
            }
        );
        let message = message(cause);
        for needle in [
            "address-space limit (RLIMIT_AS, `ulimit -v`) is 512 MiB",
            "511 MiB of it is mapped",
            "raise the limit",
            "smaller stacks",
        ] {
            assert!(message.contains(needle), "{needle:?} not in {message}");
        }
        assert!(!message.contains("max_map_count"), "{message}");
    }

    #[test]
    fn with_room_under_every_limit_memory_is_blamed() {
        let usage = Usage {
            mappings: Some(700),
            max_mappings: Some(65_530),
            address_space: Some(100 * MIB),
            address_space_limit: Some(512 * MIB),
        };
        assert_eq!(diagnose(STACK, &usage), Cause::Memory);
        let unlimited = Usage {
            address_space_limit: None,
            ..usage
        };
        assert_eq!(diagnose(STACK, &unlimited), Cause::Memory);
        let message = message(Cause::Memory);
        assert!(message.contains("vm.overcommit_memory"), "{message}");
        assert!(!message.contains("max_map_count"), "{message}");
        assert!(!message.contains("RLIMIT_AS"), "{message}");
    }

    #[test]
    fn without_proc_an_address_space_limit_is_blamed_and_otherwise_memory() {
        let limited = Usage {
            address_space_limit: Some(512 * MIB),
            ..Usage::default()
        };
        assert!(matches!(
            diagnose(STACK, &limited),
            Cause::AddressSpace { used: None, .. }
        ));
        assert_eq!(diagnose(STACK, &Usage::default()), Cause::Memory);
    }

    #[test]
    fn this_process_usage_can_be_read() {
        let usage = Usage::now();
        if cfg!(target_os = "linux") {
            assert!(usage.mappings.is_some_and(|m| m > 5), "{usage:?}");
            assert!(usage.max_mappings.is_some(), "{usage:?}");
            assert!(usage.address_space.is_some_and(|a| a > MIB), "{usage:?}");
        }
    }

    #[test]
    fn a_non_shortage_error_adds_nothing() {
        let error = StackError::mapping_failed(STACK, io::Error::from_raw_os_error(libc::EINVAL));
        assert_eq!(error.cause, Cause::Other);
        assert_eq!(
            error.to_string(),
            format!(
                "cannot map a 1024 KiB coroutine stack: {}",
                io::Error::from_raw_os_error(libc::EINVAL)
            )
        );
    }
}
