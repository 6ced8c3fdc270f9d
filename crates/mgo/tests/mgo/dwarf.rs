//! Go's compressed DWARF stored inflated and re-created exactly
//! (docs/FORMAT.md, "Inflated sections"): every level of a large real
//! program extracts byte for byte, both ways it starts, in the modes that
//! store DWARF inflated and in lz4, which does not; builds without
//! DWARF, and DWARF that Go's encoder did not write, are stored as they
//! were; damage in an inflated section stops only what reads it.

use crate::support::*;
use mgo_format::Sections;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::Path;

/// Each entry's (level, number of inflated sections), and the launcher's
/// identity.
fn inflated_sections(bundle: &Path) -> (Vec<(u8, usize)>, String) {
    let read = read_bundle(bundle);
    let counts = read
        .table
        .entries()
        .iter()
        .map(|e| {
            (
                e.level,
                Sections::parse(read.segment_bytes(), e).unwrap().len(),
            )
        })
        .collect();
    let identity = run(mgo(&repo()).args(["inspect", "-json"]).arg(bundle)).ok();
    let value: serde_json::Value = serde_json::from_str(&identity).unwrap();
    (
        counts,
        value["launcher"]["identity"].as_str().unwrap().to_owned(),
    )
}

/// Every level of `built`'s program extracted from its bundle in `mode`
/// (built once per test run), by the launcher and by `mgo extract`, is the
/// plain build; the bundle runs both ways. Returns the bundle's path.
fn check_exact(built: &Built, mode: &str, args: &[&str], out: &Path) -> &'static Path {
    let (key, bundle) = (&built.key, built.compressed(mode));
    // The same argv[0] for both: some programs print it.
    let expected = run(exec(built.plain(host_level())).arg0("program").args(args)).ok();
    for launch in Launch::ALL {
        let started = run(exec_as(launch, bundle).arg0("program").args(args));
        assert_eq!(started.ok(), expected, "{key} {mode} {launch:?}");
    }
    // inspect reports each build's own size, not that of what is stored.
    let inspected = run(mgo(&repo()).args(["inspect", "-json"]).arg(bundle)).ok();
    let inspected: serde_json::Value = serde_json::from_str(&inspected).unwrap();
    for level in 1..=4u8 {
        let plain = fs::read(built.plain(level)).unwrap();
        let size = &inspected["levels"][usize::from(level) - 1]["size"];
        assert_eq!(
            size.as_u64(),
            Some(plain.len() as u64),
            "{key} {mode} v{level}"
        );
        let extracted = run(exec(bundle)
            .env("MGODEBUG", "extract")
            .env("GOAMD64", format!("v{level}")));
        assert!(
            extracted.status.success(),
            "{key} {mode} v{level}: {extracted:?}"
        );
        assert!(
            extracted.stdout == plain,
            "{key} {mode}: MGODEBUG=extract of v{level} differs from GOAMD64=v{level} go build"
        );
        let file = out.join(format!("{key}-{mode}-v{level}"));
        run(mgo(&built.dir)
            .args(["extract", "-l", &format!("v{level}"), "-o"])
            .arg(&file)
            .arg(bundle))
        .ok();
        assert!(
            fs::read(&file).unwrap() == plain,
            "{key} {mode}: mgo extract of v{level} differs"
        );
        fs::remove_file(&file).unwrap();
    }
    bundle
}

/// compressed.rs's representative modes, split in two tests that share
/// the machine's cores: a few seconds per mode, and the slow levels (the
/// most of a minute for the four builds of cmd/vet at z22 and Z22).
const QUICK_MODES: [&str; 5] = ["g1", "g9", "z1", "Z1", "lz4"];
const SLOW_MODES: [&str; 4] = ["Z12", "Z13", "z22", "Z22"];

/// Every level of GOROOT's cmd/vet in each of `modes`: over 8 MB a build,
/// cut into many blocks, its compressed DWARF sections inflated to about
/// 6 MB, so that sections cross from one block into the next.
fn check_large_program(modes: &[&str]) {
    let built = vet();
    let out = scratch();
    for &mode in modes {
        let bundle = check_exact(built, mode, &["-V=full"], out.path());
        let (counts, identity) = inflated_sections(bundle);
        if mode == "lz4" {
            // LZ4 compresses inflated DWARF worse than Go's zlib did: its
            // bundles store it as it is, with a launcher that has no
            // encoder (docs/DESIGN.md, "Inflated DWARF").
            assert!(counts.iter().all(|&(_, n)| n == 0), "{mode}: {counts:?}");
            assert!(identity.ends_with(" lz4"), "{mode}: {identity}");
        } else {
            assert!(counts.iter().all(|&(_, n)| n >= 5), "{mode}: {counts:?}");
            let read = read_bundle(bundle);
            for entry in read.table.entries() {
                let sections = Sections::parse(read.segment_bytes(), entry).unwrap();
                let blocks = read.blocks(entry);
                let crossing = (0..sections.len()).map(|i| sections.get(i)).any(|s| {
                    let (start, end) = (s.image_offset, s.image_offset + s.inflated_size);
                    let first = blocks.find(start).unwrap();
                    blocks.find(end - 1).unwrap() != first
                });
                assert!(
                    crossing,
                    "{mode} v{}: no inflated section crosses a block",
                    entry.level
                );
            }
            assert!(identity.ends_with("+dwarf"), "{mode}: {identity}");
        }
        assert!(
            segment_offset(bundle) <= 128 * 1024,
            "{mode}: launcher over budget"
        );
    }
}

#[test]
fn every_level_of_cmd_vet_is_re_created_exactly_in_the_quick_modes() {
    let mut split: Vec<&str> = QUICK_MODES.iter().chain(&SLOW_MODES).copied().collect();
    let mut representative = crate::compressed::MODES.to_vec();
    split.sort_unstable();
    representative.sort_unstable();
    assert_eq!(
        split, representative,
        "cmd/vet runs every representative mode"
    );
    check_large_program(&QUICK_MODES);
}

#[test]
fn every_level_of_cmd_vet_is_re_created_exactly_in_the_slow_modes() {
    check_large_program(&SLOW_MODES);
}

#[test]
fn programs_without_go_compressed_dwarf_are_stored_as_they_were() {
    let out = scratch();
    // No DWARF at all.
    let stripped = built("hello-w", &example("hello"), &["-ldflags=-w"], ".");
    let bundle = check_exact(stripped, "Z3", &[], out.path());
    let (counts, identity) = inflated_sections(bundle);
    assert!(counts.iter().all(|&(_, n)| n == 0), "{counts:?}");
    assert!(
        identity.ends_with(" zstd"),
        "{identity}: a launcher without the encoder"
    );
    // Linked by the system linker, whose zlib Go's encoder does not
    // reproduce: the fallback keeps every section as it was.
    require("gcc");
    let cgo = built("cgo", &example("cgo"), &[], ".");
    let bundle = check_exact(cgo, "Z3", &["5"], out.path());
    let (counts, identity) = inflated_sections(bundle);
    assert!(counts.iter().all(|&(_, n)| n == 0), "{counts:?}");
    assert!(identity.ends_with(" zstd"), "{identity}");
    // And the same program with DWARF does get them inflated, by a launcher
    // that can deflate them.
    let bundle = check_exact(hello(), "Z3", &[], out.path());
    let (counts, identity) = inflated_sections(bundle);
    assert!(counts.iter().all(|&(_, n)| n >= 5), "{counts:?}");
    assert!(identity.ends_with(" zstd+dwarf"), "{identity}");
}

#[test]
fn damage_in_an_inflated_section_stops_extraction_but_not_a_mapped_start() {
    let out = scratch();
    let built = hello();
    for mode in ["Z3", "g1"] {
        let bundle = check_exact(built, mode, &[], out.path());
        let read = read_bundle(bundle);
        let entry = *read.table.choose(host_level());
        let blocks = read.blocks(&entry);
        let sections = Sections::parse(read.segment_bytes(), &entry).unwrap();
        let first = sections.get(0);
        // A block that holds only inflated DWARF.
        let inside = (0..blocks.len())
            .map(|i| blocks.get(i))
            .find(|b| {
                b.offset >= first.image_offset
                    && b.offset + b.size as u64 <= first.image_offset + first.inflated_size
            })
            .or_else(|| {
                (0..blocks.len())
                    .map(|i| blocks.get(i))
                    .find(|b| b.offset >= first.image_offset)
            })
            .unwrap();
        let damaged = damaged_copy(
            &read.bytes,
            read.middle_of(&inside),
            0x55,
            &out.path().join(format!("damaged-{mode}")),
        );
        let expected = run(&mut exec(built.plain(host_level()))).ok();
        assert_eq!(
            run(&mut exec(&damaged)).ok(),
            expected,
            "{mode}: the mapped start reads no DWARF"
        );
        assert_launcher_failure(
            &run(exec(&damaged).env("MGODEBUG", "extract")),
            125,
            "is damaged",
        );
        assert_launcher_failure(
            &run(&mut exec_as(Launch::Memfd, &damaged)),
            125,
            "is damaged",
        );
        let extracted = run(mgo(&repo())
            .args(["extract", "-o"])
            .arg(out.path().join("x"))
            .arg(&damaged));
        assert_eq!(extracted.status.code(), Some(1), "{extracted:?}");
        assert!(
            extracted.stderr.contains("is damaged"),
            "{}",
            extracted.stderr
        );
        assert!(!out.path().join("x").exists(), "nothing half-written");
    }
}
