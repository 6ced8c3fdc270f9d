//! C zstd's compressor, through `zstd-sys`: zstd-safe cannot prepare a
//! dictionary with parameters of mgo's choosing, which a reference of tens
//! of megabytes needs (docs/DESIGN.md, "Prefix or prepared dictionary").
//! Everything unsafe about zstd in mgo is in this file.

use crate::error::{Result, fail};
use std::marker::PhantomData;
use std::ptr::NonNull;
use zstd_sys as sys;

pub(super) use sys::ZSTD_cParameter as Parameter;

/// `ZSTD_c_forceAttachDict`, one of zstd's experimental parameters.
pub(super) const FORCE_ATTACH_DICT: Parameter = Parameter::ZSTD_c_experimentalParam4;
/// Its value that never copies a prepared dictionary's tables.
pub(super) const DICT_FORCE_ATTACH: i32 = 1;

/// The `hashLog` zstd itself would choose at `level` for a frame of
/// unknown size against a `dictionary`-byte dictionary.
pub(super) fn default_hash_log(level: i32, dictionary: usize) -> u32 {
    // SAFETY: a pure function of its arguments.
    unsafe { sys::ZSTD_getCParams(level, u64::MAX, dictionary) }.hashLog
}

/// zstd's name for an error code.
fn error(code: usize) -> crate::error::Error {
    // SAFETY: ZSTD_getErrorName returns a static NUL-terminated string for
    // any value.
    let name = unsafe { std::ffi::CStr::from_ptr(sys::ZSTD_getErrorName(code)) };
    fail(format!("zstd: {}", name.to_string_lossy()))
}

/// `code`, or its error.
fn check(code: usize) -> Result<usize> {
    // SAFETY: a pure function of its argument.
    if unsafe { sys::ZSTD_isError(code) } != 0 {
        Err(error(code))
    } else {
        Ok(code)
    }
}

/// A dictionary prepared once and shared by every thread's compressions:
/// zstd reads a prepared dictionary (`ZSTD_CDict`) without changing it.
/// It refers to its bytes, which it does not copy.
pub(super) struct Prepared<'a> {
    cdict: NonNull<sys::ZSTD_CDict>,
    bytes: PhantomData<&'a [u8]>,
}

// SAFETY: zstd documents a CDict as read-only once created, usable by
// several compression contexts at once; it is freed only on drop.
unsafe impl Send for Prepared<'_> {}
// SAFETY: as above.
unsafe impl Sync for Prepared<'_> {}

impl<'a> Prepared<'a> {
    /// Prepares `bytes` as raw content with `parameters` (level, window,
    /// table sizes), which override what the level alone would choose.
    pub(super) fn new(bytes: &'a [u8], parameters: &[(Parameter, i32)]) -> Result<Self> {
        // SAFETY: plain constructor; null on failure.
        let params = NonNull::new(unsafe { sys::ZSTD_createCCtxParams() })
            .ok_or_else(|| fail("zstd: cannot allocate parameters"))?;
        let result = (|| {
            for &(parameter, value) in parameters {
                // SAFETY: params is live.
                check(unsafe {
                    sys::ZSTD_CCtxParams_setParameter(params.as_ptr(), parameter, value)
                })?;
            }
            let no_custom_allocator = sys::ZSTD_customMem {
                customAlloc: None,
                customFree: None,
                opaque: std::ptr::null_mut(),
            };
            // SAFETY: bytes outlives the CDict (the lifetime 'a), which
            // refers to them (byRef) and never writes them; params is live
            // and only read.
            let cdict = unsafe {
                sys::ZSTD_createCDict_advanced2(
                    bytes.as_ptr().cast(),
                    bytes.len(),
                    sys::ZSTD_dictLoadMethod_e::ZSTD_dlm_byRef,
                    sys::ZSTD_dictContentType_e::ZSTD_dct_rawContent,
                    params.as_ptr(),
                    no_custom_allocator,
                )
            };
            NonNull::new(cdict)
                .ok_or_else(|| fail("zstd could not prepare the reference variant as a dictionary"))
        })();
        // SAFETY: created above, not used after this.
        unsafe { sys::ZSTD_freeCCtxParams(params.as_ptr()) };
        Ok(Self {
            cdict: result?,
            bytes: PhantomData,
        })
    }
}

impl Drop for Prepared<'_> {
    fn drop(&mut self) {
        // SAFETY: created by ZSTD_createCDict_advanced2, freed once; no
        // context refers to it any more (each reference is per frame).
        unsafe { sys::ZSTD_freeCDict(self.cdict.as_ptr()) };
    }
}

/// What a frame is compressed against.
#[derive(Clone, Copy)]
pub(super) enum Against<'a> {
    Nothing,
    /// Raw bytes just before the frame, indexed for this frame alone.
    Prefix(&'a [u8]),
    /// A prepared dictionary.
    Prepared(&'a Prepared<'a>),
}

/// A thread's compression context, reused for every frame.
pub(super) struct Context(NonNull<sys::ZSTD_CCtx>);

// SAFETY: a context is used by one thread at a time (&mut self).
unsafe impl Send for Context {}

impl Context {
    pub(super) fn new() -> Result<Self> {
        // SAFETY: plain constructor; null on failure.
        NonNull::new(unsafe { sys::ZSTD_createCCtx() })
            .map(Self)
            .ok_or_else(|| fail("zstd: cannot allocate a compression context"))
    }

    /// One frame of `input` with `parameters`, against `against`.
    pub(super) fn compress(
        &mut self,
        input: &[u8],
        parameters: &[(Parameter, i32)],
        against: Against<'_>,
    ) -> Result<Vec<u8>> {
        let cctx = self.0.as_ptr();
        // SAFETY: cctx is live and ours (&mut self); a reset also drops
        // any dictionary or prefix the previous frame referred to.
        check(unsafe {
            sys::ZSTD_CCtx_reset(
                cctx,
                sys::ZSTD_ResetDirective::ZSTD_reset_session_and_parameters,
            )
        })?;
        for &(parameter, value) in parameters {
            // SAFETY: as above.
            check(unsafe { sys::ZSTD_CCtx_setParameter(cctx, parameter, value) })?;
        }
        // SAFETY: the prefix or dictionary outlives this call, the only
        // frame that uses it; the reset above (or the next call's) ends
        // the reference before either can go away.
        match against {
            Against::Nothing => {}
            Against::Prefix(prefix) => check(unsafe {
                sys::ZSTD_CCtx_refPrefix(cctx, prefix.as_ptr().cast(), prefix.len())
            })
            .map(drop)?,
            Against::Prepared(prepared) => {
                check(unsafe { sys::ZSTD_CCtx_refCDict(cctx, prepared.cdict.as_ptr()) })
                    .map(drop)?
            }
        }
        // SAFETY: pure.
        let bound = unsafe { sys::ZSTD_compressBound(input.len()) };
        let mut out: Vec<u8> = Vec::with_capacity(bound);
        // SAFETY: out has `bound` bytes of capacity, enough for any frame
        // of input; zstd writes `written` of them, which are then set.
        let written = check(unsafe {
            sys::ZSTD_compress2(
                cctx,
                out.as_mut_ptr().cast(),
                bound,
                input.as_ptr().cast(),
                input.len(),
            )
        });
        // Whatever happened, the frame no longer refers to its prefix or
        // dictionary.
        // SAFETY: as above.
        unsafe {
            sys::ZSTD_CCtx_reset(
                cctx,
                sys::ZSTD_ResetDirective::ZSTD_reset_session_and_parameters,
            )
        };
        let written = written?;
        // SAFETY: zstd initialized the first `written` bytes (<= bound).
        unsafe { out.set_len(written) };
        Ok(out)
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: created by ZSTD_createCCtx, freed once.
        unsafe { sys::ZSTD_freeCCtx(self.0.as_ptr()) };
    }
}
