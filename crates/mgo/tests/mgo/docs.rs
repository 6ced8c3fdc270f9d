//! The documentation's links: each fact has one home and the other pages
//! link to it, so a link that points nowhere loses the fact.

use crate::support::*;
use std::collections::HashSet;
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
    let mut pages: Vec<PathBuf> = vec![repo().join("README.md")];
    for entry in fs::read_dir(repo().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            pages.push(path);
        }
    }
    assert!(pages.len() >= 6, "{pages:?}");
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
