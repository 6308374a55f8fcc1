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
use gpbackup_age_plugin::age_file::Header;
use gpbackup_age_plugin::testkit::{
    object_plaintext, Frames, Sealing, INTERESTING_LENGTHS, SEED_NAME,
};

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
                let v = INTERESTING_LENGTHS[usize::from(edit[3]) % INTERESTING_LENGTHS.len()]
                    .to_le_bytes();
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
    let frames = if compress {
        Frames::Compressed { checksum }
    } else {
        Frames::Stored
    };
    let name = SEED_NAME.to_string();
    (
        object_plaintext(&original, frame_size, &name, frames),
        original,
        name,
    )
}

/// The fuzzing key pair, file key, header and nonce: made once per process. Its
/// `object`s are the whole age files the targets start from.
pub fn keys() -> &'static Sealing {
    static KEYS: OnceLock<Sealing> = OnceLock::new();
    KEYS.get_or_init(Sealing::new)
}

/// An identity that opens [`keys`]' objects without the X25519 work: it hands back the
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
