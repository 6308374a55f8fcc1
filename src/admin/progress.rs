//! Progress of an operator command over a backup set: objects done and bytes read, the
//! same counters the summary line reports.
//!
//! A bar is drawn only when stderr is a terminal; the commands print their summary in
//! every case, so nothing depends on the bar. The bar's byte count and rate are drawn
//! from the counter the summary reads ("read": bytes read from storage), at every
//! redraw, so the bar never shows less than has been read.

use std::io::{self, IsTerminal, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use crate::message::{human_bytes, human_rate};

/// Objects done and bytes read, shared by the worker threads.
pub struct Progress {
    bar: Option<ProgressBar>,
    read: Arc<ReadCounter>,
}

/// Bytes read since `started`.
struct ReadCounter {
    bytes: AtomicU64,
    started: Instant,
}

impl ReadCounter {
    fn text(&self) -> String {
        read_text(
            self.bytes.load(Ordering::Relaxed),
            self.started.elapsed().as_secs_f64(),
        )
    }
}

/// How the bar says what was read: "5.76 MiB read, 19.20 MiB/s".
fn read_text(bytes: u64, secs: f64) -> String {
    format!("{} read, {}", human_bytes(bytes), human_rate(bytes, secs))
}

impl Progress {
    /// A progress display for `objects` objects, labelled `label` (e.g. "rotate 2025…").
    pub fn new(label: &str, objects: u64) -> Progress {
        let mut progress = Progress::hidden();
        if io::stderr().is_terminal() {
            let read = Arc::clone(&progress.read);
            let style =
                ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} objects, {read}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .with_key(
                        "read",
                        move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                            let _ = w.write_str(&read.text());
                        },
                    )
                    .progress_chars("=> ");
            let bar = ProgressBar::with_draw_target(Some(objects), ProgressDrawTarget::stderr())
                .with_style(style)
                .with_prefix(label.to_string());
            bar.enable_steady_tick(Duration::from_millis(200));
            progress.bar = Some(bar);
        }
        progress
    }

    /// A progress that shows nothing (for short preliminary reads).
    pub fn hidden() -> Progress {
        Progress {
            bar: None,
            read: Arc::new(ReadCounter {
                bytes: AtomicU64::new(0),
                started: Instant::now(),
            }),
        }
    }

    /// Counts bytes read from storage.
    pub fn add_bytes(&self, n: u64) {
        self.read.bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// One more object done (whatever its outcome).
    pub fn object_done(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    /// Prints a line on stderr without tearing the bar.
    pub fn error_line(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    /// Bytes read from storage so far.
    pub fn bytes(&self) -> u64 {
        self.read.bytes.load(Ordering::Relaxed)
    }

    pub fn elapsed(&self) -> Duration {
        self.read.started.elapsed()
    }

    /// Removes the bar (before the summary line).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_says_what_was_read_as_the_summary_does() {
        assert_eq!(read_text(6_039_797, 0.3), "5.76 MiB read, 19.20 MiB/s");
        assert_eq!(read_text(0, 0.0), "0 B read, -");
        let progress = Progress::hidden();
        progress.add_bytes(4096);
        progress.add_bytes(1);
        assert_eq!(progress.bytes(), 4097);
        assert!(progress.read.text().starts_with("4.00 KiB read, "));
    }
}
