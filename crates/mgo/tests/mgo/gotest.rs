//! `mgo test`: the tests once per level, on a package whose code differs
//! per level (a file with `//go:build amd64.v3`); `mgo test -c` bundles the
//! test binaries.

use crate::support::*;
use std::process::Command;

fn levels() -> std::path::PathBuf {
    testdata("levels")
}

/// The levels this machine runs, as the launcher decides.
fn runnable() -> Vec<String> {
    (1..=host_level()).map(|l| format!("v{l}")).collect()
}

#[test]
fn tests_run_once_per_level_and_a_failing_level_fails_the_run() {
    let out = run(mgo(&levels()).args(["test", "-count=1", "-v", "."]));
    out.ok();
    for level in runnable() {
        let expected = if level == "v3" || level == "v4" {
            "v3+"
        } else {
            "below v3"
        };
        assert!(
            out.stdout_text()
                .lines()
                .any(|l| l.starts_with(&format!("{level}: "))
                    && l.contains(&format!("GOAMD64={level} compiled {expected}"))),
            "{level}:\n{}",
            out.stdout_text()
        );
    }
    // Every line is marked with its level.
    assert!(
        out.stdout_text()
            .lines()
            .all(|l| runnable().iter().any(|v| l.starts_with(&format!("{v}: "))))
    );

    let failing = run(mgo(&levels())
        .args(["test", "-count=1", "."])
        .env("LEVELS_FAIL_AT", "v2"));
    assert_eq!(failing.status.code(), Some(1), "{failing:?}");
    assert!(
        failing.stdout_text().contains("v2:     levels_test.go"),
        "{}",
        failing.stdout_text()
    );
    // The other levels still ran.
    assert!(failing.stdout_text().contains("v1: ok"), "{failing:?}");
    assert!(
        failing
            .stderr
            .lines()
            .any(|l| l == "mgo: go test failed at v2: exit status 1"),
        "{}",
        failing.stderr
    );
}

/// On a CPU below v3 (qemu's Nehalem, v2), mgo runs v1 and v2 and names
/// the levels it cannot test, with what the CPU lacks.
#[test]
fn levels_this_cpu_cannot_run_are_named_not_run() {
    let qemu = require("qemu-x86_64");
    let out = run(Command::new(qemu)
        .args(["-cpu", "Nehalem"])
        .arg(env!("CARGO_BIN_EXE_mgo"))
        .args(["test", "-count=1", "-v", "."])
        .current_dir(levels())
        .env_remove("GOAMD64")
        .env_remove("GOFLAGS"));
    out.ok();
    let stdout = out.stdout_text();
    assert!(
        stdout.contains("v1: ok") && stdout.contains("v2: ok"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("v3: ") && !stdout.contains("v4: "),
        "{stdout}"
    );
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with("mgo: not tested here: v3, v4"))
        .unwrap_or_else(|| panic!("{}", out.stderr));
    assert!(
        line.contains("this CPU runs up to v2; v3: no FMA") && line.contains("AVX2"),
        "{line}"
    );
}

#[test]
fn json_output_stays_json_lines_with_the_level_in_each_object() {
    let out = run(mgo(&levels()).args(["test", "-count=1", "-json", "."]));
    out.ok();
    let mut seen = std::collections::BTreeSet::new();
    for line in out.stdout_text().lines() {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let level = value["GOAMD64"]
            .as_str()
            .unwrap_or_else(|| panic!("{line}"));
        seen.insert(level.to_owned());
        assert!(value["Action"].is_string(), "{line}");
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), runnable());
}

/// `go test -c` (goreleaser's `command: test`): one bundle of the four test
/// binaries; each level's runs its own level's code.
#[test]
fn test_c_bundles_the_test_binaries() {
    let dir = scratch();
    for name in ["go.mod", "high.go", "low.go", "levels_test.go"] {
        std::fs::copy(levels().join(name), dir.path().join(name)).unwrap();
    }
    run(mgo(dir.path()).args(["test", "-c", "-o", "levels.test", "."])).ok();
    let bundle = dir.path().join("levels.test");
    for level in runnable() {
        let out = run(exec(&bundle)
            .arg("-test.v")
            .env("GOAMD64", &level)
            .env("MGODEBUG", "log"));
        out.ok();
        assert!(
            out.stderr
                .contains(&format!("starting variant GOAMD64={level}")),
            "{}",
            out.stderr
        );
        assert!(out.stdout_text().contains("--- PASS"), "{out:?}");
    }
    // Without -o: go's default name, in the package's directory.
    std::fs::remove_file(&bundle).unwrap();
    run(mgo(dir.path()).args(["test", "-c", "."])).ok();
    let log = run(exec(&bundle).arg("-test.run=X").env("MGODEBUG", "log"));
    log.ok();
    assert!(log.stderr.contains("[mgo] launcher: starting"), "{log:?}");
}
