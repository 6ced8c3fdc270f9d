//! Each example, GOROOT's gofmt and vet, a PIE and a -race build: the
//! bundle runs like the program, mapped in place and through a memfd, and
//! each level it holds is byte for byte what `GOAMD64=vN go build` makes.

use crate::support::*;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;

/// Runs the bundle and the plain build for this CPU with `args`; their
/// outputs must be the same, and each extracted level must equal the plain
/// build of that level.
fn check(built: &Built, args: &[&str], expected_output: &str) {
    // The same argv[0] for both: some programs print it.
    let from_plain = run(exec(built.plain(host_level())).arg0("program").args(args)).ok();
    assert!(from_plain.contains(expected_output), "{from_plain}");
    for launch in Launch::ALL {
        let from_bundle = run(exec(&built.bundle)
            .arg0("program")
            .args(args)
            .env("MGODEBUG", launch.debug("log")));
        assert_eq!(from_bundle.ok(), from_plain, "{launch:?} {:?}", built.flags);
        assert_eq!(
            launcher_lines(&from_bundle.stderr),
            [starting(host_level(), launch)],
            "{:?}",
            built.flags
        );
    }
    for level in 1..=4u8 {
        let extracted = run(exec(&built.bundle)
            .env("MGODEBUG", "extract")
            .env("GOAMD64", format!("v{level}")));
        assert!(extracted.status.success(), "{extracted:?}");
        assert!(extracted.stderr.is_empty(), "{}", extracted.stderr);
        let plain = fs::read(built.plain(level)).unwrap();
        assert!(
            extracted.stdout == plain,
            "extracted v{level} differs from GOAMD64=v{level} go build {:?}",
            built.flags
        );
    }
}

#[test]
fn hello_runs_and_holds_each_plain_build() {
    check(hello(), &["mgo"], "hello, mgo");
}

#[test]
fn cpuloop_runs_and_holds_each_plain_build() {
    let built = built("cpuloop", &example("cpuloop"), &["-trimpath"], ".");
    check(built, &["300000"], "rounds=300000");
}

#[test]
fn cgo_runs_and_holds_each_plain_build() {
    require("gcc");
    let built = built("cgo", &example("cgo"), &[], ".");
    check(built, &["50"], "fib(50) = 12586269025 (from C)");
}

/// The v1 cgo variant is the one old CPUs get: it must not carry a glibc ISA
/// marker above the baseline (glibc >= 2.33 refuses to load such objects),
/// and it must run on a v1-only CPU.
#[test]
fn cgo_lowest_variant_runs_on_a_baseline_cpu() {
    require("gcc");
    let qemu = require("qemu-x86_64");
    let built = built("cgo", &example("cgo"), &[], ".");
    let notes = run(std::process::Command::new(require("readelf"))
        .arg("-nW")
        .arg(built.plain(1)))
    .ok();
    for line in notes.lines().filter(|l| l.contains("x86 ISA needed")) {
        assert!(
            line.contains("x86-64-baseline") && !line.contains("v2"),
            "{line}"
        );
    }
    let out = run(std::process::Command::new(qemu)
        .args(["-cpu", "qemu64"])
        .arg(built.plain(1))
        .arg("10"))
    .ok();
    assert_eq!(out, "fib(10) = 55 (from C)\n");
}

#[test]
fn gofmt_from_goroot_runs_and_holds_each_plain_build() {
    let dir = scratch();
    // A real workload for gofmt: a badly formatted file it must list.
    let source: PathBuf = dir.path().join("ugly.go");
    fs::write(&source, "package ugly\nfunc  f( ) {return}\n").unwrap();
    let built = gofmt();
    let listed = run(exec(&built.bundle).arg("-l").arg(&source)).ok();
    assert_eq!(listed.trim(), source.to_str().unwrap());
    let formatted = run(exec(&built.bundle).arg(&source)).ok();
    assert_eq!(formatted, "package ugly\n\nfunc f() { return }\n");
    check(built, &["-l", source.to_str().unwrap()], "ugly.go");
}

#[test]
fn a_pie_runs_and_holds_each_plain_build() {
    let built = hello_pie();
    check(built, &["pie"], "hello, pie");
}

#[test]
fn a_race_build_runs_and_holds_each_plain_build() {
    require("gcc");
    let built = hello_race();
    check(built, &["race"], "hello, race");
}

#[test]
fn vet_from_goroot_runs_and_holds_each_plain_build() {
    let built = vet();
    assert!(
        fs::metadata(built.plain(1)).unwrap().len() > 8 << 20,
        "cmd/vet is expected to be large"
    );
    check(built, &["-V=full"], "program version go");
}
