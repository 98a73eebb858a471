//! Runs every program in `examples/` and compares its standard output, byte
//! for byte, with `tests/expected/<name>.out`.
//!
//! The examples are built once per test run, by the same cargo, with the
//! same features, profile, target and target directory as this test, so a
//! stale binary is never compared and nothing is rebuilt needlessly.
//!
//! To add an example, add one line to the `examples!` list at the bottom
//! (with `#[cfg(feature = "...")]` in front if it needs a feature) and put
//! its expected output in `tests/expected/`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Where this build's example binaries live, after building them all once.
fn examples_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // This test binary is <target-dir>/[<triple>/]<profile>/deps/examples-<hash>.
        let exe = std::env::current_exe().expect("path of the test binary");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test binary lives in <profile>/deps");
        let profile = profile_dir.file_name().expect("profile directory name");
        let above = profile_dir.parent().expect("target directory");
        let (target_dir, triple) = if is_target_triple_dir(above) {
            (above.parent().expect("target directory"), above.file_name())
        } else {
            (above, None)
        };

        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["build", "--quiet", "--examples", "--no-default-features"])
            .arg("--target-dir")
            .arg(target_dir);
        let features = enabled_features();
        if !features.is_empty() {
            cargo.arg("--features").arg(features.join(","));
        }
        if let Some(triple) = triple {
            cargo.arg("--target").arg(triple);
        }
        match profile.to_str() {
            Some("debug") => {}
            Some("release") => {
                cargo.arg("--release");
            }
            _ => {
                cargo.arg("--profile").arg(profile);
            }
        }
        let status = cargo.status().expect("run cargo to build the examples");
        assert!(status.success(), "building the examples failed: {cargo:?}");
        profile_dir.join("examples")
    })
}

/// True for `<target-dir>/<triple>` (a `--target` build), false for the
/// target directory itself, which holds cargo's `.rustc_info.json`.
fn is_target_triple_dir(dir: &Path) -> bool {
    let looks_like_triple = dir
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.matches('-').count() >= 2);
    looks_like_triple && !dir.join(".rustc_info.json").exists()
}

/// The crate features this test was built with, to build the examples alike.
fn enabled_features() -> Vec<&'static str> {
    let mut features = Vec::new();
    if cfg!(feature = "nightly") {
        features.push("nightly");
    }
    if cfg!(feature = "sanitizer") {
        features.push("sanitizer");
    }
    features
}

/// Runs example `name` and checks its stdout against `tests/expected/<name>.out`.
fn check_example(name: &str) {
    let binary = examples_dir().join(name);
    let output = Command::new(&binary)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
    let expected_path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/expected")
        .join(format!("{name}.out"));
    let expected = std::fs::read(&expected_path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", expected_path.display()));
    assert!(
        output.status.success(),
        "example {name} failed with {}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    if output.stdout != expected {
        panic!(
            "example {name}: stdout differs from {}\n--- expected\n{}\n--- actual\n{}\n--- stderr\n{}",
            expected_path.display(),
            String::from_utf8_lossy(&expected).escape_debug(),
            String::from_utf8_lossy(&output.stdout).escape_debug(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// One `#[test]` per example: `test_name => "example_name",`.
macro_rules! examples {
    ($($(#[$attr:meta])* $test:ident => $name:literal,)*) => {
        $(
            $(#[$attr])*
            #[test]
            fn $test() {
                check_example($name);
            }
        )*
    };
}

examples! {
    ex01_create_resume => "01_create_resume",
    ex02_status => "02_status",
    ex03_resume_args => "03_resume_args",
    ex04_yield_receive => "04_yield_receive",
    ex05_producer_consumer => "05_producer_consumer",
    ex09_error_handling => "09_error_handling",
    ex10_forgot_resume => "10_forgot_resume",
    ex11_infinite_loop => "11_infinite_loop",
}
