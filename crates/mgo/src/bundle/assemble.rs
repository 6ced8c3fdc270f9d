//! From executables to a placed bundle: each level encoded, the launcher
//! its mode needs, the layout, and the file placed. `mgo build` and
//! `mgo join` both write through here, so that the same executables give
//! the same bundle whichever command was given them.

use super::{Plan, launchers};
use crate::encode::{self, Mode};
use crate::error::{Context, Result, shown};
use crate::{interrupt, place};
use mgo_format::StoredVariant;
use std::path::Path;

/// How the variants are stored and started: what `MGO_COMPRESS` and
/// `MGO_LAUNCH` asked for.
#[derive(Debug, Clone, Copy)]
pub struct Storage<'a> {
    /// The mode, parsed.
    pub compression: Mode,
    /// `MGO_COMPRESS` as given, for messages.
    pub compress_text: &'a str,
    /// The table flags.
    pub flags: u32,
}

/// Writes the bundle of `builds` (level, executable; ascending levels) to
/// `dest` with file mode `mode`; `buildinfo` is the lowest level's
/// `.go.buildinfo`, empty for a program not built by Go. `placed` sees how
/// the file was placed and what the table holds, for callers that record
/// it.
pub fn write<T>(
    dest: &Path,
    builds: &[(u8, Vec<u8>)],
    buildinfo: Vec<u8>,
    storage: Storage<'_>,
    mode: u32,
    placed: impl FnOnce(place::Placed, &[StoredVariant<'_>]) -> T,
) -> Result<T> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let encoded = encode::encode(builds, storage.compression, threads);
    interrupt::check()?;
    let encoded = encoded.with_context(|| {
        format!(
            "cannot bundle {}: MGO_COMPRESS={}",
            shown(dest),
            storage.compress_text
        )
    })?;
    let stored: Vec<_> = encoded.iter().map(encode::Encoded::as_stored).collect();
    let launcher = launchers::for_encoded(storage.compression, &encoded)?;
    let plan = Plan::new(launcher, stored.clone(), storage.flags, buildinfo)
        .with_context(|| format!("cannot lay out {}", shown(dest)))?;
    let how = place::place(dest, &plan, mode)?;
    Ok(placed(how, &stored))
}
