//! The bundle as a file: an ELF that survives strip, shows the program's
//! build info, and refuses to run when damaged.

use crate::support::*;
use std::fs;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// `go version -m` output without its first line's file name.
fn version_m(path: &std::path::Path) -> String {
    let out = run(go(&repo()).args(["version", "-m"]).arg(path)).ok();
    out.split_once(": ")
        .map(|(_, rest)| rest.to_owned())
        .unwrap_or(out)
}

#[test]
fn go_version_m_shows_the_programs_own_build_info() {
    let hello = hello();
    let from_bundle = version_m(&hello.bundle);
    assert_eq!(from_bundle, version_m(hello.plain(1)));
    assert!(
        from_bundle.contains("path\texample.com/hello"),
        "{from_bundle}"
    );
}

#[test]
fn stripped_bundles_still_run_and_show_build_info() {
    let hello = hello();
    let dir = scratch();
    let tools: [(&str, &[&str]); 4] = [
        ("strip", &[]),
        ("strip", &["--strip-unneeded"]),
        ("objcopy", &["--strip-all"]),
        ("objcopy", &["--strip-debug"]),
    ];
    for (tool, flags) in tools {
        let copy = dir.path().join(format!("{tool}{}", flags.join("")));
        copy_exe(&hello.bundle, &copy);
        run(Command::new(require(tool)).args(flags).arg(&copy)).ok();
        let out = run(exec(&copy).arg("stripped")).ok();
        assert_eq!(
            out,
            format!("hello, stripped (GOAMD64=v{})\n", host_level()),
            "{tool} {flags:?}"
        );
        assert_eq!(
            version_m(&copy),
            version_m(hello.plain(1)),
            "{tool} {flags:?}"
        );
    }
}

#[test]
fn readelf_accepts_the_bundle() {
    let hello = hello();
    let out = run(Command::new(require("readelf"))
        .arg("-aW")
        .arg(&hello.bundle));
    let text = out.ok();
    assert!(
        !out.stderr.contains("Warning") && !out.stderr.contains("Error"),
        "{}",
        out.stderr
    );
    assert!(
        text.contains(".go.buildinfo") && text.contains(".mgo"),
        "{text}"
    );
}

#[test]
fn truncated_bundles_fail_with_the_launchers_error() {
    let hello = hello();
    let Bundle { bytes, segment, .. } = read_bundle(&hello.bundle);
    let dir = scratch();
    let (segment, end) = (segment.start, segment.end);
    // Right after the launcher, inside the table, inside the first variant,
    // the middle, inside the build info, one byte short of the segment. (Cut
    // inside the launcher's own bytes, the kernel cannot even start it: any
    // truncated executable's fate.)
    for keep in [
        segment,
        segment + 100,
        segment + 4096 * 3,
        end / 2,
        end - 100,
        end - 1,
    ] {
        let cut = write_exe(&dir.path().join(format!("cut{keep}")), &bytes[..keep]);
        assert_launcher_failure(&run(&mut exec(&cut)), 125, "truncated");
    }
    // Only the section headers lost: every byte that runs is there and verified.
    let cut = write_exe(&dir.path().join("headers-lost"), &bytes[..end]);
    assert_eq!(
        run(&mut exec(&cut)).ok(),
        format!("hello, world (GOAMD64=v{})\n", host_level())
    );
}

/// Offset and size of level `level`'s bytes in the bundle, found by content.
fn variant_range(bundle: &[u8], plain: &[u8]) -> std::ops::Range<usize> {
    let start = (0..bundle.len() - plain.len())
        .step_by(4096)
        .find(|&at| bundle[at..at + plain.len()] == *plain)
        .expect("variant not stored at a 4 KiB-aligned offset");
    start..start + plain.len()
}

/// File offset where the program's loadable bytes end: the end of the
/// last PT_LOAD segment's file bytes (readelf -l).
fn loadable_end(executable: &std::path::Path) -> usize {
    let out = run(Command::new(require("readelf")).arg("-lW").arg(executable)).ok();
    out.lines()
        .filter(|l| l.trim_start().starts_with("LOAD"))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let hex = |s: &str| usize::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
            hex(f[1]) + hex(f[4])
        })
        .max()
        .unwrap()
}

#[test]
fn a_flipped_bit_in_what_runs_or_in_the_table_is_refused() {
    let hello = hello();
    let bytes = fs::read(&hello.bundle).unwrap();
    let dir = scratch();
    let damaged = |name: &str, at: usize| damaged_copy(&bytes, at, 0x10, &dir.path().join(name));
    let table = segment_offset(&hello.bundle);
    for launch in Launch::ALL {
        let path = damaged("table-magic", table);
        assert_launcher_failure(&run(&mut exec_as(launch, &path)), 125, "bad magic");
        // A high byte of entry 0's size.
        let at = table + mgo_format::HEADER_SIZE + mgo_format::entry::SIZE + 6;
        let path = damaged("table-entry", at);
        assert_launcher_failure(&run(&mut exec_as(launch, &path)), 125, "damaged");
    }
    for level in 1..=4u8 {
        let plain = hello.plain(level);
        let range = variant_range(&bytes, &fs::read(plain).unwrap());
        let loadable = loadable_end(plain);
        // What the program's pages hold: the ELF header, the code, the last
        // byte of its data. Refused whichever way it would start, and by
        // extraction, before anything runs.
        for (i, at) in [0, loadable / 2, loadable - 1].into_iter().enumerate() {
            let path = damaged(&format!("v{level}-{i}"), range.start + at);
            for launch in Launch::ALL {
                let out = run(exec_as(launch, &path).env("GOAMD64", format!("v{level}")));
                assert_launcher_failure(&out, 125, "checksum mismatch");
            }
            let out = run(exec(&path)
                .env("MGODEBUG", "extract")
                .env("GOAMD64", format!("v{level}")));
            assert_launcher_failure(&out, 125, "checksum mismatch");
        }
        // What no page of the program holds (symbols, section headers): the
        // mapped start neither reads nor needs it; a memfd start and
        // extraction copy the whole file, so they refuse.
        let path = damaged(&format!("v{level}-tail"), range.end - 1);
        if level <= host_level() {
            let out = run(exec(&path).env("GOAMD64", format!("v{level}")));
            assert_eq!(out.ok(), format!("hello, world (GOAMD64=v{level})\n"));
        }
        let out = run(exec_as(Launch::Memfd, &path).env("GOAMD64", format!("v{level}")));
        assert_launcher_failure(&out, 125, "checksum mismatch");
        let out = run(exec(&path)
            .env("MGODEBUG", "extract")
            .env("GOAMD64", format!("v{level}")));
        assert_launcher_failure(&out, 125, "checksum mismatch");
    }
}

#[test]
fn launcher_stays_within_its_size_budget() {
    // The launcher is the bundle's first bytes, up to the segment offset.
    let offset = segment_offset(&hello().bundle);
    // Measured 32 KiB with the mapped start (docs/DESIGN.md, "Measurements").
    assert!(offset <= 40 * 1024, "launcher part is {offset} bytes");
}

/// Large variants are verified on every CPU the launcher may use, block by
/// block; the verdict must not depend on how many there are.
#[test]
fn large_variants_are_verified_on_one_cpu_and_on_several() {
    let vet = vet();
    let level = host_level();
    let bytes = fs::read(&vet.bundle).unwrap();
    let plain = vet.plain(level);
    let range = variant_range(&bytes, &fs::read(plain).unwrap());
    let dir = scratch();
    let good = dir.path().join("good");
    copy_exe(&vet.bundle, &good);
    let at = range.start + loadable_end(plain) / 3;
    let bad = damaged_copy(&bytes, at, 0x04, &dir.path().join("bad"));
    let expected = run(exec(plain).arg0("vet").arg("-V=full")).ok();
    let taskset = require("taskset");
    for launch in Launch::ALL {
        for cpus in [None, Some("0")] {
            let command = |bundle: &std::path::Path| {
                let mut c = match cpus {
                    Some(list) => {
                        let mut c = Command::new(&taskset);
                        c.args(["-c", list]).arg(bundle);
                        c
                    }
                    None => Command::new(bundle),
                };
                c.arg("-V=full")
                    .env_remove("GOAMD64")
                    .env("MGODEBUG", launch.debug(""));
                c
            };
            // vet names itself by argv[0]; compare what follows.
            let out = run(&mut command(&good)).ok();
            assert_eq!(
                out.split_once(' ').map(|p| p.1),
                expected.split_once(' ').map(|p| p.1),
                "{launch:?} on CPUs {cpus:?}"
            );
            assert_launcher_failure(&run(&mut command(&bad)), 125, "checksum mismatch");
        }
    }
}
