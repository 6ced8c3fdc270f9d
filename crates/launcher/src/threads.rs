//! Just enough threads to verify and decode blocks on several CPUs: raw
//! `clone(2)` threads that share everything, run one closure and exit. No
//! libc means no pthreads; the launcher needs no thread-local storage, joins
//! by the kernel's clear-child-tid futex, and unmaps every thread's stack
//! before it returns, so nothing of them is left when the program starts.

use crate::sys;
use core::sync::atomic::{AtomicU32, Ordering};

/// Stack of each extra thread. The decoders keep their state on the heap;
/// their deepest call chains use a few KiB.
const STACK_SIZE: usize = 128 * 1024;

/// Page kept inaccessible below each stack, so an overflow faults instead of
/// writing over whatever lies below.
const GUARD_SIZE: usize = 4096;

/// Most threads the launcher starts besides its own.
pub const MAX_EXTRA: usize = 7;

/// How many threads to run work on: one per CPU this process may use, at
/// most `limit` and at most [`MAX_EXTRA`] + 1.
pub fn runners(limit: usize) -> usize {
    let cpus = sys::usable_cpus().map_or(1, |set| set.count() as usize);
    cpus.clamp(1, MAX_EXTRA + 1).min(limit.max(1))
}

/// Runs `work` on the calling thread and on `extra` more threads (at most
/// [`MAX_EXTRA`]), and returns when every one has returned. Each extra
/// thread is pinned to a CPU other than the caller's when there is one to
/// spare: left to the scheduler, a new thread can wait a millisecond for a
/// CPU while the caller runs on the one it was woken on. Threads that cannot
/// be created are simply not used: `work` must share out its items
/// dynamically, so that any number of runners finishes the job.
pub fn run(extra: usize, work: &(dyn Fn() + Sync)) {
    // Cleared by the kernel when the thread exits (CLONE_CHILD_CLEARTID).
    let alive: [AtomicU32; MAX_EXTRA] = [const { AtomicU32::new(0) }; MAX_EXTRA];
    let mut stacks: [Option<sys::Mapping>; MAX_EXTRA] = [const { None }; MAX_EXTRA];
    let mut spare_cpus = spare_cpus();
    for (flag, slot) in alive
        .iter()
        .zip(stacks.iter_mut())
        .take(extra.min(MAX_EXTRA))
    {
        let Ok(mut stack) = sys::map_anonymous(GUARD_SIZE + STACK_SIZE, false) else {
            break;
        };
        // SAFETY: the guard page is the start of our own fresh mapping.
        let _ = unsafe { sys::protect(stack.base() as usize, GUARD_SIZE, 0) };
        flag.store(1, Ordering::Relaxed);
        let arg = &work as *const &(dyn Fn() + Sync) as usize;
        // SAFETY: `work`, `alive` and the stack outlive the thread: this
        // function waits below until the kernel has cleared every flag; and
        // thread_main ends with exit_thread.
        match unsafe { sys::spawn_thread(stack.bytes_mut(), flag, thread_main, arg) } {
            Ok(tid) => {
                if let Some(cpu) = spare_cpus.next() {
                    let _ = sys::pin(tid, cpu);
                }
                *slot = Some(stack);
            }
            Err(_) => {
                flag.store(0, Ordering::Relaxed);
                break;
            }
        }
    }
    work();
    for flag in &alive {
        loop {
            let value = flag.load(Ordering::Acquire);
            if value == 0 {
                break;
            }
            sys::futex_wait(flag, value);
        }
    }
    // Every thread has exited: the stacks are unmapped as they drop.
    drop(stacks);
}

/// The CPUs this process may use, other than the one this thread runs on.
fn spare_cpus() -> impl Iterator<Item = usize> {
    let set = sys::usable_cpus();
    let current = sys::current_cpu();
    (0..sys::MAX_CPUS)
        .filter(move |&cpu| Some(cpu) != current && set.as_ref().is_some_and(|s| s.is_set(cpu)))
}

/// The first code a new thread runs, on its own stack: `arg` is the
/// address of the `&dyn Fn()` it is to call.
extern "C" fn thread_main(arg: usize) -> ! {
    // SAFETY: run() keeps the closure alive until this thread has exited.
    let work = unsafe { *(arg as *const &(dyn Fn() + Sync)) };
    work();
    sys::exit_thread()
}
