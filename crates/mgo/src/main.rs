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

mod build;
mod bundle;
mod cli;
mod console;
mod cpu;
mod encode;
mod error;
mod go;
mod gotest;
mod inspect;
mod interrupt;
mod place;
mod settings;

use console::print;
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if let Some(message) = err.message() {
                console::say(message);
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
        cli::Command::Build(request) => build::run(request),
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
