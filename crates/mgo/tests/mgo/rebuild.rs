//! Running the same mgo command again: nothing changed leaves the bundle
//! as it is (same inode, same bytes; only its times are updated, as go
//! does for an up-to-date executable); a changed source, at any level,
//! rebuilds.

use crate::support::*;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

fn hello_module(dir: &Path) {
    for name in ["go.mod", "main.go"] {
        fs::copy(example("hello").join(name), dir.join(name)).unwrap();
    }
}

/// mgo from `dir` with its up-to-date state in `cache`.
fn with_state(dir: &Path, cache: &Path) -> std::process::Command {
    let mut command = mgo(dir);
    command.env("MGOCACHE", cache);
    command
}

/// Sets `path`'s modification time an hour back, so that an update shows.
fn age(path: &Path) -> SystemTime {
    let old = SystemTime::now() - Duration::from_secs(3600);
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(old)
        .unwrap();
    old
}

/// The go processes one mgo run started, counted from its `-x` output:
/// each go command's own lines are prefixed with its level.
fn levels_built(stderr: &str) -> Vec<String> {
    let mut levels: Vec<String> = stderr
        .lines()
        .filter_map(|l| l.split_once(": ").map(|(level, _)| level.to_owned()))
        .filter(|l| l.len() == 2 && l.starts_with('v'))
        .collect();
    levels.sort();
    levels.dedup();
    levels
}

#[test]
fn an_up_to_date_rebuild_keeps_the_bundle_and_a_change_rebuilds_it() {
    let dir = scratch();
    hello_module(dir.path());
    let cache = scratch();
    let mgo_here = || with_state(dir.path(), cache.path());
    let bundle = dir.path().join("hello");
    run(&mut mgo_here()).ok();
    let first = fs::read(&bundle).unwrap();
    let inode = fs::metadata(&bundle).unwrap().ino();
    let old = age(&bundle);

    // Nothing changed: one go build (the lowest level's) with -x shows that
    // go ran once and linked nothing; the file is the same file.
    let again = run(mgo_here().arg("-x"));
    again.ok();
    assert_eq!(levels_built(&again.stderr), ["v1"], "{}", again.stderr);
    assert!(
        !again.stderr.contains("/link"),
        "the no-op run linked:\n{}",
        again.stderr
    );
    let meta = fs::metadata(&bundle).unwrap();
    assert_eq!(meta.ino(), inode, "the bundle was replaced");
    assert!(fs::read(&bundle).unwrap() == first, "the bundle changed");
    assert!(
        meta.modified().unwrap() > old,
        "mtime not updated, as go build would"
    );

    // A change every level compiles: rebuilt, and the program shows it.
    fs::write(
        dir.path().join("main.go"),
        fs::read_to_string(dir.path().join("main.go"))
            .unwrap()
            .replace("hello, ", "hi, "),
    )
    .unwrap();
    run(&mut mgo_here()).ok();
    assert_ne!(fs::metadata(&bundle).unwrap().ino(), inode);
    let changed = run(&mut exec(&bundle)).ok();
    assert!(changed.starts_with("hi, world"), "{changed}");

    // A file only v3 and v4 compile: go build at v1 sees nothing new, mgo
    // must still rebuild.
    let inode = fs::metadata(&bundle).unwrap().ino();
    run(&mut mgo_here()).ok();
    assert_eq!(fs::metadata(&bundle).unwrap().ino(), inode);
    fs::write(
        dir.path().join("v3.go"),
        "//go:build amd64.v3\n\npackage main\n\nfunc init() { println(\"v3 init\") }\n",
    )
    .unwrap();
    run(&mut mgo_here()).ok();
    assert_ne!(fs::metadata(&bundle).unwrap().ino(), inode, "not rebuilt");
    let v3 = run(exec(&bundle).env("GOAMD64", "v3"));
    assert!(v3.stderr.contains("v3 init"), "{v3:?}");
    let v1 = run(exec(&bundle).env("GOAMD64", "v1"));
    assert!(!v1.stderr.contains("v3 init"), "{v1:?}");

    // Other settings make other bundles.
    let inode = fs::metadata(&bundle).unwrap().ino();
    run(mgo_here().env("MGO_COMPRESS", "lz4")).ok();
    assert_ne!(fs::metadata(&bundle).unwrap().ino(), inode);
    let inode = fs::metadata(&bundle).unwrap().ino();
    run(mgo_here().env("MGO_COMPRESS", "lz4")).ok();
    assert_eq!(fs::metadata(&bundle).unwrap().ino(), inode);

    // A bundle replaced by someone else is not taken for mgo's.
    run(go(dir.path()).args(["build", "-o", "hello", "."])).ok();
    run(mgo_here().env("MGO_COMPRESS", "lz4")).ok();
    let log = run(exec(&bundle).env("MGODEBUG", "log"));
    assert!(log.stderr.contains("[mgo] launcher:"), "{log:?}");
}

/// Without mgo's state (a fresh CI machine, MGOCACHE=off) a rebuild is a
/// full one, but a bundle with the same bytes is still not replaced.
#[test]
fn without_state_identical_bytes_keep_the_file() {
    let dir = scratch();
    hello_module(dir.path());
    let build = || {
        run(mgo(dir.path())
            .args(["-trimpath", "-o", "app", "."])
            .env("MGOCACHE", "off"))
        .ok()
    };
    build();
    let bundle = dir.path().join("app");
    let inode = fs::metadata(&bundle).unwrap().ino();
    let old = age(&bundle);
    build();
    let meta = fs::metadata(&bundle).unwrap();
    assert_eq!(meta.ino(), inode);
    assert!(meta.modified().unwrap() > old);
}

/// The up-to-date check's own go build failing is not the outcome: a
/// package that stopped being a main package is compiled, as go build
/// would (no error, nothing written), and a compile error is reported once,
/// by the full build.
#[test]
fn a_failing_check_leaves_the_outcome_to_the_full_build() {
    let dir = scratch();
    hello_module(dir.path());
    let cache = scratch();
    let mgo_here = || with_state(dir.path(), cache.path());
    run(&mut mgo_here()).ok();
    let main = dir.path().join("main.go");
    let source = fs::read_to_string(&main).unwrap();
    fs::write(
        &main,
        format!("{source}\nfunc broken() {{ undefined() }}\n"),
    )
    .unwrap();
    let failed = run(&mut mgo_here());
    assert_eq!(failed.status.code(), Some(1), "{failed:?}");
    let reports = failed
        .stderr
        .lines()
        .filter(|l| l.contains("undefined: undefined"))
        .count();
    assert_eq!(reports, 1, "reported {reports} times:\n{}", failed.stderr);
    assert_eq!(
        failed
            .stderr
            .lines()
            .filter(|l| l.starts_with("mgo: "))
            .count(),
        1,
        "{}",
        failed.stderr
    );

    fs::write(
        &main,
        "package hello\n\nfunc Hello() string { return \"hi\" }\n",
    )
    .unwrap();
    let library = run(&mut mgo_here());
    library.ok();
    assert!(library.stderr.is_empty(), "{}", library.stderr);
}

/// The state files in `cache`: the names mgo gives them (32 hex digits).
fn state_files(cache: &Path) -> Vec<String> {
    files_in(cache)
        .into_iter()
        .filter(|n| n.len() == 32 && n.bytes().all(|b| b.is_ascii_hexdigit()))
        .collect()
}

/// Issue 14, defect 3: the clean-up of MGOCACHE removes only old state
/// files of mgo's, never other files there, old or not.
#[test]
fn the_state_clean_up_removes_only_old_state_files() {
    let dir = scratch();
    let cache = scratch();
    hello_module(dir.path());
    let forty_days_ago = SystemTime::now() - Duration::from_secs(40 * 24 * 3600);
    let file = |name: &str, time: SystemTime| {
        fs::File::create(cache.path().join(name))
            .unwrap()
            .set_modified(time)
            .unwrap();
    };
    let old_state = "0123456789abcdef0123456789abcdef";
    file("notes.txt", SystemTime::now());
    file("old.txt", forty_days_ago);
    file(old_state, forty_days_ago);
    run(with_state(dir.path(), cache.path()).args(["-o", "app", "."])).ok();
    let left = files_in(cache.path());
    assert!(left.contains(&"notes.txt".to_owned()), "{left:?}");
    assert!(left.contains(&"old.txt".to_owned()), "{left:?}");
    let states = state_files(cache.path());
    assert_eq!(states.len(), 1, "{left:?}");
    assert_ne!(states[0], old_state);
}

/// Runs `command` to its end, failing if it takes over `limit`: the peak
/// resident size of it (and of what it waited for) in KiB, and its status.
#[expect(
    clippy::zombie_processes,
    reason = "a thread of its own waits for the child, with wait4"
)]
fn peak_kib(command: &mut std::process::Command, limit: Duration) -> (i64, i32) {
    let child = command.spawn().unwrap();
    let pid = child.id() as libc::pid_t;
    let (done, ended) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut status = 0;
        // SAFETY: a zeroed rusage is a valid value for wait4 to fill.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: both pointers are to live locals; `pid` is our child,
        // which std never waits for here.
        let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        assert_eq!(waited, pid, "wait4: {}", std::io::Error::last_os_error());
        let _ = done.send((usage.ru_maxrss, status));
    });
    ended.recv_timeout(limit).unwrap_or_else(|_| {
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_child(&child),
            rustix::process::Signal::KILL,
        );
        panic!("{command:?} still runs after {limit:?}")
    })
}

/// Issue 14, defect 4: a FIFO at the state path does not block mgo, and a
/// huge (sparse) file there is not read whole: neither is a state.
#[test]
fn a_fifo_or_a_huge_file_at_the_state_path_is_no_record() {
    let dir = scratch();
    let cache = scratch();
    hello_module(dir.path());
    let build = || {
        let mut command = with_state(dir.path(), cache.path());
        command
            .args(["-o", "app", "."])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        command
    };
    run(&mut build()).ok();
    let states = state_files(cache.path());
    assert_eq!(states.len(), 1);
    let state = cache.path().join(&states[0]);

    fs::remove_file(&state).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &state,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let (_, status) = peak_kib(&mut build(), Duration::from_secs(120));
    assert_eq!(status, 0, "with a FIFO at the state path");

    fs::remove_file(&state).unwrap();
    fs::File::create(&state).unwrap().set_len(2 << 30).unwrap();
    let (peak, status) = peak_kib(&mut build(), Duration::from_secs(120));
    assert_eq!(status, 0, "with a 2 GiB file at the state path");
    // go's own processes count too (a few hundred MB at most for hello);
    // reading the file whole would take more than 2 GiB.
    assert!(peak < 1 << 20, "peak resident size {peak} KiB");
}
