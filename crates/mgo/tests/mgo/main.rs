//! mgo's integration tests: the real `mgo` binary, the real Go toolchain,
//! the produced executables run for real (natively and under qemu-user).
//!
//! A test that lacks a tool it needs fails with a message saying what to
//! install; it never skips. `.ci/run` installs everything.

// A test fails by panicking; the workspace's lints are for production code.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::expect_used,
    clippy::indexing_slicing
)]

mod support;

mod build;
mod bundle_file;
mod compressed;
mod cpu_matrix;
mod debuggers;
mod docs;
mod drop_in;
mod dwarf;
mod examples;
mod file_start;
mod goflags;
mod gotest;
mod hostile;
mod inspect;
mod join;
mod launcher;
mod limits;
mod mapped;
mod output;
mod privileged;
mod rebuild;
