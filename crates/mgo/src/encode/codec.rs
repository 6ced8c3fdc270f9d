//! The codecs, both ways: a thread's compressor for every mode, the
//! reference variant as a dictionary, and decoding a block as the launcher
//! does.

use super::blocks::CHUNK_SIZE;
use super::mode::{LZ4_HC_LEVEL, Mode};
use crate::error::{Context, Result, fail};
use mgo_format::Encoding;

/// From this zstd level on (the binary-tree match finders), blocks are
/// compressed against a dictionary prepared once from the reference: those
/// finders see the whole reference, and loading it for every block would
/// cost as much as compressing it each time. Below it, the fast match
/// finders only index the reference's last window, so each block instead
/// gets the reference as a prefix and long-distance matching, which indexes
/// all of it quickly (measured on cmd/go: v3 against v4 at level 3, 11.1 MB
/// without long matching, 5.6 MB with it).
const PREPARED_DICTIONARY_LEVEL: i32 = 13;

/// The reference variant, as every block compressed against it sees it.
pub(super) struct ReferenceDictionary<'a> {
    bytes: &'a [u8],
    prepared: Option<zstd_safe::CDict<'static>>,
    /// Window that reaches from any block back to the reference's start.
    window_log: u32,
}

impl<'a> ReferenceDictionary<'a> {
    pub(super) fn new(reference: &'a [u8], level: i32) -> Result<Self> {
        let prepared = if level >= PREPARED_DICTIONARY_LEVEL {
            Some(
                zstd_safe::CDict::try_create(reference, level).ok_or_else(|| {
                    fail("zstd could not prepare the reference variant as a dictionary")
                })?,
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
pub(super) struct Compressor<'d> {
    zstd: Option<zstd_safe::CCtx<'d>>,
    deflate: Option<(u8, libdeflater::Compressor)>,
}

impl<'d> Compressor<'d> {
    pub(super) fn new() -> Self {
        Self {
            zstd: None,
            deflate: None,
        }
    }

    pub(super) fn compress(
        &mut self,
        mode: Mode,
        chunk: &[u8],
        reference: Option<&'d ReferenceDictionary<'d>>,
    ) -> Result<Vec<u8>> {
        match mode {
            Mode::Raw => Ok(chunk.to_vec()),
            Mode::Deflate(level) => {
                let reuse = matches!(&self.deflate, Some((l, _)) if *l == level);
                if !reuse {
                    let lvl = libdeflater::CompressionLvl::new(i32::from(level))
                        .map_err(|_| fail(format!("deflate level {level} is not supported")))?;
                    self.deflate = Some((level, libdeflater::Compressor::new(lvl)));
                }
                let (_, compressor) = self
                    .deflate
                    .as_mut()
                    .ok_or_else(|| fail("no deflate compressor"))?;
                let mut out = vec![0u8; compressor.deflate_compress_bound(chunk.len())];
                let len = compressor
                    .deflate_compress(chunk, &mut out)
                    .context("deflate")?;
                out.truncate(len);
                Ok(out)
            }
            Mode::Lz4 => {
                let mut out = vec![0u8; lz4::block::compress_bound(chunk.len()).context("lz4")?];
                let len = lz4::block::compress_to_buffer(
                    chunk,
                    Some(lz4::block::CompressionMode::HIGHCOMPRESSION(LZ4_HC_LEVEL)),
                    false,
                    &mut out,
                )
                .context("lz4")?;
                out.truncate(len);
                Ok(out)
            }
            Mode::Zstd(level) | Mode::ZstdAgainstReference(level) => {
                let context = self.zstd.get_or_insert_with(zstd_safe::CCtx::create);
                let zstd_error =
                    |code: usize| fail(format!("zstd: {}", zstd_safe::get_error_name(code)));
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
