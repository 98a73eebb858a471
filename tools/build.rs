//! Turns on `cfg(cogen_nightly)` for the bench workloads that `op_count`
//! includes from `benches/workloads/`: the tools always build on nightly
//! (the repository's rust-toolchain.toml), so the nightly ids are always in.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(cogen_nightly)");
    println!("cargo::rustc-cfg=cogen_nightly");
}
