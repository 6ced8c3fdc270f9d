//! Starting go: a command that dies with mgo, what a go that cannot start
//! or fails is reported as, and handing mgo's own command over to go.

use crate::error::{self, Result, fail};
use std::ffi::{OsStr, OsString};
use std::io::{self, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

/// A `go` command run from `dir`, with stdin from /dev/null, that dies
/// with mgo (see [`child_command`]).
pub(super) fn go_command(dir: &Path) -> Command {
    child_command(OsStr::new("go"), dir)
}

/// `program` run from `dir`, with stdin from /dev/null. Each child that
/// mgo waits for dies with mgo: the kernel sends it SIGKILL if mgo is
/// killed (PR_SET_PDEATHSIG; the thread that starts it lives until it ends).
pub fn child_command(program: &OsStr, dir: &Path) -> Command {
    let mut command = Command::new(program);
    command.current_dir(dir).stdin(Stdio::null());
    let parent = rustix::process::getpid();
    // SAFETY: the closure runs in the child between fork and exec and only
    // makes two async-signal-safe system calls.
    unsafe {
        command.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
            // mgo died before the line above: nobody would signal us.
            if rustix::process::getppid() != Some(parent) {
                return Err(io::Error::from_raw_os_error(libc_esrch()));
            }
            Ok(())
        });
    }
    command
}

/// ESRCH, without a libc dependency for one constant.
const fn libc_esrch() -> i32 {
    3
}

/// What a go that cannot be started is reported as.
pub(super) fn spawn_error(err: &io::Error) -> error::Error {
    if err.kind() == io::ErrorKind::NotFound {
        fail("go not found in PATH: install Go 1.18 or newer, or add its bin directory to PATH")
    } else {
        fail(format!("cannot run go: {err}"))
    }
}

/// Runs a quick go command and returns its stdout; on failure its stderr is
/// shown whole, as go printed it, and go's status is mgo's.
pub(super) fn output_of(mut command: Command, what: &str) -> Result<String> {
    let output = command.output().map_err(|e| spawn_error(&e))?;
    if !output.status.success() {
        let _ = io::stderr().write_all(&output.stderr);
        return Err(error::go_failed(
            output.status,
            Some(format!(
                "{what} failed: {}",
                describe_status(&output.status)
            )),
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Hands the command over to go: `go <args>` replaces mgo, so that go's
/// output, exit status and signals are exactly go's. Returns only if go
/// cannot be started.
pub fn exec(args: &[OsString]) -> error::Error {
    let err = Command::new("go").args(args).exec();
    spawn_error(&err)
}

/// Describes how go ended, for an `mgo:` line.
pub fn describe_status(status: &ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => status.to_string(),
    }
}
