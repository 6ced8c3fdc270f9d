//! Relaying each run's output line by line: marked with its level, then
//! printed or kept back.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::process::{Child, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

/// Lines kept back: (for stdout, the marked line).
pub type Held = Vec<(bool, Vec<u8>)>;

/// Prints lines kept back, each to the stream it came from.
pub fn print_held(held: &Held) {
    for (stdout, line) in held {
        if *stdout {
            let _ = io::stdout().write_all(line);
        } else {
            let _ = io::stderr().write_all(line);
        }
    }
    let _ = io::stdout().flush();
}

/// How one run's lines are marked.
pub(super) struct Prefix {
    pub(super) level: u8,
    pub(super) json: bool,
    pub(super) quiet: Arc<AtomicBool>,
    pub(super) held: Option<Arc<Mutex<Held>>>,
}

impl Prefix {
    /// `line` (with its newline, if any) as mgo prints it.
    fn mark(&self, line: &[u8], stdout: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(line.len() + 20);
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        match body.strip_prefix(b"{") {
            Some(rest) if self.json && stdout => {
                out.extend_from_slice(format!("{{\"GOAMD64\":\"v{}\"", self.level).as_bytes());
                if !rest.trim_ascii_start().starts_with(b"}") {
                    out.push(b',');
                }
                out.extend_from_slice(rest);
            }
            _ => {
                out.extend_from_slice(format!("v{}: ", self.level).as_bytes());
                out.extend_from_slice(body);
            }
        }
        out.push(b'\n');
        out
    }
}

/// Passes the child's stdout and stderr through, line by line, to ours;
/// then waits for it. A closed stdout or stderr of mgo's is not an error:
/// the lines are dropped and go runs to its end.
pub(super) fn relay_and_wait(child: &mut Child, prefix: &Prefix) -> io::Result<ExitStatus> {
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    thread::scope(|scope| {
        if let Some(stdout) = stdout {
            scope.spawn(|| relay_lines(stdout, &mut io::stdout(), prefix, true));
        }
        if let Some(stderr) = stderr {
            scope.spawn(|| relay_lines(stderr, &mut io::stderr(), prefix, false));
        }
    });
    child.wait()
}

fn relay_lines(from: impl Read, to: &mut impl Write, prefix: &Prefix, stdout: bool) {
    let mut reader = BufReader::new(from);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if prefix.quiet.load(Ordering::SeqCst) {
            continue; // keep draining so the child never blocks on a full pipe
        }
        let marked = prefix.mark(&line, stdout);
        match &prefix.held {
            Some(held) => held
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((stdout, marked)),
            None => {
                let _ = to.write_all(&marked);
                let _ = to.flush();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_get_a_prefix_and_json_objects_a_field() {
        let quiet = Arc::new(AtomicBool::new(false));
        let text = Prefix {
            level: 3,
            json: false,
            quiet: Arc::clone(&quiet),
            held: None,
        };
        assert_eq!(text.mark(b"# x\n", true), b"v3: # x\n");
        assert_eq!(text.mark(b"no newline", false), b"v3: no newline\n");
        assert_eq!(text.mark(b"{\"a\":1}\n", true), b"v3: {\"a\":1}\n");
        let json = Prefix {
            level: 2,
            json: true,
            quiet,
            held: None,
        };
        assert_eq!(
            json.mark(b"{\"ImportPath\":\"x\"}\n", true),
            b"{\"GOAMD64\":\"v2\",\"ImportPath\":\"x\"}\n"
        );
        assert_eq!(json.mark(b"{}", true), b"{\"GOAMD64\":\"v2\"}\n");
        assert_eq!(json.mark(b"{ }\n", true), b"{\"GOAMD64\":\"v2\" }\n");
        // Not JSON, or on stderr: a prefix.
        assert_eq!(json.mark(b"go: x\n", true), b"v2: go: x\n");
        assert_eq!(json.mark(b"{\"a\":1}\n", false), b"v2: {\"a\":1}\n");
    }
}
