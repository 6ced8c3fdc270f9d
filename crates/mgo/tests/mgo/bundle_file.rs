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
    let bytes = fs::read(&hello.bundle).unwrap();
    let dir = scratch();
    let (segment, size) = segment(&hello.bundle);
    let end = segment + size;
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
        let cut = dir.path().join(format!("cut{keep}"));
        fs::write(&cut, &bytes[..keep]).unwrap();
        copy_exe(&cut, &cut.with_extension("x"));
        let out = run(&mut exec(&cut.with_extension("x")));
        assert_launcher_failure(&out, 125, "truncated");
    }
    // Only the section headers lost: every byte that runs is there and verified.
    let cut = dir.path().join("headers-lost");
    fs::write(&cut, &bytes[..end]).unwrap();
    copy_exe(&cut, &cut.with_extension("x"));
    assert_eq!(
        run(&mut exec(&cut.with_extension("x"))).ok(),
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

#[test]
fn a_flipped_bit_anywhere_in_the_chosen_variant_or_table_is_refused() {
    let hello = hello();
    let bytes = fs::read(&hello.bundle).unwrap();
    let dir = scratch();
    let check = |name: &str, at: usize, level: Option<u8>, needle: &str| {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x10;
        let path = dir.path().join(name);
        fs::write(&path, &damaged).unwrap();
        copy_exe(&path, &path.with_extension("x"));
        let mut command = exec(&path.with_extension("x"));
        if let Some(level) = level {
            command.env("GOAMD64", format!("v{level}"));
        }
        assert_launcher_failure(&run(&mut command), 125, needle);
    };
    let v1 = variant_range(&bytes, &fs::read(hello.plain(1)).unwrap());
    let table = segment_offset(&hello.bundle);
    check("table-magic", table, None, "bad magic");
    check("table-entry", table + 32 + 30, None, "damaged");
    for level in 1..=4u8 {
        let range = variant_range(&bytes, &fs::read(hello.plain(level)).unwrap());
        for (i, at) in [range.start, range.start + range.len() / 2, range.end - 1]
            .into_iter()
            .enumerate()
        {
            check(
                &format!("v{level}-{i}"),
                at,
                Some(level),
                "checksum mismatch",
            );
        }
    }
    // Extraction verifies too.
    let mut damaged = bytes.clone();
    damaged[v1.start + 5000] ^= 1;
    let path = dir.path().join("extract");
    fs::write(&path, &damaged).unwrap();
    copy_exe(&path, &path.with_extension("x"));
    let out = run(exec(&path.with_extension("x"))
        .env("MGODEBUG", "extract")
        .env("GOAMD64", "v1"));
    assert_launcher_failure(&out, 125, "checksum mismatch");
}

#[test]
fn launcher_stays_within_its_size_budget() {
    // The launcher is the bundle's first bytes, up to the segment offset.
    let offset = segment_offset(&hello().bundle);
    assert!(offset <= 32 * 1024, "launcher part is {offset} bytes");
}

/// Large variants are verified by a forked child while the launcher copies;
/// the verdict must hold whether the child's status can be read (the usual
/// case), is lost because the caller ignores SIGCHLD, or there is one CPU.
#[test]
fn large_variants_are_verified_in_every_launch_path() {
    let vet = vet();
    let level = host_level();
    let bytes = fs::read(&vet.bundle).unwrap();
    let range = variant_range(&bytes, &fs::read(vet.plain(level)).unwrap());
    let mut damaged = bytes.clone();
    damaged[range.start + range.len() / 3] ^= 0x04;
    let dir = scratch();
    let good = dir.path().join("good");
    let bad = dir.path().join("bad");
    copy_exe(&vet.bundle, &good);
    fs::write(dir.path().join("bad.tmp"), &damaged).unwrap();
    copy_exe(&dir.path().join("bad.tmp"), &bad);
    let expected = run(exec(vet.plain(level)).arg0("vet").arg("-V=full")).ok();
    let taskset = require("taskset");
    let launches: [(&str, Vec<String>); 3] = [
        ("forked verification", vec![]),
        (
            "SIGCHLD ignored",
            vec![
                "sh".into(),
                "-c".into(),
                "trap '' CHLD; exec \"$@\"".into(),
                "sh".into(),
            ],
        ),
        (
            "one CPU",
            vec![
                taskset.to_string_lossy().into_owned(),
                "-c".into(),
                "0".into(),
            ],
        ),
    ];
    for (how, prefix) in &launches {
        let command = |bundle: &std::path::Path| {
            let mut c = match prefix.split_first() {
                Some((program, args)) => {
                    let mut c = Command::new(program);
                    c.args(args).arg(bundle);
                    c
                }
                None => {
                    let mut c = Command::new(bundle);
                    c.arg0("vet");
                    c
                }
            };
            c.arg("-V=full")
                .env_remove("GOAMD64")
                .env_remove("MGODEBUG");
            c
        };
        // vet names itself by argv[0], which the wrappers set to the path.
        let out = run(&mut command(&good)).ok();
        assert_eq!(
            out.split_once(' ').map(|p| p.1),
            expected.split_once(' ').map(|p| p.1),
            "{how}"
        );
        assert_launcher_failure(&run(&mut command(&bad)), 125, "checksum mismatch");
    }
}
