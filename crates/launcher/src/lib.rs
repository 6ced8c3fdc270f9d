//! The launcher's decisions, kept apart from its contact with the OS so that
//! they can be tested on the host with tables of cases: which GOAMD64 level a
//! CPU supports, what the environment asks for, and the memfd's name.
//!
//! The binary (`main.rs`) is the `no_std`, `no_main` program prepended to
//! every bundle; it only gathers inputs, calls these functions and acts.
#![cfg_attr(not(test), no_std)]

pub mod cpu;
pub mod env;
pub mod name;
