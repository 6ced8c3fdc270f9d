//! `MGODEBUG=extract`: the chosen variant, exactly as `go build` wrote it,
//! to stdout. The whole variant is verified before the first byte is
//! written, so a damaged bundle writes nothing at all.

use crate::bundle::Bundle;
use crate::fail::{Failure, Status, fail};
use crate::{sys, verify};
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
        crate::rebuild::file(bundle, entry).map(|file| sys::write_all(stdout, file.bytes()))
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
    verify::raw_blocks(
        entry.level,
        &blocks,
        &|_| true,
        &|block| block.stored,
        &|_| Ok::<(), Failure>(()),
    )
}

/// Decodes every block and verifies it, keeping nothing, then decodes them
/// again in order and writes each: memory is a block per runner (the
/// blocks tile the executable in order, at most 4 MiB each), not the
/// variant's size, whatever size its entry claims; the second pass costs
/// the decoding time again, which only extraction pays.
#[cfg(feature = "decoder")]
fn decode_and_write(
    bundle: &Bundle,
    entry: &Entry,
) -> Result<Result<(), rustix::io::Errno>, Failure> {
    let blocks = bundle.blocks(entry)?;
    let mut reference = crate::decode::Reference::of(bundle, entry)?;
    let dictionary = crate::decode::dictionary_needed(&blocks, &|_| true);
    let dictionary = reference.prefix(dictionary)?;
    // SAFETY: into the runners' own buffers.
    unsafe {
        verify::decoded_blocks(
            entry,
            &blocks,
            dictionary,
            &|_| true,
            verify::Output::Buffer,
            &|_, _| Ok::<(), Failure>(()),
        )?;
    }
    let largest = (0..blocks.len())
        .map(|i| blocks.get(i).size)
        .max()
        .unwrap_or(0);
    let mut decoder = verify::decoder()?;
    let mut buffer = sys::map_anonymous(largest, false).map_err(Failure::no_memory)?;
    for i in 0..blocks.len() {
        let block = blocks.get(i);
        let out = buffer
            .bytes_mut()
            .get_mut(..block.size)
            .ok_or(Failure::NoMemory)?;
        verify::decode_block(&mut decoder, entry, &block, out, dictionary)?;
        if let Err(err) = sys::write_all(sys::stdout(), out) {
            return Ok(Err(err));
        }
    }
    Ok(Ok(()))
}

/// The launcher of uncompressed bundles has no decoder.
#[cfg(not(feature = "decoder"))]
fn decode_and_write(_: &Bundle, entry: &Entry) -> Result<Result<(), rustix::io::Errno>, Failure> {
    Err(Failure::Unsupported(entry.encoding))
}
