//! The loop every operator command that walks backup sets shares: for each timestamp,
//! find the set's objects, show progress, work through the objects on a pool of
//! threads with a call-log line and, on failure, an error line each, print the set's
//! summary, and at the end fail with a tally of what failed.
//!
//! A command ([`SetCommand`]) supplies only what is its own: what to do with one object,
//! and how its summary reads. `rotate` and `verify` are two such commands; another
//! command that walks backup sets is a third implementation of the trait.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::{bail, Result};

use super::backup_set::{discover_or_report, BackupSet};
use super::progress::Progress;
use super::storage::{Fetch, Store};
use crate::inner::{InnerWriter, Said};
use crate::keys::Keyring;
use crate::log::{logged, CallLog};
use crate::message::{human_bytes, human_rate};

/// What an operator command that walks backup sets does with them.
pub trait SetCommand: Sync {
    /// What became of an object that did not fail.
    type Done: Send;
    /// What the command keeps for the objects of one set (a staging directory).
    type Set: Sync;

    /// The command, as every line names it ("rotate").
    fn name(&self) -> &'static str;

    /// The command of each object's call-log line.
    fn log_command(&self) -> &'static str {
        self.name()
    }

    /// Prepares for the objects of `set`; a failure ends the command.
    fn begin_set(&self, set: &BackupSet) -> Result<Self::Set>;

    /// Does the work on one object.
    fn object(&self, set: &Self::Set, object: &mut Object) -> Result<Self::Done>;

    /// Adds what the log line of an object that did not fail should say about it.
    fn log_done(&self, _done: &Self::Done, _log: &mut CallLog) {}

    /// Cleans up after the objects of a set.
    fn end_set(&self, _set: Self::Set) {}

    /// The set's summary, from what became of its objects, in order.
    fn summary(&self, set: &BackupSet, outcomes: &[Outcome<Self::Done>], read: &Read) -> Summary;

    /// What the closing error adds after its tally: what to do next, given the objects
    /// that failed and how many of them no identity of the keyring opens.
    fn what_next(&self, _failed_objects: usize, _unopenable: usize) -> String {
        String::new()
    }
}

/// What became of one object.
pub enum Outcome<D> {
    Done(D),
    Failed,
}

impl<D> Outcome<D> {
    pub fn done(&self) -> Option<&D> {
        match self {
            Outcome::Done(d) => Some(d),
            Outcome::Failed => None,
        }
    }
}

/// One object being worked on: where it is, and its log line.
pub struct Object<'a> {
    pub ts: &'a str,
    pub name: &'a str,
    store: &'a Store,
    progress: &'a Progress,
    pub log: &'a mut CallLog,
    /// Bytes read from storage for this object.
    pub read: &'a AtomicU64,
    /// Bytes of output for this object: written to storage, or decoded.
    pub written: &'a AtomicU64,
}

impl<'a> Object<'a> {
    /// Starts reading the object from storage; the bytes count into the progress and
    /// into the log line.
    pub fn fetch(&self) -> Result<Fetch<'a>> {
        self.store
            .fetch_counted(self.ts, self.name, self.progress, Some(self.read))
    }

    /// Starts writing the object to storage (see [`Store::put`]).
    pub fn put(&self) -> Result<InnerWriter> {
        self.store.put(self.ts, self.name)
    }

    /// Records what the inner plugin said in a call for this object.
    pub fn said(&mut self, said: Said) {
        said.log(self.log);
    }
}

/// What one set's objects read from storage, in how long.
pub struct Read {
    pub bytes: u64,
    pub secs: f64,
}

/// An object that no identity of the keyring opens: running the same command again
/// cannot help it, a key can.
#[derive(Debug)]
pub struct KeyringCannotOpen(pub String);

impl std::fmt::Display for KeyringCannotOpen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KeyringCannotOpen {}

/// Runs `command` over the backup sets `timestamps`, `parallel` objects at a time; the
/// sets' objects are found with `finder` (see [`super::backup_set::discover`]).
pub fn run<C: SetCommand>(
    command: &C,
    store: &Store,
    finder: &Keyring,
    timestamps: &[String],
    parallel: usize,
) -> Result<()> {
    let name = command.name();
    let mut failed_objects = 0usize;
    let mut failed_sets = 0usize;
    let unopenable = AtomicUsize::new(0);
    for ts in timestamps {
        let Some(set) = discover_or_report(store, ts, finder, name) else {
            failed_sets += 1;
            continue;
        };
        let state = command.begin_set(&set)?;
        let progress = Progress::new(&format!("{name} {ts}"), set.objects.len() as u64);
        let outcomes = for_each_parallel(&set.objects, parallel, |object| {
            let read = AtomicU64::new(0);
            let written = AtomicU64::new(0);
            let result = logged(command.log_command(), &format!("{ts}/{object}"), |log| {
                let result = command.object(
                    &state,
                    &mut Object {
                        ts,
                        name: object,
                        store,
                        progress: &progress,
                        log,
                        read: &read,
                        written: &written,
                    },
                );
                // Every byte read and written, failed or not.
                log.bytes_in = read.load(Ordering::Relaxed);
                log.bytes_out = written.load(Ordering::Relaxed);
                if let Ok(done) = &result {
                    command.log_done(done, log);
                }
                result
            });
            let outcome = match result {
                Ok(done) => Outcome::Done(done),
                Err(e) => {
                    if e.chain().any(|cause| cause.is::<KeyringCannotOpen>()) {
                        unopenable.fetch_add(1, Ordering::Relaxed);
                    }
                    let e = crate::message::error_line(&e);
                    progress
                        .error_line(&format!("gpbackup_age_plugin: {name} {ts}: {object}: {e}"));
                    Outcome::Failed
                }
            };
            progress.object_done();
            outcome
        });
        progress.finish();
        command.end_set(state);
        failed_objects += outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Failed))
            .count();
        let read = Read {
            bytes: progress.bytes(),
            secs: progress.elapsed().as_secs_f64(),
        };
        print!("{}", command.summary(&set, &outcomes, &read));
    }
    if let Some(tally) = failure_tally(failed_objects, failed_sets) {
        bail!(
            "{tally}{}",
            command.what_next(failed_objects, unopenable.into_inner())
        );
    }
    Ok(())
}

/// What went wrong over several backup sets, for the closing error: "N object(s)
/// failed, M backup set(s) could not be read", naming only what happened; `None` when
/// nothing did.
fn failure_tally(failed_objects: usize, failed_sets: usize) -> Option<String> {
    let parts: Vec<String> = [
        (failed_objects > 0).then(|| format!("{failed_objects} object(s) failed")),
        (failed_sets > 0).then(|| format!("{failed_sets} backup set(s) could not be read")),
    ]
    .into_iter()
    .flatten()
    .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// Runs `work` on every item with up to `threads` threads. Results come back in the
/// order of `items`.
fn for_each_parallel<T, R, F>(items: &[T], threads: usize, work: F) -> Vec<Outcome<R>>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> Outcome<R> + Sync,
{
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Outcome<R>>>> =
        Mutex::new((0..items.len()).map(|_| None).collect());
    let threads = threads.clamp(1, items.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let result = work(item);
                if let Ok(mut all) = results.lock() {
                    all[i] = Some(result);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.unwrap_or(Outcome::Failed))
        .collect()
}

/// The columns a summary line may take (an operator's terminal, a ticket, an email).
pub const SUMMARY_WIDTH: usize = 100;

/// The summary of one backup set: a first line naming the command, the timestamp and
/// the set, then indented lines, each of clauses separated by ", ". A line longer than
/// [`SUMMARY_WIDTH`] columns is broken between clauses.
pub struct Summary {
    lines: Vec<String>,
}

impl Summary {
    /// "verify 20250101010101: 12 objects (2 segments[ found by probing][, details])".
    pub fn new(command: &str, set: &BackupSet, details: &[String]) -> Summary {
        let objects = set.objects.len() as u64;
        Summary::head(command, set, objects, details)
    }

    fn head(command: &str, set: &BackupSet, objects: u64, details: &[String]) -> Summary {
        let mut about = vec![format!(
            "{} segment{}{}",
            set.segments,
            if set.segments == 1 { "" } else { "s" },
            if set.probed { " found by probing" } else { "" }
        )];
        about.extend(details.iter().cloned());
        let mut summary = Summary { lines: Vec::new() };
        summary.push(
            &format!("{command} {}: {objects} objects (", set.layout.timestamp),
            &about,
            ")",
        );
        summary
    }

    /// A line of clauses ("12 ok", "0 failed").
    pub fn line(mut self, clauses: &[String]) -> Summary {
        self.push("  ", clauses, "");
        self
    }

    /// A line of a list after a lead ("recipients now: " then "key a, key b").
    pub fn list(mut self, lead: &str, items: &[String]) -> Summary {
        self.push(&format!("  {lead}"), items, "");
        self
    }

    /// "5.76 MiB read in 0.3 s (19.20 MiB/s[, details])".
    pub fn read(mut self, read: &Read, details: &[&str]) -> Summary {
        let mut about = vec![human_rate(read.bytes, read.secs)];
        about.extend(details.iter().map(|d| d.to_string()));
        self.push(
            &format!("  {} read in {:.1} s (", human_bytes(read.bytes), read.secs),
            &about,
            ")",
        );
        self
    }

    /// `lead`, the clauses joined by ", ", then `end`, broken between clauses into
    /// lines of at most [`SUMMARY_WIDTH`] columns (continued 4 columns in).
    fn push(&mut self, lead: &str, clauses: &[String], end: &str) {
        let mut line = lead.to_string();
        for (i, clause) in clauses.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            let tail = if i + 1 == clauses.len() { end } else { "," };
            let fits = |line: &str| {
                columns(line) + sep.len() + columns(clause) + tail.len() <= SUMMARY_WIDTH
            };
            if i > 0 && !fits(&line) {
                line.push(',');
                self.lines.push(line);
                line = format!("    {clause}");
            } else {
                line.push_str(sep);
                line.push_str(clause);
            }
        }
        if clauses.is_empty() {
            line = line.trim_end().to_string();
        }
        line.push_str(end);
        self.lines.push(line);
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for line in &self.lines {
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

/// The columns a line takes on a terminal (every character we write takes one).
fn columns(text: &str) -> usize {
    text.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::backup_set::Layout;

    fn set(objects: usize, segments: u32, probed: bool) -> BackupSet {
        BackupSet {
            layout: Layout {
                timestamp: "20250101010101".into(),
                segment_count: Some(segments),
                single_data_file: false,
                extension: ".gz".into(),
                with_statistics: false,
                oids: vec![1],
            },
            segments,
            probed,
            objects: (0..objects).map(|i| format!("o{i}")).collect(),
        }
    }

    #[test]
    fn summaries_read_as_before_and_fit_the_width_whatever_the_numbers() {
        let read = Read {
            bytes: 6_039_797,
            secs: 0.3,
        };
        let text = Summary::new("verify", &set(12, 2, false), &[])
            .line(&["12 ok".into(), "0 failed".into()])
            .read(&read, &[])
            .list("opened by ", &["key 1a2b3c4d (12)".into()])
            .to_string();
        assert_eq!(
            text,
            "verify 20250101010101: 12 objects (2 segments)\n  12 ok, 0 failed\n  5.76 MiB read in 0.3 s (19.20 MiB/s)\n  opened by key 1a2b3c4d (12)\n"
        );
        let keys: Vec<String> = (0..40)
            .map(|i| format!("key {i:08x} ({})", u64::MAX))
            .collect();
        let huge = Summary::head(
            "rotate",
            &set(0, u32::MAX, true),
            u64::MAX,
            &["file per table".into(), ".gz".into()],
        )
        .line(&[
            format!(
                "{} re-encrypted ({} from copies kept by an earlier run)",
                u64::MAX,
                u64::MAX
            ),
            format!("{} already done", u64::MAX),
            format!("{} failed", u64::MAX),
        ])
        .read(
            &Read {
                bytes: u64::MAX,
                secs: 1e12,
            },
            &["streaming"],
        )
        .list("recipients now: ", &keys)
        .to_string();
        for line in huge.lines() {
            assert!(
                columns(line) <= SUMMARY_WIDTH,
                "{} columns: {line}",
                columns(line)
            );
        }
        assert!(huge.lines().count() > 6, "{huge}");
        // Broken between clauses only: joined again, the text is whole.
        let joined = huge.lines().map(str::trim).collect::<Vec<_>>().join(" ");
        assert!(joined.contains(&format!("{} already done, {} failed", u64::MAX, u64::MAX)));
    }
}
