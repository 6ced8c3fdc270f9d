//! Go's compressed DWARF, stored inflated (docs/FORMAT.md, "Inflated
//! sections").
//!
//! The linker zlib-compresses every `.debug_*` section; compressed bytes do
//! not compress again, and they differ between levels, so they are most of
//! what a compressed bundle stores. A section whose zlib stream
//! `mgo-goflate` re-creates bit for bit from its inflated bytes is stored
//! inflated instead; every other one stays as the linker wrote it. Checking
//! the re-encoding at build time is what makes the launcher's re-creation
//! exact; the variant's checksum covers the executable, so a wrong byte
//! could never go unnoticed anyway.

use super::parallel::parallel_map;
use crate::elf::Elf;
use crate::error::{Result, fail};
use mgo_format::SectionRecord;
use mgo_goflate::Encoder;
use std::borrow::Cow;
use std::ops::Range;

/// `Elf64_Chdr`: type, reserved, size, alignment.
const CHDR_SIZE: usize = 24;
const ELFCOMPRESS_ZLIB: u32 = 1;
/// What Go's zlib writer puts first at BestSpeed; other encoders (the
/// system linker's zlib, in a cgo build that links externally) write
/// another level, which cannot be the same stream.
const GO_ZLIB_HEADER: [u8; 2] = [0x78, 0x01];
/// DEFLATE never expands more than this, so a larger claimed size is a
/// damaged or hostile header, not worth the memory.
const MAX_RATIO: u64 = 1032;

/// An executable as a compressed bundle stores it.
pub struct Expanded<'a> {
    /// The executable with each section in `sections` inflated in place.
    pub image: Cow<'a, [u8]>,
    pub sections: Vec<SectionRecord>,
}

/// One compressed section's zlib stream and its inflated size.
struct Candidate {
    build: usize,
    stream: Range<usize>,
    inflated_size: usize,
}

/// The zlib streams of `executable`'s compressed sections that lie after
/// everything a segment loads, in file order.
fn candidates(executable: &[u8]) -> Vec<(Range<usize>, usize)> {
    let Some(elf) = Elf::parse(executable) else {
        return Vec::new();
    };
    // Starting a bundle maps only loadable bytes straight from the
    // decoded blocks; an inflated section there would move them.
    let loadable_end = elf
        .loadable_ranges()
        .iter()
        .map(|r| r.end)
        .max()
        .unwrap_or(0);
    let mut found: Vec<(Range<usize>, usize)> = elf
        .compressed_sections()
        .into_iter()
        .filter_map(|Range { start, end }| {
            let data = executable.get(start..end)?;
            let chdr = data.get(..CHDR_SIZE)?;
            let kind = u32::from_le_bytes(chdr.get(..4)?.try_into().ok()?);
            let inflated = u64::from_le_bytes(chdr.get(8..16)?.try_into().ok()?);
            let stream = start + CHDR_SIZE..end;
            let plausible = kind == ELFCOMPRESS_ZLIB
                && data.get(CHDR_SIZE..CHDR_SIZE + 2) == Some(&GO_ZLIB_HEADER[..])
                && stream.start >= loadable_end
                && inflated <= (stream.len() as u64).saturating_mul(MAX_RATIO);
            if !plausible {
                return None;
            }
            Some((stream, usize::try_from(inflated).ok()?))
        })
        .collect();
    found.sort_by_key(|(stream, _)| stream.start);
    // Overlapping sections would make no sense in a linker's output; keep
    // the first of any that do.
    let mut end = 0;
    found.retain(|(stream, _)| {
        let keep = stream.start >= end;
        if keep {
            end = stream.end;
        }
        keep
    });
    found
}

/// Inflates `stream` and deflates it again with Go's encoder; the inflated
/// bytes if that gives `stream` back.
fn reproducible(
    stream: &[u8],
    inflated_size: usize,
    state: &mut (Box<Encoder>, libdeflater::Decompressor, Vec<u8>),
) -> Option<Vec<u8>> {
    let (encoder, inflater, scratch) = state;
    let mut inflated = vec![0u8; inflated_size];
    let n = inflater.zlib_decompress(stream, &mut inflated).ok()?;
    if n != inflated_size {
        return None;
    }
    scratch.resize(stream.len(), 0);
    let len = encoder.zlib(&inflated, scratch)?;
    (len == stream.len() && scratch[..] == *stream).then_some(inflated)
}

/// Each build as a compressed bundle stores it, its sections checked on up
/// to `threads` threads.
pub fn expand_all(builds: &[(u8, Vec<u8>)], threads: usize) -> Result<Vec<Expanded<'_>>> {
    let jobs: Vec<Candidate> = builds
        .iter()
        .enumerate()
        .flat_map(|(build, (_, bytes))| {
            candidates(bytes)
                .into_iter()
                .map(move |(stream, inflated_size)| Candidate {
                    build,
                    stream,
                    inflated_size,
                })
        })
        .collect();
    // The largest first, so that no thread is left with a big one at the end.
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|&j| std::cmp::Reverse(jobs.get(j).map_or(0, |c| c.inflated_size)));
    let inflated = parallel_map(
        &order,
        threads,
        || {
            (
                Encoder::boxed(),
                libdeflater::Decompressor::new(),
                Vec::new(),
            )
        },
        |state, &j| {
            Ok(jobs.get(j).and_then(|c| {
                let stream = builds.get(c.build)?.1.get(c.stream.clone())?;
                reproducible(stream, c.inflated_size, state)
            }))
        },
    )?;
    let mut by_job: Vec<Option<Vec<u8>>> = vec![None; jobs.len()];
    for (&j, bytes) in order.iter().zip(inflated) {
        if let Some(slot) = by_job.get_mut(j) {
            *slot = bytes;
        }
    }
    let mut expanded = Vec::with_capacity(builds.len());
    for (b, (_, executable)) in builds.iter().enumerate() {
        let mine: Vec<(&Candidate, &Vec<u8>)> = jobs
            .iter()
            .zip(&by_job)
            .filter(|(c, _)| c.build == b)
            .filter_map(|(c, bytes)| Some((c, bytes.as_ref()?)))
            .collect();
        if mine.is_empty() {
            expanded.push(Expanded {
                image: Cow::Borrowed(&executable[..]),
                sections: Vec::new(),
            });
            continue;
        }
        let grown: usize = mine.iter().map(|(_, bytes)| bytes.len()).sum();
        let mut image = Vec::with_capacity(executable.len() + grown);
        let mut sections = Vec::with_capacity(mine.len());
        let mut copied = 0;
        for (candidate, bytes) in mine {
            let stream = &candidate.stream;
            image.extend_from_slice(executable.get(copied..stream.start).unwrap_or(&[]));
            sections.push(SectionRecord {
                file_offset: stream.start as u64,
                stream_size: stream.len() as u64,
                image_offset: image.len() as u64,
                inflated_size: bytes.len() as u64,
            });
            image.extend_from_slice(bytes);
            copied = stream.end;
        }
        image.extend_from_slice(executable.get(copied..).unwrap_or(&[]));
        expanded.push(Expanded {
            image: Cow::Owned(image),
            sections,
        });
    }
    Ok(expanded)
}

/// Re-creates the executable from its `image` by deflating each section
/// again, on up to `threads` threads; the caller checks the result against
/// the variant's checksum.
pub fn rebuild(image: &[u8], sections: &[SectionRecord], threads: usize) -> Result<Vec<u8>> {
    let streams = parallel_map(sections, threads, Encoder::boxed, |encoder, s| {
        let inflated = usize::try_from(s.image_offset)
            .ok()
            .zip(usize::try_from(s.inflated_size).ok())
            .and_then(|(at, len)| image.get(at..at.checked_add(len)?))
            .ok_or_else(|| fail("a section lies outside its variant"))?;
        let mut stream = vec![0u8; usize::try_from(s.stream_size)?];
        match encoder.zlib(inflated, &mut stream) {
            Some(len) if len == stream.len() => Ok(stream),
            _ => Err(fail(format!(
                "its section at offset {} does not deflate to its recorded size",
                s.file_offset
            ))),
        }
    })?;
    let mut file = Vec::with_capacity(image.len());
    let mut copied = 0usize;
    for (s, stream) in sections.iter().zip(streams) {
        let at = usize::try_from(s.image_offset)?;
        file.extend_from_slice(
            image
                .get(copied..at)
                .ok_or_else(|| fail("sections out of order"))?,
        );
        file.extend_from_slice(&stream);
        copied = at + s.inflated_size as usize;
    }
    file.extend_from_slice(image.get(copied..).unwrap_or(&[]));
    Ok(file)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// hello as `go build` writes it.
    pub(in crate::encode) fn hello() -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("hello");
        let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/hello");
        let status = std::process::Command::new("go")
            .args(["build", "-o"])
            .arg(&out)
            .arg(".")
            .current_dir(example)
            .status()
            .expect("run go: is the Go toolchain on PATH?");
        assert!(status.success());
        std::fs::read(out).unwrap()
    }

    #[test]
    fn sections_round_trip_and_a_stream_go_did_not_write_stays_as_it_is() {
        let original = hello();
        let found = candidates(&original);
        assert!(found.len() >= 5, "{} compressed sections", found.len());
        let builds = [(1, original.clone())];
        let expanded = expand_all(&builds, 2).unwrap();
        let sections = &expanded[0].sections;
        assert_eq!(sections.len(), found.len());
        assert!(expanded[0].image.len() > original.len());
        assert_eq!(rebuild(&expanded[0].image, sections, 2).unwrap(), original);

        // The same section deflated by another encoder (miniz at level 1,
        // whose header Go's also starts with): still valid zlib, but not
        // what Go's encoder gives, so it is kept compressed.
        let (stream, size) = found[1].clone();
        let mut inflated = vec![0u8; size];
        libdeflater::Decompressor::new()
            .zlib_decompress(&original[stream.clone()], &mut inflated)
            .unwrap();
        let mut other = libdeflater::Compressor::new(libdeflater::CompressionLvl::new(1).unwrap());
        let mut foreign = vec![0u8; other.zlib_compress_bound(size)];
        let len = other.zlib_compress(&inflated, &mut foreign).unwrap();
        foreign.truncate(len);
        foreign[..2].copy_from_slice(&GO_ZLIB_HEADER);
        assert!(foreign.len() <= stream.len(), "the other stream fits");
        assert_ne!(
            foreign[..],
            original[stream.start..stream.start + foreign.len()]
        );
        let mut patched = original.clone();
        patched[stream.start..stream.start + foreign.len()].copy_from_slice(&foreign);
        let builds = [(1, patched.clone())];
        let expanded = expand_all(&builds, 2).unwrap();
        let kept: Vec<u64> = expanded[0].sections.iter().map(|s| s.file_offset).collect();
        assert_eq!(kept.len(), found.len() - 1);
        assert!(!kept.contains(&(stream.start as u64)));
        assert_eq!(
            rebuild(&expanded[0].image, &expanded[0].sections, 1).unwrap(),
            patched
        );
    }
}
