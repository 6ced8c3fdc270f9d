//! The memfd start, kept as a fallback and on request (`MGODEBUG=memfd`,
//! `MGO_LAUNCH=memfd`): the whole variant is written, verified, into a
//! sealed memfd, which is then executed in this process's place, so the
//! kernel itself loads it.

use crate::bundle::Bundle;
use crate::fail::{Failure, Status};
use crate::start::Process;
use crate::{sys, verify};
use core::ffi::CStr;
use mgo_format::{Block, Blocks, Encoding, Entry};
use mgo_launcher::name;
use rustix::fd::BorrowedFd;
use rustix::io::Errno;

/// Starts `entry` through a memfd; `log` says how just before the exec.
pub fn start(process: &Process, bundle: &Bundle, entry: &Entry, log: &dyn Fn()) -> ! {
    let mut memfd_name = [0u8; name::MAX_NAME + 1];
    let path = process.exec_path.map_or(&b"mgo-bundle"[..], CStr::to_bytes);
    let len = name::memfd_name(path, entry.level, &mut memfd_name);
    let memfd_name = CStr::from_bytes_until_nul(memfd_name.get(..=len).unwrap_or(b"\0"))
        .unwrap_or(c"mgo-bundle");
    let memfd = sys::create_memfd(memfd_name).unwrap_or_else(|err| {
        Failure::System(b"cannot create a memfd for the variant", err, Status::Exec).exit()
    });
    let memfd = sys::borrow(&memfd);
    fill(bundle, entry, memfd).unwrap_or_else(|failure| failure.exit());
    sys::seal(memfd)
        .unwrap_or_else(|err| Failure::System(b"cannot seal the memfd", err, Status::Exec).exit());
    log();
    // SAFETY: argv and envp are the kernel's own NULL-terminated arrays.
    let mut err = unsafe { sys::exec_fd(memfd, process.argv, process.envp) };
    if err == Errno::NOENT {
        // execveat(2), BUGS: when the program must be reopened by path during
        // exec (binfmt_misc, e.g. qemu-user registered as an interpreter), a
        // close-on-exec descriptor is gone by then and exec fails with ENOENT.
        // Left open, the variant inherits one stray descriptor; that beats not
        // starting.
        if sys::keep_open_across_exec(memfd).is_ok() {
            // SAFETY: as above.
            err = unsafe { sys::exec_fd(memfd, process.argv, process.envp) };
        }
    }
    Failure::System(b"cannot execute the variant", err, Status::Exec).exit()
}

const CANNOT_FILL: &[u8] = b"cannot fill the memfd";

/// Writes every block of the variant into the memfd (or the file start's
/// file), each verified first, on one thread per usable CPU. Not inlined:
/// both starts share one copy of it (the launcher's size is a budget).
#[inline(never)]
pub fn fill(bundle: &Bundle, entry: &Entry, memfd: BorrowedFd<'_>) -> Result<(), Failure> {
    if entry.section_count != 0 {
        let file = crate::rebuild::file(bundle, entry)?;
        return sys::pwrite_all(memfd, file.bytes(), 0)
            .map_err(|err| Failure::System(CANNOT_FILL, err, Status::Exec));
    }
    let blocks = bundle.blocks(entry)?;
    let write = |block: &Block<'_>, bytes: &[u8]| {
        sys::pwrite_all(memfd, bytes, block.offset)
            .map_err(|err| Failure::System(CANNOT_FILL, err, Status::Exec))
    };
    if entry.encoding == Encoding::Raw {
        // Each block is hashed where it lies in the bundle, then the kernel
        // copies it from there while it is still in the cache.
        return verify::raw_blocks(
            entry.level,
            &blocks,
            &|_| true,
            &|block| block.stored,
            &|block| write(block, block.stored),
        );
    }
    decode_into_file(bundle, entry, &blocks, &write)
}

/// Decodes every block into a buffer of the runner's, verifies it and
/// writes it at its place: a write(2) of a cached buffer fills a memfd at
/// half the cost of faulting in a writable mapping of it
/// (docs/DESIGN.md, "Filling the memfd").
#[cfg(feature = "decoder")]
fn decode_into_file(
    bundle: &Bundle,
    entry: &Entry,
    blocks: &Blocks<'_>,
    write: &verify::Then<'_, Failure>,
) -> Result<(), Failure> {
    let mut reference = crate::decode::Reference::of(bundle, entry)?;
    let dictionary = crate::decode::dictionary_needed(blocks, &|_| true);
    let dictionary = reference.prefix(dictionary)?;
    // SAFETY: into the runners' own buffers.
    unsafe {
        verify::decoded_blocks(
            entry,
            blocks,
            dictionary,
            &|_| true,
            verify::Output::Buffer,
            write,
        )
    }
}

/// The launcher of uncompressed bundles has no decoder: an encoded entry in
/// its bundle means the bundle was damaged or assembled by hand.
#[cfg(not(feature = "decoder"))]
fn decode_into_file(
    _: &Bundle,
    entry: &Entry,
    _: &Blocks<'_>,
    _: &verify::Then<'_, Failure>,
) -> Result<(), Failure> {
    Err(Failure::Unsupported(entry.encoding))
}
