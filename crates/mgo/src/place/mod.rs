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

pub mod scratch;

use crate::error::{Result, fail};
use crate::interrupt;
use rustix::fs::{AtFlags, FlockOperation, Mode, OFlags};
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// What `-o` asked for, resolved against the build directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// `-o /dev/null`, spelled any way (the null device itself): build,
    /// write nothing.
    Discard,
    /// `-o FILE`.
    File(PathBuf),
    /// `-o` naming a character device or a FIFO: the bytes are written
    /// into it; the node is never replaced.
    Stream(PathBuf),
    /// `-o DIR/` or an existing directory: one bundle per program.
    Dir(PathBuf),
    /// No `-o`: go's default name in the build directory, when go would
    /// write one.
    Default(PathBuf),
}

/// The null device's numbers (major 1, minor 3) on Linux.
const NULL_DEVICE: (u32, u32) = (1, 3);

impl Destination {
    /// Interprets `-o` the way `go build` does, looking at what the path
    /// names now.
    pub fn new(output: Option<&OsStr>, build_dir: &Path) -> Result<Self> {
        let Some(output) = output else {
            return Ok(Self::Default(build_dir.to_owned()));
        };
        if output == "/dev/null" {
            return Ok(Self::Discard);
        }
        let path = build_dir.join(output);
        let meta = match fs::metadata(&path) {
            Ok(meta) => Some(meta),
            Err(err) if err.kind() == io::ErrorKind::NotFound => None,
            Err(err) if err.raw_os_error() == Some(20) => {
                // ENOTDIR: a path through a file; go build fails later, mgo now.
                return Err(fail(format!(
                    "cannot inspect {}: {err}",
                    crate::error::shown(&path)
                )));
            }
            Err(err) => {
                return Err(fail(format!(
                    "cannot inspect {}: {err}",
                    crate::error::shown(&path)
                )));
            }
        };
        let file_type = meta.as_ref().map(fs::Metadata::file_type);
        Ok(match (file_type, meta) {
            (Some(t), Some(meta)) if t.is_char_device() => {
                let rdev = meta.rdev();
                if (rustix::fs::major(rdev), rustix::fs::minor(rdev)) == NULL_DEVICE {
                    Self::Discard
                } else {
                    Self::Stream(path)
                }
            }
            (Some(t), _) if t.is_fifo() => Self::Stream(path),
            (Some(t), _) if t.is_block_device() || t.is_socket() => {
                let what = if t.is_socket() {
                    "a socket"
                } else {
                    "a block device"
                };
                return Err(fail(format!(
                    "build output {} is {what}: name a file, a directory or /dev/null with -o",
                    crate::error::shown(&path)
                )));
            }
            (Some(t), _) if t.is_dir() => Self::Dir(path),
            _ if output.as_bytes().ends_with(b"/") => Self::Dir(path),
            _ => Self::File(path),
        })
    }
}

/// Refuses to replace what `go build` refuses to replace: a directory, or a
/// non-empty regular file that is not an executable. A mistyped `-o` must
/// not destroy a user's source or data. (Like go, it looks through
/// symlinks: what they end at is what [`place`] replaces.)
pub fn check_replaceable(dest: &Path) -> Result<()> {
    let meta = match fs::metadata(dest) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => {
            return Err(fail(format!(
                "cannot inspect {}: {err}",
                crate::error::shown(dest)
            )));
        }
    };
    if meta.is_dir() {
        return Err(fail(format!(
            "build output {} already exists and is a directory: name another file with -o",
            crate::error::shown(dest)
        )));
    }
    if meta.is_file() && meta.len() != 0 && !is_elf(dest) {
        return Err(fail(format!(
            "build output {} already exists and is not an executable: remove it or choose another -o",
            crate::error::shown(dest)
        )));
    }
    Ok(())
}

/// Whether `path` starts with the ELF magic number (an executable, for go
/// build's purposes on Linux).
pub fn is_elf(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == *b"\x7fELF"
}

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

const TEMP_PREFIX: &str = ".mgo-";
const TEMP_SUFFIX: &str = ".tmp";

/// A file being written: unnamed if the file system allows, locked either way.
struct Temporary {
    /// Where the bytes are written; `None` once closed.
    writer: Option<File>,
    /// A read-only descriptor of the same file that holds the lock, so that
    /// the lock outlives the writer.
    locked: File,
    dir: PathBuf,
    /// The name it has, if it has one yet.
    name: Option<PathBuf>,
}

impl Temporary {
    fn create(dir: &Path) -> io::Result<Self> {
        // An unnamed file is named later through /proc (linkat with
        // AT_EMPTY_PATH would need CAP_DAC_READ_SEARCH): without /proc,
        // a named file from the start.
        if Path::new("/proc/self/fd").is_dir() {
            match rustix::fs::open(
                dir,
                OFlags::TMPFILE | OFlags::WRONLY | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            ) {
                Ok(fd) => {
                    let writer = File::from(fd);
                    let locked = File::open(proc_path(&writer))?;
                    rustix::fs::flock(&locked, FlockOperation::LockExclusive)?;
                    return Ok(Self {
                        writer: Some(writer),
                        locked,
                        dir: dir.to_owned(),
                        name: None,
                    });
                }
                // Not supported by this file system (or kernel).
                Err(
                    rustix::io::Errno::OPNOTSUPP
                    | rustix::io::Errno::ISDIR
                    | rustix::io::Errno::INVAL,
                ) => {}
                Err(err) => return Err(err.into()),
            }
        }
        let (writer, path) = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .suffix(TEMP_SUFFIX)
            .tempfile_in(dir)?
            .keep()
            .map_err(|e| e.error)?;
        let locked = match File::open(&path) {
            Ok(file) => file,
            Err(err) => {
                let _ = fs::remove_file(&path);
                return Err(err);
            }
        };
        // Locked before its first byte: an unlocked, non-empty one is a leftover.
        let temp = Self {
            writer: Some(writer),
            locked,
            dir: dir.to_owned(),
            name: Some(path),
        };
        rustix::fs::flock(&temp.locked, FlockOperation::LockExclusive)?;
        Ok(temp)
    }

    /// The descriptor to write through, until [`Self::close_writer`].
    fn writer(&self) -> &File {
        self.writer.as_ref().unwrap_or(&self.locked)
    }

    /// Closes the writable descriptor: the kernel refuses to execute a file
    /// that one is open on (ETXTBSY), so none may be left once the file has
    /// its final name.
    fn close_writer(&mut self) {
        self.writer = None;
    }

    /// Gives the file `dest`'s name, replacing what was there.
    fn publish(mut self, dest: &Path) -> io::Result<()> {
        self.close_writer();
        let name = match self.name.take() {
            Some(name) => name,
            None => self.link()?,
        };
        let result = fs::rename(&name, dest);
        if result.is_err() {
            let _ = fs::remove_file(&name);
        }
        result
    }

    /// Links the unnamed file into its directory under a temporary name
    /// (linkat cannot replace an existing name; rename then can).
    fn link(&self) -> io::Result<PathBuf> {
        let proc_path = proc_path(&self.locked);
        for attempt in 0u32..100 {
            let name = self.dir.join(format!(
                "{TEMP_PREFIX}{}-{attempt}{TEMP_SUFFIX}",
                std::process::id()
            ));
            let linked = rustix::fs::linkat(
                rustix::fs::CWD,
                proc_path.as_str(),
                rustix::fs::CWD,
                &name,
                AtFlags::SYMLINK_FOLLOW,
            );
            match linked {
                Ok(()) => return Ok(name),
                Err(rustix::io::Errno::EXIST) => continue,
                Err(err) => return Err(err.into()),
            }
        }
        Err(io::Error::other("no free temporary name"))
    }
}

/// The /proc name of `file`'s descriptor, which opens (or links) the file
/// itself, named or not.
fn proc_path(file: &File) -> String {
    use std::os::fd::AsRawFd;
    format!("/proc/self/fd/{}", file.as_raw_fd())
}

impl Drop for Temporary {
    fn drop(&mut self) {
        if let Some(name) = self.name.take() {
            let _ = fs::remove_file(name);
        }
    }
}

/// Removes temporary files in `dir` that an mgo killed while writing left
/// behind: named like ours, not empty, and not locked by a living mgo.
pub fn remove_leftovers(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.as_bytes();
        if !(name.starts_with(TEMP_PREFIX.as_bytes()) && name.ends_with(TEMP_SUFFIX.as_bytes())) {
            continue;
        }
        let path = entry.path();
        if is_abandoned(&path) {
            let _ = fs::remove_file(&path);
        }
    }
}

/// Whether the file at `path` is a leftover: its creator locked it before
/// writing its first byte and holds the lock until it is renamed, so a
/// non-empty file nobody holds a lock on is one.
pub fn is_abandoned(path: &Path) -> bool {
    let Ok(file) = File::open(path) else {
        return false;
    };
    let non_empty = file.metadata().is_ok_and(|m| m.len() > 0);
    non_empty && rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

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
