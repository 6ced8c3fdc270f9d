//! `mgo join`: bundles from executables built elsewhere. Go builds join to
//! exactly the bundle `mgo build` writes; C and Rust programs built at each
//! level start, under every emulated CPU of cpu_matrix.rs, the level that
//! CPU runs, printing what that level's plain build prints; every refusal
//! says which input and what to do, and writes nothing.

use crate::cpu_matrix::{MODELS, level_under};
use crate::support::*;
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// `mgo join -o out ARGS` from `dir`, with `MGO_COMPRESS=mode`.
fn join(dir: &Path, mode: &str, out: &Path, args: &[OsString]) -> Run {
    run(mgo(dir)
        .env("MGO_COMPRESS", mode)
        .arg("join")
        .arg("-o")
        .arg(out)
        .args(args))
}

/// `vN=PATH`.
fn named(level: u8, path: &Path) -> OsString {
    let mut arg = OsString::from(format!("v{level}="));
    arg.push(path);
    arg
}

/// Uncompressed, then a mode of each codec family that changes the bytes
/// join must reproduce: deflate with inflated DWARF, and zstd against the
/// v4 reference (both in compressed.rs's set, so a whole test run builds
/// their bundles once).
const MODES: [&str; 3] = ["", "g1", "Z1"];

/// Joins `built`'s four plain builds, given in a shuffled order and one
/// with its level named, in each mode: the bytes `mgo build` wrote.
fn joins_to_what_mgo_build_writes(built: &Built) {
    let dir = scratch();
    for mode in MODES {
        let expected = if mode.is_empty() {
            built.bundle.as_path()
        } else {
            built.compressed(mode)
        };
        let out = dir.path().join(format!("joined-{mode}"));
        let args = [
            built.plain(4).into(),
            built.plain(2).into(),
            named(1, built.plain(1)),
            built.plain(3).into(),
        ];
        let joined = join(dir.path(), mode, &out, &args);
        joined.ok();
        assert_eq!(joined.stderr, "", "{}", built.key);
        assert!(
            fs::read(&out).unwrap() == fs::read(expected).unwrap(),
            "{} MGO_COMPRESS={mode}: the joined bundle differs from mgo build's",
            built.key
        );
    }
}

#[test]
fn hello_joins_to_what_mgo_build_writes() {
    let hello = hello();
    joins_to_what_mgo_build_writes(hello);
    // Some levels only: what GOAMD64=v3 mgo writes.
    let dir = scratch();
    let expected = dir.path().join("v3-mgo");
    run(mgo(&hello.dir)
        .env("GOAMD64", "v3")
        .arg("-o")
        .arg(&expected)
        .arg(&hello.package))
    .ok();
    let out = dir.path().join("v3-joined");
    let args = [hello.plain(3).into(), hello.plain(4).into()];
    join(dir.path(), "", &out, &args).ok();
    assert!(fs::read(&out).unwrap() == fs::read(&expected).unwrap());
    // Artifacts that lost their execute bits between CI jobs still join
    // into a bundle that runs.
    let args: Vec<OsString> = (1..=4u8)
        .map(|level| {
            let artifact = dir.path().join(format!("artifact.v{level}"));
            fs::copy(hello.plain(level), &artifact).unwrap();
            fs::set_permissions(&artifact, fs::Permissions::from_mode(0o644)).unwrap();
            artifact.into()
        })
        .collect();
    let out = dir.path().join("from-artifacts");
    join(dir.path(), "", &out, &args).ok();
    assert_eq!(
        fs::metadata(&out).unwrap().permissions().mode() & 0o111,
        0o111
    );
    assert!(fs::read(&out).unwrap() == fs::read(&hello.bundle).unwrap());
    assert!(run(&mut exec(&out)).ok().starts_with("hello, world"));
}

#[test]
fn cgo_joins_to_what_mgo_build_writes() {
    require("gcc");
    joins_to_what_mgo_build_writes(built("cgo", &example("cgo"), &[], "."));
}

#[test]
fn gofmt_joins_to_what_mgo_build_writes() {
    joins_to_what_mgo_build_writes(gofmt());
}

/// The level each emulated CPU of the matrix runs, once per test run.
fn matrix(qemu: &Path) -> &'static [(&'static str, u8)] {
    static LEVELS: OnceLock<Vec<(&'static str, u8)>> = OnceLock::new();
    LEVELS.get_or_init(|| {
        let levels: Vec<_> = MODELS
            .iter()
            .map(|&cpu| (cpu, level_under(qemu, cpu)))
            .collect();
        let seen = |l| levels.iter().any(|&(_, level)| level == l);
        assert!(seen(1) && seen(2) && seen(3), "{levels:?}");
        levels
    })
}

/// One level of a program not built by Go, as it was built.
struct Plain {
    level: u8,
    path: PathBuf,
}

/// Runs `bundle` under each CPU of the matrix: the launcher starts the
/// level that CPU runs, which prints what its plain build prints there and
/// ends with the same status;
/// with `extract`, MGODEBUG=extract also writes exactly that build.
fn check_under_the_matrix(bundle: &Path, plains: &[Plain], extract: bool, codec: &str) {
    let qemu = require("qemu-x86_64");
    let mut wrong = Vec::new();
    let mut failing = 0;
    for &(cpu, level) in matrix(&qemu) {
        let plain = plains.iter().find(|p| p.level == level).unwrap();
        let emulated = |path: &Path, debug: &str| {
            let mut command = Command::new(&qemu);
            command.args(["-cpu", cpu]).arg(path).env_remove("GOAMD64");
            if !debug.is_empty() {
                command.env("MGODEBUG", debug);
            }
            run(&mut command)
        };
        // The plain build may itself fail under an emulated CPU (static
        // glibc 2.36 picks string functions that use BMI1 under
        // "Haswell,-bmi1"): the bundle must then fail alike.
        let expected = emulated(&plain.path, "");
        failing += usize::from(!expected.status.success());
        let started = emulated(bundle, "log");
        if started.status.code() != expected.status.code()
            || started.stdout != expected.stdout
            || launcher_lines(&started.stderr) != [started_line(level, codec, Launch::Mapped)]
        {
            wrong.push(format!("-cpu {cpu} (v{level}): {started:?}"));
        }
        if extract {
            let extracted = emulated(bundle, "extract");
            if extracted.stdout != fs::read(&plain.path).unwrap() {
                wrong.push(format!("-cpu {cpu}: extract wrote another level"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}: {wrong:#?}", bundle.display());
    assert!(failing <= 2, "{failing} plain builds fail under the matrix");
}

/// The launcher's `MGODEBUG=log` line for a level stored with `codec`
/// ("" for as it is, else the decoder's name).
fn started_line(level: u8, codec: &str, launch: Launch) -> String {
    if codec.is_empty() {
        return starting(level, launch);
    }
    format!(
        "[mgo] launcher: starting variant GOAMD64=v{level} ({codec}, {})",
        launch.logged()
    )
}

/// On this machine: each level forced with GOAMD64 that it runs, mapped
/// and through a memfd, prints what its plain build prints; inspect,
/// verify and extract read the bundle.
fn check_on_the_host(dir: &Path, bundle: &Path, plains: &[Plain], codec: &str) {
    for plain in plains.iter().filter(|p| p.level <= host_level()) {
        let expected = run(&mut exec(&plain.path)).ok();
        for launch in Launch::ALL {
            let started = run(exec_as(launch, bundle)
                .env("GOAMD64", format!("v{}", plain.level))
                .env("MGODEBUG", launch.debug("log")));
            assert_eq!(started.ok(), expected, "{launch:?} v{}", plain.level);
            assert_eq!(
                launcher_lines(&started.stderr),
                [started_line(plain.level, codec, launch)]
            );
        }
        let extracted = dir.join(format!("extracted.v{}", plain.level));
        run(mgo(dir)
            .args(["extract", "-l", &format!("v{}", plain.level), "-o"])
            .arg(&extracted)
            .arg(bundle))
        .ok();
        assert!(fs::read(&extracted).unwrap() == fs::read(&plain.path).unwrap());
    }
    let verified = run(mgo(dir).arg("verify").arg(bundle)).ok();
    assert!(verified.contains("launcher: ok"), "{verified}");
    let inspected = run(mgo(dir).arg("inspect").arg(bundle)).ok();
    assert!(
        inspected.contains("(no Go build information)"),
        "{inspected}"
    );
}

/// A C program that says which level it was built for and uses the heap:
/// small blocks, which glibc's malloc takes from the break (brk), and a
/// large one, which it maps.
const C_PROGRAM: &str = r#"#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv) {
    size_t small = 0;
    for (int i = 0; i < 20000; i++) {
        char *block = malloc(200);
        memset(block, 'x', 199);
        block[199] = 0;
        small += strlen(block) + 1;
    }
    char *large = malloc(1 << 20);
    memset(large, 'y', 1 << 20);
    printf("hello from C (%s), %d argument(s), %zu and %d bytes\n", LEVEL, argc, small, (int)(large[12345] == 'y') << 20);
    free(large);
    return 0;
}
"#;

/// gcc's -march for each level.
fn march(level: u8) -> &'static str {
    ["x86-64", "x86-64", "x86-64-v2", "x86-64-v3", "x86-64-v4"][usize::from(level)]
}

/// The C program built at each level with `flags`.
fn c_builds(dir: &Path, name: &str, flags: &[&str]) -> Vec<Plain> {
    let gcc = require("gcc");
    let source = dir.join("program.c");
    fs::write(&source, C_PROGRAM).unwrap();
    (1..=4u8)
        .map(|level| {
            let path = dir.join(format!("{name}.v{level}"));
            run(Command::new(&gcc)
                .arg("-O2")
                .arg(format!("-march={}", march(level)))
                .arg(format!("-DLEVEL=\"v{level}\""))
                .args(flags)
                .arg("-o")
                .arg(&path)
                .arg(&source))
            .ok();
            Plain { level, path }
        })
        .collect()
}

/// Dynamically linked PIEs with gcc's -mneeded, which writes -march's level
/// into the ISA note: join reads each one's level from it.
#[test]
fn a_dynamic_c_program_starts_the_level_each_cpu_runs() {
    let dir = scratch();
    let plains = c_builds(dir.path(), "dynamic", &["-mneeded"]);
    let bundle = dir.path().join("bundle");
    let args: Vec<OsString> = plains.iter().rev().map(|p| p.path.clone().into()).collect();
    join(dir.path(), "", &bundle, &args).ok();
    check_under_the_matrix(&bundle, &plains, true, "");
    check_on_the_host(dir.path(), &bundle, &plains, "");
    // Lowest level v3: under a v2 CPU the v3 build starts, and glibc's
    // loader refuses it from its note, as it refuses the plain build.
    let high = dir.path().join("high");
    let args = [plains[2].path.clone().into(), plains[3].path.clone().into()];
    join(dir.path(), "", &high, &args).ok();
    let qemu = require("qemu-x86_64");
    let under = |path: &Path| {
        run(Command::new(&qemu)
            .args(["-cpu", "Nehalem"])
            .arg(path)
            .env("MGODEBUG", "log"))
    };
    let (bundled, plain) = (under(&high), under(&plains[2].path));
    assert_eq!(bundled.status.code(), plain.status.code());
    assert!(
        bundled
            .stderr
            .contains("CPU ISA level is lower than required"),
        "{bundled:?}"
    );
    assert_eq!(
        launcher_lines(&bundled.stderr),
        [starting(3, Launch::Mapped)]
    );
}

/// Static glibc executables (not PIE), built without -mneeded: their notes
/// all say baseline, so each level is named on the command line.
#[test]
fn a_static_c_program_starts_the_level_each_cpu_runs() {
    let dir = scratch();
    let plains = c_builds(dir.path(), "static", &["-static"]);
    let bundle = dir.path().join("bundle");
    let args: Vec<OsString> = plains.iter().map(|p| named(p.level, &p.path)).collect();
    // Compressed, for the decoding start of a program not built by Go.
    // Not zstd: with BMI2 present, zstd's decoder runs code compiled for
    // LZCNT too, and the matrix's "Haswell,-abm" has BMI2 without LZCNT,
    // which no real CPU has; every zstd bundle crashes there, Go's too.
    join(dir.path(), "g1", &bundle, &args).ok();
    check_under_the_matrix(&bundle, &plains, false, "deflate");
    check_on_the_host(dir.path(), &bundle, &plains, "deflate");
    // Unnamed, the four builds claim v1 each: the second is refused.
    let args: Vec<OsString> = plains.iter().map(|p| p.path.clone().into()).collect();
    let refused = join(dir.path(), "", &dir.path().join("unnamed"), &args);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        refused.stderr.contains("level v1 again"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("-mneeded"), "{}", refused.stderr);
}

/// A Rust program at rustc's four `-C target-cpu` levels (PIEs; rustc
/// writes no level into the ISA note, so each is named).
#[test]
fn a_rust_program_starts_the_level_each_cpu_runs() {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let dir = scratch();
    let source = dir.path().join("program.rs");
    fs::write(
        &source,
        "fn main() {\n    let sum: u64 = (1..=1000u64).sum();\n    println!(\"hello from Rust ({}), {sum}\", env!(\"LEVEL\"));\n}\n",
    )
    .unwrap();
    let plains: Vec<Plain> = (1..=4u8)
        .map(|level| {
            let path = dir.path().join(format!("rust.v{level}"));
            run(Command::new(&rustc)
                .args(["-O", "-C"])
                .arg(format!("target-cpu={}", march(level)))
                .arg("-o")
                .arg(&path)
                .arg(&source)
                .env("LEVEL", format!("v{level}")))
            .ok();
            Plain { level, path }
        })
        .collect();
    let bundle = dir.path().join("bundle");
    let args: Vec<OsString> = plains.iter().map(|p| named(p.level, &p.path)).collect();
    join(dir.path(), "", &bundle, &args).ok();
    check_under_the_matrix(&bundle, &plains, false, "");
    check_on_the_host(dir.path(), &bundle, &plains, "");
}

/// Asserts a refusal: status, one `mgo: join: INPUT: ...` line that
/// contains `needle`, and nothing written in `dir` (whose files before the
/// command were `before`).
fn assert_refused(
    dir: &Path,
    before: &[String],
    run: &Run,
    input: &str,
    needle: &str,
    status: i32,
) {
    assert_eq!(run.status.code(), Some(status), "{run:?}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let prefix = format!("mgo: join: {input}");
    assert!(
        lines[0].starts_with(&prefix) && lines[0].contains(needle),
        "expected {prefix:?} and {needle:?}: {lines:?}"
    );
    assert!(run.stdout.is_empty());
    assert_eq!(files_in(dir), before, "something was written");
}

#[test]
fn every_refusal_names_the_input_and_writes_nothing() {
    let hello = hello();
    let dir = scratch();
    let d = dir.path();
    let gcc = require("gcc");
    let copy = |from: &Path, name: &str| {
        fs::copy(from, d.join(name)).unwrap();
        OsString::from(name)
    };
    let (v1, v2) = (
        copy(hello.plain(1), "hello.v1"),
        copy(hello.plain(2), "hello.v2"),
    );
    copy(hello.plain(3), "hello.v3");
    let probe = copy(probe().plain(2), "probe.v2");
    // The same program with another build setting.
    run(go(&hello.dir)
        .args(["build", "-ldflags=-s", "-o"])
        .arg(d.join("stripped.v2"))
        .arg(".")
        .env("GOAMD64", "v2"))
    .ok();
    // The same program against another version of a dependency.
    for (name, version) in [("dep-a", "v1.0.0"), ("dep-b", "v1.1.0")] {
        let module = d.join("modules").join(name);
        go_module(
            &module,
            "example.com/joinme",
            &[(
                "main.go",
                "package main\n\nimport \"example.com/dep\"\n\nfunc main() { dep.Hello() }\n",
            )],
        );
        go_module(
            &module.join("dep"),
            "example.com/dep",
            &[(
                "dep.go",
                "package dep\n\nfunc Hello() { println(\"dep\") }\n",
            )],
        );
        let go_mod = module.join("go.mod");
        let text = fs::read_to_string(&go_mod).unwrap()
            + &format!("\nrequire example.com/dep {version}\n\nreplace example.com/dep => ./dep\n");
        fs::write(&go_mod, text).unwrap();
        let level = if name == "dep-a" { "v1" } else { "v2" };
        run(go(&module)
            .args(["build", "-o"])
            .arg(d.join(format!("{name}.bin")))
            .arg(".")
            .env("GOAMD64", level))
        .ok();
    }
    fs::remove_dir_all(d.join("modules")).unwrap();
    // Another target's Go build (drop_in.rs builds this target's standard
    // library too).
    run(go(&hello.dir)
        .args(["build", "-trimpath", "-o"])
        .arg(d.join("hello.arm64"))
        .arg(".")
        .env("GOOS", "linux")
        .env("GOARCH", "arm64"))
    .ok();
    // C: a program whose note needs v3, one without a level, a shared
    // library, an object file.
    fs::write(d.join("c.c"), "int main(void) { return 0; }\n").unwrap();
    for (out, flags) in [
        ("c.v3", &["-march=x86-64-v3", "-mneeded"][..]),
        ("lib.so", &["-shared", "-fPIC"][..]),
        ("c.o", &["-c"][..]),
    ] {
        run(Command::new(&gcc)
            .args(flags)
            .arg("-o")
            .arg(d.join(out))
            .arg(d.join("c.c")))
        .ok();
    }
    copy(&hello.bundle, "bundle");
    // A FIFO is refused, not read until a writer comes and goes.
    run(Command::new(require("mkfifo")).arg(d.join("pipe"))).ok();
    let before = files_in(d);
    let out = d.join("out");
    let os = |s: &str| OsString::from(s);
    let cases: Vec<(Vec<OsString>, &str, &str)> = vec![
        (
            vec![v1.clone(), probe.clone()],
            "probe.v2",
            "not a build of the same program as hello.v1: they differ in the main package",
        ),
        (
            vec![v1.clone(), os("stripped.v2")],
            "stripped.v2",
            "they differ in the build setting -ldflags (unset and -ldflags=-s)",
        ),
        (
            vec![os("dep-a.bin"), os("dep-b.bin")],
            "dep-b.bin",
            "they differ in the module versions (dep example.com/dep v1.0.0 and dep example.com/dep v1.1.0)",
        ),
        (
            vec![v1.clone(), v2.clone(), v2.clone()],
            "hello.v2",
            "level v2 again (hello.v2 is v2): give one executable per level",
        ),
        (
            vec![v1.clone(), named(2, Path::new("hello.v3"))],
            "v2=hello.v3",
            "the file is a GOAMD64=v3 build: name it v3= or give the v2 build",
        ),
        (
            vec![named(2, Path::new("c.v3"))],
            "v2=c.v3",
            "its ISA note says it needs x86-64-v3",
        ),
        (
            vec![v1.clone(), os("c.c")],
            "c.c",
            "not an x86-64 ELF executable",
        ),
        (vec![os("c.o")], "c.o", "not an x86-64 ELF executable"),
        (
            vec![os("lib.so")],
            "lib.so",
            "a shared library, not an executable",
        ),
        (
            vec![os("hello.arm64")],
            "hello.arm64",
            "a Go build for GOOS=linux GOARCH=arm64: build it with GOOS=linux GOARCH=amd64",
        ),
        (
            vec![v1.clone(), os("c.v3")],
            "c.v3",
            "not a Go build, but hello.v1 is: join builds of one program",
        ),
        (
            vec![os("c.v3"), v1.clone()],
            "hello.v1",
            "a Go build, but c.v3 is not: join builds of one program",
        ),
        (vec![os("bundle")], "bundle", "already an mgo bundle"),
        (vec![os("missing")], "missing", "No such file"),
        (vec![os("pipe")], "pipe", "it is a FIFO, not a regular file"),
        (vec![os(".")], ".", "it is a directory"),
    ];
    for (args, input, needle) in cases {
        let refused = join(d, "", &out, &args);
        assert_refused(d, &before, &refused, input, needle, 1);
    }
    // The command line itself: a usage error, status 2.
    for (args, needle) in [
        (vec!["join", "hello.v1"], "say where to write the bundle"),
        (vec!["join", "-o", "out"], "name at least one executable"),
        (
            vec!["join", "-x", "-o", "out", "hello.v1"],
            "unknown flag -x",
        ),
    ] {
        let refused = run(mgo(d).args(&args));
        assert_refused(d, &before, &refused, "", needle, 2);
    }
}

/// goreleaser with `goamd64: [v1, v2, v3, v4]` and the join recipe of
/// docs/CLI.md as each target's post hook, in goreleaser's invocation
/// shapes: `go build -trimpath -ldflags=... -o dist/app_linux_amd64_vN/app
/// ./cmd/app` with its per-target environment, then the hook with the
/// artifact's path, targets finishing in any order. The v1 artifact ends as
/// the bundle `mgo build` writes for the same flags, and running the hook
/// again changes nothing.
#[test]
fn goreleasers_four_levels_join_in_a_post_hook() {
    require("flock");
    let dir = scratch();
    let d = dir.path();
    go_module(
        d,
        "example.com/release",
        &[(
            "cmd/app/main.go",
            "package main\n\nimport \"fmt\"\n\nvar version = \"dev\"\n\nfunc main() { fmt.Println(\"app\", version) }\n",
        )],
    );
    let script = cli_md_block_after("save it as `mgo-join.sh`");
    fs::write(d.join("mgo-join.sh"), &script).unwrap();
    let ldflags = "-ldflags=-s -w -X main.version=1.2.3 -X main.commit=abc1234 -X main.date=2026-11-21T00:00:00Z -X main.builtBy=goreleaser";
    let artifact = |level: u8| format!("dist/app_linux_amd64_v{level}/app");
    for level in [3u8, 1, 4, 2] {
        let mut command = go(d);
        command
            .args([
                "build",
                "-trimpath",
                ldflags,
                "-o",
                &artifact(level),
                "./cmd/app",
            ])
            .env("GOOS", "linux")
            .env("GOARCH", "amd64")
            .env("GOAMD64", format!("v{level}"))
            .env("CGO_ENABLED", "0");
        run(&mut command).ok();
    }
    let mgo_path = Path::new(env!("CARGO_BIN_EXE_mgo")).parent().unwrap();
    let path = std::env::join_paths(
        std::iter::once(mgo_path.to_path_buf())
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let hook = |level: u8| {
        let out = run(Command::new("sh")
            .arg("mgo-join.sh")
            .arg(artifact(level))
            .current_dir(d)
            .env("PATH", &path)
            .env_remove("MGO_COMPRESS")
            .env_remove("MGO_LAUNCH"));
        out.ok();
    };
    for level in [3u8, 1, 4, 2] {
        hook(level);
    }
    let expected = d.join("expected");
    run(mgo(d)
        .args(["build", "-trimpath", ldflags, "-o"])
        .arg(&expected)
        .arg("./cmd/app")
        .env("GOAMD64", "v1")
        .env("CGO_ENABLED", "0"))
    .ok();
    let joined = fs::read(d.join(artifact(1))).unwrap();
    assert!(
        joined == fs::read(&expected).unwrap(),
        "not mgo build's bundle"
    );
    hook(4);
    assert!(fs::read(d.join(artifact(1))).unwrap() == joined);
    assert_eq!(run(&mut exec(&d.join(artifact(1)))).ok(), "app 1.2.3\n");
}

/// The first `sh` block of docs/CLI.md after the text `marker`: the recipe
/// as the documentation gives it.
fn cli_md_block_after(marker: &str) -> String {
    let text = fs::read_to_string(repo().join("docs/CLI.md")).unwrap();
    let after = &text[text.find(marker).expect(marker)..];
    let block = &after[after.find("```sh\n").unwrap() + "```sh\n".len()..];
    block[..block.find("```").unwrap()].to_owned()
}
