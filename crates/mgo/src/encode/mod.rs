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
//!
//! [`encode`] goes step by step: [`first_copies`] (identical builds are
//! encoded once), [`images`] (DWARF inflated where the mode says so),
//! [`Reference::of`] (what the `Z` modes compress against), [`plan_jobs`]
//! (every block, and the dictionaries to prepare first), [`compress_jobs`]
//! (on every thread) and [`assemble`].

mod blocks;
mod codec;
pub mod dwarf;
mod mode;
mod parallel;
mod zstd;

use blocks::{Piece, cut, loadable_ranges};
pub use codec::decode_block;
use codec::{Compressor, ReferenceDictionary};
use dwarf::Expanded;
use mode::Codec;
pub use mode::{FORMS, Mode};
use parallel::parallel_map;

use crate::error::{Result, fail};
use mgo_format::{BlockRecord, Encoding, SectionRecord, StoredVariant};
use std::borrow::Cow;
use std::ops::Range;
use std::sync::OnceLock;

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

/// Encodes `builds` (level, executable), in ascending level order, with
/// `mode`, on up to `threads` threads.
pub fn encode<'a>(
    builds: &'a [(u8, Vec<u8>)],
    mode: Mode,
    threads: usize,
) -> Result<Vec<Encoded<'a>>> {
    if mode.codec() == Codec::Raw {
        return Ok(stored_as_they_are(builds));
    }
    let copies = first_copies(builds);
    let images = images(builds, mode, threads)?;
    let reference = if mode.uses_reference() {
        Reference::of(builds, &copies, &images)
    } else {
        None
    };
    let jobs = plan_jobs(&images, &copies, reference.as_ref());
    let outputs = compress_jobs(mode.codec(), &images, &jobs, reference.as_ref(), threads)?;
    assemble(
        mode,
        builds,
        &copies,
        &images,
        &jobs,
        outputs,
        reference.as_ref(),
    )
}

/// For each build, the index of the first one with the same bytes (its
/// own if none before it): identical executables are encoded once, and
/// the layout then stores them once.
fn first_copies(builds: &[(u8, Vec<u8>)]) -> Vec<usize> {
    builds
        .iter()
        .enumerate()
        .map(|(i, (_, bytes))| {
            builds
                .iter()
                .position(|(_, other)| other == bytes)
                .unwrap_or(i)
        })
        .collect()
}

/// Without compression: each build as it is, its blocks only checksummed.
fn stored_as_they_are(builds: &[(u8, Vec<u8>)]) -> Vec<Encoded<'_>> {
    builds
        .iter()
        .map(|(level, bytes)| {
            let blocks = cut(bytes, &[])
                .iter()
                .map(|piece| {
                    let block = bytes.get(piece.range.clone()).unwrap_or(&[]);
                    BlockRecord {
                        offset: piece.range.start as u64,
                        size: block.len() as u64,
                        checksum: mgo_format::checksum(block),
                        stored_offset: piece.range.start as u64,
                        stored_size: block.len() as u64,
                        dictionary_size: 0,
                    }
                })
                .collect();
            Encoded {
                level: *level,
                encoding: Encoding::Raw,
                reference: 0,
                size: bytes.len() as u64,
                checksum: mgo_format::checksum(bytes),
                stored: Cow::Borrowed(&bytes[..]),
                blocks,
                sections: Vec::new(),
            }
        })
        .collect()
}

/// What each build's blocks tile: the build with its reproducible
/// compressed DWARF inflated, if the mode stores it so, which the
/// compressor can then compress across levels (docs/FORMAT.md, "Inflated
/// sections"); else the build as it is.
fn images(builds: &[(u8, Vec<u8>)], mode: Mode, threads: usize) -> Result<Vec<Expanded<'_>>> {
    if mode.inflates_dwarf() {
        return dwarf::expand_all(builds, threads);
    }
    Ok(builds
        .iter()
        .map(|(_, bytes)| Expanded {
            image: Cow::Borrowed(&bytes[..]),
            sections: Vec::new(),
        })
        .collect())
}

/// The variant that the others are compressed against in the `Z` modes.
struct Reference<'i> {
    /// Its index among the builds.
    variant: usize,
    level: u8,
    image: &'i [u8],
    /// Where its last segment's file pages end (0 if it is not an ELF
    /// executable).
    loadable_end: usize,
}

/// The two dictionaries of the reference (docs/FORMAT.md, "What mgo
/// writes"): a block that a segment maps is compressed against the
/// reference's loadable part only, so that a mapped start decodes no more
/// of the reference than that; every other block (DWARF, symbols) against
/// the whole reference, of which the rest, after the loadable part, is
/// what resembles it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    Loadable,
    Rest,
}

impl<'i> Reference<'i> {
    /// The highest level's variant, always v4: a v4 CPU (every AVX-512
    /// server CPU: Intel Xeon since Skylake-SP, AMD since Zen 4) then decodes
    /// one variant only; a v3 CPU decodes v4 and then a small difference,
    /// since v3 and v4 builds of a Go program are nearly the same code
    /// (docs/DESIGN.md has the measurements).
    fn of(builds: &[(u8, Vec<u8>)], copies: &[usize], images: &'i [Expanded<'_>]) -> Option<Self> {
        let variant = *copies.get(builds.len().checked_sub(1)?)?;
        let level = builds.get(variant)?.0;
        let image: &[u8] = &images.get(variant)?.image;
        let loadable_end = loadable_ranges(image)
            .iter()
            .map(|r| r.end)
            .max()
            .unwrap_or(0);
        Some(Self {
            variant,
            level,
            image,
            loadable_end,
        })
    }

    /// A block's dictionary as the format records it: the first
    /// `dictionary_size` bytes of the reference.
    fn dictionary(&self, part: Part) -> &'i [u8] {
        match part {
            Part::Loadable => self.image.get(..self.loadable_end).unwrap_or(self.image),
            Part::Rest => self.image,
        }
    }

    /// Where the part of that dictionary that resembles the blocks starts.
    fn similar_from(&self, part: Part) -> usize {
        match part {
            Part::Loadable => 0,
            Part::Rest => self.loadable_end,
        }
    }
}

/// One unit of the compressors' work.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Job {
    /// Index a part of the reference before any block needs it.
    Prepare(Part),
    /// Compress one block of a distinct variant.
    Block {
        variant: usize,
        range: Range<usize>,
        part: Option<Part>,
    },
}

/// Every block of every distinct variant, with what of the reference it is
/// compressed against; first the dictionaries that they need, then the
/// reference's own blocks, which need none, so that all threads have work
/// while the dictionaries are prepared.
fn plan_jobs(images: &[Expanded], copies: &[usize], reference: Option<&Reference>) -> Vec<Job> {
    let reference_variant = reference.map(|r| r.variant);
    let mut order: Vec<usize> = (0..images.len())
        .filter(|&i| copies.get(i) == Some(&i))
        .collect();
    // The reference first (a stable sort keeps the rest in level order).
    order.sort_by_key(|&i| Some(i) != reference_variant);
    let part_of = |variant: usize, piece: &Piece| {
        let reference = reference.filter(|r| r.variant != variant)?;
        let part = if piece.loadable {
            Part::Loadable
        } else {
            Part::Rest
        };
        // An empty part is no dictionary at all.
        (reference.dictionary(part).len() > reference.similar_from(part)).then_some(part)
    };
    let blocks: Vec<Job> = order
        .into_iter()
        .flat_map(|variant| {
            let image = images.get(variant).map_or(&[][..], |e| &e.image[..]);
            let sections = images.get(variant).map_or(&[][..], |e| &e.sections[..]);
            cut(image, sections)
                .into_iter()
                .map(move |piece| Job::Block {
                    variant,
                    part: part_of(variant, &piece),
                    range: piece.range,
                })
        })
        .collect();
    let needed = |part| {
        blocks
            .iter()
            .any(|job| matches!(job, Job::Block { part: Some(p), .. } if *p == part))
    };
    let mut jobs: Vec<Job> = [Part::Loadable, Part::Rest]
        .into_iter()
        .filter(|&part| needed(part))
        .map(Job::Prepare)
        .collect();
    jobs.extend(blocks);
    jobs
}

/// Runs `jobs` on up to `threads` threads: each block's stored bytes, in
/// job order (empty for a `Prepare`). A part of the reference is indexed
/// once, by the first job that needs it; any other job that needs it
/// meanwhile waits.
fn compress_jobs(
    codec: Codec,
    images: &[Expanded],
    jobs: &[Job],
    reference: Option<&Reference>,
    threads: usize,
) -> Result<Vec<Vec<u8>>> {
    let level = match codec {
        Codec::Zstd(level) => level,
        _ => 0,
    };
    // [loadable, rest] at `level`, then at the floor level.
    let slots: [OnceLock<std::result::Result<ReferenceDictionary, String>>; 4] = Default::default();
    let dictionary_at = |part: Part, floor: bool| -> Result<&ReferenceDictionary> {
        let reference = reference.ok_or_else(|| fail("internal error: no reference"))?;
        let index = usize::from(part == Part::Rest) + 2 * usize::from(floor);
        let at = if floor { FLOOR_LEVEL } else { level };
        slots
            .get(index)
            .ok_or_else(|| fail("internal error: no dictionary slot"))?
            .get_or_init(|| {
                let (dictionary, similar_from) =
                    (reference.dictionary(part), reference.similar_from(part));
                ReferenceDictionary::new(dictionary, similar_from, at).map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|message| fail(message.clone()))
    };
    let dictionary = |part: Part| dictionary_at(part, false);
    parallel_map(
        jobs,
        threads,
        Compressor::new,
        |compressor, job| match job {
            Job::Prepare(part) => dictionary(*part).map(|_| Vec::new()),
            Job::Block {
                variant,
                range,
                part,
            } => {
                let block = images
                    .get(*variant)
                    .and_then(|e| e.image.get(range.clone()))
                    .ok_or_else(|| fail("internal error: a block outside its variant"))?;
                let stored =
                    compressor.compress(codec, block, part.map(dictionary).transpose()?)?;
                if level <= FLOOR_LEVEL {
                    return Ok(stored);
                }
                let floor = part.map(|p| dictionary_at(p, true)).transpose()?;
                let at_floor = compressor.compress(Codec::Zstd(FLOOR_LEVEL), block, floor)?;
                Ok(if at_floor.len() < stored.len() {
                    at_floor
                } else {
                    stored
                })
            }
        },
    )
}

/// The zstd level no higher level may do worse than: from level 5 on, each
/// block is compressed at this level as well, and the smaller frame kept
/// (it decodes the same way). zstd's greedy and lazy match finders of
/// levels 5 to 7 can lose to level 4's double-fast one against a reference:
/// hello's Z5 bundle was 3.8% and Z6 2.7% larger than Z4. Costs one fast
/// compression per block: +75% for Z5 on cmd/go, nothing to speak of at
/// Z19.
const FLOOR_LEVEL: i32 = 4;

/// Each build's entry: its distinct variant's blocks and their records, in
/// order.
fn assemble<'a>(
    mode: Mode,
    builds: &'a [(u8, Vec<u8>)],
    copies: &[usize],
    images: &[Expanded],
    jobs: &[Job],
    outputs: Vec<Vec<u8>>,
    reference: Option<&Reference>,
) -> Result<Vec<Encoded<'a>>> {
    let mut stored: Vec<(Vec<u8>, Vec<BlockRecord>)> = vec![Default::default(); builds.len()];
    for (job, output) in jobs.iter().zip(outputs) {
        let Job::Block {
            variant,
            range,
            part,
        } = job
        else {
            continue;
        };
        let (Some((payload, records)), Some(image)) =
            (stored.get_mut(*variant), images.get(*variant))
        else {
            continue;
        };
        let block = image.image.get(range.clone()).unwrap_or(&[]);
        let dictionary_size = part
            .zip(reference)
            .map_or(0, |(part, reference)| reference.dictionary(part).len());
        records.push(BlockRecord {
            offset: range.start as u64,
            size: block.len() as u64,
            checksum: mgo_format::checksum(block),
            stored_offset: payload.len() as u64,
            stored_size: output.len() as u64,
            dictionary_size: dictionary_size as u64,
        });
        payload.extend_from_slice(&output);
    }
    let mut encoded = Vec::with_capacity(builds.len());
    for (((level, bytes), &source), image) in builds.iter().zip(copies).zip(images) {
        let (payload, blocks) = stored
            .get(source)
            .cloned()
            .ok_or_else(|| fail("internal error: a variant lost its encoding"))?;
        let reference = match reference {
            Some(r) if r.variant != source => r.level,
            _ => 0,
        };
        encoded.push(Encoded {
            level: *level,
            encoding: mode.encoding(),
            reference,
            size: image.image.len() as u64,
            checksum: mgo_format::checksum(bytes),
            stored: Cow::Owned(payload),
            blocks,
            sections: image.sections.clone(),
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

    /// What each mode implies, as the rest of mgo asks it.
    #[test]
    fn modes_say_what_they_imply() {
        use mgo_format::Encoding as E;
        for (mode, encoding, reference, dwarf) in [
            (Mode::Raw, E::Raw, false, false),
            (Mode::Deflate(9), E::Deflate, false, true),
            (Mode::Zstd(19), E::Zstd, false, true),
            (Mode::ZstdAgainstReference(3), E::Zstd, true, true),
            (Mode::Lz4, E::Lz4, false, false),
        ] {
            assert_eq!(mode.encoding(), encoding, "{mode:?}");
            assert_eq!(mode.uses_reference(), reference, "{mode:?}");
            assert_eq!(mode.inflates_dwarf(), dwarf, "{mode:?}");
            // Every mode has a launcher, with Go's encoder where its
            // bundles may need one.
            for inflated in [false, dwarf] {
                let launcher = crate::bundle::launchers::for_bundle(encoding, inflated).unwrap();
                let identity = crate::bundle::read::identity_in(launcher).unwrap();
                assert_eq!(
                    identity.ends_with("+dwarf"),
                    inflated,
                    "{mode:?}: {identity}"
                );
            }
        }
        assert_eq!(Mode::Deflate(9).codec(), Codec::Deflate(9));
        assert_eq!(Mode::ZstdAgainstReference(19).codec(), Codec::Zstd(19));
        assert_eq!(Mode::Lz4.codec(), Codec::Lz4(12));
    }

    /// Go's DWARF is stored inflated where the mode says so, and as Go
    /// wrote it elsewhere.
    #[test]
    fn dwarf_is_inflated_where_the_mode_says_so() {
        let builds = vec![(1u8, dwarf::tests::hello())];
        for mode in [Mode::Raw, Mode::Deflate(1), Mode::Zstd(1), Mode::Lz4] {
            let encoded = encode(&builds, mode, 2).unwrap();
            assert_eq!(
                !encoded[0].sections().is_empty(),
                mode.inflates_dwarf(),
                "{mode:?}"
            );
            let grown = encoded[0].as_stored().size > builds[0].1.len() as u64;
            assert_eq!(grown, mode.inflates_dwarf(), "{mode:?}");
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
