//! The inner plugin as an object store for the operator commands.
//!
//! Objects are addressed by timestamp and basename. The path handed to the inner plugin
//! is `/gpbackup_age_plugin_admin/backups/<YYYYMMDD>/<ts>/<basename>`: inner plugins key
//! objects on the last components of the path (gpbackup_s3_plugin on
//! `backups/<date>/<ts>/<basename>` under its folder, the example plugin on
//! `<date>/<ts>/<basename>`), so this reaches the object gpbackup stored from whatever
//! segment directory, as gprestore does on a different cluster. Only the inner plugin's
//! data commands are used (`restore_data`, `backup_data`), which never touch the local
//! path.

use std::io::{BufReader, Read};
use std::sync::atomic::AtomicU64;

use anyhow::{anyhow, Result};

use super::progress::{Counted, Progress};
use crate::age_file::{AgeInput, Encoding, Header, HeaderError};
use crate::config::PluginConfig;
use crate::inner::{InnerPlugin, InnerReader, InnerWriter, Said};
use crate::keys::{Keyring, Opened};

/// The directory part of every object path the operator commands hand the inner plugin.
pub const ADMIN_ROOT: &str = "/gpbackup_age_plugin_admin";

/// Read buffer for objects coming from the inner plugin.
pub const READ_BUFFER: usize = 1 << 20;

/// The path under which the inner plugin finds object `basename` of backup `ts`.
pub fn object_path(ts: &str, basename: &str) -> String {
    format!(
        "{ADMIN_ROOT}/backups/{}/{ts}/{basename}",
        &ts[..8.min(ts.len())]
    )
}

/// Explains a header that would not open.
pub fn header_problem(e: &HeaderError) -> String {
    match e {
        HeaderError::NoMatchingKey => "no identity in the keyring opens it".into(),
        HeaderError::NotAge => {
            "not an age-encrypted object (not written by gpbackup_age_plugin)".into()
        }
        other => other.to_string(),
    }
}

/// The inner plugin, addressed by timestamp and basename.
pub struct Store {
    inner: InnerPlugin,
}

/// An object being read from the inner plugin, as a binary age file (an ASCII-armored
/// one is decoded on the way).
pub struct Fetch<'p> {
    pub input: AgeInput<BufReader<Counted<'p, InnerReader>>>,
}

impl Store {
    pub fn open(config: &PluginConfig) -> Result<Store> {
        Ok(Store {
            inner: InnerPlugin::new(config)?,
        })
    }

    /// Starts reading an object (the inner plugin's restore_data), up to its first
    /// bytes, which say how it is encoded.
    pub fn fetch<'p>(&self, ts: &str, basename: &str, progress: &'p Progress) -> Result<Fetch<'p>> {
        self.fetch_counted(ts, basename, progress, None)
    }

    /// [`Store::fetch`], adding the bytes read to `count` too (an object's log line).
    pub fn fetch_counted<'p>(
        &self,
        ts: &str,
        basename: &str,
        progress: &'p Progress,
        count: Option<&'p AtomicU64>,
    ) -> Result<Fetch<'p>> {
        let reader = self.inner.restore_data(&object_path(ts, basename))?;
        let input = BufReader::with_capacity(READ_BUFFER, Counted::new(reader, progress, count));
        match AgeInput::open(input) {
            Ok(input) => Ok(Fetch { input }),
            Err((e, input)) => Err(input.into_inner().into_inner().abort(anyhow!(
                "reading from the inner plugin: {}",
                crate::message::io_reason(&e)
            ))),
        }
    }

    /// Starts writing an object (the inner plugin's backup_data). Dropping the writer
    /// without finishing it kills the inner plugin first, so it commits nothing.
    pub fn put(&self, ts: &str, basename: &str) -> Result<InnerWriter> {
        self.inner.backup_data(&object_path(ts, basename))
    }
}

impl<'p> Fetch<'p> {
    /// Reads the age header. On failure the inner plugin is stopped, and its own failure
    /// (e.g. the object does not exist) explains more than ours.
    pub fn read_header(mut self) -> Result<(Header, Fetch<'p>)> {
        match Header::read(&mut self.input) {
            Ok(header) => Ok((header, self)),
            Err(e) => {
                let ours = anyhow!("{}", header_problem(&e));
                Err(self.abort(ours))
            }
        }
    }

    /// Reads the age header and opens it with the keyring: the file key and which
    /// identity opened it, and the fetch positioned at the payload nonce, ready for
    /// [`crate::pipeline::decode_opened`]. On failure the inner plugin is stopped.
    pub fn open(self, keyring: &Keyring) -> Result<(Opened, Fetch<'p>)> {
        let (header, fetch) = self.read_header()?;
        match keyring.open(&header) {
            Ok(opened) => Ok((opened, fetch)),
            Err(e) => Err(fetch.abort(anyhow!("{}", header_problem(&e)))),
        }
    }

    /// True when the stored object is ASCII-armored.
    pub fn armored(&self) -> bool {
        self.input.encoding() == Encoding::Armored
    }

    fn into_reader(self) -> InnerReader {
        self.input.into_inner().into_inner().into_inner()
    }

    /// The stream was read to its end and verified: the inner plugin must exit cleanly
    /// (text on its stderr is for the call log, as for a verified restore).
    pub fn finish(self) -> Result<Said> {
        self.into_reader().finish_verified()
    }

    /// Stops the inner plugin after `ours` went wrong; returns the better explanation.
    pub fn abort(self, ours: anyhow::Error) -> anyhow::Error {
        self.into_reader().abort(ours)
    }

    /// Stops the inner plugin without a failure (only part of the object was wanted);
    /// whatever it did or said then does not matter.
    pub fn stop(self) {
        let _ = self.into_reader().stop();
    }
}

impl Read for Fetch<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.input.read(buf)
    }
}
