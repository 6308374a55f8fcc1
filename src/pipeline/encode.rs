//! Backup: original bytes in, an age-encrypted object out.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use age::Recipient;
use anyhow::{anyhow, Context, Result};
use crossbeam_channel::bounded;
use sha2::{Digest, Sha256};

use super::read_buf::ReadBuf;
use super::{
    resolve_workers, Plan, SEAL_BATCH_CHUNKS, STORED_FRAME_SIZE, STORED_SEAL_BATCH_CHUNKS,
};
use crate::age_file::{new_file_key, new_nonce, stream::StreamSealer, Header, PayloadKey};
use crate::compression::{new_compressor, Compression, ZstdLevel};
use crate::object::{
    emit_stored_frame, stored_frame_len, FrameDescriptor, FrameKind, ObjectHeader, ObjectTrailer,
};

/// How to encode.
#[derive(Debug, Clone)]
pub struct EncodeOptions {
    pub compression: Compression,
    pub workers: usize,
    pub frame_size: usize,
    /// Bytes the call may hold (see [`Plan`]); bounds the frames in flight and workers.
    pub max_memory: usize,
}

/// What was encoded.
#[derive(Debug, Clone, Default)]
pub struct EncodeReport {
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub frames: u64,
    pub stored_frames: u64,
    pub sha256: [u8; 32],
    /// Threads that compressed frames (0: none were started).
    pub workers: usize,
    /// The most frames the plan let be in flight at once.
    pub frames_in_flight: usize,
}

/// An encoding failure, split by side so the caller can say whose fault it was.
#[derive(Debug)]
pub enum EncodeError {
    /// Reading the original failed.
    Input(io::Error),
    /// Writing the object failed (for us: the inner plugin stopped reading).
    Output(io::Error),
    /// Anything else (no usable recipient, a compressor failure).
    Other(anyhow::Error),
}

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EncodeError::Input(e) => {
                write!(f, "reading the input: {}", crate::message::io_reason(e))
            }
            EncodeError::Output(e) => write!(
                f,
                "writing the encrypted object: {}",
                crate::message::io_reason(e)
            ),
            EncodeError::Other(e) => write!(f, "{}", crate::message::error_line(e)),
        }
    }
}

impl std::error::Error for EncodeError {}

/// True when the input is already compressed, judged from the object's name (gpbackup
/// names its gzip and zstd outputs `.gz` and `.zst`) or from its first bytes.
pub(crate) fn looks_compressed(name: &str, head: &[u8]) -> bool {
    const SUFFIXES: &[&str] = &[".gz", ".zst", ".zstd", ".bz2", ".xz", ".lz4"];
    const MAGICS: &[&[u8]] = &[
        &[0x1f, 0x8b],                         // gzip
        &[0x28, 0xb5, 0x2f, 0xfd],             // zstd
        b"BZh",                                // bzip2
        &[0xfd, b'7', b'z', b'X', b'Z', 0x00], // xz
        &[0x04, 0x22, 0x4d, 0x18],             // lz4
    ];
    SUFFIXES.iter().any(|s| name.ends_with(s)) || MAGICS.iter().any(|m| head.starts_with(m))
}

/// One frame and its buffers: the original bytes as read and the compressed frame.
/// They travel together from the reader to a worker to the writer and back to the
/// reader, so the buffers in circulation are exactly the frames in flight.
struct Encoded {
    /// The original bytes (the body of a stored frame).
    original: ReadBuf,
    /// The compressed frame, when `is_compressed`; otherwise spare room.
    compressed: Vec<u8>,
    /// Whether compression paid off for this frame.
    is_compressed: bool,
}

impl Encoded {
    fn new(original: ReadBuf) -> Encoded {
        Encoded {
            original,
            compressed: Vec::new(),
            is_compressed: false,
        }
    }

    fn descriptor(&self) -> FrameDescriptor {
        let (kind, frame_len) = if self.is_compressed {
            (FrameKind::Compressed, self.compressed.len())
        } else {
            (FrameKind::Stored, stored_frame_len(self.original.len()))
        };
        FrameDescriptor {
            kind,
            plain_len: self.original.len() as u32,
            frame_len: frame_len as u32,
        }
    }
}

/// Compresses frames; one per thread, reusing its zstd context and output buffers.
struct Framer {
    compressor: Option<zstd::bulk::Compressor<'static>>,
}

impl Framer {
    /// A framer for frames of up to `frame_size` bytes (`None`: frames are stored).
    fn new(level: Option<ZstdLevel>, frame_size: usize) -> Result<Framer, EncodeError> {
        let compressor = level
            .map(|level| new_compressor(level, frame_size))
            .transpose()
            .context("cannot create a zstd compressor")
            .map_err(EncodeError::Other)?;
        Ok(Framer { compressor })
    }

    /// Compresses the frame's original into its compressed buffer and keeps the result
    /// if that saves at least 1/64 of it; otherwise the frame is stored.
    fn frame(&mut self, frame: &mut Encoded) -> Result<(), EncodeError> {
        frame.is_compressed = false;
        let Some(c) = self.compressor.as_mut() else {
            return Ok(());
        };
        let original = &frame.original;
        let out = &mut frame.compressed;
        out.clear();
        out.reserve(zstd::zstd_safe::compress_bound(original.len()));
        c.compress_to_buffer(&original[..], out)
            .map_err(|e| EncodeError::Other(anyhow!("compressing a frame: {e}")))?;
        frame.is_compressed = out.len() < original.len() - original.len() / 64;
        Ok(())
    }

    /// Bytes the compression context holds now (after a frame: its working size).
    fn context_size(&mut self) -> usize {
        self.compressor
            .as_mut()
            .map_or(0, |c| c.context_mut().sizeof())
    }
}

/// Seals frames in order and recycles their buffers.
struct FrameWriter<W: Write> {
    sealer: StreamSealer<W>,
    frames: u64,
    stored_frames: u64,
}

impl<W: Write> FrameWriter<W> {
    fn write(&mut self, encoded: &Encoded) -> io::Result<()> {
        self.sealer.write_all(&encoded.descriptor().encode())?;
        if encoded.is_compressed {
            self.sealer.write_all(&encoded.compressed)?;
        } else {
            emit_stored_frame(&encoded.original, |bytes| self.sealer.write_all(bytes))?;
            self.stored_frames += 1;
        }
        self.frames += 1;
        Ok(())
    }
}

/// Reads into `buf` until it holds `frame_size` bytes or the input ends, and hashes
/// what it reads. Reading and hashing go by pieces that stay in the CPU cache in
/// between: one pass over a 2 MiB frame each would cost twice the memory traffic.
fn read_frame<R: Read>(
    input: &mut R,
    buf: &mut ReadBuf,
    frame_size: usize,
    hasher: &mut Sha256,
) -> Result<usize, EncodeError> {
    while buf.len() < frame_size {
        let start = buf.len();
        // `read_to_end` underneath retries interrupted reads.
        match buf.read_from(input, STORED_FRAME_SIZE.min(frame_size - start)) {
            Ok(0) => break,
            Ok(_) => hasher.update(&buf[start..]),
            Err(e) => return Err(EncodeError::Input(e)),
        }
    }
    Ok(buf.len())
}

/// Encodes `input` to `out` as an object named `name`, encrypted to `recipients`.
pub fn encode<R: Read, W: Write + Send>(
    mut input: R,
    mut out: W,
    name: &str,
    recipients: &[impl AsRef<dyn Recipient>],
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

    // The first piece decides: input that is already compressed is stored in small
    // frames, which stay in the CPU cache from read to write (encryption is then the
    // whole cost); anything else is compressed in large frames.
    let mut hasher = Sha256::new();
    let probe = STORED_FRAME_SIZE.min(opts.frame_size);
    let mut first = ReadBuf::with_capacity(probe);
    read_frame(&mut input, &mut first, probe, &mut hasher)?;
    let level = match opts.compression {
        Compression::Zstd(level) if !looks_compressed(name, &first) => Some(level),
        _ => None,
    };
    let frame_size = match level {
        Some(_) => opts.frame_size,
        None => STORED_FRAME_SIZE.min(opts.frame_size),
    };
    if first.len() == probe && first.len() < frame_size {
        first.reserve(frame_size - first.len());
        read_frame(&mut input, &mut first, frame_size, &mut hasher)?;
    }
    let n = first.len();
    // A stream that fits in one frame is done on this thread alone.
    let single = n < frame_size;
    let (threads, batch) = match (single, level) {
        (true, _) => (1, SEAL_BATCH_CHUNKS),
        // Stored frames: seal small batches on the writer thread, in cache.
        (false, None) => (1, STORED_SEAL_BATCH_CHUNKS),
        (false, Some(_)) => (resolve_workers(opts.workers).clamp(1, 2), SEAL_BATCH_CHUNKS),
    };
    let mut writer = FrameWriter {
        sealer: StreamSealer::new(key, out, threads, batch),
        frames: 0,
        stored_frames: 0,
    };
    writer
        .sealer
        .write_all(&ObjectHeader::new(frame_size as u32, name).encode())
        .map_err(EncodeError::Output)?;

    let mut report = EncodeReport::default();
    let mut framer = Framer::new(level, frame_size)?;
    let mut first = Encoded::new(first);
    if single {
        report.bytes_in = n as u64;
        if n > 0 {
            framer.frame(&mut first)?;
            writer.write(&first).map_err(EncodeError::Output)?;
        }
    } else {
        // The first frame is compressed here: that measures what a worker's context
        // holds, which the plan needs, and the context goes on to the first worker.
        framer.frame(&mut first)?;
        let plan = match level {
            Some(_) => Plan::fit(
                resolve_workers(opts.workers),
                opts.max_memory,
                frame_size + zstd::zstd_safe::compress_bound(frame_size),
                framer.context_size(),
            ),
            None => Plan {
                workers: 0,
                frames: STORED_FRAMES_IN_FLIGHT,
            },
        };
        writer = encode_parallel(
            input,
            first,
            framer,
            level,
            writer,
            plan,
            frame_size,
            &mut hasher,
            &mut report,
        )?;
        report.workers = plan.workers;
        report.frames_in_flight = plan.frames;
    }
    report.frames = writer.frames;
    report.stored_frames = writer.stored_frames;
    report.sha256 = hasher.finalize().into();
    let trailer = ObjectTrailer {
        original_len: report.bytes_in,
        frames: report.frames,
        sha256: report.sha256,
    };
    writer
        .sealer
        .write_all(&trailer.encode())
        .map_err(EncodeError::Output)?;
    let (out, payload_len) = writer.sealer.finish().map_err(EncodeError::Output)?;
    report.bytes_out = head.len() as u64 + payload_len;
    Ok((out, report))
}

/// Frames in flight when they are stored, not compressed: 128 KiB each, one being read,
/// one being sealed, four queued between.
const STORED_FRAMES_IN_FLIGHT: usize = 6;

/// The threaded path: this thread reads and hashes, `plan.workers` threads compress
/// (none when frames are stored: this thread hands them straight on), one thread seals
/// and writes in order. `plan.frames` frames circulate with their buffers; the reader
/// waits for the writer to hand one back before it reads more, so memory is bounded by
/// the plan, whatever the stream's length or the worker count.
#[allow(clippy::too_many_arguments)]
fn encode_parallel<R: Read, W: Write + Send>(
    mut input: R,
    first: Encoded,
    first_framer: Framer,
    level: Option<ZstdLevel>,
    writer: FrameWriter<W>,
    plan: Plan,
    frame_size: usize,
    hasher: &mut Sha256,
    report: &mut EncodeReport,
) -> Result<FrameWriter<W>, EncodeError> {
    let (work_tx, work_rx) = bounded::<(u64, Encoded)>(plan.frames);
    let (done_tx, done_rx) = bounded::<(u64, Result<Encoded, EncodeError>)>(plan.frames);
    let (free_tx, free_rx) = bounded::<Encoded>(plan.frames);
    std::thread::scope(|s| {
        let mut first_framer = Some(first_framer);
        for _ in 0..plan.workers {
            let (work_rx, done_tx) = (work_rx.clone(), done_tx.clone());
            let framer = first_framer
                .take()
                .map_or_else(|| Framer::new(level, frame_size), Ok);
            s.spawn(move || {
                let mut framer = match framer {
                    Ok(f) => f,
                    Err(e) => {
                        let _ = done_tx.send((0, Err(e)));
                        return;
                    }
                };
                for (seq, mut frame) in work_rx {
                    let encoded = framer.frame(&mut frame).map(|()| frame);
                    if done_tx.send((seq, encoded)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(work_rx);
        // The first frame is already encoded; stored frames go straight to the writer.
        let done = done_tx.clone();
        let direct = (plan.workers == 0).then_some(done_tx);

        let sealing = s.spawn(move || -> Result<FrameWriter<W>, EncodeError> {
            let mut writer = writer;
            let mut pending = BTreeMap::new();
            let mut next = 0u64;
            for (seq, encoded) in done_rx {
                pending.insert(seq, encoded?);
                while let Some(encoded) = pending.remove(&next) {
                    writer.write(&encoded).map_err(EncodeError::Output)?;
                    // Never blocks: the channel holds as many as there are frames.
                    let _ = free_tx.try_send(encoded);
                    next += 1;
                }
            }
            Ok(writer)
        });

        // Read and hash on this thread; stop early if the other stages are gone.
        report.bytes_in = first.original.len() as u64;
        let mut full = first.original.len() == frame_size;
        let mut seq = 0u64;
        let mut read_error = None;
        if done.send((seq, Ok(first))).is_ok() {
            seq += 1;
        } else {
            full = false;
        }
        drop(done);
        let mut allocated = 1;
        while full {
            let mut frame = if allocated < plan.frames {
                allocated += 1;
                Encoded::new(ReadBuf::with_capacity(frame_size))
            } else {
                match free_rx.recv() {
                    Ok(frame) => frame,
                    Err(_) => break,
                }
            };
            frame.original.clear();
            if let Err(e) = read_frame(&mut input, &mut frame.original, frame_size, hasher) {
                read_error = Some(e);
                break;
            }
            let len = frame.original.len();
            if len == 0 {
                break;
            }
            report.bytes_in += len as u64;
            full = len == frame_size;
            let sent = match &direct {
                Some(done) => done.send((seq, Ok(frame))).is_ok(),
                None => work_tx.send((seq, frame)).is_ok(),
            };
            if !sent {
                break;
            }
            seq += 1;
        }
        drop((work_tx, direct));
        let written = sealing
            .join()
            .map_err(|_| EncodeError::Other(anyhow!("the sealing thread panicked")))?;
        if let Some(e) = read_error {
            return Err(e);
        }
        let writer = written?;
        if writer.frames != seq {
            return Err(EncodeError::Other(anyhow!(
                "{} of {seq} frames were encoded",
                writer.frames
            )));
        }
        Ok(writer)
    })
}
