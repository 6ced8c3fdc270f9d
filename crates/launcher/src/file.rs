//! The file start (`MGODEBUG=file`, `MGO_LAUNCH=file`): the chosen level
//! is written once per user, as a file holding exactly its executable, into
//! a cache directory, then mapped from that file as the mapped start maps
//! the bundle. Profilers that need a mapped file to be an ELF file from
//! its first byte (the eBPF profilers) see the program, and a compressed
//! level is decoded once, then shared through the page cache.
//!
//! The directory: `$MGOCACHE/builds`, else `$XDG_CACHE_HOME/mgo/builds`,
//! else `$HOME/.cache/mgo/builds`, each made for its owner alone where
//! missing, and used only if it is the user's and no one else may write
//! it. A file is named after the bundle and the level's checksum, written
//! without a name (O_TMPFILE) and linked through /proc/self/fd when
//! complete, and checked against the level's checksum once per version
//! (inode and change time, remembered by an empty mark file beside it); a
//! file that fails is replaced, never run. Anything that goes wrong leaves
//! the start to the mapped start, saying why under `MGODEBUG=log`.
//! docs/LAUNCHER.md, "File start".

use crate::bundle::Bundle;
use crate::fail::Failure;
use crate::mapped::{self, Cached, Ready, Stop};
use crate::start::Process;
use crate::sys;
use core::ffi::CStr;
use mgo_format::Entry;
use rustix::fd::{BorrowedFd, OwnedFd};
use rustix::io::Errno;

/// Why the file start gave way to the mapped start.
pub type Refusal = &'static str;

/// Where the file is, for `MGODEBUG=log`: the directory the environment
/// names, the way from there, and the file's name.
pub struct Place {
    pub base: &'static [u8],
    pub rest: &'static [u8],
    pub name: [u8; NAME_MAX + 1],
}

impl Place {
    pub fn name(&self) -> &[u8] {
        CStr::from_bytes_until_nul(&self.name).map_or(&[], CStr::to_bytes)
    }
}

/// Maps `entry` from its file in the user's cache, creating the file if
/// needed. A damaged bundle is a failure, as in every start; anything else
/// is a refusal.
pub fn prepare(
    process: &Process,
    bundle: &Bundle,
    entry: &Entry,
    place: &mut Place,
) -> Result<Ready, Result<Refusal, Failure>> {
    let dir = cache_dir(process, place).map_err(Ok)?;
    let dir = sys::borrow(&dir);
    let name = file_name(process, entry, &mut place.name);
    let (file, image) = match open_checked(dir, name, entry)? {
        Some(found) => found,
        None => {
            create(dir, name, bundle, entry)?;
            open_checked(dir, name, entry)?.ok_or(Ok("the file just written is not there"))?
        }
    };
    let cached = Cached {
        file: sys::borrow(&file),
        image,
    };
    match mapped::prepare(process, bundle, entry, Some(cached)) {
        Ok(ready) => Ok(ready),
        Err(Stop::Refused(why)) => Err(Ok(why)),
        Err(Stop::Failed(failure)) => Err(Err(failure)),
    }
}

/// Opens the cache directory, creating the directories on the way for
/// their owner where missing, and checks that it is the user's alone.
fn cache_dir(process: &Process, place: &mut Place) -> Result<OwnedFd, Refusal> {
    let [mgocache, xdg, home] = process.cache_vars;
    let absolute = |v: Option<&'static CStr>| v.filter(|v| v.to_bytes().first() == Some(&b'/'));
    // As for mgo's own records: empty is unset, `off` is none at all.
    let mgocache = mgocache.filter(|v| !v.is_empty());
    if mgocache.map(CStr::to_bytes) == Some(b"off") {
        return Err("MGOCACHE is off");
    }
    // The XDG base directory specification ignores a relative path.
    let (base, steps, rest): (&'static CStr, &[&CStr], &'static [u8]) =
        match (mgocache, absolute(xdg), absolute(home)) {
            (Some(dir), _, _) if absolute(Some(dir)).is_some() => (dir, &[], b"/builds/"),
            (Some(_), _, _) => return Err("MGOCACHE is not an absolute path"),
            (None, Some(xdg), _) => (xdg, &[c"mgo"], b"/mgo/builds/"),
            (None, None, Some(home)) => (home, &[c".cache", c"mgo"], b"/.cache/mgo/builds/"),
            (None, None, None) => return Err("no cache directory: HOME is not an absolute path"),
        };
    place.base = base.to_bytes();
    place.rest = rest;
    let mut dir = enter(None, base)?;
    for step in steps.iter().chain(&[c"builds"]) {
        dir = enter(Some(sys::borrow(&dir)), step)?;
    }
    let owner = sys::owner_of(sys::borrow(&dir)).map_err(|_| "cannot open the cache directory")?;
    if owner.uid != sys::euid() || owner.mode & 0o022 != 0 {
        return Err("the cache directory is another user's, or others may write in it");
    }
    Ok(dir)
}

/// Runs `check` unless an earlier start left the mark that this version of
/// the bundle's `level` was checked, and leaves it when `check` passes (a
/// mark that cannot be made only means checking again next time). A
/// privileged start, whose caller could name the cache, always checks.
pub fn check_bundle_once<E>(
    process: &Process,
    bundle: &sys::Owned,
    level: u8,
    check: impl FnOnce() -> Result<(), E>,
) -> Result<(), E> {
    let mut name = [0u8; NAME_MAX + 1];
    let found = if process.secure {
        None
    } else {
        bundle_mark(process, bundle, level, &mut name)
    };
    if let Some((dir, mark)) = &found
        && was_checked(sys::borrow(dir), mark)
    {
        return Ok(());
    }
    check()?;
    if let Some((dir, mark)) = &found {
        let _ = sys::create_mark(sys::borrow(dir), mark);
    }
    Ok(())
}

/// The cache directory and the name of the mark for a version of the
/// bundle (device, inode, change time) and a level:
/// `.bundle-v3.checked-DEVICE-INODE-CTIME`.
fn bundle_mark<'a>(
    process: &Process,
    bundle: &sys::Owned,
    level: u8,
    name: &'a mut [u8; NAME_MAX + 1],
) -> Option<(OwnedFd, &'a CStr)> {
    let mut place = Place {
        base: b"",
        rest: b"",
        name: [0; NAME_MAX + 1],
    };
    let dir = cache_dir(process, &mut place).ok()?;
    let mut prefix = *b"bundle-v0\0";
    if let Some(slot) = prefix.get_mut(8) {
        *slot = b'0'.wrapping_add(level);
    }
    let prefix = CStr::from_bytes_until_nul(&prefix).unwrap_or(c"bundle");
    let [inode, seconds, nanoseconds] = bundle.version;
    Some((
        dir,
        checked_mark(prefix, &[bundle.device, inode, seconds, nanoseconds], name),
    ))
}

/// Opens the directory `name` in `dir`, made for its owner alone first if
/// it is missing (once: later starts find it).
fn enter(dir: Option<BorrowedFd<'_>>, name: &CStr) -> Result<OwnedFd, Refusal> {
    const CANNOT: Refusal = "cannot create the cache directory";
    match sys::open_dir(dir, name) {
        Err(Errno::NOENT) => {
            sys::make_private_dir(dir, name).map_err(|_| CANNOT)?;
            sys::open_dir(dir, name).map_err(|_| CANNOT)
        }
        other => other.map_err(|_| CANNOT),
    }
}

/// The longest file name the kernel takes (NAME_MAX).
const NAME_MAX: usize = 255;

/// The most of the bundle's name a file's name keeps.
const MAX_BASE: usize = 120;

/// The file's name: the bundle's (as it was executed), the level and the
/// level's checksum, e.g. `app-v3-0123456789abcdef`.
fn file_name<'a>(process: &Process, entry: &Entry, out: &'a mut [u8; NAME_MAX + 1]) -> &'a CStr {
    let path = process.exec_path.map_or(&b""[..], CStr::to_bytes);
    let base = path.rsplit(|&b| b == b'/').next().unwrap_or(b"");
    let mut suffix = *b"-v0-0000000000000000";
    if let Some(level) = suffix.get_mut(2) {
        *level = b'0'.wrapping_add(entry.level);
    }
    for (i, slot) in suffix.iter_mut().skip(4).enumerate() {
        let digit = (entry.checksum >> ((15 - i) * 4)) as u8 & 0xf;
        *slot = b"0123456789abcdef"
            .get(usize::from(digit))
            .copied()
            .unwrap_or(b'0');
    }
    // Room is left for the checked mark's name, which adds 60 bytes.
    let base = base.get(..base.len().min(MAX_BASE)).unwrap_or(b"");
    let (head, tail) = out.split_at_mut(base.len());
    head.copy_from_slice(base);
    if let Some(slot) = tail.get_mut(..suffix.len()) {
        slot.copy_from_slice(&suffix);
    }
    if let Some(nul) = tail.get_mut(suffix.len()) {
        *nul = 0;
    }
    CStr::from_bytes_until_nul(out.as_slice()).unwrap_or(c"bundle")
}

/// The file `name` if it is there, the user's, not writable by others,
/// of the level's size and with the level's checksum (of its executable,
/// for every encoding): opened, and mapped whole. A file that fails a
/// check is removed (so that it is written again); one that is missing is
/// `None`.
#[allow(clippy::type_complexity)]
fn open_checked(
    dir: BorrowedFd<'_>,
    name: &CStr,
    entry: &Entry,
) -> Result<Option<(OwnedFd, sys::Mapping)>, Result<Refusal, Failure>> {
    let file = match sys::open_in(dir, name) {
        Ok(file) => file,
        Err(Errno::NOENT) => return Ok(None),
        Err(_) => return Err(Ok("cannot open the file")),
    };
    let owner = sys::owner_of(sys::borrow(&file)).map_err(|_| Ok("cannot read the file"))?;
    const S_IFMT: u32 = 0o170_000;
    const S_IFREG: u32 = 0o100_000;
    if owner.mode & S_IFMT != S_IFREG || owner.uid != sys::euid() || owner.mode & 0o022 != 0 {
        return Err(Ok("the file is not a regular file of the user's alone"));
    }
    // A level whose DWARF is stored inflated is smaller as a file than
    // the image its blocks tile (entry.size); its checksum is the file's.
    let size_fits = if entry.section_count == 0 {
        owner.size == entry.size
    } else {
        owner.size <= entry.size
    };
    let size = usize::try_from(owner.size).map_err(|_| Ok("the level is too large"))?;
    let mut mark = [0u8; NAME_MAX + 1];
    let mark = checked_mark(name, &owner.version, &mut mark);
    if size_fits
        && size > 0
        && let Ok((image, 0)) = sys::map_file(sys::borrow(&file), 0, size)
        && (was_checked(dir, mark) || checks(&image, entry, dir, mark))
    {
        return Ok(Some((file, image)));
    }
    // Damaged, cut short or replaced: never run, written again.
    let _ = sys::unlink_in(dir, name);
    Ok(None)
}

/// Whether the mark that the file's present version was checked exists,
/// and is the user's: then it is not read again (its pages stay on disk
/// until the program needs them, as a plain build's do).
fn was_checked(dir: BorrowedFd<'_>, mark: &CStr) -> bool {
    sys::owner_of_name(dir, mark).is_ok_and(|owner| owner.uid == sys::euid())
}

/// Checks `image` against the level's checksum, and marks the file's
/// version as checked if it matches (a mark that cannot be made only means
/// checking again next time).
fn checks(image: &sys::Mapping, entry: &Entry, dir: BorrowedFd<'_>, mark: &CStr) -> bool {
    let matches = crate::verify::checksum(image.bytes()) == entry.checksum;
    if matches {
        let _ = sys::create_mark(dir, mark);
    }
    matches
}

/// `.NAME.checked-INODE-CTIME`: the mark that this version of the file
/// (its inode and change time, which every write moves) was checked.
fn checked_mark<'a>(name: &CStr, version: &[u64], out: &'a mut [u8; NAME_MAX + 1]) -> &'a CStr {
    let mut len = 0;
    let mut put = |b: u8| {
        if let Some(slot) = out.get_mut(len)
            && len < NAME_MAX
        {
            *slot = b;
            len += 1;
        }
    };
    put(b'.');
    for &b in name.to_bytes() {
        put(b);
    }
    for &b in b".checked" {
        put(b);
    }
    for value in version {
        put(b'-');
        for shift in (0..16).rev() {
            let digit = (value >> (shift * 4)) as u8 & 0xf;
            put(b"0123456789abcdef"
                .get(usize::from(digit))
                .copied()
                .unwrap_or(b'0'));
        }
    }
    put(0);
    CStr::from_bytes_until_nul(out.as_slice()).unwrap_or(c".checked")
}

/// Writes `entry`'s executable into a new file `name` in `dir`, without a
/// name until it is complete. Another start that links it first wins: its
/// file is as good.
fn create(
    dir: BorrowedFd<'_>,
    name: &CStr,
    bundle: &Bundle,
    entry: &Entry,
) -> Result<(), Result<Refusal, Failure>> {
    let file = sys::create_unnamed(dir).map_err(|_| Ok("cannot create the file"))?;
    fill(bundle, entry, sys::borrow(&file))?;
    match sys::link_unnamed(sys::borrow(&file), dir, name) {
        Ok(()) | Err(Errno::EXIST) => Ok(()),
        Err(_) => Err(Ok("cannot name the file")),
    }
}

/// The level's executable into `file`, each block checked first (the
/// memfd start's writer); a damaged bundle is a failure, a full disk or
/// any other refusal of the kernel's a refusal.
fn fill(
    bundle: &Bundle,
    entry: &Entry,
    file: BorrowedFd<'_>,
) -> Result<(), Result<Refusal, Failure>> {
    crate::memfd::fill(bundle, entry, file).map_err(|failure| match failure {
        Failure::System(..) | Failure::NoMemory => Ok("cannot write the file"),
        other => Err(other),
    })
}
