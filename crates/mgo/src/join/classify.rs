//! What one input of `mgo join` is, from its bytes alone: a Go build (its
//! build information, whose `GOAMD64` setting is its level), another x86-64
//! executable (the level its `GNU_PROPERTY_X86_ISA_1_NEEDED` note asks
//! for, if it has one), or something join refuses, with the reason and the
//! fix. Whether several inputs make one program is [`differs`]'s question.

use crate::bundle::buildinfo::{self, BuildInfo};
use object::LittleEndian as LE;
use object::elf::{
    DF_1_PIE, DT_FLAGS_1, EM_X86_64, ET_DYN, ET_EXEC, FileHeader64, GNU_PROPERTY_X86_ISA_1_NEEDED,
    PT_INTERP,
};
use object::read::elf::{Dyn, FileHeader, ProgramHeader};

/// What made an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Maker {
    /// `go build`, which recorded how.
    Go(BuildInfo),
    /// Any other toolchain.
    Other,
}

/// An input join accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub maker: Maker,
    /// The level the file itself names: a Go build's `GOAMD64`, exact (if
    /// its build information records it); or
    /// the highest level its ISA note says it needs, a lower bound (gcc
    /// writes the note for `-march` only with `-mneeded`; without it, the
    /// C runtime's objects make the note say baseline whatever `-march`
    /// was).
    pub marker: Option<u8>,
}

impl Input {
    /// Whether an explicit `vN=` level agrees with the file: a Go build's
    /// level is exactly its `GOAMD64`; another program may be named any
    /// level at or above what its note says it needs.
    pub fn accepts(&self, level: u8) -> bool {
        match (&self.maker, self.marker) {
            (_, None) => true,
            (Maker::Go(_), Some(marker)) => level == marker,
            (Maker::Other, Some(marker)) => level >= marker,
        }
    }
}

/// Where Go's build information starts: its magic, at a 16-byte boundary
/// (debug/buildinfo searches the same way in a file it cannot read as ELF).
const BUILDINFO_MAGIC: &[u8] = b"\xff Go buildinf:";

/// The refusal for a Go build made for another target, if `info` says it
/// is one (a toolchain that runs Go's linker itself, as rules_go does, may
/// record no settings at all: the ELF header then decides).
fn other_target(info: &BuildInfo) -> Option<String> {
    let setting = |name: &str| {
        info.settings
            .iter()
            .find_map(|s| s.strip_prefix(name)?.strip_prefix('='))
    };
    let (goos, goarch) = (setting("GOOS"), setting("GOARCH"));
    if goos.is_none() && goarch.is_none() {
        return None;
    }
    let (goos, goarch) = (goos.unwrap_or("?"), goarch.unwrap_or("?"));
    (goos != "linux" || goarch != "amd64").then(|| {
        format!("a Go build for GOOS={goos} GOARCH={goarch}: build it with GOOS=linux GOARCH=amd64")
    })
}

/// Go's build information found by its magic in a file that is not an
/// x86-64 ELF executable (a PE or Mach-O file, a 32-bit or arm64 build).
fn scanned_buildinfo(bytes: &[u8]) -> Option<BuildInfo> {
    bytes
        .chunks(16)
        .enumerate()
        .filter(|(_, chunk)| chunk.starts_with(BUILDINFO_MAGIC))
        .find_map(|(i, _)| buildinfo::parse(bytes.get(i * 16..)?))
}

/// Classifies one input; `Err` holds why join refuses it and what to do
/// instead.
pub fn classify(bytes: &[u8]) -> Result<Input, String> {
    const NOT_AN_EXECUTABLE: &str =
        "not an x86-64 ELF executable: join Linux executables built for x86-64";
    let header = FileHeader64::<LE>::parse(bytes)
        .ok()
        .filter(|h| h.e_machine(LE) == EM_X86_64);
    let Some(header) = header else {
        return Err(scanned_buildinfo(bytes)
            .and_then(|info| other_target(&info))
            .unwrap_or_else(|| NOT_AN_EXECUTABLE.to_owned()));
    };
    let section = crate::elf::Elf::parse(bytes).and_then(|elf| elf.section(".go.buildinfo"));
    let go = match section {
        Some(section) => Some(buildinfo::parse(section).ok_or_else(|| {
            "its Go build information is unreadable (a Go before 1.18?): build it with Go 1.18 or newer".to_owned()
        })?),
        None => None,
    };
    if let Some(refusal) = go.as_ref().and_then(other_target) {
        return Err(refusal);
    }
    let headers = header
        .program_headers(LE, bytes)
        .map_err(|_| NOT_AN_EXECUTABLE.to_owned())?;
    if headers
        .iter()
        .any(|p| p.p_type(LE).0 == mgo_format::SEGMENT_TYPE)
    {
        return Err(
            "already an mgo bundle: join the builds it holds (mgo extract -l vN writes each)"
                .to_owned(),
        );
    }
    let kind = header.e_type(LE);
    if kind == ET_DYN {
        let interpreter = headers.iter().any(|p| p.p_type(LE) == PT_INTERP);
        if !interpreter && !pie_flag(header, bytes) {
            return Err(
                "a shared library, not an executable (no interpreter, no DF_1_PIE): join executables"
                    .to_owned(),
            );
        }
    } else if kind != ET_EXEC {
        return Err(NOT_AN_EXECUTABLE.to_owned());
    }
    Ok(match go {
        Some(info) => {
            // Without the setting (a linker run by another build system),
            // the level must be named.
            let level = info
                .settings
                .iter()
                .find_map(|s| s.strip_prefix("GOAMD64="))
                .and_then(|v| mgo_format::parse_level(v.as_bytes()));
            Input {
                maker: Maker::Go(info),
                marker: level,
            }
        }
        None => Input {
            maker: Maker::Other,
            marker: isa_needed(header, bytes),
        },
    })
}

/// Whether the dynamic section says `DF_1_PIE`: a static PIE has no
/// interpreter, and only this tells it from a shared library.
fn pie_flag(header: &FileHeader64<LE>, bytes: &[u8]) -> bool {
    let Ok(headers) = header.program_headers(LE, bytes) else {
        return false;
    };
    headers
        .iter()
        .filter_map(|p| p.dynamic(LE, bytes).ok().flatten())
        .flatten()
        .any(|d| d.d_tag(LE) == DT_FLAGS_1 && d.d_val(LE) & DF_1_PIE.0 != 0)
}

/// The highest level the `GNU_PROPERTY_X86_ISA_1_NEEDED` property of the
/// executable's `PT_NOTE` segments asks for: bit 0 is the baseline (v1),
/// bits 1 to 3 are v2 to v4.
fn isa_needed(header: &FileHeader64<LE>, bytes: &[u8]) -> Option<u8> {
    let headers = header.program_headers(LE, bytes).ok()?;
    let mut needed: Option<u32> = None;
    for notes in headers
        .iter()
        .filter_map(|p| p.notes(LE, bytes).ok().flatten())
    {
        for note in notes.flatten() {
            for property in note.gnu_properties(LE).into_iter().flatten().flatten() {
                if property.pr_type() == GNU_PROPERTY_X86_ISA_1_NEEDED
                    && let Ok(bits) = property.data_u32(LE)
                {
                    needed = Some(needed.unwrap_or(0) | bits);
                }
            }
        }
    }
    let bits = needed? & 0xf;
    (bits != 0).then(|| 4 - bits.leading_zeros().saturating_sub(28) as u8)
}

/// The first difference, other than the level, that makes two Go builds
/// builds of different programs, named as `go version -m` names it.
pub fn differs(a: &BuildInfo, b: &BuildInfo) -> Option<String> {
    if a.go_version != b.go_version {
        return Some(format!(
            "the Go version ({} and {})",
            a.go_version, b.go_version
        ));
    }
    if a.path != b.path {
        return Some(format!("the main package ({} and {})", a.path, b.path));
    }
    if a.module != b.module {
        let shown = |m: &Option<(String, String)>| {
            m.as_ref()
                .map_or("none".to_owned(), |(p, v)| format!("{p} {v}"))
        };
        return Some(format!(
            "the main module ({} and {})",
            shown(&a.module),
            shown(&b.module)
        ));
    }
    if a.deps != b.deps {
        let only = |x: &BuildInfo, y: &BuildInfo| {
            x.deps
                .iter()
                .find(|d| !y.deps.contains(d))
                .map_or("none".to_owned(), |d| {
                    d.replace('\t', " ").trim().to_owned()
                })
        };
        return Some(format!(
            "the module versions ({} and {})",
            only(a, b),
            only(b, a)
        ));
    }
    let key = |s: &String| s.split_once('=').map_or(s.clone(), |(k, _)| k.to_owned());
    let settings = |x: &BuildInfo| -> Vec<(String, String)> {
        x.settings
            .iter()
            .filter(|s| !s.starts_with("GOAMD64="))
            .map(|s| (key(s), s.clone()))
            .collect()
    };
    let (sa, sb) = (settings(a), settings(b));
    for (name, value) in &sa {
        let other = sb.iter().find(|(n, _)| n == name).map(|(_, v)| v);
        if other != Some(value) {
            return Some(format!(
                "the build setting {name} ({value} and {})",
                other.map_or("unset", String::as_str)
            ));
        }
    }
    sb.iter()
        .find(|(name, _)| !sa.iter().any(|(n, _)| n == name))
        .map(|(name, value)| format!("the build setting {name} (unset and {value})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(lines: &[&str]) -> BuildInfo {
        BuildInfo {
            go_version: "go1.26.0".into(),
            path: "example.com/hello".into(),
            module: Some(("example.com/hello".into(), "(devel)".into())),
            settings: lines.iter().map(|s| s.to_string()).collect(),
            deps: Vec::new(),
        }
    }

    #[test]
    fn builds_differing_only_in_goamd64_are_one_program() {
        let a = info(&["-trimpath=true", "GOAMD64=v1", "GOOS=linux"]);
        let b = info(&["-trimpath=true", "GOAMD64=v4", "GOOS=linux"]);
        assert_eq!(differs(&a, &b), None);
    }

    #[test]
    fn every_other_difference_is_named() {
        let a = info(&["-ldflags=-s", "GOAMD64=v1"]);
        let b = info(&["-ldflags=-w", "GOAMD64=v2"]);
        assert_eq!(
            differs(&a, &b).unwrap(),
            "the build setting -ldflags (-ldflags=-s and -ldflags=-w)"
        );
        let c = info(&["GOAMD64=v2"]);
        assert_eq!(
            differs(&a, &c).unwrap(),
            "the build setting -ldflags (-ldflags=-s and unset)"
        );
        assert_eq!(
            differs(&c, &a).unwrap(),
            "the build setting -ldflags (unset and -ldflags=-s)"
        );
        let mut d = info(&["GOAMD64=v3"]);
        d.path = "example.com/other".into();
        assert!(differs(&c, &d).unwrap().starts_with("the main package"));
        let mut e = info(&["GOAMD64=v3"]);
        e.deps = vec!["dep\tgolang.org/x/text\tv0.3.0".into()];
        assert_eq!(
            differs(&c, &e).unwrap(),
            "the module versions (none and dep golang.org/x/text v0.3.0)"
        );
        let mut f = info(&["GOAMD64=v3"]);
        f.go_version = "go1.25.0".into();
        assert!(differs(&c, &f).unwrap().starts_with("the Go version"));
    }

    #[test]
    fn explicit_levels_agree_with_markers() {
        let go = Input {
            maker: Maker::Go(info(&[])),
            marker: Some(3),
        };
        assert!(go.accepts(3) && !go.accepts(2) && !go.accepts(4));
        let c = Input {
            maker: Maker::Other,
            marker: Some(2),
        };
        assert!(!c.accepts(1) && c.accepts(2) && c.accepts(4));
        let bare = Input {
            maker: Maker::Other,
            marker: None,
        };
        assert!((1..=4).all(|l| bare.accepts(l)));
    }

    /// A minimal x86-64 ELF file: its header, `phdrs` (type, offset,
    /// size) after it, and `tail` bytes from offset 0x200.
    fn elf(e_type: u16, machine: u16, phdrs: &[(u32, u64, u64)], tail: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; 0x200];
        out[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
        out[16..18].copy_from_slice(&e_type.to_le_bytes());
        out[18..20].copy_from_slice(&machine.to_le_bytes());
        out[20..24].copy_from_slice(&1u32.to_le_bytes());
        out[32..40].copy_from_slice(&64u64.to_le_bytes());
        out[52..54].copy_from_slice(&64u16.to_le_bytes());
        out[54..56].copy_from_slice(&56u16.to_le_bytes());
        out[56..58].copy_from_slice(&(phdrs.len() as u16).to_le_bytes());
        for (i, &(kind, offset, size)) in phdrs.iter().enumerate() {
            let at = 64 + 56 * i;
            out[at..at + 4].copy_from_slice(&kind.to_le_bytes());
            out[at + 8..at + 16].copy_from_slice(&offset.to_le_bytes());
            out[at + 32..at + 40].copy_from_slice(&size.to_le_bytes());
            out[at + 40..at + 48].copy_from_slice(&size.to_le_bytes());
            out[at + 48..at + 56].copy_from_slice(&8u64.to_le_bytes());
        }
        out.extend_from_slice(tail);
        out
    }

    /// A GNU property note with ISA_1_NEEDED = `bits`.
    fn isa_note(bits: u32) -> Vec<u8> {
        let mut note = Vec::new();
        for word in [4u32, 16, 5] {
            note.extend(word.to_le_bytes());
        }
        note.extend(b"GNU\0");
        note.extend(0xc000_8002u32.to_le_bytes());
        note.extend(4u32.to_le_bytes());
        note.extend(bits.to_le_bytes());
        note.extend(0u32.to_le_bytes());
        note
    }

    #[test]
    fn the_isa_note_names_the_highest_level_needed() {
        for (bits, level) in [
            (1, Some(1)),
            (3, Some(2)),
            (7, Some(3)),
            (15, Some(4)),
            (4, Some(3)),
            (0, None),
        ] {
            let note = isa_note(bits);
            let file = elf(2, 62, &[(4, 0x200, note.len() as u64)], &note);
            let input = classify(&file).unwrap();
            assert_eq!(
                input,
                Input {
                    maker: Maker::Other,
                    marker: level
                },
                "{bits:#x}"
            );
        }
        let bare = elf(2, 62, &[(1, 0, 0x200)], &[]);
        assert_eq!(classify(&bare).unwrap().marker, None);
    }

    #[test]
    fn what_is_not_an_executable_is_refused() {
        let shared = elf(3, 62, &[(1, 0, 0x200)], &[]);
        assert!(
            classify(&shared)
                .unwrap_err()
                .starts_with("a shared library")
        );
        let pie = elf(3, 62, &[(1, 0, 0x200), (3, 0x200, 2)], b"/\0");
        assert!(classify(&pie).is_ok());
        // A static PIE: no interpreter, DF_1_PIE in its dynamic section.
        let mut dynamic = Vec::new();
        for (tag, value) in [(0x6fff_fffbu64, 0x0800_0000u64), (0, 0)] {
            dynamic.extend(tag.to_le_bytes());
            dynamic.extend(value.to_le_bytes());
        }
        let static_pie = elf(3, 62, &[(1, 0, 0x200), (2, 0x200, 32)], &dynamic);
        assert!(classify(&static_pie).is_ok());
        let object = elf(1, 62, &[(1, 0, 0x200)], &[]);
        assert!(
            classify(&object)
                .unwrap_err()
                .starts_with("not an x86-64 ELF executable")
        );
        let bundle = elf(
            2,
            62,
            &[(1, 0, 0x200), (mgo_format::SEGMENT_TYPE, 0, 0)],
            &[],
        );
        assert!(
            classify(&bundle)
                .unwrap_err()
                .starts_with("already an mgo bundle")
        );
        let arm = elf(2, 183, &[(1, 0, 0x200)], &[]);
        assert!(
            classify(&arm)
                .unwrap_err()
                .starts_with("not an x86-64 ELF executable")
        );
        assert!(
            classify(b"#!/bin/sh\n")
                .unwrap_err()
                .starts_with("not an x86-64")
        );
    }

    #[test]
    fn a_go_build_for_another_target_is_named_by_its_build_info() {
        let mut section = BUILDINFO_MAGIC.to_vec();
        section.extend([8, 2]);
        section.resize(32, 0);
        section.push(8);
        section.extend(b"go1.26.0");
        let modinfo = format!(
            "{}path\tx\nbuild\tGOARCH=arm64\nbuild\tGOOS=darwin\n{}",
            "0".repeat(16),
            "1".repeat(15) + "\n"
        );
        section.push(modinfo.len() as u8);
        section.extend(modinfo.as_bytes());
        let mut file = vec![0xcfu8, 0xfa, 0xed, 0xfe];
        file.resize(64, 0);
        file.extend(&section);
        assert_eq!(
            classify(&file).unwrap_err(),
            "a Go build for GOOS=darwin GOARCH=arm64: build it with GOOS=linux GOARCH=amd64"
        );
    }
}
