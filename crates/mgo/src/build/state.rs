//! What mgo remembers between runs so that an up-to-date rebuild costs one
//! `go build`, not four (docs/CLI.md, "Up-to-date rebuilds").
//!
//! go decides that an executable is up to date by reading the build ID in
//! the existing output and comparing it with the one it would build. mgo
//! lets go decide for the lowest level: it writes that level's first block,
//! taken from the existing bundle (it holds the build ID), where go will
//! look, and runs that one go build. If go leaves it untouched, the lowest
//! level is up to date. The other levels are built from the same packages,
//! flags and environment; only files that the lowest level does not compile
//! (`//go:build amd64.v3` and the like) can change them alone. For those, the
//! state records the user's package directories that any other level
//! compiles and the files they embed, with the size, time and inode of
//! every source file there: any change means a full rebuild. The state
//! lives outside the bundle, which stays a pure function of its inputs.

use crate::bundle::read::Bundle;
use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use xxhash_rust::xxh3::Xxh3;

const HEADER: &str = "mgo state 1";

/// A state file is dropped when unused for this long.
const MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);

/// A state file holds a few lines per program and per watched directory:
/// one larger than this is not one mgo wrote, and is not read.
const MAX_SIZE: u64 = 1 << 20;

/// One bundle as the last run left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// The name go gives the output in the level's temporary directory.
    pub temp_name: OsString,
    /// Where the bundle is.
    pub dest: PathBuf,
    /// Which file it was: see [`identity`].
    pub identity: Identity,
}

/// What identifies a bundle file: device, inode, size, and a digest of its
/// table (which holds every variant's checksum). Not its times: go's own
/// up-to-date rebuilds update those, and so do mgo's.
pub type Identity = (u64, u64, u64, u64);

/// The state of one command's outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// Digest of everything that decides the bundles besides the sources.
    pub settings: u128,
    /// The user's package directories that a level above the lowest compiles.
    pub dirs: Vec<PathBuf>,
    /// The files those packages embed.
    pub files: Vec<PathBuf>,
    /// Digest of the source files in `dirs`, and of `files`.
    pub watch: u128,
    /// The bundles written.
    pub programs: Vec<Program>,
}

/// The identity of `bundle`, opened from `path`.
pub fn identity_of(path: &Path, bundle: &Bundle) -> Option<Identity> {
    let entries = bundle.table().entries().iter().map(|entry| {
        (
            entry.level,
            entry.encoding as u8,
            entry.reference,
            entry.size,
            entry.checksum,
        )
    });
    identity(path, bundle.table().flags(), entries)
}

/// The identity of the bundle just written at `path` from `variants`: the
/// writer's own table, so the file need not be read back.
pub fn identity_written(
    path: &Path,
    flags: u32,
    variants: &[mgo_format::StoredVariant<'_>],
) -> Option<Identity> {
    let entries = variants
        .iter()
        .map(|v| (v.level, v.encoding as u8, v.reference, v.size, v.checksum));
    identity(path, flags, entries)
}

/// The file at `path` (device, inode, size) and a digest of its table's
/// flags and entries (level, encoding, reference, size, checksum).
fn identity(
    path: &Path,
    flags: u32,
    entries: impl Iterator<Item = (u8, u8, u8, u64, u64)>,
) -> Option<Identity> {
    let meta = fs::metadata(path).ok()?;
    let mut hasher = Xxh3::new();
    hasher.update(&flags.to_le_bytes());
    for (level, encoding, reference, size, checksum) in entries {
        hasher.update(&[level, encoding, reference]);
        hasher.update(&size.to_le_bytes());
        hasher.update(&checksum.to_le_bytes());
    }
    Some((meta.dev(), meta.ino(), meta.len(), hasher.digest()))
}

/// File names that go reads as sources (go/build's list), `.go` first.
const SOURCE_SUFFIXES: &[&str] = &[
    ".go", ".s", ".S", ".sx", ".c", ".h", ".cc", ".cpp", ".cxx", ".hh", ".hpp", ".hxx", ".f", ".F",
    ".for", ".f90", ".m", ".swig", ".swigcxx", ".syso",
];

fn is_source(name: &[u8]) -> bool {
    SOURCE_SUFFIXES
        .iter()
        .any(|suffix| name.ends_with(suffix.as_bytes()))
}

fn hash_meta(hasher: &mut Xxh3, meta: Option<fs::Metadata>) {
    let Some(meta) = meta else {
        hasher.update(b"missing\0");
        return;
    };
    for value in [
        u64::from(meta.mode()),
        meta.len(),
        meta.mtime() as u64,
        meta.mtime_nsec() as u64,
        meta.ino(),
    ] {
        hasher.update(&value.to_le_bytes());
    }
}

/// A digest of the source files in `dirs` and of `files` as they are now:
/// each one's name, type, size, modification time and inode (editors that
/// replace files change the inode; `git checkout` and `touch` the time). A
/// file added or removed changes it too. Other files in those directories
/// (the outputs of go build among them) do not count.
pub fn watch_digest(dirs: &[PathBuf], files: &[PathBuf]) -> u128 {
    let mut hasher = Xxh3::new();
    for dir in dirs {
        hasher.update(dir.as_os_str().as_bytes());
        hasher.update(b"\0");
        let Ok(entries) = fs::read_dir(dir) else {
            hasher.update(b"unreadable\0");
            continue;
        };
        let mut entries: Vec<(OsString, Option<fs::Metadata>)> = entries
            .flatten()
            .filter(|e| is_source(e.file_name().as_bytes()))
            .map(|e| (e.file_name(), e.metadata().ok()))
            .collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, meta) in entries {
            hasher.update(name.as_bytes());
            hasher.update(b"\0");
            hash_meta(&mut hasher, meta);
        }
    }
    for file in files {
        hasher.update(file.as_os_str().as_bytes());
        hasher.update(b"\0");
        hash_meta(&mut hasher, fs::metadata(file).ok());
    }
    hasher.digest128()
}

/// A digest of `parts`, each length-prefixed so that no two lists collide.
pub fn digest<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> u128 {
    let mut hasher = Xxh3::new();
    for part in parts {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hasher.digest128()
}

/// The state file for a command whose `key` is a digest of what it is
/// (directory, arguments, destination).
pub fn path(state_dir: &Path, key: u128) -> PathBuf {
    state_dir.join(format!("{key:032x}"))
}

/// Whether `name` is one [`path`] gives, or the temporary name
/// [`State::save`] writes one under: the only files in the state directory
/// that mgo may remove. (`MGOCACHE` may name a directory that holds other
/// files.)
fn is_state_name(name: &[u8]) -> bool {
    let is_hex = |part: &[u8]| part.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let temp = name
        .strip_prefix(SAVE_PREFIX.as_bytes())
        .is_some_and(|rest| {
            rest.len() == SAVE_RANDOM && rest.iter().all(u8::is_ascii_alphanumeric)
        });
    (name.len() == 32 && is_hex(name)) || temp
}

/// The temporary name of a state being saved: the prefix, then
/// `SAVE_RANDOM` random letters and digits.
const SAVE_PREFIX: &str = ".state-";
const SAVE_RANDOM: usize = 6;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

impl State {
    /// The text of the state file. Paths are hex: any byte may be in them.
    fn encode(&self) -> String {
        let mut text = format!(
            "{HEADER}\nsettings {:032x}\nwatch {:032x}\n",
            self.settings, self.watch
        );
        for dir in &self.dirs {
            text.push_str(&format!("dir {}\n", hex(dir.as_os_str().as_bytes())));
        }
        for file in &self.files {
            text.push_str(&format!("file {}\n", hex(file.as_os_str().as_bytes())));
        }
        for p in &self.programs {
            let (dev, ino, size, table) = p.identity;
            text.push_str(&format!(
                "program {} {} {dev} {ino} {size} {table:016x}\n",
                hex(p.temp_name.as_bytes()),
                hex(p.dest.as_os_str().as_bytes()),
            ));
        }
        text
    }

    fn decode(text: &str) -> Option<Self> {
        let mut lines = text.lines();
        if lines.next()? != HEADER {
            return None;
        }
        let mut state = State {
            settings: 0,
            dirs: Vec::new(),
            files: Vec::new(),
            watch: 0,
            programs: Vec::new(),
        };
        let path = |hex: &str| unhex(hex).map(|b| PathBuf::from(OsString::from_vec(b)));
        for line in lines {
            let fields: Vec<&str> = line.split(' ').collect();
            match fields.as_slice() {
                ["settings", v] => state.settings = u128::from_str_radix(v, 16).ok()?,
                ["watch", v] => state.watch = u128::from_str_radix(v, 16).ok()?,
                ["dir", d] => state.dirs.push(path(d)?),
                ["file", f] => state.files.push(path(f)?),
                ["program", name, dest, dev, ino, size, table] => state.programs.push(Program {
                    temp_name: OsString::from_vec(unhex(name)?),
                    dest: path(dest)?,
                    identity: (
                        dev.parse().ok()?,
                        ino.parse().ok()?,
                        size.parse().ok()?,
                        u64::from_str_radix(table, 16).ok()?,
                    ),
                }),
                _ => return None,
            }
        }
        Some(state)
    }

    /// Reads the state file at `path`; `None` if there is none or it is not
    /// one this mgo wrote.
    pub fn load(path: &Path) -> Option<Self> {
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        // Non-blocking, so that a FIFO put there cannot stop the open; and
        // only a regular file is read, at most MAX_SIZE of it.
        let file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(
                (rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOFOLLOW).bits() as i32,
            )
            .open(path)
            .ok()?;
        let meta = file.metadata().ok()?;
        if !meta.is_file() || meta.len() > MAX_SIZE {
            return None;
        }
        let mut text = String::new();
        file.take(MAX_SIZE).read_to_string(&mut text).ok()?;
        Self::decode(&text)
    }

    /// Writes the state file at `path` atomically. A failure only costs the
    /// next run its shortcut, so it is not reported.
    pub fn save(&self, path: &Path) {
        let Some(dir) = path.parent() else { return };
        if fs::create_dir_all(dir).is_err() {
            return;
        }
        remove_old(dir);
        let Ok(mut temp) = tempfile::Builder::new()
            .prefix(SAVE_PREFIX)
            .rand_bytes(SAVE_RANDOM)
            .tempfile_in(dir)
        else {
            return;
        };
        if temp.write_all(self.encode().as_bytes()).is_ok() {
            let _ = temp.persist(path);
        }
    }
}

/// Forgets the states that no run has used for [`MAX_AGE`]: regular files
/// named as mgo names them, nothing else (a symlink is not followed).
fn remove_old(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        if !is_state_name(entry.file_name().as_bytes()) {
            continue;
        }
        // The entry's own metadata (lstat): a symlink is not a regular file.
        let old = entry
            .metadata()
            .ok()
            .filter(fs::Metadata::is_file)
            .and_then(|m| m.modified().ok())
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age > MAX_AGE);
        if old {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Removes the state file at `path`, if any.
pub fn forget(path: &Path) {
    let _ = fs::remove_file(path);
}

/// Marks a state as used (its time decides when it is forgotten).
pub fn mark_used(path: &Path) {
    let _ = crate::place::touch(path);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_with_any_bytes_in_paths() {
        let state = State {
            settings: 0x0123_4567_89ab_cdef_0011_2233_4455_6677,
            dirs: vec![PathBuf::from("/a b/c\nd"), PathBuf::from("/x")],
            files: vec![PathBuf::from("/x/static/a.css")],
            watch: 42,
            programs: vec![Program {
                temp_name: "out".into(),
                dest: PathBuf::from(OsString::from_vec(b"/bin/\xff app".to_vec())),
                identity: (1, 2, 3, 0xfeed),
            }],
        };
        assert_eq!(State::decode(&state.encode()), Some(state.clone()));
        let dir = tempfile::tempdir().unwrap();
        let file = path(dir.path(), 7);
        state.save(&file);
        assert_eq!(State::load(&file), Some(state));
        assert_eq!(State::decode("mgo state 0\n"), None);
        assert_eq!(State::decode("mgo state 1\nwatch zz\n"), None);
    }

    #[test]
    fn watch_digest_sees_edits_additions_and_removals() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = vec![dir.path().to_owned()];
        let files = vec![dir.path().join("static/page.html")];
        let watch_digest = |dirs: &[PathBuf]| watch_digest(dirs, &files);
        let file = dir.path().join("a_v3.go");
        fs::write(&file, "package a\n").unwrap();
        let before = watch_digest(&dirs);
        assert_eq!(watch_digest(&dirs), before);
        // Same size, another time: an edit that kept the length.
        let t = fs::metadata(&file).unwrap().modified().unwrap();
        fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(t - Duration::from_secs(5))
            .unwrap();
        let edited = watch_digest(&dirs);
        assert_ne!(edited, before);
        fs::write(dir.path().join("b.go"), "package a\n").unwrap();
        let added = watch_digest(&dirs);
        assert_ne!(added, edited);
        fs::remove_file(dir.path().join("b.go")).unwrap();
        assert_eq!(watch_digest(&dirs), edited);
        // Outputs and other files do not count; embedded files do.
        fs::write(dir.path().join("app"), "\x7fELF").unwrap();
        assert_eq!(watch_digest(&dirs), edited);
        fs::create_dir(dir.path().join("static")).unwrap();
        fs::write(&files[0], "<p>").unwrap();
        assert_ne!(watch_digest(&dirs), edited);
    }

    #[test]
    fn only_old_state_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let name = |key: u128| {
            path(dir.path(), key)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        };
        let old = SystemTime::now() - MAX_AGE - Duration::from_secs(3600);
        let create = |name: &str, time: SystemTime| {
            let f = fs::File::create(dir.path().join(name)).unwrap();
            f.set_modified(time).unwrap();
        };
        // Old, but not named as mgo names its files.
        let mut kept = vec![
            "notes.txt".to_owned(),
            format!("{}0", name(0xabc)),
            name(0xabc).to_uppercase(),
            ".state-abc".to_owned(),
        ];
        for n in &kept {
            create(n, old);
        }
        // A state still in use, and a symlink (to an old file) named as a state.
        kept.push(name(1));
        create(&name(1), SystemTime::now());
        kept.push(name(2));
        std::os::unix::fs::symlink(dir.path().join("notes.txt"), path(dir.path(), 2)).unwrap();
        // What goes: an old state, and an old state a killed run was saving.
        create(&name(0xabc), old);
        create(".state-a1B2c3", old);
        remove_old(dir.path());
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        kept.sort();
        assert_eq!(left, kept);
    }

    #[test]
    fn only_small_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let state = State {
            settings: 1,
            dirs: Vec::new(),
            files: Vec::new(),
            watch: 2,
            programs: Vec::new(),
        };
        let file = path(dir.path(), 1);
        state.save(&file);
        let link = path(dir.path(), 2);
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(State::load(&file), Some(state.clone()));
        assert_eq!(State::load(&link), None);
        let large = fs::OpenOptions::new().append(true).open(&file).unwrap();
        large.set_len(MAX_SIZE + 1).unwrap();
        assert_eq!(State::load(&file), None);
    }

    #[test]
    fn digests_separate_their_parts() {
        assert_ne!(digest([&b"ab"[..], b"c"]), digest([&b"a"[..], b"bc"]));
    }
}
