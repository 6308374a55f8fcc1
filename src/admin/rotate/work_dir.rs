//! The work directory of `rotate`: the journal of headers written, and a staging
//! directory per backup set; files in it are created for this user only.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{anyhow, bail, Result};

use crate::message::io_reason;

/// The journal of headers written by rotations, shared by every backup set of one
/// storage location: `<sha256 of header> <mode> <key ids> <ts>/<name>` per line.
pub struct Journal {
    path: PathBuf,
    done: Mutex<HashSet<String>>,
}

impl Journal {
    pub fn open(path: PathBuf) -> Result<Journal> {
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

    pub fn contains(&self, hash: &str, target: &str) -> bool {
        self.done
            .lock()
            .map(|d| d.contains(&format!("{hash} {target}")))
            .unwrap_or(false)
    }

    pub fn record(&self, hash: &str, mode: &str, target: &str, what: &str) {
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
pub fn work_root(work_dir: Option<&Path>) -> Result<PathBuf> {
    let base = work_dir
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    private_dir(&base.join("gpbackup_age_plugin_rotate"))
}

/// Creates a directory (and its parents) with mode 0700.
pub fn private_dir(dir: &Path) -> Result<PathBuf> {
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
pub fn create_private(path: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| anyhow!("cannot create {}: {}", path.display(), io_reason(&e)))
}

pub fn remove_if_exists(path: &Path) -> Result<()> {
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
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}
