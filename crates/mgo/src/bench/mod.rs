//! `mgo test -bench`: each level's test binaries built once, then run
//! round by round (v1, v2, v3, v1, v2, v3, ...), one `-test.count=1` run
//! per level and package each round, so that a shared machine's drift
//! falls on every level alike. The output is go's benchmark format with a
//! `goamd64: vN` line heading each run, which `benchstat -col goamd64`
//! reads; mgo's own summary (`summary.rs`, on `stats.rs`) follows on
//! stderr, so that stdout stays a file benchstat reads whole.

pub mod stats;
pub mod summary;

use crate::cli::{Request, TestSplit};
use crate::error::{self, Context, Result};
use crate::go::{self, LevelRun, OnFailure, Relay};
use crate::place::scratch::Scratch;
use crate::{console, interrupt, settings};
use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

pub use summary::disagreements;

/// Whether `split` asks for benchmarks (`-bench` with a pattern).
pub fn wanted(split: &TestSplit) -> bool {
    split.value("bench").is_some_and(|p| !p.is_empty())
}

/// What the rounds came to.
pub struct Outcome {
    /// Each level's status: its first failing run's, else a success.
    pub statuses: Vec<(u8, ExitStatus)>,
    /// Each test failure seen, with its level.
    pub failed_tests: Vec<(u8, String)>,
}

/// Flags whose files every run of every level would write over.
const ONE_FILE_FLAGS: &[&str] = &[
    "blockprofile",
    "coverprofile",
    "cpuprofile",
    "memprofile",
    "mutexprofile",
    "trace",
];

/// One package with tests: its import path, directory, and each level's
/// test binary.
struct Package {
    path: String,
    dir: PathBuf,
    binaries: Vec<(u8, PathBuf)>,
}

/// Builds each level's test binaries, runs the rounds, prints the
/// benchmark output and the summary.
pub fn run(
    request: &Request,
    split: &TestSplit,
    build_dir: &Path,
    goflags: &str,
    levels: &[u8],
    json: bool,
) -> Result<Outcome> {
    for name in ONE_FILE_FLAGS {
        if split.value(name).is_some() {
            return Err(error::usage(format!(
                "test -bench: -{name} would be written over by every run of every level: profile one level with GOAMD64=vN go test"
            )));
        }
    }
    if split.value("fuzz").is_some() {
        return Err(error::usage(
            "test -bench: -fuzz runs one level at a time: use GOAMD64=vN go test -fuzz",
        ));
    }
    let rounds = match split.value("count") {
        None => 1,
        Some(count) => count
            .to_str()
            .and_then(|c| c.parse::<usize>().ok())
            .filter(|&c| c > 0)
            .ok_or_else(|| {
                error::usage(format!(
                    "test -bench: -count {}: give how many rounds to run, a positive whole number",
                    count.to_string_lossy()
                ))
            })?,
    };
    let scratch = Scratch::create()?;
    let packages = build(request, split, build_dir, goflags, levels, &scratch)?;
    let mut results = summary::Results::default();
    let mut outcome = Outcome {
        statuses: Vec::new(),
        failed_tests: Vec::new(),
    };
    for (level, index) in schedule(rounds, levels, packages.len()) {
        let Some(package) = packages.get(index) else {
            continue;
        };
        let Some((_, binary)) = package.binaries.iter().find(|(l, _)| *l == level) else {
            continue;
        };
        let status = run_binary(
            split,
            package,
            binary,
            level,
            json,
            &mut results,
            &mut outcome.failed_tests,
        )?;
        match outcome.statuses.iter_mut().find(|(l, _)| *l == level) {
            Some((_, kept)) if kept.success() => *kept = status,
            Some(_) => {}
            None => outcome.statuses.push((level, status)),
        }
    }
    if !results.is_empty() {
        let text = summary::summary(&results, levels);
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }
    Ok(outcome)
}

/// The order of the runs: round after round, each round every level from
/// the lowest, each level every package; a run is (level, package index).
fn schedule(rounds: usize, levels: &[u8], packages: usize) -> Vec<(u8, usize)> {
    (0..rounds)
        .flat_map(|_| {
            levels
                .iter()
                .flat_map(move |&l| (0..packages).map(move |p| (l, p)))
        })
        .collect()
}

/// `go test -c` once per level and package, each level's in parallel;
/// the packages without test files are left out.
fn build(
    request: &Request,
    split: &TestSplit,
    build_dir: &Path,
    goflags: &str,
    levels: &[u8],
    scratch: &Scratch,
) -> Result<Vec<Package>> {
    let parallel = settings::parallel_builds()?;
    let listed = go::package_dirs(
        build_dir,
        goflags,
        &request.selection_flags,
        &split.packages,
    )?;
    let mut packages = Vec::new();
    for (index, (path, dir)) in listed.into_iter().enumerate() {
        let mut runs = Vec::new();
        let mut binaries = Vec::new();
        for &level in levels {
            let binary = scratch.level_dir(level)?.join(format!("{index}.test"));
            let mut args: Vec<&OsStr> =
                vec![OsStr::new("-c"), OsStr::new("-o"), binary.as_os_str()];
            args.extend(split.build.iter().map(OsString::as_os_str));
            args.push(OsStr::new(&path));
            runs.push(LevelRun {
                level,
                command: go::level_command(build_dir, level, "test", &args),
            });
            binaries.push((level, binary));
        }
        let outcome = go::run_levels(
            runs,
            parallel,
            OnFailure::StopOthers,
            Relay {
                json: false,
                hold: false,
                each_line: false,
            },
        )?;
        if let Some((level, status)) = outcome.first_failure {
            return Err(error::go_failed(
                status,
                Some(format!(
                    "building the GOAMD64=v{level} test binary of {path} failed: go test -c: {}",
                    go::describe_status(&status)
                )),
            ));
        }
        // go test -c writes nothing for a package without tests, and says
        // so itself ("[no test files]").
        if binaries.iter().any(|(_, b)| !b.exists()) {
            continue;
        }
        packages.push(Package {
            path,
            dir,
            binaries,
        });
    }
    Ok(packages)
}

/// Runs one level's test binary of one package once, as `go test` would
/// (in the package's directory, with `-test.count=1`), printing its output
/// under a `goamd64: vN` line, or with `-json` through test2json with the
/// level in each object; notes its benchmarks and failed tests.
fn run_binary(
    split: &TestSplit,
    package: &Package,
    binary: &Path,
    level: u8,
    json: bool,
    results: &mut summary::Results,
    failed: &mut Vec<(u8, String)>,
) -> Result<ExitStatus> {
    interrupt::check()?;
    let mut program: Vec<OsString> = Vec::new();
    if json {
        program.extend(["go", "tool", "test2json", "-t", "-p"].map(OsString::from));
        program.push(OsString::from(&package.path));
    }
    if let Some(exec) = &split.exec {
        program.extend(
            exec.to_string_lossy()
                .split_whitespace()
                .map(OsString::from),
        );
    }
    program.push(binary.as_os_str().to_owned());
    let mut args = vec![OsString::from("-test.paniconexit0")];
    if split.value("timeout").is_none() {
        // go test's default.
        args.push(OsString::from("-test.timeout=10m0s"));
    }
    for (name, value) in &split.binary {
        if name == "count" || (json && name == "v") {
            continue;
        }
        let mut arg = OsString::from(format!("-test.{name}"));
        if let Some(value) = value {
            arg.push("=");
            arg.push(value);
        }
        args.push(arg);
    }
    args.push(OsString::from("-test.count=1"));
    if json {
        args.push(OsString::from("-test.v=test2json"));
    }
    args.extend(split.args.iter().cloned());

    let (first, rest) = program
        .split_first()
        .ok_or_else(|| error::fail("test -bench: -exec names no program"))?;
    let mut command = go::child_command(first, &package.dir);
    command
        .args(rest)
        .args(&args)
        .env("GOAMD64", format!("v{level}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0);
    let started = Instant::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot run the v{level} test binary of {}", package.path))?;
    let quiet = Arc::new(AtomicBool::new(false));
    let pid = child.id();
    if !interrupt::register(pid, Arc::clone(&quiet)) {
        interrupt::signal_group(pid);
    }
    if !json {
        console::print(&format!("goamd64: v{level}\n"));
    }
    // test2json may cut a line into several "Output" pieces: they are
    // joined before benchmark lines are looked for.
    let mut pending = String::new();
    let mut note_output = |text: &str, results: &mut summary::Results| {
        pending.push_str(text);
        while let Some(end) = pending.find('\n') {
            let line: String = pending.drain(..=end).collect();
            if let Some((name, ns)) = summary::benchmark_line(&line) {
                results.add(level, &package.path, &name, ns);
            }
        }
    };
    if let Some(stdout) = child.stdout.take() {
        let mut reader = BufReader::new(stdout);
        let mut line = Vec::new();
        let mut out = std::io::stdout();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let trimmed = line.trim_ascii_end();
            if let Some(test) = go::failed_test(trimmed, json) {
                failed.push((level, test));
            }
            if json {
                let _ = out.write_all(&go::with_level_field(level, trimmed));
                if let Ok(value) = serde_json::from_slice::<serde_json::Value>(trimmed)
                    && let Some(text) = value.get("Output").and_then(|o| o.as_str())
                {
                    note_output(text, results);
                }
            } else {
                let _ = out.write_all(&line);
                note_output(&String::from_utf8_lossy(&line), results);
            }
            let _ = out.flush();
        }
    }
    note_output("\n", results);
    let status = child.wait();
    interrupt::unregister(pid);
    interrupt::check()?;
    let status = status.with_context(|| format!("waiting for the v{level} test binary"))?;
    if !json {
        let word = if status.success() { "ok  " } else { "FAIL" };
        console::print(&format!(
            "{word}\t{}\t{:.3}s\n",
            package.path,
            started.elapsed().as_secs_f64()
        ));
    }
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_take_turns_round_by_round() {
        assert_eq!(
            schedule(2, &[1, 2, 3], 1),
            [(1, 0), (2, 0), (3, 0), (1, 0), (2, 0), (3, 0)]
        );
        assert_eq!(schedule(1, &[2, 3], 2), [(2, 0), (2, 1), (3, 0), (3, 1)]);
        assert!(schedule(3, &[1], 0).is_empty());
    }
}
