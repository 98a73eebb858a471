//! Placeholder: filled in by the issue that owns this benchmark.
fn main() {}
