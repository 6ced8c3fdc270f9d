//! Where `-o` points, read as go reads it, and whether what is there may
//! be replaced.

use crate::error::{Result, fail};
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
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
/// symlinks: what they end at is what [`place`](super::place) replaces.)
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
