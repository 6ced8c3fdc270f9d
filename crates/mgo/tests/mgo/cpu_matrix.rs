//! The launcher's choice on other CPUs, under qemu-user: it must equal the
//! highest plain build that the same emulated CPU runs. Mapped in place, the
//! chosen build runs under the same emulation after the launcher's jump, so
//! its own Go check and output are seen; through a memfd, qemu-user hands
//! the exec to the host, so there the choice is read with MGODEBUG=extract,
//! which writes the chosen build instead of executing it.

use crate::support::*;
use std::process::Command;

/// What the launcher picks under `cpu`, and what it should pick.
fn choice_and_truth(qemu: &std::path::Path, cpu: &str) -> (Option<u8>, u8) {
    let hello = hello();
    let extracted = run(Command::new(qemu)
        .args(["-cpu", cpu])
        .arg(&hello.bundle)
        .env("MGODEBUG", "extract,log")
        .env_remove("GOAMD64"));
    assert!(extracted.status.success(), "-cpu {cpu}: {extracted:?}");
    let chosen = level_of(hello, &extracted.stdout);
    let said = launcher_lines(&extracted.stderr);
    assert_eq!(
        said,
        [format!(
            "[mgo] launcher: extracting variant GOAMD64=v{}",
            chosen.unwrap_or(0)
        )]
    );
    let runs = |level: u8| {
        Command::new(qemu)
            .args(["-cpu", cpu])
            .arg(hello.plain(level))
            .output()
            .is_ok_and(|o| {
                o.status.success() && String::from_utf8_lossy(&o.stdout).starts_with("hello, world")
            })
    };
    assert!(runs(1), "-cpu {cpu} does not even run the v1 build");
    let best = (1..=4u8).rev().find(|&l| runs(l)).unwrap_or(0);
    // Mapped, the chosen build runs here, emulated: its output names it.
    let started = run(Command::new(qemu)
        .args(["-cpu", cpu])
        .arg(&hello.bundle)
        .env("MGODEBUG", "log")
        .env_remove("GOAMD64"));
    assert_eq!(
        started.ok(),
        format!("hello, world (GOAMD64=v{best})\n"),
        "-cpu {cpu}"
    );
    assert_eq!(
        launcher_lines(&started.stderr),
        [starting(best, Launch::Mapped)],
        "-cpu {cpu}"
    );
    (chosen, best)
}

/// The emulated CPUs: whole models at v1, v2 and v3, then single features
/// masked away; the level each runs comes from running the plain builds,
/// not from this list. join.rs runs other programs' bundles under them too.
pub const MODELS: [&str; 21] = [
    "qemu64",
    "core2duo",
    "Nehalem",
    "Westmere",
    "SandyBridge",
    "Haswell",
    "Skylake-Client",
    "EPYC",
    "Haswell,-movbe",
    "Haswell,-fma",
    "Haswell,-avx2",
    "Haswell,-bmi1",
    "Haswell,-bmi2",
    "Haswell,-f16c",
    "Haswell,-abm",
    "Haswell,-xsave",
    "Nehalem,-popcnt",
    "Nehalem,-sse4.2",
    "Nehalem,-ssse3",
    "Nehalem,-cx16",
    "Nehalem,-lahf-lm",
];

/// The highest level whose plain build of hello runs under `cpu`: the
/// level that CPU has, as Go's own check sees it.
pub fn level_under(qemu: &std::path::Path, cpu: &str) -> u8 {
    let hello = hello();
    (1..=4u8)
        .rev()
        .find(|&level| {
            Command::new(qemu)
                .args(["-cpu", cpu])
                .arg(hello.plain(level))
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .unwrap_or(0)
}

#[test]
fn choice_matches_what_runs_under_each_emulated_cpu() {
    let qemu = require("qemu-x86_64");
    let mut seen = [false; 5];
    let mut wrong = Vec::new();
    for cpu in MODELS {
        let (chosen, best) = choice_and_truth(&qemu, cpu);
        seen[usize::from(best)] = true;
        if chosen != Some(best) {
            wrong.push(format!(
                "-cpu {cpu}: launcher chose {chosen:?}, highest that runs is v{best}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    // The matrix must actually exercise v1, v2 and v3 (TCG has no AVX-512).
    assert!(seen[1] && seen[2] && seen[3], "levels covered: {seen:?}");
}

/// On this machine's own CPU (these have AVX-512, so v4 is covered here).
#[test]
fn choice_on_the_host_is_the_highest_level_that_runs() {
    let hello = hello();
    let expected = host_level();
    let started = run(exec(&hello.bundle).env("MGODEBUG", "log"));
    assert_eq!(
        started.ok(),
        format!("hello, world (GOAMD64=v{expected})\n")
    );
    assert_eq!(
        launcher_lines(&started.stderr),
        [starting(expected, Launch::Mapped)]
    );
}
