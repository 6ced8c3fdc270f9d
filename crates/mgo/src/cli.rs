//! The command line: `mgo [build] [go build flags] [packages]`.
//!
//! mgo does not reimplement `go build`'s flags. It only needs to find `-o`
//! (which it replaces with its own temporary outputs), `-C` and `-buildmode`,
//! and to tell flags from packages; everything else goes to every variant
//! build unchanged.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

/// What the user asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// `-h`, `-help`, `--help`, `help`.
    Help,
    /// `--version`.
    Version,
    /// Build packages.
    Build(Request),
}

/// A build request, split the way mgo needs it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// Flags for `go build`, in order, without `-o` and its value.
    pub go_flags: Vec<OsString>,
    /// Packages, patterns or .go files, as given.
    pub packages: Vec<OsString>,
    /// The `-o` value, if any.
    pub output: Option<OsString>,
    /// The `-C` value, if any (it stays in `go_flags` too).
    pub chdir: Option<OsString>,
    /// The `-buildmode` value from the command line, if any.
    pub buildmode: Option<String>,
}

/// `go build` flags that take a value. A flag not listed here is taken to be
/// boolean, as `go build`'s unlisted flags are; `-flag=value` works for all.
const VALUE_FLAGS: &[&str] = &[
    "C",
    "o",
    "p",
    "asmflags",
    "buildmode",
    "compiler",
    "covermode",
    "coverpkg",
    "gccgoflags",
    "gcflags",
    "installsuffix",
    "ldflags",
    "mod",
    "modfile",
    "overlay",
    "pgo",
    "pkgdir",
    "tags",
    "toolexec",
    "debug-actiongraph",
    "debug-deprunorder",
    "debug-runtime-trace",
    "debug-trace",
];

/// Whether the `go build` flag `name` (without dashes) takes a value.
pub fn takes_value(name: &str) -> bool {
    VALUE_FLAGS.contains(&name)
}

/// Parses mgo's arguments (without the program name).
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, String> {
    let mut args = args.into_iter().peekable();
    if args.peek().is_some_and(|a| a == "build") {
        args.next();
    } else if args.peek().is_some_and(|a| a == "help") {
        return Ok(Command::Help);
    }
    let mut request = Request::default();
    while let Some(arg) = args.next() {
        let bytes = arg.as_bytes();
        if bytes == b"--" {
            // Kept: go must see it too, or it would read "-x" after it as a flag.
            request.packages.push(arg);
            request.packages.extend(args.by_ref());
            break;
        }
        let body = match bytes
            .strip_prefix(b"--")
            .or_else(|| bytes.strip_prefix(b"-"))
        {
            Some(body) if !body.is_empty() => body,
            // "-" alone and anything not starting with "-" is a package.
            _ => {
                request.packages.push(arg);
                request.packages.extend(args.by_ref());
                break;
            }
        };
        let (name, inline_value) = match body.split(|&b| b == b'=').next() {
            Some(name) if name.len() < body.len() => (
                name,
                body.get(name.len() + 1..)
                    .map(|value| OsStr::from_bytes(value).to_owned()),
            ),
            _ => (body, None),
        };
        let name = String::from_utf8_lossy(name).into_owned();
        match name.as_str() {
            "h" | "help" => return Ok(Command::Help),
            "version" if bytes.starts_with(b"--") => return Ok(Command::Version),
            _ => {}
        }
        let takes_value = takes_value(&name);
        let value = match (takes_value, inline_value) {
            (_, Some(value)) => Some(value),
            (true, None) => Some(args.next().ok_or_else(|| {
                format!("flag -{name} needs a value: see 'go help build' for its meaning")
            })?),
            (false, None) => None,
        };
        match name.as_str() {
            "o" => {
                request.output = value;
                continue;
            }
            "C" => request.chdir = value.clone(),
            "buildmode" => {
                request.buildmode = value.as_ref().map(|v| v.to_string_lossy().into_owned())
            }
            _ => {}
        }
        let separate_value = takes_value && !body.contains(&b'=');
        request.go_flags.push(arg);
        if separate_value {
            request.go_flags.extend(value);
        }
    }
    Ok(Command::Build(request))
}

/// Finds `-buildmode` in GOFLAGS, which `go build` also obeys.
pub fn buildmode_from_goflags(goflags: &str) -> Option<String> {
    goflags.split_whitespace().rev().find_map(|flag| {
        let flag = flag.strip_prefix("--").or_else(|| flag.strip_prefix('-'))?;
        flag.strip_prefix("buildmode=").map(str::to_owned)
    })
}

/// The man-style help text.
pub const HELP: &str = "\
NAME
    mgo - go build, once per x86-64 level, into one self-selecting executable

SYNOPSIS
    mgo [build] [go build flags] [packages]

DESCRIPTION
    mgo builds the named main package as `go build` would, but four times,
    with GOAMD64=v1, v2, v3 and v4, and writes ONE Linux executable where
    `go build` would have written one. It holds a small launcher and the
    four builds. At every start the launcher picks the highest level that
    the CPU runs (exactly as the Go runtime checks it), maps that build
    from the bundle's own pages as the kernel's exec would, verifies what
    will run, and starts it in its place: same PID, arguments,
    environment, descriptors, exit status and signals, and the program
    is the bundle (/proc/self/exe, its name in ps). Where a build cannot
    be mapped so, it starts through a memfd instead.

    Every `go build` flag is accepted and given to each build unchanged.
    Output names and places are go build's own: no -o writes the default
    name into the current directory; -o FILE; -o DIR/ or an existing
    directory writes one executable per main package there. Packages that
    go build would only compile (several without -o, or non-main ones) are
    compiled for every level and nothing is written.

    The four builds run in parallel; go's output is passed through with
    each line prefixed by its level (\"v3: \"). Nothing is written unless
    every build succeeds, and an existing output is replaced atomically.

ENVIRONMENT
    GOAMD64=vN         at build time: the lowest level to include
                       (GOAMD64=v3 bundles v3 and v4). Empty means unset.
    MGO_PARALLEL_BUILD how many builds run at once (default: CPU count).
    MGO_COMPRESS=MODE  compress the builds: g1..g9 (deflate), z1..z22 (zstd),
                       Z1..Z22 (zstd, v1-v3 against v4) or lz4 (fastest start).
    MGO_LAUNCH=memfd   make the bundle start its builds through a memfd by
                       default; mapped (or empty) is the default.
    GOOS, GOARCH       must be linux and amd64 (or unset on such a host).

    When a bundle runs:
    GOAMD64=vN         run level N (or the highest the bundle holds
                       below it) instead of detecting the CPU.
    MGODEBUG=log       say on stderr which level starts, and how:
                       [mgo] launcher: starting variant GOAMD64=v3 (mapped)
    MGODEBUG=extract   write the chosen build to stdout and exit 0.
    MGODEBUG=memfd     start it through a memfd.
    A setuid or setgid bundle ignores MGODEBUG.

EXIT STATUS
    0 on success; 1 when mgo refuses or fails; go build's status when a
    build fails; 2 for usage errors; 130 when interrupted.
    A bundle's launcher exits 125 (bundle damaged or unreadable), 126
    (cannot execute the build) or 124 (MGODEBUG=extract could not write);
    otherwise the status is the program's own.

EXAMPLES
    mgo ./cmd/server               writes ./server
    mgo -trimpath -o dist/app .    writes dist/app
    GOAMD64=v3 mgo -o bin/ ./cmd/...
    MGODEBUG=log ./server          shows the chosen level

SEE ALSO
    go help build. In mgo's source: docs/CLI.md (this command in full),
    docs/LAUNCHER.md (what a bundle does at every start, its exit
    statuses), docs/FORMAT.md (the file), docs/DESIGN.md (measurements).
";

#[cfg(test)]
mod tests {
    use super::*;

    fn request(args: &[&str]) -> Request {
        match parse(args.iter().map(OsString::from)) {
            Ok(Command::Build(request)) => request,
            other => panic!("{args:?} gave {other:?}"),
        }
    }

    fn strings(v: &[OsString]) -> Vec<&str> {
        v.iter().map(|s| s.to_str().unwrap_or("?")).collect()
    }

    #[test]
    fn output_flag_is_taken_out_in_every_spelling() {
        for args in [
            &["-o", "out", "./cmd/x"][..],
            &["-o=out", "./cmd/x"],
            &["--o", "out", "./cmd/x"],
            &["build", "--o=out", "./cmd/x"],
        ] {
            let r = request(args);
            assert_eq!(r.output.as_deref(), Some(OsStr::new("out")), "{args:?}");
            assert!(r.go_flags.is_empty(), "{args:?}");
            assert_eq!(strings(&r.packages), ["./cmd/x"]);
        }
    }

    #[test]
    fn value_flags_keep_their_values_and_bool_flags_do_not_eat_packages() {
        let r = request(&[
            "-C",
            "dir",
            "-trimpath",
            "-ldflags",
            "-s -w",
            "-tags=a,b",
            "-race",
            "p1",
            "p2",
        ]);
        assert_eq!(
            strings(&r.go_flags),
            [
                "-C",
                "dir",
                "-trimpath",
                "-ldflags",
                "-s -w",
                "-tags=a,b",
                "-race"
            ]
        );
        assert_eq!(strings(&r.packages), ["p1", "p2"]);
        assert_eq!(r.chdir.as_deref(), Some(OsStr::new("dir")));
    }

    #[test]
    fn packages_start_at_the_first_non_flag_or_after_double_dash() {
        let r = request(&["./a", "-o", "x"]);
        assert_eq!(strings(&r.packages), ["./a", "-o", "x"]);
        assert_eq!(r.output, None);
        let r = request(&["-v", "--", "-weird"]);
        assert_eq!(strings(&r.packages), ["--", "-weird"]);
        let r = request(&["-"]);
        assert_eq!(strings(&r.packages), ["-"]);
    }

    #[test]
    fn buildmode_is_found_on_the_command_line_and_in_goflags() {
        assert_eq!(
            request(&["-buildmode", "pie"]).buildmode.as_deref(),
            Some("pie")
        );
        assert_eq!(
            request(&["-buildmode=c-shared", "."]).buildmode.as_deref(),
            Some("c-shared")
        );
        assert_eq!(
            buildmode_from_goflags("-trimpath -buildmode=plugin"),
            Some("plugin".into())
        );
        assert_eq!(buildmode_from_goflags("-trimpath"), None);
    }

    #[test]
    fn help_version_and_errors() {
        for args in [&["-h"][..], &["--help"], &["help"], &["build", "-help"]] {
            assert_eq!(parse(args.iter().map(OsString::from)), Ok(Command::Help));
        }
        assert_eq!(
            parse(["--version"].map(OsString::from)),
            Ok(Command::Version)
        );
        let err = parse(["-ldflags"].map(OsString::from)).unwrap_err();
        assert!(err.contains("-ldflags needs a value"), "{err}");
    }
}
