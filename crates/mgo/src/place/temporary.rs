//! The file being written: unnamed (O_TMPFILE) or `.mgo-XXXXXX.tmp`,
//! locked while it lives, named only once complete; and the leftovers of
//! killed runs, removed by the next.

use rustix::fs::{AtFlags, FlockOperation, Mode, OFlags};
use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

const TEMP_PREFIX: &str = ".mgo-";
const TEMP_SUFFIX: &str = ".tmp";

/// A file being written: unnamed if the file system allows, locked either way.
pub(super) struct Temporary {
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
    pub(super) fn create(dir: &Path) -> io::Result<Self> {
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
    pub(super) fn writer(&self) -> &File {
        self.writer.as_ref().unwrap_or(&self.locked)
    }

    /// Closes the writable descriptor: the kernel refuses to execute a file
    /// that one is open on (ETXTBSY), so none may be left once the file has
    /// its final name.
    pub(super) fn close_writer(&mut self) {
        self.writer = None;
    }

    /// Gives the file `dest`'s name, replacing what was there.
    pub(super) fn publish(mut self, dest: &Path) -> io::Result<()> {
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
