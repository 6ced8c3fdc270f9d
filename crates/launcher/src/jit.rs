//! gdb's JIT interface ("JIT Compilation Interface" in gdb's manual), which
//! tells a debugger about code it cannot find through the executable file:
//! gdb looks up `__jit_debug_descriptor` and `__jit_debug_register_code` in
//! the program's symbol table (mgo writes both into the bundle's,
//! docs/FORMAT.md, "Symbols"), reads the list of in-memory ELF images the
//! descriptor holds when it attaches or reads a core, and stops at the
//! function to read an image registered while it runs the program.
//!
//! A level stored as it is has its whole file in the bundle, so the image
//! is a read-only mapping of those bytes: no page is read unless a debugger
//! reads it. The descriptor stays for the program's life in the launcher's
//! one writable page, which is all this costs a process.

use crate::sys;
use core::ptr;

/// `struct jit_code_entry`.
#[repr(C)]
struct CodeEntry {
    next: *const CodeEntry,
    prev: *const CodeEntry,
    symfile_addr: *const u8,
    symfile_size: u64,
}

/// `struct jit_descriptor`.
#[repr(C)]
struct Descriptor {
    version: u32,
    action_flag: u32,
    relevant_entry: *const CodeEntry,
    first_entry: *const CodeEntry,
}

/// The descriptor and its one entry, together: the launcher keeps the page
/// they lie in when it unmaps itself.
#[repr(C, align(64))]
struct Registry {
    descriptor: Descriptor,
    entry: CodeEntry,
}

/// `JIT_REGISTER_FN`.
const REGISTER: u32 = 1;

/// The descriptor, valid (version 1, no entry) from exec on: gdb refuses a
/// program whose descriptor says another version. Its address is the
/// section's, which mgo reads to name it in the bundle's symbol table.
#[used]
#[unsafe(link_section = ".mgo.jit")]
static mut REGISTRY: Registry = Registry {
    descriptor: Descriptor {
        version: 1,
        action_flag: 0,
        relevant_entry: ptr::null(),
        first_entry: ptr::null(),
    },
    entry: CodeEntry {
        next: ptr::null(),
        prev: ptr::null(),
        symfile_addr: ptr::null(),
        symfile_size: 0,
    },
};

unsafe extern "C" {
    /// A `ret` among the jump code's kept instructions (sys.rs), where gdb
    /// puts its breakpoint.
    fn __jit_debug_register_code();
}

/// The register function's address, for mgo to read from this section:
/// the launcher's symbol table is not kept.
#[used]
#[unsafe(link_section = ".mgo.jit.register")]
static REGISTER_CODE: unsafe extern "C" fn() = __jit_debug_register_code;

/// Registers `image`, a whole ELF file that stays mapped for the program's
/// life, as gdb's protocol asks: entry, then descriptor, then the call.
pub fn register(image: &sys::Mapping) {
    let registry = &raw mut REGISTRY;
    // SAFETY: one thread; the launcher writes REGISTRY only here, and the
    // debugger reads it only while the process is stopped.
    unsafe {
        (*registry).entry.symfile_addr = image.base();
        (*registry).entry.symfile_size = image.len() as u64;
        let entry = &raw const (*registry).entry;
        (*registry).descriptor.relevant_entry = entry;
        (*registry).descriptor.first_entry = entry;
        (*registry).descriptor.action_flag = REGISTER;
        __jit_debug_register_code();
    }
}

/// The page that holds the descriptor, which must outlive the launcher.
pub fn page() -> usize {
    (&raw const REGISTRY) as usize & !(sys::PAGE - 1)
}
