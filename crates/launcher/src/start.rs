//! The entry point and what the kernel put on the initial stack: argc,
//! argv, the environment and the auxiliary vector (System V AMD64 ABI,
//! "Process Initialization").

use core::ffi::CStr;
use mgo_format::SEGMENT_TYPE;
use mgo_launcher::auxv::{AT_EXECFN, AT_NULL, AT_PHDR, AT_PHNUM, AT_SECURE};
use mgo_launcher::elf::PHDR_SIZE;
use mgo_launcher::env::Variables;

/// The process's entry point: hands the initial stack pointer to `entry`.
///
/// # Safety
/// Only the kernel calls it, once, with the initial process stack.
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _start() -> ! {
    core::arch::naked_asm!(
        "xor ebp, ebp",
        "mov rdi, rsp",
        "and rsp, -16",
        "call {entry}",
        "ud2",
        entry = sym entry,
    )
}

/// Reads the initial stack and runs the launcher.
///
/// # Safety
/// `sp` must be the stack pointer the kernel started the process with.
unsafe extern "C" fn entry(sp: *mut usize) -> ! {
    // SAFETY: the kernel's own stack layout, as `sp` points to it.
    let process = unsafe { Process::read(sp) };
    crate::run(&process)
}

/// A loaded segment of the launcher itself, from its own program headers.
#[derive(Clone, Copy, Default)]
pub struct OwnSegment {
    /// Page-aligned start address.
    pub start: usize,
    /// Page-aligned end address.
    pub end: usize,
}

/// The variables that name the file start's directory, each with its `=`.
const CACHE_VARS: [&[u8]; 3] = [b"MGOCACHE=", b"XDG_CACHE_HOME=", b"HOME="];

/// Most PT_LOAD segments the launcher has: the linker writes three, mgo adds
/// the one that maps the bundle segment.
pub const MAX_OWN_SEGMENTS: usize = 5;

/// What the kernel hands a new process.
pub struct Process {
    /// The initial stack pointer: argc is at `sp[0]`.
    pub sp: *mut usize,
    /// NULL-terminated argv.
    pub argv: *const *const u8,
    /// NULL-terminated environment.
    pub envp: *const *const u8,
    /// The auxiliary vector, key-value pairs up to AT_NULL, on the stack.
    pub auxv: *mut usize,
    /// Number of words of `auxv`, AT_NULL's pair included.
    pub auxv_len: usize,
    /// The launcher's variables.
    pub vars: Variables<'static>,
    /// The values of `MGOCACHE`, `XDG_CACHE_HOME` and `HOME`, if set.
    pub cache_vars: [Option<&'static CStr>; 3],
    /// AT_SECURE: a privileged start.
    pub secure: bool,
    /// AT_EXECFN: the path given to execve.
    pub exec_path: Option<&'static CStr>,
    /// File offset and size of the bundle segment, from the program headers.
    pub bundle_segment: Option<(u64, u64)>,
    /// Where the kernel mapped the start of the bundle segment (its table
    /// and directories) from the file it executed, and how many bytes: the
    /// PT_LOAD header that starts where the segment does. Bytes no path can
    /// substitute.
    pub kernel_copy: Option<(usize, usize)>,
    /// The launcher's own PT_LOAD segments.
    pub own: [OwnSegment; MAX_OWN_SEGMENTS],
}

impl Process {
    /// # Safety
    /// `sp` must be the initial stack pointer: argc, argv[], NULL, envp[],
    /// NULL, auxv pairs up to AT_NULL.
    unsafe fn read(sp: *mut usize) -> Self {
        // SAFETY: the layout above.
        unsafe {
            let argc = *sp;
            let argv = sp.add(1).cast::<*const u8>();
            let envp = argv.add(argc + 1);
            let mut vars = Variables::default();
            let mut cache_vars = [None; 3];
            let mut cursor = envp;
            while !(*cursor).is_null() {
                let entry = *cursor;
                // Most variables differ in their first byte; only candidates are measured.
                if *entry == b'G' || *entry == b'M' {
                    vars.note(CStr::from_ptr(entry.cast()).to_bytes());
                }
                // The file start's directories: MGOCACHE, XDG_CACHE_HOME,
                // HOME; the first of each counts.
                for (slot, name) in cache_vars.iter_mut().zip(CACHE_VARS) {
                    if slot.is_none() && name.first() == Some(&*entry) {
                        let text = CStr::from_ptr(entry.cast()).to_bytes();
                        if text.starts_with(name) {
                            *slot = Some(CStr::from_ptr(entry.add(name.len()).cast()));
                        }
                    }
                }
                cursor = cursor.add(1);
            }
            let auxv = cursor.add(1).cast::<usize>();
            let (mut phdr, mut phnum, mut secure, mut exec_path) = (0usize, 0usize, false, None);
            let mut len = 0;
            loop {
                let (key, value) = (*auxv.add(len), *auxv.add(len + 1));
                len += 2;
                match key {
                    AT_NULL => break,
                    AT_PHDR => phdr = value,
                    AT_PHNUM => phnum = value,
                    AT_SECURE => secure = value != 0,
                    AT_EXECFN if value != 0 => exec_path = Some(CStr::from_ptr(value as *const _)),
                    _ => {}
                }
            }
            let OwnHeaders {
                bundle_segment,
                kernel_copy,
                own,
            } = own_headers(phdr, phnum);
            Self {
                sp,
                argv,
                envp,
                auxv,
                auxv_len: len,
                vars,
                cache_vars,
                secure,
                exec_path,
                bundle_segment,
                kernel_copy,
                own,
            }
        }
    }

    /// The auxiliary vector, to rewrite in place for the program.
    pub fn auxv(&self) -> &'static mut [usize] {
        // SAFETY: the kernel's vector on the initial stack, which nothing
        // else of the launcher refers to.
        unsafe { core::slice::from_raw_parts_mut(self.auxv, self.auxv_len) }
    }
}

/// Reads the launcher's own program headers, which the kernel mapped with
/// its first segment and pointed to in AT_PHDR: the bundle segment's file
/// range, the address and size of the PT_LOAD that maps its start (the
/// kernel's copy), and where the loaded segments are (the kernel's copy
/// among them, so that it goes with the launcher's other pages).
///
/// # Safety
/// `phdr` and `phnum` must come from the auxiliary vector.
unsafe fn own_headers(phdr: usize, phnum: usize) -> OwnHeaders {
    const PT_LOAD: u32 = 1;
    let mut segment = None;
    let mut own = [OwnSegment::default(); MAX_OWN_SEGMENTS];
    // (file offset, file size, address) of each PT_LOAD.
    let mut ranges = [(0u64, 0u64, 0u64); MAX_OWN_SEGMENTS];
    let mut loads = 0;
    if phdr == 0 {
        return OwnHeaders {
            bundle_segment: segment,
            kernel_copy: None,
            own,
        };
    }
    for i in 0..phnum {
        // SAFETY: the kernel maps all `phnum` headers at `phdr`; fields are
        // read unaligned-safe at their ELF64 offsets.
        let (kind, offset, vaddr, filesz, memsz) = unsafe {
            let header = (phdr + i * PHDR_SIZE) as *const u8;
            (
                header.cast::<u32>().read_unaligned(),
                header.add(8).cast::<u64>().read_unaligned(),
                header.add(16).cast::<u64>().read_unaligned(),
                header.add(32).cast::<u64>().read_unaligned(),
                header.add(40).cast::<u64>().read_unaligned(),
            )
        };
        if kind == SEGMENT_TYPE && segment.is_none() {
            segment = Some((offset, filesz));
        } else if kind == PT_LOAD
            && let (Some(slot), Some(range)) = (own.get_mut(loads), ranges.get_mut(loads))
        {
            let page = crate::sys::PAGE as u64;
            *slot = OwnSegment {
                start: (vaddr & !(page - 1)) as usize,
                end: ((vaddr + memsz).div_ceil(page) * page) as usize,
            };
            *range = (offset, filesz, vaddr);
            loads += 1;
        }
    }
    let kernel_copy = segment.and_then(|(offset, size)| {
        ranges
            .iter()
            .find(|&&(o, f, _)| o == offset && f != 0 && f <= size)
            .map(|&(_, f, vaddr)| (vaddr as usize, f as usize))
    });
    OwnHeaders {
        bundle_segment: segment,
        kernel_copy,
        own,
    }
}

/// What the launcher's own program headers say (see [`Process`]).
struct OwnHeaders {
    bundle_segment: Option<(u64, u64)>,
    kernel_copy: Option<(usize, usize)>,
    own: [OwnSegment; MAX_OWN_SEGMENTS],
}
