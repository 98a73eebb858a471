//! Turns on the nightly-only parts (`cfg(cogen_nightly)`) when the `nightly`
//! feature is on (it is by default) *and* the compiler is a nightly (or
//! dev) build. So a crate on stable Rust that depends on cogen builds with
//! no configuration (it just gets no stackless adapters), while nightly users
//! get everything.

use std::env;
use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(cogen_nightly)");
    println!("cargo::rerun-if-env-changed=RUSTC");
    println!("cargo::rerun-if-env-changed=RUSTC_BOOTSTRAP");
    if env::var_os("CARGO_FEATURE_NIGHTLY").is_some() && compiler_is_nightly() {
        println!("cargo::rustc-cfg=cogen_nightly");
    }
}

/// True if `rustc -V` names a nightly or dev compiler (or unstable features
/// are forced on with `RUSTC_BOOTSTRAP=1`).
fn compiler_is_nightly() -> bool {
    if env::var_os("RUSTC_BOOTSTRAP").is_some_and(|v| v == "1") {
        return true;
    }
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let Ok(out) = Command::new(rustc).arg("-V").output() else {
        return false;
    };
    let version = String::from_utf8_lossy(&out.stdout);
    version.contains("-nightly") || version.contains("-dev")
}
