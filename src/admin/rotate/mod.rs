//! `rotate`: every object of a backup set brought to the config's current recipients.
//!
//! Re-wrapping (the default) keeps the payload byte for byte: the file key is unwrapped
//! with the keyring and wrapped for the new recipients in a new header with a new MAC
//! ([`crate::age_file::Header::rewrap`]), and the 16-byte payload nonce and the STREAM
//! payload follow unchanged. `--reencrypt` decodes and encodes the object again under a
//! fresh file key, through memory only ([`reencrypt`]).
//!
//! How an object is replaced, and what is guaranteed, is the mode's:
//!
//! - [`staged`] (default): the current ciphertext is kept in the work directory,
//!   verified and synced, before the object is overwritten; an object always exists
//!   intact in storage or in the work directory.
//! - [`streaming`] (`--streaming`): restore_data piped into backup_data of the same key,
//!   committed only if the check passed; safe only with an inner plugin that replaces
//!   objects atomically.
//!
//! Before an object is replaced, the payload that will replace it is checked as it
//! goes by ([`copy`]). A journal in the work directory ([`work_dir::Journal`]) records
//! the SHA-256 of every header written, with the key ids of its recipients. A re-run
//! reads each object's header and skips it when the journal shows it was written for
//! the same recipients; everything else is processed again, which is always correct.
//!
//! The walk over the backup sets (discovery, progress, threads, log lines, the summary,
//! the closing tally) is [`super::sweep`]'s.

mod copy;
mod reencrypt;
mod staged;
mod streaming;
mod work_dir;

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use sha2::{Digest, Sha256};

use super::backup_set::BackupSet;
use super::storage::{header_problem, Fetch, Store, READ_BUFFER};
use super::sweep::{
    self, KeyringCannotOpen, Object, Outcome, Read as SetRead, SetCommand, Summary,
};
use crate::age_file::{Header, HeaderError};
use crate::cli::RotateArgs;
use crate::config::PluginConfig;
use crate::gpbackup::check_timestamp;
use crate::keys::{Keyring, Recipients};
use crate::log::CallLog;
use crate::message::hex;
use copy::Check;
use work_dir::{private_dir, work_root, Journal};

/// Runs `rotate`.
pub fn rotate(args: &RotateArgs) -> Result<()> {
    // Run by a person: an age plugin may ask them for a PIN or a touch.
    crate::keys::plugin::answer_on_terminal();
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
    // Listed to people in config order; the journal keeps the sorted form.
    let target_ids = recipients.key_ids_in_config_order();
    let work = work_root(args.work_dir.as_deref())?;
    let journal = Journal::open(work.join("journal"))?;
    let store = Store::open(&config)?;
    let command = Rotate {
        config: &config,
        keyring: &keyring,
        recipients: &recipients,
        mode: if args.reencrypt {
            Mode::Reencrypt
        } else {
            Mode::Rewrap
        },
        streaming: args.streaming,
        work,
        journal: &journal,
        target: recipients.key_ids().join(","),
        target_ids,
        force: args.force,
        check: if args.check_payload {
            Check::Full
        } else {
            Check::Ends
        },
    };
    sweep::run(
        &command,
        &store,
        &keyring,
        &args.timestamps,
        args.parallel as usize,
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Rewrap,
    Reencrypt,
}

/// Everything a worker needs to rotate one object.
struct Rotate<'a> {
    config: &'a PluginConfig,
    keyring: &'a Keyring,
    recipients: &'a Recipients,
    mode: Mode,
    streaming: bool,
    /// The work directory: the journal, and a staging directory per backup set.
    work: PathBuf,
    journal: &'a Journal,
    /// Key ids of the current recipients, sorted, comma-separated (the journal's form).
    target: String,
    /// The same key ids in config order, as the summary lists them.
    target_ids: Vec<String>,
    force: bool,
    check: Check,
}

/// What happened to an object that did not fail.
#[derive(Debug)]
enum Rotated {
    /// Brought to the current recipients. `recovered`: from the copy an interrupted
    /// earlier run kept; `armored`: it was stored ASCII-armored, and is binary now.
    Rotated { recovered: bool, armored: bool },
    /// The journal shows it already is.
    AlreadyDone,
}

impl SetCommand for Rotate<'_> {
    type Done = Rotated;
    /// The staging directory of the set; none when streaming.
    type Set = Option<PathBuf>;

    fn name(&self) -> &'static str {
        "rotate"
    }

    fn log_command(&self) -> &'static str {
        match self.mode {
            Mode::Rewrap => "rotate",
            Mode::Reencrypt => "rotate_reencrypt",
        }
    }

    fn begin_set(&self, set: &BackupSet) -> Result<Option<PathBuf>> {
        if self.streaming {
            return Ok(None);
        }
        private_dir(&self.work.join(&set.layout.timestamp)).map(Some)
    }

    fn object(&self, stage: &Option<PathBuf>, object: &mut Object) -> Result<Rotated> {
        match stage {
            Some(dir) => staged::rotate(self, dir, object),
            None => streaming::rotate(self, object),
        }
    }

    fn log_done(&self, done: &Rotated, log: &mut CallLog) {
        if let Rotated::Rotated { armored: true, .. } = done {
            log.note("the object was ASCII-armored (age -a); it is stored binary now");
        }
        let what = match done {
            Rotated::Rotated {
                recovered: false, ..
            } => "rotated",
            Rotated::Rotated {
                recovered: true, ..
            } => "rotated from the copy kept by an earlier run",
            Rotated::AlreadyDone => "already done",
        };
        log.note(format!(
            "{what}; recipients: key {}",
            self.target.replace(',', ", key ")
        ));
    }

    fn end_set(&self, stage: Option<PathBuf>) {
        if let Some(stage) = stage {
            // Empty once every object is done; kept copies keep it.
            let _ = std::fs::remove_dir(stage);
        }
    }

    fn summary(&self, set: &BackupSet, outcomes: &[Outcome<Rotated>], read: &SetRead) -> Summary {
        let done = || outcomes.iter().filter_map(Outcome::done);
        let rotated = done()
            .filter(|d| matches!(d, Rotated::Rotated { .. }))
            .count();
        let recovered = done()
            .filter(|d| {
                matches!(
                    d,
                    Rotated::Rotated {
                        recovered: true,
                        ..
                    }
                )
            })
            .count();
        let already = done().filter(|d| matches!(d, Rotated::AlreadyDone)).count();
        let layout = &set.layout;
        let mut about = vec![if layout.single_data_file {
            "single data file".to_string()
        } else {
            "file per table".to_string()
        }];
        if !layout.extension.is_empty() {
            about.push(layout.extension.clone());
        }
        let recipients: Vec<String> = self
            .target_ids
            .iter()
            .map(|id| format!("key {id}"))
            .collect();
        Summary::new("rotate", set, &about)
            .line(&[
                format!(
                    "{rotated} {}{}",
                    match self.mode {
                        Mode::Rewrap => "re-wrapped",
                        Mode::Reencrypt => "re-encrypted",
                    },
                    if recovered > 0 {
                        format!(" ({recovered} from copies kept by an earlier run)")
                    } else {
                        String::new()
                    }
                ),
                format!("{already} already done"),
                format!("{} failed", outcomes.len() - rotated - already),
            ])
            .read(
                read,
                &[if self.streaming {
                    "streaming"
                } else {
                    "staged"
                }],
            )
            .list("recipients now: ", &recipients)
    }

    /// A re-run is offered only where it can help, i.e. for objects that failed for
    /// another reason than the keyring. Backup sets that could not be read (a wrong
    /// timestamp, metadata the keyring does not open) have had their own line already.
    fn what_next(&self, failed_objects: usize, unopenable: usize) -> String {
        let keyring = "add the identity that opens them (--identity FILE, or identity_file in the config) and run rotate again";
        match (failed_objects - unopenable, unopenable) {
            (0, 0) => "; see the lines above (check the timestamps, and that the keyring opens each set's gpbackup_<ts>_config.yaml)".into(),
            (0, n) => format!("; no identity of the keyring opens {}: {keyring}", if n == 1 { "it" } else { "them" }),
            (_, 0) => "; re-run the same command to finish (objects already done are skipped)".into(),
            (_, n) => format!("; re-run the same command to finish (objects already done are skipped); {n} of them no identity of the keyring opens: {keyring}"),
        }
    }
}

impl Rotate<'_> {
    /// Starts reading the object, up to its header; stops there when the journal shows
    /// the header was written by a rotation to the current recipients (never for
    /// --reencrypt, which always makes new file keys, or --force). Also says whether the
    /// object is stored ASCII-armored (what is read is the binary age file).
    fn fetch_unless_done<'p>(&self, object: &Object<'p>) -> Result<Option<Fetched<'p>>> {
        let fetch = object.fetch()?;
        let armored = fetch.armored();
        let (header, fetch) = fetch.read_header()?;
        if self.mode == Mode::Rewrap
            && !self.force
            && self
                .journal
                .contains(&sha256_hex(&header.encode()), &self.target)
        {
            fetch.stop();
            return Ok(None);
        }
        Ok(Some((fetch, header, armored)))
    }

    /// The header for the current recipients around the same file key, encoded, and
    /// that file key, which still seals the payload.
    fn rewrap(&self, header: &Header) -> Result<(Vec<u8>, age_core::format::FileKey)> {
        let rewrapped = header
            .rewrap(self.keyring.identities(), self.recipients.keys())
            .map_err(|e| rotation_problem(&e))?;
        Ok((rewrapped.header.encode(), rewrapped.file_key))
    }

    /// Records a header written to the current recipients (best effort: a lost entry
    /// only means a re-run processes the object again).
    fn record(&self, object: &Object, written: &Written) {
        if !written.header_hash.is_empty() {
            let mode = match self.mode {
                Mode::Rewrap => "rewrap",
                Mode::Reencrypt => "reencrypt",
            };
            self.journal.record(
                &written.header_hash,
                mode,
                &self.target,
                &format!("{}/{}", object.ts, object.name),
            );
        }
    }
}

/// An object being read, past its header; and whether it is stored ASCII-armored.
type Fetched<'p> = (Fetch<'p>, Header, bool);

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

/// What an upload wrote: the SHA-256 of the header (for the journal; empty when putting
/// an original back).
struct Written {
    header_hash: String,
}

impl Written {
    fn header(encoded: &[u8]) -> Written {
        Written {
            header_hash: sha256_hex(encoded),
        }
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
        Ok(Written::header(&header.encode()))
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
    let mut buf = vec![0u8; READ_BUFFER];
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

/// Opens `path` for reading, saying which file could not be.
fn open_file(path: &Path) -> Result<std::fs::File> {
    use anyhow::Context;
    std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))
}
