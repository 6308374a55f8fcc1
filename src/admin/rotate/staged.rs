//! Staged mode (the default): works with any inner plugin, including one that
//! overwrites in place non-atomically (a plain `cat > object`).
//!
//! The current ciphertext is fetched into `<name>.fetch` under the set's staging
//! directory while its payload is checked, synced to disk and renamed to
//! `<name>.orig`. Only then is the object overwritten. If the overwrite fails, the
//! `.orig` copy is uploaded again; if that fails too, it is kept, named in the error,
//! and a re-run uploads it when the stored object no longer reads. So an object always
//! exists intact in storage or in the work directory, even with an inner plugin that
//! overwrites non-atomically and even if this process is killed.

use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};

use super::copy::{copy_checked, CopyError};
use super::reencrypt::reencrypt;
use super::work_dir::{create_private, remove_if_exists, sync_dir};
use super::{copy_all, open_file, rotation_problem, HeaderCapture, Rotate, Rotated, Written};
use crate::admin::storage::READ_BUFFER;
use crate::admin::sweep::Object;
use crate::age_file::Header;
use crate::log::Metered;
use crate::message::io_reason;

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

/// Rotates one object through the staging directory `dir`.
pub(super) fn rotate(rot: &Rotate, dir: &Path, object: &mut Object) -> Result<Rotated> {
    let files = Staged::new(dir, object.name);
    remove_if_exists(&files.fetch)?;
    remove_if_exists(&files.new)?;
    let leftover = files.orig.exists();
    let mut recovered = false;
    let mut armored = false;
    match fetch_to_stage(rot, object, &files.fetch) {
        Ok(Staging::AlreadyDone) => {
            // The object is complete and current; a copy kept by an earlier run is stale.
            remove_if_exists(&files.orig)?;
            return Ok(Rotated::AlreadyDone);
        }
        Ok(Staging::Staged {
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
    if rot.mode == super::Mode::Rewrap {
        replace(rot, object, &files.orig, |writer| {
            rewrapped_from_file(rot, &files.orig, writer)
        })?;
    } else {
        reencrypt_file(rot, object.name, &files.orig, &files.new)?;
        let result = replace(rot, object, &files.orig, |writer| {
            let mut capture = HeaderCapture::new(writer);
            copy_all(&mut open_file(&files.new)?, &mut capture)?;
            capture.written()
        });
        let _ = std::fs::remove_file(&files.new);
        result?
    }
    remove_if_exists(&files.orig)?;
    Ok(Rotated::Rotated { recovered, armored })
}

enum Staging {
    AlreadyDone,
    /// `armored`: the stored object was ASCII-armored (the staged copy is binary).
    Staged {
        armored: bool,
    },
}

/// Fetches the object into `path` (created 0600) while checking its payload, and syncs
/// it to disk. Reads only the header when the journal shows the object is done. An
/// ASCII-armored object is staged as the binary age file it holds.
fn fetch_to_stage(rot: &Rotate, object: &mut Object, path: &Path) -> Result<Staging> {
    let Some((mut fetch, header, armored)) = rot.fetch_unless_done(object)? else {
        return Ok(Staging::AlreadyDone);
    };
    let file_key = match rot.keyring.open(&header) {
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
    let written = file.write_all(&header.encode());
    let copied = written
        .map_err(CopyError::Output)
        .and_then(|_| copy_checked(&mut fetch.input, &mut file, &file_key, rot.check));
    drop(file_key);
    match copied {
        Ok(_) => {
            object.said(fetch.finish()?);
            file.sync_all().map_err(|e| {
                anyhow!(
                    "cannot sync the staged copy {}: {}",
                    path.display(),
                    io_reason(&e)
                )
            })?;
            Ok(Staging::Staged { armored })
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

/// Writes the re-wrapped object from a staged copy to `writer`: a new header for the
/// recipients, then every byte after the old header.
fn rewrapped_from_file(rot: &Rotate, orig: &Path, writer: &mut dyn Write) -> Result<Written> {
    let mut src = BufReader::with_capacity(READ_BUFFER, open_file(orig)?);
    let header = Header::read(&mut src).map_err(|e| anyhow!("{}: {e}", orig.display()))?;
    let (new_header, _) = rot.rewrap(&header)?;
    writer.write_all(&new_header)?;
    copy_all(&mut src, writer)?;
    Ok(Written::header(&new_header))
}

/// Decodes the staged copy and encodes it again under a fresh file key into `new`.
fn reencrypt_file(rot: &Rotate, name: &str, orig: &Path, new: &Path) -> Result<()> {
    let mut input = BufReader::with_capacity(READ_BUFFER, open_file(orig)?);
    let file_key = Header::read(&mut input)
        .and_then(|header| rot.keyring.open(&header))
        .map_err(|e| anyhow!("{e}"))?
        .file_key;
    let mut out = create_private(new)?;
    reencrypt(file_key, input, &mut out, name, rot.recipients, rot.config)
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
    rot: &Rotate,
    object: &mut Object,
    orig: &Path,
    write: impl FnOnce(&mut dyn Write) -> Result<Written>,
) -> Result<()> {
    let e = match put_with(object, write) {
        Ok(written) => {
            rot.record(object, &written);
            return Ok(());
        }
        Err(e) => e,
    };
    let put_back = put_with(object, |writer| {
        copy_all(&mut open_file(orig)?, writer)?;
        Ok(Written {
            header_hash: String::new(),
        })
    });
    match put_back {
        Ok(_) => {
            let _ = std::fs::remove_file(orig);
            Err(anyhow!(
                "replacing it failed: {}; the object was put back as it was",
                crate::message::error_line(&e)
            ))
        }
        Err(e2) => Err(anyhow!(
            "replacing it failed: {}; putting the original back failed too: {}; the stored object may be damaged: its verified ciphertext is kept at {} (a re-run uploads it; keep the file until then)",
            crate::message::error_line(&e),
            crate::message::error_line(&e2),
            orig.display()
        )),
    }
}

/// One backup_data call: commits only if `write` succeeds (else the inner plugin is
/// killed before its stdin closes).
fn put_with(
    object: &mut Object,
    write: impl FnOnce(&mut dyn Write) -> Result<Written>,
) -> Result<Written> {
    let mut writer = object.put()?;
    let wrote = write(&mut Metered::new(&mut writer, object.written));
    match wrote {
        Ok(written) => {
            object.said(writer.finish()?);
            Ok(written)
        }
        Err(e) => Err(writer.abort(e)),
    }
}
