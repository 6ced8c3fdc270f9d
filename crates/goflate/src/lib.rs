//! The zlib streams that Go's linker writes into compressed DWARF sections,
//! re-created bit for bit.
//!
//! `cmd/link` compresses every `.debug_*` section with `compress/zlib` at
//! `BestSpeed` (level 1). Compressed bytes do not compress again, so mgo
//! stores those sections inflated inside a bundle and, whenever the exact
//! executable is asked for, deflates them again with this encoder. That is
//! only sound if the encoder makes the same choices as Go's at every step,
//! which are, for level 1 (docs/FORMAT.md, "Inflated sections", has the
//! summary):
//!
//! - the input is cut into blocks of 65,535 bytes, the last one shorter;
//! - in each block, a hash-table match finder (`fast.rs`) emits literals and
//!   matches, its table and the previous block carried across blocks;
//! - each block is written as a dynamic Huffman block, as a Huffman-only
//!   block when matching removed too little, or stored when that is
//!   smaller; the last block has its own rules for tiny sizes;
//! - Huffman code lengths come from Go's length-limited construction,
//!   whose tie-breaking decides the bytes (`huffman.rs`);
//! - the stream ends with an empty final stored block, inside a zlib
//!   header `78 01` and an Adler-32 trailer.
//!
//! This is mgo's own implementation of those rules (learnt from Go's
//! documentation and source, not translated from it). Nothing else fits:
//! zlib, miniz and libdeflate at level 1 make other, equally valid bytes.
//! `tests/go.rs` checks it against Go itself.

#![no_std]

#[cfg(any(feature = "alloc", test))]
extern crate alloc;

mod bits;
mod block;
mod fast;
mod huffman;

use block::BlockWriter;
use fast::MatchFinder;

/// Go's `maxStoreBlockSize`: the block size of its level-1 compressor.
const BLOCK: usize = 65_535;

/// The working memory of one encoder: about 400 KiB, so it lives on the heap
/// or in a mapping, never on a stack.
///
/// Every field is an array of integers, so any bytes are a valid `Encoder`,
/// which [`Encoder::in_memory`] relies on; [`Encoder::zlib`] resets what it
/// uses.
#[repr(C)]
pub struct Encoder {
    finder: MatchFinder,
    writer: block::Tables,
    tokens: [u32; BLOCK + 1],
}

impl Encoder {
    /// Bytes of memory an encoder needs, for [`Encoder::in_memory`].
    pub const SIZE: usize = core::mem::size_of::<Self>();

    /// An encoder in `memory` (at least [`Encoder::SIZE`] bytes, aligned to
    /// 8), for callers without a heap; `None` if it is too small or
    /// misaligned.
    pub fn in_memory(memory: &mut [u8]) -> Option<&mut Self> {
        let pointer = memory.as_mut_ptr();
        if memory.len() < Self::SIZE || !pointer.cast::<u64>().is_aligned() {
            return None;
        }
        // SAFETY: the memory is large enough, aligned, and borrowed
        // exclusively for the returned lifetime; every field of Encoder is
        // an integer array, for which any bit pattern is a valid value.
        Some(unsafe { &mut *pointer.cast::<Self>() })
    }

    /// A zeroed encoder on the heap (building one on the stack first would
    /// need 400 KiB of stack).
    #[cfg(any(feature = "alloc", test))]
    pub fn boxed() -> alloc::boxed::Box<Self> {
        let layout = core::alloc::Layout::new::<Self>();
        // SAFETY: Encoder is not zero-sized; zeroed memory is a valid
        // Encoder (all fields are integer arrays); the box takes ownership
        // of the allocation made with Encoder's own layout.
        unsafe {
            let pointer = alloc::alloc::alloc_zeroed(layout).cast::<Self>();
            if pointer.is_null() {
                alloc::alloc::handle_alloc_error(layout);
            }
            alloc::boxed::Box::from_raw(pointer)
        }
    }

    /// Writes into `out` the zlib stream that Go's
    /// `zlib.NewWriterLevel(w, zlib.BestSpeed)` writes for `input` (written
    /// in any number of `Write` calls, without `Flush`, then `Close`), and
    /// returns its length; `None` if it does not fit in `out`.
    pub fn zlib(&mut self, input: &[u8], out: &mut [u8]) -> Option<usize> {
        let mut writer = BlockWriter::new(&mut self.writer, out);
        // CMF 0x78: deflate with a 32 KiB window; FLG 0x01: "fastest"
        // level, no dictionary, and the check bits that make it a multiple
        // of 31.
        writer.bits.put_bytes(&[0x78, 0x01]);
        self.finder.reset();
        let mut previous: &[u8] = &[];
        let mut blocks = input.chunks(BLOCK).peekable();
        while let Some(block) = blocks.next() {
            let last = blocks.peek().is_none();
            // Go compresses a full block as soon as the next byte arrives,
            // and the last one only at Close, where a short block gets
            // cheaper treatment and no match finding.
            if last && block.len() < 128 {
                if block.len() <= 16 {
                    writer.stored(block, false);
                } else {
                    writer.huffman_only(block);
                }
                break;
            }
            let tokens = self.finder.tokens(block, previous, &mut self.tokens);
            // Matching that saved less than 1/16 is not worth the
            // distance codes: Go writes the block with literals only.
            if tokens.len() > block.len() - (block.len() >> 4) {
                writer.huffman_only(block);
            } else {
                writer.dynamic(tokens, block);
            }
            previous = self.finder.previous(block);
        }
        // Close: an empty final stored block.
        writer.stored(&[], true);
        writer
            .bits
            .put_bytes(&adler2::adler32_slice(input).to_be_bytes());
        writer.bits.finish()
    }
}

#[cfg(test)]
mod tests;
