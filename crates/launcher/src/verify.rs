//! Verification, in one place: the format's checksum at this CPU's best
//! speed, and the two loops that check a variant's blocks on every runner,
//! as they lie (a raw variant) or as they are decoded (an encoded one). Every
//! way of starting or extracting a variant goes through them, so a block is
//! never used unchecked and is checked while its bytes are in the cache.

use crate::fail::Failure;
use crate::work;
use core::sync::atomic::{AtomicBool, Ordering};
use mgo_format::{Block, Blocks};

/// Whether this CPU (and its OS) runs AVX2 code: then blocks are hashed at
/// AVX2 speed. Known when the CPU was read (GOAMD64 not forced).
static AVX2: AtomicBool = AtomicBool::new(false);

/// The CPU's level, noting whether it runs AVX2 code.
pub fn cpu_level() -> u8 {
    let level = mgo_launcher::cpu::level(&mgo_launcher::cpu::snapshot());
    // Level 3 requires AVX2 and the OS's support for its registers.
    AVX2.store(level >= 3, Ordering::Relaxed);
    level
}

/// The format's checksum (XXH3-64), as fast as this CPU computes it.
pub fn checksum(bytes: &[u8]) -> u64 {
    mgo_launcher::hash::checksum(bytes, AVX2.load(Ordering::Relaxed))
}

/// Checks `bytes`, which should be `block`'s, of a variant of `level`.
pub fn block(level: u8, block: &Block<'_>, bytes: &[u8]) -> Result<(), Failure> {
    if checksum(bytes) == block.checksum {
        Ok(())
    } else {
        Err(Failure::Damaged(level, b"checksum mismatch"))
    }
}

/// What is done with each checked block and its bytes.
pub type Then<'a, E> = dyn Fn(&Block<'_>, &[u8]) -> Result<(), E> + Sync + 'a;

/// How many of `blocks` `wanted` picks, and their bytes: what decides
/// whether the work is worth more than one runner.
fn wanted_work(blocks: &Blocks<'_>, wanted: &dyn Fn(usize) -> bool) -> (usize, u64) {
    (0..blocks.len())
        .filter(|&i| wanted(i))
        .fold((0, 0), |(n, bytes), i| {
            (n + 1, bytes + blocks.get(i).size as u64)
        })
}

/// Checks the `wanted` blocks of a raw variant of `level`, each read where
/// `bytes_of` says it lies, then hands each checked block to `then`; from
/// 4 MiB of blocks on, on every runner.
pub fn raw_blocks<E: From<Failure> + Send + Copy>(
    level: u8,
    blocks: &Blocks<'_>,
    wanted: &(dyn Fn(usize) -> bool + Sync),
    bytes_of: &(dyn for<'b> Fn(&Block<'b>) -> &'b [u8] + Sync),
    then: &(dyn Fn(&Block<'_>) -> Result<(), E> + Sync),
) -> Result<(), E> {
    let (count, bytes) = wanted_work(blocks, wanted);
    work::for_each(
        blocks.len(),
        work::runners(count, bytes, work::HASH_PARALLEL_MIN),
        wanted,
        &|| Ok(()),
        &|_, i| {
            let block = blocks.get(i);
            self::block(level, &block, bytes_of(&block))?;
            then(&block)
        },
    )
}

#[cfg(feature = "decoder")]
pub use decoding::*;

#[cfg(feature = "decoder")]
mod decoding {
    use super::wanted_work;
    use crate::codec::Decoder;
    use crate::fail::Failure;
    use crate::{sys, work};
    use mgo_format::{Block, Blocks, Encoding, Entry};

    /// Where a runner decodes a block.
    pub enum Output<'p, E> {
        /// At the address the function gives for the block, if any (`None`:
        /// the block has no place and is skipped).
        ///
        /// The addresses must be writable, as large as their block, and no
        /// two blocks' may overlap.
        InPlace(&'p (dyn Fn(&Block<'_>) -> Result<Option<*mut u8>, E> + Sync)),
        /// Into a buffer of the runner's, as large as the largest block.
        Buffer,
    }

    /// Decodes `block` of `entry` into `out` (exactly the block's size),
    /// with `reference` holding at least the block's dictionary, and checks
    /// it.
    pub fn decode_block(
        decoder: &mut Decoder,
        entry: &Entry,
        block: &Block<'_>,
        out: &mut [u8],
        reference: &[u8],
    ) -> Result<(), Failure> {
        let level = entry.level;
        let dictionary = reference
            .get(..block.dictionary_size)
            .ok_or(Failure::Damaged(level, b"dictionary out of range"))?;
        if entry.encoding == Encoding::Raw {
            out.copy_from_slice(block.stored);
        } else if !Decoder::supports(entry.encoding) {
            return Err(Failure::Unsupported(entry.encoding));
        } else if !decoder.decode(entry.encoding, block.stored, out, dictionary) {
            return Err(Failure::Damaged(level, b"undecodable data"));
        }
        super::block(level, block, out)
    }

    /// A decoder of the runner's.
    pub fn decoder() -> Result<Decoder, Failure> {
        Decoder::new().ok_or(Failure::NoMemory)
    }

    /// Decodes and checks the `wanted` blocks of `entry` (`reference`
    /// holding their dictionaries) into `output`, then hands each checked
    /// block and its bytes to `then`; from 512 KiB of blocks on, on every
    /// runner.
    ///
    /// # Safety
    /// `Output::InPlace` must keep its promise: room of its own for each
    /// block, writable.
    pub unsafe fn decoded_blocks<E: From<Failure> + Send + Copy>(
        entry: &Entry,
        blocks: &Blocks<'_>,
        reference: &[u8],
        wanted: &(dyn Fn(usize) -> bool + Sync),
        output: Output<'_, E>,
        then: &super::Then<'_, E>,
    ) -> Result<(), E> {
        let (count, bytes) = wanted_work(blocks, wanted);
        let buffer_size = match output {
            Output::Buffer => (0..blocks.len())
                .filter(|&i| wanted(i))
                .map(|i| blocks.get(i).size)
                .max()
                .unwrap_or(0),
            Output::InPlace(_) => 0,
        };
        work::for_each(
            blocks.len(),
            work::runners(count, bytes, work::DECODE_PARALLEL_MIN),
            wanted,
            &|| {
                let buffer = sys::map_anonymous(buffer_size, false).map_err(Failure::no_memory)?;
                Ok((decoder()?, buffer))
            },
            &|(decoder, buffer), i| {
                let block = blocks.get(i);
                let out: &mut [u8] = match &output {
                    Output::InPlace(place) => match place(&block)? {
                        // SAFETY: the caller's promise: room of the block's
                        // own; each index goes to one runner only.
                        Some(at) => unsafe { core::slice::from_raw_parts_mut(at, block.size) },
                        None => return Ok(()),
                    },
                    Output::Buffer => buffer
                        .bytes_mut()
                        .get_mut(..block.size)
                        .ok_or(Failure::NoMemory)?,
                };
                decode_block(decoder, entry, &block, out, reference)?;
                then(&block, out)
            },
        )
    }
}
