//! Copying an object's payload verbatim (everything after its header: the nonce and
//! the STREAM payload) while checking it on the way, so that what replaces an object
//! is known to be complete and to belong to its header: its ends by default
//! ([`Check::Ends`], two or three chunk decryptions whatever the size), or every chunk
//! ([`Check::Full`], one decryption pass on a thread of its own). The rules of what a
//! valid payload is are the format's ([`crate::age_file::PayloadKey::check_ends`],
//! [`StreamOpener`]).

use std::io::{self, Read, Write};
use std::sync::Arc;

use age_core::format::FileKey;
use crossbeam_channel::{bounded, Receiver};
use zeroize::Zeroizing;

use crate::age_file::stream::{StreamError, StreamOpener};
use crate::age_file::{PayloadKey, ENCRYPTED_CHUNK_SIZE, NONCE_SIZE};
use crate::object::read_full;

/// Bytes per block handed from the reading thread to the writing and checking threads.
const BLOCK: usize = 1 << 20;
/// Blocks queued for each of them.
const QUEUE: usize = 4;
/// Payload chunks opened per batch by the checker (4 MiB), split over two threads.
const CHECK_BATCH_CHUNKS: usize = 64;

/// Why a payload copy failed, by side.
#[derive(Debug)]
pub enum CopyError {
    /// Reading the object failed.
    Input(io::Error),
    /// Writing the copy failed.
    Output(io::Error),
    /// The payload does not authenticate (altered, truncated, or not this header's).
    Payload(String),
}

impl std::fmt::Display for CopyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CopyError::Input(e) => {
                write!(f, "reading the object: {}", crate::message::io_reason(e))
            }
            CopyError::Output(e) => write!(f, "writing the copy: {}", crate::message::io_reason(e)),
            CopyError::Payload(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for CopyError {}

/// How much of a payload is authenticated while it is copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The first chunk and the final chunk, which must be sealed as the stream's last
    /// and end exactly where the copy ends: the copy is complete, and it is this
    /// header's payload. Costs two chunk decryptions, whatever the size.
    Ends,
    /// Every chunk, on another thread as the bytes go by: one ChaCha20-Poly1305 pass.
    Full,
}

/// Copies everything after an age header (the payload nonce and the STREAM payload)
/// from `input` to `out` unchanged, authenticating the payload with the key derived
/// from `file_key` as `check` says. Reading and writing run on two threads (and
/// checking every chunk on a third), so the copy goes as fast as the slower side.
/// Returns the bytes copied.
pub fn copy_checked<R: Read, W: Write + Send>(
    input: &mut R,
    out: &mut W,
    file_key: &FileKey,
    check: Check,
) -> Result<u64, CopyError> {
    let mut nonce = [0u8; NONCE_SIZE];
    let got = read_full(input, &mut nonce).map_err(CopyError::Input)?;
    if got < NONCE_SIZE {
        return Err(CopyError::Payload(
            "encrypted payload is truncated (no payload nonce)".into(),
        ));
    }
    out.write_all(&nonce).map_err(CopyError::Output)?;
    let (check_tx, check_rx) = bounded::<Arc<Vec<u8>>>(QUEUE);
    let (write_tx, write_rx) = bounded::<Arc<Vec<u8>>>(QUEUE);
    let check_tx = (check == Check::Full).then_some(check_tx);
    std::thread::scope(|s| {
        let checker = check_tx.is_some().then(|| {
            let key = PayloadKey::derive(file_key, &nonce);
            s.spawn(move || authenticate(key, check_rx))
        });
        let writer = s.spawn(move || -> io::Result<()> {
            for block in write_rx {
                out.write_all(&block)?;
            }
            Ok(())
        });
        let mut ends = Ends::default();
        let read_result = loop {
            let mut block = vec![0u8; BLOCK];
            let n = match read_full(input, &mut block) {
                Ok(n) => n,
                Err(e) => break Err(e),
            };
            if n == 0 {
                break Ok(());
            }
            block.truncate(n);
            let block = Arc::new(block);
            ends.push(&block);
            // A side that stopped has failed; its result says why.
            if write_tx.send(Arc::clone(&block)).is_err() {
                break Ok(());
            }
            if let Some(tx) = &check_tx {
                if tx.send(block).is_err() {
                    break Ok(());
                }
            }
        };
        drop(write_tx);
        drop(check_tx);
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the writing thread failed")));
        let checked = match checker {
            Some(c) => c
                .join()
                .unwrap_or_else(|_| Err("the checking thread failed".into())),
            None => Ok(()),
        };
        read_result.map_err(CopyError::Input)?;
        written.map_err(CopyError::Output)?;
        checked.map_err(CopyError::Payload)?;
        ends.check(file_key, &nonce).map_err(CopyError::Payload)?;
        Ok(NONCE_SIZE as u64 + ends.len)
    })
}

/// The first chunk and the last blocks of a payload going by.
#[derive(Default)]
struct Ends {
    first: Vec<u8>,
    previous: Option<Arc<Vec<u8>>>,
    last: Option<Arc<Vec<u8>>>,
    len: u64,
}

impl Ends {
    fn push(&mut self, block: &Arc<Vec<u8>>) {
        if self.first.len() < ENCRYPTED_CHUNK_SIZE {
            let take = (ENCRYPTED_CHUNK_SIZE - self.first.len()).min(block.len());
            self.first.extend_from_slice(&block[..take]);
        }
        self.len += block.len() as u64;
        self.previous = self.last.replace(Arc::clone(block));
    }

    /// The last `n` bytes (n <= one block, so within the last two blocks).
    fn tail(&self, n: usize) -> Vec<u8> {
        let have = self.previous.as_ref().map_or(0, |p| p.len())
            + self.last.as_ref().map_or(0, |l| l.len());
        let mut out = Vec::with_capacity(have);
        if let Some(p) = &self.previous {
            out.extend_from_slice(p);
        }
        if let Some(l) = &self.last {
            out.extend_from_slice(l);
        }
        out.split_off(out.len() - n.min(out.len()))
    }

    /// Authenticates the first and the final chunk, by the rules of the format.
    fn check(&self, file_key: &FileKey, nonce: &[u8]) -> Result<(), String> {
        PayloadKey::derive(file_key, nonce)
            .check_ends(self.len, &self.first, &self.tail(2 * ENCRYPTED_CHUNK_SIZE))
            .map_err(|e| e.to_string())
    }
}

/// Opens every chunk arriving on `rx`; the plaintext goes nowhere.
fn authenticate(key: PayloadKey, rx: Receiver<Arc<Vec<u8>>>) -> Result<(), String> {
    let mut opener = StreamOpener::new(key, BlockReader::new(rx), 2, CHECK_BATCH_CHUNKS);
    let mut scratch = Zeroizing::new(vec![0u8; BLOCK]);
    loop {
        match opener.read(&mut scratch) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) => {
                return Err(match StreamError::from_io(&e) {
                    Some(stream) => stream.to_string(),
                    None => crate::message::io_reason(&e),
                })
            }
        }
    }
}

/// Reads the blocks sent on a channel as one stream; the end of the channel is the end
/// of the stream.
struct BlockReader {
    rx: Receiver<Arc<Vec<u8>>>,
    block: Arc<Vec<u8>>,
    pos: usize,
}

impl BlockReader {
    fn new(rx: Receiver<Arc<Vec<u8>>>) -> Self {
        BlockReader {
            rx,
            block: Arc::new(Vec::new()),
            pos: 0,
        }
    }
}

impl Read for BlockReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.block.len() {
            match self.rx.recv() {
                Ok(block) => {
                    self.block = block;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.block.len() - self.pos);
        buf[..n].copy_from_slice(&self.block[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::age_file::Header;
    use crate::config::Compression;
    use crate::pipeline::{self, EncodeOptions, DEFAULT_FRAME_SIZE};

    /// An object of `len` random-ish bytes for one fresh key; returns (object, header
    /// length, identity).
    fn object(len: usize) -> (Vec<u8>, usize, age::x25519::Identity) {
        let identity = age::x25519::Identity::generate();
        let recipients: Vec<Box<dyn age::Recipient>> = vec![Box::new(identity.to_public())];
        let data: Vec<u8> = (0..len)
            .map(|i| (i * 7919 % 251) as u8 ^ (i >> 11) as u8)
            .collect();
        let opts = EncodeOptions {
            compression: Compression::None,
            workers: 1,
            frame_size: DEFAULT_FRAME_SIZE,
            max_memory: crate::pipeline::DEFAULT_MAX_MEMORY,
        };
        let (out, _) =
            pipeline::encode(&data[..], Vec::new(), "obj", &recipients, &opts).expect("encode");
        let header_len = Header::read(&mut &out[..]).unwrap().encoded_len();
        (out, header_len, identity)
    }

    fn copy(
        object: &[u8],
        header_len: usize,
        id: &age::x25519::Identity,
        check: Check,
    ) -> Result<Vec<u8>, String> {
        let header = Header::read(&mut &object[..]).unwrap();
        let ids: Vec<Box<dyn age::Identity>> = vec![Box::new(id.clone())];
        let key = header.unwrap_file_key(&ids).unwrap();
        let mut out = Vec::new();
        copy_checked(&mut &object[header_len..], &mut out, &key, check)
            .map(|n| {
                assert_eq!(n as usize, out.len());
                out
            })
            .map_err(|e| e.to_string())
    }

    #[test]
    fn intact_payloads_copy_byte_for_byte() {
        for len in [0, 1, 65_536 - 40, 65_536, 3 << 20] {
            let (obj, hl, id) = object(len);
            for check in [Check::Ends, Check::Full] {
                assert_eq!(copy(&obj, hl, &id, check).unwrap(), &obj[hl..], "len {len}");
            }
        }
    }

    #[test]
    fn cut_padded_or_altered_payloads_are_refused() {
        let (obj, hl, id) = object(3 << 20);
        let chunk = ENCRYPTED_CHUNK_SIZE;
        let payload = obj.len() - hl - NONCE_SIZE;
        // Cut at a chunk boundary, cut mid-chunk, padded, last chunk altered, first
        // chunk altered: all caught by the two end chunks.
        let boundary = hl + NONCE_SIZE + (payload / chunk - 1) * chunk;
        for (what, bad) in [
            ("cut at a chunk boundary", obj[..boundary].to_vec()),
            ("cut mid-chunk", obj[..obj.len() - 100].to_vec()),
            ("padded", [obj.clone(), vec![0u8; 10]].concat()),
            ("last chunk altered", {
                let mut b = obj.clone();
                let n = b.len();
                b[n - 30] ^= 1;
                b
            }),
            ("first chunk altered", {
                let mut b = obj.clone();
                b[hl + NONCE_SIZE + 5] ^= 1;
                b
            }),
            ("nonce altered", {
                let mut b = obj.clone();
                b[hl] ^= 1;
                b
            }),
        ] {
            for check in [Check::Ends, Check::Full] {
                assert!(copy(&bad, hl, &id, check).is_err(), "{what} {check:?}");
            }
        }
        // A middle chunk altered: only the full check sees it (verify would too).
        let mut middle = obj.clone();
        middle[hl + NONCE_SIZE + 10 * chunk + 7] ^= 1;
        assert!(copy(&middle, hl, &id, Check::Ends).is_ok());
        let err = copy(&middle, hl, &id, Check::Full).unwrap_err();
        assert!(
            err.contains("authentication failed at payload chunk 10"),
            "{err}"
        );
    }
}
