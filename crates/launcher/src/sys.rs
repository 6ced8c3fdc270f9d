//! Every contact with the kernel. Each wrapper's type says what can come back.
//!
//! rustix covers most calls. A few live here as raw syscalls: rustix keeps
//! `execveat`, `exit_group`, `clone`, `exit` and `rt_sigaction` in its
//! unstable runtime module, has no `futex` wait on a plain word and no
//! `personality`, its `sched_getcpu` may look for the vDSO through
//! /proc/self/auxv (a file read at every start), and the final jump is not
//! a call at all.

use core::ffi::CStr;
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use rustix::fs::{self, MemfdFlags, Mode, OFlags, SealFlags};
use rustix::io::{self, Errno};
use rustix::mm::{self, MapFlags, MprotectFlags, ProtFlags};

/// The page size every mapping works in.
pub const PAGE: usize = 4096;

/// Opens `/proc/self/exe`: the file the kernel executed, even if it was
/// renamed or replaced since (the link is to the file, not to a name).
pub fn open_self_exe() -> Result<OwnedFd, Errno> {
    fs::open(
        c"/proc/self/exe",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Opens a file read-only, close-on-exec (the interpreter).
pub fn open_read(path: &CStr) -> Result<OwnedFd, Errno> {
    fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
}

/// What the file start checks of a file or directory: who owns it, its
/// mode bits and type, and its size.
pub struct Owned {
    pub uid: u32,
    pub mode: u32,
    pub size: u64,
    /// The inode and its change time (seconds, nanoseconds), which every
    /// write or change of mode moves: a version of the file's contents.
    pub version: [u64; 3],
    /// The device the inode is on.
    pub device: u64,
}

fn owned(stat: &fs::Stat) -> Owned {
    Owned {
        uid: stat.st_uid,
        mode: stat.st_mode,
        size: stat.st_size as u64,
        version: [stat.st_ino, stat.st_ctime as u64, stat.st_ctime_nsec],
        device: stat.st_dev,
    }
}

/// fstat(2), reduced to [`Owned`].
pub fn owner_of(fd: BorrowedFd<'_>) -> Result<Owned, Errno> {
    Ok(owned(&fs::fstat(fd)?))
}

/// fstatat(2) of `name` in `dir`, not through a symbolic link.
pub fn owner_of_name(dir: BorrowedFd<'_>, name: &CStr) -> Result<Owned, Errno> {
    Ok(owned(&fs::statat(
        dir,
        name,
        fs::AtFlags::SYMLINK_NOFOLLOW,
    )?))
}

/// Creates the empty file `name` in `dir`, readable by its owner, if it
/// is missing.
pub fn create_mark(dir: BorrowedFd<'_>, name: &CStr) -> Result<(), Errno> {
    fs::openat(
        dir,
        name,
        OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::RUSR,
    )
    .map(drop)
}

/// The effective user ID.
pub fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Creates the directory `name` in `dir` (or `path` itself, for `None`)
/// for its owner alone; one that exists is left as it is (its owner and
/// mode are checked where it is used).
pub fn make_private_dir(dir: Option<BorrowedFd<'_>>, name: &CStr) -> Result<(), Errno> {
    match fs::mkdirat(dir.unwrap_or(fs::CWD), name, Mode::RWXU) {
        Ok(()) | Err(Errno::EXIST) => Ok(()),
        Err(err) => Err(err),
    }
}

/// Opens the directory `name` in `dir` (or the path `name`, for `None`),
/// not through a symbolic link at its end.
pub fn open_dir(dir: Option<BorrowedFd<'_>>, name: &CStr) -> Result<OwnedFd, Errno> {
    fs::openat(
        dir.unwrap_or(fs::CWD),
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Opens `name` in `dir` read-only, not through a symbolic link.
pub fn open_in(dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
    fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// A new file in `dir` without a name (O_TMPFILE), readable and
/// executable by its owner alone: until it is linked, nothing else can
/// open it, and a start killed while writing it leaves nothing.
pub fn create_unnamed(dir: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    fs::openat(
        dir,
        c".",
        OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
        Mode::RUSR | Mode::XUSR,
    )
}

/// Gives the unnamed file `fd` the name `name` in `dir`, through its
/// /proc/self/fd link (linkat's AT_EMPTY_PATH needs a privilege); refused
/// if the name exists.
pub fn link_unnamed(fd: BorrowedFd<'_>, dir: BorrowedFd<'_>, name: &CStr) -> Result<(), Errno> {
    let mut path = *b"/proc/self/fd/\0\0\0\0\0\0\0\0\0\0\0";
    let mut n = fd.as_raw_fd() as u32;
    let mut digits = [0u8; 10];
    let mut len = 0;
    loop {
        if let Some(d) = digits.get_mut(len) {
            *d = b'0' + (n % 10) as u8;
        }
        len += 1;
        n /= 10;
        if n == 0 || len == digits.len() {
            break;
        }
    }
    for (slot, digit) in path.iter_mut().skip(14).zip(digits.iter().take(len).rev()) {
        *slot = *digit;
    }
    let path = CStr::from_bytes_until_nul(&path).map_err(|_| Errno::INVAL)?;
    fs::linkat(fs::CWD, path, dir, name, fs::AtFlags::SYMLINK_FOLLOW)
}

/// Removes the file `name` from `dir`.
pub fn unlink_in(dir: BorrowedFd<'_>, name: &CStr) -> Result<(), Errno> {
    fs::unlinkat(dir, name, fs::AtFlags::empty())
}

/// Reads up to `buf.len()` bytes at `offset`; returns how many.
pub fn pread(fd: BorrowedFd<'_>, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
    loop {
        match io::pread(fd, &mut *buf, offset) {
            Err(Errno::INTR) => {}
            other => return other,
        }
    }
}

/// A mapping of ours that is unmapped when dropped, so that nothing of the
/// launcher's memory is left when it jumps into the program.
pub struct Mapping {
    base: *mut u8,
    len: usize,
}

impl Mapping {
    /// The first byte.
    pub fn base(&self) -> *mut u8 {
        self.base
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The bytes, readable.
    pub fn bytes(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: a live mapping of `len` readable bytes, ours alone.
        unsafe { core::slice::from_raw_parts(self.base, self.len) }
    }

    /// The bytes, writable (only for mappings made writable).
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        if self.len == 0 {
            return &mut [];
        }
        // SAFETY: as `bytes`; the caller made the mapping writable.
        unsafe { core::slice::from_raw_parts_mut(self.base, self.len) }
    }

    /// Takes charge of `len` bytes already mapped at `at`.
    ///
    /// # Safety
    /// The range must be a mapping of this process that nothing else owns.
    pub unsafe fn adopt(at: usize, len: usize) -> Self {
        Self {
            base: at as *mut u8,
            len,
        }
    }

    /// Keeps the pages mapped for good (the program's own segments).
    pub fn keep(self) {
        core::mem::forget(self);
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if self.len != 0 {
            // SAFETY: our own mapping, no longer referenced.
            let _ = unsafe { mm::munmap(self.base.cast(), self.len) };
        }
    }
}

/// Maps `len` bytes of the file from `offset` read-only; the slice starts at
/// `offset` (which need not be page-aligned). The caller checked that the
/// file holds them, so touching the mapping cannot raise SIGBUS (unless the
/// file shrinks under it; the kernel refuses writes to a running executable).
///
/// Shared, so that it always shows the file: the kernel writes a uprobe's
/// breakpoint (`perf probe`, bpftrace) into every private mapping of the
/// probed file it could execute, readable ones included, and a checksum read
/// there would call an intact bundle damaged.
pub fn map_file(fd: BorrowedFd<'_>, offset: u64, len: usize) -> Result<(Mapping, usize), Errno> {
    let page_offset = offset & !(PAGE as u64 - 1);
    let skip = (offset - page_offset) as usize;
    let total = len.checked_add(skip).ok_or(Errno::NOMEM)?;
    // SAFETY: a fresh read-only mapping aliases nothing of ours.
    let base = unsafe {
        mm::mmap(
            core::ptr::null_mut(),
            total,
            ProtFlags::READ,
            MapFlags::SHARED,
            fd,
            page_offset,
        )?
    };
    Ok((
        Mapping {
            base: base.cast(),
            len: total,
        },
        skip,
    ))
}

fn prot_flags(prot: u32) -> ProtFlags {
    let mut flags = ProtFlags::empty();
    if prot & 1 != 0 {
        flags |= ProtFlags::READ;
    }
    if prot & 2 != 0 {
        flags |= ProtFlags::WRITE;
    }
    if prot & 4 != 0 {
        flags |= ProtFlags::EXEC;
    }
    flags
}

/// Reserves `len` bytes of address space, inaccessible: at exactly `at`
/// (refused where anything is mapped already), or where the kernel likes
/// when `at` is `None`. Kernels before 4.17 take MAP_FIXED_NOREPLACE as a
/// hint, so the address is checked as well.
pub fn reserve(at: Option<usize>, len: usize) -> Result<Mapping, Errno> {
    let flags = MapFlags::PRIVATE | MapFlags::NORESERVE;
    let (hint, flags) = match at {
        Some(at) => (
            at as *mut core::ffi::c_void,
            flags | MapFlags::FIXED_NOREPLACE,
        ),
        None => (core::ptr::null_mut(), flags),
    };
    // SAFETY: NOREPLACE (or no address) cannot clobber an existing mapping.
    let base = unsafe { mm::mmap_anonymous(hint, len, ProtFlags::empty(), flags)? };
    let mapping = Mapping {
        base: base.cast(),
        len,
    };
    if at.is_some_and(|at| at != base as usize) {
        return Err(Errno::EXIST);
    }
    Ok(mapping)
}

/// Maps `len` bytes of the file at `offset` over our own reservation at
/// `at`, private, with `prot` (PROT_* bits).
///
/// # Safety
/// `at..at + len` must be address space this process reserved for it.
pub unsafe fn map_file_at(
    at: usize,
    len: usize,
    prot: u32,
    fd: BorrowedFd<'_>,
    offset: u64,
) -> Result<(), Errno> {
    // SAFETY: the caller owns the range; MAP_FIXED replaces its reservation.
    unsafe {
        mm::mmap(
            at as *mut _,
            len,
            prot_flags(prot),
            MapFlags::PRIVATE | MapFlags::FIXED,
            fd,
            offset,
        )?
    };
    Ok(())
}

/// Changes the protections of our own pages.
///
/// # Safety
/// `at..at + len` must be pages this process mapped for the program.
pub unsafe fn protect(at: usize, len: usize, prot: u32) -> Result<(), Errno> {
    let mut flags = MprotectFlags::empty();
    if prot & 1 != 0 {
        flags |= MprotectFlags::READ;
    }
    if prot & 2 != 0 {
        flags |= MprotectFlags::WRITE;
    }
    if prot & 4 != 0 {
        flags |= MprotectFlags::EXEC;
    }
    // SAFETY: the caller owns the pages.
    unsafe { mm::mprotect(at as *mut _, len, flags) }
}

/// Gives back address space of ours.
///
/// # Safety
/// Nothing may use `at..at + len` afterwards.
pub unsafe fn unmap(at: usize, len: usize) {
    if len != 0 {
        // SAFETY: the caller owns the range.
        let _ = unsafe { mm::munmap(at as *mut _, len) };
    }
}

/// Asks for transparent huge pages in our anonymous memory at
/// `at..at + len`: decoding a variant into place then takes a few page
/// faults instead of one per 4 KiB (kernels with THP set to "madvise", the
/// common default, give them only when asked; elsewhere the advice fails
/// harmlessly).
#[cfg(feature = "decoder")]
pub fn advise_huge(at: usize, len: usize) {
    // SAFETY: advice only, on the caller's own anonymous memory.
    let _ = unsafe { mm::madvise(at as *mut _, len, mm::Advice::LinuxHugepage) };
}

/// Fresh zeroed private memory, readable and writable, unmapped when
/// dropped. `huge` asks for transparent huge pages (kernels with THP set to
/// "madvise", the common default, give them only when asked): a few faults
/// instead of one per 4 KiB.
pub fn map_anonymous(len: usize, huge: bool) -> Result<Mapping, Errno> {
    if len == 0 {
        return Ok(Mapping {
            base: core::ptr::null_mut(),
            len: 0,
        });
    }
    // SAFETY: a fresh anonymous mapping aliases nothing.
    let base = unsafe {
        mm::mmap_anonymous(
            core::ptr::null_mut(),
            len,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::PRIVATE,
        )?
    };
    if huge {
        // SAFETY: advice on our own fresh mapping. Without THP the advice
        // fails harmlessly and the memory is simply made of small pages.
        let _ = unsafe { mm::madvise(base, len, mm::Advice::LinuxHugepage) };
    }
    Ok(Mapping {
        base: base.cast(),
        len,
    })
}

/// Replaces our reservation at `at..at + len` with zeroed anonymous pages
/// of protection `prot`.
///
/// # Safety
/// `at..at + len` must be address space this process reserved for it.
pub unsafe fn map_zero_at(at: usize, len: usize, prot: u32) -> Result<(), Errno> {
    // SAFETY: the caller owns the range.
    unsafe {
        mm::mmap_anonymous(
            at as *mut _,
            len,
            prot_flags(prot),
            MapFlags::PRIVATE | MapFlags::FIXED,
        )?
    };
    Ok(())
}

/// Leaves one inaccessible page for the program's whole life that says
/// which variant runs, to anyone who may read /proc/PID/maps: it lies at
/// `at` when that address is free, and is named `name` (`[anon:NAME]`,
/// Linux 5.17 with CONFIG_ANON_VMA_NAME) where names are supported. With
/// neither, nothing is left. It costs no memory: it is never touched.
pub fn leave_marker(at: usize, name: &CStr) {
    let flags = MapFlags::PRIVATE | MapFlags::NORESERVE;
    // SAFETY: NOREPLACE cannot clobber an existing mapping.
    let placed = unsafe {
        mm::mmap_anonymous(
            at as *mut _,
            PAGE,
            ProtFlags::empty(),
            flags | MapFlags::FIXED_NOREPLACE,
        )
    };
    let (base, fixed) = match placed {
        Ok(base) if base as usize == at => (base, true),
        other => {
            if let Ok(base) = other {
                // An old kernel took the address as a hint.
                // SAFETY: our own fresh page.
                let _ = unsafe { mm::munmap(base, PAGE) };
            }
            // SAFETY: a fresh anonymous mapping aliases nothing.
            match unsafe {
                mm::mmap_anonymous(core::ptr::null_mut(), PAGE, ProtFlags::empty(), flags)
            } {
                Ok(base) => (base, false),
                Err(_) => return,
            }
        }
    };
    // SAFETY: only the address range is used, never the bytes.
    let region = unsafe { core::slice::from_raw_parts(base.cast::<u8>(), PAGE) };
    let named = rustix::process::set_virtual_memory_region_name(region, Some(name)).is_ok();
    if !named && !fixed {
        // SAFETY: our own page, unused: anonymous and unnamed, it says nothing.
        let _ = unsafe { mm::munmap(base, PAGE) };
    }
}

/// The process's personality flags (personality(2) with 0xffffffff asks
/// without changing them). rustix has no wrapper for it.
pub fn personality() -> Option<u32> {
    const SYS_PERSONALITY: usize = 135;
    let ret: isize;
    // SAFETY: a query; it changes nothing.
    unsafe {
        core::arch::asm!("syscall", inlateout("rax") SYS_PERSONALITY as isize => ret,
            in("rdi") 0xffff_ffffusize, lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    u32::try_from(ret).ok()
}

/// Random bits from the kernel (getrandom, non-blocking), or `None`.
pub fn random() -> Option<u64> {
    let mut bytes = [0u8; 8];
    match rustix::rand::getrandom(&mut bytes, rustix::rand::GetRandomFlags::NONBLOCK) {
        Ok(8) => Some(u64::from_le_bytes(bytes)),
        _ => None,
    }
}

/// Creates the memfd the variant is copied into. MFD_EXEC keeps it executable
/// under `vm.memfd_noexec=1`; kernels before 6.3 reject that flag with EINVAL,
/// and on those every memfd is executable, so the retry drops it.
pub fn create_memfd(name: &CStr) -> Result<OwnedFd, Errno> {
    let flags = MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING;
    match fs::memfd_create(name, flags | MemfdFlags::EXEC) {
        Err(Errno::INVAL) => fs::memfd_create(name, flags),
        other => other,
    }
}

/// Writes all of `bytes`, resuming after partial writes and signals.
pub fn write_all(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> Result<(), Errno> {
    while !bytes.is_empty() {
        // `MGODEBUG=extract > FILE` writes an executable too.
        let chunk = bytes.get(..WRITE_CHUNK).unwrap_or(bytes);
        match io::write(fd, chunk) {
            Ok(0) => return Err(Errno::IO),
            Ok(n) => bytes = bytes.get(n..).unwrap_or(&[]),
            Err(Errno::INTR) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// The most one write hands the kernel. A file system with large folios
/// (ext4, XFS) sizes a written file's page-cache folios after the writes,
/// up to 2 MiB, and a fault maps its whole folio: caddy started from a
/// cache file written in megabyte writes held 12 MiB more resident memory
/// than its plain build. 64 KiB is what a fault maps around itself anyway
/// (the kernel's default fault-around); the gap closed (47.0 MiB against
/// 46.9). On a memfd or a pipe it only costs a syscall per chunk.
const WRITE_CHUNK: usize = 64 * 1024;

/// Writes all of `bytes` at `offset`, resuming after partial writes and
/// signals. Several threads may write disjoint ranges of one file at once.
pub fn pwrite_all(fd: BorrowedFd<'_>, mut bytes: &[u8], mut offset: u64) -> Result<(), Errno> {
    while !bytes.is_empty() {
        let chunk = bytes.get(..WRITE_CHUNK).unwrap_or(bytes);
        match io::pwrite(fd, chunk, offset) {
            Ok(0) => return Err(Errno::IO),
            Ok(n) => {
                bytes = bytes.get(n..).unwrap_or(&[]);
                offset += n as u64;
            }
            Err(Errno::INTR) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Forbids any further change to the memfd's bytes or size, so what was
/// verified is what runs.
pub fn seal(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    let seals = SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK | SealFlags::SEAL;
    // F_SEAL_WRITE waits for pages still referenced elsewhere (the kernel's
    // memfd_wait_for_pins) and gives up with EBUSY when a signal cuts the
    // wait short, as SIGSTOP and SIGCONT did in 2 of 4,900 starts. The
    // pages are ours alone: a retry succeeds.
    let mut tries = 0;
    loop {
        match fs::fcntl_add_seals(fd, seals) {
            Err(Errno::BUSY) if tries < 8 => tries += 1,
            other => return other,
        }
    }
}

/// Makes a write to a closed pipe fail with EPIPE instead of killing the
/// process by SIGPIPE. Only for `MGODEBUG=extract`, which exits instead of
/// starting the program: the program must inherit the caller's dispositions.
pub fn ignore_sigpipe() {
    const SYS_RT_SIGACTION: usize = 13;
    const SIGPIPE: usize = 13;
    const SIG_IGN: usize = 1;
    // struct kernel_sigaction: handler, flags, restorer, mask.
    let action: [usize; 4] = [SIG_IGN, 0, 0, 0];
    // SAFETY: a valid sigaction for the kernel's layout; no old action is
    // asked for. On failure SIGPIPE keeps its default, as before.
    unsafe {
        core::arch::asm!("syscall", inlateout("rax") SYS_RT_SIGACTION => _,
            in("rdi") SIGPIPE, in("rsi") action.as_ptr(), in("rdx") 0usize, in("r10") 8usize,
            lateout("rcx") _, lateout("r11") _, options(nostack));
    }
}

/// Whether `fd` is a terminal.
pub fn is_terminal(fd: BorrowedFd<'_>) -> bool {
    rustix::termios::isatty(fd)
}

/// Clears close-on-exec so that the kernel can reopen the file by its
/// `/dev/fd/N` path during exec (see [`exec_fd`]).
pub fn keep_open_across_exec(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    io::fcntl_setfd(fd, io::FdFlags::empty())
}

/// `execveat(fd, "", argv, envp, AT_EMPTY_PATH)`: runs the file behind `fd`
/// in this process. Returns only on failure.
///
/// # Safety
/// `argv` and `envp` must be NULL-terminated arrays of C strings.
pub unsafe fn exec_fd(fd: BorrowedFd<'_>, argv: *const *const u8, envp: *const *const u8) -> Errno {
    const SYS_EXECVEAT: usize = 322;
    const AT_EMPTY_PATH: usize = 0x1000;
    let ret: isize;
    // SAFETY: the caller guarantees the arrays; the path is a static "".
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") SYS_EXECVEAT as isize => ret,
            in("rdi") fd.as_raw_fd() as isize,
            in("rsi") c"".as_ptr(),
            in("rdx") argv,
            in("r10") envp,
            in("r8") AT_EMPTY_PATH,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    Errno::from_raw_os_error(-(ret as i32))
}

/// Ends the process with `status`.
pub fn exit(status: i32) -> ! {
    const SYS_EXIT_GROUP: usize = 231;
    // SAFETY: exit_group does not return and touches no memory of ours.
    unsafe {
        core::arch::asm!("syscall", in("rax") SYS_EXIT_GROUP, in("rdi") status as isize,
            options(noreturn, nostack));
    }
}

/// Standard output. If the parent closed it, writes fail with EBADF, which
/// the callers report; nothing else can go wrong with a borrowed number.
pub fn stdout() -> BorrowedFd<'static> {
    // SAFETY: the launcher never closes or reuses descriptor 1.
    unsafe { BorrowedFd::borrow_raw(1) }
}

/// Standard error; see [`stdout`].
pub fn stderr() -> BorrowedFd<'static> {
    // SAFETY: the launcher never closes or reuses descriptor 2.
    unsafe { BorrowedFd::borrow_raw(2) }
}

/// Borrows an owned descriptor.
pub fn borrow(fd: &OwnedFd) -> BorrowedFd<'_> {
    fd.as_fd()
}

/// The CPUs this process may run on now, as a set (at most [`MAX_CPUS`]),
/// or `None` if the kernel will not say.
pub fn usable_cpus() -> Option<rustix::thread::CpuSet> {
    rustix::thread::sched_getaffinity(None).ok()
}

/// The highest CPU number [`usable_cpus`] looks at.
pub const MAX_CPUS: usize = rustix::thread::CpuSet::MAX_CPU;

/// The CPU this thread runs on now (getcpu), if the kernel says.
pub fn current_cpu() -> Option<usize> {
    const SYS_GETCPU: usize = 309;
    let mut cpu = 0u32;
    let ret: isize;
    // SAFETY: getcpu writes one u32 into `cpu`; the other pointers are null.
    unsafe {
        core::arch::asm!("syscall", inlateout("rax") SYS_GETCPU as isize => ret,
            in("rdi") &raw mut cpu, in("rsi") 0usize, in("rdx") 0usize,
            lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    (ret == 0).then_some(cpu as usize)
}

/// The kernel's record of a process's memory layout that `/proc/PID/stat`,
/// `/proc/PID/cmdline`, `/proc/PID/environ`, `/proc/PID/auxv` and core
/// files show: `struct prctl_mm_map` of linux/prctl.h.
#[repr(C)]
pub struct MmMap {
    pub start_code: u64,
    pub end_code: u64,
    pub start_data: u64,
    pub end_data: u64,
    pub start_brk: u64,
    pub brk: u64,
    pub start_stack: u64,
    pub arg_start: u64,
    pub arg_end: u64,
    pub env_start: u64,
    pub env_end: u64,
    pub auxv: *const usize,
    pub auxv_size: u32,
    /// -1: the executable file stays (changing it needs privileges).
    pub exe_fd: u32,
}

/// `prctl(PR_SET_MM, PR_SET_MM_MAP)`: replaces the kernel's record with
/// `map` in one call, which needs no privilege when the executable file
/// stays; kernels without CONFIG_CHECKPOINT_RESTORE refuse it. A raw
/// syscall: rustix does not wrap it.
pub fn set_mm_map(map: &MmMap) -> Result<(), Errno> {
    const SYS_PRCTL: usize = 157;
    const PR_SET_MM: usize = 35;
    const PR_SET_MM_MAP: usize = 14;
    let ret: isize;
    // SAFETY: the kernel reads `size_of::<MmMap>()` bytes at `map` and
    // `auxv_size` bytes at `map.auxv`, both live for the call.
    unsafe {
        core::arch::asm!("syscall", inlateout("rax") SYS_PRCTL as isize => ret,
            in("rdi") PR_SET_MM, in("rsi") PR_SET_MM_MAP, in("rdx") map as *const MmMap,
            in("r10") size_of::<MmMap>(), in("r8") 0usize,
            lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    if ret < 0 {
        Err(Errno::from_raw_os_error(-ret as i32))
    } else {
        Ok(())
    }
}

/// The program break as the kernel keeps it (brk(0)), which nothing of the
/// launcher moves. A raw syscall: rustix offers brk only to runtimes.
pub fn current_break() -> u64 {
    const SYS_BRK: usize = 12;
    let ret: usize;
    // SAFETY: brk(0) changes nothing and returns the current break.
    unsafe {
        core::arch::asm!("syscall", inlateout("rax") SYS_BRK => ret, in("rdi") 0usize,
            lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret as u64
}

/// Restricts thread `tid` (of this process) to `cpu`.
pub fn pin(tid: i32, cpu: usize) -> Result<(), Errno> {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    rustix::thread::sched_setaffinity(rustix::process::Pid::from_raw(tid), &set)
}

/// Starts a thread of this process on `stack` that calls `entry(arg)`; the
/// kernel clears `alive` and wakes its futex when the thread exits
/// (CLONE_CHILD_CLEARTID). Returns the thread's ID. A raw clone(2): there
/// is no libc, and the thread needs no thread-local storage.
///
/// # Safety
/// `stack`, `alive` and what `arg` refers to must stay valid until the
/// thread has exited; `entry` must end the thread with [`exit_thread`].
pub unsafe fn spawn_thread(
    stack: &mut [u8],
    alive: &core::sync::atomic::AtomicU32,
    entry: extern "C" fn(usize) -> !,
    arg: usize,
) -> Result<i32, Errno> {
    const SYS_CLONE: usize = 56;
    const FLAGS: usize = 0x100 // CLONE_VM
        | 0x200 // CLONE_FS
        | 0x400 // CLONE_FILES
        | 0x800 // CLONE_SIGHAND
        | 0x1_0000 // CLONE_THREAD
        | 0x4_0000 // CLONE_SYSVSEM
        | 0x20_0000; // CLONE_CHILD_CLEARTID
    // The new thread starts with its stack pointer at `top`, where the entry
    // point and its argument wait for it; 16-byte aligned for the call.
    let top = (stack.as_mut_ptr() as usize + stack.len()) & !15;
    let slots = (top - 16) as *mut usize;
    // SAFETY: both slots are inside the caller's stack mapping.
    unsafe {
        slots.write(entry as usize);
        slots.add(1).write(arg);
    }
    let ret: isize;
    // SAFETY: clone(2) with a fresh stack. In the new thread (rax == 0) the
    // code below never returns into Rust code of this frame: it calls
    // `entry`, which ends the thread.
    unsafe {
        core::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "mov rdi, [rsp + 8]",
            "call qword ptr [rsp]",
            "ud2",
            "2:",
            inlateout("rax") SYS_CLONE as isize => ret,
            in("rdi") FLAGS,
            in("rsi") slots,
            in("rdx") 0usize,
            in("r10") alive.as_ptr(),
            in("r8") 0usize,
            lateout("rcx") _,
            lateout("r11") _,
        );
    }
    if ret < 0 {
        return Err(Errno::from_raw_os_error(-(ret as i32)));
    }
    Ok(ret as i32)
}

/// Sleeps while `*word == value` (or until a spurious wake-up).
pub fn futex_wait(word: &core::sync::atomic::AtomicU32, value: u32) {
    const SYS_FUTEX: usize = 202;
    const FUTEX_WAIT: usize = 0;
    // SAFETY: FUTEX_WAIT only reads the word; a null timeout waits forever.
    unsafe {
        core::arch::asm!("syscall",
            inlateout("rax") SYS_FUTEX => _,
            in("rdi") word.as_ptr(), in("rsi") FUTEX_WAIT, in("rdx") value as usize,
            in("r10") 0usize,
            lateout("rcx") _, lateout("r11") _, options(nostack));
    }
}

/// Ends the calling thread only (exit, not exit_group).
pub fn exit_thread() -> ! {
    const SYS_EXIT: usize = 60;
    // SAFETY: ends this thread; its stack is never used again.
    unsafe {
        core::arch::asm!("syscall", in("rax") SYS_EXIT, in("rdi") 0usize,
            options(noreturn, nostack));
    }
}

/// The bytes the final jump runs: they must stay mapped while it unmaps the
/// rest of the launcher.
pub fn jump_code() -> (usize, usize) {
    let start = jump_to_program as *const () as usize;
    let end = (&raw const mgo_jump_end) as usize;
    (start, end.saturating_sub(start))
}

unsafe extern "C" {
    /// The label right after [`jump_to_program`]'s last instruction.
    static mgo_jump_end: u8;
}

/// Hands the process to the program: unmaps each `(address, length)` of
/// `unmap` (a list ended by a zero length, which may name the launcher's
/// own pages but not the pages of this code nor the list itself), sets the
/// stack pointer the kernel started the process with, clears every general
/// register and every vector register, as the kernel's exec does, and
/// jumps to `entry`. The entry address is passed through the word just
/// below the initial stack pointer, the one place it can be taken from with
/// every register clear (a `ret`).
///
/// # Safety
/// `entry` must be the program's (or its interpreter's) entry point, mapped
/// and executable; `sp` the initial stack pointer, with the argument,
/// environment and auxiliary vectors describing that program; `unmap`
/// valid until the end and on the stack.
#[unsafe(naked)]
pub unsafe extern "C" fn jump_to_program(
    entry: usize,
    sp: *const usize,
    unmap: *const [usize; 2],
) -> ! {
    core::arch::naked_asm!(
        "mov r12, rdi",
        "mov r13, rsi",
        "mov r14, rdx",
        "2:",
        "mov rdi, [r14]",
        "mov rsi, [r14 + 8]",
        "test rsi, rsi",
        "jz 3f",
        "mov eax, 11", // munmap
        "syscall",
        "add r14, 16",
        "jmp 2b",
        "3:",
        "mov [r13 - 8], r12",
        "lea rsp, [r13 - 8]",
        "xor eax, eax",
        "xor ebx, ebx",
        "xor ecx, ecx",
        "xor edx, edx",
        "xor esi, esi",
        "xor edi, edi",
        "xor ebp, ebp",
        "xor r8d, r8d",
        "xor r9d, r9d",
        "xor r10d, r10d",
        "xor r11d, r11d",
        "xor r12d, r12d",
        "xor r13d, r13d",
        "xor r14d, r14d",
        "xor r15d, r15d",
        "pxor xmm0, xmm0",
        "pxor xmm1, xmm1",
        "pxor xmm2, xmm2",
        "pxor xmm3, xmm3",
        "pxor xmm4, xmm4",
        "pxor xmm5, xmm5",
        "pxor xmm6, xmm6",
        "pxor xmm7, xmm7",
        "pxor xmm8, xmm8",
        "pxor xmm9, xmm9",
        "pxor xmm10, xmm10",
        "pxor xmm11, xmm11",
        "pxor xmm12, xmm12",
        "pxor xmm13, xmm13",
        "pxor xmm14, xmm14",
        "pxor xmm15, xmm15",
        "cld",
        "ret",
        // gdb's JIT breakpoint (jit.rs): here, so that it stays mapped for
        // the program's life at no cost, and apart from the jump's own `ret`.
        ".globl __jit_debug_register_code",
        "__jit_debug_register_code:",
        "ret",
        ".globl mgo_jump_end",
        "mgo_jump_end:",
    )
}
