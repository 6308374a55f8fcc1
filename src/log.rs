//! The call log: one line per plugin call in
//! `$HOME/gpAdminLogs/gpbackup_age_plugin_<YYYYMMDD>.log`, like gpbackup's own plugins.
//!
//! stderr is reserved for errors (gprestore fails a restore on any stderr text), so
//! everything an operator may want to know about a successful call goes here. A log
//! that cannot be written never fails a call. Each line is one `write` on a file opened
//! for appending, so concurrent calls never interleave inside a line.

use std::fs::File;
use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use chrono::{DateTime, Local};

/// Today's log file, opened ahead of time by [`warm_up`], with its path.
static OPENED: Mutex<Option<(PathBuf, File)>> = Mutex::new(None);

/// Loads the time zone and opens today's log file, so that writing the line later costs
/// one `write`. Called while an inner plugin starts, when a small call has nothing else
/// to do: that takes about 0.1 ms off its critical path.
pub fn warm_up() {
    let Ok(mut opened) = OPENED.lock() else {
        return;
    };
    if opened.is_none() {
        *opened = log_path(&Local::now()).and_then(|path| Some((path.clone(), open(&path)?)));
    }
}

fn open(path: &Path) -> Option<File> {
    std::fs::create_dir_all(path.parent().unwrap_or(path))
        .and_then(|_| OpenOptions::new().create(true).append(true).open(path))
        .ok()
}

/// Runs `body` with a log line around it (a plugin call, or one object of an operator
/// command): the line is written when `body` returns, with its outcome.
pub fn logged<T>(
    command: &str,
    object: &str,
    body: impl FnOnce(&mut CallLog) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let mut log = CallLog::start(command, object);
    let outcome = body(&mut log);
    log.finish(outcome.as_ref().err());
    outcome
}

/// The log line of one call, filled in as the call goes.
pub struct CallLog {
    command: String,
    object: String,
    started: Instant,
    pub bytes_in: u64,
    pub bytes_out: u64,
    notes: Vec<String>,
    /// The outcome written for a call that succeeded: `ok` unless said otherwise.
    ok_outcome: Option<String>,
}

impl CallLog {
    pub fn start(command: &str, object: &str) -> CallLog {
        CallLog {
            command: command.to_string(),
            object: object.to_string(),
            started: Instant::now(),
            bytes_in: 0,
            bytes_out: 0,
            notes: Vec::new(),
            ok_outcome: None,
        }
    }

    /// Says what a call that succeeds without having done all of its work was, instead
    /// of `ok` (a restore whose reader closed the stream early).
    pub fn set_outcome(&mut self, outcome: impl Into<String>) {
        self.ok_outcome = Some(outcome.into());
    }

    /// Something worth recording that is not a failure (a warning, a detail).
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// Appends the line; `failure` is the error that ended the call, if it failed.
    pub fn finish(mut self, failure: Option<&anyhow::Error>) {
        let now = Local::now();
        let Some(path) = log_path(&now) else { return };
        let result = match failure {
            None => self.ok_outcome.take().unwrap_or_else(|| "ok".to_string()),
            Some(e) => format!("error: {}", crate::message::error_line(e)),
        };
        let notes = if self.notes.is_empty() {
            String::new()
        } else {
            format!(" notes=\"{}\"", self.notes.join("; ").replace('"', "'"))
        };
        let line =
            format!(
            "{} pid={} command={} object={} bytes_in={} bytes_out={} duration_ms={} peak_rss_kib={}{} outcome={}\n",
            now.format("%Y-%m-%d %H:%M:%S%.3f"),
            std::process::id(),
            self.command,
            if self.object.is_empty() { "-" } else { &self.object },
            self.bytes_in,
            self.bytes_out,
            self.started.elapsed().as_millis(),
            peak_rss_kib(self.bytes_in + self.bytes_out),
            notes,
            result
        );
        // The file opened ahead of time, unless the day changed since.
        let opened = OPENED.lock().ok().and_then(|mut opened| opened.take());
        let file = match opened {
            Some((opened_path, file)) if opened_path == path => Some(file),
            _ => open(&path),
        };
        if let Some(mut file) = file {
            let _ = file.write_all(line.as_bytes());
        }
    }
}

/// Our peak resident set size so far (VmHWM), for the log: what memory a call took.
/// `-` for calls that moved less than 1 MiB, whose memory is not worth the 0.1 ms that
/// reading /proc/self/status costs.
fn peak_rss_kib(bytes_moved: u64) -> String {
    if bytes_moved < 1 << 20 {
        return "-".to_string();
    }
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1).map(str::to_string)
        })
        .unwrap_or_else(|| "-".to_string())
}

fn log_path(now: &DateTime<Local>) -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    let day = now.format("%Y%m%d");
    Some(
        PathBuf::from(home)
            .join("gpAdminLogs")
            .join(format!("gpbackup_age_plugin_{day}.log")),
    )
}

/// A reader or writer that adds the bytes passing through it to a counter, so that the
/// call log's byte counters say what moved even when a call fails half way (the
/// pipelines report their counts only on success).
pub struct Metered<'a, T> {
    inner: T,
    count: &'a AtomicU64,
}

impl<'a, T> Metered<'a, T> {
    pub fn new(inner: T, count: &'a AtomicU64) -> Self {
        Metered { inner, count }
    }
}

impl<T: Read> Read for Metered<'_, T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl<T: Write> Write for Metered<'_, T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
