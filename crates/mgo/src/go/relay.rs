//! Relaying the runs' output: each run's stdout and stderr read line by
//! line into one [`Merger`] (`merge.rs` decides what is printed, and how
//! it is marked), whose lines are printed, or kept back for a run whose
//! output only counts if it succeeds.

use super::failures::failed_test;
use super::merge::{Merger, Out, Stream};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::process::{Child, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread;

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

/// The output of a set of runs: merged, then printed or held.
pub(super) struct Relayer {
    merger: Mutex<Merger>,
    /// `Some` when lines are kept back instead of printed.
    held: Option<Mutex<Held>>,
    /// stdout is JSON lines.
    json: bool,
    /// The tests each level's output said failed, in the order they came.
    failed_tests: Mutex<Vec<(u8, String)>>,
}

impl Relayer {
    pub(super) fn new(merger: Merger, hold: bool, json: bool) -> Self {
        Self {
            merger: Mutex::new(merger),
            held: hold.then(Mutex::default),
            json,
            failed_tests: Mutex::default(),
        }
    }

    /// Notes a test that `level`'s stdout line says failed.
    fn observe(&self, level: u8, line: &[u8]) {
        if let Some(test) = failed_test(line.trim_ascii_end(), self.json) {
            self.failed_tests
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((level, test));
        }
    }

    /// Passes `change` the merger and prints (or holds) the lines it
    /// releases, before any other thread may release more: the order in
    /// which lines leave the merger is the order they are printed in.
    fn with_merger(&self, change: impl FnOnce(&mut Merger) -> Vec<Out>) {
        let mut merger = self.merger.lock().unwrap_or_else(PoisonError::into_inner);
        let lines = change(&mut merger);
        self.emit(lines);
    }

    fn emit(&self, lines: Vec<Out>) {
        if let Some(held) = &self.held {
            let mut held = held.lock().unwrap_or_else(PoisonError::into_inner);
            held.extend(lines.into_iter().map(|(s, l)| (s == Stream::Stdout, l)));
            return;
        }
        for (stream, line) in lines {
            // A closed stdout or stderr of mgo's is not an error: the
            // line is dropped and go runs to its end.
            let _ = match stream {
                Stream::Stdout => write_line(&mut io::stdout().lock(), &line),
                Stream::Stderr => write_line(&mut io::stderr().lock(), &line),
            };
        }
    }

    /// `level` ran to its end.
    pub(super) fn finished(&self, level: u8) {
        self.with_merger(|m| m.finished(level));
    }

    /// `level` was stopped by mgo.
    pub(super) fn stopped(&self, level: u8) {
        self.with_merger(|m| m.stopped(level));
    }

    /// No level runs any more, or none may: every line still held leaves.
    pub(super) fn stop_all(&self) {
        self.with_merger(Merger::stop_all);
    }

    /// The lines kept back, and the tests that failed at each level.
    pub(super) fn into_parts(self) -> (Held, Vec<(u8, String)>) {
        let held = self
            .held
            .map(|h| h.into_inner().unwrap_or_else(PoisonError::into_inner))
            .unwrap_or_default();
        let failed = self
            .failed_tests
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        (held, failed)
    }
}

fn write_line(to: &mut impl Write, line: &[u8]) -> io::Result<()> {
    to.write_all(line)?;
    to.flush()
}

/// Reads the child's stdout and stderr, line by line, into `relayer` as
/// `level`'s, until both close; then waits for it. Once `quiet` is set (mgo
/// is stopping it) its lines are read and dropped, so that it never blocks
/// on a full pipe.
pub(super) fn relay_and_wait(
    child: &mut Child,
    level: u8,
    quiet: &AtomicBool,
    relayer: &Relayer,
) -> io::Result<ExitStatus> {
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    thread::scope(|scope| {
        if let Some(stdout) = stdout {
            scope.spawn(|| relay_lines(stdout, level, Stream::Stdout, quiet, relayer));
        }
        if let Some(stderr) = stderr {
            scope.spawn(|| relay_lines(stderr, level, Stream::Stderr, quiet, relayer));
        }
    });
    child.wait()
}

fn relay_lines(from: impl Read, level: u8, stream: Stream, quiet: &AtomicBool, relayer: &Relayer) {
    let mut reader = BufReader::new(from);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if !quiet.load(Ordering::SeqCst) {
            if stream == Stream::Stdout {
                relayer.observe(level, &line);
            }
            relayer.with_merger(|m| m.line(level, stream, &line));
        }
    }
}
