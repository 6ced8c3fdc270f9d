use super::*;
use std::vec;
use std::vec::Vec;

/// Writes a whole segment the way the CLI does, for reading back.
fn segment_for(variants: &[(u8, &[u8])]) -> (Layout, Vec<u8>) {
    let stored: Vec<StoredVariant> = variants
        .iter()
        .map(|&(level, bytes)| StoredVariant::raw(level, bytes))
        .collect();
    segment_of(&stored)
}

fn segment_of(variants: &[StoredVariant]) -> (Layout, Vec<u8>) {
    let layout = layout(variants).unwrap();
    let mut segment = vec![0u8; layout.size as usize];
    segment[..layout.table().len()].copy_from_slice(layout.table());
    for p in layout.placed() {
        let bytes = variants[p.source].stored;
        segment[p.offset as usize..][..bytes.len()].copy_from_slice(bytes);
    }
    (layout, segment)
}

#[test]
fn round_trip_keeps_every_field() {
    let v1 = vec![1u8; 5000];
    let v3 = vec![3u8; 10];
    let variants: [(u8, &[u8]); 2] = [(1, &v1), (3, &v3)];
    let (_, segment) = segment_for(&variants);
    let table = Table::parse(&segment, segment.len() as u64).unwrap();
    assert_eq!(table.entries().len(), 2);
    for (entry, (level, bytes)) in table.entries().iter().zip(variants) {
        assert_eq!(entry.level, level);
        assert_eq!(entry.size, bytes.len() as u64);
        assert_eq!(entry.offset % VARIANT_ALIGN, 0);
        assert_eq!(entry.checksum, checksum(bytes));
        let stored = &segment[entry.offset as usize..][..entry.size as usize];
        assert_eq!(stored, bytes);
    }
    // The second variant starts on the first page boundary after the first.
    assert_eq!(table.entries()[1].offset, 4096 + 8192);
}

#[test]
fn identical_variants_are_stored_once() {
    let a = vec![7u8; 100];
    let b = vec![8u8; 100];
    let (layout, segment) = segment_for(&[(1, &a), (2, &b), (3, &b), (4, &b)]);
    assert_eq!(layout.placed().len(), 2);
    let table = Table::parse(&segment, segment.len() as u64).unwrap();
    let offsets: Vec<u64> = table.entries().iter().map(|e| e.offset).collect();
    assert_eq!(offsets, [4096, 8192, 8192, 8192]);
}

#[test]
fn choose_takes_highest_allowed_or_lowest_present() {
    let x = [0u8; 1];
    let (_, segment) = segment_for(&[(2, &x), (4, &[1u8])]);
    let table = Table::parse(&segment, segment.len() as u64).unwrap();
    let cases = [(1, 2), (2, 2), (3, 2), (4, 4)];
    for (wanted, expected) in cases {
        assert_eq!(table.choose(wanted).level, expected, "wanted v{wanted}");
    }
}

#[test]
fn every_damaged_table_is_rejected() {
    let v = vec![9u8; 64];
    let (layout, segment) = segment_for(&[(1, &v), (2, &v[..32])]);
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
    let count = usize::from(u16_at(&out, 14)).min(MAX_VARIANTS);
    let end = HEADER_SIZE + count * ENTRY_SIZE;
    let sum = table_checksum(&out[..end]);
    out[CHECKSUM_AT..CHECKSUM_AT + 8].copy_from_slice(&sum.to_le_bytes());
    out
}

#[test]
fn each_validation_names_its_problem() {
    let v = vec![5u8; 64];
    let (_, segment) = segment_for(&[(1, &v), (3, &v[..10])]);
    let size = segment.len() as u64;
    let e0 = HEADER_SIZE;
    let e1 = HEADER_SIZE + ENTRY_SIZE;
    let cases: [(usize, &[u8], &str); 8] = [
        (
            8,
            &2u16.to_le_bytes(),
            "bundle format version is not supported by this launcher",
        ),
        (
            12,
            &40u16.to_le_bytes(),
            "bundle table has unexpected header or entry sizes",
        ),
        (
            14,
            &0u16.to_le_bytes(),
            "bundle table has an invalid number of variants",
        ),
        (e1, &[1], "bundle table has invalid levels"),
        (e0, &[5], "bundle table has invalid levels"),
        (
            e0 + 1,
            &[9],
            "bundle uses an encoding this launcher does not know",
        ),
        (
            e0 + 8,
            &100u64.to_le_bytes(),
            "bundle table points outside the bundle",
        ),
        (
            e0 + 16,
            &63u64.to_le_bytes(),
            "bundle table has inconsistent sizes",
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
    let huge = with_field(&segment, e0 + 16, &u64::MAX.to_le_bytes());
    assert!(Table::parse(&huge, size).is_err());
}

#[test]
fn layout_refuses_bad_level_lists() {
    let v = [0u8];
    let raw = StoredVariant::raw;
    assert!(layout(&[]).is_err());
    assert!(layout(&[raw(2, &v), raw(1, &v)]).is_err());
    assert!(layout(&[raw(0, &v)]).is_err());
    assert!(layout(&[raw(1, &v), raw(1, &v)]).is_err());
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

/// A zstd-encoded entry whose payload is a chunk directory plus fake
/// chunk bytes (the format does not look inside them).
fn encoded_payload(size: u64, chunk_size: u32, dictionary: Option<(u64, u64)>) -> Vec<u8> {
    let count = size.div_ceil(u64::from(chunk_size)) as usize;
    let directory = chunk_directory_size(count);
    let records: Vec<ChunkRecord> = (0..count)
        .map(|i| ChunkRecord {
            stored_offset: (directory + 3 * i) as u64,
            stored_size: 3,
            checksum: i as u64,
            dictionary_offset: dictionary.map_or(0, |d| d.0),
            dictionary_size: dictionary.map_or(0, |d| d.1),
        })
        .collect();
    let mut payload = vec![0xAB; directory + 3 * count];
    write_chunk_directory(&mut payload, chunk_size, &records);
    payload
}

fn zstd_entry(payload: &[u8], size: u64, reference: u8) -> Entry {
    Entry {
        level: 4,
        encoding: Encoding::Zstd,
        reference,
        offset: 4096,
        stored_size: payload.len() as u64,
        size,
        checksum: 0,
    }
}

#[test]
fn chunk_directory_round_trip() {
    let payload = encoded_payload(10, 4, Some((5, 7)));
    let entry = zstd_entry(&payload, 10, 3);
    let chunks = Chunks::parse(&payload, &entry, Some(12)).unwrap();
    assert_eq!(chunks.len(), 3);
    assert_eq!(chunks.chunk_size(), 4);
    let sizes: Vec<(u64, usize, u64)> = (0..3)
        .map(|i| {
            let c = chunks.get(i);
            assert_eq!(c.stored, &[0xAB; 3]);
            assert_eq!(c.dictionary, 5..12);
            (c.offset, c.size, c.checksum)
        })
        .collect();
    assert_eq!(sizes, [(0, 4, 0), (4, 4, 1), (8, 2, 2)]);
}

#[test]
fn every_damaged_chunk_directory_is_rejected() {
    let payload = encoded_payload(10, 4, None);
    let entry = zstd_entry(&payload, 10, 0);
    assert!(Chunks::parse(&payload, &entry, None).is_ok());
    // The checksum fields (bytes 16..24 of each record) are only compared
    // with the decoded bytes later; every other directory bit is checked here.
    let directory = chunk_directory_size(3);
    for byte in 0..directory {
        let in_record = byte
            .checked_sub(CHUNKS_HEADER_SIZE)
            .map(|b| b % CHUNK_RECORD_SIZE);
        if matches!(in_record, Some(16..24)) {
            continue;
        }
        for bit in 0..8 {
            let mut bad = payload.clone();
            bad[byte] ^= 1 << bit;
            assert!(
                Chunks::parse(&bad, &entry, None).is_err(),
                "flip of byte {byte} bit {bit} accepted"
            );
        }
    }
    for len in 0..payload.len() {
        let short = zstd_entry(&payload[..len], 10, 0);
        assert!(Chunks::parse(&payload[..len], &short, None).is_err());
    }
    // A dictionary outside the reference, or one without a reference.
    let with_dictionary = encoded_payload(10, 4, Some((5, 7)));
    let entry = zstd_entry(&with_dictionary, 10, 3);
    assert!(Chunks::parse(&with_dictionary, &entry, Some(11)).is_err());
    assert!(Chunks::parse(&with_dictionary, &entry, None).is_err());
    // Chunks larger than a launcher allocates.
    let huge = encoded_payload(MAX_CHUNK_SIZE as u64 + 1, MAX_CHUNK_SIZE + 1, None);
    let entry = zstd_entry(&huge, MAX_CHUNK_SIZE as u64 + 1, 0);
    assert!(Chunks::parse(&huge, &entry, None).is_err());
}

#[test]
fn references_must_name_a_plain_variant() {
    let data = [1u8, 2, 3];
    let zstd = |level, reference| StoredVariant {
        level,
        encoding: Encoding::Zstd,
        reference,
        size: 3,
        checksum: checksum(&data),
        stored: &data,
    };
    let (_, segment) = segment_of(&[zstd(1, 3), zstd(3, 0), zstd(4, 3)]);
    let table = Table::parse(&segment, segment.len() as u64).unwrap();
    let v4 = table.choose(4);
    assert_eq!(table.reference_of(v4).map(|e| e.level), Some(3));
    assert_eq!(table.reference_of(table.choose(3)), None);
    // Itself, a missing level, a chain, or a non-zstd entry: refused on both sides.
    assert!(layout(&[zstd(3, 3)]).is_err());
    assert!(layout(&[zstd(3, 2)]).is_err());
    assert!(layout(&[zstd(2, 3), zstd(3, 4), zstd(4, 0)]).is_err());
    let mut raw_with_reference = StoredVariant::raw(4, &data);
    raw_with_reference.reference = 3;
    assert!(layout(&[zstd(3, 0), raw_with_reference]).is_err());
    let e2 = HEADER_SIZE + 2 * ENTRY_SIZE;
    for reference in [4u8, 2, 9] {
        let bad = with_field(&segment, e2 + 2, &[reference]);
        assert_eq!(
            Table::parse(&bad, segment.len() as u64),
            Err(Error("bundle table has an invalid reference")),
            "v4 referencing {reference}"
        );
    }
}
