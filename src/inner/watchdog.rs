//! The stall timeout: an inner plugin that makes no progress for `stall_timeout_seconds`
//! while we wait on it is killed, and the call fails saying so.
//!
//! We wait on it in one read or write of ours (or, for commands that move no data and
//! after a stream ends, until it exits). Time spent waiting for *our* input does not
//! count. Progress is any of:
//! - a byte through our pipe to or from it (each read or write of ours that returns
//!   starts the clock again);
//! - I/O by any process of its process group: the `rchar` and `wchar` counters of
//!   `/proc/<pid>/io`, which count every read and write, sockets included, so a plugin
//!   downloading a 500 MB chunk before it writes its first byte to us (as
//!   gpbackup_s3_plugin does) or uploading after its input ended is making progress;
//! - CPU time used by any process of its group (`utime` + `stime` of
//!   `/proc/<pid>/stat`).
//!
//! A plugin asleep, or blocked on a connection that moves nothing, shows none of these.
//! The group's counters are read only once a wait has lasted a quarter of the limit
//! (at most a second), so a call that never waits that long never reads them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Sender};

#[derive(Default)]
struct State {
    /// Milliseconds since `epoch` when the current blocking call began, 0 if none.
    since: AtomicU64,
    stalled: AtomicBool,
}

/// Shared by the call sites (which mark blocking calls) and the watchdog thread.
#[derive(Clone)]
pub struct Watchdog {
    state: Arc<State>,
    epoch: Instant,
    limit: Option<Duration>,
    stop: Option<Sender<()>>,
}

/// Marks one blocking call; the call ends when this is dropped.
pub struct InCall<'a>(&'a Watchdog);

impl Drop for InCall<'_> {
    fn drop(&mut self) {
        self.0.state.since.store(0, Ordering::SeqCst);
    }
}

impl Watchdog {
    /// Starts watching the process group led by `pid` if a limit is set; otherwise a
    /// no-op watchdog.
    pub fn start(pid: u32, limit: Option<Duration>) -> Watchdog {
        let state = Arc::new(State::default());
        let epoch = Instant::now();
        let stop = limit.map(|limit| {
            let (stop_tx, stop_rx) = bounded::<()>(0);
            let state = Arc::clone(&state);
            let tick = (limit / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
            std::thread::spawn(move || {
                let limit = limit.as_millis() as u64;
                let tick = tick.as_millis() as u64;
                // The wait being watched, the group's activity when last read, and
                // when it last changed.
                let mut watched = 0;
                let mut activity: Option<u64> = None;
                let mut last_change = 0;
                // Wakes every tick until told to stop (the sender is dropped).
                while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                    stop_rx.recv_timeout(Duration::from_millis(tick))
                {
                    let since = state.since.load(Ordering::SeqCst);
                    if since != watched {
                        (watched, activity, last_change) = (since, None, since);
                    }
                    if since == 0 {
                        continue;
                    }
                    let now = epoch.elapsed().as_millis() as u64;
                    if now.saturating_sub(since) < tick {
                        continue;
                    }
                    let current = group_activity(pid);
                    if activity.is_some_and(|seen| seen != current) {
                        last_change = now;
                    }
                    activity = Some(current);
                    if now.saturating_sub(last_change.max(since)) >= limit {
                        state.stalled.store(true, Ordering::SeqCst);
                        super::guard::kill_group(pid);
                        return;
                    }
                }
            });
            stop_tx
        });
        Watchdog {
            state,
            epoch,
            limit,
            stop,
        }
    }

    /// Marks the start of a call that blocks on the child.
    pub fn call(&self) -> InCall<'_> {
        self.enter();
        InCall(self)
    }

    /// Marks that from now on we only wait for the child (until it exits).
    pub fn enter(&self) {
        if self.limit.is_some() {
            let now = self.epoch.elapsed().as_millis() as u64;
            self.state.since.store(now.max(1), Ordering::SeqCst);
        }
    }

    /// Stops the watchdog thread.
    pub fn stop(&mut self) {
        self.stop = None;
    }

    /// The limit, if the child was killed for exceeding it.
    pub fn stalled(&self) -> Option<Duration> {
        self.limit
            .filter(|_| self.state.stalled.load(Ordering::SeqCst))
    }
}

/// The message of a call whose inner plugin was killed by the stall timeout.
pub fn stalled_message(what: &str, limit: Duration) -> String {
    format!(
        "{what} stalled: it made no progress for {} s (no data moved, no I/O and no CPU time by its processes; stall_timeout_seconds), so it was killed",
        limit.as_secs()
    )
}

/// A number that changes whenever a process of group `pgid` reads, writes (files,
/// pipes, sockets) or uses CPU time: the sum of `rchar + wchar` (`/proc/<pid>/io`, when
/// readable) and `utime + stime` (`/proc/<pid>/stat`) over the group's processes.
fn group_activity(pgid: u32) -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut total = 0u64;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the parenthesised command name, from field 3 (state): pgrp is
        // field 5, utime 14 and stime 15 (proc(5)).
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
        if field(5) != Some(u64::from(pgid)) {
            continue;
        }
        total = total
            .wrapping_add(field(14).unwrap_or(0))
            .wrapping_add(field(15).unwrap_or(0));
        if let Ok(io) = std::fs::read_to_string(format!("/proc/{pid}/io")) {
            for line in io.lines() {
                if let Some(n) = line
                    .strip_prefix("rchar:")
                    .or_else(|| line.strip_prefix("wchar:"))
                    .and_then(|v| v.trim().parse::<u64>().ok())
                {
                    total = total.wrapping_add(n);
                }
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_group_shows_activity() {
        let pgid = rustix::process::getpgrp().as_raw_pid() as u32;
        let before = group_activity(pgid);
        // Some I/O of our own.
        let _ = std::fs::read("/proc/self/status");
        assert_ne!(group_activity(pgid), before);
        assert_eq!(group_activity(u32::MAX), 0);
    }
}
