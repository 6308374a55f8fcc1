//! Our age v1 writer and reader (src/age_file) on a whole file in memory, for the
//! interoperability tests against other implementations of age.
#![allow(dead_code)]

use std::io::Read;

use gpbackup_age_plugin::age_file::stream::{StreamOpener, StreamSealer};
use gpbackup_age_plugin::age_file::{new_file_key, new_nonce, Header, PayloadKey, NONCE_SIZE};

pub const K64: usize = 64 * 1024;

/// Seals `data` as an age v1 file with our Header and StreamSealer.
pub fn our_seal<R: AsRef<dyn age::Recipient>>(
    data: &[u8],
    recipients: Vec<R>,
    shape: (usize, usize),
) -> Vec<u8> {
    let file_key = new_file_key();
    let header = Header::wrap(&file_key, &recipients).expect("wrap");
    let nonce = new_nonce();
    let key = PayloadKey::derive(&file_key, &nonce);
    let mut out = header.encode();
    out.extend_from_slice(&nonce);
    let head_len = out.len();
    let mut sealer = StreamSealer::new(key, out, shape.0, shape.1);
    // Odd-sized writes, so chunking does not follow the caller's buffers.
    for piece in data.chunks(7777) {
        sealer.write_all(piece).unwrap();
    }
    let (out, payload_len) = sealer.finish().unwrap();
    let chunks = data.len().div_ceil(K64).max(1);
    assert_eq!(
        payload_len as usize,
        data.len() + 16 * chunks,
        "payload length"
    );
    assert_eq!(out.len(), head_len + payload_len as usize);
    out
}

/// Opens an age v1 file with our Header::read/unwrap_file_key and StreamOpener.
pub fn our_open<I: AsRef<dyn age::Identity>>(
    file: &[u8],
    identities: &[I],
    shape: (usize, usize),
) -> std::io::Result<Vec<u8>> {
    let mut input = file;
    let header = Header::read(&mut input).map_err(std::io::Error::other)?;
    let file_key = header
        .unwrap_file_key(identities)
        .map_err(std::io::Error::other)?;
    if input.len() < NONCE_SIZE {
        return Err(std::io::Error::other("no nonce"));
    }
    let (nonce, payload) = input.split_at(NONCE_SIZE);
    let key = PayloadKey::derive(&file_key, nonce);
    let mut opener = StreamOpener::new(key, payload, shape.0, shape.1);
    let mut out = Vec::new();
    opener.read_to_end(&mut out)?;
    Ok(out)
}
