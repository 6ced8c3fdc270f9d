//! Builds the launcher and hands its bytes to the CLI, so that `cargo
//! install` yields one self-contained `mgo`.
//!
//! The launcher is a separate `no_std` binary with its own codegen needs
//! (non-PIE, no unwind tables, size-optimized, baseline x86-64 whatever
//! RUSTFLAGS the outer build uses), and Cargo's artifact dependencies are not
//! stable, so this script runs a nested `cargo build` into its own target
//! directory (a separate directory, so it never waits on the outer build's lock).

// A build script reports failure by panicking: cargo shows the message.
#![allow(clippy::expect_used, clippy::panic)]

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    let launcher_dir = manifest_dir.join("../launcher");
    let watched = [
        launcher_dir.join("src"),
        launcher_dir.join("Cargo.toml"),
        launcher_dir.join("build.rs"),
        manifest_dir.join("../format/src"),
        manifest_dir.join("../format/Cargo.toml"),
        manifest_dir.join("../goflate/src"),
        manifest_dir.join("../goflate/Cargo.toml"),
        // The workspace manifest holds the launcher's profile.
        manifest_dir.join("../../Cargo.toml"),
        manifest_dir.join("../../Cargo.lock"),
    ];
    for path in watched {
        println!("cargo:rerun-if-changed={}", path.display());
    }

    // One launcher per decoder (docs/LAUNCHER.md, "Launcher flavours"); each flavor
    // in its own target directory, so none rebuilds another's dependencies.
    // A flavour with Go's zlib encoder ("dwarf") shares its decoder's
    // target directory: only the launcher crate itself differs.
    for (name, features, target) in [
        ("mgo-launcher", "bin", "mgo-launcher"),
        ("mgo-launcher-zstd", "bin,zstd", "mgo-launcher-zstd"),
        (
            "mgo-launcher-deflate",
            "bin,deflate",
            "mgo-launcher-deflate",
        ),
        ("mgo-launcher-lz4", "bin,lz4", "mgo-launcher-lz4"),
        (
            "mgo-launcher-zstd-dwarf",
            "bin,zstd,dwarf",
            "mgo-launcher-zstd",
        ),
        (
            "mgo-launcher-deflate-dwarf",
            "bin,deflate,dwarf",
            "mgo-launcher-deflate",
        ),
        (
            "mgo-launcher-lz4-dwarf",
            "bin,lz4,dwarf",
            "mgo-launcher-lz4",
        ),
    ] {
        let target_dir = out_dir.join(format!("{target}-target"));
        build_launcher(&launcher_dir, &target_dir, features);
        let built = target_dir.join("x86_64-unknown-linux-gnu/launcher/mgo-launcher");
        std::fs::copy(&built, out_dir.join(name)).expect("copy the built launcher");
    }
}

fn build_launcher(launcher_dir: &Path, target_dir: &Path, features: &str) {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let flags = [
        "-Crelocation-model=static",
        "-Cforce-unwind-tables=no",
        "-Ctarget-cpu=x86-64",
    ]
    .join("\x1f");
    let mut command = Command::new(cargo);
    command
        .current_dir(launcher_dir)
        .args([
            "build",
            "--quiet",
            "-p",
            "mgo-launcher",
            "--bin",
            "mgo-launcher",
            "--features",
            features,
        ])
        .args([
            "--profile",
            "launcher",
            "--target",
            "x86_64-unknown-linux-gnu",
        ])
        .arg("--target-dir")
        .arg(target_dir)
        .env("CARGO_ENCODED_RUSTFLAGS", flags)
        // C decoders: no stack protector (it reads a canary through %fs,
        // which nothing sets up without libc), no PIC. zstd without its
        // error strings (the launcher never prints them) and with only its
        // single-symbol Huffman decoder: 18.7 KB less, which makes room for
        // Go's zlib encoder under the 128 KiB budget, for no start time
        // measurable on cmd/go (docs/DESIGN.md, "Launcher size").
        .env(
            "CFLAGS_x86_64_unknown_linux_gnu",
            concat!(
                "-fno-stack-protector -fno-pic -fno-asynchronous-unwind-tables",
                " -DZSTD_STRIP_ERROR_STRINGS -DHUF_FORCE_DECOMPRESS_X1"
            ),
        )
        // The outer build's settings must not leak into the launcher's.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CFLAGS");
    let status = command
        .status()
        .expect("cannot run cargo to build the launcher");
    assert!(
        status.success(),
        "building the launcher ({features}) failed: {status}"
    );
}
