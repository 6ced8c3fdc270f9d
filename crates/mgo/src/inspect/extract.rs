//! `mgo extract [-l vN] -o OUT FILE`: one level written out as the plain
//! executable go built; `-pid PID` and `-core CORE`: the level a process
//! runs, or ran (see `running`).

use super::{choice, open, open_error, running};
use crate::bundle::read::{Bundle, OpenError, Stopped};
use crate::error::{Context, Result, fail, shown, usage};
use crate::place;
use mgo_format::Entry;
use std::io::{IsTerminal, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// `mgo extract [-l vN] -o OUT FILE`.
pub fn extract(level: Option<u8>, file: &Path, out: &Path) -> Result<()> {
    let bundle = open(file)?;
    let level = level.unwrap_or_else(|| choice(&bundle).started);
    write_level(&bundle, level, file, out)
}

/// `mgo extract -pid PID -o OUT`: the build process PID runs. Its
/// executable file is read through `/proc/PID/exe`, which reaches it even
/// once it is deleted or replaced; a process that started its build
/// through a memfd runs that memfd, which holds exactly the build.
pub fn extract_process(pid: u32, out: &Path) -> Result<()> {
    let exe = PathBuf::from(format!("/proc/{pid}/exe"));
    let process = running::Process::open(pid).map_err(|e| cannot_read_process(pid, e))?;
    let mappings = process
        .mappings()
        .map_err(|e| cannot_read_process(pid, e))?;
    let bundle = match Bundle::open(&exe) {
        Ok(bundle) => bundle,
        Err(OpenError::NotBundle(_)) => {
            let build = std::fs::File::open(&exe).map_err(|e| cannot_read_process(pid, e))?;
            let size = build
                .metadata()
                .map_err(|e| cannot_read_process(pid, e))?
                .len();
            return write_out(&Spilled { file: build, size }, out);
        }
        Err(OpenError::Io(e)) => return Err(cannot_read_process(pid, e)),
        Err(err) => return Err(open_error(&exe, err)),
    };
    let path = std::fs::read_link(&exe).map_err(|e| cannot_read_process(pid, e))?;
    let is_bundle = |mapped: &[u8]| mapped == path.as_os_str().as_bytes();
    match running::level_of(&bundle, &is_bundle, &mappings, &process) {
        running::Running::Level(level) | running::Running::Memfd { level, .. } => {
            write_level(&bundle, level, &exe, out)
        }
        running::Running::Unknown => Err(fail(format!(
            "cannot tell which level process {pid} runs: it has no mapping of one of \
             {}'s levels: is it still starting?",
            shown(&path)
        ))),
    }
}

fn cannot_read_process(pid: u32, err: std::io::Error) -> crate::error::Error {
    let hint = match err.kind() {
        std::io::ErrorKind::NotFound => ": no such process",
        std::io::ErrorKind::PermissionDenied => {
            ": run mgo as the process's user (or root), and see /proc/sys/kernel/yama/ptrace_scope"
        }
        _ => "",
    };
    fail(format!("cannot read process {pid}: {err}{hint}"))
}

/// `mgo extract -core CORE -o OUT [BUNDLE]`: the build a core file's
/// process ran, from BUNDLE or, without it, from the bundle the core names
/// (a mapping of it, or the memfd start's name for it).
pub fn extract_core(core_path: &Path, bundle_path: Option<&Path>, out: &Path) -> Result<()> {
    let file = std::fs::File::open(core_path)
        .with_context(|| format!("cannot read {}", shown(core_path)))?;
    // SAFETY: read-only; a core file is not changed while mgo reads it.
    let bytes = unsafe { memmap2::Mmap::map(&file) }
        .with_context(|| format!("cannot read {}", shown(core_path)))?;
    let core = running::Core::parse(&bytes).ok_or_else(|| {
        fail(format!(
            "{} is not a core file of an x86-64 process: name the core the crash left",
            shown(core_path)
        ))
    })?;
    let mappings = core.mappings();
    let bundle_path = match bundle_path {
        Some(path) => path.to_owned(),
        None => bundle_named_by(&mappings).ok_or_else(|| {
            fail(format!(
                "{} does not say which bundle it comes from: name it: mgo extract -core {} -o {} BUNDLE",
                shown(core_path),
                shown(core_path),
                shown(out)
            ))
        })?,
    };
    let bundle = open(&bundle_path)?;
    let canonical = std::fs::canonicalize(&bundle_path).ok();
    let is_bundle = |mapped: &[u8]| {
        canonical
            .as_ref()
            .is_some_and(|c| c.as_os_str().as_bytes() == mapped)
    };
    match running::level_of(&bundle, &is_bundle, &mappings, &core) {
        running::Running::Level(level) | running::Running::Memfd { level, .. } => {
            write_level(&bundle, level, &bundle_path, out)
        }
        running::Running::Unknown => Err(fail(format!(
            "{} does not show which level of {} ran: is it the core of a process of this bundle?",
            shown(core_path),
            shown(&bundle_path)
        ))),
    }
}

/// The bundle a core names: a mapped file that is a bundle, or the path
/// in a memfd start's name.
fn bundle_named_by(mappings: &[running::Mapping]) -> Option<PathBuf> {
    if let Some((path, _)) = running::memfd(mappings) {
        return Some(PathBuf::from(std::ffi::OsString::from_vec(path)));
    }
    mappings
        .iter()
        .filter_map(|m| m.path.as_deref())
        .map(|p| PathBuf::from(std::ffi::OsStr::from_bytes(p)))
        .find(|p| Bundle::open(p).is_ok())
}

/// Writes `level` of `bundle` (read from `file`) to `out`.
fn write_level(bundle: &Bundle, level: u8, file: &Path, out: &Path) -> Result<()> {
    let entry = bundle.entry(level).ok_or_else(|| {
        let held: Vec<String> = bundle.levels().iter().map(|l| format!("v{l}")).collect();
        fail(format!(
            "{} has no v{level} build: it holds {}",
            shown(file),
            held.join(", ")
        ))
    })?;
    let bytes = decoded_file(bundle, entry, file)?;
    write_out(&bytes, out)
}

/// Writes a build to `out`, or to standard output for `-`.
fn write_out(bytes: &Spilled, out: &Path) -> Result<()> {
    if out == Path::new("-") {
        let mut stdout = std::io::stdout().lock();
        if stdout.is_terminal() {
            return Err(usage(
                "extract: refusing to write an executable to a terminal: use -o FILE, or redirect",
            ));
        }
        return place::Contents::write_to(bytes, &mut stdout)
            .and_then(|()| stdout.flush())
            .context("cannot write to standard output");
    }
    place::check_replaceable(out)?;
    place::place(out, bytes, 0o777 & !umask())?;
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
