//! Making bundles: `mgo build`, `mgo install` and `mgo test -c`, step by
//! step. Each step has its own module: the environment (`settings`), what
//! go says about the target (`go`), where outputs go (`output`), the
//! per-level go runs (`go`), compressing (`compress`), laying a bundle out
//! (`bundle`), placing it (`output`), and the shortcut for up-to-date
//! rebuilds (`state`).

pub mod state;

use crate::bundle::{self, launchers, read};
use crate::cli::{GoVerb, Request};
use crate::error::{self, Context, Result, fail, shown};
use crate::go::{self, GoEnv, LevelRun, OnFailure, Relay};
use crate::place::scratch::Scratch;
use crate::place::{self, Destination};
use crate::settings::{self, Settings};
use crate::{encode, interrupt};
use state::State;
use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::thread;

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
    request.json = request.json || set("json");
    if request.buildmode.is_none() {
        request.buildmode = crate::cli::from_goflags(goflags, "buildmode");
    }
}

/// The directory go runs in: the current one, or `-C dir` under it.
pub fn build_dir(request: &Request) -> Result<PathBuf> {
    let cwd = std::env::current_dir()
        .map_err(|e| fail(format!("cannot read the current directory: {e}")))?;
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

/// Where each level's go writes, and so where the bundles go.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
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
    fn writes_files(&self) -> bool {
        matches!(
            self,
            Self::File { stream: false, .. } | Self::Dir(_) | Self::Install(_)
        )
    }
}

/// The sources only levels above the lowest may read, as found.
struct Watched {
    dirs: Vec<PathBuf>,
    files: Vec<PathBuf>,
    watch: u128,
}

/// One bundle to write: its destination and its levels' files.
struct Program {
    temp_name: OsString,
    dest: PathBuf,
    variants: Vec<(u8, PathBuf)>,
}

/// The name go gives a `-o FILE` output in the level's directory.
const FILE_OUTPUT: &str = "out";

/// How much of the lowest level to seed for go's up-to-date check: the
/// block that holds byte 0, the first 4 KiB (docs/FORMAT.md), where the
/// ELF headers and go's build ID note are (go reads the note from the first
/// 32 KiB; a Go executable's is in its first page). If go ever wanted more,
/// it would relink, and mgo would rebuild: slower, never wrong.
const SEED_BYTES: u64 = 1;

struct Job {
    request: Request,
    settings: Settings,
    env: GoEnv,
    build_dir: PathBuf,
    levels: Vec<u8>,
}

/// What the up-to-date check found.
enum Shortcut {
    /// Nothing to do: the bundles were touched.
    UpToDate,
    /// A full build is needed; the lowest level's outputs are built already
    /// (`true`) or not.
    Rebuild { lowest_built: bool },
}

impl Job {
    fn lowest(&self) -> u8 {
        self.levels.first().copied().unwrap_or(1)
    }

    fn run(&self) -> Result<()> {
        let scratch = Scratch::create()?;
        let destination = self.destination()?;
        // The target as the last run found it, for the shortcut: a default
        // destination then wrote into the build directory (resolving it
        // needs `go list`, which costs as much as the shortcut itself).
        let is_default = matches!(destination, Destination::Default(_));
        let guess = match &destination {
            Destination::Default(dir) => Some(Target::Dir(dir.clone())),
            other => self.target_for(other.clone(), false)?,
        };
        let state_file = self.state_file(&destination);
        let mut lowest_built = false;
        if let (Some(target), Some(file)) = (&guess, &state_file)
            && target.writes_files()
            && !self.request.dry_run
            && let Some(previous) = State::load(file)
        {
            match self.try_up_to_date(&scratch, target, &previous)? {
                Shortcut::UpToDate => {
                    state::mark_used(file);
                    return Ok(());
                }
                Shortcut::Rebuild {
                    lowest_built: built,
                } => lowest_built = built,
            }
        }
        let target = if is_default {
            self.target_for(destination, true)?
        } else {
            guess.clone()
        }
        .unwrap_or(Target::Nothing);
        if guess.as_ref() != Some(&target) {
            // The packages no longer make one program: start again.
            lowest_built = false;
        }
        let levels: Vec<u8> = self
            .levels
            .iter()
            .copied()
            .filter(|&l| !(lowest_built && l == self.lowest()))
            .collect();
        if !lowest_built {
            clear_dir(&scratch.level_dir(self.lowest())?)?;
        }
        let watch = (state_file.is_some() && target.writes_files() && !self.request.dry_run)
            .then(|| self.levels.get(1..).unwrap_or_default().to_vec());
        let watched = thread::scope(|scope| -> Result<Option<Watched>> {
            let watcher = watch.map(|levels| scope.spawn(move || self.watch_sources(&levels)));
            self.build(&scratch, &target, &levels)?;
            Ok(watcher.and_then(|w| w.join().ok().flatten()))
        })?;
        if self.request.dry_run {
            return Ok(());
        }
        let programs = self.collect(&scratch, &target)?;
        let mut written = Vec::new();
        for program in &programs {
            interrupt::check()?;
            if let Some(identity) = self.write_program(program)? {
                written.push(state::Program {
                    temp_name: program.temp_name.clone(),
                    dest: program.dest.clone(),
                    identity,
                });
            }
        }
        if let (Some(file), Some(Watched { dirs, files, watch })) = (&state_file, watched)
            && !written.is_empty()
            && written.len() == programs.len()
        {
            State {
                settings: self.settings_digest(),
                dirs,
                files,
                watch,
                programs: written,
            }
            .save(file);
        } else if let Some(file) = &state_file {
            // A record that no longer describes the outputs must not be
            // trusted by the next run.
            state::forget(file);
        }
        Ok(())
    }

    /// `-o` resolved, or the install directory.
    fn destination(&self) -> Result<Destination> {
        if self.request.verb == GoVerb::Install {
            return Ok(Destination::Dir(self.install_dir()?));
        }
        Destination::new(self.request.output.as_deref(), &self.build_dir)
    }

    /// What go writes for `destination`. A default destination needs `go
    /// list` (only a single main package is written), so it is resolved
    /// only when `resolve_default`; otherwise `None`.
    fn target_for(
        &self,
        destination: Destination,
        resolve_default: bool,
    ) -> Result<Option<Target>> {
        Ok(Some(match destination {
            Destination::Discard => Target::Discard,
            Destination::File(dest) => {
                // Checked before building too, to fail fast (go checks after).
                place::check_replaceable(&dest)?;
                Target::File {
                    dest,
                    stream: false,
                }
            }
            Destination::Stream(dest) => Target::File { dest, stream: true },
            Destination::Dir(dir) if self.request.verb == GoVerb::Install => Target::Install(dir),
            Destination::Dir(dir) => Target::Dir(dir),
            Destination::Default(dir) => {
                if !resolve_default {
                    return Ok(None);
                }
                if self.request.verb == GoVerb::Test || self.builds_one_main_package()? {
                    Target::Dir(dir)
                } else {
                    Target::Nothing
                }
            }
        }))
    }

    /// Whether `go build` without `-o` would write an executable: only for
    /// a single main package. `go list` expands patterns exactly as go
    /// build will.
    fn builds_one_main_package(&self) -> Result<bool> {
        let names = go::package_names(
            &self.build_dir,
            &self.env.goflags,
            &self.request.selection_flags,
            &self.request.packages,
        )?;
        Ok(matches!(names.as_slice(), [name] if name == "main"))
    }

    /// Where `go install` writes: GOBIN, else the first GOPATH entry's bin.
    fn install_dir(&self) -> Result<PathBuf> {
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

    /// The go command for `level`, writing into the scratch directory.
    fn level_run(&self, scratch: &Scratch, target: &Target, level: u8) -> Result<LevelRun> {
        let out_dir = scratch.level_dir(level)?;
        let gotmpdir = scratch.path().join(format!("gotmp-v{level}"));
        fs::create_dir_all(&gotmpdir).map_err(|e| {
            fail(format!(
                "cannot create {}: {e}",
                crate::error::shown(&gotmpdir)
            ))
        })?;
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
                    "building the GOAMD64=v{level} variant failed (go {}: {}); nothing was written",
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
            },
        )
    }

    /// Asks go for the user's sources the `levels` read and takes their
    /// digest at once (before the builds read them, nearly: a file changed
    /// during the build then shows as changed on the next run).
    fn watch_sources(&self, levels: &[u8]) -> Option<Watched> {
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
    fn state_file(&self, destination: &Destination) -> Option<PathBuf> {
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
    fn settings_digest(&self) -> u128 {
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
    fn try_up_to_date(
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
                .map_err(|e| fail(format!("cannot write {}: {e}", crate::error::shown(&path))))?;
            seeds.push((program.temp_name.clone(), seed));
        }
        // Its output counts only if it succeeds: a failure (a compile
        // error, or packages that no longer make the programs the record
        // names) is left to the full build to report.
        let outcome = self.run_go(scratch, target, &[lowest], true)?;
        if outcome.first_failure.is_some() {
            return Ok(REBUILD);
        }
        go::print_held(&outcome.held);
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
            for program in &previous.programs {
                place::touch(&program.dest).map_err(|e| {
                    fail(format!(
                        "cannot update {}: {e}",
                        crate::error::shown(&program.dest)
                    ))
                })?;
            }
            return Ok(Shortcut::UpToDate);
        }
        Ok(Shortcut::Rebuild {
            lowest_built: untouched.iter().all(|&u| !u),
        })
    }

    /// Pairs each output go wrote with its destination.
    fn collect(&self, scratch: &Scratch, target: &Target) -> Result<Vec<Program>> {
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
            place::check_replaceable(&dest)?;
            programs.push(Program {
                temp_name: name,
                dest,
                variants,
            });
        }
        Ok(programs)
    }

    /// Writes one program's bundle; its identity, for the state, when it is
    /// a file.
    fn write_program(&self, program: &Program) -> Result<Option<state::Identity>> {
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
            let bytes = fs::read(path).map_err(|e| {
                fail(format!(
                    "cannot read go's output {}: {e}",
                    crate::error::shown(path)
                ))
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
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let encoded = encode::encode(&builds, self.settings.compression, threads);
        interrupt::check()?;
        let encoded = encoded.with_context(|| {
            format!(
                "cannot bundle {}: MGO_COMPRESS={}",
                shown(&program.dest),
                self.settings.compress_text
            )
        })?;
        let stored = encoded.iter().map(encode::Encoded::as_stored).collect();
        let launcher = self.settings.compression.launcher(&encoded)?;
        let plan = bundle::Plan::new(launcher, stored, self.settings.flags, buildinfo)
            .with_context(|| format!("cannot lay out {}", shown(&program.dest)))?;
        Ok(match place::place(&program.dest, &plan, mode)? {
            place::Placed::Streamed => None,
            place::Placed::Written | place::Placed::Kept => state::identity(&program.dest),
        })
    }
}

/// The names in `dir`, sorted.
fn names_in(dir: &Path) -> Result<Vec<OsString>> {
    let mut names: Vec<OsString> = fs::read_dir(dir)
        .map_err(|e| fail(format!("cannot list go's output: {e}")))?
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
