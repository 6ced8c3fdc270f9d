//! The command's one error type. Every failure becomes an `Error`, and its
//! exit status is decided here and nowhere else (docs/CLI.md, "Exit status").

use std::fmt;
use std::process::ExitStatus;

/// Why mgo stops: what to say (if go has not said it all) and what kind of
/// failure it is, which decides the exit status.
#[derive(Debug)]
pub struct Error {
    message: Option<String>,
    kind: Kind,
}

/// The kinds of failure, each with its exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Something mgo refuses or could not do: 1.
    Failed,
    /// A usage error on the command line: 2.
    Usage,
    /// SIGINT, SIGTERM, SIGHUP or SIGQUIT: 130.
    Interrupted,
    /// A `go` command failed: its own status (1 if a signal ended it).
    Go(u8),
}

/// A file name as mgo echoes it in a message: names come from the user's
/// files and arguments, so, as the launcher does for what it echoes, only
/// printable ASCII is kept as it is, and a newline cannot forge a second
/// `mgo:` line nor an escape sequence repaint the terminal.
pub fn shown(path: &std::path::Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    let mut out = vec![0u8; bytes.len() * 4];
    let escaped = mgo_launcher::text::escape(bytes, &mut out);
    String::from_utf8_lossy(escaped).into_owned()
}

/// The command's results.
pub type Result<T> = std::result::Result<T, Error>;

/// A failure mgo reports itself, status 1.
pub fn fail(message: impl Into<String>) -> Error {
    Error {
        message: Some(message.into()),
        kind: Kind::Failed,
    }
}

/// A usage error, status 2.
pub fn usage(message: impl Into<String>) -> Error {
    Error {
        message: Some(message.into()),
        kind: Kind::Usage,
    }
}

/// The user interrupted mgo, status 130.
pub fn interrupted() -> Error {
    Error {
        message: Some("interrupted".into()),
        kind: Kind::Interrupted,
    }
}

/// A `go` command that ended with `status`, with a line of mgo's own or
/// none when go's output says it all.
pub fn go_failed(status: ExitStatus, message: Option<String>) -> Error {
    let code = status
        .code()
        .and_then(|c| u8::try_from(c).ok())
        .filter(|&c| c != 0)
        .unwrap_or(1);
    Error {
        message,
        kind: Kind::Go(code),
    }
}

impl Error {
    /// The exit status: 1, 2, 130, or go's own.
    pub fn status(&self) -> u8 {
        match self.kind {
            Kind::Failed => 1,
            Kind::Usage => 2,
            Kind::Interrupted => 130,
            Kind::Go(code) => code,
        }
    }

    /// The line to print after `mgo: `, if any.
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message.as_deref().unwrap_or("failed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn each_kind_has_its_status() {
        assert_eq!(fail("x").status(), 1);
        assert_eq!(usage("x").status(), 2);
        assert_eq!(interrupted().status(), 130);
        assert_eq!(go_failed(ExitStatus::from_raw(2 << 8), None).status(), 2);
        // Killed by a signal, or an impossible 0: still a failure.
        assert_eq!(go_failed(ExitStatus::from_raw(9), None).status(), 1);
        assert_eq!(go_failed(ExitStatus::from_raw(0), None).status(), 1);
        assert_eq!(
            go_failed(ExitStatus::from_raw(1 << 8), None).message(),
            None
        );
    }
}
