//! Relaying the runs' output: each run's stdout and stderr read line by
//! line into one [`Merger`] (`merge.rs` decides what is printed, and how
//! it is marked), whose lines are printed, or kept back for a run whose
//! output only counts if it succeeds.

use super::merge::{Marking, Merger, Out, Stream};
use crate::cli;
use std::ffi::{OsStr, OsString};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitStatus};
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
}

impl Relayer {
    pub(super) fn new(merger: Merger, hold: bool) -> Self {
        Self {
            merger: Mutex::new(merger),
            held: hold.then(Mutex::default),
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

    /// The lines kept back.
    pub(super) fn into_held(self) -> Held {
        self.held
            .map(|h| h.into_inner().unwrap_or_else(PoisonError::into_inner))
            .unwrap_or_default()
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
            relayer.with_merger(|m| m.line(level, stream, &line));
        }
    }
}

/// How the lines of these runs are marked: a build's shared lines once
/// ([`Marking::Shared`]), unless go echoes its commands (`-x`, `-n`: each
/// level's commands name its own files and GOAMD64, and a merged script
/// would be no level's); tests (`each_level_matters`) line by line.
pub(super) fn marking<'a>(
    commands: impl IntoIterator<Item = &'a Command>,
    each_level_matters: bool,
    goflags: &str,
) -> Marking {
    if each_level_matters
        || commands
            .into_iter()
            .any(|command| echoes_commands(command, goflags))
    {
        Marking::EachLine
    } else {
        Marking::Shared
    }
}

/// Whether go, run as `command`, prints the commands it runs: `-x` or `-n`
/// among its flags (read by mgo's own parser, which knows which flags take
/// a value), or in GOFLAGS (the command's own, else `goflags`).
fn echoes_commands(command: &Command, goflags: &str) -> bool {
    let args: Vec<OsString> = command.get_args().map(OsStr::to_owned).collect();
    let request = match cli::parse(args) {
        Ok(cli::Command::Build(request) | cli::Command::Test(request)) => request,
        _ => return false,
    };
    // The flags that only change what go prints: `go_args` less `key_args`.
    let mut key = request.key_args.iter().peekable();
    let talk: Vec<String> = request
        .go_args
        .iter()
        .filter(|arg| key.next_if_eq(arg).is_none())
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect();
    let own_goflags = command
        .get_envs()
        .find(|(name, _)| *name == "GOFLAGS")
        .and_then(|(_, value)| value)
        .map(|value| value.to_string_lossy().into_owned());
    let goflags = own_goflags.as_deref().unwrap_or(goflags);
    let set = |flags: &str, name| cli::from_goflags(flags, name).is_some_and(|v| is_true(&v));
    request.dry_run || set(&talk.join(" "), "x") || set(goflags, "x") || set(goflags, "n")
}

/// A true boolean flag value, as go's flag package reads it.
fn is_true(value: &str) -> bool {
    matches!(value, "1" | "t" | "T" | "true" | "TRUE" | "True")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(args: &[&str]) -> Command {
        let mut command = Command::new("go");
        command
            .arg("build")
            .args(["-o", "/tmp/x/v1/out"])
            .args(args);
        command
    }

    #[test]
    fn command_echoes_are_found_where_go_reads_them() {
        let echoes = |args: &[&str], goflags| echoes_commands(&build(args), goflags);
        assert!(echoes(&["-x", "."], ""));
        assert!(echoes(&["--x=true", "."], ""));
        assert!(echoes(&["-v", "-n", "."], ""));
        assert!(echoes(&["."], "-json -x"));
        assert!(echoes(&["."], "-n"));
        assert!(!echoes(&["."], ""));
        assert!(!echoes(&["-v", "-json", "."], "-v"));
        assert!(!echoes(&["-x=false", "."], ""));
        // A value, not a flag: -ldflags takes "-x"; after a package, go
        // build reads no flags.
        assert!(!echoes(&["-ldflags", "-x", "."], ""));
        assert!(!echoes(&[".", "-x"], ""));
        // The command's own GOFLAGS rules.
        let mut command = build(&["."]);
        command.env("GOFLAGS", "-v");
        assert!(!echoes_commands(&command, "-x"));
        command.env("GOFLAGS", "-x");
        assert!(echoes_commands(&command, ""));
    }

    #[test]
    fn builds_share_lines_and_tests_or_echoes_mark_each() {
        let plain = build(&["."]);
        let echo = build(&["-x", "."]);
        assert_eq!(marking([&plain, &plain], false, ""), Marking::Shared);
        assert_eq!(marking([&plain, &echo], false, ""), Marking::EachLine);
        assert_eq!(marking([&plain], true, ""), Marking::EachLine);
        assert_eq!(marking([&plain], false, "-n"), Marking::EachLine);
    }
}
