//! mgo's encoder against Go's: on edge inputs through Go's compress/zlib,
//! and on every compressed DWARF section of every command in GOROOT as
//! Go's linker wrote it.

// A test fails by panicking; the workspace's lints are for production code.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use mgo_goflate::Encoder;
use object::read::elf::{FileHeader, SectionHeader};
use std::path::{Path, PathBuf};
use std::process::Command;
mod inputs;
use inputs::pseudo_random;

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

fn go(args: &[&str], dir: &Path) {
    let status = Command::new("go")
        .args(args)
        .current_dir(dir)
        .status()
        .expect("run go: is the Go toolchain on PATH?");
    assert!(status.success(), "go {args:?} failed: {status}");
}

/// Encodes `input` into exactly `expected.len()` bytes and compares.
fn same_as(encoder: &mut Encoder, input: &[u8], expected: &[u8]) -> bool {
    let mut out = vec![0u8; expected.len()];
    encoder.zlib(input, &mut out) == Some(expected.len()) && out == expected
}

fn text(len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0u64;
    while out.len() < len {
        out.extend_from_slice(
            format!("{} key{} = value {}; ", i % 101, i % 37, i * 7 % 1009).as_bytes(),
        );
        i += 1;
    }
    out.truncate(len);
    out
}

const BLOCK: usize = 65_535;

fn edge_inputs() -> Vec<(String, Vec<u8>)> {
    let mut inputs = vec![
        ("empty".to_string(), Vec::new()),
        ("one-byte".to_string(), vec![b'x']),
    ];
    // The last block's special cases: stored up to 16 bytes, literals only
    // below 128, matched from 128; and block boundaries with neighbours.
    for len in [2, 16, 17, 18, 127, 128, 129, 1000] {
        inputs.push((format!("text-{len}"), text(len)));
    }
    for len in [
        BLOCK - 1,
        BLOCK,
        BLOCK + 1,
        BLOCK + 17,
        BLOCK + 127,
        BLOCK + 128,
        2 * BLOCK,
        2 * BLOCK + 1,
        65_536,
        3 * 65_536,
    ] {
        inputs.push((format!("text-{len}"), text(len)));
    }
    inputs.push(("incompressible".to_string(), pseudo_random(300_000, 3)));
    inputs.push(("incompressible-small".to_string(), pseudo_random(100, 4)));
    inputs.push(("zeros".to_string(), vec![0; 1 << 20]));
    let mut runs = Vec::new();
    for i in 0..2000u32 {
        runs.extend(std::iter::repeat_n(
            (i % 251) as u8,
            (i as usize * 37) % 700 + 1,
        ));
    }
    inputs.push(("runs".to_string(), runs));
    // Repeats at every distance up to DEFLATE's limit, across blocks.
    let mut far = pseudo_random(40_000, 5);
    for distance in [
        1usize, 2, 3, 4, 255, 256, 257, 4096, 32_767, 32_768, 32_769, 40_000,
    ] {
        let start = far.len() - distance.min(far.len());
        let copy: Vec<u8> = far[start..].iter().copied().cycle().take(5000).collect();
        far.extend_from_slice(&copy);
        far.extend_from_slice(&pseudo_random(3000, distance as u64));
    }
    inputs.push(("distances".to_string(), far));
    // Few distinct symbols: codes of one and two symbols, deep trees.
    inputs.push((
        "two-symbols".to_string(),
        (0..5000)
            .map(|i| if i % 3 == 0 { b'a' } else { b'b' })
            .collect(),
    ));
    let skewed: Vec<u8> = (0..200_000u32)
        .map(|i| (i.trailing_zeros() as u8).wrapping_mul(17))
        .collect();
    inputs.push(("skewed".to_string(), skewed));
    inputs
}

#[test]
fn edge_inputs_match_go() {
    let dir = scratch("goflate-edges");
    let reference = dir.join("zlibref");
    go(
        &[
            "build",
            "-o",
            reference.to_str().expect("utf-8 path"),
            "main.go",
        ],
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/zlibref"),
    );
    let inputs = edge_inputs();
    let mut command = Command::new(&reference);
    for (name, bytes) in &inputs {
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("write input");
        command.arg(path);
    }
    assert!(command.status().expect("run zlibref").success());
    let mut encoder = Encoder::boxed();
    let mut differing = Vec::new();
    for (name, bytes) in &inputs {
        let expected = std::fs::read(dir.join(format!("{name}.zlib"))).expect("Go's output");
        if !same_as(&mut encoder, bytes, &expected) {
            differing.push(name.clone());
        }
    }
    assert!(differing.is_empty(), "differs from Go on: {differing:?}");
}

/// Every SHF_COMPRESSED section of an ELF file: (name, uncompressed size,
/// zlib stream).
fn compressed_sections(file: &[u8]) -> Vec<(String, u64, &[u8])> {
    let endian = object::LittleEndian;
    let Ok(header) = object::elf::FileHeader64::<object::LittleEndian>::parse(file) else {
        return Vec::new();
    };
    let sections = header.sections(endian, file).expect("section table");
    let mut out = Vec::new();
    for section in sections.iter() {
        // SHF_COMPRESSED
        if section.sh_flags(endian).0 & object::elf::SHF_COMPRESSED.0 == 0 {
            continue;
        }
        let name = String::from_utf8_lossy(sections.section_name(endian, section).unwrap_or(b"?"))
            .into_owned();
        let data = section.data(endian, file).expect("section data");
        let (chdr, stream) = data.split_at(24);
        // ELFCOMPRESS_ZLIB
        assert_eq!(u32::from_le_bytes(chdr[..4].try_into().unwrap()), 1);
        let size = u64::from_le_bytes(chdr[8..16].try_into().unwrap());
        out.push((name, size, stream));
    }
    out
}

#[test]
fn every_compressed_dwarf_section_of_goroot_commands_matches() {
    let dir = scratch("goflate-goroot");
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    let mut out = bin.to_str().expect("utf-8 path").to_string();
    out.push('/');
    go(&["build", "-o", &out, "cmd/..."], &dir);
    let mut encoder = Encoder::boxed();
    let (mut programs, mut sections, mut bytes) = (0, 0, 0u64);
    let mut differing = Vec::new();
    for entry in std::fs::read_dir(&bin).expect("list built commands") {
        let path = entry.expect("entry").path();
        let file = std::fs::read(&path).expect("read command");
        let found = compressed_sections(&file);
        if found.is_empty() {
            continue;
        }
        programs += 1;
        for (name, size, stream) in found {
            let inflated = miniz_oxide::inflate::decompress_to_vec_zlib(stream)
                .expect("Go's zlib stream inflates");
            assert_eq!(
                inflated.len() as u64,
                size,
                "{} {name}: size in the header",
                path.display()
            );
            sections += 1;
            bytes += size;
            if !same_as(&mut encoder, &inflated, stream) {
                differing.push(format!("{} {name}", path.display()));
            }
        }
    }
    eprintln!("{programs} commands, {sections} compressed sections, {bytes} bytes inflated");
    assert!(
        programs >= 20 && sections >= 100,
        "too few inputs: {programs} commands, {sections} sections"
    );
    assert!(
        differing.is_empty(),
        "{} sections differ from Go's: {differing:?}",
        differing.len()
    );
}
