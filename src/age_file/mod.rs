//! The age v1 file format (<https://age-encryption.org/v1>), split the way the age crate
//! splits it: the header with its recipient stanzas and MAC ([`header`]) and the STREAM
//! payload ([`stream`]); and telling binary, ASCII-armored and non-age input apart
//! ([`armor`]).
//!
//! We carry our own implementation of these two pieces instead of going through
//! `age::Encryptor`/`age::Decryptor` for two reasons: key rotation must rewrite a header
//! while keeping the payload byte for byte (the age crate never writes a parsed header),
//! and the payload chunks are independent, so they can be encrypted and decrypted on
//! several cores. Recipient wrapping and identity unwrapping still go through the age
//! crate's `Recipient` and `Identity` traits, and the tests hold both pieces against the
//! age crate's own reader and writer and against the Go reference CLI.

pub mod armor;
pub mod header;
pub mod stream;

use age_core::format::{FileKey, FILE_KEY_BYTES};
use rand::RngCore;

pub use armor::{AgeInput, Encoding};
pub use header::{Header, HeaderError, Rewrapped};
pub use stream::{PayloadKey, CHUNK_SIZE, ENCRYPTED_CHUNK_SIZE, TAG_SIZE};

/// Length of the random nonce that follows the header and salts the payload key.
pub const NONCE_SIZE: usize = 16;

/// A fresh random file key, as the age spec requires for every file.
pub fn new_file_key() -> FileKey {
    FileKey::init_with_mut(|key: &mut [u8; FILE_KEY_BYTES]| rand::rngs::OsRng.fill_bytes(key))
}

/// A fresh random payload nonce.
pub fn new_nonce() -> [u8; NONCE_SIZE] {
    let mut nonce = [0u8; NONCE_SIZE];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    nonce
}
