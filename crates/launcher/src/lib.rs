//! The launcher's decisions, kept apart from its contact with the OS so that
//! they can be tested on the host with tables of cases: which GOAMD64 level a
//! CPU supports, what the environment asks for, how an ELF executable is
//! mapped, how the auxiliary vector changes, the memfd's name, and how
//! echoed values are made safe to print.
//!
//! The binary (`main.rs` and its modules) is the `no_std`, `no_main` program
//! prepended to every bundle; it only gathers inputs, calls these functions
//! and acts.
#![cfg_attr(not(test), no_std)]

pub mod auxv;
pub mod cpu;
pub mod elf;
pub mod env;
pub mod hash;
pub mod name;
pub mod text;
