use super::*;
use std::vec;
use std::vec::Vec;

/// Raw block records for `bytes`, cut every `block` bytes.
fn raw_blocks(bytes: &[u8], block: usize) -> Vec<BlockRecord> {
    bytes
        .chunks(block)
        .enumerate()
        .map(|(i, piece)| BlockRecord {
            offset: (i * block) as u64,
            size: piece.len() as u64,
            checksum: checksum(piece),
            stored_offset: (i * block) as u64,
            stored_size: piece.len() as u64,
            dictionary_size: 0,
        })
        .collect()
}

/// Writes a whole segment the way the CLI does, for reading back.
fn segment_of(variants: &[StoredVariant], flags: u32) -> (Layout, Vec<u8>) {
    let layout = layout(variants, flags).unwrap();
    let mut segment = vec![0u8; layout.size as usize];
    segment[..layout.table().len()].copy_from_slice(layout.table());
    for p in layout.placed() {
        let variant = &variants[p.source];
        let at = p.blocks_offset as usize;
        write_blocks(
            &mut segment[at..at + variant.blocks.len() * BLOCK_RECORD_SIZE],
            variant.blocks,
        );
        segment[p.offset as usize..][..variant.stored.len()].copy_from_slice(variant.stored);
        if !variant.sections.is_empty() {
            let at = p.sections_offset as usize;
            write_sections(
                &mut segment[at..at + variant.sections.len() * SECTION_RECORD_SIZE],
                variant.sections,
            );
        }
    }
    (layout, segment)
}

/// Raw variants of `bytes`, with blocks of `block` bytes.
fn raw_segment(variants: &[(u8, &[u8])], block: usize) -> (Layout, Vec<u8>) {
    let blocks: Vec<Vec<BlockRecord>> = variants
        .iter()
        .map(|(_, bytes)| raw_blocks(bytes, block))
        .collect();
    let stored: Vec<StoredVariant> = variants
        .iter()
        .zip(&blocks)
        .map(|(&(level, bytes), blocks)| StoredVariant {
            level,
            encoding: Encoding::Raw,
            reference: 0,
            size: bytes.len() as u64,
            checksum: checksum(bytes),
            stored: bytes,
            blocks,
            sections: &[],
        })
        .collect();
    segment_of(&stored, 0)
}

#[test]
fn round_trip_keeps_every_field() {
    let v1 = vec![1u8; 5000];
    let v3 = vec![3u8; 10];
    let variants: [(u8, &[u8]); 2] = [(1, &v1), (3, &v3)];
    let (layout, segment) = raw_segment(&variants, 4096);
    let table = Table::parse(&segment, segment.len() as u64).unwrap();
    assert_eq!(table.entries().len(), 2);
    assert!(!table.memfd_by_default());
    for (entry, (level, bytes)) in table.entries().iter().zip(variants) {
        assert_eq!(entry.level, level);
        assert_eq!(entry.size, bytes.len() as u64);
        assert_eq!(entry.offset % VARIANT_ALIGN, 0);
        assert_eq!(entry.checksum, checksum(bytes));
        let stored = &segment[entry.offset as usize..][..entry.size as usize];
        assert_eq!(stored, bytes);
        let blocks = Blocks::parse(&segment, entry, None).unwrap();
        assert_eq!(blocks.len(), bytes.len().div_ceil(4096));
        let mut joined = Vec::new();
        for i in 0..blocks.len() {
            let block = blocks.get(i);
            assert_eq!(block.offset as usize, joined.len());
            assert_eq!(checksum(block.stored), block.checksum);
            joined.extend_from_slice(block.stored);
        }
        assert_eq!(joined, bytes);
    }
    // Directories follow the table; the first variant starts on the next
    // page, the second on the first page boundary after the first.
    assert_eq!(layout.placed()[0].blocks_offset, 160);
    assert_eq!(table.entries()[0].offset, 4096);
    assert_eq!(table.entries()[1].offset, 4096 + 8192);
}

#[test]
fn the_launch_flags_round_trip_and_unknown_flags_are_refused() {
    let v = vec![1u8; 10];
    let blocks = raw_blocks(&v, 4096);
    let variant = StoredVariant {
        level: 2,
        encoding: Encoding::Raw,
        reference: 0,
        size: 10,
        checksum: checksum(&v),
        stored: &v,
        blocks: &blocks,
        sections: &[],
    };
    let (_, segment) = segment_of(&[variant], FLAG_MEMFD_LAUNCH);
    let table = Table::parse(&segment, segment.len() as u64).unwrap();
    assert!(table.memfd_by_default() && !table.file_by_default());
    assert_eq!(table.flags(), FLAG_MEMFD_LAUNCH);
    let (_, segment) = segment_of(&[variant], FLAG_FILE_LAUNCH);
    let table = Table::parse(&segment, segment.len() as u64).unwrap();
    assert!(table.file_by_default() && !table.memfd_by_default());
    assert!(layout(&[variant], 4).is_err());
    let bad = with_field(&segment, header::FLAGS, &4u32.to_le_bytes());
    assert_eq!(
        Table::parse(&bad, segment.len() as u64),
        Err(Error("bundle table has flags this launcher does not know"))
    );
}

#[test]
fn identical_variants_are_stored_once() {
    let a = vec![7u8; 100];
    let b = vec![8u8; 100];
    let (layout, segment) = raw_segment(&[(1, &a), (2, &b), (3, &b), (4, &b)], 4096);
    assert_eq!(layout.placed().len(), 2);
    let table = Table::parse(&segment, segment.len() as u64).unwrap();
    let offsets: Vec<u64> = table.entries().iter().map(|e| e.offset).collect();
    assert_eq!(offsets, [4096, 8192, 8192, 8192]);
    let directories: Vec<u64> = table.entries().iter().map(|e| e.blocks_offset).collect();
    assert_eq!(directories[1..], [directories[1]; 3]);
    assert_ne!(directories[0], directories[1]);
}

#[test]
fn choose_takes_highest_allowed_or_lowest_present() {
    let x = [0u8; 1];
    let (_, segment) = raw_segment(&[(2, &x), (4, &[1u8])], 4096);
    let table = Table::parse(&segment, segment.len() as u64).unwrap();
    let cases = [(1, 2), (2, 2), (3, 2), (4, 4)];
    for (wanted, expected) in cases {
        assert_eq!(table.choose(wanted).level, expected, "wanted v{wanted}");
    }
}

#[test]
fn every_damaged_table_is_rejected() {
    let v = vec![9u8; 64];
    let (layout, segment) = raw_segment(&[(1, &v), (2, &v[..32])], 16);
    let size = segment.len() as u64;
    // Any flipped bit in the table is caught, by a field check or the checksum.
    for byte in 0..layout.table().len() {
        for bit in 0..8 {
            let mut bad = segment.clone();
            bad[byte] ^= 1 << bit;
            assert!(
                Table::parse(&bad, size).is_err(),
                "flip of byte {byte} bit {bit} accepted"
            );
        }
    }
    // Cut short anywhere: rejected, never a panic.
    for len in 0..layout.table().len() {
        assert!(Table::parse(&segment[..len], size).is_err());
    }
    // A segment that the file does not hold whole.
    assert_eq!(
        Table::parse(&segment, size - 1),
        Err(Error("bundle table points outside the bundle"))
    );
}

/// Rewrites one field and fixes up the checksum, to reach the field checks.
fn with_field(segment: &[u8], at: usize, bytes: &[u8]) -> Vec<u8> {
    let mut out = segment.to_vec();
    out[at..at + bytes.len()].copy_from_slice(bytes);
    let count = usize::from(u16_at(&out, header::COUNT)).min(MAX_VARIANTS);
    let end = HEADER_SIZE + count * ENTRY_SIZE;
    let sum = table_checksum(&out[..end]);
    out[header::TABLE_CHECKSUM..][..8].copy_from_slice(&sum.to_le_bytes());
    out
}

#[test]
fn each_validation_names_its_problem() {
    let v = vec![5u8; 64];
    let (_, segment) = raw_segment(&[(1, &v), (3, &v[..10])], 32);
    let size = segment.len() as u64;
    let e0 = HEADER_SIZE;
    let e1 = HEADER_SIZE + ENTRY_SIZE;
    let cases: [(usize, &[u8], &str); 13] = [
        (
            header::VERSION,
            &1u16.to_le_bytes(),
            "bundle format version is not supported by this launcher",
        ),
        (
            header::VERSION,
            &2u16.to_le_bytes(),
            "bundle format version is not supported by this launcher",
        ),
        (
            header::ENTRY_SIZE,
            &48u16.to_le_bytes(),
            "bundle table has unexpected header or entry sizes",
        ),
        (
            header::COUNT,
            &0u16.to_le_bytes(),
            "bundle table has an invalid number of variants",
        ),
        (e1 + entry::LEVEL, &[1], "bundle table has invalid levels"),
        (e0 + entry::LEVEL, &[5], "bundle table has invalid levels"),
        (
            e0 + entry::ENCODING,
            &[9],
            "bundle uses an encoding this launcher does not know",
        ),
        (
            e0 + entry::OFFSET,
            &100u64.to_le_bytes(),
            "bundle table points outside the bundle",
        ),
        (
            e0 + entry::STORED_SIZE,
            &63u64.to_le_bytes(),
            "bundle table has inconsistent sizes",
        ),
        (
            e0 + entry::BLOCKS_OFFSET,
            &4u64.to_le_bytes(),
            "bundle table points outside the bundle",
        ),
        (
            e0 + entry::BLOCKS_OFFSET,
            &size.to_le_bytes(),
            "bundle table points outside the bundle",
        ),
        (
            e0 + entry::BLOCK_COUNT,
            &0u32.to_le_bytes(),
            "bundle table points outside the bundle",
        ),
        (
            e0 + entry::BLOCK_COUNT,
            &u32::MAX.to_le_bytes(),
            "bundle table points outside the bundle",
        ),
    ];
    for (at, bytes, message) in cases {
        let bad = with_field(&segment, at, bytes);
        assert_eq!(
            Table::parse(&bad, size),
            Err(Error(message)),
            "field at {at}"
        );
    }
    let huge = with_field(&segment, e0 + entry::STORED_SIZE, &u64::MAX.to_le_bytes());
    assert!(Table::parse(&huge, size).is_err());
}

#[test]
fn layout_refuses_bad_variant_lists() {
    let v = [0u8];
    let blocks = raw_blocks(&v, 16);
    let raw = |level| StoredVariant {
        level,
        encoding: Encoding::Raw,
        reference: 0,
        size: 1,
        checksum: checksum(&v),
        stored: &v,
        blocks: &blocks,
        sections: &[],
    };
    assert!(layout(&[], 0).is_err());
    assert!(layout(&[raw(2), raw(1)], 0).is_err());
    assert!(layout(&[raw(0)], 0).is_err());
    assert!(layout(&[raw(1), raw(1)], 0).is_err());
    assert!(
        layout(
            &[StoredVariant {
                blocks: &[],
                sections: &[],
                ..raw(1)
            }],
            0
        )
        .is_err()
    );
    assert!(layout(&[StoredVariant { size: 2, ..raw(1) }], 0).is_err());
}

#[test]
fn level_names() {
    let cases: [(&[u8], Option<u8>); 7] = [
        (b"v1", Some(1)),
        (b"v4", Some(4)),
        (b"v0", None),
        (b"v5", None),
        (b"V3", None),
        (b"v3 ", None),
        (b"", None),
    ];
    for (value, expected) in cases {
        assert_eq!(parse_level(value), expected, "{value:?}");
    }
}

/// A zstd entry of `size` decoded bytes in blocks of `block`, each stored as
/// 3 fake bytes (the format does not look inside them), with a dictionary
/// of `dictionary` bytes of a reference at level 3 (itself raw).
fn encoded_segment(size: u64, block: u64, dictionary: u64) -> (Vec<u8>, Vec<BlockRecord>) {
    let count = size.div_ceil(block);
    let records: Vec<BlockRecord> = (0..count)
        .map(|i| BlockRecord {
            offset: i * block,
            size: block.min(size - i * block),
            checksum: i,
            stored_offset: 3 * i,
            stored_size: 3,
            dictionary_size: dictionary,
        })
        .collect();
    let stored = vec![0xAB; 3 * count as usize];
    let reference = vec![1u8; 12];
    let reference_blocks = raw_blocks(&reference, 16);
    let variants = [
        StoredVariant {
            level: 3,
            encoding: Encoding::Raw,
            reference: 0,
            size: 12,
            checksum: checksum(&reference),
            stored: &reference,
            blocks: &reference_blocks,
            sections: &[],
        },
        StoredVariant {
            level: 4,
            encoding: Encoding::Zstd,
            reference: if dictionary > 0 { 3 } else { 0 },
            size,
            checksum: 0,
            stored: &stored,
            blocks: &records,
            sections: &[],
        },
    ];
    (segment_of(&variants, 0).1, records)
}

#[test]
fn block_directory_round_trip() {
    let (segment, _) = encoded_segment(10, 4, 7);
    let table = Table::parse(&segment, segment.len() as u64).unwrap();
    let entry = table.choose(4);
    let blocks = Blocks::parse(&segment, entry, Some(12)).unwrap();
    assert_eq!(blocks.len(), 3);
    let got: Vec<(u64, usize, u64)> = (0..3)
        .map(|i| {
            let b = blocks.get(i);
            assert_eq!(b.stored, &[0xAB; 3]);
            assert_eq!(b.dictionary_size, 7);
            (b.offset, b.size, b.checksum)
        })
        .collect();
    assert_eq!(got, [(0, 4, 0), (4, 4, 1), (8, 2, 2)]);
    let found: Vec<Option<usize>> = [0, 3, 4, 9, 10].map(|o| blocks.find(o)).to_vec();
    assert_eq!(found, [Some(0), Some(0), Some(1), Some(2), None]);
}

#[test]
fn every_damaged_block_directory_is_rejected() {
    let (segment, records) = encoded_segment(10, 4, 0);
    let table = Table::parse(&segment, segment.len() as u64).unwrap();
    let entry = *table.choose(4);
    assert!(Blocks::parse(&segment, &entry, None).is_ok());
    // The checksum fields are only compared with the decoded bytes later;
    // every other directory bit is checked here.
    let at = entry.blocks_offset as usize;
    let checksum_field = block_record::CHECKSUM..block_record::CHECKSUM + 8;
    for byte in 0..records.len() * BLOCK_RECORD_SIZE {
        if checksum_field.contains(&(byte % BLOCK_RECORD_SIZE)) {
            continue;
        }
        for bit in 0..8 {
            let mut bad = segment.clone();
            bad[at + byte] ^= 1 << bit;
            assert!(
                Blocks::parse(&bad, &entry, None).is_err(),
                "flip of byte {byte} bit {bit} accepted"
            );
        }
    }
    // A dictionary longer than the reference, or one without a reference.
    let (with_dictionary, _) = encoded_segment(10, 4, 7);
    let table = Table::parse(&with_dictionary, with_dictionary.len() as u64).unwrap();
    let entry = *table.choose(4);
    assert!(Blocks::parse(&with_dictionary, &entry, Some(6)).is_err());
    let no_reference = Entry {
        reference: 0,
        ..entry
    };
    assert!(Blocks::parse(&with_dictionary, &no_reference, None).is_err());
    // Blocks larger than a launcher allocates: 4 MiB, the largest mgo cuts,
    // is the limit; 16 MiB, which an earlier limit allowed, is refused.
    assert_eq!(MAX_BLOCK_SIZE, 4 << 20);
    for size in [MAX_BLOCK_SIZE + 1, 16 << 20] {
        let (huge, _) = encoded_segment(size, size, 0);
        let table = Table::parse(&huge, huge.len() as u64).unwrap();
        assert!(Blocks::parse(&huge, table.choose(4), None).is_err());
    }
    let (largest, _) = encoded_segment(MAX_BLOCK_SIZE, MAX_BLOCK_SIZE, 0);
    let table = Table::parse(&largest, largest.len() as u64).unwrap();
    assert!(Blocks::parse(&largest, table.choose(4), None).is_ok());
}

#[test]
fn raw_blocks_must_be_their_own_bytes() {
    let v = vec![3u8; 40];
    let (_, segment) = raw_segment(&[(1, &v)], 16);
    let table = Table::parse(&segment, segment.len() as u64).unwrap();
    let entry = *table.choose(1);
    assert!(Blocks::parse(&segment, &entry, None).is_ok());
    let at = entry.blocks_offset as usize + BLOCK_RECORD_SIZE;
    // Block 1's stored offset moved: raw blocks are where they decode to.
    let mut bad = segment.clone();
    bad[at + block_record::STORED_OFFSET] = 17;
    assert!(Blocks::parse(&bad, &entry, None).is_err());
}

#[test]
fn references_must_name_a_plain_variant() {
    let data = [1u8, 2, 3];
    let blocks = [BlockRecord {
        offset: 0,
        size: 3,
        checksum: checksum(&data),
        stored_offset: 0,
        stored_size: 3,
        dictionary_size: 0,
    }];
    let zstd = |level, reference| StoredVariant {
        level,
        encoding: Encoding::Zstd,
        reference,
        size: 3,
        checksum: checksum(&data),
        stored: &data,
        blocks: &blocks,
        sections: &[],
    };
    let (_, segment) = segment_of(&[zstd(1, 3), zstd(3, 0), zstd(4, 3)], 0);
    let table = Table::parse(&segment, segment.len() as u64).unwrap();
    let v4 = table.choose(4);
    assert_eq!(table.reference_of(v4).map(|e| e.level), Some(3));
    assert_eq!(table.reference_of(table.choose(3)), None);
    // Itself, a missing level, a chain, or a non-zstd entry: refused on both sides.
    assert!(layout(&[zstd(3, 3)], 0).is_err());
    assert!(layout(&[zstd(3, 2)], 0).is_err());
    assert!(layout(&[zstd(2, 3), zstd(3, 4), zstd(4, 0)], 0).is_err());
    let raw_with_reference = StoredVariant {
        encoding: Encoding::Raw,
        ..zstd(4, 3)
    };
    assert!(layout(&[zstd(3, 0), raw_with_reference], 0).is_err());
    let e2 = HEADER_SIZE + 2 * ENTRY_SIZE;
    for reference in [4u8, 2, 9] {
        let bad = with_field(&segment, e2 + entry::REFERENCE, &[reference]);
        assert_eq!(
            Table::parse(&bad, segment.len() as u64),
            Err(Error("bundle table has an invalid reference")),
            "v4 referencing {reference}"
        );
    }
}

/// A zstd variant whose 1000-byte image holds two inflated sections: 100
/// bytes at 200 (a 40-byte stream in the file) and 300 bytes at 310 (60).
fn inflated_segment(sections: &[SectionRecord]) -> Vec<u8> {
    let blocks = [BlockRecord {
        offset: 0,
        size: 1000,
        checksum: 0,
        stored_offset: 0,
        stored_size: 10,
        dictionary_size: 0,
    }];
    let variant = StoredVariant {
        level: 1,
        encoding: Encoding::Zstd,
        reference: 0,
        size: 1000,
        checksum: 0,
        stored: &[0; 10],
        blocks: &blocks,
        sections,
    };
    segment_of(&[variant], 0).1
}

const TWO_SECTIONS: [SectionRecord; 2] = [
    SectionRecord {
        file_offset: 200,
        stream_size: 40,
        image_offset: 200,
        inflated_size: 100,
    },
    SectionRecord {
        file_offset: 250,
        stream_size: 60,
        image_offset: 310,
        inflated_size: 300,
    },
];

#[test]
fn sections_round_trip_and_place_every_offset() {
    let segment = inflated_segment(&TWO_SECTIONS);
    let table = Table::parse(&segment, segment.len() as u64).unwrap();
    let entry = table.entries()[0];
    assert_eq!(entry.section_count, 2);
    let sections = Sections::parse(&segment, &entry).unwrap();
    assert_eq!([sections.get(0), sections.get(1)], TWO_SECTIONS);
    // 1000 - 100 - 300 + 40 + 60.
    assert_eq!(sections.file_size(), 700);
    assert_eq!(sections.first_image_offset(1000), 200);
    // Without sections, the image is the file.
    let (_, plain) = raw_segment(&[(1, b"abc")], 2);
    let table = Table::parse(&plain, plain.len() as u64).unwrap();
    let none = Sections::parse(&plain, &table.entries()[0]).unwrap();
    assert!(none.is_empty());
    assert_eq!(none.file_size(), 3);
}

#[test]
fn every_inconsistent_section_directory_is_rejected() {
    let damaged = Err(Error("bundle section directory is damaged"));
    let with = |edit: &dyn Fn(&mut [SectionRecord; 2])| {
        let mut sections = TWO_SECTIONS;
        edit(&mut sections);
        let segment = inflated_segment(&sections);
        let table = Table::parse(&segment, segment.len() as u64).unwrap();
        Sections::parse(&segment, &table.entries()[0]).map(|s| s.file_size())
    };
    // The gap between the sections differs between image and file.
    assert_eq!(with(&|s| s[1].file_offset = 251), damaged);
    // Overlapping, out of order, or the first not where the file has it.
    assert_eq!(with(&|s| s[1].image_offset = 250), damaged);
    assert_eq!(with(&|s| s.swap(0, 1)), damaged);
    assert_eq!(with(&|s| s[0].file_offset = 199), damaged);
    // Past the image's end, an empty stream, overflowing sizes.
    assert_eq!(with(&|s| s[1].inflated_size = 700), damaged);
    assert_eq!(with(&|s| s[0].stream_size = 0), damaged);
    // A stream longer than DEFLATE could ever make of 100 bytes (the
    // second section moved with it, so that only the length is wrong).
    assert_eq!(
        with(&|s| {
            s[0].stream_size = 177;
            s[1].file_offset = 387
        }),
        damaged
    );
    assert_eq!(
        with(&|s| {
            s[0].stream_size = 176;
            s[1].file_offset = 386
        }),
        Ok(836)
    );
    assert_eq!(with(&|s| s[1].inflated_size = u64::MAX), damaged);

    // Table rules: only encoded entries, at most 64, inside the segment.
    let segment = inflated_segment(&TWO_SECTIONS);
    let entry_at = HEADER_SIZE;
    let invalid = Err(Error("bundle table has an invalid section directory"));
    let reparse = |at: usize, bytes: &[u8]| {
        let edited = with_field(&segment, at, bytes);
        Table::parse(&edited, edited.len() as u64).map(|_| ())
    };
    assert_eq!(
        reparse(entry_at + entry::SECTION_COUNT, &65u32.to_le_bytes()),
        invalid
    );
    assert_eq!(
        reparse(entry_at + entry::SECTIONS_OFFSET, &4u64.to_le_bytes()),
        invalid
    );
    assert_eq!(
        reparse(
            entry_at + entry::SECTIONS_OFFSET,
            &(segment.len() as u64).to_le_bytes()
        ),
        invalid
    );
    assert_eq!(
        reparse(entry_at + entry::SECTION_COUNT, &0u32.to_le_bytes()),
        invalid
    );
    let variant = StoredVariant {
        level: 1,
        encoding: Encoding::Raw,
        reference: 0,
        size: 3,
        checksum: 0,
        stored: b"abc",
        blocks: &raw_blocks(b"abc", 4),
        sections: &TWO_SECTIONS,
    };
    assert!(
        layout(&[variant], 0).is_err(),
        "a raw variant with sections"
    );
}
