//! Work shared out among threads, results kept in order.

use crate::error::{self, Result, fail};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs `job(state, item)` for every item on up to `threads` threads, each
/// with its own `state`, and returns the results in item order.
pub fn parallel_map<I: Sync, S, T: Send>(
    items: &[I],
    threads: usize,
    state: impl Fn() -> S + Sync,
    job: impl Fn(&mut S, &I) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    let slots: Vec<Mutex<Option<Result<T>>>> = items.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, items.len().max(1)) {
            scope.spawn(|| {
                let mut state = state();
                loop {
                    let j = next.fetch_add(1, Ordering::Relaxed);
                    let (Some(item), Some(slot)) = (items.get(j), slots.get(j)) else {
                        break;
                    };
                    // A signal stops compression at the next chunk.
                    let result = if crate::interrupt::interrupted() {
                        Err(error::interrupted())
                    } else {
                        job(&mut state, item)
                    };
                    let failed = result.is_err();
                    *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
                    if failed {
                        // Stop everyone: the first error is reported.
                        next.store(items.len(), Ordering::Relaxed);
                    }
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .unwrap_or_else(|| Err(fail("stopped after an error")))
        })
        .collect()
}
