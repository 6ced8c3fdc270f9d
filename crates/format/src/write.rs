//! Laying out a bundle segment: where each variant goes and the table that
//! says so. The caller writes the bytes in the order given.

use crate::{
    CHECKSUM_AT, ENTRY_SIZE, Encoding, Error, HEADER_SIZE, MAGIC, MAX_TABLE_SIZE, MAX_VARIANTS,
    VARIANT_ALIGN, VERSION, checksum, table_checksum,
};

/// Where one distinct executable goes inside the segment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlacedVariant {
    /// Offset from the segment's start.
    pub offset: u64,
    /// Index, in the caller's list, of the variant whose bytes go there.
    pub source: usize,
}

/// A complete plan for one bundle segment. It needs no allocation (the table
/// is at most [`MAX_TABLE_SIZE`] bytes), so this crate stays `no_std` for
/// the launcher even when a build of the whole workspace compiles both sides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    table: [u8; MAX_TABLE_SIZE],
    table_len: usize,
    placed: [PlacedVariant; MAX_VARIANTS],
    placed_len: usize,
    /// Offset just past the last stored byte.
    pub size: u64,
}

impl Layout {
    /// The encoded table, to be written at offset 0.
    pub fn table(&self) -> &[u8] {
        self.table.get(..self.table_len).unwrap_or(&[])
    }

    /// Distinct executables in ascending offset order; identical variants are
    /// stored once and their entries share the offset.
    pub fn placed(&self) -> &[PlacedVariant] {
        self.placed.get(..self.placed_len).unwrap_or(&[])
    }
}

/// Appends to a fixed buffer.
struct Writer<'a> {
    buffer: &'a mut [u8],
    len: usize,
}

impl Writer<'_> {
    /// Appends `bytes`; the buffer is sized for the largest table, so
    /// running out of room is a bug, caught by the tests.
    fn put(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        if let Some(slot) = self.buffer.get_mut(self.len..end) {
            slot.copy_from_slice(bytes);
            self.len = end;
        } else {
            debug_assert!(false, "table buffer too small");
        }
    }
}

fn align_up(value: u64) -> u64 {
    value.div_ceil(VARIANT_ALIGN) * VARIANT_ALIGN
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
}

impl<'a> StoredVariant<'a> {
    /// An executable stored as it is.
    pub fn raw(level: u8, executable: &'a [u8]) -> Self {
        Self {
            level,
            encoding: Encoding::Raw,
            reference: 0,
            size: executable.len() as u64,
            checksum: checksum(executable),
            stored: executable,
        }
    }

    fn same_bytes_as(&self, other: &Self) -> bool {
        self.encoding == other.encoding
            && self.reference == other.reference
            && self.size == other.size
            && self.checksum == other.checksum
            && self.stored == other.stored
    }
}

/// Plans the segment for `variants`, in ascending level order.
#[allow(clippy::indexing_slicing)] // sizes are bounded by MAX_VARIANTS, checked first
pub fn layout(variants: &[StoredVariant<'_>]) -> Result<Layout, Error> {
    if variants.is_empty() || variants.len() > MAX_VARIANTS {
        return Err(Error("a bundle holds one to four variants"));
    }
    if variants.windows(2).any(|w| w[0].level >= w[1].level)
        || variants.iter().any(|v| !(1..=4).contains(&v.level))
    {
        return Err(Error(
            "variant levels must be distinct, ascending and within 1 to 4",
        ));
    }
    let table_size = HEADER_SIZE + variants.len() * ENTRY_SIZE;
    let mut buffer = [0u8; MAX_TABLE_SIZE];
    let mut table = Writer {
        buffer: &mut buffer,
        len: 0,
    };
    table.put(&MAGIC);
    table.put(&VERSION.to_le_bytes());
    table.put(&(HEADER_SIZE as u16).to_le_bytes());
    table.put(&(ENTRY_SIZE as u16).to_le_bytes());
    table.put(&(variants.len() as u16).to_le_bytes());
    table.put(&[0u8; 16]); // checksum (filled in below) and reserved

    let mut placed = [PlacedVariant::default(); MAX_VARIANTS];
    let mut placed_len = 0;
    let mut next = align_up(table_size as u64);
    for (index, variant) in variants.iter().enumerate() {
        let earlier = placed[..placed_len]
            .iter()
            .find(|p| variants[p.source].same_bytes_as(variant))
            .map(|p| p.offset);
        let offset = match earlier {
            Some(offset) => offset,
            None => {
                let offset = next;
                next = align_up(offset + variant.stored.len() as u64);
                placed[placed_len] = PlacedVariant {
                    offset,
                    source: index,
                };
                placed_len += 1;
                offset
            }
        };
        let stored_size = variant.stored.len() as u64;
        if variant.encoding == Encoding::Raw && stored_size != variant.size {
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
        table.put(&[
            variant.level,
            variant.encoding as u8,
            variant.reference,
            0,
            0,
            0,
            0,
            0,
        ]);
        table.put(&offset.to_le_bytes());
        table.put(&stored_size.to_le_bytes());
        table.put(&variant.size.to_le_bytes());
        table.put(&variant.checksum.to_le_bytes());
        table.put(&[0u8; 8]);
    }
    let table_len = table.len;
    let sum = table_checksum(&buffer[..table_len]);
    buffer[CHECKSUM_AT..CHECKSUM_AT + 8].copy_from_slice(&sum.to_le_bytes());
    let size = placed[..placed_len].last().map_or(table_size as u64, |p| {
        p.offset + variants[p.source].stored.len() as u64
    });
    Ok(Layout {
        table: buffer,
        table_len,
        placed,
        placed_len,
        size,
    })
}
