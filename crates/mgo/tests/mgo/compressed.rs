//! MGO_COMPRESS: a representative set of modes on hello (a static Go
//! program with Go's compressed DWARF, which every mode stores inflated and
//! re-creates) and on the cgo example (an interpreter to map; DWARF from the
//! system linker, stored as it is). Each bundle runs like the plain build,
//! each level it holds extracts to exactly `GOAMD64=vN go build`'s output,
//! damage is refused with the launcher's error, and building again on one
//! CPU gives the same bytes. dwarf.rs takes every one of these modes through
//! a large program.
//!
//! Every one of the 54 mode strings is checked by the unit tests in
//! crates/mgo/src/encode/ (parsed, encoded, decoded back); the modes here
//! are the ones that reach a different path through mgo's encoder, the
//! compressors' strategies or the launcher's decoders.

use crate::support::*;
use mgo_format::Encoding;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
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

/// A program built in every mode: how to build it, the plain builds it is
/// compared with, and what it prints.
struct Program<'a> {
    key: &'a str,
    dir: &'a Path,
    flags: &'a [&'a str],
    package: &'a str,
    /// Its arguments, which give it some work.
    args: &'a [&'a str],
    built: &'static Built,
    /// What the plain build for this CPU prints.
    expected: String,
}

impl Program<'_> {
    /// `mgo` on the program, with `mode` as `MGO_COMPRESS`, writing `out`.
    fn mgo(&self, mgo: &mut Command, mode: &str, out: &Path) {
        mgo.env("MGO_COMPRESS", mode)
            .args(self.flags)
            .arg("-o")
            .arg(out)
            .arg(self.package);
        run(mgo).ok();
    }

    /// The program as its plain builds run it (argv[0] included).
    fn run_as_program(&self, path: &Path) -> Command {
        let mut command = exec(path);
        command.arg0("program").args(self.args);
        command
    }
}

/// The program's bundle in one mode (built once per test run, shared with
/// the other tests that read it), read back.
struct InMode<'a> {
    program: &'a Program<'a>,
    mode: &'a str,
    path: PathBuf,
    bundle: Bundle,
    /// The directory for the bundle's damaged copies and rebuilds.
    out: &'a Path,
}

impl InMode<'_> {
    /// The encoding the mode asks for.
    fn encoding(&self) -> Encoding {
        match self.mode.as_bytes()[0] {
            b'g' => Encoding::Deflate,
            b'z' | b'Z' => Encoding::Zstd,
            _ => Encoding::Lz4,
        }
    }

    /// Whether every level but v4 is decoded against v4.
    fn against_v4(&self) -> bool {
        self.mode.starts_with('Z')
    }

    /// A file in the bundle's directory named after it and `what`.
    fn sibling(&self, what: &str) -> PathBuf {
        self.out
            .join(format!("{}-{}-{what}", self.program.key, self.mode))
    }
}

/// Builds `package` in every mode and checks each bundle.
fn check_every_mode(key: &str, dir: &Path, flags: &[&str], package: &str, args: &[&str]) {
    let built = built(key, dir, flags, package);
    let mut program = Program {
        key,
        dir,
        flags,
        package,
        args,
        built,
        expected: String::new(),
    };
    program.expected = run(&mut program.run_as_program(built.plain(host_level()))).ok();
    let out = scratch();
    for mode in MODES {
        let path = built.compressed(mode).to_owned();
        let bundle = InMode {
            program: &program,
            mode,
            bundle: read_bundle(&path),
            path,
            out: out.path(),
        };
        check_runs_like_the_plain_build(&bundle);
        check_holds_each_plain_build(&bundle);
        check_stored_as_asked(&bundle);
        if ONE_CPU_MODES.contains(&mode) {
            check_reproducible_on_one_cpu(&bundle);
        }
        check_damage_in_mapped_pages_is_refused_before_the_start(&bundle);
        check_damage_beyond_the_pages_stops_only_what_reads_it(&bundle);
        check_launcher_within_budget(&bundle);
        check_a_cut_bundle_is_refused(&bundle);
        // Only what passed is kept: the damaged copies of each mode go.
        for entry in fs::read_dir(out.path()).unwrap() {
            fs::remove_file(entry.unwrap().path()).unwrap();
        }
    }
}

/// Runs like the plain build, both ways, and `MGODEBUG=log` says what was
/// started, how it was stored and how it started. In the Z modes, v3 is
/// also started, decoded against v4.
fn check_runs_like_the_plain_build(bundle: &InMode) {
    let (program, mode) = (bundle.program, bundle.mode);
    let mut levels = vec![host_level()];
    if bundle.against_v4() && host_level() >= 3 {
        levels.push(3);
    }
    let name = bundle.encoding().name();
    for launch in Launch::ALL {
        for &level in &levels {
            let expected = run(&mut program.run_as_program(program.built.plain(level))).ok();
            let logged = run(program
                .run_as_program(&bundle.path)
                .env("GOAMD64", format!("v{level}"))
                .env("MGODEBUG", launch.debug("log")));
            assert_eq!(logged.stdout_text(), expected, "{mode} {launch:?} v{level}");
            let reference = if bundle.against_v4() && level != 4 {
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
    let from_bundle = run(&mut program.run_as_program(&bundle.path)).ok();
    assert_eq!(from_bundle, program.expected, "{mode}");
}

/// Each level extracts to exactly the plain build of that level.
fn check_holds_each_plain_build(bundle: &InMode) {
    for level in 1..=4u8 {
        let extracted = run(exec(&bundle.path)
            .env("MGODEBUG", "extract")
            .env("GOAMD64", format!("v{level}")));
        let mode = bundle.mode;
        assert!(extracted.status.success(), "{mode} v{level}: {extracted:?}");
        assert!(
            extracted.stdout == fs::read(bundle.program.built.plain(level)).unwrap(),
            "{mode}: extracted v{level} differs from GOAMD64=v{level} go build"
        );
    }
}

/// Stored as asked (the encoding; in the Z modes, v1 to v3 against v4), and
/// smaller than uncompressed.
fn check_stored_as_asked(bundle: &InMode) {
    let (table, mode) = (&bundle.bundle.table, bundle.mode);
    assert!(
        table
            .entries()
            .iter()
            .all(|e| e.encoding == bundle.encoding()),
        "{mode}"
    );
    let references: Vec<u8> = table.entries().iter().map(|e| e.reference).collect();
    if bundle.against_v4() {
        assert_eq!(references, [4, 4, 4, 0], "{mode}: all against v4");
    } else {
        assert_eq!(references, [0; 4], "{mode}");
    }
    let raw_size = fs::metadata(&bundle.program.built.bundle).unwrap().len() as usize;
    let size = bundle.bundle.bytes.len();
    assert!(size < raw_size * 3 / 4, "{mode}: {size} bytes");
}

/// The same bytes from a build whose compression (and everything else) runs
/// on one CPU.
fn check_reproducible_on_one_cpu(bundle: &InMode) {
    let program = bundle.program;
    let again = bundle.sibling("one-cpu");
    // mgo's own environment (its MGOCACHE under the target directory, never
    // the user's), under taskset.
    let template = mgo(program.dir);
    let mut one_cpu = Command::new(require("taskset"));
    one_cpu
        .current_dir(program.dir)
        .args(["-c", "0"])
        .arg(template.get_program());
    for (name, value) in template.get_envs() {
        match value {
            Some(value) => one_cpu.env(name, value),
            None => one_cpu.env_remove(name),
        };
    }
    program.mgo(&mut one_cpu, bundle.mode, &again);
    assert!(
        fs::read(&again).unwrap() == bundle.bundle.bytes,
        "{}: not reproducible on one CPU",
        bundle.mode
    );
}

/// Damage in what the program's pages hold (block 1: the start of the
/// code) is refused before anything runs, whichever way it starts, and by
/// extraction; in the Z modes, so is damage in the reference, which a v3
/// CPU decodes first.
fn check_damage_in_mapped_pages_is_refused_before_the_start(bundle: &InMode) {
    let read = &bundle.bundle;
    let chosen = *read.table.choose(host_level());
    let mut targets = vec![(chosen, host_level())];
    if let Some(reference) = read.table.reference_of(read.table.choose(3)) {
        targets.push((*reference, 3));
    }
    for (i, (entry, level)) in targets.into_iter().enumerate() {
        let at = read.middle_of(&read.blocks(&entry).get(1));
        let path = damaged_copy(&read.bytes, at, 0x55, &bundle.sibling(&format!("flip{i}")));
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
}

/// Damage in what no page of the program holds (the last block: symbols,
/// section headers): the mapped start does not decode it; a memfd start and
/// extraction decode the whole file and refuse.
fn check_damage_beyond_the_pages_stops_only_what_reads_it(bundle: &InMode) {
    let read = &bundle.bundle;
    let blocks = read.blocks(read.table.choose(host_level()));
    let at = read.middle_of(&blocks.get(blocks.len() - 1));
    let path = damaged_copy(&read.bytes, at, 0x55, &bundle.sibling("tail"));
    let program = bundle.program;
    assert_eq!(
        run(&mut program.run_as_program(&path)).ok(),
        program.expected,
        "{}",
        bundle.mode
    );
    assert_launcher_failure(&run(&mut exec_as(Launch::Memfd, &path)), 125, "is damaged");
    let extract = run(exec(&path).env("MGODEBUG", "extract"));
    assert_launcher_failure(&extract, 125, "is damaged");
}

/// Within budget: the launcher is the part before the segment.
fn check_launcher_within_budget(bundle: &InMode) {
    let launcher = bundle.bundle.segment.start;
    assert!(
        launcher <= 128 * 1024,
        "{}: launcher of {launcher} bytes",
        bundle.mode
    );
}

/// A bundle cut inside the stored bytes of the level that starts is
/// refused as truncated.
fn check_a_cut_bundle_is_refused(bundle: &InMode) {
    let read = &bundle.bundle;
    let chosen = read.table.choose(host_level());
    let cut = read.stored_at(chosen) + chosen.stored_size as usize / 3;
    let path = write_exe(&bundle.sibling("cut"), &read.bytes[..cut]);
    assert_launcher_failure(&run(&mut exec(&path)), 125, "truncated");
}

#[test]
fn every_mode_on_hello() {
    check_every_mode("hello", &example("hello"), &[], ".", &["mgo"]);
}

#[test]
fn every_mode_on_cgo() {
    require("gcc");
    check_every_mode("cgo", &example("cgo"), &[], ".", &["50"]);
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

/// No zstd level from Z5 up gives a bigger bundle than Z4: zstd's greedy
/// and lazy match finders (levels 5 to 7) lost to level 4's against the
/// reference, and hello's Z5 bundle was 3.8% bigger than its Z4 one. Each
/// block is now compressed at level 4 too, and the smaller frame kept.
#[test]
fn no_zstd_level_above_z4_gives_a_bigger_bundle() {
    let hello = hello();
    let size = |mode: &str| fs::metadata(hello.compressed(mode)).unwrap().len();
    let floor = size("Z4");
    for mode in ["Z5", "Z6", "z5"] {
        let above = size(mode);
        let below = if mode == "z5" { size("z4") } else { floor };
        assert!(above <= below, "{mode}: {above} bytes, against {below}");
    }
}
