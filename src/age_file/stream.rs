//! The age payload: STREAM (<https://eprint.iacr.org/2015/189.pdf>) with
//! ChaCha20-Poly1305 over 64 KiB chunks. The nonce of chunk `i` is `i` as an 11-byte
//! big-endian counter followed by a flag byte that is 1 only on the last chunk.
//!
//! Chunks are independent given their index, so [`StreamSealer`] and [`StreamOpener`]
//! work on batches of chunks and split a batch across threads. The last-chunk rule is
//! what detects truncation: a stream must end with a chunk sealed as last, and only an
//! otherwise empty stream may end with an empty chunk.

use std::io::{self, Read, Write};

use age_core::format::FileKey;
use age_core::primitives::hkdf;
use age_core::secrecy::ExposeSecret;
use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, CHACHA20_POLY1305};
use zeroize::Zeroizing;

/// Plaintext bytes per chunk.
pub const CHUNK_SIZE: usize = 64 * 1024;
/// Poly1305 tag appended to every chunk.
pub const TAG_SIZE: usize = 16;
/// Ciphertext bytes of a full chunk.
pub const ENCRYPTED_CHUNK_SIZE: usize = CHUNK_SIZE + TAG_SIZE;
/// Batches smaller than this are not worth a second thread.
const PARALLEL_MIN_CHUNKS: usize = 8;

/// The payload key, derived from the file key and the payload nonce; zeroized on drop.
pub struct PayloadKey(Zeroizing<[u8; 32]>);

impl PayloadKey {
    /// `HKDF-SHA-256(ikm = file key, salt = nonce, info = "payload")`.
    pub fn derive(file_key: &FileKey, nonce: &[u8]) -> PayloadKey {
        PayloadKey(Zeroizing::new(hkdf(
            nonce,
            b"payload",
            file_key.expose_secret(),
        )))
    }

    /// Checks the ends of a payload of `len` bytes (everything after the nonce) without
    /// the rest: `first` holds its first bytes (at least one chunk, or all of it) and
    /// `last` its last bytes (at least two chunks, or all of it). The first chunk must
    /// authenticate, the one before the final chunk as a middle one, and the final one
    /// as the stream's last, ending exactly at `len`: then the payload is complete (not
    /// cut short or padded) and belongs to this key. The chunks in between are not
    /// checked. These are the rules a reader of the whole payload applies
    /// ([`StreamOpener`]), to the same chunks in the same order, so damage at the ends
    /// gets the same verdict from both.
    pub fn check_ends(&self, len: u64, first: &[u8], last: &[u8]) -> Result<(), StreamError> {
        let chunk = ENCRYPTED_CHUNK_SIZE as u64;
        // An empty payload lacks even the empty last chunk's tag.
        let final_index = len.saturating_sub(1) / chunk;
        let final_len = (len - final_index * chunk) as usize;
        let cipher = self.cipher();
        let open = |index: u64, is_last: bool, sealed: &[u8]| {
            open_chunk(
                &cipher,
                index,
                is_last,
                &mut Zeroizing::new(sealed.to_vec()),
            )
        };
        if final_index > 0 {
            open(0, false, first.get(..ENCRYPTED_CHUNK_SIZE).unwrap_or(first))?;
        }
        let final_start = last.len().saturating_sub(final_len);
        if final_index > 1 {
            let before = final_start.saturating_sub(ENCRYPTED_CHUNK_SIZE);
            open(final_index - 1, false, &last[before..final_start])?;
        }
        open(final_index, true, &last[final_start..])?;
        Ok(())
    }

    /// ring's ChaCha20-Poly1305 (BoringSSL's assembly): about twice the speed of the
    /// portable implementations, and encryption is the whole cost of a backup of
    /// already-compressed data.
    fn cipher(&self) -> LessSafeKey {
        LessSafeKey::new(
            UnboundKey::new(&CHACHA20_POLY1305, self.0.as_slice()).expect("a 32-byte key"),
        )
    }
}

fn chunk_nonce(index: u64, last: bool) -> Nonce {
    let mut nonce = [0u8; 12];
    nonce[3..11].copy_from_slice(&index.to_be_bytes());
    nonce[11] = u8::from(last);
    Nonce::assume_unique_for_key(nonce)
}

/// Why a payload did not decrypt.
#[derive(Debug)]
pub enum StreamError {
    /// The stream ends without a chunk sealed as last: the object was cut short.
    Truncated,
    /// A chunk failed authentication: the ciphertext was altered, or belongs elsewhere.
    Authentication { chunk: u64 },
    /// Reading the ciphertext failed.
    Io(io::Error),
}

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamError::Truncated => write!(
                f,
                "encrypted payload is truncated (the stored object was cut short)"
            ),
            StreamError::Authentication { chunk } => write!(
                f,
                "authentication failed at payload chunk {chunk} (the object was altered or corrupted)"
            ),
            StreamError::Io(e) => write!(f, "reading the encrypted payload: {}", crate::message::io_reason(e)),
        }
    }
}

impl std::error::Error for StreamError {}

/// Seals chunk slots in place. `slots` holds whole slots of [`ENCRYPTED_CHUNK_SIZE`]
/// bytes, each with a full chunk of plaintext at its start, except that the final slot
/// may be shorter: `last_len` bytes of plaintext plus room for the tag. `last` marks
/// that final chunk as the stream's last.
fn seal_slots(key: &PayloadKey, first: u64, slots: &mut [u8], last: bool) {
    let cipher = key.cipher();
    let count = slots.len().div_ceil(ENCRYPTED_CHUNK_SIZE);
    for (i, slot) in slots.chunks_mut(ENCRYPTED_CHUNK_SIZE).enumerate() {
        let (text, tag) = slot.split_at_mut(slot.len() - TAG_SIZE);
        let is_last = last && i + 1 == count;
        let sealed = cipher
            .seal_in_place_separate_tag(chunk_nonce(first + i as u64, is_last), Aad::empty(), text)
            .expect("a 64 KiB chunk is far below ChaCha20's limit");
        tag.copy_from_slice(sealed.as_ref());
    }
}

/// Encrypts a payload chunk by chunk, on up to `threads` threads per batch.
///
/// Plaintext is copied once, straight into its chunk's slot of the output buffer, and
/// sealed there in place. The last chunk written so far is held back until more data
/// arrives or [`StreamSealer::finish`] is called, because only then is it known whether
/// it is the stream's last.
pub struct StreamSealer<W: Write> {
    key: PayloadKey,
    out: W,
    threads: usize,
    batch_chunks: usize,
    next_chunk: u64,
    /// `batch_chunks` slots of plaintext-then-tag.
    slots: Vec<u8>,
    /// Plaintext bytes held in the slots.
    filled: usize,
    written: u64,
}

impl<W: Write> StreamSealer<W> {
    /// A sealer writing to `out`. `batch_chunks` chunks are sealed per batch: few when
    /// the caller wants bytes out quickly, more to spread the work over `threads`.
    pub fn new(key: PayloadKey, out: W, threads: usize, batch_chunks: usize) -> Self {
        let batch_chunks = batch_chunks.max(1);
        StreamSealer {
            key,
            out,
            threads: threads.max(1),
            batch_chunks,
            next_chunk: 0,
            slots: vec![0u8; batch_chunks * ENCRYPTED_CHUNK_SIZE],
            filled: 0,
            written: 0,
        }
    }

    /// Adds plaintext.
    pub fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            if self.filled == self.batch_chunks * CHUNK_SIZE {
                // More data follows, so none of the held chunks is the last.
                self.seal(false)?;
            }
            let slot = self.filled / CHUNK_SIZE;
            let offset = self.filled % CHUNK_SIZE;
            let n = (CHUNK_SIZE - offset).min(data.len());
            let at = slot * ENCRYPTED_CHUNK_SIZE + offset;
            self.slots[at..at + n].copy_from_slice(&data[..n]);
            self.filled += n;
            data = &data[n..];
        }
        Ok(())
    }

    /// Seals what remains, the final chunk as last; returns the writer and the payload
    /// length.
    pub fn finish(mut self) -> io::Result<(W, u64)> {
        self.seal(true)?;
        self.out.flush()?;
        Ok((self.out, self.written))
    }

    /// Seals and writes every held chunk.
    fn seal(&mut self, last: bool) -> io::Result<()> {
        // An empty stream is one empty last chunk.
        let chunks = self.filled.div_ceil(CHUNK_SIZE).max(1);
        let last_len = self.filled - (chunks - 1) * CHUNK_SIZE;
        let len = (chunks - 1) * ENCRYPTED_CHUNK_SIZE + last_len + TAG_SIZE;
        let first = self.next_chunk;
        let key = &self.key;
        let slots = &mut self.slots[..len];
        if self.threads > 1 && chunks >= PARALLEL_MIN_CHUNKS {
            let per = chunks.div_ceil(self.threads) * ENCRYPTED_CHUNK_SIZE;
            std::thread::scope(|s| {
                for (i, part) in slots.chunks_mut(per).enumerate() {
                    let part_first = first + (i * per / ENCRYPTED_CHUNK_SIZE) as u64;
                    let part_last = last && (i + 1) * per >= len;
                    s.spawn(move || seal_slots(key, part_first, part, part_last));
                }
            });
        } else {
            seal_slots(key, first, slots, last);
        }
        self.out.write_all(&self.slots[..len])?;
        self.written += len as u64;
        self.next_chunk += chunks as u64;
        self.filled = 0;
        Ok(())
    }
}

/// Opens one chunk (ciphertext and tag) in place as chunk `index`, sealed as the
/// stream's last when `last`; returns the plaintext's length, at the chunk's start.
///
/// How a payload must end, in one place: the final chunk is sealed as last; a chunk
/// too short for its tag, or a full chunk at the end that opens only as "not last", is
/// a payload cut short; an empty final chunk is allowed only as the whole of an empty
/// payload (after full chunks it is padding, or a payload cut and re-sealed).
fn open_chunk(
    cipher: &LessSafeKey,
    index: u64,
    last: bool,
    chunk: &mut [u8],
) -> Result<usize, StreamError> {
    if chunk.len() < TAG_SIZE {
        return Err(StreamError::Truncated);
    }
    let (text, tag) = chunk.split_at_mut(chunk.len() - TAG_SIZE);
    let tag = Tag::try_from(&*tag).expect("16 bytes");
    // A failed open may scribble over the text; keep the final chunk to probe it.
    let kept = last.then(|| text.to_vec());
    if cipher
        .open_in_place_separate_tag(chunk_nonce(index, last), Aad::empty(), tag, text, 0..)
        .is_err()
    {
        // A full chunk that opens as "not last" at the very end of the input is a
        // stream that was cut at a chunk boundary.
        let cut = kept.is_some_and(|mut probe| {
            cipher
                .open_in_place_separate_tag(
                    chunk_nonce(index, false),
                    Aad::empty(),
                    tag,
                    &mut probe,
                    0..,
                )
                .is_ok()
        });
        return Err(if cut {
            StreamError::Truncated
        } else {
            StreamError::Authentication { chunk: index }
        });
    }
    if last && text.is_empty() && index != 0 {
        return Err(StreamError::Authentication { chunk: index });
    }
    Ok(text.len())
}

/// Opens a contiguous run of ciphertext chunks in place, each chunk's plaintext left at
/// the start of its slot (not moved together: reading copies it out once, from there);
/// returns the plaintext's length.
fn open_run(
    key: &PayloadKey,
    first: u64,
    buf: &mut [u8],
    last: bool,
) -> Result<usize, StreamError> {
    let cipher = key.cipher();
    let count = buf.len().div_ceil(ENCRYPTED_CHUNK_SIZE);
    let mut plain_len = 0;
    for i in 0..count {
        let start = i * ENCRYPTED_CHUNK_SIZE;
        let end = (start + ENCRYPTED_CHUNK_SIZE).min(buf.len());
        let is_last = last && i + 1 == count;
        plain_len += open_chunk(&cipher, first + i as u64, is_last, &mut buf[start..end])?;
    }
    Ok(plain_len)
}

/// Decrypts a payload from a reader in batches of chunks, on up to `threads` threads.
/// Only authenticated plaintext is ever returned.
pub struct StreamOpener<R: Read> {
    key: PayloadKey,
    input: R,
    threads: usize,
    batch_chunks: usize,
    /// Whether batches hold only the chunks a read asks for (a reader that skips), not
    /// `batch_chunks`.
    singly: bool,
    next_chunk: u64,
    /// `batch_chunks` encrypted chunks plus one byte, allocated zeroed once and never
    /// resized: re-zeroing it for every read cost more than the call itself on small
    /// objects, and untouched calloc pages cost nothing.
    buf: Vec<u8>,
    /// The byte read past the current batch (to learn whether more follows).
    carry: Option<u8>,
    done: bool,
    read: u64,
    /// Plaintext of the current batch handed out through `Read` so far, and in all.
    /// Offsets count plaintext only: byte `p` is at `p / CHUNK_SIZE` slots of
    /// [`ENCRYPTED_CHUNK_SIZE`] plus `p % CHUNK_SIZE` in `buf`.
    pos: usize,
    plain_len: usize,
}

impl<R: Read> StreamOpener<R> {
    pub fn new(key: PayloadKey, input: R, threads: usize, batch_chunks: usize) -> Self {
        StreamOpener {
            key,
            input,
            threads: threads.max(1),
            batch_chunks: batch_chunks.max(1),
            singly: false,
            next_chunk: 0,
            buf: Vec::new(),
            carry: None,
            done: false,
            read: 0,
            pos: 0,
            plain_len: 0,
        }
    }

    /// Opens only the chunks each read asks for (up to `batch_chunks` at a time) instead
    /// of whole batches, as [`StreamOpener::skip`] does from the first skip on: for a
    /// reader that will skip, so that even its first reads open no chunk it does not
    /// read, while a large read still opens its chunks together, on several threads.
    pub fn opening_singly(mut self) -> Self {
        self.singly = true;
        self
    }

    /// Ciphertext bytes consumed so far (payload only).
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    /// Reads up to `want` more ciphertext bytes into `buf[..filled]`, and one byte past
    /// them into `carry`: a run of chunks is known not to hold the last chunk only when
    /// more ciphertext follows it. Returns `(filled, eof)`; `eof` means the input ended
    /// within or right after these bytes, so the run holds the final chunk.
    fn fill(&mut self, want: usize) -> Result<(usize, bool), StreamError> {
        // Sized once for the largest batch: a reader that starts skipping reads smaller
        // batches into the same buffer.
        let size = self.batch_chunks * ENCRYPTED_CHUNK_SIZE + 1;
        if self.buf.len() < size {
            self.buf = vec![0u8; size];
        }
        let mut filled = 0;
        if let Some(byte) = self.carry.take() {
            self.buf[0] = byte;
            filled = 1;
        }
        let mut eof = false;
        while filled <= want {
            match self.input.read(&mut self.buf[filled..=want]) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(StreamError::Io(e)),
            }
        }
        if !eof {
            self.carry = Some(self.buf[want]);
            filled = want;
        }
        self.read += filled as u64;
        Ok((filled, eof))
    }

    /// Decrypts the next batch, of `chunks` chunks at most; false after the last chunk.
    fn next_batch(&mut self, chunks: usize) -> Result<bool, StreamError> {
        if self.done {
            return Ok(false);
        }
        let (filled, eof) = self.fill(chunks * ENCRYPTED_CHUNK_SIZE)?;
        self.open_filled(filled, eof)?;
        Ok(true)
    }

    /// Opens the `filled` bytes just read, `eof` when they end the payload.
    fn open_filled(&mut self, filled: usize, eof: bool) -> Result<(), StreamError> {
        if eof && filled == 0 {
            // Every stream ends with a chunk sealed as last, even an empty one.
            return Err(StreamError::Truncated);
        }
        let chunks = filled.div_ceil(ENCRYPTED_CHUNK_SIZE);
        let first = self.next_chunk;
        let plain = if self.threads > 1 && chunks >= PARALLEL_MIN_CHUNKS {
            let per = chunks.div_ceil(self.threads) * ENCRYPTED_CHUNK_SIZE;
            let total = filled;
            let key = &self.key;
            let results: Vec<Result<usize, StreamError>> = std::thread::scope(|s| {
                let handles: Vec<_> = self.buf[..total]
                    .chunks_mut(per)
                    .enumerate()
                    .map(|(i, part)| {
                        let is_last = eof && (i + 1) * per >= total;
                        let part_first = first + (i * per / ENCRYPTED_CHUNK_SIZE) as u64;
                        s.spawn(move || open_run(key, part_first, part, is_last))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("opening thread"))
                    .collect()
            });
            let mut plain = 0;
            for result in results {
                plain += result?;
            }
            plain
        } else {
            open_run(&self.key, first, &mut self.buf[..filled], eof)?
        };
        self.next_chunk += chunks as u64;
        self.done = eof;
        self.pos = 0;
        self.plain_len = plain;
        Ok(())
    }

    /// Passes over the next `n` bytes of plaintext; returns how many there were (fewer
    /// only where the payload ends). Chunks that lie wholly inside those bytes, with
    /// more ciphertext after them, are read from the input but never opened: they
    /// are not authenticated, which is what a reader that skips them asks for (their
    /// plaintext is not used). Everything else is opened as [`Read`] opens it: the
    /// chunk where the skipped bytes end, and the final chunk, whose last-chunk flag
    /// is always checked. From the first skip on, a read opens only the chunks it asks
    /// for ([`StreamOpener::opening_singly`]), so a reader that alternates reads and
    /// skips opens only the chunks it reads.
    pub fn skip(&mut self, mut n: u64) -> io::Result<u64> {
        self.singly = true;
        let asked = n;
        loop {
            let held = (self.plain_len - self.pos) as u64;
            let k = held.min(n);
            self.pos += k as usize;
            n -= k;
            if n == 0 {
                return Ok(asked);
            }
            if self.done {
                return Ok(asked - n);
            }
            let whole = (n / CHUNK_SIZE as u64).min(self.batch_chunks as u64) as usize;
            if whole == 0 {
                if !self.next_batch(1).map_err(io::Error::other)? {
                    return Ok(asked - n);
                }
                continue;
            }
            let (filled, eof) = self
                .fill(whole * ENCRYPTED_CHUNK_SIZE)
                .map_err(io::Error::other)?;
            if eof {
                // The payload ends in these chunks: open them, the final one as last.
                self.open_filled(filled, eof).map_err(io::Error::other)?;
            } else {
                // Full chunks with ciphertext after them: each held CHUNK_SIZE bytes.
                self.next_chunk += whole as u64;
                n -= (whole * CHUNK_SIZE) as u64;
            }
        }
    }
}

/// Reading yields authenticated plaintext only. A [`StreamError`] arrives as an
/// `io::Error` whose inner error is the `StreamError` (see [`StreamError::from_io`]).
impl<R: Read> Read for StreamOpener<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        // A reader that skips opens the chunks this read asks for, no more.
        let chunks = match self.singly {
            true => out.len().div_ceil(CHUNK_SIZE).clamp(1, self.batch_chunks),
            false => self.batch_chunks,
        };
        while self.pos == self.plain_len {
            if !self.next_batch(chunks).map_err(io::Error::other)? {
                return Ok(0);
            }
        }
        // The plaintext stays where it was opened, in its chunk's slot (every chunk
        // but the stream's last is full): one copy, straight out, at most to the end
        // of this chunk.
        let (chunk, offset) = (self.pos / CHUNK_SIZE, self.pos % CHUNK_SIZE);
        let n = out
            .len()
            .min(CHUNK_SIZE - offset)
            .min(self.plain_len - self.pos);
        let at = chunk * ENCRYPTED_CHUNK_SIZE + offset;
        out[..n].copy_from_slice(&self.buf[at..at + n]);
        self.pos += n;
        Ok(n)
    }
}

impl StreamError {
    /// Recovers a `StreamError` carried through `io::Read`.
    pub fn from_io(e: &io::Error) -> Option<&StreamError> {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<StreamError>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> PayloadKey {
        PayloadKey::derive(&crate::age_file::new_file_key(), &[7u8; 16])
    }

    fn seal(key: &PayloadKey, len: usize) -> Vec<u8> {
        let key = PayloadKey(key.0.clone());
        let mut sealer = StreamSealer::new(key, Vec::new(), 1, 3);
        sealer.write_all(&pattern(len)).unwrap();
        sealer.finish().unwrap().0
    }

    /// Plaintext whose bytes tell where they were: a skip that lands in the wrong
    /// place reads other bytes.
    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    /// What reading the whole payload says about it: its length, or the error.
    fn read_all(key: &PayloadKey, payload: &[u8]) -> Result<usize, String> {
        let key = PayloadKey(key.0.clone());
        let mut out = Vec::new();
        StreamOpener::new(key, payload, 2, 3)
            .read_to_end(&mut out)
            .map_err(|e| StreamError::from_io(&e).unwrap().to_string())
    }

    fn check_ends(key: &PayloadKey, payload: &[u8]) -> Result<(), String> {
        let first = &payload[..payload.len().min(ENCRYPTED_CHUNK_SIZE)];
        let last = &payload[payload.len().saturating_sub(2 * ENCRYPTED_CHUNK_SIZE)..];
        key.check_ends(payload.len() as u64, first, last)
            .map_err(|e| e.to_string())
    }

    /// Checking the ends of a payload and reading all of it apply the same rules of how
    /// a payload ends: they accept and refuse the same cuts and paddings, saying the
    /// same thing.
    #[test]
    fn the_ends_check_and_the_reader_agree_on_how_a_payload_ends() {
        let key = key();
        for len in [
            0,
            1,
            CHUNK_SIZE - 1,
            CHUNK_SIZE,
            CHUNK_SIZE + 1,
            3 * CHUNK_SIZE,
        ] {
            let payload = seal(&key, len);
            assert_eq!(read_all(&key, &payload), Ok(len));
            assert_eq!(check_ends(&key, &payload), Ok(()), "len {len}");
            let mut variants: Vec<(String, Vec<u8>)> = vec![
                ("empty".into(), Vec::new()),
                ("padded".into(), [payload.clone(), vec![0; 10]].concat()),
                (
                    "padded by a tag".into(),
                    [payload.clone(), vec![0; 16]].concat(),
                ),
                ("last byte altered".into(), {
                    let mut p = payload.clone();
                    *p.last_mut().unwrap() ^= 1;
                    p
                }),
            ];
            for cut in [1, 10, TAG_SIZE, TAG_SIZE + 1, ENCRYPTED_CHUNK_SIZE] {
                if cut < payload.len() {
                    variants.push((
                        format!("cut by {cut}"),
                        payload[..payload.len() - cut].to_vec(),
                    ));
                }
            }
            for (what, bad) in variants {
                let read = read_all(&key, &bad);
                assert!(read.is_err(), "len {len}, {what}: {read:?}");
                assert_eq!(
                    check_ends(&key, &bad),
                    read.map(|_| ()),
                    "len {len}, {what}"
                );
            }
        }
    }

    /// Reads `payload` as a subset reader does: `steps` alternate reads and skips of
    /// the given lengths; returns what was read, or the error.
    fn read_skipping(
        key: &PayloadKey,
        payload: &[u8],
        steps: &[(bool, usize)],
    ) -> Result<Vec<u8>, String> {
        let key = PayloadKey(key.0.clone());
        let mut opener = StreamOpener::new(key, payload, 2, 16).opening_singly();
        let mut out = Vec::new();
        let err = |e: io::Error| StreamError::from_io(&e).unwrap().to_string();
        for &(read, len) in steps {
            if read {
                let mut buf = vec![0u8; len];
                let got = crate::object::read_full(&mut opener, &mut buf).map_err(err)?;
                out.extend_from_slice(&buf[..got]);
            } else {
                opener.skip(len as u64).map_err(err)?;
            }
        }
        Ok(out)
    }

    /// Skipping gives the same bytes after it as reading through, at every alignment
    /// to the chunks, and reports how much there was to skip at the end.
    #[test]
    fn skipping_yields_what_reading_through_does() {
        let key = key();
        let len = 40 * CHUNK_SIZE + 123;
        let payload = seal(&key, len);
        let plain = pattern(len);
        for (skip_at, skip_len, read_len) in [
            (0, 5 * CHUNK_SIZE, 10),
            (10, 3 * CHUNK_SIZE + 7, CHUNK_SIZE),
            (CHUNK_SIZE - 1, 30 * CHUNK_SIZE + 2, 100),
            (100, 20 * CHUNK_SIZE, 2 * CHUNK_SIZE + 5),
            (0, len - 10, 10),
            (5, len - 5, 0),
        ] {
            let got = read_skipping(
                &key,
                &payload,
                &[(true, skip_at), (false, skip_len), (true, read_len)],
            )
            .unwrap();
            let mut want = plain[..skip_at].to_vec();
            want.extend_from_slice(&plain[skip_at + skip_len..skip_at + skip_len + read_len]);
            assert_eq!(got, want, "skip {skip_len} at {skip_at}");
        }
        let mut opener = StreamOpener::new(PayloadKey(key.0.clone()), &payload[..], 2, 16);
        assert_eq!(opener.skip(len as u64 + 99).unwrap(), len as u64);
        assert_eq!(opener.read(&mut [0u8; 1]).unwrap(), 0);
    }

    /// A skip opens only what it must: a damaged chunk inside the skipped bytes goes
    /// unnoticed, one in the bytes read afterwards fails, and the final chunk is always
    /// opened as last, so a payload cut short is refused even when its end is skipped.
    #[test]
    fn skipping_leaves_out_only_whole_chunks_it_passes_over() {
        let key = key();
        let len = 20 * CHUNK_SIZE + 50;
        let payload = seal(&key, len);
        let damaged = |chunk: usize| {
            let mut p = payload.clone();
            p[chunk * ENCRYPTED_CHUNK_SIZE + 10] ^= 1;
            p
        };
        let steps = [(true, 10), (false, 12 * CHUNK_SIZE), (true, 10)];
        // Chunks 1 to 11 lie wholly inside the skipped bytes.
        for chunk in [1, 5, 11] {
            assert!(
                read_skipping(&key, &damaged(chunk), &steps).is_ok(),
                "chunk {chunk}"
            );
        }
        for chunk in [0, 12] {
            let e = read_skipping(&key, &damaged(chunk), &steps).unwrap_err();
            assert!(e.contains(&format!("chunk {chunk}")), "{e}");
        }
        // Skipping to the end still opens the final chunk, as last.
        let to_end = [(true, 10), (false, len)];
        assert!(read_skipping(&key, &payload, &to_end).is_ok());
        let cut = &payload[..payload.len() - 50 - TAG_SIZE];
        let e = read_skipping(&key, cut, &to_end).unwrap_err();
        assert_eq!(e, StreamError::Truncated.to_string());
        let e = read_skipping(&key, &damaged(20), &to_end).unwrap_err();
        assert!(e.contains("chunk 20"), "{e}");
    }
}
