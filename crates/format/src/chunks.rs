//! The chunk directory at the start of every encoded (non-raw) variant.
//!
//! An encoded variant is cut into chunks of [`Chunks::chunk_size`] decoded
//! bytes (the last one may be shorter), each compressed on its own. Chunks
//! can then be decoded on several CPUs at once, each into a buffer of one
//! chunk, and each is verified against its own checksum right after it is
//! decoded, while it is still in the cache.

use crate::{Entry, Error, u32_at, u64_at};

/// Bytes before the first chunk record: chunk size (u32), chunk count (u32).
pub const CHUNKS_HEADER_SIZE: usize = 8;

/// Bytes of one chunk record.
pub const CHUNK_RECORD_SIZE: usize = 40;

/// Largest decoded chunk a launcher accepts. It sizes the per-CPU buffers a
/// launcher allocates, so a damaged directory cannot ask for more.
pub const MAX_CHUNK_SIZE: u32 = 16 << 20;

/// One chunk as the directory describes it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChunkRecord {
    /// Offset of the compressed bytes from the start of the payload.
    pub stored_offset: u64,
    /// Number of compressed bytes.
    pub stored_size: u64,
    /// XXH3-64 of the decoded chunk.
    pub checksum: u64,
    /// Start of the chunk's dictionary inside the reference variant's decoded
    /// bytes; 0 without a reference.
    pub dictionary_offset: u64,
    /// Length of that dictionary; 0 without a reference.
    pub dictionary_size: u64,
}

/// A chunk ready to decode: everything a launcher needs, all bounds checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk<'a> {
    /// The compressed bytes.
    pub stored: &'a [u8],
    /// Where the decoded bytes go in the variant.
    pub offset: u64,
    /// How many bytes it decodes to.
    pub size: usize,
    /// XXH3-64 of those bytes.
    pub checksum: u64,
    /// Range of the reference variant's bytes that is the dictionary.
    pub dictionary: core::ops::Range<usize>,
}

/// A validated chunk directory.
#[derive(Clone, Copy, Debug)]
pub struct Chunks<'a> {
    payload: &'a [u8],
    chunk_size: u32,
    count: u32,
    size: u64,
}

/// Size of the directory for `count` chunks.
pub fn chunk_directory_size(count: usize) -> usize {
    CHUNKS_HEADER_SIZE + count * CHUNK_RECORD_SIZE
}

/// Writes the directory for `records` into the start of `out`, which must be
/// at least [`chunk_directory_size`] bytes long.
#[allow(clippy::indexing_slicing)] // the caller sizes `out`; a short one is a bug
pub fn write_chunk_directory(out: &mut [u8], chunk_size: u32, records: &[ChunkRecord]) {
    out[..4].copy_from_slice(&chunk_size.to_le_bytes());
    out[4..8].copy_from_slice(&(records.len() as u32).to_le_bytes());
    for (i, record) in records.iter().enumerate() {
        let at = CHUNKS_HEADER_SIZE + i * CHUNK_RECORD_SIZE;
        let fields = [
            record.stored_offset,
            record.stored_size,
            record.checksum,
            record.dictionary_offset,
            record.dictionary_size,
        ];
        for (j, value) in fields.into_iter().enumerate() {
            out[at + j * 8..at + j * 8 + 8].copy_from_slice(&value.to_le_bytes());
        }
    }
}

impl<'a> Chunks<'a> {
    /// Validates the directory at the start of `payload` (the entry's stored
    /// bytes). `reference_size` is the decoded size of the entry's reference,
    /// if it has one. Afterwards every [`Chunk`] lies inside `payload`, the
    /// chunks are contiguous and in order, their sizes add up to the entry's,
    /// and every dictionary lies inside the reference.
    pub fn parse(
        payload: &'a [u8],
        entry: &Entry,
        reference_size: Option<u64>,
    ) -> Result<Self, Error> {
        const DAMAGED: Error = Error("bundle chunk directory is damaged");
        if payload.len() < CHUNKS_HEADER_SIZE || payload.len() as u64 != entry.stored_size {
            return Err(DAMAGED);
        }
        let chunk_size = u32_at(payload, 0);
        let count = u32_at(payload, 4);
        if chunk_size == 0 || chunk_size > MAX_CHUNK_SIZE {
            return Err(DAMAGED);
        }
        if u64::from(count) != entry.size.div_ceil(u64::from(chunk_size)) || count == 0 {
            return Err(DAMAGED);
        }
        let directory = chunk_directory_size(count as usize);
        if payload.len() < directory {
            return Err(DAMAGED);
        }
        let chunks = Self {
            payload,
            chunk_size,
            count,
            size: entry.size,
        };
        let mut next = directory as u64;
        for i in 0..count as usize {
            let record = chunks.record(i);
            if record.stored_offset != next || record.stored_size == 0 {
                return Err(DAMAGED);
            }
            next = next.checked_add(record.stored_size).ok_or(DAMAGED)?;
            let dictionary_end = record
                .dictionary_offset
                .checked_add(record.dictionary_size)
                .ok_or(DAMAGED)?;
            match reference_size {
                Some(limit) if dictionary_end <= limit => {}
                None if record.dictionary_size == 0 && record.dictionary_offset == 0 => {}
                _ => return Err(DAMAGED),
            }
        }
        if next != payload.len() as u64 {
            return Err(DAMAGED);
        }
        Ok(chunks)
    }

    /// Decoded bytes per chunk (the last chunk may be shorter).
    pub fn chunk_size(&self) -> usize {
        self.chunk_size as usize
    }

    /// Number of chunks.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether there are no chunks (never true for a parsed directory).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn record(&self, i: usize) -> ChunkRecord {
        let at = CHUNKS_HEADER_SIZE + i * CHUNK_RECORD_SIZE;
        let field = |j: usize| {
            self.payload
                .get(at + j * 8..at + j * 8 + 8)
                .map_or(0, |b| u64_at(b, 0))
        };
        ChunkRecord {
            stored_offset: field(0),
            stored_size: field(1),
            checksum: field(2),
            dictionary_offset: field(3),
            dictionary_size: field(4),
        }
    }

    /// Chunk `i`; `i` must be below [`len`](Self::len).
    pub fn get(&self, i: usize) -> Chunk<'a> {
        let record = self.record(i);
        let offset = i as u64 * u64::from(self.chunk_size);
        // parse() checked that every range below is in bounds.
        let stored = self
            .payload
            .get(record.stored_offset as usize..)
            .and_then(|rest| rest.get(..record.stored_size as usize))
            .unwrap_or(&[]);
        Chunk {
            stored,
            offset,
            size: self
                .size
                .saturating_sub(offset)
                .min(u64::from(self.chunk_size)) as usize,
            checksum: record.checksum,
            dictionary: record.dictionary_offset as usize
                ..(record.dictionary_offset + record.dictionary_size) as usize,
        }
    }
}
