//! Turns on the nightly-only parts (`cfg(cogen_nightly)`) when the `nightly`
//! feature is on (it is by default) *and* the compiler is a nightly (or
//! dev) build. So a crate on stable Rust that depends on cogen builds with
//! no configuration (it just gets no stackless adapters), while nightly users
//! get everything.
//!
//! Also names the targets where a socket's single read and write are
//! direct system calls (`cfg(cogen_direct_io)`, see `src/event_loop/net/sys.rs`):
//! Linux on the architectures whose kernels have had `recvfrom` and `sendto`
//! as system calls of their own since the oldest Linux Rust supports.

use std::env;
use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(cogen_nightly)");
    println!("cargo::rerun-if-env-changed=RUSTC");
    println!("cargo::rerun-if-env-changed=RUSTC_BOOTSTRAP");
    if env::var_os("CARGO_FEATURE_NIGHTLY").is_some() && compiler_is_nightly() {
        println!("cargo::rustc-cfg=cogen_nightly");
    }
    println!("cargo::rustc-check-cfg=cfg(cogen_direct_io)");
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if os == "linux" && ["x86_64", "aarch64", "riscv64", "loongarch64"].contains(&arch.as_str()) {
        println!("cargo::rustc-cfg=cogen_direct_io");
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
