use super::*;
use std::vec;
use std::vec::Vec;

/// Writes a whole segment the way the CLI does, for reading back.
fn segment_for(variants: &[(u8, &[u8])]) -> (Layout, Vec<u8>) {
    let layout = layout(variants).unwrap();
    let mut segment = vec![0u8; layout.size as usize];
    segment[..layout.table().len()].copy_from_slice(layout.table());
    for p in layout.placed() {
        let bytes = variants[p.source].1;
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
    assert!(layout(&[]).is_err());
    assert!(layout(&[(2, &v), (1, &v)]).is_err());
    assert!(layout(&[(0, &v)]).is_err());
    assert!(layout(&[(1, &v), (1, &v)]).is_err());
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
