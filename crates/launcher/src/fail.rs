//! The one way out on failure: a single line on stderr and a documented exit
//! status. No `core::fmt` (it would cost kilobytes): lines are assembled from
//! fixed pieces.

use crate::sys;
use rustix::io::Errno;

/// Exit statuses of the launcher itself, listed in docs/LAUNCHER.md for the
/// people who ship bundles. A started variant's own statuses pass through.
#[derive(Clone, Copy)]
#[repr(i32)]
pub enum Status {
    /// `MGODEBUG=extract` could not write the variant out.
    Extract = 124,
    /// The bundle could not be read, or is truncated or damaged.
    Damaged = 125,
    /// The variant could not be put into a memfd or executed.
    Exec = 126,
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
fn describe(err: Errno, digits: &mut [u8; 12]) -> &[u8] {
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
