//! `MGODEBUG=extract`: the chosen variant, exactly as `go build` wrote it,
//! to stdout. The whole variant is verified before the first byte is
//! written, so a damaged bundle writes nothing at all.

use crate::bundle::Bundle;
use crate::fail::{Failure, Status, fail};
use crate::{sys, work};
use mgo_format::{Encoding, Entry};

const CANNOT_WRITE: &[u8] = b"MGODEBUG=extract: cannot write stdout";

/// Writes `entry`'s executable to stdout and exits 0.
pub fn run(bundle: &Bundle, entry: &Entry) -> ! {
    let stdout = sys::stdout();
    if sys::is_terminal(stdout) {
        fail(
            &[b"MGODEBUG=extract writes a binary: redirect stdout to a file"],
            Status::Extract,
        );
    }
    // `MGODEBUG=extract ./app | head` closes the pipe early: report it as
    // a failed extraction (status 124) rather than die by a signal.
    sys::ignore_sigpipe();
    let written = if entry.section_count != 0 {
        crate::rebuild_file(bundle, entry).map(|file| sys::write_all(stdout, file.bytes()))
    } else if entry.encoding == Encoding::Raw {
        verify_raw(bundle, entry).map(|()| sys::write_all(stdout, bundle.stored(entry)))
    } else {
        decode_and_write(bundle, entry)
    };
    match written {
        Ok(Ok(())) => sys::exit(0),
        Ok(Err(err)) => Failure::System(CANNOT_WRITE, err, Status::Extract).exit(),
        Err(failure) => failure.exit(),
    }
}

/// Checks every block of a raw variant where it lies in the bundle.
fn verify_raw(bundle: &Bundle, entry: &Entry) -> Result<(), Failure> {
    let blocks = bundle.blocks(entry)?;
    let level = entry.level;
    work::for_each(
        blocks.len(),
        work::runners(blocks.len(), entry.size, work::HASH_PARALLEL_MIN),
        &|_| true,
        &|| Ok(()),
        &|_, i| {
            let block = blocks.get(i);
            if crate::checksum(block.stored) == block.checksum {
                Ok(())
            } else {
                Err(Failure::Damaged(level, b"checksum mismatch"))
            }
        },
    )
}

/// Decodes the whole variant into memory (its reference first), every
/// block verified, then writes it.
#[cfg(feature = "decoder")]
fn decode_and_write(
    bundle: &Bundle,
    entry: &Entry,
) -> Result<Result<(), rustix::io::Errno>, Failure> {
    let blocks = bundle.blocks(entry)?;
    let mut reference = crate::decode::Reference::of(bundle, entry)?;
    let dictionary = crate::decode::dictionary_needed(&blocks, &|_| true);
    let dictionary = reference.prefix(dictionary)?;
    let memory = sys::map_anonymous(entry.size as usize, true).map_err(|_| Failure::NoMemory)?;
    crate::decode::into_memory(&memory, &blocks, entry, 0..blocks.len(), dictionary)?;
    Ok(sys::write_all(sys::stdout(), memory.bytes()))
}

/// The launcher of uncompressed bundles has no decoder.
#[cfg(not(feature = "decoder"))]
fn decode_and_write(_: &Bundle, entry: &Entry) -> Result<Result<(), rustix::io::Errno>, Failure> {
    Err(Failure::Unsupported(entry.encoding))
}
