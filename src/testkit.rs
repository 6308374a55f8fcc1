//! Inputs for the tests and the fuzz targets (the `testkit` feature): valid seeds of
//! every parser of untrusted bytes, built with the crate's own encoders, one home for
//! both `tests/hostile_fuzz.rs` and `fuzz/`. Not part of the plugin.

use age_core::format::FileKey;
use sha2::{Digest, Sha256};

use crate::age_file::stream::StreamSealer;
use crate::age_file::{new_file_key, Header, PayloadKey, NONCE_SIZE};
use crate::object::{write_stored_frame, FrameDescriptor, FrameKind, ObjectHeader, ObjectTrailer};

/// The name seed objects carry: a table's data file of content ID 0.
pub const SEED_NAME: &str = "gpbackup_0_20250101010101_16384";

/// Values a mutator writes into 32-bit little-endian length fields: the edges of
/// what a reader must refuse before it allocates.
pub const INTERESTING_LENGTHS: [u32; 12] = [
    0,
    1,
    7,
    0xFF,
    0x1_0000,
    0x10_0000,
    64 << 20,
    (64 << 20) + 1,
    0x7FFF_FFFF,
    0x8000_0000,
    0xFFFF_FFFE,
    0xFFFF_FFFF,
];

/// How a seed's frames are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frames {
    /// Compressed, with zstd's content checksum (as this build writes them) or
    /// without (as builds before frame checksums did).
    Compressed { checksum: bool },
    /// Stored (always with a checksum).
    Stored,
}

/// A valid object plaintext (the records inside the age payload) of `data` in frames
/// of `frame_size` bytes (at least 1), named `name`.
pub fn object_plaintext(data: &[u8], frame_size: usize, name: &str, frames_as: Frames) -> Vec<u8> {
    let frame_size = frame_size.max(1);
    let mut out = ObjectHeader::new(frame_size as u32, name).encode();
    let mut frames = 0u64;
    for piece in data.chunks(frame_size) {
        let (kind, frame) = match frames_as {
            Frames::Compressed { checksum } => {
                let mut c = zstd::bulk::Compressor::new(1).expect("zstd");
                c.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(checksum))
                    .expect("zstd");
                (FrameKind::Compressed, c.compress(piece).expect("zstd"))
            }
            Frames::Stored => {
                let mut f = Vec::new();
                write_stored_frame(piece, &mut f);
                (FrameKind::Stored, f)
            }
        };
        let d = FrameDescriptor {
            kind,
            plain_len: piece.len() as u32,
            frame_len: frame.len() as u32,
        };
        out.extend_from_slice(&d.encode());
        out.extend_from_slice(&frame);
        frames += 1;
    }
    out.extend_from_slice(
        &ObjectTrailer {
            original_len: data.len() as u64,
            frames,
            sha256: Sha256::digest(data).into(),
        }
        .encode(),
    );
    out
}

/// A key pair, a file key and the header wrapping it, and a fixed payload nonce: seals
/// seed payloads and whole age files in memory.
pub struct Sealing {
    pub identity: age::x25519::Identity,
    pub file_key: FileKey,
    /// The encoded age header.
    pub header: Vec<u8>,
    pub nonce: [u8; NONCE_SIZE],
}

impl Default for Sealing {
    fn default() -> Self {
        Self::new()
    }
}

impl Sealing {
    /// A fresh key pair and file key.
    pub fn new() -> Sealing {
        let identity = age::x25519::Identity::generate();
        let file_key = new_file_key();
        let recipient: Box<dyn age::Recipient> = Box::new(identity.to_public());
        let header = Header::wrap(&file_key, &[recipient])
            .expect("wrap")
            .encode();
        Sealing {
            identity,
            file_key,
            header,
            nonce: *b"fixed-seed-nonce",
        }
    }

    /// The payload key of [`Sealing::object`]s.
    pub fn key(&self) -> PayloadKey {
        PayloadKey::derive(&self.file_key, &self.nonce)
    }

    /// `plaintext` sealed as a STREAM payload (what follows the nonce).
    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut sealer = StreamSealer::new(self.key(), Vec::new(), 1, 4);
        sealer.write_all(plaintext).expect("seal");
        sealer.finish().expect("seal").0
    }

    /// A whole age file around `plaintext`.
    pub fn object(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut out = self.header.clone();
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.seal(plaintext));
        out
    }

    /// The identities that open [`Sealing::object`]s.
    pub fn identities(&self) -> Vec<Box<dyn age::Identity>> {
        vec![Box::new(self.identity.clone())]
    }
}
