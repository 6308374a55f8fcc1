//! Restore: an age-encrypted object in, the verified original (or ranges of it) out.

use std::collections::BTreeMap;
use std::io::{self, BufRead, Write};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use age::Identity;
use age_core::format::FileKey;
use crossbeam_channel::{bounded, Receiver, Sender};
use sha2::{Digest, Sha256};

use super::{resolve_workers, ByteRanges, Plan, SEAL_BATCH_CHUNKS};
use crate::age_file::stream::{StreamError, StreamOpener};
use crate::age_file::{Header, HeaderError, PayloadKey, NONCE_SIZE};
use crate::object::{
    has_content_checksum, read_full, FormatError, FrameDescriptor, FrameKind, ObjectHeader,
    ObjectTrailer, Record, Skip, Unit, UnitReader,
};

/// A subset restore passes over the frames it does not need without decrypting them.
impl<R: io::Read> Skip for StreamOpener<R> {
    fn skip(&mut self, n: u64) -> io::Result<u64> {
        StreamOpener::skip(self, n)
    }
}

/// What to decode and how.
pub struct DecodeOptions<'a> {
    pub workers: usize,
    /// The name the object must carry (the basename it is restored under).
    pub expected_name: Option<&'a str>,
    /// Only these ranges of the original (restore_data_subset).
    pub ranges: Option<&'a ByteRanges>,
    /// Bytes the call may hold (see [`Plan`]); bounds the frames in flight and workers.
    pub max_memory: usize,
    /// Check the SHA-256 of the original on a full read even when every frame carries
    /// zstd's content checksum (which libzstd verifies frame by frame); objects whose
    /// frames carry none are always checked. `restore_check_sha256` for restores; on
    /// for `verify`, `inspect` and re-encryption. Subset reads never check it.
    pub check_sha256: bool,
}

/// What was decoded.
#[derive(Debug, Clone)]
pub struct DecodeReport {
    pub header: ObjectHeader,
    /// Present when the object was read to its end and fully verified.
    pub trailer: Option<ObjectTrailer>,
    pub bytes_out: u64,
    pub frames: u64,
    /// Threads that decompressed frames (1: the calling thread alone; 0: none were
    /// planned, the object holding one frame or stored frames only).
    pub workers: usize,
    /// The most frames the plan let be in flight at once (0 when none were planned).
    pub frames_in_flight: usize,
    /// Whether the SHA-256 of the original was computed and matched the trailer's.
    pub sha256_checked: bool,
}

/// Why an object did not decode.
#[derive(Debug)]
pub enum DecodeError {
    Header(HeaderError),
    Stream(StreamError),
    Format(FormatError),
    /// The object decoded but is not what it should be (name, length, hash).
    Mismatch(String),
    /// Writing the output failed.
    Output(io::Error),
    /// The object decrypts, but its content is not an object of this plugin: some other
    /// program wrote that age file.
    Foreign,
    /// The output side of the pipeline stopped; its own error is the cause, and
    /// [`decode`] returns that one instead whenever it is known.
    Stopped,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Header(e) => write!(f, "{e}"),
            DecodeError::Stream(e) => write!(f, "{e}"),
            DecodeError::Format(e) => write!(f, "{e}"),
            DecodeError::Mismatch(m) => write!(f, "{m}"),
            DecodeError::Output(e) => write!(
                f,
                "writing the restored data: {}",
                crate::message::io_reason(e)
            ),
            DecodeError::Foreign => write!(
                f,
                "the object decrypts, but gpbackup_age_plugin did not write it: {}",
                FormatError::NotAnObject
            ),
            DecodeError::Stopped => write!(f, "the restore pipeline stopped"),
        }
    }
}

impl std::error::Error for DecodeError {}

impl DecodeError {
    /// The message for a person. For an object this plugin did not write it adds the
    /// stock command that recovers it with the keyring's files (`identity_files`), the
    /// object fetched from storage as `object`.
    pub(crate) fn explain(&self, identity_files: &[PathBuf], object: &str) -> String {
        match self {
            DecodeError::Foreign => format!(
                "{self}; recover it with the stock age CLI: {}",
                stock_decrypt_command(identity_files, object)
            ),
            other => other.to_string(),
        }
    }

    /// True when the output was closed by its reader (EPIPE): the reader stopped early,
    /// which is not a failure of the restore.
    pub(crate) fn is_reader_gone(&self) -> bool {
        matches!(self, DecodeError::Output(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }
}

/// `age -d -i IDENTITY… OBJECT > OBJECT.decrypted`: the stock command that decrypts an
/// age file, with one `-i` per identity file (age tries each), writing beside the
/// object, never over it. Paths are quoted for a POSIX shell where needed.
pub(crate) fn stock_decrypt_command(identity_files: &[PathBuf], object: &str) -> String {
    let mut command = String::from("age -d");
    if identity_files.is_empty() {
        command.push_str(" -i IDENTITY_FILE");
    }
    for file in identity_files {
        command.push_str(" -i ");
        command.push_str(&shell_quote(&file.to_string_lossy()));
    }
    let output = format!("{object}.decrypted");
    format!(
        "{command} {} > {}",
        shell_quote(object),
        shell_quote(&output)
    )
}

/// `word` as one POSIX shell word: as it is when it needs no quoting, else in single
/// quotes.
fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_./-+=:,@%".contains(&b));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

impl From<FormatError> for DecodeError {
    fn from(e: FormatError) -> Self {
        match e {
            // Decryption failures travel through `Read` as io::Errors carrying a
            // StreamError; other io::Errors are failures to read the ciphertext.
            FormatError::Io(io) if io.get_ref().is_some_and(|i| i.is::<StreamError>()) => {
                match io.into_inner().map(|inner| inner.downcast::<StreamError>()) {
                    Some(Ok(stream)) => DecodeError::Stream(*stream),
                    _ => DecodeError::Stream(StreamError::Truncated),
                }
            }
            FormatError::Io(io) => DecodeError::Stream(StreamError::Io(io)),
            other => DecodeError::Format(other),
        }
    }
}

/// Decodes one object from `input` (a binary age file: see
/// [`crate::age_file::AgeInput`] for armored ones) to `out`, opening it with the first
/// identity of the keyring that matches.
///
/// A full restore verifies every chunk, every frame (its length and, when the frames
/// carry them, zstd's content checksum, XXH64), the name, the frame count and the
/// length; and the SHA-256 of the original when the frames carry no content checksum
/// (objects written before they did) or `opts.check_sha256` asks for it. A subset restore
/// (`opts.ranges`) verifies what it reads: every record, the magic of every frame, every
/// frame it decompresses and every chunk holding any of those bytes, the name, and,
/// only if it happens to read to the end, the final chunk, the frame count and length;
/// the SHA-256 needs every frame and is left to full reads. The chunks wholly inside a
/// frame it passes over are read but not decrypted (docs/FORMAT.md, "What restore
/// checks"). It reads nothing past the end of its last range, and refuses ranges beyond
/// the end of the object.
pub fn decode<R: BufRead + Send, W: Write + Send>(
    mut input: R,
    out: W,
    identities: &[impl AsRef<dyn Identity>],
    opts: &DecodeOptions,
) -> Result<DecodeReport, DecodeError> {
    let header = Header::read(&mut input).map_err(DecodeError::Header)?;
    let file_key = header
        .unwrap_file_key(identities)
        .map_err(DecodeError::Header)?;
    decode_opened(file_key, input, out, opts)
}

/// [`decode`] of an object whose age header the caller has already read and opened
/// (e.g. with [`crate::keys::Keyring::open`], to know which identity opened it):
/// `input` is positioned just after the header, at the payload nonce, and `file_key` is
/// the header's. Checks everything [`decode`] checks after the header.
pub fn decode_opened<R: BufRead + Send, W: Write + Send>(
    file_key: FileKey,
    mut input: R,
    out: W,
    opts: &DecodeOptions,
) -> Result<DecodeReport, DecodeError> {
    let mut nonce = [0u8; NONCE_SIZE];
    if read_full(&mut input, &mut nonce).map_err(FormatError::Io)? != NONCE_SIZE {
        return Err(DecodeError::Stream(StreamError::Truncated));
    }
    let key = PayloadKey::derive(&file_key, &nonce);
    drop(file_key);
    // Opening spreads a batch over two threads at most; 0 (the default) means two.
    let open_threads = if opts.workers == 0 {
        2
    } else {
        opts.workers.min(2)
    };
    let mut opener = StreamOpener::new(key, input, open_threads, SEAL_BATCH_CHUNKS);
    if opts.ranges.is_some() {
        // A subset restore skips most frames: it decrypts only the chunks it reads.
        opener = opener.opening_singly();
    }
    let mut units = UnitReader::new(opener);
    let object = match units.next_unit() {
        Ok(Some(Unit::Record(Record::Header(h)))) => h,
        Err(FormatError::NotAnObject) => return Err(DecodeError::Foreign),
        Err(e) => return Err(e.into()),
        Ok(_) => {
            return Err(DecodeError::Format(FormatError::Malformed(
                "no object header".into(),
            )))
        }
    };
    if let Some(expected) = opts.expected_name {
        if object.name != expected {
            return Err(DecodeError::Mismatch(format!(
                "object was stored as '{}', not '{expected}': it was renamed or swapped in storage, refusing to restore it",
                object.name
            )));
        }
    }
    let aborted = AtomicBool::new(false);
    std::thread::scope(|s| {
        let mut sink = FrameSink::new(
            out,
            opts,
            object.frame_size as usize,
            opts.ranges.is_none(),
            &aborted,
        )?;
        let result = read_frames(&mut units, &object, opts, &mut sink, s);
        if result.is_err() {
            // Nothing more reaches the output once a failure is known.
            aborted.store(true, Ordering::SeqCst);
        }
        let plan = sink.plan;
        let sunk = sink.finish();
        let (trailer, frames) = match result {
            // The writer's own failure is why the pipeline stopped: report that.
            Err(DecodeError::Stopped) => return Err(sunk.err().unwrap_or(DecodeError::Stopped)),
            other => other?,
        };
        let (bytes_out, sha256) = sunk?;
        let mut sha256_checked = false;
        if let (Some(t), Some(sha256)) = (&trailer, sha256) {
            if t.sha256 != sha256 {
                return Err(DecodeError::Mismatch(
                    "SHA-256 of the restored data does not match the one recorded at backup".into(),
                ));
            }
            sha256_checked = true;
        }
        Ok(DecodeReport {
            header: object.clone(),
            trailer,
            bytes_out,
            frames,
            workers: plan.map_or(0, |p| p.workers),
            frames_in_flight: plan.map_or(0, |p| p.frames),
            sha256_checked,
        })
    })
}

/// Walks the frames, handing the ones needed to the sink. Returns the trailer (None when
/// a subset restore stopped early) and the number of frames read.
fn read_frames<'scope, R: Skip, W: Write + Send + 'scope>(
    units: &mut UnitReader<R>,
    object: &ObjectHeader,
    opts: &DecodeOptions,
    sink: &mut FrameSink<'scope, W>,
    scope: &'scope std::thread::Scope<'scope, '_>,
) -> Result<(Option<ObjectTrailer>, u64), DecodeError> {
    let mut offset = 0u64;
    let mut frames = 0u64;
    loop {
        if let Some(r) = opts.ranges {
            // Everything asked for is out (for `0` or `1 0 0`: nothing was asked for):
            // no more reading, so no more checking either.
            if offset >= r.end() {
                return Ok((None, frames));
            }
        }
        // A subset restore passes over the frames outside its ranges (the frame index
        // tells which) without reading, let alone decrypting, more of them than their
        // magic.
        let unneeded = |d: &FrameDescriptor| {
            opts.ranges
                .is_some_and(|r| r.within(offset, d.plain_len as u64).is_empty())
        };
        match units.next_unit_skipping(unneeded)? {
            Some(Unit::Frame(d, frame)) => {
                check_frame_size(&d, object)?;
                let parts = opts.ranges.map(|r| r.within(offset, d.plain_len as u64));
                offset += d.plain_len as u64;
                frames += 1;
                let spent = sink.push(frame, &d, parts, scope)?;
                units.recycle(spent);
            }
            Some(Unit::Record(Record::Descriptor(d))) => {
                check_frame_size(&d, object)?;
                offset += d.plain_len as u64;
                frames += 1;
            }
            Some(Unit::Record(Record::Trailer(t))) => {
                if units.next_unit()?.is_some() {
                    return Err(DecodeError::Format(FormatError::Malformed(
                        "data after the trailer".into(),
                    )));
                }
                if t.frames != frames || t.original_len != offset {
                    return Err(DecodeError::Mismatch(format!(
                        "object holds {offset} bytes in {frames} frames but its trailer records {} bytes in {} frames",
                        t.original_len, t.frames
                    )));
                }
                if let Some(r) = opts.ranges {
                    r.check_reach(offset)
                        .map_err(|e| DecodeError::Mismatch(e.to_string()))?;
                }
                return Ok((Some(t), frames));
            }
            Some(Unit::Record(_)) => {
                return Err(DecodeError::Format(FormatError::Malformed(
                    "record out of order".into(),
                )))
            }
            None => return Err(DecodeError::Stream(StreamError::Truncated)),
        }
    }
}

/// No frame holds more than the object's frame size (the one bound a reader can check
/// frame by frame; the lengths' sum is checked against the trailer at the end).
fn check_frame_size(d: &FrameDescriptor, object: &ObjectHeader) -> Result<(), DecodeError> {
    if d.plain_len > object.frame_size {
        return Err(DecodeError::Format(FormatError::Malformed(format!(
            "frame of {} bytes exceeds the object's frame size {}",
            d.plain_len, object.frame_size
        ))));
    }
    Ok(())
}

type Parts = Option<Vec<Range<usize>>>;

/// A frame on its way through the pool: the frame as stored, and the buffer it is
/// decompressed into (the reader's credit for one frame in flight).
struct Job {
    seq: u64,
    frame: Vec<u8>,
    out: Vec<u8>,
    plain_len: usize,
    parts: Parts,
}

type Decoded = Result<(Vec<u8>, Parts), DecodeError>;

/// What a worker's decompression context holds, for the plan: libzstd's DCtx is about
/// 160 KiB, and a frame is decompressed straight into its output buffer (no window).
const DCTX_SIZE: usize = 256 << 10;

/// Decompresses `frame` into `out` (whose room is reused), which must come to exactly
/// `plain_len` bytes.
fn decompress(
    frame: &[u8],
    plain_len: usize,
    dec: &mut zstd::bulk::Decompressor<'static>,
    out: &mut Vec<u8>,
) -> Result<(), DecodeError> {
    let bad = |why: String| DecodeError::Format(FormatError::Malformed(why));
    out.clear();
    out.reserve(plain_len.max(1));
    dec.decompress_to_buffer(frame, out)
        .map_err(|e| bad(format!("zstd frame does not decompress: {e}")))?;
    if out.len() != plain_len {
        return Err(bad(format!(
            "frame decompressed to {} bytes, descriptor says {plain_len}",
            out.len()
        )));
    }
    Ok(())
}

/// Where frames go: decompressed inline until a second frame shows the object is large,
/// then by a pool of workers feeding an ordered writer thread.
struct FrameSink<'scope, W: Write + Send> {
    inline: Option<InlineSink<W>>,
    pool: Option<Pool<'scope, W>>,
    workers: usize,
    max_memory: usize,
    frame_size: usize,
    /// The pool's plan, once it started.
    plan: Option<Plan>,
    seq: u64,
    aborted: &'scope AtomicBool,
    /// Whether the object's frames carry zstd content checksums, as its first frame
    /// says (None before it); every other frame must say the same.
    checksummed: Option<bool>,
    /// Keep hashing even when they do ([`DecodeOptions::check_sha256`]).
    check_sha256: bool,
}

struct InlineSink<W> {
    out: W,
    writer: OrderedWriter,
    dec: zstd::bulk::Decompressor<'static>,
    /// The output buffer, reused frame after frame.
    buf: Vec<u8>,
}

struct Pool<'scope, W> {
    work: Sender<Job>,
    /// Output buffers the writer is done with. The reader takes one for every frame it
    /// hands on, so no more than the plan's frames are ever in flight.
    free: Receiver<Vec<u8>>,
    /// Output buffers not yet allocated (the plan's frames less those that exist).
    unallocated: usize,
    /// Frame buffers the workers are done with, for the reader to read into.
    spent: Receiver<Vec<u8>>,
    writer: std::thread::ScopedJoinHandle<'scope, Result<(W, OrderedWriter), DecodeError>>,
}

/// Hashes and writes decoded frames; shared by the inline and threaded paths.
struct OrderedWriter {
    hasher: Option<Sha256>,
    written: u64,
}

impl OrderedWriter {
    fn emit<W: Write>(
        &mut self,
        out: &mut W,
        data: &[u8],
        parts: &Parts,
        aborted: &AtomicBool,
    ) -> Result<(), DecodeError> {
        if aborted.load(Ordering::SeqCst) {
            return Ok(());
        }
        match parts {
            None => {
                // Hash and write by pieces that stay in the CPU cache in between.
                for piece in data.chunks(128 * 1024) {
                    if let Some(h) = self.hasher.as_mut() {
                        h.update(piece);
                    }
                    out.write_all(piece).map_err(DecodeError::Output)?;
                }
                self.written += data.len() as u64;
            }
            Some(parts) => {
                for p in parts {
                    out.write_all(&data[p.clone()])
                        .map_err(DecodeError::Output)?;
                    self.written += p.len() as u64;
                }
            }
        }
        Ok(())
    }
}

fn new_decompressor() -> Result<zstd::bulk::Decompressor<'static>, DecodeError> {
    zstd::bulk::Decompressor::new().map_err(|e| DecodeError::Format(FormatError::Io(e)))
}

impl<'scope, W: Write + Send + 'scope> FrameSink<'scope, W> {
    fn new(
        out: W,
        opts: &DecodeOptions,
        frame_size: usize,
        hash: bool,
        aborted: &'scope AtomicBool,
    ) -> Result<Self, DecodeError> {
        Ok(FrameSink {
            inline: Some(InlineSink {
                out,
                writer: OrderedWriter {
                    hasher: hash.then(Sha256::new),
                    written: 0,
                },
                dec: new_decompressor()?,
                buf: Vec::new(),
            }),
            pool: None,
            workers: opts.workers,
            max_memory: opts.max_memory,
            frame_size,
            plan: None,
            seq: 0,
            aborted,
            checksummed: None,
            check_sha256: opts.check_sha256,
        })
    }

    /// Decodes `frame` or hands it to the pool; returns a frame buffer that is done
    /// with (possibly empty), for the next frame to be read into.
    fn push(
        &mut self,
        frame: Vec<u8>,
        descriptor: &FrameDescriptor,
        parts: Parts,
        scope: &'scope std::thread::Scope<'scope, '_>,
    ) -> Result<Vec<u8>, DecodeError> {
        let plain_len = descriptor.plain_len as usize;
        self.note_checksum(&frame)?;
        // Stored frames cost a copy: only compressed ones are worth other threads.
        let worth_a_pool = descriptor.kind == FrameKind::Compressed;
        if worth_a_pool && self.seq >= 1 && self.pool.is_none() && self.plan.is_none() {
            // Each frame in flight holds its output and, at most, as much again stored.
            let plan = Plan::fit(
                resolve_workers(self.workers),
                self.max_memory,
                2 * self.frame_size,
                DCTX_SIZE,
            );
            if plan.workers > 1 {
                if let Some(inline) = self.inline.take() {
                    self.pool = Some(self.start_pool(inline, plan, scope));
                }
                self.plan = Some(plan);
            } else {
                // One frame at a time, on this thread.
                self.plan = Some(Plan {
                    workers: 1,
                    frames: 1,
                });
            }
        }
        self.seq += 1;
        match (&mut self.inline, &mut self.pool) {
            (Some(inline), _) => {
                decompress(&frame, plain_len, &mut inline.dec, &mut inline.buf)?;
                inline
                    .writer
                    .emit(&mut inline.out, &inline.buf, &parts, self.aborted)?;
                Ok(frame)
            }
            (None, Some(pool)) => {
                let out = if pool.unallocated > 0 {
                    pool.unallocated -= 1;
                    Vec::new()
                } else {
                    pool.free.recv().map_err(|_| DecodeError::Stopped)?
                };
                let job = Job {
                    seq: self.seq - 1,
                    frame,
                    out,
                    plain_len,
                    parts,
                };
                pool.work.send(job).map_err(|_| DecodeError::Stopped)?;
                Ok(pool.spent.try_recv().unwrap_or_default())
            }
            (None, None) => unreachable!("a sink is inline or pooled"),
        }
    }

    /// Learns from the first frame whether the object's frames carry zstd content
    /// checksums, and refuses any later frame that disagrees. Frames that carry one are
    /// each verified by libzstd as they are decompressed, so the SHA-256 of the whole
    /// original is then left out unless asked for. The first frame is always decoded
    /// inline, before anything was hashed, so the hasher is dropped before its first
    /// byte, or kept for the whole object.
    fn note_checksum(&mut self, frame: &[u8]) -> Result<(), DecodeError> {
        let checksummed = has_content_checksum(frame);
        match self.checksummed {
            None => {
                self.checksummed = Some(checksummed);
                if checksummed && !self.check_sha256 {
                    if let Some(inline) = self.inline.as_mut() {
                        inline.writer.hasher = None;
                    }
                }
                Ok(())
            }
            Some(first) if first != checksummed => Err(DecodeError::Format(FormatError::Malformed(
                "some frames carry a zstd content checksum and some do not (every frame this plugin writes carries one, or none did before it)".into(),
            ))),
            Some(_) => Ok(()),
        }
    }

    fn start_pool(
        &self,
        inline: InlineSink<W>,
        plan: Plan,
        scope: &'scope std::thread::Scope<'scope, '_>,
    ) -> Pool<'scope, W> {
        let (work_tx, work_rx) = bounded::<Job>(plan.workers);
        let (done_tx, done_rx) = bounded::<(u64, Decoded)>(plan.frames);
        let (free_tx, free_rx) = bounded::<Vec<u8>>(plan.frames);
        // Two spare frame buffers are enough to keep the reader from allocating.
        let (spent_tx, spent_rx) = bounded::<Vec<u8>>(2);
        let InlineSink {
            out,
            writer,
            dec: first_dec,
            buf,
        } = inline;
        let _ = free_tx.try_send(buf);
        let mut first_dec = Some(first_dec);
        for _ in 0..plan.workers {
            let work_rx: Receiver<_> = work_rx.clone();
            let (done_tx, spent_tx) = (done_tx.clone(), spent_tx.clone());
            let dec = first_dec.take().map_or_else(new_decompressor, Ok);
            scope.spawn(move || {
                let mut dec = match dec {
                    Ok(d) => d,
                    Err(e) => {
                        let _ = done_tx.send((u64::MAX, Err(e)));
                        return;
                    }
                };
                for job in work_rx {
                    let Job {
                        seq,
                        frame,
                        mut out,
                        plain_len,
                        parts,
                    } = job;
                    let decoded =
                        decompress(&frame, plain_len, &mut dec, &mut out).map(|()| (out, parts));
                    let _ = spent_tx.try_send(frame);
                    if done_tx.send((seq, decoded)).is_err() {
                        return;
                    }
                }
            });
        }
        let aborted = self.aborted;
        let first_seq = self.seq;
        let writer = scope.spawn(move || {
            let (mut out, mut writer) = (out, writer);
            let mut pending = BTreeMap::new();
            let mut next = first_seq;
            for (seq, decoded) in done_rx {
                pending.insert(seq, decoded?);
                while let Some((data, parts)) = pending.remove(&next) {
                    writer.emit(&mut out, &data, &parts, aborted)?;
                    // Never blocks: the channel holds as many as there are frames.
                    let _ = free_tx.try_send(data);
                    next += 1;
                }
            }
            Ok((out, writer))
        });
        Pool {
            work: work_tx,
            free: free_rx,
            unallocated: plan.frames - 1,
            spent: spent_rx,
            writer,
        }
    }

    /// Drains the pipeline; returns the bytes written and the SHA-256 of all frames
    /// (when hashing: full restores of objects without frame checksums, or asked for).
    fn finish(self) -> Result<(u64, Option<[u8; 32]>), DecodeError> {
        let (mut out, writer) = match (self.inline, self.pool) {
            (Some(inline), _) => (inline.out, inline.writer),
            (None, Some(pool)) => {
                drop(pool.work);
                pool.writer.join().map_err(|_| {
                    DecodeError::Output(io::Error::other("restore writer thread panicked"))
                })??
            }
            (None, None) => unreachable!("a sink is inline or pooled"),
        };
        if !self.aborted.load(Ordering::SeqCst) {
            out.flush().map_err(DecodeError::Output)?;
        }
        let sha = writer.hasher.map(|h| h.finalize().into());
        Ok((writer.written, sha))
    }
}
