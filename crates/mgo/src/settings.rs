//! mgo's environment variables, read and checked once, before anything runs.

use crate::cli::{self, Request};
use crate::encode;
use crate::error::{Result, fail};
use std::env;
use std::path::PathBuf;

/// What the environment asks of a build.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `MGO_PARALLEL_BUILD`: how many go builds run at once.
    pub parallel: usize,
    /// `MGO_COMPRESS`, as given (part of the no-op state) and parsed.
    pub compress_text: String,
    /// The parsed mode.
    pub compression: encode::Mode,
    /// `MGO_LAUNCH`: the table flags.
    pub flags: u32,
    /// Where mgo keeps what it needs to skip up-to-date rebuilds
    /// (`MGOCACHE`), or `None` when off.
    pub state_dir: Option<PathBuf>,
    /// `-json` on the command line or in GOFLAGS.
    pub json: bool,
}

impl Settings {
    /// Reads the environment for `request`.
    pub fn read(request: &Request) -> Result<Self> {
        let json = json_output(request);
        check_goamd64()?;
        let (compress_text, compression) = compression_mode()?;
        Ok(Self {
            parallel: parallel_builds()?,
            compress_text,
            compression,
            flags: launch_flags()?,
            state_dir: state_dir()?,
            json,
        })
    }
}

/// Whether go prints JSON (`-json` on the command line or in GOFLAGS).
pub fn json_output(request: &Request) -> bool {
    request.json || cli::from_goflags(&goflags(), "json").is_some_and(|v| v == "true" || v == "1")
}

fn goflags() -> String {
    env::var("GOFLAGS").unwrap_or_default()
}

/// The `-buildmode` in effect, if it is one that does not make an
/// executable (the command line's, else GOFLAGS', as go reads them).
pub fn non_executable_buildmode(request: &Request) -> Option<String> {
    let mode = request
        .buildmode
        .clone()
        .or_else(|| cli::from_goflags(&goflags(), "buildmode"))?;
    (!matches!(mode.as_str(), "" | "default" | "exe" | "pie")).then_some(mode)
}

fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `MGO_PARALLEL_BUILD`, or one build per CPU.
pub fn parallel_builds() -> Result<usize> {
    match env::var("MGO_PARALLEL_BUILD") {
        Err(env::VarError::NotPresent) => Ok(available_cpus()),
        Ok(value) if value.is_empty() => Ok(available_cpus()),
        Ok(value) => value.parse::<usize>().ok().filter(|&n| n > 0).ok_or_else(|| {
            fail(format!("MGO_PARALLEL_BUILD={value} is not a positive whole number: set how many builds may run at once, e.g. 2"))
        }),
        Err(env::VarError::NotUnicode(_)) => Err(fail(
            "MGO_PARALLEL_BUILD is not valid text: set a positive whole number",
        )),
    }
}

/// `MGO_COMPRESS`: as given, and parsed.
pub fn compression_mode() -> Result<(String, encode::Mode)> {
    match env::var("MGO_COMPRESS") {
        Err(env::VarError::NotPresent) => Ok((String::new(), encode::Mode::Raw)),
        Ok(value) => {
            let mode = encode::Mode::parse(&value)?;
            Ok((value, mode))
        }
        Err(env::VarError::NotUnicode(_)) => Err(fail(format!(
            "MGO_COMPRESS is not valid text: use {}",
            encode::FORMS
        ))),
    }
}

/// `MGO_LAUNCH`: how the bundle starts its variants by default.
pub fn launch_flags() -> Result<u32> {
    match env::var("MGO_LAUNCH").as_deref() {
        Err(env::VarError::NotPresent) | Ok("" | "mapped") => Ok(0),
        Ok("memfd") => Ok(mgo_format::FLAG_MEMFD_LAUNCH),
        Ok("file") => Ok(mgo_format::FLAG_FILE_LAUNCH),
        Ok(value) => Err(fail(format!(
            "MGO_LAUNCH={value} is not a launch mode: use mapped (the default), memfd or file"
        ))),
        Err(env::VarError::NotUnicode(_)) => Err(fail(
            "MGO_LAUNCH is not valid text: use mapped (the default), memfd or file",
        )),
    }
}

/// Checked before go runs, for a message that says what GOAMD64 means to
/// mgo; go reports the same value through `go env` afterwards.
pub fn check_goamd64() -> Result<()> {
    if let Some(value) = env::var_os("GOAMD64").filter(|v| !v.is_empty()) {
        let text = value.to_string_lossy();
        if mgo_format::parse_level(text.as_bytes()).is_none() {
            return Err(fail(format!(
                "GOAMD64={text} is not a level: set v1, v2, v3 or v4 (the lowest level to bundle), or leave it empty"
            )));
        }
    }
    Ok(())
}

/// `MGOCACHE`: a directory, or `off`. By default the user's cache directory
/// (`$XDG_CACHE_HOME/mgo`, else `$HOME/.cache/mgo`), as go's GOCACHE; none
/// when neither is set, which only makes every rebuild a full one.
fn state_dir() -> Result<Option<PathBuf>> {
    let absolute = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    match env::var_os("MGOCACHE") {
        Some(v) if v == "off" => Ok(None),
        Some(v) if !v.is_empty() => absolute(v.clone()).map(Some).ok_or_else(|| {
            fail(format!(
                "MGOCACHE={} is not an absolute path: set an absolute directory, or off",
                v.to_string_lossy()
            ))
        }),
        _ => Ok(env::var_os("XDG_CACHE_HOME")
            .and_then(absolute)
            .or_else(|| {
                env::var_os("HOME")
                    .and_then(absolute)
                    .map(|h| h.join(".cache"))
            })
            .map(|base| base.join("mgo"))),
    }
}
