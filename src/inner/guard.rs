//! Cleanup when we are told to stop: SIGTERM, SIGINT or SIGHUP kill every inner plugin
//! process group we started and remove every inner config we wrote, then we exit with
//! 128 + the signal. Destructors do not run on a signal exit, so what needs undoing is
//! tracked here.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once};

use rustix::process::{kill_process_group, Pid, Signal};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

#[derive(Default)]
struct Tracked {
    groups: Vec<u32>,
    files: Vec<PathBuf>,
}

static TRACKED: Mutex<Tracked> = Mutex::new(Tracked {
    groups: Vec::new(),
    files: Vec::new(),
});
static INSTALL: Once = Once::new();

fn tracked() -> std::sync::MutexGuard<'static, Tracked> {
    TRACKED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Installs the signal handling thread, once per process.
pub fn install() {
    INSTALL.call_once(|| {
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP]) else {
            return;
        };
        std::thread::spawn(move || {
            if let Some(sig) = signals.forever().next() {
                let t = tracked();
                for &group in &t.groups {
                    kill_group(group);
                }
                for file in &t.files {
                    let _ = std::fs::remove_file(file);
                }
                std::process::exit(128 + sig);
            }
        });
    });
}

/// Sends SIGKILL to the process group led by `pid` (every child runs in its own).
pub fn kill_group(pid: u32) {
    if let Some(pid) = Pid::from_raw(pid as i32) {
        let _ = kill_process_group(pid, Signal::KILL);
    }
}

pub fn track_group(pid: u32) {
    tracked().groups.push(pid);
}

pub fn untrack_group(pid: u32) {
    tracked().groups.retain(|&g| g != pid);
}

pub fn track_file(path: &Path) {
    tracked().files.push(path.to_path_buf());
}

pub fn untrack_file(path: &Path) {
    tracked().files.retain(|f| f != path);
}
