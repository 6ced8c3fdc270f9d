//! The launcher: the start-up stub of every mgo bundle. It picks the variant
//! the CPU (or `GOAMD64`) calls for, verifies the bytes of it that will run,
//! and starts it in its own place: mapped from the bundle's own pages, or
//! through a sealed memfd when mapping is not possible or not wanted.
//!
//! Static, no libc, no allocator: it runs before every start of every program
//! built with mgo, in empty containers too. docs/LAUNCHER.md documents what it
//! does and its exit statuses, docs/FORMAT.md the bundle it reads.
//!
//! One job per module: `start` (the entry point and the initial stack),
//! `bundle` (opening and validating), the choice below, `mapped` and
//! `memfd` (the two ways to start), `file` (the mapped start from a file in
//! the user's cache), `jit` (gdb's view of a mapped level),
//! `extract`, `verify` (the checksum and
//! the loops that check blocks, as they lie or as they are decoded),
//! `work` and `threads` (sharing blocks out among CPUs), `decode` (a
//! reference variant), `rebuild` (re-creating inflated DWARF), `fail` (the
//! one exit path on failure), `sys` (every syscall).
#![no_std]
#![no_main]

mod bundle;
#[cfg(feature = "decoder")]
mod codec;
#[cfg(feature = "decoder")]
mod decode;
mod extract;
mod fail;
mod file;
#[cfg(feature = "zstd")]
mod heap;
mod jit;
mod mapped;
mod mem;
mod memfd;
#[cfg(feature = "dwarf")]
mod rebuild;
/// Without Go's encoder, a variant with inflated sections cannot be
/// re-created; mgo gives such bundles a launcher that has it.
#[cfg(not(feature = "dwarf"))]
#[path = "no_rebuild.rs"]
mod rebuild;
mod start;
mod sys;
mod threads;
mod verify;
mod work;

use bundle::Bundle;
use fail::{Status, fail, level_name, say};
use mgo_format::{Encoding, Entry};
use mgo_launcher::env::{self, Launch};
use mgo_launcher::text;
use start::Process;

/// A placeholder the linker gives a program header of its own (PT_NOTE).
/// mgo turns that header into the bundle segment's (docs/FORMAT.md): a
/// program header cannot be added to a linked executable without moving
/// everything after the header table, but one can be repurposed. The note
/// itself is well-formed (name "mgo", no descriptor) and otherwise unused.
#[used]
#[unsafe(link_section = ".note.mgo")]
static BUNDLE_SEGMENT_PLACEHOLDER: [u32; 4] = [4, 0, 0x6d67_6f00, u32::from_le_bytes(*b"mgo\0")];

/// A second placeholder, which mgo turns into a PT_LOAD header covering the
/// same bytes as the bundle segment, so that the kernel's exec maps them from
/// the very file it executes (docs/LAUNCHER.md, "Privileged bundles"). Its
/// 8-byte alignment keeps it out of the first note's PT_NOTE: the linker
/// gives notes of another alignment a program header of their own.
#[used]
#[unsafe(link_section = ".note.mgo.load")]
static BUNDLE_LOAD_PLACEHOLDER: AlignedNote = AlignedNote([
    4,
    0,
    mgo_format::LOAD_PLACEHOLDER_TYPE,
    u32::from_le_bytes(*b"mgo\0"),
]);

/// A note whose header is 8-byte aligned.
#[repr(C, align(8))]
struct AlignedNote([u32; 4]);

/// Which launcher this is, in the bytes of every bundle: `mgo inspect` shows
/// it, and `mgo verify` compares the launcher's bytes with its own only when
/// the version and flavour are its own (docs/FORMAT.md, "Launcher identity").
#[used]
#[unsafe(link_section = ".mgo.launcher")]
static IDENTITY: [u8; IDENTITY_LEN] = identity();

const IDENTITY_PREFIX: &str = "mgo-launcher ";
const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The flavour's name in crates/launcher/flavours.txt, from its features
/// (mgo's unit tests check that each embedded launcher says the name it is
/// listed under).
const FLAVOUR: &str = match (
    cfg!(feature = "dwarf"),
    cfg!(feature = "zstd"),
    cfg!(feature = "deflate"),
    cfg!(feature = "lz4"),
) {
    (false, true, _, _) => "zstd",
    (false, _, true, _) => "deflate",
    (false, _, _, true) => "lz4",
    (true, true, _, _) => "zstd+dwarf",
    (true, _, true, _) => "deflate+dwarf",
    (true, _, _, true) => "lz4+dwarf",
    _ => "plain",
};
/// "mgo-launcher VERSION FLAVOUR" and a NUL.
const IDENTITY_LEN: usize = IDENTITY_PREFIX.len() + VERSION.len() + 1 + FLAVOUR.len() + 1;

// Evaluated at compile time: an index out of range fails the build.
#[allow(clippy::indexing_slicing)]
const fn identity() -> [u8; IDENTITY_LEN] {
    let mut out = [0u8; IDENTITY_LEN];
    let parts = [
        IDENTITY_PREFIX.as_bytes(),
        VERSION.as_bytes(),
        b" ",
        FLAVOUR.as_bytes(),
    ];
    let mut at = 0;
    let mut p = 0;
    while p < parts.len() {
        let mut i = 0;
        while i < parts[p].len() {
            out[at] = parts[p][i];
            at += 1;
            i += 1;
        }
        p += 1;
    }
    out
}

/// Runs the launcher for the process the kernel started.
fn run(process: &Process) -> ! {
    let raw_debug = process.vars.mgodebug.unwrap_or(b"");
    let (debug, ignored) = env::effective_debug(raw_debug, process.secure);
    if ignored {
        say(&[b"ignoring MGODEBUG: the program runs with elevated privileges (AT_SECURE)"]);
    }
    if debug.unknown {
        let mut escaped = [0u8; 256];
        say(&[
            b"ignoring unknown items in MGODEBUG=",
            text::escape(raw_debug, &mut escaped),
            b" (known: log, extract, memfd, file)",
        ]);
    }
    let goamd64 = process.vars.goamd64.unwrap_or(b"");
    let wanted = match env::effective_goamd64(goamd64, process.secure) {
        env::Goamd64::Level(level) => level,
        env::Goamd64::Unset => verify::cpu_level(),
        env::Goamd64::Invalid => {
            let mut escaped = [0u8; 256];
            say(&[
                b"ignoring GOAMD64=",
                text::escape(goamd64, &mut escaped),
                b": expected v1, v2, v3 or v4; detecting the CPU instead",
            ]);
            verify::cpu_level()
        }
    };

    let bundle = Bundle::open(process);
    let entry = *bundle.table.choose(wanted);
    if debug.extract {
        if debug.log {
            say(&[b"extracting variant ", &level_name(entry.level)]);
        }
        extract::run(&bundle, &entry);
    }
    let reference = bundle.table.reference_of(&entry).map(|r| r.level);
    let log = |how: &[&[u8]]| {
        if debug.log {
            starting(&entry, reference, how);
        }
    };
    let launch = env::launch(
        bundle.table.memfd_by_default(),
        bundle.table.file_by_default(),
        &debug,
        process.secure,
    );
    let mut no_file: Option<file::Refusal> = None;
    if launch == Launch::File {
        let mut place = file::Place {
            base: b"",
            rest: b"",
            name: [0; 256],
        };
        match file::prepare(process, &bundle, &entry, &mut place) {
            Ok(ready) => {
                drop(bundle);
                log(&[b"file ", place.base, place.rest, place.name()]);
                mapped::jump(process, ready, entry.level)
            }
            Err(Err(failure)) => failure.exit(),
            Err(Ok(why)) => no_file = Some(why),
        }
    }
    let refusal = match launch {
        Launch::Mapped | Launch::File => match mapped::prepare(process, &bundle, &entry, None) {
            Ok(ready) => {
                // Nothing of the bundle is needed any more: its mapping and
                // descriptor go before the program starts.
                drop(bundle);
                match no_file {
                    Some(why) => log(&[b"mapped; no cache file: ", why.as_bytes()]),
                    None => log(&[b"mapped"]),
                }
                mapped::jump(process, ready, entry.level)
            }
            Err(mapped::Stop::Failed(failure)) => failure.exit(),
            Err(mapped::Stop::Refused(why)) => Some(why),
        },
        Launch::MemfdByBundle | Launch::MemfdAsked => None,
    };
    memfd::start(process, &bundle, &entry, &|| match refusal {
        Some(why) => log(&[b"memfd; cannot map it: ", why.as_bytes()]),
        None => log(&[b"memfd"]),
    })
}

/// `MGODEBUG=log`'s line: the level, how it is stored, how it starts.
fn starting(entry: &Entry, reference: Option<u8>, how: &[&[u8]]) {
    let encoded = entry.encoding != Encoding::Raw;
    let reference = reference.map(level_name);
    let mut parts: [&[u8]; 12] = [
        b"starting variant ",
        &level_name(entry.level),
        b" (",
        if encoded {
            entry.encoding.name().as_bytes()
        } else {
            b""
        },
        match (&reference, encoded) {
            (Some(_), _) => b", against ",
            (None, true) => b", ",
            (None, false) => b"",
        },
        reference.as_ref().map_or(&b""[..], |r| &r[..]),
        if reference.is_some() { b", " } else { b"" },
        b"",
        b"",
        b"",
        b"",
        b")",
    ];
    for (slot, part) in parts.iter_mut().skip(7).zip(how) {
        *slot = part;
    }
    say(&parts);
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // Unreachable by design (no indexing that can fail, no unwrap); if it ever
    // happens, fail like any other internal error rather than fault.
    fail(&[b"internal error"], Status::Exec)
}
