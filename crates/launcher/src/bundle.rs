//! Opening the running bundle and validating its table.

use crate::fail::{Failure, Status, fail};
use crate::start::Process;
use crate::sys;
use mgo_format::{Blocks, Entry, Sections, Table};
use rustix::fd::{BorrowedFd, OwnedFd};

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
        let file = sys::open_bundle(process.exec_path).unwrap_or_else(|err| {
            Failure::System(b"cannot open the bundle", err, Status::Damaged).exit()
        });
        let file_size = sys::file_size(sys::borrow(&file)).unwrap_or_else(|err| {
            Failure::System(b"cannot stat the bundle", err, Status::Damaged).exit()
        });
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
        Self {
            file,
            segment_offset,
            mapping,
            skip,
            len,
            table,
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
