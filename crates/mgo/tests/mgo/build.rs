//! The build side: go build's names and places, failures that leave nothing
//! behind, reproducibility, and one-line errors for what mgo cannot do.

use crate::support::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// A module `example.com/tool/v2` with two commands, a library, a main
/// package at its root and one alone under `only/`.
fn module(dir: &Path) {
    go_module(
        dir,
        "example.com/tool/v2",
        &[
            (
                "main.go",
                "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"root\") }\n",
            ),
            (
                "cmd/foo/main.go",
                "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"foo\") }\n",
            ),
            (
                "cmd/bar/main.go",
                "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"bar\") }\n",
            ),
            (
                "lib/lib.go",
                "package lib\n\n// X is exported.\nconst X = 1\n",
            ),
            ("only/one/main.go", "package main\n\nfunc main() {}\n"),
        ],
    );
}

/// Every file below `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(
                    path.strip_prefix(dir)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    out.sort();
    out
}

/// For each argument list, `go build` and `mgo` run in two copies of the
/// module must create the same files; mgo's must be bundles that run.
#[test]
fn outputs_are_named_and_placed_as_go_build_does() {
    let cases: [&[&str]; 13] = [
        &[],
        &["./cmd/foo"],
        &["build", "./cmd/foo"],
        &["cmd/foo/main.go"],
        &["-o", "out-file", "./cmd/bar"],
        &["-o", "bin/", "./cmd/..."],
        &["-o", "existing", "./cmd/foo"],
        &["./lib"],
        &["./cmd/foo", "./cmd/bar"],
        &["./cmd/..."],
        &["./only/..."],
        &["-C", "cmd/foo", "."],
        &["-o", "new/dirs/prog", "./cmd/foo"],
    ];
    for args in cases {
        let go_dir = scratch();
        let mgo_dir = scratch();
        for dir in [go_dir.path(), mgo_dir.path()] {
            module(dir);
            fs::create_dir(dir.join("existing")).unwrap();
        }
        let before = tree(go_dir.path());
        let go_args: Vec<&str> = args.iter().copied().filter(|a| *a != "build").collect();
        run(go(go_dir.path()).arg("build").args(&go_args)).ok();
        let made = run(mgo(mgo_dir.path()).args(args));
        assert!(
            made.stdout.is_empty() && made.stderr.is_empty(),
            "{args:?}: not silent: {made:?}"
        );
        made.ok();
        let go_new: Vec<String> = tree(go_dir.path())
            .into_iter()
            .filter(|f| !before.contains(f))
            .collect();
        let mgo_new: Vec<String> = tree(mgo_dir.path())
            .into_iter()
            .filter(|f| !before.contains(f))
            .collect();
        assert_eq!(
            mgo_new, go_new,
            "mgo {args:?} wrote other files than go build"
        );
        for file in &mgo_new {
            let path = mgo_dir.path().join(file);
            assert!(is_bundle(&path), "{file} is not a bundle");
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            let go_mode = fs::metadata(go_dir.path().join(file))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(
                mode, go_mode,
                "{file}: mode {mode:o}, go build's {go_mode:o}"
            );
            let expected = run(&mut exec(&go_dir.path().join(file))).ok();
            assert_eq!(run(&mut exec(&path)).ok(), expected, "{file}");
        }
    }
}

#[test]
fn module_path_ending_in_major_version_names_the_element_before_it() {
    let dir = scratch();
    module(dir.path());
    run(&mut mgo(dir.path())).ok();
    assert!(
        dir.path().join("tool").is_file(),
        "{:?}",
        files_in(dir.path())
    );
}

#[test]
fn a_failed_variant_build_writes_nothing_and_names_the_variant() {
    let dir = scratch();
    module(dir.path());
    // Only the v3 and v4 builds see this file (build tag amd64.v3).
    fs::write(
        dir.path().join("cmd/foo/v3.go"),
        "//go:build amd64.v3\n\npackage main\n\nvar broken int = \"text\"\n",
    )
    .unwrap();
    let previous = b"\x7fELF previous build".to_vec();
    fs::write(dir.path().join("foo"), &previous).unwrap();
    let before = tree(dir.path());
    let tmp = scratch();
    // Two at a time, so that v1 or v2 has finished, without the error,
    // when v3 starts: mgo then knows the error is not every level's and
    // marks it. (With all four at once, v3 may fail before v1 and v2 end;
    // stopped, they cannot say, and the error is printed bare.)
    let out = run(mgo(dir.path())
        .arg("./cmd/foo")
        .env("TMPDIR", tmp.path())
        .env("MGO_PARALLEL_BUILD", "2"));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stdout.is_empty());
    let mgo_lines: Vec<&str> = mgo_lines(&out.stderr);
    assert_eq!(mgo_lines.len(), 1, "{}", out.stderr);
    assert!(
        mgo_lines[0].starts_with("mgo: building the GOAMD64=v3 variant failed")
            || mgo_lines[0].starts_with("mgo: building the GOAMD64=v4 variant failed"),
        "{}",
        mgo_lines[0]
    );
    // go's own message, prefixed with the levels that printed it.
    assert!(
        out.stderr.lines().any(|l| (l.starts_with("v3: ")
            || l.starts_with("v4: ")
            || l.starts_with("v3,v4: "))
            && l.contains("cannot use \"text\"")),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr
            .lines()
            .any(|l| l.starts_with("v1") || l.starts_with("v2")),
        "{}",
        out.stderr
    );
    assert_eq!(tree(dir.path()), before, "files were added or removed");
    assert_eq!(
        fs::read(dir.path().join("foo")).unwrap(),
        previous,
        "the previous output was replaced"
    );
    assert_eq!(
        files_in(tmp.path()),
        Vec::<String>::new(),
        "temporary files left behind"
    );
}

#[test]
fn output_is_reproducible_whatever_the_parallelism() {
    let dir = scratch();
    module(dir.path());
    run(mgo(dir.path()).args(["-o", "first", "./cmd/foo"])).ok();
    run(mgo(dir.path())
        .args(["-o", "second", "./cmd/foo"])
        .env("MGO_PARALLEL_BUILD", "1"))
    .ok();
    let other = scratch();
    module(other.path());
    run(mgo(other.path()).args(["-trimpath", "-o", "third", "./cmd/foo"])).ok();
    run(mgo(dir.path())
        .args(["-trimpath", "-o", "fourth", "./cmd/foo"])
        .env("MGO_PARALLEL_BUILD", "3"))
    .ok();
    let read = |d: &Path, n: &str| fs::read(d.join(n)).unwrap();
    assert!(
        read(dir.path(), "first") == read(dir.path(), "second"),
        "same inputs, different bundles"
    );
    assert!(
        read(other.path(), "third") == read(dir.path(), "fourth"),
        "-trimpath bundles differ across directories"
    );
}

#[test]
fn build_flags_reach_every_variant() {
    let dir = scratch();
    module(dir.path());
    let out = dir.path().join("flagged");
    run(mgo(dir.path())
        .args([
            "-ldflags=-X main.unused=1 -s -w",
            "-tags",
            "netgo",
            "-buildmode=pie",
            "-gcflags=-N",
            "-o",
        ])
        .arg(&out)
        .arg("./cmd/foo"))
    .ok();
    assert_eq!(run(&mut exec(&out)).ok(), "foo\n");
    for level in 1..=4 {
        let variant = run(exec(&out)
            .env("MGODEBUG", "extract")
            .env("GOAMD64", format!("v{level}")));
        let path = dir.path().join(format!("v{level}"));
        fs::write(&path, &variant.stdout).unwrap();
        let info = run(go(dir.path()).args(["version", "-m"]).arg(&path)).ok();
        for expected in [
            "-buildmode=pie",
            "-gcflags=-N",
            "-tags=netgo",
            "-ldflags=\"-X main.unused=1 -s -w\"",
            &format!("GOAMD64=v{level}"),
        ] {
            assert!(
                info.contains(expected),
                "v{level} lacks {expected}:\n{info}"
            );
        }
    }
}

#[test]
fn goamd64_at_build_time_sets_the_lowest_level() {
    let dir = scratch();
    module(dir.path());
    run(mgo(dir.path())
        .args(["-o", "v3up", "./cmd/foo"])
        .env("GOAMD64", "v3"))
    .ok();
    let bundle = dir.path().join("v3up");
    // Forced below what the bundle holds: the lowest it has.
    let forced = run(exec(&bundle).env("GOAMD64", "v1").env("MGODEBUG", "log"));
    assert_eq!(
        launcher_lines(&forced.stderr),
        [starting(3, Launch::Mapped)]
    );
    let levels: Vec<String> = (1..=4)
        .map(|l| {
            let out = run(exec(&bundle)
                .env("MGODEBUG", "extract")
                .env("GOAMD64", format!("v{l}")));
            fs::write(dir.path().join("x"), &out.stdout).unwrap();
            let info = run(go(dir.path()).args(["version", "-m", "x"])).ok();
            info.lines()
                .find(|l| l.contains("GOAMD64="))
                .unwrap_or("")
                .trim()
                .to_owned()
        })
        .collect();
    assert_eq!(
        levels,
        [
            "build\tGOAMD64=v3",
            "build\tGOAMD64=v3",
            "build\tGOAMD64=v3",
            "build\tGOAMD64=v4"
        ]
    );
    // goreleaser sets GOAMD64 to an empty string for "unset".
    run(mgo(dir.path())
        .args(["-o", "all", "./cmd/foo"])
        .env("GOAMD64", ""))
    .ok();
    let v1 = run(exec(&dir.path().join("all"))
        .env("GOAMD64", "v1")
        .env("MGODEBUG", "log"));
    assert_eq!(launcher_lines(&v1.stderr), [starting(1, Launch::Mapped)]);
}

/// mgo's refusals: one `mgo:` line on stderr, nothing on stdout, a non-zero
/// status, nothing written.
#[test]
fn what_mgo_cannot_do_gets_one_clear_line() {
    /// Arguments, environment, and what the line must say.
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 7] = [
        (
            &["./cmd/foo"],
            &[("GOAMD64", "v9")],
            "mgo: GOAMD64=v9 is not a level",
        ),
        (
            &["./cmd/foo"],
            &[("MGO_PARALLEL_BUILD", "0")],
            "mgo: MGO_PARALLEL_BUILD=0 is not a positive whole number",
        ),
        (
            &["./cmd/foo"],
            &[("PATH", "/nonexistent")],
            "mgo: go not found in PATH",
        ),
        (
            &["-o", "go.mod/x", "./cmd/foo"],
            &[],
            "go.mod/x: Not a directory",
        ),
        (&["-ldflags"], &[], "mgo: flag -ldflags needs a value"),
        (
            &["./cmd/foo"],
            &[("MGO_LAUNCH", "fast")],
            "mgo: MGO_LAUNCH=fast is not a launch mode: use mapped (the default), memfd or file",
        ),
        (
            &["./cmd/foo"],
            &[("MGOCACHE", "cache")],
            "mgo: MGOCACHE=cache is not an absolute path: set an absolute directory, or off",
        ),
    ];
    for (args, envs, message) in cases {
        let dir = scratch();
        module(dir.path());
        let before = tree(dir.path());
        let out = run(mgo(dir.path()).args(args).envs(envs.iter().copied()));
        assert!(!out.status.success(), "{args:?} {envs:?} succeeded");
        assert!(out.stdout.is_empty(), "stdout: {}", out.stdout_text());
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?} {envs:?}: {lines:?}");
        assert!(
            lines[0].starts_with("mgo: ") && lines[0].contains(message),
            "{lines:?} lacks {message}"
        );
        assert_eq!(tree(dir.path()), before);
    }
}

#[test]
fn a_go_older_than_1_18_is_refused() {
    // No old toolchain can be installed here, so a stand-in answers `go env`
    // the way Go 1.17 would (it had no GOAMD64).
    let dir = scratch();
    module(dir.path());
    let fake = scratch();
    let script = "#!/bin/sh\nif [ \"$1\" = env ]; then printf 'linux\\namd64\\n\\ngo1.17.13\\n'; exit 0; fi\nexit 1\n";
    write_exe(&fake.path().join("go"), script.as_bytes());
    let out = run(mgo(dir.path()).arg("./cmd/foo").env("PATH", fake.path()));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        out.stderr,
        "mgo: go1.17.13 is too old: mgo needs Go 1.18 or newer (GOAMD64 levels); install a newer Go\n"
    );
}

#[test]
fn an_existing_file_that_is_not_an_executable_is_never_replaced() {
    let dir = scratch();
    module(dir.path());
    fs::write(dir.path().join("notes.txt"), "precious").unwrap();
    let out = run(mgo(dir.path()).args(["-o", "notes.txt", "./cmd/foo"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stderr.starts_with("mgo: build output ")
            && out
                .stderr
                .contains("already exists and is not an executable")
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("notes.txt")).unwrap(),
        "precious"
    );
    // A previous build is an executable: it is replaced.
    run(mgo(dir.path()).args(["-o", "prog", "./cmd/foo"])).ok();
    run(mgo(dir.path()).args(["-o", "prog", "./cmd/bar"])).ok();
    assert_eq!(run(&mut exec(&dir.path().join("prog"))).ok(), "bar\n");
}

#[test]
fn help_goes_to_stdout_and_names_the_synopsis() {
    for flag in ["--help", "-h"] {
        let out = run(mgo(&repo()).arg(flag));
        let text = out.ok();
        assert!(
            text.contains("SYNOPSIS") && text.contains("mgo [build] [go build flags] [packages]")
        );
        assert!(out.stderr.is_empty());
    }
}

#[test]
fn interrupting_stops_every_build_and_removes_temporary_files() {
    interrupt_with(rustix::process::Signal::INT);
}

/// SIGQUIT (Ctrl-\\) ends mgo as SIGINT does, leaving nothing behind.
#[test]
fn sigquit_stops_every_build_and_removes_temporary_files() {
    interrupt_with(rustix::process::Signal::QUIT);
}

fn interrupt_with(signal: rustix::process::Signal) {
    let dir = scratch();
    module(dir.path());
    let tmp = scratch();
    let gocache = scratch();
    // A cold cache and -a make the builds long enough to interrupt.
    let mut child = mgo(dir.path())
        .args(["-a", "-o", "out", "./cmd/foo"])
        .env("TMPDIR", tmp.path())
        .env("GOCACHE", gocache.path())
        .spawn()
        .unwrap();
    // Wait until the builds are under way: go's work directories exist (in
    // the GOTMPDIR mgo gives each build, inside its own temporary directory).
    let go_working = || {
        files_in(tmp.path()).iter().any(|mgo_dir| {
            fs::read_dir(tmp.path().join(mgo_dir))
                .into_iter()
                .flatten()
                .flatten()
                .any(|gotmp| {
                    fs::read_dir(gotmp.path())
                        .into_iter()
                        .flatten()
                        .flatten()
                        .any(|w| w.file_name().to_string_lossy().starts_with("go-build"))
                })
        })
    };
    assert!(
        wait_until(Duration::from_secs(120), Some(&mut child), go_working),
        "builds never started"
    );
    rustix::process::kill_process(rustix::process::Pid::from_child(&child), signal).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert_eq!(
        files_in(tmp.path()),
        Vec::<String>::new(),
        "left behind in TMPDIR"
    );
    assert!(!dir.path().join("out").exists());
    // No go, compile or link process of this build survives: their command
    // lines name the module's files or mgo's temporary directory.
    let ps = run(Command::new("ps").args(["-eo", "args"])).ok();
    for path in [dir.path(), tmp.path()] {
        assert!(
            !ps.lines().any(|l| l.contains(path.to_str().unwrap())),
            "{ps}"
        );
    }
}
