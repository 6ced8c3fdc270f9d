//! mgo: `go build`, once per x86-64 microarchitecture level, into one Linux
//! executable that starts the best build for the CPU it runs on.
//!
//! `main` parses, runs the command, and turns its outcome into an exit
//! status through the one error type (`error`). docs/ARCHITECTURE.md maps
//! the modules; in short: `cli` (the command line), `settings` (the
//! environment), `pipeline` (making bundles, step by step), `go` (running
//! the toolchain), `compress` and `bundle` (encoding and laying out),
//! `output` and `scratch` (placing files, temporary files), `state`
//! (up-to-date rebuilds), `gotest` (`mgo test`), `bench` (`mgo test -bench`:
//! the levels compared), `join` (`mgo join`), `inspect` and `read`
//! (reading bundles back), `interrupt` (signals).

mod bench;
mod build;
mod bundle;
mod cli;
mod console;
mod cpu;
mod elf;
mod encode;
mod error;
mod go;
mod gotest;
mod inspect;
mod interrupt;
mod join;
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
        cli::Command::Join { inputs, output } => join::run(&inputs, &output),
        cli::Command::Extract { from, output } => match from {
            cli::ExtractFrom::Bundle { file, level } => inspect::extract(level, &file, &output),
            cli::ExtractFrom::Process(pid) => inspect::extract_process(pid, &output),
            cli::ExtractFrom::Core { core, bundle } => {
                inspect::extract_core(&core, bundle.as_deref(), &output)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The rooms of this crate from top to bottom (docs/ARCHITECTURE.md):
    /// each may import only rooms below it, so that a build reads top to
    /// bottom and no import runs back up or in a circle.
    const ROOMS: &[&str] = &[
        "main",
        "gotest",
        "bench",
        "build",
        "join",
        "inspect",
        "settings",
        "go",
        "bundle",
        "encode",
        "place",
        "cli",
        "cpu",
        "elf",
        "interrupt",
        "console",
        "error",
    ];

    /// The rooms named after `crate::` in `source`, `use crate::{a, b}`
    /// included.
    fn imports(source: &str) -> Vec<String> {
        let mut names = Vec::new();
        for (i, _) in source.match_indices("crate::") {
            let rest = source.get(i + "crate::".len()..).unwrap_or_default();
            if let Some(group) = rest.strip_prefix('{') {
                // Only the first word of each item: `bundle::{self, read}`.
                let mut depth = 0;
                let mut item = String::new();
                for c in group.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            names.push(first_word(&item));
                            item.clear();
                            continue;
                        }
                        _ => {}
                    }
                    item.push(c);
                }
                names.push(first_word(&item));
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                names.push(name);
            }
        }
        names.retain(|n| !n.is_empty());
        names
    }

    fn first_word(item: &str) -> String {
        item.trim()
            .split("::")
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push((
                    path.display().to_string(),
                    std::fs::read_to_string(&path).unwrap(),
                ));
            }
        }
    }

    #[test]
    fn rooms_import_only_rooms_below_them() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&src, &mut files);
        assert!(files.len() > 20, "{files:?}");
        let rank = |room: &str| ROOMS.iter().position(|r| *r == room);
        let mut wrong = Vec::new();
        for (path, source) in &files {
            let relative = path.strip_prefix(&format!("{}/", src.display())).unwrap();
            let room = relative.split(['/', '.']).next().unwrap();
            let Some(own) = rank(room) else {
                wrong.push(format!("{relative}: not a room of ROOMS"));
                continue;
            };
            // Tests may reach anywhere; the code they test may not.
            let code = source
                .split("#[cfg(test)]\nmod tests")
                .next()
                .unwrap_or_default();
            for import in imports(code) {
                match rank(&import) {
                    Some(other) if other > own || import == room => {}
                    Some(_) => wrong.push(format!("{relative}: imports {import}, a room above it")),
                    None => wrong.push(format!("{relative}: imports crate::{import}, not a room")),
                }
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn the_import_reader_sees_every_form() {
        assert_eq!(
            imports(
                "use crate::bundle::{self, read};\nuse crate::{encode, interrupt::{check}};\n crate::console::say(x)"
            ),
            ["bundle", "encode", "interrupt", "console"]
        );
    }
}
