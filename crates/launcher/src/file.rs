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
//! without a name and linked when complete, and checked at every start as
//! the launcher checks the bundle: every block against its checksum (a file
//! that fails is replaced, never run). Anything that goes wrong leaves the
//! start to the mapped start, saying why under `MGODEBUG=log`.
//! docs/LAUNCHER.md, "File start".

use crate::bundle::Bundle;
use crate::fail::Failure;
use crate::mapped::{self, Ready, Stop};
use crate::start::Process;
use crate::sys;
use core::ffi::CStr;
use mgo_format::Entry;
use rustix::fd::{BorrowedFd, OwnedFd};
use rustix::io::Errno;

/// The longest path the kernel takes (PATH_MAX, its NUL included).
const PATH_MAX: usize = 4096;

/// Why the file start gave way to the mapped start.
pub type Refusal = &'static str;

/// Maps `entry` from its file in the user's cache, creating the file if
/// needed. A damaged bundle is a failure, as in every start; anything else
/// is a refusal.
pub fn prepare(
    process: &Process,
    bundle: &Bundle,
    entry: &Entry,
    path: &mut [u8; PATH_MAX],
) -> Result<Ready, Result<Refusal, Failure>> {
    let dir = cache_dir(process, path).map_err(Ok)?;
    let dir = sys::borrow(&dir);
    let mut name = [0u8; NAME_MAX + 1];
    let name = file_name(process, entry, &mut name);
    let (file, image) = match open_checked(dir, name, entry, bundle)? {
        Some(found) => found,
        None => {
            create(dir, name, bundle, entry)?;
            open_checked(dir, name, entry, bundle)?
                .ok_or(Ok("the file just written is not there"))?
        }
    };
    append(path, b"/");
    append(path, name.to_bytes());
    match mapped::prepare_file(process, sys::borrow(&file), image) {
        Ok(ready) => Ok(ready),
        Err(Stop::Refused(why)) => Err(Ok(why)),
        Err(Stop::Failed(failure)) => Err(Err(failure)),
    }
}

/// Opens the cache directory, creating it for its owner where missing,
/// and checks that it is the user's alone; `path` holds its path.
fn cache_dir(process: &Process, path: &mut [u8; PATH_MAX]) -> Result<OwnedFd, Refusal> {
    let (mut mgocache, mut xdg, mut home) = (None, None, None);
    // SAFETY: the kernel's NULL-terminated environment of C strings.
    unsafe {
        let mut cursor = process.envp;
        while !(*cursor).is_null() {
            let entry = CStr::from_ptr((*cursor).cast()).to_bytes();
            let value = |name: &[u8]| mgo_launcher::env::value_of(entry, name);
            mgocache = mgocache.or(value(b"MGOCACHE"));
            xdg = xdg.or(value(b"XDG_CACHE_HOME"));
            home = home.or(value(b"HOME"));
            cursor = cursor.add(1);
        }
    }
    // The XDG base directory specification ignores a relative path.
    let absolute = |v: Option<&'static [u8]>| v.filter(|v| v.first() == Some(&b'/'));
    // As for mgo's own records: empty is unset, `off` is none at all.
    let mgocache = mgocache.filter(|v| !v.is_empty());
    if mgocache == Some(b"off") {
        return Err("MGOCACHE is off");
    }
    let parts: [&[u8]; 3] = match (mgocache, absolute(xdg), absolute(home)) {
        (Some(dir), _, _) if dir.first() == Some(&b'/') => [dir, b"", b""],
        (Some(_), _, _) => return Err("MGOCACHE is not an absolute path"),
        (None, Some(xdg), _) => [xdg, b"/mgo", b""],
        (None, None, Some(home)) => [home, b"/.cache", b"/mgo"],
        (None, None, None) => return Err("no cache directory: HOME is not an absolute path"),
    };
    path.fill(0);
    // Each directory on the way that may be missing (`~/.cache` on a new
    // account) is made for its owner alone.
    for part in parts
        .iter()
        .chain([&&b"/builds"[..]])
        .filter(|p| !p.is_empty())
    {
        if !append(path, part) {
            return Err("the cache directory's path is too long");
        }
        make_dir(path).map_err(|_| "cannot create the cache directory")?;
    }
    let dir = sys::open_dir(as_c_str(path)).map_err(|_| "cannot open the cache directory")?;
    let owner = sys::owner_of(sys::borrow(&dir)).map_err(|_| "cannot open the cache directory")?;
    if owner.uid != sys::euid() || owner.mode & 0o022 != 0 {
        return Err("the cache directory is another user's, or others may write in it");
    }
    Ok(dir)
}

fn make_dir(path: &[u8; PATH_MAX]) -> Result<(), Errno> {
    sys::make_private_dir(as_c_str(path))
}

/// Appends `bytes` to the NUL-terminated `path`; false if they do not fit
/// (the path is left as it was).
fn append(path: &mut [u8; PATH_MAX], bytes: &[u8]) -> bool {
    let len = path.iter().position(|&b| b == 0).unwrap_or(PATH_MAX);
    match path.get_mut(len..len + bytes.len()) {
        Some(slot) if len + bytes.len() < PATH_MAX => {
            slot.copy_from_slice(bytes);
            true
        }
        _ => false,
    }
}

fn as_c_str(path: &[u8]) -> &CStr {
    CStr::from_bytes_until_nul(path).unwrap_or(c"/")
}

/// The longest file name the kernel takes (NAME_MAX).
const NAME_MAX: usize = 255;

/// The file's name: the bundle's name (as it was executed, reduced to
/// characters no shell or tool misreads), the level and the level's
/// checksum, e.g. `app-v3-0123456789abcdef`.
fn file_name<'a>(process: &Process, entry: &Entry, out: &'a mut [u8; NAME_MAX + 1]) -> &'a CStr {
    let path = process.exec_path.map_or(&b""[..], CStr::to_bytes);
    let base = path.rsplit(|&b| b == b'/').next().unwrap_or(b"");
    let mut len = 0;
    let mut put = |b: u8| {
        if let Some(slot) = out.get_mut(len) {
            *slot = b;
            len += 1;
        }
    };
    let kept = base
        .iter()
        .copied()
        .filter(|b| b.is_ascii_alphanumeric() || b"._+-".contains(b))
        .skip_while(|&b| b == b'.')
        .take(64);
    let mut named = false;
    for b in kept {
        put(b);
        named = true;
    }
    if !named {
        for &b in b"bundle" {
            put(b);
        }
    }
    for &b in b"-v" {
        put(b);
    }
    put(b'0'.wrapping_add(entry.level));
    put(b'-');
    for shift in (0..16).rev() {
        let digit = ((entry.checksum >> (shift * 4)) & 0xf) as u8;
        put(if digit < 10 {
            b'0' + digit
        } else {
            b'a' + digit - 10
        });
    }
    put(0);
    CStr::from_bytes_until_nul(out.as_slice()).unwrap_or(c"bundle")
}

/// The file `name` if it is there, the user's, not writable by others,
/// of the level's size and with every block's checksum right: opened, and
/// mapped whole. A file that fails a check is removed (so that it is
/// written again); one that is missing is `None`.
#[allow(clippy::type_complexity)]
fn open_checked(
    dir: BorrowedFd<'_>,
    name: &CStr,
    entry: &Entry,
    bundle: &Bundle,
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
    if size_fits
        && size > 0
        && let Ok((image, 0)) = sys::map_file(sys::borrow(&file), 0, size)
        && matches_level(&image, entry, bundle)?
    {
        return Ok(Some((file, image)));
    }
    // Damaged, cut short or replaced: never run, written again.
    let _ = sys::unlink_in(dir, name);
    Ok(None)
}

/// Whether `image` holds exactly `entry`'s executable: each block against
/// its checksum, as the bundle's bytes are checked, or, where the level's
/// DWARF is stored inflated (its blocks tile another image), the whole
/// file against the level's checksum.
fn matches_level(
    image: &sys::Mapping,
    entry: &Entry,
    bundle: &Bundle,
) -> Result<bool, Result<Refusal, Failure>> {
    let bytes = image.bytes();
    if entry.section_count != 0 {
        return Ok(crate::verify::checksum(bytes) == entry.checksum);
    }
    let blocks = bundle.blocks(entry).map_err(Err)?;
    Ok((0..blocks.len()).all(|i| {
        let block = blocks.get(i);
        let start = usize::try_from(block.offset).unwrap_or(usize::MAX);
        let held = bytes
            .get(start..)
            .and_then(|rest| rest.get(..block.size))
            .unwrap_or(&[]);
        crate::verify::block(entry.level, &block, held).is_ok()
    }))
}

/// Writes `entry`'s executable into a new file `name` in `dir`: without a
/// name until it is complete (O_TMPFILE), else under a temporary name
/// renamed into place. Another start that links it first wins; its file
/// is as good.
fn create(
    dir: BorrowedFd<'_>,
    name: &CStr,
    bundle: &Bundle,
    entry: &Entry,
) -> Result<(), Result<Refusal, Failure>> {
    if let Ok(file) = sys::create_unnamed(dir) {
        fill(bundle, entry, sys::borrow(&file))?;
        match sys::link_unnamed(sys::borrow(&file), dir, name) {
            Ok(()) | Err(Errno::EXIST) => return Ok(()),
            // No /proc: name it as below.
            Err(_) => {}
        }
    }
    let mut temporary = [0u8; NAME_MAX + 1];
    let temporary = temporary_name(name, &mut temporary);
    let file = sys::create_new_in(dir, temporary).map_err(|_| Ok("cannot create the file"))?;
    let written = fill(bundle, entry, sys::borrow(&file));
    drop(file);
    let renamed = written.and_then(|()| {
        sys::rename_in(dir, temporary, name).map_err(|_| Ok("cannot name the file"))
    });
    if renamed.is_err() {
        let _ = sys::unlink_in(dir, temporary);
    }
    renamed
}

/// `.NAME.PID.tmp`.
fn temporary_name<'a>(name: &CStr, out: &'a mut [u8; NAME_MAX + 1]) -> &'a CStr {
    let mut len = 0;
    let mut put = |bytes: &[u8]| {
        for &b in bytes {
            if let Some(slot) = out.get_mut(len)
                && len < NAME_MAX
            {
                *slot = b;
                len += 1;
            }
        }
    };
    put(b".");
    put(name.to_bytes());
    put(b".");
    let mut digits = [0u8; 10];
    let mut n = sys::pid();
    let mut count = 0;
    loop {
        if let Some(d) = digits.get_mut(count) {
            *d = b'0' + (n % 10) as u8;
        }
        count += 1;
        n /= 10;
        if n == 0 || count == digits.len() {
            break;
        }
    }
    for i in (0..count).rev() {
        put(digits.get(i..=i).unwrap_or(b"0"));
    }
    put(b".tmp");
    CStr::from_bytes_until_nul(out.as_slice()).unwrap_or(c".mgo.tmp")
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
