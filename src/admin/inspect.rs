//! `inspect`: what one stored object file says about itself, as `key: value` lines.
//!
//! Without a key only the age header can be read: format version, encoding (binary or
//! ASCII-armored), sizes, and the recipient stanzas (how many, of which kinds). With a
//! key the object's own records are read too (name, frame size, frames and their kinds,
//! original length, SHA-256), and the object is decoded end to end into nothing to say
//! whether it verifies. An age file this plugin did not write is said to be one, with
//! the stock command that decrypts it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use anyhow::{anyhow, bail, Result};

use super::storage::header_problem;
use crate::age_file::header::V1_LINE;
use crate::age_file::stream::StreamOpener;
use crate::age_file::{AgeInput, Encoding, Header, PayloadKey, ENCRYPTED_CHUNK_SIZE, NONCE_SIZE};
use crate::cli::InspectArgs;
use crate::keys::kinds::is_post_quantum_stanza;
use crate::keys::{KeyOrigin, Keyring};
use crate::message::{hex, human_bytes, io_reason};
use crate::object::{
    has_content_checksum, FormatError, FrameKind, ObjectHeader, ObjectTrailer, Record, Unit,
    UnitReader,
};
use crate::pipeline::decode::stock_decrypt_command;
use crate::pipeline::{self, DecodeError, DecodeOptions};

/// Runs `inspect`; prints the lines on stdout.
pub fn inspect(args: &InspectArgs) -> Result<()> {
    // Run by a person: an age plugin may ask them for a PIN or a touch.
    crate::keys::plugin::answer_on_terminal();
    let path = &args.object_file;
    let (lines, failure) = describe(path, &args.identities)?;
    for (key, value) in &lines {
        println!("{key}: {value}");
    }
    match failure {
        Some(e) => bail!("inspect {}: {e}", path.display()),
        None => Ok(()),
    }
}

type Lines = Vec<(String, String)>;

/// The lines describing the object, and the verification failure if there is one.
pub fn describe(
    path: &Path,
    identity_files: &[std::path::PathBuf],
) -> Result<(Lines, Option<String>)> {
    let open = || {
        File::open(path).map_err(|e| {
            anyhow!(
                "inspect {}: cannot open it: {}",
                path.display(),
                io_reason(&e)
            )
        })
    };
    let read_error = |e: std::io::Error| anyhow!("inspect {}: {}", path.display(), io_reason(&e));
    let file = open()?;
    let stored = file.metadata().map_err(read_error)?.len();
    let open_age = || -> Result<AgeInput<BufReader<File>>> {
        AgeInput::open(BufReader::new(open()?)).map_err(|(e, _)| read_error(e))
    };
    let mut input = AgeInput::open(BufReader::new(file)).map_err(|(e, _)| read_error(e))?;
    let armored = input.encoding() == Encoding::Armored;
    // An armored file's sizes below are those of the binary age file it holds.
    let total = if armored {
        std::io::copy(&mut open_age()?, &mut std::io::sink())
            .map_err(|e| anyhow!("inspect {}: {}", path.display(), io_reason(&e)))?
    } else {
        stored
    };
    let header = Header::read(&mut input)
        .map_err(|e| anyhow!("inspect {}: {}", path.display(), header_problem(&e)))?;
    let header_len = header.encoded_len() as u64;
    let payload = total.saturating_sub(header_len + NONCE_SIZE as u64);
    let mut lines: Lines = Vec::new();
    let mut add = |k: &str, v: String| lines.push((k.to_string(), v));
    add("file", path.display().to_string());
    add(
        "format",
        String::from_utf8_lossy(V1_LINE.strip_suffix(b"\n").unwrap_or(V1_LINE)).into_owned(),
    );
    if armored {
        add(
            "encoding",
            format!(
                "ASCII armor (age -a): {stored} bytes ({}) stored, holding a binary age file of {total} bytes",
                human_bytes(stored)
            ),
        );
    } else {
        add("encoding", "binary".into());
    }
    add(
        "total size",
        format!("{total} bytes ({})", human_bytes(total)),
    );
    add("header size", format!("{header_len} bytes"));
    let chunks = payload.div_ceil(ENCRYPTED_CHUNK_SIZE as u64).max(1);
    add(
        "payload",
        format!(
            "{payload} bytes after the {NONCE_SIZE}-byte nonce, {chunks} {} of up to 64 KiB",
            if chunks == 1 { "chunk" } else { "chunks" }
        ),
    );
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for stanza in header.stanzas() {
        *kinds.entry(stanza.tag.as_str()).or_default() += 1;
    }
    add("recipient stanzas", header.stanzas().len().to_string());
    add(
        "stanza types",
        kinds
            .iter()
            .map(|(k, n)| format!("{k} x{n}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    add("post-quantum", post_quantum(&kinds));
    if identity_files.is_empty() {
        return Ok((lines, None));
    }

    let keyring = Keyring::load(identity_files, KeyOrigin::IdentityFlag)?;
    for w in keyring.warnings() {
        eprintln!("gpbackup_age_plugin: warning: {w}");
    }
    let opened = match keyring.open(&header) {
        Ok(opened) => opened,
        Err(e) => return Ok((lines, Some(header_problem(&e)))),
    };
    add("opened with", keyring.label(opened.identity));
    let file_key = opened.file_key;
    let mut nonce = [0u8; NONCE_SIZE];
    if input.read_exact(&mut nonce).is_err() {
        return Ok((
            lines,
            Some("encrypted payload is truncated (no payload nonce)".into()),
        ));
    }
    let key = PayloadKey::derive(&file_key, &nonce);
    let walk = walk_records(UnitReader::new(StreamOpener::new(key, input, 2, 16)));
    if walk.foreign {
        // An age file some other program wrote: nothing of ours to describe.
        let object = path.display().to_string();
        add(
            "content",
            format!(
                "not written by gpbackup_age_plugin (it decrypts, but is not this plugin's object format); decrypt it with: {}",
                stock_decrypt_command(identity_files, &object)
            ),
        );
        let e = DecodeError::Foreign.explain(identity_files, &object);
        add("verified", format!("NO: {e}"));
        return Ok((lines, Some(e)));
    }
    if let Some(h) = &walk.header {
        add("object format version", h.version.to_string());
        add("name", h.name.clone());
        if path.file_name().and_then(|n| n.to_str()) != Some(h.name.as_str()) {
            add(
                "name note",
                "differs from this file's name (restores check the name they ask for)".into(),
            );
        }
        add("frame size", format!("{} bytes", h.frame_size));
    }
    add(
        "frames",
        format!(
            "{} ({} compressed, {} stored)",
            walk.compressed + walk.stored,
            walk.compressed,
            walk.stored
        ),
    );
    let frames = walk.compressed + walk.stored;
    if frames > 0 {
        add(
            "frame checksums",
            match walk.checksummed {
                n if n == frames => "zstd content checksum (XXH64) in every frame".into(),
                0 => "none (written before frames carried them; restores check the SHA-256)".into(),
                n => format!("in {n} of {frames} frames (restores refuse such a mix)"),
            },
        );
    }
    add(
        "compression",
        if walk.plain_bytes > 0 {
            let sizes = format!("{} -> {} bytes", walk.plain_bytes, walk.frame_bytes);
            let ratio = walk.frame_bytes as f64 * 100.0 / walk.plain_bytes as f64;
            // A frame whose input did not shrink is stored raw (see the pipeline), so
            // the sizes alone would read as a compressor that made things worse.
            match (walk.compressed, walk.stored) {
                (0, _) => format!(
                    "stored uncompressed (the input did not compress, or compression was none), {sizes}"
                ),
                (_, 0) => format!("zstd, {sizes} ({ratio:.1}%)"),
                (c, s) => format!(
                    "zstd in {c} of {} frames (the rest stored uncompressed: they did not compress), {sizes} ({ratio:.1}%)",
                    c + s
                ),
            }
        } else {
            "none (empty object)".into()
        },
    );
    if let Some(t) = &walk.trailer {
        add(
            "original length",
            format!("{} bytes ({})", t.original_len, human_bytes(t.original_len)),
        );
        add("sha256", hex(&t.sha256));
    }
    if let Some(e) = walk.error {
        add("verified", format!("NO: {e}"));
        return Ok((lines, Some(e)));
    }
    // The walk read the records; a full decode checks the frames' contents, length and
    // SHA-256 as a restore does.
    let opts = DecodeOptions::checking(None, 2);
    // From the start again, past the header already read and opened above.
    let mut input = open_age()?;
    io::copy(&mut (&mut input).take(header_len), &mut io::sink())
        .map_err(|e| anyhow!("inspect {}: {}", path.display(), io_reason(&e)))?;
    match pipeline::decode_opened(file_key, input, io::sink(), &opts) {
        Ok(_) => {
            add(
                "verified",
                "yes (header MAC, every payload chunk, object format, length, SHA-256)".into(),
            );
            Ok((lines, None))
        }
        Err(e) => {
            let e = e.to_string();
            add("verified", format!("NO: {e}"));
            Ok((lines, Some(e)))
        }
    }
}

/// Whether the object resists a quantum computer: only if every stanza is of a
/// post-quantum type, since any classic stanza opens the file key too.
fn post_quantum(kinds: &BTreeMap<&str, usize>) -> String {
    let pq: usize = kinds
        .iter()
        .filter(|(tag, _)| is_post_quantum_stanza(tag))
        .map(|(_, n)| n)
        .sum();
    let all: usize = kinds.values().sum();
    if pq == 0 {
        "no (classic recipients only)".into()
    } else if pq == all {
        "yes (hybrid ML-KEM-768 + X25519 recipients only)".into()
    } else {
        "no: post-quantum and classic recipients mixed, so only as strong as the classic ones"
            .into()
    }
}

#[derive(Default)]
struct Walk {
    header: Option<ObjectHeader>,
    trailer: Option<ObjectTrailer>,
    compressed: u64,
    stored: u64,
    /// Frames that carry zstd's content checksum.
    checksummed: u64,
    plain_bytes: u64,
    frame_bytes: u64,
    error: Option<String>,
    /// The content is not this plugin's object format at all.
    foreign: bool,
}

/// Reads the object's records and frame descriptors without decompressing anything.
fn walk_records<R: Read>(mut units: UnitReader<R>) -> Walk {
    let mut walk = Walk::default();
    loop {
        match units.next_unit() {
            Ok(Some(Unit::Record(Record::Header(h)))) => walk.header = Some(h),
            Ok(Some(Unit::Record(Record::Trailer(t)))) => walk.trailer = Some(t),
            Ok(Some(Unit::Record(_))) => {}
            Ok(Some(Unit::Frame(d, frame))) => {
                match d.kind {
                    FrameKind::Compressed => walk.compressed += 1,
                    FrameKind::Stored => walk.stored += 1,
                }
                walk.checksummed += u64::from(has_content_checksum(&frame));
                walk.plain_bytes += d.plain_len as u64;
                walk.frame_bytes += frame.len() as u64;
            }
            Ok(None) => return walk,
            Err(FormatError::NotAnObject) => {
                walk.foreign = true;
                return walk;
            }
            Err(e) => {
                walk.error = Some(e.to_string());
                return walk;
            }
        }
    }
}
