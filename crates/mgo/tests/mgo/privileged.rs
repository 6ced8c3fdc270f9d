//! Which file a bundle runs, and what it trusts, when the caller is not to
//! be trusted: a privileged start (setuid, setgid: the kernel's AT_SECURE),
//! or a start without /proc. Regression tests for issue 14, item 1: the
//! launcher used to open the path the caller passed to execve (AT_EXECFN)
//! when /proc/self/exe could not be opened, and ran whatever that file held.

use crate::support::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A directory anybody may enter (the scratch directories are private).
fn open_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("mgo-privileged-")
        .tempdir()
        .unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// A `#!` script whose interpreter is `victim`, made of hello's bundle (its
/// first bytes overwritten by the `#!` line) padded to the victim's size:
/// read by the victim's launcher as a bundle, its table lies where the
/// victim's does, and it holds another program.
fn impostor_script(dir: &Path, victim: &Path) -> PathBuf {
    let mut bytes = fs::read(&hello().bundle).unwrap();
    let victim_size = fs::metadata(victim).unwrap().len() as usize;
    assert!(
        bytes.len() <= victim_size,
        "the impostor must not be larger than the victim"
    );
    assert_eq!(
        segment_offset(&hello().bundle),
        segment_offset(victim),
        "both bundles carry the same launcher"
    );
    let shebang = format!("#!{}\n", victim.display());
    bytes[..shebang.len()].copy_from_slice(shebang.as_bytes());
    bytes.resize(victim_size, 0);
    write_exe(&dir.join("script"), &bytes)
}

/// The probe bundle, installed in `dir` as `mode` (root's file).
fn installed_probe(dir: &Path, mode: u32) -> PathBuf {
    let victim = dir.join("probe");
    install_exe(&probe().bundle, &victim, mode);
    victim
}

/// `command` as user and group nobody (65534), without supplementary groups.
fn as_nobody(setpriv: &Path, program: &Path) -> Command {
    let mut command = Command::new(setpriv);
    command
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(program)
        .env_remove("GOAMD64")
        .env_remove("MGODEBUG");
    command
}

/// The attack of issue 14: a setgid bundle that its users may execute but
/// not read (2711), so /proc/self/exe cannot be opened, started through a
/// `#!` script made of another bundle. The launcher must not run the
/// script's program with the bundle's group; it refuses with one line.
#[test]
fn a_privileged_bundle_never_runs_the_file_its_caller_names() {
    let setpriv = require("setpriv");
    let dir = open_dir();
    let victim = installed_probe(dir.path(), 0o2711);
    let script = impostor_script(dir.path(), &victim);

    let out = run(as_nobody(&setpriv, &script).arg("level"));
    assert!(
        !String::from_utf8_lossy(&out.stdout).starts_with("hello,"),
        "the script's program ran with the bundle's privileges: {out:?}"
    );
    assert_launcher_failure(
        &out,
        125,
        "cannot open /proc/self/exe, and a privileged bundle",
    );

    // Through its own path, the same refusal: nothing else can be proven
    // to be the executed file.
    let direct = run(as_nobody(&setpriv, &victim).arg("level"));
    assert_launcher_failure(
        &direct,
        125,
        "cannot open /proc/self/exe, and a privileged bundle",
    );

    // A setgid bundle its users may read runs as ever, its own program
    // (the probe, which takes the script's path, its first argument, for
    // an unknown command).
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o2755)).unwrap();
    let readable = run(as_nobody(&setpriv, &script).arg("level"));
    assert_eq!(readable.status.code(), Some(3), "{readable:?}");
    assert!(
        readable.stderr.starts_with("probe: unknown command"),
        "{readable:?}"
    );
    let direct = run(as_nobody(&setpriv, &victim).arg("level"));
    assert_eq!(direct.ok(), format!("v{}\n", host_level()));
}

/// The same attack on a bundle with file capabilities (AT_SECURE without a
/// change of user or group) that its users may execute but not read.
#[test]
fn a_bundle_with_file_capabilities_never_runs_the_file_its_caller_names() {
    let setpriv = require("setpriv");
    let setcap = require("setcap");
    let dir = open_dir();
    let victim = installed_probe(dir.path(), 0o711);
    run(Command::new(setcap)
        .arg("cap_net_bind_service+ep")
        .arg(&victim))
    .ok();
    let script = impostor_script(dir.path(), &victim);
    let out = run(as_nobody(&setpriv, &script).arg("level"));
    assert!(
        !String::from_utf8_lossy(&out.stdout).starts_with("hello,"),
        "the script's program ran with the bundle's capabilities: {out:?}"
    );
    assert_launcher_failure(
        &out,
        125,
        "cannot open /proc/self/exe, and a privileged bundle",
    );
}

/// The same attack on a setuid-root bundle where /proc is missing (a bare
/// chroot or container): euid 0 could open any path, so only the absence
/// of a path fallback stops the script's program from running as root.
#[test]
fn a_setuid_root_bundle_without_proc_never_runs_the_file_its_caller_names() {
    let unshare = require("unshare");
    let setpriv = require("setpriv");
    let dir = open_dir();
    let victim = installed_probe(dir.path(), 0o4755);
    let script = impostor_script(dir.path(), &victim);
    let shell = format!(
        "mount -t tmpfs none /proc && test ! -e /proc/self && \
         exec {} --reuid=65534 --regid=65534 --clear-groups {} level",
        setpriv.display(),
        script.display()
    );
    let out = run(Command::new(&unshare)
        .args(["--mount", "sh", "-c", &shell])
        .env_remove("GOAMD64")
        .env_remove("MGODEBUG"));
    assert!(
        !String::from_utf8_lossy(&out.stdout).starts_with("hello,"),
        "the script's program ran as root: {out:?}"
    );
    assert_launcher_failure(
        &out,
        125,
        "cannot open /proc/self/exe, and a privileged bundle",
    );
}

/// Without /proc, an ordinary start opens the path given to execve, and
/// runs it only if its table is the one the kernel mapped from the file it
/// executed. A `#!` script naming a bundle is such a path that is not the
/// bundle: refused, never run.
#[test]
fn without_proc_a_bundle_runs_only_the_file_that_was_executed() {
    let unshare = require("unshare");
    let dir = open_dir();
    let victim = installed_probe(dir.path(), 0o755);
    let script = impostor_script(dir.path(), &victim);
    let without_proc = |program: &Path| {
        let shell = format!(
            "mount -t tmpfs none /proc && test ! -e /proc/self && exec {} level",
            program.display()
        );
        run(Command::new(&unshare)
            .args(["--mount", "sh", "-c", &shell])
            .env_remove("GOAMD64")
            .env_remove("MGODEBUG"))
    };

    let out = without_proc(&script);
    assert!(
        !String::from_utf8_lossy(&out.stdout).starts_with("hello,"),
        "the script's program ran: {out:?}"
    );
    assert_launcher_failure(&out, 125, "is not the bundle that was started");

    // The bundle itself, started by its path, is that file.
    let direct = without_proc(&victim);
    assert_eq!(direct.ok(), format!("v{}\n", host_level()));
}

/// glibc drops its CPU-selection knobs in a privileged start; the launcher
/// ignores GOAMD64 there too, so that a caller cannot steer a setuid
/// program to a build of its choosing (docs/LAUNCHER.md, "Privileged
/// bundles").
#[test]
fn a_privileged_start_detects_the_cpu_whatever_goamd64_says() {
    let setpriv = require("setpriv");
    let dir = open_dir();
    let victim = installed_probe(dir.path(), 0o4755);
    let level = host_level();
    let other = if level == 1 { 2 } else { 1 };
    let out = run(as_nobody(&setpriv, &victim)
        .arg("level")
        .env("GOAMD64", format!("v{other}")));
    assert_eq!(out.ok(), format!("v{level}\n"));
    // For an ordinary start, GOAMD64 still chooses.
    let ordinary = run(exec(&victim)
        .arg("level")
        .env("GOAMD64", format!("v{other}")));
    assert_eq!(ordinary.ok(), format!("v{other}\n"));
}
