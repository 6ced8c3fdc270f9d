//! SIGINT, SIGTERM and SIGHUP: mgo stops every go it started, removes what
//! it made, writes nothing and exits 130. The signal only sets a flag and
//! signals the children; the work in progress (a build, compression, a
//! write) sees the flag at its next step and unwinds through the normal
//! error path, which removes temporary files. The one step that cannot see
//! the flag, a write blocked on a FIFO with no reader, is cut short here.
//!
//! SIGKILL cannot be caught: for it, each go gets a parent-death signal
//! (see `go.rs`), and temporary files are either unnamed or cleaned up by
//! the next run (`output.rs`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// A running go command: its process group, and the switch that silences
/// its output once it is being stopped.
struct Child {
    pid: u32,
    quiet: Arc<AtomicBool>,
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static CHILDREN: Mutex<Vec<Child>> = Mutex::new(Vec::new());
/// What to remove if the process must exit from the handler.
static TEMPORARY: Mutex<Option<PathBuf>> = Mutex::new(None);
/// Set while the main thread may block where it cannot see the flag.
static BLOCKING: AtomicBool = AtomicBool::new(false);

/// Installs the handler. Called once, before anything temporary exists.
pub fn install() {
    // Fails only if a handler is set already, which nothing else does.
    let _ = ctrlc::set_handler(on_signal);
}

fn on_signal() {
    INTERRUPTED.store(true, Ordering::SeqCst);
    stop_children(None);
    if BLOCKING.load(Ordering::SeqCst) {
        if let Some(dir) = TEMPORARY
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = crate::scratch::remove(&dir);
        }
        crate::say("interrupted");
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

/// Names the temporary directory to remove if mgo must exit from the
/// signal handler; `None` once it is gone.
pub fn set_temporary(dir: Option<PathBuf>) {
    *TEMPORARY.lock().unwrap_or_else(PoisonError::into_inner) = dir;
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
