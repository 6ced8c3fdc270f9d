//! The harness: running mgo and go, fixtures built once per test run, and
//! helpers to read what a launcher said.

#![allow(dead_code)] // each test module uses its own part

use mgo_format::{Block, Blocks, Entry, Table};
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::ops::Range;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
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

/// Delve, built from the Go module proxy once per test run (a version
/// pinned for repeatable runs).
pub fn delve() -> &'static Path {
    static DELVE: OnceLock<PathBuf> = OnceLock::new();
    DELVE.get_or_init(|| {
        let bin = Path::new(env!("CARGO_TARGET_TMPDIR")).join("tools");
        let dir = scratch();
        run(go(dir.path())
            .args(["install", "github.com/go-delve/delve/cmd/dlv@v1.27.2"])
            .env("GOBIN", &bin))
        .ok();
        bin.join("dlv")
    })
}

/// benchstat (golang.org/x/perf), built from the Go module proxy once per
/// test run at a pinned version: the tool users compare `mgo test -bench`
/// output with, and whose numbers `bench/stats.rs` is tested against.
pub fn benchstat() -> &'static Path {
    static BENCHSTAT: OnceLock<PathBuf> = OnceLock::new();
    BENCHSTAT.get_or_init(|| {
        let bin = Path::new(env!("CARGO_TARGET_TMPDIR")).join("tools");
        let dir = scratch();
        run(go(dir.path())
            .args([
                "install",
                "golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da",
            ])
            .env("GOBIN", &bin))
        .ok();
        bin.join("benchstat")
    })
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
    let output = command.output();
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

/// Values made once per test run, one per key: tests that need the same
/// value wait for the one making of it, and values of different keys are
/// made in parallel.
pub struct Cells<T: 'static>(Mutex<BTreeMap<String, Arc<OnceLock<&'static T>>>>);

impl<T: Send + Sync> Cells<T> {
    pub const fn new() -> Self {
        Cells(Mutex::new(BTreeMap::new()))
    }

    /// The value of `key`, made by `make` if no test made it yet.
    pub fn get(&self, key: &str, make: impl FnOnce() -> T) -> &'static T {
        let cell = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.to_owned())
            .or_default()
            .clone();
        cell.get_or_init(|| Box::leak(Box::new(make())))
    }
}

/// A program built as a bundle by mgo and, for comparison, four times by go.
pub struct Built {
    pub key: String,
    /// Where mgo and go run, with `flags` and `package`.
    pub dir: PathBuf,
    pub package: String,
    pub flags: Vec<String>,
    pub bundle: PathBuf,
    /// `plain[n]` is `GOAMD64=vn go build` with the same flags (index 0 unused).
    pub plain: [PathBuf; 5],
}

impl Built {
    pub fn plain(&self, level: u8) -> &Path {
        &self.plain[usize::from(level)]
    }

    /// The program built by mgo with `MGO_COMPRESS=mode`, once per test run:
    /// for tests that only read it (or read copies of it). `dir` must still
    /// exist when a test first asks.
    pub fn compressed(&self, mode: &str) -> &'static Path {
        static BUNDLES: Cells<PathBuf> = Cells::new();
        let bundle = self.bundle.with_file_name(format!("bundle-{mode}"));
        BUNDLES.get(&format!("{}/{mode}", self.key), || {
            run(mgo(&self.dir)
                .env("MGO_COMPRESS", mode)
                .args(&self.flags)
                .arg("-o")
                .arg(&bundle)
                .arg(&self.package))
            .ok();
            bundle
        })
    }
}

/// Builds `package` from `dir` with `flags`, once per test run, both ways.
pub fn built(key: &str, dir: &Path, flags: &[&str], package: &str) -> &'static Built {
    static FIXTURES: Cells<Built> = Cells::new();
    let fixture = FIXTURES.get(key, || build_fixture(key, dir, flags, package));
    // Whichever test asks first builds it: two ways of asking would make
    // a test's fixture depend on the order tests run in.
    assert!(
        fixture.dir == dir && fixture.flags == flags && fixture.package == package,
        "fixture {key:?} is asked for in two ways: give each its own key"
    );
    fixture
}

fn build_fixture(key: &str, dir: &Path, flags: &[&str], package: &str) -> Built {
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
    Built {
        key: key.to_owned(),
        dir: dir.to_owned(),
        package: package.to_owned(),
        flags: flags.iter().map(|s| s.to_string()).collect(),
        bundle,
        plain,
    }
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

/// Copies an executable to `dest`, mode 0755.
pub fn copy_exe(from: &Path, dest: &Path) {
    install_exe(from, dest, 0o755);
}

/// Copies `from` to `dest` with `mode` through a child process, so that no
/// descriptor of the test process ever writes `dest`. Written here, the
/// file would be open for writing, for a moment, in every child another
/// test thread forks in that moment, and an exec of it before that child
/// execs would fail with ETXTBSY: a race of multi-threaded test harnesses,
/// not of mgo, and invisible when the exec happens inside another program
/// (chroot, setpriv, qemu).
pub fn install_exe(from: &Path, dest: &Path, mode: u32) {
    let out = run(Command::new("cp").arg("--").arg(from).arg(dest));
    assert!(out.status.success(), "cp {from:?} {dest:?}: {}", out.stderr);
    fs::set_permissions(dest, fs::Permissions::from_mode(mode)).unwrap();
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

/// A Go module in `dir`: a `go.mod` for `path` (go 1.22) and `files`,
/// each a path relative to `dir` and its text.
pub fn go_module(dir: &Path, path: &str, files: &[(&str, &str)]) {
    let go_mod = format!("module {path}\n\ngo 1.22\n");
    for (name, text) in [("go.mod", go_mod.as_str())].iter().chain(files) {
        let file = dir.join(name);
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(file, text).unwrap();
    }
}

/// Writes `bytes` to `path` as an executable file, and returns `path`.
pub fn write_exe(path: &Path, bytes: &[u8]) -> PathBuf {
    write_exe_mode(path, bytes, 0o755)
}

/// Writes `bytes` as an executable with `mode`; the file that runs is
/// written by a child process (see `install_exe`), the bytes staged in a
/// directory of their own.
pub fn write_exe_mode(path: &Path, bytes: &[u8], mode: u32) -> PathBuf {
    let staging = scratch();
    let staged = staging.path().join("staged");
    fs::write(&staged, bytes).unwrap();
    install_exe(&staged, path, mode);
    path.to_path_buf()
}

/// A damaged copy of a file's `bytes`, written to `path` as an executable
/// (so that it can be started as well as read): the byte at `at` XORed
/// with `bits`.
pub fn damaged_copy(bytes: &[u8], at: usize, bits: u8, path: &Path) -> PathBuf {
    assert_ne!(bits, 0, "damage flips at least one bit");
    let mut damaged = bytes.to_vec();
    damaged[at] ^= bits;
    write_exe(path, &damaged)
}

/// A bundle read back through the format's own definition: the file's
/// bytes, where its segment lies, and its table (`mgo_format::Table::parse`).
pub struct Bundle {
    pub bytes: Vec<u8>,
    /// The bundle segment's file bytes (its program header's offset and
    /// size).
    pub segment: Range<usize>,
    pub table: Table,
}

impl Bundle {
    /// The file at `path` as a bundle; `None` for a file that is not a
    /// 64-bit ELF file with a bundle segment whose table the format accepts.
    pub fn read(path: &Path) -> Option<Bundle> {
        let bytes = fs::read(path).unwrap_or_else(|e| panic!("cannot read {path:?}: {e}"));
        let segment = bundle_segment(&bytes)?;
        let size = segment.len() as u64;
        let table = Table::parse(bytes.get(segment.clone())?, size).ok()?;
        Some(Bundle {
            bytes,
            segment,
            table,
        })
    }

    /// The segment's bytes, which the format's offsets are relative to.
    pub fn segment_bytes(&self) -> &[u8] {
        &self.bytes[self.segment.clone()]
    }

    /// `entry`'s validated block directory.
    pub fn blocks(&self, entry: &Entry) -> Blocks<'_> {
        let reference = self.table.reference_of(entry).map(|r| r.size);
        Blocks::parse(self.segment_bytes(), entry, reference).unwrap()
    }

    /// File offset of `entry`'s stored bytes.
    pub fn stored_at(&self, entry: &Entry) -> usize {
        self.segment.start + entry.offset as usize
    }

    /// File offset of the middle of `block`'s stored bytes (a block of
    /// [`Bundle::blocks`]).
    pub fn middle_of(&self, block: &Block<'_>) -> usize {
        let start = block.stored.as_ptr() as usize - self.bytes.as_ptr() as usize;
        start + block.stored.len() / 2
    }
}

/// The bundle at `path`, which must be one.
pub fn read_bundle(path: &Path) -> Bundle {
    Bundle::read(path).unwrap_or_else(|| panic!("{} is not a bundle", path.display()))
}

/// Whether `path` is a bundle: an ELF file whose bundle segment holds a
/// table the format accepts.
pub fn is_bundle(path: &Path) -> bool {
    Bundle::read(path).is_some()
}

/// The file bytes of the bundle segment (program header type
/// `mgo_format::SEGMENT_TYPE`) of a 64-bit little-endian ELF file.
fn bundle_segment(elf: &[u8]) -> Option<Range<usize>> {
    let field = |at: usize, len: usize| -> Option<u64> {
        let bytes = elf.get(at..at.checked_add(len)?)?;
        Some(bytes.iter().rev().fold(0, |v, &b| v << 8 | u64::from(b)))
    };
    if elf.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let (phoff, phentsize, phnum) = (field(0x20, 8)?, field(0x36, 2)?, field(0x38, 2)?);
    (0..phnum).find_map(|i| {
        let header = usize::try_from(phoff.checked_add(i.checked_mul(phentsize)?)?).ok()?;
        if field(header, 4)? != u64::from(mgo_format::SEGMENT_TYPE) {
            return None;
        }
        let offset = usize::try_from(field(header + 8, 8)?).ok()?;
        let size = usize::try_from(field(header + 32, 8)?).ok()?;
        let segment = offset..offset.checked_add(size)?;
        (segment.end <= elf.len()).then_some(segment)
    })
}

/// File offset of the bundle segment: where the launcher's part ends.
pub fn segment_offset(bundle: &Path) -> usize {
    read_bundle(bundle).segment.start
}

/// Polls `done` until it holds, for at most `limit`: whether it came to
/// hold. Fails the test at once if `child`, the process whose work is
/// awaited, ends first.
#[must_use]
pub fn wait_until(
    limit: Duration,
    mut child: Option<&mut Child>,
    mut done: impl FnMut() -> bool,
) -> bool {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > limit {
            return false;
        }
        if let Some(child) = child.as_deref_mut() {
            let status = child.try_wait().unwrap();
            assert!(status.is_none(), "{child:?} ended early: {status:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// GOROOT's cmd/vet: a large program (over 10 MB a variant), so that the
/// launcher verifies it in a forked child while copying.
pub fn vet() -> &'static Built {
    built("vet", &repo(), &[], "cmd/vet")
}

/// GOROOT's cmd/gofmt, stripped and without paths, as releases build it.
/// One definition: a fixture is built once per run by whichever test asks
/// first, so every test must ask for it the same way, from a directory
/// that outlives the test.
pub fn gofmt() -> &'static Built {
    built(
        "gofmt",
        &repo(),
        &["-trimpath", "-ldflags=-s -w"],
        "cmd/gofmt",
    )
}

/// The lines mgo itself printed (`mgo: ...`) among `stderr`'s.
pub fn mgo_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.starts_with("mgo: ")).collect()
}

/// A program of testdata/spin spinning until dropped.
pub struct Spinning(std::process::Child);

impl Spinning {
    /// Starts `program forever` with `env`, once it is spinning.
    pub fn start(program: &Path, env: &[(&str, &str)]) -> Self {
        use std::io::BufRead;
        let mut command = exec(program);
        command
            .arg("forever")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped());
        let mut child = command.spawn().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "spinning\n", "{program:?} did not start");
        Self(child)
    }

    pub fn pid(&self) -> String {
        self.0.id().to_string()
    }

    /// A core of the running process, made in `dir` by gdb's `gcore`,
    /// which changes no system setting.
    pub fn core_in(&self, dir: &Path) -> PathBuf {
        let core = dir.join("core");
        run(Command::new(require("gcore"))
            .arg("-o")
            .arg(&core)
            .arg(self.pid()))
        .ok();
        core.with_extension(self.pid())
    }
}

impl Drop for Spinning {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
