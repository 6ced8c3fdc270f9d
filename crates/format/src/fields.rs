//! Where every field lies: the offsets of docs/FORMAT.md's four layout
//! tables, named once here for the parser, the writer, the CLI and the
//! tests. Each constant is the offset of the field of the same name (as
//! docs/FORMAT.md spells it) from the start of its header or record, in
//! bytes. Every integer is little-endian; the width each doc comment gives
//! is also the width of the matching field of [`Entry`](crate::Entry),
//! [`BlockRecord`](crate::BlockRecord) or
//! [`SectionRecord`](crate::SectionRecord).

/// The table header: [`HEADER_SIZE`](crate::HEADER_SIZE) bytes at segment
/// offset 0 (docs/FORMAT.md, "Header").
pub mod header {
    /// `magic`, 8 bytes: [`MAGIC`](crate::MAGIC).
    pub const MAGIC: usize = 0;
    /// `version`, `u16`: [`VERSION`](crate::VERSION).
    pub const VERSION: usize = 8;
    /// `header_size`, `u16`: [`HEADER_SIZE`](crate::HEADER_SIZE).
    pub const HEADER_SIZE: usize = 10;
    /// `entry_size`, `u16`: [`ENTRY_SIZE`](crate::ENTRY_SIZE).
    pub const ENTRY_SIZE: usize = 12;
    /// `count`, `u16`: the number of entries, 1 to
    /// [`MAX_VARIANTS`](crate::MAX_VARIANTS).
    pub const COUNT: usize = 14;
    /// `table_checksum`, `u64`: XXH3-64 of the whole table (header and
    /// entries) with these 8 bytes zeroed.
    pub const TABLE_CHECKSUM: usize = 16;
    /// `flags`, `u32`: [`FLAG_MEMFD_LAUNCH`](crate::FLAG_MEMFD_LAUNCH), no
    /// other bit.
    pub const FLAGS: usize = 24;
    /// Reserved, 4 bytes: zeros, which a reader checks.
    pub const RESERVED: usize = 28;
}

/// One table entry: [`ENTRY_SIZE`](crate::ENTRY_SIZE) bytes at segment
/// offset `HEADER_SIZE + ENTRY_SIZE × i` (docs/FORMAT.md, "Entry"); the
/// fields of [`Entry`](crate::Entry).
pub mod entry {
    /// `level`, `u8`: the GOAMD64 level, 1 to 4.
    pub const LEVEL: usize = 0;
    /// `encoding`, `u8`: an [`Encoding`](crate::Encoding).
    pub const ENCODING: usize = 1;
    /// `reference`, `u8`: the level of the reference entry, or 0.
    pub const REFERENCE: usize = 2;
    /// Reserved, 5 bytes: written as zeros, not interpreted by a reader
    /// (the table checksum covers them).
    pub const RESERVED: usize = 3;
    /// `offset`, `u64`: segment offset of the stored bytes.
    pub const OFFSET: usize = 8;
    /// `stored_size`, `u64`: number of stored bytes.
    pub const STORED_SIZE: usize = 16;
    /// `size`, `u64`: size of the image the blocks tile (not the entry's
    /// size, which is [`ENTRY_SIZE`](crate::ENTRY_SIZE)).
    pub const SIZE: usize = 24;
    /// `checksum`, `u64`: XXH3-64 of the whole executable.
    pub const CHECKSUM: usize = 32;
    /// `blocks_offset`, `u64`: segment offset of the block directory.
    pub const BLOCKS_OFFSET: usize = 40;
    /// `block_count`, `u32`: number of block records.
    pub const BLOCK_COUNT: usize = 48;
    /// `section_count`, `u32`: number of section records.
    pub const SECTION_COUNT: usize = 52;
    /// `sections_offset`, `u64`: segment offset of the section directory,
    /// or 0.
    pub const SECTIONS_OFFSET: usize = 56;
}

/// One block directory record:
/// [`BLOCK_RECORD_SIZE`](crate::BLOCK_RECORD_SIZE) bytes at segment offset
/// `blocks_offset + BLOCK_RECORD_SIZE × i` (docs/FORMAT.md, "Block
/// directory"); the fields of [`BlockRecord`](crate::BlockRecord).
pub mod block_record {
    /// `offset`, `u64`: image offset of the block's first byte.
    pub const OFFSET: usize = 0;
    /// `size`, `u64`: number of decoded bytes.
    pub const SIZE: usize = 8;
    /// `checksum`, `u64`: XXH3-64 of the decoded bytes.
    pub const CHECKSUM: usize = 16;
    /// `stored_offset`, `u64`: offset of the stored bytes from the entry's
    /// `offset`.
    pub const STORED_OFFSET: usize = 24;
    /// `stored_size`, `u64`: number of stored bytes.
    pub const STORED_SIZE: usize = 32;
    /// `dictionary_size`, `u64`: length of the reference's prefix that is
    /// the block's dictionary, or 0.
    pub const DICTIONARY_SIZE: usize = 40;
}

/// One section directory record:
/// [`SECTION_RECORD_SIZE`](crate::SECTION_RECORD_SIZE) bytes at segment
/// offset `sections_offset + SECTION_RECORD_SIZE × i` (docs/FORMAT.md,
/// "Section directory"); the fields of
/// [`SectionRecord`](crate::SectionRecord).
pub mod section_record {
    /// `file_offset`, `u64`: variant offset of the zlib stream in the
    /// executable.
    pub const FILE_OFFSET: usize = 0;
    /// `stream_size`, `u64`: the stream's length.
    pub const STREAM_SIZE: usize = 8;
    /// `image_offset`, `u64`: image offset of the inflated bytes.
    pub const IMAGE_OFFSET: usize = 16;
    /// `inflated_size`, `u64`: their length.
    pub const INFLATED_SIZE: usize = 24;
}

// Each layout's last field ends where the header or record does.
const _: () = assert!(header::RESERVED + 4 == crate::HEADER_SIZE);
const _: () = assert!(entry::SECTIONS_OFFSET + 8 == crate::ENTRY_SIZE);
const _: () = assert!(block_record::DICTIONARY_SIZE + 8 == crate::BLOCK_RECORD_SIZE);
const _: () = assert!(section_record::INFLATED_SIZE + 8 == crate::SECTION_RECORD_SIZE);
