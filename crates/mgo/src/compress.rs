//! MGO_COMPRESS: how the variants are stored (docs/FORMAT.md, "Encoded
//! variants"; docs/CLI.md, "MGO_COMPRESS").
//!
//! Each variant is cut into chunks of [`CHUNK_SIZE`] bytes and every chunk is
//! compressed on its own, so that the launcher can decode them on several
//! CPUs. The chunks are also what this side shares out among its threads;
//! since a chunk's bytes depend only on the chunk (and, in the `Z` modes, on
//! the reference variant), the output is the same whatever the number of
//! threads.

use mgo_format::{
    ChunkRecord, Encoding, StoredVariant, chunk_directory_size, write_chunk_directory,
};
use std::borrow::Cow;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Decoded bytes per chunk. Smaller chunks share the launcher's work out more
/// evenly and need smaller buffers there; larger ones compress better
/// (docs/DESIGN.md, "Chunks", gives the measurements behind this value).
pub const CHUNK_SIZE: usize = 1 << 20;

/// What `MGO_COMPRESS` asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Unset or empty: variants stored as they are.
    Raw,
    /// `gN`: DEFLATE at level N (1 to 9, as gzip's levels).
    Deflate(u8),
    /// `zN`: zstd at level N, each variant on its own.
    Zstd(i32),
    /// `ZN`: zstd at level N, other variants against a reference variant.
    ZstdAgainstReference(i32),
    /// `lz4`: LZ4 high-compression blocks, the fastest to decode.
    Lz4,
}

/// The accepted forms, for error messages and help.
pub const FORMS: &str = "g1..g9 (gzip/deflate), z1..z22 (zstd), Z1..Z22 (zstd, variants against each other), lz4 (fastest start), or empty for none";

/// The highest zstd level (zstd's `--ultra` -22).
const ZSTD_MAX_LEVEL: i32 = 22;

/// LZ4's highest high-compression level: slower to build, not to decode.
const LZ4_HC_LEVEL: i32 = 12;

impl Mode {
    /// Parses an `MGO_COMPRESS` value.
    pub fn parse(value: &str) -> Result<Self, String> {
        let level = |digits: &str, max: i32| {
            digits
                .parse::<i32>()
                .ok()
                .filter(|n| (1..=max).contains(n) && !digits.starts_with(['0', '+']))
        };
        let mode = match value.split_at_checked(1) {
            _ if value.is_empty() => Some(Self::Raw),
            _ if value == "lz4" => Some(Self::Lz4),
            Some(("g", digits)) => level(digits, 9).map(|n| Self::Deflate(n as u8)),
            Some(("z", digits)) => level(digits, ZSTD_MAX_LEVEL).map(Self::Zstd),
            Some(("Z", digits)) => level(digits, ZSTD_MAX_LEVEL).map(Self::ZstdAgainstReference),
            Some(_) | None => None,
        };
        mode.ok_or_else(|| format!("MGO_COMPRESS={value} is not a compression mode: use {FORMS}"))
    }

    /// The encoding of the stored variants.
    pub fn encoding(self) -> Encoding {
        match self {
            Self::Raw => Encoding::Raw,
            Self::Deflate(_) => Encoding::Deflate,
            Self::Zstd(_) | Self::ZstdAgainstReference(_) => Encoding::Zstd,
            Self::Lz4 => Encoding::Lz4,
        }
    }
}

/// One variant ready to be laid out.
pub struct Encoded<'a> {
    level: u8,
    encoding: Encoding,
    reference: u8,
    size: u64,
    checksum: u64,
    stored: Cow<'a, [u8]>,
}

impl Encoded<'_> {
    /// The view the format's layout takes.
    pub fn as_stored(&self) -> StoredVariant<'_> {
        StoredVariant {
            level: self.level,
            encoding: self.encoding,
            reference: self.reference,
            size: self.size,
            checksum: self.checksum,
            stored: &self.stored,
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

/// Encodes `builds` (level, executable), in ascending level order, with
/// `mode`, on up to `threads` threads.
pub fn encode<'a>(
    builds: &'a [(u8, Vec<u8>)],
    mode: Mode,
    threads: usize,
) -> Result<Vec<Encoded<'a>>, String> {
    let entry = |(level, bytes): &(u8, Vec<u8>), reference: u8, stored: Cow<'a, [u8]>| Encoded {
        level: *level,
        encoding: mode.encoding(),
        reference,
        size: bytes.len() as u64,
        checksum: mgo_format::checksum(bytes),
        stored,
    };
    if mode == Mode::Raw {
        return Ok(builds
            .iter()
            .map(|build| entry(build, 0, Cow::Borrowed(&build.1)))
            .collect());
    }

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
    let levels: Vec<u8> = builds.iter().map(|(level, _)| *level).collect();
    let reference = match mode {
        Mode::ZstdAgainstReference(_) => reference_level(&levels)
            .and_then(|level| levels.iter().position(|&l| l == level))
            .and_then(|i| first_copy.get(i).copied())
            .and_then(|r| builds.get(r).map(|build| (r, build))),
        _ => None,
    };
    // Variants to encode: the reference (or every variant) first, then those
    // compressed against it, which need its prepared dictionary.
    let distinct: Vec<usize> = first_copy
        .iter()
        .enumerate()
        .filter(|&(i, &first)| first == i)
        .map(|(i, _)| i)
        .collect();
    let (alone, against): (Vec<usize>, Vec<usize>) = distinct
        .iter()
        .partition(|&&i| reference.is_none_or(|(r, _)| r == i));

    let mut compressed: Vec<Vec<Vec<u8>>> = vec![Vec::new(); builds.len()];
    compress_chunks(builds, &alone, mode, threads, None, &mut compressed)?;
    if let (Some((_, (_, reference_bytes))), false) = (reference, against.is_empty()) {
        let Mode::ZstdAgainstReference(level) = mode else {
            unreachable!("a reference exists in the Z modes only")
        };
        let dictionary = ReferenceDictionary::new(reference_bytes, level)?;
        compress_chunks(
            builds,
            &against,
            mode,
            threads,
            Some(&dictionary),
            &mut compressed,
        )?;
    }

    let mut encoded = Vec::with_capacity(builds.len());
    for (build, &source) in builds.iter().zip(&first_copy) {
        let (source_bytes, chunks) = match (builds.get(source), compressed.get(source)) {
            (Some((_, bytes)), Some(chunks)) => (bytes, chunks),
            _ => return Err("internal error: a variant lost its encoding".into()),
        };
        let against = reference.filter(|&(r, _)| r != source);
        let directory = chunk_directory_size(chunks.len());
        let mut records = Vec::with_capacity(chunks.len());
        let mut offset = directory as u64;
        for (chunk, decoded) in chunks.iter().zip(chunks_of(source_bytes)) {
            records.push(ChunkRecord {
                stored_offset: offset,
                stored_size: chunk.len() as u64,
                checksum: mgo_format::checksum(decoded),
                dictionary_offset: 0,
                dictionary_size: against.map_or(0, |(_, (_, r))| r.len() as u64),
            });
            offset += chunk.len() as u64;
        }
        let mut payload = vec![0u8; directory];
        write_chunk_directory(&mut payload, CHUNK_SIZE as u32, &records);
        for chunk in chunks {
            payload.extend_from_slice(chunk);
        }
        let reference_level = against.map_or(0, |(_, (level, _))| *level);
        encoded.push(entry(build, reference_level, Cow::Owned(payload)));
    }
    Ok(encoded)
}

/// From this zstd level on (the binary-tree match finders), chunks are
/// compressed against a dictionary prepared once from the reference: those
/// finders see the whole reference, and loading it for every chunk would cost
/// as much as compressing it each time. Below it, the fast match finders only
/// index the reference's last window, so each chunk instead gets the
/// reference as a prefix and long-distance matching, which indexes all of it
/// quickly (measured on cmd/go: v3 against v4 at level 3, 11.1 MB without
/// long matching, 5.6 MB with it).
const PREPARED_DICTIONARY_LEVEL: i32 = 13;

/// The chunks `bytes` is cut into; nothing at all still makes one (empty) chunk.
fn chunks_of(bytes: &[u8]) -> Vec<&[u8]> {
    let mut chunks: Vec<&[u8]> = bytes.chunks(CHUNK_SIZE).collect();
    if chunks.is_empty() {
        chunks.push(&[]);
    }
    chunks
}

/// Compresses every chunk of the `variants` (indices into `builds`) on up to
/// `threads` threads and appends them, in order, to `compressed[variant]`.
fn compress_chunks<'d>(
    builds: &[(u8, Vec<u8>)],
    variants: &[usize],
    mode: Mode,
    threads: usize,
    dictionary: Option<&'d ReferenceDictionary<'d>>,
    compressed: &mut [Vec<Vec<u8>>],
) -> Result<(), String> {
    let jobs: Vec<(usize, &[u8])> = variants
        .iter()
        .filter_map(|&v| builds.get(v).map(|(_, bytes)| (v, bytes)))
        .flat_map(|(v, bytes)| chunks_of(bytes).into_iter().map(move |chunk| (v, chunk)))
        .collect();
    let outputs = parallel_map(
        &jobs,
        threads,
        Compressor::new,
        |compressor, &(_, chunk)| compressor.compress(mode, chunk, dictionary),
    )?;
    for (&(v, _), output) in jobs.iter().zip(outputs) {
        if let Some(list) = compressed.get_mut(v) {
            list.push(output);
        }
    }
    Ok(())
}

/// The reference variant, as every chunk compressed against it sees it.
struct ReferenceDictionary<'a> {
    bytes: &'a [u8],
    prepared: Option<zstd_safe::CDict<'static>>,
    /// Window that reaches from any chunk back to the reference's start.
    window_log: u32,
}

impl<'a> ReferenceDictionary<'a> {
    fn new(reference: &'a [u8], level: i32) -> Result<Self, String> {
        let prepared = if level >= PREPARED_DICTIONARY_LEVEL {
            Some(
                zstd_safe::CDict::try_create(reference, level)
                    .ok_or("zstd could not prepare the reference variant as a dictionary")?,
            )
        } else {
            None
        };
        let reach = (reference.len() + CHUNK_SIZE).next_power_of_two();
        Ok(Self {
            bytes: reference,
            prepared,
            window_log: reach.trailing_zeros().clamp(10, 30),
        })
    }
}

/// A thread's compression state, reused for all its chunks.
struct Compressor<'d> {
    zstd: Option<zstd_safe::CCtx<'d>>,
    deflate: Option<(u8, libdeflater::Compressor)>,
}

impl<'d> Compressor<'d> {
    fn new() -> Self {
        Self {
            zstd: None,
            deflate: None,
        }
    }

    fn compress(
        &mut self,
        mode: Mode,
        chunk: &[u8],
        reference: Option<&'d ReferenceDictionary<'d>>,
    ) -> Result<Vec<u8>, String> {
        match mode {
            Mode::Raw => Ok(chunk.to_vec()),
            Mode::Deflate(level) => {
                let reuse = matches!(&self.deflate, Some((l, _)) if *l == level);
                if !reuse {
                    let lvl = libdeflater::CompressionLvl::new(i32::from(level))
                        .map_err(|_| format!("deflate level {level} is not supported"))?;
                    self.deflate = Some((level, libdeflater::Compressor::new(lvl)));
                }
                let (_, compressor) = self.deflate.as_mut().ok_or("no deflate compressor")?;
                let mut out = vec![0u8; compressor.deflate_compress_bound(chunk.len())];
                let len = compressor
                    .deflate_compress(chunk, &mut out)
                    .map_err(|e| format!("deflate compression failed: {e}"))?;
                out.truncate(len);
                Ok(out)
            }
            Mode::Lz4 => {
                let mut out =
                    vec![0u8; lz4::block::compress_bound(chunk.len()).map_err(|e| e.to_string())?];
                let len = lz4::block::compress_to_buffer(
                    chunk,
                    Some(lz4::block::CompressionMode::HIGHCOMPRESSION(LZ4_HC_LEVEL)),
                    false,
                    &mut out,
                )
                .map_err(|e| format!("LZ4 compression failed: {e}"))?;
                out.truncate(len);
                Ok(out)
            }
            Mode::Zstd(level) | Mode::ZstdAgainstReference(level) => {
                let context = self.zstd.get_or_insert_with(zstd_safe::CCtx::create);
                let zstd_error = |code: usize| {
                    format!(
                        "zstd compression failed: {}",
                        zstd_safe::get_error_name(code)
                    )
                };
                use zstd_safe::CParameter as P;
                context
                    .reset(zstd_safe::ResetDirective::SessionAndParameters)
                    .map_err(zstd_error)?;
                for parameter in [
                    P::CompressionLevel(level),
                    P::ContentSizeFlag(true),
                    P::ChecksumFlag(false),
                    P::DictIdFlag(false),
                ] {
                    context.set_parameter(parameter).map_err(zstd_error)?;
                }
                if let Some(reference) = reference {
                    context
                        .set_parameter(P::WindowLog(reference.window_log))
                        .map_err(zstd_error)?;
                    match &reference.prepared {
                        Some(prepared) => {
                            context
                                .set_parameter(P::ForceAttachDict(
                                    zstd_safe::DictAttachPref::ForceAttach,
                                ))
                                .map_err(zstd_error)?;
                            context.ref_cdict(prepared).map_err(zstd_error)?;
                        }
                        None => {
                            context
                                .set_parameter(P::EnableLongDistanceMatching(true))
                                .map_err(zstd_error)?;
                        }
                    }
                }
                let mut out = Vec::with_capacity(zstd_safe::compress_bound(chunk.len()));
                if let Some(ReferenceDictionary {
                    bytes,
                    prepared: None,
                    ..
                }) = reference
                {
                    // Only valid for the next frame, so set per chunk.
                    context.ref_prefix(bytes).map_err(zstd_error)?;
                }
                context.compress2(&mut out, chunk).map_err(zstd_error)?;
                Ok(out)
            }
        }
    }
}

/// Runs `job(state, item)` for every item on up to `threads` threads, each
/// with its own `state`, and returns the results in item order.
fn parallel_map<I: Sync, S, T: Send>(
    items: &[I],
    threads: usize,
    state: impl Fn() -> S + Sync,
    job: impl Fn(&mut S, &I) -> Result<T, String> + Sync,
) -> Result<Vec<T>, String> {
    let slots: Vec<Mutex<Option<Result<T, String>>>> =
        items.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, items.len().max(1)) {
            scope.spawn(|| {
                let mut state = state();
                loop {
                    let j = next.fetch_add(1, Ordering::Relaxed);
                    let (Some(item), Some(slot)) = (items.get(j), slots.get(j)) else {
                        break;
                    };
                    let result = job(&mut state, item);
                    let failed = result.is_err();
                    *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
                    if failed {
                        // Stop everyone: the first error is reported.
                        next.store(items.len(), Ordering::Relaxed);
                    }
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .unwrap_or_else(|| Err("compression stopped after an error".into()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mgo_format::{Chunks, Table};

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
            assert!(err.contains(FORMS), "{bad}: {err}");
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

    /// Decodes a chunk as the launcher does (zstd with the reference as a
    /// raw-content dictionary, or the other codecs' own decoders).
    fn decode(encoding: Encoding, stored: &[u8], size: usize, dictionary: &[u8]) -> Vec<u8> {
        match encoding {
            Encoding::Zstd => {
                let mut context = zstd_safe::DCtx::create();
                let mut out = Vec::with_capacity(size);
                context
                    .decompress_using_dict(&mut out, stored, dictionary)
                    .unwrap();
                out
            }
            Encoding::Deflate => {
                let mut out = vec![0u8; size];
                let n = libdeflater::Decompressor::new()
                    .deflate_decompress(stored, &mut out)
                    .unwrap();
                out.truncate(n);
                out
            }
            Encoding::Lz4 => lz4::block::decompress(stored, Some(size as i32)).unwrap(),
            Encoding::Raw => stored.to_vec(),
        }
    }

    /// Lays `encoded` out as the bundle writer does, reads it back through
    /// the format's parser, decodes every variant and compares.
    fn assert_round_trip(builds: &[(u8, Vec<u8>)], encoded: &[Encoded], mode: Mode) {
        let variants: Vec<_> = encoded.iter().map(Encoded::as_stored).collect();
        let layout = mgo_format::layout(&variants).unwrap();
        let mut segment = vec![0u8; layout.size as usize];
        segment[..layout.table().len()].copy_from_slice(layout.table());
        for placed in layout.placed() {
            let bytes = variants[placed.source].stored;
            segment[placed.offset as usize..][..bytes.len()].copy_from_slice(bytes);
        }
        let table = Table::parse(&segment, segment.len() as u64).unwrap();
        let stored_bytes =
            |e: &mgo_format::Entry| &segment[e.offset as usize..][..e.stored_size as usize];
        for (entry, (level, bytes)) in table.entries().iter().zip(builds) {
            assert_eq!(entry.level, *level);
            assert_eq!(entry.encoding, mode.encoding(), "{mode:?}");
            if entry.encoding == Encoding::Raw {
                assert_eq!(stored_bytes(entry), &bytes[..]);
                continue;
            }
            let reference = table
                .reference_of(entry)
                .map(|r| builds[usize::from(r.level) - 1].1.as_slice());
            let expected_reference = matches!(mode, Mode::ZstdAgainstReference(_)) && *level != 4;
            assert_eq!(reference.is_some(), expected_reference, "{mode:?} v{level}");
            let chunks = Chunks::parse(
                stored_bytes(entry),
                entry,
                reference.map(|r| r.len() as u64),
            )
            .unwrap();
            assert_eq!(chunks.len(), bytes.len().div_ceil(CHUNK_SIZE));
            let mut decoded = Vec::new();
            for i in 0..chunks.len() {
                let chunk = chunks.get(i);
                let dictionary = reference.map_or(&[][..], |r| &r[chunk.dictionary.clone()]);
                let out = decode(entry.encoding, chunk.stored, chunk.size, dictionary);
                assert_eq!(mgo_format::checksum(&out), chunk.checksum);
                decoded.extend_from_slice(&out);
            }
            assert!(decoded == *bytes, "{mode:?} v{level} does not round-trip");
            assert!(
                entry.stored_size < entry.size,
                "{mode:?} v{level} did not shrink"
            );
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
            let layout = mgo_format::layout(&variants).unwrap();
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
}
