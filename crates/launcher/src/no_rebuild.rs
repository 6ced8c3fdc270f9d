//! The launchers without Go's encoder (the `dwarf` feature) cannot
//! re-create a variant whose DWARF is stored inflated: mgo gives such
//! bundles a launcher that can, so meeting one here means the bundle was
//! assembled by hand or damaged.

use crate::bundle::Bundle;
use crate::fail::Failure;
use crate::sys;
use mgo_format::Entry;

/// Refuses: see the module's documentation.
pub fn file(_: &Bundle, entry: &Entry) -> Result<sys::Mapping, Failure> {
    Err(Failure::Damaged(
        entry.level,
        b"its DWARF is stored inflated, and this launcher cannot deflate it",
    ))
}
