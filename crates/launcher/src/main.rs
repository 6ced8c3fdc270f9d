//! The launcher: the start-up stub of every mgo bundle. It picks the variant
//! the CPU (or `GOAMD64`) calls for, copies it into a sealed memfd while
//! verifying its checksum, and execs it in its own place: same PID, same
//! argv, environment and descriptors.
//!
//! Static, no libc, no allocator: it runs before every start of every program
//! built with mgo, in empty containers too. docs/LAUNCHER.md documents what it
//! does and its exit statuses, docs/FORMAT.md the bundle it reads.
#![no_std]
#![no_main]

#[cfg(feature = "decoder")]
mod codec;
mod fail;
#[cfg(feature = "zstd")]
mod heap;
mod mem;
mod sys;
#[cfg(feature = "decoder")]
mod threads;
#[cfg(feature = "decoder")]
mod unpack;

use core::ffi::CStr;
use fail::{Status, fail, fail_errno, say};
use mgo_format::{Encoding, Entry, SEGMENT_TYPE, Table};
use mgo_launcher::{cpu, env, name};
use rustix::io::Errno;

/// Bytes hashed and written per step: small enough to stay in the L2 cache
/// between being hashed and being copied by the kernel, large enough that the
/// syscalls cost nothing next to the copy.
const CHUNK: usize = 256 * 1024;

/// From this size on, a forked child verifies the checksum on another CPU
/// while this process copies: the hash costs ~0.07 ms per MiB, the fork
/// ~0.1 ms. Below it, hashing each chunk just before copying it is cheaper.
const PARALLEL_VERIFY_MIN: usize = 4 << 20;

/// Auxiliary vector keys the launcher reads (include/uapi/linux/auxvec.h).
const AT_PHDR: usize = 3;
const AT_PHNUM: usize = 5;
const AT_EXECFN: usize = 31;

/// A placeholder the linker gives a program header of its own (PT_NOTE).
/// mgo turns that header into the bundle segment's (docs/FORMAT.md): a
/// program header cannot be added to a linked executable without moving
/// everything after the header table, but one can be repurposed. The note
/// itself is well-formed (name "mgo", no descriptor) and otherwise unused.
#[used]
#[unsafe(link_section = ".note.mgo")]
static BUNDLE_SEGMENT_PLACEHOLDER: [u32; 4] = [4, 0, 0x6d67_6f00, u32::from_le_bytes(*b"mgo\0")];

/// Size of an ELF64 program header.
const PHDR_SIZE: usize = 56;

/// The process's entry point: hands the initial stack pointer to [`start`].
///
/// # Safety
/// Only the kernel calls it, once, with the initial process stack.
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _start() -> ! {
    core::arch::naked_asm!(
        "xor ebp, ebp",
        "mov rdi, rsp",
        "and rsp, -16",
        "call {start}",
        "ud2",
        start = sym start,
    )
}

/// What the kernel hands a new process, read off its initial stack.
struct Process {
    argv: *const *const u8,
    envp: *const *const u8,
    goamd64: Option<&'static [u8]>,
    mgodebug: Option<&'static [u8]>,
    bundle_segment: Option<Segment>,
    exec_path: Option<&'static CStr>,
}

/// Where the bundle's table and variants are in the file.
#[derive(Clone, Copy)]
struct Segment {
    offset: u64,
    size: u64,
}

/// Reads argc, argv, envp and the auxiliary vector (System V AMD64 ABI,
/// "Process Initialization").
///
/// # Safety
/// `sp` must be the stack pointer the kernel started the process with.
unsafe extern "C" fn start(sp: *const usize) -> ! {
    // SAFETY: the kernel lays out argc, argv[], NULL, envp[], NULL, auxv pairs.
    let process = unsafe {
        let argc = *sp;
        let argv = sp.add(1).cast::<*const u8>();
        let envp = argv.add(argc + 1);
        let mut goamd64 = None;
        let mut mgodebug = None;
        let mut cursor = envp;
        while !(*cursor).is_null() {
            let entry = *cursor;
            // Most variables differ in their first byte; only candidates are measured.
            if *entry == b'G' || *entry == b'M' {
                let entry = CStr::from_ptr(entry.cast()).to_bytes();
                if let Some(value) = env::value_of(entry, b"GOAMD64") {
                    goamd64 = Some(value);
                } else if let Some(value) = env::value_of(entry, b"MGODEBUG") {
                    mgodebug = Some(value);
                }
            }
            cursor = cursor.add(1);
        }
        let mut auxv = cursor.add(1).cast::<usize>();
        let (mut phdr, mut phnum, mut exec_path) = (0usize, 0usize, None);
        while *auxv != 0 {
            let value = *auxv.add(1);
            match *auxv {
                AT_PHDR => phdr = value,
                AT_PHNUM => phnum = value,
                AT_EXECFN if value != 0 => exec_path = Some(CStr::from_ptr(value as *const _)),
                _ => {}
            }
            auxv = auxv.add(2);
        }
        Process {
            argv,
            envp,
            goamd64,
            mgodebug,
            bundle_segment: find_segment(phdr, phnum),
            exec_path,
        }
    };
    run(&process)
}

/// Finds the bundle segment among the program headers, which the kernel
/// mapped with the launcher's first segment and pointed to in AT_PHDR.
///
/// # Safety
/// `phdr` and `phnum` must come from the auxiliary vector.
unsafe fn find_segment(phdr: usize, phnum: usize) -> Option<Segment> {
    if phdr == 0 {
        return None;
    }
    for i in 0..phnum {
        // SAFETY: the kernel maps all `phnum` headers at `phdr`; fields are
        // read unaligned-safe at their ELF64 offsets.
        let (kind, offset, size) = unsafe {
            let header = (phdr + i * PHDR_SIZE) as *const u8;
            (
                header.cast::<u32>().read_unaligned(),
                header.add(8).cast::<u64>().read_unaligned(),
                header.add(32).cast::<u64>().read_unaligned(),
            )
        };
        if kind == SEGMENT_TYPE {
            return Some(Segment { offset, size });
        }
    }
    None
}

fn level_name(level: u8) -> [u8; 10] {
    let mut text = *b"GOAMD64=v0";
    text[9] = b'0' + level;
    text
}

fn run(process: &Process) -> ! {
    let debug = env::mgodebug(process.mgodebug.unwrap_or(b""));
    if debug.unknown {
        say(&[
            b"ignoring unknown items in MGODEBUG=",
            process.mgodebug.unwrap_or(b""),
            b" (known: log, extract)",
        ]);
    }
    let wanted = match env::goamd64(process.goamd64.unwrap_or(b"")) {
        env::Goamd64::Level(level) => level,
        env::Goamd64::Unset => cpu::level(&cpu::snapshot()),
        env::Goamd64::Invalid => {
            say(&[
                b"ignoring GOAMD64=",
                process.goamd64.unwrap_or(b""),
                b": expected v1, v2, v3 or v4; detecting the CPU instead",
            ]);
            cpu::level(&cpu::snapshot())
        }
    };

    let Some(segment) = process.bundle_segment else {
        fail(
            &[b"no bundle segment in this executable: it was not written by mgo"],
            Status::Damaged,
        )
    };
    let bundle = sys::open_bundle(process.exec_path)
        .unwrap_or_else(|err| fail_errno(b"cannot open the bundle", err, Status::Damaged));
    let bundle = sys::borrow(&bundle);
    let file_size = sys::file_size(bundle)
        .unwrap_or_else(|err| fail_errno(b"cannot stat the bundle", err, Status::Damaged));
    let Ok(segment_len) = usize::try_from(segment.size) else {
        fail(&[b"bundle segment is too large"], Status::Damaged)
    };
    if segment
        .offset
        .checked_add(segment.size)
        .is_none_or(|end| end > file_size)
    {
        fail(
            &[b"bundle is truncated: download or copy it again"],
            Status::Damaged,
        );
    }
    let bytes = sys::map_file(bundle, segment.offset, segment_len)
        .unwrap_or_else(|err| fail_errno(b"cannot map the bundle", err, Status::Damaged));
    let table = Table::parse(bytes, segment.size).unwrap_or_else(|err| {
        fail(
            &[err.0.as_bytes(), b": download or copy it again"],
            Status::Damaged,
        )
    });
    let entry = table.choose(wanted);
    // Table::parse checked that every entry lies inside the segment.
    let variant = bytes
        .get(entry.offset as usize..)
        .and_then(|rest| rest.get(..entry.size as usize))
        .unwrap_or(&[]);
    let level = level_name(entry.level);

    if debug.extract {
        if debug.log {
            say(&[b"extracting variant ", &level]);
        }
        if entry.encoding == Encoding::Raw {
            extract(variant, entry);
        }
        let stdout = sys::stdout();
        refuse_terminal(stdout);
        decode(bytes, &table, entry, Output::Stream(stdout))
            .unwrap_or_else(|failure| report(failure, CANNOT_WRITE_STDOUT, Status::Extract));
        sys::exit(0)
    }

    let mut memfd_name = [0u8; name::MAX_NAME + 1];
    let path = process.exec_path.map_or(&b"mgo-bundle"[..], CStr::to_bytes);
    let len = name::memfd_name(path, entry.level, &mut memfd_name);
    let memfd_name =
        CStr::from_bytes_with_nul(memfd_name.get(..=len).unwrap_or(b"\0")).unwrap_or(c"mgo-bundle");
    let memfd = sys::create_memfd(memfd_name).unwrap_or_else(|err| {
        fail_errno(b"cannot create a memfd for the variant", err, Status::Exec)
    });
    let memfd = sys::borrow(&memfd);
    let cannot_fill = b"cannot fill the memfd";
    if entry.encoding == Encoding::Raw {
        match copy_verified(variant, entry, memfd) {
            Ok(true) => {}
            Ok(false) => report(
                Failure::Damaged(entry.level, b"checksum mismatch"),
                cannot_fill,
                Status::Exec,
            ),
            Err(err) => report(Failure::Write(err), cannot_fill, Status::Exec),
        }
    } else {
        decode(bytes, &table, entry, Output::File(memfd))
            .unwrap_or_else(|failure| report(failure, cannot_fill, Status::Exec));
    }
    sys::seal(memfd).unwrap_or_else(|err| fail_errno(b"cannot seal the memfd", err, Status::Exec));
    if debug.log {
        // Encoded variants also say how they were stored.
        let encoded = entry.encoding != Encoding::Raw;
        let reference = table.reference_of(entry).map(|r| level_name(r.level));
        say(&[
            b"starting variant ",
            &level,
            if encoded { b" (" } else { b"" },
            if encoded {
                entry.encoding.name().as_bytes()
            } else {
                b""
            },
            if reference.is_some() {
                b", against "
            } else {
                b""
            },
            reference.as_ref().map_or(&b""[..], |r| &r[..]),
            if encoded { b")" } else { b"" },
        ]);
    }
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
    fail_errno(b"cannot execute the variant", err, Status::Exec)
}

/// Copies `variant` into `memfd` and says whether its checksum matched.
/// Either way the copy is never staged in a buffer of ours, and nothing is
/// executed before the verdict.
fn copy_verified(
    variant: &[u8],
    entry: &Entry,
    memfd: rustix::fd::BorrowedFd<'_>,
) -> Result<bool, Errno> {
    if variant.len() >= PARALLEL_VERIFY_MIN && sys::usable_cpus() > 1 {
        match sys::fork() {
            Ok(None) => {
                // The child: verify and report through the exit status.
                let good = mgo_format::checksum(variant) == entry.checksum;
                sys::exit(if good { 0 } else { 1 })
            }
            Ok(Some(child)) => {
                copy(variant, memfd)?;
                return Ok(match sys::wait(child) {
                    Ok(Some(0)) => true,
                    Ok(Some(1)) => false,
                    // The verdict was lost (SIGCHLD ignored, see sys::wait)
                    // or the child was killed (OOM killer, a stray signal):
                    // verify here rather than blame the bundle.
                    _ => mgo_format::checksum(variant) == entry.checksum,
                });
            }
            // No process to spare (RLIMIT_NPROC, a seccomp policy): go on alone.
            Err(_) => {}
        }
    }
    // One pass: each chunk is hashed just before the kernel copies it, while
    // it is in the cache.
    let mut hasher = xxhash_rust::xxh3::Xxh3Default::new();
    for chunk in variant.chunks(CHUNK) {
        hasher.update(chunk);
        sys::write_all(memfd, chunk)?;
    }
    Ok(hasher.digest() == entry.checksum)
}

fn copy(variant: &[u8], memfd: rustix::fd::BorrowedFd<'_>) -> Result<(), Errno> {
    for chunk in variant.chunks(CHUNK) {
        sys::write_all(memfd, chunk)?;
    }
    Ok(())
}

/// Why a variant could not be put where it runs or is extracted to.
#[derive(Clone, Copy)]
pub enum Failure {
    /// The launcher has no decoder for this encoding.
    Unsupported(Encoding),
    /// The stored bytes of the variant at this level are damaged.
    Damaged(u8, &'static [u8]),
    /// Memory for decoding could not be had.
    #[cfg(feature = "decoder")]
    NoMemory,
    /// Writing the output failed.
    Write(Errno),
}

/// Where an encoded variant's decoded bytes go.
#[cfg(feature = "decoder")]
use unpack::Output;

/// Where an encoded variant's decoded bytes would go: the plain launcher
/// has no decoder, so it never uses the descriptor.
#[cfg(not(feature = "decoder"))]
enum Output<'a> {
    File(#[allow(dead_code)] rustix::fd::BorrowedFd<'a>),
    Stream(#[allow(dead_code)] rustix::fd::BorrowedFd<'a>),
}

/// Decodes an encoded variant into `output`, verifying it.
#[cfg(feature = "decoder")]
fn decode(segment: &[u8], table: &Table, entry: &Entry, output: Output<'_>) -> Result<(), Failure> {
    unpack::unpack(segment, table, entry, output)
}

/// The launcher of uncompressed bundles has no decoder: an encoded entry in
/// its bundle means the bundle was damaged or assembled by hand.
#[cfg(not(feature = "decoder"))]
fn decode(_: &[u8], _: &Table, entry: &Entry, _: Output<'_>) -> Result<(), Failure> {
    Err(Failure::Unsupported(entry.encoding))
}

const CANNOT_WRITE_STDOUT: &[u8] = b"MGODEBUG=extract: cannot write stdout";

/// Reports why a variant could not be decoded or written, and exits.
/// `write_what` and `write_status` describe a failed write.
fn report(failure: Failure, write_what: &[u8], write_status: Status) -> ! {
    match failure {
        Failure::Unsupported(encoding) => fail(
            &[
                b"this launcher has no ",
                encoding.name().as_bytes(),
                b" decoder: the bundle is damaged",
            ],
            Status::Damaged,
        ),
        Failure::Damaged(level, why) => fail(
            &[
                b"variant ",
                &level_name(level),
                b" is damaged (",
                why,
                b"): download or copy the bundle again",
            ],
            Status::Damaged,
        ),
        #[cfg(feature = "decoder")]
        Failure::NoMemory => fail_errno(
            b"cannot allocate memory to decode the variant",
            Errno::NOMEM,
            Status::Exec,
        ),
        Failure::Write(err) => fail_errno(write_what, err, write_status),
    }
}

/// `MGODEBUG=extract` writes a binary; a terminal is not the place for it.
fn refuse_terminal(stdout: rustix::fd::BorrowedFd<'_>) {
    if sys::is_terminal(stdout) {
        fail(
            &[b"MGODEBUG=extract writes a binary: redirect stdout to a file"],
            Status::Extract,
        );
    }
}

/// `MGODEBUG=extract`: writes the verified variant to stdout and exits 0.
fn extract(variant: &[u8], entry: &Entry) -> ! {
    let stdout = sys::stdout();
    refuse_terminal(stdout);
    if mgo_format::checksum(variant) != entry.checksum {
        report(
            Failure::Damaged(entry.level, b"checksum mismatch"),
            b"",
            Status::Extract,
        );
    }
    if let Err(err) = sys::write_all(stdout, variant) {
        report(Failure::Write(err), CANNOT_WRITE_STDOUT, Status::Extract);
    }
    sys::exit(0)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // Unreachable by design (no indexing that can fail, no unwrap); if it ever
    // happens, fail like any other internal error rather than fault.
    fail(&[b"internal error"], Status::Exec)
}
