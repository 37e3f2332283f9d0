//! Empty: cargo resolves `[build-dependencies]` only for a package with a build script, and
//! this crate's build dependencies pin the features of the workspace's proc-macros.

fn main() {}
