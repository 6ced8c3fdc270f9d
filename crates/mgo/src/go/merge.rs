//! Which of the levels' lines mgo prints, and how they are marked: the
//! pure part of the relay, lines in from the levels, lines out.
//!
//! A build runs the same `go build` once per level, so most of what go
//! prints (a compile error, a linker warning, `-v`'s package names) every
//! level prints alike. mgo is a drop-in for `go build`: such a line is
//! printed once, as go printed it, without a prefix. Editors and CI
//! problem matchers read go's `file:line:col: message` lines from the start
//! of the line, and a prefix naming every level would tell the user
//! nothing. A line that some level is known to lack is marked with the
//! levels that printed it (`v3: `, `v3,v4: `), so the differences between
//! levels stay visible.
//!
//! To know, a line is held until every level still running has printed
//! it too or has ended; lines leave in the order they first came, so each
//! level's messages keep their order (a `# package` header stays above its
//! lines). Shared lines therefore appear as fast as the slowest level
//! prints them, and a line only some levels print once the others end; a
//! build's failure stops the other levels, which releases every line at
//! once, so a failed build's errors wait for nothing.
//!
//! A level that ran to its end and did not print a line is what marks it.
//! A level that mgo stopped (another failed first) or never started cannot
//! say what it would have printed: it does not mark a line.

use std::collections::VecDeque;

/// The stream a line came on, and goes out on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// A line as mgo prints it: its stream, its bytes with the newline.
pub type Out = (Stream, Vec<u8>);

/// How the lines of a set of runs are passed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marking {
    /// Every line at once, with its level's prefix: for output that differs
    /// by level by nature (`-x` and `-n` echo commands that name each
    /// level's files and GOAMD64), and for tests, which run one level after
    /// another and whose every level's report matters.
    EachLine,
    /// A line the levels share is printed once (see the module's comment).
    Shared,
}

/// A set of levels: bit `n` is level `n`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Levels(u32);

impl Levels {
    fn of(level: u8) -> Self {
        Self(1u32.checked_shl(level.into()).unwrap_or(0))
    }

    fn has(self, level: u8) -> bool {
        self.0 & Self::of(level).0 != 0
    }

    fn with(self, level: u8) -> Self {
        Self(self.0 | Self::of(level).0)
    }

    fn without(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    fn is_empty(self) -> bool {
        self.0 == 0
    }

    fn within(self, other: Self) -> bool {
        self.without(other).is_empty()
    }

    /// `v1,v3: `: the mark of a line these levels printed.
    fn prefix(self) -> String {
        let names: Vec<String> = (0..32u8)
            .filter(|&l| self.has(l))
            .map(|l| format!("v{l}"))
            .collect();
        format!("{}: ", names.join(","))
    }
}

/// A line held until every running level has printed it or ended.
#[derive(Debug)]
struct Held {
    stream: Stream,
    /// Without its newline.
    text: Vec<u8>,
    /// The levels that printed it.
    printed: Levels,
}

/// The lines of a set of runs, merged.
#[derive(Debug)]
pub struct Merger {
    marking: Marking,
    /// go prints JSON objects on stdout (`-json`): those are never merged;
    /// each gets its level as a `"GOAMD64"` field.
    json: bool,
    /// Started or still to start; neither ended nor stopped.
    running: Levels,
    /// Ended on their own.
    finished: Levels,
    /// In the order they first came.
    held: VecDeque<Held>,
}

impl Merger {
    /// A merger for the runs of `levels`.
    pub fn new(levels: &[u8], marking: Marking, json: bool) -> Self {
        Self {
            marking,
            json,
            running: levels.iter().fold(Levels::default(), |s, &l| s.with(l)),
            finished: Levels::default(),
            held: VecDeque::new(),
        }
    }

    /// `level` printed `line` (with its newline, if any): the lines to
    /// print now. Lines of a level that ended or was stopped are dropped.
    pub fn line(&mut self, level: u8, stream: Stream, line: &[u8]) -> Vec<Out> {
        if !self.running.has(level) {
            return Vec::new();
        }
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        if self.json && stream == Stream::Stdout && text.starts_with(b"{") {
            return vec![(stream, with_level_field(level, text))];
        }
        if self.marking == Marking::EachLine {
            return vec![(stream, prefixed(Levels::of(level), text))];
        }
        self.join(level, stream, text);
        self.release()
    }

    /// `level` ran to its end: it will not print what it has not printed.
    pub fn finished(&mut self, level: u8) -> Vec<Out> {
        if self.running.has(level) {
            self.running = self.running.without(Levels::of(level));
            self.finished = self.finished.with(level);
        }
        self.release()
    }

    /// `level` was stopped by mgo: its later lines are dropped, and what it
    /// would have printed is unknown.
    pub fn stopped(&mut self, level: u8) -> Vec<Out> {
        self.running = self.running.without(Levels::of(level));
        self.release()
    }

    /// Stops every level still running or still to start (a failure stops
    /// the set, or the set is over): every held line is released.
    pub fn stop_all(&mut self) -> Vec<Out> {
        self.running = Levels::default();
        self.release()
    }

    /// Adds `level` to the first held line with this text that it has not
    /// printed yet, or holds a new one.
    fn join(&mut self, level: u8, stream: Stream, text: &[u8]) {
        let same = self
            .held
            .iter_mut()
            .find(|h| h.stream == stream && !h.printed.has(level) && h.text == text);
        match same {
            Some(held) => held.printed = held.printed.with(level),
            None => self.held.push_back(Held {
                stream,
                text: text.to_vec(),
                printed: Levels::of(level),
            }),
        }
    }

    /// The held lines, from the first, that every running level has
    /// printed: nothing more can join them.
    fn release(&mut self) -> Vec<Out> {
        let mut out = Vec::new();
        while let Some(first) = self.held.front() {
            if !self.running.within(first.printed) {
                break;
            }
            if let Some(held) = self.held.pop_front() {
                out.push((held.stream, self.mark(&held)));
            }
        }
        out
    }

    /// A released line as printed: bare, unless a level that finished did
    /// not print it.
    fn mark(&self, held: &Held) -> Vec<u8> {
        if self.finished.within(held.printed) {
            let mut line = held.text.clone();
            line.push(b'\n');
            line
        } else {
            prefixed(held.printed, &held.text)
        }
    }
}

/// `text` marked with `levels` and ended with a newline.
fn prefixed(levels: Levels, text: &[u8]) -> Vec<u8> {
    let prefix = levels.prefix();
    let mut line = Vec::with_capacity(prefix.len() + text.len() + 1);
    line.extend_from_slice(prefix.as_bytes());
    line.extend_from_slice(text);
    line.push(b'\n');
    line
}

/// A JSON object line with `"GOAMD64":"v<level>"` as its first field.
pub fn with_level_field(level: u8, object: &[u8]) -> Vec<u8> {
    let rest = object.strip_prefix(b"{").unwrap_or(object);
    let mut line = format!("{{\"GOAMD64\":\"v{level}\"").into_bytes();
    if !rest.trim_ascii_start().starts_with(b"}") {
        line.push(b',');
    }
    line.extend_from_slice(rest);
    line.push(b'\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use Stream::{Stderr, Stdout};

    /// What happened, in order.
    enum Event<'a> {
        /// A line on stderr, without its newline.
        Line(u8, &'a str),
        /// Bytes read as one line on stdout.
        StdoutLine(u8, &'a str),
        Finished(u8),
        Stopped(u8),
        StopAll,
    }
    use Event::{Finished, Line, StdoutLine, StopAll, Stopped};

    /// Feeds `events` to a merger of levels 1 to 4; what it printed, as
    /// text: after which event (its index), `1>` or `2>` for the stream,
    /// the line.
    fn printed(marking: Marking, json: bool, events: &[Event<'_>]) -> Vec<String> {
        let mut merger = Merger::new(&[1, 2, 3, 4], marking, json);
        let mut lines = Vec::new();
        for (at, event) in events.iter().enumerate() {
            let out = match *event {
                Line(level, text) => merger.line(level, Stderr, format!("{text}\n").as_bytes()),
                StdoutLine(level, text) => merger.line(level, Stdout, text.as_bytes()),
                Finished(level) => merger.finished(level),
                Stopped(level) => merger.stopped(level),
                StopAll => merger.stop_all(),
            };
            for (stream, bytes) in out {
                let tag = if stream == Stdout { "1>" } else { "2>" };
                let text = String::from_utf8(bytes).unwrap();
                lines.push(format!("{at} {tag}{}", text.strip_suffix('\n').unwrap()));
            }
        }
        lines
    }

    fn shared(events: &[Event<'_>]) -> Vec<String> {
        printed(Marking::Shared, false, events)
    }

    #[test]
    fn a_warning_every_level_prints_is_printed_once_bare_when_the_last_prints_it() {
        let warning = |level| {
            [
                Line(level, "# example.com/app"),
                Line(level, "/usr/bin/ld: warning: -z nonsense ignored"),
            ]
        };
        let mut events: Vec<Event<'_>> = Vec::new();
        for level in [2, 1, 4, 3] {
            events.extend(warning(level));
        }
        events.extend([Finished(1), Finished(2), Finished(3), Finished(4)]);
        assert_eq!(
            shared(&events),
            [
                "6 2># example.com/app",
                "7 2>/usr/bin/ld: warning: -z nonsense ignored"
            ]
        );
    }

    #[test]
    fn a_compile_error_is_printed_once_when_the_first_failure_stops_the_rest() {
        // v1 fails; v2 printed the same error before it was stopped; v3
        // and v4 had not (or had not started).
        let events = [
            Line(1, "# example.com/app"),
            Line(2, "# example.com/app"),
            Line(1, "./main.go:3:15: undefined: x"),
            Finished(1),
            StopAll,
            // A stopped level's later lines are dropped.
            Line(3, "# example.com/app"),
            Finished(3),
        ];
        assert_eq!(
            shared(&events),
            ["4 2># example.com/app", "4 2>./main.go:3:15: undefined: x"]
        );
    }

    #[test]
    fn a_line_a_finished_level_lacks_names_the_levels_that_printed_it() {
        let events = [
            Line(3, "# example.com/app"),
            Line(3, "./v3.go:5:19: cannot use \"text\""),
            Line(4, "# example.com/app"),
            Finished(1),
            Finished(2),
            Finished(3),
            Stopped(4),
        ];
        assert_eq!(
            shared(&events),
            [
                "4 2>v3,v4: # example.com/app",
                "6 2>v3: ./v3.go:5:19: cannot use \"text\""
            ]
        );
    }

    #[test]
    fn lines_leave_in_the_order_they_first_came() {
        // v1 names a package only it compiles before the one all compile:
        // the shared line waits behind it, so v1's order stands.
        let events = [
            Line(1, "example.com/only1"),
            Line(1, "example.com/app"),
            Line(2, "example.com/app"),
            Line(3, "example.com/app"),
            Line(4, "example.com/app"),
            Finished(2),
            Finished(3),
            Finished(4),
            Finished(1),
        ];
        assert_eq!(
            shared(&events),
            ["7 2>v1: example.com/only1", "7 2>example.com/app"]
        );
    }

    #[test]
    fn shared_lines_stream_as_the_slowest_level_prints_them() {
        let mut events = Vec::new();
        for line in ["example.com/a", "example.com/b"] {
            for level in 1..=4 {
                events.push(Line(level, line));
            }
        }
        assert_eq!(shared(&events), ["3 2>example.com/a", "7 2>example.com/b"]);
    }

    #[test]
    fn levels_may_print_shared_lines_in_another_order() {
        // Two packages' warnings, compiled in a different order per level.
        let mut events = Vec::new();
        for level in 1..=4 {
            let (first, second) = if level % 2 == 1 {
                ("a", "b")
            } else {
                ("b", "a")
            };
            for package in [first, second] {
                events.push(Line(level, if package == "a" { "# a" } else { "# b" }));
                events.push(Line(level, "warning: same text"));
            }
        }
        events.extend([Finished(1), Finished(2), Finished(3), Finished(4)]);
        let out = shared(&events);
        let texts: Vec<&str> = out.iter().map(|l| l.split_once('>').unwrap().1).collect();
        assert_eq!(
            texts,
            ["# a", "warning: same text", "# b", "warning: same text"]
        );
    }

    #[test]
    fn a_line_a_level_repeats_counts_each_time() {
        let events = [
            Line(1, "    |  ^~~~~~~"),
            Line(1, "    |  ^~~~~~~"),
            Line(2, "    |  ^~~~~~~"),
            Finished(1),
            Finished(2),
            StopAll,
        ];
        assert_eq!(
            shared(&events),
            ["5 2>    |  ^~~~~~~", "5 2>v1:     |  ^~~~~~~"]
        );
    }

    #[test]
    fn streams_are_told_apart() {
        let events = [
            StdoutLine(1, "same\n"),
            Line(1, "same"),
            Finished(1),
            Stopped(2),
            Stopped(3),
            Stopped(4),
        ];
        assert_eq!(shared(&events), ["5 1>same", "5 2>same"]);
    }

    #[test]
    fn a_single_level_prints_as_go_does() {
        let mut merger = Merger::new(&[3], Marking::Shared, false);
        let out = merger.line(3, Stderr, b"no newline");
        assert_eq!(out, [(Stderr, b"no newline\n".to_vec())]);
    }

    #[test]
    fn each_line_marking_prints_at_once_with_the_level() {
        let events = [
            Line(2, "WORK=/tmp/go-build1"),
            Line(1, "WORK=/tmp/go-build2"),
            Line(1, "mkdir -p $WORK/b001/"),
            Line(2, "mkdir -p $WORK/b001/"),
        ];
        assert_eq!(
            printed(Marking::EachLine, false, &events),
            [
                "0 2>v2: WORK=/tmp/go-build1",
                "1 2>v1: WORK=/tmp/go-build2",
                "2 2>v1: mkdir -p $WORK/b001/",
                "3 2>v2: mkdir -p $WORK/b001/"
            ]
        );
    }

    #[test]
    fn json_objects_get_a_field_at_once_and_other_lines_merge() {
        let events = [
            StdoutLine(2, "{\"ImportPath\":\"x\"}\n"),
            StdoutLine(1, "{\"ImportPath\":\"x\"}\n"),
            StdoutLine(3, "{}"),
            StdoutLine(4, "{ }\n"),
            // Not an object, or on stderr: merged as text.
            StdoutLine(1, "go: x\n"),
            Line(1, "{\"a\":1}"),
            StopAll,
        ];
        assert_eq!(
            printed(Marking::Shared, true, &events),
            [
                "0 1>{\"GOAMD64\":\"v2\",\"ImportPath\":\"x\"}",
                "1 1>{\"GOAMD64\":\"v1\",\"ImportPath\":\"x\"}",
                "2 1>{\"GOAMD64\":\"v3\"}",
                "3 1>{\"GOAMD64\":\"v4\" }",
                "6 1>go: x",
                "6 2>{\"a\":1}"
            ]
        );
        // Without -json, an object is a line like any other.
        let events = [StdoutLine(1, "{\"a\":1}\n"), StopAll];
        assert_eq!(
            printed(Marking::EachLine, false, &events),
            ["0 1>v1: {\"a\":1}"]
        );
    }

    #[test]
    fn prefixes_name_the_levels_in_order() {
        assert_eq!(Levels::of(3).prefix(), "v3: ");
        assert_eq!(Levels::of(4).with(1).with(3).prefix(), "v1,v3,v4: ");
    }
}
