//! Restore: an age-encrypted object in, the verified original (or ranges of it) out.

use std::collections::BTreeMap;
use std::io::{self, BufRead, Write};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use age::Identity;
use crossbeam_channel::{bounded, Receiver, Sender};
use sha2::{Digest, Sha256};

use super::{resolve_workers, ByteRanges, SEAL_BATCH_CHUNKS};
use crate::age_file::stream::{StreamError, StreamOpener};
use crate::age_file::{Header, HeaderError, PayloadKey, NONCE_SIZE};
use crate::object::{
    read_full, FormatError, FrameDescriptor, FrameKind, ObjectHeader, ObjectTrailer, Record, Unit,
    UnitReader,
};

/// What to decode and how.
pub struct DecodeOptions<'a> {
    pub workers: usize,
    /// The name the object must carry (the basename it is restored under).
    pub expected_name: Option<&'a str>,
    /// Only these ranges of the original (restore_data_subset).
    pub ranges: Option<&'a ByteRanges>,
}

/// What was decoded.
#[derive(Debug, Clone)]
pub struct DecodeReport {
    pub header: ObjectHeader,
    /// Present when the object was read to its end and fully verified.
    pub trailer: Option<ObjectTrailer>,
    pub bytes_out: u64,
    pub frames: u64,
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
            DecodeError::Output(e) => write!(f, "writing the restored data: {e}"),
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
    pub fn explain(&self, identity_files: &[PathBuf], object: &str) -> String {
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
    pub fn is_reader_gone(&self) -> bool {
        matches!(self, DecodeError::Output(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }
}

/// `age -d -i IDENTITY… OBJECT > OBJECT.decrypted`: the stock command that decrypts an
/// age file, with one `-i` per identity file (age tries each), writing beside the
/// object, never over it. Paths are quoted for a POSIX shell where needed.
pub fn stock_decrypt_command(identity_files: &[PathBuf], object: &str) -> String {
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
/// A full restore verifies everything (every chunk, every frame, the name, the frame
/// count, the length and the SHA-256 of the original). A subset restore
/// (`opts.ranges`) verifies what it reads: every chunk up to the end of its last range,
/// every frame it decompresses, the name, and, only if it happens to read to the end,
/// the frame count and length; the SHA-256 needs every frame and is left to full reads.
/// It reads nothing past the end of its last range, and refuses ranges beyond the end
/// of the object.
pub fn decode<R: BufRead + Send, W: Write + Send>(
    mut input: R,
    out: W,
    identities: &[Box<dyn Identity>],
    opts: &DecodeOptions,
) -> Result<DecodeReport, DecodeError> {
    let header = Header::read(&mut input).map_err(DecodeError::Header)?;
    let file_key = header
        .unwrap_file_key(identities)
        .map_err(DecodeError::Header)?;
    let mut nonce = [0u8; NONCE_SIZE];
    if read_full(&mut input, &mut nonce).map_err(FormatError::Io)? != NONCE_SIZE {
        return Err(DecodeError::Stream(StreamError::Truncated));
    }
    let key = PayloadKey::derive(&file_key, &nonce);
    drop(file_key);
    // Opening spreads a batch over two threads at most; 0 ("one per core") means two.
    let open_threads = if opts.workers == 0 {
        2
    } else {
        opts.workers.min(2)
    };
    let opener = StreamOpener::new(key, input, open_threads, SEAL_BATCH_CHUNKS);
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
        let mut sink = FrameSink::new(out, opts.workers, opts.ranges.is_none(), &aborted)?;
        let result = read_frames(&mut units, &object, opts, &mut sink, s);
        if result.is_err() {
            // Nothing more reaches the output once a failure is known.
            aborted.store(true, Ordering::SeqCst);
        }
        let sunk = sink.finish();
        let (trailer, frames) = match result {
            Ok(read) => read,
            // The writing side stopped first: its own error is the cause.
            Err(DecodeError::Stopped) => return Err(sunk.err().unwrap_or(DecodeError::Stopped)),
            Err(e) => return Err(e),
        };
        let (bytes_out, sha256) = sunk?;
        if let (Some(t), Some(sha256)) = (&trailer, sha256) {
            if t.sha256 != sha256 {
                return Err(DecodeError::Mismatch(
                    "SHA-256 of the restored data does not match the one recorded at backup".into(),
                ));
            }
        }
        Ok(DecodeReport {
            header: object.clone(),
            trailer,
            bytes_out,
            frames,
        })
    })
}

/// Walks the frames, handing the ones needed to the sink. Returns the trailer (None when
/// a subset restore stopped early) and the number of frames read.
fn read_frames<'scope, R: io::Read, W: Write + Send + 'scope>(
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
        match units.next_unit()? {
            Some(Unit::Frame(d, frame)) => {
                if d.plain_len > object.frame_size {
                    return Err(DecodeError::Format(FormatError::Malformed(format!(
                        "frame of {} bytes exceeds the object's frame size {}",
                        d.plain_len, object.frame_size
                    ))));
                }
                let parts = opts.ranges.map(|r| r.within(offset, d.plain_len as u64));
                offset += d.plain_len as u64;
                frames += 1;
                if parts.as_ref().is_none_or(|p| !p.is_empty()) {
                    sink.push(frame, &d, parts, scope)?;
                }
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

type Parts = Option<Vec<Range<usize>>>;
type Decoded = Result<(Vec<u8>, Parts), DecodeError>;

fn decompress(
    frame: &[u8],
    plain_len: usize,
    dec: &mut zstd::bulk::Decompressor<'static>,
) -> Result<Vec<u8>, DecodeError> {
    let bad = |why: String| DecodeError::Format(FormatError::Malformed(why));
    let data = dec
        .decompress(frame, plain_len.max(1))
        .map_err(|e| bad(format!("zstd frame does not decompress: {e}")))?;
    if data.len() != plain_len {
        return Err(bad(format!(
            "frame decompressed to {} bytes, descriptor says {plain_len}",
            data.len()
        )));
    }
    Ok(data)
}

/// Where frames go: decompressed inline until a second frame shows the object is large,
/// then by a pool of workers feeding an ordered writer thread.
struct FrameSink<'scope, W: Write + Send> {
    inline: Option<InlineSink<W>>,
    pool: Option<Pool<'scope, W>>,
    workers: usize,
    seq: u64,
    aborted: &'scope AtomicBool,
}

struct InlineSink<W> {
    out: W,
    writer: OrderedWriter,
    dec: zstd::bulk::Decompressor<'static>,
}

struct Pool<'scope, W> {
    work: Sender<(u64, Vec<u8>, usize, Parts)>,
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
        workers: usize,
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
            }),
            pool: None,
            workers,
            seq: 0,
            aborted,
        })
    }

    fn push(
        &mut self,
        frame: Vec<u8>,
        descriptor: &FrameDescriptor,
        parts: Parts,
        scope: &'scope std::thread::Scope<'scope, '_>,
    ) -> Result<(), DecodeError> {
        let plain_len = descriptor.plain_len as usize;
        // Stored frames cost a copy: only compressed ones are worth other threads.
        let worth_a_pool = descriptor.kind == FrameKind::Compressed;
        if worth_a_pool && self.seq >= 1 && self.pool.is_none() {
            self.workers = resolve_workers(self.workers);
        }
        if worth_a_pool && self.seq >= 1 && self.workers > 1 && self.pool.is_none() {
            if let Some(inline) = self.inline.take() {
                self.pool = Some(self.start_pool(inline, scope));
            }
        }
        self.seq += 1;
        match (&mut self.inline, &self.pool) {
            (Some(inline), _) => {
                let data = decompress(&frame, plain_len, &mut inline.dec)?;
                inline
                    .writer
                    .emit(&mut inline.out, &data, &parts, self.aborted)
            }
            (None, Some(pool)) => pool
                .work
                .send((self.seq - 1, frame, plain_len, parts))
                .map_err(|_| DecodeError::Stopped),
            (None, None) => unreachable!("a sink is inline or pooled"),
        }
    }

    fn start_pool(
        &self,
        inline: InlineSink<W>,
        scope: &'scope std::thread::Scope<'scope, '_>,
    ) -> Pool<'scope, W> {
        let (work_tx, work_rx) = bounded::<(u64, Vec<u8>, usize, Parts)>(self.workers);
        let (done_tx, done_rx) = bounded::<(u64, Decoded)>(self.workers);
        for _ in 0..self.workers {
            let work_rx: Receiver<_> = work_rx.clone();
            let done_tx = done_tx.clone();
            scope.spawn(move || {
                let mut dec = match new_decompressor() {
                    Ok(d) => d,
                    Err(e) => {
                        let _ = done_tx.send((u64::MAX, Err(e)));
                        return;
                    }
                };
                for (seq, frame, plain_len, parts) in work_rx {
                    let decoded = decompress(&frame, plain_len, &mut dec).map(|d| (d, parts));
                    if done_tx.send((seq, decoded)).is_err() {
                        return;
                    }
                }
            });
        }
        let aborted = self.aborted;
        let first_seq = self.seq;
        let writer = scope.spawn(move || {
            let InlineSink {
                mut out,
                mut writer,
                ..
            } = inline;
            let mut pending = BTreeMap::new();
            let mut next = first_seq;
            for (seq, decoded) in done_rx {
                pending.insert(seq, decoded?);
                while let Some((data, parts)) = pending.remove(&next) {
                    writer.emit(&mut out, &data, &parts, aborted)?;
                    next += 1;
                }
            }
            Ok((out, writer))
        });
        Pool {
            work: work_tx,
            writer,
        }
    }

    /// Drains the pipeline; returns the bytes written and the SHA-256 of all frames
    /// (when hashing: full restores).
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
