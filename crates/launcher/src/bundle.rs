//! Opening the running bundle and validating its table.

use crate::fail::{Failure, Status, fail};
use crate::start::Process;
use crate::sys;
use core::ffi::CStr;
use mgo_format::{Blocks, Entry, Sections, Table};
use rustix::fd::{BorrowedFd, OwnedFd};
use rustix::io::Errno;

/// The running bundle: its file and the segment with the table, the block
/// directories and the variants, mapped read-only.
pub struct Bundle {
    file: OwnedFd,
    /// File offset of the segment.
    pub segment_offset: u64,
    mapping: sys::Mapping,
    skip: usize,
    len: usize,
    /// The validated table.
    pub table: Table,
    /// Its owner, size and version (device, inode, change time), as it
    /// was opened: the default start checks each version once.
    pub stat: sys::Owned,
}

impl Bundle {
    /// Opens the bundle the process was started from and validates its
    /// table; exits with the launcher's error if it cannot.
    pub fn open(process: &Process) -> Self {
        let Some((segment_offset, segment_size)) = process.bundle_segment else {
            fail(
                &[b"no bundle segment in this executable: it was not written by mgo"],
                Status::Damaged,
            )
        };
        let (file, by_path) = open_file(process);
        let stat = sys::owner_of(sys::borrow(&file)).unwrap_or_else(|err| {
            Failure::System(b"cannot stat the bundle", err, Status::Damaged).exit()
        });
        let file_size = stat.size;
        let Ok(len) = usize::try_from(segment_size) else {
            fail(&[b"bundle segment is too large"], Status::Damaged)
        };
        if segment_offset
            .checked_add(segment_size)
            .is_none_or(|end| end > file_size)
        {
            fail(
                &[b"bundle is truncated: download or copy it again"],
                Status::Damaged,
            );
        }
        let (mapping, skip) = sys::map_file(sys::borrow(&file), segment_offset, len)
            .unwrap_or_else(|err| {
                Failure::System(b"cannot map the bundle", err, Status::Damaged).exit()
            });
        let segment = mapping.bytes().get(skip..).unwrap_or(&[]);
        let table = Table::parse(segment, segment_size).unwrap_or_else(|err| {
            fail(
                &[err.0.as_bytes(), b": download or copy it again"],
                Status::Damaged,
            )
        });
        let bundle = Self {
            file,
            segment_offset,
            mapping,
            skip,
            len,
            table,
            stat,
        };
        if let Some(path) = by_path {
            bundle.check_is_the_started_file(process, path);
        }
        bundle
    }

    /// A file opened by its path may not be the one the kernel executed (it
    /// may have been renamed over since), so it is used only if its table
    /// and directories, which hold the checksum of every block that will
    /// run, are the bytes the kernel mapped from the executed file (mgo's
    /// PT_LOAD header covers them, up to the padding before the first
    /// variant).
    fn check_is_the_started_file(&self, process: &Process, path: &CStr) {
        let first_variant = self
            .table
            .entries()
            .iter()
            .map(|entry| entry.offset)
            .min()
            .unwrap_or(0) as usize;
        let same = process.kernel_copy.is_some_and(|(at, len)| {
            let len = len.min(first_variant);
            // SAFETY: the kernel mapped `len` readable bytes at `at` (a
            // PT_LOAD header of the executed file covers them).
            let started = unsafe { core::slice::from_raw_parts(at as *const u8, len) };
            self.segment().get(..len) == Some(started)
        });
        if !same {
            let mut escaped = [0u8; 256];
            fail(
                &[
                    b"the file at ",
                    mgo_launcher::text::escape(path.to_bytes(), &mut escaped),
                    b" is not the bundle that was started (a #! script, or replaced since), and /proc/self/exe cannot be read to find that one",
                ],
                Status::Damaged,
            );
        }
    }

    /// The segment's bytes.
    pub fn segment(&self) -> &[u8] {
        self.mapping
            .bytes()
            .get(self.skip..)
            .and_then(|rest| rest.get(..self.len))
            .unwrap_or(&[])
    }

    /// The bundle file.
    pub fn file(&self) -> BorrowedFd<'_> {
        sys::borrow(&self.file)
    }

    /// `entry`'s stored bytes (Table::parse checked that they are in the segment).
    pub fn stored(&self, entry: &Entry) -> &[u8] {
        self.segment()
            .get(entry.offset as usize..)
            .and_then(|rest| rest.get(..entry.stored_size as usize))
            .unwrap_or(&[])
    }

    /// File offset of `entry`'s stored bytes: where its pages are mapped from.
    pub fn file_offset(&self, entry: &Entry) -> u64 {
        self.segment_offset + entry.offset
    }

    /// `entry`'s validated section directory.
    pub fn sections(&self, entry: &Entry) -> Result<Sections<'_>, Failure> {
        Sections::parse(self.segment(), entry)
            .map_err(|err| Failure::Damaged(entry.level, err.0.as_bytes()))
    }

    /// `entry`'s validated block directory.
    pub fn blocks(&self, entry: &Entry) -> Result<Blocks<'_>, Failure> {
        let reference = self.table.reference_of(entry).map(|r| r.size);
        Blocks::parse(self.segment(), entry, reference)
            .map_err(|err| Failure::Damaged(entry.level, err.0.as_bytes()))
    }
}

/// Opens the file the process was started from: `/proc/self/exe`, which
/// names that file even if it was renamed or replaced since. Without it (no
/// /proc in a bare chroot or container), the path given to execve
/// (AT_EXECFN), which the caller controls: for a `#!` script whose
/// interpreter is a bundle it names the script, and it can be renamed over
/// between the exec and the open. So that path is used only in an ordinary
/// start, and returned to be checked against the kernel's copy; a
/// privileged start (AT_SECURE) never opens a bundle by path.
fn open_file(process: &Process) -> (OwnedFd, Option<&'static CStr>) {
    let err = match sys::open_self_exe() {
        Ok(file) => return (file, None),
        // Out of descriptors: no other path can do better.
        Err(err @ (Errno::MFILE | Errno::NFILE)) => {
            Failure::System(b"cannot open the bundle", err, Status::Exec).exit()
        }
        Err(err) => err,
    };
    if process.secure {
        Failure::System(
            b"cannot open /proc/self/exe, and a privileged bundle (setuid, setgid or file capabilities) runs only the file found there: mount /proc and let the bundle's users read it",
            err,
            Status::Damaged,
        )
        .exit()
    }
    let Some(path) = process.exec_path else {
        Failure::System(b"cannot open /proc/self/exe", err, Status::Damaged).exit()
    };
    match sys::open_read(path) {
        Ok(file) => (file, Some(path)),
        Err(err) => Failure::System(b"cannot open the bundle", err, Status::Damaged).exit(),
    }
}
