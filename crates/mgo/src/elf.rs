//! What mgo reads of an ELF file, in one place and all through the
//! `object` crate: the loadable ranges, compressed sections and functions
//! of a Go build, a section by name, a segment by type, and where a
//! launcher's headers end. Writing (patching the launcher's headers) stays with the
//! writer, in `bundle/layout.rs`.

use object::LittleEndian as LE;
use object::elf::{
    FileHeader64, PT_LOAD, SHF_ALLOC, SHF_COMPRESSED, SHF_EXECINSTR, SHT_NOBITS, SHT_SYMTAB,
    STT_FUNC,
};
use object::read::elf::{FileHeader, ProgramHeader, SectionHeader, Sym};
use std::ops::Range;

const PAGE: usize = 4096;

/// A 64-bit little-endian ELF file, its header parsed once.
#[derive(Clone, Copy)]
pub struct Elf<'a> {
    bytes: &'a [u8],
    header: &'a FileHeader64<LE>,
}

impl<'a> Elf<'a> {
    /// Parses the file header; `None` if `bytes` is not a 64-bit ELF file.
    pub fn parse(bytes: &'a [u8]) -> Option<Self> {
        let header = FileHeader64::<LE>::parse(bytes).ok()?;
        Some(Self { bytes, header })
    }

    /// The program headers; empty if they are unreadable.
    fn program_headers(&self) -> &'a [object::elf::ProgramHeader64<LE>] {
        self.header
            .program_headers(LE, self.bytes)
            .unwrap_or_default()
    }

    /// Whether the program headers can be read at all.
    pub fn has_program_headers(&self) -> bool {
        self.header.program_headers(LE, self.bytes).is_ok()
    }

    /// The file ranges the kernel maps for the PT_LOAD segments, whole
    /// pages, within the file.
    pub fn loadable_ranges(&self) -> Vec<Range<usize>> {
        let len = self.bytes.len();
        self.program_headers()
            .iter()
            .filter(|p| p.p_type(LE) == PT_LOAD && p.p_filesz(LE) > 0)
            .map(|p| {
                let offset = p.p_offset(LE) as usize;
                let end = offset.saturating_add(p.p_filesz(LE) as usize);
                let start = offset / PAGE * PAGE;
                start.min(len)..end.div_ceil(PAGE).saturating_mul(PAGE).min(len)
            })
            .filter(|r| !r.is_empty())
            .collect()
    }

    /// The file range the first program header of type `p_type` declares,
    /// unchecked against the file's size.
    pub fn segment(&self, p_type: u32) -> Option<Range<usize>> {
        let segment = self
            .program_headers()
            .iter()
            .find(|p| p.p_type(LE) == object::elf::ProgramType(p_type))?;
        let start = usize::try_from(segment.p_offset(LE)).unwrap_or(usize::MAX);
        let end = start.saturating_add(usize::try_from(segment.p_filesz(LE)).unwrap_or(usize::MAX));
        Some(start..end)
    }

    /// The file ranges of the sections marked SHF_COMPRESSED (a
    /// compression header, then the stream), in header order.
    pub fn compressed_sections(&self) -> Vec<Range<usize>> {
        let Ok(sections) = self.header.sections(LE, self.bytes) else {
            return Vec::new();
        };
        sections
            .iter()
            .filter(|s| s.sh_flags(LE).0 & SHF_COMPRESSED.0 != 0)
            .filter(|s| s.sh_type(LE) != SHT_NOBITS)
            .filter_map(|s| {
                let (offset, size) = s.file_range(LE)?;
                let start = usize::try_from(offset).ok()?;
                Some(start..start.checked_add(usize::try_from(size).ok()?)?)
            })
            .filter(|r| r.end <= self.bytes.len())
            .collect()
    }

    /// The bytes of the section named `name`, if it has any in the file.
    pub fn section(&self, name: &str) -> Option<&'a [u8]> {
        let sections = self.header.sections(LE, self.bytes).ok()?;
        let (_, section) = sections.section_by_name(LE, name.as_bytes())?;
        section.data(LE, self.bytes).ok()
    }

    /// The sections that hold code (allocated, executable, with bytes in
    /// the file) and the named functions of the symbol table that lie in
    /// them, in symbol table order; both empty for a stripped file.
    pub fn functions(&self) -> (Vec<CodeSection<'a>>, Vec<Function<'a>>) {
        let Ok(sections) = self.header.sections(LE, self.bytes) else {
            return Default::default();
        };
        let code: Vec<(usize, CodeSection<'a>)> = sections
            .enumerate()
            .filter(|(_, s)| {
                let flags = s.sh_flags(LE).0;
                flags & SHF_ALLOC.0 != 0
                    && flags & SHF_EXECINSTR.0 != 0
                    && s.sh_type(LE) != SHT_NOBITS
            })
            .filter_map(|(index, s)| {
                let (offset, size) = s.file_range(LE)?;
                Some((
                    index.0,
                    CodeSection {
                        name: sections.section_name(LE, s).ok()?,
                        address: s.sh_addr(LE),
                        offset,
                        size,
                        align: s.sh_addralign(LE),
                    },
                ))
            })
            .collect();
        let Ok(symbols) = sections.symbols(LE, self.bytes, SHT_SYMTAB) else {
            return (code.into_iter().map(|(_, c)| c).collect(), Vec::new());
        };
        let functions = symbols
            .enumerate()
            .filter(|(_, s)| s.st_type() == STT_FUNC && s.st_name(LE) != 0)
            .filter_map(|(index, s)| {
                let in_section = symbols.symbol_section(LE, s, index).ok()??;
                let section = code.iter().position(|(i, _)| *i == in_section.0)?;
                Some(Function {
                    name: symbols.symbol_name(LE, s).ok()?,
                    section,
                    address: s.st_value(LE),
                    size: s.st_size(LE),
                    global: s.st_bind() != object::elf::STB_LOCAL,
                })
            })
            .collect();
        (code.into_iter().map(|(_, c)| c).collect(), functions)
    }

    /// The address and bytes of the section named `name`.
    pub fn section_at(&self, name: &str) -> Option<(u64, &'a [u8])> {
        let sections = self.header.sections(LE, self.bytes).ok()?;
        let (_, section) = sections.section_by_name(LE, name.as_bytes())?;
        Some((section.sh_addr(LE), section.data(LE, self.bytes).ok()?))
    }

    /// Whether the file loads at an address of the loader's choosing
    /// (`ET_DYN`: a PIE), so that its addresses are relative.
    pub fn is_position_independent(&self) -> bool {
        self.header.e_type(LE) == object::elf::ET_DYN
    }

    /// The page-aligned address of the first loadable segment: where the
    /// loader's bias is measured from.
    pub fn first_load_page(&self) -> Option<u64> {
        self.program_headers()
            .iter()
            .find(|p| p.p_type(LE) == PT_LOAD)
            .map(|p| p.p_vaddr(LE) & !(PAGE as u64 - 1))
    }

    /// Where the ELF header and program headers end, and where the section
    /// headers begin: between the two lies a launcher's code, which the
    /// writer copies as it is.
    pub fn code_between_headers(&self) -> Range<usize> {
        let phoff = self.header.e_phoff(LE) as usize;
        let headers =
            usize::from(self.header.e_phnum(LE)) * usize::from(self.header.e_phentsize(LE));
        phoff.saturating_add(headers)..self.header.e_shoff(LE) as usize
    }
}

/// A section of code, as [`Elf::functions`] finds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeSection<'a> {
    pub name: &'a [u8],
    pub address: u64,
    /// Its file offset.
    pub offset: u64,
    pub size: u64,
    pub align: u64,
}

/// A named function of a symbol table, in one of the [`CodeSection`]s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Function<'a> {
    pub name: &'a [u8],
    /// Index of its section in the list `functions` returns with it.
    pub section: usize,
    pub address: u64,
    pub size: u64,
    /// Whether its binding is global or weak, not local.
    pub global: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mgo_itself_reads_as_elf() {
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let elf = Elf::parse(&me).unwrap();
        let loads = elf.loadable_ranges();
        assert!(!loads.is_empty());
        assert!(
            loads
                .iter()
                .all(|r| r.start % PAGE == 0 && r.end <= me.len())
        );
        assert!(elf.section(".text").is_some_and(|t| !t.is_empty()));
        assert!(elf.section(".no.such.section").is_none());
        assert!(elf.segment(PT_LOAD.0).is_some());
        let code = elf.code_between_headers();
        assert!(code.start >= 64 && code.start < code.end);
    }

    #[test]
    fn other_bytes_are_not_elf() {
        assert!(Elf::parse(b"#!/bin/sh\n").is_none());
        assert!(Elf::parse(&[]).is_none());
    }
}
