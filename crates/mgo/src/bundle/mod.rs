//! The bundle as an ELF file, both ways: laying out and writing a bundle
//! from encoded levels (`layout`), the launchers embedded at its start
//! (`launchers`), the symbol table that names every level's functions where
//! they lie in the file (`symbols`), from executables to a placed file
//! (`assemble`, shared by `mgo build` and `mgo join`), and reading one back (`read`), Go's
//! build information included (`buildinfo`).

mod assemble;
pub mod buildinfo;
pub mod launchers;
mod layout;
pub mod read;
mod symbols;

pub use assemble::{Storage, write};
pub use layout::{Plan, go_buildinfo};
