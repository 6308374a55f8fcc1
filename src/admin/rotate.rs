//! `rotate`: every object of a backup set brought to the config's current recipients.
//!
//! Re-wrapping (the default) keeps the payload byte for byte: the file key is unwrapped
//! with the keyring and wrapped for the new recipients in a new header with a new MAC
//! (`Header::wrap`), and the 16-byte payload nonce and the STREAM payload follow
//! unchanged. `--reencrypt` decodes and encodes the object again under a fresh file key,
//! through memory only.
//!
//! How an object is replaced, and what is guaranteed:
//!
//! - Staged (default): the current ciphertext is fetched into `<name>.fetch` under the
//!   work directory while every payload chunk is authenticated, synced to disk and
//!   renamed to `<name>.orig`. Only then is the object overwritten. If the overwrite
//!   fails, the `.orig` copy is uploaded again; if that fails too, it is kept, named in
//!   the error, and a re-run uploads it when the stored object no longer reads. So an
//!   object always exists intact in storage or in the work directory, even with an
//!   inner plugin that overwrites non-atomically and even if this process is killed.
//! - Streaming (`--streaming`): restore_data is piped into backup_data of the same key,
//!   and the new object is committed only if every chunk authenticated (otherwise the
//!   inner plugin is killed before its stdin closes). Safe only when the inner plugin
//!   replaces objects atomically.
//!
//! A journal (`journal` in the work directory) records the SHA-256 of every header
//! written, with the key ids of its recipients. A re-run reads each object's header and
//! skips it when the journal shows it was written for the same recipients; everything
//! else is processed again, which is always correct.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};

use super::backup_set::{discover_or_report, failure_tally, BackupSet};
use super::payload::{copy_checked, reencrypt, Check, CopyError};
use super::progress::{for_each_parallel, Progress};
use super::storage::{header_problem, Store};
use crate::age_file::{Header, HeaderError};
use crate::cli::RotateArgs;
use crate::config::PluginConfig;
use crate::gpbackup::check_timestamp;
use crate::inner::Said;
use crate::keys::{Keyring, Recipients};
use crate::log::{CallLog, Metered};
use crate::message::{hex, human_bytes, human_rate, io_reason};

/// What happened to one object.
#[derive(Debug)]
enum Outcome {
    /// Brought to the current recipients. `armored`: it was stored ASCII-armored, and
    /// is stored binary now.
    Rotated {
        recovered: bool,
        armored: bool,
    },
    /// The journal shows it already is.
    AlreadyDone,
    Failed(String),
}

impl From<String> for Outcome {
    fn from(e: String) -> Self {
        Outcome::Failed(e)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Rewrap,
    Reencrypt,
}

impl Mode {
    fn word(self) -> &'static str {
        match self {
            Mode::Rewrap => "rewrap",
            Mode::Reencrypt => "reencrypt",
        }
    }
}

/// Everything a worker needs to rotate one object of one backup set.
struct Ctx<'a> {
    ts: &'a str,
    store: &'a Store,
    config: &'a PluginConfig,
    keyring: &'a Keyring,
    recipients: &'a Recipients,
    mode: Mode,
    /// The staging directory of this backup set; None when streaming.
    stage: Option<PathBuf>,
    journal: &'a Journal,
    /// Key ids of the current recipients, sorted, comma-separated.
    target: String,
    force: bool,
    check: Check,
    progress: &'a Progress,
    /// Objects that failed because no identity of the keyring opens them: running
    /// the same command again cannot help those.
    unopenable: &'a AtomicUsize,
}

/// Runs `rotate`.
pub fn rotate(args: &RotateArgs) -> Result<()> {
    let config = PluginConfig::load(&args.config_path)?;
    for ts in &args.timestamps {
        check_timestamp(ts)?;
    }
    // Fail fast on unusable keys, before anything is touched.
    let keyring = Keyring::for_operator(&config, &args.identities)?;
    let recipients = Recipients::from_config(&config)?;
    for w in keyring.warnings() {
        eprintln!("gpbackup_age_plugin: warning: {w}");
    }
    let target_ids = recipients.key_ids();
    let target = target_ids.join(",");
    let work = work_root(args.work_dir.as_deref())?;
    let journal = Journal::open(work.join("journal"))?;
    let store = Store::open(&config)?;
    let mode = if args.reencrypt {
        Mode::Reencrypt
    } else {
        Mode::Rewrap
    };

    let mut failed_objects = 0usize;
    let mut failed_sets = 0usize;
    let unopenable = AtomicUsize::new(0);
    for ts in &args.timestamps {
        let Some(set) = discover_or_report(&store, ts, &keyring, "rotate") else {
            failed_sets += 1;
            continue;
        };
        let stage = if args.streaming {
            None
        } else {
            Some(private_dir(&work.join(ts))?)
        };
        let progress = Progress::new(&format!("rotate {ts}"), set.objects.len() as u64);
        let ctx = Ctx {
            ts,
            store: &store,
            config: &config,
            keyring: &keyring,
            recipients: &recipients,
            mode,
            stage,
            journal: &journal,
            target: target.clone(),
            force: args.force,
            check: if args.check_payload {
                Check::Full
            } else {
                Check::Ends
            },
            progress: &progress,
            unopenable: &unopenable,
        };
        let outcomes = for_each_parallel(
            &set.objects,
            args.parallel as usize,
            || Ok(()),
            |_, name| {
                let outcome = rotate_object(&ctx, name);
                if let Outcome::Failed(e) = &outcome {
                    progress.error_line(&format!("gpbackup_age_plugin: rotate {ts}: {name}: {e}"));
                }
                progress.object_done();
                outcome
            },
        );
        progress.finish();
        if let Some(stage) = &ctx.stage {
            // Empty once every object is done; kept copies keep it.
            let _ = std::fs::remove_dir(stage);
        }
        let failed = outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Failed(_)))
            .count();
        failed_objects += failed;
        println!(
            "{}",
            summary(
                &set,
                &outcomes,
                mode,
                &progress,
                &target_ids,
                args.streaming
            )
        );
    }
    if let Some(tally) = failure_tally(failed_objects, failed_sets) {
        bail!(
            "rotate: {tally}{}",
            what_next(failed_objects, unopenable.into_inner())
        );
    }
    Ok(())
}

/// What to do about the failures of a run, for its closing line: a re-run is offered
/// only where it can help, i.e. for objects that failed for another reason than the
/// keyring. Backup sets that could not be read (a wrong timestamp, metadata the keyring
/// does not open) have had their own line already.
fn what_next(failed_objects: usize, unopenable: usize) -> String {
    let keyring = "add the identity that opens them (--identity FILE, or identity_file in the config) and run rotate again";
    match (failed_objects - unopenable, unopenable) {
        (0, 0) => "; see the lines above (check the timestamps, and that the keyring opens each set's gpbackup_<ts>_config.yaml)".into(),
        (0, n) => format!("; no identity of the keyring opens {}: {keyring}", if n == 1 { "it" } else { "them" }),
        (_, 0) => "; re-run the same command to finish (objects already done are skipped)".into(),
        (_, n) => format!("; re-run the same command to finish (objects already done are skipped); {n} of them no identity of the keyring opens: {keyring}"),
    }
}

fn summary(
    set: &BackupSet,
    outcomes: &[Outcome],
    mode: Mode,
    progress: &Progress,
    target_ids: &[String],
    streaming: bool,
) -> String {
    let rotated = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Rotated { .. }))
        .count();
    let recovered = outcomes
        .iter()
        .filter(|o| {
            matches!(
                o,
                Outcome::Rotated {
                    recovered: true,
                    ..
                }
            )
        })
        .count();
    let done = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::AlreadyDone))
        .count();
    let failed = outcomes.len() - rotated - done;
    let secs = progress.elapsed().as_secs_f64();
    let layout = &set.layout;
    format!(
        "rotate {}: {} objects ({} segment{}{}, {}{}): {} {}{}, {} already done, {} failed; {} read in {:.1} s ({}, {}); recipients now: {}",
        layout.timestamp,
        outcomes.len(),
        set.segments,
        if set.segments == 1 { "" } else { "s" },
        if set.probed { " found by probing" } else { "" },
        if layout.single_data_file { "single data file" } else { "file per table" },
        if layout.extension.is_empty() { String::new() } else { format!(", {}", layout.extension) },
        rotated,
        match mode {
            Mode::Rewrap => "re-wrapped",
            Mode::Reencrypt => "re-encrypted",
        },
        if recovered > 0 { format!(" ({recovered} from copies kept by an earlier run)") } else { String::new() },
        done,
        failed,
        human_bytes(progress.bytes()),
        secs,
        human_rate(progress.bytes(), secs),
        if streaming { "streaming" } else { "staged" },
        target_ids
            .iter()
            .map(|id| format!("key {id}"))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// Rotates one object, with a line in the call log.
fn rotate_object(ctx: &Ctx, name: &str) -> Outcome {
    let mut log = CallLog::start(
        match ctx.mode {
            Mode::Rewrap => "rotate",
            Mode::Reencrypt => "rotate_reencrypt",
        },
        &format!("{}/{name}", ctx.ts),
    );
    let moved = Moved::default();
    let result = match &ctx.stage {
        Some(stage) => staged(ctx, name, stage, &moved),
        None => streaming(ctx, name, &moved),
    };
    // Every byte read from and written to storage, failed or not.
    log.bytes_in = moved.read.load(Ordering::Relaxed);
    log.bytes_out = moved.written.load(Ordering::Relaxed);
    for note in moved.notes.lock().map(|n| n.clone()).unwrap_or_default() {
        log.note(note);
    }
    let outcome = match result {
        Ok(outcome) => {
            if let Outcome::Rotated { armored: true, .. } = outcome {
                log.note("the object was ASCII-armored (age -a); it is stored binary now");
            }
            let what = match &outcome {
                Outcome::Rotated {
                    recovered: false, ..
                } => "rotated",
                Outcome::Rotated {
                    recovered: true, ..
                } => "rotated from the copy kept by an earlier run",
                Outcome::AlreadyDone => "already done",
                Outcome::Failed(_) => "failed",
            };
            log.note(format!(
                "{what}; recipients: key {}",
                ctx.target.replace(',', ", key ")
            ));
            log.finish(&Ok(()));
            outcome
        }
        Err(e) => {
            if e.chain().any(|cause| cause.is::<KeyringCannotOpen>()) {
                ctx.unopenable.fetch_add(1, Ordering::Relaxed);
            }
            let e = crate::message::one_line(&format!("{e:#}"));
            log.finish(&Err(anyhow!("{e}")));
            Outcome::Failed(e)
        }
    };
    outcome
}

/// The bytes one object's rotation read from storage and wrote to it, and what the
/// inner plugin said, for its log line.
#[derive(Default)]
struct Moved {
    read: AtomicU64,
    written: AtomicU64,
    notes: Mutex<Vec<String>>,
}

impl Moved {
    fn said(&self, said: Said) {
        if let (Some(note), Ok(mut notes)) = (said.note(), self.notes.lock()) {
            notes.push(note);
        }
    }
}

/// An object that no identity of the keyring opens.
#[derive(Debug)]
struct KeyringCannotOpen(String);

impl std::fmt::Display for KeyringCannotOpen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KeyringCannotOpen {}

/// Explains a header that would not open, with what to do about it during a rotation.
fn rotation_problem(e: &HeaderError) -> anyhow::Error {
    match e {
        HeaderError::NoMatchingKey => anyhow::Error::new(KeyringCannotOpen(format!(
            "{} (if an earlier rotation already re-wrapped it, keep the new identity in identity_file or pass it with --identity)",
            header_problem(e)
        ))),
        other => anyhow!("{}", header_problem(other)),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The files of one object in the staging directory.
struct Staged {
    /// Being fetched (removed if a run dies here).
    fetch: PathBuf,
    /// The verified current ciphertext; exists until the object is replaced.
    orig: PathBuf,
    /// The re-encrypted object (--reencrypt).
    new: PathBuf,
}

impl Staged {
    fn new(dir: &Path, name: &str) -> Staged {
        Staged {
            fetch: dir.join(format!("{name}.fetch")),
            orig: dir.join(format!("{name}.orig")),
            new: dir.join(format!("{name}.new")),
        }
    }
}

/// Staged mode: fetch and verify into a local copy, then overwrite.
fn staged(ctx: &Ctx, name: &str, dir: &Path, moved: &Moved) -> Result<Outcome> {
    let files = Staged::new(dir, name);
    remove_if_exists(&files.fetch)?;
    remove_if_exists(&files.new)?;
    let leftover = files.orig.exists();
    let mut recovered = false;
    let mut armored = false;
    match fetch_to_stage(ctx, name, &files.fetch, moved) {
        Ok(Fetched::AlreadyDone) => {
            // The object is complete and current; a copy kept by an earlier run is stale.
            remove_if_exists(&files.orig)?;
            return Ok(Outcome::AlreadyDone);
        }
        Ok(Fetched::Staged {
            armored: was_armored,
        }) => {
            armored = was_armored;
            std::fs::rename(&files.fetch, &files.orig).map_err(|e| {
                anyhow!(
                    "cannot rename the staged copy to {}: {}",
                    files.orig.display(),
                    io_reason(&e)
                )
            })?;
            sync_dir(dir);
        }
        Err(e) => {
            let _ = std::fs::remove_file(&files.fetch);
            if !leftover {
                return Err(e);
            }
            // An earlier run was interrupted while replacing this object and kept its
            // verified ciphertext; the stored object does not read, so that copy is the
            // object now.
            recovered = true;
        }
    }
    match ctx.mode {
        Mode::Rewrap => replace(ctx, name, &files.orig, moved, |writer| {
            rewrapped_from_file(ctx, &files.orig, writer)
        })?,
        Mode::Reencrypt => {
            reencrypt_file(ctx, name, &files.orig, &files.new)?;
            let result = replace(ctx, name, &files.orig, moved, |writer| {
                let mut src = File::open(&files.new)
                    .with_context(|| format!("cannot read {}", files.new.display()))?;
                let mut capture = HeaderCapture::new(writer);
                copy_all(&mut src, &mut capture)?;
                capture.written()
            });
            let _ = std::fs::remove_file(&files.new);
            result?
        }
    };
    remove_if_exists(&files.orig)?;
    Ok(Outcome::Rotated { recovered, armored })
}

enum Fetched {
    AlreadyDone,
    /// `armored`: the stored object was ASCII-armored (the staged copy is binary).
    Staged {
        armored: bool,
    },
}

/// Fetches the object into `path` (created 0600) while authenticating every payload
/// chunk, and syncs it to disk. Reads only the header when the journal shows the
/// object is done. An ASCII-armored object is staged as the binary age file it holds.
fn fetch_to_stage(ctx: &Ctx, name: &str, path: &Path, moved: &Moved) -> Result<Fetched> {
    let fetch = ctx
        .store
        .fetch_counted(ctx.ts, name, ctx.progress, Some(&moved.read))?;
    let armored = fetch.armored();
    let (header, mut fetch) = fetch.read_header()?;
    let header_bytes = header.encode();
    if is_done(ctx, &header_bytes) {
        fetch.stop();
        return Ok(Fetched::AlreadyDone);
    }
    let file_key = match ctx.keyring.open(&header) {
        Ok(opened) => opened.file_key,
        Err(e) => return Err(fetch.abort(rotation_problem(&e))),
    };
    let mut file = match create_private(path) {
        Ok(f) => f,
        Err(e) => {
            fetch.stop();
            return Err(e);
        }
    };
    let written = file.write_all(&header_bytes);
    let copied = written
        .map_err(CopyError::Output)
        .and_then(|_| copy_checked(&mut fetch.input, &mut file, &file_key, ctx.check));
    drop(file_key);
    match copied {
        Ok(_) => {
            moved.said(fetch.finish()?);
            file.sync_all().map_err(|e| {
                anyhow!(
                    "cannot sync the staged copy {}: {}",
                    path.display(),
                    io_reason(&e)
                )
            })?;
            Ok(Fetched::Staged { armored })
        }
        Err(CopyError::Output(e)) => {
            fetch.stop();
            Err(anyhow!(
                "cannot write the staged copy {}: {}",
                path.display(),
                io_reason(&e)
            ))
        }
        Err(e) => Err(fetch.abort(anyhow!("{e}"))),
    }
}

/// True when the journal shows this header was written by a rotation to the current
/// recipients (never for --reencrypt, which always makes new file keys, or --force).
fn is_done(ctx: &Ctx, header_bytes: &[u8]) -> bool {
    ctx.mode == Mode::Rewrap
        && !ctx.force
        && ctx.journal.contains(&sha256_hex(header_bytes), &ctx.target)
}

/// What an upload wrote: the SHA-256 of the header (for the journal; empty when putting
/// an original back).
struct Written {
    header_hash: String,
}

/// Writes the re-wrapped object from a staged copy to `writer`: a new header for the
/// recipients, then every byte after the old header.
fn rewrapped_from_file(ctx: &Ctx, orig: &Path, writer: &mut dyn Write) -> Result<Written> {
    let file = File::open(orig).with_context(|| format!("cannot read {}", orig.display()))?;
    let mut src = BufReader::with_capacity(super::storage::READ_BUFFER, file);
    let header = Header::read(&mut src).map_err(|e| anyhow!("{}: {e}", orig.display()))?;
    let new_header = rewrap(&header, ctx)?;
    writer.write_all(&new_header)?;
    copy_all(&mut src, writer)?;
    Ok(Written {
        header_hash: sha256_hex(&new_header),
    })
}

/// The header for the current recipients around the same file key, encoded.
fn rewrap(header: &Header, ctx: &Ctx) -> Result<Vec<u8>> {
    let rewrapped = header
        .rewrap(ctx.keyring.identities(), ctx.recipients.keys())
        .map_err(|e| rotation_problem(&e))?;
    Ok(rewrapped.header.encode())
}

/// Decodes the staged copy and encodes it again under a fresh file key into `new`.
fn reencrypt_file(ctx: &Ctx, name: &str, orig: &Path, new: &Path) -> Result<()> {
    let src = File::open(orig).with_context(|| format!("cannot read {}", orig.display()))?;
    let input = BufReader::with_capacity(super::storage::READ_BUFFER, src);
    let mut out = create_private(new)?;
    reencrypt(
        input,
        &mut out,
        name,
        ctx.keyring,
        ctx.recipients,
        ctx.config,
    )
    .map_err(|e| anyhow!("{e}"))?;
    out.sync_all()
        .map_err(|e| anyhow!("cannot sync {}: {}", new.display(), io_reason(&e)))?;
    Ok(())
}

/// Overwrites the stored object with what `write` produces; records the new header in
/// the journal. If the overwrite fails, the staged original is uploaded again; if that
/// fails too, the original is kept in the work directory (and named in the error), so
/// the object is never lost.
fn replace(
    ctx: &Ctx,
    name: &str,
    orig: &Path,
    moved: &Moved,
    write: impl FnOnce(&mut dyn Write) -> Result<Written>,
) -> Result<()> {
    let attempt = put_with(ctx, name, moved, write);
    match attempt {
        Ok(written) => {
            record(ctx, name, &written.header_hash);
            Ok(())
        }
        Err(e) => {
            let put_back = put_with(ctx, name, moved, |writer| {
                let mut src =
                    File::open(orig).with_context(|| format!("cannot read {}", orig.display()))?;
                copy_all(&mut src, writer)?;
                Ok(Written {
                    header_hash: String::new(),
                })
            });
            match put_back {
                Ok(_) => {
                    let _ = std::fs::remove_file(orig);
                    Err(anyhow!(
                        "replacing it failed: {}; the object was put back as it was",
                        crate::message::one_line(&format!("{e:#}"))
                    ))
                }
                Err(e2) => Err(anyhow!(
                    "replacing it failed: {}; putting the original back failed too: {}; the stored object may be damaged: its verified ciphertext is kept at {} (a re-run uploads it; keep the file until then)",
                    crate::message::one_line(&format!("{e:#}")),
                    crate::message::one_line(&format!("{e2:#}")),
                    orig.display()
                )),
            }
        }
    }
}

/// One backup_data call: commits only if `write` succeeds (else the inner plugin is
/// killed before its stdin closes).
fn put_with(
    ctx: &Ctx,
    name: &str,
    moved: &Moved,
    write: impl FnOnce(&mut dyn Write) -> Result<Written>,
) -> Result<Written> {
    let mut writer = ctx.store.put(ctx.ts, name)?;
    let wrote = write(&mut Metered::new(&mut writer, &moved.written));
    match wrote {
        Ok(written) => {
            moved.said(writer.finish()?);
            Ok(written)
        }
        Err(e) => Err(writer.abort(e)),
    }
}

/// Streaming mode: restore_data piped into backup_data, committed only if verified.
fn streaming(ctx: &Ctx, name: &str, moved: &Moved) -> Result<Outcome> {
    let fetch = ctx
        .store
        .fetch_counted(ctx.ts, name, ctx.progress, Some(&moved.read))?;
    let armored = fetch.armored();
    let (header, mut fetch) = fetch.read_header()?;
    let header_bytes = header.encode();
    if is_done(ctx, &header_bytes) {
        fetch.stop();
        return Ok(Outcome::AlreadyDone);
    }
    match ctx.mode {
        Mode::Rewrap => {
            let (new_header, file_key) =
                match header.rewrap(ctx.keyring.identities(), ctx.recipients.keys()) {
                    Ok(rewrapped) => (rewrapped.header.encode(), rewrapped.file_key),
                    Err(e) => return Err(fetch.abort(rotation_problem(&e))),
                };
            let mut writer = match ctx.store.put(ctx.ts, name) {
                Ok(w) => w,
                Err(e) => return Err(fetch.abort(e)),
            };
            let mut out = Metered::new(&mut writer, &moved.written);
            let copied = out
                .write_all(&new_header)
                .map_err(CopyError::Output)
                .and_then(|_| copy_checked(&mut fetch.input, &mut out, &file_key, ctx.check));
            drop(file_key);
            match copied {
                Ok(_) => {
                    match fetch.finish() {
                        Ok(said) => moved.said(said),
                        Err(e) => return Err(writer.abort(e)),
                    }
                    moved.said(writer.finish()?);
                    record(ctx, name, &sha256_hex(&new_header));
                }
                Err(CopyError::Output(e)) => {
                    fetch.stop();
                    return Err(writer.abort(anyhow!("writing: {e}")));
                }
                Err(e) => {
                    drop(writer);
                    return Err(fetch.abort(anyhow!("{e}")));
                }
            }
        }
        Mode::Reencrypt => {
            let mut writer = match ctx.store.put(ctx.ts, name) {
                Ok(w) => w,
                Err(e) => return Err(fetch.abort(e)),
            };
            let mut input = BufReader::new(io::Cursor::new(header_bytes).chain(fetch));
            let mut capture = HeaderCapture::new(Metered::new(&mut writer, &moved.written));
            let result = reencrypt(
                &mut input,
                &mut capture,
                name,
                ctx.keyring,
                ctx.recipients,
                ctx.config,
            );
            let written = capture.written();
            drop(capture);
            let (_, fetch) = input.into_inner().into_inner();
            match result {
                Ok(_) => {
                    match fetch.finish() {
                        Ok(said) => moved.said(said),
                        Err(e) => return Err(writer.abort(e)),
                    }
                    moved.said(writer.finish()?);
                    let written = written?;
                    record(ctx, name, &written.header_hash);
                }
                Err(e) => {
                    drop(writer);
                    return Err(fetch.abort(anyhow!("{e}")));
                }
            }
        }
    }
    Ok(Outcome::Rotated {
        recovered: false,
        armored,
    })
}

/// Records a header written to the current recipients (best effort: a lost entry only
/// means a re-run processes the object again).
fn record(ctx: &Ctx, name: &str, header_hash: &str) {
    if !header_hash.is_empty() {
        ctx.journal.record(
            header_hash,
            ctx.mode.word(),
            &ctx.target,
            &format!("{}/{name}", ctx.ts),
        );
    }
}

/// Passes writes through and keeps the first bytes, to learn the header written.
struct HeaderCapture<W> {
    out: W,
    head: Vec<u8>,
}

/// Enough for any honest header (one X25519 stanza is about 100 bytes).
const CAPTURE: usize = 64 * 1024;

impl<W: Write> HeaderCapture<W> {
    fn new(out: W) -> Self {
        HeaderCapture {
            out,
            head: Vec::new(),
        }
    }

    fn written(&self) -> Result<Written> {
        let header = Header::read(&mut io::Cursor::new(&self.head))
            .map_err(|e| anyhow!("the new object's header: {e}"))?;
        Ok(Written {
            header_hash: sha256_hex(&header.encode()),
        })
    }
}

impl<W: Write> Write for HeaderCapture<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        let keep = (CAPTURE - self.head.len()).min(n);
        self.head.extend_from_slice(&buf[..keep]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Copies with a large buffer (the inner plugin reads from a pipe).
fn copy_all<R: Read, W: Write + ?Sized>(src: &mut R, dst: &mut W) -> io::Result<u64> {
    let mut buf = vec![0u8; super::storage::READ_BUFFER];
    let mut total = 0;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        dst.write_all(&buf[..n])?;
        total += n as u64;
    }
}

/// The journal of headers written by rotations, shared by every backup set of one
/// storage location: `<sha256 of header> <mode> <key ids> <ts>/<name>` per line.
pub struct Journal {
    path: PathBuf,
    done: Mutex<HashSet<String>>,
}

impl Journal {
    fn open(path: PathBuf) -> Result<Journal> {
        let mut done = HashSet::new();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                for line in text.lines() {
                    let mut fields = line.split_whitespace();
                    if let (Some(hash), Some(_mode), Some(target)) =
                        (fields.next(), fields.next(), fields.next())
                    {
                        done.insert(format!("{hash} {target}"));
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => bail!(
                "cannot read the rotation journal {}: {}",
                path.display(),
                io_reason(&e)
            ),
        }
        Ok(Journal {
            path,
            done: Mutex::new(done),
        })
    }

    fn contains(&self, hash: &str, target: &str) -> bool {
        self.done
            .lock()
            .map(|d| d.contains(&format!("{hash} {target}")))
            .unwrap_or(false)
    }

    fn record(&self, hash: &str, mode: &str, target: &str, what: &str) {
        let line = format!("{hash} {mode} {target} {what}\n");
        // One write on a file opened for appending: lines of concurrent workers never
        // interleave.
        let _ = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Ok(mut d) = self.done.lock() {
            d.insert(format!("{hash} {target}"));
        }
    }
}

/// `<work dir>/gpbackup_age_plugin_rotate`, mode 0700: the journal, and a directory per
/// backup timestamp for staged copies. Staged copies are found again by timestamp and
/// name, so a re-run must use the same work directory, and backups of different storage
/// locations that share a timestamp need different work directories.
fn work_root(work_dir: Option<&Path>) -> Result<PathBuf> {
    let base = work_dir
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    private_dir(&base.join("gpbackup_age_plugin_rotate"))
}

/// Creates a directory (and its parents) with mode 0700.
fn private_dir(dir: &Path) -> Result<PathBuf> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| {
            anyhow!(
                "option --work-dir: cannot create {}: {}",
                dir.display(),
                io_reason(&e)
            )
        })?;
    Ok(dir.to_path_buf())
}

/// A new file only this user can read.
fn create_private(path: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| anyhow!("cannot create {}: {}", path.display(), io_reason(&e)))
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(anyhow!(
            "cannot remove {}: {}",
            path.display(),
            io_reason(&e)
        )),
    }
}

/// Makes a rename durable (best effort).
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}
