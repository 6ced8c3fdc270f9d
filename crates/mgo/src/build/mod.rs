//! Making bundles: `mgo build`, `mgo install` and `mgo test -c`, step by
//! step. `Job::run` below reads top to bottom; its steps live here and in
//! `target.rs` (what go writes, and where each bundle goes), `uptodate.rs`
//! (the shortcut for an unchanged build, on the record `state.rs` keeps)
//! and `write.rs` (each program encoded, laid out and placed).

pub mod state;
mod target;
mod uptodate;
mod write;

use crate::cli::Request;
use crate::error::{self, Context, Result, fail};
use crate::go::{self, GoEnv, LevelRun, OnFailure, Relay};
use crate::interrupt;
use crate::place::scratch::Scratch;
use crate::settings::{self, Settings};
use state::State;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use target::{FILE_OUTPUT, Target};
use uptodate::{Shortcut, Watched};

/// Runs a build, install or `test -c` request.
pub fn run(mut request: Request) -> Result<()> {
    let build_dir = build_dir(&request)?;
    let env = go::env(&build_dir)?;
    goflags_count(&mut request, &env.goflags);
    if env.goos != "linux" || env.goarch != "amd64" {
        // Another target: exactly what go does, silently.
        return Err(go::exec(&request.passthrough));
    }
    if let Some(mode) = settings::non_executable_buildmode(&request) {
        crate::console::say(&format!(
            "-buildmode={mode} does not make an executable: go {} builds it once; the output is not a bundle",
            request.verb.word()
        ));
        return Err(go::exec(&request.passthrough));
    }
    let settings = Settings::read(&request)?;
    let lowest = lowest_level(&env)?;
    interrupt::install();
    let job = Job {
        levels: (lowest..=4).collect(),
        request,
        settings,
        env,
        build_dir,
    };
    job.run()
}

/// Takes the flags of `goflags` (as go reads it: the variable, or go's env
/// file) that mgo must know into `request`, where the command line has not
/// set them: each level's go obeys them as if they were on its command
/// line. A `-n` prints commands and writes nothing, so there is nothing to
/// bundle.
pub fn goflags_count(request: &mut Request, goflags: &str) {
    let set =
        |name| crate::cli::from_goflags(goflags, name).is_some_and(|v| v == "true" || v == "1");
    request.dry_run = request.dry_run || set("n");
    request.echo_commands = request.echo_commands || set("x");
    request.json = request.json || set("json");
    if request.buildmode.is_none() {
        request.buildmode = crate::cli::from_goflags(goflags, "buildmode");
    }
}

/// The directory go runs in: the current one, or `-C dir` under it.
pub fn build_dir(request: &Request) -> Result<PathBuf> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let dir = match &request.chdir {
        Some(dir) => cwd.join(dir),
        None => cwd,
    };
    if !dir.is_dir() {
        return Err(fail(format!(
            "-C {}: no such directory",
            crate::error::shown(&dir)
        )));
    }
    Ok(dir)
}

/// The lowest level to build, from `go env GOAMD64`, once go is known to be
/// new enough to have levels.
pub fn lowest_level(env: &GoEnv) -> Result<u8> {
    if !go::version_supported(&env.version) {
        // Go before 1.16 does not even report GOVERSION.
        let version = if env.version.is_empty() {
            "this go"
        } else {
            &env.version
        };
        return Err(fail(format!(
            "{version} is too old: mgo needs Go 1.18 or newer (GOAMD64 levels); install a newer Go"
        )));
    }
    mgo_format::parse_level(env.goamd64.as_bytes()).ok_or_else(|| {
        fail(format!(
            "go reports GOAMD64={}: expected v1 to v4",
            env.goamd64
        ))
    })
}

struct Job {
    request: Request,
    settings: Settings,
    env: GoEnv,
    build_dir: PathBuf,
    levels: Vec<u8>,
}

impl Job {
    fn lowest(&self) -> u8 {
        self.levels.first().copied().unwrap_or(1)
    }

    /// A build from top to bottom: the target, the up-to-date shortcut,
    /// the levels, the bundles, the record for the next run.
    fn run(&self) -> Result<()> {
        let scratch = Scratch::create()?;
        let destination = self.destination()?;
        let state_file = self.state_file(&destination);
        let mut target = self.target_for(&destination)?;
        let lowest_built = match self.shortcut(&scratch, &target, state_file.as_deref())? {
            Shortcut::UpToDate => return Ok(()),
            Shortcut::Rebuild { lowest_built } => lowest_built,
        };
        // Only now, when a build is due: resolving a default destination
        // needs `go list`, which costs as much as the shortcut itself.
        let resolved = self.resolve_default(&destination, &target)?;
        // Packages that no longer make one program: start again.
        let lowest_built = lowest_built && resolved == target;
        target = resolved;
        let watched = self.build_levels(&scratch, &target, lowest_built, state_file.is_some())?;
        if self.request.dry_run {
            return Ok(());
        }
        let programs = self.collect(&scratch, &target)?;
        let written = self.write_programs(&programs)?;
        if let Some(file) = &state_file {
            self.record(file, watched, written, programs.len());
        }
        Ok(())
    }

    /// Runs go for every level still to build (all but the lowest when the
    /// shortcut built it) while, for the record, asking go which sources
    /// the higher levels read.
    fn build_levels(
        &self,
        scratch: &Scratch,
        target: &Target,
        lowest_built: bool,
        keeps_state: bool,
    ) -> Result<Option<Watched>> {
        let levels: Vec<u8> = self
            .levels
            .iter()
            .copied()
            .filter(|&l| !(lowest_built && l == self.lowest()))
            .collect();
        if !lowest_built {
            clear_dir(&scratch.level_dir(self.lowest())?)?;
        }
        let watch = (keeps_state && target.writes_files() && !self.request.dry_run)
            .then(|| self.levels.get(1..).unwrap_or_default().to_vec());
        thread::scope(|scope| -> Result<Option<Watched>> {
            let watcher = watch.map(|levels| scope.spawn(move || self.watch_sources(&levels)));
            self.build(scratch, target, &levels)?;
            Ok(watcher.and_then(|w| w.join().ok().flatten()))
        })
    }

    /// Saves what the next run's shortcut needs, or forgets a record that
    /// no longer describes the outputs (so it cannot be trusted).
    fn record(
        &self,
        file: &Path,
        watched: Option<Watched>,
        written: Vec<state::Program>,
        programs: usize,
    ) {
        match watched {
            Some(Watched { dirs, files, watch })
                if !written.is_empty() && written.len() == programs =>
            {
                State {
                    settings: self.settings_digest(),
                    dirs,
                    files,
                    watch,
                    programs: written,
                }
                .save(file);
            }
            _ => state::forget(file),
        }
    }

    /// The go command for `level`, writing into the scratch directory.
    fn level_run(&self, scratch: &Scratch, target: &Target, level: u8) -> Result<LevelRun> {
        let out_dir = scratch.level_dir(level)?;
        let gotmpdir = scratch.path().join(format!("gotmp-v{level}"));
        fs::create_dir_all(&gotmpdir)
            .with_context(|| format!("cannot create {}", crate::error::shown(&gotmpdir)))?;
        let output: Option<OsString> = match target {
            Target::Nothing | Target::Install(_) => None,
            Target::Discard => Some("/dev/null".into()),
            Target::File { .. } => Some(out_dir.join(FILE_OUTPUT).into_os_string()),
            Target::Dir(_) => {
                let mut dir = out_dir.clone().into_os_string();
                dir.push("/");
                Some(dir)
            }
        };
        let mut args: Vec<&OsStr> = Vec::new();
        if let Some(output) = &output {
            args.extend([OsStr::new("-o"), output.as_os_str()]);
        }
        args.extend(self.request.go_args.iter().map(OsString::as_os_str));
        let mut command =
            go::level_command(&self.build_dir, level, self.request.verb.word(), &args);
        // go killed by a signal leaves its work directory behind: inside
        // the scratch directory, it goes with it.
        command.env("GOTMPDIR", &gotmpdir);
        if matches!(target, Target::Install(_)) {
            command.env("GOBIN", &out_dir);
        }
        Ok(LevelRun { level, command })
    }

    /// Runs go for `levels` in parallel; the first failure fails the build.
    fn build(&self, scratch: &Scratch, target: &Target, levels: &[u8]) -> Result<()> {
        let outcome = self.run_go(scratch, target, levels, false)?;
        match outcome.first_failure {
            Some((level, status)) => Err(error::go_failed(
                status,
                Some(format!(
                    "building the GOAMD64=v{level} variant failed, nothing was written: go {}: {}",
                    self.request.verb.word(),
                    go::describe_status(&status)
                )),
            )),
            None => Ok(()),
        }
    }

    fn run_go(
        &self,
        scratch: &Scratch,
        target: &Target,
        levels: &[u8],
        hold: bool,
    ) -> Result<go::Outcome> {
        let runs = levels
            .iter()
            .map(|&level| self.level_run(scratch, target, level))
            .collect::<Result<Vec<_>>>()?;
        go::run_levels(
            runs,
            self.settings.parallel,
            OnFailure::StopOthers,
            Relay {
                json: self.settings.json,
                hold,
                // Each level's commands name its own files and GOAMD64: a
                // merged script would be no level's.
                each_line: self.request.dry_run || self.request.echo_commands,
            },
        )
    }
}

/// The names in `dir`, sorted.
fn names_in(dir: &Path) -> Result<Vec<OsString>> {
    let mut names: Vec<OsString> = fs::read_dir(dir)
        .context("cannot list go's output")?
        .filter_map(|entry| entry.ok().map(|e| e.file_name()))
        .collect();
    names.sort();
    Ok(names)
}

/// Empties `dir`.
fn clear_dir(dir: &Path) -> Result<()> {
    for name in names_in(dir)? {
        let path = dir.join(name);
        let _ = fs::remove_file(&path).or_else(|_| fs::remove_dir_all(&path));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(args: &[&str]) -> Request {
        match crate::cli::parse(args.iter().map(OsString::from)) {
            Ok(crate::cli::Command::Build(request)) => request,
            other => panic!("{args:?} gave {other:?}"),
        }
    }

    #[test]
    fn goflags_count_as_flags_of_the_command_line() {
        let mut r = request(&["."]);
        goflags_count(&mut r, "-json -x");
        assert!(r.json && r.echo_commands && !r.dry_run);
        let mut r = request(&["."]);
        goflags_count(&mut r, "-n -buildmode=pie");
        assert!(r.dry_run && !r.echo_commands);
        assert_eq!(r.buildmode.as_deref(), Some("pie"));
        let mut r = request(&["-x=false", "."]);
        goflags_count(&mut r, "-v");
        assert!(!r.echo_commands);
    }
}
