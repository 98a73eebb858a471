//! Streaming 200 MB of generated text through a pipeline keeps memory flat.
//!
//! A counting global allocator tracks the bytes live on the heap and their
//! peak. The pipeline reads the input in 64 KiB chunks, splits it into lines,
//! measures them in a stackless stage (nightly) or a stackful one, and
//! aggregates windows of lines in a stackful stage. The test checks the
//! result against a count made without the pipeline, and checks that the
//! peak of live heap bytes at the end of the stream is no higher than it was
//! after the first few megabytes (plus a small margin), far below the input
//! size.
//!
//! This file holds a single test so that no other test allocates while it
//! measures.
#![cfg_attr(cogen_nightly, feature(coroutines))]

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};

use cogen::pipeline::{PipelineExt, PipelineItem, read_chunks};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, only counting sizes on the way.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size >= layout.size() {
            let grow = new_size - layout.size();
            let live = LIVE.fetch_add(grow, Ordering::Relaxed) + grow;
            PEAK.fetch_max(live, Ordering::Relaxed);
            ALLOCATED.fetch_add(grow, Ordering::Relaxed);
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

// The stackless stage (its syntax does not parse on stable Rust).
#[cfg(cogen_nightly)]
#[path = "nightly/streaming.rs"]
mod stackless;

const INPUT_BYTES: usize = 200 * 1000 * 1000;
const CHUNK: usize = 64 * 1024;

/// A deterministic block of text: lines of varying length (1 to 400 bytes
/// plus the newline), repeated to make the input.
fn template() -> Vec<u8> {
    let mut block = Vec::new();
    let mut x: u32 = 12345;
    while block.len() < 60_000 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let len = 1 + (x >> 16) as usize % 400;
        block.extend((0..len).map(|i| b'a' + ((x as usize + i) % 26) as u8));
        block.push(b'\n');
    }
    block
}

/// Generates `INPUT_BYTES` of text by repeating the template, without ever
/// holding more than the template in memory.
struct Generated {
    block: Vec<u8>,
    offset: usize,
    left: usize,
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.left).min(self.block.len() - self.offset);
        buf[..n].copy_from_slice(&self.block[self.offset..self.offset + n]);
        self.offset = (self.offset + n) % self.block.len();
        self.left -= n;
        Ok(n)
    }
}

fn line_lengths(
    lines: impl Iterator<Item = PipelineItem<String>> + 'static,
) -> impl Iterator<Item = PipelineItem<usize>> {
    #[cfg(cogen_nightly)]
    return stackless::line_lengths(lines);
    #[cfg(not(cogen_nightly))]
    return lines.stage("lengths", |co, up| {
        for line in up {
            co.suspend(line.len());
        }
    });
}

#[test]
fn a_200_mb_stream_keeps_peak_memory_flat() {
    let block = template();
    // The expected answer, counted directly over the repeated template.
    let (mut lines, mut text_bytes) = (0u64, 0u64);
    let mut offset = 0;
    let mut current = 0u64;
    let mut pending = false;
    for _ in 0..INPUT_BYTES {
        if block[offset] == b'\n' {
            lines += 1;
            text_bytes += current;
            current = 0;
            pending = false;
        } else {
            current += 1;
            pending = true;
        }
        offset = (offset + 1) % block.len();
    }
    if pending {
        lines += 1;
        text_bytes += current;
    }

    let reader = Generated {
        block,
        offset: 0,
        left: INPUT_BYTES,
    };
    let mut windows = line_lengths(read_chunks(reader, CHUNK).lines())
        .windowed(1000, |w: &[usize]| {
            (w.len() as u64, w.iter().sum::<usize>() as u64)
        });

    // Warm up over the first ~5 MB, then measure the peak from there on.
    let (mut seen_lines, mut seen_bytes) = (0u64, 0u64);
    while seen_bytes + seen_lines < 5_000_000 {
        let (n, bytes) = windows.next().unwrap().unwrap();
        seen_lines += n;
        seen_bytes += bytes;
    }
    let warm_peak = PEAK.load(Ordering::Relaxed);
    let allocated_before = ALLOCATED.load(Ordering::Relaxed);
    for window in windows {
        let (n, bytes) = window.unwrap();
        seen_lines += n;
        seen_bytes += bytes;
    }
    let end_peak = PEAK.load(Ordering::Relaxed);
    let streamed = ALLOCATED.load(Ordering::Relaxed) - allocated_before;

    eprintln!(
        "{INPUT_BYTES} bytes, {lines} lines: peak live heap {warm_peak} bytes after warm-up, \
         {end_peak} at the end; {streamed} bytes allocated on the way"
    );
    assert_eq!(seen_lines, lines);
    assert_eq!(seen_bytes, text_bytes);
    // The data really went through the heap: every chunk and line was
    // allocated on its way through...
    assert!(streamed > INPUT_BYTES, "streamed {streamed} bytes");
    // ...but never more of it at once after the warm-up than before.
    assert!(
        end_peak <= warm_peak + 64 * 1024,
        "peak grew from {warm_peak} to {end_peak} bytes"
    );
    assert!(end_peak < 4 << 20, "peak {end_peak} bytes");
}
