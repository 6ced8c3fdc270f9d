//! One go command per level: each in its own process group, at most so
//! many at a time, lowest level first; with [`OnFailure::StopOthers`] the
//! first failure stops the rest.

use super::command::{go_command, spawn_error};
use super::merge::Marking;
use super::merge::Merger;
use super::relay::{Held, Relayer, relay_and_wait};
use crate::error::{self, Result, fail};
use crate::interrupt;
use std::collections::VecDeque;
use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

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

/// How each run's output is passed on. A line every level prints is
/// printed once, as go printed it; a line some level lacks is marked with
/// the levels that printed it, `v3: ` or `v3,v4: ` (see `merge.rs`). With
/// `-x` or `-n`, and for tests ([`OnFailure::RunAll`]), every line is
/// marked with its level.
#[derive(Clone, Copy)]
pub struct Relay {
    /// go prints JSON lines on stdout (`-json`): the level goes into each
    /// object as a `"GOAMD64"` field instead of a prefix, and objects are
    /// never merged.
    pub json: bool,
    /// Keep the marked lines in [`Outcome::held`] instead of printing
    /// them, for a run whose output only counts if it succeeds.
    pub hold: bool,
    /// Mark every line with its level instead of printing a line every
    /// level prints once: for tests, and for `-x` and `-n`.
    pub each_line: bool,
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
    /// Each test that a level's output said failed (`go test`), with the
    /// level, in the order the lines came.
    pub failed_tests: Vec<(u8, String)>,
}

/// Runs `runs`, at most `parallel` at a time, lowest level first. With
/// [`OnFailure::StopOthers`] the first failure stops the rest (what they
/// print from then on is dropped: it would repeat the same errors) and runs
/// not yet started are skipped.
pub fn run_levels(
    runs: Vec<LevelRun>,
    parallel: usize,
    on_failure: OnFailure,
    relay: Relay,
) -> Result<Outcome> {
    let workers = parallel.clamp(1, runs.len().max(1));
    let levels: Vec<u8> = runs.iter().map(|run| run.level).collect();
    let marking = if relay.each_line {
        Marking::EachLine
    } else {
        Marking::Shared
    };
    let relayer = Relayer::new(
        Merger::new(&levels, marking, relay.json),
        relay.hold,
        relay.json,
    );
    let set = RunSet::new(runs, on_failure, relayer);
    thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| set.work());
        }
    });
    set.outcome()
}

/// A set of runs in progress, shared by the threads that start them.
struct RunSet {
    queue: Mutex<VecDeque<LevelRun>>,
    on_failure: OnFailure,
    relayer: Relayer,
    /// Each finished run's level and status, in the order they ended.
    results: Mutex<Vec<(u8, ExitStatus)>>,
    first_failure: Mutex<Option<(u8, ExitStatus)>>,
    /// A run that could not be started or waited for.
    failure: Mutex<Option<error::Error>>,
    failed: AtomicBool,
}

/// A run that ended: its process group and how it ended.
struct Ended {
    pid: u32,
    status: ExitStatus,
}

impl RunSet {
    fn new(runs: Vec<LevelRun>, on_failure: OnFailure, relayer: Relayer) -> Self {
        Self {
            queue: Mutex::new(runs.into_iter().collect()),
            on_failure,
            relayer,
            results: Mutex::default(),
            first_failure: Mutex::default(),
            failure: Mutex::default(),
            failed: AtomicBool::new(false),
        }
    }

    /// One worker: takes runs until none is left or the set must stop.
    fn work(&self) {
        while let Some(run) = self.next() {
            let level = run.level;
            let ended = run_one(run, &self.relayer);
            self.record(level, ended);
        }
    }

    /// The next run to start, unless mgo was interrupted or a failure
    /// stops the set.
    fn next(&self) -> Option<LevelRun> {
        let stopping =
            self.on_failure == OnFailure::StopOthers && self.failed.load(Ordering::SeqCst);
        if interrupt::interrupted() || stopping {
            return None;
        }
        lock(&self.queue).pop_front()
    }

    /// Notes how a run ended; the first failure stops the others.
    fn record(&self, level: u8, ended: Result<Ended>) {
        match ended {
            Ok(Ended { pid, status }) => {
                if !status.success() && !self.failed.swap(true, Ordering::SeqCst) {
                    *lock(&self.first_failure) = Some((level, status));
                    if self.on_failure == OnFailure::StopOthers {
                        // The others' output stops here: what they printed
                        // so far is released now.
                        self.relayer.stop_all();
                        interrupt::stop_children(Some(pid));
                    }
                }
                lock(&self.results).push((level, status));
            }
            Err(err) => {
                self.failed.store(true, Ordering::SeqCst);
                self.relayer.stop_all();
                interrupt::stop_children(None);
                lock(&self.failure).get_or_insert(err);
            }
        }
    }

    /// What the set came to, once every worker is done.
    fn outcome(self) -> Result<Outcome> {
        // Runs skipped or interrupted: nothing more comes.
        self.relayer.stop_all();
        interrupt::check()?;
        if let Some(err) = into_inner(self.failure) {
            return Err(err);
        }
        let mut statuses = into_inner(self.results);
        statuses.sort_by_key(|(level, _)| *level);
        let (held, failed_tests) = self.relayer.into_parts();
        Ok(Outcome {
            statuses,
            first_failure: into_inner(self.first_failure),
            held,
            failed_tests,
        })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn into_inner<T>(mutex: Mutex<T>) -> T {
    mutex.into_inner().unwrap_or_else(PoisonError::into_inner)
}

/// Starts one run, relays its output and waits for it.
fn run_one(mut run: LevelRun, relayer: &Relayer) -> Result<Ended> {
    let quiet = Arc::new(AtomicBool::new(false));
    let mut child = run.command.spawn().map_err(|e| spawn_error(&e))?;
    let pid = child.id();
    if !interrupt::register(pid, Arc::clone(&quiet)) {
        // Interrupted while it started: stop it like the others.
        quiet.store(true, Ordering::SeqCst);
        interrupt::signal_group(pid);
    }
    let status = relay_and_wait(&mut child, run.level, &quiet, relayer);
    interrupt::unregister(pid);
    if quiet.load(Ordering::SeqCst) {
        relayer.stopped(run.level);
    } else {
        relayer.finished(run.level);
    }
    let status = status.map_err(|e| fail(format!("waiting for go: {e}")))?;
    Ok(Ended { pid, status })
}
