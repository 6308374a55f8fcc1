//! `inspect`: what a stored object says about itself, with and without a key.

mod common;

use common::*;
use sha2::{Digest, Sha256};

#[test]
fn inspect_without_and_with_a_key() {
    let h = Harness::new(&[]);
    let a = keygen(h.path(), "a");
    let escrow = keygen(h.path(), "escrow");
    use_keys(&h, &[&a, &escrow], &[&a], &[]);
    let key = h.data_key(1, 16390);
    // Compressible text over two frames, then a random tail that is stored as is.
    let mut data = b"id,name\n".repeat(400_000);
    data.extend(random_bytes(1 << 20, 3));
    assert_ok(&h.backup_data(&key, &data));
    let object = h.stored(&key);
    let object_s = object.to_str().unwrap();

    let bare = ok(&admin(&h, &["inspect", object_s]));
    assert_eq!(field(&bare, "format"), "age-encryption.org/v1");
    assert_eq!(field(&bare, "recipient stanzas"), "2");
    assert_eq!(field(&bare, "stanza types"), "X25519 x2");
    let size = std::fs::metadata(&object).unwrap().len();
    assert!(
        field(&bare, "total size").starts_with(&format!("{size} bytes")),
        "{bare}"
    );
    let stored = std::fs::read(&object).unwrap();
    assert_eq!(
        field(&bare, "header size"),
        format!("{} bytes", age_header_len(&stored))
    );
    assert!(
        !bare.contains("sha256"),
        "no content facts without a key:\n{bare}"
    );

    let full = ok(&admin(
        &h,
        &[
            "inspect",
            object_s,
            "--identity",
            a.identity.to_str().unwrap(),
        ],
    ));
    assert_eq!(field(&full, "name"), "gpbackup_1_20250101010101_16390");
    assert_eq!(
        field(&full, "original length"),
        format!("{} bytes (4.05 MiB)", data.len())
    );
    let sha: String = Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(field(&full, "sha256"), sha);
    assert_eq!(field(&full, "frame size"), "2097152 bytes");
    assert_eq!(field(&full, "frames"), "3 (2 compressed, 1 stored)");
    assert!(
        field(&full, "compression")
            .starts_with("zstd in 2 of 3 frames (the rest stored uncompressed"),
        "{full}"
    );
    assert!(field(&full, "opened with").starts_with("key "), "{full}");
    assert!(field(&full, "verified").starts_with("yes"), "{full}");

    // The wrong key: the header facts, then one clear error.
    let other = keygen(h.path(), "other");
    let wrong = admin(
        &h,
        &[
            "inspect",
            object_s,
            "--identity",
            other.identity.to_str().unwrap(),
        ],
    );
    assert_fails_with(&wrong, "no identity in the keyring opens it");
    assert_eq!(field(&stdout(&wrong), "recipient stanzas"), "2");

    // A damaged object: the facts that can be read, and verified: NO.
    let mut damaged = stored.clone();
    let at = damaged.len() - 1000;
    damaged[at] ^= 0x01;
    let damaged_path = h.path().join("damaged.age");
    std::fs::write(&damaged_path, &damaged).unwrap();
    let out = admin(
        &h,
        &[
            "inspect",
            damaged_path.to_str().unwrap(),
            "--identity",
            a.identity.to_str().unwrap(),
        ],
    );
    assert_fails_with(&out, "authentication failed");
    assert!(
        field(&stdout(&out), "verified").starts_with("NO"),
        "{}",
        stdout(&out)
    );

    // Not an age file at all.
    let plain = h.path().join("plain.txt");
    std::fs::write(&plain, "hello").unwrap();
    assert_fails_with(
        &admin(&h, &["inspect", plain.to_str().unwrap()]),
        "not an age-encrypted object",
    );
}
