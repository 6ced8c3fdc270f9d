//! `mgo test`: a bundle ships one build per level, so the tests run once
//! per level, each with its own GOAMD64, one level after another (tests
//! that share files or ports would collide if the levels ran at once).
//! Levels this CPU cannot run are named, not run. A test that fails at
//! some levels and passes at others is named in one line. With `-bench`,
//! `bench/` runs the levels round by round instead.

use crate::bench;
use crate::build;
use crate::cli;
use crate::cli::Request;
use crate::error::{self, Result, fail};
use crate::go::{self, OnFailure, Relay};
use crate::settings;
use crate::{cpu, interrupt};

/// Runs `go test` per level.
pub fn run(mut request: Request) -> Result<()> {
    if request.output.is_some() {
        return Err(error::usage(
            "test: -o without -c would keep one test binary per level in the same place: add -c to bundle them, or drop -o",
        ));
    }
    let build_dir = build::build_dir(&request)?;
    let env = go::env(&build_dir)?;
    if env.goos != "linux" || env.goarch != "amd64" {
        return Err(go::exec(&request.passthrough));
    }
    build::goflags_count(&mut request, &env.goflags);
    settings::check_goamd64()?;
    let lowest = build::lowest_level(&env)?;
    let here = cpu::this_machine();
    if lowest > here.level {
        return Err(fail(format!(
            "GOAMD64=v{lowest} asks for v{lowest} and above, but this CPU runs up to v{}{}: nothing can be tested here",
            here.level,
            cpu::why_not(&here)
        )));
    }
    interrupt::install();
    let levels: Vec<u8> = (lowest..=here.level).collect();
    let json = settings::json_output(&request);
    let split = cli::split_test_args(&request.go_args);
    let (statuses, failed_tests) = if bench::wanted(&split) {
        let outcome = bench::run(&request, &split, &build_dir, &env.goflags, &levels, json)?;
        (outcome.statuses, outcome.failed_tests)
    } else {
        let runs = levels
            .iter()
            .map(|&level| {
                let args: Vec<&std::ffi::OsStr> =
                    request.go_args.iter().map(|a| a.as_os_str()).collect();
                go::LevelRun {
                    level,
                    command: go::level_command(&build_dir, level, "test", &args),
                }
            })
            .collect();
        let outcome = go::run_levels(
            runs,
            1,
            OnFailure::RunAll,
            Relay {
                json,
                hold: false,
                // Each level's report matters.
                each_line: true,
            },
        )?;
        (outcome.statuses, outcome.failed_tests)
    };
    for line in bench::disagreements(&levels, &failed_tests) {
        crate::console::say(&line);
    }
    if here.level < 4 {
        let untested: Vec<String> = (here.level + 1..=4).map(|l| format!("v{l}")).collect();
        crate::console::say(&format!(
            "not tested here: {} (this CPU runs up to v{}{})",
            untested.join(", "),
            here.level,
            cpu::why_not(&here)
        ));
    }
    let failed: Vec<String> = statuses
        .iter()
        .filter(|(_, status)| !status.success())
        .map(|(level, _)| format!("v{level}"))
        .collect();
    match statuses.iter().find(|(_, s)| !s.success()) {
        Some((_, status)) => Err(error::go_failed(
            *status,
            Some(format!(
                "go test failed at {}: {}",
                failed.join(", "),
                go::describe_status(status)
            )),
        )),
        None => Ok(()),
    }
}
