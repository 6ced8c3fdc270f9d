//! Which level of a bundle a process runs, or ran when it dumped a core:
//! what `mgo extract -pid` and `mgo extract -core` write out for debuggers,
//! which find a program through its executable file and so see only the
//! launcher in a bundle (docs/LAUNCHER.md, "Debugging and profiling").
//!
//! Three ways to tell, tried in order, each from the process's mappings
//! (`/proc/PID/maps`, or a core's program headers and `NT_FILE` note) and
//! memory (`/proc/PID/mem`, or a core's dumped segments):
//! - a mapping of the bundle file inside one level's stored bytes: the
//!   mapped start of a level stored as it is;
//! - a memfd named `PATH [GOAMD64=vN]`: the memfd start;
//! - the level's build information (`.go.buildinfo`, which names its
//!   GOAMD64 level) in memory at the level's own address: a level decoded
//!   into memory by the launcher.

use crate::bundle::read::Bundle;
use crate::elf::Elf;
use object::LittleEndian as LE;
use object::elf::{FileHeader64, PF_X, PT_LOAD, PT_NOTE};
use object::read::elf::{FileHeader, ProgramHeader};
use std::os::unix::fs::FileExt;

/// One mapping of an address space.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    /// The file offset it maps from (0 for anonymous memory).
    pub offset: u64,
    pub executable: bool,
    /// The file it maps, as the kernel names it.
    pub path: Option<Vec<u8>>,
}

/// Memory of an address space, read where it can be.
pub trait Memory {
    fn read(&self, address: u64, len: usize) -> Option<Vec<u8>>;
}

/// What was found about the level that runs.
#[derive(Debug, PartialEq, Eq)]
pub enum Running {
    Level(u8),
    /// A memfd start names its bundle and level: `PATH [GOAMD64=vN]`.
    Memfd {
        bundle: Vec<u8>,
        level: u8,
    },
    Unknown,
}

/// The level of `bundle` that runs in the address space of `mappings` and
/// `memory`; `is_bundle` says whether a mapped path is the bundle's file.
pub fn level_of(
    bundle: &Bundle,
    is_bundle: &dyn Fn(&[u8]) -> bool,
    mappings: &[Mapping],
    memory: &dyn Memory,
) -> Running {
    if let Some(level) = mapped_from_bundle(bundle, is_bundle, mappings) {
        return Running::Level(level);
    }
    if let Some((path, level)) = memfd(mappings) {
        return Running::Memfd {
            bundle: path,
            level,
        };
    }
    build_info_in_memory(bundle, mappings, memory).map_or(Running::Unknown, Running::Level)
}

/// A mapping of the bundle file that starts inside a level stored as it
/// is: the launcher maps nothing else of the bundle for the program.
fn mapped_from_bundle(
    bundle: &Bundle,
    is_bundle: &dyn Fn(&[u8]) -> bool,
    mappings: &[Mapping],
) -> Option<u8> {
    let segment = bundle.segment_offset() as u64;
    mappings
        .iter()
        .filter(|m| m.path.as_deref().is_some_and(is_bundle))
        .find_map(|m| {
            bundle.table().entries().iter().find_map(|entry| {
                let start = segment + entry.offset;
                let stored = start..start + entry.stored_size;
                (entry.encoding == mgo_format::Encoding::Raw && stored.contains(&m.offset))
                    .then_some(entry.level)
            })
        })
}

/// The bundle path and level of a memfd the launcher named
/// `PATH [GOAMD64=vN]` (the kernel shows `/memfd:NAME (deleted)`).
pub fn memfd(mappings: &[Mapping]) -> Option<(Vec<u8>, u8)> {
    mappings.iter().find_map(|m| memfd_name(m.path.as_deref()?))
}

fn memfd_name(path: &[u8]) -> Option<(Vec<u8>, u8)> {
    let name = path.strip_prefix(b"/memfd:")?;
    let name = name.strip_suffix(b" (deleted)").unwrap_or(name);
    let (bundle, level) = name.strip_suffix(b"]")?.rsplit_once_bytes(b" [GOAMD64=v")?;
    match level {
        [digit @ b'1'..=b'4'] => Some((bundle.to_vec(), digit - b'0')),
        _ => None,
    }
}

/// The level whose `.go.buildinfo` lies in memory where that level puts
/// it: at its address, plus, for a PIE, the distance from its first page
/// to the start of one of the mappings.
fn build_info_in_memory(bundle: &Bundle, mappings: &[Mapping], memory: &dyn Memory) -> Option<u8> {
    bundle.table().entries().iter().find_map(|entry| {
        let executable = bundle.decode(entry).ok()?;
        let elf = Elf::parse(&executable)?;
        let (address, info) = elf.section_at(".go.buildinfo")?;
        let biases: Vec<u64> = if elf.is_position_independent() {
            let first = elf.first_load_page()?;
            mappings
                .iter()
                .filter_map(|m| m.start.checked_sub(first))
                .collect()
        } else {
            vec![0]
        };
        biases
            .iter()
            .any(|bias| memory.read(address + bias, info.len()).as_deref() == Some(info))
            .then_some(entry.level)
    })
}

/// `rsplit_once` for byte strings.
trait RsplitOnceBytes {
    fn rsplit_once_bytes(&self, separator: &[u8]) -> Option<(&[u8], &[u8])>;
}

impl RsplitOnceBytes for [u8] {
    fn rsplit_once_bytes(&self, separator: &[u8]) -> Option<(&[u8], &[u8])> {
        let at = self
            .windows(separator.len())
            .rposition(|window| window == separator)?;
        Some((self.get(..at)?, self.get(at + separator.len()..)?))
    }
}

/// A running process, through `/proc/PID`.
pub struct Process {
    pub pid: u32,
    mem: std::fs::File,
}

impl Process {
    pub fn open(pid: u32) -> std::io::Result<Self> {
        let mem = std::fs::File::open(format!("/proc/{pid}/mem"))?;
        Ok(Self { pid, mem })
    }

    /// Its mappings, from `/proc/PID/maps`.
    pub fn mappings(&self) -> std::io::Result<Vec<Mapping>> {
        let maps = std::fs::read(format!("/proc/{}/maps", self.pid))?;
        Ok(maps.split(|&b| b == b'\n').filter_map(maps_line).collect())
    }
}

impl Memory for Process {
    fn read(&self, address: u64, len: usize) -> Option<Vec<u8>> {
        let mut bytes = vec![0; len];
        self.mem.read_exact_at(&mut bytes, address).ok()?;
        Some(bytes)
    }
}

/// `START-END PERMS OFFSET DEV INODE [PATH]`, as proc(5) writes a line of
/// `/proc/PID/maps`.
fn maps_line(line: &[u8]) -> Option<Mapping> {
    let mut fields = line.splitn(6, |&b| b == b' ');
    let range = std::str::from_utf8(fields.next()?).ok()?;
    let (start, end) = range.split_once('-')?;
    let perms = fields.next()?;
    let offset = std::str::from_utf8(fields.next()?).ok()?;
    let _device = fields.next()?;
    let _inode = fields.next()?;
    let path = fields
        .next()
        .map(|rest| rest.trim_ascii_start())
        .filter(|p| !p.is_empty())
        .map(<[u8]>::to_vec);
    Some(Mapping {
        start: u64::from_str_radix(start, 16).ok()?,
        end: u64::from_str_radix(end, 16).ok()?,
        offset: u64::from_str_radix(offset, 16).ok()?,
        executable: perms.get(2) == Some(&b'x'),
        path,
    })
}

/// A core file: its loadable segments (what was dumped of each mapping)
/// and the files its `NT_FILE` note names.
pub struct Core<'a> {
    bytes: &'a [u8],
    /// (address, file offset, dumped size, size, executable) of each PT_LOAD.
    loads: Vec<(u64, u64, u64, u64, bool)>,
    files: Vec<Mapping>,
}

/// `NT_FILE`: the files mapped into the dumped process.
const NT_FILE: u32 = 0x4649_4c45;

impl<'a> Core<'a> {
    /// Parses `bytes` as an x86-64 core file; `None` if it is not one.
    pub fn parse(bytes: &'a [u8]) -> Option<Self> {
        let header = FileHeader64::<LE>::parse(bytes).ok()?;
        if header.e_type(LE) != object::elf::ET_CORE {
            return None;
        }
        let headers = header.program_headers(LE, bytes).ok()?;
        let loads = headers
            .iter()
            .filter(|p| p.p_type(LE) == PT_LOAD)
            .map(|p| {
                (
                    p.p_vaddr(LE),
                    p.p_offset(LE),
                    p.p_filesz(LE),
                    p.p_memsz(LE),
                    p.p_flags(LE).0 & PF_X.0 != 0,
                )
            })
            .collect();
        let mut files = Vec::new();
        for note_header in headers.iter().filter(|p| p.p_type(LE) == PT_NOTE) {
            let Ok(Some(mut notes)) = note_header.notes(LE, bytes) else {
                continue;
            };
            while let Ok(Some(note)) = notes.next() {
                if note.n_type(LE).0 == NT_FILE && note.name() == b"CORE" {
                    files = nt_file(note.desc());
                }
            }
        }
        let mut core = Self {
            bytes,
            loads,
            files: Vec::new(),
        };
        for file in &mut files {
            file.executable = core
                .loads
                .iter()
                .any(|&(address, _, _, _, x)| x && address == file.start);
        }
        core.files = files;
        Some(core)
    }

    /// Every mapping: the files `NT_FILE` names, then the segments that
    /// map no file (anonymous memory).
    pub fn mappings(&self) -> Vec<Mapping> {
        let mut all = self.files.clone();
        for &(address, _, _, size, executable) in &self.loads {
            if !self.files.iter().any(|f| f.start == address) {
                all.push(Mapping {
                    start: address,
                    end: address + size,
                    offset: 0,
                    executable,
                    path: None,
                });
            }
        }
        all
    }
}

impl Memory for Core<'_> {
    fn read(&self, address: u64, len: usize) -> Option<Vec<u8>> {
        let &(start, offset, dumped, _, _) = self
            .loads
            .iter()
            .find(|&&(start, _, dumped, _, _)| start <= address && address < start + dumped)?;
        let end = address.checked_add(len as u64)?;
        if end > start + dumped {
            return None;
        }
        let from = usize::try_from(offset + (address - start)).ok()?;
        self.bytes.get(from..from + len).map(<[u8]>::to_vec)
    }
}

/// The `NT_FILE` note's description: a count, the page size, then per
/// file its start, end and offset in pages, then the names, each ending in
/// NUL (the kernel's fill_files_note).
fn nt_file(desc: &[u8]) -> Vec<Mapping> {
    let word = |i: usize| -> Option<u64> {
        let bytes = desc.get(i * 8..i * 8 + 8)?;
        Some(u64::from_le_bytes(bytes.try_into().ok()?))
    };
    let (Some(count), Some(page)) = (word(0), word(1)) else {
        return Vec::new();
    };
    let Ok(count) = usize::try_from(count) else {
        return Vec::new();
    };
    let names_at = (2 + count.saturating_mul(3)).saturating_mul(8);
    let mut names = desc.get(names_at..).unwrap_or_default().split(|&b| b == 0);
    (0..count)
        .map_while(|i| {
            Some(Mapping {
                start: word(2 + i * 3)?,
                end: word(3 + i * 3)?,
                offset: word(4 + i * 3)?.checked_mul(page)?,
                executable: false,
                path: Some(names.next()?.to_vec()),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_maps_line_is_read_as_proc_writes_it() {
        let line =
            b"00400000-0049f000 r-xp 0000b000 fd:01 1234                       /tmp/app bundle";
        assert_eq!(
            maps_line(line),
            Some(Mapping {
                start: 0x40_0000,
                end: 0x49_f000,
                offset: 0xb000,
                executable: true,
                path: Some(b"/tmp/app bundle".to_vec()),
            })
        );
        let anonymous = b"7f0000000000-7f0000021000 rw-p 00000000 00:00 0 ";
        let mapping = maps_line(anonymous).unwrap();
        assert_eq!((mapping.executable, mapping.path), (false, None));
    }

    #[test]
    fn a_memfd_names_its_bundle_and_level() {
        assert_eq!(
            memfd_name(b"/memfd:/srv/app [v2] [GOAMD64=v3] (deleted)"),
            Some((b"/srv/app [v2]".to_vec(), 3))
        );
        assert_eq!(memfd_name(b"/memfd:app [GOAMD64=v5] (deleted)"), None);
        assert_eq!(memfd_name(b"/srv/app [GOAMD64=v3]"), None);
    }

    #[test]
    fn nt_file_lists_each_file_with_its_offset_in_bytes() {
        let mut desc = Vec::new();
        for word in [2u64, 4096, 0x1000, 0x2000, 3, 0x5000, 0x6000, 0] {
            desc.extend_from_slice(&word.to_le_bytes());
        }
        desc.extend_from_slice(b"/a\0/b c\0");
        let files = nt_file(&desc);
        assert_eq!(files.len(), 2);
        assert_eq!((files[0].start, files[0].offset), (0x1000, 3 * 4096));
        assert_eq!(files[1].path.as_deref(), Some(&b"/b c"[..]));
    }
}
