//! Telling an aborted backup_data stream from a complete one.
//!
//! gpbackup_helper (single-data-file backups) starts us with
//! `bash -c "<plugin> backup_data <config> <file>"`; bash execs us, so our parent is
//! the helper. At a normal end it closes our stdin and then waits for us to exit. When
//! gpbackup fails or is cancelled, the helper gets SIGUSR1 (or SIGINT, SIGTERM), cleans
//! up and exits with status 2 without closing our stdin first: the kernel closes it as
//! the helper exits. Either way we read end-of-file. The difference is the state of the
//! parent at that moment, which is what [`Feeder::gone`] reads:
//!
//! - the kernel marks an exiting task `PF_EXITING` (in `exit_signals`, first thing in
//!   `do_exit`) before it releases the task's files (`exit_files`), so when an exiting
//!   parent's end of our pipe closes, the flag is already set; for a multithreaded
//!   parent (the Go helper) the files close only when the last thread exits, after the
//!   leader's flag is set;
//! - a moment later the parent reparents its children (`exit_notify`), so `getppid()`
//!   changes, and becomes a zombie (state `Z`), then disappears.
//!
//! So at end of input: parent pid changed, or `/proc/<ppid>/stat` missing, in state
//! `Z` or `X`, or with `PF_EXITING` in its flags, means the feeder died; a parent that
//! is alive (waiting for us) means the stream is complete. Cost at end of input: one
//! `getppid` and one read of `/proc/<ppid>/stat`.
//!
//! What it cannot see: an abort of a feeder that is not our parent. In a multi-file
//! backup gpbackup runs `gzip -c -1 | <plugin> backup_data …` under
//! `COPY … TO PROGRAM`; a cancelled COPY closes gzip's input, gzip finishes its stream
//! normally and the shell, our parent, waits for us: that end looks complete.

use rustix::process::{getppid, Pid};

/// `PF_EXITING` in the flags field of `/proc/<pid>/stat` (include/linux/sched.h).
const PF_EXITING: u64 = 0x4;

/// The process that started us, as it was when we started.
pub struct Feeder {
    ppid: Option<Pid>,
}

impl Feeder {
    /// Records our parent (none when it is outside our pid namespace).
    pub fn at_start() -> Feeder {
        Feeder { ppid: getppid() }
    }

    /// If the parent we started with has exited or is exiting, a description of it
    /// for the error line ("pid 1234 (gpbackup_helper)"); `None` while it lives.
    pub fn gone(&self) -> Option<String> {
        let ppid = self.ppid?;
        if getppid() != Some(ppid) {
            return Some(format!("pid {}", ppid.as_raw_nonzero()));
        }
        let stat = match std::fs::read_to_string(format!("/proc/{}/stat", ppid.as_raw_nonzero())) {
            Ok(stat) => stat,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Some(format!("pid {}", ppid.as_raw_nonzero()))
            }
            // No /proc to read: nothing can be told apart.
            Err(_) => return None,
        };
        let (head, rest) = stat.rsplit_once(')')?;
        let name = head.split_once('(').map_or("", |(_, n)| n);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // From field 3 (state): flags is field 9 (proc(5)).
        let state = fields.first().copied().unwrap_or("");
        let flags: u64 = fields.get(9 - 3).and_then(|f| f.parse().ok()).unwrap_or(0);
        let exiting = matches!(state, "Z" | "X" | "x") || flags & PF_EXITING != 0;
        exiting.then(|| format!("pid {} ({name})", ppid.as_raw_nonzero()))
    }
}

/// Fails when `feeder` (the parent of a backup_data) is gone: the end of input we saw
/// was an abort, and the stream must not be committed.
pub fn check(feeder: Option<&Feeder>) -> anyhow::Result<()> {
    match feeder.and_then(Feeder::gone) {
        Some(who) => Err(anyhow::anyhow!(
            "the process feeding the stream ({who}) exited instead of ending it: the backup was aborted, so nothing was stored (the inner plugin was stopped before it could commit)"
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_parent_is_not_gone() {
        // The test harness that runs us is alive and waiting.
        assert_eq!(Feeder::at_start().gone(), None);
    }
}
