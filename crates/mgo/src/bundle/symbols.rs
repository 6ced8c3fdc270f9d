//! The bundle's symbol table: the functions of every level stored as it
//! is, each located where that level's code lies in the bundle file, so
//! that profilers name the functions of the level the launcher mapped
//! from the bundle (docs/FORMAT.md, "Symbols").
//!
//! perf and the tools built like it turn a sample's address into an
//! offset in the mapped file, and a symbol's address into an offset in the
//! same file through the section its `st_shndx` names (`sh_addr -
//! sh_offset`) when no PT_LOAD covers it. So each level's code section
//! gets a mirror, a section header at the file offset where its bytes lie
//! inside `.mgo`, and each function the address of its bytes in the
//! address space `.mgo` declares (its base plus the file offset): the four
//! levels' functions never overlap, and no address of a running program
//! is one of them, so a debugger that reads this table (gdb) names no frame
//! after the wrong level. A mirror is `SHT_NOBITS` so that `strip` and
//! `objcopy` copy no bytes for it (the bytes are `.mgo`'s), and `SHF_ALLOC`
//! because perf skips the symbols of a section that is not (perf 6.1), but
//! never `SHF_EXECINSTR`, which would make gdb plant breakpoints there.

use crate::elf::Elf;
use crate::error::{Result, fail};
use object::elf::{
    SHF_ALLOC, SHN_LORESERVE, SHT_NOBITS, STB_GLOBAL, STB_LOCAL, STT_FUNC, SectionFlags,
    SectionType, Sym64, SymbolInfo, SymbolOther, SymbolSection,
};
use object::endian::{LittleEndian as LE, U16, U32, U64};
use object::pod::bytes_of;
use std::collections::HashMap;

/// One level's executable as it lies in the bundle file.
pub struct StoredAsIs<'a> {
    pub level: u8,
    /// Its file offset in the bundle.
    pub offset: u64,
    pub executable: &'a [u8],
}

/// A section header for one level's code section, placed where its bytes
/// lie in the bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mirror {
    pub name: Vec<u8>,
    pub address: u64,
    pub offset: u64,
    pub size: u64,
    pub align: u64,
}

/// A symbol of the launcher's that the table names as well.
pub struct LauncherSymbol {
    pub name: &'static [u8],
    pub kind: object::elf::SymbolType,
    pub address: u64,
    pub size: u64,
    /// Its section's index in the launcher (and so in the bundle).
    pub section: u16,
}

/// The symbol table, its string table and the mirrors its symbols refer
/// to; empty when no level is stored as it is.
#[derive(Default)]
pub struct Symbols {
    pub mirrors: Vec<Mirror>,
    pub strtab: Vec<u8>,
    pub symtab: Vec<u8>,
    /// The index of the first global symbol (`sh_info` of `.symtab`).
    pub first_global: u32,
}

impl Symbols {
    pub fn is_empty(&self) -> bool {
        self.symtab.is_empty()
    }

    /// The table of the functions of `levels`, whose mirrors will be the
    /// section headers from index `first_mirror` on, in a file whose
    /// offset `o` has the address `base + o`; and of the `launcher`'s
    /// symbols that debuggers look up by name (gdb's JIT interface, see the
    /// launcher's jit.rs), which serve only levels stored as they are.
    pub fn new(
        levels: &[StoredAsIs<'_>],
        first_mirror: usize,
        base: u64,
        launcher: &[LauncherSymbol],
    ) -> Result<Self> {
        let mut symbols = Self::default();
        let mut names = Names::default();
        // ELF puts every local symbol before the first global one.
        let mut locals = vec![Sym64::<LE>::default()];
        let mut globals = Vec::new();
        for level in levels {
            let Some(elf) = Elf::parse(level.executable) else {
                continue;
            };
            let (code, functions) = elf.functions();
            if functions.is_empty() {
                continue;
            }
            let first = first_mirror + symbols.mirrors.len();
            for section in &code {
                let mut name = format!(".mgo.v{}", level.level).into_bytes();
                name.extend_from_slice(section.name);
                symbols.mirrors.push(Mirror {
                    name,
                    address: base + level.offset + section.offset,
                    offset: level.offset + section.offset,
                    size: section.size,
                    align: section.align,
                });
            }
            if first_mirror + symbols.mirrors.len() > usize::from(SHN_LORESERVE) {
                return Err(fail("too many code sections for one symbol table"));
            }
            for function in functions {
                let section = code.get(function.section);
                let Some(mirror) = symbols.mirrors.get(first - first_mirror + function.section)
                else {
                    continue;
                };
                let Some(in_section) =
                    section.and_then(|s| function.address.checked_sub(s.address))
                else {
                    continue;
                };
                let (binding, list) = if function.global {
                    (STB_GLOBAL, &mut globals)
                } else {
                    (STB_LOCAL, &mut locals)
                };
                list.push(Sym64 {
                    st_name: U32::new(LE, names.offset(function.name)),
                    st_info: SymbolInfo::new(binding, STT_FUNC),
                    st_other: SymbolOther::default(),
                    st_shndx: U16::new(LE, SymbolSection::new((first + function.section) as u32)),
                    st_value: U64::new(LE, mirror.address + in_section),
                    st_size: U64::new(LE, function.size),
                });
            }
        }
        if levels.is_empty() {
            return Ok(Self::default());
        }
        for symbol in launcher {
            globals.push(Sym64 {
                st_name: U32::new(LE, names.offset(symbol.name)),
                st_info: SymbolInfo::new(STB_GLOBAL, symbol.kind),
                st_other: SymbolOther::default(),
                st_shndx: U16::new(LE, SymbolSection::new(u32::from(symbol.section))),
                st_value: U64::new(LE, symbol.address),
                st_size: U64::new(LE, symbol.size),
            });
        }
        if locals.len() + globals.len() == 1 {
            return Ok(Self::default());
        }
        symbols.first_global = u32::try_from(locals.len())
            .map_err(|_| fail("too many functions for one symbol table"))?;
        symbols.symtab = locals
            .iter()
            .chain(&globals)
            .flat_map(|symbol| bytes_of(symbol).iter().copied())
            .collect();
        symbols.strtab = names.table;
        Ok(symbols)
    }
}

/// The mirrors' section type and flags: see the module's comment.
pub const MIRROR_TYPE: SectionType = SHT_NOBITS;
pub const MIRROR_FLAGS: SectionFlags = SHF_ALLOC;

/// A string table that holds each name once: the levels of one program
/// name their functions alike.
struct Names {
    table: Vec<u8>,
    offsets: HashMap<Vec<u8>, u32>,
}

impl Default for Names {
    fn default() -> Self {
        Self {
            table: vec![0],
            offsets: HashMap::new(),
        }
    }
}

impl Names {
    fn offset(&mut self, name: &[u8]) -> u32 {
        if let Some(&offset) = self.offsets.get(name) {
            return offset;
        }
        let offset = self.table.len() as u32;
        self.table.extend_from_slice(name);
        self.table.push(0);
        self.offsets.insert(name.to_vec(), offset);
        offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_functions_adds_nothing() {
        let not_elf = StoredAsIs {
            level: 1,
            offset: 4096,
            executable: b"not an executable",
        };
        let symbols = Symbols::new(&[not_elf], 5, 1 << 32, &[]).unwrap();
        assert!(symbols.is_empty());
        assert!(symbols.symtab.is_empty() && symbols.strtab.is_empty());
    }

    /// This test's own executable, placed at 1 MiB as level 3: each of its
    /// functions becomes a symbol of a mirror named after its section, at
    /// the function's file offset plus 1 MiB.
    #[test]
    fn every_function_is_located_where_its_bytes_lie_in_the_bundle() {
        let executable = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let (code, functions) = Elf::parse(&executable).unwrap().functions();
        assert!(functions.len() > 100, "this test binary has a symbol table");
        const AT: u64 = 1 << 20;
        const FIRST_MIRROR: usize = 7;
        let level = StoredAsIs {
            level: 3,
            offset: AT,
            executable: &executable,
        };
        const BASE: u64 = 1 << 32;
        let symbols = Symbols::new(&[level], FIRST_MIRROR, BASE, &[]).unwrap();
        assert_eq!(symbols.mirrors.len(), code.len());
        let table: &[Sym64<LE>] = object::pod::slice_from_all_bytes(&symbols.symtab).unwrap();
        assert_eq!(table.len(), functions.len() + 1);
        assert!(bytes_of(&table[0]).iter().all(|&b| b == 0));
        let locals = functions.iter().filter(|f| !f.global).count();
        assert_eq!(symbols.first_global as usize, locals + 1);
        let mut by_name: Vec<_> = functions.iter().filter(|f| !f.global).collect();
        by_name.extend(functions.iter().filter(|f| f.global));
        for (symbol, function) in table[1..].iter().zip(by_name) {
            let name_at = symbol.st_name.get(LE) as usize;
            let name = &symbols.strtab[name_at..name_at + function.name.len() + 1];
            assert_eq!(&name[..function.name.len()], function.name);
            assert_eq!(name[function.name.len()], 0);
            let section = &code[function.section];
            let mirror = &symbols.mirrors[usize::from(symbol.st_shndx.get(LE).0) - FIRST_MIRROR];
            let mut mirror_name = b".mgo.v3".to_vec();
            mirror_name.extend_from_slice(section.name);
            assert_eq!(mirror.name, mirror_name);
            assert_eq!(mirror.address, BASE + mirror.offset);
            let in_bundle = symbol.st_value.get(LE) - mirror.address + mirror.offset;
            let in_executable = function.address - section.address + section.offset;
            assert_eq!(in_bundle, AT + in_executable);
            assert_eq!(symbol.st_value.get(LE), BASE + in_bundle);
        }
    }

    #[test]
    fn names_are_stored_once() {
        let mut names = Names::default();
        let main = names.offset(b"main.main");
        assert_eq!(names.offset(b"runtime.main"), main + 10);
        assert_eq!(names.offset(b"main.main"), main);
        assert_eq!(names.table, b"\0main.main\0runtime.main\0");
    }
}
