//! `mgo join -o OUT FILE...`: one bundle from executables built elsewhere
//! (a CI matrix, Bazel, goreleaser, or a C or Rust toolchain). Each input
//! is read and classified (`classify.rs`), the set is checked to be one
//! program with one file per level, and the bundle is written through
//! `bundle::write`, as `mgo build` writes it: the same four Go builds give
//! the same bytes either way. Nothing is written unless every input is
//! accepted.

mod classify;

use crate::bundle;
use crate::cli::JoinInput;
use crate::error::{Result, fail, shown};
use crate::{interrupt, settings};
use classify::{Input, Maker};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// One accepted input.
struct Accepted {
    /// As the command line named it: `v3=app` or `app`.
    named: String,
    path: PathBuf,
    level: u8,
    input: Input,
    bytes: Vec<u8>,
}

/// Joins `inputs` into a bundle at `output`.
pub fn run(inputs: &[JoinInput], output: &Path) -> Result<()> {
    let (compress_text, compression) = settings::compression_mode()?;
    let flags = settings::launch_flags()?;
    // As for mgo build: a signal stops the write at its next step, which
    // leaves no temporary file, and the status is 130.
    interrupt::install();
    let mut accepted: Vec<Accepted> = Vec::with_capacity(inputs.len());
    for given in inputs {
        let one = accept(given)?;
        check_against(&one, &accepted)?;
        accepted.push(one);
    }
    accepted.sort_by_key(|a| a.level);
    let Some(lowest) = accepted.first() else {
        return Err(fail(
            "join: name at least one executable: mgo join -o OUT FILE...",
        ));
    };
    let buildinfo = match lowest.input.maker {
        Maker::Go(_) => bundle::go_buildinfo(&lowest.bytes)?,
        Maker::Other => Vec::new(),
    };
    let mode = fs::metadata(&lowest.path).map_or(0o755, |m| executable(m.permissions().mode()));
    let builds: Vec<(u8, Vec<u8>)> = accepted.into_iter().map(|a| (a.level, a.bytes)).collect();
    let storage = bundle::Storage {
        compression,
        compress_text: &compress_text,
        flags,
    };
    bundle::write(output, &builds, buildinfo, storage, mode, |_, _| ())
}

/// The bundle's mode from the lowest input's: executable wherever it is
/// readable, since artifacts handed between CI jobs often lose their
/// execute bits (GitHub's upload-artifact keeps none), and a bundle that
/// cannot run is of no use.
fn executable(mode: u32) -> u32 {
    let permissions = mode & 0o777;
    permissions | (permissions & 0o444) >> 2
}

/// The bytes of the regular file at `path` (a FIFO or a device is refused,
/// not read until it ends).
fn read_regular(path: &Path) -> std::result::Result<Vec<u8>, bundle::read::OpenError> {
    use std::io::Read;
    let mut file = bundle::read::open_regular(path)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(bundle::read::OpenError::Io)?;
    Ok(bytes)
}

/// Reads and classifies one input, and settles its level.
fn accept(given: &JoinInput) -> Result<Accepted> {
    let named = match given.level {
        Some(level) => format!("v{level}={}", shown(&given.path)),
        None => shown(&given.path),
    };
    let refuse = |why: &str| fail(format!("join: {named}: {why}"));
    let bytes = read_regular(&given.path).map_err(|e| refuse(&format!("cannot read it: {e}")))?;
    let input = classify::classify(&bytes).map_err(|why| refuse(&why))?;
    let level = match (given.level, input.marker) {
        (Some(level), _) if !input.accepts(level) => {
            let marker = input.marker.unwrap_or(0);
            return Err(refuse(&match input.maker {
                Maker::Go(_) => format!(
                    "the file is a GOAMD64=v{marker} build: name it v{marker}= or give the v{level} build"
                ),
                Maker::Other => format!(
                    "its ISA note says it needs x86-64-v{marker}: name it v{marker}= or higher, or give the v{level} build"
                ),
            }));
        }
        (Some(level), _) => level,
        (None, Some(marker)) => marker,
        (None, None) => {
            return Err(refuse(&match input.maker {
                Maker::Go(_) => format!(
                    "no level: its Go build information has no GOAMD64 setting: name its level, e.g. v3={}",
                    shown(&given.path)
                ),
                Maker::Other => format!(
                    "no level: it has no ISA note (gcc writes one with -mneeded): name its level, e.g. v3={}",
                    shown(&given.path)
                ),
            }));
        }
    };
    Ok(Accepted {
        named,
        path: given.path.clone(),
        level,
        input,
        bytes,
    })
}

/// Refuses `one` where it does not belong with the inputs accepted before
/// it: a level given twice, a Go build beside another program, or a Go
/// build of another program.
fn check_against(one: &Accepted, before: &[Accepted]) -> Result<()> {
    let refuse = |why: String| fail(format!("join: {}: {why}", one.named));
    if let Some(other) = before.iter().find(|a| a.level == one.level) {
        return Err(refuse(format!(
            "level v{} again ({} is v{}): give one executable per level{}",
            one.level,
            other.named,
            other.level,
            match one.input.maker {
                Maker::Go(_) => "",
                Maker::Other =>
                    ", naming each one's level as v3=FILE (gcc writes -march's level into the ISA note only with -mneeded)",
            }
        )));
    }
    let Some(first) = before.first() else {
        return Ok(());
    };
    match (&first.input.maker, &one.input.maker) {
        (Maker::Go(a), Maker::Go(b)) => match classify::differs(a, b) {
            Some(difference) => Err(refuse(format!(
                "not a build of the same program as {}: they differ in {difference}: build every level from the same sources with the same settings, GOAMD64 aside",
                first.named
            ))),
            None => Ok(()),
        },
        (Maker::Go(_), Maker::Other) => Err(refuse(format!(
            "not a Go build, but {} is: join builds of one program",
            first.named
        ))),
        (Maker::Other, Maker::Go(_)) => Err(refuse(format!(
            "a Go build, but {} is not: join builds of one program",
            first.named
        ))),
        (Maker::Other, Maker::Other) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::executable;

    #[test]
    fn the_bundle_runs_wherever_the_lowest_input_could_be_read() {
        assert_eq!(executable(0o100755), 0o755);
        assert_eq!(executable(0o100644), 0o755);
        assert_eq!(executable(0o100600), 0o700);
        assert_eq!(executable(0o100640), 0o750);
        assert_eq!(executable(0o100711), 0o711);
    }
}
