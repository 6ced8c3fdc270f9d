//! Decoding an encoded variant (docs/FORMAT.md, "Encoded variants").
//!
//! Chunks are shared out among up to one thread per usable CPU. Each thread
//! decodes a chunk into its own chunk-sized buffer, checks the chunk's
//! checksum while the bytes are still in its cache, and writes them to their
//! place in the memfd. A write(2) of a cached buffer fills a memfd at half
//! the cost of faulting in a writable mapping of it (measured: 8 ms against
//! 16-19 ms for 20 MB), and memory stays at the memfd plus one chunk per
//! thread. A reference variant is decoded first, in place, into anonymous
//! memory that the exec frees.

use crate::codec::Decoder;
use crate::{sys, threads};
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use mgo_format::{Chunks, Encoding, Entry, Table};
use rustix::fd::BorrowedFd;
use rustix::io::Errno;

pub use crate::Failure;

/// Where decoded chunks go.
#[derive(Clone, Copy)]
pub enum Output<'a> {
    /// A file written at each chunk's offset, by several threads at once.
    File(BorrowedFd<'a>),
    /// A stream (a pipe, say): the whole variant is decoded and verified in
    /// memory first, so that a damaged one writes nothing at all.
    Stream(BorrowedFd<'a>),
}

/// Decodes `entry` of `table` from `segment` (the bundle segment's bytes)
/// into `output`, verifying every chunk.
pub fn unpack(
    segment: &[u8],
    table: &Table,
    entry: &Entry,
    output: Output<'_>,
) -> Result<(), Failure> {
    let cpus = sys::usable_cpus();
    let reference: &[u8] = match table.reference_of(entry) {
        None => &[],
        Some(reference) if reference.encoding == Encoding::Raw => stored(segment, reference),
        Some(reference) => {
            let chunks = parse(segment, reference, None)?;
            let memory =
                sys::map_anonymous(reference.size as usize, true).map_err(|_| Failure::NoMemory)?;
            // Verified too (about 0.07 ms per MB, shared among the threads):
            // the variant's own checksums would catch only the damage that
            // its chunks happen to reference, and damage is damage.
            let target = Target::Memory(memory.as_mut_ptr());
            decode_all(&chunks, reference, target, &[], cpus)?;
            memory
        }
    };
    let chunks = parse(segment, entry, Some(reference.len() as u64))?;
    match output {
        Output::File(fd) => decode_all(&chunks, entry, Target::File(fd), reference, cpus),
        Output::Stream(fd) => {
            let memory =
                sys::map_anonymous(entry.size as usize, true).map_err(|_| Failure::NoMemory)?;
            let target = Target::Memory(memory.as_mut_ptr());
            decode_all(&chunks, entry, target, reference, cpus)?;
            sys::write_all(fd, memory).map_err(Failure::Write)
        }
    }
}

/// The stored bytes of `entry`; Table::parse checked that they are in the segment.
fn stored<'a>(segment: &'a [u8], entry: &Entry) -> &'a [u8] {
    segment
        .get(entry.offset as usize..)
        .and_then(|rest| rest.get(..entry.stored_size as usize))
        .unwrap_or(&[])
}

fn parse<'a>(
    segment: &'a [u8],
    entry: &Entry,
    reference_size: Option<u64>,
) -> Result<Chunks<'a>, Failure> {
    if !Decoder::supports(entry.encoding) {
        return Err(Failure::Unsupported(entry.encoding));
    }
    let reference_size = if entry.reference == 0 {
        None
    } else {
        reference_size
    };
    Chunks::parse(stored(segment, entry), entry, reference_size)
        .map_err(|err| Failure::Damaged(entry.level, err.0.as_bytes()))
}

/// Where a chunk's decoded bytes go.
#[derive(Clone, Copy)]
enum Target<'a> {
    /// In place in a buffer of the variant's size.
    Memory(*mut u8),
    File(BorrowedFd<'a>),
}

// SAFETY: threads write disjoint chunk ranges of the buffer behind Memory.
unsafe impl Sync for Target<'_> {}

/// First failure of any thread, encoded: 0 none, then the codes below, or
/// 1000 + errno for a failed write.
const UNDECODABLE: u32 = 1;
const MISMATCH: u32 = 2;
const NO_MEMORY: u32 = 3;
const WRITE_ERRNO_BASE: u32 = 1000;

fn decode_all(
    chunks: &Chunks<'_>,
    entry: &Entry,
    target: Target<'_>,
    dictionary: &[u8],
    cpus: usize,
) -> Result<(), Failure> {
    let next = AtomicUsize::new(0);
    let failure = AtomicU32::new(0);
    let fail = |code: u32| {
        let _ = failure.compare_exchange(0, code, Ordering::Relaxed, Ordering::Relaxed);
    };
    let work = || {
        let Some(mut decoder) = Decoder::new() else {
            return fail(NO_MEMORY);
        };
        let buffer: &mut [u8] = match target {
            Target::Memory(_) => &mut [],
            Target::File(_) => match sys::map_anonymous(chunks.chunk_size(), false) {
                Ok(buffer) => buffer,
                Err(_) => return fail(NO_MEMORY),
            },
        };
        while failure.load(Ordering::Relaxed) == 0 {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= chunks.len() {
                return;
            }
            let chunk = chunks.get(i);
            let out: &mut [u8] = match target {
                // SAFETY: Chunks::parse checked that chunk ranges tile the
                // variant's size, which is the buffer's; each index is
                // handed to one thread only.
                Target::Memory(base) => unsafe {
                    core::slice::from_raw_parts_mut(base.add(chunk.offset as usize), chunk.size)
                },
                _ => match buffer.get_mut(..chunk.size) {
                    Some(out) => out,
                    None => return fail(UNDECODABLE),
                },
            };
            let dictionary = dictionary.get(chunk.dictionary.clone()).unwrap_or(&[]);
            if !decoder.decode(entry.encoding, chunk.stored, out, dictionary) {
                return fail(UNDECODABLE);
            }
            if mgo_format::checksum(out) != chunk.checksum {
                return fail(MISMATCH);
            }
            let written = match target {
                Target::Memory(_) => Ok(()),
                Target::File(fd) => sys::pwrite_all(fd, out, chunk.offset),
            };
            if let Err(err) = written {
                return fail(WRITE_ERRNO_BASE + err.raw_os_error() as u32);
            }
        }
    };
    let runners = cpus.clamp(1, threads::MAX_EXTRA + 1).min(chunks.len());
    threads::run(runners.saturating_sub(1), &work);
    match failure.into_inner() {
        // Runners stop early only after recording why.
        0 => Ok(()),
        NO_MEMORY => Err(Failure::NoMemory),
        UNDECODABLE => Err(Failure::Damaged(entry.level, b"undecodable data")),
        MISMATCH => Err(Failure::Damaged(entry.level, b"checksum mismatch")),
        code => Err(Failure::Write(Errno::from_raw_os_error(
            (code - WRITE_ERRNO_BASE) as i32,
        ))),
    }
}
