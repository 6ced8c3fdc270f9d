//! `go list` queries: which packages a command names, and which of the
//! user's sources a level's build reads.

use super::command::{go_command, output_of};
use super::env::query_goflags;
use crate::error::Result;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// `go list` from `dir` over `packages`, with the flags that decide which
/// packages match, printing `format` for each.
fn list(
    dir: &Path,
    goflags: &str,
    selection_flags: &[OsString],
    packages: &[OsString],
    extra: &[&str],
    format: &str,
    goamd64: Option<u8>,
) -> Result<Vec<String>> {
    let mut command = go_command(dir);
    command
        .arg("list")
        .args(selection_flags)
        .args(extra)
        .args(["-e", "-f", format])
        .args(packages)
        .env("GOFLAGS", query_goflags(goflags));
    if let Some(level) = goamd64 {
        command.env("GOAMD64", format!("v{level}"));
    }
    Ok(output_of(command, "go list")?
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

/// The package names (`main` or another) that `packages` match.
pub fn package_names(
    dir: &Path,
    goflags: &str,
    selection_flags: &[OsString],
    packages: &[OsString],
) -> Result<Vec<String>> {
    list(
        dir,
        goflags,
        selection_flags,
        packages,
        &[],
        "{{.Name}}",
        None,
    )
}

/// The import path and directory of each package `packages` match.
pub fn package_dirs(
    dir: &Path,
    goflags: &str,
    selection_flags: &[OsString],
    packages: &[OsString],
) -> Result<Vec<(String, PathBuf)>> {
    let lines = list(
        dir,
        goflags,
        selection_flags,
        packages,
        &[],
        "{{.ImportPath}}\t{{.Dir}}",
        None,
    )?;
    Ok(lines
        .iter()
        .filter_map(|line| line.split_once('\t'))
        .map(|(path, dir)| (path.to_owned(), PathBuf::from(dir)))
        .collect())
}

/// The user's sources a build at `level` reads: the directories of the
/// packages it compiles that are neither in GOROOT nor in the module cache,
/// and the files those packages embed.
pub fn sources(
    dir: &Path,
    goflags: &str,
    selection_flags: &[OsString],
    packages: &[OsString],
    test: bool,
    level: u8,
    gomodcache: &str,
) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let extra: &[&str] = if test {
        &["-deps", "-test"]
    } else {
        &["-deps"]
    };
    let lines = list(
        dir,
        goflags,
        selection_flags,
        packages,
        extra,
        "{{if not .Standard}}D\t{{.Dir}}\n{{range .EmbedFiles}}E\t{{$.Dir}}/{{.}}\n{{end}}{{end}}",
        Some(level),
    )?;
    let user = |path: &Path| gomodcache.is_empty() || !path.starts_with(gomodcache);
    let (mut dirs, mut files) = (Vec::new(), Vec::new());
    for line in lines {
        match line.split_once('\t') {
            Some(("D", path)) if user(Path::new(path)) => dirs.push(PathBuf::from(path)),
            Some(("E", path)) if user(Path::new(path)) => files.push(PathBuf::from(path)),
            _ => {}
        }
    }
    Ok((dirs, files))
}
