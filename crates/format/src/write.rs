//! Laying out a bundle segment: where each variant's block directory and
//! stored bytes go, and the table that says so. The caller writes the bytes
//! in offset order: the table, then every directory, then every variant.

use crate::{
    BLOCK_RECORD_SIZE, BlockRecord, ENTRY_SIZE, Encoding, Error, HEADER_SIZE, KNOWN_FLAGS, MAGIC,
    MAX_SECTIONS, MAX_TABLE_SIZE, MAX_VARIANTS, SECTION_RECORD_SIZE, SectionRecord, VARIANT_ALIGN,
    VERSION, entry, header, put, table_checksum,
};

/// Where one distinct variant's directory and stored bytes go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Placed {
    /// Index, in the caller's list, of the variant whose bytes go there.
    pub source: usize,
    /// Segment offset of its block directory.
    pub blocks_offset: u64,
    /// Segment offset of its section directory, right after the block
    /// directory; 0 if it has no inflated sections.
    pub sections_offset: u64,
    /// Segment offset of its stored bytes.
    pub offset: u64,
}

/// A complete plan for one bundle segment. It needs no allocation (the table
/// is at most [`MAX_TABLE_SIZE`] bytes), so this crate stays `no_std` for
/// the launcher even when a build of the whole workspace compiles both sides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    table: [u8; MAX_TABLE_SIZE],
    table_len: usize,
    placed: [Placed; MAX_VARIANTS],
    placed_len: usize,
    /// Offset just past the last stored byte.
    pub size: u64,
}

impl Layout {
    /// The encoded table, to be written at offset 0.
    pub fn table(&self) -> &[u8] {
        self.table.get(..self.table_len).unwrap_or(&[])
    }

    /// Distinct variants in ascending offset order (their directories are in
    /// the same order); identical variants are stored once and their entries
    /// share both offsets.
    pub fn placed(&self) -> &[Placed] {
        self.placed.get(..self.placed_len).unwrap_or(&[])
    }
}

fn align_up(value: u64, to: u64) -> u64 {
    value.div_ceil(to) * to
}

/// One variant as it goes into the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredVariant<'a> {
    /// GOAMD64 level, 1 to 4.
    pub level: u8,
    /// How `stored` encodes the executable.
    pub encoding: Encoding,
    /// Level of the reference variant, or 0 (see [`crate::Entry::reference`]).
    pub reference: u8,
    /// Size of the decoded executable.
    pub size: u64,
    /// XXH3-64 of the decoded executable.
    pub checksum: u64,
    /// The bytes written to the file.
    pub stored: &'a [u8],
    /// The block directory: the blocks tile the executable, in order.
    pub blocks: &'a [BlockRecord],
    /// Its inflated sections, in ascending order; `size` is then the size
    /// of the image the blocks tile and `checksum` the executable's.
    pub sections: &'a [SectionRecord],
}

impl StoredVariant<'_> {
    fn same_bytes_as(&self, other: &Self) -> bool {
        self.encoding == other.encoding
            && self.reference == other.reference
            && self.size == other.size
            && self.checksum == other.checksum
            && self.stored == other.stored
            && self.blocks == other.blocks
            && self.sections == other.sections
    }
}

/// Plans the segment for `variants`, in ascending level order, with the
/// header's `flags`.
pub fn layout(variants: &[StoredVariant<'_>], flags: u32) -> Result<Layout, Error> {
    if variants.is_empty() || variants.len() > MAX_VARIANTS {
        return Err(Error("a bundle holds one to four variants"));
    }
    if variants.windows(2).any(|w| match w {
        [a, b] => a.level >= b.level,
        _ => false,
    }) || variants.iter().any(|v| !(1..=4).contains(&v.level))
    {
        return Err(Error(
            "variant levels must be distinct, ascending and within 1 to 4",
        ));
    }
    if flags & !KNOWN_FLAGS != 0 {
        return Err(Error("unknown table flags"));
    }
    for variant in variants {
        if variant.blocks.is_empty() || variant.size == 0 {
            return Err(Error("a variant needs at least one block"));
        }
        if variant.sections.len() > MAX_SECTIONS as usize
            || (variant.encoding == Encoding::Raw && !variant.sections.is_empty())
        {
            return Err(Error(
                "only an encoded variant may have inflated sections, at most 64",
            ));
        }
        if variant.encoding == Encoding::Raw && variant.stored.len() as u64 != variant.size {
            return Err(Error("a raw variant's stored size must be its size"));
        }
        let reference_ok = variant.reference == 0
            || (variant.encoding == Encoding::Zstd
                && variant.reference != variant.level
                && variants
                    .iter()
                    .any(|r| r.level == variant.reference && r.reference == 0));
        if !reference_ok {
            return Err(Error(
                "a reference must name another variant without a reference",
            ));
        }
    }

    // Which variants are stored: the first of each set of identical ones.
    let mut placed = [Placed::default(); MAX_VARIANTS];
    let mut placed_len = 0;
    let mut source_of = [0usize; MAX_VARIANTS];
    for (index, variant) in variants.iter().enumerate() {
        let earlier = placed.iter().take(placed_len).position(|p| {
            variants
                .get(p.source)
                .is_some_and(|s| s.same_bytes_as(variant))
        });
        let slot = match earlier {
            Some(slot) => slot,
            None => {
                if let Some(p) = placed.get_mut(placed_len) {
                    p.source = index;
                }
                placed_len += 1;
                placed_len - 1
            }
        };
        if let Some(s) = source_of.get_mut(index) {
            *s = slot;
        }
    }
    // Directories right after the table, then the stored bytes, page-aligned.
    let table_len = HEADER_SIZE + variants.len() * ENTRY_SIZE;
    let mut next = align_up(table_len as u64, 8);
    for p in placed.iter_mut().take(placed_len) {
        let blocks = variants.get(p.source).map_or(0, |v| v.blocks.len());
        p.blocks_offset = next;
        next = align_up(next + (blocks * BLOCK_RECORD_SIZE) as u64, 8);
        let sections = variants.get(p.source).map_or(0, |v| v.sections.len());
        if sections > 0 {
            p.sections_offset = next;
            next += (sections * SECTION_RECORD_SIZE) as u64;
        }
    }
    next = align_up(next, VARIANT_ALIGN);
    let mut size = next;
    for p in placed.iter_mut().take(placed_len) {
        let stored = variants.get(p.source).map_or(0, |v| v.stored.len()) as u64;
        p.offset = next;
        size = next + stored;
        next = align_up(size, VARIANT_ALIGN);
    }

    // The table: every field at its named offset; the reserved bytes stay
    // zero, and so does the checksum until it is computed over the rest.
    let mut table = [0u8; MAX_TABLE_SIZE];
    let head = table.get_mut(..HEADER_SIZE).unwrap_or_default();
    let [header_size, entry_size, count] =
        [HEADER_SIZE, ENTRY_SIZE, variants.len()].map(|n| n as u16);
    put(head, header::MAGIC, &MAGIC);
    put(head, header::VERSION, &VERSION.to_le_bytes());
    put(head, header::HEADER_SIZE, &header_size.to_le_bytes());
    put(head, header::ENTRY_SIZE, &entry_size.to_le_bytes());
    put(head, header::COUNT, &count.to_le_bytes());
    put(head, header::FLAGS, &flags.to_le_bytes());
    for (i, (variant, slot)) in variants.iter().zip(source_of).enumerate() {
        let p = placed.get(slot).copied().unwrap_or_default();
        let at = HEADER_SIZE + i * ENTRY_SIZE;
        let e = table.get_mut(at..at + ENTRY_SIZE).unwrap_or_default();
        let stored_size = variant.stored.len() as u64;
        let block_count = variant.blocks.len() as u32;
        let section_count = variant.sections.len() as u32;
        put(e, entry::LEVEL, &[variant.level]);
        put(e, entry::ENCODING, &[variant.encoding as u8]);
        put(e, entry::REFERENCE, &[variant.reference]);
        put(e, entry::OFFSET, &p.offset.to_le_bytes());
        put(e, entry::STORED_SIZE, &stored_size.to_le_bytes());
        put(e, entry::SIZE, &variant.size.to_le_bytes());
        put(e, entry::CHECKSUM, &variant.checksum.to_le_bytes());
        put(e, entry::BLOCKS_OFFSET, &p.blocks_offset.to_le_bytes());
        put(e, entry::BLOCK_COUNT, &block_count.to_le_bytes());
        put(e, entry::SECTION_COUNT, &section_count.to_le_bytes());
        put(e, entry::SECTIONS_OFFSET, &p.sections_offset.to_le_bytes());
    }
    let sum = table_checksum(table.get(..table_len).unwrap_or(&[]));
    put(&mut table, header::TABLE_CHECKSUM, &sum.to_le_bytes());
    Ok(Layout {
        table,
        table_len,
        placed,
        placed_len,
        size,
    })
}
