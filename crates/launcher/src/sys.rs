//! Every contact with the kernel. Each wrapper's type says what can come back.
//!
//! rustix covers everything but `execveat` and `exit_group`: it keeps those
//! in its unstable, hash-named runtime module, so two raw syscalls live here.

use core::ffi::CStr;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{self, MemfdFlags, Mode, OFlags, SealFlags};
use rustix::io::{self, Errno};
use rustix::mm::{self, MapFlags, ProtFlags};

/// Opens the running bundle. `/proc/self/exe` names the file that was really
/// executed, even if it was renamed since; without /proc (a bare chroot or
/// container), the path the kernel reports in the auxiliary vector does.
pub fn open_bundle(exec_path: Option<&CStr>) -> Result<OwnedFd, Errno> {
    let flags = OFlags::RDONLY | OFlags::CLOEXEC;
    match fs::open(c"/proc/self/exe", flags, Mode::empty()) {
        Ok(fd) => Ok(fd),
        Err(err) => match exec_path {
            Some(path) => fs::open(path, flags, Mode::empty()),
            None => Err(err),
        },
    }
}

/// The file's size in bytes.
pub fn file_size(fd: BorrowedFd<'_>) -> Result<u64, Errno> {
    Ok(fs::fstat(fd)?.st_size as u64)
}

/// Maps `len` bytes of the file from `offset` read-only. The caller checked
/// that the file holds them, so touching the mapping cannot raise SIGBUS
/// (unless the file shrinks under it, which the checksum of the copy catches
/// only if the kernel hands back zeros; a truncating writer is not defended
/// against).
pub fn map_file(fd: BorrowedFd<'_>, offset: u64, len: usize) -> Result<&'static [u8], Errno> {
    let page_offset = offset & !4095;
    let skip = (offset - page_offset) as usize;
    let total = len.checked_add(skip).ok_or(Errno::NOMEM)?;
    // SAFETY: a fresh private read-only mapping aliases nothing of ours; it is
    // never unmapped, and exec releases it.
    let base = unsafe {
        mm::mmap(
            core::ptr::null_mut(),
            total,
            ProtFlags::READ,
            MapFlags::PRIVATE,
            fd,
            page_offset,
        )?
    };
    // SAFETY: the mapping is `total` bytes long and lives until exec or exit.
    Ok(unsafe { core::slice::from_raw_parts(base.cast::<u8>().add(skip), len) })
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
        match io::write(fd, bytes) {
            Ok(0) => return Err(Errno::IO),
            Ok(n) => bytes = bytes.get(n..).unwrap_or(&[]),
            Err(Errno::INTR) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Forbids any further change to the memfd's bytes or size, so what was
/// verified is what runs.
pub fn seal(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    fs::fcntl_add_seals(
        fd,
        SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK | SealFlags::SEAL,
    )
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
            in("rdi") rustix::fd::AsRawFd::as_raw_fd(&fd) as isize,
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

/// A child process made by [`fork`].
pub struct Child(rustix::process::Pid);

/// `fork()`: `Ok(None)` in the child, `Ok(Some(child))` in the parent.
pub fn fork() -> Result<Option<Child>, Errno> {
    const SYS_FORK: usize = 57;
    let ret: isize;
    // SAFETY: fork duplicates this single-threaded process; the child only
    // reads memory and exits (see the caller), it never returns into code
    // that assumes it is the parent.
    unsafe {
        core::arch::asm!("syscall", inlateout("rax") SYS_FORK as isize => ret,
            lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    if ret < 0 {
        return Err(Errno::from_raw_os_error(-(ret as i32)));
    }
    Ok(rustix::process::Pid::from_raw(ret as i32).map(Child))
}

/// Waits for `child` and returns its exit status, or `None` if it did not
/// exit normally. ECHILD means the parent of this process set SIGCHLD to
/// SIG_IGN (inherited across exec), so the kernel reaped the child and its
/// status is lost.
pub fn wait(child: Child) -> Result<Option<i32>, Errno> {
    loop {
        match rustix::process::waitpid(Some(child.0), rustix::process::WaitOptions::empty()) {
            Ok(Some((_, status))) => return Ok(status.exit_status()),
            Ok(None) => return Ok(None),
            Err(Errno::INTR) => {}
            Err(err) => return Err(err),
        }
    }
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

/// Writes all of `bytes` at `offset`, resuming after partial writes and
/// signals. Several threads may write disjoint ranges of one file at once.
#[cfg(feature = "decoder")]
pub fn pwrite_all(fd: BorrowedFd<'_>, mut bytes: &[u8], mut offset: u64) -> Result<(), Errno> {
    while !bytes.is_empty() {
        match io::pwrite(fd, bytes, offset) {
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

/// Fresh zeroed private memory that lives until exec. `huge` asks for
/// transparent huge pages (kernels with THP set to "madvise", the common
/// default, give them only when asked): a few faults instead of one per 4 KiB.
#[cfg(feature = "decoder")]
pub fn map_anonymous(len: usize, huge: bool) -> Result<&'static mut [u8], Errno> {
    if len == 0 {
        return Ok(&mut []);
    }
    // SAFETY: a fresh anonymous mapping aliases nothing; it is never unmapped.
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
    // SAFETY: the mapping is `len` bytes, readable and writable, ours alone.
    Ok(unsafe { core::slice::from_raw_parts_mut(base.cast::<u8>(), len) })
}

/// How many CPUs this process may run on now (1 if the kernel will not say).
pub fn usable_cpus() -> usize {
    rustix::thread::sched_getaffinity(None).map_or(1, |set| set.count() as usize)
}
