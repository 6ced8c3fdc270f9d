//! The mgo bundle format: the contract between the `mgo` CLI, which writes
//! bundles, and the launcher, which reads them at every start.
//!
//! A bundle is the launcher's ELF executable with one extra segment (program
//! header type [`SEGMENT_TYPE`]) whose file range holds a [`Table`], one block
//! directory per variant ([`Blocks`]) and the variants' stored bytes, each at
//! a page-aligned offset counted from the segment's start. docs/FORMAT.md
//! describes the layout byte by byte; this crate is its only implementation,
//! and names the offset of every field once: [`header`], [`entry`],
//! [`block_record`] and [`section_record`].
//! Reading and writing are both `no_std` and allocation-free.
#![no_std]

#[cfg(test)]
extern crate std;

mod blocks;
mod fields;
mod sections;
mod write;
pub use blocks::{BLOCK_RECORD_SIZE, Block, BlockRecord, Blocks, MAX_BLOCK_SIZE, write_blocks};
pub use fields::{block_record, entry, header, section_record};
pub use sections::{MAX_SECTIONS, SECTION_RECORD_SIZE, SectionRecord, Sections, write_sections};
pub use write::{Layout, Placed, StoredVariant, layout};

/// Program header type of the segment that holds the table and the variants.
/// It lies in the OS-specific range (`PT_LOOS..=PT_HIOS`) that the kernel's
/// ELF loader ignores; the bytes spell "mgo" for anyone reading a hex dump.
pub const SEGMENT_TYPE: u32 = 0x6d67_6f00;

/// Note type of the launcher's second placeholder, which the writer turns
/// into a PT_LOAD header covering the bundle segment: the kernel then maps
/// the table from the file it executes, which lets the launcher prove that a
/// file it opened by path is that file (docs/LAUNCHER.md, "Which file runs").
pub const LOAD_PLACEHOLDER_TYPE: u32 = 0x6d67_6f01;

/// Name of the section that covers the same bytes as the segment, so that
/// `strip` and `objcopy` keep and move them as one piece.
pub const SECTION_NAME: &str = ".mgo";

/// First bytes of the table.
pub const MAGIC: [u8; 8] = *b"mgo-bndl";

/// Format version written by this crate, and the only one it reads: the
/// launcher reads only the table mgo wrote beside it, and no released mgo
/// wrote another (CHANGELOG.md has the history).
pub const VERSION: u16 = 3;

/// Alignment of each variant's stored bytes, so that the launcher can map a
/// raw variant's pages straight from the file.
pub const VARIANT_ALIGN: u64 = 4096;

/// Size of the fixed table header in bytes.
pub const HEADER_SIZE: usize = 32;

/// Size of one table entry in bytes.
pub const ENTRY_SIZE: usize = 64;

/// A bundle holds at most one variant per level.
pub const MAX_VARIANTS: usize = 4;

/// Largest table a reader has to look at.
pub const MAX_TABLE_SIZE: usize = HEADER_SIZE + MAX_VARIANTS * ENTRY_SIZE;

/// Header flag: start variants through a memfd by default instead of mapping
/// them in place (`MGO_LAUNCH=memfd` when building).
pub const FLAG_MEMFD_LAUNCH: u32 = 1;

/// Header flag: start variants from a file in the user's cache by default
/// (`MGO_LAUNCH=file` when building).
pub const FLAG_FILE_LAUNCH: u32 = 2;

/// Every flag this version defines; a reader rejects the others.
pub const KNOWN_FLAGS: u32 = FLAG_MEMFD_LAUNCH | FLAG_FILE_LAUNCH;

/// The level named by a GOAMD64 value `v1` to `v4`, as the Go toolchain
/// spells it; anything else is not a level.
pub fn parse_level(value: &[u8]) -> Option<u8> {
    match value {
        [b'v', digit @ b'1'..=b'4'] => Some(digit - b'0'),
        _ => None,
    }
}

/// How a variant's blocks are stored in the file. Whatever the encoding, the
/// variant's block directory ([`Blocks`]) cuts the executable into blocks,
/// each with its own checksum; an encoding says what a block's stored bytes
/// are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Encoding {
    /// The executable's bytes, as they are: a block's stored bytes are its
    /// decoded bytes.
    Raw = 0,
    /// Each block is one Zstandard frame (RFC 8878), optionally decoded with a
    /// prefix of the reference variant as a raw-content dictionary.
    Zstd = 1,
    /// Each block is a raw DEFLATE stream (RFC 1951).
    Deflate = 2,
    /// Each block is one LZ4 block (no frame header).
    Lz4 = 3,
}

impl Encoding {
    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(Self::Raw),
            1 => Some(Self::Zstd),
            2 => Some(Self::Deflate),
            3 => Some(Self::Lz4),
            _ => None,
        }
    }

    /// The name `MGODEBUG=log` and the docs use.
    pub fn name(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Zstd => "zstd",
            Self::Deflate => "deflate",
            Self::Lz4 => "lz4",
        }
    }
}

/// One variant as the table describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// GOAMD64 level the variant was built for, 1 to 4.
    pub level: u8,
    /// How the blocks are stored.
    pub encoding: Encoding,
    /// Level of the variant whose decoded bytes this one's blocks use as
    /// their dictionary, or 0 for none. Only [`Encoding::Zstd`] entries have
    /// one, and the referenced entry never has one itself, so a launcher
    /// decodes at most two variants.
    pub reference: u8,
    /// Offset of the stored bytes from the start of the segment; a multiple of
    /// [`VARIANT_ALIGN`]. Two entries with identical executables share it.
    pub offset: u64,
    /// Number of stored bytes.
    pub stored_size: u64,
    /// Size of the executable once decoded.
    pub size: u64,
    /// XXH3-64 of the whole decoded executable (for tools; the launcher
    /// verifies block by block).
    pub checksum: u64,
    /// Offset of the block directory from the start of the segment; a
    /// multiple of 8.
    pub blocks_offset: u64,
    /// Number of blocks in the directory.
    pub block_count: u32,
    /// Number of inflated sections (docs/FORMAT.md, "Inflated sections");
    /// 0 if the image the blocks tile is the executable.
    pub section_count: u32,
    /// Segment offset of the section directory; 0 without sections.
    pub sections_offset: u64,
}

/// The parsed table: the variants in ascending level order, and the flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Table {
    entries: [Entry; MAX_VARIANTS],
    count: usize,
    flags: u32,
}

/// Why a table or a directory was rejected. The text is shown to users as is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error(pub &'static str);

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.0)
    }
}

/// XXH3-64 with the default seed: the checksum of variants, blocks and the
/// table.
pub fn checksum(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// The little-endian field of `N` bytes at `at`, or zeros past the end
/// (callers check lengths first; a short read must not panic in the launcher).
fn field<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    bytes
        .get(at..)
        .and_then(|rest| rest.first_chunk::<N>())
        .copied()
        .unwrap_or([0; N])
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(field(bytes, at))
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(field(bytes, at))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(field(bytes, at))
}

/// Writes `bytes` at `at` in `out`, which the caller sized for them (a
/// short buffer is a bug, caught by the tests).
fn put(out: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(slot) = out
        .get_mut(at..)
        .and_then(|rest| rest.get_mut(..bytes.len()))
    {
        slot.copy_from_slice(bytes);
    } else {
        debug_assert!(false, "field past the end of its buffer");
    }
}

/// The checksum of a table is computed with its own checksum field zeroed.
/// (On a copy, in one call: XXH3's streaming interface would add kilobytes
/// of code to every launcher for a few hundred bytes.)
fn table_checksum(table: &[u8]) -> u64 {
    let mut copy = [0u8; MAX_TABLE_SIZE];
    let len = table.len().min(MAX_TABLE_SIZE);
    if let (Some(to), Some(from)) = (copy.get_mut(..len), table.get(..len)) {
        to.copy_from_slice(from);
    }
    if let Some(field) = copy.get_mut(header::TABLE_CHECKSUM..header::TABLE_CHECKSUM + 8) {
        field.fill(0);
    }
    checksum(copy.get(..len).unwrap_or(&[]))
}

impl Table {
    /// Parses and validates the table at the start of `segment`, the bundle
    /// segment's bytes (at least the table; `segment_size` is the size the
    /// whole segment has in the file). Every entry's stored bytes and block
    /// directory are checked to lie inside the segment, so a reader can trust
    /// the offsets it gets back.
    pub fn parse(segment: &[u8], segment_size: u64) -> Result<Self, Error> {
        let head = segment
            .get(..HEADER_SIZE)
            .ok_or(Error("bundle table is truncated"))?;
        if head.get(header::MAGIC..header::MAGIC + MAGIC.len()) != Some(&MAGIC[..]) {
            return Err(Error("bundle table has a bad magic number"));
        }
        if u16_at(head, header::VERSION) != VERSION {
            return Err(Error(
                "bundle format version is not supported by this launcher",
            ));
        }
        if usize::from(u16_at(head, header::HEADER_SIZE)) != HEADER_SIZE
            || usize::from(u16_at(head, header::ENTRY_SIZE)) != ENTRY_SIZE
        {
            return Err(Error("bundle table has unexpected header or entry sizes"));
        }
        let count = usize::from(u16_at(head, header::COUNT));
        if count == 0 || count > MAX_VARIANTS {
            return Err(Error("bundle table has an invalid number of variants"));
        }
        let table_size = HEADER_SIZE + count * ENTRY_SIZE;
        let table = segment
            .get(..table_size)
            .filter(|_| segment_size >= table_size as u64)
            .ok_or(Error("bundle table is truncated"))?;
        if table_checksum(table) != u64_at(table, header::TABLE_CHECKSUM) {
            return Err(Error("bundle table is damaged (checksum mismatch)"));
        }
        let flags = u32_at(table, header::FLAGS);
        if flags & !KNOWN_FLAGS != 0 || u32_at(table, header::RESERVED) != 0 {
            return Err(Error("bundle table has flags this launcher does not know"));
        }
        let empty = Entry {
            level: 0,
            encoding: Encoding::Raw,
            reference: 0,
            offset: 0,
            stored_size: 0,
            size: 0,
            checksum: 0,
            blocks_offset: 0,
            block_count: 0,
            section_count: 0,
            sections_offset: 0,
        };
        let mut entries = [empty; MAX_VARIANTS];
        let mut previous_level = 0u8;
        for (i, slot) in entries.iter_mut().enumerate().take(count) {
            let e = table
                .get(HEADER_SIZE + i * ENTRY_SIZE..)
                .and_then(|rest| rest.get(..ENTRY_SIZE))
                .ok_or(Error("bundle table is truncated"))?;
            let entry = Entry {
                level: field::<1>(e, entry::LEVEL)[0],
                encoding: Encoding::from_byte(field::<1>(e, entry::ENCODING)[0])
                    .ok_or(Error("bundle uses an encoding this launcher does not know"))?,
                reference: field::<1>(e, entry::REFERENCE)[0],
                offset: u64_at(e, entry::OFFSET),
                stored_size: u64_at(e, entry::STORED_SIZE),
                size: u64_at(e, entry::SIZE),
                checksum: u64_at(e, entry::CHECKSUM),
                blocks_offset: u64_at(e, entry::BLOCKS_OFFSET),
                block_count: u32_at(e, entry::BLOCK_COUNT),
                section_count: u32_at(e, entry::SECTION_COUNT),
                sections_offset: u64_at(e, entry::SECTIONS_OFFSET),
            };
            if !(1..=4).contains(&entry.level) || entry.level <= previous_level {
                return Err(Error("bundle table has invalid levels"));
            }
            previous_level = entry.level;
            let end = entry.offset.checked_add(entry.stored_size);
            if !entry.offset.is_multiple_of(VARIANT_ALIGN)
                || entry.offset < table_size as u64
                || end.is_none_or(|end| end > segment_size)
            {
                return Err(Error("bundle table points outside the bundle"));
            }
            let directory_end = u64::from(entry.block_count)
                .checked_mul(BLOCK_RECORD_SIZE as u64)
                .and_then(|size| entry.blocks_offset.checked_add(size));
            if !entry.blocks_offset.is_multiple_of(8)
                || entry.blocks_offset < table_size as u64
                || entry.block_count == 0
                || directory_end.is_none_or(|end| end > segment_size)
            {
                return Err(Error("bundle table points outside the bundle"));
            }
            if entry.size == 0
                || (entry.encoding == Encoding::Raw && entry.stored_size != entry.size)
            {
                return Err(Error("bundle table has inconsistent sizes"));
            }
            if entry.reference != 0 && entry.encoding != Encoding::Zstd {
                return Err(Error("bundle table has an invalid reference"));
            }
            let sections_end = u64::from(entry.section_count)
                .checked_mul(SECTION_RECORD_SIZE as u64)
                .and_then(|size| entry.sections_offset.checked_add(size));
            let sections_ok = if entry.section_count == 0 {
                entry.sections_offset == 0
            } else {
                entry.encoding != Encoding::Raw
                    && entry.section_count <= MAX_SECTIONS
                    && entry.sections_offset.is_multiple_of(8)
                    && entry.sections_offset >= table_size as u64
                    && sections_end.is_some_and(|end| end <= segment_size)
            };
            if !sections_ok {
                return Err(Error("bundle table has an invalid section directory"));
            }
            *slot = entry;
        }
        let parsed = Self {
            entries,
            count,
            flags,
        };
        for entry in parsed.entries() {
            if entry.reference != 0
                && (entry.reference == entry.level
                    || parsed
                        .reference_of(entry)
                        .is_none_or(|reference| reference.reference != 0))
            {
                return Err(Error("bundle table has an invalid reference"));
            }
        }
        Ok(parsed)
    }

    /// The variants, lowest level first.
    pub fn entries(&self) -> &[Entry] {
        self.entries.get(..self.count).unwrap_or(&[])
    }

    /// The header's flags ([`FLAG_MEMFD_LAUNCH`]).
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// Whether the bundle asks to start its variants through a memfd.
    pub fn memfd_by_default(&self) -> bool {
        self.flags & FLAG_MEMFD_LAUNCH != 0
    }

    /// Whether the bundle asks to start its variants from a file in the
    /// user's cache.
    pub fn file_by_default(&self) -> bool {
        self.flags & FLAG_FILE_LAUNCH != 0
    }

    /// The entry whose decoded bytes `entry` is decoded against, if any.
    pub fn reference_of(&self, entry: &Entry) -> Option<&Entry> {
        if entry.reference == 0 {
            return None;
        }
        self.entries().iter().find(|e| e.level == entry.reference)
    }

    /// The variant to run when `wanted` is the best level allowed: the highest
    /// level not above it, or the lowest level the bundle has when every level
    /// is above it (that variant's own Go runtime check then tells the user
    /// which CPU it needs, exactly as a plain build would).
    pub fn choose(&self, wanted: u8) -> &Entry {
        let mut chosen = &self.entries[0];
        for entry in self.entries() {
            if entry.level <= wanted {
                chosen = entry;
            }
        }
        chosen
    }
}

#[cfg(test)]
mod tests;
