//! Re-creating the exact executable of a variant whose compressed DWARF
//! the bundle stores inflated (docs/FORMAT.md, "Inflated sections"), for
//! the memfd start and `MGODEBUG=extract`. The mapped start never needs
//! it: nothing it maps lies in those sections.

use crate::bundle::Bundle;
use crate::fail::Failure;
use crate::{decode, sys, work};
use mgo_format::{Entry, MAX_SECTIONS, Sections};
use mgo_goflate::Encoder;

/// Below this many inflated bytes, one thread deflates them all (Go's
/// level 1 runs at about 100 MB/s, so 1 MiB takes about 10 ms).
const DEFLATE_PARALLEL_MIN: u64 = 1 << 20;

/// The executable, decoded, re-deflated where the bundle keeps sections
/// inflated, and checked against the variant's checksum.
pub fn file(bundle: &Bundle, entry: &Entry) -> Result<sys::Mapping, Failure> {
    let sections = bundle.sections(entry)?;
    let image = decode_image(bundle, entry, &sections)?;
    deflate_sections(entry.level, &sections, &image)?;
    let mut image = image;
    copy_between_sections(entry, &sections, &mut image)?;
    if crate::verify::checksum(image.file.bytes()) != entry.checksum {
        return Err(Failure::Damaged(entry.level, b"checksum mismatch"));
    }
    Ok(image.file)
}

/// The decoded image, split where the executable and the image part: the
/// blocks before the first inflated section are already where the file has
/// them; the rest of the image waits in `tail` to be deflated or copied.
struct Image {
    /// The executable being re-created, as large as the file.
    file: sys::Mapping,
    /// The image from `tail_start` on.
    tail: sys::Mapping,
    tail_start: u64,
}

fn damaged_directory(level: u8) -> Failure {
    Failure::Damaged(level, b"bundle section directory is damaged")
}

/// Decodes every block on every runner: those that end before the first
/// section straight to their place in the file, the others into the tail.
fn decode_image(bundle: &Bundle, entry: &Entry, sections: &Sections<'_>) -> Result<Image, Failure> {
    let blocks = bundle.blocks(entry)?;
    let image_size = entry.size;
    let first = sections.first_image_offset(image_size);
    let tail_start = (0..blocks.len())
        .map(|i| blocks.get(i))
        .find(|b| b.offset + b.size as u64 > first)
        .map_or(image_size, |b| b.offset);
    // The directory's rules put `first` (where image and file part) within
    // the file.
    let file =
        sys::map_anonymous(sections.file_size() as usize, true).map_err(Failure::no_memory)?;
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
    Ok(Image {
        file,
        tail,
        tail_start,
    })
}

/// The sections' indices, the largest first, so that no runner is left
/// with a big one at the end.
fn largest_first(sections: &Sections<'_>) -> ([u8; MAX_SECTIONS as usize], usize) {
    let count = sections.len();
    let mut order = [0u8; MAX_SECTIONS as usize];
    for (i, slot) in order.iter_mut().enumerate().take(count) {
        *slot = i as u8;
    }
    // At most 64 items: an insertion sort is smaller than core's sort.
    let size_of = |i: u8| sections.get(usize::from(i)).inflated_size;
    for i in 1..count {
        let mut j = i;
        while j > 0
            && size_of(order.get(j - 1).copied().unwrap_or(0))
                < size_of(order.get(j).copied().unwrap_or(0))
        {
            order.swap(j - 1, j);
            j -= 1;
        }
    }
    (order, count)
}

/// Deflates each section with Go's encoder, one section per runner (each
/// with its own encoder state), straight into its place in the file; a
/// section that does not come out at its recorded size is damage.
fn deflate_sections(level: u8, sections: &Sections<'_>, image: &Image) -> Result<(), Failure> {
    let (order, count) = largest_first(sections);
    let inflated: u64 = (0..count).map(|i| sections.get(i).inflated_size).sum();
    let tail_bytes = image.tail.bytes();
    let tail_start = image.tail_start;
    let file_base = image.file.base() as usize;
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
                .ok_or(damaged_directory(level))?;
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
                _ => Err(Failure::Damaged(
                    level,
                    b"an inflated section does not deflate to its size",
                )),
            }
        },
    )
}

/// Copies what lies between and after the sections, as it is, from the
/// tail to the file.
fn copy_between_sections(
    entry: &Entry,
    sections: &Sections<'_>,
    image: &mut Image,
) -> Result<(), Failure> {
    let tail_start = image.tail_start;
    let tail_bytes = image.tail.bytes();
    let file = &mut image.file;
    let mut copy = |image_from: u64, image_to: u64, file_from: u64| {
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
            _ => Err(damaged_directory(entry.level)),
        }
    };
    let (mut image_at, mut file_at) = (tail_start, tail_start);
    for i in 0..sections.len() {
        let section = sections.get(i);
        copy(image_at, section.image_offset, file_at)?;
        image_at = section.image_offset + section.inflated_size;
        file_at = section.file_offset + section.stream_size;
    }
    copy(image_at, entry.size, file_at)
}
