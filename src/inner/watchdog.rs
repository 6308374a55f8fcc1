//! The stall timeout: a child that sits in one read or write of ours (or, for commands
//! that move no data, runs) for longer than `stall_timeout_seconds` is killed, and the
//! call fails saying so. Time spent waiting for *our* input does not count: only time
//! blocked on the child does.

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
    /// Starts watching child `pid` if a limit is set; otherwise a no-op watchdog.
    pub fn start(pid: u32, limit: Option<Duration>) -> Watchdog {
        let state = Arc::new(State::default());
        let epoch = Instant::now();
        let stop = limit.map(|limit| {
            let (stop_tx, stop_rx) = bounded::<()>(0);
            let state = Arc::clone(&state);
            let tick = (limit / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
            std::thread::spawn(move || {
                // Wakes every tick until told to stop (the sender is dropped).
                while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                    stop_rx.recv_timeout(tick)
                {
                    let since = state.since.load(Ordering::SeqCst);
                    if since != 0
                        && epoch.elapsed().as_millis() as u64 - since >= limit.as_millis() as u64
                    {
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
