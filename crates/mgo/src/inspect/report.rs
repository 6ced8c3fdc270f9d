//! `mgo inspect [-json] FILE`: what a bundle holds and what it would start
//! here.

use super::{Choice, choice, choice_text, open, size};
use crate::bundle::buildinfo;
use crate::bundle::read::Bundle;
use crate::error::{Result, shown};
use mgo_format::Entry;
use serde_json::json;
use std::fmt::Write as _;
use std::path::Path;

/// Splits "mgo-launcher 0.1.0 zstd" into version and flavour.
fn identity_parts(identity: &str) -> (String, String) {
    let mut words = identity.split(' ').skip(1);
    (
        words.next().unwrap_or_default().to_owned(),
        words.next().unwrap_or_default().to_owned(),
    )
}

/// Size of `entry`'s executable (not of the image its blocks tile).
fn file_size(bundle: &Bundle, entry: &Entry) -> u64 {
    bundle.sections(entry).map_or(entry.size, |s| s.file_size())
}

fn describe_encoding(bundle: &Bundle, entry: &Entry) -> String {
    let mut text = entry.encoding.name().to_owned();
    if let Some(reference) = bundle.table().reference_of(entry) {
        let _ = write!(text, " against v{}", reference.level);
    }
    if let Some(sections) = bundle.sections(entry).ok().filter(|s| !s.is_empty()) {
        let inflated: u64 = (0..sections.len())
            .map(|i| sections.get(i).inflated_size)
            .sum();
        let _ = write!(
            text,
            ", {} DWARF sections stored inflated ({} bytes)",
            sections.len(),
            size(inflated)
        );
    }
    if entry.encoding != mgo_format::Encoding::Raw {
        let _ = write!(text, ", {} bytes stored", size(entry.stored_size));
    }
    let shared = bundle
        .table()
        .entries()
        .iter()
        .find(|e| e.offset == entry.offset && e.level < entry.level);
    if let Some(first) = shared {
        let _ = write!(text, " (same bytes as v{}, stored once)", first.level);
    }
    text
}

/// What `inspect` says about a bundle, in either form.
struct Facts {
    info: Option<buildinfo::BuildInfo>,
    identity: Option<String>,
    version: String,
    flavour: String,
    launch: &'static str,
    choice: Choice,
}

/// `mgo inspect [-json] FILE`.
pub fn inspect(file: &Path, as_json: bool) -> Result<()> {
    let bundle = open(file)?;
    let identity = bundle.launcher_identity();
    let (version, flavour) = identity.as_deref().map(identity_parts).unwrap_or_default();
    let facts = Facts {
        info: bundle.buildinfo().and_then(buildinfo::parse),
        identity,
        version,
        flavour,
        launch: if bundle.table().memfd_by_default() {
            "memfd"
        } else if bundle.table().file_by_default() {
            "file"
        } else {
            "mapped"
        },
        choice: choice(&bundle),
    };
    let text = if as_json {
        json_report(file, &bundle, &facts)
    } else {
        text_report(file, &bundle, &facts)
    };
    crate::console::print(&text);
    Ok(())
}

/// `inspect -json`: the facts as one JSON object.
fn json_report(file: &Path, bundle: &Bundle, facts: &Facts) -> String {
    let Facts {
        info,
        identity,
        version,
        flavour,
        launch,
        choice,
    } = facts;
    let levels: Vec<_> = bundle
        .table()
        .entries()
        .iter()
        .map(|e| {
            json!({
                "level": format!("v{}", e.level),
                "size": file_size(bundle, e),
                "encoding": e.encoding.name(),
                "inflated_sections": bundle.sections(e).map_or(0, |s| s.len()),
                "reference": bundle.table().reference_of(e).map(|r| format!("v{}", r.level)),
                "stored": e.stored_size,
            })
        })
        .collect();
    let value = json!({
        "file": file.to_string_lossy(),
        "size": bundle.bytes().len(),
        "format": mgo_format::VERSION,
        "program": info.as_ref().map(|i| json!({
            "path": i.path,
            "go": i.go_version,
            "module": i.module.as_ref().map(|(path, version)| json!({"path": path, "version": version})),
        })),
        "launcher": {
            "identity": identity,
            "version": version,
            "flavour": flavour,
            "size": bundle.segment_offset(),
            "launch": launch,
        },
        "levels": levels,
        "machine": {
            "level": format!("v{}", choice.machine.level),
            "missing_for_next": choice.machine.missing_for_next(),
            "goamd64": choice.forced.map(|l| format!("v{l}")),
            "starts": format!("v{}", choice.started),
        },
    });
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}

/// `inspect`: the facts as lines people read.
fn text_report(file: &Path, bundle: &Bundle, facts: &Facts) -> String {
    let mut text = format!(
        "{}: mgo bundle (format {}), {} bytes\n",
        shown(file),
        mgo_format::VERSION,
        size(bundle.bytes().len() as u64)
    );
    match &facts.info {
        Some(info) => {
            let module = info
                .module
                .as_ref()
                .map(|(path, version)| format!(", module {path} {version}"))
                .unwrap_or_default();
            let _ = writeln!(
                text,
                "  program   {} ({}{module})",
                info.path, info.go_version
            );
        }
        None => text.push_str("  program   (no Go build information)\n"),
    }
    let _ = writeln!(
        text,
        "  launcher  {}, {} bytes; starts builds {}{}",
        facts
            .identity
            .as_deref()
            .unwrap_or("(unknown: no identity string)"),
        size(bundle.segment_offset() as u64),
        match facts.launch {
            "file" => "from a cached file",
            other => other,
        },
        match facts.launch {
            "mapped" => " (the default)",
            "memfd" => " (MGO_LAUNCH=memfd)",
            _ => " (MGO_LAUNCH=file)",
        }
    );
    for (i, entry) in bundle.table().entries().iter().enumerate() {
        let _ = writeln!(
            text,
            "  {:<8}  v{}  {:>12} bytes  {}",
            if i == 0 { "levels" } else { "" },
            entry.level,
            size(file_size(bundle, entry)),
            describe_encoding(bundle, entry)
        );
    }
    let _ = writeln!(text, "  here      {}", choice_text(&facts.choice));
    text
}
