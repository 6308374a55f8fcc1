//! Shared helpers of the fuzz targets: valid seeds built with the crate's own encoders,
//! and a small "edit script" mode so that short runs reach deep into the parsers.
//!
//! Every target reads its input in one of two ways, chosen by the first byte:
//! - even: the rest of the input is used as it is (raw bytes, pure libFuzzer mutation);
//! - odd: a valid seed is built from parameters taken from the input, and the rest of
//!   the input is an edit script applied to it (set a byte, truncate, insert, overwrite
//!   a little-endian u32 with an interesting value such as 0, 2^32-1 or 64 MiB + 1).

use std::sync::OnceLock;

use age_core::format::FileKey;
use gpbackup_age_plugin::age_file::stream::StreamSealer;
use gpbackup_age_plugin::age_file::{new_file_key, Header, PayloadKey};
use gpbackup_age_plugin::object::{
    write_stored_frame, FrameDescriptor, FrameKind, ObjectHeader, ObjectTrailer,
};
use sha2::{Digest, Sha256};

/// Interesting values for length fields.
const INTERESTING: [u32; 10] = [
    0,
    1,
    0xFF,
    0x1_0000,
    0x10_0000,
    64 << 20,
    (64 << 20) + 1,
    0x7FFF_FFFF,
    0xFFFF_FFFE,
    0xFFFF_FFFF,
];

/// A fuzz input split into its mode and the rest.
pub enum Input<'a> {
    Raw(&'a [u8]),
    Edited { params: [u8; 4], script: &'a [u8] },
}

pub fn split(data: &[u8]) -> Input<'_> {
    match data.split_first() {
        Some((mode, rest)) if mode & 1 == 1 && rest.len() >= 4 => Input::Edited {
            params: [rest[0], rest[1], rest[2], rest[3]],
            script: &rest[4..],
        },
        Some((_, rest)) => Input::Raw(rest),
        None => Input::Raw(&[]),
    }
}

/// Applies an edit script: 4 bytes per edit, `[op, pos_hi, pos_lo, value]`.
pub fn apply_edits(base: &mut Vec<u8>, script: &[u8]) {
    for edit in script.chunks_exact(4) {
        if base.is_empty() {
            base.push(edit[3]);
            continue;
        }
        let pos = (usize::from(edit[1]) << 8 | usize::from(edit[2])) * 7 % base.len();
        match edit[0] % 5 {
            0 => base[pos] = edit[3],
            1 => base.truncate(pos),
            2 => base.insert(pos, edit[3]),
            3 => {
                let v = INTERESTING[usize::from(edit[3]) % INTERESTING.len()].to_le_bytes();
                for (i, b) in v.iter().enumerate() {
                    if let Some(slot) = base.get_mut(pos + i) {
                        *slot = *b;
                    }
                }
            }
            _ => base[pos] ^= 1 << (edit[3] % 8),
        }
    }
}

/// Deterministic data of `len` bytes: compressible when `compressible`.
pub fn data(len: usize, seed: u8, compressible: bool) -> Vec<u8> {
    let mut x = u64::from(seed) * 0x9E37_79B9_7F4A_7C15 | 1;
    (0..len)
        .map(|i| {
            if compressible {
                (i / 7 % 13) as u8 + b'a'
            } else {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            }
        })
        .collect()
}

/// A valid object plaintext of `data` in frames of `frame_size`, named `name`;
/// compressed frames carry zstd's content checksum if `checksum` (stored frames always
/// do), as this build writes them, or none, as builds before frame checksums did.
pub fn plaintext(
    data: &[u8],
    frame_size: usize,
    name: &str,
    compress: bool,
    checksum: bool,
) -> Vec<u8> {
    let frame_size = frame_size.max(1);
    let mut out = ObjectHeader::new(frame_size as u32, name).encode();
    let mut frames = 0u64;
    for piece in data.chunks(frame_size) {
        let (kind, frame) = if compress {
            let mut c = zstd::bulk::Compressor::new(1).expect("zstd");
            c.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(checksum))
                .expect("zstd");
            (FrameKind::Compressed, c.compress(piece).expect("zstd"))
        } else {
            let mut f = Vec::new();
            write_stored_frame(piece, &mut f);
            (FrameKind::Stored, f)
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

/// The parameters of an edited input, as a seed object plaintext (and its original).
pub fn seed_plaintext(params: [u8; 4]) -> (Vec<u8>, Vec<u8>, String) {
    let len = usize::from(params[0]) * 97 + usize::from(params[1] & 0x0F);
    // At most 32 frames, so that an execution stays fast.
    let frame_size =
        [1usize, 7, 64, 1000, 4096, 65536][usize::from(params[2]) % 6].max(len.div_ceil(32));
    let compressible = params[3] & 1 == 1;
    let compress = params[3] & 2 == 2;
    let checksum = params[3] & 8 == 8;
    let original = data(len, params[1], compressible);
    let name = "gpbackup_0_20250101010101_16384".to_string();
    (
        plaintext(&original, frame_size, &name, compress, checksum),
        original,
        name,
    )
}

/// The fuzzing key pair, file key and header: made once per process.
pub struct Keys {
    pub identity: age::x25519::Identity,
    pub file_key: FileKey,
    pub header: Vec<u8>,
}

pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let identity = age::x25519::Identity::generate();
        let file_key = new_file_key();
        let recipient: Box<dyn age::Recipient> = Box::new(identity.to_public());
        let header = Header::wrap(&file_key, &[recipient])
            .expect("wrap")
            .encode();
        Keys {
            identity,
            file_key,
            header,
        }
    })
}

pub const NONCE: [u8; 16] = *b"fuzzing-nonce-16";

/// Seals `plaintext` into a STREAM payload under the fuzzing key.
pub fn seal(plaintext: &[u8]) -> Vec<u8> {
    let key = PayloadKey::derive(&keys().file_key, &NONCE);
    let mut sealer = StreamSealer::new(key, Vec::new(), 1, 4);
    sealer.write_all(plaintext).expect("seal");
    sealer.finish().expect("seal").0
}

/// A whole age file around `plaintext`.
pub fn object(plaintext: &[u8]) -> Vec<u8> {
    let mut out = keys().header.clone();
    out.extend_from_slice(&NONCE);
    out.extend_from_slice(&seal(plaintext));
    out
}

/// The identities that open [`object`]s.
pub fn identities() -> Vec<Box<dyn age::Identity>> {
    vec![Box::new(keys().identity.clone())]
}

/// An identity that opens [`object`]s without the X25519 work: it hands back the
/// fuzzing file key for the exact stanza of the fuzzing header, and nothing else. For
/// targets that exercise what comes after the header (several times more executions).
pub struct KnownStanza;

impl age::Identity for KnownStanza {
    fn unwrap_stanza(
        &self,
        stanza: &age_core::format::Stanza,
    ) -> Option<Result<FileKey, age::DecryptError>> {
        use age_core::secrecy::ExposeSecret;
        static STANZA: OnceLock<(String, Vec<String>, Vec<u8>)> = OnceLock::new();
        let known = STANZA.get_or_init(|| {
            let header = Header::read(&mut &keys().header[..]).expect("fuzzing header");
            let s = &header.stanzas()[0];
            (s.tag.clone(), s.args.clone(), s.body.clone())
        });
        (stanza.tag == known.0 && stanza.args == known.1 && stanza.body == known.2)
            .then(|| Ok(FileKey::new(Box::new(*keys().file_key.expose_secret()))))
    }
}

/// [`KnownStanza`] as a keyring.
pub fn fast_identities() -> Vec<Box<dyn age::Identity>> {
    vec![Box::new(KnownStanza)]
}
