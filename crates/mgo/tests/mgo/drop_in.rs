//! mgo in place of go: goreleaser's exact invocations for six targets, go's
//! other commands, build modes and packages that make no executable,
//! `mgo install`.

use crate::support::*;
use std::fs;
use std::path::Path;
use std::process::Command;

/// A module with two commands, as goreleaser users lay them out.
fn two_commands(dir: &Path) {
    go_module(
        dir,
        "example.com/release",
        &[
            (
                "cmd/app/main.go",
                "package main\n\nimport \"fmt\"\n\nvar version = \"dev\"\n\nfunc main() { fmt.Println(\"app\", version) }\n",
            ),
            (
                "cmd/helper/main.go",
                "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"helper\") }\n",
            ),
            (
                "lib/lib.go",
                "package lib\n\n// Answer is exported.\nfunc Answer() int { return 42 }\n",
            ),
        ],
    );
}

/// The environment goreleaser (v2) gives every build: each variable set,
/// the ones that do not apply to the target empty.
fn goreleaser_env(command: &mut Command, goos: &str, goarch: &str) {
    let goamd64 = if goarch == "amd64" { "v1" } else { "" };
    for (name, value) in [
        ("GOOS", goos),
        ("GOARCH", goarch),
        ("GOAMD64", goamd64),
        ("GO386", ""),
        ("GOARM", ""),
        ("GOARM64", ""),
        ("GOMIPS", ""),
        ("GOMIPS64", ""),
        ("GOPPC64", ""),
        ("GORISCV64", ""),
    ] {
        command.env(name, value);
    }
}

/// goreleaser's ldflags default, with the values it fills in.
const LDFLAGS: &str = "-ldflags=-s -w -X main.version=1.2.3 -X main.commit=abc1234 -X main.date=2026-11-21T00:00:00Z -X main.builtBy=goreleaser";

/// goreleaser's `tool: mgo` for linux, darwin and windows on amd64 and
/// arm64: `build <flags> -ldflags=... -o dist/<id>_<target>/<name> <main>`,
/// and with several mains, `-o <dir>`. linux/amd64 gives bundles; every
/// other target gives exactly what go gives.
#[test]
fn goreleaser_invocations_work_for_every_target() {
    let dir = scratch();
    two_commands(dir.path());
    for (goos, goarch) in [
        ("linux", "amd64"),
        ("linux", "arm64"),
        ("darwin", "amd64"),
        ("darwin", "arm64"),
        ("windows", "amd64"),
        ("windows", "arm64"),
    ] {
        let ext = if goos == "windows" { ".exe" } else { "" };
        let suffix = if goarch == "amd64" { "_v1" } else { "" };
        let target = format!("{goos}_{goarch}{suffix}");
        let one = |root: &str| format!("{root}/app_{target}/app{ext}");
        let several = |root: &str| format!("{root}/multi_{target}");
        for root in ["dist-mgo", "dist-go"] {
            fs::create_dir_all(dir.path().join(several(root))).unwrap();
        }
        // The same invocation, by mgo into dist-mgo and by go into dist-go.
        let both = |args: &dyn Fn(&str) -> Vec<String>| {
            for (mut command, root) in [(mgo(dir.path()), "dist-mgo"), (go(dir.path()), "dist-go")]
            {
                command.args(args(root));
                goreleaser_env(&mut command, goos, goarch);
                let out = run(&mut command);
                out.ok();
                assert!(out.stderr.is_empty(), "{target} {root}: {}", out.stderr);
            }
        };
        both(&|root| {
            ["build", "-trimpath", LDFLAGS, "-o", &one(root), "./cmd/app"]
                .map(str::to_owned)
                .to_vec()
        });
        // -trimpath in both: each other target's standard library is
        // compiled once (an empty Go build cache compiles it per flag set).
        both(&|root| {
            [
                "build",
                "-trimpath",
                LDFLAGS,
                "-o",
                &several(root),
                "./cmd/app",
                "./cmd/helper",
            ]
            .map(str::to_owned)
            .to_vec()
        });

        let outputs = [
            (one("dist-mgo"), one("dist-go")),
            (
                format!("{}/app{ext}", several("dist-mgo")),
                format!("{}/app{ext}", several("dist-go")),
            ),
            (
                format!("{}/helper{ext}", several("dist-mgo")),
                format!("{}/helper{ext}", several("dist-go")),
            ),
        ];
        assert_eq!(
            files_in(&dir.path().join(several("dist-mgo"))),
            files_in(&dir.path().join(several("dist-go"))),
            "{target}"
        );
        for (ours, theirs) in outputs {
            let ours = dir.path().join(ours);
            let theirs = fs::read(dir.path().join(theirs)).unwrap();
            if target == "linux_amd64_v1" {
                assert!(is_bundle(&ours), "{ours:?} is not a bundle");
                let expected = run(&mut exec(&dir.path().join(one("dist-go")))).ok();
                if ours.ends_with("app") {
                    assert_eq!(run(&mut exec(&ours)).ok(), expected);
                    assert_eq!(expected, "app 1.2.3\n");
                }
            } else {
                assert!(
                    fs::read(&ours).unwrap() == theirs,
                    "{target}: {ours:?} differs from go build's"
                );
            }
        }
    }
}

/// Tools that take one "go" for several commands (ko's KO_GO_PATH runs
/// `env`, `version -m` and `tool buildid`) get go's own answers.
#[test]
fn gos_other_commands_answer_as_go_does() {
    let hello = hello();
    let dir = example("hello");
    let bundle = hello.bundle.to_str().unwrap();
    let plain = hello.plain(1).to_str().unwrap();
    let commands: [&[&str]; 6] = [
        &["env", "GOOS", "GOARCH", "GOROOT"],
        &["version", "-m", bundle],
        &["version"],
        &["list", "-f", "{{.ImportPath}} {{.Name}}", "."],
        &["tool", "buildid", plain],
        &["-C", ".", "env", "GOMOD"],
    ];
    for args in commands {
        let theirs = run(go(&dir).args(args));
        let ours = run(mgo(&dir).args(args));
        assert_eq!(ours.status.code(), theirs.status.code(), "{args:?}");
        assert_eq!(ours.stdout_text(), theirs.stdout_text(), "{args:?}");
        assert_eq!(ours.stderr, theirs.stderr, "{args:?}");
        assert!(!ours.stdout.is_empty(), "{args:?} printed nothing");
    }
    // A failing go command fails the same way.
    let theirs = run(go(&dir).args(["vet", "./does-not-exist"]));
    let ours = run(mgo(&dir).args(["vet", "./does-not-exist"]));
    assert_eq!(ours.status.code(), theirs.status.code());
    assert_ne!(ours.status.code(), Some(0));
    assert_eq!(ours.stderr, theirs.stderr);
    // go version -m reads the program's build info in the bundle.
    let info = run(mgo(&dir).args(["version", "-m", bundle])).ok();
    assert!(info.contains("path\texample.com/hello"), "{info}");
}

/// A build mode that makes no executable: built once by go, one line says
/// it is not a bundle, the output is go's.
#[test]
fn build_modes_without_an_executable_are_go_builds() {
    require("gcc");
    let dir = scratch();
    two_commands(dir.path());
    let made = run(mgo(dir.path()).args(["-buildmode=c-archive", "-o", "ours.a", "./cmd/app"]));
    made.ok();
    assert_eq!(
        made.stderr
            .lines()
            .filter(|l| l.starts_with("mgo: "))
            .collect::<Vec<_>>(),
        [
            "mgo: -buildmode=c-archive does not make an executable: go build builds it once; the output is not a bundle"
        ]
    );
    run(go(dir.path()).args([
        "build",
        "-buildmode=c-archive",
        "-o",
        "theirs.a",
        "./cmd/app",
    ]))
    .ok();
    assert!(
        fs::read(dir.path().join("ours.a")).unwrap()
            == fs::read(dir.path().join("theirs.a")).unwrap()
    );
    // From GOFLAGS too, and with go's status when go fails.
    let failed = run(mgo(dir.path())
        .args(["-o", "x.so", "./cmd/does-not-exist"])
        .env("GOFLAGS", "-buildmode=c-shared"));
    let theirs = run(go(dir.path())
        .args(["build", "-o", "x.so", "./cmd/does-not-exist"])
        .env("GOFLAGS", "-buildmode=c-shared"));
    assert_eq!(failed.status.code(), theirs.status.code());
    assert_ne!(failed.status.code(), Some(0));
}

/// `-o FILE` for a library: go build writes a package archive, and so does
/// mgo (the lowest level's), with a line saying so.
#[test]
fn a_library_with_o_file_gets_gos_package_archive() {
    let dir = scratch();
    two_commands(dir.path());
    let made = run(mgo(dir.path()).args(["-o", "lib.a", "./lib"]));
    made.ok();
    assert!(
        made.stderr.contains("is a package archive"),
        "{}",
        made.stderr
    );
    run(go(dir.path()).args(["build", "-o", "go-lib.a", "./lib"])).ok();
    assert!(
        fs::read(dir.path().join("lib.a")).unwrap()
            == fs::read(dir.path().join("go-lib.a")).unwrap()
    );
}

/// `mgo install` writes bundles where go install writes: GOBIN, else
/// GOPATH/bin; libraries are compiled, not installed.
#[test]
fn install_writes_bundles_where_go_install_writes() {
    let dir = scratch();
    two_commands(dir.path());
    let gobin = scratch();
    run(mgo(dir.path())
        .args(["install", "./cmd/...", "./lib"])
        .env("GOBIN", gobin.path()))
    .ok();
    assert_eq!(files_in(gobin.path()), ["app", "helper"]);
    assert!(is_bundle(&gobin.path().join("app")));
    // The same command with another GOBIN installs there too (an
    // up-to-date install elsewhere does not count).
    let other = scratch();
    run(mgo(dir.path())
        .args(["install", "./cmd/...", "./lib"])
        .env("GOBIN", other.path()))
    .ok();
    assert_eq!(files_in(other.path()), ["app", "helper"]);
    assert_eq!(
        run(&mut exec(&gobin.path().join("helper"))).ok(),
        "helper\n"
    );
    let gopath = scratch();
    let gomodcache = run(go(dir.path()).args(["env", "GOMODCACHE"])).ok();
    run(mgo(dir.path())
        .args(["install", "./cmd/app"])
        .env("GOBIN", "")
        .env("GOPATH", gopath.path())
        .env("GOMODCACHE", gomodcache.trim()))
    .ok();
    assert_eq!(files_in(&gopath.path().join("bin")), ["app"]);
    // go install's own flag errors stay go's.
    let theirs = run(go(dir.path()).args(["install", "-o", "x", "./cmd/app"]));
    let ours = run(mgo(dir.path()).args(["install", "-o", "x", "./cmd/app"]));
    assert_eq!(ours.status.code(), theirs.status.code());
    assert_ne!(ours.status.code(), Some(0));
}
