//! Profilers and debuggers, run as their users run them, see the program
//! inside a bundle as they see its plain build: the function the program
//! spends its time in (testdata/spin, `main.spin`), by name.

use crate::support::*;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// A static Go program that spins in `main.spin`.
fn spin() -> &'static Built {
    built("spin", &testdata("spin"), &[], "./static")
}

/// Its twin linked by the C toolchain (an interpreter, a PLT).
fn spin_cgo() -> &'static Built {
    built("spin-cgo", &testdata("spin"), &[], "./cgo")
}

/// Enough rounds of `main.spin` for a few hundred samples.
const ROUNDS: &str = "300000000";

/// The functions of the call chains `perf record -g` sampled while
/// `program` ran with `env`, as `perf script` names them.
fn perf_frames(program: &Path, env: &[(&str, &str)]) -> BTreeSet<String> {
    let perf = require("perf");
    let dir = scratch();
    let data = dir.path().join("perf.data");
    run(Command::new(&perf)
        .args(["record", "-q", "-g", "-o"])
        .arg(&data)
        .arg("--")
        .arg(program)
        .arg(ROUNDS)
        .env_remove("MGODEBUG")
        .env_remove("GOAMD64")
        .envs(env.iter().copied()))
    .ok();
    let script = run(Command::new(&perf)
        .args(["script", "-F", "ip,sym", "-i"])
        .arg(&data))
    .ok();
    script
        .lines()
        .filter_map(|line| line.split_whitespace().nth(1))
        .map(str::to_owned)
        .collect()
}

/// `perf record -g` then `perf script`, on an uncompressed bundle started
/// the default way (mapped from the bundle), names the program's functions
/// and their callers as it does for the plain build: the bundle's symbol
/// table locates each level's functions where that level lies in the file.
#[test]
fn perf_names_the_functions_of_an_uncompressed_bundle() {
    for program in [spin(), spin_cgo()] {
        // main.spin is a leaf without a frame pointer of its own, so the
        // frame-pointer chain of its samples skips main.main.
        let wanted = ["main.spin", "runtime.main"];
        let plain = perf_frames(program.plain(host_level()), &[]);
        for name in wanted {
            assert!(
                plain.contains(name),
                "{}: plain build: {plain:?}",
                program.key
            );
        }
        let bundle = perf_frames(&program.bundle, &[]);
        for name in wanted {
            assert!(bundle.contains(name), "{}: bundle: {bundle:?}", program.key);
        }
    }
}

/// Every thread's frames as `gdb -batch` prints them for `target` (`-p
/// PID`, or a core file) with `executable` as the program's file.
fn gdb_frames(executable: Option<&Path>, target: &[&std::ffi::OsStr]) -> String {
    let mut command = Command::new(require("gdb"));
    command.args(["-nx", "-batch", "-ex", "thread apply all bt"]);
    if let Some(executable) = executable {
        command.arg(executable);
    }
    run(command.args(target)).ok()
}

/// `mgo extract -pid` and `mgo extract -core` write the build a process
/// runs, whichever way it started (mapped from the bundle, decoded from a
/// compressed one, through a memfd) and whichever level it chose; with it,
/// gdb shows the Go frames of the process and of its core as it does for
/// the plain build. A core made by gcore, which changes no system setting.
#[test]
fn extract_names_the_build_a_process_or_a_core_runs_for_gdb() {
    let level = 2;
    for program in [spin(), spin_cgo()] {
        let plain = program.plain(level);
        let plain_process = Spinning::start(plain, &[]);
        let frames = gdb_frames(None, &[os("-p"), os(&plain_process.pid())]);
        assert!(frames.contains(" main.spin ("), "plain build: {frames}");
        drop(plain_process);
        let compressed = program.compressed("z3");
        for (bundle, debug) in [
            (program.bundle.as_path(), ""),
            (compressed, ""),
            (program.bundle.as_path(), "memfd"),
        ] {
            let case = format!("{} {bundle:?} MGODEBUG={debug}", program.key);
            let goamd64 = format!("v{level}");
            let process = Spinning::start(bundle, &[("GOAMD64", &goamd64), ("MGODEBUG", debug)]);
            let dir = scratch();
            let from_process = dir.path().join("from-process");
            run(mgo(dir.path())
                .args(["extract", "-pid", &process.pid(), "-o"])
                .arg(&from_process))
            .ok();
            assert!(
                std::fs::read(&from_process).unwrap() == std::fs::read(plain).unwrap(),
                "{case}: -pid wrote another build than v{level}"
            );
            let frames = gdb_frames(Some(&from_process), &[os("-p"), os(&process.pid())]);
            assert!(frames.contains(" main.spin ("), "{case}: {frames}");

            let core = process.core_in(dir.path());
            drop(process);
            let from_core = dir.path().join("from-core");
            run(mgo(dir.path())
                .args(["extract", "-core"])
                .arg(&core)
                .arg("-o")
                .arg(&from_core))
            .ok();
            assert!(
                std::fs::read(&from_core).unwrap() == std::fs::read(plain).unwrap(),
                "{case}: -core wrote another build than v{level}"
            );
            let frames = gdb_frames(Some(&from_core), &[core.as_os_str()]);
            assert!(frames.contains(" main.spin ("), "{case}: core: {frames}");
        }
    }
}

/// What `mgo extract -core` refuses, in one line, writing nothing.
#[test]
fn extract_refuses_what_is_not_a_core_or_not_the_bundles() {
    let dir = scratch();
    let out = dir.path().join("out");
    let not_core = run(mgo(dir.path())
        .args(["extract", "-core"])
        .arg(&spin().bundle)
        .arg("-o")
        .arg(&out));
    assert_eq!(not_core.status.code(), Some(1), "{not_core:?}");
    assert!(
        not_core
            .stderr
            .contains("is not a core file of an x86-64 process"),
        "{not_core:?}"
    );
    // A core of another program, read against the bundle: no level of the
    // bundle ran in it.
    let plain = Spinning::start(spin_cgo().plain(2), &[]);
    let core = plain.core_in(dir.path());
    drop(plain);
    let other = run(mgo(dir.path())
        .args(["extract", "-core"])
        .arg(&core)
        .arg("-o")
        .arg(&out)
        .arg(&spin().bundle));
    assert_eq!(other.status.code(), Some(1), "{other:?}");
    assert!(
        other.stderr.contains("does not show which level of"),
        "{other:?}"
    );
    let unnamed = run(mgo(dir.path())
        .args(["extract", "-core"])
        .arg(&core)
        .arg("-o")
        .arg(&out));
    assert_eq!(unnamed.status.code(), Some(1), "{unnamed:?}");
    assert!(
        unnamed
            .stderr
            .contains("does not say which bundle it comes from"),
        "{unnamed:?}"
    );
    assert!(!out.exists());
}

/// gdb, with no setup, on an uncompressed bundle started the default way:
/// attached to the process, on a core of it, and running it from the
/// start with a breakpoint set before the program exists (pending, as for
/// a function of a library not loaded yet). The launcher registers the
/// level's file with gdb's JIT interface.
#[test]
fn gdb_shows_the_go_frames_of_an_uncompressed_bundle_as_it_is() {
    for program in [spin(), spin_cgo()] {
        let case = &program.key;
        let process = Spinning::start(&program.bundle, &[]);
        let frames = gdb_frames(None, &[os("-p"), os(&process.pid())]);
        assert!(
            frames.contains(" main.spin ("),
            "{case}: attached: {frames}"
        );
        let dir = scratch();
        let core = process.core_in(dir.path());
        drop(process);
        let frames = gdb_frames(Some(&program.bundle), &[core.as_os_str()]);
        assert!(frames.contains(" main.spin ("), "{case}: core: {frames}");

        let stopped = run(Command::new(require("gdb"))
            .args(["-nx", "-batch", "-ex", "set breakpoint pending on"])
            .args([
                "-ex",
                "break main.spin",
                "-ex",
                "run",
                "-ex",
                "bt",
                "--args",
            ])
            .arg(&program.bundle)
            .arg("1000")
            .env_remove("MGODEBUG")
            .env_remove("GOAMD64"))
        .ok();
        assert!(
            stopped.contains("hit Breakpoint 1, main.spin ("),
            "{case}: run: {stopped}"
        );
    }
}

/// `goroutines` as Delve prints them for `args` (`core EXE CORE`, or
/// `attach PID`), non-interactively.
fn delve_goroutines(args: &[&std::ffi::OsStr]) -> String {
    let dir = scratch();
    let commands = dir.path().join("commands");
    std::fs::write(&commands, "goroutines\nexit\n").unwrap();
    let mut command = Command::new(delve());
    command
        .args(args)
        .args(["--allow-non-terminal-interactive=true", "--init"])
        .arg(&commands)
        .current_dir(dir.path());
    let out = run(&mut command);
    format!("{}{}", out.stdout_text(), out.stderr)
}

/// Delve reads a core's auxiliary vector for the program's entry point,
/// which the mapped start hands the kernel: with the build `mgo extract
/// -core` writes, `dlv core` shows the goroutine in `main.spin`, for an
/// uncompressed and a compressed bundle. `dlv attach` reads only
/// `/proc/PID/exe`: it works for a memfd start, whose executable is the
/// build.
#[test]
fn delve_debugs_a_core_through_extract_and_attaches_to_a_memfd_start() {
    let program = spin();
    for bundle in [program.bundle.as_path(), program.compressed("z3")] {
        let process = Spinning::start(bundle, &[]);
        let dir = scratch();
        let core = process.core_in(dir.path());
        drop(process);
        let level = dir.path().join("app.level");
        run(mgo(dir.path())
            .args(["extract", "-core"])
            .arg(&core)
            .arg("-o")
            .arg(&level))
        .ok();
        let shown = delve_goroutines(&[os("core"), level.as_os_str(), core.as_os_str()]);
        assert!(shown.contains(" main.spin ("), "{bundle:?}: {shown}");
    }
    let process = Spinning::start(&program.bundle, &[("MGODEBUG", "memfd")]);
    let shown = delve_goroutines(&[os("attach"), os(&process.pid())]);
    assert!(shown.contains(" main.spin ("), "memfd start: {shown}");
}

/// The eBPF profilers' contract (the OpenTelemetry profiler's, which Parca
/// and Grafana Alloy build on): every executable mapping of the program
/// comes from a file whose ELF, read from its first byte, has a PF_X
/// PT_LOAD covering the mapping's file offset, and a `.gopclntab`. The
/// file start gives that for a compressed bundle too, and perf names its
/// functions.
#[test]
fn the_file_start_meets_the_ebpf_profilers_contract_and_perf_names_functions() {
    use object::read::elf::{FileHeader, ProgramHeader};
    let program = spin();
    let cache = scratch();
    for bundle in [program.bundle.as_path(), program.compressed("z3")] {
        let env = [
            ("MGODEBUG", "file"),
            ("MGOCACHE", cache.path().to_str().unwrap()),
        ];
        let process = Spinning::start(bundle, &env);
        let maps = std::fs::read_to_string(format!("/proc/{}/maps", process.pid())).unwrap();
        let mut checked = 0;
        for line in maps.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (range, perms, offset) = (fields[0], fields[1], fields[2]);
            let start = u64::from_str_radix(range.split('-').next().unwrap(), 16).unwrap();
            // The launcher's kept page of code is not the program's.
            if !perms.contains('x') || (0x4000_0000..0x4100_0000).contains(&start) {
                continue;
            }
            let path = fields.get(5).copied().unwrap_or("");
            if path.starts_with('[') {
                continue;
            }
            let offset = u64::from_str_radix(offset, 16).unwrap();
            let file = std::fs::read(path).unwrap_or_else(|e| panic!("{line}: {e}"));
            let header = object::elf::FileHeader64::<object::LittleEndian>::parse(&*file)
                .unwrap_or_else(|e| panic!("{line}: not ELF from its first byte: {e}"));
            let endian = object::LittleEndian;
            let covered = header
                .program_headers(endian, &*file)
                .unwrap()
                .iter()
                .any(|p| {
                    p.p_type(endian) == object::elf::PT_LOAD
                        && p.p_flags(endian).0 & object::elf::PF_X.0 != 0
                        && p.p_offset(endian) & !0xfff <= offset
                        && offset < p.p_offset(endian) + p.p_filesz(endian)
                });
            assert!(covered, "{line}: no PF_X PT_LOAD covers the offset");
            let sections = header.sections(endian, &*file).unwrap();
            assert!(
                sections.section_by_name(endian, b".gopclntab").is_some(),
                "{line}: no .gopclntab"
            );
            checked += 1;
        }
        assert!(checked >= 1, "{maps}");
        drop(process);

        let frames = perf_frames(bundle, &env);
        assert!(frames.contains("main.spin"), "{bundle:?}: {frames:?}");
    }
}

/// The hits of a uprobe set by function name on `file` (`perf probe -x FILE
/// main.spin`, as bpftrace's `uprobe:FILE:main.spin` sets one) while
/// `program` spins once, as `perf script` prints them, and the program's
/// output. tracefs is mounted in a private mount namespace; the probe, a
/// kernel-wide event, is named after this process and removed on the way
/// out.
fn uprobe_hits(file: &Path, program: &Path, env: &[(&str, &str)]) -> (Vec<String>, String) {
    let perf = require("perf");
    let dir = scratch();
    let group = format!("mgotest{}", std::process::id());
    let script = r#"
        set -e
        mount -t tracefs nodev /sys/kernel/tracing
        trap 'perf probe -q -d "$GROUP:*"' EXIT
        perf probe -q -x "$FILE" "$GROUP:spin=main.spin"
        perf record -q -e "$GROUP:spin" -o "$DIR/perf.data" -- "$PROGRAM" 1000 >"$DIR/out"
        perf script -i "$DIR/perf.data" -F comm,event,ip
    "#;
    let out = run(Command::new(require("unshare"))
        .args(["--mount", "--propagation", "private", "sh", "-c", script])
        .env(
            "PATH",
            format!(
                "{}:{}",
                perf.parent().unwrap().display(),
                std::env::var("PATH").unwrap()
            ),
        )
        .env("GROUP", &group)
        .env("FILE", file)
        .env("PROGRAM", program)
        .env("DIR", dir.path())
        .env_remove("MGODEBUG")
        .env_remove("GOAMD64")
        .envs(env.iter().copied()));
    let hits = out.ok();
    let printed = std::fs::read_to_string(dir.path().join("out")).unwrap();
    (hits.lines().map(str::to_owned).collect(), printed)
}

/// A uprobe by function name on the bundle fires where the program runs,
/// once per call as on the plain build: perf (and bpftrace) take the
/// function's file offset from the bundle's symbol table, and the launcher
/// checks a level as the file holds it, not through the program's pages
/// where the kernel writes the probe's breakpoint. The bundle is a fresh
/// copy with a cache of its own, so this start is its first and checks.
#[test]
fn uprobes_by_function_name_fire_in_a_bundle_as_in_its_plain_build() {
    for program in [spin(), spin_cgo()] {
        let dir = scratch();
        let bundle = dir.path().join("bundle");
        install_exe(&program.bundle, &bundle, 0o755);
        let plain = program.plain(host_level());
        let (plain_hits, plain_printed) = uprobe_hits(plain, plain, &[]);
        assert_eq!(
            plain_hits.len(),
            1,
            "{}: plain build: {plain_hits:?}",
            program.key
        );
        let cache = dir.path().join("cache");
        let env = [("MGOCACHE", cache.to_str().unwrap())];
        let (hits, printed) = uprobe_hits(&bundle, &bundle, &env);
        assert_eq!(printed, plain_printed, "{}", program.key);
        assert_eq!(hits.len(), 1, "{}: bundle: {hits:?}", program.key);
        assert!(hits[0].contains("spin"), "{}: {hits:?}", program.key);
    }
}
