//! The operator commands that sit beside the plugin API: key generation, key rotation,
//! verification and inspection of stored objects.
//!
//! - [`keygen`]: a new X25519 identity file, in the format of `age-keygen`.
//! - [`backup_set`]: which objects make up a gpbackup backup set, derived from gpbackup's
//!   own metadata files read through the inner plugin (inner plugins cannot list).
//! - [`storage`]: the inner plugin as an object store: fetch and put by basename, the
//!   keyring, key ids.
//! - [`payload`]: copying an object's ciphertext verbatim while authenticating every
//!   chunk, and an in-memory pipe for re-encryption.
//! - [`rotate`]: re-wrapping (or re-encrypting) every object of a backup set, staged or
//!   streaming, with a journal that makes re-runs cheap.
//! - [`verify`]: every object of a backup set decoded end to end into nothing.
//! - [`inspect`]: what one stored object file says about itself.
//! - [`progress`]: the progress bar (terminals only) and the object worker pool.

pub mod backup_set;
pub mod inspect;
pub mod keygen;
pub mod payload;
pub mod progress;
pub mod rotate;
pub mod storage;
pub mod verify;

use anyhow::{bail, Result};

/// A gpbackup timestamp: 14 digits, YYYYMMDDHHMMSS.
pub fn check_timestamp(ts: &str) -> Result<()> {
    if ts.len() != 14 || !ts.bytes().all(|b| b.is_ascii_digit()) {
        bail!("timestamp '{ts}' is not a gpbackup timestamp (14 digits, YYYYMMDDHHMMSS)");
    }
    Ok(())
}

/// Formats a byte count for people (binary units).
pub fn human_bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

/// A rate for people, from bytes and seconds.
pub fn human_rate(bytes: u64, secs: f64) -> String {
    if secs <= 0.0 {
        return "-".into();
    }
    format!("{}/s", human_bytes((bytes as f64 / secs) as u64))
}
