//! What `go env` says about the target and the toolchain, the Go versions
//! mgo works with, and the user's GOFLAGS: as go reads them, and the part
//! of them mgo's own queries honour.

use super::command::{go_command, output_of};
use crate::error::Result;
use std::path::Path;

/// What `go env` says about the target and the toolchain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GoEnv {
    /// GOOS.
    pub goos: String,
    /// GOARCH.
    pub goarch: String,
    /// GOAMD64 as go resolves it (v1 when unset; empty for other GOARCHes).
    pub goamd64: String,
    /// GOVERSION, e.g. `go1.26.8`.
    pub version: String,
    /// GOMODCACHE: module sources, which never change in place.
    pub gomodcache: String,
    /// GOBIN, where `go install` writes (empty: GOPATH's first bin).
    pub gobin: String,
    /// GOPATH.
    pub gopath: String,
    /// GOHOSTOS and GOHOSTARCH: `go install` of a cross-compiled program
    /// writes elsewhere.
    pub gohostos: String,
    /// See `gohostos`.
    pub gohostarch: String,
    /// GOFLAGS as go reads it: the variable, else the go env file's. The
    /// builds get it from the environment; mgo's own queries only the part
    /// that changes their answers ([`query_goflags`]).
    pub goflags: String,
}

const ENV_NAMES: [&str; 10] = [
    "GOOS",
    "GOARCH",
    "GOAMD64",
    "GOVERSION",
    "GOMODCACHE",
    "GOBIN",
    "GOPATH",
    "GOHOSTOS",
    "GOHOSTARCH",
    "GOENV",
];

/// GOFLAGS for a go that must ignore the user's: go takes an empty
/// variable as unset and reads its env file instead (where `go env -w
/// GOFLAGS=-json` puts it), so it gets blank space, which holds no flags.
const NO_GOFLAGS: &str = " ";

/// The flags of GOFLAGS that change which packages and files `go list`
/// selects (build constraints, module mode, overlays, instrumentation that
/// adds dependencies). The others (`-json`, `-n`, `-x`, `-v`, `-a`,
/// `-work`, ...) shape output or act on builds, which mgo's queries neither
/// make nor could read back.
const QUERY_GOFLAGS: [&str; 13] = [
    "tags",
    "mod",
    "modfile",
    "overlay",
    "modcacherw",
    "race",
    "msan",
    "asan",
    "cover",
    "coverpkg",
    "covermode",
    "pgo",
    "compiler",
];

/// The part of `goflags` that mgo's `go list` queries honour, or
/// [`NO_GOFLAGS`].
pub fn query_goflags(goflags: &str) -> String {
    let kept: Vec<&str> = goflags
        .split_whitespace()
        .filter(|word| {
            let name = word.trim_start_matches('-');
            let name = name.split_once('=').map_or(name, |(name, _)| name);
            word.starts_with('-') && QUERY_GOFLAGS.contains(&name)
        })
        .collect();
    if kept.is_empty() {
        NO_GOFLAGS.to_owned()
    } else {
        kept.join(" ")
    }
}

/// GOFLAGS as go reads it: the variable if it is not empty, else the
/// `GOFLAGS=` line of the go env file at `goenv` (what `go env -w` writes).
fn user_goflags(goenv: &str) -> String {
    if let Some(value) = std::env::var_os("GOFLAGS").filter(|v| !v.is_empty()) {
        return value.to_string_lossy().into_owned();
    }
    if goenv.is_empty() || goenv == "off" {
        return String::new();
    }
    let text = std::fs::read_to_string(goenv).unwrap_or_default();
    text.lines()
        .filter_map(|line| line.strip_prefix("GOFLAGS="))
        .next_back()
        .map(|value| {
            ['"', '\'']
                .iter()
                .find_map(|&q| value.strip_prefix(q)?.strip_suffix(q))
                .unwrap_or(value)
                .to_owned()
        })
        .unwrap_or_default()
}

/// Asks go about the target and the toolchain, from `dir` (where `-C`
/// points: a go.mod there may select another toolchain).
pub fn env(dir: &Path) -> Result<GoEnv> {
    let mut command = go_command(dir);
    // No flag of GOFLAGS changes the values asked for here; `-json`,
    // `-changed` or `-n` would change how they are printed.
    command
        .arg("env")
        .args(ENV_NAMES)
        .env("GOFLAGS", NO_GOFLAGS);
    let text = output_of(command, "go env")?;
    let mut lines = text.lines().map(str::trim).map(str::to_owned);
    let mut next = || lines.next().unwrap_or_default();
    let env = GoEnv {
        goos: next(),
        goarch: next(),
        goamd64: next(),
        version: next(),
        gomodcache: next(),
        gobin: next(),
        gopath: next(),
        gohostos: next(),
        gohostarch: next(),
        goflags: user_goflags(&next()),
    };
    Ok(env)
}

/// Whether a `go version` string (`go1.26.8`, `go1.21rc2`, `devel go1.27-…`)
/// is at least 1.18, the first release with GOAMD64 and self-contained
/// build info. Development versions are taken to be new.
pub fn version_supported(version: &str) -> bool {
    if version.starts_with("devel") {
        return true;
    }
    let Some(rest) = version.strip_prefix("go") else {
        return false;
    };
    let mut parts = rest.split(|c: char| !c.is_ascii_digit());
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (major, minor) >= (1, 18)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_keep_only_the_goflags_that_select_packages() {
        assert_eq!(query_goflags(""), NO_GOFLAGS);
        assert_eq!(query_goflags("-json -changed -n -x -v -a"), NO_GOFLAGS);
        assert_eq!(
            query_goflags("-json -tags=a,b --mod=vendor -modfile=x.mod -trimpath -race"),
            "-tags=a,b --mod=vendor -modfile=x.mod -race"
        );
    }

    #[test]
    fn versions() {
        for (v, ok) in [
            ("go1.26.8", true),
            ("go1.18", true),
            ("go1.21rc2", true),
            ("go1.17.13", false),
            ("go1.9", false),
            ("go2.0", true),
            ("devel go1.27-abcdef", true),
            ("", false),
        ] {
            assert_eq!(version_supported(v), ok, "{v}");
        }
    }
}
