//! Re-creating the exact executable of a variant whose compressed DWARF
//! the bundle stores inflated (docs/FORMAT.md, "Inflated sections"), for
//! the memfd start and `MGODEBUG=extract`. The mapped start never needs
//! it: nothing it maps lies in those sections.

use crate::bundle::Bundle;
use crate::fail::Failure;
use crate::{decode, sys, work};
use mgo_format::{Entry, MAX_SECTIONS};
use mgo_goflate::Encoder;

/// Below this many inflated bytes, one thread deflates them all (Go's
/// level 1 runs at about 100 MB/s, so 1 MiB takes about 10 ms).
const DEFLATE_PARALLEL_MIN: u64 = 1 << 20;

/// The executable, decoded, re-deflated where the bundle keeps sections
/// inflated, and checked against the variant's checksum.
pub fn file(bundle: &Bundle, entry: &Entry) -> Result<sys::Mapping, Failure> {
    let level = entry.level;
    let damaged = |why: &'static [u8]| Failure::Damaged(level, why);
    let blocks = bundle.blocks(entry)?;
    let sections = bundle.sections(entry)?;
    let image_size = entry.size;
    let first = sections.first_image_offset(image_size);
    // Blocks that end before the first section go straight where the file
    // has them; the rest, from `tail_start` on, to a buffer of their own.
    let tail_start = (0..blocks.len())
        .map(|i| blocks.get(i))
        .find(|b| b.offset + b.size as u64 > first)
        .map_or(image_size, |b| b.offset);
    // The directory's rules put `first` (where image and file part) within
    // the file.
    let file_size = sections.file_size();
    let file = sys::map_anonymous(file_size as usize, true).map_err(Failure::no_memory)?;
    let tail = sys::map_anonymous((image_size - tail_start).max(1) as usize, true)
        .map_err(Failure::no_memory)?;
    let (file_base, tail_base) = (file.base() as usize, tail.base() as usize);

    let mut reference = decode::Reference::of(bundle, entry)?;
    let dictionary = decode::dictionary_needed(&blocks, &|_| true);
    let dictionary = reference.prefix(dictionary)?;
    // SAFETY: blocks tile the image without overlapping; those that end by
    // `first` (at most the file's size) fit in `file` at their own offset,
    // the others in `tail`, which holds the image from `tail_start` on.
    unsafe {
        decode::into(&blocks, entry, 0..blocks.len(), dictionary, &|offset| {
            if offset < tail_start {
                file_base + offset as usize
            } else {
                tail_base + (offset - tail_start) as usize
            }
        })?;
    }
    drop(reference);

    // The largest sections first, so that no runner is left with a big
    // one at the end.
    let count = sections.len();
    let mut order = [0u8; MAX_SECTIONS as usize];
    for (i, slot) in order.iter_mut().enumerate().take(count) {
        *slot = i as u8;
    }
    let order = order.get_mut(..count).unwrap_or(&mut []);
    // At most 64 items: an insertion sort is smaller than core's sort.
    let size_of = |i: u8| sections.get(usize::from(i)).inflated_size;
    for i in 1..order.len() {
        let mut j = i;
        while j > 0
            && size_of(order.get(j - 1).copied().unwrap_or(0))
                < size_of(order.get(j).copied().unwrap_or(0))
        {
            order.swap(j - 1, j);
            j -= 1;
        }
    }
    let inflated: u64 = (0..count).map(|i| sections.get(i).inflated_size).sum();
    let tail_bytes = tail.bytes();
    work::for_each(
        count,
        work::runners(count, inflated, DEFLATE_PARALLEL_MIN),
        &|_| true,
        &|| sys::map_anonymous(Encoder::SIZE, false).map_err(Failure::no_memory),
        &|memory, i| {
            let encoder = Encoder::in_memory(memory.bytes_mut()).ok_or(Failure::NoMemory)?;
            let section = sections.get(usize::from(order.get(i).copied().unwrap_or(0)));
            let input = (section.image_offset.checked_sub(tail_start))
                .and_then(|at| tail_bytes.get(at as usize..))
                .and_then(|rest| rest.get(..section.inflated_size as usize))
                .ok_or(damaged(b"bundle section directory is damaged"))?;
            // SAFETY: the section directory's rules keep every stream
            // inside the file, streams do not overlap, and each index goes
            // to one runner only.
            let out = unsafe {
                core::slice::from_raw_parts_mut(
                    (file_base + section.file_offset as usize) as *mut u8,
                    section.stream_size as usize,
                )
            };
            match encoder.zlib(input, out) {
                Some(len) if len as u64 == section.stream_size => Ok(()),
                _ => Err(damaged(b"an inflated section does not deflate to its size")),
            }
        },
    )?;

    // What lies between and after the sections, as it is.
    let mut file = file;
    let (mut image_at, mut file_at) = (tail_start, tail_start);
    let copy = |file: &mut sys::Mapping, image_from: u64, image_to: u64, file_from: u64| {
        let from =
            tail_bytes.get((image_from - tail_start) as usize..(image_to - tail_start) as usize);
        let to = file
            .bytes_mut()
            .get_mut(file_from as usize..(file_from + image_to - image_from) as usize);
        match (from, to) {
            (Some(from), Some(to)) => {
                to.copy_from_slice(from);
                Ok(())
            }
            _ => Err(damaged(b"bundle section directory is damaged")),
        }
    };
    for i in 0..count {
        let section = sections.get(i);
        copy(&mut file, image_at, section.image_offset, file_at)?;
        image_at = section.image_offset + section.inflated_size;
        file_at = section.file_offset + section.stream_size;
    }
    copy(&mut file, image_at, image_size, file_at)?;
    if crate::verify::checksum(file.bytes()) != entry.checksum {
        return Err(damaged(b"checksum mismatch"));
    }
    Ok(file)
}
