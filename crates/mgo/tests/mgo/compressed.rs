//! MGO_COMPRESS: a representative set of modes on every example and on
//! GOROOT's gofmt. Each bundle runs like the plain build, each level it holds
//! extracts to exactly `GOAMD64=vN go build`'s output, damage is refused with
//! the launcher's error, and building again on one CPU gives the same bytes.
//!
//! Every one of the 54 mode strings is checked by the unit tests in
//! crates/mgo/src/encode/ (parsed, encoded, decoded back); the modes here
//! are the ones that reach a different path through mgo's encoder, the
//! compressors' strategies or the launcher's decoders.

use crate::support::*;
use mgo_format::Encoding;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

/// The modes that cover every code path of compressing and decoding. A mode
/// string that differs from these only in its level takes the same paths
/// with another number handed to the compressor.
pub const MODES: [&str; 9] = [
    // DEFLATE (libdeflate to write, miniz_oxide to read): its lowest level
    // (libdeflate's fastest strategy) and its highest (the lazy2 matcher).
    "g1", "g9", //
    // zstd, each variant alone: the fast strategy, and the ultra level with
    // the largest window and the btultra2 optimal parser.
    "z1", "z22", //
    // zstd against v4: the reference handed to each chunk as a prefix with
    // long-distance matching (levels below mgo's PREPARED_DICTIONARY_LEVEL,
    // 13), at the lowest level and the last one before the threshold; then a
    // prepared dictionary, at the threshold and at the highest level.
    "Z1", "Z12", "Z13", "Z22", //
    // LZ4 HC, the only LZ4 mode.
    "lz4",
];

/// The modes also rebuilt on one CPU: where the output could depend on how
/// chunks are shared among threads. Each compressor thread reuses its
/// context (a libdeflate compressor; a zstd context with a prefix per chunk,
/// or with a prepared dictionary shared by every thread).
const ONE_CPU_MODES: [&str; 3] = ["g9", "Z12", "Z13"];

/// Builds `package` in every mode and checks each bundle.
fn check_every_mode(key: &str, dir: &Path, flags: &[&str], package: &str, args: &[&str]) {
    let built = built(key, dir, flags, package);
    let taskset = require("taskset");
    let expected = run(exec(built.plain(host_level())).arg0("program").args(args)).ok();
    let out = scratch();
    for mode in MODES {
        let bundle = out.path().join(format!("{key}-{mode}"));
        run(mgo(dir)
            .env("MGO_COMPRESS", mode)
            .args(flags)
            .arg("-o")
            .arg(&bundle)
            .arg(package))
        .ok();
        let read = read_bundle(&bundle);
        let bytes = &read.bytes;

        // Runs like the plain build, both ways, and MGODEBUG=log says what
        // was started, how it was stored and how it started. In the Z
        // modes, v3 is also started, decoded against v4.
        let name = match mode.as_bytes()[0] {
            b'g' => "deflate",
            b'z' => "zstd",
            b'Z' => "zstd",
            _ => "lz4",
        };
        let mut levels = vec![host_level()];
        if mode.starts_with('Z') && host_level() >= 3 {
            levels.push(3);
        }
        for launch in Launch::ALL {
            for &level in &levels {
                let expected = run(exec(built.plain(level)).arg0("program").args(args)).ok();
                let logged = run(exec(&bundle)
                    .arg0("program")
                    .args(args)
                    .env("GOAMD64", format!("v{level}"))
                    .env("MGODEBUG", launch.debug("log")));
                assert_eq!(logged.stdout_text(), expected, "{mode} {launch:?} v{level}");
                let reference = if mode.starts_with('Z') && level != 4 {
                    ", against GOAMD64=v4"
                } else {
                    ""
                };
                assert_eq!(
                    launcher_lines(&logged.stderr),
                    [format!(
                        "[mgo] launcher: starting variant GOAMD64=v{level} ({name}{reference}, {})",
                        launch.logged()
                    )],
                    "{mode}"
                );
            }
        }
        let from_bundle = run(exec(&bundle).arg0("program").args(args)).ok();
        assert_eq!(from_bundle, expected, "{mode}");

        // Holds exactly each plain build.
        for level in 1..=4u8 {
            let extracted = run(exec(&bundle)
                .env("MGODEBUG", "extract")
                .env("GOAMD64", format!("v{level}")));
            assert!(extracted.status.success(), "{mode} v{level}: {extracted:?}");
            assert!(
                extracted.stdout == fs::read(built.plain(level)).unwrap(),
                "{mode}: extracted v{level} differs from GOAMD64=v{level} go build"
            );
        }

        // Stored as asked, and smaller than uncompressed.
        let (segment_at, table) = (read.segment.start, read.table);
        let encoding = match mode.as_bytes()[0] {
            b'g' => Encoding::Deflate,
            b'z' | b'Z' => Encoding::Zstd,
            _ => Encoding::Lz4,
        };
        assert!(
            table.entries().iter().all(|e| e.encoding == encoding),
            "{mode}"
        );
        let references: Vec<u8> = table.entries().iter().map(|e| e.reference).collect();
        if mode.starts_with('Z') {
            assert_eq!(references, [4, 4, 4, 0], "{mode}: all against v4");
        } else {
            assert_eq!(references, [0; 4], "{mode}");
        }
        let raw_size = fs::metadata(&built.bundle).unwrap().len() as usize;
        assert!(
            bytes.len() < raw_size * 3 / 4,
            "{mode}: {} bytes",
            bytes.len()
        );

        // The same bytes from a build whose compression (and everything
        // else) runs on one CPU.
        if ONE_CPU_MODES.contains(&mode) {
            let again = out.path().join(format!("{key}-{mode}-one-cpu"));
            // mgo's own environment (its MGOCACHE under the target
            // directory, never the user's), under taskset.
            let template = mgo(dir);
            let mut one_cpu = Command::new(&taskset);
            one_cpu
                .current_dir(dir)
                .args(["-c", "0"])
                .arg(template.get_program());
            for (name, value) in template.get_envs() {
                match value {
                    Some(value) => one_cpu.env(name, value),
                    None => one_cpu.env_remove(name),
                };
            }
            one_cpu
                .env("MGO_COMPRESS", mode)
                .args(flags)
                .arg("-o")
                .arg(&again)
                .arg(package);
            run(&mut one_cpu).ok();
            assert!(
                fs::read(&again).unwrap() == *bytes,
                "{mode}: not reproducible on one CPU"
            );
        }

        // Damage in what the program's pages hold (block 1: the start of
        // the code) is refused before anything runs, whichever way it
        // starts, and by extraction; in the Z modes, so is damage in the
        // reference, which a v3 CPU decodes first.
        let chosen = *table.choose(host_level());
        let mut targets = vec![(chosen, host_level())];
        if let Some(reference) = table.reference_of(table.choose(3)) {
            targets.push((*reference, 3));
        }
        for (i, (entry, level)) in targets.into_iter().enumerate() {
            let at = read.middle_of(&read.blocks(&entry).get(1));
            let path = damaged_copy(
                bytes,
                at,
                0x55,
                &out.path().join(format!("{key}-{mode}-flip{i}")),
            );
            let level = format!("v{level}");
            for launch in Launch::ALL {
                let started = run(exec_as(launch, &path).env("GOAMD64", &level));
                assert_launcher_failure(&started, 125, "is damaged");
            }
            let extract = run(exec(&path)
                .env("MGODEBUG", "extract")
                .env("GOAMD64", &level));
            assert_launcher_failure(&extract, 125, "is damaged");
        }
        // Damage in what no page of the program holds (the last block:
        // symbols, section headers): the mapped start does not decode it;
        // a memfd start and extraction decode the whole file and refuse.
        let blocks = read.blocks(&chosen);
        let at = read.middle_of(&blocks.get(blocks.len() - 1));
        let path = damaged_copy(
            bytes,
            at,
            0x55,
            &out.path().join(format!("{key}-{mode}-tail")),
        );
        assert_eq!(
            run(exec(&path).arg0("program").args(args)).ok(),
            expected,
            "{mode}"
        );
        assert_launcher_failure(&run(&mut exec_as(Launch::Memfd, &path)), 125, "is damaged");
        let extract = run(exec(&path).env("MGODEBUG", "extract"));
        assert_launcher_failure(&extract, 125, "is damaged");
        // Within budget: the launcher is the part before the segment.
        assert!(
            segment_at <= 128 * 1024,
            "{mode}: launcher of {segment_at} bytes"
        );
        let cut = segment_at + chosen.offset as usize + chosen.stored_size as usize / 3;
        let path = write_exe(&out.path().join(format!("{key}-{mode}-cut")), &bytes[..cut]);
        assert_launcher_failure(&run(&mut exec(&path)), 125, "truncated");

        // Only what passed is kept: a full run leaves gigabytes otherwise.
        for entry in fs::read_dir(out.path()).unwrap() {
            fs::remove_file(entry.unwrap().path()).unwrap();
        }
    }
}

#[test]
fn every_mode_on_hello() {
    check_every_mode("hello", &example("hello"), &[], ".", &["mgo"]);
}

#[test]
fn every_mode_on_cpuloop() {
    check_every_mode(
        "cpuloop",
        &example("cpuloop"),
        &["-trimpath"],
        ".",
        &["300000"],
    );
}

#[test]
fn every_mode_on_cgo() {
    require("gcc");
    check_every_mode("cgo", &example("cgo"), &[], ".", &["50"]);
}

/// With its DWARF, which every compressed mode stores inflated and
/// re-creates (hello, cpuloop keep theirs too; cgo's comes from the system
/// linker and is stored as it is).
#[test]
fn every_mode_on_gofmt_from_goroot() {
    let dir = scratch();
    let source = dir.path().join("ugly.go");
    fs::write(&source, "package ugly\nfunc  f( ) {return}\n").unwrap();
    check_every_mode(
        "gofmt-dwarf",
        dir.path(),
        &["-trimpath"],
        "cmd/gofmt",
        &["-l", source.to_str().unwrap()],
    );
}

#[test]
fn invalid_modes_are_refused_before_any_build() {
    let dir = scratch();
    for value in [
        "x", "g", "g0", "g10", "z0", "z23", "Z0", "Z23", "z", "Z", "z03", "z+3", " z3", "lz4 ",
        "LZ4", "gzip", "zstd", "z-1",
    ] {
        let out =
            run(mgo(dir.path())
                .env("MGO_COMPRESS", value)
                .args(["-o", "out", "./does-not-exist"]));
        assert_eq!(out.status.code(), Some(1), "{value:?}: {out:?}");
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(
            lines,
            [format!(
                "mgo: MGO_COMPRESS={value} is not a compression mode: use g1..g9 (gzip/deflate), z1..z22 (zstd), Z1..Z22 (zstd, variants against each other), lz4 (fastest start), or empty for none"
            )],
            "{value:?}"
        );
        assert!(files_in(dir.path()).is_empty());
    }
    // Empty means uncompressed, as unset does.
    let bundle = dir.path().join("hello");
    run(mgo(&example("hello"))
        .env("MGO_COMPRESS", "")
        .arg("-o")
        .arg(&bundle))
    .ok();
    assert!(fs::read(&bundle).unwrap() == fs::read(&hello().bundle).unwrap());
}

#[test]
fn a_bundle_of_one_level_compresses_too() {
    // GOAMD64=v4 at build time: v4 alone, with no reference to decode.
    let dir = scratch();
    for mode in ["z3", "Z3", "g1", "lz4"] {
        let bundle = dir.path().join(format!("hello-{mode}"));
        run(mgo(&example("hello"))
            .env("MGO_COMPRESS", mode)
            .env("GOAMD64", "v4")
            .arg("-o")
            .arg(&bundle))
        .ok();
        let table = read_bundle(&bundle).table;
        assert_eq!(table.entries().len(), 1, "{mode}");
        assert_eq!(table.entries()[0].reference, 0, "{mode}");
        let out = run(exec(&bundle)
            .env("GOAMD64", "v4")
            .env("MGODEBUG", "extract"));
        assert!(out.stdout == fs::read(hello().plain(4)).unwrap(), "{mode}");
    }
}
