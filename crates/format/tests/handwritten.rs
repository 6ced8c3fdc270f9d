//! A bundle segment written out byte by byte from docs/FORMAT.md's tables
//! (not by the writer), read back with the parser: whatever the code says,
//! these bytes are what the document says a version 3 bundle is. Then the
//! writer must write the very same bytes, and every named offset must point
//! at its field in them.
//!
//! The segment holds two entries: v2, raw, "hello, mgo" in two blocks; and
//! v4, zstd against v2, whose one block tiles a 1000-byte image with one
//! inflated section. The checksums are XXH3-64 values computed with C
//! xxHash (libxxhash 0.8), not with this crate.

// A test fails by panicking; the workspace's lints are for production code.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use mgo_format::{
    BLOCK_RECORD_SIZE, BlockRecord, Blocks, ENTRY_SIZE, Encoding, Entry, HEADER_SIZE,
    SECTION_RECORD_SIZE, SectionRecord, Sections, StoredVariant, Table, block_record, checksum,
    entry, header, layout, section_record, write_blocks, write_sections,
};

/// docs/FORMAT.md, "Header (32 bytes, segment offset 0)" and "Entry (64
/// bytes, at segment offset 32 + 64 × i)": a table of two entries, 160
/// bytes.
#[rustfmt::skip]
const TABLE: [u8; 160] = [
    // Header, segment offset 0x00.
    0x6d, 0x67, 0x6f, 0x2d, 0x62, 0x6e, 0x64, 0x6c, //  0 magic: "mgo-bndl"
    0x03, 0x00,                                     //  8 version: 3
    0x20, 0x00,                                     // 10 header_size: 32
    0x40, 0x00,                                     // 12 entry_size: 64
    0x02, 0x00,                                     // 14 count: 2
    0xa3, 0x4c, 0x83, 0xa7, 0xa9, 0x6e, 0x99, 0x0f, // 16 table_checksum: 0x0f996ea9a7834ca3
    0x01, 0x00, 0x00, 0x00,                         // 24 flags: bit 0, memfd
    0x00, 0x00, 0x00, 0x00,                         // 28 reserved
    // Entry 0, segment offset 0x20.
    0x02,                                           //  0 level: v2
    0x00,                                           //  1 encoding: 0, raw
    0x00,                                           //  2 reference: none
    0x00, 0x00, 0x00, 0x00, 0x00,                   //  3 reserved
    0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //  8 offset: 0x1000
    0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 16 stored_size: 10
    0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 24 size: 10
    0x66, 0x0b, 0x44, 0xbb, 0xcf, 0x7a, 0x27, 0xec, // 32 checksum: XXH3-64 of "hello, mgo"
    0xa0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 40 blocks_offset: 0xa0, right after the table
    0x02, 0x00, 0x00, 0x00,                         // 48 block_count: 2
    0x00, 0x00, 0x00, 0x00,                         // 52 section_count: 0
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 56 sections_offset: 0, none
    // Entry 1, segment offset 0x60.
    0x04,                                           //  0 level: v4
    0x01,                                           //  1 encoding: 1, zstd
    0x02,                                           //  2 reference: v2
    0x00, 0x00, 0x00, 0x00, 0x00,                   //  3 reserved
    0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //  8 offset: 0x2000
    0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 16 stored_size: 7
    0xe8, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 24 size: 1000, the image
    0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01, // 32 checksum: 0x0123456789abcdef (not read by a parser)
    0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 40 blocks_offset: 0x100, after entry 0's directory
    0x01, 0x00, 0x00, 0x00,                         // 48 block_count: 1
    0x01, 0x00, 0x00, 0x00,                         // 52 section_count: 1
    0x30, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 56 sections_offset: 0x130, after its block directory
];

/// docs/FORMAT.md, "Block directory": entry 0's two records at 0xa0, then
/// entry 1's one record at 0x100.
#[rustfmt::skip]
const BLOCKS: [u8; 3 * 48] = [
    // Entry 0, block 0, segment offset 0xa0: "hello,".
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //  0 offset: 0
    0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //  8 size: 6
    0xf7, 0x00, 0xa5, 0x15, 0xb7, 0x81, 0xa8, 0x4b, // 16 checksum: XXH3-64 of "hello,"
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 24 stored_offset: 0 (raw: its offset)
    0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 32 stored_size: 6 (raw: its size)
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 40 dictionary_size: 0, no reference
    // Entry 0, block 1, segment offset 0xd0: " mgo".
    0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //  0 offset: 6
    0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //  8 size: 4
    0xb3, 0x23, 0x30, 0xbc, 0x6a, 0x68, 0xd7, 0x12, // 16 checksum: XXH3-64 of " mgo"
    0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 24 stored_offset: 6
    0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 32 stored_size: 4
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 40 dictionary_size: 0
    // Entry 1, block 0, segment offset 0x100.
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //  0 offset: 0
    0xe8, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //  8 size: 1000
    0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, // 16 checksum: 0x8877665544332211 (checked on decoding only)
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 24 stored_offset: 0
    0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 32 stored_size: 7
    0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 40 dictionary_size: 10, all of v2
];

/// docs/FORMAT.md, "Section directory": entry 1's one record at 0x130.
#[rustfmt::skip]
const SECTIONS: [u8; 32] = [
    0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //  0 file_offset: 0x100
    0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //  8 stream_size: 32
    0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 16 image_offset: 0x100
    0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 24 inflated_size: 512
];

/// v2's executable, stored raw at 0x1000.
const V2: &[u8] = b"hello, mgo";

/// v4's stored bytes at 0x2000 (the format does not look inside them).
const V4_STORED: [u8; 7] = [0xab; 7];

/// The whole segment: the table and the directories back to back, zeros up
/// to 0x1000, v2, zeros up to 0x2000, v4.
fn segment() -> Vec<u8> {
    let mut segment = [&TABLE[..], &BLOCKS, &SECTIONS].concat();
    assert_eq!(segment.len(), 0x150);
    segment.resize(0x1000, 0);
    segment.extend_from_slice(V2);
    segment.resize(0x2000, 0);
    segment.extend_from_slice(&V4_STORED);
    segment
}

const V2_ENTRY: Entry = Entry {
    level: 2,
    encoding: Encoding::Raw,
    reference: 0,
    offset: 0x1000,
    stored_size: 10,
    size: 10,
    checksum: 0xec27_7acf_bb44_0b66,
    blocks_offset: 0xa0,
    block_count: 2,
    section_count: 0,
    sections_offset: 0,
};

const V4_ENTRY: Entry = Entry {
    level: 4,
    encoding: Encoding::Zstd,
    reference: 2,
    offset: 0x2000,
    stored_size: 7,
    size: 1000,
    checksum: 0x0123_4567_89ab_cdef,
    blocks_offset: 0x100,
    block_count: 1,
    section_count: 1,
    sections_offset: 0x130,
};

const V2_BLOCKS: [BlockRecord; 2] = [
    BlockRecord {
        offset: 0,
        size: 6,
        checksum: 0x4ba8_81b7_15a5_00f7,
        stored_offset: 0,
        stored_size: 6,
        dictionary_size: 0,
    },
    BlockRecord {
        offset: 6,
        size: 4,
        checksum: 0x12d7_686a_bc30_23b3,
        stored_offset: 6,
        stored_size: 4,
        dictionary_size: 0,
    },
];

const V4_BLOCKS: [BlockRecord; 1] = [BlockRecord {
    offset: 0,
    size: 1000,
    checksum: 0x8877_6655_4433_2211,
    stored_offset: 0,
    stored_size: 7,
    dictionary_size: 10,
}];

const V4_SECTIONS: [SectionRecord; 1] = [SectionRecord {
    file_offset: 0x100,
    stream_size: 32,
    image_offset: 0x100,
    inflated_size: 512,
}];

#[test]
fn the_parser_reads_what_format_md_describes() {
    let segment = segment();
    let table = Table::parse(&segment, segment.len() as u64).unwrap();
    assert_eq!(table.flags(), 1);
    assert!(table.memfd_by_default());
    assert_eq!(table.entries(), [V2_ENTRY, V4_ENTRY]);
    assert_eq!(table.reference_of(&table.entries()[1]), Some(&V2_ENTRY));
    assert_eq!(table.choose(3), &V2_ENTRY);

    let v2 = Blocks::parse(&segment, &V2_ENTRY, None).unwrap();
    assert_eq!([v2.record(0), v2.record(1)], V2_BLOCKS);
    assert_eq!(v2.get(0).stored, b"hello,");
    assert_eq!(v2.get(1).stored, b" mgo");
    let v4 = Blocks::parse(&segment, &V4_ENTRY, Some(V2_ENTRY.size)).unwrap();
    assert_eq!(v4.len(), 1);
    assert_eq!(v4.record(0), V4_BLOCKS[0]);
    assert_eq!(v4.get(0).stored, V4_STORED);

    assert!(Sections::parse(&segment, &V2_ENTRY).unwrap().is_empty());
    let sections = Sections::parse(&segment, &V4_ENTRY).unwrap();
    assert_eq!(sections.len(), 1);
    assert_eq!(sections.get(0), V4_SECTIONS[0]);
    // docs/FORMAT.md, "Section directory rules": 1000 - 512 + 32.
    assert_eq!(sections.file_size(), 520);
}

/// docs/FORMAT.md, "Checksums": the crate computes what C xxHash does, and
/// the table's checksum covers the table with its own field zeroed.
#[test]
fn the_checksums_are_the_documented_ones() {
    assert_eq!(checksum(V2), V2_ENTRY.checksum);
    assert_eq!(checksum(b"hello,"), V2_BLOCKS[0].checksum);
    assert_eq!(checksum(b" mgo"), V2_BLOCKS[1].checksum);
    let mut zeroed = TABLE;
    zeroed[16..24].fill(0); // offsets 16 to 23, as FORMAT.md says
    assert_eq!(checksum(&zeroed).to_le_bytes(), TABLE[16..24]);
    // And a changed byte anywhere in the table is refused.
    let mut damaged = segment();
    damaged[0x20 + 5] = 1; // entry 0, a reserved byte
    assert!(Table::parse(&damaged, damaged.len() as u64).is_err());
}

/// The writer lays out the same two variants byte for byte as written
/// above.
#[test]
fn the_writer_writes_the_same_bytes() {
    let variants = [
        StoredVariant {
            level: 2,
            encoding: Encoding::Raw,
            reference: 0,
            size: 10,
            checksum: V2_ENTRY.checksum,
            stored: V2,
            blocks: &V2_BLOCKS,
            sections: &[],
        },
        StoredVariant {
            level: 4,
            encoding: Encoding::Zstd,
            reference: 2,
            size: 1000,
            checksum: V4_ENTRY.checksum,
            stored: &V4_STORED,
            blocks: &V4_BLOCKS,
            sections: &V4_SECTIONS,
        },
    ];
    let layout = layout(&variants, mgo_format::FLAG_MEMFD_LAUNCH).unwrap();
    assert_eq!(layout.table(), TABLE);
    assert_eq!(layout.size, segment().len() as u64);
    let placed: Vec<(u64, u64, u64)> = layout
        .placed()
        .iter()
        .map(|p| (p.blocks_offset, p.sections_offset, p.offset))
        .collect();
    assert_eq!(placed, [(0xa0, 0, 0x1000), (0x100, 0x130, 0x2000)]);
    let mut blocks = [0u8; 3 * BLOCK_RECORD_SIZE];
    write_blocks(&mut blocks[..2 * BLOCK_RECORD_SIZE], &V2_BLOCKS);
    write_blocks(&mut blocks[2 * BLOCK_RECORD_SIZE..], &V4_BLOCKS);
    assert_eq!(blocks, BLOCKS);
    let mut sections = [0u8; SECTION_RECORD_SIZE];
    write_sections(&mut sections, &V4_SECTIONS);
    assert_eq!(sections, SECTIONS);
}

/// Every named offset points at its field in the bytes above.
#[test]
fn the_named_offsets_are_the_documented_ones() {
    let u16_at = |b: &[u8], at: usize| u16::from_le_bytes(b[at..][..2].try_into().unwrap());
    let u32_at = |b: &[u8], at: usize| u32::from_le_bytes(b[at..][..4].try_into().unwrap());
    let u64_at = |b: &[u8], at: usize| u64::from_le_bytes(b[at..][..8].try_into().unwrap());

    assert_eq!(&TABLE[header::MAGIC..][..8], b"mgo-bndl");
    assert_eq!(u16_at(&TABLE, header::VERSION), 3);
    assert_eq!(
        usize::from(u16_at(&TABLE, header::HEADER_SIZE)),
        HEADER_SIZE
    );
    assert_eq!(usize::from(u16_at(&TABLE, header::ENTRY_SIZE)), ENTRY_SIZE);
    assert_eq!(u16_at(&TABLE, header::COUNT), 2);
    assert_eq!(
        u64_at(&TABLE, header::TABLE_CHECKSUM),
        0x0f99_6ea9_a783_4ca3
    );
    assert_eq!(u32_at(&TABLE, header::FLAGS), 1);
    assert_eq!(u32_at(&TABLE, header::RESERVED), 0);

    let e = &TABLE[HEADER_SIZE + ENTRY_SIZE..][..ENTRY_SIZE];
    assert_eq!(e[entry::LEVEL], V4_ENTRY.level);
    assert_eq!(e[entry::ENCODING], Encoding::Zstd as u8);
    assert_eq!(e[entry::REFERENCE], V4_ENTRY.reference);
    assert_eq!(e[entry::RESERVED..][..5], [0; 5]);
    assert_eq!(u64_at(e, entry::OFFSET), V4_ENTRY.offset);
    assert_eq!(u64_at(e, entry::STORED_SIZE), V4_ENTRY.stored_size);
    assert_eq!(u64_at(e, entry::SIZE), V4_ENTRY.size);
    assert_eq!(u64_at(e, entry::CHECKSUM), V4_ENTRY.checksum);
    assert_eq!(u64_at(e, entry::BLOCKS_OFFSET), V4_ENTRY.blocks_offset);
    assert_eq!(u32_at(e, entry::BLOCK_COUNT), V4_ENTRY.block_count);
    assert_eq!(u32_at(e, entry::SECTION_COUNT), V4_ENTRY.section_count);
    assert_eq!(u64_at(e, entry::SECTIONS_OFFSET), V4_ENTRY.sections_offset);

    let r = &BLOCKS[2 * BLOCK_RECORD_SIZE..];
    let record = V4_BLOCKS[0];
    assert_eq!(u64_at(r, block_record::OFFSET), record.offset);
    assert_eq!(u64_at(r, block_record::SIZE), record.size);
    assert_eq!(u64_at(r, block_record::CHECKSUM), record.checksum);
    assert_eq!(u64_at(r, block_record::STORED_OFFSET), record.stored_offset);
    assert_eq!(u64_at(r, block_record::STORED_SIZE), record.stored_size);
    assert_eq!(
        u64_at(r, block_record::DICTIONARY_SIZE),
        record.dictionary_size
    );

    let s = V4_SECTIONS[0];
    assert_eq!(
        u64_at(&SECTIONS, section_record::FILE_OFFSET),
        s.file_offset
    );
    assert_eq!(
        u64_at(&SECTIONS, section_record::STREAM_SIZE),
        s.stream_size
    );
    assert_eq!(
        u64_at(&SECTIONS, section_record::IMAGE_OFFSET),
        s.image_offset
    );
    assert_eq!(
        u64_at(&SECTIONS, section_record::INFLATED_SIZE),
        s.inflated_size
    );
}
