//! GOFLAGS: the builds obey it; mgo's own questions to go (`go env`, `go
//! list`) keep only the flags that change their answers.

use crate::support::*;
use std::fs;
use std::path::Path;

/// A module whose root package is `main` only with the tag `app`, and
/// prints which build it is.
fn module(dir: &Path) {
    go_module(
        dir,
        "example.com/tagged",
        &[
            (
                "app.go",
                "//go:build app\n\npackage main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"tagged\") }\n",
            ),
            ("lib.go", "//go:build !app\n\npackage tagged\n"),
            (
                "cmd/hi/main.go",
                "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hi\") }\n",
            ),
        ],
    );
}

/// A bundle of the four levels.
fn assert_bundle(path: &Path) {
    let levels: Vec<u8> = read_bundle(path)
        .table
        .entries()
        .iter()
        .map(|e| e.level)
        .collect();
    assert_eq!(levels, [1, 2, 3, 4], "{}", path.display());
}

#[test]
fn output_shaping_goflags_do_not_bend_mgos_questions() {
    let dir = scratch();
    module(dir.path());
    for goflags in ["-json", "-changed", "-json -changed -v"] {
        let out = dir.path().join("hi");
        let _ = fs::remove_file(&out);
        run(mgo(dir.path())
            .env("GOFLAGS", goflags)
            .args(["build", "-o"])
            .arg(&out)
            .arg("./cmd/hi"))
        .ok();
        assert_bundle(&out);
        assert_eq!(run(&mut exec(&out)).ok(), "hi\n");

        let gobin = dir.path().join("bin");
        let _ = fs::remove_dir_all(&gobin);
        run(mgo(dir.path())
            .env("GOFLAGS", goflags)
            .env("GOBIN", &gobin)
            .args(["install", "./cmd/hi"]))
        .ok();
        assert_bundle(&gobin.join("hi"));
    }
}

/// `go env -w GOFLAGS=...` puts them in go's env file, which go reads when
/// the variable is empty.
#[test]
fn goflags_from_the_go_env_file_count_too() {
    let dir = scratch();
    module(dir.path());
    let goenv = dir.path().join("goenv");
    fs::write(&goenv, "GOFLAGS=-json -tags=app\n").unwrap();
    run(mgo(dir.path()).env("GOENV", &goenv).arg("build")).ok();
    let out = dir.path().join("tagged");
    assert_bundle(&out);
    assert_eq!(run(&mut exec(&out)).ok(), "tagged\n");
}

/// `-tags` in GOFLAGS reaches the builds and the `go list` that decides
/// whether a build without `-o` writes a program.
#[test]
fn build_tags_in_goflags_select_files() {
    let dir = scratch();
    module(dir.path());
    let out = dir.path().join("tagged");
    run(mgo(dir.path()).arg("build")).ok();
    assert!(!out.exists(), "a library build wrote {}", out.display());
    run(mgo(dir.path())
        .env("GOFLAGS", "-json -tags=app")
        .arg("build"))
    .ok();
    assert_bundle(&out);
    assert_eq!(run(&mut exec(&out)).ok(), "tagged\n");
}

/// `-n` in GOFLAGS is `-n` on the command line: each level prints its
/// commands, nothing is written, the status is 0.
#[test]
fn dry_run_in_goflags_prints_and_writes_nothing() {
    let dir = scratch();
    module(dir.path());
    let out = dir.path().join("hi");
    let result = run(mgo(dir.path())
        .env("GOFLAGS", "-n")
        .args(["build", "-o"])
        .arg(&out)
        .arg("./cmd/hi"));
    result.ok();
    assert!(!out.exists(), "-n wrote {}", out.display());
    for level in 1..=4 {
        assert!(
            result.stderr.contains(&format!("v{level}: mkdir -p $WORK")),
            "v{level} printed no commands:\n{}",
            result.stderr
        );
    }
    assert!(!result.stderr.contains("mgo: "), "{}", result.stderr);
}

/// A `-json` in go's env file marks the levels' JSON as one on the command
/// line does: a `"GOAMD64"` field, not a `vN: ` prefix.
#[test]
fn json_from_the_go_env_file_is_marked_as_json() {
    let dir = scratch();
    module(dir.path());
    // A package no earlier build cached, so that -v names it.
    let unique = format!(
        "package main\n\nfunc main() {{ println({:?}) }}\n",
        dir.path().display().to_string()
    );
    fs::write(dir.path().join("cmd/hi/main.go"), unique).unwrap();
    let goenv = dir.path().join("goenv");
    fs::write(&goenv, "GOFLAGS=-json -v\n").unwrap();
    let out = run(mgo(dir.path())
        .env("GOENV", &goenv)
        .args(["build", "-o", "hi", "./cmd/hi"]));
    let stdout = out.ok();
    assert!(!stdout.is_empty(), "no output:\n{}", out.stderr);
    for line in stdout.lines() {
        assert!(line.starts_with("{\"GOAMD64\":\"v"), "{line}");
    }
    assert_bundle(&dir.path().join("hi"));
}
