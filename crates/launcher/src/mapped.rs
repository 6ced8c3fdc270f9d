//! The mapped start: the chosen variant's segments are mapped from the
//! bundle's own pages (or, for an encoded variant, decoded straight into
//! anonymous memory at their addresses), exactly as the kernel's exec maps
//! an executable, its interpreter too; the bytes that will run are verified;
//! the auxiliary vector is rewritten in place; and the launcher jumps to the
//! entry point with the initial stack and every register clear. No memfd, no
//! copy, no second exec: the process keeps its PID, its /proc/PID/exe (the
//! bundle) and its name. docs/LAUNCHER.md lists what is left of the launcher.

use crate::bundle::Bundle;
use crate::fail::Failure;
use crate::start::Process;
use crate::sys::{self, PAGE};
use core::ffi::CStr;
use mgo_format::{Block, Blocks, Encoding, Entry};
use mgo_launcher::auxv;
use mgo_launcher::elf::{self, Kind, Plan};
use rustix::fd::BorrowedFd;
use rustix::io::Errno;

/// Why the mapped start did not happen.
#[derive(Clone, Copy, Debug)]
pub enum Stop {
    /// The variant cannot be mapped exactly as the kernel would map it (an
    /// unusual ELF, a segment over the launcher, a refused mmap): start it
    /// through a memfd instead. Nothing of the attempt is left.
    Refused(&'static str),
    /// A real failure (damage above all): never a fallback, never a jump.
    Failed(Failure),
}

impl From<Failure> for Stop {
    fn from(failure: Failure) -> Self {
        Self::Failed(failure)
    }
}

/// The x86-64 kernel's base for PIE executables (ELF_ET_DYN_BASE, 2/3 of
/// the 47-bit address space, page-aligned).
const ET_DYN_BASE: u64 = 0x5555_5555_4000;

/// Random pages added to it (arch_mmap_rnd: mmap_rnd_bits, 28 by default).
const ET_DYN_RANDOM_BITS: u32 = 28;

/// personality(2)'s ADDR_NO_RANDOMIZE (`setarch -R`, debuggers).
const ADDR_NO_RANDOMIZE: u32 = 0x0004_0000;

/// Where the page that names the running variant goes: "mgo" in hex, then
/// the level (0x6d676f003000 for v3), in a part of the address space that
/// nothing the kernel, Go or the sanitizers' runtimes place claims. A page
/// of no access there only takes a name (docs/LAUNCHER.md, "Which variant
/// runs").
const MARKER_BASE: usize = 0x6d67_6f00_0000;

/// The first block of an encoded variant is decoded here to read the
/// headers before anything is mapped; mgo makes it exactly one page.
const HEADER_BLOCK: usize = PAGE;

/// Hands the process to the program that [`prepare`] mapped: leaves the
/// marker page that names the variant, then jumps, unmapping the rest of
/// the launcher on the way. The bundle must be closed and unmapped first.
pub fn jump(process: &Process, ready: Ready, level: u8) -> ! {
    let mut name = *b"mgo GOAMD64=v0\0";
    name[13] = b'0'.wrapping_add(level);
    if let Ok(name) = CStr::from_bytes_until_nul(&name) {
        sys::leave_marker(MARKER_BASE + usize::from(level) * PAGE, name);
    }
    tell_the_kernel(process, &ready);
    // Each own segment may be cut in up to three around the kept pages;
    // then the decoders' heap, and the end marker.
    let mut unmap = [[0usize; 2]; 3 * crate::start::MAX_OWN_SEGMENTS + 2];
    launcher_pages(process, &mut unmap);
    // SAFETY: the program is mapped, verified and described by the
    // rewritten auxiliary vector on the initial stack; `unmap` is on this
    // stack and names only the launcher's own pages.
    unsafe { sys::jump_to_program(ready.entry, process.sp, unmap.as_ptr()) }
}

/// The launcher's own pages, minus the ones that hold the jump code and
/// gdb's JIT descriptor, as `(address, length)` pairs ended by a zero
/// length.
fn launcher_pages(process: &Process, out: &mut [[usize; 2]]) {
    let (code, len) = sys::jump_code();
    let jit = crate::jit::page();
    // In address order (the code comes first: the linker puts read-only
    // segments before writable ones).
    let keep = [
        (code & !(PAGE - 1), (code + len).div_ceil(PAGE) * PAGE),
        (jit, jit + PAGE),
    ];
    let mut n = 0;
    let mut push = |start: usize, end: usize| {
        if end > start
            && let Some(slot) = out.get_mut(n)
        {
            *slot = [start, end - start];
            n += 1;
        }
    };
    for segment in process.own.iter().filter(|s| s.end > s.start) {
        let mut from = segment.start;
        for &(start, end) in &keep {
            if start < segment.end && end > from {
                push(from, start.max(from));
                from = end;
            }
        }
        push(from, segment.end);
    }
    #[cfg(feature = "zstd")]
    if let Some((start, len)) = crate::heap::pages() {
        push(start, start + len);
    }
}

/// The program's `start_code`, `end_code`, `start_data` and `end_data`,
/// computed as the kernel's exec computes them (from each segment's first
/// page and the end of its file part).
fn layout_of(plan: &elf::Plan, bias: u64) -> [u64; 4] {
    let (mut start_code, mut end_code, mut start_data, mut end_data) = (u64::MAX, 0, 0, 0);
    for segment in plan.segments() {
        let start = segment.start.wrapping_add(bias);
        let end = start.wrapping_add(segment.file_len);
        if segment.prot & 4 != 0 {
            start_code = start_code.min(start);
            end_code = end_code.max(end);
        }
        start_data = start_data.max(start);
        end_data = end_data.max(end);
    }
    [start_code, end_code, start_data, end_data]
}

/// Tells the kernel what it would have recorded had it executed the
/// program itself: the auxiliary vector (`/proc/PID/auxv`, a core's
/// `NT_AUXV`), where debuggers such as Delve read the program's entry
/// point to place its symbols, and the code and data ranges. Where the
/// kernel refuses (without CONFIG_CHECKPOINT_RESTORE), they stay the
/// launcher's, as they were.
fn tell_the_kernel(process: &Process, ready: &Ready) {
    // SAFETY: argv and envp are the kernel's NULL-terminated arrays of C
    // strings, laid out one after the other on the initial stack.
    let strings = |list: *const *const u8| unsafe {
        let first = *list;
        let mut last = first;
        let mut i = 0;
        while !(*list.add(i)).is_null() {
            last = *list.add(i);
            i += 1;
        }
        if first.is_null() {
            return None;
        }
        let end = last as u64 + CStr::from_ptr(last.cast()).to_bytes_with_nul().len() as u64;
        Some((first as u64, end))
    };
    let Some((arg_start, arg_end)) = strings(process.argv) else {
        return;
    };
    let (env_start, env_end) = strings(process.envp).unwrap_or((arg_end, arg_end));
    let auxv = process.auxv();
    let brk = sys::current_break();
    let [start_code, end_code, start_data, end_data] = ready.layout;
    let map = sys::MmMap {
        start_code,
        end_code,
        start_data,
        end_data,
        start_brk: brk,
        brk,
        start_stack: process.sp as u64,
        arg_start,
        arg_end,
        env_start,
        env_end,
        auxv: auxv.as_ptr(),
        auxv_size: size_of_val(auxv) as u32,
        exe_fd: u32::MAX,
    };
    let _ = sys::set_mm_map(&map);
}

/// Registers the whole file of a level stored as it is with gdb's JIT
/// interface, mapped from the bundle: the way gdb finds the program's
/// symbols and unwind tables without being told about the bundle. Nothing
/// depends on it, so a failure only leaves gdb without them.
fn show_to_debuggers(bundle: &Bundle, entry: &Entry) {
    if entry.section_count != 0 {
        return;
    }
    let Ok(size) = usize::try_from(entry.size) else {
        return;
    };
    if let Ok((image, 0)) = sys::map_file(bundle.file(), bundle.file_offset(entry), size) {
        crate::jit::register(&image);
        image.keep();
    }
}

/// Where the program starts once mapped.
pub struct Ready {
    /// Its code and data, as the kernel records a program's.
    layout: [u64; 4],
    entry: usize,
}

fn refused(err: Errno, why: &'static str) -> Stop {
    // Out of memory is out of memory whichever way the variant starts.
    if err == Errno::NOMEM {
        Stop::Failed(Failure::NoMemory)
    } else {
        Stop::Refused(why)
    }
}

/// A file that holds exactly the program's executable, checked by the
/// caller through `image`, a read-only mapping of all of it (the file
/// start, see file.rs).
pub struct Cached<'a> {
    pub file: BorrowedFd<'a>,
    pub image: sys::Mapping,
}

/// Maps, verifies and describes the program, from the bundle or from
/// `cached`; everything it allocates for itself is released when it
/// returns, whether it succeeds or not, and when it fails nothing of the
/// program is left mapped either.
pub fn prepare(
    process: &Process,
    bundle: &Bundle,
    entry: &Entry,
    cached: Option<Cached<'_>>,
) -> Result<Ready, Stop> {
    let blocks = bundle.blocks(entry)?;
    let first = blocks.get(0);
    let encoded = entry.encoding != Encoding::Raw && cached.is_none();
    #[cfg(feature = "decoder")]
    let mut reference = crate::decode::Reference::of(bundle, entry)?;
    #[cfg(feature = "decoder")]
    let mut header_block = [0u8; HEADER_BLOCK];
    let headers: &[u8] = if encoded {
        if first.size > HEADER_BLOCK {
            return Err(Stop::Refused("its first block is not one page"));
        }
        #[cfg(feature = "decoder")]
        crate::verify::decode_block(
            &mut crate::verify::decoder()?,
            entry,
            &first,
            header_block.get_mut(..first.size).unwrap_or(&mut []),
            reference.prefix(first.dictionary_size)?,
        )?;
        #[cfg(not(feature = "decoder"))]
        return Err(Stop::Failed(Failure::Unsupported(entry.encoding)));
        #[cfg(feature = "decoder")]
        header_block.get(..first.size).unwrap_or(&[])
    } else if let Some(cached) = &cached {
        cached.image.bytes()
    } else {
        bundle.stored(entry)
    };
    let size = cached.as_ref().map_or(entry.size, |c| c.image.len() as u64);
    let plan = elf::plan(headers, size).map_err(Stop::Refused)?;
    if !encoded && plan.reads_past_end(size) {
        return Err(Stop::Refused(
            "a segment's last page runs past the end of its file",
        ));
    }
    // From its first inflated section on, the image the blocks tile is not
    // the executable: nothing there may be mapped from the bundle (mgo never
    // writes that; the memfd start re-creates the file instead).
    let sections = bundle.sections(entry)?;
    let first_section = sections.first_image_offset(entry.size);
    if cached.is_none()
        && !sections.is_empty()
        && plan.maps_any(first_section, entry.size - first_section)
    {
        return Err(Stop::Refused("a segment maps an inflated section"));
    }
    let wanted = |i: usize| {
        let block = blocks.get(i);
        plan.maps_any(block.offset, block.size as u64)
    };

    let reservation = if encoded {
        reserve_for_decoding(&plan)?
    } else {
        reserve(&plan)?
    };
    let bias = (reservation.base() as u64).wrapping_sub(plan.start);
    if encoded {
        #[cfg(feature = "decoder")]
        {
            let dictionary = crate::decode::dictionary_needed(&blocks, &wanted);
            let dictionary = reference.prefix(dictionary)?;
            decode_in_place(
                &plan,
                bias,
                reservation.len(),
                entry,
                &blocks,
                &header_block,
                dictionary,
                &wanted,
            )?;
        }
    } else if let Some(cached) = cached {
        map_file_segments(&plan, bias, cached.file, 0, MAP_REFUSED)?;
        crate::jit::register(&cached.image);
        cached.image.keep();
    } else {
        map_file_segments(
            &plan,
            bias,
            bundle.file(),
            bundle.file_offset(entry),
            MAP_REFUSED,
        )?;
        // Checked once per version of the bundle file and user: a later
        // start reads only what the program touches, as a plain build's.
        crate::file::check_bundle_once(process, &bundle.stat, entry.level, || {
            verify_in_place(&plan, bias, entry, &blocks, &wanted)
        })?;
        show_to_debuggers(bundle, entry);
    }
    finish_segments(&plan, bias, encoded)?;
    describe(process, &plan, bias, reservation)
}

/// Maps the interpreter, if the program has one, and rewrites the
/// auxiliary vector for the program mapped at `bias` in `reservation`,
/// which stays from then on.
fn describe(
    process: &Process,
    plan: &Plan,
    bias: u64,
    reservation: sys::Mapping,
) -> Result<Ready, Stop> {
    let interpreter = match plan.interp {
        Some((offset, len)) => Some(load_interpreter(plan, bias, offset, len)?),
        None => None,
    };
    let program = auxv::Program {
        phdr: plan.phdr.wrapping_add(bias) as usize,
        phent: elf::PHDR_SIZE,
        phnum: usize::from(plan.phnum),
        entry: plan.entry.wrapping_add(bias) as usize,
        base: interpreter.map_or(0, |(base, _)| base),
    };
    if !auxv::rewrite(process.auxv(), &program) {
        return Err(Stop::Refused("the auxiliary vector lacks an entry"));
    }
    // From here on the program's pages stay.
    reservation.keep();
    Ok(Ready {
        layout: layout_of(plan, bias),
        entry: interpreter.map_or(program.entry, |(_, entry)| entry),
    })
}

/// Reserves the address space `plan` spans: at its own addresses, or for a
/// PIE where the kernel would put it.
fn reserve(plan: &Plan) -> Result<sys::Mapping, Stop> {
    let span = plan.span() as usize;
    match plan.kind {
        Kind::Fixed => sys::reserve(Some(plan.start as usize), span).map_err(|err| match err {
            Errno::EXIST => Stop::Refused("its addresses are taken (by the launcher?)"),
            err => refused(err, "the kernel refused to reserve its addresses"),
        }),
        Kind::Relocatable => {
            let align = plan.align as usize;
            if randomized()
                && let Some(random) = sys::random()
            {
                let pages = random & ((1 << ET_DYN_RANDOM_BITS) - 1);
                let hint = (ET_DYN_BASE + pages * PAGE as u64) & !(plan.align - 1);
                if let Ok(mapping) = sys::reserve(Some(hint as usize), span) {
                    return Ok(mapping);
                }
            } else if !randomized()
                && let Ok(mapping) = sys::reserve(Some(ET_DYN_BASE as usize & !(align - 1)), span)
            {
                return Ok(mapping);
            }
            reserve_aligned(span, align)
        }
    }
}

/// Transparent huge pages are this large on x86-64.
const HUGE_PAGE: u64 = 2 << 20;

/// Reserves the address space for decoding `plan` in place: for a program
/// at fixed addresses, up to the next 2 MiB boundary when that much is free,
/// so that the memory it is decoded into can be made of huge pages (one
/// fault and one clear per 2 MiB instead of 512 faults: measured 0.5 ms
/// against 4 to 5 ms for 14 MiB, docs/DESIGN.md). The part past the program
/// is given back once it is decoded.
fn reserve_for_decoding(plan: &Plan) -> Result<sys::Mapping, Stop> {
    if plan.kind == Kind::Fixed {
        let end = plan.end.div_ceil(HUGE_PAGE) * HUGE_PAGE;
        if let Ok(mapping) = sys::reserve(Some(plan.start as usize), (end - plan.start) as usize) {
            return Ok(mapping);
        }
    }
    reserve(plan)
}

/// Whether this process wants randomized addresses (not `setarch -R`).
fn randomized() -> bool {
    sys::personality().is_none_or(|p| p & ADDR_NO_RANDOMIZE == 0)
}

/// Reserves `span` bytes at a multiple of `align`, where the kernel likes.
fn reserve_aligned(span: usize, align: usize) -> Result<sys::Mapping, Stop> {
    let extra = align.saturating_sub(PAGE);
    let wide = sys::reserve(None, span + extra)
        .map_err(|err| refused(err, "the kernel refused to reserve address space"))?;
    let base = wide.base() as usize;
    let aligned = base.div_ceil(align) * align;
    let len = wide.len();
    wide.keep();
    // SAFETY: trimming our own fresh reservation to its aligned part.
    unsafe {
        sys::unmap(base, aligned - base);
        sys::unmap(aligned + span, base + len - aligned - span);
    }
    // SAFETY: the aligned middle of the reservation, ours alone.
    Ok(unsafe { sys::Mapping::adopt(aligned, span) })
}

const MAP_REFUSED: &str = "the kernel refused to map a segment";

/// Maps the file pages of each of `plan`'s segments from `fd`, whose ELF
/// file starts at `file_base`, inside the reservation at `bias`
/// (`finish_segments` then sets up the rest of each segment's memory);
/// holes between segments are given back, as the kernel leaves them
/// unmapped. The program and its interpreter are mapped so.
fn map_file_segments(
    plan: &Plan,
    bias: u64,
    fd: BorrowedFd<'_>,
    file_base: u64,
    refusal: &'static str,
) -> Result<(), Stop> {
    let mut previous_end = plan.start;
    for segment in plan.segments() {
        // SAFETY: inside our reservation.
        unsafe {
            sys::unmap(
                previous_end.wrapping_add(bias) as usize,
                (segment.start - previous_end) as usize,
            );
            if segment.file_len > 0 {
                sys::map_file_at(
                    segment.start.wrapping_add(bias) as usize,
                    segment.file_len as usize,
                    segment.prot,
                    fd,
                    file_base + segment.file_offset,
                )
                .map_err(|err| refused(err, refusal))?;
            }
        }
        previous_end = segment.end;
    }
    Ok(())
}

/// Checks every block of a raw variant that the program's pages hold,
/// reading it through the program's own mapping (which also maps those
/// pages for the program), or through the bundle's where a block is not
/// wholly inside one segment. Where that finds a difference, the blocks are
/// checked again as the file holds them, through the bundle's shared
/// mapping: a uprobe set on the bundle (`perf probe`, bpftrace) has the
/// kernel write its breakpoint into the program's private pages, and that
/// is the debugger's doing, not damage.
fn verify_in_place(
    plan: &Plan,
    bias: u64,
    entry: &Entry,
    blocks: &Blocks<'_>,
    wanted: &(dyn Fn(usize) -> bool + Sync),
) -> Result<(), Stop> {
    let through_the_program = |block: &Block<'_>| -> Option<*const u8> {
        let places = plan.places(block.offset, block.size as u64).ok()?;
        let at = *places.addresses().first()?;
        Some(at.wrapping_add(bias) as *const u8)
    };
    let mut outcome = Ok(());
    // One call site in a loop, not two calls: the launcher's size budget.
    for as_the_file_holds_it in [false, true] {
        outcome = crate::verify::raw_blocks(
            entry.level,
            blocks,
            wanted,
            &|block| match through_the_program(block) {
                // SAFETY: the segment maps these file bytes readable.
                Some(at) if !as_the_file_holds_it => unsafe {
                    core::slice::from_raw_parts(at, block.size)
                },
                _ => block.stored,
            },
            &|_| Ok::<(), Stop>(()),
        );
        if outcome.is_ok() {
            break;
        }
    }
    outcome
}

/// Decodes every block the program's pages hold straight into place (the
/// segments are anonymous, writable memory until [`finish_segments`]), and
/// checks each.
/// Decodes every block the program's pages hold straight into place, into
/// one writable mapping of the whole reservation (which stays writable
/// until [`finish_segments`] gives each segment its protections), and
/// checks each block.
#[cfg(feature = "decoder")]
#[allow(clippy::too_many_arguments)] // the plan, where it lies, and what goes there
fn decode_in_place(
    plan: &Plan,
    bias: u64,
    reserved: usize,
    entry: &Entry,
    blocks: &Blocks<'_>,
    header_block: &[u8],
    dictionary: &[u8],
    wanted: &(dyn Fn(usize) -> bool + Sync),
) -> Result<(), Stop> {
    let start = plan.start.wrapping_add(bias) as usize;
    // SAFETY: our own reservation.
    unsafe {
        sys::map_zero_at(start, reserved, elf::READ | elf::WRITE)
            .map_err(|err| refused(err, "the kernel refused memory for the segments"))?;
    }
    sys::advise_huge(start, reserved);
    let place = |offset: u64, size: usize| -> Result<elf::Places, Stop> {
        plan.places(offset, size as u64).map_err(Stop::Refused)
    };
    let copies = |from: *const u8, places: &elf::Places, size: usize| {
        for &at in places.addresses() {
            let to = at.wrapping_add(bias) as *mut u8;
            if to.cast_const() != from {
                // SAFETY: segment pages of ours, writable; a block's places
                // are distinct file pages' copies, never overlapping.
                unsafe { core::ptr::copy_nonoverlapping(from, to, size) };
            }
        }
    };
    let first = blocks.get(0);
    copies(
        header_block.as_ptr(),
        &place(first.offset, first.size)?,
        first.size.min(header_block.len()),
    );
    let place_of = |block: &Block<'_>| -> Result<Option<*mut u8>, Stop> {
        let places = place(block.offset, block.size)?;
        Ok(places
            .addresses()
            .first()
            .map(|&at| at.wrapping_add(bias) as *mut u8))
    };
    // SAFETY: each block's first place is segment pages of ours, writable
    // until `finish_segments`, and blocks do not overlap.
    unsafe {
        crate::verify::decoded_blocks(
            entry,
            blocks,
            dictionary,
            &|i| i != 0 && wanted(i),
            crate::verify::Output::InPlace(&place_of),
            &|block, out| {
                copies(out.as_ptr(), &place(block.offset, block.size)?, block.size);
                Ok(())
            },
        )?;
    }
    // The kernel leaves holes between segments unmapped; and what lies past
    // the program was only borrowed for its huge pages.
    let mut previous_end = plan.start;
    for segment in plan.segments() {
        // SAFETY: a hole of our reservation.
        unsafe {
            sys::unmap(
                previous_end.wrapping_add(bias) as usize,
                (segment.start - previous_end) as usize,
            );
        }
        previous_end = segment.end;
    }
    let end = plan.end.wrapping_add(bias) as usize;
    // SAFETY: past the program, in our reservation.
    unsafe { sys::unmap(end, start + reserved - end) };
    Ok(())
}

/// Zeroes the tails of writable segments' last file pages, gives decoded
/// segments their final protections, and maps the zero pages that follow
/// each segment's file part.
fn finish_segments(plan: &Plan, bias: u64, decoded: bool) -> Result<(), Stop> {
    for segment in plan.segments() {
        if let Some(from) = segment.zero_from {
            let end = (from | (PAGE as u64 - 1)) + 1;
            // SAFETY: the last file page of a writable segment of ours.
            unsafe {
                core::ptr::write_bytes(
                    from.wrapping_add(bias) as *mut u8,
                    0,
                    (end - from) as usize,
                );
            }
        }
        let start = segment.start.wrapping_add(bias) as usize;
        let anonymous = segment.anonymous_start().wrapping_add(bias) as usize;
        let end = segment.end.wrapping_add(bias) as usize;
        // SAFETY: the segment's own pages.
        unsafe {
            if decoded {
                if segment.file_len > 0 {
                    sys::protect(start, segment.file_len as usize, segment.prot).map_err(
                        |err| refused(err, "the kernel refused a segment's protections"),
                    )?;
                }
                if end > anonymous && segment.anonymous_prot() != elf::READ | elf::WRITE {
                    sys::protect(anonymous, end - anonymous, segment.anonymous_prot()).map_err(
                        |err| refused(err, "the kernel refused a segment's protections"),
                    )?;
                }
            } else if end > anonymous {
                sys::map_zero_at(anonymous, end - anonymous, segment.anonymous_prot())
                    .map_err(|err| refused(err, "the kernel refused memory for a segment"))?;
            }
        }
    }
    Ok(())
}

/// Maps the interpreter named by the program's PT_INTERP (the path is in
/// the program's verified pages) as the kernel does; returns its load
/// address (AT_BASE) and its entry point. The interpreter is a file of the
/// system, like the one the kernel would load, and is not verified.
fn load_interpreter(plan: &Plan, bias: u64, offset: u64, len: u64) -> Result<(usize, usize), Stop> {
    let at = plan
        .address_of(offset)
        .filter(|_| plan.address_of(offset + len) == plan.address_of(offset).map(|a| a + len))
        .ok_or(Stop::Refused("the interpreter's path is not in a segment"))?;
    // SAFETY: `len + 1` bytes of a mapped, verified segment.
    let path = unsafe {
        core::slice::from_raw_parts(at.wrapping_add(bias) as *const u8, len as usize + 1)
    };
    // As the kernel reads PT_INTERP: up to its first NUL, which must end it
    // at the latest (one CStr parser in the launcher, not two: its size).
    let path = CStr::from_bytes_until_nul(path)
        .ok()
        .filter(|_| path.last() == Some(&0))
        .ok_or(Stop::Refused("the interpreter's path is malformed"))?;
    let file = sys::open_read(path).map_err(|err| match err {
        Errno::MFILE | Errno::NFILE => Stop::Failed(Failure::System(
            b"cannot open the interpreter",
            err,
            crate::fail::Status::Exec,
        )),
        _ => Stop::Refused("cannot open the interpreter"),
    })?;
    let fd = sys::borrow(&file);
    let size = sys::owner_of(fd)
        .map_err(|err| refused(err, "cannot stat the interpreter"))?
        .size;
    let mut headers = [0u8; PAGE];
    let read = sys::pread(fd, &mut headers, 0)
        .map_err(|err| refused(err, "cannot read the interpreter"))?;
    let interp = elf::plan(headers.get(..read).unwrap_or(&[]), size).map_err(Stop::Refused)?;
    if interp.interp.is_some() {
        return Err(Stop::Refused("the interpreter wants an interpreter"));
    }
    if interp.reads_past_end(size) {
        return Err(Stop::Refused(
            "the interpreter's last page runs past its end",
        ));
    }
    let reservation = match interp.kind {
        Kind::Fixed => sys::reserve(Some(interp.start as usize), interp.span() as usize)
            .map_err(|err| refused(err, "the interpreter's addresses are taken"))?,
        Kind::Relocatable => reserve_aligned(interp.span() as usize, interp.align as usize)?,
    };
    let interp_bias = (reservation.base() as u64).wrapping_sub(interp.start);
    map_file_segments(
        &interp,
        interp_bias,
        fd,
        0,
        "the kernel refused to map the interpreter",
    )?;
    finish_segments(&interp, interp_bias, false)?;
    reservation.keep();
    Ok((
        interp_bias as usize,
        interp.entry.wrapping_add(interp_bias) as usize,
    ))
}
