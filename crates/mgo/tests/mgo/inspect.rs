//! `mgo inspect`, `mgo verify` and `mgo extract` on good bundles, damaged
//! ones (a variant, the table, a launcher byte) and files that are not
//! bundles.

use crate::support::*;
use mgo_format::{BLOCK_RECORD_SIZE, ENTRY_SIZE, HEADER_SIZE, block_record, entry, header};
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A copy of `bundle` with one byte at `offset` flipped, in a directory of
/// its own.
fn damaged(bundle: &Path, offset: usize, name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = scratch();
    let path = damaged_copy(
        &fs::read(bundle).unwrap(),
        offset,
        0x20,
        &dir.path().join(name),
    );
    (dir, path)
}

/// Where level `index`'s stored bytes start in the file.
fn stored_at(bundle: &Path, index: usize) -> usize {
    let bundle = read_bundle(bundle);
    bundle.stored_at(&bundle.table.entries()[index])
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
    let size = fs::metadata(&hello.bundle).unwrap().len() as usize;
    let cases = [
        (
            stored_at(&hello.bundle, 1) + 100_000,
            "variant",
            "v2: DAMAGED: block",
        ),
        (
            segment + HEADER_SIZE + entry::OFFSET,
            "table",
            "bundle table: DAMAGED",
        ),
        (3000, "launcher-code", "launcher: DAMAGED: 1 byte differs"),
        (
            segment - 100,
            "launcher-padding",
            "launcher: DAMAGED: 1 byte differs",
        ),
        (size - 30, "section-headers", "section headers: DAMAGED"),
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
    let bundle = hello().compressed("Z3");
    let text = run(mgo_at_repo().arg("verify").arg(bundle)).ok();
    assert!(
        text.contains("launcher: ok (mgo-launcher 0.1.0 zstd"),
        "{text}"
    );
    let inspect = run(mgo_at_repo().arg("inspect").arg(bundle)).ok();
    assert!(inspect.contains("zstd against v4"), "{inspect}");
    // Damage in v4, the reference, shows in every level decoded against it.
    let (_d, path) = damaged(bundle, stored_at(bundle, 3) + 50, "z");
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
                    "mgo: {} is not an mgo bundle: {why}: name a file that mgo wrote\n",
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
        let path = damaged_copy(
            &original,
            offset,
            0x20,
            &dir.path().join(format!("at-{offset}")),
        );
        let out = run(mgo_at_repo().arg("verify").arg(&path));
        assert_eq!(out.status.code(), Some(1), "offset {offset}: {out:?}");
        let said = format!("{}{}", out.stdout_text(), out.stderr);
        assert!(said.contains("DAMAGED"), "offset {offset}: {said}");
    }
}

/// A copy of `bundle` whose level at `index` is made over into a zstd
/// variant of `count` blocks of `block_size` bytes. Its stored bytes are
/// `frame` for each block or, without one, its own raw bytes cut into
/// `count` pieces (which do not decode); its block directory goes over the
/// next level's stored bytes. The table's checksum is made right again, so
/// only the block directory and the blocks can tell.
fn crafted(
    bundle: &Path,
    index: usize,
    block_size: u64,
    count: u64,
    frame: Option<&[u8]>,
) -> (tempfile::TempDir, PathBuf) {
    let mut bytes = fs::read(bundle).unwrap();
    let segment = segment_offset(bundle);
    let u64_at = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
    let put = |b: &mut Vec<u8>, at: usize, v: u64| b[at..at + 8].copy_from_slice(&v.to_le_bytes());
    let entry = segment + HEADER_SIZE + ENTRY_SIZE * index;
    let next = entry + ENTRY_SIZE;
    let stored_at = segment + u64_at(&bytes, entry + entry::OFFSET) as usize;
    let directory = u64_at(&bytes, next + entry::OFFSET);
    let (piece, stored) = match frame {
        Some(frame) => {
            for i in 0..count as usize {
                let at = stored_at + i * frame.len();
                bytes[at..at + frame.len()].copy_from_slice(frame);
            }
            (frame.len() as u64, frame.len() as u64 * count)
        }
        None => {
            let stored = u64_at(&bytes, entry + entry::STORED_SIZE);
            (stored / count, stored)
        }
    };
    let block_checksum = frame.map_or(0, |_| mgo_format::checksum(&vec![0u8; block_size as usize]));
    bytes[entry + entry::ENCODING] = mgo_format::Encoding::Zstd as u8;
    bytes[entry + entry::REFERENCE] = 0; // none
    put(&mut bytes, entry + entry::STORED_SIZE, stored);
    put(&mut bytes, entry + entry::SIZE, block_size * count);
    put(&mut bytes, entry + entry::BLOCKS_OFFSET, directory);
    bytes[entry + entry::BLOCK_COUNT..][..4].copy_from_slice(&(count as u32).to_le_bytes());
    for i in 0..count {
        let record = segment + directory as usize + BLOCK_RECORD_SIZE * i as usize;
        let stored_size = if i + 1 == count {
            stored - piece * i
        } else {
            piece
        };
        for (at, value) in [
            (block_record::OFFSET, i * block_size),
            (block_record::SIZE, block_size),
            (block_record::CHECKSUM, block_checksum),
            (block_record::STORED_OFFSET, piece * i),
            (block_record::STORED_SIZE, stored_size),
            (block_record::DICTIONARY_SIZE, 0),
        ] {
            put(&mut bytes, record + at, value);
        }
    }
    let entries = &bytes[segment + header::COUNT..][..2];
    let entries = usize::from(u16::from_le_bytes(entries.try_into().unwrap()));
    let table = segment..segment + HEADER_SIZE + ENTRY_SIZE * entries;
    put(&mut bytes, segment + header::TABLE_CHECKSUM, 0);
    let sum = mgo_format::checksum(&bytes[table]);
    put(&mut bytes, segment + header::TABLE_CHECKSUM, sum);
    let dir = scratch();
    let path = dir.path().join("crafted");
    fs::write(&path, bytes).unwrap();
    (dir, path)
}

/// One zstd frame that decodes to 4 MiB of zeros: 32 RLE blocks of 128 KiB
/// (RFC 8878), 141 bytes.
fn zeros_frame() -> Vec<u8> {
    let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd, 0xe0];
    frame.extend_from_slice(&(4u64 << 20).to_le_bytes());
    for i in 0..32 {
        let header = u32::from(i == 31) | 1 << 1 | (128 << 10) << 3;
        frame.extend_from_slice(&header.to_le_bytes()[..3]);
        frame.push(0);
    }
    frame
}

/// A table that declares far more than the file holds, or blocks larger
/// than the format allows, gets one line and status 1: nothing is
/// allocated from a declared size.
#[test]
fn declared_sizes_are_never_taken_on_trust() {
    let hello = hello();
    // 64 GiB in 16384 blocks of 4 MiB (the largest the format allows).
    let (_dir, huge) = crafted(&hello.bundle, 0, 4 << 20, 16384, None);
    let out = run(mgo_at_repo().arg("verify").arg(&huge));
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stdout_text().contains("v1: DAMAGED: block 0 "),
        "{}",
        out.stdout_text()
    );
    assert_eq!(out.stderr, format!("mgo: {} is damaged\n", huge.display()));
    let dest = huge.with_file_name("out");
    let out = run(mgo_at_repo()
        .args(["extract", "-l", "v1", "-o"])
        .arg(&dest)
        .arg(&huge));
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.starts_with(&format!(
            "mgo: {} is damaged, nothing was written: v1: block 0 ",
            huge.display()
        )) && out.stderr.lines().count() == 1,
        "{}",
        out.stderr
    );
    assert!(!dest.exists());
    // One block of 16 MiB: above the format's 4 MiB.
    let (_dir, big) = crafted(&hello.bundle, 0, 16 << 20, 1, None);
    let out = run(mgo_at_repo().arg("verify").arg(&big));
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stdout_text()
            .contains("v1: DAMAGED: bundle block directory is damaged\n"),
        "{}",
        out.stdout_text()
    );
}

/// `mgo verify` and `mgo extract` hold a block at a time: a level whose
/// legal blocks decode to 256 MiB of zeros from 9 KB costs a few tens of
/// MB, not 256.
#[test]
fn memory_is_bounded_by_the_blocks_in_flight() {
    let hello = hello();
    let time = require("time");
    let (dir, bomb) = crafted(&hello.bundle, 1, 4 << 20, 64, Some(&zeros_frame()));
    let dest = dir.path().join("out");
    let verify = ["verify"].map(OsString::from).to_vec();
    let extract = vec![
        "extract".into(),
        "-l".into(),
        "v2".into(),
        "-o".into(),
        dest.clone().into_os_string(),
    ];
    for args in [verify, extract] {
        let out = run(Command::new(&time)
            .args(["-f", "%M"])
            .arg(env!("CARGO_BIN_EXE_mgo"))
            .args(&args)
            .arg(&bomb)
            .env("TMPDIR", dir.path()));
        assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
        // Every block decoded and matched its checksum; only the whole did
        // not (the table's checksum is the real v2's).
        assert!(
            format!("{}{}", out.stdout_text(), out.stderr)
                .contains("v2: DAMAGED: the whole does not match its checksum")
                || out
                    .stderr
                    .contains("nothing was written: v2: the whole does not match its checksum"),
            "{}{}",
            out.stdout_text(),
            out.stderr
        );
        let peak_kib: u64 = out.stderr.lines().last().unwrap().trim().parse().unwrap();
        eprintln!("mgo {args:?} of 256 MiB of zero blocks peaked at {peak_kib} KiB");
        assert!(
            peak_kib < 96 << 10,
            "{args:?} peaked at {peak_kib} KiB for 256 MiB of blocks"
        );
    }
    assert!(!dest.exists());
    assert_eq!(files_in(dir.path()), ["crafted"], "left behind");
}

/// Only regular files are read: a FIFO would block forever, a directory
/// cannot be mapped. Names are echoed with control bytes escaped.
#[test]
fn only_regular_files_are_read_and_names_are_escaped() {
    let dir = scratch();
    let fifo = dir.path().join("fifo");
    run(Command::new("mkfifo").arg(&fifo)).ok();
    let timeout = require("timeout");
    for (file, why) in [
        (fifo.as_path(), "it is a FIFO, not a regular file"),
        (dir.path(), "it is a directory"),
        (Path::new("/dev/null"), "it is a device, not a regular file"),
    ] {
        for args in [&["inspect"][..], &["verify"], &["extract", "-o", "x"]] {
            // A FIFO that blocked would be killed: status 137, not 1.
            let out = run(Command::new(&timeout)
                .args(["-s", "KILL", "60"])
                .arg(env!("CARGO_BIN_EXE_mgo"))
                .args(args)
                .arg(file)
                .current_dir(dir.path()));
            assert_eq!(out.status.code(), Some(1), "{args:?} {}", file.display());
            assert_eq!(
                out.stderr,
                format!("mgo: cannot read {}: {why}\n", file.display())
            );
        }
    }
    let odd = dir.path().join("a\nmgo: b\x1b[31m");
    fs::write(&odd, "not a bundle").unwrap();
    let out = run(mgo_at_repo().arg("inspect").arg(&odd));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        out.stderr,
        format!(
            "mgo: {}/a\\x0amgo: b\\x1b[31m is not an mgo bundle: not a 64-bit ELF file: name a file that mgo wrote\n",
            dir.path().display()
        )
    );
}

/// A full TMPDIR while extracting is a full disk, not a damaged bundle:
/// the message says which, and nothing is written. The small tmpfs is
/// mounted in a private mount namespace.
#[test]
fn extract_into_a_full_tmpdir_says_so_and_writes_nothing() {
    require("unshare");
    let hello = hello();
    let dir = scratch();
    let full = dir.path().join("full");
    let dest = dir.path().join("out");
    fs::create_dir(&full).unwrap();
    let script = r#"
set -e
mount -t tmpfs -o size=64k tmpfs "$FULL"
TMPDIR="$FULL" "$MGO" extract -l v1 -o "$DEST" "$BUNDLE"
"#;
    let out = run(Command::new("unshare")
        .args(["-m", "sh", "-c", script])
        .env("MGO", env!("CARGO_BIN_EXE_mgo"))
        .env("FULL", &full)
        .env("DEST", &dest)
        .env("BUNDLE", &hello.bundle));
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert_eq!(
        out.stderr,
        "mgo: cannot write a temporary file: No space left on device (os error 28)\n"
    );
    assert!(!dest.exists());
}
