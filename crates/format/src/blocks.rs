//! The block directory of a variant.
//!
//! Every variant, stored raw or encoded, is cut into blocks that tile the
//! executable in order. Each block has its own checksum, so a launcher
//! verifies only the blocks it uses (the loadable part, when it maps a
//! variant in place), on several CPUs at once, each block right after it is
//! read or decoded while it is still in the cache. An encoded variant stores
//! each block compressed on its own, so blocks also decode independently,
//! straight into their final place.

use crate::{Encoding, Entry, Error, block_record, put, u64_at};

/// Bytes of one block record.
pub const BLOCK_RECORD_SIZE: usize = 48;

/// Largest block a reader accepts: the largest mgo cuts (4 MiB, outside the
/// segments a launcher maps). It bounds the buffers a reader allocates and
/// what one small stored block can decode to, so a damaged directory cannot
/// ask for more.
pub const MAX_BLOCK_SIZE: u64 = 4 << 20;

/// One block as the directory describes it (also what a writer fills in).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockRecord {
    /// Offset of the block's first byte in the decoded image (the
    /// executable, unless the entry has inflated sections).
    pub offset: u64,
    /// Number of decoded bytes.
    pub size: u64,
    /// XXH3-64 of the decoded bytes.
    pub checksum: u64,
    /// Offset of the stored bytes from the start of the entry's stored bytes.
    pub stored_offset: u64,
    /// Number of stored bytes.
    pub stored_size: u64,
    /// The block is decoded with the first `dictionary_size` decoded bytes of
    /// the entry's reference as its dictionary; 0 without a reference.
    pub dictionary_size: u64,
}

/// A block ready to use: everything a launcher needs, all bounds checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block<'a> {
    /// Where the decoded bytes go in the executable.
    pub offset: u64,
    /// How many bytes it decodes to.
    pub size: usize,
    /// XXH3-64 of those bytes.
    pub checksum: u64,
    /// The stored bytes (for a raw entry, the decoded bytes themselves).
    pub stored: &'a [u8],
    /// Length of the reference's prefix that is the dictionary.
    pub dictionary_size: usize,
}

/// A validated block directory.
#[derive(Clone, Copy, Debug)]
pub struct Blocks<'a> {
    directory: &'a [u8],
    payload: &'a [u8],
    count: usize,
}

/// Writes the directory for `records` into the start of `out`, which must be
/// at least `records.len() * BLOCK_RECORD_SIZE` bytes long.
pub fn write_blocks(out: &mut [u8], records: &[BlockRecord]) {
    for (record, slot) in records.iter().zip(out.chunks_exact_mut(BLOCK_RECORD_SIZE)) {
        for (at, value) in [
            (block_record::OFFSET, record.offset),
            (block_record::SIZE, record.size),
            (block_record::CHECKSUM, record.checksum),
            (block_record::STORED_OFFSET, record.stored_offset),
            (block_record::STORED_SIZE, record.stored_size),
            (block_record::DICTIONARY_SIZE, record.dictionary_size),
        ] {
            put(slot, at, &value.to_le_bytes());
        }
    }
}

impl<'a> Blocks<'a> {
    /// Validates `entry`'s block directory in `segment` (the bundle segment's
    /// bytes, which [`crate::Table::parse`] accepted with this entry).
    /// `reference_size` is the decoded size of the entry's reference, if it
    /// has one. Afterwards the blocks tile the executable in order, every
    /// block's stored bytes lie inside the entry's, the stored bytes of an
    /// encoded entry follow each other without gaps, and every dictionary
    /// lies inside the reference.
    pub fn parse(
        segment: &'a [u8],
        entry: &Entry,
        reference_size: Option<u64>,
    ) -> Result<Self, Error> {
        const DAMAGED: Error = Error("bundle block directory is damaged");
        let count = entry.block_count as usize;
        let directory = segment
            .get(entry.blocks_offset as usize..)
            .and_then(|rest| rest.get(..count.checked_mul(BLOCK_RECORD_SIZE)?))
            .ok_or(DAMAGED)?;
        let payload = segment
            .get(entry.offset as usize..)
            .and_then(|rest| rest.get(..entry.stored_size as usize))
            .ok_or(DAMAGED)?;
        let blocks = Self {
            directory,
            payload,
            count,
        };
        let reference_size = if entry.reference == 0 {
            None
        } else {
            Some(reference_size.ok_or(DAMAGED)?)
        };
        let mut decoded = 0u64;
        let mut stored = 0u64;
        for i in 0..count {
            let record = blocks.record(i);
            if record.offset != decoded || record.size == 0 || record.size > MAX_BLOCK_SIZE {
                return Err(DAMAGED);
            }
            decoded = decoded.checked_add(record.size).ok_or(DAMAGED)?;
            if entry.encoding == Encoding::Raw {
                if record.stored_offset != record.offset || record.stored_size != record.size {
                    return Err(DAMAGED);
                }
            } else if record.stored_offset != stored || record.stored_size == 0 {
                return Err(DAMAGED);
            }
            stored = record
                .stored_offset
                .checked_add(record.stored_size)
                .ok_or(DAMAGED)?;
            match reference_size {
                Some(limit) if record.dictionary_size <= limit => {}
                None if record.dictionary_size == 0 => {}
                _ => return Err(DAMAGED),
            }
        }
        if decoded != entry.size || stored != entry.stored_size {
            return Err(DAMAGED);
        }
        Ok(blocks)
    }

    /// Number of blocks.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are no blocks (never true for a parsed directory).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Record `i` as the directory holds it (what a writer wrote); `i` must
    /// be below [`len`](Self::len).
    pub fn record(&self, i: usize) -> BlockRecord {
        let at = i * BLOCK_RECORD_SIZE;
        let field = |offset: usize| u64_at(self.directory, at + offset);
        BlockRecord {
            offset: field(block_record::OFFSET),
            size: field(block_record::SIZE),
            checksum: field(block_record::CHECKSUM),
            stored_offset: field(block_record::STORED_OFFSET),
            stored_size: field(block_record::STORED_SIZE),
            dictionary_size: field(block_record::DICTIONARY_SIZE),
        }
    }

    /// Block `i`; `i` must be below [`len`](Self::len).
    pub fn get(&self, i: usize) -> Block<'a> {
        let record = self.record(i);
        // parse() checked that every range below is in bounds.
        let stored = self
            .payload
            .get(record.stored_offset as usize..)
            .and_then(|rest| rest.get(..record.stored_size as usize))
            .unwrap_or(&[]);
        Block {
            offset: record.offset,
            size: record.size as usize,
            checksum: record.checksum,
            stored,
            dictionary_size: record.dictionary_size as usize,
        }
    }

    /// The index of the block that holds decoded byte `offset`, if any.
    pub fn find(&self, offset: u64) -> Option<usize> {
        // Blocks are sorted and tile the executable: a binary search.
        let (mut low, mut high) = (0, self.count);
        while low < high {
            let middle = low + (high - low) / 2;
            let record = self.record(middle);
            if offset < record.offset {
                high = middle;
            } else if offset - record.offset < record.size {
                return Some(middle);
            } else {
                low = middle + 1;
            }
        }
        None
    }
}
