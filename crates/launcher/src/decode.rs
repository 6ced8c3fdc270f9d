//! Decoding encoded blocks (docs/FORMAT.md, "Blocks"): each block is decoded
//! on its own, with a prefix of the reference variant as its dictionary,
//! and verified right after, while its bytes are still in the cache. A
//! reference is decoded first, as far as the blocks that are needed reach,
//! into anonymous memory that is freed before the program starts.

use crate::bundle::Bundle;
use crate::fail::Failure;
use crate::{sys, verify};
use mgo_format::{Block, Blocks, Encoding, Entry};

/// Decodes (and verifies) `entry`'s blocks `range` into `memory`, which is
/// as large as the whole decoded variant, each block at its own offset,
/// sharing them among runners when there is enough work.
pub fn into_memory(
    memory: &sys::Mapping,
    blocks: &Blocks<'_>,
    entry: &Entry,
    range: core::ops::Range<usize>,
    dictionary: &[u8],
) -> Result<(), Failure> {
    let base = memory.base() as usize;
    // SAFETY: the mapping holds the whole variant, so every block fits at
    // its own offset.
    unsafe {
        into(blocks, entry, range, dictionary, &|offset| {
            base + offset as usize
        })
    }
}

/// Decodes (and verifies) `entry`'s blocks `range`, each to the address
/// `place` gives for its offset.
///
/// # Safety
/// For every block of `range`, `place(offset)` is the start of `size`
/// writable bytes, and no two blocks' bytes overlap.
pub unsafe fn into(
    blocks: &Blocks<'_>,
    entry: &Entry,
    range: core::ops::Range<usize>,
    dictionary: &[u8],
    place: &(dyn Fn(u64) -> usize + Sync),
) -> Result<(), Failure> {
    let place_of = |block: &Block<'_>| Ok(Some(place(block.offset) as *mut u8));
    // SAFETY: the caller's promise.
    unsafe {
        verify::decoded_blocks(
            entry,
            blocks,
            dictionary,
            &|i| range.contains(&i),
            verify::Output::InPlace(&place_of),
            &|_, _| Ok::<(), Failure>(()),
        )
    }
}

/// A reference variant, decoded as far as needed.
pub struct Reference<'b> {
    entry: Option<Entry>,
    blocks: Option<Blocks<'b>>,
    /// Decoded bytes (for an encoded reference), or the stored bytes of a
    /// raw one, read straight from the bundle.
    memory: Option<sys::Mapping>,
    raw: &'b [u8],
    /// Blocks before this index are decoded.
    done: usize,
}

impl<'b> Reference<'b> {
    /// The reference of `entry`, nothing decoded yet.
    pub fn of(bundle: &'b Bundle, entry: &Entry) -> Result<Self, Failure> {
        let mut reference = Self {
            entry: None,
            blocks: None,
            memory: None,
            raw: &[],
            done: 0,
        };
        let Some(r) = bundle.table.reference_of(entry).copied() else {
            return Ok(reference);
        };
        if r.encoding == Encoding::Raw {
            reference.raw = bundle.stored(&r);
        } else {
            reference.blocks = Some(bundle.blocks(&r)?);
            reference.memory =
                Some(sys::map_anonymous(r.size as usize, true).map_err(Failure::no_memory)?);
        }
        reference.entry = Some(r);
        Ok(reference)
    }

    /// The decoded bytes, at least `len` of them: decodes (and verifies) the
    /// blocks that reach that far on `runners` threads.
    pub fn prefix(&mut self, len: usize) -> Result<&[u8], Failure> {
        if let (Some(entry), Some(blocks), Some(memory)) = (self.entry, self.blocks, &self.memory) {
            let mut end = self.done;
            while end < blocks.len() && (blocks.get(end).offset as usize) < len {
                end += 1;
            }
            if end > self.done {
                into_memory(memory, &blocks, &entry, self.done..end, &[])?;
                self.done = end;
            }
        }
        Ok(self.bytes())
    }

    /// What is decoded so far (all of a raw reference).
    fn bytes(&self) -> &[u8] {
        match (&self.memory, self.blocks) {
            (Some(memory), Some(blocks)) => {
                let end = if self.done == 0 {
                    0
                } else {
                    let last = blocks.get(self.done - 1);
                    last.offset as usize + last.size
                };
                memory.bytes().get(..end).unwrap_or(&[])
            }
            _ => self.raw,
        }
    }
}

/// The longest dictionary among the blocks `wanted` picks.
pub fn dictionary_needed(blocks: &Blocks<'_>, wanted: &dyn Fn(usize) -> bool) -> usize {
    (0..blocks.len())
        .filter(|&i| wanted(i))
        .map(|i| blocks.get(i).dictionary_size)
        .max()
        .unwrap_or(0)
}
