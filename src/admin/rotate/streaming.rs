//! Streaming mode (`--streaming`): each object is piped from restore_data straight into
//! backup_data of the same object, and the new object is committed only if the check
//! passed (otherwise the inner plugin is killed before its stdin closes). Nothing is
//! staged; safe only with an inner plugin that replaces an object atomically.

use std::io::Write;

use anyhow::{anyhow, Result};

use super::copy::{copy_checked, CopyError};
use super::reencrypt::reencrypt;
use super::{HeaderCapture, Mode, Rotate, Rotated, Written};
use crate::admin::storage::Fetch;
use crate::admin::sweep::Object;
use crate::inner::InnerWriter;
use crate::log::Metered;

/// Rotates one object by piping it back into storage.
pub(super) fn rotate(rot: &Rotate, object: &mut Object) -> Result<Rotated> {
    let Some((mut fetch, header, armored)) = rot.fetch_unless_done(object)? else {
        return Ok(Rotated::AlreadyDone);
    };
    let written = object.written;
    match rot.mode {
        Mode::Rewrap => {
            let (new_header, file_key) = match rot.rewrap(&header) {
                Ok(rewrapped) => rewrapped,
                Err(e) => return Err(fetch.abort(e)),
            };
            let mut writer = match object.put() {
                Ok(w) => w,
                Err(e) => return Err(fetch.abort(e)),
            };
            let mut out = Metered::new(&mut writer, written);
            let copied = out
                .write_all(&new_header)
                .map_err(CopyError::Output)
                .and_then(|_| copy_checked(&mut fetch.input, &mut out, &file_key, rot.check));
            drop(file_key);
            match copied {
                Ok(_) => commit(rot, object, fetch, writer, Ok(Written::header(&new_header)))?,
                Err(CopyError::Output(e)) => {
                    fetch.stop();
                    return Err(writer.abort(anyhow!("writing: {}", crate::message::io_reason(&e))));
                }
                Err(e) => {
                    drop(writer);
                    return Err(fetch.abort(anyhow!("{e}")));
                }
            }
        }
        Mode::Reencrypt => {
            let mut writer = match object.put() {
                Ok(w) => w,
                Err(e) => return Err(fetch.abort(e)),
            };
            let file_key = match rot.keyring.open(&header) {
                Ok(opened) => opened.file_key,
                Err(e) => {
                    drop(writer);
                    return Err(fetch.abort(anyhow!("{e}")));
                }
            };
            let mut capture = HeaderCapture::new(Metered::new(&mut writer, written));
            let result = reencrypt(
                file_key,
                &mut fetch.input,
                &mut capture,
                object.name,
                rot.recipients,
                rot.config,
            );
            let new_header = capture.written();
            drop(capture);
            match result {
                Ok(_) => commit(rot, object, fetch, writer, new_header)?,
                Err(e) => {
                    drop(writer);
                    return Err(fetch.abort(anyhow!("{e}")));
                }
            }
        }
    }
    Ok(Rotated::Rotated {
        recovered: false,
        armored,
    })
}

/// Ends a rotation whose copy went through: the source must end cleanly (else the new
/// object is not committed), then the new object is committed and its header recorded.
fn commit(
    rot: &Rotate,
    object: &mut Object,
    fetch: Fetch,
    writer: InnerWriter,
    written: Result<Written>,
) -> Result<()> {
    match fetch.finish() {
        Ok(said) => object.said(said),
        Err(e) => return Err(writer.abort(e)),
    }
    object.said(writer.finish()?);
    rot.record(object, &written?);
    Ok(())
}
