//! What the kernel's exec would map for an ELF executable, worked out from
//! its headers alone (`load_elf_binary` and `elf_load` in the kernel's
//! fs/binfmt_elf.c, docs/LAUNCHER.md "Mapped start"). The launcher then
//! carries the plan out with mmap; the decisions live here, as plain
//! functions tested on the host.
//!
//! Anything the plan cannot express exactly as the kernel would load it is
//! refused with a reason, and the launcher starts the variant through a
//! memfd instead, where the kernel itself loads it.

/// The page size the plan works in. x86-64 Linux has no other base page size.
pub const PAGE: u64 = 4096;

/// Most PT_LOAD segments a plan holds. Go writes three to five.
pub const MAX_SEGMENTS: usize = 16;

/// Bytes of the ELF header that the plan reads.
pub const EHDR_SIZE: usize = 64;

/// Bytes of one ELF64 program header.
pub const PHDR_SIZE: usize = 56;

/// Memory protections, with the values of PROT_READ, PROT_WRITE, PROT_EXEC.
pub const READ: u32 = 1;
/// See [`READ`].
pub const WRITE: u32 = 2;
/// See [`READ`].
pub const EXEC: u32 = 4;

const PT_LOAD: u32 = 1;
const PT_INTERP: u32 = 3;
const PT_GNU_STACK: u32 = 0x6474_e551;
const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
const EM_X86_64: u16 = 62;

/// Addresses above this are not user space on x86-64 (47-bit, 4-level paging).
const USER_TOP: u64 = 1 << 47;

/// Why a plan could not be made.
pub type Refusal = &'static str;

/// One PT_LOAD segment as it will be mapped; addresses are before the load
/// bias is added (the bias is 0 for `ET_EXEC`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Segment {
    /// First page of the segment in memory.
    pub start: u64,
    /// End of the segment's last page in memory.
    pub end: u64,
    /// File offset of the page mapped at `start`.
    pub file_offset: u64,
    /// Bytes mapped from the file from `start` on: whole pages, possibly
    /// past the end of the file (the kernel shows zeros there).
    pub file_len: u64,
    /// Where zeroing starts in the last file page: the segment is writable
    /// and its memory is larger than its file part. Zeroing runs to the end
    /// of that page, as the kernel's `padzero` does.
    pub zero_from: Option<u64>,
    /// Protections of the pages mapped from the file.
    pub prot: u32,
}

impl Segment {
    /// Protections of the zero-filled pages after the file part: always
    /// readable and writable, as the kernel's `vm_brk_flags` makes them.
    pub fn anonymous_prot(&self) -> u32 {
        READ | WRITE | (self.prot & EXEC)
    }

    /// Start of the zero-filled pages that follow the file part.
    pub fn anonymous_start(&self) -> u64 {
        self.start + self.file_len
    }
}

/// The kind of executable, which decides where it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `ET_EXEC`: at the addresses it names.
    Fixed,
    /// `ET_DYN` (a PIE): anywhere, at a multiple of `Plan::align`.
    Relocatable,
}

/// Everything needed to map an executable and start it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Where it goes.
    pub kind: Kind,
    segments: [Segment; MAX_SEGMENTS],
    count: usize,
    /// First page of the lowest segment.
    pub start: u64,
    /// End of the highest segment's last page.
    pub end: u64,
    /// Alignment of the load bias: the largest power-of-two `p_align`.
    pub align: u64,
    /// `e_entry`.
    pub entry: u64,
    /// The program headers' address as the kernel computes it for AT_PHDR:
    /// inside the PT_LOAD whose file part holds `e_phoff`, else 0.
    pub phdr: u64,
    /// `e_phnum`.
    pub phnum: u16,
    /// File range of the PT_INTERP path, without its terminating NUL.
    pub interp: Option<(u64, u64)>,
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(*bytes.get(at..)?.first_chunk()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(*bytes.get(at..)?.first_chunk()?))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(*bytes.get(at..)?.first_chunk()?))
}

fn page_down(value: u64) -> u64 {
    value & !(PAGE - 1)
}

fn page_up(value: u64) -> Option<u64> {
    Some(value.checked_add(PAGE - 1)? & !(PAGE - 1))
}

/// One program header.
struct Phdr {
    kind: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
    align: u64,
}

fn phdr(headers: &[u8], at: usize) -> Option<Phdr> {
    Some(Phdr {
        kind: u32_at(headers, at)?,
        flags: u32_at(headers, at + 4)?,
        offset: u64_at(headers, at + 8)?,
        vaddr: u64_at(headers, at + 16)?,
        filesz: u64_at(headers, at + 32)?,
        memsz: u64_at(headers, at + 40)?,
        align: u64_at(headers, at + 48)?,
    })
}

impl Plan {
    /// The segments, in ascending address order.
    pub fn segments(&self) -> &[Segment] {
        self.segments.get(..self.count).unwrap_or(&[])
    }

    /// Bytes of address space the executable spans.
    pub fn span(&self) -> u64 {
        self.end - self.start
    }

    /// The segments whose file pages hold the whole file range
    /// `offset..offset + len`, with the address each one maps `offset` at.
    /// `Err` when some segment holds only part of it, which a writer that
    /// cuts blocks at segment boundaries never makes.
    pub fn places(&self, offset: u64, len: u64) -> Result<Places, Refusal> {
        let end = offset.checked_add(len).ok_or("a block is out of range")?;
        let mut places = Places::default();
        for segment in self.segments() {
            let file_end = segment.file_offset + segment.file_len;
            if end <= segment.file_offset || offset >= file_end {
                continue;
            }
            if offset < segment.file_offset || end > file_end {
                return Err("a block straddles a segment boundary");
            }
            places.push(segment.start + (offset - segment.file_offset));
        }
        Ok(places)
    }

    /// Where file byte `offset` is mapped, if any segment maps it.
    pub fn address_of(&self, offset: u64) -> Option<u64> {
        self.segments()
            .iter()
            .find(|s| offset >= s.file_offset && offset - s.file_offset < s.file_len)
            .map(|s| s.start + (offset - s.file_offset))
    }

    /// Whether some segment maps a page that runs past the end of the file
    /// without zeroing that part itself. The kernel shows zeros there; a
    /// mapping of the variant's bytes inside a larger file would show the
    /// file's next bytes instead.
    pub fn reads_past_end(&self, file_size: u64) -> bool {
        self.segments().iter().any(|s| {
            s.file_offset + s.file_len > file_size
                && s.zero_from
                    .is_none_or(|from| from - s.start + s.file_offset > file_size)
        })
    }

    /// Whether any segment maps any byte of the file range.
    pub fn maps_any(&self, offset: u64, len: u64) -> bool {
        let end = offset.saturating_add(len);
        self.segments()
            .iter()
            .any(|s| offset < s.file_offset + s.file_len && end > s.file_offset)
    }
}

/// Addresses a file range is mapped at (usually one, two where segments
/// share a file page).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Places {
    addresses: [u64; MAX_SEGMENTS],
    count: usize,
}

impl Places {
    fn push(&mut self, address: u64) {
        if let Some(slot) = self.addresses.get_mut(self.count) {
            *slot = address;
            self.count += 1;
        }
    }

    /// The addresses, lowest segment first.
    pub fn addresses(&self) -> &[u64] {
        self.addresses.get(..self.count).unwrap_or(&[])
    }
}

/// Plans the loading of the executable whose first bytes are `headers` (at
/// least its ELF header and program headers) and whose file is `file_size`
/// bytes long.
pub fn plan(headers: &[u8], file_size: u64) -> Result<Plan, Refusal> {
    const NOT_ELF: Refusal = "not an x86-64 ELF executable";
    let ident = headers.get(..16).ok_or(NOT_ELF)?;
    if ident.get(..4) != Some(b"\x7fELF") || ident.get(4..7) != Some(&[2, 1, 1]) {
        return Err(NOT_ELF);
    }
    let kind = match u16_at(headers, 16) {
        Some(ET_EXEC) => Kind::Fixed,
        Some(ET_DYN) => Kind::Relocatable,
        _ => return Err(NOT_ELF),
    };
    if u16_at(headers, 18) != Some(EM_X86_64) {
        return Err(NOT_ELF);
    }
    let entry = u64_at(headers, 24).ok_or(NOT_ELF)?;
    let phoff = u64_at(headers, 32).ok_or(NOT_ELF)?;
    let phentsize = u16_at(headers, 54).ok_or(NOT_ELF)?;
    let phnum = u16_at(headers, 56).ok_or(NOT_ELF)?;
    if usize::from(phentsize) != PHDR_SIZE || phnum == 0 {
        return Err("unusual program headers");
    }
    let table_end = phoff
        .checked_add(u64::from(phnum) * PHDR_SIZE as u64)
        .ok_or(NOT_ELF)?;
    if table_end > headers.len() as u64 {
        return Err("program headers beyond the first block");
    }

    let mut plan = Plan {
        kind,
        segments: [Segment::default(); MAX_SEGMENTS],
        count: 0,
        start: 0,
        end: 0,
        align: PAGE,
        entry,
        phdr: 0,
        phnum,
        interp: None,
    };
    for i in 0..usize::from(phnum) {
        let p = phdr(headers, phoff as usize + i * PHDR_SIZE).ok_or(NOT_ELF)?;
        match p.kind {
            PT_LOAD => {}
            PT_INTERP => {
                let end = p.offset.checked_add(p.filesz).ok_or(NOT_ELF)?;
                if plan.interp.is_some() || p.filesz < 2 || p.filesz > PAGE || end > file_size {
                    return Err("unusual interpreter header");
                }
                // The path's terminating NUL is checked where the bytes are read.
                plan.interp = Some((p.offset, p.filesz - 1));
                continue;
            }
            PT_GNU_STACK if p.flags & PF_X != 0 => return Err("needs an executable stack"),
            _ => continue,
        }
        if p.memsz == 0 {
            continue;
        }
        if p.flags & PF_W != 0 && p.flags & PF_X != 0 {
            return Err("a segment is writable and executable");
        }
        if p.filesz > p.memsz || p.offset % PAGE != p.vaddr % PAGE {
            return Err("a segment is not laid out as the kernel maps it");
        }
        let file_end = p.offset.checked_add(p.filesz).ok_or(NOT_ELF)?;
        let memory_end = p.vaddr.checked_add(p.memsz).ok_or(NOT_ELF)?;
        if file_end > file_size || memory_end > USER_TOP {
            return Err("a segment lies outside the file or user space");
        }
        let start = page_down(p.vaddr);
        let end = page_up(memory_end).ok_or(NOT_ELF)?;
        let file_len = if p.filesz == 0 {
            0
        } else {
            page_up(p.vaddr + p.filesz).ok_or(NOT_ELF)? - start
        };
        let mut prot = 0;
        for (flag, bit) in [(PF_R, READ), (PF_W, WRITE), (PF_X, EXEC)] {
            if p.flags & flag != 0 {
                prot |= bit;
            }
        }
        if file_len < end - start && prot & EXEC != 0 {
            // Its zero-filled pages would be writable and executable.
            return Err("an executable segment has zero-filled memory");
        }
        let zero_from = (prot & WRITE != 0 && p.filesz != 0 && p.memsz > p.filesz)
            .then_some(p.vaddr + p.filesz)
            .filter(|&from| from % PAGE != 0);
        if let Some(previous) = plan.segments().last()
            && start < previous.end
        {
            return Err("segments overlap or are out of order");
        }
        let slot = plan
            .segments
            .get_mut(plan.count)
            .ok_or("too many segments")?;
        *slot = Segment {
            start,
            end,
            file_offset: page_down(p.offset),
            file_len,
            zero_from,
            prot,
        };
        if plan.count == 0 {
            plan.start = start;
        }
        plan.count += 1;
        plan.end = end;
        if p.align.is_power_of_two() && p.align > plan.align {
            plan.align = p.align;
        }
        if p.offset <= phoff && phoff - p.offset < p.filesz {
            plan.phdr = phoff - p.offset + p.vaddr;
        }
    }
    if plan.count == 0 {
        return Err("nothing to load");
    }
    if kind == Kind::Fixed && plan.start < PAGE {
        return Err("it wants to be mapped at address 0");
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ELF header plus program headers, as (type, flags, offset, vaddr,
    /// filesz, memsz, align).
    fn elf(kind: u16, entry: u64, phdrs: &[Phdr]) -> Vec<u8> {
        let mut out = vec![0u8; EHDR_SIZE];
        out[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
        out[16..18].copy_from_slice(&kind.to_le_bytes());
        out[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
        out[24..32].copy_from_slice(&entry.to_le_bytes());
        out[32..40].copy_from_slice(&(EHDR_SIZE as u64).to_le_bytes());
        out[54..56].copy_from_slice(&(PHDR_SIZE as u16).to_le_bytes());
        out[56..58].copy_from_slice(&(phdrs.len() as u16).to_le_bytes());
        for &(t, f, off, va, fs, ms, al) in phdrs {
            for v in [u64::from(t) | u64::from(f) << 32, off, va, va, fs, ms, al] {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        out
    }

    const R: u32 = PF_R;
    const RX: u32 = PF_R | PF_X;
    const RW: u32 = PF_R | PF_W;

    /// hello as `go build` lays it out (readelf -l of a real build).
    fn go_static() -> Vec<u8> {
        elf(
            ET_EXEC,
            0x480720,
            &[
                (6, R, 0x40, 0x400040, 0x150, 0x150, 0x1000),
                (4, R, 0xf78, 0x400f78, 0x64, 0x64, 4),
                (PT_LOAD, RX, 0, 0x400000, 0xa42d1, 0xa42d1, 0x1000),
                (PT_LOAD, R, 0xa5000, 0x4a5000, 0xde2d8, 0xde2d8, 0x1000),
                (PT_LOAD, RW, 0x184000, 0x584000, 0xaa00, 0x404a0, 0x1000),
                (PT_GNU_STACK, RW, 0, 0, 0, 0, 8),
            ],
        )
    }

    #[test]
    fn a_static_go_program_maps_at_its_addresses() {
        let plan = plan(&go_static(), 0x25c165).unwrap();
        assert_eq!(plan.kind, Kind::Fixed);
        assert_eq!((plan.start, plan.end), (0x400000, 0x5c5000));
        assert_eq!(plan.entry, 0x480720);
        assert_eq!(plan.phdr, 0x400040);
        assert_eq!(plan.phnum, 6);
        assert_eq!(plan.interp, None);
        let s = plan.segments();
        assert_eq!(s.len(), 3);
        assert_eq!(
            s[0],
            Segment {
                start: 0x400000,
                end: 0x4a5000,
                file_offset: 0,
                file_len: 0xa5000,
                zero_from: None,
                prot: READ | EXEC,
            }
        );
        assert_eq!(
            (s[1].prot, s[1].file_offset, s[1].file_len),
            (READ, 0xa5000, 0xdf000)
        );
        // The data segment: its last file page is zeroed from the end of
        // its file bytes, and bss follows as zero pages.
        assert_eq!(
            s[2],
            Segment {
                start: 0x584000,
                end: 0x5c5000,
                file_offset: 0x184000,
                file_len: 0xb000,
                zero_from: Some(0x58ea00),
                prot: READ | WRITE,
            }
        );
        assert_eq!(s[2].anonymous_start(), 0x58f000);
        assert_eq!(s[2].anonymous_prot(), READ | WRITE);
        assert!(!plan.reads_past_end(0x25c165));
        // Cut right after the data segment's file bytes: its zeroing covers
        // the rest of the page. Cut inside the text's last page: it does not.
        assert!(!plan.reads_past_end(0x18ea00));
        assert!(plan.reads_past_end(0xa42d1));
    }

    /// The cgo example linked by gcc: an interpreter, a read-only first
    /// segment, and a data segment that starts in the middle of a file page
    /// that the read-only data segment maps too.
    fn cgo() -> Vec<u8> {
        elf(
            ET_EXEC,
            0x402000,
            &[
                (6, R, 0x40, 0x400040, 0x310, 0x310, 8),
                (PT_INTERP, R, 0x350, 0x400350, 0x1c, 0x1c, 1),
                (PT_LOAD, R, 0, 0x400000, 0x10f0, 0x10f0, 0x1000),
                (PT_LOAD, RX, 0x2000, 0x402000, 0xa148d, 0xa148d, 0x1000),
                (PT_LOAD, R, 0xa4000, 0x4a4000, 0xdcc08, 0xdcc08, 0x1000),
                (PT_LOAD, RW, 0x180df0, 0x581df0, 0xadd2, 0x408f0, 0x1000),
            ],
        )
    }

    #[test]
    fn an_interpreter_and_shared_file_pages() {
        let plan = plan(&cgo(), 0x200000).unwrap();
        assert_eq!(plan.interp, Some((0x350, 0x1b)));
        assert_eq!(plan.phdr, 0x400040);
        let s = plan.segments();
        assert_eq!(s.len(), 4);
        assert_eq!((s[3].start, s[3].file_offset), (0x581000, 0x180000));
        assert_eq!(s[3].zero_from, Some(0x58cbc2));
        // File page 0x180000 is mapped twice: by the read-only data and by
        // the writable data.
        assert_eq!(
            plan.places(0x180000, 0x1000).unwrap().addresses(),
            [0x580000, 0x581000]
        );
        assert_eq!(plan.places(0x2000, 0x1000).unwrap().addresses(), [0x402000]);
        assert!(plan.places(0x180000, 0x2000).is_err());
        // Past the last file page: not mapped.
        assert!(
            plan.places(0x18c000, 0x1000)
                .unwrap()
                .addresses()
                .is_empty()
        );
        assert!(!plan.maps_any(0x18c000, 0x1000));
        assert!(plan.maps_any(0x18b000, 0x2000));
        assert_eq!(plan.address_of(0x350), Some(0x400350));
        assert_eq!(plan.address_of(0x1_0000), Some(0x410000));
        assert_eq!(plan.address_of(0x1000), Some(0x401000));
        assert_eq!(plan.address_of(0x18c000), None);
    }

    #[test]
    fn a_pie_is_relocatable_and_aligned_to_its_largest_alignment() {
        let headers = elf(
            ET_DYN,
            0x1040,
            &[
                (PT_LOAD, RX, 0, 0, 0x2000, 0x2000, 0x1000),
                (PT_LOAD, RW, 0x2000, 0x200000, 0x100, 0x100, 0x200000),
            ],
        );
        let plan = plan(&headers, 0x3000).unwrap();
        assert_eq!(plan.kind, Kind::Relocatable);
        assert_eq!(plan.align, 0x200000);
        assert_eq!(plan.span(), 0x201000);
        // e_phoff 64 lies in the first segment's file bytes.
        assert_eq!(plan.phdr, 64);
    }

    /// A program header as (type, flags, offset, vaddr, filesz, memsz, align).
    type Phdr = (u32, u32, u64, u64, u64, u64, u64);

    #[test]
    fn what_cannot_be_mapped_exactly_is_refused() {
        let load = |flags, offset, vaddr, filesz, memsz| {
            (PT_LOAD, flags, offset, vaddr, filesz, memsz, 0x1000)
        };
        let cases: [(&[Phdr], &str); 9] = [
            (
                &[load(RW | PF_X, 0, 0x400000, 0x10, 0x10)],
                "writable and executable",
            ),
            (&[load(RX, 0, 0x400000, 0x10, 0x2000)], "zero-filled"),
            (&[load(R, 0x10, 0x400000, 0x10, 0x10)], "not laid out"),
            (&[load(R, 0, 0x400000, 0x20, 0x10)], "not laid out"),
            (
                &[load(R, 0, 0x400000, 0x10_0000, 0x10_0000)],
                "outside the file",
            ),
            (
                &[
                    load(R, 0, 0x400000, 0x10, 0x10),
                    load(R, 0x1000, 0x400000, 0x10, 0x10),
                ],
                "overlap",
            ),
            (
                &[(PT_GNU_STACK, RW | PF_X, 0, 0, 0, 0, 16)],
                "executable stack",
            ),
            (&[(PT_INTERP, R, 0x1ff8, 0, 0x10, 0x10, 1)], "interpreter"),
            (&[load(R, 0, 0, 0x10, 0x10)], "address 0"),
        ];
        for (phdrs, why) in cases {
            let headers = elf(ET_EXEC, 0, phdrs);
            let refused = plan(&headers, 0x2000).unwrap_err();
            assert!(refused.contains(why), "{phdrs:x?}: {refused}");
        }
        let mut not_elf = go_static();
        not_elf[18] = 3; // i386
        assert!(plan(&not_elf, 0x25c165).is_err());
        // Headers cut short anywhere: refused, never a panic.
        let whole = go_static();
        for len in 0..whole.len() {
            assert!(plan(&whole[..len], 0x25c165).is_err(), "{len}");
        }
        assert_eq!(
            plan(&elf(ET_EXEC, 0, &[]), 0x100),
            Err("unusual program headers")
        );
    }

    #[test]
    fn a_bss_only_segment_maps_no_file_bytes() {
        let headers = elf(
            ET_EXEC,
            0x401000,
            &[
                (PT_LOAD, RX, 0, 0x400000, 0x1800, 0x1800, 0x1000),
                (PT_LOAD, RW, 0x1800, 0x402800, 0, 0x3000, 0x1000),
            ],
        );
        let plan = plan(&headers, 0x1800).unwrap();
        let bss = plan.segments()[1];
        assert_eq!((bss.start, bss.end, bss.file_len), (0x402000, 0x406000, 0));
        assert_eq!(bss.zero_from, None);
    }
}
