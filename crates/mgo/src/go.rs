//! Everything that runs `go`: the toolchain check, package counting, and the
//! parallel variant builds with their output relayed line by line.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

/// The toolchain's view of the target, from `go env`.
#[derive(Debug)]
pub struct GoEnv {
    /// GOOS.
    pub goos: String,
    /// GOARCH.
    pub goarch: String,
    /// GOAMD64 as go resolves it (v1 when unset).
    pub goamd64: String,
    /// GOVERSION, e.g. `go1.26.8`.
    pub version: String,
}

/// A problem running go, worded for the user.
#[derive(Debug)]
pub enum Error {
    /// A message for an `mgo: ` line, exit status 1.
    Message(String),
    /// A variant build failed with go's status.
    BuildFailed {
        /// The level that failed first.
        level: u8,
        /// go's exit status.
        status: ExitStatus,
    },
    /// The user interrupted the build.
    Interrupted,
}

fn go_command(dir: &Path) -> Command {
    let mut command = Command::new("go");
    command.current_dir(dir);
    command
}

fn spawn_error(err: &io::Error) -> Error {
    if err.kind() == io::ErrorKind::NotFound {
        Error::Message(
            "go not found in PATH: install Go 1.18 or newer, or add its bin directory to PATH"
                .into(),
        )
    } else {
        Error::Message(format!("cannot run go: {err}"))
    }
}

/// Runs a quick go command and returns its stdout; on failure its stderr is
/// shown whole, as go printed it.
fn output_of(mut command: Command, what: &str) -> Result<String, Error> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| spawn_error(&e))?;
    if !output.status.success() {
        let _ = io::stderr().write_all(&output.stderr);
        return Err(Error::Message(format!("{what} failed ({})", output.status)));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Asks go for the target and its version, from `dir` (where `-C` points):
/// a go.mod there may select another toolchain.
pub fn env(dir: &Path) -> Result<GoEnv, Error> {
    let mut command = go_command(dir);
    command.args(["env", "GOOS", "GOARCH", "GOAMD64", "GOVERSION"]);
    let text = output_of(command, "go env")?;
    let mut lines = text.lines().map(str::trim).map(str::to_owned);
    let mut next = || lines.next().unwrap_or_default();
    Ok(GoEnv {
        goos: next(),
        goarch: next(),
        goamd64: next(),
        version: next(),
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

/// The package names (`main` or another) that `packages` match, asked of
/// `go list` with the flags that decide matching.
pub fn package_names(
    dir: &Path,
    go_flags: &[OsString],
    packages: &[OsString],
) -> Result<Vec<String>, Error> {
    let mut command = go_command(dir);
    // The user's flags first: go insists that -C comes before any other.
    command.arg("list");
    command.args(selection_flags(go_flags));
    command.args(["-e", "-f", "{{.Name}}"]);
    command.args(packages);
    Ok(output_of(command, "go list")?
        .lines()
        .map(str::to_owned)
        .collect())
}

/// The flags among `go_flags` that change which packages a pattern matches.
fn selection_flags(go_flags: &[OsString]) -> Vec<OsString> {
    const SELECTING: &[&str] = &["C", "tags", "mod", "modfile", "overlay"];
    let mut kept = Vec::new();
    let mut flags = go_flags.iter();
    while let Some(flag) = flags.next() {
        let text = flag.to_string_lossy();
        let body = text.trim_start_matches('-');
        let (name, has_value) = match body.split_once('=') {
            Some((name, _)) => (name, true),
            None => (body, false),
        };
        let takes_next = !has_value && crate::cli::takes_value(name);
        if SELECTING.contains(&name) {
            kept.push(flag.clone());
            if takes_next {
                kept.extend(flags.next().cloned());
            }
        } else if takes_next {
            flags.next();
        }
    }
    kept
}

/// One variant build: `go build <flags> [-o <target>] <packages>` with
/// `GOAMD64=v<level>`.
#[derive(Debug, Clone)]
pub struct VariantBuild {
    /// GOAMD64 level.
    pub level: u8,
    /// `-o` for this build, if any.
    pub target: Option<OsString>,
}

/// State shared with the Ctrl-C handler: the running builds' process groups.
#[derive(Default)]
pub struct Builds {
    running: Mutex<Vec<Running>>,
    interrupted: AtomicBool,
}

struct Running {
    pid: u32,
    level: u8,
    quiet: Arc<AtomicBool>,
}

/// Where relayed lines go; a lock per stream keeps lines whole.
struct Relay {
    prefix: String,
    quiet: Arc<AtomicBool>,
}

impl Builds {
    /// Stops every running build: Ctrl-C and SIGTERM land here. go and the
    /// compilers it started get SIGINT, as from a terminal, so go removes
    /// its own work directory; their output is no longer shown.
    pub fn interrupt(&self) {
        self.interrupted.store(true, Ordering::SeqCst);
        self.stop_others(None);
    }

    fn stop_others(&self, except: Option<u8>) {
        let running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        for build in running.iter().filter(|b| Some(b.level) != except) {
            build.quiet.store(true, Ordering::SeqCst);
            if let Ok(pid) = i32::try_from(build.pid)
                && let Some(pid) = rustix::process::Pid::from_raw(pid)
            {
                let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::INT);
            }
        }
    }

    /// Whether [`Builds::interrupt`] was called.
    pub fn interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }

    /// Runs `builds` from `dir`, at most `parallel` at a time, each go with
    /// its own GOTMPDIR under `scratch` (go killed by a signal leaves its
    /// work directory behind; mgo removes `scratch` whatever happens). The first
    /// failure stops the others (their output is dropped: it would repeat the
    /// same errors) and is returned.
    pub fn run_all(
        &self,
        dir: &Path,
        scratch: &Path,
        go_flags: &[OsString],
        packages: &[OsString],
        builds: &[VariantBuild],
        parallel: usize,
    ) -> Result<(), Error> {
        let queue = Mutex::new(builds.iter().cloned().collect::<VecDeque<_>>());
        let failure: Mutex<Option<Error>> = Mutex::new(None);
        thread::scope(|scope| {
            for _ in 0..parallel.clamp(1, builds.len().max(1)) {
                scope.spawn(|| {
                    loop {
                        let next = queue
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .pop_front();
                        let Some(build) = next else { break };
                        let stop = failure
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .is_some();
                        if stop || self.interrupted() {
                            break;
                        }
                        let result = self.run_one(dir, scratch, go_flags, packages, &build);
                        if let Err(err) = result {
                            let mut first = failure.lock().unwrap_or_else(PoisonError::into_inner);
                            if first.is_none() && !self.interrupted() {
                                self.stop_others(Some(build.level));
                                *first = Some(err);
                            }
                        }
                    }
                });
            }
        });
        if self.interrupted() {
            return Err(Error::Interrupted);
        }
        match failure.into_inner().unwrap_or_else(PoisonError::into_inner) {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    fn run_one(
        &self,
        dir: &Path,
        scratch: &Path,
        go_flags: &[OsString],
        packages: &[OsString],
        build: &VariantBuild,
    ) -> Result<(), Error> {
        let gotmpdir = scratch.join(format!("gotmp-v{}", build.level));
        std::fs::create_dir_all(&gotmpdir)
            .map_err(|e| Error::Message(format!("cannot create {}: {e}", gotmpdir.display())))?;
        let mut command = go_command(dir);
        command
            .arg("build")
            .args(go_flags)
            .args(
                build
                    .target
                    .iter()
                    .flat_map(|t| [OsStr::new("-o"), t.as_os_str()]),
            )
            .args(packages)
            .env("GOAMD64", format!("v{}", build.level))
            .env("GOTMPDIR", &gotmpdir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so that stopping it reaches the
            // compiler and linker processes go starts as well.
            .process_group(0);
        let quiet = Arc::new(AtomicBool::new(false));
        let mut child = {
            // Registering under the lock means an interrupt either sees this
            // build or happens before it starts (and then it is not started).
            let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
            if self.interrupted() {
                return Err(Error::Interrupted);
            }
            let child = command.spawn().map_err(|e| spawn_error(&e))?;
            running.push(Running {
                pid: child.id(),
                level: build.level,
                quiet: Arc::clone(&quiet),
            });
            child
        };
        let status = relay_and_wait(
            &mut child,
            &Relay {
                prefix: format!("v{}: ", build.level),
                quiet,
            },
        );
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|b| b.pid != child.id());
        let status = status.map_err(|e| Error::Message(format!("waiting for go build: {e}")))?;
        if status.success() {
            Ok(())
        } else {
            Err(Error::BuildFailed {
                level: build.level,
                status,
            })
        }
    }
}

/// Passes the child's stdout and stderr through, line by line with the
/// level's prefix, to ours; then waits for it.
fn relay_and_wait(child: &mut Child, relay: &Relay) -> io::Result<ExitStatus> {
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    thread::scope(|scope| {
        if let Some(stdout) = stdout {
            scope.spawn(|| relay_lines(stdout, &mut io::stdout(), relay));
        }
        if let Some(stderr) = stderr {
            scope.spawn(|| relay_lines(stderr, &mut io::stderr(), relay));
        }
    });
    child.wait()
}

fn relay_lines(from: impl Read, to: &mut impl Write, relay: &Relay) {
    let mut reader = BufReader::new(from);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if relay.quiet.load(Ordering::SeqCst) {
            continue; // keep draining so the child never blocks on a full pipe
        }
        let mut out = Vec::with_capacity(relay.prefix.len() + line.len() + 1);
        out.extend_from_slice(relay.prefix.as_bytes());
        out.extend_from_slice(&line);
        if !line.ends_with(b"\n") {
            out.push(b'\n');
        }
        let _ = to.write_all(&out);
        let _ = to.flush();
    }
}

/// Describes how go ended, for the `mgo:` line.
pub fn describe_status(status: &ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => status.to_string(),
    }
}

/// The directory go builds from: the current one, or `-C dir` under it.
pub fn build_dir(chdir: Option<&OsStr>) -> io::Result<PathBuf> {
    let cwd = std::env::current_dir()?;
    Ok(match chdir {
        Some(dir) => cwd.join(dir),
        None => cwd,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn selection_flags_keep_only_matching_flags() {
        let flags: Vec<OsString> = [
            "-C",
            "d",
            "-ldflags",
            "-s",
            "-tags",
            "x",
            "-json",
            "-mod=vendor",
            "-trimpath",
        ]
        .map(OsString::from)
        .to_vec();
        let kept: Vec<String> = selection_flags(&flags)
            .iter()
            .map(|f| f.to_string_lossy().into_owned())
            .collect();
        assert_eq!(kept, ["-C", "d", "-tags", "x", "-mod=vendor"]);
    }
}
