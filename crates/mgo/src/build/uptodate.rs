//! The up-to-date shortcut: the record of the last run (`state.rs`), the
//! sources only higher levels read, and one go build of the lowest level
//! that decides (docs/DESIGN.md, "Up-to-date rebuilds").

use super::state::{self, State};
use super::target::Target;
use super::{Job, names_in};
use crate::bundle::{launchers, read};
use crate::cli::GoVerb;
use crate::error::{Context, Result};
use crate::go;
use crate::place::scratch::Scratch;
use crate::place::{self, Destination};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The sources only levels above the lowest may read, as found.
pub(super) struct Watched {
    pub(super) dirs: Vec<PathBuf>,
    pub(super) files: Vec<PathBuf>,
    pub(super) watch: u128,
}

/// How much of the lowest level to seed for go's up-to-date check: the
/// block that holds byte 0, the first 4 KiB (docs/FORMAT.md), where the
/// ELF headers and go's build ID note are (go reads the note from the first
/// 32 KiB; a Go executable's is in its first page). If go ever wanted more,
/// it would relink, and mgo would rebuild: slower, never wrong.
pub(super) const SEED_BYTES: u64 = 1;

/// What the up-to-date check found.
pub(super) enum Shortcut {
    /// Nothing to do: the bundles were touched.
    UpToDate,
    /// A full build is needed; the lowest level's outputs are built already
    /// (`true`) or not.
    Rebuild { lowest_built: bool },
}

impl Job {
    /// Tries the up-to-date shortcut where the last run left a record for
    /// this command: up to date, or a rebuild that may find the lowest
    /// level built already.
    pub(super) fn shortcut(
        &self,
        scratch: &Scratch,
        target: &Target,
        state_file: Option<&Path>,
    ) -> Result<Shortcut> {
        const REBUILD: Shortcut = Shortcut::Rebuild {
            lowest_built: false,
        };
        let Some(file) = state_file else {
            return Ok(REBUILD);
        };
        if !target.writes_files() || self.request.dry_run {
            return Ok(REBUILD);
        }
        let Some(previous) = State::load(file) else {
            return Ok(REBUILD);
        };
        let shortcut = self.try_up_to_date(scratch, target, &previous)?;
        if matches!(shortcut, Shortcut::UpToDate) {
            state::mark_used(file);
        }
        Ok(shortcut)
    }

    /// Asks go for the user's sources the `levels` read and takes their
    /// digest at once (before the builds read them, nearly: a file changed
    /// during the build then shows as changed on the next run).
    pub(super) fn watch_sources(&self, levels: &[u8]) -> Option<Watched> {
        let (mut dirs, mut files) = (BTreeSet::new(), BTreeSet::new());
        for &level in levels {
            let (d, f) = go::sources(
                &self.build_dir,
                &self.env.goflags,
                &self.request.selection_flags,
                &self.request.packages,
                self.request.verb == GoVerb::Test,
                level,
                &self.env.gomodcache,
            )
            .ok()?;
            dirs.extend(d);
            files.extend(f);
        }
        let dirs: Vec<PathBuf> = dirs.into_iter().collect();
        let files: Vec<PathBuf> = files.into_iter().collect();
        let watch = state::watch_digest(&dirs, &files);
        Some(Watched { dirs, files, watch })
    }

    /// The state file of this command, if mgo keeps state: one per
    /// command, directory and destination (GOBIN for install).
    pub(super) fn state_file(&self, destination: &Destination) -> Option<PathBuf> {
        let dir = self.settings.state_dir.as_ref()?;
        let verb = self.request.verb.word();
        let destination = format!("{destination:?}");
        let mut parts: Vec<&[u8]> = vec![
            verb.as_bytes(),
            self.build_dir.as_os_str().as_bytes(),
            destination.as_bytes(),
        ];
        parts.extend(self.request.key_args.iter().map(|a| a.as_bytes()));
        Some(state::path(dir, state::digest(parts)))
    }

    /// Everything besides the sources that decides the bundles: mgo and its
    /// launchers, the mode, the levels, the toolchain, GOFLAGS.
    pub(super) fn settings_digest(&self) -> u128 {
        let levels: Vec<u8> = self.levels.clone();
        let goflags = std::env::var_os("GOFLAGS").unwrap_or_default();
        let flags = self.settings.flags.to_le_bytes();
        let format_version = mgo_format::VERSION.to_le_bytes();
        let mut parts: Vec<&[u8]> = vec![
            env!("CARGO_PKG_VERSION").as_bytes(),
            &format_version,
            self.settings.compress_text.as_bytes(),
            &flags,
            &levels,
            self.env.version.as_bytes(),
            goflags.as_bytes(),
        ];
        parts.extend(launchers::all());
        state::digest(parts)
    }

    /// Lets go decide whether the lowest level is up to date (see
    /// `state.rs`), after checking what go does not see.
    pub(super) fn try_up_to_date(
        &self,
        scratch: &Scratch,
        target: &Target,
        previous: &State,
    ) -> Result<Shortcut> {
        const REBUILD: Shortcut = Shortcut::Rebuild {
            lowest_built: false,
        };
        if previous.settings != self.settings_digest()
            || previous.programs.is_empty()
            || previous.watch != state::watch_digest(&previous.dirs, &previous.files)
        {
            return Ok(REBUILD);
        }
        let lowest = self.lowest();
        let out_dir = scratch.level_dir(lowest)?;
        let mut seeds = Vec::new();
        for program in &previous.programs {
            let Ok(bundle) = read::Bundle::open(&program.dest) else {
                return Ok(REBUILD);
            };
            if state::identity_of(&program.dest, &bundle) != Some(program.identity) {
                return Ok(REBUILD);
            }
            let Some(seed) = bundle
                .entry(lowest)
                .and_then(|entry| bundle.decode_prefix(entry, SEED_BYTES).ok())
            else {
                return Ok(REBUILD);
            };
            let path = out_dir.join(&program.temp_name);
            fs::write(&path, &seed)
                .with_context(|| format!("cannot write {}", crate::error::shown(&path)))?;
            seeds.push((program.temp_name.clone(), seed));
        }
        // Its output counts only if it succeeds: a failure (a compile
        // error, or packages that no longer make the programs the record
        // names) is left to the full build to report.
        let outcome = self.run_go(scratch, target, &[lowest], true)?;
        if outcome.first_failure.is_some() {
            return Ok(REBUILD);
        }
        let names = names_in(&out_dir)?;
        let expected: Vec<OsString> = {
            let mut n: Vec<OsString> = seeds.iter().map(|(n, _)| n.clone()).collect();
            n.sort();
            n
        };
        let untouched: Vec<bool> = seeds
            .iter()
            .map(|(name, seed)| fs::read(out_dir.join(name)).is_ok_and(|b| b == *seed))
            .collect();
        if names == expected && untouched.iter().all(|&u| u) {
            go::print_held(&outcome.held);
            for program in &previous.programs {
                place::touch(&program.dest).with_context(|| {
                    format!("cannot update {}", crate::error::shown(&program.dest))
                })?;
            }
            return Ok(Shortcut::UpToDate);
        }
        // The lowest level's build is reused only if go said nothing about
        // it: its messages, printed apart from the other levels', would
        // show a warning every level prints twice. The full build says
        // them with the others.
        Ok(Shortcut::Rebuild {
            lowest_built: untouched.iter().all(|&u| !u) && outcome.held.is_empty(),
        })
    }
}
