//! mgo used as a hostile user would: device nodes and FIFOs as -o,
//! signals at the worst moment, SIGKILL, closed output pipes, JSON output,
//! flags in the wrong place. One regression test per defect found so.

use crate::support::*;
use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn broken_module(dir: &Path) {
    go_module(
        dir,
        "example.com/broken",
        &[("main.go", "package main\n\nfunc main() { undefined() }\n")],
    );
}

/// The PIDs whose parent is `pid`.
fn children(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces; split after ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let ppid = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok());
        if ppid == Some(pid) {
            found.extend(
                entry
                    .file_name()
                    .to_str()
                    .and_then(|n| n.parse::<u32>().ok()),
            );
        }
    }
    found
}

/// Lines of `ps` that mention `path`.
fn processes_mentioning(path: &Path) -> Vec<String> {
    let ps = run(Command::new(require("ps")).args(["-eo", "stat,args"])).ok();
    ps.lines()
        .filter(|l| l.contains(path.to_str().unwrap()) && !l.starts_with('Z'))
        .map(str::to_owned)
        .collect()
}

fn signal(child: &Child, signal: rustix::process::Signal) {
    rustix::process::kill_process(rustix::process::Pid::from_child(child), signal).unwrap();
}

/// Starts mgo on hello with a slow compression mode and returns once its
/// builds are done: mgo then runs no more go, it is compressing.
fn compressing(output: &Path, tmpdir: &Path) -> Child {
    let before = files_in(tmpdir);
    let mut child = mgo(&example("hello"))
        .arg("-o")
        .arg(output)
        .arg(".")
        .env("MGO_COMPRESS", "Z22")
        .env("MGOCACHE", "off")
        .env("TMPDIR", tmpdir)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // No children alone is not enough: mgo has none between `go env` and
    // the builds, nor between two builds when it runs fewer at a time.
    let every_level_built = || {
        files_in(tmpdir)
            .iter()
            .filter(|name| !before.contains(name))
            .any(|name| (1..=4).all(|l| tmpdir.join(name).join(format!("v{l}/out")).exists()))
    };
    assert!(
        wait_until(Duration::from_secs(300), Some(&mut child), || {
            every_level_built() && children(pid).is_empty()
        }),
        "timed out waiting until the builds end"
    );
    child
}

/// Defect 1: as root, `-o` naming the null device in another spelling, a
/// symlink to it, another character device or a FIFO must never replace
/// the node; a block device is refused.
#[test]
fn device_nodes_and_fifos_are_written_into_never_replaced() {
    require("unshare");
    let script = r#"
set -e
mount -t tmpfs tmpfs /dev
mknod -m 666 /dev/null c 1 3
mknod -m 666 /dev/zero c 1 5
mknod -m 600 /dev/loop9 b 7 9
ln -s /dev/null /dev/link
for out in //dev/null /dev/./null /dev/../dev/null /dev/link /dev/zero; do
  "$MGO" -o "$out" . || echo "failed: $out"
done
"$MGO" -o /dev/loop9 . 2>&1 || true
stat -c '%n %F %t:%T' /dev/null /dev/zero /dev/loop9
"#;
    let out = run(Command::new("unshare")
        .args(["-m", "sh", "-c", script])
        .current_dir(example("hello"))
        .env("MGO", env!("CARGO_BIN_EXE_mgo"))
        .env("MGOCACHE", "off")
        .env_remove("GOAMD64")
        .env_remove("GOFLAGS"));
    let text = out.ok();
    assert!(!text.contains("failed:"), "{text}\n{}", out.stderr);
    assert!(
        text.contains("/dev/null character special file 1:3"),
        "{text}"
    );
    assert!(
        text.contains("/dev/zero character special file 1:5"),
        "{text}"
    );
    assert!(text.contains("/dev/loop9 block special file 7:9"), "{text}");
    assert!(
        text.contains("mgo: build output /dev/loop9 is a block device: name a file, a directory or /dev/null with -o"),
        "{text}"
    );

    // A FIFO: the bundle streams into it, and the reader gets exactly the
    // bundle a file would hold.
    let dir = scratch();
    let fifo = dir.path().join("fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || fs::read(fifo).unwrap())
    };
    run(mgo(&example("hello"))
        .args(["-trimpath", "-o"])
        .arg(&fifo)
        .arg("."))
    .ok();
    let streamed = reader.join().unwrap();
    let file = dir.path().join("file");
    run(mgo(&example("hello"))
        .args(["-trimpath", "-o"])
        .arg(&file)
        .arg("."))
    .ok();
    assert!(
        streamed == fs::read(&file).unwrap(),
        "the FIFO got other bytes"
    );
    let meta = fs::symlink_metadata(&fifo).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(&meta.file_type()));
}

/// Defect 2: SIGTERM while the bundle is compressed stops mgo with status
/// 130 and writes nothing.
#[test]
fn a_signal_during_compression_writes_nothing() {
    let dir = scratch();
    let tmp = scratch();
    let child = compressing(&dir.path().join("app"), tmp.path());
    signal(&child, rustix::process::Signal::TERM);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "mgo: interrupted\n");
    assert_eq!(files_in(dir.path()), Vec::<String>::new());
    assert_eq!(files_in(tmp.path()), Vec::<String>::new());
}

/// Defect 3: SIGKILL of mgo takes its go builds with it (they are not left
/// running as orphans), and what it left in TMPDIR and in the output
/// directory is gone after the next run.
#[test]
fn builds_die_with_a_killed_mgo_and_leftovers_go_with_the_next_run() {
    let out_dir = scratch();
    let tmp = scratch();
    let gocache = scratch();
    // A cold cache and -a: the builds would run for a minute.
    let mut child = mgo(&example("hello"))
        .args(["-a", "-o"])
        .arg(out_dir.path().join("app"))
        .arg(".")
        .env("GOCACHE", gocache.path())
        .env("TMPDIR", tmp.path())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    assert!(
        wait_until(Duration::from_secs(120), Some(&mut child), || {
            children(pid).len() >= 2
        }),
        "timed out waiting until go builds run"
    );
    signal(&child, rustix::process::Signal::KILL);
    child.wait().unwrap();
    // go dies at once (its build would run on for seconds); the compilers
    // it had started finish their package.
    for (what, limit) in [("go build", 3), ("", 30)] {
        let left = || -> Vec<String> {
            processes_mentioning(tmp.path())
                .into_iter()
                .filter(|l| l.contains(what))
                .collect()
        };
        assert!(
            wait_until(Duration::from_secs(limit), None, || left().is_empty()),
            "still running {limit} s after mgo was killed:\n{}",
            left().join("\n")
        );
    }
    assert!(
        !files_in(tmp.path()).is_empty(),
        "nothing was left to clean?"
    );

    // Killed while compressing: no temporary file stays in the output
    // directory.
    let mut child = compressing(&out_dir.path().join("app"), tmp.path());
    signal(&child, rustix::process::Signal::KILL);
    child.wait().unwrap();

    run(mgo(&example("hello"))
        .args(["-o"])
        .arg(out_dir.path().join("app"))
        .arg(".")
        .env("TMPDIR", tmp.path()))
    .ok();
    assert_eq!(files_in(tmp.path()), Vec::<String>::new(), "left in TMPDIR");
    assert_eq!(
        files_in(out_dir.path()),
        ["app"],
        "left in the output directory"
    );
}

/// Defect 4: with -json, stdout is JSON lines, each with its level.
#[test]
fn json_build_output_is_json_lines() {
    let dir = scratch();
    broken_module(dir.path());
    let out = run(mgo(dir.path()).args(["-json", "-o", "x", "."]));
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<String> = out.stdout_text().lines().map(str::to_owned).collect();
    assert!(!lines.is_empty());
    for line in &lines {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            value["GOAMD64"]
                .as_str()
                .is_some_and(|l| l.starts_with('v')),
            "{line}"
        );
        assert_eq!(value["ImportPath"], "example.com/broken", "{line}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"Action\":\"build-fail\""))
    );
}

/// Defect 5: -C anywhere but first is a usage error, as in go.
#[test]
fn chdir_flag_not_first_is_refused_as_go_refuses_it() {
    let dir = example("hello");
    let theirs = run(go(&dir).args(["build", "-o", "/dev/null", "-C", "."]));
    for args in [
        &["-o", "/dev/null", "-C", "."][..],
        &["build", "-o", "/dev/null", "-C", "."],
    ] {
        let ours = run(mgo(&dir).args(args));
        assert_eq!(ours.status.code(), theirs.status.code(), "{args:?}");
        assert_eq!(ours.status.code(), Some(2));
        assert_eq!(
            ours.stderr,
            "mgo: invalid value \".\" for flag -C: -C flag must be first flag on command line\n"
        );
        assert!(
            theirs
                .stderr
                .contains("-C flag must be first flag on command line")
        );
    }
    // First is fine, before or after the command word.
    for args in [
        &["-C", ".", "-o", "/dev/null"][..],
        &["-C", ".", "build", "-o", "/dev/null"],
    ] {
        run(mgo(&dir).args(args)).ok();
    }
}

/// Defect 6: a closed stdout and stderr (`mgo ... 2>&1 | head -1` after
/// head exits) never make mgo abort: it ends with go's status.
#[test]
fn closed_output_pipes_do_not_crash_mgo() {
    let dir = scratch();
    broken_module(dir.path());
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = run(mgo(dir.path())
        .args(["-o", "x", "."])
        .stdout(writer.try_clone().unwrap())
        .stderr(writer.try_clone().unwrap()));
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&out.status),
        None,
        "{out:?}"
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let help = run(mgo(dir.path())
        .arg("--help")
        .stdout(writer.try_clone().unwrap())
        .stderr(writer));
    assert_eq!(help.status.code(), Some(0), "{help:?}");
}

/// Issue 14, defect 1: as root, `extract -o` naming the null device in any
/// spelling, another character device, or the `/dev/stdout` symlink, and
/// `build -o /dev/stdout` with stdout redirected to a file, write into the
/// node (or through the link) and never replace it.
#[test]
fn every_command_writes_into_device_nodes_and_through_symlinks() {
    require("unshare");
    let hello = hello();
    let dir = scratch();
    let script = r#"
set -e
mount -t tmpfs tmpfs /dev
mknod -m 666 /dev/null c 1 3
mknod -m 666 /dev/zero c 1 5
mknod -m 666 /dev/full c 1 7
ln -s /proc/self/fd/1 /dev/stdout
for out in /dev/null //dev/null /dev/zero; do
  "$MGO" extract -o "$out" "$BUNDLE" || echo "failed: extract -o $out"
done
"$MGO" extract -o /dev/full "$BUNDLE" 2>"$DIR/full.err" && echo "extract -o /dev/full succeeded"
"$MGO" -o /dev/stdout . >"$DIR/built" || echo "failed: -o /dev/stdout"
"$MGO" extract -l v1 -o /dev/stdout "$BUNDLE" >"$DIR/extracted" || echo "failed: extract -o /dev/stdout"
stat -c '%n %F %t:%T' /dev/null /dev/zero /dev/full /dev/stdout
"#;
    let out = run(Command::new("unshare")
        .args(["-m", "sh", "-c", script])
        .current_dir(example("hello"))
        .env("MGO", env!("CARGO_BIN_EXE_mgo"))
        .env("BUNDLE", &hello.bundle)
        .env("DIR", dir.path())
        .env("MGOCACHE", "off")
        .env_remove("GOAMD64")
        .env_remove("GOFLAGS"));
    let text = out.ok();
    assert!(
        !text.contains("failed") && !text.contains("succeeded"),
        "{text}\n{}",
        out.stderr
    );
    for node in [
        "/dev/null character special file 1:3",
        "/dev/zero character special file 1:5",
        "/dev/full character special file 1:7",
        "/dev/stdout symbolic link 0:0",
    ] {
        assert!(text.contains(node), "{node}: {text}");
    }
    assert_eq!(
        fs::read_to_string(dir.path().join("full.err")).unwrap(),
        "mgo: cannot write /dev/full: No space left on device (os error 28)\n"
    );
    assert!(
        fs::read(dir.path().join("built")).unwrap() == fs::read(&hello.bundle).unwrap(),
        "-o /dev/stdout did not write the bundle into stdout's file"
    );
    assert!(
        fs::read(dir.path().join("extracted")).unwrap() == fs::read(hello.plain(1)).unwrap(),
        "extract -o /dev/stdout did not write v1 into stdout's file"
    );
}

/// Issue 14, defect 1: a symlink to a file stays a symlink; the file it
/// points to gets the new bytes, for every command. (go build renames its
/// output over the link itself when its work directory is on the link's
/// file system, and writes through it otherwise: mgo always writes
/// through.)
#[test]
fn a_symlink_to_a_file_is_written_through() {
    let hello = hello();
    let dir = scratch();
    let path = |name: &str| dir.path().join(name);
    fs::create_dir(path("real")).unwrap();
    for name in ["app", "v1"] {
        fs::write(path("real").join(name), "").unwrap();
        std::os::unix::fs::symlink(Path::new("real").join(name), path(name)).unwrap();
    }
    run(mgo(&example("hello")).arg("-o").arg(path("app")).arg(".")).ok();
    run(mgo(&example("hello"))
        .args(["extract", "-l", "v1", "-o"])
        .arg(path("v1"))
        .arg(&hello.bundle))
    .ok();
    for name in ["app", "v1"] {
        assert!(
            fs::symlink_metadata(path(name)).unwrap().is_symlink(),
            "{name}"
        );
    }
    assert!(fs::read(path("real/app")).unwrap() == fs::read(&hello.bundle).unwrap());
    assert!(fs::read(path("real/v1")).unwrap() == fs::read(hello.plain(1)).unwrap());
    assert_eq!(files_in(&path("real")), ["app", "v1"]);
}

/// Issue 14, defect 2: a new bundle is renamed into place while mgo still
/// held it open for writing, so a start from its name in that moment failed
/// with ETXTBSY. Every writable descriptor of the new file must be closed
/// before the file gets a name (the link of an unnamed file, or the
/// rename): strace shows the order of those calls.
#[test]
fn the_new_file_is_closed_before_it_gets_a_name() {
    let strace = require("strace");
    let dir = scratch();
    let log = dir.path().join("strace.log");
    let dest = dir.path().join("app");
    run(Command::new(strace)
        .args(["-f", "-qq", "-o"])
        .arg(&log)
        .args([
            "-e",
            "trace=open,openat,openat2,close,linkat,rename,renameat,renameat2",
        ])
        .arg(env!("CARGO_BIN_EXE_mgo"))
        .arg("-o")
        .arg(&dest)
        .arg(".")
        .current_dir(example("hello"))
        .env("MGOCACHE", "off")
        .env_remove("GOAMD64")
        .env_remove("GOFLAGS"))
    .ok();
    // Calls another thread interrupted are split in two lines: join them.
    let mut unfinished = std::collections::HashMap::new();
    let mut calls: Vec<(String, String)> = Vec::new();
    for line in fs::read_to_string(&log).unwrap().lines() {
        let Some((tid, call)) = line.split_once(' ') else {
            continue;
        };
        let call = call.trim_start();
        if let Some(start) = call.strip_suffix(" <unfinished ...>") {
            unfinished.insert(tid.to_owned(), start.to_owned());
        } else if let Some(rest) = call.strip_prefix("<... ") {
            let rest = rest.split_once(" resumed>").map_or(rest, |(_, r)| r);
            let start = unfinished.remove(tid).unwrap_or_default();
            calls.push((tid.to_owned(), start + rest));
        } else {
            calls.push((tid.to_owned(), call.to_owned()));
        }
    }
    let dest_arg = format!("\"{}\"", dest.display());
    let named = calls
        .iter()
        .position(|(_, c)| {
            (c.starts_with("rename") || c.starts_with("linkat")) && c.contains(&dest_arg)
        })
        .unwrap_or_else(|| panic!("no rename to {dest_arg} in:\n{calls:#?}"));
    let (tid, _) = &calls[named];
    // The writable descriptors of mgo's new file: an unnamed one, or one
    // named .mgo-*.tmp.
    let mut writable = Vec::new();
    for (i, (t, call)) in calls.iter().enumerate() {
        let new_file = call.contains("O_TMPFILE") || call.contains("/.mgo-");
        let writes = call.contains("O_WRONLY") || call.contains("O_RDWR");
        if t == tid && call.starts_with("open") && new_file && writes {
            let fd = call.rsplit_once("= ").unwrap().1.trim().to_owned();
            writable.push((i, fd));
        }
    }
    assert!(!writable.is_empty(), "no new file opened in:\n{calls:#?}");
    for (opened, fd) in writable {
        let after = |what: &dyn Fn(&str) -> bool| {
            calls
                .iter()
                .enumerate()
                .skip(opened + 1)
                .find(|(_, (t, c))| t == tid && what(c))
                .map(|(i, _)| i)
        };
        let named_at = after(&|c| c.starts_with("linkat(") || c.starts_with("rename")).unwrap();
        let closed = after(&|c| c.starts_with(&format!("close({fd})")));
        assert!(
            closed.is_some_and(|c| c < named_at),
            "descriptor {fd} of the new file is still open for writing when it gets a name:\n{:#?}",
            &calls[opened..=named]
        );
    }
}

/// Leftover removal takes only what is provably mgo's: another tool's
/// `mgo-*` directory, even one with an unlocked `lock` file in it as mgo's
/// scratch directories once had, stays (issue 15).
#[test]
fn leftover_removal_spares_other_tools_mgo_directories() {
    let tmp = scratch();
    let out = scratch();
    let theirs = tmp.path().join("mgo-theirs");
    fs::create_dir(&theirs).unwrap();
    fs::write(theirs.join("lock"), "mgo\n").unwrap();
    fs::write(theirs.join("data"), "keep me").unwrap();
    let look_alike = tmp.path().join("mgo-scratch-theirs");
    fs::create_dir(&look_alike).unwrap();
    fs::write(look_alike.join("mgo.lock"), "not mgo's words").unwrap();
    run(mgo(&example("hello"))
        .arg("-o")
        .arg(out.path().join("app"))
        .env("TMPDIR", tmp.path()))
    .ok();
    assert_eq!(fs::read_to_string(theirs.join("data")).unwrap(), "keep me");
    assert!(look_alike.join("mgo.lock").exists());
    assert_eq!(
        files_in(tmp.path()),
        ["mgo-scratch-theirs", "mgo-theirs"],
        "mgo's own scratch directory is gone, the others stay"
    );
}

/// A file name mgo cannot write is echoed with its newline and escape
/// bytes spelled out: one `mgo:` line, nothing sent to the terminal raw
/// (issue 14, item 7).
#[test]
fn an_output_name_with_control_bytes_is_echoed_escaped() {
    let dir = scratch();
    let blocker = dir.path().join("file");
    fs::write(&blocker, "not a directory").unwrap();
    let dest = blocker.join("line\nmgo: forged\x1b[31m");
    let out = run(mgo(&example("hello")).arg("-o").arg(&dest));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{out:?}");
    assert!(
        lines[0].starts_with("mgo: ") && lines[0].contains("line\\x0amgo: forged\\x1b[31m"),
        "{out:?}"
    );
    assert!(!out.stderr.contains('\x1b'), "{out:?}");
}
