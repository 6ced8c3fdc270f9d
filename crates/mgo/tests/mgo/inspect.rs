//! `mgo inspect`, `mgo verify` and `mgo extract` on good bundles, damaged
//! ones (a variant, the table, a launcher byte) and files that are not
//! bundles.

use crate::support::*;
use std::fs;
use std::path::{Path, PathBuf};

/// A copy of `bundle` with one byte at `offset` flipped.
fn damaged(bundle: &Path, offset: usize, name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = scratch();
    let mut bytes = fs::read(bundle).unwrap();
    bytes[offset] ^= 0x20;
    let path = dir.path().join(name);
    fs::write(&path, bytes).unwrap();
    (dir, path)
}

/// Where level `index`'s stored bytes start in the file (its table entry's
/// offset field, docs/FORMAT.md).
fn stored_at(bundle: &Path, index: usize) -> usize {
    let bytes = fs::read(bundle).unwrap();
    let segment = segment_offset(bundle);
    let entry = segment + 32 + 64 * index;
    segment + u64::from_le_bytes(bytes[entry + 8..entry + 16].try_into().unwrap()) as usize
}

fn mgo_at_repo() -> std::process::Command {
    mgo(&repo())
}

#[test]
fn inspect_describes_levels_launcher_program_and_this_machine() {
    let hello = hello();
    let text = run(mgo_at_repo().arg("inspect").arg(&hello.bundle)).ok();
    for needle in [
        "mgo bundle (format 3)",
        "example.com/hello (go1.",
        "mgo-launcher 0.1.0 plain",
        "starts builds mapped (the default)",
    ] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
    for level in 1..=4u8 {
        let size = fs::metadata(hello.plain(level)).unwrap().len();
        let grouped = size
            .to_string()
            .as_bytes()
            .rchunks(3)
            .rev()
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(",");
        assert!(
            text.lines().any(|l| l.contains(&format!("v{level} "))
                && l.contains(&grouped)
                && l.contains("raw")),
            "v{level} ({grouped}) missing:\n{text}"
        );
    }
    assert!(
        text.contains(&format!("the launcher starts v{}", host_level())),
        "{text}"
    );

    let json: serde_json::Value = serde_json::from_str(
        &run(mgo_at_repo().args(["inspect", "-json"]).arg(&hello.bundle)).ok(),
    )
    .unwrap();
    assert_eq!(json["levels"].as_array().unwrap().len(), 4);
    assert_eq!(json["levels"][2]["level"], "v3");
    assert_eq!(
        json["levels"][2]["size"],
        fs::metadata(hello.plain(3)).unwrap().len()
    );
    assert_eq!(json["launcher"]["flavour"], "plain");
    assert_eq!(json["launcher"]["launch"], "mapped");
    assert_eq!(json["program"]["path"], "example.com/hello");
    assert_eq!(json["machine"]["starts"], format!("v{}", host_level()));
}

/// On a CPU below v4 (qemu's Haswell: v3), inspect names what v4 needs
/// and this CPU lacks; GOAMD64 in the environment is obeyed, as the
/// launcher obeys it.
#[test]
fn inspect_says_why_the_next_level_does_not_run() {
    let qemu = require("qemu-x86_64");
    let hello = hello();
    let out = run(std::process::Command::new(qemu)
        .args(["-cpu", "Haswell"])
        .arg(env!("CARGO_BIN_EXE_mgo"))
        .arg("inspect")
        .arg(&hello.bundle)
        .env_remove("GOAMD64"));
    let text = out.ok();
    assert!(
        text.contains(
            "this CPU runs up to v3; v4: no AVX512F, AVX512DQ, AVX512CD, AVX512BW, AVX512VL"
        ),
        "{text}"
    );
    assert!(text.contains("the launcher starts v3"), "{text}");
    let forced = run(mgo_at_repo()
        .arg("inspect")
        .arg(&hello.bundle)
        .env("GOAMD64", "v2"))
    .ok();
    assert!(
        forced.contains("GOAMD64=v2 is set: the launcher starts v2"),
        "{forced}"
    );
}

#[test]
fn verify_passes_a_good_bundle_and_names_each_kind_of_damage() {
    let hello = hello();
    let good = run(mgo_at_repo().arg("verify").arg(&hello.bundle));
    let text = good.ok();
    for level in 1..=4 {
        assert!(text.contains(&format!("v{level}: ok")), "{text}");
    }
    assert!(
        text.contains("launcher: ok (mgo-launcher 0.1.0 plain"),
        "{text}"
    );

    let segment = segment_offset(&hello.bundle);
    let bytes = fs::read(&hello.bundle).unwrap();
    // v2's stored bytes: from the table (entry 1 at 32 + 64, offset at +8).
    let entry = segment + 32 + 64;
    let v2_offset = u64::from_le_bytes(bytes[entry + 8..entry + 16].try_into().unwrap()) as usize;
    let cases = [
        (
            segment + v2_offset + 100_000,
            "variant",
            "v2: DAMAGED: block",
        ),
        (segment + 40, "table", "bundle table: DAMAGED"),
        (3000, "launcher-code", "launcher: DAMAGED: 1 byte differs"),
        (
            segment - 100,
            "launcher-padding",
            "launcher: DAMAGED: 1 byte differs",
        ),
        (
            bytes.len() - 30,
            "section-headers",
            "section headers: DAMAGED",
        ),
    ];
    for (offset, name, expected) in cases {
        let (_dir, path) = damaged(&hello.bundle, offset, name);
        let out = run(mgo_at_repo().arg("verify").arg(&path));
        assert_eq!(out.status.code(), Some(1), "{name}: {out:?}");
        assert!(
            out.stdout_text().contains(expected),
            "{name}: {}",
            out.stdout_text()
        );
        assert_eq!(
            out.stderr,
            format!("mgo: {} is damaged\n", path.display()),
            "{name}"
        );
    }
}

#[test]
fn verify_checks_compressed_bundles_too() {
    let dir = scratch();
    let bundle = dir.path().join("hello");
    run(mgo(&example("hello"))
        .args(["-o"])
        .arg(&bundle)
        .arg(".")
        .env("MGO_COMPRESS", "Z3"))
    .ok();
    let text = run(mgo_at_repo().arg("verify").arg(&bundle)).ok();
    assert!(
        text.contains("launcher: ok (mgo-launcher 0.1.0 zstd"),
        "{text}"
    );
    let inspect = run(mgo_at_repo().arg("inspect").arg(&bundle)).ok();
    assert!(inspect.contains("zstd against v4"), "{inspect}");
    // Damage in v4, the reference, shows in every level decoded against it.
    let (_d, path) = damaged(&bundle, stored_at(&bundle, 3) + 50, "z");
    let out = run(mgo_at_repo().arg("verify").arg(&path));
    assert_eq!(out.status.code(), Some(1));
    let report = out.stdout_text();
    assert!(report.contains("v4: DAMAGED"), "{report}");
    assert!(
        report.contains("v3: DAMAGED: its reference is damaged"),
        "{report}"
    );
}

#[test]
fn files_that_are_not_bundles_get_one_line() {
    let hello = hello();
    for (file, why) in [
        (example("hello").join("main.go"), "not a 64-bit ELF file"),
        (
            hello.plain(1).to_owned(),
            "an ELF file without a bundle segment",
        ),
    ] {
        for command in ["inspect", "verify"] {
            let out = run(mgo_at_repo().arg(command).arg(&file));
            assert_eq!(out.status.code(), Some(1));
            assert!(out.stdout.is_empty());
            assert_eq!(
                out.stderr,
                format!(
                    "mgo: {} is not an mgo bundle ({why}): name a file that mgo wrote\n",
                    file.display()
                )
            );
        }
    }
    let missing = run(mgo_at_repo().args(["verify", "/nonexistent/x"]));
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        missing
            .stderr
            .starts_with("mgo: cannot read /nonexistent/x: ")
    );
}

#[test]
fn extract_writes_any_level_as_go_built_it() {
    let hello = hello();
    let dir = scratch();
    for level in 1..=4u8 {
        let out = dir.path().join(format!("v{level}"));
        run(mgo_at_repo()
            .args(["extract", "-l", &format!("v{level}"), "-o"])
            .arg(&out)
            .arg(&hello.bundle))
        .ok();
        assert!(
            fs::read(&out).unwrap() == fs::read(hello.plain(level)).unwrap(),
            "v{level}"
        );
    }
    // To stdout, and by default the level this machine would start.
    let out = run(mgo_at_repo()
        .args(["extract", "-o", "-"])
        .arg(&hello.bundle));
    assert!(out.stdout == fs::read(hello.plain(host_level())).unwrap());
    // A level the bundle lacks, a damaged bundle: nothing written.
    let v3up = dir.path().join("v3up");
    run(mgo(&example("hello"))
        .args(["-o"])
        .arg(&v3up)
        .arg(".")
        .env("GOAMD64", "v3"))
    .ok();
    let missing = run(mgo_at_repo()
        .args(["extract", "-l", "v1", "-o"])
        .arg(dir.path().join("none"))
        .arg(&v3up));
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        missing.stderr.contains("has no v1 build: it holds v3, v4"),
        "{}",
        missing.stderr
    );
    assert!(!dir.path().join("none").exists());
    let (_d, broken) = damaged(&hello.bundle, stored_at(&hello.bundle, 0) + 10, "b");
    let out = run(mgo_at_repo()
        .args(["extract", "-l", "v1", "-o"])
        .arg(dir.path().join("none"))
        .arg(&broken));
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr.contains("is damaged"), "{}", out.stderr);
    assert!(!dir.path().join("none").exists());
}

/// Damage anywhere in the launcher's part (ELF header, program headers,
/// code, data, its identity string, padding) is found: a byte flipped at
/// forty places spread over it, each time a failing verify that says what
/// is damaged.
#[test]
fn verify_finds_damage_anywhere_in_the_launcher() {
    let hello = hello();
    let segment = segment_offset(&hello.bundle);
    let dir = scratch();
    let original = fs::read(&hello.bundle).unwrap();
    let mut offsets: Vec<usize> = (0..segment).step_by(segment / 40).collect();
    // The ELF header's magic and e_phoff, the first program header.
    offsets.extend([0, 1, 0x20, 64, 64 + 4]);
    for offset in offsets {
        let mut bytes = original.clone();
        bytes[offset] ^= 0x20;
        let path = dir.path().join(format!("at-{offset}"));
        fs::write(&path, bytes).unwrap();
        let out = run(mgo_at_repo().arg("verify").arg(&path));
        assert_eq!(out.status.code(), Some(1), "offset {offset}: {out:?}");
        let said = format!("{}{}", out.stdout_text(), out.stderr);
        assert!(said.contains("DAMAGED"), "offset {offset}: {said}");
    }
}
