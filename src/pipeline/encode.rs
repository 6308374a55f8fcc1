//! Backup: original bytes in, an age-encrypted object out.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use age::Recipient;
use anyhow::{anyhow, Context, Result};
use crossbeam_channel::bounded;
use sha2::{Digest, Sha256};

use super::SEAL_BATCH_CHUNKS;
use crate::age_file::{new_file_key, new_nonce, stream::StreamSealer, Header, PayloadKey};
use crate::config::Compression;
use crate::object::{
    read_full, write_stored_frame, FrameDescriptor, FrameKind, ObjectHeader, ObjectTrailer,
};

/// How to encode.
#[derive(Debug, Clone)]
pub struct EncodeOptions {
    pub compression: Compression,
    pub workers: usize,
    pub frame_size: usize,
}

/// What was encoded.
#[derive(Debug, Clone)]
pub struct EncodeReport {
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub frames: u64,
    pub stored_frames: u64,
    pub sha256: [u8; 32],
}

/// An encoding failure, split by side so the caller can say whose fault it was.
#[derive(Debug)]
pub enum EncodeError {
    /// Reading the original failed.
    Input(io::Error),
    /// Writing the object failed (for us: the inner plugin stopped reading).
    Output(io::Error),
    /// Anything else (no usable recipient, …).
    Other(anyhow::Error),
}

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EncodeError::Input(e) => write!(f, "reading the input: {e}"),
            EncodeError::Output(e) => write!(f, "writing the encrypted object: {e}"),
            EncodeError::Other(e) => write!(f, "{e:#}"),
        }
    }
}

impl std::error::Error for EncodeError {}

/// True when the input is already compressed, judged from the object's name (gpbackup
/// names its gzip and zstd outputs `.gz` and `.zst`) or from its first bytes.
pub fn looks_compressed(name: &str, head: &[u8]) -> bool {
    const SUFFIXES: &[&str] = &[".gz", ".zst", ".zstd", ".bz2", ".xz", ".lz4"];
    const MAGICS: &[&[u8]] = &[
        &[0x1f, 0x8b],             // gzip
        &[0x28, 0xb5, 0x2f, 0xfd], // zstd
        b"BZh",                    // bzip2
        &[0xfd, b'7', b'z', b'X', b'Z', 0x00],
        &[0x04, 0x22, 0x4d, 0x18], // lz4
    ];
    SUFFIXES.iter().any(|s| name.ends_with(s)) || MAGICS.iter().any(|m| head.starts_with(m))
}

/// Turns original frames into (descriptor, zstd frame) pairs. One per thread.
struct Framer {
    compressor: Option<zstd::bulk::Compressor<'static>>,
}

impl Framer {
    fn new(level: Option<i32>) -> Result<Framer> {
        let compressor = level
            .map(zstd::bulk::Compressor::new)
            .transpose()
            .context("cannot create a zstd compressor")?;
        Ok(Framer { compressor })
    }

    fn frame(&mut self, data: &[u8]) -> io::Result<(Vec<u8>, FrameKind)> {
        if let Some(c) = self.compressor.as_mut() {
            let compressed = c.compress(data)?;
            // Less than 1/64 saved is not worth the decompression on restore.
            if compressed.len() < data.len() - data.len() / 64 {
                return Ok((compressed, FrameKind::Compressed));
            }
        }
        let mut stored = Vec::new();
        write_stored_frame(data, &mut stored);
        Ok((stored, FrameKind::Stored))
    }
}

struct Encoded {
    descriptor: Vec<u8>,
    frame: Vec<u8>,
    stored: bool,
}

impl Encoded {
    fn new(data: &[u8], framer: &mut Framer) -> io::Result<Encoded> {
        let (frame, kind) = framer.frame(data)?;
        let descriptor = FrameDescriptor {
            kind,
            plain_len: data.len() as u32,
            frame_len: frame.len() as u32,
        }
        .encode();
        Ok(Encoded {
            descriptor,
            frame,
            stored: kind == FrameKind::Stored,
        })
    }
}

/// Encodes `input` to `out` as an object named `name`, encrypted to `recipients`.
pub fn encode<R: Read, W: Write + Send>(
    mut input: R,
    mut out: W,
    name: &str,
    recipients: &[Box<dyn Recipient>],
    opts: &EncodeOptions,
) -> Result<(W, EncodeReport), EncodeError> {
    let file_key = new_file_key();
    let header = Header::wrap(&file_key, recipients).map_err(|e| EncodeError::Other(anyhow!(e)))?;
    let nonce = new_nonce();
    let key = PayloadKey::derive(&file_key, &nonce);
    drop(file_key);
    let mut head = header.encode();
    head.extend_from_slice(&nonce);
    out.write_all(&head).map_err(EncodeError::Output)?;

    let frame_size = opts.frame_size;
    let mut first = vec![0u8; frame_size];
    let n = read_full(&mut input, &mut first).map_err(|e| EncodeError::Input(into_io(e)))?;
    first.truncate(n);
    let level = match opts.compression {
        Compression::Zstd(level) if !looks_compressed(name, &first) => Some(level),
        _ => None,
    };
    let single = n < frame_size;
    let threads = if single { 1 } else { opts.workers.max(1) };
    let mut sealer = StreamSealer::new(key, out, threads.min(2), SEAL_BATCH_CHUNKS);
    sealer
        .write_all(&ObjectHeader::new(frame_size as u32, name).encode())
        .map_err(EncodeError::Output)?;

    let mut hasher = Sha256::new();
    let mut report = EncodeReport {
        bytes_in: 0,
        bytes_out: 0,
        frames: 0,
        stored_frames: 0,
        sha256: [0; 32],
    };
    let mut framer = Framer::new(level).map_err(EncodeError::Other)?;
    if single {
        hasher.update(&first);
        report.bytes_in = n as u64;
        if n > 0 {
            let encoded = Encoded::new(&first, &mut framer).map_err(EncodeError::compressing)?;
            write_encoded(&mut sealer, &encoded, &mut report).map_err(EncodeError::Output)?;
        }
    } else {
        sealer = encode_parallel(input, first, sealer, level, opts, &mut hasher, &mut report)?;
    }
    report.sha256 = hasher.finalize().into();
    let trailer = ObjectTrailer {
        original_len: report.bytes_in,
        frames: report.frames,
        sha256: report.sha256,
    };
    sealer
        .write_all(&trailer.encode())
        .map_err(EncodeError::Output)?;
    let (out, payload_len) = sealer.finish().map_err(EncodeError::Output)?;
    report.bytes_out = head.len() as u64 + payload_len;
    Ok((out, report))
}

impl EncodeError {
    fn compressing(e: io::Error) -> EncodeError {
        EncodeError::Other(anyhow!("compressing a frame: {e}"))
    }
}

fn write_encoded<W: Write>(
    sealer: &mut StreamSealer<W>,
    encoded: &Encoded,
    report: &mut EncodeReport,
) -> io::Result<()> {
    sealer.write_all(&encoded.descriptor)?;
    sealer.write_all(&encoded.frame)?;
    report.frames += 1;
    report.stored_frames += u64::from(encoded.stored);
    Ok(())
}

fn into_io(e: crate::object::FormatError) -> io::Error {
    match e {
        crate::object::FormatError::Io(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

/// The threaded path: this thread reads and hashes, `opts.workers` threads compress,
/// one thread seals and writes in order.
fn encode_parallel<R: Read, W: Write + Send>(
    mut input: R,
    first: Vec<u8>,
    sealer: StreamSealer<W>,
    level: Option<i32>,
    opts: &EncodeOptions,
    hasher: &mut Sha256,
    report: &mut EncodeReport,
) -> Result<StreamSealer<W>, EncodeError> {
    let workers = opts.workers.max(1);
    let (work_tx, work_rx) = bounded::<(u64, Vec<u8>)>(workers);
    let (done_tx, done_rx) = bounded::<(u64, io::Result<Encoded>)>(workers);
    std::thread::scope(|s| {
        for _ in 0..workers {
            let work_rx = work_rx.clone();
            let done_tx = done_tx.clone();
            s.spawn(move || {
                let mut framer = match Framer::new(level) {
                    Ok(f) => f,
                    Err(e) => {
                        let _ = done_tx.send((0, Err(io::Error::other(e.to_string()))));
                        return;
                    }
                };
                for (seq, data) in work_rx {
                    let encoded = Encoded::new(&data, &mut framer);
                    if done_tx.send((seq, encoded)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(work_rx);
        drop(done_tx);

        let writer = s.spawn(
            move || -> Result<(StreamSealer<W>, u64, u64), EncodeError> {
                let mut sealer = sealer;
                let mut pending = BTreeMap::new();
                let mut next = 0u64;
                let mut partial = EncodeReport {
                    bytes_in: 0,
                    bytes_out: 0,
                    frames: 0,
                    stored_frames: 0,
                    sha256: [0; 32],
                };
                for (seq, encoded) in done_rx {
                    pending.insert(seq, encoded.map_err(EncodeError::compressing)?);
                    while let Some(encoded) = pending.remove(&next) {
                        write_encoded(&mut sealer, &encoded, &mut partial)
                            .map_err(EncodeError::Output)?;
                        next += 1;
                    }
                }
                Ok((sealer, partial.frames, partial.stored_frames))
            },
        );

        // Read and hash on this thread; stop early if the other stages are gone.
        let frame_size = opts.frame_size;
        let mut seq = 0u64;
        let mut block = first;
        let mut read_error = None;
        loop {
            hasher.update(&block);
            report.bytes_in += block.len() as u64;
            let full = block.len() == frame_size;
            if block.is_empty() || work_tx.send((seq, block)).is_err() {
                break;
            }
            seq += 1;
            if !full {
                break;
            }
            let mut next = vec![0u8; frame_size];
            match read_full(&mut input, &mut next) {
                Ok(n) => {
                    next.truncate(n);
                    block = next;
                }
                Err(e) => {
                    read_error = Some(EncodeError::Input(into_io(e)));
                    break;
                }
            }
        }
        drop(work_tx);
        let written = writer
            .join()
            .map_err(|_| EncodeError::Other(anyhow!("writer thread panicked")))?;
        if let Some(e) = read_error {
            return Err(e);
        }
        let (sealer, frames, stored) = written?;
        if frames != seq {
            return Err(EncodeError::Other(anyhow!(
                "{} of {seq} frames were encoded",
                frames
            )));
        }
        report.frames = frames;
        report.stored_frames = stored;
        Ok(sealer)
    })
}
