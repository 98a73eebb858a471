//! The event-loop examples (tutorial snippets 06, 07, 08) print exactly
//! what `tests/expected/NN_name.out` holds.

use std::process::Command;

fn check(example: &str) {
    let out = Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--example", example])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "example {example} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = std::fs::read_to_string(format!(
        "{}/tests/expected/{example}.out",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        expected,
        "example {example}"
    );
}

#[test]
fn example_06_event_loop() {
    check("06_event_loop");
}

#[test]
fn example_07_async_await() {
    check("07_async_await");
}

#[test]
fn example_08_read_file_async() {
    check("08_read_file_async");
}
