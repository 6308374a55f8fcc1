//! gpbackup's own conventions that our commands check: what a backup timestamp looks
//! like, and the name an object is stored under.

use std::path::Path;

use anyhow::{anyhow, bail, Result};

/// A gpbackup timestamp: 14 digits, YYYYMMDDHHMMSS.
pub fn check_timestamp(ts: &str) -> Result<()> {
    if ts.len() != 14 || !ts.bytes().all(|b| b.is_ascii_digit()) {
        bail!("timestamp '{ts}' is not a gpbackup timestamp (14 digits, YYYYMMDDHHMMSS)");
    }
    Ok(())
}

/// The object name a path or data_filekey is stored under: its basename (inner plugins
/// key objects by the path's last components, gpbackup_s3_plugin by the basename).
pub fn object_name(key: &str) -> Result<&str> {
    Path::new(key)
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| anyhow!("'{key}' has no file name to store the object under"))
}
