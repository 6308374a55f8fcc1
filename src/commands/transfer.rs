//! Commands that move data: every byte is encoded on the way to the inner plugin and
//! decoded and verified on the way back.
//!
//! Files travel through the inner plugin's *data* commands under the same path:
//! inner plugins key files and data streams alike by the path's last components, so
//! the ciphertext lands under the same storage key as the plaintext would have, and
//! the local file is only ever read, never replaced by ciphertext.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{anyhow, bail, Context, Result};

use super::feeder::{self, Feeder};
use crate::age_file::{AgeInput, Encoding};
use crate::commands::call;
use crate::config::PluginConfig;
use crate::gpbackup::object_name;
use crate::inner::{InnerPlugin, InnerReader};
use crate::keys::{Keyring, Recipients};
use crate::log::{CallLog, Metered};
use crate::message::io_reason;
use crate::pipeline::encode::EncodeError;
use crate::pipeline::{self, ByteRanges, DecodeOptions, EncodeOptions};

/// backup_data: stdin to the inner plugin's backup_data under the same key.
pub fn backup_data(config_path: &Path, key: &str) -> Result<()> {
    // Who feeds us, as it was at the start: at end of input its state tells an abort
    // from a complete stream (see `feeder`).
    let feeder = Feeder::at_start();
    call("backup_data", key, |log| {
        let stdin = io::stdin().lock();
        backup(config_path, key, stdin, Some(&feeder), log)
    })
}

/// backup_file: the local file, read only, to the inner plugin under the same path.
pub fn backup_file(config_path: &Path, path: &Path) -> Result<()> {
    let key = path.to_string_lossy();
    call("backup_file", &key, |log| {
        let file = File::open(path).map_err(|e| anyhow!("cannot open it: {}", io_reason(&e)))?;
        if !file.metadata().map(|m| m.is_file()).unwrap_or(false) {
            bail!("not a regular file");
        }
        backup(config_path, &key, file, None, log)
    })
}

fn backup(
    config_path: &Path,
    key: &str,
    mut input: impl io::Read,
    feeder: Option<&Feeder>,
    log: &mut CallLog,
) -> Result<()> {
    let config = PluginConfig::load(config_path)?;
    let name = object_name(key)?;
    let recipients = Recipients::from_config(&config)?;
    let inner = InnerPlugin::new(&config)?;
    let opts = EncodeOptions::from_config(&config);
    // A small object (most tables) is read and sealed whole first, then handed to the
    // inner plugin in one go: see `InnerPlugin::backup_data_whole`.
    // Grown as it fills, not a `ReadBuf` of the whole limit: most calls are small, and
    // mapping 512 KiB up front would cost every one of them a mapping.
    let mut head = Vec::new();
    let read = (&mut input)
        .take(WHOLE_OBJECT_LIMIT as u64 + 1)
        .read_to_end(&mut head);
    log.bytes_in = head.len() as u64;
    read.map_err(|e| anyhow!(EncodeError::Input(e)))?;
    if head.len() <= WHOLE_OBJECT_LIMIT {
        let mut sealed = Vec::new();
        let (_, report) = pipeline::encode(&head[..], &mut sealed, name, recipients.keys(), &opts)
            .map_err(|e| anyhow!(e))?;
        log_encoded(log, &report);
        feeder::check(feeder)?;
        inner.backup_data_whole(key, &sealed)?.log(log);
        return Ok(());
    }
    // Counted as they move, for the log line of a call that fails half way.
    let (bytes_in, bytes_out) = (AtomicU64::new(0), AtomicU64::new(0));
    let input = Metered::new(io::Cursor::new(head).chain(input), &bytes_in);
    let mut writer = inner.backup_data(key)?;
    let encoded = pipeline::encode(
        input,
        Metered::new(&mut writer, &bytes_out),
        name,
        recipients.keys(),
        &opts,
    );
    log.bytes_in = bytes_in.load(Ordering::Relaxed);
    log.bytes_out = bytes_out.load(Ordering::Relaxed);
    match encoded {
        Ok((_, report)) => {
            log_encoded(log, &report);
            match feeder::check(feeder) {
                Ok(()) => {
                    writer.finish()?.log(log);
                    Ok(())
                }
                Err(aborted) => {
                    // Killed before its stdin closes: the inner plugin commits nothing.
                    drop(writer);
                    Err(aborted)
                }
            }
        }
        // Killed before its stdin closes: the inner plugin commits nothing. A write
        // that failed is explained by the inner plugin; a failure of ours by ours.
        Err(e @ EncodeError::Output(_)) => Err(writer.abort(anyhow!(e))),
        Err(ours) => {
            drop(writer);
            Err(anyhow!(ours))
        }
    }
}

/// Objects up to this size are sealed whole before the inner plugin starts; their
/// ciphertext (at most a few KiB more) fits the 1 MiB pipe we ask for.
const WHOLE_OBJECT_LIMIT: usize = 512 * 1024;

fn log_encoded(log: &mut CallLog, report: &pipeline::encode::EncodeReport) {
    log.bytes_in = report.bytes_in;
    log.bytes_out = report.bytes_out;
    log.note(format!(
        "frames={} stored={} workers={} in_flight={}",
        report.frames, report.stored_frames, report.workers, report.frames_in_flight
    ));
}

/// restore_data and restore_data_subset: the object, decoded, to stdout.
pub fn restore_data(config_path: &Path, key: &str, offsets: Option<&Path>) -> Result<()> {
    let command = if offsets.is_some() {
        "restore_data_subset"
    } else {
        "restore_data"
    };
    call(command, key, |log| {
        let ranges = offsets
            .map(|path| {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| anyhow!("offsets file {}: {}", path.display(), io_reason(&e)))?;
                ByteRanges::parse(&text)
                    .map_err(|e| anyhow!("offsets file {}: {e}", path.display()))
            })
            .transpose()?;
        // Write to the descriptor itself: Rust's stdout is line-buffered.
        let stdout = io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .map(File::from)
            .context("cannot use stdout")?;
        restore(config_path, key, stdout, ranges.as_ref(), log)
    })
}

/// restore_file: the object, decoded and verified, left at the path. It is written
/// next to the path and renamed into place only once verified.
pub fn restore_file(config_path: &Path, path: &Path) -> Result<()> {
    let key = path.to_string_lossy();
    call("restore_file", &key, |log| {
        let name = object_name(&key)?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow!("cannot create {}: {}", dir.display(), io_reason(&e)))?;
        if path.is_dir() {
            bail!("is a directory");
        }
        let partial = PartialFile::create(dir, name)
            .map_err(|e| anyhow!("cannot write in {}: {}", dir.display(), io_reason(&e)))?;
        let out = partial
            .file
            .try_clone()
            .context("cannot reopen the partial file")?;
        restore(config_path, &key, out, None, log)?;
        partial
            .commit(path)
            .map_err(|e| anyhow!("cannot rename into place: {}", io_reason(&e)))
    })
}

fn restore(
    config_path: &Path,
    key: &str,
    out: File,
    ranges: Option<&ByteRanges>,
    log: &mut CallLog,
) -> Result<()> {
    let config = PluginConfig::load(config_path)?;
    let name = object_name(key)?;
    let inner = InnerPlugin::new(&config)?;
    let reader = inner.restore_data(key)?;
    // Loaded while the inner plugin starts, not before: a small restore waits on it.
    // On failure, dropping `reader` stops the inner plugin.
    let keyring = Keyring::from_config(&config)?;
    keyring.warnings().iter().for_each(|w| log.note(w));
    // Only for a look at the first bytes: larger reads go around it.
    let input = match AgeInput::open(BufReader::with_capacity(8 * 1024, reader)) {
        Ok(input) => input,
        Err((e, input)) => {
            let ours = anyhow!("reading from the inner plugin: {e}");
            return Err(input.into_inner().abort(ours));
        }
    };
    // Counted as it is written, for the log line of a call that stops half way.
    let written = AtomicU64::new(0);
    let out = Metered::new(out, &written);
    let result = match input.encoding() {
        Encoding::Binary | Encoding::Armored => {
            if input.encoding() == Encoding::Armored {
                log.note("ASCII-armored age file (age -a)");
            }
            decoded(input, out, &keyring, name, ranges, &config, log)
        }
        _ if config.allow_plaintext_restore => {
            log.note("plaintext object passed through (allow_plaintext_restore)");
            passthrough(input, out, ranges, log)
        }
        Encoding::Empty => Err(input.into_inner().into_inner().abort(anyhow!(
            "the inner plugin returned an empty object (not one written by gpbackup_age_plugin)"
        ))),
        _ => Err(input.into_inner().into_inner().abort(anyhow!(
            "object is not encrypted by gpbackup_age_plugin (no age header); if it is an old unencrypted backup, set allow_plaintext_restore: \"on\" to read it as is"
        ))),
    };
    log.bytes_out = written.load(Ordering::Relaxed);
    result.map(|ending| {
        if let Ending::ReaderGone = ending {
            log.set_outcome(format!(
                "the reader closed the stream after {} bytes",
                log.bytes_out
            ));
        }
    })
}

/// How a restore that did not fail ended.
enum Ending {
    /// Everything asked for was written.
    Done,
    /// The reader closed the stream before the end (see [`reader_gone`]).
    ReaderGone,
}

type ObjectInput = AgeInput<BufReader<InnerReader>>;

/// Decodes and verifies an age file from the inner plugin, then ends the inner plugin
/// as the outcome says: waited for after a complete read, stopped after a subset
/// restore has what it needs or after a failure.
fn decoded(
    mut input: ObjectInput,
    out: impl Write + Send,
    keyring: &Keyring,
    name: &str,
    ranges: Option<&ByteRanges>,
    config: &PluginConfig,
    log: &mut CallLog,
) -> Result<Ending> {
    let opts = DecodeOptions {
        ranges,
        ..DecodeOptions::from_config(config, name)
    };
    let decoded = pipeline::decode(&mut input, out, keyring.identities(), &opts);
    log.bytes_in = input.with_inner(|r| r.get_ref().bytes_read());
    let reader = input.into_inner().into_inner();
    match decoded {
        Ok(report) => {
            log.note(format!(
                "frames={} workers={} in_flight={} sha256_checked={}",
                report.frames, report.workers, report.frames_in_flight, report.sha256_checked
            ));
            let said = if report.trailer.is_some() {
                reader.finish_verified()?
            } else {
                // A subset restore that has all its ranges stops reading early.
                reader.stop()?
            };
            said.log(log);
            Ok(Ending::Done)
        }
        Err(e) if e.is_reader_gone() => Ok(reader_gone(reader, log)),
        Err(e) => Err(reader.abort(anyhow!(e.explain(keyring.files(), name)))),
    }
}

/// Our reader closed the stream (EPIPE). gpbackup_helper never reads a restore to its
/// end: it exits once it has its tables. That is not a failure: the inner plugin is
/// stopped, the call log says what happened, and the call succeeds with nothing on
/// stderr (nobody is left to read it).
fn reader_gone(reader: InnerReader, log: &mut CallLog) -> Ending {
    match reader.stop() {
        Ok(said) => said.log(log),
        Err(theirs) => log.note(format!("{theirs:#}")),
    }
    Ending::ReaderGone
}

/// Old unencrypted objects, read as they are (migration only): the whole stream, or
/// the ranges of it, by the same range rules as a decoded subset.
fn passthrough(
    mut input: ObjectInput,
    mut out: impl Write,
    ranges: Option<&ByteRanges>,
    log: &mut CallLog,
) -> Result<Ending> {
    let copied = copy_ranges(&mut input, &mut out, ranges);
    log.bytes_in = input.with_inner(|r| r.get_ref().bytes_read());
    let reader = input.into_inner().into_inner();
    match copied {
        // Nothing here was verified, so any text on the inner plugin's stderr fails
        // the restore, as it would fail it for gprestore.
        Ok(()) => {
            reader.finish()?.log(log);
            Ok(Ending::Done)
        }
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(reader_gone(reader, log)),
        Err(e) => Err(reader.abort(anyhow!("{e}"))),
    }
}

/// Copies `input` to `out`, or only `ranges` of it; reads `input` to its end either way
/// (the inner plugin's exit and stderr are all there is to check a plaintext by).
fn copy_ranges(
    input: &mut impl Read,
    out: &mut impl Write,
    ranges: Option<&ByteRanges>,
) -> io::Result<()> {
    let Some(ranges) = ranges else {
        io::copy(input, out)?;
        return Ok(());
    };
    let mut buf = vec![0u8; 256 * 1024];
    let mut offset = 0u64;
    while offset < ranges.end() {
        let n = match input.read(&mut buf) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    ranges
                        .check_reach(offset)
                        .err()
                        .map_or_else(|| "the object ended early".to_string(), |e| e.to_string()),
                ))
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        for part in ranges.within(offset, n as u64) {
            out.write_all(&buf[part])?;
        }
        offset += n as u64;
    }
    io::copy(input, &mut io::sink())?;
    Ok(())
}

/// A file being restored, under a temporary name beside its destination; removed
/// unless committed.
struct PartialFile {
    path: PathBuf,
    file: File,
    committed: bool,
}

impl PartialFile {
    fn create(dir: &Path, name: &str) -> io::Result<PartialFile> {
        let path = dir.join(format!(
            ".{name}.gpbackup_age_plugin.{}.partial",
            std::process::id()
        ));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok(PartialFile {
            path,
            file,
            committed: false,
        })
    }

    fn commit(mut self, to: &Path) -> io::Result<()> {
        self.file.sync_all()?;
        std::fs::rename(&self.path, to)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
