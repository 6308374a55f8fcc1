//! Progress for the operator commands, and the pool of threads that works through the
//! objects of a backup set.
//!
//! A bar is drawn only when stderr is a terminal; the commands print their summary
//! line in every case, so nothing depends on the bar.

use std::io::{self, IsTerminal, Read};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Objects and bytes done, shared by the worker threads.
pub struct Progress {
    bars: Option<(MultiProgress, ProgressBar, ProgressBar)>,
    bytes: AtomicU64,
    started: Instant,
}

impl Progress {
    /// A progress display for `objects` objects, labelled `label` (e.g. "rotate 2025…").
    pub fn new(label: &str, objects: u64) -> Progress {
        let bars = io::stderr().is_terminal().then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let count = multi.add(ProgressBar::new(objects));
            count.set_style(
                ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} objects, {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            count.set_prefix(label.to_string());
            let bytes = multi.add(ProgressBar::no_length());
            bytes.set_style(
                ProgressStyle::with_template("{spinner} {bytes} moved, {binary_bytes_per_sec}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bytes.enable_steady_tick(Duration::from_millis(200));
            (multi, count, bytes)
        });
        Progress {
            bars,
            bytes: AtomicU64::new(0),
            started: Instant::now(),
        }
    }

    /// A progress that shows nothing (for short preliminary reads).
    pub fn hidden() -> Progress {
        Progress {
            bars: None,
            bytes: AtomicU64::new(0),
            started: Instant::now(),
        }
    }

    /// Counts bytes moved.
    pub fn add_bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
        if let Some((_, _, bytes)) = &self.bars {
            bytes.inc(n);
        }
    }

    /// One more object done (whatever its outcome).
    pub fn object_done(&self) {
        if let Some((_, count, _)) = &self.bars {
            count.inc(1);
        }
    }

    /// Prints a line on stderr without tearing the bar.
    pub fn error_line(&self, line: &str) {
        match &self.bars {
            Some((multi, _, _)) => multi.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Removes the bar (before the summary line).
    pub fn finish(&self) {
        if let Some((multi, count, bytes)) = &self.bars {
            count.finish_and_clear();
            bytes.finish_and_clear();
            let _ = multi.clear();
        }
    }
}

/// A reader that counts what passes through it, itself and into a [`Progress`] (and,
/// optionally, into the counter of the object's log line).
pub struct Counted<'p, R> {
    inner: R,
    progress: &'p Progress,
    count: u64,
    object: Option<&'p AtomicU64>,
}

impl<'p, R> Counted<'p, R> {
    pub fn new(inner: R, progress: &'p Progress, object: Option<&'p AtomicU64>) -> Self {
        Counted {
            inner,
            progress,
            count: 0,
            object,
        }
    }

    /// Bytes read through this reader.
    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        self.progress.add_bytes(n as u64);
        if let Some(object) = self.object {
            object.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(n)
    }
}

/// Runs `work` on every item with up to `threads` threads, each with its own state from
/// `init` (key material is not shareable between threads). Results come back in the
/// order of `items`. A thread whose `init` fails reports that failure for each item it
/// takes.
pub fn for_each_parallel<T, S, R, I, F>(items: &[T], threads: usize, init: I, work: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    I: Fn() -> Result<S, String> + Sync,
    F: Fn(&mut S, &T) -> R + Sync,
    R: From<String>,
{
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    let threads = threads.clamp(1, items.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut state = init();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let result = match state.as_mut() {
                        Ok(state) => work(state, item),
                        Err(e) => R::from(e.clone()),
                    };
                    if let Ok(mut all) = results.lock() {
                        all[i] = Some(result);
                    }
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.unwrap_or_else(|| R::from("not processed (a worker thread stopped)".into())))
        .collect()
}
