//! mgo's temporary directory: where each level's go writes its output and
//! keeps its work directory. It is removed when mgo ends, whatever the
//! reason; one that an mgo killed by SIGKILL left behind is removed by the
//! next mgo that uses the same base directory. A live mgo holds an flock on
//! `lock` inside its directory, which tells the two apart. The lock goes
//! last: a compiler that a killed go left running may still write into the
//! directory while it is removed, and what remains then keeps its lock, so
//! the next mgo tries again.

use crate::error::{Context, Result, fail};
use crate::interrupt;
use rustix::fs::FlockOperation;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Names and contents that make a directory provably mgo's: `mgo-` alone
/// is a prefix other tools use too, and their directories are not mgo's to
/// remove.
const PREFIX: &str = "mgo-scratch-";
const LOCK: &str = "mgo.lock";
const LOCK_CONTENTS: &[u8] = b"mgo scratch directory, removed when its mgo ends\n";

/// The temporary directory of this run.
pub struct Scratch {
    dir: PathBuf,
    /// Held for as long as mgo runs.
    _lock: File,
}

impl Scratch {
    /// Creates it in GOTMPDIR (where the user lets go work) or the usual
    /// temporary directory, after removing leftovers there.
    pub fn create() -> Result<Self> {
        let base = std::env::var_os("GOTMPDIR")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        remove_leftovers(&base);
        let describe = |e: std::io::Error| {
            fail(format!(
                "cannot create a temporary directory in {}: {e}",
                crate::error::shown(&base)
            ))
        };
        let dir = tempfile::Builder::new()
            .prefix(PREFIX)
            .tempdir_in(&base)
            .map_err(describe)?;
        let lock = lock_in(dir.path()).map_err(describe)?;
        // From here on removed by `remove`, whose order TempDir lacks.
        let dir = dir.keep();
        let doomed = dir.clone();
        interrupt::set_cleanup(Some(Box::new(move || {
            let _ = remove(&doomed);
        })));
        Ok(Self { dir, _lock: lock })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// `v<level>` inside it, created.
    pub fn level_dir(&self, level: u8) -> Result<PathBuf> {
        let dir = self.path().join(format!("v{level}"));
        fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", crate::error::shown(&dir)))?;
        Ok(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        interrupt::set_cleanup(None);
        let _ = remove(&self.dir);
    }
}

/// Creates the lock, locked. Written only once locked: a cleaner removes
/// only directories whose lock file is non-empty and unlocked.
fn lock_in(dir: &Path) -> std::io::Result<File> {
    let mut lock = File::create(dir.join(LOCK))?;
    rustix::fs::flock(&lock, FlockOperation::LockExclusive)?;
    lock.write_all(LOCK_CONTENTS)?;
    Ok(lock)
}

/// Removes the directories that killed mgo runs left in `base`.
fn remove_leftovers(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_name().as_bytes().starts_with(PREFIX.as_bytes())
            || !entry.file_type().is_ok_and(|t| t.is_dir())
        {
            continue;
        }
        let dir = entry.path();
        if is_abandoned_scratch(&dir) {
            let _ = remove(&dir);
        }
    }
}

/// Whether `dir` is a scratch directory of an mgo that is gone: ours (the
/// user's own), with mgo's lock file (a regular file, not a link, with
/// mgo's words in it) that nobody holds.
fn is_abandoned_scratch(dir: &Path) -> bool {
    use std::io::Read;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let euid = rustix::process::geteuid().as_raw();
    if !fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir() && m.uid() == euid) {
        return false;
    }
    let Ok(mut lock) = fs::OpenOptions::new()
        .read(true)
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32)
        .open(dir.join(LOCK))
    else {
        return false;
    };
    if !lock.metadata().is_ok_and(|m| m.is_file()) {
        return false;
    }
    // One byte more than mgo writes: a longer file is not mgo's.
    let mut contents = Vec::with_capacity(LOCK_CONTENTS.len() + 1);
    if (&mut lock)
        .take(LOCK_CONTENTS.len() as u64 + 1)
        .read_to_end(&mut contents)
        .is_err()
    {
        return false;
    }
    contents == LOCK_CONTENTS
        && rustix::fs::flock(&lock, FlockOperation::NonBlockingLockExclusive).is_ok()
}

/// Removes a scratch directory, its lock last.
pub fn remove(dir: &Path) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name() == LOCK {
            continue;
        }
        if entry.file_type()?.is_dir() {
            fs::remove_dir_all(entry.path())?;
        } else {
            fs::remove_file(entry.path())?;
        }
    }
    fs::remove_file(dir.join(LOCK))?;
    // Not remove_dir: a file that appeared since the listing goes too.
    fs::remove_dir_all(dir)
}
