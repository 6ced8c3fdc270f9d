//! `mgo inspect`, `mgo verify` and `mgo extract`: reading a bundle without
//! running it.

use crate::bundle::read::{Bundle, OpenError};
use crate::bundle::{self, buildinfo, launchers};
use crate::error::{Result, fail, shown, usage};
use crate::{cpu, place};
use mgo_format::{BlockRecord, Entry, SectionRecord, StoredVariant};
use serde_json::json;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::path::Path;

fn open(file: &Path) -> Result<Bundle> {
    Bundle::open(file).map_err(|err| open_error(file, err))
}

fn open_error(file: &Path, err: OpenError) -> crate::error::Error {
    match err {
        OpenError::Io(e) => fail(format!("cannot read {}: {e}", shown(file))),
        OpenError::NotRegular(what) => fail(format!("cannot read {}: {what}", shown(file))),
        OpenError::NotBundle(why) => fail(format!(
            "{} is not an mgo bundle ({why}): name a file that mgo wrote",
            shown(file)
        )),
        OpenError::Table(e) => fail(format!(
            "{}: {e}: the bundle is damaged (mgo verify tells more)",
            shown(file)
        )),
    }
}

/// "1 byte differs", "3 bytes differ".
fn differing(n: usize) -> String {
    if n == 1 {
        "1 byte differs".to_owned()
    } else {
        format!("{} bytes differ", size(n as u64))
    }
}

/// Groups digits in threes, for sizes people read.
fn size(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The level the launcher would start here, and why.
struct Choice {
    machine: cpu::Machine,
    /// GOAMD64 from the environment, if valid: the launcher obeys it.
    forced: Option<u8>,
    started: u8,
}

fn choice(bundle: &Bundle) -> Choice {
    let machine = cpu::this_machine();
    let forced = std::env::var("GOAMD64")
        .ok()
        .and_then(|v| mgo_format::parse_level(v.as_bytes()));
    let started = bundle.table().choose(forced.unwrap_or(machine.level)).level;
    Choice {
        machine,
        forced,
        started,
    }
}

fn choice_text(c: &Choice) -> String {
    let cpu = if c.machine.level == 4 {
        "this CPU runs every level (v4)".to_owned()
    } else {
        format!(
            "this CPU runs up to v{}{}",
            c.machine.level,
            cpu::why_not(&c.machine)
        )
    };
    match c.forced {
        Some(level) => format!(
            "{cpu}; GOAMD64=v{level} is set: the launcher starts v{}",
            c.started
        ),
        None if c.started > c.machine.level => format!(
            "{cpu}: the bundle's lowest level is v{}, which will refuse to start here",
            c.started
        ),
        None => format!("{cpu}: the launcher starts v{}", c.started),
    }
}

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

/// `mgo inspect [-json] FILE`.
pub fn inspect(file: &Path, as_json: bool) -> Result<()> {
    let bundle = open(file)?;
    let info = bundle.buildinfo().and_then(buildinfo::parse);
    let identity = bundle.launcher_identity();
    let (version, flavour) = identity.as_deref().map(identity_parts).unwrap_or_default();
    let launch = if bundle.table().memfd_by_default() {
        "memfd"
    } else {
        "mapped"
    };
    let choice = choice(&bundle);
    let text = if as_json {
        let levels: Vec<_> = bundle
            .table()
            .entries()
            .iter()
            .map(|e| {
                json!({
                    "level": format!("v{}", e.level),
                    "size": file_size(&bundle, e),
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
    } else {
        let mut text = format!(
            "{}: mgo bundle (format {}), {} bytes\n",
            shown(file),
            mgo_format::VERSION,
            size(bundle.bytes().len() as u64)
        );
        match &info {
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
            "  launcher  {}, {} bytes; starts builds {launch}{}",
            identity
                .as_deref()
                .unwrap_or("(unknown: no identity string)"),
            size(bundle.segment_offset() as u64),
            if launch == "mapped" {
                " (the default)"
            } else {
                " (MGO_LAUNCH=memfd)"
            }
        );
        for (i, entry) in bundle.table().entries().iter().enumerate() {
            let _ = writeln!(
                text,
                "  {:<8}  v{}  {:>12} bytes  {}",
                if i == 0 { "levels" } else { "" },
                entry.level,
                size(file_size(&bundle, entry)),
                describe_encoding(&bundle, entry)
            );
        }
        let _ = writeln!(text, "  here      {}", choice_text(&choice));
        text
    };
    crate::console::print(&text);
    Ok(())
}

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
    // Each level is checked block by block without being kept; only the
    // lowest level's build information is needed afterwards, so that level
    // goes to an unnamed temporary file rather than into memory.
    let lowest_level = bundle.table().entries().first().map_or(0, |e| e.level);
    let mut buildinfo = None;
    for entry in bundle.table().entries() {
        let mut spill = (entry.level == lowest_level)
            .then(tempfile::tempfile)
            .and_then(std::result::Result::ok)
            .map(|f| std::io::BufWriter::with_capacity(1 << 20, f));
        let checked = bundle.decode_into(entry, &mut |bytes| match spill.as_mut() {
            Some(file) => file.write_all(bytes).map_err(|e| e.to_string()),
            None => Ok(()),
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
            Err(damage) => {
                damaged = true;
                let _ = writeln!(report, "v{}: DAMAGED: {}", damage.level, damage.what);
            }
        }
    }
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

/// Compares everything but the variants' stored bytes with the bundle
/// this mgo lays out from the same stored variants. `Err` holds the lines
/// that say what differs.
fn check_launcher(
    bundle: &Bundle,
    lowest_buildinfo: Option<Vec<u8>>,
) -> std::result::Result<String, Vec<String>> {
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
    let expected_flavour = launchers::for_bundle(
        bundle
            .table()
            .entries()
            .first()
            .map_or(mgo_format::Encoding::Raw, |e| e.encoding),
        bundle
            .table()
            .entries()
            .iter()
            .any(|e| e.section_count != 0),
    );
    if !expected_flavour.is_some_and(|expected| std::ptr::eq(expected, launcher)) {
        return Err(vec![format!(
            "launcher: DAMAGED: {identity} cannot decode this bundle's variants"
        )]);
    }
    // The build info is a copy of the lowest level's; if that one is
    // damaged, the bundle's own copy stands in (and is not checked).
    let buildinfo =
        lowest_buildinfo.unwrap_or_else(|| bundle.buildinfo().unwrap_or_default().to_vec());
    let records: Vec<Vec<BlockRecord>> = bundle
        .table()
        .entries()
        .iter()
        .map(|e| {
            bundle
                .blocks(e)
                .map(|b| (0..b.len()).map(|i| b.record(i)).collect())
                .unwrap_or_default()
        })
        .collect();
    let sections: Vec<Vec<SectionRecord>> = bundle
        .table()
        .entries()
        .iter()
        .map(|e| bundle.section_records(e).unwrap_or_default())
        .collect();
    let segment = bundle
        .bytes()
        .get(bundle.segment_offset()..)
        .unwrap_or_default();
    let stored: Vec<StoredVariant<'_>> = bundle
        .table()
        .entries()
        .iter()
        .zip(&records)
        .zip(&sections)
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
        .collect();
    let not_checked = |e: &dyn std::fmt::Display| vec![format!("launcher: NOT CHECKED: {e}")];
    let plan = bundle::Plan::new(launcher, stored, bundle.table().flags(), buildinfo)
        .map_err(|e| not_checked(&e))?;
    let mut expected = Vec::with_capacity(plan.size() as usize);
    plan.write(&mut expected).map_err(|e| not_checked(&e))?;
    let actual = bundle.bytes();
    if expected == actual {
        return Ok(format!("launcher: ok ({identity}, as this mgo writes it)"));
    }
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
    Err(lines)
}

/// A bundle whose table cannot be read: the launcher's code is still
/// compared, where it does not depend on the table.
fn verify_damaged_table(file: &Path, err: mgo_format::Error) -> Result<()> {
    let bytes =
        std::fs::read(file).map_err(|e| fail(format!("cannot read {}: {e}", shown(file))))?;
    let mut report = format!("bundle table: DAMAGED: {err}\n");
    let identity = crate::bundle::read::identity_in(&bytes);
    match identity.as_deref().and_then(launchers::by_identity) {
        Some(launcher) => {
            // Past the ELF header and program headers, which the writer
            // patches, and up to its section headers, which it moves, the
            // launcher's bytes are copied as they are.
            let word = |at: usize, n: usize| {
                launcher.get(at..at + n).map_or(0, |b| {
                    b.iter()
                        .rev()
                        .fold(0usize, |acc, &x| acc << 8 | usize::from(x))
                })
            };
            let (phoff, phnum, shoff) = (word(0x20, 8), word(0x38, 2), word(0x28, 8));
            let from = phoff + 56 * phnum;
            let to = shoff.min(launcher.len()).min(bytes.len());
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

/// `mgo extract [-l vN] -o OUT FILE`.
pub fn extract(level: Option<u8>, file: &Path, out: &Path) -> Result<()> {
    let bundle = open(file)?;
    let level = level.unwrap_or_else(|| choice(&bundle).started);
    let entry = bundle.entry(level).ok_or_else(|| {
        let held: Vec<String> = bundle.levels().iter().map(|l| format!("v{l}")).collect();
        fail(format!(
            "{} has no v{level} build: it holds {}",
            shown(file),
            held.join(", ")
        ))
    })?;
    let bytes = decoded_file(&bundle, entry, file)?;
    if out == Path::new("-") {
        let mut stdout = std::io::stdout().lock();
        if stdout.is_terminal() {
            return Err(usage(
                "extract: refusing to write an executable to a terminal: use -o FILE, or redirect",
            ));
        }
        return place::Contents::write_to(&bytes, &mut stdout)
            .and_then(|()| stdout.flush())
            .map_err(|e| fail(format!("cannot write to standard output: {e}")));
    }
    place::check_replaceable(out)?;
    place::place(out, &bytes, 0o777 & !umask())?;
    Ok(())
}

/// `entry` decoded and checked block by block into an unnamed temporary
/// file (in `TMPDIR`): memory holds one block at a time whatever the level
/// decodes to, and a damaged level leaves no file behind.
fn decoded_file(bundle: &Bundle, entry: &Entry, file: &Path) -> Result<Spilled> {
    let temporary = |e: std::io::Error| fail(format!("cannot write a temporary file: {e}"));
    let mut spill =
        std::io::BufWriter::with_capacity(1 << 20, tempfile::tempfile().map_err(temporary)?);
    let size = bundle
        .decode_into(entry, &mut |bytes| {
            spill.write_all(bytes).map_err(|e| e.to_string())
        })
        .map_err(|damage| {
            fail(format!(
                "{} is damaged ({damage}): nothing was written",
                shown(file)
            ))
        })?;
    let file = spill.into_inner().map_err(|e| temporary(e.into_error()))?;
    Ok(Spilled { file, size })
}

/// A decoded level in an unnamed temporary file, written out by copying a
/// piece at a time.
struct Spilled {
    file: std::fs::File,
    size: u64,
}

impl place::Contents for Spilled {
    fn size(&self) -> u64 {
        self.size
    }

    fn write_to(&self, out: &mut dyn Write) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        let mut buffer = vec![0u8; 1 << 20];
        let mut at = 0;
        while at < self.size {
            let n = self.file.read_at(&mut buffer, at)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            out.write_all(buffer.get(..n).unwrap_or_default())?;
            at += n as u64;
        }
        Ok(())
    }
}

/// The process's umask, as Linux reports it (without changing it).
fn umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_grouped() {
        assert_eq!(size(0), "0");
        assert_eq!(size(999), "999");
        assert_eq!(size(1000), "1,000");
        assert_eq!(size(20_512_345), "20,512,345");
    }
}
