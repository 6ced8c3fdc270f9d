//! The one way out on failure: a single line on stderr and a documented exit
//! status. No `core::fmt` (it would cost kilobytes): lines are assembled from
//! fixed pieces.

use crate::sys;
use mgo_format::Encoding;
use rustix::io::Errno;

/// Exit statuses of the launcher itself, listed in docs/LAUNCHER.md for the
/// people who ship bundles. A started variant's own statuses pass through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Status {
    /// `MGODEBUG=extract` could not write the variant out.
    Extract = 124,
    /// The bundle is truncated or damaged, or cannot be read.
    Damaged = 125,
    /// The system would not let the variant start: out of descriptors or
    /// memory, a memfd or an exec refused.
    Exec = 126,
}

const DECODE_MEMORY: &[u8] = b"cannot allocate memory to decode the variant";

/// Why the launcher cannot go on.
#[derive(Clone, Copy, Debug)]
pub enum Failure {
    /// The stored bytes of the variant at this level are damaged.
    Damaged(u8, &'static [u8]),
    /// The launcher has no decoder for this encoding.
    Unsupported(Encoding),
    /// Memory to decode into could not be had.
    NoMemory,
    /// A system call failed: what was being done, and the error. The status
    /// is the one given, except that running out of a resource is never
    /// blamed on the bundle.
    System(&'static [u8], Errno, Status),
}

impl Failure {
    /// Memory to decode into could not be mapped: the kernel's reason is
    /// kept (ENOMEM, or EAGAIN or EPERM from a limit or a policy).
    #[cfg(feature = "decoder")]
    pub fn no_memory(err: Errno) -> Self {
        Self::System(DECODE_MEMORY, err, Status::Exec)
    }

    /// Reports the failure and exits.
    #[cold]
    pub fn exit(self) -> ! {
        match self {
            Self::Damaged(level, why) => fail(
                &[
                    b"variant ",
                    &level_name(level),
                    b" is damaged (",
                    why,
                    b"): download or copy the bundle again",
                ],
                Status::Damaged,
            ),
            Self::Unsupported(encoding) => fail(
                &[
                    b"this launcher has no ",
                    encoding.name().as_bytes(),
                    b" decoder: the bundle is damaged",
                ],
                Status::Damaged,
            ),
            Self::NoMemory => fail_errno(DECODE_MEMORY, Errno::NOMEM, Status::Exec),
            Self::System(what, err, status) => fail_errno(what, err, status_for(err, status)),
        }
    }
}

/// The status for a failed system call: the caller's, unless the error
/// says that the system ran out of something (descriptors, memory,
/// processes), which a damaged bundle cannot cause; there the plain build
/// would not get further either.
pub fn status_for(err: Errno, status: Status) -> Status {
    match err {
        Errno::MFILE | Errno::NFILE | Errno::NOMEM | Errno::AGAIN => Status::Exec,
        _ => status,
    }
}

/// `GOAMD64=vN`.
pub fn level_name(level: u8) -> [u8; 10] {
    let mut text = *b"GOAMD64=v0";
    text[9] = b'0'.wrapping_add(level);
    text
}

/// Writes `[mgo] launcher: ` and `parts` as one line on stderr.
pub fn say(parts: &[&[u8]]) {
    let mut line = [0u8; 512];
    let mut len = 0;
    for part in [&b"[mgo] launcher: "[..]]
        .iter()
        .chain(parts)
        .chain([&&b"\n"[..]])
    {
        for &b in part.iter() {
            // Keep room for the newline whatever the parts' length.
            if (len < line.len() - 1 || b == b'\n')
                && let Some(slot) = line.get_mut(len)
            {
                *slot = b;
                len += 1;
            }
        }
    }
    // Nothing sensible remains to be done if stderr is gone.
    let _ = sys::write_all(sys::stderr(), line.get(..len).unwrap_or(&[]));
}

/// Reports `parts` and exits with `status`.
#[cold]
pub fn fail(parts: &[&[u8]], status: Status) -> ! {
    say(parts);
    sys::exit(status as i32)
}

/// Reports `what: <errno's meaning>` and exits with `status`.
#[cold]
pub fn fail_errno(what: &[u8], err: Errno, status: Status) -> ! {
    let mut digits = [0u8; 12];
    let reason = describe(err, &mut digits);
    fail(&[what, b": ", reason], status)
}

/// A short description of the errors the launcher can meet; others by number.
pub fn describe(err: Errno, digits: &mut [u8; 12]) -> &[u8] {
    let known: &[u8] = match err {
        Errno::ACCESS => b"permission denied (EACCES)",
        Errno::PERM => b"operation not permitted (EPERM)",
        Errno::NOENT => b"no such file or directory (ENOENT)",
        Errno::NOMEM => b"out of memory (ENOMEM)",
        Errno::NOSPC => b"no space left (ENOSPC)",
        Errno::MFILE => b"too many open files (EMFILE)",
        Errno::NFILE => b"too many open files in system (ENFILE)",
        Errno::INVAL => b"invalid argument (EINVAL)",
        Errno::NOEXEC => b"exec format error (ENOEXEC)",
        Errno::TXTBSY => b"text file busy (ETXTBSY)",
        Errno::BADF => b"bad file descriptor (EBADF)",
        Errno::PIPE => b"broken pipe (EPIPE)",
        Errno::IO => b"input/output error (EIO)",
        Errno::NOSYS => b"function not implemented (ENOSYS)",
        Errno::TOOBIG => b"argument list too long (E2BIG)",
        Errno::FBIG => b"file too large (EFBIG)",
        Errno::AGAIN => b"resource temporarily unavailable (EAGAIN)",
        Errno::EXIST => b"the address is taken (EEXIST)",
        _ => b"",
    };
    if !known.is_empty() {
        return known;
    }
    let mut n = err.raw_os_error().unsigned_abs();
    let mut at = digits.len();
    loop {
        at -= 1;
        if let Some(slot) = digits.get_mut(at) {
            *slot = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || at <= 6 {
            break;
        }
    }
    at -= 6;
    if let Some(prefix) = digits.get_mut(at..at + 6) {
        prefix.copy_from_slice(b"errno ");
    }
    digits.get(at..).unwrap_or(&[])
}
