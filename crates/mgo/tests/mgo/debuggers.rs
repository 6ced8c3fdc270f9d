//! Profilers and debuggers, run as their users run them, see the program
//! inside a bundle as they see its plain build: the function the program
//! spends its time in (testdata/spin, `main.spin`), by name.

use crate::support::*;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// A static Go program that spins in `main.spin`.
fn spin() -> &'static Built {
    built("spin", &testdata("spin"), &[], "./static")
}

/// Its twin linked by the C toolchain (an interpreter, a PLT).
fn spin_cgo() -> &'static Built {
    built("spin-cgo", &testdata("spin"), &[], "./cgo")
}

/// Enough rounds of `main.spin` for a few hundred samples.
const ROUNDS: &str = "300000000";

/// The functions of the call chains `perf record -g` sampled while
/// `program` ran, as `perf script` names them.
fn perf_frames(program: &Path) -> BTreeSet<String> {
    let perf = require("perf");
    let dir = scratch();
    let data = dir.path().join("perf.data");
    run(Command::new(&perf)
        .args(["record", "-q", "-g", "-o"])
        .arg(&data)
        .arg("--")
        .arg(program)
        .arg(ROUNDS)
        .env_remove("MGODEBUG")
        .env_remove("GOAMD64"))
    .ok();
    let script = run(Command::new(&perf)
        .args(["script", "-F", "ip,sym", "-i"])
        .arg(&data))
    .ok();
    script
        .lines()
        .filter_map(|line| line.split_whitespace().nth(1))
        .map(str::to_owned)
        .collect()
}

/// `perf record -g` then `perf script`, on an uncompressed bundle started
/// the default way (mapped from the bundle), names the program's functions
/// and their callers as it does for the plain build: the bundle's symbol
/// table locates each level's functions where that level lies in the file.
#[test]
fn perf_names_the_functions_of_an_uncompressed_bundle() {
    for program in [spin(), spin_cgo()] {
        // main.spin is a leaf without a frame pointer of its own, so the
        // frame-pointer chain of its samples skips main.main.
        let wanted = ["main.spin", "runtime.main"];
        let plain = perf_frames(program.plain(host_level()));
        for name in wanted {
            assert!(plain.contains(name), "{}: plain build: {plain:?}", program.key);
        }
        let bundle = perf_frames(&program.bundle);
        for name in wanted {
            assert!(bundle.contains(name), "{}: bundle: {bundle:?}", program.key);
        }
    }
}
