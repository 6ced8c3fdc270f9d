//! `malloc` and friends for the C zstd decoder (it allocates
//! its decoding state). Each thread allocates one state per phase and frees it
//! only when exec replaces the process, so a bump allocator over untouched
//! zero pages is all that is needed: no free lists, no locks.

use core::sync::atomic::{AtomicUsize, Ordering};

/// Room for the decoder states of every thread in both decoding phases (the
/// reference, then the variant; states are not carried across): a zstd
/// decoder takes about 160-230 KiB (its 128 KiB literal buffer included),
/// and up to 8 runners make 16 of them. Untouched .bss pages cost nothing.
const ARENA_SIZE: usize = 8 << 20;

/// Enough for any C type (max_align_t).
const ALIGN: usize = 16;

/// In .bss: costs no file bytes, and pages cost nothing until touched.
struct Arena(core::cell::UnsafeCell<[u8; ARENA_SIZE]>);

// SAFETY: disjoint ranges are handed out through the atomic cursor below.
unsafe impl Sync for Arena {}

static ARENA: Arena = Arena(core::cell::UnsafeCell::new([0; ARENA_SIZE]));
static USED: AtomicUsize = AtomicUsize::new(0);

/// # Safety
/// As C's `malloc`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn malloc(size: usize) -> *mut u8 {
    let Some(rounded) = size.checked_add(ALIGN - 1).map(|s| s & !(ALIGN - 1)) else {
        return core::ptr::null_mut();
    };
    let start = USED.fetch_add(rounded, Ordering::Relaxed);
    if start
        .checked_add(rounded)
        .is_none_or(|end| end > ARENA_SIZE)
    {
        return core::ptr::null_mut();
    }
    // SAFETY: start..start+rounded is inside the arena and given out once.
    unsafe { ARENA.0.get().cast::<u8>().add(start) }
}

/// # Safety
/// As C's `calloc`. Arena memory is never reused, so it is still zero.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn calloc(count: usize, size: usize) -> *mut u8 {
    match count.checked_mul(size) {
        // SAFETY: as malloc.
        Some(total) => unsafe { malloc(total) },
        None => core::ptr::null_mut(),
    }
}

/// # Safety
/// As C's `free`. The memory is reclaimed by exec.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn free(_: *mut u8) {}
