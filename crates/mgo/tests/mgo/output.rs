//! go's output as mgo relays it: a message every level prints appears once,
//! as go prints it; a message only some levels print names them; command
//! echoes (`-x`, `-n`) keep each level's prefix.

use crate::support::*;
use std::fs;
use std::path::Path;

/// Writes `files` (name, text) under `dir`.
fn write(dir: &Path, files: &[(&str, String)]) {
    for (name, text) in files {
        let path = dir.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
}

/// How many lines of `text` are `line`, and how many end with it after
/// some prefix (a level's mark).
fn count(text: &str, line: &str) -> (usize, usize) {
    let exact = text.lines().filter(|l| *l == line).count();
    let marked = text
        .lines()
        .filter(|l| *l != line && l.ends_with(line))
        .count();
    (exact, marked)
}

/// Go source that takes the compiler a while (some thousand functions),
/// unique to `nonce` so that no earlier build cached it.
fn slow_package(nonce: &str) -> String {
    let mut text = format!("package slow\n\nconst nonce = {nonce:?}\n\n");
    for i in 0..2500 {
        text.push_str(&format!(
            "func F{i}(x int) int {{ s := 0; for i := 0; i < x; i++ {{ s += i * {i}; if s > {i} {{ s -= x }} }}; return s + len(nonce) }}\n"
        ));
    }
    text
}

/// Every level fails on the same compile error. go prints the error as
/// soon as that package fails but exits only once the slow package beside
/// it is compiled, so every level running prints it before the first one
/// ends: relayed per level, it would appear up to four times.
#[test]
fn a_compile_error_every_level_meets_is_printed_once_as_go_prints_it() {
    let dir = scratch();
    let nonce = dir.path().display().to_string();
    write(
        dir.path(),
        &[
            ("go.mod", "module example.com/twice\n\ngo 1.22\n".into()),
            (
                "main.go",
                "package main\n\nimport (\n\t\"example.com/twice/broken\"\n\t\"example.com/twice/slow\"\n)\n\nfunc main() { println(broken.X, slow.F0(1)) }\n".into(),
            ),
            (
                "broken/broken.go",
                "package broken\n\nvar X int = \"text\"\n".into(),
            ),
            ("slow/slow.go", slow_package(&nonce)),
        ],
    );
    let out = run(mgo(dir.path())
        .args(["-o", "app", "."])
        .env("MGO_PARALLEL_BUILD", "4"));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let error = "broken/broken.go:3:13: cannot use \"text\" (untyped string constant) as int value in variable declaration";
    for line in ["# example.com/twice/broken", error] {
        assert_eq!(count(&out.stderr, line), (1, 0), "{line}:\n{}", out.stderr);
    }
    let mgo_lines: Vec<&str> = mgo_lines(&out.stderr);
    assert_eq!(mgo_lines.len(), 1, "{}", out.stderr);
    assert!(
        mgo_lines[0].starts_with("mgo: building the GOAMD64=v"),
        "{}",
        out.stderr
    );
    assert!(!dir.path().join("app").exists());
}

/// The external linker warns about an option it ignores, on every level,
/// and the build succeeds: one warning, as go build prints it.
#[test]
fn a_linker_warning_every_level_prints_is_printed_once_as_go_prints_it() {
    require("gcc");
    let dir = scratch();
    write(
        dir.path(),
        &[
            ("go.mod", "module example.com/warns\n\ngo 1.22\n".into()),
            (
                "main.go",
                "package main\n\nfunc main() { println(\"hi\") }\n".into(),
            ),
        ],
    );
    let build = |cgo_ldflags: &str| {
        run(mgo(dir.path())
            .args([
                "-ldflags=-linkmode=external -extldflags=-Wl,-z,nonsense",
                "-o",
                "app",
                ".",
            ])
            .env("CGO_LDFLAGS", cgo_ldflags))
    };
    let check = |out: &Run| {
        out.ok();
        let warning = out
            .stderr
            .lines()
            .find(|l| l.ends_with("warning: -z nonsense ignored"))
            .unwrap_or_else(|| panic!("no linker warning:\n{}", out.stderr));
        assert!(!warning.starts_with('v'), "{warning}");
        for line in ["# example.com/warns", warning] {
            assert_eq!(count(&out.stderr, line), (1, 0), "{line}:\n{}", out.stderr);
        }
        assert_eq!(out.stderr.lines().count(), 2, "{}", out.stderr);
    };
    check(&build("-g -O2"));
    assert_eq!(run(&mut exec(&dir.path().join("app"))).stderr, "hi\n");
    // Again with other linker flags from the environment, which mgo's
    // record does not cover: its up-to-date check relinks the lowest level,
    // and that level's warning is not said apart from the other levels'.
    check(&build("-g -O1"));
    assert_eq!(run(&mut exec(&dir.path().join("app"))).stderr, "hi\n");
}

/// With `-v` each level names the packages it compiles. A package only
/// the v3 and v4 builds import is named once, with those two levels; the
/// main package, which every level compiles, once without a mark.
#[test]
fn a_line_only_some_levels_print_names_them() {
    let dir = scratch();
    let nonce = dir.path().display().to_string();
    write(
        dir.path(),
        &[
            ("go.mod", "module example.com/some\n\ngo 1.22\n".into()),
            (
                "main.go",
                format!("package main\n\nvar from = {nonce:?}\n\nfunc main() {{ println(len(from) > 0) }}\n"),
            ),
            (
                "high.go",
                "//go:build amd64.v3\n\npackage main\n\nimport \"example.com/some/fast\"\n\nvar _ = fast.Fast\n".into(),
            ),
            (
                "fast/fast.go",
                format!("package fast\n\n// Fast is only for v3 and up.\nconst Fast = {nonce:?}\n"),
            ),
        ],
    );
    let out = run(mgo(dir.path()).args(["-v", "-o", "app", "."]));
    out.ok();
    assert_eq!(
        count(&out.stderr, "example.com/some"),
        (1, 0),
        "{}",
        out.stderr
    );
    let fast: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.ends_with("example.com/some/fast"))
        .collect();
    assert_eq!(fast, ["v3,v4: example.com/some/fast"], "{}", out.stderr);
}

/// `-x` echoes each level's commands, which differ by level: every line
/// keeps its level's prefix, none is merged.
#[test]
fn command_echoes_keep_each_level_s_prefix() {
    let dir = scratch();
    write(
        dir.path(),
        &[
            ("go.mod", "module example.com/echo\n\ngo 1.22\n".into()),
            ("main.go", "package main\n\nfunc main() {}\n".into()),
        ],
    );
    let out = run(mgo(dir.path()).args(["-x", "-o", "app", "."]));
    out.ok();
    for level in 1..=4 {
        assert!(
            out.stderr
                .lines()
                .any(|l| l.starts_with(&format!("v{level}: WORK="))),
            "v{level}:\n{}",
            out.stderr
        );
    }
    let unmarked: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !(1..=4).any(|level| l.starts_with(&format!("v{level}: "))))
        .collect();
    assert!(unmarked.is_empty(), "{unmarked:?}\n{}", out.stderr);
}
