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

/// The rows of a table whose first column names `benchmark`.
fn row<'a>(table: &'a str, benchmark: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.trim_start().starts_with(benchmark))
        .unwrap_or_else(|| panic!("no {benchmark} row:\n{table}"))
}

/// The `change (p=... n=...)` cells of a row, in order: `-99.02% (p=0.002
/// n=6)` or `~ (p=0.310 n=6)`, with benchstat's spacing squeezed.
fn changes(row: &str) -> Vec<String> {
    let words: Vec<&str> = row.split_whitespace().collect();
    words
        .windows(3)
        .filter(|w| w[1].starts_with("(p="))
        .map(|w| w.join(" "))
        .collect()
}

/// `mgo test -bench`: the levels run round by round (v1, v2, v3, v1, ...),
/// stdout is a file the real benchstat compares by `goamd64`, and mgo's
/// summary says what benchstat says. `Count` is several times faster from
/// v2 on (POPCNT against a bit-by-bit loop, chosen by a `amd64.v2` file),
/// `Sum` the same code at every level.
#[test]
fn bench_runs_levels_round_by_round_and_benchstat_compares_them() {
    let rounds = 6;
    let out = run(mgo(&testdata("bench")).args([
        "test",
        "-bench",
        ".",
        "-run",
        "^$",
        "-benchtime",
        "20x",
        "-count",
        &rounds.to_string(),
        ".",
    ]));
    let stdout = out.ok();
    let order: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("goamd64: "))
        .collect();
    let expected: Vec<String> = (0..rounds).flat_map(|_| runnable()).collect();
    assert_eq!(order, expected, "{stdout}");
    // Each run holds both benchmarks, once.
    for run in stdout.split("goamd64: ").skip(1) {
        assert_eq!(run.matches("BenchmarkCount").count(), 1, "{run}");
        assert_eq!(run.matches("BenchmarkSum").count(), 1, "{run}");
    }

    let dir = scratch();
    let file = dir.path().join("levels.txt");
    std::fs::write(&file, &stdout).unwrap();
    let table = run(Command::new(benchstat())
        .args(["-col", "goamd64"])
        .arg(&file))
    .ok();
    let header = table
        .lines()
        .find(|l| l.contains("v1") && l.contains("v2"))
        .unwrap_or_else(|| panic!("{table}"));
    for level in runnable() {
        assert!(header.contains(&level), "{table}");
    }
    let summary = &out.stderr;
    for benchmark in ["Count", "Sum"] {
        let theirs = changes(row(&table, benchmark));
        let ours = changes(row(summary, benchmark));
        assert_eq!(theirs.len(), runnable().len() - 1, "{table}");
        // The same change, p-value and count, or the same "~".
        assert_eq!(ours, theirs, "mgo:\n{summary}\nbenchstat:\n{table}");
    }
    // Several times faster: significant, at n=6 the smallest p there is.
    for change in changes(row(summary, "Count")) {
        assert!(change.starts_with('-'), "{summary}");
        assert!(change.ends_with("(p=0.002 n=6)"), "{summary}");
    }
    // The same code: whatever the test finds, not a change of several
    // times.
    for change in changes(row(summary, "Sum")) {
        let percent: f64 = change
            .split('%')
            .next()
            .filter(|c| *c != "~ (p=")
            .and_then(|c| c.parse().ok())
            .unwrap_or(0.0);
        assert!(percent.abs() < 50.0, "{summary}");
    }
    for level in runnable().iter().skip(1) {
        let verdict = summary
            .lines()
            .find(|l| l.starts_with(&format!("{level}: ")))
            .unwrap_or_else(|| panic!("{summary}"));
        assert!(
            verdict.contains("% faster (geomean), ")
                && verdict.ends_with(" of 2 benchmarks significant"),
            "{verdict}"
        );
    }
}

/// With `-json`, go test's events through test2json, each with the level
/// that ran it, benchmark results included.
#[test]
fn bench_json_is_test2json_with_the_level_in_each_object() {
    let out = run(mgo(&testdata("bench")).args([
        "test",
        "-json",
        "-bench",
        "Sum",
        "-run",
        "^$",
        "-benchtime",
        "5x",
        "-count",
        "2",
        ".",
    ]));
    // Each run starts with a "start" event; test2json may cut a line into
    // several "Output" events, so each level's are joined.
    let mut starts = Vec::new();
    let mut output = std::collections::BTreeMap::<String, String>::new();
    for line in out.ok().lines() {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let level = value["GOAMD64"]
            .as_str()
            .unwrap_or_else(|| panic!("{line}"));
        if value["Action"] == "start" {
            starts.push(level.to_owned());
        }
        if let Some(text) = value["Output"].as_str() {
            output.entry(level.to_owned()).or_default().push_str(text);
        }
    }
    let expected: Vec<String> = (0..2).flat_map(|_| runnable()).collect();
    assert_eq!(starts, expected);
    for level in runnable() {
        let results = output[&level]
            .lines()
            .filter(|l| l.starts_with("BenchmarkSum-") && l.ends_with(" ns/op"))
            .count();
        assert_eq!(results, 2, "{level}: {}", output[&level]);
    }
    // Two runs per level: too few for the statistics, and mgo says so.
    assert!(
        out.stderr.contains("note: 2 runs per level"),
        "{}",
        out.stderr
    );
}

/// go test's flags reach every run: `-cpu 1,2` runs each benchmark with
/// GOMAXPROCS 1 (no suffix) and 2 (`-2`), `-benchmem` adds B/op, `-run`
/// picks the test, `-v` shows it; `-count` is the number of rounds.
#[test]
fn bench_passes_go_test_flags_to_every_run() {
    let out = run(mgo(&testdata("bench")).args([
        "test",
        "-bench",
        "Sum",
        "-benchtime",
        "3x",
        "-cpu",
        "1,2",
        "-benchmem",
        "-run",
        "TestLevel",
        "-v",
        "-count",
        "2",
        ".",
    ]));
    let stdout = out.ok();
    let runs: Vec<&str> = stdout.split("goamd64: ").skip(1).collect();
    assert_eq!(runs.len(), 2 * runnable().len(), "{stdout}");
    for (run, level) in runs.iter().zip(runnable().iter().cycle()) {
        assert!(run.starts_with(&format!("{level}\n")), "{run}");
        let results: Vec<&str> = run
            .lines()
            .filter(|l| l.starts_with("BenchmarkSum") && l.contains("ns/op"))
            .collect();
        assert_eq!(results.len(), 2, "{run}");
        assert!(results[0].starts_with("BenchmarkSum "), "{run}");
        assert!(results[1].starts_with("BenchmarkSum-2 "), "{run}");
        assert!(results.iter().all(|l| l.contains("B/op")), "{run}");
        assert!(run.contains(&format!("GOAMD64={level}")), "{run}");
        assert!(!run.contains("TestCount"), "{run}");
    }
}

/// A test that passes below v3 and fails from v3 on: since golang/go#71204
/// the compiler fuses `x*y+z` into one FMA instruction at v3, and the
/// product is no longer rounded on its own. mgo names the test and the
/// levels in one line, with and without `-bench`.
#[test]
fn a_test_failing_only_from_v3_on_is_named_with_its_levels() {
    let (failing, passing): (Vec<String>, Vec<String>) =
        runnable().into_iter().partition(|l| l == "v3" || l == "v4");
    assert!(!failing.is_empty(), "this machine runs no v3: {passing:?}");
    let line = format!(
        "mgo: TestMulAddRoundsTwice fails at {} and passes at {}",
        failing.join(", "),
        passing.join(", ")
    );
    for args in [
        &["test", "-count=1", "."][..],
        &["test", "-bench", ".", "-benchtime", "1x", "."][..],
    ] {
        let out = run(mgo(&testdata("fma")).args(args));
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.contains("TestMulAddRoundsTwice"))
                .collect::<Vec<_>>(),
            [&line.as_str()],
            "{args:?}: {}",
            out.stderr
        );
        // The test that passes everywhere is not named.
        assert!(!out.stderr.contains("TestPasses"), "{}", out.stderr);
        assert!(
            lines.contains(
                &format!(
                    "mgo: go test failed at {}: exit status 1",
                    failing.join(", ")
                )
                .as_str()
            ),
            "{args:?}: {}",
            out.stderr
        );
    }
}
