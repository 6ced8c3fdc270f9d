//! The file start (`MGODEBUG=file`, `MGO_LAUNCH=file`): the chosen level
//! written once per user into a cache directory, checked, then mapped from
//! there; and every way it gives way to the mapped start.

use crate::support::*;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

/// A static Go program (testdata/spin) and what it prints for 1000 rounds.
fn spin() -> &'static Built {
    built("spin", &testdata("spin"), &[], "./static")
}

fn expected() -> String {
    run(exec(spin().plain(host_level())).arg("1000")).ok()
}

/// `bundle 1000` with `MGODEBUG` and the cache in `cache`.
fn start(bundle: &Path, debug: &str, cache: &Path) -> Run {
    run(exec(bundle)
        .arg("1000")
        .env("MGODEBUG", debug)
        .env("MGOCACHE", cache))
}

/// The files of the cache's `builds` directory, without the marks of
/// checked files (`.NAME.checked-...`).
fn cached(cache: &Path) -> Vec<String> {
    files_in(&cache.join("builds"))
        .into_iter()
        .filter(|name| !name.starts_with('.'))
        .collect()
}

/// The marks that a version of a cached file was checked.
fn marks(cache: &Path) -> Vec<String> {
    files_in(&cache.join("builds"))
        .into_iter()
        .filter(|name| name.starts_with('.') && name.contains(".checked-"))
        .collect()
}

fn file_line(level: u8, how: &str, path: &Path) -> String {
    format!(
        "[mgo] launcher: starting variant GOAMD64=v{level} ({how}file {})",
        path.display()
    )
}

/// An uncompressed and a compressed bundle: the first start writes the
/// level's executable, exactly as go built it, into the cache; every start
/// maps it from there.
#[test]
fn a_level_is_written_once_into_the_cache_then_mapped_from_it() {
    let level = host_level();
    for (bundle, how) in [
        (spin().bundle.as_path(), ""),
        (spin().compressed("z3"), "zstd, "),
    ] {
        let cache = scratch();
        for _ in 0..2 {
            let out = start(bundle, "file,log", cache.path());
            assert_eq!(out.ok(), expected());
            let names = cached(cache.path());
            assert_eq!(names.len(), 1, "{names:?}");
            let file = cache.path().join("builds").join(&names[0]);
            assert_eq!(launcher_lines(&out.stderr), [file_line(level, how, &file)]);
            assert!(fs::read(&file).unwrap() == fs::read(spin().plain(level)).unwrap());
            let meta = fs::metadata(&file).unwrap();
            assert_eq!(meta.mode() & 0o777, 0o500, "{file:?}");
        }
        let dir = fs::metadata(cache.path().join("builds")).unwrap();
        assert_eq!(dir.mode() & 0o777, 0o700);
        assert_eq!(marks(cache.path()).len(), 1, "{:?}", marks(cache.path()));
    }
}

/// The kilobytes of memory of `pid` that mappings of `file` hold.
fn resident_kb(pid: &str, file: &Path) -> u64 {
    let smaps = fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let mut in_file = false;
    let mut total = 0;
    for line in smaps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields
            .first()
            .is_some_and(|f| f.contains('-') && !f.ends_with(':'))
        {
            in_file = fields.get(5) == Some(&file.to_str().unwrap());
        } else if in_file && fields.first() == Some(&"Rss:") {
            total += fields[1].parse::<u64>().unwrap();
        }
    }
    total
}

/// The file is checked once per version: the first start reads all of it
/// and marks it checked; a later one reads only what the program touches,
/// as a plain build's process does (within 0.5 MiB).
#[test]
fn a_checked_file_is_read_once_then_costs_what_a_plain_build_costs() {
    let cache = scratch();
    let env = [
        ("MGODEBUG", "file"),
        ("MGOCACHE", cache.path().to_str().unwrap()),
    ];
    let plain = spin().plain(host_level());
    let size_kb = fs::metadata(plain).unwrap().len() / 1024;
    let first = Spinning::start(&spin().bundle, &env);
    let file = cache.path().join("builds").join(&cached(cache.path())[0]);
    let read_first = resident_kb(&first.pid(), &file);
    drop(first);
    let later = Spinning::start(&spin().bundle, &env);
    let read_later = resident_kb(&later.pid(), &file);
    drop(later);
    let direct = Spinning::start(plain, &[]);
    let read_direct = resident_kb(&direct.pid(), plain);
    drop(direct);
    assert!(
        read_first >= size_kb,
        "first start: {read_first} kB of {size_kb}"
    );
    assert!(
        read_later <= read_direct + 512,
        "a later start holds {read_later} kB of the file, the plain build {read_direct} kB"
    );
}

/// `MGO_LAUNCH=file` makes the file start the bundle's default, and
/// `mgo inspect` says so.
#[test]
fn mgo_launch_file_makes_it_the_default() {
    let dir = scratch();
    let bundle = dir.path().join("app");
    run(mgo(&testdata("spin"))
        .env("MGO_LAUNCH", "file")
        .arg("-o")
        .arg(&bundle)
        .arg("./static"))
    .ok();
    let cache = scratch();
    let out = start(&bundle, "log", cache.path());
    assert_eq!(out.ok(), expected());
    let names = cached(cache.path());
    let file = cache.path().join("builds").join(&names[0]);
    assert_eq!(
        launcher_lines(&out.stderr),
        [file_line(host_level(), "", &file)]
    );
    let inspect = run(mgo(dir.path()).arg("inspect").arg(&bundle)).ok();
    assert!(
        inspect.contains("starts builds from a cached file (MGO_LAUNCH=file)"),
        "{inspect}"
    );
}

/// Starts that all find the cache empty all succeed and leave one file,
/// complete, and no temporary one.
#[test]
fn first_starts_at_once_all_succeed_and_leave_one_file() {
    let cache = scratch();
    let bundle = spin().compressed("z3");
    let children: Vec<_> = (0..6)
        .map(|_| {
            exec(bundle)
                .arg("1000")
                .env("MGODEBUG", "file")
                .env("MGOCACHE", cache.path())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8(out.stdout).unwrap(), expected());
    }
    let names = cached(cache.path());
    assert_eq!(names.len(), 1, "{names:?}");
    let file = cache.path().join("builds").join(&names[0]);
    assert!(fs::read(file).unwrap() == fs::read(spin().plain(host_level())).unwrap());
}

/// A cached file changed after it was written fails its check: it is
/// written again, and what runs is the level as built.
#[test]
fn a_damaged_cache_file_is_written_again_never_run() {
    let cache = scratch();
    let bundle = &spin().bundle;
    start(bundle, "file", cache.path()).ok();
    let names = cached(cache.path());
    let file = cache.path().join("builds").join(&names[0]);
    let plain = fs::read(spin().plain(host_level())).unwrap();
    // A byte of main.spin's neighbourhood in the text segment: run, it
    // would change what the program computes or crash it.
    let mut damaged = plain.clone();
    damaged[0x2000] ^= 0xff;
    fs::set_permissions(&file, fs::Permissions::from_mode(0o700)).unwrap();
    fs::write(&file, &damaged).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o500)).unwrap();
    let out = start(bundle, "file,log", cache.path());
    assert_eq!(out.ok(), expected());
    assert_eq!(
        launcher_lines(&out.stderr),
        [file_line(host_level(), "", &file)]
    );
    assert!(fs::read(&file).unwrap() == plain);
}

/// A cache directory others may write in, or another user's, is not used;
/// nor is a missing home. The program starts mapped from the bundle, and
/// says why only when asked to log.
#[test]
fn an_unsafe_or_missing_cache_directory_leaves_the_mapped_start() {
    let bundle = &spin().bundle;
    let mapped_because = |why: &str| {
        format!(
            "[mgo] launcher: starting variant GOAMD64=v{} (mapped; no cache file: {why})",
            host_level()
        )
    };
    for (mode, owner) in [(0o777, 0), (0o700, 65534)] {
        let cache = scratch();
        let builds = cache.path().join("builds");
        fs::create_dir(&builds).unwrap();
        fs::set_permissions(&builds, fs::Permissions::from_mode(mode)).unwrap();
        std::os::unix::fs::chown(&builds, Some(owner), Some(owner)).unwrap();
        let quiet = start(bundle, "file", cache.path());
        assert_eq!(quiet.ok(), expected());
        assert!(quiet.stderr.is_empty(), "{quiet:?}");
        let out = start(bundle, "file,log", cache.path());
        assert_eq!(out.ok(), expected());
        assert_eq!(
            launcher_lines(&out.stderr),
            [mapped_because(
                "the cache directory is another user's, or others may write in it"
            )]
        );
        assert!(files_in(&builds).is_empty());
    }
    let homeless = run(exec(bundle)
        .arg("1000")
        .env("MGODEBUG", "file,log")
        .env_remove("MGOCACHE")
        .env_remove("XDG_CACHE_HOME")
        .env_remove("HOME"));
    assert_eq!(homeless.ok(), expected());
    assert_eq!(
        launcher_lines(&homeless.stderr),
        [mapped_because(
            "no cache directory: HOME is not an absolute path"
        )]
    );
}

/// A full or read-only file system under the cache (a small tmpfs in a
/// private mount namespace): the start goes on mapped, and nothing is
/// left there.
#[test]
fn a_full_or_read_only_cache_leaves_the_mapped_start_and_no_file() {
    let unshare = require("unshare");
    let bundle = &spin().bundle;
    for (options, why) in [
        ("size=64k", "cannot write the file"),
        ("ro", "cannot create the cache directory"),
    ] {
        let cache = scratch();
        let script =
            format!("mount -t tmpfs -o {options} mgo-test \"$1\" && \"$2\" 1000 && ls -A \"$1\"");
        let out = run(Command::new(&unshare)
            .args([
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                &script,
                "sh",
            ])
            .arg(cache.path())
            .arg(bundle)
            .env("MGODEBUG", "file,log")
            .env("MGOCACHE", cache.path())
            .env_remove("GOAMD64"));
        let stdout = out.ok();
        let builds = if options == "ro" { "" } else { "builds\n" };
        assert_eq!(stdout, format!("{}{builds}", expected()), "{options}");
        assert_eq!(
            launcher_lines(&out.stderr),
            [format!(
                "[mgo] launcher: starting variant GOAMD64=v{} (mapped; no cache file: {why})",
                host_level()
            )],
            "{options}"
        );
    }
}

/// A privileged bundle never uses a cache its caller may control, whatever
/// its build-time default: a setuid-root bundle built with
/// `MGO_LAUNCH=file`, started by user nobody with HOME naming a directory
/// of root's, runs mapped and writes nothing there.
#[test]
fn a_privileged_start_never_uses_the_cache() {
    let setpriv = require("setpriv");
    let dir = tempfile::Builder::new()
        .prefix("mgo-file-setuid-")
        .tempdir()
        .unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let built = dir.path().join("built");
    run(mgo(&testdata("spin"))
        .env("MGO_LAUNCH", "file")
        .arg("-o")
        .arg(&built)
        .arg("./static"))
    .ok();
    let bundle = dir.path().join("app");
    install_exe(&built, &bundle, 0o4755);
    // Root's, as the process's effective user is: a cache the file start
    // would use, were the start not privileged.
    let home = dir.path().join("home");
    fs::create_dir(&home).unwrap();
    let out = run(Command::new(&setpriv)
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&bundle)
        .arg("1000")
        .env("HOME", &home)
        .env_remove("MGOCACHE")
        .env_remove("XDG_CACHE_HOME")
        .env_remove("MGODEBUG")
        .env_remove("GOAMD64"));
    assert_eq!(out.ok(), expected());
    assert!(files_in(&home).is_empty(), "{:?}", files_in(&home));
}
