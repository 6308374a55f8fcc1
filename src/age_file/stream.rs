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
            StreamError::Truncated => write!(f, "encrypted payload is truncated"),
            StreamError::Authentication { chunk } => write!(
                f,
                "authentication failed at payload chunk {chunk} (the object was altered or corrupted)"
            ),
            StreamError::Io(e) => write!(f, "reading the encrypted payload: {e}"),
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

/// Opens a contiguous run of ciphertext chunks in place, leaving the plaintext in `buf`.
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
        let text_len = open_chunk(&cipher, first + i as u64, is_last, &mut buf[start..end])?;
        buf.copy_within(start..start + text_len, plain_len);
        plain_len += text_len;
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
    next_chunk: u64,
    /// `batch_chunks` encrypted chunks plus one byte, allocated zeroed once and never
    /// resized: re-zeroing it for every read cost more than the call itself on small
    /// objects, and untouched calloc pages cost nothing.
    buf: Vec<u8>,
    /// The byte read past the current batch (to learn whether more follows).
    carry: Option<u8>,
    done: bool,
    read: u64,
    /// Plaintext of the current batch not yet handed out through `Read`.
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
            next_chunk: 0,
            buf: Vec::new(),
            carry: None,
            done: false,
            read: 0,
            pos: 0,
            plain_len: 0,
        }
    }

    /// Ciphertext bytes consumed so far (payload only).
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    /// Decrypts the next batch into `buf[..plain_len]`; false after the last chunk.
    fn next_batch(&mut self) -> Result<bool, StreamError> {
        if self.done {
            return Ok(false);
        }
        let want = self.batch_chunks * ENCRYPTED_CHUNK_SIZE;
        if self.buf.len() != want + 1 {
            self.buf = vec![0u8; want + 1];
        }
        let mut filled = 0;
        if let Some(byte) = self.carry.take() {
            self.buf[0] = byte;
            filled = 1;
        }
        // Read one byte past the batch: a batch is known not to hold the last chunk only
        // when more ciphertext follows it.
        let mut eof = false;
        while filled <= want {
            match self.input.read(&mut self.buf[filled..]) {
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
        } else if filled == 0 {
            // Every stream ends with a chunk sealed as last, even an empty one.
            return Err(StreamError::Truncated);
        }
        self.read += filled as u64;
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
            // Compact the plaintext of each part to the front, in order.
            let mut plain = 0;
            for (i, result) in results.into_iter().enumerate() {
                let len = result?;
                let start = i * per;
                self.buf.copy_within(start..start + len, plain);
                plain += len;
            }
            plain
        } else {
            open_run(&self.key, first, &mut self.buf[..filled], eof)?
        };
        self.next_chunk += chunks as u64;
        self.done = eof;
        self.pos = 0;
        self.plain_len = plain;
        Ok(true)
    }
}

/// Reading yields authenticated plaintext only. A [`StreamError`] arrives as an
/// `io::Error` whose inner error is the `StreamError` (see [`StreamError::from_io`]).
impl<R: Read> Read for StreamOpener<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.plain_len {
            if !self.next_batch().map_err(io::Error::other)? {
                return Ok(0);
            }
        }
        let n = out.len().min(self.plain_len - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
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
        sealer.write_all(&vec![0x5a; len]).unwrap();
        sealer.finish().unwrap().0
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
}
