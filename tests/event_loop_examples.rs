//! The event-loop examples (tutorial snippets 06, 07, 08) print exactly
//! what `tests/expected/NN_name.out` holds.
//!
//! The examples are built once, by the cargo and rustc of this test run,
//! with the same features, profile, target and target directory, then run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const EXAMPLES: &[&str] = &[
    "06_event_loop",
    "07_async_await",
    #[cfg(feature = "blocking")]
    "08_read_file_async",
];

fn examples_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // This binary is <target-dir>/[<triple>/]<profile>/deps/<name>-<hash>.
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe.parent().and_then(Path::parent).unwrap();
        let profile = profile_dir.file_name().unwrap().to_str().unwrap();
        let above = profile_dir.parent().unwrap();
        let is_triple = above
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.matches('-').count() >= 2)
            && !above.join(".rustc_info.json").exists();
        let (target_dir, triple) = if is_triple {
            (above.parent().unwrap(), above.file_name())
        } else {
            (above, None)
        };
        let cargo_path = Path::new(env!("CARGO"));
        let mut cargo = Command::new(cargo_path);
        // A toolchain's own cargo (as under `cargo +stable`) must use that
        // toolchain's rustc, not the one rust-toolchain.toml picks.
        let rustc = cargo_path.with_file_name("rustc");
        if rustc.exists() && std::env::var_os("RUSTC").is_none() {
            cargo.env("RUSTC", rustc);
        }
        cargo
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["build", "--quiet", "--no-default-features"])
            .arg("--target-dir")
            .arg(target_dir);
        for name in EXAMPLES {
            cargo.args(["--example", name]);
        }
        if cfg!(feature = "nightly") {
            cargo.args(["--features", "nightly"]);
        }
        if cfg!(feature = "blocking") {
            cargo.args(["--features", "blocking"]);
        }
        if let Some(triple) = triple {
            cargo.arg("--target").arg(triple);
        }
        match profile {
            "debug" => {}
            "release" => {
                cargo.arg("--release");
            }
            other => {
                cargo.args(["--profile", other]);
            }
        }
        let status = cargo.status().expect("cargo runs");
        assert!(status.success(), "building the examples failed: {cargo:?}");
        profile_dir.join("examples")
    })
}

fn check(example: &str) {
    let out = Command::new(examples_dir().join(example))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the example runs");
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

#[cfg(feature = "blocking")]
#[test]
fn example_08_read_file_async() {
    check("08_read_file_async");
}
