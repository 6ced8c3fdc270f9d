//! mgo: `go build`, once per x86-64 microarchitecture level, into one Linux
//! executable that starts the best build for the CPU it runs on.
//!
//! `main` parses, runs the command, and turns its outcome into an exit
//! status through the one error type (`error`). docs/ARCHITECTURE.md maps
//! the modules; in short: `cli` (the command line), `settings` (the
//! environment), `pipeline` (making bundles, step by step), `go` (running
//! the toolchain), `compress` and `bundle` (encoding and laying out),
//! `output` and `scratch` (placing files, temporary files), `state`
//! (up-to-date rebuilds), `gotest` (`mgo test`), `inspect` and `read`
//! (reading bundles back), `interrupt` (signals).

mod buildinfo;
mod bundle;
mod cli;
mod compress;
mod cpu;
mod dwarf;
mod error;
mod go;
mod gotest;
mod inspect;
mod interrupt;
mod launchers;
mod output;
mod pipeline;
mod read;
mod scratch;
mod settings;
mod state;

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if let Some(message) = err.message() {
                say(message);
            }
            ExitCode::from(err.status())
        }
    }
}

fn run() -> error::Result<()> {
    match cli::parse(std::env::args_os().skip(1))? {
        cli::Command::Help => {
            print(cli::HELP);
            Ok(())
        }
        cli::Command::Version => {
            print(&format!("mgo {}\n", env!("CARGO_PKG_VERSION")));
            Ok(())
        }
        cli::Command::Go(args) => Err(go::exec(&args)),
        cli::Command::Build(request) => pipeline::run(request),
        cli::Command::Test(request) => gotest::run(request),
        cli::Command::Inspect { file, json } => inspect::inspect(&file, json),
        cli::Command::Verify { file } => inspect::verify(&file),
        cli::Command::Extract {
            level,
            file,
            output,
        } => inspect::extract(level, &file, &output),
    }
}

/// Prints `mgo: <message>` on stderr. A closed or full stderr is not an
/// error: mgo's outcome is its exit status, never a crash on a write.
pub fn say(message: &str) {
    let _ = writeln!(std::io::stderr().lock(), "mgo: {message}");
}

/// Prints `text` on stdout; a closed stdout is ignored, as in [`say`].
pub fn print(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}
