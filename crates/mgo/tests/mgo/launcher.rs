//! The running bundle: the variant gets the process exactly as if it had
//! been run directly, both ways the launcher starts it, and the launcher's
//! own switches and failures.

use crate::support::*;
use std::fs;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};

#[test]
fn pid_argv0_arguments_and_stdin_reach_the_program() {
    let probe = probe();
    for launch in Launch::ALL {
        // The shell execs the bundle in its own place, so $$ is the bundle's PID.
        let out = run(Command::new("sh")
            .arg("-c")
            .arg("echo $$; exec \"$0\" pid")
            .arg(&probe.bundle)
            .env("MGODEBUG", launch.debug("")))
        .ok();
        let pids: Vec<&str> = out.lines().collect();
        assert_eq!(pids.len(), 2, "{launch:?}: {out}");
        assert_eq!(
            pids[0], pids[1],
            "{launch:?}: the program runs under a different PID"
        );

        let args = run(exec_as(launch, &probe.bundle).arg0("custom-name").args([
            "args",
            "two words",
            "ünï",
            "",
        ]))
        .ok();
        assert_eq!(
            args, "\"custom-name\"\n\"args\"\n\"two words\"\n\"ünï\"\n\"\"\n",
            "{launch:?}"
        );

        let mut child = exec_as(launch, &probe.bundle)
            .arg("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn({
            let data = data.clone();
            move || std::io::Write::write_all(&mut stdin, &data)
        });
        let output = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        assert!(output.status.success(), "{launch:?}");
        assert!(
            output.stdout == data,
            "{launch:?}: stdin did not pass through"
        );
    }
}

#[test]
fn environment_reaches_the_program_unchanged() {
    let probe = probe();
    for launch in Launch::ALL {
        // env(1) passes exactly these, in this order (Command would sort them).
        let debug = format!("MGODEBUG={}", launch.debug(""));
        let vars = ["WEIRD=x=y\tz", "A=1", "GOAMD64=v2", &debug, "EMPTY="];
        let out = run(Command::new("env")
            .arg("-i")
            .args(vars)
            .arg(&probe.bundle)
            .arg("env"))
        .ok();
        assert_eq!(out.lines().collect::<Vec<_>>(), vars, "{launch:?}");
    }
}

#[test]
fn exit_status_and_death_by_signal_pass_through() {
    let probe = probe();
    for launch in Launch::ALL {
        for code in [0, 1, 42, 255] {
            let done = run(exec_as(launch, &probe.bundle).args(["exit", &code.to_string()]));
            assert_eq!(done.status.code(), Some(code), "{launch:?}");
        }
        let killed = run(exec_as(launch, &probe.bundle).arg("signal"));
        assert_eq!(killed.status.signal(), Some(15), "{launch:?}: {killed:?}");
    }
}

#[test]
fn launcher_leaves_no_descriptor_behind_and_keeps_the_callers() {
    let probe = probe();
    for launch in Launch::ALL {
        // Descriptor 7 comes from the caller and must stay; the launcher's own
        // (the bundle, the memfd, the interpreter) are gone.
        let out = run(Command::new("sh")
            .arg("-c")
            .arg("exec \"$0\" fds 7</dev/null")
            .arg(&probe.bundle)
            .env("MGODEBUG", launch.debug("")))
        .ok();
        assert!(out.lines().any(|l| l == "7 /dev/null"), "{out}");
        let bundle = probe.bundle.to_str().unwrap();
        for line in out.lines() {
            assert!(
                !line.contains("memfd:") && !line.contains(bundle),
                "{launch:?}: leaked: {line}"
            );
        }
    }
}

#[test]
fn memfd_is_named_after_the_bundle_and_sealed() {
    let probe = probe();
    let level = host_level();
    let out = run(exec_as(Launch::Memfd, &probe.bundle).arg("exe")).ok();
    let expected = format!(
        "/memfd:{} [GOAMD64=v{level}] (deleted)\nseals=15\n",
        probe.bundle.display()
    );
    assert_eq!(out, expected, "seals=15 is SEAL|SHRINK|GROW|WRITE");
}

#[test]
fn a_path_longer_than_a_memfd_name_still_runs_and_keeps_its_end() {
    let probe = probe();
    let dir = scratch();
    let mut deep = dir.path().to_path_buf();
    for _ in 0..6 {
        deep.push("d".repeat(50));
    }
    fs::create_dir_all(&deep).unwrap();
    let bundle = deep.join("probe-bundle");
    copy_exe(&probe.bundle, &bundle);
    let out = run(exec_as(Launch::Memfd, &bundle).arg("exe")).ok();
    let name = out.lines().next().unwrap();
    assert!(name.starts_with("/memfd:..."), "{name}");
    assert!(
        name.ends_with(&format!(
            "/probe-bundle [GOAMD64=v{}] (deleted)",
            host_level()
        )),
        "{name}"
    );
    assert_eq!(name.len(), "/memfd:".len() + 249 + " (deleted)".len());
    // Mapped, the long path is simply the program's path.
    let mapped = run(exec(&bundle).arg("executable")).ok();
    assert_eq!(mapped.trim_end(), bundle.to_str().unwrap());
}

#[test]
fn goamd64_forces_a_level_and_bad_values_warn() {
    let hello = hello();
    for launch in Launch::ALL {
        for level in 1..=4u8 {
            let out = run(exec(&hello.bundle)
                .env("GOAMD64", format!("v{level}"))
                .env("MGODEBUG", launch.debug("log")));
            if level > host_level() {
                // Forced above the CPU: the variant's own Go check refuses, as a plain build would.
                assert_eq!(out.status.code(), Some(1));
                assert!(
                    out.stderr
                        .contains(&format!("v{level} microarchitecture support")),
                    "{}",
                    out.stderr
                );
            } else {
                assert_eq!(out.ok(), format!("hello, world (GOAMD64=v{level})\n"));
            }
            assert_eq!(launcher_lines(&out.stderr), [starting(level, launch)]);
        }
        for bad in ["v9", "x86-64-v3", "V3", "v3 "] {
            let out = run(exec(&hello.bundle)
                .env("GOAMD64", bad)
                .env("MGODEBUG", launch.debug("log")));
            assert_eq!(
                out.ok(),
                format!("hello, world (GOAMD64=v{})\n", host_level())
            );
            let lines = launcher_lines(&out.stderr);
            assert_eq!(lines.len(), 2, "{lines:?}");
            assert!(
                lines[0].contains(&format!("ignoring GOAMD64={bad}")),
                "{lines:?}"
            );
        }
    }
    let empty = run(exec(&hello.bundle).env("GOAMD64", ""));
    assert_eq!(
        empty.ok(),
        format!("hello, world (GOAMD64=v{})\n", host_level())
    );
    assert!(empty.stderr.is_empty(), "{}", empty.stderr);
}

/// Values from the environment are echoed with every unprintable byte
/// spelled out: a newline cannot forge a second launcher line.
#[test]
fn a_forged_log_line_stays_on_one_line() {
    let hello = hello();
    let forged = "v3\n[mgo] launcher: starting variant GOAMD64=v1";
    let out = run(exec(&hello.bundle)
        .env("GOAMD64", forged)
        .env("MGODEBUG", "log"));
    out.ok();
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        lines,
        [
            "[mgo] launcher: ignoring GOAMD64=v3\\x0a[mgo] launcher: starting variant GOAMD64=v1: expected v1, v2, v3 or v4; detecting the CPU instead"
                .to_owned(),
            starting(host_level(), Launch::Mapped),
        ]
    );
    let out = run(exec(&hello.bundle).env("MGODEBUG", "log,\x1b[2J"));
    assert_eq!(
        launcher_lines(&out.stderr)[0],
        "[mgo] launcher: ignoring unknown items in MGODEBUG=log,\\x1b[2J (known: log, extract, memfd, file)"
    );
}

/// With GOAMD64 twice in the environment, the first one counts, as it does
/// for Go's os.Getenv and libc's getenv: the program sees the level that
/// started.
#[test]
fn of_two_goamd64_values_the_first_counts() {
    let probe = probe();
    for (first, second) in [(2u8, 3u8), (3, 1)] {
        // The probe execs the bundle with exactly this environment.
        let out = run(exec(probe.plain(1))
            .arg("execenv")
            .arg(&probe.bundle)
            .arg(format!("GOAMD64=v{first}"))
            .arg("MGODEBUG=log")
            .arg(format!("GOAMD64=v{second}")));
        assert_eq!(out.ok(), format!("v{first}\n"));
        assert_eq!(
            launcher_lines(&out.stderr),
            [starting(first, Launch::Mapped)]
        );
    }
}

#[test]
fn mgodebug_unknown_items_warn_and_log_is_silent_otherwise() {
    let hello = hello();
    let quiet = run(&mut exec(&hello.bundle));
    assert!(quiet.stderr.is_empty());
    let quiet = run(&mut exec_as(Launch::Memfd, &hello.bundle));
    assert!(quiet.stderr.is_empty());
    let out = run(exec(&hello.bundle).env("MGODEBUG", "lgo"));
    out.ok();
    let lines = launcher_lines(&out.stderr);
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0]
            .contains("ignoring unknown items in MGODEBUG=lgo (known: log, extract, memfd, file)"),
        "{lines:?}"
    );
}

#[test]
fn extract_refuses_a_terminal() {
    let script = require("script");
    let hello = hello();
    // script(1) gives the bundle a pseudo-terminal as stdout.
    let command = format!("MGODEBUG=extract {}", hello.bundle.display());
    let out = run(Command::new(script).args(["-qec", &command, "/dev/null"]));
    assert_eq!(out.status.code(), Some(124), "{out:?}");
    assert!(
        out.stdout_text().contains(
            "[mgo] launcher: MGODEBUG=extract writes a binary: redirect stdout to a file"
        )
    );
}

/// `MGODEBUG=extract ./app | head`: a reader that closes the pipe early
/// makes the extraction fail with status 124 and one line, not kill the
/// launcher by SIGPIPE (issue 14, item 7).
#[test]
fn extract_into_a_closed_pipe_fails_with_124_not_sigpipe() {
    let hello = hello();
    let mut child = exec(&hello.bundle)
        .env("MGODEBUG", "extract")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The read end closes before the launcher can write a byte.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.signal(), None, "{out:?}");
    assert_eq!(out.status.code(), Some(124), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "[mgo] launcher: MGODEBUG=extract: cannot write stdout: broken pipe (EPIPE)\n"
    );
}

/// Runs a shell command in a new PID namespace, where vm.memfd_noexec can
/// be raised without touching the machine's own setting.
fn in_new_pid_namespace(script: &str) -> Run {
    let unshare = require("unshare");
    run(Command::new(unshare)
        .args(["--pid", "--fork", "sh", "-c", script])
        .env_remove("MGODEBUG")
        .env_remove("GOAMD64"))
}

#[test]
fn memfd_noexec_stops_only_the_memfd_start() {
    let hello = hello();
    let bundle = hello.bundle.display();
    let expected = format!("hello, world (GOAMD64=v{})\n", host_level());
    for setting in [1, 2] {
        // Mapped: no memfd at all.
        let mapped = in_new_pid_namespace(&format!(
            "echo {setting} > /proc/sys/vm/memfd_noexec && exec {bundle}"
        ));
        assert_eq!(mapped.ok(), expected, "memfd_noexec={setting}");
    }
    let one = in_new_pid_namespace(&format!(
        "echo 1 > /proc/sys/vm/memfd_noexec && MGODEBUG=memfd exec {bundle}"
    ));
    assert_eq!(one.ok(), expected);
    let two = in_new_pid_namespace(&format!(
        "echo 2 > /proc/sys/vm/memfd_noexec && MGODEBUG=memfd exec {bundle}"
    ));
    assert_launcher_failure(
        &two,
        126,
        "cannot create a memfd for the variant: permission denied",
    );
}

#[test]
fn runs_without_proc() {
    let hello = hello();
    let unshare = require("unshare");
    for launch in Launch::ALL {
        // A private mount namespace with an empty /proc: the launcher falls back
        // to the path the kernel passed in the auxiliary vector.
        let script = format!(
            "mount -t tmpfs none /proc && test ! -e /proc/self && exec {}",
            hello.bundle.display()
        );
        let out = run(Command::new(&unshare)
            .args(["--mount", "sh", "-c", &script])
            .env("MGODEBUG", launch.debug(""))
            .env_remove("GOAMD64"));
        assert_eq!(
            out.ok(),
            format!("hello, world (GOAMD64=v{})\n", host_level()),
            "{launch:?}"
        );
    }
}

#[test]
fn a_bare_launcher_says_it_holds_no_bundle() {
    // Cut the bundle just before its segment: the ELF part alone is the launcher.
    let hello = hello();
    let bytes = fs::read(&hello.bundle).unwrap();
    let dir = scratch();
    let cut = write_exe(
        &dir.path().join("launcher-only"),
        &bytes[..segment_offset(&hello.bundle)],
    );
    let out = run(&mut exec(&cut));
    assert_launcher_failure(&out, 125, "bundle is truncated");
}

#[test]
fn runs_in_an_empty_root_directory() {
    // Like an empty container image: no libc, no loader, no /proc, only the
    // bundle (hello is a static Go program).
    let hello = hello();
    let root = scratch();
    copy_exe(&hello.bundle, &root.path().join("hello"));
    let chroot = require("chroot");
    let level = host_level();
    for launch in Launch::ALL {
        let out = run(Command::new(&chroot)
            .arg(root.path())
            .arg("/hello")
            .env("MGODEBUG", launch.debug("log"))
            .env_remove("GOAMD64"));
        assert_eq!(out.ok(), format!("hello, world (GOAMD64=v{level})\n"));
        assert_eq!(launcher_lines(&out.stderr), [starting(level, launch)]);
    }
}

/// A variant the kernel must reopen by path during exec (here a `#!` script,
/// as with binfmt_misc interpreters such as qemu-user under Docker Desktop)
/// cannot be mapped in place, so it starts through a memfd; and through a
/// close-on-exec memfd, exec fails with ENOENT, so the launcher retries with
/// the descriptor left open.
#[test]
fn exec_that_must_reopen_the_file_is_retried() {
    let hello = hello();
    let Bundle {
        mut bytes,
        segment,
        table,
    } = read_bundle(&hello.bundle);
    let segment = segment.start;
    let v2 = table.entries()[1];
    assert_eq!(v2.level, 2);
    let script = b"#!/bin/sh\necho \"script ran: $*\"\n";
    let at = segment + v2.offset as usize;
    bytes[at..at + script.len()].copy_from_slice(script);
    // Entry 1: its sizes and whole-file checksum are the script's; its one
    // block covers the script; then the table's own checksum (computed
    // with that field zeroed).
    use mgo_format::{ENTRY_SIZE, HEADER_SIZE, block_record, entry, header};
    let entry = segment + HEADER_SIZE + ENTRY_SIZE;
    let len = (script.len() as u64).to_le_bytes();
    let sum = mgo_format::checksum(script).to_le_bytes();
    bytes[entry + entry::STORED_SIZE..][..8].copy_from_slice(&len);
    bytes[entry + entry::SIZE..][..8].copy_from_slice(&len);
    bytes[entry + entry::CHECKSUM..][..8].copy_from_slice(&sum);
    bytes[entry + entry::BLOCK_COUNT..][..4].copy_from_slice(&1u32.to_le_bytes());
    let record = segment + v2.blocks_offset as usize;
    bytes[record + block_record::SIZE..][..8].copy_from_slice(&len);
    bytes[record + block_record::CHECKSUM..][..8].copy_from_slice(&sum);
    bytes[record + block_record::STORED_SIZE..][..8].copy_from_slice(&len);
    let table_len = HEADER_SIZE + table.entries().len() * ENTRY_SIZE;
    let table_checksum = segment + header::TABLE_CHECKSUM;
    bytes[table_checksum..][..8].fill(0);
    let sum = mgo_format::checksum(&bytes[segment..segment + table_len]);
    bytes[table_checksum..][..8].copy_from_slice(&sum.to_le_bytes());
    let dir = scratch();
    let patched = write_exe(&dir.path().join("bundle"), &bytes);
    let out = run(exec(&patched)
        .args(["a", "b"])
        .env("GOAMD64", "v2")
        .env("MGODEBUG", "log"));
    assert_eq!(out.ok(), "script ran: a b\n");
    assert_eq!(
        launcher_lines(&out.stderr),
        [
            "[mgo] launcher: starting variant GOAMD64=v2 (memfd; cannot map it: not an x86-64 ELF executable)"
        ]
    );
}

/// Out of descriptors, the launcher cannot read its own file: it says so,
/// with the status of a system that refuses, not of a damaged bundle.
#[test]
fn out_of_descriptors_is_not_damage() {
    let hello = hello();
    for launch in Launch::ALL {
        let out = run(Command::new("sh")
            .arg("-c")
            .arg("ulimit -n 3 && exec \"$0\"")
            .arg(&hello.bundle)
            .env("MGODEBUG", launch.debug(""))
            .env_remove("GOAMD64"));
        assert_launcher_failure(
            &out,
            126,
            "cannot open the bundle: too many open files (EMFILE)",
        );
    }
}
