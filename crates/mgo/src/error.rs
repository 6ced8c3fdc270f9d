//! The command's one error type. Every failure becomes an `Error`, and its
//! exit status is decided here and nowhere else (docs/CLI.md, "Exit status").
//!
//! A message reads as ripgrep's do: what failed, then its causes, each after
//! a colon (`mgo: cannot write app: compressing the v3 build: zstd: ...`).
//! A step adds what it was doing with [`Context`]; the cause it got keeps
//! its words.

use std::fmt;
use std::process::ExitStatus;

/// Why mgo stops: what to say (if go has not said it all) and what kind of
/// failure it is, which decides the exit status.
#[derive(Debug, PartialEq, Eq)]
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

/// Any library error becomes a failure (status 1) whose message is its
/// own; the caller then says what it was doing with [`Context`]. `Error`
/// deliberately does not implement `std::error::Error`, or this would
/// conflict with `From<Error> for Error`.
impl<E: std::error::Error> From<E> for Error {
    fn from(cause: E) -> Self {
        fail(cause.to_string())
    }
}

/// What a step was doing when its cause failed.
pub trait Context<T> {
    /// `what: <cause>`.
    fn context(self, what: impl fmt::Display) -> Result<T>;
    /// As [`Context::context`], for a `what` that costs something to say.
    fn with_context<S: fmt::Display>(self, what: impl FnOnce() -> S) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|cause| cause.into().within(what))
    }

    fn with_context<S: fmt::Display>(self, what: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|cause| cause.into().within(what()))
    }
}

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

    /// Puts `what` in front of the message: `what: <message>`. An
    /// interruption or a failed go keeps its words (they say all there is),
    /// and so does its status, whatever the step.
    pub fn within(self, what: impl fmt::Display) -> Self {
        match (self.kind, self.message) {
            (Kind::Failed | Kind::Usage, Some(cause)) => Self {
                message: Some(format!("{what}: {cause}")),
                kind: self.kind,
            },
            (kind, message) => Self { message, kind },
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

    #[test]
    fn context_puts_what_failed_before_its_cause() {
        let io = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let err = Err::<(), _>(io).context("cannot write app").unwrap_err();
        assert_eq!(err.message(), Some("cannot write app: permission denied"));
        assert_eq!(err.status(), 1);
        let err = Err::<(), _>(fail("zstd: dst size too small"))
            .context("compressing the v3 build")
            .context("cannot bundle app")
            .unwrap_err();
        assert_eq!(
            err.message(),
            Some("cannot bundle app: compressing the v3 build: zstd: dst size too small")
        );
    }

    #[test]
    fn context_keeps_an_interruption_and_go_s_own_status() {
        let err = Err::<(), _>(interrupted())
            .context("cannot write app")
            .unwrap_err();
        assert_eq!((err.status(), err.message()), (130, Some("interrupted")));
        let go = go_failed(ExitStatus::from_raw(2 << 8), None);
        let err = Err::<(), _>(go).context("building v2").unwrap_err();
        assert_eq!((err.status(), err.message()), (2, None));
    }
}
