//! Sharing per-block work out among threads, one per usable CPU: blocks are
//! handed out one at a time from a shared counter, so the work evens out
//! whatever each block costs, and the first failure stops every thread
//! before its next block.

use crate::threads;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The first error any runner reported.
struct FirstError<E> {
    claimed: AtomicBool,
    slot: UnsafeCell<Option<E>>,
}

// SAFETY: the slot is written once, by the runner that claimed it, and read
// only after every runner has been joined.
unsafe impl<E: Send> Sync for FirstError<E> {}

impl<E> FirstError<E> {
    fn record(&self, error: E) {
        if !self.claimed.swap(true, Ordering::AcqRel) {
            // SAFETY: only the claiming runner writes, once.
            unsafe { *self.slot.get() = Some(error) };
        }
    }

    fn stopped(&self) -> bool {
        self.claimed.load(Ordering::Relaxed)
    }
}

/// Below this many bytes to verify, one thread does it: hashing runs at
/// 10 to 20 GB/s, and a helper thread costs tens of microseconds to start
/// and to wake on another CPU (more in a virtual machine).
pub const HASH_PARALLEL_MIN: u64 = 4 << 20;

/// Below this many bytes to decode, one thread does it (decoding runs at
/// 0.4 to 4 GB/s).
#[cfg(feature = "decoder")]
pub const DECODE_PARALLEL_MIN: u64 = 512 << 10;

/// How many runners `items` items of `bytes` in all deserve, when work
/// under `parallel_min` bytes is not worth a second thread.
pub fn runners(items: usize, bytes: u64, parallel_min: u64) -> usize {
    if bytes < parallel_min {
        1
    } else {
        threads::runners(items)
    }
}

/// Runs `job(state, i)` for every `i` below `count` for which `wanted(i)`,
/// on up to `runners` threads (the caller's included). Each runner makes
/// its own state with `make` when it takes its first item. Returns the
/// first error.
pub fn for_each<S, E: Send + Copy>(
    count: usize,
    runners: usize,
    wanted: &(dyn Fn(usize) -> bool + Sync),
    make: &(dyn Fn() -> Result<S, E> + Sync),
    job: &(dyn Fn(&mut S, usize) -> Result<(), E> + Sync),
) -> Result<(), E> {
    let next = AtomicUsize::new(0);
    let first = FirstError {
        claimed: AtomicBool::new(false),
        slot: UnsafeCell::new(None),
    };
    let work = || {
        let mut state = None;
        while !first.stopped() {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= count {
                return;
            }
            if !wanted(i) {
                continue;
            }
            let state = match &mut state {
                Some(state) => state,
                None => match make() {
                    Ok(made) => state.insert(made),
                    Err(error) => return first.record(error),
                },
            };
            if let Err(error) = job(state, i) {
                return first.record(error);
            }
        }
    };
    threads::run(runners.saturating_sub(1), &work);
    match first.slot.into_inner() {
        Some(error) => Err(error),
        None => Ok(()),
    }
}
