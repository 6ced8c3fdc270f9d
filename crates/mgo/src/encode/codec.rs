//! The codecs, both ways: a thread's compressor, one function per codec;
//! the reference variant as a dictionary; and decoding a block as the
//! launcher does.

use super::mode::Codec;
use super::zstd::{self, Against, Parameter};
use crate::error::{Context, Result, fail};
use mgo_format::Encoding;

/// From this zstd level on (the binary-tree match finders), blocks are
/// compressed against a dictionary prepared once from the reference: those
/// finders index all of it, and indexing it for every block would cost as
/// much as compressing it each time. Below it, the fast match finders
/// would index only the reference's last few megabytes, so each block
/// instead gets the reference as a prefix and long-distance matching, which
/// indexes all of it quickly (measured on cmd/go: v3 against v4 at level 3,
/// 11.1 MB without long matching, 5.6 MB with it).
const PREPARED_DICTIONARY_LEVEL: i32 = 13;

/// Hash tables of at most 2^30 entries (zstd's largest `hashLog`): a
/// prepared dictionary of up to 8 GiB is indexed whole.
const MAX_HASH_LOG: u32 = 30;

/// A window of 2^31 bytes at most (zstd's largest); the launcher decodes
/// in one call and keeps no window, so this costs it nothing.
const MAX_WINDOW_LOG: u32 = 31;

/// A block's dictionary, a prefix of the reference variant (docs/FORMAT.md,
/// "Blocks"), as its compressor sees it: all of it, or only its end, which
/// is all that the block's matches then reach. A frame compressed against
/// the end of a dictionary decodes with the whole of it, as the bytes just
/// before its own.
pub(super) struct ReferenceDictionary<'a> {
    bytes: &'a [u8],
    /// Indexed once, from [`PREPARED_DICTIONARY_LEVEL`] on.
    prepared: Option<zstd::Prepared<'a>>,
}

impl<'a> ReferenceDictionary<'a> {
    /// `dictionary` as blocks at zstd `level` see it: a prepared dictionary
    /// indexes only its part from `similar_from` on, which resembles the
    /// blocks (the reference's DWARF and symbols, for a variant's): at
    /// level 19, blocks came out the same size (caddy, cmd/go) for half the
    /// time and memory. A prefix, which long-distance matching indexes
    /// cheaply, is all of it: its part alone made caddy's Z3 bundle 0.16%
    /// larger, for no measurable time.
    pub(super) fn new(dictionary: &'a [u8], similar_from: usize, level: i32) -> Result<Self> {
        if level < PREPARED_DICTIONARY_LEVEL {
            return Ok(Self {
                bytes: dictionary,
                prepared: None,
            });
        }
        let bytes = dictionary.get(similar_from..).unwrap_or(&[]);
        // zstd sizes a prepared dictionary's tables for small
        // dictionaries, and indexes only the last 2^(hashLog + 3) bytes
        // of one (or 2^(chainLog + 1), if more): 32 MiB with the
        // defaults of levels 13 to 19. A reference of tens of megabytes
        // lost most of its matches (caddy: v3 against v4 took 14.1 MB at
        // Z19, 5.5 MB at Z3); a hash table large enough to index all of
        // it finds them (3.2 MB), for half a byte to a byte of memory per
        // byte of reference. A binary tree that reaches every position too
        // gained nothing more there, for twice the time and 16 bytes of
        // memory per byte of reference.
        let default = zstd::default_hash_log(level, bytes.len());
        let hash_log = log2_ceil(bytes.len())
            .saturating_sub(3)
            .max(default)
            .min(MAX_HASH_LOG);
        let parameters = [
            (Parameter::ZSTD_c_compressionLevel, level),
            (Parameter::ZSTD_c_windowLog, window_log(bytes.len(), 0)),
            (Parameter::ZSTD_c_hashLog, hash_log as i32),
        ];
        Ok(Self {
            bytes,
            prepared: Some(zstd::Prepared::new(bytes, &parameters)?),
        })
    }
}

/// The smallest `n` with 2^n >= `size`.
fn log2_ceil(size: usize) -> u32 {
    size.max(1).next_power_of_two().trailing_zeros()
}

/// A window that reaches from the end of a `block`-byte frame back to the
/// start of a `dictionary`-byte dictionary.
fn window_log(dictionary: usize, block: usize) -> i32 {
    log2_ceil(dictionary.saturating_add(block)).clamp(10, MAX_WINDOW_LOG) as i32
}

/// A thread's compression state, reused for all its blocks.
pub(super) struct Compressor {
    zstd: Option<zstd::Context>,
    deflate: Option<(u8, libdeflater::Compressor)>,
}

impl Compressor {
    pub(super) fn new() -> Self {
        Self {
            zstd: None,
            deflate: None,
        }
    }

    /// One block's stored bytes, against `dictionary` (zstd only).
    pub(super) fn compress(
        &mut self,
        codec: Codec,
        block: &[u8],
        dictionary: Option<&ReferenceDictionary<'_>>,
    ) -> Result<Vec<u8>> {
        match codec {
            Codec::Raw => Ok(block.to_vec()),
            Codec::Deflate(level) => self.deflate(level, block),
            Codec::Zstd(level) => self.zstd(level, block, dictionary),
            Codec::Lz4(level) => lz4(level, block),
        }
    }

    /// One raw DEFLATE stream, by libdeflate.
    fn deflate(&mut self, level: u8, block: &[u8]) -> Result<Vec<u8>> {
        let compressor = match &mut self.deflate {
            Some((l, compressor)) if *l == level => compressor,
            slot => {
                let lvl = libdeflater::CompressionLvl::new(i32::from(level))
                    .map_err(|_| fail(format!("deflate level {level} is not supported")))?;
                &mut slot.insert((level, libdeflater::Compressor::new(lvl))).1
            }
        };
        let mut out = vec![0u8; compressor.deflate_compress_bound(block.len())];
        let len = compressor
            .deflate_compress(block, &mut out)
            .context("deflate")?;
        out.truncate(len);
        Ok(out)
    }

    /// One zstd frame with its content size, without checksum or
    /// dictionary ID (docs/FORMAT.md, "Decoding a block").
    fn zstd(
        &mut self,
        level: i32,
        block: &[u8],
        dictionary: Option<&ReferenceDictionary<'_>>,
    ) -> Result<Vec<u8>> {
        let context = match &mut self.zstd {
            Some(context) => context,
            slot => slot.insert(zstd::Context::new()?),
        };
        let mut parameters = vec![
            (Parameter::ZSTD_c_compressionLevel, level),
            (Parameter::ZSTD_c_contentSizeFlag, 1),
            (Parameter::ZSTD_c_checksumFlag, 0),
            (Parameter::ZSTD_c_dictIDFlag, 0),
        ];
        let against = match dictionary {
            None => Against::Nothing,
            Some(dictionary) => {
                parameters.push((
                    Parameter::ZSTD_c_windowLog,
                    window_log(dictionary.bytes.len(), block.len()),
                ));
                match &dictionary.prepared {
                    Some(prepared) => {
                        // Its tables as they are, never copied per block.
                        parameters.push((zstd::FORCE_ATTACH_DICT, zstd::DICT_FORCE_ATTACH));
                        Against::Prepared(prepared)
                    }
                    None => {
                        parameters.push((Parameter::ZSTD_c_enableLongDistanceMatching, 1));
                        Against::Prefix(dictionary.bytes)
                    }
                }
            }
        };
        context.compress(block, &parameters, against)
    }
}

/// One LZ4 block, by C lz4's high-compression mode.
fn lz4(level: i32, block: &[u8]) -> Result<Vec<u8>> {
    let mut out = vec![0u8; lz4::block::compress_bound(block.len()).context("lz4")?];
    let len = lz4::block::compress_to_buffer(
        block,
        Some(lz4::block::CompressionMode::HIGHCOMPRESSION(level)),
        false,
        &mut out,
    )
    .context("lz4")?;
    out.truncate(len);
    Ok(out)
}

/// Decodes one block as the launcher does: zstd with the reference's prefix
/// as a raw-content dictionary, DEFLATE and LZ4 on their own.
pub fn decode_block(
    encoding: Encoding,
    stored: &[u8],
    size: usize,
    dictionary: &[u8],
) -> Result<Vec<u8>> {
    match encoding {
        Encoding::Raw => Ok(stored.to_vec()),
        Encoding::Zstd => {
            let mut context = zstd_safe::DCtx::create();
            let mut out = Vec::with_capacity(size);
            context
                .decompress_using_dict(&mut out, stored, dictionary)
                .map_err(|code| fail(format!("zstd: {}", zstd_safe::get_error_name(code))))?;
            Ok(out)
        }
        Encoding::Deflate => {
            let mut out = vec![0u8; size];
            let n = libdeflater::Decompressor::new()
                .deflate_decompress(stored, &mut out)
                .context("deflate")?;
            out.truncate(n);
            Ok(out)
        }
        Encoding::Lz4 => {
            let size = i32::try_from(size).map_err(|_| fail("lz4: block too large"))?;
            lz4::block::decompress(stored, Some(size)).context("lz4")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::blocks::CHUNK_SIZE;

    /// Incompressible bytes: only a match into the reference makes a copy
    /// of them small.
    fn noise(size: usize) -> Vec<u8> {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut bytes = Vec::with_capacity(size + 8);
        while bytes.len() < size {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            bytes.extend_from_slice(&state.to_le_bytes());
        }
        bytes.truncate(size);
        bytes
    }

    /// A block that is the start of a reference larger than the 32 MiB
    /// that zstd's own tables index at levels 13 to 19 (the end of it)
    /// compresses at level 13 as well as at level 3 (caddy's v3 was 14.1 MB
    /// at Z19 against 5.5 MB at Z3, before prepared dictionaries indexed
    /// the whole reference).
    #[test]
    fn a_prepared_dictionary_reaches_the_start_of_a_large_reference() {
        let reference = noise(34 << 20);
        let mut block = reference.get(..CHUNK_SIZE).unwrap().to_vec();
        for at in (0..block.len()).step_by(4096) {
            block[at] ^= 0x55;
        }
        let size = |level: i32| {
            let dictionary = ReferenceDictionary::new(&reference, 0, level).unwrap();
            assert_eq!(
                dictionary.prepared.is_some(),
                level >= PREPARED_DICTIONARY_LEVEL
            );
            let stored = Compressor::new()
                .compress(Codec::Zstd(level), &block, Some(&dictionary))
                .unwrap();
            let decoded = decode_block(Encoding::Zstd, &stored, block.len(), &reference).unwrap();
            assert!(decoded == block, "level {level} does not round-trip");
            stored.len()
        };
        let low = size(PREPARED_DICTIONARY_LEVEL - 1);
        assert!(low < block.len() / 100, "level 12: {low} bytes");
        let high = size(PREPARED_DICTIONARY_LEVEL);
        assert!(high <= low, "level 13: {high} bytes, level 12: {low}");
    }
}
