//! Tutorial snippet 08: reading a file without blocking the loop.
//!
//! The tutorial's "non-blocking" read blocks (its body never yields), and
//! its `await` returns the length of "cannot resume dead coroutine" (28)
//! instead of the file's (40). Here `fs::read_to_string` runs on a thread
//! pool while the task parks and other tasks run, and an error is an
//! `io::Error` value. A second read of a missing file shows the error path.

use std::io;
use std::path::{Path, PathBuf};

use cogen::event_loop::{EventLoop, JoinHandle, fs, spawn};

fn read_file_async(filename: PathBuf) -> JoinHandle<io::Result<String>> {
    spawn(move || fs::read_to_string(filename))
}

fn main() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data");
    let ev = EventLoop::new();
    ev.block_on(move || {
        for name in ["myfile.txt", "no_such_file.txt"] {
            let task = read_file_async(data.join(name));
            match task.join().expect("the read task does not panic") {
                Ok(content) => println!("File length:\t{}", content.len()),
                Err(err) => println!("Error:\t{err}"),
            }
        }
    })
    .expect("no deadlock");
}
