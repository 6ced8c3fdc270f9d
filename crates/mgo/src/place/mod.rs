//! Where bundles go, and placing them so that nothing is ever half-written
//! or left behind.
//!
//! [`place`] is the one way every command writes a file (docs/CLI.md,
//! "Writing"). A character device, a FIFO, or a file reached
//! through /proc's links to open files (`/dev/stdout`) is opened and written
//! into: the node stays. A symlink is followed, and what it ends at is
//! replaced: the link stays a link.
//!
//! A file is written to an unnamed file (O_TMPFILE) in the directory it
//! goes into, given a temporary name only once complete, and renamed over
//! the destination: a reader never sees a partial file, and mgo killed at
//! any moment before that leaves nothing. Where a file system has no
//! O_TMPFILE, the file is named `.mgo-XXXXXX.tmp` from the start. Either
//! way mgo holds an flock on it while it lives, so that the next run in that
//! directory can tell a leftover (unlocked) from another mgo's work in
//! progress (locked) and remove it. The lock is held on a read-only
//! descriptor: the writable one is closed before the file gets a name, or
//! an executable started from the new name in that moment would fail with
//! ETXTBSY. A destination that already holds the
//! same bytes is left as it is and only its times are updated, as go does
//! for an up-to-date executable.

mod destination;
pub mod scratch;
mod temporary;

pub use destination::{Destination, check_replaceable, is_elf};
use temporary::Temporary;
pub use temporary::remove_leftovers;

use crate::error::{Result, fail};
use crate::interrupt;
use rustix::fs::{AtFlags, OFlags};
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// What placing a file did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placed {
    /// A new file was renamed over the destination.
    Written,
    /// The destination held the same bytes: only its times were updated.
    Kept,
    /// The bytes were written into a device, a FIFO or an open file.
    Streamed,
}

/// How a destination is written.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Placement {
    /// Opened and written into.
    Into(PathBuf),
    /// A new file renamed over this path, where the destination's symlinks
    /// end (or would end: it need not exist).
    Replace(PathBuf),
}

/// The kernel's own limit on symlinks followed in one lookup.
const MAX_LINKS: usize = 40;

/// Decides how `dest` is written by following its symlinks one at a time.
/// A symlink in procfs is a link to an open file (`/dev/stdout` ends at
/// `/proc/self/fd/1`): the name it shows may be gone or be another file
/// now, so it is opened rather than resolved by name.
fn placement(dest: &Path) -> io::Result<Placement> {
    let mut path = dest.to_owned();
    for _ in 0..MAX_LINKS {
        let meta = match fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Ok(Placement::Replace(path));
            }
            Err(err) => return Err(err),
        };
        let file_type = meta.file_type();
        if file_type.is_file() {
            return Ok(Placement::Replace(path));
        }
        if file_type.is_char_device() || file_type.is_fifo() {
            return Ok(Placement::Into(path));
        }
        if file_type.is_dir() {
            return Err(io::Error::other(format!(
                "{} is a directory",
                crate::error::shown(&path)
            )));
        }
        if !file_type.is_symlink() {
            // A block device or a socket: nothing a build output may be
            // written into.
            let what = if file_type.is_socket() {
                "a socket"
            } else {
                "a block device"
            };
            return Err(io::Error::other(format!(
                "{} is {what}",
                crate::error::shown(&path)
            )));
        }
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if rustix::fs::statfs(dir).is_ok_and(|fs| fs.f_type == rustix::fs::PROC_SUPER_MAGIC) {
            return Ok(Placement::Into(path));
        }
        path = dir.join(fs::read_link(&path)?);
    }
    Err(io::Error::from_raw_os_error(
        rustix::io::Errno::LOOP.raw_os_error(),
    ))
}

/// The bytes to place: their size and how to write them, so that a bundle
/// is never held in memory whole.
pub trait Contents {
    /// The number of bytes.
    fn size(&self) -> u64;
    /// Writes them all.
    fn write_to(&self, out: &mut dyn Write) -> io::Result<()>;
}

impl Contents for Vec<u8> {
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn write_to(&self, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(self)
    }
}

/// Writes `contents` to `dest` as [`placement`] decides: into a device,
/// FIFO or open file; otherwise atomically, with `mode`, at the end of any
/// symlinks, keeping a file that holds the same bytes.
pub fn place(dest: &Path, contents: &dyn Contents, mode: u32) -> Result<Placed> {
    let describe = |err: &dyn std::fmt::Display| {
        fail(format!("cannot write {}: {err}", crate::error::shown(dest)))
    };
    let dest = match placement(dest).map_err(|e| describe(&e))? {
        Placement::Into(node) => {
            stream(&node, contents).map_err(|e| match interrupt::check() {
                Err(stop) => stop,
                Ok(()) => describe(&e),
            })?;
            return Ok(Placed::Streamed);
        }
        Placement::Replace(path) => path,
    };
    let dest = dest.as_path();
    if same_contents(dest, contents) {
        interrupt::check()?;
        touch(dest).map_err(|e| describe(&e))?;
        return Ok(Placed::Kept);
    }
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // go build creates the directories -o names; so does mgo.
    fs::create_dir_all(parent).map_err(|e| describe(&e))?;
    remove_leftovers(parent);
    let mut temp = Temporary::create(parent).map_err(|e| describe(&e))?;
    {
        let mut out = BufWriter::with_capacity(1 << 20, Interruptible(temp.writer()));
        contents
            .write_to(&mut out)
            .map_err(|e| match interrupt::check() {
                Err(stop) => stop,
                Ok(()) => describe(&e),
            })?;
        out.flush().map_err(|e| describe(&e))?;
    }
    temp.writer()
        .set_permissions(fs::Permissions::from_mode(mode & 0o7777))
        .map_err(|e| describe(&e))?;
    temp.close_writer();
    interrupt::check()?;
    temp.publish(dest).map_err(|e| describe(&e))?;
    Ok(Placed::Written)
}

/// Writes `contents` into the node at `path` as go build does (O_WRONLY,
/// O_TRUNC): the node stays what it is. Opening a FIFO waits for a reader.
fn stream(path: &Path, contents: &dyn Contents) -> io::Result<()> {
    let file =
        interrupt::blocking(|| fs::OpenOptions::new().write(true).truncate(true).open(path))?;
    let mut out = BufWriter::with_capacity(1 << 20, Interruptible(&file));
    interrupt::blocking(|| contents.write_to(&mut out).and_then(|()| out.flush()))
}

/// A writer that stops at the first write after an interrupt.
struct Interruptible<'a>(&'a File);

impl Write for Interruptible<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if interrupt::interrupted() {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
        }
        (&mut &*self.0).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Whether `dest` is a regular file holding exactly `contents`.
fn same_contents(dest: &Path, contents: &dyn Contents) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    // Non-blocking: a FIFO swapped in since [`placement`] looked must not
    // stop mgo here (the open of one for reading waits for a writer).
    let opened = fs::OpenOptions::new()
        .read(true)
        .custom_flags(OFlags::NONBLOCK.bits() as i32)
        .open(dest);
    let Ok(file) = opened else {
        return false;
    };
    match file.metadata() {
        Ok(meta) if meta.is_file() && meta.len() == contents.size() => {}
        _ => return false,
    }
    let mut compare = Compare {
        file: io::BufReader::with_capacity(1 << 20, file),
        buffer: Vec::new(),
        same: true,
    };
    contents.write_to(&mut compare).is_ok() && compare.same
}

/// A writer that compares what it is given with a file's bytes.
struct Compare<R> {
    file: R,
    buffer: Vec<u8>,
    same: bool,
}

impl<R: Read> Write for Compare<R> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buffer.resize(buf.len(), 0);
        if self.file.read_exact(&mut self.buffer).is_err() || self.buffer != buf {
            self.same = false;
            // Stops the writer early: the answer is known.
            return Err(io::Error::other("differs"));
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Sets `path`'s access and modification times to now (go's `os.Chtimes`
/// on an up-to-date output).
pub fn touch(path: &Path) -> io::Result<()> {
    let now = rustix::fs::Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: 0,
            tv_nsec: rustix::fs::UTIME_NOW,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: 0,
            tv_nsec: rustix::fs::UTIME_NOW,
        },
    };
    rustix::fs::utimensat(rustix::fs::CWD, path, &now, AtFlags::empty())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::temporary::*;
    use super::*;
    use rustix::fs::{FlockOperation, Mode};
    use std::ffi::OsStr;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn destinations_follow_go_build() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        fs::create_dir(base.join("existing")).unwrap();
        let cases = [
            (None, Destination::Default(base.to_owned())),
            (Some("/dev/null"), Destination::Discard),
            (Some("//dev/null"), Destination::Discard),
            (Some("/dev/./null"), Destination::Discard),
            (Some("/dev/zero"), Destination::Stream("/dev/zero".into())),
            (Some("out"), Destination::File(base.join("out"))),
            (Some("bin/"), Destination::Dir(base.join("bin/"))),
            (Some("existing"), Destination::Dir(base.join("existing"))),
            (
                Some("/abs/file"),
                Destination::File(PathBuf::from("/abs/file")),
            ),
        ];
        for (output, expected) in cases {
            assert_eq!(
                Destination::new(output.map(OsStr::new), base).unwrap(),
                expected,
                "{output:?}"
            );
        }
    }

    #[test]
    fn only_missing_files_and_executables_may_be_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        fs::write(path("source.go"), "package main\n").unwrap();
        fs::write(path("prog"), b"\x7fELF\x02\x01").unwrap();
        fs::write(path("empty"), b"").unwrap();
        assert!(check_replaceable(&path("missing")).is_ok());
        assert!(check_replaceable(&path("prog")).is_ok());
        assert!(check_replaceable(&path("empty")).is_ok());
        std::os::unix::fs::symlink(path("source.go"), path("link")).unwrap();
        for name in ["source.go", "link", ""] {
            assert!(
                check_replaceable(&path(name)).is_err(),
                "{name:?} may be replaced"
            );
        }
    }

    #[test]
    fn placing_the_same_bytes_keeps_the_file_and_new_bytes_replace_it() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out");
        assert_eq!(
            place(&dest, &b"one".to_vec(), 0o755).unwrap(),
            Placed::Written
        );
        let inode = fs::metadata(&dest).unwrap().ino();
        assert_eq!(place(&dest, &b"one".to_vec(), 0o755).unwrap(), Placed::Kept);
        assert_eq!(fs::metadata(&dest).unwrap().ino(), inode);
        assert_eq!(
            place(&dest, &b"two".to_vec(), 0o755).unwrap(),
            Placed::Written
        );
        assert_ne!(fs::metadata(&dest).unwrap().ino(), inode);
        assert_eq!(fs::read(&dest).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&dest).unwrap().permissions().mode() & 0o777,
            0o755
        );
        // Nothing else is left in the directory.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn nodes_are_written_into_and_symlinks_followed_to_what_is_replaced() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        fs::write(path("real"), b"old").unwrap();
        symlink("real", path("link")).unwrap();
        symlink("link", path("chain")).unwrap();
        symlink("sub/new", path("dangling")).unwrap();
        symlink("loop", path("loop")).unwrap();
        fs::create_dir(path("sub")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            path("fifo"),
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let replace = |p: PathBuf| Placement::Replace(p);
        let cases = [
            (path("missing"), replace(path("missing"))),
            (path("real"), replace(path("real"))),
            (path("chain"), replace(dir.path().join("./real"))),
            (path("dangling"), replace(dir.path().join("sub/new"))),
            (path("fifo"), Placement::Into(path("fifo"))),
            ("/dev/null".into(), Placement::Into("/dev/null".into())),
            // A link to an open file, whatever it is.
            (
                "/proc/self/fd/0".into(),
                Placement::Into("/proc/self/fd/0".into()),
            ),
        ];
        for (dest, expected) in cases {
            assert_eq!(placement(&dest).unwrap(), expected, "{dest:?}");
        }
        for refused in [path("sub"), path("loop")] {
            assert!(placement(&refused).is_err(), "{refused:?}");
        }
        assert_eq!(
            place(&path("chain"), &b"new".to_vec(), 0o755).unwrap(),
            Placed::Written
        );
        assert!(fs::symlink_metadata(path("link")).unwrap().is_symlink());
        assert!(fs::symlink_metadata(path("chain")).unwrap().is_symlink());
        assert_eq!(fs::read(path("real")).unwrap(), b"new");
    }

    #[test]
    fn only_unlocked_non_empty_temporaries_are_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        fs::write(path(".mgo-dead.tmp"), b"x").unwrap();
        fs::write(path(".mgo-new.tmp"), b"").unwrap();
        fs::write(path(".mgo-live.tmp"), b"x").unwrap();
        fs::write(path("other.tmp"), b"x").unwrap();
        let live = File::open(path(".mgo-live.tmp")).unwrap();
        rustix::fs::flock(&live, FlockOperation::LockExclusive).unwrap();
        remove_leftovers(dir.path());
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, [".mgo-live.tmp", ".mgo-new.tmp", "other.tmp"]);
    }
}
