//! Criterion benches live beside this file; see `Cargo.toml` for the targets.
