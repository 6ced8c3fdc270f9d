//! mgo: `go build`, once per x86-64 microarchitecture level, into one Linux
//! executable that starts the best build for the CPU it runs on.
//!
//! `main` parses, runs and maps the outcome to an exit status in one place.
//! The modules: `cli` (arguments), `go` (running the toolchain), `output`
//! (destinations, atomic writes), `bundle` (the file format's writer).

mod bundle;
mod cli;
mod compress;
mod go;
mod output;

use output::Destination;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::{env, fs};

/// The launcher executables, built by build.rs from crates/launcher: one per
/// decoder, so that each bundle carries only the one it needs.
static LAUNCHER: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/mgo-launcher"));
static LAUNCHER_ZSTD: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/mgo-launcher-zstd"));
static LAUNCHER_DEFLATE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/mgo-launcher-deflate"));
static LAUNCHER_LZ4: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/mgo-launcher-lz4"));

fn launcher_for(encoding: mgo_format::Encoding) -> &'static [u8] {
    match encoding {
        mgo_format::Encoding::Raw => LAUNCHER,
        mgo_format::Encoding::Zstd => LAUNCHER_ZSTD,
        mgo_format::Encoding::Deflate => LAUNCHER_DEFLATE,
        mgo_format::Encoding::Lz4 => LAUNCHER_LZ4,
    }
}

/// Why mgo stops early: a line for stderr (none if go already said it all)
/// and an exit status.
struct Failure {
    message: String,
    status: u8,
}

fn fail(message: impl Into<String>) -> Failure {
    Failure {
        message: message.into(),
        status: 1,
    }
}

fn main() -> ExitCode {
    match run(env::args_os().skip(1)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("mgo: {}", failure.message);
            ExitCode::from(failure.status)
        }
    }
}

fn run(args: impl IntoIterator<Item = OsString>) -> Result<(), Failure> {
    let request = match cli::parse(args) {
        Ok(cli::Command::Build(request)) => request,
        Ok(cli::Command::Help) => {
            print!("{}", cli::HELP);
            return Ok(());
        }
        Ok(cli::Command::Version) => {
            println!("mgo {}", env!("CARGO_PKG_VERSION"));
            return Ok(());
        }
        Err(message) => return Err(Failure { message, status: 2 }),
    };
    let parallel = parallel_builds()?;
    let compression = compression_mode()?;
    let flags = launch_flags()?;
    check_buildmode(&request)?;
    if let Some(value) = env::var_os("GOAMD64").filter(|v| !v.is_empty()) {
        level_of(&value.to_string_lossy()).ok_or_else(|| {
            fail(format!(
                "GOAMD64={} is not a level: set v1, v2, v3 or v4 (the lowest level to bundle), or leave it empty",
                value.to_string_lossy()
            ))
        })?;
    }
    let cwd =
        env::current_dir().map_err(|e| fail(format!("cannot read the current directory: {e}")))?;
    let build_dir = go::build_dir(request.chdir.as_deref()).map_err(|e| fail(e.to_string()))?;
    if !build_dir.is_dir() {
        return Err(fail(format!(
            "-C {}: no such directory",
            build_dir.display()
        )));
    }

    let go_env = go::env(&build_dir).map_err(go_failure)?;
    if go_env.goos != "linux" {
        return Err(fail(format!(
            "GOOS={}: mgo builds Linux executables only; use go build for other systems",
            go_env.goos
        )));
    }
    if go_env.goarch != "amd64" {
        return Err(fail(format!(
            "GOARCH={}: mgo builds amd64 executables only; use go build for other architectures",
            go_env.goarch
        )));
    }
    if !go::version_supported(&go_env.version) {
        // Go before 1.16 does not even report GOVERSION.
        let version = if go_env.version.is_empty() {
            "this go"
        } else {
            &go_env.version
        };
        return Err(fail(format!(
            "{version} is too old: mgo needs Go 1.18 or newer (GOAMD64 levels); install a newer Go"
        )));
    }
    let lowest = level_of(&go_env.goamd64).ok_or_else(|| {
        fail(format!(
            "go reports GOAMD64={}: expected v1 to v4",
            go_env.goamd64
        ))
    })?;
    let levels: Vec<u8> = (lowest..=4).collect();

    let destination = Destination::new(request.output.as_deref(), &build_dir);
    let writes = match &destination {
        Destination::Discard => false,
        Destination::File(path) => {
            // Checked before building too, to fail fast (go checks after).
            output::check_replaceable(path).map_err(fail)?;
            true
        }
        Destination::Dir(_) => true,
        Destination::Default(_) => builds_one_main_package(&cwd, &request)?,
    };

    // Installed before anything temporary exists, so that an interrupt
    // always goes through the path that removes it.
    let builds = Arc::new(go::Builds::default());
    {
        let builds = Arc::clone(&builds);
        // Fails only if a handler is set already, which nothing else does.
        let _ = ctrlc::set_handler(move || builds.interrupt());
    }
    // Inside GOTMPDIR when the user set one (a place where go may work),
    // else the usual temporary directory.
    let temp_base = env::var_os("GOTMPDIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(env::temp_dir);
    let temp = tempfile::Builder::new()
        .prefix("mgo-")
        .tempdir_in(&temp_base)
        .map_err(|e| fail(format!("cannot create a temporary directory: {e}")))?;
    let variant_dir = |level: u8| temp.path().join(format!("v{level}"));
    let mut variant_builds = Vec::new();
    for &level in &levels {
        fs::create_dir(variant_dir(level))
            .map_err(|e| fail(format!("cannot create a temporary directory: {e}")))?;
        let target = match &destination {
            Destination::Discard => Some(OsString::from("/dev/null")),
            Destination::File(_) => Some(variant_dir(level).join("out").into_os_string()),
            _ if writes => {
                let mut dir = variant_dir(level).into_os_string();
                dir.push("/");
                Some(dir)
            }
            _ => None,
        };
        variant_builds.push(go::VariantBuild { level, target });
    }

    builds
        .run_all(
            &cwd,
            temp.path(),
            &request.go_flags,
            &request.packages,
            &variant_builds,
            parallel,
        )
        .map_err(go_failure)?;
    if !writes {
        return Ok(());
    }

    let programs = collect_programs(&destination, &levels, &variant_dir)?;
    for program in &programs {
        output::check_replaceable(&program.dest).map_err(fail)?;
    }
    if let Destination::Dir(dir) = &destination {
        fs::create_dir_all(dir)
            .map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;
    }
    for program in &programs {
        if builds.interrupted() {
            return Err(go_failure(go::Error::Interrupted));
        }
        write_program(program, compression, flags)?;
    }
    Ok(())
}

/// One program to bundle: its destination and its variants' files.
struct Program {
    dest: PathBuf,
    variants: Vec<(u8, PathBuf)>,
}

/// Pairs each executable go wrote with its destination.
fn collect_programs(
    destination: &Destination,
    levels: &[u8],
    variant_dir: &dyn Fn(u8) -> PathBuf,
) -> Result<Vec<Program>, Failure> {
    let lowest = levels.first().copied().unwrap_or(1);
    let names: Vec<OsString> = match destination {
        Destination::File(_) => vec![OsString::from("out")],
        _ => {
            let mut names: Vec<OsString> = fs::read_dir(variant_dir(lowest))
                .map_err(|e| fail(format!("cannot list go's output: {e}")))?
                .filter_map(|entry| entry.ok().map(|e| e.file_name()))
                .collect();
            names.sort();
            names
        }
    };
    let mut programs = Vec::new();
    for name in names {
        let variants: Vec<(u8, PathBuf)> = levels
            .iter()
            .map(|&level| (level, variant_dir(level).join(&name)))
            .collect();
        if let Some((level, _)) = variants.iter().find(|(_, path)| !path.is_file()) {
            return Err(fail(format!(
                "go build wrote {} for some levels but not for v{level}",
                name.to_string_lossy()
            )));
        }
        if variants
            .first()
            .is_some_and(|(_, path)| !output::is_elf(path))
        {
            // go build -o FILE on a library writes a package archive.
            return Err(fail(
                "-o names a file, but the package is not a main package (go build would write a package archive): mgo bundles executables only",
            ));
        }
        let dest = match destination {
            Destination::File(path) => path.clone(),
            Destination::Dir(dir) | Destination::Default(dir) => dir.join(&name),
            Destination::Discard => continue,
        };
        programs.push(Program { dest, variants });
    }
    Ok(programs)
}

fn write_program(
    program: &Program,
    compression: compress::Mode,
    flags: u32,
) -> Result<(), Failure> {
    let mut builds = Vec::with_capacity(program.variants.len());
    let mut mode = 0o755;
    for (i, (level, path)) in program.variants.iter().enumerate() {
        let bytes = fs::read(path)
            .map_err(|e| fail(format!("cannot read go's output {}: {e}", path.display())))?;
        if i == 0 {
            // go created it with 0777 minus the umask: keep go's mode.
            mode = fs::metadata(path)
                .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()))
                .unwrap_or(mode);
        }
        builds.push((*level, bytes));
    }
    let variants = bundle::Variants {
        builds,
        mode: compression,
        flags,
    };
    let launcher = launcher_for(compression.encoding());
    output::write_bundle(&program.dest, launcher, &variants, mode).map_err(fail)
}

/// Whether `go build` without `-o` would write an executable: only for a
/// single main package. Otherwise it compiles and discards, and so does mgo
/// (building without `-o`: go rejects `-o dir/` for a library). `go list`
/// expands patterns exactly as go build will.
fn builds_one_main_package(cwd: &Path, request: &cli::Request) -> Result<bool, Failure> {
    let names = go::package_names(cwd, &request.go_flags, &request.packages).map_err(go_failure)?;
    Ok(matches!(names.as_slice(), [name] if name == "main"))
}

fn go_failure(err: go::Error) -> Failure {
    match err {
        go::Error::Message(message) => fail(message),
        go::Error::Interrupted => Failure {
            message: "interrupted".into(),
            status: 130,
        },
        go::Error::BuildFailed { level, status } => Failure {
            message: format!(
                "building the GOAMD64=v{level} variant failed (go build: {}); nothing was written",
                go::describe_status(&status)
            ),
            status: status
                .code()
                .and_then(|c| u8::try_from(c).ok())
                .filter(|&c| c != 0)
                .unwrap_or(1),
        },
    }
}

fn level_of(value: &str) -> Option<u8> {
    mgo_format::parse_level(value.as_bytes())
}

fn parallel_builds() -> Result<usize, Failure> {
    match env::var("MGO_PARALLEL_BUILD") {
        Err(env::VarError::NotPresent) => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
        Ok(value) if value.is_empty() => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
        Ok(value) => value.parse::<usize>().ok().filter(|&n| n > 0).ok_or_else(|| {
            fail(format!("MGO_PARALLEL_BUILD={value} is not a positive whole number: set how many builds may run at once, e.g. 2"))
        }),
        Err(env::VarError::NotUnicode(_)) => Err(fail("MGO_PARALLEL_BUILD is not valid text: set a positive whole number")),
    }
}

fn compression_mode() -> Result<compress::Mode, Failure> {
    match env::var("MGO_COMPRESS") {
        Err(env::VarError::NotPresent) => Ok(compress::Mode::Raw),
        Ok(value) => compress::Mode::parse(&value).map_err(fail),
        Err(env::VarError::NotUnicode(_)) => Err(fail(format!(
            "MGO_COMPRESS is not valid text: use {}",
            compress::FORMS
        ))),
    }
}

/// `MGO_LAUNCH`: how the bundle starts its variants by default.
fn launch_flags() -> Result<u32, Failure> {
    match env::var("MGO_LAUNCH").as_deref() {
        Err(env::VarError::NotPresent) | Ok("" | "mapped") => Ok(0),
        Ok("memfd") => Ok(mgo_format::FLAG_MEMFD_LAUNCH),
        Ok(value) => Err(fail(format!(
            "MGO_LAUNCH={value} is not a launch mode: use mapped (the default) or memfd"
        ))),
        Err(env::VarError::NotUnicode(_)) => Err(fail(
            "MGO_LAUNCH is not valid text: use mapped (the default) or memfd",
        )),
    }
}

fn check_buildmode(request: &cli::Request) -> Result<(), Failure> {
    let from_goflags = env::var("GOFLAGS")
        .ok()
        .and_then(|f| cli::buildmode_from_goflags(&f));
    let Some(mode) = request.buildmode.clone().or(from_goflags) else {
        return Ok(());
    };
    match mode.as_str() {
        "default" | "exe" | "pie" => Ok(()),
        _ => Err(fail(format!(
            "-buildmode={mode} does not make an executable: mgo bundles executables (default, exe or pie); use go build for {mode}"
        ))),
    }
}
