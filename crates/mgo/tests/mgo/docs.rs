//! The documentation's links: each fact has one home and the other pages
//! link to it, so a link that points nowhere loses the fact.

use crate::support::*;
use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

/// GitHub's anchor for a heading: lowercase, punctuation dropped, spaces
/// turned into hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> HashSet<String> {
    let mut in_code = false;
    let mut found = HashSet::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            found.insert(anchor(line.trim_start_matches('#')));
        }
    }
    found
}

/// Every `](target)` in a Markdown text, outside code blocks.
fn links(text: &str) -> Vec<String> {
    let mut in_code = false;
    let mut found = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            if let Some(end) = rest.find(')') {
                found.push(rest[..end].to_owned());
                rest = &rest[end..];
            }
        }
    }
    found
}

#[test]
fn every_link_between_the_docs_reaches_a_file_and_a_heading() {
    let mut pages: Vec<PathBuf> = vec![repo().join("README.md"), repo().join("CHANGELOG.md")];
    for entry in fs::read_dir(repo().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            pages.push(path);
        }
    }
    assert!(pages.len() >= 7, "{pages:?}");
    let mut broken = Vec::new();
    let mut checked = 0;
    for page in &pages {
        let text = fs::read_to_string(page).unwrap();
        for link in links(&text) {
            if link.starts_with("http://") || link.starts_with("https://") {
                continue;
            }
            let (file, fragment) = match link.split_once('#') {
                Some((file, fragment)) => (file, Some(fragment)),
                None => (link.as_str(), None),
            };
            let target: PathBuf = if file.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap_or(Path::new(".")).join(file)
            };
            checked += 1;
            let Ok(target_text) = fs::read_to_string(&target).or_else(|e| {
                if target.is_dir() {
                    Ok(String::new())
                } else {
                    Err(e)
                }
            }) else {
                broken.push(format!("{}: {link}: no such file", page.display()));
                continue;
            };
            if let Some(fragment) = fragment
                && !anchors(&target_text).contains(fragment)
            {
                broken.push(format!("{}: {link}: no such heading", page.display()));
            }
        }
    }
    assert!(checked > 30, "only {checked} links found");
    assert!(broken.is_empty(), "{broken:#?}");
}

#[test]
fn anchors_follow_github() {
    assert_eq!(
        anchor(" DWARF: build with -ldflags=-w"),
        "dwarf-build-with--ldflags-w"
    );
    assert_eq!(anchor(" Entry (48 bytes)"), "entry-48-bytes");
}

/// The text of `page` from the line `heading` to the next heading of the
/// same or a higher level.
fn section(page: &str, heading: &str) -> String {
    let text = fs::read_to_string(repo().join(page)).unwrap();
    let level = heading.chars().take_while(|&c| c == '#').count();
    let mut lines = text.lines().skip_while(|line| *line != heading);
    assert!(lines.next().is_some(), "{page} has no {heading:?}");
    let mut in_code = false;
    let mut out = String::new();
    for line in lines {
        if line.starts_with("```") {
            in_code = !in_code;
        }
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if !in_code && hashes > 0 && hashes <= level && line[hashes..].starts_with(' ') {
            break;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The cells of a Markdown table's rows, header and separator left out.
fn table_rows(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut in_table = false;
    for line in text.lines() {
        if !line.starts_with('|') {
            in_table = false;
            continue;
        }
        let cells = table_cells(line);
        if !in_table {
            // The header; the separator follows.
            in_table = true;
            continue;
        }
        if cells
            .iter()
            .all(|c| c.chars().all(|c| c == '-' || c == ':'))
        {
            continue;
        }
        rows.push(cells);
    }
    rows
}

/// A table row's cells; a `|` inside a code span does not end a cell.
fn table_cells(line: &str) -> Vec<String> {
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut in_code = false;
    for c in line.trim().trim_start_matches('|').chars() {
        match c {
            '`' => {
                in_code = !in_code;
                cell.push(c);
            }
            '|' if !in_code => cells.push(std::mem::take(&mut cell).trim().to_owned()),
            _ => cell.push(c),
        }
    }
    cells
}

/// The code spans of a Markdown text: `a` and `b` in "`a` or `b`".
fn code_spans(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The variables `mgo --help` names under ENVIRONMENT, before and after its
/// "When a bundle runs" line: the first word of each entry, up to an `=`,
/// except that `MGODEBUG=item` names one item of MGODEBUG.
fn help_variables() -> (HashSet<String>, HashSet<String>) {
    let help = fs::read_to_string(repo().join("crates/mgo/src/help.txt")).unwrap();
    let environment: Vec<&str> = help
        .lines()
        .skip_while(|line| *line != "ENVIRONMENT")
        .skip(1)
        .take_while(|line| line.is_empty() || line.starts_with(' '))
        .collect();
    assert!(!environment.is_empty(), "help.txt has no ENVIRONMENT");
    let (mut building, mut running) = (HashSet::new(), HashSet::new());
    let mut at_run_time = false;
    for line in environment {
        let Some(entry) = line.strip_prefix("    ") else {
            continue;
        };
        if entry.starts_with("When a bundle runs") {
            at_run_time = true;
            continue;
        }
        if !entry.starts_with(|c: char| c.is_ascii_uppercase()) || entry.starts_with("When ") {
            continue;
        }
        // "GOOS, GOARCH       a target ...": a comma goes on to one more.
        let mut words = entry.split_whitespace();
        let mut names = vec![words.next().unwrap()];
        while names.last().unwrap().ends_with(',') {
            names.extend(words.next());
        }
        for name in names.into_iter().map(|n| n.trim_end_matches(',')) {
            let name = match name.split_once('=') {
                Some(("MGODEBUG", _)) => name,
                Some((variable, _)) => variable,
                None => name,
            };
            let set = if at_run_time {
                &mut running
            } else {
                &mut building
            };
            set.insert(name.to_owned());
        }
    }
    (building, running)
}

/// Issue "One home per fact": the variables are described once, those mgo
/// reads in CLI.md's table and those a bundle reads in LAUNCHER.md; `--help`
/// can only name them, and it names the same ones.
#[test]
fn help_names_the_variables_that_the_docs_describe() {
    let (help_building, help_running) = help_variables();

    let mut building = HashSet::new();
    for row in table_rows(&section("docs/CLI.md", "## Environment")) {
        for name in code_spans(&row[0]) {
            building.insert(name);
        }
    }
    assert!(building.contains("MGO_COMPRESS"), "{building:?}");
    assert_eq!(
        help_building, building,
        "help.txt's ENVIRONMENT (when building) and docs/CLI.md#environment"
    );

    let launcher = section("docs/LAUNCHER.md", "## Environment");
    let mut running = HashSet::new();
    for line in launcher.lines() {
        if let Some(name) = line.strip_prefix("### ") {
            running.insert(name.to_owned());
        }
    }
    assert_eq!(
        running,
        HashSet::from(["GOAMD64".to_owned(), "MGODEBUG".to_owned()])
    );
    running.remove("MGODEBUG");
    for row in table_rows(&section("docs/LAUNCHER.md", "### MGODEBUG")) {
        if let [item] = &code_spans(&row[0])[..] {
            running.insert(format!("MGODEBUG={item}"));
        }
    }
    assert!(running.contains("MGODEBUG=extract"), "{running:?}");
    assert_eq!(
        help_running, running,
        "help.txt's ENVIRONMENT (when a bundle runs) and docs/LAUNCHER.md#environment"
    );
}

/// What CLI.md's error messages write for the values in a message (CLI.md's
/// "Error messages" defines them); each stands where the source has a
/// format hole (`{}`, `{name}`, `{:?}`). `...` stands for anything.
const PLACEHOLDERS: &[&str] = &[
    "FILE", "DEST", "DIR", "NAME", "VALUE", "MODE", "VERSION", "GOOS", "GOARCH", "vN", "S",
    "<error>",
];

/// A part of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Char(char),
    /// A format hole in the source; in the docs, a placeholder, as written.
    Value(&'static str),
    /// `...` in the docs: anything at all.
    Any,
}

/// A documented message as parts: `vN` is a `v` and a value (the source
/// writes `v{level}`), and a placeholder is one only as a whole word.
fn documented(message: &str) -> Vec<Part> {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    let mut parts = Vec::new();
    let mut at = 0;
    while at < message.len() {
        let rest = &message[at..];
        if rest.starts_with("...") {
            parts.push(Part::Any);
            at += 3;
            continue;
        }
        let placeholder = PLACEHOLDERS.iter().find(|p| {
            rest.starts_with(**p)
                && !(p.starts_with(|c: char| c.is_ascii_alphanumeric())
                    && word(message[..at].chars().next_back()))
                && !(p.ends_with(|c: char| c.is_ascii_alphanumeric())
                    && word(rest[p.len()..].chars().next()))
        });
        match placeholder {
            Some(&"vN") => parts.extend([Part::Char('v'), Part::Value("N")]),
            Some(p) => parts.push(Part::Value(p)),
            None => {
                let c = rest.chars().next().unwrap();
                parts.push(Part::Char(c));
                at += c.len_utf8();
                continue;
            }
        }
        at += placeholder.unwrap().len();
    }
    parts
}

/// A format string as parts: `{{` and `}}` are braces, anything else in
/// braces a hole.
fn format_parts(literal: &str) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut chars = literal.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' | '}' if chars.peek() == Some(&c) => {
                chars.next();
                parts.push(Part::Char(c));
            }
            '{' => {
                chars.by_ref().find(|&c| c == '}');
                parts.push(Part::Value(""));
            }
            _ => parts.push(Part::Char(c)),
        }
    }
    parts
}

/// The string literals of a Rust source text, unescaped. Comments are
/// skipped, and so is a trailing test module: what its assertions spell is
/// no message.
fn string_literals(source: &str, literals: &mut Vec<String>) {
    let source = match source.find("\n#[cfg(test)]\nmod ") {
        Some(at) => &source[..at],
        None => source,
    };
    let chars: Vec<char> = source.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let next = |k: usize| chars.get(i + k).copied();
        match chars[i] {
            '/' if next(1) == Some('/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if next(1) == Some('*') => {
                i += 2;
                while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                    i += 1;
                }
                i += 2;
            }
            '\'' if next(1) == Some('\\') => {
                // '\'', '\n', '\u{..}'
                i += 3;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            }
            // '"', 'x'; else a lifetime.
            '\'' if next(2) == Some('\'') => i += 3,
            'r' if matches!(next(1), Some('"' | '#'))
                && (i == 0
                    || chars[i - 1] == 'b'
                    || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')) =>
            {
                let hashes = chars[i + 1..].iter().take_while(|&&c| c == '#').count();
                let open = i + 1 + hashes;
                if chars.get(open) != Some(&'"') {
                    i += 1;
                    continue;
                }
                let mut end = open + 1;
                while end < chars.len()
                    && !(chars[end] == '"'
                        && chars[end + 1..]
                            .iter()
                            .take(hashes)
                            .filter(|&&c| c == '#')
                            .count()
                            == hashes)
                {
                    end += 1;
                }
                literals.push(chars[open + 1..end].iter().collect());
                i = end + 1 + hashes;
            }
            '"' => {
                let mut text = String::new();
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] != '\\' {
                        text.push(chars[i]);
                        i += 1;
                        continue;
                    }
                    i += 1;
                    match chars.get(i) {
                        Some('n') => text.push('\n'),
                        Some('t') => text.push('\t'),
                        Some('r') => text.push('\r'),
                        Some('0') => text.push('\0'),
                        Some('x') => {
                            let hex: String = chars[i + 1..i + 3].iter().collect();
                            text.push(char::from(u8::from_str_radix(&hex, 16).unwrap_or(b'?')));
                            i += 2;
                        }
                        Some('u') => {
                            let close = chars[i..].iter().position(|&c| c == '}').unwrap();
                            let hex: String = chars[i + 2..i + close].iter().collect();
                            text.extend(
                                u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32),
                            );
                            i += close;
                        }
                        // A line continuation: the next line's indentation goes.
                        Some('\n') => {
                            while chars.get(i + 1).is_some_and(|c| c.is_whitespace()) {
                                i += 1;
                            }
                        }
                        Some(&c) => text.push(c),
                        None => {}
                    }
                    i += 1;
                }
                i += 1;
                literals.push(text);
            }
            _ => i += 1,
        }
    }
}

/// Every string literal of mgo, the launcher and the format crate, which
/// between them spell every message, as format parts.
fn source_formats() -> Vec<Vec<Part>> {
    fn walk(dir: &Path, literals: &mut Vec<String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, literals);
            } else if path.extension().is_some_and(|e| e == "rs")
                && path.file_name().is_some_and(|n| n != "tests.rs")
            {
                string_literals(&fs::read_to_string(&path).unwrap(), literals);
            }
        }
    }
    let mut literals = Vec::new();
    for krate in ["mgo", "launcher", "format"] {
        walk(
            &repo().join("crates").join(krate).join("src"),
            &mut literals,
        );
    }
    literals.sort();
    literals.dedup();
    literals
        .iter()
        .filter(|l| !l.is_empty())
        .map(|l| format_parts(l))
        .collect()
}

/// Whether the source can print a documented message: one format string
/// of the source, whose holes hold the message's placeholders (a value, as
/// `{}`; a `v` and a level, `"` and a value and `"`, as `{:?}`) or what
/// other format strings print, in turn (the cause after `{what}: {cause}`,
/// `build` in `go {}: {}`).
struct Printable<'a> {
    formats: &'a [Vec<Part>],
    message: Vec<Part>,
    /// fills[i]: where a non-empty fill of a hole that starts at part i of
    /// the message can end, as far as found.
    fills: Vec<BTreeSet<usize>>,
    /// Whether fills[i] is being, or has been, computed in this round.
    visited: Vec<bool>,
    grew: bool,
}

impl<'a> Printable<'a> {
    fn check(formats: &'a [Vec<Part>], message: &str) -> bool {
        let message = documented(message);
        let n = message.len();
        let mut this = Self {
            formats,
            message,
            fills: vec![BTreeSet::new(); n + 1],
            visited: vec![false; n + 1],
            grew: false,
        };
        // A fill can start with a hole of its own (`{} is damaged` as the
        // `{what}` of `{what}: {cause}`): such fills are found in later
        // rounds, until nothing more is.
        loop {
            this.grew = false;
            this.visited.fill(false);
            if formats.iter().any(|f| this.rest(f, 0).contains(&n)) {
                return true;
            }
            if !this.grew {
                return false;
            }
        }
    }

    /// Where the message can be after `format` is printed from part `at` on.
    fn rest(&mut self, format: &[Part], at: usize) -> BTreeSet<usize> {
        let n = self.message.len();
        let mut ends = BTreeSet::new();
        if at == n && self.message.last() == Some(&Part::Any) {
            // A closing `...` is the rest of every format it is in.
            ends.insert(n);
            return ends;
        }
        let Some((first, rest)) = format.split_first() else {
            ends.insert(at);
            return ends;
        };
        match (first, self.message.get(at)) {
            (_, Some(Part::Any)) => {
                for skip in 0..=format.len() {
                    ends.extend(self.rest(&format[skip..], at + 1));
                }
            }
            (Part::Char(c), Some(Part::Char(d))) if c == d => ends = self.rest(rest, at + 1),
            // A placeholder's word that the message itself spells
            // (`use mgo build -o DIR/ instead`).
            (Part::Char(_), Some(Part::Value(word))) => {
                let spelled: Vec<Part> = word.chars().map(Part::Char).collect();
                if format.starts_with(&spelled) {
                    ends = self.rest(&format[spelled.len()..], at + 1);
                }
            }
            (Part::Value(_), _) => {
                for end in self.fill(at) {
                    ends.extend(self.rest(rest, end));
                }
            }
            _ => {}
        }
        ends
    }

    /// Where a hole's fill that starts at part `at` can end.
    fn fill(&mut self, at: usize) -> BTreeSet<usize> {
        if !self.visited[at] {
            self.visited[at] = true;
            let mut ends = BTreeSet::new();
            match self.message[at..] {
                [Part::Value(_) | Part::Any, ..] => {
                    ends.insert(at + 1);
                }
                [Part::Char('v'), Part::Value(_), ..] => {
                    ends.insert(at + 2);
                }
                [Part::Char('"'), Part::Value(_), Part::Char('"'), ..] => {
                    ends.insert(at + 3);
                }
                _ => {}
            }
            let formats = self.formats;
            for format in formats {
                ends.extend(self.rest(format, at));
            }
            ends.remove(&at);
            let before = self.fills[at].len();
            self.fills[at].extend(ends);
            self.grew |= self.fills[at].len() > before;
        }
        self.fills[at].clone()
    }
}

/// Issue "One home per fact": CLI.md's error messages are the code's. A
/// row that drifts from the code fails here; rewrite it from what mgo
/// prints.
#[test]
fn every_documented_error_message_is_printed_by_the_source() {
    let text = section("docs/CLI.md", "## Error messages");
    let legend = text.split("\n|").next().unwrap().replace('\n', " ");
    for placeholder in PLACEHOLDERS.iter().chain(&["..."]) {
        assert!(
            legend.contains(&format!("`{placeholder}`")),
            "CLI.md's Error messages does not say what {placeholder} stands for"
        );
    }
    let formats = source_formats();
    assert!(formats.len() > 500, "only {} literals", formats.len());
    let mut messages = 0;
    let mut drifted = Vec::new();
    for row in table_rows(&text) {
        for message in code_spans(&row[0]) {
            messages += 1;
            if !Printable::check(&formats, &message) {
                drifted.push(message);
            }
        }
    }
    assert!(messages > 30, "only {messages} messages in the table");
    assert!(
        drifted.is_empty(),
        "not what the source prints: {drifted:#?}"
    );
}

/// What the check above accepts and refuses, on a few format strings. It
/// cannot tell which literal fills which hole: any message may gain a
/// `: <error>` through `{what}: {cause}`, and `cannot write DEST: zstd`
/// passes since `zstd` is a literal somewhere.
#[test]
fn a_documented_message_is_checked_word_for_word() {
    let formats: Vec<Vec<Part>> = [
        "{what}: {cause}",
        "cannot write {}: {err}",
        "go {} failed at v{level}",
        "invalid value {:?} for flag -C",
        "zstd",
        "build",
    ]
    .iter()
    .map(|f| format_parts(f))
    .collect();
    let printable = |message| Printable::check(&formats, message);
    assert!(printable("cannot write DEST: <error>"));
    assert!(printable("cannot write DEST: zstd: <error>"));
    assert!(printable("go build failed at vN"));
    assert!(printable("invalid value \"DIR\" for flag -C"));
    assert!(printable("cannot write ..."));
    // A changed, an added or a dropped word; a value the source does not
    // leave a hole for.
    assert!(!printable("cannot save DEST: <error>"));
    assert!(!printable("cannot write to DEST: <error>"));
    assert!(!printable("go failed at vN"));
    assert!(!printable("go build failed on vN"));
    assert!(!printable("cannot write app: <error>"));
    assert!(!printable("cannot DEST: <error>"));
}
