//! How the variants are stored (docs/FORMAT.md, "Blocks"; docs/CLI.md,
//! "Compression").
//!
//! Each variant is cut into blocks (see [`cut`]), every one checksummed and,
//! with `MGO_COMPRESS`, compressed on its own, so that the launcher can
//! verify and decode them on several CPUs, and decode the loadable ones
//! straight into place. The blocks are also what this side shares out among
//! its threads; since a block's bytes depend only on the block (and, in the
//! `Z` modes, on the reference variant), the output is the same whatever the
//! number of threads.

mod blocks;
mod codec;
pub mod dwarf;
mod mode;
mod parallel;

pub use blocks::{Piece, cut, loadable_ranges};
pub use codec::decode_block;
use codec::{Compressor, ReferenceDictionary};
pub use mode::{FORMS, Mode};
pub use parallel::parallel_map;

use crate::error::{Result, fail};
use mgo_format::{BlockRecord, Encoding, SectionRecord, StoredVariant};
use std::borrow::Cow;
use std::ops::Range;

/// One variant ready to be laid out.
pub struct Encoded<'a> {
    level: u8,
    encoding: Encoding,
    reference: u8,
    size: u64,
    checksum: u64,
    stored: Cow<'a, [u8]>,
    blocks: Vec<BlockRecord>,
    sections: Vec<SectionRecord>,
}

impl Encoded<'_> {
    /// Its inflated sections.
    pub fn sections(&self) -> &[SectionRecord] {
        &self.sections
    }

    /// The view the format's layout takes.
    pub fn as_stored(&self) -> StoredVariant<'_> {
        StoredVariant {
            level: self.level,
            encoding: self.encoding,
            reference: self.reference,
            size: self.size,
            checksum: self.checksum,
            stored: &self.stored,
            blocks: &self.blocks,
            sections: &self.sections,
        }
    }
}

/// The level whose variant the others are compressed against in the `Z`
/// modes: the highest, which is always v4. A v4 CPU (every AVX-512 server
/// CPU: Intel Xeon since Skylake-SP, AMD since Zen 4) then decodes one
/// variant only; a v3 CPU decodes v4 and then a small difference, since v3
/// and v4 builds of a Go program are nearly the same code (docs/DESIGN.md has
/// the measurements).
pub fn reference_level(levels: &[u8]) -> Option<u8> {
    levels.last().copied()
}

/// The dictionary of a block compressed against the reference: the
/// reference's loadable part for a loadable block (so that the launcher's
/// mapped start decodes no more of the reference than that), all of it for
/// the rest (DWARF and symbols resemble the reference's own).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dictionary {
    None,
    Loadable,
    Whole,
}

/// Encodes `builds` (level, executable), in ascending level order, with
/// `mode`, on up to `threads` threads.
pub fn encode<'a>(
    builds: &'a [(u8, Vec<u8>)],
    mode: Mode,
    threads: usize,
) -> Result<Vec<Encoded<'a>>> {
    // Identical executables are encoded once; layout() then stores them once.
    let first_copy: Vec<usize> = builds
        .iter()
        .enumerate()
        .map(|(i, (_, bytes))| {
            builds
                .iter()
                .position(|(_, other)| other == bytes)
                .unwrap_or(i)
        })
        .collect();
    let entry = |(level, bytes): &(u8, Vec<u8>), reference, stored, blocks| Encoded {
        level: *level,
        encoding: mode.encoding(),
        reference,
        size: bytes.len() as u64,
        checksum: mgo_format::checksum(bytes),
        stored,
        blocks,
        sections: Vec::new(),
    };
    if mode == Mode::Raw {
        return Ok(builds
            .iter()
            .map(|build| {
                let pieces = cut(&build.1, &[]);
                let blocks = pieces
                    .iter()
                    .map(|piece| {
                        let bytes = build.1.get(piece.range.clone()).unwrap_or(&[]);
                        BlockRecord {
                            offset: piece.range.start as u64,
                            size: bytes.len() as u64,
                            checksum: mgo_format::checksum(bytes),
                            stored_offset: piece.range.start as u64,
                            stored_size: bytes.len() as u64,
                            dictionary_size: 0,
                        }
                    })
                    .collect();
                entry(build, 0, Cow::Borrowed(&build.1[..]), blocks)
            })
            .collect());
    }

    // What the blocks tile: each build with its reproducible compressed
    // DWARF inflated, which the compressor can then compress across
    // levels (docs/FORMAT.md, "Inflated sections").
    let expanded = dwarf::expand_all(builds, threads)?;
    let images: Vec<&[u8]> = expanded.iter().map(|e| &e.image[..]).collect();
    let pieces: Vec<Vec<Piece>> = expanded
        .iter()
        .map(|e| cut(&e.image, &e.sections))
        .collect();
    let levels: Vec<u8> = builds.iter().map(|(level, _)| *level).collect();
    let reference = match mode {
        Mode::ZstdAgainstReference(_) => reference_level(&levels)
            .and_then(|level| levels.iter().position(|&l| l == level))
            .and_then(|i| first_copy.get(i).copied())
            .and_then(|r| builds.get(r).map(|build| (r, build))),
        _ => None,
    };
    let reference_bytes: &[u8] = reference
        .and_then(|(r, _)| images.get(r).copied())
        .unwrap_or(&[]);
    let loadable_end = loadable_ranges(reference_bytes)
        .iter()
        .map(|r| r.end)
        .max()
        .filter(|&end| end > 0)
        .unwrap_or(reference_bytes.len());
    let dictionary_of = |variant: usize, piece: &Piece| match reference {
        Some((r, _)) if r != variant && piece.loadable => Dictionary::Loadable,
        Some((r, _)) if r != variant => Dictionary::Whole,
        _ => Dictionary::None,
    };
    let dictionary_bytes = |dictionary: Dictionary| match dictionary {
        Dictionary::None => &[][..],
        Dictionary::Loadable => reference_bytes
            .get(..loadable_end)
            .unwrap_or(reference_bytes),
        Dictionary::Whole => reference_bytes,
    };

    // Every distinct variant's blocks, each with its dictionary.
    let jobs: Vec<(usize, Range<usize>, Dictionary)> = first_copy
        .iter()
        .enumerate()
        .filter(|&(i, &first)| first == i)
        .flat_map(|(i, _)| {
            pieces
                .get(i)
                .into_iter()
                .flatten()
                .map(move |piece| (i, piece.range.clone(), dictionary_of(i, piece)))
        })
        .collect();
    let level = match mode {
        Mode::ZstdAgainstReference(level) => level,
        _ => 0,
    };
    let prepare = |dictionary: Dictionary| -> Result<Option<ReferenceDictionary<'_>>> {
        if dictionary == Dictionary::None || !jobs.iter().any(|job| job.2 == dictionary) {
            return Ok(None);
        }
        ReferenceDictionary::new(dictionary_bytes(dictionary), level).map(Some)
    };
    let loadable_dictionary = prepare(Dictionary::Loadable)?;
    let whole_dictionary = prepare(Dictionary::Whole)?;
    let compressed = parallel_map(&jobs, threads, Compressor::new, |compressor, job| {
        let (variant, range, dictionary) = job;
        let bytes = images
            .get(*variant)
            .and_then(|bytes| bytes.get(range.clone()))
            .unwrap_or(&[]);
        let prepared = match dictionary {
            Dictionary::None => None,
            Dictionary::Loadable => loadable_dictionary.as_ref(),
            Dictionary::Whole => whole_dictionary.as_ref(),
        };
        compressor.compress(mode, bytes, prepared)
    })?;

    let mut stored: Vec<(Vec<u8>, Vec<BlockRecord>)> = vec![Default::default(); builds.len()];
    for ((variant, range, dictionary), output) in jobs.iter().zip(compressed) {
        let Some((payload, records)) = stored.get_mut(*variant) else {
            continue;
        };
        let bytes = images
            .get(*variant)
            .and_then(|bytes| bytes.get(range.clone()))
            .unwrap_or(&[]);
        records.push(BlockRecord {
            offset: range.start as u64,
            size: bytes.len() as u64,
            checksum: mgo_format::checksum(bytes),
            stored_offset: payload.len() as u64,
            stored_size: output.len() as u64,
            dictionary_size: dictionary_bytes(*dictionary).len() as u64,
        });
        payload.extend_from_slice(&output);
    }
    let reference_level = reference.map_or(0, |(_, (level, _))| *level);
    let mut encoded = Vec::with_capacity(builds.len());
    for ((build, &source), expanded) in builds.iter().zip(&first_copy).zip(&expanded) {
        let (payload, records) = stored
            .get(source)
            .cloned()
            .ok_or_else(|| fail("internal error: a variant lost its encoding"))?;
        let against = reference.is_some_and(|(r, _)| r != source);
        let reference = if against { reference_level } else { 0 };
        encoded.push(Encoded {
            size: expanded.image.len() as u64,
            sections: expanded.sections.clone(),
            ..entry(build, reference, Cow::Owned(payload), records)
        });
    }
    Ok(encoded)
}

#[cfg(test)]
mod tests {
    use super::blocks::{CHUNK_SIZE, FIRST_BLOCK, UNLOADED_CHUNK_SIZE};
    use super::*;
    use mgo_format::{BLOCK_RECORD_SIZE, Blocks, Table, write_blocks};

    #[test]
    fn modes_parse_and_bad_ones_name_the_valid_forms() {
        assert_eq!(Mode::parse(""), Ok(Mode::Raw));
        assert_eq!(Mode::parse("g1"), Ok(Mode::Deflate(1)));
        assert_eq!(Mode::parse("g9"), Ok(Mode::Deflate(9)));
        assert_eq!(Mode::parse("z1"), Ok(Mode::Zstd(1)));
        assert_eq!(Mode::parse("z22"), Ok(Mode::Zstd(22)));
        assert_eq!(Mode::parse("Z19"), Ok(Mode::ZstdAgainstReference(19)));
        assert_eq!(Mode::parse("lz4"), Ok(Mode::Lz4));
        for bad in ["g0", "g10", "z23", "Z0", "z01", "z+1", "Z", "x", "lz", "é1"] {
            let err = Mode::parse(bad).unwrap_err();
            assert!(err.to_string().contains(FORMS), "{bad}: {err}");
        }
    }

    /// Pseudo-executables: mostly shared bytes with some that differ, large
    /// enough for several chunks.
    fn fake_builds() -> Vec<(u8, Vec<u8>)> {
        fake_builds_of(CHUNK_SIZE * 2 + 12345)
    }

    fn fake_builds_of(size: usize) -> Vec<(u8, Vec<u8>)> {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let base: Vec<u8> = (0..size)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                // Compressible, but not trivially.
                if i % 3 == 0 {
                    (state % 7) as u8
                } else {
                    (i / 64) as u8
                }
            })
            .collect();
        (1..=4u8)
            .map(|level| {
                let mut bytes = base.clone();
                if level != 2 {
                    for at in (100..bytes.len()).step_by(50_000) {
                        bytes[at] = bytes[at].wrapping_add(level);
                    }
                }
                (level, bytes)
            })
            .collect()
    }

    fn decode(encoding: Encoding, stored: &[u8], size: usize, dictionary: &[u8]) -> Vec<u8> {
        decode_block(encoding, stored, size, dictionary).unwrap()
    }

    /// Lays `encoded` out as the bundle writer does, reads it back through
    /// the format's parser, decodes every variant and compares.
    fn assert_round_trip(builds: &[(u8, Vec<u8>)], encoded: &[Encoded], mode: Mode) {
        let variants: Vec<_> = encoded.iter().map(Encoded::as_stored).collect();
        let layout = mgo_format::layout(&variants, 0).unwrap();
        let mut segment = vec![0u8; layout.size as usize];
        segment[..layout.table().len()].copy_from_slice(layout.table());
        for placed in layout.placed() {
            let variant = &variants[placed.source];
            let at = placed.blocks_offset as usize;
            write_blocks(
                &mut segment[at..at + variant.blocks.len() * BLOCK_RECORD_SIZE],
                variant.blocks,
            );
            segment[placed.offset as usize..][..variant.stored.len()]
                .copy_from_slice(variant.stored);
        }
        let table = Table::parse(&segment, segment.len() as u64).unwrap();
        for (entry, (level, bytes)) in table.entries().iter().zip(builds) {
            assert_eq!(entry.level, *level);
            assert_eq!(entry.encoding, mode.encoding(), "{mode:?}");
            let reference = table.reference_of(entry).and_then(|r| {
                builds
                    .iter()
                    .find(|(level, _)| *level == r.level)
                    .map(|(_, bytes)| bytes.as_slice())
            });
            let expected_reference = matches!(mode, Mode::ZstdAgainstReference(_)) && *level != 4;
            assert_eq!(reference.is_some(), expected_reference, "{mode:?} v{level}");
            let blocks = Blocks::parse(&segment, entry, reference.map(|r| r.len() as u64)).unwrap();
            assert_eq!(blocks.len(), cut(bytes, &[]).len());
            let mut decoded = Vec::new();
            for i in 0..blocks.len() {
                let block = blocks.get(i);
                assert_eq!(block.offset as usize, decoded.len());
                let dictionary = reference.map_or(&[][..], |r| &r[..block.dictionary_size]);
                let out = decode(entry.encoding, block.stored, block.size, dictionary);
                assert_eq!(mgo_format::checksum(&out), block.checksum);
                decoded.extend_from_slice(&out);
            }
            assert!(decoded == *bytes, "{mode:?} v{level} does not round-trip");
            if entry.encoding != Encoding::Raw {
                assert!(
                    entry.stored_size < entry.size,
                    "{mode:?} v{level} did not shrink"
                );
            }
        }
    }

    #[test]
    fn every_codec_round_trips_and_ignores_the_thread_count() {
        let builds = fake_builds();
        for mode in [
            Mode::Raw,
            Mode::Deflate(6),
            Mode::Zstd(3),
            Mode::ZstdAgainstReference(3),
            Mode::ZstdAgainstReference(13),
            Mode::Lz4,
        ] {
            let one = encode(&builds, mode, 1).unwrap();
            let three = encode(&builds, mode, 3).unwrap();
            let stored = |e: &[Encoded]| -> Vec<Vec<u8>> {
                e.iter().map(|e| e.as_stored().stored.to_vec()).collect()
            };
            assert_eq!(stored(&one), stored(&three), "{mode:?}");
            assert_round_trip(&builds, &one, mode);
        }
    }

    /// Every string MGO_COMPRESS accepts names the mode it spells, and that
    /// mode writes variants that decode back (on small inputs, so that all
    /// 54 stay cheap; the integration tests run a representative set on
    /// real programs).
    #[test]
    fn every_mode_string_encodes_and_decodes() {
        let builds = fake_builds_of(48 * 1024);
        let mut strings: Vec<(String, Mode)> = (1..=9)
            .map(|n| (format!("g{n}"), Mode::Deflate(n)))
            .collect();
        strings.extend((1..=22).map(|n| (format!("z{n}"), Mode::Zstd(n))));
        strings.extend((1..=22).map(|n| (format!("Z{n}"), Mode::ZstdAgainstReference(n))));
        strings.push(("lz4".into(), Mode::Lz4));
        assert_eq!(strings.len(), 54);
        for (string, expected) in strings {
            let mode = Mode::parse(&string).unwrap();
            assert_eq!(mode, expected, "{string}");
            let encoded = encode(&builds, mode, 2).unwrap();
            assert_round_trip(&builds, &encoded, mode);
        }
    }

    #[test]
    fn identical_variants_are_encoded_and_stored_once() {
        let mut builds = fake_builds();
        builds[1].1 = builds[0].1.clone();
        builds[3].1 = builds[2].1.clone();
        for mode in [
            Mode::Zstd(1),
            Mode::ZstdAgainstReference(1),
            Mode::Lz4,
            Mode::Deflate(1),
        ] {
            let encoded = encode(&builds, mode, 2).unwrap();
            let variants: Vec<_> = encoded.iter().map(Encoded::as_stored).collect();
            let layout = mgo_format::layout(&variants, 0).unwrap();
            assert_eq!(layout.placed().len(), 2, "{mode:?}");
        }
    }

    #[test]
    fn against_a_reference_is_smaller_than_alone() {
        let builds = fake_builds();
        let total = |mode| -> usize {
            encode(&builds, mode, 2)
                .unwrap()
                .iter()
                .map(|e| e.as_stored().stored.len())
                .sum()
        };
        for level in [3, 19] {
            let alone = total(Mode::Zstd(level));
            let against = total(Mode::ZstdAgainstReference(level));
            assert!(against * 2 < alone, "level {level}: {against} vs {alone}");
        }
    }

    /// This test binary is an ELF executable with PT_LOAD segments: its
    /// blocks must start with one page, cut at every boundary of a
    /// segment's file pages, never exceed CHUNK_SIZE (UNLOADED_CHUNK_SIZE
    /// outside the segments), and tile it.
    #[test]
    fn blocks_are_cut_at_segment_boundaries() {
        let executable = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let loadable = loadable_ranges(&executable);
        assert!(loadable.len() >= 2, "{loadable:?}");
        let pieces = cut(&executable, &[]);
        assert_eq!(pieces[0].range, 0..FIRST_BLOCK);
        let mut at = 0;
        for piece in &pieces {
            assert_eq!(piece.range.start, at);
            let limit = if piece.loadable {
                CHUNK_SIZE
            } else {
                UNLOADED_CHUNK_SIZE
            };
            assert!(piece.range.len() <= limit && !piece.range.is_empty());
            at = piece.range.end;
            // Wholly inside or wholly outside every segment's file pages.
            for range in &loadable {
                let overlaps = piece.range.start < range.end && range.start < piece.range.end;
                let inside = range.start <= piece.range.start && piece.range.end <= range.end;
                assert!(!overlaps || inside, "{piece:?} straddles {range:?}");
            }
            assert_eq!(
                piece.loadable,
                loadable
                    .iter()
                    .any(|r| r.start < piece.range.end && piece.range.start < r.end)
            );
        }
        assert_eq!(at, executable.len());
        assert!(
            pieces.iter().any(|p| !p.loadable),
            "no symbols or debug info?"
        );
        // Not an ELF file: nothing is loadable; first page, then fixed
        // pieces.
        let plain = vec![7u8; UNLOADED_CHUNK_SIZE * 2];
        let ranges: Vec<Range<usize>> = cut(&plain, &[]).into_iter().map(|p| p.range).collect();
        assert_eq!(
            ranges,
            [
                0..FIRST_BLOCK,
                FIRST_BLOCK..FIRST_BLOCK + UNLOADED_CHUNK_SIZE,
                FIRST_BLOCK + UNLOADED_CHUNK_SIZE..2 * UNLOADED_CHUNK_SIZE
            ]
        );
        assert_eq!(cut(&[1, 2, 3], &[]).len(), 1);
    }

    /// In the Z modes, blocks the program's pages hold are compressed
    /// against the reference's loadable part only; the rest against all of
    /// it.
    #[test]
    fn loadable_blocks_use_only_the_references_loadable_part() {
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let mut other = exe.clone();
        let last = other.len() - 1;
        other[last] ^= 1;
        let builds = vec![(3u8, other), (4u8, exe.clone())];
        let encoded = encode(&builds, Mode::ZstdAgainstReference(1), 2).unwrap();
        let loadable_end = loadable_ranges(&exe).iter().map(|r| r.end).max().unwrap() as u64;
        let v3 = encoded[0].as_stored();
        assert_eq!(v3.reference, 4);
        let pieces = cut(&builds[0].1, &[]);
        for (block, piece) in v3.blocks.iter().zip(&pieces) {
            let expected = if piece.loadable {
                loadable_end
            } else {
                exe.len() as u64
            };
            assert_eq!(block.dictionary_size, expected, "{piece:?}");
        }
        assert!(
            encoded[1]
                .as_stored()
                .blocks
                .iter()
                .all(|b| b.dictionary_size == 0)
        );
        assert_round_trip(&builds, &encoded, Mode::ZstdAgainstReference(1));
    }
}
