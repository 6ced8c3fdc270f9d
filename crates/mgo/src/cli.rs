//! The command line: which command, and the few flags mgo itself needs.
//!
//! mgo does not reimplement go's flags. For `build`, `install` and `test` it
//! only needs to find `-o` (replaced by its own temporary outputs), `-C`,
//! `-buildmode`, `-json`, `-n` and `-c`, and to tell flags from packages;
//! everything else goes to every per-level run unchanged. The parser is
//! hand-written rather than clap's because go's syntax is not clap's: single-
//! dash long flags, `-flag=value`, flags that stop at the first package.

use crate::error::{self, Result};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// What the user asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// `-h`, `-help`, `--help`, `help`: mgo's manual page.
    Help,
    /// `--version`.
    Version,
    /// One of go's other commands: run `go` with these arguments, unchanged.
    Go(Vec<OsString>),
    /// `build` (or no command word), `install`, or `test -c`: make bundles.
    Build(Request),
    /// `test` without `-c`: run the tests once per level.
    Test(Request),
    /// `inspect [-json] FILE`.
    Inspect {
        /// The file to describe.
        file: PathBuf,
        /// JSON instead of text.
        json: bool,
    },
    /// `verify FILE`.
    Verify {
        /// The file to check.
        file: PathBuf,
    },
    /// `extract [-l vN] -o OUT FILE`, `extract -pid PID -o OUT`,
    /// `extract -core CORE -o OUT [FILE]`.
    Extract {
        from: ExtractFrom,
        /// Where to write the build; `-` is standard output.
        output: PathBuf,
    },
    /// `join -o OUT FILE...`.
    Join {
        inputs: Vec<JoinInput>,
        /// Where to write the bundle.
        output: PathBuf,
    },
}

/// One input of `mgo join`: `FILE`, or `vN=FILE` with its level named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinInput {
    /// The level given on the command line, if any.
    pub level: Option<u8>,
    pub path: PathBuf,
}

/// Which build `mgo extract` writes out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtractFrom {
    /// A level of a bundle; `None`: the one this machine would start.
    Bundle { file: PathBuf, level: Option<u8> },
    /// The one a process runs.
    Process(u32),
    /// The one a core file's process ran, from `bundle` or the bundle the
    /// core names.
    Core {
        core: PathBuf,
        bundle: Option<PathBuf>,
    },
}

/// The go command a build request runs per level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoVerb {
    /// `go build`.
    Build,
    /// `go install`: outputs go to GOBIN, or GOPATH's first bin directory.
    Install,
    /// `go test`: with `-c`, test binaries are built and bundled; without,
    /// the tests run.
    Test,
}

impl GoVerb {
    /// The word on go's command line.
    pub fn word(self) -> &'static str {
        match self {
            Self::Build => "build",
            Self::Install => "install",
            Self::Test => "test",
        }
    }
}

/// A build, install or test request, split the way mgo needs it.
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    /// Which go command runs per level.
    pub verb: GoVerb,
    /// The arguments for go when mgo hands the whole command over to it
    /// (other targets, other build modes): mgo's own, with `build` in
    /// front when no command word was given.
    pub passthrough: Vec<OsString>,
    /// `-C dir`, if given (it must be the first flag).
    pub chdir: Option<OsString>,
    /// The arguments for go after the verb, without `-C` and without `-o`
    /// and its value (except for `install`, where go itself rejects `-o`).
    pub go_args: Vec<OsString>,
    /// `go_args` without the flags that only change what go prints (`-v`,
    /// `-x`, `-json`): what identifies the command for up-to-date checks.
    pub key_args: Vec<OsString>,
    /// The packages, patterns or files named (also inside `go_args`).
    pub packages: Vec<OsString>,
    /// The flags among `go_args` that decide which packages a pattern
    /// matches (`-tags`, `-mod`, `-modfile`, `-overlay`), for `go list`.
    pub selection_flags: Vec<OsString>,
    /// The `-o` value, if any.
    pub output: Option<OsString>,
    /// The `-buildmode` value from the command line, if any.
    pub buildmode: Option<String>,
    /// `-json`: go's output is JSON lines.
    pub json: bool,
    /// `-n`: go prints commands and builds nothing.
    pub dry_run: bool,
    /// `-x`: go prints the commands it runs.
    pub echo_commands: bool,
    /// `test -c`: compile test binaries instead of running tests.
    pub compile_only: bool,
}

/// go's commands that mgo runs unchanged.
pub const GO_COMMANDS: &[&str] = &[
    "env",
    "version",
    "list",
    "tool",
    "vet",
    "run",
    "mod",
    "work",
    "generate",
    "clean",
    "doc",
    "fmt",
    "fix",
    "get",
    "bug",
    "telemetry",
];

/// `go build` flags that take a value. A flag not listed here is taken to be
/// boolean, as `go build`'s unlisted flags are; `-flag=value` works for all.
const BUILD_VALUE_FLAGS: &[&str] = &[
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

/// `go test`'s flags for its test binary (`-test.name`) that take a value,
/// also in their `-test.` spelling (cmd/go/internal/test/testflag.go).
const BINARY_VALUE_FLAGS: &[&str] = &[
    "bench",
    "benchtime",
    "blockprofile",
    "blockprofilerate",
    "count",
    "coverprofile",
    "cpu",
    "cpuprofile",
    "fuzz",
    "fuzzminimizetime",
    "fuzztime",
    "list",
    "memprofile",
    "memprofilerate",
    "mutexprofile",
    "mutexprofilefraction",
    "outputdir",
    "parallel",
    "run",
    "shuffle",
    "skip",
    "timeout",
    "trace",
];

/// Its boolean ones; `-v` is go test's too, and goes to the binary.
const BINARY_BOOL_FLAGS: &[&str] = &["benchmem", "failfast", "fullpath", "short", "v"];

/// `go test`'s own flags that take a value (`-json` takes none).
const GO_TEST_VALUE_FLAGS: &[&str] = &["exec", "vet"];

/// Flags that change which packages a pattern matches.
const SELECTION_FLAGS: &[&str] = &["tags", "mod", "modfile", "overlay"];

fn takes_value(verb: GoVerb, name: &str) -> bool {
    BUILD_VALUE_FLAGS.contains(&name)
        || (verb == GoVerb::Test && {
            let name = name.strip_prefix("test.").unwrap_or(name);
            BINARY_VALUE_FLAGS.contains(&name) || GO_TEST_VALUE_FLAGS.contains(&name)
        })
}

/// One flag as written: `-name`, `--name`, `-name=value`.
struct Flag<'a> {
    name: String,
    inline_value: Option<&'a OsStr>,
}

/// The flag `arg` spells, or `None` for a package (anything not starting
/// with `-`, and `-` alone).
fn flag(arg: &OsStr) -> Option<Flag<'_>> {
    let bytes = arg.as_bytes();
    let body = bytes
        .strip_prefix(b"--")
        .or_else(|| bytes.strip_prefix(b"-"))
        .filter(|body| !body.is_empty())?;
    let (name, inline_value) = match body.iter().position(|&b| b == b'=') {
        Some(at) => (
            body.get(..at).unwrap_or_default(),
            body.get(at + 1..).map(OsStr::from_bytes),
        ),
        None => (body, None),
    };
    Some(Flag {
        name: String::from_utf8_lossy(name).into_owned(),
        inline_value,
    })
}

fn is_true(value: Option<&OsStr>) -> bool {
    value.is_none_or(|v| v == "true" || v == "1" || v == "t" || v == "T" || v == "TRUE")
}

fn chdir_not_first(value: &OsStr) -> error::Error {
    // go's own words, so that scripts that match them keep working.
    error::usage(format!(
        "invalid value {:?} for flag -C: -C flag must be first flag on command line",
        value.to_string_lossy()
    ))
}

/// Parses mgo's arguments (without the program name).
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command> {
    let original: Vec<OsString> = args.into_iter().collect();
    let mut rest = original.as_slice();
    // `mgo -C dir <command> ...`, as `go -C dir <command>`.
    let mut chdir = None;
    if let Some((first, after)) = rest.split_first()
        && let Some(f) = flag(first)
        && f.name == "C"
    {
        let (value, after) = match f.inline_value {
            Some(value) => (value.to_owned(), after),
            None => match after.split_first() {
                Some((value, after)) => (value.clone(), after),
                None => return Err(needs_value("C", "build")),
            },
        };
        chdir = Some(value);
        rest = after;
    }
    let word = rest.first().and_then(|w| w.to_str());
    match word {
        // `go -C dir help` is go's help: the directory changes nothing.
        Some("help") => {
            return Ok(if rest.len() == 1 {
                Command::Help
            } else {
                Command::Go(original)
            });
        }
        Some(w) if GO_COMMANDS.contains(&w) => return Ok(Command::Go(original)),
        Some("inspect" | "verify" | "extract") => {
            return tool_command(rest, chdir.as_deref().map(Path::new));
        }
        Some("join") => return join_command(rest, chdir.as_deref().map(Path::new)),
        _ => {}
    }
    let (verb, after_word) = match word {
        Some("build") => (GoVerb::Build, rest.get(1..).unwrap_or_default()),
        Some("install") => (GoVerb::Install, rest.get(1..).unwrap_or_default()),
        Some("test") => (GoVerb::Test, rest.get(1..).unwrap_or_default()),
        _ => (GoVerb::Build, rest),
    };
    let passthrough = if after_word.len() == rest.len() {
        std::iter::once(OsString::from("build"))
            .chain(original.iter().cloned())
            .collect()
    } else {
        original.clone()
    };
    parse_request(verb, after_word, chdir, passthrough)
}

fn needs_value(name: &str, verb: &str) -> error::Error {
    error::usage(format!(
        "flag -{name} needs a value: see 'go help {verb}' for its meaning"
    ))
}

fn parse_request(
    verb: GoVerb,
    args: &[OsString],
    chdir: Option<OsString>,
    passthrough: Vec<OsString>,
) -> Result<Command> {
    let mut parser = RequestParser {
        first_flag: chdir.is_none(),
        request: Request {
            verb,
            passthrough,
            chdir,
            go_args: Vec::new(),
            key_args: Vec::new(),
            packages: Vec::new(),
            selection_flags: Vec::new(),
            output: None,
            buildmode: None,
            json: false,
            dry_run: false,
            echo_commands: false,
            compile_only: false,
        },
        help: false,
        version: false,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg.as_bytes() == b"--" {
            // Kept, in the packages too: go (and go list) must see it, or
            // they would read "-x" after it as a flag.
            parser.request.packages.push(arg.clone());
            parser.take_rest(arg, args.as_slice(), true);
            break;
        }
        if verb == GoVerb::Test && flag_named(arg, "args") {
            // The rest is for the test binary.
            parser.take_rest(arg, args.as_slice(), false);
            break;
        }
        let Some(f) = flag(arg) else {
            // A package. go build's flags end at the first package; go
            // test's do not (`go test ./x -run Y`).
            parser.request.packages.push(arg.clone());
            if verb != GoVerb::Test {
                parser.take_rest(arg, args.as_slice(), true);
                break;
            }
            parser.forward(arg, None);
            continue;
        };
        let takes_value = takes_value(verb, &f.name);
        let value: Option<OsString> = match (takes_value, f.inline_value) {
            (_, Some(value)) => Some(value.to_owned()),
            (true, None) => Some(
                args.next()
                    .ok_or_else(|| needs_value(&f.name, verb.word()))?
                    .clone(),
            ),
            (false, None) => None,
        };
        let separate = takes_value && f.inline_value.is_none();
        parser.flag(arg, &f.name, value, separate)?;
    }
    Ok(parser.command())
}

/// The state of [`parse_request`] as it walks the arguments.
struct RequestParser {
    request: Request,
    /// No flag seen yet: only the first may be `-C`, as go requires.
    first_flag: bool,
    help: bool,
    version: bool,
}

impl RequestParser {
    /// `arg` and every argument after it go to go as they are (and to the
    /// packages, when `packages`).
    fn take_rest(&mut self, arg: &OsString, rest: &[OsString], packages: bool) {
        let request = &mut self.request;
        if packages {
            request.packages.extend(rest.iter().cloned());
        }
        for list in [&mut request.go_args, &mut request.key_args] {
            list.push(arg.clone());
            list.extend(rest.iter().cloned());
        }
    }

    /// Passes `arg` (and its separate `value`) on to go, and into the key
    /// of the up-to-date record unless it cannot change the outputs.
    fn forward(&mut self, arg: &OsString, value: Option<OsString>) {
        let request = &mut self.request;
        let only_talks = flag(arg).is_some_and(|f| matches!(f.name.as_str(), "v" | "x" | "json"));
        if !only_talks {
            request.key_args.push(arg.clone());
            request.key_args.extend(value.clone());
        }
        request.go_args.push(arg.clone());
        request.go_args.extend(value);
    }

    /// One flag: what mgo must know of it, then passed on to go, except
    /// `-C` and `-o`, which mgo applies itself.
    fn flag(
        &mut self,
        arg: &OsString,
        name: &str,
        value: Option<OsString>,
        separate: bool,
    ) -> Result<()> {
        let is_first = std::mem::replace(&mut self.first_flag, false);
        let verb = self.request.verb;
        let request = &mut self.request;
        match name {
            "h" | "help" => self.help = true,
            "version" if arg.as_bytes().starts_with(b"--") => self.version = true,
            "C" => {
                let value = value.unwrap_or_default();
                if !is_first {
                    return Err(chdir_not_first(&value));
                }
                request.chdir = Some(value);
                return Ok(());
            }
            "o" if verb != GoVerb::Install => {
                request.output = value;
                return Ok(());
            }
            "buildmode" => {
                request.buildmode = value.as_ref().map(|v| v.to_string_lossy().into_owned());
            }
            "json" => request.json = is_true(value.as_deref()),
            "n" => request.dry_run = is_true(value.as_deref()),
            "x" => request.echo_commands = is_true(value.as_deref()),
            "c" if verb == GoVerb::Test => request.compile_only = is_true(value.as_deref()),
            name if SELECTION_FLAGS.contains(&name) => {
                request.selection_flags.push(arg.clone());
                if separate {
                    request.selection_flags.extend(value.clone());
                }
            }
            _ => {}
        }
        self.forward(arg, value.filter(|_| separate));
        Ok(())
    }

    /// What the arguments ask for.
    fn command(self) -> Command {
        let request = self.request;
        if self.help {
            Command::Help
        } else if self.version {
            Command::Version
        } else if request.verb == GoVerb::Test && !request.compile_only {
            Command::Test(request)
        } else {
            Command::Build(request)
        }
    }
}

fn flag_named(arg: &OsStr, name: &str) -> bool {
    flag(arg).is_some_and(|f| f.name == name && f.inline_value.is_none())
}

/// `inspect`, `verify` and `extract`: mgo's own commands, with go-style flags.
/// `inspect`, `verify` or `extract` with its arguments; `chdir` (`-C dir`)
/// is where relative paths are taken from, as go takes them after `-C`.
fn tool_command(args: &[OsString], chdir: Option<&Path>) -> Result<Command> {
    let from_dir = |path: PathBuf| match chdir {
        Some(dir) if path.is_relative() && path != Path::new("-") => dir.join(path),
        _ => path,
    };
    let word = args
        .first()
        .map(|w| w.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut json = false;
    let mut level = None;
    let mut output = None;
    let mut pid = None;
    let mut core = None;
    let mut files = Vec::new();
    let mut rest = args.get(1..).unwrap_or_default().iter();
    while let Some(arg) = rest.next() {
        let Some(f) = flag(arg) else {
            files.push(PathBuf::from(arg));
            continue;
        };
        let mut value = || -> Result<OsString> {
            match f.inline_value {
                Some(v) => Ok(v.to_owned()),
                None => rest
                    .next()
                    .cloned()
                    .ok_or_else(|| error::usage(format!("flag -{} needs a value", f.name))),
            }
        };
        match (word.as_str(), f.name.as_str()) {
            (_, "h" | "help") => return Ok(Command::Help),
            ("inspect", "json") => json = is_true(f.inline_value),
            ("extract", "l") => {
                let v = value()?;
                level = Some(mgo_format::parse_level(v.as_bytes()).ok_or_else(|| {
                    error::usage(format!(
                        "-l {}: not a level: use v1, v2, v3 or v4",
                        v.to_string_lossy()
                    ))
                })?);
            }
            ("extract", "o") => output = Some(PathBuf::from(value()?)),
            ("extract", "pid") => {
                let v = value()?;
                pid = Some(
                    v.to_str()
                        .and_then(|v| v.parse::<u32>().ok())
                        .filter(|&pid| pid > 0)
                        .ok_or_else(|| {
                            error::usage(format!(
                                "-pid {}: not a process ID: use a number that ps or pgrep prints",
                                v.to_string_lossy()
                            ))
                        })?,
                );
            }
            ("extract", "core") => core = Some(from_dir(PathBuf::from(value()?))),
            (_, name) => {
                return Err(error::usage(format!(
                    "{word}: unknown flag -{name}: see 'mgo help'"
                )));
            }
        }
    }
    if word == "extract" && (pid.is_some() || core.is_some()) {
        return extract_running(pid, core, level, files, output.map(from_dir));
    }
    let file = match files.as_slice() {
        [file] => from_dir(file.clone()),
        [] => {
            return Err(error::usage(format!(
                "{word}: name a bundle: mgo {word} FILE"
            )));
        }
        _ => {
            return Err(error::usage(format!(
                "{word}: one file at a time, got {}",
                files.len()
            )));
        }
    };
    Ok(match word.as_str() {
        "inspect" => Command::Inspect { file, json },
        "verify" => Command::Verify { file },
        _ => Command::Extract {
            from: ExtractFrom::Bundle { file, level },
            output: from_dir(output.ok_or_else(extract_needs_output)?),
        },
    })
}

/// `join -o OUT FILE...`, each FILE possibly `vN=FILE`; `chdir` as for
/// [`tool_command`]. A file whose name starts with `vN=` is given as
/// `./vN=...`.
fn join_command(args: &[OsString], chdir: Option<&Path>) -> Result<Command> {
    let from_dir = |path: PathBuf| match chdir {
        Some(dir) if path.is_relative() && path != Path::new("-") => dir.join(path),
        _ => path,
    };
    let mut output = None;
    let mut inputs = Vec::new();
    let mut rest = args.get(1..).unwrap_or_default().iter();
    while let Some(arg) = rest.next() {
        if let Some(f) = flag(arg) {
            match f.name.as_str() {
                "h" | "help" => return Ok(Command::Help),
                "o" => {
                    let value = match f.inline_value {
                        Some(v) => v.to_owned(),
                        None => rest
                            .next()
                            .cloned()
                            .ok_or_else(|| error::usage("flag -o needs a value"))?,
                    };
                    output = Some(from_dir(PathBuf::from(value)));
                }
                name => {
                    return Err(error::usage(format!(
                        "join: unknown flag -{name}: see 'mgo help'"
                    )));
                }
            }
            continue;
        }
        let bytes = arg.as_bytes();
        let (level, path) = match bytes {
            [b'v', digit, b'=', path @ ..] if (b'1'..=b'4').contains(digit) => {
                (Some(digit - b'0'), OsStr::from_bytes(path))
            }
            _ => (None, arg.as_os_str()),
        };
        if path.is_empty() {
            return Err(error::usage(format!(
                "join: {}: name a file after the level",
                arg.to_string_lossy()
            )));
        }
        inputs.push(JoinInput {
            level,
            path: from_dir(PathBuf::from(path)),
        });
    }
    let output = output.ok_or_else(|| {
        error::usage("join: say where to write the bundle: mgo join -o OUT FILE...")
    })?;
    if inputs.is_empty() {
        return Err(error::usage(
            "join: name at least one executable: mgo join -o OUT FILE... (vN=FILE names a level)",
        ));
    }
    Ok(Command::Join { inputs, output })
}

fn extract_needs_output() -> error::Error {
    error::usage("extract: say where to write with -o OUT (or -o - for standard output)")
}

/// `extract -pid PID -o OUT` and `extract -core CORE -o OUT [FILE]`, whose
/// process decides the level.
fn extract_running(
    pid: Option<u32>,
    core: Option<PathBuf>,
    level: Option<u8>,
    files: Vec<PathBuf>,
    output: Option<PathBuf>,
) -> Result<Command> {
    let flag = if pid.is_some() { "-pid" } else { "-core" };
    if level.is_some() {
        return Err(error::usage(format!(
            "extract: -l and {flag} exclude each other: the process ran the level it chose"
        )));
    }
    let output = output.ok_or_else(extract_needs_output)?;
    let from = match (pid, core) {
        (Some(_), Some(_)) => {
            return Err(error::usage(
                "extract: -pid and -core exclude each other: name a process or a core file",
            ));
        }
        (Some(pid), None) if files.is_empty() => ExtractFrom::Process(pid),
        (Some(_), None) => {
            return Err(error::usage(
                "extract: -pid reads the process's own executable: name no FILE",
            ));
        }
        (None, Some(core)) => match <[PathBuf; 1]>::try_from(files) {
            Ok([bundle]) => ExtractFrom::Core {
                core,
                bundle: Some(bundle),
            },
            Err(files) if files.is_empty() => ExtractFrom::Core { core, bundle: None },
            Err(files) => {
                return Err(error::usage(format!(
                    "extract: -core takes at most one bundle, got {}",
                    files.len()
                )));
            }
        },
        (None, None) => ExtractFrom::Bundle {
            file: files.into_iter().next().unwrap_or_default(),
            level,
        },
    };
    Ok(Command::Extract { from, output })
}

/// `go test`'s arguments sorted for building each test binary once with
/// `go test -c` and then running it: what `go test` itself would do, in
/// two steps.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TestSplit {
    /// Flags for `go test -c` (build flags, `-vet`, `-cover`), with their
    /// separate values.
    pub build: Vec<OsString>,
    /// The binary's flags, without the `test.` prefix: name, and value
    /// (`None` for a boolean flag given bare).
    pub binary: Vec<(String, Option<OsString>)>,
    /// `-exec`'s program, if given.
    pub exec: Option<OsString>,
    /// The packages.
    pub packages: Vec<OsString>,
    /// What follows `-args`, for the binary as it is.
    pub args: Vec<OsString>,
}

impl TestSplit {
    /// The last value of the binary flag `name`, if given.
    pub fn value(&self, name: &str) -> Option<&OsStr> {
        self.binary
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_deref().unwrap_or(OsStr::new("true")))
    }
}

/// Splits `go test`'s arguments (`Request::go_args`) into [`TestSplit`].
/// `-json` is left out: the caller turns it into test2json's output.
pub fn split_test_args(go_args: &[OsString]) -> TestSplit {
    let mut split = TestSplit::default();
    let mut args = go_args.iter();
    while let Some(arg) = args.next() {
        if flag_named(arg, "args") {
            split.args.extend(args.cloned());
            break;
        }
        let Some(f) = flag(arg) else {
            split.packages.push(arg.clone());
            continue;
        };
        let name = f.name.strip_prefix("test.").unwrap_or(&f.name).to_owned();
        let value = match f.inline_value {
            Some(v) => Some(v.to_owned()),
            None if takes_value(GoVerb::Test, &f.name) => args.next().cloned(),
            None => None,
        };
        if name == "json" {
            continue;
        }
        if name == "exec" {
            split.exec = value;
        } else if BINARY_VALUE_FLAGS.contains(&name.as_str())
            || BINARY_BOOL_FLAGS.contains(&name.as_str())
        {
            split.binary.push((name, value));
        } else {
            split.build.push(arg.clone());
            if f.inline_value.is_none() {
                split.build.extend(value);
            }
        }
    }
    split
}

/// Finds the last `-name=value` in GOFLAGS, which go also obeys.
pub fn from_goflags(goflags: &str, name: &str) -> Option<String> {
    goflags.split_whitespace().rev().find_map(|word| {
        let f = flag(OsStr::new(word))?;
        (f.name == name).then(|| {
            f.inline_value
                .map_or_else(|| "true".to_owned(), |v| v.to_string_lossy().into_owned())
        })
    })
}

/// The man-style help text.
pub const HELP: &str = include_str!("help.txt");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_args_split_into_build_and_binary_flags() {
        let args: Vec<OsString> = [
            "-tags",
            "x",
            "-bench",
            "Pop",
            "-count=3",
            "./a",
            "-benchmem",
            "-v",
            "-test.benchtime",
            "20x",
            "-coverprofile",
            "c.out",
            "-exec",
            "qemu",
            "-json",
            "-gcflags=-N",
            "./b",
            "-args",
            "-z",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let split = split_test_args(&args);
        assert_eq!(split.build, ["-tags", "x", "-gcflags=-N"]);
        assert_eq!(split.packages, ["./a", "./b"]);
        assert_eq!(split.args, ["-z"]);
        assert_eq!(split.exec.as_deref(), Some(OsStr::new("qemu")));
        let names: Vec<&str> = split.binary.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "bench",
                "count",
                "benchmem",
                "v",
                "benchtime",
                "coverprofile"
            ]
        );
        assert_eq!(split.value("coverprofile"), Some(OsStr::new("c.out")));
        assert_eq!(split.value("count"), Some(OsStr::new("3")));
        assert_eq!(split.value("benchmem"), Some(OsStr::new("true")));
        assert_eq!(split.value("benchtime"), Some(OsStr::new("20x")));
        assert_eq!(split.value("run"), None);
    }

    /// `-coverprofile FILE` takes its value: FILE is not a package.
    #[test]
    fn a_test_flags_separate_value_is_not_a_package() {
        let request = request(&["test", "-coverprofile", "c.out", "./x", "-run", "Y"]);
        assert_eq!(strings(&request.packages), ["./x"]);
    }

    fn parsed(args: &[&str]) -> Result<Command> {
        parse(args.iter().map(OsString::from))
    }

    fn request(args: &[&str]) -> Request {
        match parsed(args) {
            Ok(Command::Build(request) | Command::Test(request)) => request,
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
            assert_eq!(strings(&r.go_args), ["./cmd/x"]);
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
            strings(&r.go_args),
            [
                "-trimpath",
                "-ldflags",
                "-s -w",
                "-tags=a,b",
                "-race",
                "p1",
                "p2"
            ]
        );
        assert_eq!(strings(&r.packages), ["p1", "p2"]);
        assert_eq!(strings(&r.selection_flags), ["-tags=a,b"]);
        assert_eq!(r.chdir.as_deref(), Some(OsStr::new("dir")));
        assert_eq!(r.verb, GoVerb::Build);
    }

    #[test]
    fn packages_start_at_the_first_non_flag_or_after_double_dash() {
        let r = request(&["./a", "-o", "x"]);
        assert_eq!(strings(&r.packages), ["./a", "-o", "x"]);
        assert_eq!(r.output, None);
        let r = request(&["-v", "--", "-weird"]);
        assert_eq!(strings(&r.packages), ["--", "-weird"]);
        assert_eq!(strings(&r.go_args), ["-v", "--", "-weird"]);
        let r = request(&["-"]);
        assert_eq!(strings(&r.packages), ["-"]);
    }

    #[test]
    fn chdir_must_come_first_as_go_requires() {
        for args in [
            &["-C", "d", "build", "."][..],
            &["build", "-C", "d", "."],
            &["-C=d", "-o", "x"],
            &["-C", "d", "test", "-c"],
        ] {
            assert_eq!(request(args).chdir.as_deref(), Some(OsStr::new("d")));
        }
        for args in [
            &["-o", "x", "-C", "d"][..],
            &["build", "-C", "d", "-C", "e"],
        ] {
            let err = parsed(args).unwrap_err();
            assert_eq!(err.status(), 2, "{args:?}");
            assert!(
                err.message()
                    .is_some_and(|m| m.contains("-C flag must be first flag on command line")),
                "{err}"
            );
        }
    }

    #[test]
    fn go_commands_pass_through_with_their_arguments() {
        for word in GO_COMMANDS {
            let args = [word, "-x", "y"];
            assert_eq!(
                parsed(&args).unwrap(),
                Command::Go(args.iter().map(OsString::from).collect())
            );
        }
        assert_eq!(
            parsed(&["-C", "d", "env", "GOOS"]).unwrap(),
            Command::Go(["-C", "d", "env", "GOOS"].map(OsString::from).to_vec())
        );
        assert_eq!(
            parsed(&["help", "build"]).unwrap(),
            Command::Go(["help", "build"].map(OsString::from).to_vec())
        );
    }

    #[test]
    fn install_keeps_its_flags_for_go_and_test_finds_c_and_o_anywhere() {
        let r = request(&["install", "-o", "x", "./cmd/a"]);
        assert_eq!(r.verb, GoVerb::Install);
        assert_eq!(r.output, None);
        assert_eq!(strings(&r.go_args), ["-o", "x", "./cmd/a"]);

        let r = request(&[
            "test", "./pkg", "-run", "-o", "-c", "-o", "bin/", "-args", "-o",
        ]);
        assert_eq!(r.verb, GoVerb::Test);
        assert!(r.compile_only);
        assert_eq!(r.output.as_deref(), Some(OsStr::new("bin/")));
        assert_eq!(strings(&r.packages), ["./pkg"]);
        assert_eq!(
            strings(&r.go_args),
            ["./pkg", "-run", "-o", "-c", "-args", "-o"]
        );
        assert!(matches!(parsed(&["test", "-c"]), Ok(Command::Build(_))));
        assert!(matches!(parsed(&["test", "-v", "."]), Ok(Command::Test(_))));
    }

    #[test]
    fn command_echoes_are_noticed_where_go_reads_them() {
        let echoes = |args: &[&str]| request(args).echo_commands;
        assert!(echoes(&["-x", "."]));
        assert!(echoes(&["--x=true", "."]));
        assert!(!echoes(&["."]));
        assert!(!echoes(&["-x=false", "."]));
        // A value, not a flag: -ldflags takes "-x"; after a package, go
        // build reads no flags.
        assert!(!echoes(&["-ldflags", "-x", "."]));
        assert!(!echoes(&[".", "-x"]));
    }

    #[test]
    fn json_dry_run_and_buildmode_are_noticed() {
        let r = request(&["-json", "-n", "-buildmode", "pie", "."]);
        assert!(r.json && r.dry_run);
        assert_eq!(r.buildmode.as_deref(), Some("pie"));
        let r = request(&["-json=false", "."]);
        assert!(!r.json);
        let r = request(&["-x", "-v", "-ldflags", "-x", "-json", "."]);
        assert_eq!(strings(&r.key_args), ["-ldflags", "-x", "."]);
        assert_eq!(
            from_goflags("-trimpath -buildmode=plugin", "buildmode"),
            Some("plugin".into())
        );
        assert_eq!(from_goflags("-json", "json"), Some("true".into()));
        assert_eq!(from_goflags("-trimpath", "buildmode"), None);
    }

    #[test]
    fn help_version_tools_and_errors() {
        for args in [&["-h"][..], &["--help"], &["help"], &["build", "-help"]] {
            assert_eq!(parsed(args).unwrap(), Command::Help);
        }
        assert_eq!(parsed(&["--version"]).unwrap(), Command::Version);
        let err = parsed(&["-ldflags"]).unwrap_err();
        assert!(err.to_string().contains("-ldflags needs a value"), "{err}");
        assert_eq!(err.status(), 2);
        assert_eq!(
            parsed(&["inspect", "-json", "f"]).unwrap(),
            Command::Inspect {
                file: "f".into(),
                json: true
            }
        );
        assert_eq!(
            parsed(&["extract", "-l", "v3", "f", "-o", "out"]).unwrap(),
            Command::Extract {
                from: ExtractFrom::Bundle {
                    file: "f".into(),
                    level: Some(3)
                },
                output: "out".into()
            }
        );
        assert_eq!(
            parsed(&["extract", "-pid", "42", "-o", "out"]).unwrap(),
            Command::Extract {
                from: ExtractFrom::Process(42),
                output: "out".into()
            }
        );
        assert_eq!(
            parsed(&["-C", "d", "extract", "--core=core.1", "-o", "out", "app"]).unwrap(),
            Command::Extract {
                from: ExtractFrom::Core {
                    core: "d/core.1".into(),
                    bundle: Some("app".into())
                },
                output: "d/out".into()
            }
        );
        for bad in [
            &["extract", "-l", "v5", "f", "-o", "x"][..],
            &["extract", "f"],
            &["extract", "-pid", "0", "-o", "x"],
            &["extract", "-pid", "x", "-o", "x"],
            &["extract", "-pid", "1"],
            &["extract", "-pid", "1", "-o", "x", "f"],
            &["extract", "-pid", "1", "-l", "v2", "-o", "x"],
            &["extract", "-core", "c", "-l", "v2", "-o", "x"],
            &["extract", "-core", "c", "-pid", "1", "-o", "x"],
            &["extract", "-core", "c", "-o", "x", "a", "b"],
            &["verify"],
            &["verify", "a", "b"],
            &["inspect", "-x", "f"],
        ] {
            assert_eq!(parsed(bad).unwrap_err().status(), 2, "{bad:?}");
        }
    }

    /// `mgo -C dir help` and `mgo -C dir inspect FILE` used to build
    /// packages named `help` and `inspect` (issue 15).
    #[test]
    fn the_directory_flag_keeps_mgos_own_commands() {
        assert_eq!(parsed(&["-C", "dir", "help"]).unwrap(), Command::Help);
        assert_eq!(
            parsed(&["-C", "dir", "help", "build"]).unwrap(),
            Command::Go(["-C", "dir", "help", "build"].map(OsString::from).to_vec())
        );
        assert_eq!(
            parsed(&["-C=dir", "inspect", "f"]).unwrap(),
            Command::Inspect {
                file: "dir/f".into(),
                json: false
            }
        );
        assert_eq!(
            parsed(&["-C", "dir", "verify", "/abs/f"]).unwrap(),
            Command::Verify {
                file: "/abs/f".into()
            }
        );
        assert_eq!(
            parsed(&["-C", "dir", "extract", "f", "-o", "out"]).unwrap(),
            Command::Extract {
                from: ExtractFrom::Bundle {
                    file: "dir/f".into(),
                    level: None
                },
                output: "dir/out".into()
            }
        );
        assert_eq!(
            parsed(&["-C", "dir", "extract", "f", "-o", "-"]).unwrap(),
            Command::Extract {
                from: ExtractFrom::Bundle {
                    file: "dir/f".into(),
                    level: None
                },
                output: "-".into()
            }
        );
    }
}
