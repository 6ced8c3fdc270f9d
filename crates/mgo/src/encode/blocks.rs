//! Where an executable is cut into blocks: the first page alone, then at
//! every boundary of a segment's file pages (docs/FORMAT.md, "Blocks").

use crate::elf::Elf;
use mgo_format::SectionRecord;
use std::ops::Range;

/// Largest block, in decoded bytes. Smaller blocks share the launcher's work
/// out more evenly and need smaller buffers there; larger ones compress
/// better (docs/DESIGN.md, "Blocks", gives the measurements behind this
/// value).
pub const CHUNK_SIZE: usize = 1 << 20;

/// Largest block of what no segment maps (DWARF, symbols): only a memfd
/// start and extraction decode those, whole, so fewer, larger blocks cost
/// nothing at start and save build time: in the `Z` modes below level 13,
/// zstd indexes the whole reference again for every block (measured on
/// cmd/go at Z3: 4.1 s with 1 MiB blocks, see docs/DESIGN.md, "Blocks").
pub const UNLOADED_CHUNK_SIZE: usize = 4 << 20;

// Readers refuse blocks above the format's limit.
const _: () = assert!(UNLOADED_CHUNK_SIZE as u64 <= mgo_format::MAX_BLOCK_SIZE);

/// Size of the first block: one page, which holds the ELF header and the
/// program headers, so that the launcher can decode it on its own to plan
/// the mapping before it decodes the rest straight into place.
pub const FIRST_BLOCK: usize = 4096;

/// The file ranges the kernel maps for the executable's PT_LOAD segments,
/// whole pages, within the file; none if it is not an ELF executable.
pub fn loadable_ranges(executable: &[u8]) -> Vec<Range<usize>> {
    Elf::parse(executable).map_or_else(Vec::new, |elf| elf.loadable_ranges())
}

/// One block of an executable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    /// Its bytes' range in the executable.
    pub range: Range<usize>,
    /// Whether a PT_LOAD segment maps any of them: the launcher's mapped
    /// start needs exactly these blocks.
    pub loadable: bool,
}

/// Cuts an executable into blocks (docs/FORMAT.md, "What mgo writes"): the
/// first page alone, then cuts at every boundary of a segment's file pages,
/// so that each block lies wholly inside or wholly outside what a segment
/// maps, and at most [`CHUNK_SIZE`] bytes in each loadable block,
/// [`UNLOADED_CHUNK_SIZE`] in the others.
pub fn cut(executable: &[u8], sections: &[SectionRecord]) -> Vec<Piece> {
    let size = executable.len();
    let loadable = loadable_ranges(executable);
    let mut points: Vec<usize> = vec![0, FIRST_BLOCK.min(size), size];
    // Where the inflated sections begin: a reader that re-creates the
    // executable decodes the blocks before it straight into place and the
    // rest aside, to deflate sections from (docs/LAUNCHER.md). A cut there
    // saves it decoding a block into both.
    if let Some(first) = sections.first() {
        points.push(first.image_offset as usize);
    }
    for range in &loadable {
        points.push(range.start);
        points.push(range.end);
    }
    points.sort_unstable();
    points.dedup();
    let mut pieces = Vec::new();
    for pair in points.windows(2) {
        let &[start, end] = pair else { continue };
        // Cut at every loadable boundary, a span is wholly loadable or not.
        let loaded = loadable.iter().any(|r| r.start < end && start < r.end);
        let chunk = if loaded {
            CHUNK_SIZE
        } else {
            UNLOADED_CHUNK_SIZE
        };
        let mut at = start;
        while at < end {
            let next = (at + chunk).min(end);
            pieces.push(Piece {
                range: at..next,
                loadable: loaded,
            });
            at = next;
        }
    }
    pieces
}
