//! Resource limits a plain build lives with: where it runs, a bundle runs;
//! where it fails cleanly, a bundle fails cleanly too (issue 14, item 7).

use crate::support::*;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;

/// Runs `program` under `limits` (arguments of the shell's `ulimit`), with
/// `MGODEBUG` set to `debug`, on one CPU (so that the launcher's own thread
/// does all of the work, on the initial stack).
fn limited(limits: &str, program: &Path, debug: &str) -> Run {
    let taskset = require("taskset");
    let script = format!(
        "ulimit {limits} && exec {} -c 0 {}",
        taskset.display(),
        program.display()
    );
    run(Command::new("sh")
        .args(["-c", &script])
        .env_remove("GOAMD64")
        .env("MGODEBUG", debug))
}

/// A 64 KiB stack limit (`ulimit -s 64`), which a plain Go build runs under:
/// the inflater's state once lived on the launcher's stack and took it past
/// the limit (SIGSEGV in most starts, depending on where the kernel put the
/// stack's top).
#[test]
fn a_deflate_bundle_runs_with_a_64_kib_stack() {
    let bundle = hello().compressed("g9");
    let expected = format!("hello, world (GOAMD64=v{})\n", host_level());
    let plain = limited("-s 64", hello().plain(host_level()), "");
    assert_eq!(plain.ok(), expected, "the plain build runs so");
    // The stack's top moves from start to start: a few starts of each way.
    for debug in ["", "memfd"] {
        for _ in 0..8 {
            assert_eq!(limited("-s 64", bundle, debug).ok(), expected, "{debug:?}");
        }
    }
    let extracted = limited("-s 64", bundle, "extract");
    assert!(
        extracted.stdout == std::fs::read(hello().plain(host_level())).unwrap(),
        "{:?}",
        extracted.stderr
    );
}

/// An 8 MiB address-space limit (`ulimit -v 8192`): a plain Go build fails
/// with its own message. The zstd launcher's 8 MiB heap was in .bss, which
/// the kernel maps during exec, so the exec itself failed past its point of
/// no return and the process died by SIGSEGV; now the launcher maps its heap
/// itself and reports the failure.
#[test]
fn a_zstd_bundle_fails_cleanly_under_an_8_mib_address_space_limit() {
    let bundle = hello().compressed("Z3");
    let plain = limited("-v 8192", hello().plain(host_level()), "");
    assert_eq!(plain.status.signal(), None, "{plain:?}");
    assert!(!plain.status.success(), "{plain:?}");
    let out = limited("-v 8192", bundle, "");
    assert_launcher_failure(&out, 126, "cannot allocate memory");
    // With room for the decoder but not for Go's heap, the program fails
    // as the plain build does.
    let roomier = limited("-v 16384", bundle, "");
    assert_eq!(roomier.status.signal(), None, "{roomier:?}");
    assert_eq!(roomier.status.code(), plain.status.code(), "{roomier:?}");
}

/// `MGODEBUG=extract` of a compressed build whose file holds 64 MiB of
/// zeros (a large initialized array): it used to decode the whole variant
/// into memory before writing it, so memory grew with what the entry
/// claims; now it holds a block per runner (issue 14, item 4).
#[test]
fn extract_holds_blocks_not_the_whole_variant() {
    let time = require("time");
    let dir = scratch();
    let src = dir.path().join("src");
    go_module(
        &src,
        "example.com/big",
        &[(
            "main.go",
            "package main\n\nimport \"fmt\"\n\nvar big = [64 << 20]byte{1}\n\n\
             func main() { fmt.Println(len(big), big[0]) }\n",
        )],
    );
    let bundle = dir.path().join("big");
    // Without DWARF: the executable is extracted block by block, not
    // re-created from inflated sections.
    run(mgo(&src)
        .env("MGO_COMPRESS", "z3")
        .args(["-ldflags=-w", "-o"])
        .arg(&bundle))
    .ok();
    let plain = dir.path().join("plain");
    run(go(&src)
        .args(["build", "-ldflags=-w", "-o"])
        .arg(&plain)
        .env("GOAMD64", format!("v{}", host_level())))
    .ok();
    let extracted = dir.path().join("extracted");
    let out = run(Command::new(time)
        .args(["-f", "peak %M KiB"])
        .arg(&bundle)
        .env_remove("GOAMD64")
        .env("MGODEBUG", "extract")
        .stdout(std::fs::File::create(&extracted).unwrap()));
    assert!(out.status.success(), "{out:?}");
    assert!(
        std::fs::read(&extracted).unwrap() == std::fs::read(&plain).unwrap(),
        "the extracted build differs from go build's"
    );
    let peak_kib: u64 = out
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("peak ")?.strip_suffix(" KiB")?.parse().ok())
        .unwrap();
    assert!(
        peak_kib < 32 << 10,
        "peak memory {peak_kib} KiB for a 64 MiB variant"
    );
}
