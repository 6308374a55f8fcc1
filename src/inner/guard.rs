//! Cleanup when we are told to stop: SIGTERM, SIGINT or SIGHUP kill every inner plugin
//! process group we started and remove every inner config we wrote, then we exit with
//! 128 + the signal. Destructors do not run on a signal exit, so what needs undoing is
//! tracked here.
//!
//! A signal that was ignored when we started stays ignored, for us and (since an
//! ignored disposition survives `exec`) for the inner plugins we start: gpbackup_helper
//! runs under `nohup`, so its plugins start with SIGHUP ignored, and a hangup of the
//! session that started the backup must not end it.

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

/// Installs the signal handling thread, once per process, for those of SIGTERM, SIGINT
/// and SIGHUP that were not ignored when we started.
pub fn install() {
    INSTALL.call_once(|| {
        let ignored = ignored_signals();
        let wanted = [SIGTERM, SIGINT, SIGHUP]
            .into_iter()
            .filter(|&sig| ignored & (1 << (sig - 1)) == 0);
        let Ok(mut signals) = signal_hook::iterator::Signals::new(wanted) else {
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

/// The set of signals ignored now (before we handle any), as the bit mask `SigIgn` of
/// `/proc/self/status` (bit n-1 for signal n); empty if it cannot be read.
fn ignored_signals() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let mask = status.lines().find_map(|l| l.strip_prefix("SigIgn:"))?;
            u64::from_str_radix(mask.trim(), 16).ok()
        })
        .unwrap_or(0)
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
