//! Each program's levels read, then encoded, laid out and placed through
//! `bundle::write`.

use super::target::Program;
use super::{Job, state};
use crate::bundle;
use crate::error::{Context, Result, fail, shown};
use crate::{interrupt, place};
use std::fs;
use std::os::unix::fs::PermissionsExt;

impl Job {
    /// Writes every program's bundle; the identities of those written as
    /// files, for the record.
    pub(super) fn write_programs(&self, programs: &[Program]) -> Result<Vec<state::Program>> {
        let mut written = Vec::new();
        for program in programs {
            interrupt::check()?;
            if let Some(identity) = self.write_program(program)? {
                written.push(state::Program {
                    temp_name: program.temp_name.clone(),
                    dest: program.dest.clone(),
                    identity,
                });
            }
        }
        Ok(written)
    }

    /// Writes one program's bundle; its identity, for the state, when it is
    /// a file.
    pub(super) fn write_program(&self, program: &Program) -> Result<Option<state::Identity>> {
        let describe = |e: &dyn std::fmt::Display| {
            fail(format!(
                "cannot write {}: {e}",
                crate::error::shown(&program.dest)
            ))
        };
        let Some((lowest, lowest_path)) = program.variants.first() else {
            return Ok(None);
        };
        // go created it with 0777 minus the umask: keep go's mode.
        let mode = fs::metadata(lowest_path)
            .map(|m| m.permissions().mode())
            .unwrap_or(0o755);
        if !place::is_elf(lowest_path) {
            // go build -o FILE on a library writes a package archive: what
            // go build writes, at the lowest level, is written.
            let bytes = fs::read(lowest_path).map_err(|e| describe(&e))?;
            crate::console::say(&format!(
                "{} is a package archive (not a main package): wrote go build's GOAMD64=v{lowest} output, not a bundle",
                crate::error::shown(&program.dest)
            ));
            place::place(&program.dest, &bytes, mode)?;
            return Ok(None);
        }
        let mut builds = Vec::with_capacity(program.variants.len());
        for (level, path) in &program.variants {
            let bytes = fs::read(path).with_context(|| {
                format!("cannot read go's output {}", crate::error::shown(path))
            })?;
            builds.push((*level, bytes));
        }
        let lowest_bytes = builds.first().map_or(&[][..], |(_, bytes)| &bytes[..]);
        let buildinfo = bundle::go_buildinfo(lowest_bytes).with_context(|| {
            format!(
                "cannot read the build information of go's GOAMD64=v{lowest} output {}",
                shown(lowest_path)
            )
        })?;
        let storage = bundle::Storage {
            compression: self.settings.compression,
            compress_text: &self.settings.compress_text,
            flags: self.settings.flags,
        };
        let flags = self.settings.flags;
        bundle::write(
            &program.dest,
            &builds,
            buildinfo,
            storage,
            mode,
            |placed, stored| match placed {
                place::Placed::Streamed => None,
                place::Placed::Written | place::Placed::Kept => {
                    state::identity_written(&program.dest, flags, stored)
                }
            },
        )
    }
}
