//! `mgo verify FILE`: every level decoded and checked, and every byte that
//! is not a level's compared with what this mgo would write.

use super::{differing, open_error, size};
use crate::bundle::read::{Bundle, OpenError, Stopped};
use crate::bundle::{self, launchers};
use crate::elf::Elf;
use crate::error::{Context, Result, fail, shown};
use mgo_format::{BlockRecord, SectionRecord, StoredVariant};
use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

/// `mgo verify FILE`: every variant decoded and checked, and every byte
/// that is not a variant's compared with what this mgo would write.
pub fn verify(file: &Path) -> Result<()> {
    let (bundle, headers_bypassed) = match Bundle::open_despite_headers(file) {
        Ok(opened) => opened,
        Err(OpenError::Table(err)) => return verify_damaged_table(file, err),
        Err(err) => return Err(open_error(file, err)),
    };
    let mut report = String::new();
    let mut damaged = headers_bypassed;
    if headers_bypassed {
        report.push_str(
            "launcher: DAMAGED: its ELF headers do not lead to the bundle table (found at a page boundary instead)\n",
        );
    }
    let (levels_damaged, buildinfo) = check_levels(&bundle, &mut report);
    damaged |= levels_damaged;
    let lines = match check_launcher(&bundle, buildinfo) {
        Ok(line) => vec![line],
        Err(lines) => {
            damaged = true;
            lines
        }
    };
    for line in lines {
        report.push_str(&line);
        report.push('\n');
    }
    crate::console::print(&report);
    if damaged {
        return Err(fail(format!("{} is damaged", shown(file))));
    }
    Ok(())
}

/// Decodes and checks each level block by block without keeping it, and
/// reports each; whether one is damaged, and the lowest level's build
/// information (that level goes to an unnamed temporary file, not memory).
fn check_levels(bundle: &Bundle, report: &mut String) -> (bool, Option<Vec<u8>>) {
    let lowest_level = bundle.table().entries().first().map_or(0, |e| e.level);
    let mut buildinfo = None;
    let mut damaged = false;
    for entry in bundle.table().entries() {
        let mut spill = (entry.level == lowest_level)
            .then(tempfile::tempfile)
            .and_then(std::result::Result::ok)
            .map(|f| std::io::BufWriter::with_capacity(1 << 20, f));
        let checked = bundle.decode_into(entry, &mut |bytes| {
            // Without room for the copy, the level is still checked; the
            // bundle's own build info then stands in.
            if let Some(file) = spill.as_mut()
                && file.write_all(bytes).is_err()
            {
                spill = None;
            }
            Ok(())
        });
        match checked {
            Ok(total) => {
                let _ = writeln!(report, "v{}: ok ({} bytes)", entry.level, size(total));
                if let Some(file) = spill.and_then(|s| s.into_inner().ok()) {
                    // SAFETY: the file is unnamed and only this process has it.
                    let map = unsafe { memmap2::Mmap::map(&file) };
                    buildinfo = map
                        .ok()
                        .map(|m| bundle::go_buildinfo(&m).unwrap_or_default());
                }
            }
            Err(Stopped::Damaged(damage)) => {
                damaged = true;
                let _ = writeln!(report, "v{}: DAMAGED: {}", damage.level, damage.what);
            }
            // The sink above takes every byte; were it to refuse, the
            // level would be unchecked, which is a failure too.
            Err(Stopped::Sink(err)) => {
                damaged = true;
                let _ = writeln!(report, "v{}: NOT CHECKED: {err}", entry.level);
            }
        }
    }
    (damaged, buildinfo)
}

/// Lines that say what differs, or why nothing could be compared.
type Findings = Vec<String>;

/// Compares everything but the variants' stored bytes with the bundle
/// this mgo lays out from the same stored variants. `Err` holds the lines
/// that say what differs.
fn check_launcher(
    bundle: &Bundle,
    lowest_buildinfo: Option<Vec<u8>>,
) -> std::result::Result<String, Findings> {
    let (launcher, identity) = expected_launcher(bundle)?;
    // The build info is a copy of the lowest level's; if that one is
    // damaged, the bundle's own copy stands in (and is not checked).
    let buildinfo =
        lowest_buildinfo.unwrap_or_else(|| bundle.buildinfo().unwrap_or_default().to_vec());
    let (records, sections) = directories(bundle);
    let stored = stored_variants(bundle, &records, &sections);
    let not_checked = |e: &dyn std::fmt::Display| vec![format!("launcher: NOT CHECKED: {e}")];
    let plan = bundle::Plan::new(launcher, stored, bundle.table().flags(), buildinfo)
        .map_err(|e| not_checked(&e))?;
    let mut expected = Vec::with_capacity(plan.size() as usize);
    plan.write(&mut expected).map_err(|e| not_checked(&e))?;
    if expected == bundle.bytes() {
        return Ok(format!("launcher: ok ({identity}, as this mgo writes it)"));
    }
    Err(differences(&plan, &expected, bundle.bytes()))
}

/// The launcher this mgo would embed for the bundle, and its identity:
/// the one the bundle names, if this mgo has it and it decodes the
/// bundle's levels.
fn expected_launcher(bundle: &Bundle) -> std::result::Result<(&'static [u8], String), Findings> {
    let own = launchers::own_prefix();
    let identity = bundle.launcher_identity();
    let Some(launcher) = identity.as_deref().and_then(launchers::by_identity) else {
        return Err(vec![match identity {
            Some(identity) if !identity.starts_with(&own) => format!(
                "launcher: NOT CHECKED: {identity} is from another mgo version (this is {}); verify with that version",
                own.trim_end()
            ),
            Some(identity) => format!("launcher: DAMAGED: unknown identity {identity:?}"),
            None => "launcher: DAMAGED: no launcher identity string".to_owned(),
        }]);
    };
    let identity = identity.unwrap_or_default();
    let entries = bundle.table().entries();
    let expected_flavour = launchers::for_bundle(
        entries
            .first()
            .map_or(mgo_format::Encoding::Raw, |e| e.encoding),
        entries.iter().any(|e| e.section_count != 0),
    );
    if !expected_flavour.is_some_and(|expected| std::ptr::eq(expected, launcher)) {
        return Err(vec![format!(
            "launcher: DAMAGED: {identity} cannot decode this bundle's variants"
        )]);
    }
    Ok((launcher, identity))
}

/// Every level's block and section directory, as records.
fn directories(bundle: &Bundle) -> (Vec<Vec<BlockRecord>>, Vec<Vec<SectionRecord>>) {
    let entries = bundle.table().entries();
    let records = entries
        .iter()
        .map(|e| {
            bundle
                .blocks(e)
                .map(|b| (0..b.len()).map(|i| b.record(i)).collect())
                .unwrap_or_default()
        })
        .collect();
    let sections = entries
        .iter()
        .map(|e| bundle.section_records(e).unwrap_or_default())
        .collect();
    (records, sections)
}

/// The levels as the writer took them: the bundle's own stored bytes and
/// directories.
fn stored_variants<'b>(
    bundle: &'b Bundle,
    records: &'b [Vec<BlockRecord>],
    sections: &'b [Vec<SectionRecord>],
) -> Vec<StoredVariant<'b>> {
    let segment = bundle
        .bytes()
        .get(bundle.segment_offset()..)
        .unwrap_or_default();
    bundle
        .table()
        .entries()
        .iter()
        .zip(records)
        .zip(sections)
        .map(|((e, blocks), sections)| StoredVariant {
            level: e.level,
            encoding: e.encoding,
            reference: e.reference,
            size: e.size,
            checksum: e.checksum,
            stored: segment
                .get(e.offset as usize..)
                .and_then(|s| s.get(..e.stored_size as usize))
                .unwrap_or_default(),
            blocks,
            sections,
        })
        .collect()
}

/// Which named parts of the file differ from what this mgo writes.
fn differences(plan: &bundle::Plan<'_>, expected: &[u8], actual: &[u8]) -> Findings {
    let mut lines = Vec::new();
    if expected.len() != actual.len() {
        lines.push(format!(
            "file size: DAMAGED: {} bytes where this mgo writes {}",
            size(actual.len() as u64),
            size(expected.len() as u64)
        ));
    }
    for (name, range) in plan.regions() {
        let (start, end) = (range.start as usize, range.end as usize);
        let differ = (start..end)
            .filter(|&i| expected.get(i) != actual.get(i))
            .collect::<Vec<_>>();
        if let Some(first) = differ.first() {
            lines.push(format!(
                "{name}: DAMAGED: {} from what this mgo writes (first at offset {first})",
                differing(differ.len())
            ));
        }
    }
    if lines.is_empty() {
        lines.push("padding: DAMAGED: the zeros between parts differ".to_owned());
    }
    lines
}

/// A bundle whose table cannot be read: the launcher's code is still
/// compared, where it does not depend on the table.
fn verify_damaged_table(file: &Path, err: mgo_format::Error) -> Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", shown(file)))?;
    let mut report = format!("bundle table: DAMAGED: {err}\n");
    let identity = crate::bundle::read::identity_in(&bytes);
    match identity.as_deref().and_then(launchers::by_identity) {
        Some(launcher) => {
            // Past the ELF header and program headers, which the writer
            // patches, and up to its section headers, which it moves, the
            // launcher's bytes are copied as they are.
            let code = Elf::parse(launcher).map_or(0..0, |elf| elf.code_between_headers());
            let (from, to) = (code.start, code.end.min(launcher.len()).min(bytes.len()));
            let differ = (from..to)
                .filter(|&i| launcher.get(i) != bytes.get(i))
                .count();
            let _ = writeln!(
                report,
                "launcher code: {}",
                if differ == 0 {
                    "ok".to_owned()
                } else {
                    format!("DAMAGED: {} from this mgo's launcher", differing(differ))
                }
            );
        }
        None => report.push_str("launcher: NOT CHECKED: no launcher identity of this mgo's\n"),
    }
    crate::console::print(&report);
    Err(fail(format!("{} is damaged", shown(file))))
}
