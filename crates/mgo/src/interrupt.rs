//! SIGINT, SIGTERM, SIGHUP and SIGQUIT: mgo stops every go it started, removes what
//! it made, writes nothing and exits 130. The signal only sets a flag and
//! signals the children; the work in progress (a build, compression, a
//! write) sees the flag at its next step and unwinds through the normal
//! error path, which removes temporary files. The one step that cannot see
//! the flag, a write blocked on a FIFO with no reader, is cut short here.
//!
//! SIGKILL cannot be caught: for it, each go gets a parent-death signal
//! (see `go/`), and temporary files are either unnamed or cleaned up by
//! the next run (`place/`).

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// A running go command: its process group, and the switch that silences
/// its output once it is being stopped.
struct Child {
    pid: u32,
    quiet: Arc<AtomicBool>,
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static CHILDREN: Mutex<Vec<Child>> = Mutex::new(Vec::new());
/// What to run if the process must exit from the handler: the owner of
/// the temporary files registers it, so this module needs to know nothing
/// about them.
static CLEANUP: Mutex<Option<Box<dyn FnOnce() + Send>>> = Mutex::new(None);
/// Set while the main thread may block where it cannot see the flag.
static BLOCKING: AtomicBool = AtomicBool::new(false);

/// Installs the handler. Called once, before anything temporary exists.
pub fn install() {
    // Fails only if a handler is set already, which nothing else does.
    let _ = ctrlc::set_handler(on_signal);
    install_quit();
}

/// The write end of the pipe through which SIGQUIT reaches its thread.
static QUIT_PIPE: AtomicI32 = AtomicI32::new(-1);

/// SIGQUIT (Ctrl-\\), which ctrlc does not handle, would otherwise kill
/// mgo on the spot and leave its temporary directory and the compilers of
/// every level running. As ctrlc does for the others, the handler only
/// writes a byte to a pipe (async-signal-safe); a thread reads it and does
/// what [`on_signal`] does for SIGINT.
fn install_quit() {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array it is given.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return;
    }
    let [read_end, write_end] = fds;
    QUIT_PIPE.store(write_end, Ordering::SeqCst);
    let spawned = std::thread::Builder::new()
        .name("sigquit".into())
        .spawn(move || {
            let mut byte = 0u8;
            loop {
                // SAFETY: reads at most one byte into a live local.
                let n = unsafe { libc::read(read_end, (&raw mut byte).cast(), 1) };
                if n == 1 {
                    on_signal();
                } else if n == 0
                    || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted
                {
                    return;
                }
            }
        });
    if spawned.is_err() {
        return;
    }
    // SAFETY: a zeroed sigaction is valid; the handler only calls write(2).
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_quit as *const () as usize;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&raw mut action.sa_mask);
        libc::sigaction(libc::SIGQUIT, &raw const action, std::ptr::null_mut());
    }
}

extern "C" fn on_quit(_: libc::c_int) {
    let fd = QUIT_PIPE.load(Ordering::SeqCst);
    let byte = 0u8;
    // SAFETY: write(2) is async-signal-safe; errno is saved around it so
    // that the interrupted code sees its own.
    unsafe {
        let errno = *libc::__errno_location();
        libc::write(fd, (&raw const byte).cast(), 1);
        *libc::__errno_location() = errno;
    }
}

fn on_signal() {
    INTERRUPTED.store(true, Ordering::SeqCst);
    stop_children(None);
    if BLOCKING.load(Ordering::SeqCst) {
        if let Some(cleanup) = CLEANUP
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            cleanup();
        }
        crate::console::say("interrupted");
        std::process::exit(130);
    }
}

/// Whether a signal asked mgo to stop.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// `Err(interrupted)` once a signal asked mgo to stop.
pub fn check() -> crate::error::Result<()> {
    if interrupted() {
        Err(crate::error::interrupted())
    } else {
        Ok(())
    }
}

/// Registers a started go (its own process group leader). Returns `false`,
/// registering nothing, if mgo is being interrupted: the caller must then
/// stop it itself.
pub fn register(pid: u32, quiet: Arc<AtomicBool>) -> bool {
    let mut children = CHILDREN.lock().unwrap_or_else(PoisonError::into_inner);
    if interrupted() {
        return false;
    }
    children.push(Child { pid, quiet });
    true
}

/// Forgets a go that has exited.
pub fn unregister(pid: u32) {
    CHILDREN
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .retain(|c| c.pid != pid);
}

/// Sends SIGINT, as a terminal's Ctrl-C would, to every registered go's
/// process group but `except`'s (go then removes its own work directory,
/// and the compilers and linkers it started stop too), and silences them.
pub fn stop_children(except: Option<u32>) {
    let children = CHILDREN.lock().unwrap_or_else(PoisonError::into_inner);
    for child in children.iter().filter(|c| Some(c.pid) != except) {
        child.quiet.store(true, Ordering::SeqCst);
        signal_group(child.pid);
    }
}

/// SIGINT to the process group `pid` leads.
pub fn signal_group(pid: u32) {
    if let Ok(pid) = i32::try_from(pid)
        && let Some(pid) = rustix::process::Pid::from_raw(pid)
    {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::INT);
    }
}

/// Sets what to run (removing temporary files) if mgo must exit from the
/// signal handler; `None` once there is nothing left to clean up.
pub fn set_cleanup(cleanup: Option<Box<dyn FnOnce() + Send>>) {
    *CLEANUP.lock().unwrap_or_else(PoisonError::into_inner) = cleanup;
}

/// Runs `f`, which may block where the flag cannot be seen (opening a FIFO
/// for writing waits for a reader): a signal meanwhile exits at once.
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    BLOCKING.store(true, Ordering::SeqCst);
    if interrupted() {
        on_signal();
    }
    let result = f();
    BLOCKING.store(false, Ordering::SeqCst);
    result
}
