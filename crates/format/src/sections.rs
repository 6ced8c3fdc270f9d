//! Inflated sections (docs/FORMAT.md, "Inflated sections"): parts of a
//! variant that the bundle stores inflated and that the reader deflates
//! again, with `mgo-goflate`, to re-create the exact executable.

use crate::{Entry, Error, put, section_record, u64_at};

/// Bytes of one section record.
pub const SECTION_RECORD_SIZE: usize = 32;

/// Most sections one variant may have inflated: Go writes about ten
/// compressed DWARF sections; the limit bounds what a reader walks.
pub const MAX_SECTIONS: u32 = 64;

/// One inflated section, as the writer describes it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SectionRecord {
    /// Variant offset of the zlib stream in the executable.
    pub file_offset: u64,
    /// Its length in the executable.
    pub stream_size: u64,
    /// Offset of the inflated bytes in the image the blocks tile.
    pub image_offset: u64,
    /// Number of inflated bytes.
    pub inflated_size: u64,
}

impl SectionRecord {
    fn image_end(&self) -> u64 {
        self.image_offset + self.inflated_size
    }

    fn file_end(&self) -> u64 {
        self.file_offset + self.stream_size
    }
}

/// Writes `records` into `out` (`SECTION_RECORD_SIZE` bytes each).
pub fn write_sections(out: &mut [u8], records: &[SectionRecord]) {
    for (record, slot) in records
        .iter()
        .zip(out.chunks_exact_mut(SECTION_RECORD_SIZE))
    {
        for (at, value) in [
            (section_record::FILE_OFFSET, record.file_offset),
            (section_record::STREAM_SIZE, record.stream_size),
            (section_record::IMAGE_OFFSET, record.image_offset),
            (section_record::INFLATED_SIZE, record.inflated_size),
        ] {
            put(slot, at, &value.to_le_bytes());
        }
    }
}

/// An entry's checked section records.
#[derive(Clone, Copy, Debug)]
pub struct Sections<'a> {
    directory: &'a [u8],
    count: usize,
    file_size: u64,
}

const DAMAGED: Error = Error("bundle section directory is damaged");

/// The longest zlib stream a section of `inflated` bytes may have: more
/// than DEFLATE ever needs (stored blocks add 5 bytes per 65,535, zlib 6,
/// Go's encoder at most 1/16 over stored), so that a damaged record cannot
/// make a reader allocate for an executable of any size.
fn max_stream(inflated: u64) -> u64 {
    inflated.saturating_add(inflated / 8).saturating_add(64)
}

impl<'a> Sections<'a> {
    /// Reads and checks `entry`'s section records (the rules in
    /// docs/FORMAT.md, "Section directory rules"); an entry without any
    /// gives an empty list whose file is its image.
    pub fn parse(segment: &'a [u8], entry: &Entry) -> Result<Self, Error> {
        let count = entry.section_count as usize;
        let directory = segment
            .get(entry.sections_offset as usize..)
            .and_then(|rest| rest.get(..count.checked_mul(SECTION_RECORD_SIZE)?))
            .ok_or(DAMAGED)?;
        let mut sections = Self {
            directory,
            count,
            file_size: entry.size,
        };
        // The image and the file agree up to the first section; after
        // each, they agree again, shifted by what the sections before
        // changed.
        let (mut image_end, mut file_end) = (0u64, 0u64);
        for i in 0..count {
            let r = sections.get(i);
            let gap = r.image_offset.checked_sub(image_end).ok_or(DAMAGED)?;
            if r.file_offset.checked_sub(file_end) != Some(gap)
                || r.image_offset.checked_add(r.inflated_size).is_none()
                || r.file_offset.checked_add(r.stream_size).is_none()
                || r.stream_size == 0
                || r.stream_size > max_stream(r.inflated_size)
            {
                return Err(DAMAGED);
            }
            image_end = r.image_end();
            file_end = r.file_end();
        }
        let tail = entry.size.checked_sub(image_end).ok_or(DAMAGED)?;
        sections.file_size = file_end.checked_add(tail).ok_or(DAMAGED)?;
        if sections.file_size == 0 {
            return Err(DAMAGED);
        }
        Ok(sections)
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the entry has no inflated section.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Record `i` (`i < len()`).
    pub fn get(&self, i: usize) -> SectionRecord {
        let at = i * SECTION_RECORD_SIZE;
        let field = |offset: usize| u64_at(self.directory, at + offset);
        SectionRecord {
            file_offset: field(section_record::FILE_OFFSET),
            stream_size: field(section_record::STREAM_SIZE),
            image_offset: field(section_record::IMAGE_OFFSET),
            inflated_size: field(section_record::INFLATED_SIZE),
        }
    }

    /// Size of the executable the entry re-creates: its image with every
    /// section deflated again.
    pub fn file_size(&self) -> u64 {
        self.file_size
    }

    /// Where the image's first section starts (the image's size if none):
    /// before it, the image is the executable.
    pub fn first_image_offset(&self, image_size: u64) -> u64 {
        if self.count == 0 {
            image_size
        } else {
            self.get(0).image_offset
        }
    }
}
