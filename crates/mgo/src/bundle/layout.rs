//! Writing a bundle: the launcher's ELF file, plus one segment holding the
//! table and the variants (already encoded, see `encode/`), plus
//! sections that describe that segment to `strip`, `objcopy` and
//! `go version -m` (docs/FORMAT.md).
//!
//! The layout is computed first and the file is written in one pass in
//! offset order, so the same inputs always give the same bytes. `mgo verify`
//! lays a bundle out again from its own stored variants and compares: every
//! byte that is not a variant's must come out the same.

use super::symbols::{LauncherSymbol, MIRROR_FLAGS, MIRROR_TYPE, StoredAsIs, Symbols};
use crate::elf::Elf;
use crate::error::{Result, fail as error};
use mgo_format::{
    Encoding, LOAD_PLACEHOLDER_TYPE, SECTION_NAME, SEGMENT_TYPE, StoredVariant, VARIANT_ALIGN,
};
use object::elf::{
    ET_EXEC, FileHeader64, PF_R, PT_LOAD, PT_NOTE, ProgramHeader64, ProgramType, SHT_PROGBITS,
    SHT_STRTAB, SHT_SYMTAB, SectionFlags, SectionHeader64, Sym64,
};
use object::endian::{LittleEndian as LE, U32, U64};
use object::pod::{bytes_of, slice_from_all_bytes};
use object::read::elf::{FileHeader, ProgramHeader, SectionHeader};
use std::io::{self, Write};
use std::ops::Range;

/// Where the bundle segment claims to live in the address space. No loader
/// maps it; the address exists so that `debug/buildinfo` (which reads a
/// section's bytes through the first program header covering its address)
/// finds the copied `.go.buildinfo`. It is far above anything the launcher
/// loads (it is linked at 0x40000000, its zstd arena ends below 0x41000000),
/// and congruent to the file offset modulo the page size as ELF expects.
const SEGMENT_ADDRESS_BASE: u64 = 0x1_0000_0000;

/// Go's build info blob is 16-byte aligned (buildInfoAlign in debug/buildinfo).
const BUILDINFO_ALIGN: u64 = 16;

fn align(value: u64, to: u64) -> u64 {
    value.div_ceil(to) * to
}

/// The `.go.buildinfo` section of a Go executable: module path, dependencies
/// and build settings, self-contained since Go 1.18.
pub fn go_buildinfo(executable: &[u8]) -> Result<Vec<u8>> {
    let elf = Elf::parse(executable).ok_or_else(|| error("not a 64-bit ELF executable"))?;
    let data = elf
        .section(".go.buildinfo")
        .ok_or_else(|| error("no .go.buildinfo section: not a build of go's"))?;
    Ok(data.to_vec())
}

/// Every offset of the output, decided before a byte is written.
pub struct Plan<'a> {
    /// The variants as they are stored, lowest level first.
    stored: Vec<StoredVariant<'a>>,
    /// The launcher's bytes that are kept: all but a trailing section header table.
    head: Vec<u8>,
    segment_offset: u64,
    layout: mgo_format::Layout,
    buildinfo: Vec<u8>,
    buildinfo_offset: u64,
    segment_size: u64,
    symbols: Symbols,
    strtab_offset: u64,
    symtab_offset: u64,
    shstrtab: Vec<u8>,
    shstrtab_offset: u64,
    section_headers: Vec<SectionHeader64<LE>>,
    section_headers_offset: u64,
}

/// Where the symbol table and the section names and headers, which follow
/// the segment, lie in the file.
struct Tail {
    strtab: u64,
    symtab: u64,
    shstrtab: u64,
}

impl Tail {
    fn new(segment_end: u64, symbols: &Symbols) -> Self {
        let strtab = segment_end;
        let symtab = align(strtab + symbols.strtab.len() as u64, 8);
        Self {
            strtab,
            symtab,
            shstrtab: symtab + symbols.symtab.len() as u64,
        }
    }
}

/// Where the bundle segment and what follows it lie in the file.
struct Offsets {
    /// The segment's file offset: the launcher, then the table.
    segment: u64,
    /// Where the copied `.go.buildinfo` lies, at the segment's end.
    buildinfo: u64,
    /// The segment's size: table, directories, variants, build info.
    segment_size: u64,
    /// The segment's (unmapped) address: see [`SEGMENT_ADDRESS_BASE`].
    segment_address: u64,
}

impl Offsets {
    fn new(kept_launcher: u64, table_and_variants: u64, buildinfo: u64) -> Self {
        let segment = align(kept_launcher, VARIANT_ALIGN);
        let buildinfo_offset = segment + align(table_and_variants, BUILDINFO_ALIGN);
        Self {
            segment,
            buildinfo: buildinfo_offset,
            segment_size: buildinfo_offset + buildinfo - segment,
            segment_address: SEGMENT_ADDRESS_BASE + segment,
        }
    }

    fn end(&self) -> u64 {
        self.segment + self.segment_size
    }
}

impl<'a> Plan<'a> {
    /// Plans the bundle of `launcher` and `stored`, whose table gets
    /// `flags`; `buildinfo` is the lowest level's `.go.buildinfo`.
    pub fn new(
        launcher: &[u8],
        stored: Vec<StoredVariant<'a>>,
        flags: u32,
        buildinfo: Vec<u8>,
    ) -> Result<Self> {
        let header = FileHeader64::<LE>::parse(launcher)
            .map_err(|err| error(format!("embedded launcher is not ELF64: {err}")))?;
        if header.e_type(LE) != ET_EXEC {
            return Err(error("embedded launcher is not a static executable"));
        }
        let mut head = kept_launcher(header, launcher)?.to_vec();
        let layout = mgo_format::layout(&stored, flags).map_err(|err| error(err.0))?;
        let at = Offsets::new(head.len() as u64, layout.size, buildinfo.len() as u64);
        let symbols = Symbols::new(
            &stored_as_is(&stored, &layout, at.segment),
            usize::from(header.e_shnum(LE)) + ADDED_SECTIONS,
            SEGMENT_ADDRESS_BASE,
            &jit_symbols(header, launcher),
        )?;
        let tail = Tail::new(at.end(), &symbols);
        let (shstrtab, section_headers) =
            section_headers(header, launcher, &at, layout.size, &symbols, &tail)?;
        let section_headers_offset = align(tail.shstrtab + shstrtab.len() as u64, 8);
        turn_placeholders_into_segment(header, launcher, &mut head, &at, layout.table().len())?;
        point_at_section_headers(&mut head, section_headers_offset, section_headers.len())?;
        Ok(Self {
            stored,
            head,
            segment_offset: at.segment,
            layout,
            buildinfo,
            buildinfo_offset: at.buildinfo,
            segment_size: at.segment_size,
            symbols,
            strtab_offset: tail.strtab,
            symtab_offset: tail.symtab,
            shstrtab,
            shstrtab_offset: tail.shstrtab,
            section_headers,
            section_headers_offset,
        })
    }

    /// Writes the bundle.
    pub fn write(&self, out: &mut impl Write) -> io::Result<()> {
        let mut at = 0u64;
        let mut put = |out: &mut dyn Write, offset: u64, bytes: &[u8]| -> io::Result<()> {
            debug_assert!(offset >= at);
            pad(out, offset - at)?;
            out.write_all(bytes)?;
            at = offset + bytes.len() as u64;
            Ok(())
        };
        put(out, 0, &self.head)?;
        put(out, self.segment_offset, self.layout.table())?;
        for placed in self.layout.placed() {
            let blocks = self.stored.get(placed.source).map_or(&[][..], |v| v.blocks);
            let mut directory = vec![0u8; blocks.len() * mgo_format::BLOCK_RECORD_SIZE];
            mgo_format::write_blocks(&mut directory, blocks);
            put(out, self.segment_offset + placed.blocks_offset, &directory)?;
            let sections = self
                .stored
                .get(placed.source)
                .map_or(&[][..], |v| v.sections);
            if !sections.is_empty() {
                let mut directory = vec![0u8; sections.len() * mgo_format::SECTION_RECORD_SIZE];
                mgo_format::write_sections(&mut directory, sections);
                put(
                    out,
                    self.segment_offset + placed.sections_offset,
                    &directory,
                )?;
            }
        }
        for placed in self.layout.placed() {
            let bytes = self.stored.get(placed.source).map_or(&[][..], |v| v.stored);
            put(out, self.segment_offset + placed.offset, bytes)?;
        }
        put(out, self.buildinfo_offset, &self.buildinfo)?;
        debug_assert_eq!(
            self.buildinfo_offset + self.buildinfo.len() as u64,
            self.segment_offset + self.segment_size
        );
        put(out, self.strtab_offset, &self.symbols.strtab)?;
        put(out, self.symtab_offset, &self.symbols.symtab)?;
        put(out, self.shstrtab_offset, &self.shstrtab)?;
        for (i, header) in self.section_headers.iter().enumerate() {
            let offset =
                self.section_headers_offset + (i * size_of::<SectionHeader64<LE>>()) as u64;
            put(out, offset, bytes_of(header))?;
        }
        Ok(())
    }
}

impl Plan<'_> {
    /// The size of the file.
    pub fn size(&self) -> u64 {
        self.section_headers_offset
            + (self.section_headers.len() * size_of::<SectionHeader64<LE>>()) as u64
    }

    /// The parts of the file that are not a variant's stored bytes, named
    /// for `mgo verify`'s report, in offset order.
    pub fn regions(&self) -> Vec<(String, Range<u64>)> {
        let mut regions = vec![
            ("launcher".to_owned(), 0..self.segment_offset),
            (
                "bundle table".to_owned(),
                self.segment_offset..self.segment_offset + self.layout.table().len() as u64,
            ),
        ];
        for placed in self.layout.placed() {
            let count = self.stored.get(placed.source).map_or(0, |v| v.blocks.len());
            let level = self.stored.get(placed.source).map_or(0, |v| v.level);
            let start = self.segment_offset + placed.blocks_offset;
            regions.push((
                format!("v{level}'s block directory"),
                start..start + (count * mgo_format::BLOCK_RECORD_SIZE) as u64,
            ));
            let sections = self
                .stored
                .get(placed.source)
                .map_or(0, |v| v.sections.len());
            if sections > 0 {
                let start = self.segment_offset + placed.sections_offset;
                regions.push((
                    format!("v{level}'s section directory"),
                    start..start + (sections * mgo_format::SECTION_RECORD_SIZE) as u64,
                ));
            }
        }
        regions.push((
            "build info (.go.buildinfo)".to_owned(),
            self.buildinfo_offset..self.buildinfo_offset + self.buildinfo.len() as u64,
        ));
        if !self.symbols.is_empty() {
            regions.push((
                "symbol table".to_owned(),
                self.strtab_offset..self.shstrtab_offset,
            ));
        }
        regions.push((
            "section headers".to_owned(),
            self.shstrtab_offset..self.size(),
        ));
        regions
    }
}

/// The launcher's bytes that the bundle keeps: all of them but a trailing
/// section header table, which the bundle writes again after its segment.
fn kept_launcher<'l>(header: &FileHeader64<LE>, launcher: &'l [u8]) -> Result<&'l [u8]> {
    let e = LE;
    let shoff = header.e_shoff(e);
    let sh_end = shoff + u64::from(header.e_shnum(e)) * u64::from(header.e_shentsize(e));
    let keep = if sh_end == launcher.len() as u64 {
        shoff
    } else {
        launcher.len() as u64
    };
    launcher
        .get(..keep as usize)
        .ok_or_else(|| error("embedded launcher is truncated"))
}

/// The levels whose bytes lie in the file as they are, each with its file
/// offset: the ones whose functions the symbol table names.
fn stored_as_is<'a>(
    stored: &[StoredVariant<'a>],
    layout: &mgo_format::Layout,
    segment: u64,
) -> Vec<StoredAsIs<'a>> {
    layout
        .placed()
        .iter()
        .filter_map(|placed| {
            let variant = stored.get(placed.source)?;
            (variant.encoding == Encoding::Raw && variant.sections.is_empty()).then(|| StoredAsIs {
                level: variant.level,
                offset: segment + placed.offset,
                executable: variant.stored,
            })
        })
        .collect()
}

/// gdb's JIT interface in the launcher (its jit.rs): the descriptor, the
/// whole of section `.mgo.jit`, and the function gdb stops at, whose
/// address section `.mgo.jit.register` holds (the launcher keeps no symbol
/// table of its own). None for a launcher without them.
fn jit_symbols(header: &FileHeader64<LE>, launcher: &[u8]) -> Vec<LauncherSymbol> {
    let e = LE;
    let Ok(sections) = header.sections(e, launcher) else {
        return Vec::new();
    };
    let Some((descriptor_index, descriptor)) = sections.section_by_name(e, b".mgo.jit") else {
        return Vec::new();
    };
    let register = sections
        .section_by_name(e, b".mgo.jit.register")
        .and_then(|(_, s)| s.data(e, launcher).ok())
        .and_then(|bytes| Some(u64::from_le_bytes(bytes.try_into().ok()?)));
    let Some(register) = register else {
        return Vec::new();
    };
    let Some(code_index) = sections.enumerate().find_map(|(index, s)| {
        let start = s.sh_addr(e);
        let code = s.sh_flags(e).0 & object::elf::SHF_EXECINSTR.0 != 0;
        (code && start <= register && register < start + s.sh_size(e)).then_some(index)
    }) else {
        return Vec::new();
    };
    let (Ok(descriptor_index), Ok(code_index)) = (
        u16::try_from(descriptor_index.0),
        u16::try_from(code_index.0),
    ) else {
        return Vec::new();
    };
    vec![
        LauncherSymbol {
            name: b"__jit_debug_descriptor",
            kind: object::elf::STT_OBJECT,
            address: descriptor.sh_addr(e),
            size: descriptor.sh_size(e),
            section: descriptor_index,
        },
        LauncherSymbol {
            name: b"__jit_debug_register_code",
            kind: object::elf::STT_FUNC,
            address: register,
            size: 1,
            section: code_index,
        },
    ]
}

/// The sections every bundle adds to the launcher's: `.mgo` and
/// `.go.buildinfo`.
const ADDED_SECTIONS: usize = 2;

/// The section names and headers: the launcher's own, then the bundle
/// segment's and the copied `.go.buildinfo`, which `strip`, `objcopy` and
/// `go version -m` read, then the symbol table's, if it has one.
fn section_headers(
    header: &FileHeader64<LE>,
    launcher: &[u8],
    at: &Offsets,
    segment_contents: u64,
    symbols: &Symbols,
    tail: &Tail,
) -> Result<(Vec<u8>, Vec<SectionHeader64<LE>>)> {
    let e = LE;
    let names_error =
        |err: object::Error| error(format!("embedded launcher's section names: {err}"));
    let old_sections = header
        .sections(e, launcher)
        .map_err(|err| error(format!("embedded launcher's sections: {err}")))?;
    let shstrndx = usize::from(header.e_shstrndx(e).0);
    let mut shstrtab = old_sections
        .section(object::SectionIndex(shstrndx))
        .map_err(names_error)?
        .data(e, launcher)
        .map_err(names_error)?
        .to_vec();
    let mut add_name = |name: &[u8]| {
        let at = shstrtab.len() as u32;
        shstrtab.extend_from_slice(name);
        shstrtab.push(0);
        at
    };
    let mgo_name = add_name(SECTION_NAME.as_bytes());
    let buildinfo_name = add_name(b".go.buildinfo");

    let mut headers: Vec<SectionHeader64<LE>> = old_sections.iter().copied().collect();
    let names = headers
        .get_mut(shstrndx)
        .ok_or_else(|| error("embedded launcher's section names are missing"))?;
    names.sh_offset = U64::new(e, tail.shstrtab);
    let section = |name: u32, offset: u64, size: u64, align: u64| SectionHeader64 {
        sh_name: U32::new(e, name),
        sh_type: U32::new(e, SHT_PROGBITS),
        sh_flags: U64::new(e, SectionFlags(0)),
        sh_addr: U64::new(e, at.segment_address + (offset - at.segment)),
        sh_offset: U64::new(e, offset),
        sh_size: U64::new(e, size),
        sh_link: U32::new(e, 0),
        sh_info: U32::new(e, 0),
        sh_addralign: U64::new(e, align),
        sh_entsize: U64::new(e, 0),
    };
    headers.push(section(
        mgo_name,
        at.segment,
        segment_contents,
        VARIANT_ALIGN,
    ));
    headers.push(section(
        buildinfo_name,
        at.buildinfo,
        at.end() - at.buildinfo,
        BUILDINFO_ALIGN,
    ));
    debug_assert_eq!(
        headers.len(),
        usize::from(header.e_shnum(e)) + ADDED_SECTIONS
    );
    if !symbols.is_empty() {
        for mirror in &symbols.mirrors {
            headers.push(SectionHeader64 {
                sh_name: U32::new(e, add_name(&mirror.name)),
                sh_type: U32::new(e, MIRROR_TYPE),
                sh_flags: U64::new(e, MIRROR_FLAGS),
                sh_addr: U64::new(e, mirror.address),
                sh_offset: U64::new(e, mirror.offset),
                sh_size: U64::new(e, mirror.size),
                sh_link: U32::new(e, 0),
                sh_info: U32::new(e, 0),
                sh_addralign: U64::new(e, mirror.align),
                sh_entsize: U64::new(e, 0),
            });
        }
        let table =
            |name: u32, sh_type, offset, size: usize, link, info, align, entsize| SectionHeader64 {
                sh_name: U32::new(e, name),
                sh_type: U32::new(e, sh_type),
                sh_flags: U64::new(e, SectionFlags(0)),
                sh_addr: U64::new(e, 0),
                sh_offset: U64::new(e, offset),
                sh_size: U64::new(e, size as u64),
                sh_link: U32::new(e, link),
                sh_info: U32::new(e, info),
                sh_addralign: U64::new(e, align),
                sh_entsize: U64::new(e, entsize),
            };
        let strtab_index = headers.len() as u32;
        headers.push(table(
            add_name(b".strtab"),
            SHT_STRTAB,
            tail.strtab,
            symbols.strtab.len(),
            0,
            0,
            1,
            0,
        ));
        headers.push(table(
            add_name(b".symtab"),
            SHT_SYMTAB,
            tail.symtab,
            symbols.symtab.len(),
            strtab_index,
            symbols.first_global,
            8,
            size_of::<Sym64<LE>>() as u64,
        ));
    }
    let names = headers
        .get_mut(shstrndx)
        .ok_or_else(|| error("embedded launcher's section names are missing"))?;
    names.sh_size = U64::new(e, shstrtab.len() as u64);
    Ok((shstrtab, headers))
}

/// Turns the launcher's two placeholder note headers into the segment's: a
/// PT_LOAD, so that the kernel maps the bundle's table from the file it
/// executes (the launcher's proof of identity, see docs/LAUNCHER.md, "Which
/// file runs"), and the descriptor readers look for.
fn turn_placeholders_into_segment(
    header: &FileHeader64<LE>,
    launcher: &[u8],
    head: &mut [u8],
    at: &Offsets,
    metadata_size: usize,
) -> Result<()> {
    let e = LE;
    let phoff = header.e_phoff(e) as usize;
    let phnum = usize::from(header.e_phnum(e));
    let phdrs_bytes = head
        .get_mut(phoff..phoff + phnum * size_of::<ProgramHeader64<LE>>())
        .ok_or_else(|| error("embedded launcher's program headers are truncated"))?;
    let phdrs: &mut [ProgramHeader64<LE>] = object::pod::slice_from_all_bytes_mut(phdrs_bytes)
        .map_err(|()| error("embedded launcher's program headers are misaligned"))?;
    let segment_header = |p_type: u32, size: u64| ProgramHeader64 {
        p_type: U32::new(e, ProgramType(p_type)),
        p_flags: U32::new(e, PF_R),
        p_offset: U64::new(e, at.segment),
        p_vaddr: U64::new(e, at.segment_address),
        // Zero: with a physical address set, binutils' strip and objcopy
        // move p_vaddr off the sections' addresses (seen with 2.40), which
        // loses the build info.
        p_paddr: U64::new(e, 0),
        p_filesz: U64::new(e, size),
        p_memsz: U64::new(e, size),
        p_align: U64::new(e, VARIANT_ALIGN),
    };
    // The PT_LOAD covers the table and the directories only: they hold the
    // checksum of every block, which is all the launcher compares, and
    // address space is all a mapping costs (RLIMIT_AS counts it).
    place_segment_headers(
        phdrs,
        launcher,
        [
            segment_header(PT_LOAD.0, metadata_size as u64),
            segment_header(SEGMENT_TYPE, at.segment_size),
        ],
    )
}

/// Points the ELF header at the section headers written after the segment.
fn point_at_section_headers(head: &mut [u8], offset: u64, count: usize) -> Result<()> {
    let header_bytes = head
        .get_mut(..size_of::<FileHeader64<LE>>())
        .ok_or_else(|| error("embedded launcher is truncated"))?;
    let header: &mut FileHeader64<LE> = object::pod::from_bytes_mut(header_bytes)
        .map_err(|()| error("embedded launcher's header is misaligned"))?
        .0;
    header.e_shoff = U64::new(LE, offset);
    header.e_shnum = object::endian::U16::new(LE, count as u16);
    Ok(())
}

/// Puts the bundle segment's two headers where the launcher's placeholder
/// notes were, right after the last PT_LOAD: loadable segments must come in
/// address order, and debug/buildinfo reads through the first header whose
/// range "covers" an address, where a zero-sized header at address 0
/// (PT_GNU_STACK) covers every address by wrap-around. Every other header
/// keeps its order.
fn place_segment_headers(
    phdrs: &mut [ProgramHeader64<LE>],
    launcher: &[u8],
    segment: [ProgramHeader64<LE>; 2],
) -> Result<()> {
    let e = LE;
    let is_placeholder = |p: &ProgramHeader64<LE>| {
        p.p_type(e) == PT_NOTE
            && placeholder_note_type(p, launcher)
                .is_some_and(|kind| kind == SEGMENT_TYPE || kind == LOAD_PLACEHOLDER_TYPE)
    };
    let placeholders = phdrs.iter().filter(|p| is_placeholder(p)).count();
    if placeholders != 2 {
        return Err(error(
            "embedded launcher lacks its placeholders for the bundle segment",
        ));
    }
    let mut kept: Vec<ProgramHeader64<LE>> = phdrs
        .iter()
        .filter(|p| !is_placeholder(p))
        .copied()
        .collect();
    let after_loads = kept
        .iter()
        .rposition(|p| p.p_type(e) == PT_LOAD)
        .map_or(0, |i| i + 1);
    kept.splice(after_loads..after_loads, segment);
    phdrs.copy_from_slice(&kept);
    Ok(())
}

/// The note type of the launcher's "mgo" note that a PT_NOTE header covers
/// exactly, if it covers one.
fn placeholder_note_type(header: &ProgramHeader64<LE>, launcher: &[u8]) -> Option<u32> {
    let e = LE;
    let note = header.data(e, launcher).unwrap_or(&[]);
    let words: std::result::Result<&[U32<LE>], ()> = slice_from_all_bytes(note);
    match words {
        Ok([namesz, descsz, kind, name])
            if namesz.get(e) == 4
                && descsz.get(e) == 0
                && name.get(e).to_le_bytes() == *b"mgo\0" =>
        {
            Some(kind.get(e))
        }
        _ => None,
    }
}

fn pad(out: &mut dyn Write, mut n: u64) -> io::Result<()> {
    const ZEROS: [u8; 4096] = [0; 4096];
    while n > 0 {
        let step = n.min(ZEROS.len() as u64) as usize;
        out.write_all(ZEROS.get(..step).unwrap_or(&ZEROS))?;
        n -= step as u64;
    }
    Ok(())
}

impl crate::place::Contents for Plan<'_> {
    fn size(&self) -> u64 {
        Plan::size(self)
    }

    fn write_to(&self, mut out: &mut dyn Write) -> io::Result<()> {
        self.write(&mut out)
    }
}
