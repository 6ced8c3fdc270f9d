//! The mapped start, where it differs from the memfd start: the program is
//! the bundle itself, nothing of the launcher is left but its documented
//! pages, running instances share the bundle's pages, it runs where memfds
//! may not be executed, and each way mapping can fail falls back to a memfd.

use crate::support::*;
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The launcher is linked at this address; its pages lie below the next.
const LAUNCHER_START: u64 = 0x4000_0000;
const LAUNCHER_END: u64 = 0x4100_0000;

/// The page that names the running variant (docs/LAUNCHER.md).
fn marker(level: u8) -> String {
    format!("6d676f00{level}000-6d676f00{}000 ---p", level + 1)
}

/// `/proc/PID/maps` lines as (start, end, permissions, path).
fn mappings(maps: &str) -> Vec<(u64, u64, String, String)> {
    maps.lines()
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (start, end) = fields[0].split_once('-').unwrap();
            (
                u64::from_str_radix(start, 16).unwrap(),
                u64::from_str_radix(end, 16).unwrap(),
                fields[1].to_owned(),
                fields.get(5).copied().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[test]
fn the_started_program_is_the_bundle_itself() {
    let probe = probe();
    let dir = scratch();
    let bundle = dir.path().join("probeprog");
    copy_exe(&probe.bundle, &bundle);
    let level = host_level();
    assert_eq!(run(exec(&bundle).arg("comm")).ok(), "probeprog\n");
    assert_eq!(
        run(exec(&bundle).arg("executable")).ok().trim_end(),
        bundle.to_str().unwrap()
    );
    // A program that re-executes itself through os.Executable() starts the
    // bundle again, which starts the same variant again.
    let again = run(exec(&bundle).arg("reexec").env("MGODEBUG", "log"));
    assert_eq!(again.ok(), format!("v{level}\n"));
    assert_eq!(
        launcher_lines(&again.stderr),
        [
            starting(level, Launch::Mapped),
            starting(level, Launch::Mapped)
        ]
    );
    // Through a memfd, the program is the memfd: its name is not the
    // bundle's, and os.Executable() names a path that does not exist.
    let comm = run(exec_as(Launch::Memfd, &bundle).arg("comm")).ok();
    assert!(comm.starts_with("memfd:"), "{comm}");
    let failed = run(exec_as(Launch::Memfd, &bundle).arg("reexec"));
    assert_eq!(failed.status.code(), Some(3), "{failed:?}");
    assert!(
        failed.stderr.contains("no such file or directory"),
        "{failed:?}"
    );
}

#[test]
fn nothing_of_the_launcher_is_left_but_its_documented_pages() {
    let probe = probe();
    let level = host_level();
    let plain = probe.plain(level);
    // Descriptors, blocked, ignored and caught signals, the alternate
    // signal stack: as in a direct run.
    let direct_state = run(exec(plain).arg("state")).ok();
    assert!(direct_state.contains("SigCgt:"), "{direct_state}");
    assert_eq!(run(exec(&probe.bundle).arg("state")).ok(), direct_state);

    let direct = mappings(&run(exec(plain).arg("maps")).ok());
    let maps = run(exec(&probe.bundle).arg("maps")).ok();
    let mapped = mappings(&maps);
    let bundle = probe.bundle.to_str().unwrap();
    // The program's own segments and bss, at the same addresses with the
    // same protections; the file is the bundle.
    let program = |m: &Vec<(u64, u64, String, String)>| -> Vec<(u64, u64, String)> {
        m.iter()
            .filter(|(start, ..)| *start < LAUNCHER_START)
            .map(|(s, e, p, _)| (*s, *e, p.clone()))
            .collect()
    };
    assert_eq!(program(&mapped), program(&direct), "{maps}");
    assert!(
        mapped
            .iter()
            .filter(|(start, ..)| *start < LAUNCHER_START)
            .all(|(.., path)| path.is_empty() || path == bundle),
        "{maps}"
    );
    // Of the launcher: the page or two that held the jump into the program,
    // read-only code of the bundle file; the page of gdb's JIT descriptor;
    // and the page that names the level.
    let launcher: Vec<_> = mapped
        .iter()
        .filter(|(start, ..)| (LAUNCHER_START..LAUNCHER_END).contains(start))
        .collect();
    let code: Vec<_> = launcher.iter().filter(|(.., p, _)| p == "r-xp").collect();
    assert!(!code.is_empty(), "{maps}");
    assert!(
        code.iter().map(|(s, e, ..)| e - s).sum::<u64>() <= 2 * 4096,
        "{maps}"
    );
    let data: Vec<_> = launcher.iter().filter(|(.., p, _)| p == "rw-p").collect();
    assert_eq!(
        data.iter().map(|(s, e, ..)| e - s).sum::<u64>(),
        4096,
        "{maps}"
    );
    assert_eq!(code.len() + data.len(), launcher.len(), "{maps}");
    assert!(launcher.iter().all(|(.., path)| path == bundle), "{maps}");
    assert_eq!(
        maps.lines()
            .filter(|l| l.starts_with(&marker(level)))
            .count(),
        1,
        "{maps}"
    );
    assert!(!maps.contains("memfd"), "{maps}");
    // The level's whole file, read-only from the bundle, for gdb's JIT
    // interface: address space, no page read unless a debugger reads it;
    // shared, so that it shows the file, not a uprobe's breakpoints.
    let size = std::fs::metadata(plain).unwrap().len();
    let image: Vec<_> = mapped
        .iter()
        .filter(|(start, end, perms, path)| {
            *start >= LAUNCHER_END
                && perms == "r--s"
                && path == bundle
                && end - start == size.div_ceil(4096) * 4096
        })
        .collect();
    assert_eq!(image.len(), 1, "{maps}");
    // Nothing else maps a file: not the bundle's segment the launcher read,
    // not an interpreter (hello is static).
    for mapping @ (start, _, _, path) in &mapped {
        let special = path.is_empty() || path.starts_with('[');
        assert!(
            special || (path == bundle && *start < LAUNCHER_END) || image.contains(&mapping),
            "{maps}"
        );
    }
    // No thread stack of the launcher (an inaccessible guard page, then
    // 128 KiB): its threads are gone and so are their stacks.
    for pair in mapped.windows(2) {
        let [(s0, e0, p0, _), (s1, e1, p1, _)] = pair else {
            continue;
        };
        assert!(
            !(e0 - s0 == 4096 && p0 == "---p" && e0 == s1 && e1 - s1 == 128 * 1024 && p1 == "rw-p"),
            "a launcher thread's stack is left: {maps}"
        );
    }
    // Everything else is the Go runtime's: its address space is what a
    // direct run uses (which itself varies by a few hundred KiB from run to
    // run), plus the documented pages.
    let outside = |m: &[(u64, u64, String, String)]| -> u64 {
        m.iter()
            .filter(|(start, ..)| *start >= LAUNCHER_END)
            .filter(|mapping| !image.contains(mapping))
            .map(|(s, e, ..)| e - s)
            .sum()
    };
    let most_direct = (0..3)
        .map(|_| outside(&mappings(&run(exec(plain).arg("maps")).ok())))
        .chain([outside(&direct)])
        .max()
        .unwrap();
    assert!(
        outside(&mapped) <= most_direct + 4096,
        "{} bytes against at most {most_direct} in direct runs:\n{maps}",
        outside(&mapped)
    );
}

/// A cgo program whose library sits next to it, found through `$ORIGIN` in
/// its run path: the dynamic loader takes the origin from /proc/self/exe.
#[test]
fn a_cgo_program_finds_its_library_through_origin() {
    let gcc = require("gcc");
    let src = scratch();
    go_module(
        src.path(),
        "example.com/origin",
        &[
            ("c/foo.c", "int foo(void) { return 42; }\n"),
            (
                "main.go",
                "package main\n\n// #cgo LDFLAGS: -L${SRCDIR} -lfoo -Wl,-rpath,$ORIGIN\n// int foo(void);\nimport \"C\"\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"foo says\", C.foo()) }\n",
            ),
        ],
    );
    run(Command::new(gcc)
        .args(["-shared", "-fPIC", "-o"])
        .arg(src.path().join("libfoo.so"))
        .arg(src.path().join("c/foo.c")))
    .ok();
    let dist = scratch();
    run(mgo(src.path()).arg("-o").arg(dist.path().join("app"))).ok();
    fs::rename(src.path().join("libfoo.so"), dist.path().join("libfoo.so")).unwrap();
    let elsewhere = scratch();
    let app = dist.path().join("app");
    let out = run(exec(&app).current_dir(elsewhere.path()));
    assert_eq!(out.ok(), "foo says 42\n");
    // Through a memfd, the origin is the memfd's name: not found.
    let out = run(exec_as(Launch::Memfd, &app).current_dir(elsewhere.path()));
    assert_eq!(out.status.code(), Some(127), "{out:?}");
    assert!(out.stderr.contains("libfoo.so"), "{out:?}");
}

/// Proportional memory of `pids`, and their shared memory, in kB.
fn memory(pids: &[u32]) -> (u64, u64) {
    let (mut pss, mut shmem) = (0, 0);
    for pid in pids {
        let rollup = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap();
        for line in rollup.lines() {
            let value =
                |line: &str| -> u64 { line.split_whitespace().nth(1).unwrap().parse().unwrap() };
            if line.starts_with("Pss:") {
                pss += value(line);
            } else if line.starts_with("Pss_Shmem:") {
                shmem += value(line);
            }
        }
    }
    (pss, shmem)
}

/// Starts `count` instances of `command` that wait for stdin to close, each
/// once it has said it runs.
fn running(count: usize, command: &mut dyn FnMut() -> Command) -> Vec<Child> {
    (0..count)
        .map(|_| {
            let mut child = command()
                .arg("sleep")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let mut line = String::new();
            BufReader::new(child.stdout.as_mut().unwrap())
                .read_line(&mut line)
                .unwrap();
            assert_eq!(line, "ready\n");
            child
        })
        .collect()
}

fn stop(children: Vec<Child>) {
    for mut child in children {
        drop(child.stdin.take());
        child.wait().unwrap();
    }
}

/// Twenty running instances of a mapped bundle use what twenty direct runs
/// use: the page cache is shared, nothing is copied into shared memory.
#[test]
fn running_instances_share_the_bundles_pages() {
    let probe = probe();
    let plain = probe.plain(host_level()).to_path_buf();
    let bundle = probe.bundle.clone();
    let direct = running(20, &mut || exec(&plain));
    let mapped = running(20, &mut || exec(&bundle));
    let memfd = running(20, &mut || exec_as(Launch::Memfd, &bundle));
    let pids = |children: &[Child]| -> Vec<u32> { children.iter().map(Child::id).collect() };
    let (direct_pss, direct_shmem) = memory(&pids(&direct));
    let (mapped_pss, mapped_shmem) = memory(&pids(&mapped));
    let (memfd_pss, memfd_shmem) = memory(&pids(&memfd));
    stop(direct);
    stop(mapped);
    stop(memfd);
    assert_eq!((direct_shmem, mapped_shmem), (0, 0));
    assert!(
        mapped_pss * 10 <= direct_pss * 11,
        "mapped {mapped_pss} kB, direct {direct_pss} kB"
    );
    // The memfd start is what this saves: a private copy each.
    assert!(
        memfd_shmem > 20 * 1024,
        "memfd {memfd_pss} kB, {memfd_shmem} kB shared memory"
    );
}

/// Builds the seccomp helper that forbids memfd_create.
fn deny_memfd() -> std::path::PathBuf {
    let gcc = require("gcc");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("deny_memfd");
    run(Command::new(gcc)
        .arg("-O2")
        .arg("-o")
        .arg(&out)
        .arg(testdata("seccomp/deny_memfd.c")))
    .ok();
    out
}

#[test]
fn a_seccomp_policy_against_memfds_stops_only_the_memfd_start() {
    let hello = hello();
    let helper = deny_memfd();
    let out = run(exec(&helper).arg(&hello.bundle));
    assert_eq!(
        out.ok(),
        format!("hello, world (GOAMD64=v{})\n", host_level())
    );
    let out = run(exec_as(Launch::Memfd, &helper).arg(&hello.bundle));
    assert_launcher_failure(
        &out,
        126,
        "cannot create a memfd for the variant: operation not permitted (EPERM)",
    );
}

/// A variant linked where the launcher lives cannot be mapped there: it
/// starts through a memfd, and MGODEBUG=log says why.
#[test]
fn a_variant_over_the_launcher_falls_back_to_a_memfd() {
    let dir = scratch();
    go_module(
        dir.path(),
        "example.com/high",
        &[(
            "main.go",
            "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"high\") }\n",
        )],
    );
    let bundle = dir.path().join("high");
    run(mgo(dir.path())
        .args(["-ldflags=-T=0x40001000", "-o"])
        .arg(&bundle))
    .ok();
    let out = run(exec(&bundle).env("MGODEBUG", "log"));
    assert_eq!(out.ok(), "high\n");
    assert_eq!(
        launcher_lines(&out.stderr),
        [format!(
            "[mgo] launcher: starting variant GOAMD64=v{} (memfd; cannot map it: its addresses are taken (by the launcher?))",
            host_level()
        )]
    );
}

/// A setuid bundle: the kernel marks the start secure, and MGODEBUG must not
/// hand the program to a user who may not read the file.
#[test]
fn a_privileged_start_ignores_mgodebug() {
    let setpriv = require("setpriv");
    let hello = hello();
    // A directory anybody may enter (the scratch directories are private).
    let dir = tempfile::Builder::new()
        .prefix("mgo-setuid-")
        .tempdir()
        .unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let bundle = dir.path().join("hello");
    install_exe(&hello.bundle, &bundle, 0o4711);
    let as_nobody = |debug: &str| {
        run(Command::new(&setpriv)
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&bundle)
            .env("MGODEBUG", debug)
            .env_remove("GOAMD64"))
    };
    let expected = format!("hello, world (GOAMD64=v{})\n", host_level());
    let cat = run(Command::new(&setpriv)
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "cat"])
        .arg(&bundle));
    assert!(!cat.status.success(), "the file is readable: {cat:?}");
    let quiet = as_nobody("extract");
    assert_eq!(quiet.ok(), expected);
    assert!(quiet.stderr.is_empty(), "{quiet:?}");
    let logged = as_nobody("extract,log");
    assert_eq!(logged.ok(), expected);
    assert_eq!(
        launcher_lines(&logged.stderr),
        [
            "[mgo] launcher: ignoring MGODEBUG: the program runs with elevated privileges (AT_SECURE)"
        ]
    );
    // For its owner, MGODEBUG works as ever.
    let extracted = run(exec(&bundle).env("MGODEBUG", "extract"));
    assert!(extracted.stdout == fs::read(hello.plain(host_level())).unwrap());
}

/// `MGO_LAUNCH=memfd` at build time makes the memfd start the bundle's
/// default; MGODEBUG cannot turn it back, but it still extracts.
#[test]
fn mgo_launch_memfd_makes_a_bundle_start_through_a_memfd() {
    let dir = scratch();
    let bundle = dir.path().join("hello");
    run(mgo(&example("hello"))
        .env("MGO_LAUNCH", "memfd")
        .arg("-o")
        .arg(&bundle))
    .ok();
    let Bundle { bytes, table, .. } = read_bundle(&bundle);
    assert!(table.memfd_by_default());
    let level = host_level();
    let out = run(exec(&bundle).env("MGODEBUG", "log"));
    assert_eq!(out.ok(), format!("hello, world (GOAMD64=v{level})\n"));
    assert_eq!(
        launcher_lines(&out.stderr),
        [starting(level, Launch::Memfd)]
    );
    let greeted = run(exec(&bundle).arg("x")).ok();
    assert_eq!(greeted, format!("hello, x (GOAMD64=v{level})\n"));
    // The same build otherwise: only the table's flag differs.
    let mapped = fs::read(&hello().bundle).unwrap();
    assert_eq!(bytes.len(), mapped.len());
    let differing = bytes.iter().zip(&mapped).filter(|(a, b)| a != b).count();
    assert!(differing <= 12, "{differing} bytes differ");
    for value in ["", "mapped"] {
        let again = dir.path().join(format!("hello-{value}"));
        run(mgo(&example("hello"))
            .env("MGO_LAUNCH", value)
            .arg("-o")
            .arg(&again))
        .ok();
        assert!(fs::read(&again).unwrap() == mapped, "MGO_LAUNCH={value:?}");
    }
}

/// Peak memory of `command`, run under GNU time, in KiB.
fn peak_kib(command: &mut Command) -> u64 {
    let out = run(command);
    assert!(out.status.success(), "{out:?}");
    out.stderr
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak in {:?}", out.stderr))
}

/// The default start checks a level once per version of the bundle file
/// and user (a mark in the user's cache): a later start reads only the
/// pages the program touches, and holds no more memory than the plain
/// build run directly (within 0.5 MiB), where the first start reads every
/// loadable byte. A copy of the bundle is another file: checked again.
#[test]
fn a_bundle_is_checked_once_then_starts_in_a_plain_builds_memory() {
    let time = require("time");
    let vet = vet();
    let plain = vet.plain(host_level());
    let cache = scratch();
    let peak = |program: &Path| {
        peak_kib(
            Command::new(&time)
                .args(["-f", "%M"])
                .arg(program)
                .arg("-V=full")
                .env("MGOCACHE", cache.path())
                .env_remove("MGODEBUG")
                .env_remove("GOAMD64")
                .stdout(std::process::Stdio::null()),
        )
    };
    let first = peak(&vet.bundle);
    let marks = |cache: &Path| -> Vec<String> {
        files_in(&cache.join("builds"))
            .into_iter()
            .filter(|n| n.starts_with(".bundle-v"))
            .collect()
    };
    assert_eq!(marks(cache.path()).len(), 1, "{:?}", marks(cache.path()));
    let later = peak(&vet.bundle);
    let direct = (0..3).map(|_| peak(plain)).min().unwrap();
    assert!(
        later <= direct + 512,
        "a later start peaked at {later} KiB, the plain build at {direct} KiB"
    );
    assert!(
        first > later + 1024,
        "the first start ({first} KiB) read no more than a later one ({later} KiB)"
    );
    let copy = scratch();
    let copied = copy.path().join("vet");
    copy_exe(&vet.bundle, &copied);
    peak(&copied);
    assert_eq!(marks(cache.path()).len(), 2, "{:?}", marks(cache.path()));
}
