//! What mgo prints itself: one `mgo: ` line on stderr, or a report on
//! stdout. A closed or full stream is not an error: mgo's outcome is its
//! exit status, never a crash on a write.

use std::io::Write;

/// Prints `mgo: <message>` on stderr.
pub fn say(message: &str) {
    let _ = writeln!(std::io::stderr().lock(), "mgo: {message}");
}

/// Prints `text` on stdout.
pub fn print(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}
