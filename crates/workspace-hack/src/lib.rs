//! Nothing to use: this crate exists for its `Cargo.toml`, which pins one feature set for the
//! whole workspace (see there).
