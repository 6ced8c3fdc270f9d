//! Where bundles go, and writing them so that nothing is ever half-written:
//! a temporary file beside the destination, renamed over it at the end.

use crate::bundle::{self, Variants};
use std::fs::{self, File, Permissions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// What `-o` asked for, resolved against the build directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// `-o /dev/null`: build, write nothing.
    Discard,
    /// `-o FILE`.
    File(PathBuf),
    /// `-o DIR/` or an existing directory: one bundle per main package.
    Dir(PathBuf),
    /// No `-o`: go build's default name in the build directory, when exactly
    /// one main package is built.
    Default(PathBuf),
}

impl Destination {
    /// Interprets `-o` the way `go build` does.
    pub fn new(output: Option<&std::ffi::OsStr>, build_dir: &Path) -> Self {
        let Some(output) = output else {
            return Self::Default(build_dir.to_owned());
        };
        let path = build_dir.join(output);
        if output == "/dev/null" {
            Self::Discard
        } else if output.as_encoded_bytes().ends_with(b"/") || path.is_dir() {
            Self::Dir(path)
        } else {
            Self::File(path)
        }
    }
}

/// A failure to place a bundle, worded for an `mgo:` line.
pub type Error = String;

/// Refuses to replace what `go build` refuses to replace: a directory, or a
/// non-empty regular file that is not an executable. A mistyped `-o` must
/// not destroy a user's source or data. (Like go, it looks through symlinks;
/// the rename then replaces the link itself.)
pub fn check_replaceable(dest: &Path) -> Result<(), Error> {
    let meta = match fs::metadata(dest) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(format!("cannot inspect {}: {err}", dest.display())),
    };
    if meta.is_dir() {
        return Err(format!(
            "build output {} already exists and is a directory: name another file with -o",
            dest.display()
        ));
    }
    if meta.is_file() && meta.len() != 0 && !is_elf(dest) {
        return Err(format!(
            "build output {} already exists and is not an executable: remove it or choose another -o",
            dest.display()
        ));
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

/// Writes the bundle of `variants` to `dest` atomically with `mode`.
pub fn write_bundle(
    dest: &Path,
    launcher: &[u8],
    variants: &Variants,
    mode: u32,
) -> Result<(), Error> {
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let describe = |err: &dyn std::fmt::Display| format!("cannot write {}: {err}", dest.display());
    // go build creates the directories -o names; so does mgo.
    fs::create_dir_all(parent).map_err(|e| describe(&e))?;
    let temp = tempfile::Builder::new()
        .prefix(".mgo-")
        .suffix(".tmp")
        .tempfile_in(parent)
        .map_err(|e| describe(&e))?;
    {
        let mut out = BufWriter::with_capacity(1 << 20, temp.as_file());
        bundle::write(launcher, variants, &mut out).map_err(|e| describe(&e))?;
        out.flush().map_err(|e| describe(&e))?;
    }
    temp.as_file()
        .set_permissions(Permissions::from_mode(mode & 0o7777))
        .map_err(|e| describe(&e))?;
    temp.persist(dest).map_err(|e| describe(&e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn destinations_follow_go_build() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        fs::create_dir(base.join("existing")).unwrap();
        let cases = [
            (None, Destination::Default(base.to_owned())),
            (Some("/dev/null"), Destination::Discard),
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
                Destination::new(output.map(OsStr::new), base),
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
}
