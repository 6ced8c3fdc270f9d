//! `mgo extract [-l vN] -o OUT FILE`: one level written out as the plain
//! executable go built.

use super::{choice, open};
use crate::bundle::read::{Bundle, Stopped};
use crate::error::{Context, Result, fail, shown, usage};
use crate::place;
use mgo_format::Entry;
use std::io::{IsTerminal, Write};
use std::path::Path;

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
            .context("cannot write to standard output");
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
        .decode_into(entry, &mut |bytes| spill.write_all(bytes))
        .map_err(|stopped| match stopped {
            Stopped::Damaged(damage) => fail(format!(
                "{} is damaged, nothing was written: {damage}",
                shown(file)
            )),
            Stopped::Sink(err) => temporary(err),
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
