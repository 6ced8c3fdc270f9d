//! What go writes for the destination (`-o`, the default, `install`), and
//! each program's bundle destination once go has written.

use super::{Job, names_in};
use crate::cli::GoVerb;
use crate::error::{Result, fail};
use crate::go;
use crate::place::scratch::Scratch;
use crate::place::{self, Destination};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Where each level's go writes, and so where the bundles go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
    /// go writes nothing (several packages or a library without `-o`):
    /// every level is compiled, nothing is written.
    Nothing,
    /// `-o /dev/null` in any spelling: built and linked, nothing written.
    Discard,
    /// `-o FILE`: one output, `out`; `stream` when FILE is a device or FIFO.
    File { dest: PathBuf, stream: bool },
    /// `-o DIR/`, the default name, `test -c`'s default: outputs go into
    /// the level's directory under go's names.
    Dir(PathBuf),
    /// `go install`: GOBIN is the level's directory.
    Install(PathBuf),
}

impl Target {
    /// Whether bundles are written (and so the no-op state applies).
    pub(super) fn writes_files(&self) -> bool {
        matches!(
            self,
            Self::File { stream: false, .. } | Self::Dir(_) | Self::Install(_)
        )
    }
}

/// One bundle to write: its destination and its levels' files.
pub(super) struct Program {
    pub(super) temp_name: OsString,
    pub(super) dest: PathBuf,
    pub(super) variants: Vec<(u8, PathBuf)>,
}

/// The name go gives a `-o FILE` output in the level's directory.
pub(super) const FILE_OUTPUT: &str = "out";

impl Job {
    /// `-o` resolved, or the install directory.
    pub(super) fn destination(&self) -> Result<Destination> {
        if self.request.verb == GoVerb::Install {
            return Ok(Destination::Dir(self.install_dir()?));
        }
        Destination::new(self.request.output.as_deref(), &self.build_dir)
    }

    /// What go writes for `destination`. A default destination is taken
    /// as the last run found it, a directory, until [`Self::resolve_default`]
    /// asks go. A file destination is checked here, before building, to
    /// fail fast (go checks after); the others once their names are known.
    pub(super) fn target_for(&self, destination: &Destination) -> Result<Target> {
        Ok(match destination {
            Destination::Discard => Target::Discard,
            Destination::File(dest) => {
                place::check_replaceable(dest)?;
                Target::File {
                    dest: dest.clone(),
                    stream: false,
                }
            }
            Destination::Stream(dest) => Target::File {
                dest: dest.clone(),
                stream: true,
            },
            Destination::Dir(dir) if self.request.verb == GoVerb::Install => {
                Target::Install(dir.clone())
            }
            Destination::Dir(dir) | Destination::Default(dir) => Target::Dir(dir.clone()),
        })
    }

    /// The target of a default destination, asking `go list`: only a
    /// single main package (or `test -c`) writes an executable.
    pub(super) fn resolve_default(
        &self,
        destination: &Destination,
        guess: &Target,
    ) -> Result<Target> {
        if !matches!(destination, Destination::Default(_)) {
            return Ok(guess.clone());
        }
        if self.request.verb == GoVerb::Test || self.builds_one_main_package()? {
            Ok(guess.clone())
        } else {
            Ok(Target::Nothing)
        }
    }

    /// Whether `go build` without `-o` would write an executable: only for
    /// a single main package. `go list` expands patterns exactly as go
    /// build will.
    pub(super) fn builds_one_main_package(&self) -> Result<bool> {
        let names = go::package_names(
            &self.build_dir,
            &self.env.goflags,
            &self.request.selection_flags,
            &self.request.packages,
        )?;
        Ok(matches!(names.as_slice(), [name] if name == "main"))
    }

    /// Where `go install` writes: GOBIN, else the first GOPATH entry's bin.
    pub(super) fn install_dir(&self) -> Result<PathBuf> {
        if (self.env.gohostos.as_str(), self.env.gohostarch.as_str()) != ("linux", "amd64") {
            return Err(fail(format!(
                "install: this machine is {}/{}, so go would install linux/amd64 programs into GOPATH/bin/linux_amd64 and refuses GOBIN: use mgo build -o DIR/ instead",
                self.env.gohostos, self.env.gohostarch
            )));
        }
        if !self.env.gobin.is_empty() {
            return Ok(PathBuf::from(&self.env.gobin));
        }
        self.env
            .gopath
            .split(':')
            .find(|p| !p.is_empty())
            .map(|p| Path::new(p).join("bin"))
            .ok_or_else(|| {
                fail("install: neither GOBIN nor GOPATH is set: set GOBIN to where programs go")
            })
    }

    /// Pairs each output go wrote with its destination.
    pub(super) fn collect(&self, scratch: &Scratch, target: &Target) -> Result<Vec<Program>> {
        let lowest = self.lowest();
        let names = match target {
            Target::Nothing | Target::Discard => return Ok(Vec::new()),
            Target::File { .. } => vec![OsString::from(FILE_OUTPUT)],
            Target::Dir(_) | Target::Install(_) => names_in(&scratch.level_dir(lowest)?)?,
        };
        let mut programs = Vec::new();
        for name in names {
            let variants: Vec<(u8, PathBuf)> = self
                .levels
                .iter()
                .map(|&level| (level, scratch.path().join(format!("v{level}")).join(&name)))
                .collect();
            if let Some((level, _)) = variants.iter().find(|(_, path)| !path.is_file()) {
                return Err(fail(format!(
                    "go {} wrote {} for some levels but not for v{level}",
                    self.request.verb.word(),
                    name.to_string_lossy()
                )));
            }
            let dest = match target {
                Target::File { dest, .. } => dest.clone(),
                Target::Dir(dir) | Target::Install(dir) => dir.join(&name),
                Target::Nothing | Target::Discard => continue,
            };
            if !matches!(target, Target::File { .. }) {
                place::check_replaceable(&dest)?;
            }
            programs.push(Program {
                temp_name: name,
                dest,
                variants,
            });
        }
        Ok(programs)
    }
}
