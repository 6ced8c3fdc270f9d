//! Everything that runs `go`: its environment, package queries, handing a
//! command over to go, and running one go command per level with the
//! output relayed line by line.

use crate::error::{self, Result, fail};
use crate::interrupt;
use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

/// What `go env` says about the target and the toolchain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GoEnv {
    /// GOOS.
    pub goos: String,
    /// GOARCH.
    pub goarch: String,
    /// GOAMD64 as go resolves it (v1 when unset; empty for other GOARCHes).
    pub goamd64: String,
    /// GOVERSION, e.g. `go1.26.8`.
    pub version: String,
    /// GOMODCACHE: module sources, which never change in place.
    pub gomodcache: String,
    /// GOBIN, where `go install` writes (empty: GOPATH's first bin).
    pub gobin: String,
    /// GOPATH.
    pub gopath: String,
    /// GOHOSTOS and GOHOSTARCH: `go install` of a cross-compiled program
    /// writes elsewhere.
    pub gohostos: String,
    /// See `gohostos`.
    pub gohostarch: String,
    /// GOFLAGS as go reads it: the variable, else the go env file's. The
    /// builds get it from the environment; mgo's own queries only the part
    /// that changes their answers ([`query_goflags`]).
    pub goflags: String,
}

const ENV_NAMES: [&str; 10] = [
    "GOOS",
    "GOARCH",
    "GOAMD64",
    "GOVERSION",
    "GOMODCACHE",
    "GOBIN",
    "GOPATH",
    "GOHOSTOS",
    "GOHOSTARCH",
    "GOENV",
];

/// GOFLAGS for a go that must ignore the user's: go takes an empty
/// variable as unset and reads its env file instead (where `go env -w
/// GOFLAGS=-json` puts it), so it gets blank space, which holds no flags.
const NO_GOFLAGS: &str = " ";

/// The flags of GOFLAGS that change which packages and files `go list`
/// selects (build constraints, module mode, overlays, instrumentation that
/// adds dependencies). The others (`-json`, `-n`, `-x`, `-v`, `-a`,
/// `-work`, ...) shape output or act on builds, which mgo's queries neither
/// make nor could read back.
const QUERY_GOFLAGS: [&str; 13] = [
    "tags",
    "mod",
    "modfile",
    "overlay",
    "modcacherw",
    "race",
    "msan",
    "asan",
    "cover",
    "coverpkg",
    "covermode",
    "pgo",
    "compiler",
];

/// The part of `goflags` that mgo's `go list` queries honour, or
/// [`NO_GOFLAGS`].
pub fn query_goflags(goflags: &str) -> String {
    let kept: Vec<&str> = goflags
        .split_whitespace()
        .filter(|word| {
            let name = word.trim_start_matches('-');
            let name = name.split_once('=').map_or(name, |(name, _)| name);
            word.starts_with('-') && QUERY_GOFLAGS.contains(&name)
        })
        .collect();
    if kept.is_empty() {
        NO_GOFLAGS.to_owned()
    } else {
        kept.join(" ")
    }
}

/// GOFLAGS as go reads it: the variable if it is not empty, else the
/// `GOFLAGS=` line of the go env file at `goenv` (what `go env -w` writes).
fn user_goflags(goenv: &str) -> String {
    if let Some(value) = std::env::var_os("GOFLAGS").filter(|v| !v.is_empty()) {
        return value.to_string_lossy().into_owned();
    }
    if goenv.is_empty() || goenv == "off" {
        return String::new();
    }
    let text = std::fs::read_to_string(goenv).unwrap_or_default();
    text.lines()
        .filter_map(|line| line.strip_prefix("GOFLAGS="))
        .next_back()
        .map(|value| {
            ['"', '\'']
                .iter()
                .find_map(|&q| value.strip_prefix(q)?.strip_suffix(q))
                .unwrap_or(value)
                .to_owned()
        })
        .unwrap_or_default()
}

/// A `go` command run from `dir`, with stdin from /dev/null. Each go that
/// mgo waits for dies with mgo: the kernel sends it SIGKILL if mgo is
/// killed (PR_SET_PDEATHSIG; the thread that starts it lives until it ends).
fn go_command(dir: &Path) -> Command {
    let mut command = Command::new("go");
    command.current_dir(dir).stdin(Stdio::null());
    let parent = rustix::process::getpid();
    // SAFETY: the closure runs in the child between fork and exec and only
    // makes two async-signal-safe system calls.
    unsafe {
        command.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
            // mgo died before the line above: nobody would signal us.
            if rustix::process::getppid() != Some(parent) {
                return Err(io::Error::from_raw_os_error(libc_esrch()));
            }
            Ok(())
        });
    }
    command
}

/// ESRCH, without a libc dependency for one constant.
const fn libc_esrch() -> i32 {
    3
}

fn spawn_error(err: &io::Error) -> error::Error {
    if err.kind() == io::ErrorKind::NotFound {
        fail("go not found in PATH: install Go 1.18 or newer, or add its bin directory to PATH")
    } else {
        fail(format!("cannot run go: {err}"))
    }
}

/// Runs a quick go command and returns its stdout; on failure its stderr is
/// shown whole, as go printed it, and go's status is mgo's.
fn output_of(mut command: Command, what: &str) -> Result<String> {
    let output = command.output().map_err(|e| spawn_error(&e))?;
    if !output.status.success() {
        let _ = io::stderr().write_all(&output.stderr);
        return Err(error::go_failed(
            output.status,
            Some(format!(
                "{what} failed ({})",
                describe_status(&output.status)
            )),
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Asks go about the target and the toolchain, from `dir` (where `-C`
/// points: a go.mod there may select another toolchain).
pub fn env(dir: &Path) -> Result<GoEnv> {
    let mut command = go_command(dir);
    // No flag of GOFLAGS changes the values asked for here; `-json`,
    // `-changed` or `-n` would change how they are printed.
    command
        .arg("env")
        .args(ENV_NAMES)
        .env("GOFLAGS", NO_GOFLAGS);
    let text = output_of(command, "go env")?;
    let mut lines = text.lines().map(str::trim).map(str::to_owned);
    let mut next = || lines.next().unwrap_or_default();
    Ok(GoEnv {
        goos: next(),
        goarch: next(),
        goamd64: next(),
        version: next(),
        gomodcache: next(),
        gobin: next(),
        gopath: next(),
        gohostos: next(),
        gohostarch: next(),
        goflags: user_goflags(&next()),
    })
}

/// Whether a `go version` string (`go1.26.8`, `go1.21rc2`, `devel go1.27-…`)
/// is at least 1.18, the first release with GOAMD64 and self-contained
/// build info. Development versions are taken to be new.
pub fn version_supported(version: &str) -> bool {
    if version.starts_with("devel") {
        return true;
    }
    let Some(rest) = version.strip_prefix("go") else {
        return false;
    };
    let mut parts = rest.split(|c: char| !c.is_ascii_digit());
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (major, minor) >= (1, 18)
}

/// `go list` from `dir` over `packages`, with the flags that decide which
/// packages match, printing `format` for each.
fn list(
    dir: &Path,
    goflags: &str,
    selection_flags: &[OsString],
    packages: &[OsString],
    extra: &[&str],
    format: &str,
    goamd64: Option<u8>,
) -> Result<Vec<String>> {
    let mut command = go_command(dir);
    command
        .arg("list")
        .args(selection_flags)
        .args(extra)
        .args(["-e", "-f", format])
        .args(packages)
        .env("GOFLAGS", query_goflags(goflags));
    if let Some(level) = goamd64 {
        command.env("GOAMD64", format!("v{level}"));
    }
    Ok(output_of(command, "go list")?
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

/// The package names (`main` or another) that `packages` match.
pub fn package_names(
    dir: &Path,
    goflags: &str,
    selection_flags: &[OsString],
    packages: &[OsString],
) -> Result<Vec<String>> {
    list(
        dir,
        goflags,
        selection_flags,
        packages,
        &[],
        "{{.Name}}",
        None,
    )
}

/// The user's sources a build at `level` reads: the directories of the
/// packages it compiles that are neither in GOROOT nor in the module cache,
/// and the files those packages embed.
pub fn sources(
    dir: &Path,
    goflags: &str,
    selection_flags: &[OsString],
    packages: &[OsString],
    test: bool,
    level: u8,
    gomodcache: &str,
) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let extra: &[&str] = if test {
        &["-deps", "-test"]
    } else {
        &["-deps"]
    };
    let lines = list(
        dir,
        goflags,
        selection_flags,
        packages,
        extra,
        "{{if not .Standard}}D\t{{.Dir}}\n{{range .EmbedFiles}}E\t{{$.Dir}}/{{.}}\n{{end}}{{end}}",
        Some(level),
    )?;
    let user = |path: &Path| gomodcache.is_empty() || !path.starts_with(gomodcache);
    let (mut dirs, mut files) = (Vec::new(), Vec::new());
    for line in lines {
        match line.split_once('\t') {
            Some(("D", path)) if user(Path::new(path)) => dirs.push(PathBuf::from(path)),
            Some(("E", path)) if user(Path::new(path)) => files.push(PathBuf::from(path)),
            _ => {}
        }
    }
    Ok((dirs, files))
}

/// Hands the command over to go: `go <args>` replaces mgo, so that go's
/// output, exit status and signals are exactly go's. Returns only if go
/// cannot be started.
pub fn exec(args: &[OsString]) -> error::Error {
    let err = Command::new("go").args(args).exec();
    spawn_error(&err)
}

/// One go command for one level.
pub struct LevelRun {
    /// GOAMD64 level; also the output's prefix.
    pub level: u8,
    /// The command, environment included.
    pub command: Command,
}

/// A go command for `level` from `dir`: `go <verb> <args>` with
/// `GOAMD64=v<level>`, in its own process group, output piped for relaying.
pub fn level_command(dir: &Path, level: u8, verb: &str, args: &[&OsStr]) -> Command {
    let mut command = go_command(dir);
    command
        .arg(verb)
        .args(args)
        .env("GOAMD64", format!("v{level}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so that stopping it reaches the
        // compiler and linker processes go starts as well.
        .process_group(0);
    command
}

/// How the runs of a set relate.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Stop the others (builds: one failure decides the outcome).
    StopOthers,
    /// Let every run finish (tests: each level's result matters).
    RunAll,
}

/// How each run's output is passed on.
#[derive(Clone, Copy)]
pub struct Relay {
    /// go prints JSON lines on stdout (`-json`): the level goes into each
    /// object as a `"GOAMD64"` field instead of a prefix.
    pub json: bool,
    /// Keep the marked lines in [`Outcome::held`] instead of printing
    /// them, for a run whose output only counts if it succeeds.
    pub hold: bool,
}

/// Lines kept back: (for stdout, the marked line).
pub type Held = Vec<(bool, Vec<u8>)>;

/// Prints lines kept back, each to the stream it came from.
pub fn print_held(held: &Held) {
    for (stdout, line) in held {
        if *stdout {
            let _ = io::stdout().write_all(line);
        } else {
            let _ = io::stderr().write_all(line);
        }
    }
    let _ = io::stdout().flush();
}

/// What a set of runs came to.
#[derive(Debug)]
pub struct Outcome {
    /// Each finished run's level and exit status, lowest level first.
    pub statuses: Vec<(u8, ExitStatus)>,
    /// The run that failed first, if any (the others may have failed
    /// because they were stopped).
    pub first_failure: Option<(u8, ExitStatus)>,
    /// The output, with [`Relay::hold`].
    pub held: Held,
}

/// Runs `runs`, at most `parallel` at a time, lowest level first. With
/// [`OnFailure::StopOthers`] the first failure stops the rest (their output
/// is dropped: it would repeat the same errors) and runs not yet started
/// are skipped.
pub fn run_levels(
    runs: Vec<LevelRun>,
    parallel: usize,
    on_failure: OnFailure,
    relay: Relay,
) -> Result<Outcome> {
    let count = runs.len();
    let queue = Mutex::new(runs.into_iter().collect::<VecDeque<_>>());
    let results: Mutex<Vec<(u8, ExitStatus)>> = Mutex::new(Vec::new());
    let first_failure: Mutex<Option<(u8, ExitStatus)>> = Mutex::new(None);
    let held: Arc<Mutex<Held>> = Arc::default();
    let failure: Mutex<Option<error::Error>> = Mutex::new(None);
    let failed = AtomicBool::new(false);
    thread::scope(|scope| {
        for _ in 0..parallel.clamp(1, count.max(1)) {
            scope.spawn(|| {
                loop {
                    if interrupt::interrupted()
                        || (on_failure == OnFailure::StopOthers && failed.load(Ordering::SeqCst))
                    {
                        break;
                    }
                    let next = queue
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .pop_front();
                    let Some(run) = next else { break };
                    let level = run.level;
                    match run_one(run, relay, &held) {
                        Ok((pid, status)) => {
                            if !status.success() && !failed.swap(true, Ordering::SeqCst) {
                                *first_failure.lock().unwrap_or_else(PoisonError::into_inner) =
                                    Some((level, status));
                                if on_failure == OnFailure::StopOthers {
                                    interrupt::stop_children(Some(pid));
                                }
                            }
                            results
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .push((level, status));
                        }
                        Err(err) => {
                            failed.store(true, Ordering::SeqCst);
                            interrupt::stop_children(None);
                            failure
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .get_or_insert(err);
                        }
                    }
                }
            });
        }
    });
    interrupt::check()?;
    if let Some(err) = failure.into_inner().unwrap_or_else(PoisonError::into_inner) {
        return Err(err);
    }
    let mut statuses = results.into_inner().unwrap_or_else(PoisonError::into_inner);
    statuses.sort_by_key(|(level, _)| *level);
    Ok(Outcome {
        statuses,
        first_failure: first_failure
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner),
        held: std::mem::take(&mut *held.lock().unwrap_or_else(PoisonError::into_inner)),
    })
}

/// Starts one run, relays its output and waits for it.
fn run_one(mut run: LevelRun, relay: Relay, held: &Arc<Mutex<Held>>) -> Result<(u32, ExitStatus)> {
    let quiet = Arc::new(AtomicBool::new(false));
    let mut child = run.command.spawn().map_err(|e| spawn_error(&e))?;
    let pid = child.id();
    if !interrupt::register(pid, Arc::clone(&quiet)) {
        // Interrupted while it started: stop it like the others.
        quiet.store(true, Ordering::SeqCst);
        interrupt::signal_group(pid);
    }
    let status = relay_and_wait(
        &mut child,
        &Prefix {
            level: run.level,
            json: relay.json,
            quiet,
            held: relay.hold.then(|| Arc::clone(held)),
        },
    );
    interrupt::unregister(pid);
    let status = status.map_err(|e| fail(format!("waiting for go: {e}")))?;
    Ok((pid, status))
}

/// How one run's lines are marked.
struct Prefix {
    level: u8,
    json: bool,
    quiet: Arc<AtomicBool>,
    held: Option<Arc<Mutex<Held>>>,
}

impl Prefix {
    /// `line` (with its newline, if any) as mgo prints it.
    fn mark(&self, line: &[u8], stdout: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(line.len() + 20);
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        match body.strip_prefix(b"{") {
            Some(rest) if self.json && stdout => {
                out.extend_from_slice(format!("{{\"GOAMD64\":\"v{}\"", self.level).as_bytes());
                if !rest.trim_ascii_start().starts_with(b"}") {
                    out.push(b',');
                }
                out.extend_from_slice(rest);
            }
            _ => {
                out.extend_from_slice(format!("v{}: ", self.level).as_bytes());
                out.extend_from_slice(body);
            }
        }
        out.push(b'\n');
        out
    }
}

/// Passes the child's stdout and stderr through, line by line, to ours;
/// then waits for it. A closed stdout or stderr of mgo's is not an error:
/// the lines are dropped and go runs to its end.
fn relay_and_wait(child: &mut Child, prefix: &Prefix) -> io::Result<ExitStatus> {
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    thread::scope(|scope| {
        if let Some(stdout) = stdout {
            scope.spawn(|| relay_lines(stdout, &mut io::stdout(), prefix, true));
        }
        if let Some(stderr) = stderr {
            scope.spawn(|| relay_lines(stderr, &mut io::stderr(), prefix, false));
        }
    });
    child.wait()
}

fn relay_lines(from: impl Read, to: &mut impl Write, prefix: &Prefix, stdout: bool) {
    let mut reader = BufReader::new(from);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if prefix.quiet.load(Ordering::SeqCst) {
            continue; // keep draining so the child never blocks on a full pipe
        }
        let marked = prefix.mark(&line, stdout);
        match &prefix.held {
            Some(held) => held
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((stdout, marked)),
            None => {
                let _ = to.write_all(&marked);
                let _ = to.flush();
            }
        }
    }
}

/// Describes how go ended, for an `mgo:` line.
pub fn describe_status(status: &ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => status.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_keep_only_the_goflags_that_select_packages() {
        assert_eq!(query_goflags(""), NO_GOFLAGS);
        assert_eq!(query_goflags("-json -changed -n -x -v -a"), NO_GOFLAGS);
        assert_eq!(
            query_goflags("-json -tags=a,b --mod=vendor -modfile=x.mod -trimpath -race"),
            "-tags=a,b --mod=vendor -modfile=x.mod -race"
        );
    }

    #[test]
    fn versions() {
        for (v, ok) in [
            ("go1.26.8", true),
            ("go1.18", true),
            ("go1.21rc2", true),
            ("go1.17.13", false),
            ("go1.9", false),
            ("go2.0", true),
            ("devel go1.27-abcdef", true),
            ("", false),
        ] {
            assert_eq!(version_supported(v), ok, "{v}");
        }
    }

    #[test]
    fn lines_get_a_prefix_and_json_objects_a_field() {
        let quiet = Arc::new(AtomicBool::new(false));
        let text = Prefix {
            level: 3,
            json: false,
            quiet: Arc::clone(&quiet),
            held: None,
        };
        assert_eq!(text.mark(b"# x\n", true), b"v3: # x\n");
        assert_eq!(text.mark(b"no newline", false), b"v3: no newline\n");
        assert_eq!(text.mark(b"{\"a\":1}\n", true), b"v3: {\"a\":1}\n");
        let json = Prefix {
            level: 2,
            json: true,
            quiet,
            held: None,
        };
        assert_eq!(
            json.mark(b"{\"ImportPath\":\"x\"}\n", true),
            b"{\"GOAMD64\":\"v2\",\"ImportPath\":\"x\"}\n"
        );
        assert_eq!(json.mark(b"{}", true), b"{\"GOAMD64\":\"v2\"}\n");
        assert_eq!(json.mark(b"{ }\n", true), b"{\"GOAMD64\":\"v2\" }\n");
        // Not JSON, or on stderr: a prefix.
        assert_eq!(json.mark(b"go: x\n", true), b"v2: go: x\n");
        assert_eq!(json.mark(b"{\"a\":1}\n", false), b"v2: {\"a\":1}\n");
    }
}
