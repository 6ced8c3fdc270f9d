//! `malloc` and friends for the C zstd decoder (it allocates
//! its decoding state). Each thread allocates one state per phase and frees it
//! only when exec replaces the process, so a bump allocator over untouched
//! zero pages is all that is needed: no free lists, no locks.

use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// Room for the decoder states of every thread in both decoding phases (the
/// reference, then the variant; states are not carried across): a zstd
/// decoder takes about 160-230 KiB (its 128 KiB literal buffer included),
/// and up to 8 runners make 16 of them. Untouched pages cost nothing.
const ARENA_SIZE: usize = 8 << 20;

/// Enough for any C type (max_align_t).
const ALIGN: usize = 16;

/// The arena's first byte, once mapped. It is mapped at the first
/// allocation, not kept in .bss: the kernel's exec maps .bss before the
/// launcher runs, and an address-space limit (`ulimit -v`) below its size
/// would kill the process inside exec with SIGSEGV, where a failed mapping
/// here is an error the launcher reports.
static ARENA: AtomicPtr<u8> = AtomicPtr::new(core::ptr::null_mut());
static USED: AtomicUsize = AtomicUsize::new(0);

/// The arena, mapped by whichever thread gets here first.
fn arena() -> Option<*mut u8> {
    let base = ARENA.load(Ordering::Acquire);
    if !base.is_null() {
        return Some(base);
    }
    let mapping = crate::sys::map_anonymous(ARENA_SIZE, false).ok()?;
    let fresh = mapping.base();
    match ARENA.compare_exchange(
        core::ptr::null_mut(),
        fresh,
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        Ok(_) => {
            // Kept until exec replaces the process, as every allocation is.
            mapping.keep();
            Some(fresh)
        }
        // Another thread mapped one first; ours is unmapped on drop.
        Err(theirs) => Some(theirs),
    }
}

/// The arena's pages, if it was mapped: they go with the launcher's other
/// pages before the program starts.
pub fn pages() -> Option<(usize, usize)> {
    let base = ARENA.load(Ordering::Acquire);
    (!base.is_null()).then_some((base as usize, ARENA_SIZE))
}

/// # Safety
/// As C's `malloc`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn malloc(size: usize) -> *mut u8 {
    let Some(rounded) = size.checked_add(ALIGN - 1).map(|s| s & !(ALIGN - 1)) else {
        return core::ptr::null_mut();
    };
    let Some(base) = arena() else {
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
    unsafe { base.add(start) }
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
