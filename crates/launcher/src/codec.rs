//! The one decoder this launcher was built with (a Cargo feature each; see
//! crates/mgo/build.rs), behind one interface. Every decoder here is safe on
//! damaged input: it reports failure and never writes outside `output`.

use mgo_format::Encoding;

/// Per-thread decoding state, made once and reused for every chunk.
pub struct Decoder {
    #[cfg(feature = "zstd")]
    zstd: *mut zstd_sys::ZSTD_DCtx,
    /// The inflater's 11 KB of state, in a mapping of its own: on the stack
    /// it was copied from frame to frame while runners were set up, which
    /// took a 64 KiB stack limit (`ulimit -s 64`), where a plain Go build
    /// runs, past its end.
    #[cfg(feature = "deflate")]
    deflate: (
        crate::sys::Mapping,
        *mut miniz_oxide::inflate::core::DecompressorOxide,
    ),
}

impl Decoder {
    /// Whether this launcher can decode `encoding` at all.
    pub fn supports(encoding: Encoding) -> bool {
        match encoding {
            Encoding::Raw => true,
            Encoding::Zstd => cfg!(feature = "zstd"),
            Encoding::Deflate => cfg!(feature = "deflate"),
            Encoding::Lz4 => cfg!(feature = "lz4"),
        }
    }

    /// A decoder, or `None` when its state cannot be allocated.
    pub fn new() -> Option<Self> {
        Some(Self {
            #[cfg(feature = "zstd")]
            // SAFETY: plain constructor; allocates through crate::heap.
            zstd: {
                let context = unsafe { zstd_sys::ZSTD_createDCtx() };
                if context.is_null() {
                    return None;
                }
                context
            },
            #[cfg(feature = "deflate")]
            deflate: {
                use miniz_oxide::inflate::core::DecompressorOxide;
                let memory =
                    crate::sys::map_anonymous(size_of::<DecompressorOxide>(), false).ok()?;
                let state = memory.base().cast::<DecompressorOxide>();
                // SAFETY: a fresh mapping of the state's size, page-aligned
                // (more than its alignment), ours alone.
                unsafe { state.write(DecompressorOxide::new()) };
                (memory, state)
            },
        })
    }

    /// The inflater's state.
    #[cfg(feature = "deflate")]
    fn inflater(&mut self) -> &mut miniz_oxide::inflate::core::DecompressorOxide {
        // SAFETY: initialized in `new`, in a mapping that lives as long as
        // `self`, reached only through `&mut self`.
        unsafe { &mut *self.deflate.1 }
    }

    /// Decodes `input` into exactly all of `output`, with `dictionary` as
    /// the bytes that precede it (zstd only). Anything else, too short or too
    /// long included, is a failure.
    #[allow(unused_variables)] // each build uses only its own codec's arguments
    pub fn decode(
        &mut self,
        encoding: Encoding,
        input: &[u8],
        output: &mut [u8],
        dictionary: &[u8],
    ) -> bool {
        match encoding {
            #[cfg(feature = "zstd")]
            Encoding::Zstd => {
                // SAFETY: all pointers and lengths come from live slices. A
                // dictionary without zstd's magic number is raw content: the
                // decoder only points to it. One-shot decoding into a buffer
                // of exactly the frame's size needs no window buffer.
                let written = unsafe {
                    zstd_sys::ZSTD_decompress_usingDict(
                        self.zstd,
                        output.as_mut_ptr().cast(),
                        output.len(),
                        input.as_ptr().cast(),
                        input.len(),
                        dictionary.as_ptr().cast(),
                        dictionary.len(),
                    )
                };
                // SAFETY: a pure function of the code.
                unsafe { zstd_sys::ZSTD_isError(written) == 0 && written == output.len() }
            }
            #[cfg(feature = "deflate")]
            Encoding::Deflate => {
                use miniz_oxide::inflate::{TINFLStatus, core};
                self.inflater().init();
                // The whole output at once: no window to wrap around, and no
                // more input to come.
                let flags = core::inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
                let (status, read, written) =
                    core::decompress(self.inflater(), input, output, 0, flags);
                status == TINFLStatus::Done && read == input.len() && written == output.len()
            }
            #[cfg(feature = "lz4")]
            Encoding::Lz4 => {
                lz4_flex::block::decompress_into(input, output).is_ok_and(|n| n == output.len())
            }
            _ => false,
        }
    }
}
