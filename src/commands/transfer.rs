//! Commands that move data: every byte is encoded on the way to the inner plugin and
//! decoded and verified on the way back.
//!
//! Files travel through the inner plugin's *data* commands under the same path:
//! inner plugins key files and data streams alike by the path's last components, so
//! the ciphertext lands under the same storage key as the plaintext would have, and
//! the local file is only ever read, never replaced by ciphertext.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use super::feeder::{self, Feeder};
use super::{logged, object_name};
use crate::config::{io_reason, PluginConfig};
use crate::inner::InnerPlugin;
use crate::keys;
use crate::log::CallLog;
use crate::pipeline::decode::looks_like_age;
use crate::pipeline::encode::EncodeError;
use crate::pipeline::{self, ByteRanges, DecodeOptions, EncodeOptions, DEFAULT_FRAME_SIZE};

/// backup_data: stdin to the inner plugin's backup_data under the same key.
pub fn backup_data(config_path: &Path, key: &str) -> Result<()> {
    // Who feeds us, as it was at the start: at end of input its state tells an abort
    // from a complete stream (see `feeder`).
    let feeder = Feeder::at_start();
    logged("backup_data", key, |log| {
        let stdin = io::stdin().lock();
        backup(config_path, key, stdin, Some(&feeder), log)
            .with_context(|| format!("backup_data {key}"))
    })
}

/// backup_file: the local file, read only, to the inner plugin under the same path.
pub fn backup_file(config_path: &Path, path: &Path) -> Result<()> {
    let key = path.to_string_lossy();
    logged("backup_file", &key, |log| {
        let file = File::open(path).map_err(|e| {
            anyhow!(
                "backup_file {}: cannot open it: {}",
                path.display(),
                io_reason(&e)
            )
        })?;
        if !file.metadata().map(|m| m.is_file()).unwrap_or(false) {
            bail!("backup_file {}: not a regular file", path.display());
        }
        backup(config_path, &key, file, None, log)
            .with_context(|| format!("backup_file {}", path.display()))
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
    let recipients = keys::load_recipients(
        config.recipients.as_deref(),
        config.recipients_file.as_deref(),
    )?;
    let inner = InnerPlugin::new(&config)?;
    let opts = EncodeOptions {
        compression: config.compression,
        workers: config.workers,
        frame_size: DEFAULT_FRAME_SIZE,
    };
    // A small object (most tables) is read and sealed whole first, then handed to the
    // inner plugin in one go: see `InnerPlugin::write_whole`.
    // Grown as it fills, not a `ReadBuf` of the whole limit: most calls are small, and
    // mapping 512 KiB up front would cost every one of them a mapping.
    let mut head = Vec::new();
    (&mut input)
        .take(WHOLE_OBJECT_LIMIT as u64 + 1)
        .read_to_end(&mut head)
        .map_err(|e| anyhow!(EncodeError::Input(e)))?;
    if head.len() <= WHOLE_OBJECT_LIMIT {
        let mut sealed = Vec::new();
        let (_, report) = pipeline::encode(&head[..], &mut sealed, name, &recipients, &opts)
            .map_err(|e| anyhow!(e))?;
        log_encoded(log, &report);
        feeder::check(feeder)?;
        return inner.write_whole("backup_data", &[key], &sealed);
    }
    let input = io::Cursor::new(head).chain(input);
    let mut writer = inner.writer("backup_data", &[key])?;
    match pipeline::encode(input, &mut writer, name, &recipients, &opts) {
        Ok((_, report)) => {
            log_encoded(log, &report);
            match feeder::check(feeder) {
                Ok(()) => writer.finish(),
                Err(aborted) => {
                    // Killed before its stdin closes: the inner plugin commits nothing.
                    let _ = writer.abort();
                    Err(aborted)
                }
            }
        }
        Err(e) => {
            // Killed before its stdin closes: the inner plugin commits nothing.
            let inner_failure = writer.abort();
            Err(match (e, inner_failure) {
                (EncodeError::Output(_), Some(theirs)) => theirs,
                (ours, _) => anyhow!(ours),
            })
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
        "frames={} stored={}",
        report.frames, report.stored_frames
    ));
}

/// restore_data and restore_data_subset: the object, decoded, to stdout.
pub fn restore_data(config_path: &Path, key: &str, offsets: Option<&Path>) -> Result<()> {
    let command = if offsets.is_some() {
        "restore_data_subset"
    } else {
        "restore_data"
    };
    logged(command, key, |log| {
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
            .with_context(|| format!("{command} {key}"))
    })
}

/// restore_file: the object, decoded and verified, left at the path. It is written
/// next to the path and renamed into place only once verified.
pub fn restore_file(config_path: &Path, path: &Path) -> Result<()> {
    let key = path.to_string_lossy();
    logged("restore_file", &key, |log| {
        let name = object_name(&key)?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| {
            anyhow!(
                "restore_file {}: cannot create {}: {}",
                path.display(),
                dir.display(),
                io_reason(&e)
            )
        })?;
        if path.is_dir() {
            bail!("restore_file {}: is a directory", path.display());
        }
        let partial = PartialFile::create(dir, name).map_err(|e| {
            anyhow!(
                "restore_file {}: cannot write in {}: {}",
                path.display(),
                dir.display(),
                io_reason(&e)
            )
        })?;
        let out = partial.file.try_clone().context("restore_file")?;
        restore(config_path, &key, out, None, log)
            .with_context(|| format!("restore_file {}", path.display()))?;
        partial.commit(path).map_err(|e| {
            anyhow!(
                "restore_file {}: cannot rename into place: {}",
                path.display(),
                io_reason(&e)
            )
        })
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
    let reader = inner.reader("restore_data", &[key])?;
    // Loaded while the inner plugin starts, not before: a small restore waits on it.
    // On failure, dropping `reader` stops the inner plugin.
    let (identities, warnings) = keys::load_identities(&config.identity_files)?;
    warnings.0.into_iter().for_each(|w| log.note(w));
    // Only for a look at the first bytes: larger reads go around it.
    let mut input = BufReader::with_capacity(8 * 1024, reader);

    let head = match input.fill_buf() {
        Ok(head) => head.to_vec(),
        Err(e) => return Err(fail(input, anyhow!("reading from the inner plugin: {e}"))),
    };
    if !looks_like_age(&head) {
        if !config.allow_plaintext_restore {
            return Err(fail(
                input,
                if head.is_empty() {
                    anyhow!("the inner plugin returned an empty object (not one written by gpbackup_age_plugin)")
                } else {
                    anyhow!(
                    "object is not encrypted by gpbackup_age_plugin (no age header); if it is an old unencrypted backup, set allow_plaintext_restore: \"on\" to read it as is"
                )
                },
            ));
        }
        log.note("plaintext object passed through (allow_plaintext_restore)");
        return passthrough(input, out, ranges, log);
    }
    let opts = DecodeOptions {
        workers: config.workers,
        expected_name: Some(name),
        ranges,
    };
    match pipeline::decode(&mut input, out, &identities, &opts) {
        Ok(report) => {
            log.bytes_in = input.get_ref().bytes_read();
            log.bytes_out = report.bytes_out;
            log.note(format!("frames={}", report.frames));
            if report.trailer.is_some() {
                input.into_inner().finish()
            } else {
                // A subset restore that has all its ranges stops reading early.
                match input.into_inner().abort(None) {
                    Some(e) => Err(e),
                    None => Ok(()),
                }
            }
        }
        Err(e) => Err(fail(input, anyhow!(e))),
    }
}

/// Stops the inner plugin after a failure; its own failure explains more, if any.
fn fail(input: BufReader<crate::inner::InnerReader>, ours: anyhow::Error) -> anyhow::Error {
    input
        .into_inner()
        .abort(Some(ours))
        .unwrap_or_else(|| anyhow!("restore failed"))
}

/// Old unencrypted objects, read as they are (migration only).
fn passthrough(
    mut input: BufReader<crate::inner::InnerReader>,
    mut out: File,
    ranges: Option<&ByteRanges>,
    log: &mut CallLog,
) -> Result<()> {
    let mut data = Vec::new();
    if let Some(ranges) = ranges {
        io::Read::read_to_end(&mut input, &mut data)?;
        for &(s, e) in ranges.ranges() {
            let slice = data.get(s as usize..e as usize).ok_or_else(|| {
                anyhow!(
                    "range [{s}, {e}) is beyond the object's {} bytes",
                    data.len()
                )
            })?;
            out.write_all(slice)?;
            log.bytes_out += slice.len() as u64;
        }
    } else {
        log.bytes_out = io::copy(&mut input, &mut out)?;
    }
    input.into_inner().finish()
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
