//! The harness: running mgo and go, fixtures built once per test run, and
//! helpers to read what a launcher said.

#![allow(dead_code)] // each test module uses its own part

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// An example program's directory.
pub fn example(name: &str) -> PathBuf {
    repo().join("examples").join(name)
}

/// A test program's directory.
pub fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/testdata")
        .join(name)
}

/// Fails the test, with what to install, when `name` is not on PATH.
pub fn require(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("this test needs `{name}` on PATH: install it (see .ci/run, e.g. apt-get install -y qemu-user)")
        })
}

/// A fresh directory under cargo's temporary directory for tests.
pub fn scratch() -> tempfile::TempDir {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
    fs::create_dir_all(base).unwrap();
    tempfile::Builder::new()
        .prefix("t-")
        .tempdir_in(base)
        .unwrap()
}

/// `mgo` from `dir`, with the environment variables that change what it
/// does removed, and its up-to-date state kept with the test run's files.
pub fn mgo(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mgo"));
    command.current_dir(dir).stdin(Stdio::null()).env(
        "MGOCACHE",
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("mgocache"),
    );
    for var in [
        "GOAMD64",
        "GOOS",
        "GOARCH",
        "GOFLAGS",
        "MGO_PARALLEL_BUILD",
        "MGODEBUG",
    ] {
        command.env_remove(var);
    }
    command
}

/// `go`, with the same environment rules as [`mgo`].
pub fn go(dir: &Path) -> Command {
    require("go");
    let mut command = Command::new("go");
    command.current_dir(dir).stdin(Stdio::null());
    for var in ["GOAMD64", "GOOS", "GOARCH", "GOFLAGS", "MGODEBUG"] {
        command.env_remove(var);
    }
    command
}

/// What a finished command left.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Asserts success and returns stdout as text.
    pub fn ok(&self) -> String {
        assert!(
            self.status.success(),
            "failed: {:?}\nstderr:\n{}",
            self.status,
            self.stderr
        );
        self.stdout_text()
    }
}

pub fn run(command: &mut Command) -> Run {
    // A file just written may still be open for writing in a child that
    // another test thread forked and has not exec'd yet (ETXTBSY): a race of
    // multi-threaded test harnesses, not of mgo. It clears once that child
    // execs, within moments even on a loaded machine.
    const ETXTBSY: i32 = 26;
    let deadline = Instant::now() + Duration::from_secs(10);
    let output = loop {
        match command.output() {
            Err(e) if e.raw_os_error() == Some(ETXTBSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2));
            }
            other => break other,
        }
    };
    let Output {
        status,
        stdout,
        stderr,
    } = output.unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    Run {
        status,
        stdout,
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// Runs an executable with a clean launcher environment: a bundle starts
/// its variant the default way, mapped in place.
pub fn exec(path: &Path) -> Command {
    let mut command = Command::new(path);
    command
        .env_remove("GOAMD64")
        .env_remove("MGODEBUG")
        .stdin(Stdio::null());
    command
}

/// The two ways a bundle starts its variant: the harness's one switch, so
/// that a test of how a program runs runs it both ways.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Launch {
    /// Mapped from the bundle's own pages (the default).
    Mapped,
    /// Through a memfd (`MGODEBUG=memfd`).
    Memfd,
}

impl Launch {
    /// Both, the default first.
    pub const ALL: [Launch; 2] = [Launch::Mapped, Launch::Memfd];

    /// The `MGODEBUG` items that select this way, for tests that set their
    /// own `MGODEBUG`.
    pub fn debug(self, items: &str) -> String {
        match (self, items) {
            (Launch::Mapped, items) => items.to_owned(),
            (Launch::Memfd, "") => "memfd".to_owned(),
            (Launch::Memfd, items) => format!("{items},memfd"),
        }
    }

    /// How `MGODEBUG=log` names it at the end of its line.
    pub fn logged(self) -> &'static str {
        match self {
            Launch::Mapped => "mapped",
            Launch::Memfd => "memfd",
        }
    }
}

/// Runs a bundle with a clean launcher environment, started `launch`'s way.
pub fn exec_as(launch: Launch, path: &Path) -> Command {
    let mut command = exec(path);
    if launch == Launch::Memfd {
        command.env("MGODEBUG", "memfd");
    }
    command
}

/// The launcher's `MGODEBUG=log` line for a raw variant of `level`.
pub fn starting(level: u8, launch: Launch) -> String {
    format!(
        "[mgo] launcher: starting variant GOAMD64=v{level} ({})",
        launch.logged()
    )
}

/// A program built as a bundle by mgo and, for comparison, four times by go.
pub struct Built {
    pub bundle: PathBuf,
    /// `plain[n]` is `GOAMD64=vn go build` with the same flags (index 0 unused).
    pub plain: [PathBuf; 5],
    pub flags: Vec<String>,
}

impl Built {
    pub fn plain(&self, level: u8) -> &Path {
        &self.plain[usize::from(level)]
    }
}

/// Builds `package` from `dir` with `flags`, once per test run, both ways.
/// Each key has its own cell: tests that need the same fixture wait for the
/// one build of it, and fixtures of different keys build in parallel.
pub fn built(key: &str, dir: &Path, flags: &[&str], package: &str) -> &'static Built {
    type Cell = Arc<OnceLock<&'static Built>>;
    static CACHE: OnceLock<Mutex<HashMap<String, Cell>>> = OnceLock::new();
    let cell: Cell = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(key.to_owned())
        .or_default()
        .clone();
    cell.get_or_init(|| build_fixture(key, dir, flags, package))
}

fn build_fixture(key: &str, dir: &Path, flags: &[&str], package: &str) -> &'static Built {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("fixtures")
        .join(key);
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(&out).unwrap();
    let bundle = out.join("bundle");
    run(mgo(dir).args(flags).arg("-o").arg(&bundle).arg(package)).ok();
    let plain = [0u8, 1, 2, 3, 4].map(|level| out.join(format!("plain.v{level}")));
    for level in 1..=4u8 {
        run(go(dir)
            .arg("build")
            .args(flags)
            .arg("-o")
            .arg(&plain[usize::from(level)])
            .arg(package)
            .env("GOAMD64", format!("v{level}")))
        .ok();
    }
    Box::leak(Box::new(Built {
        bundle,
        plain,
        flags: flags.iter().map(|s| s.to_string()).collect(),
    }))
}

pub fn hello() -> &'static Built {
    built("hello", &example("hello"), &[], ".")
}

/// hello as a position-independent executable (ET_DYN, an interpreter).
pub fn hello_pie() -> &'static Built {
    built("hello-pie", &example("hello"), &["-buildmode=pie"], ".")
}

/// hello with the race detector (cgo, an interpreter, a large bss).
pub fn hello_race() -> &'static Built {
    built("hello-race", &example("hello"), &["-race"], ".")
}

pub fn probe() -> &'static Built {
    built("probe", &testdata("probe"), &[], ".")
}

/// The highest level whose plain build of hello runs on this machine: what
/// the launcher must pick here.
pub fn host_level() -> u8 {
    static LEVEL: OnceLock<u8> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let hello = hello();
        (1..=4u8)
            .rev()
            .find(|&l| {
                exec(hello.plain(l))
                    .output()
                    .is_ok_and(|o| o.status.success())
            })
            .unwrap_or(0)
    })
}

/// The level whose plain build has exactly these bytes.
pub fn level_of(built: &Built, bytes: &[u8]) -> Option<u8> {
    (1..=4u8).find(|&l| fs::read(built.plain(l)).unwrap() == bytes)
}

/// The launcher's lines in a stderr text.
pub fn launcher_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("[mgo] launcher: "))
        .collect()
}

/// Copies an executable (keeping it executable) to `dest`.
pub fn copy_exe(from: &Path, dest: &Path) {
    fs::copy(from, dest).unwrap();
    fs::set_permissions(dest, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Asserts a launcher failure: the documented status, one `[mgo] launcher:`
/// line containing `needle`, never a signal.
pub fn assert_launcher_failure(run: &Run, status: i32, needle: &str) {
    assert_eq!(run.status.signal(), None, "killed by a signal: {run:?}");
    assert_eq!(run.status.code(), Some(status), "{run:?}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got {lines:?}");
    assert!(
        lines[0].starts_with("[mgo] launcher: ") && lines[0].contains(needle),
        "{lines:?}"
    );
    assert!(run.stdout.is_empty());
}

/// Names of the files in `dir`, sorted.
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

pub fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// File offset and size of the bundle segment, as readelf reads them.
pub fn segment(bundle: &Path) -> (usize, usize) {
    let out = run(Command::new(require("readelf")).arg("-lW").arg(bundle)).ok();
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("LOOS+0xd676f00"))
        .expect("bundle segment");
    let field = |i: usize| {
        usize::from_str_radix(
            line.split_whitespace()
                .nth(i)
                .unwrap()
                .trim_start_matches("0x"),
            16,
        )
        .unwrap()
    };
    (field(1), field(4))
}

/// File offset of the bundle segment: where the launcher's part ends.
pub fn segment_offset(bundle: &Path) -> usize {
    segment(bundle).0
}

/// GOROOT's cmd/vet: a large program (over 10 MB a variant), so that the
/// launcher verifies it in a forked child while copying.
pub fn vet() -> &'static Built {
    built("vet", &repo(), &[], "cmd/vet")
}
