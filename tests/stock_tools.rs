//! Interoperability: stored objects recover with the stock `age` (Go reference CLI) and
//! `zstd` tools and with the age crate; our age v1 implementation (src/age_file) agrees
//! with both in each direction (issue 2, "Tests").

mod age_layer;
mod common;
mod plugin_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use gpbackup_age_plugin::pipeline::DEFAULT_FRAME_SIZE as FRAME;

use age_layer::*;
use common::*;
use plugin_support::*;

const SIZES: [usize; 7] = [0, 1, K64 - 1, K64, K64 + 1, 5 * K64, (1 << 20) + 3];
/// (threads, chunks per batch) of our sealer/opener: serial, batched, and the
/// multi-threaded path (8 or more chunks per batch).
const SHAPES: [(usize, usize); 3] = [(1, 1), (2, 3), (4, 16)];

fn escrow_identity() -> PathBuf {
    repo().join("keys/demo-only-escrow-identity.txt")
}

fn escrow_recipient() -> age::x25519::Recipient {
    let text = std::fs::read_to_string(repo().join("keys/demo-only-escrow-recipient.txt"))
        .expect("escrow recipient");
    text.lines()
        .find(|l| l.starts_with("age1"))
        .expect("age1 line")
        .trim()
        .parse()
        .expect("valid recipient")
}

/// `age -d -i IDENTITY FILE` with the Go reference CLI.
fn go_decrypt(identity: &Path, file: &Path) -> Result<Vec<u8>, String> {
    let out = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(identity)
        .arg(file)
        .output()
        .expect("the age CLI (Debian package age) is installed");
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).to_string())
    }
}

/// `age -R demo-recipients [-r escrow] -o OUT IN` with the Go reference CLI.
fn go_encrypt(dir: &Path, data: &[u8], with_escrow: bool) -> Vec<u8> {
    let input = dir.join("go_plain");
    let output = dir.join("go_cipher.age");
    std::fs::write(&input, data).unwrap();
    let _ = std::fs::remove_file(&output);
    let mut cmd = Command::new("age");
    cmd.arg("-R").arg(demo_recipients());
    if with_escrow {
        cmd.arg("-r").arg(escrow_recipient().to_string());
    }
    let out = cmd
        .arg("-o")
        .arg(&output)
        .arg(&input)
        .output()
        .expect("the age CLI (Debian package age) is installed");
    assert!(
        out.status.success(),
        "age -e failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(&output).unwrap()
}

fn demo_recipients_boxed() -> Vec<Box<dyn age::Recipient>> {
    vec![Box::new(demo_recipient())]
}

#[test]
fn stock_age_and_zstd_recover_every_object() {
    let h = Harness::new(&[]);
    let mut objects: Vec<(String, Vec<u8>)> = Vec::new();
    let streams = [
        (h.data_key(0, 16384), csv_bytes(2 * FRAME + 99, 1)),
        (h.data_key(0, 16385), random_bytes(FRAME + 7, 2)),
        (h.data_key(0, 16386), Vec::new()),
        (h.data_key(0, 16387), b"x".to_vec()),
        (
            format!("{}.gz", h.data_key(0, 16388)),
            gzip(&csv_bytes(FRAME, 3)),
        ),
    ];
    for (key, data) in streams {
        assert_ok(&h.backup_data(&key, &data));
        objects.push((key, data));
    }
    let dir = h.backup_dir(-1);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, data) in [
        (format!("gpbackup_{TS}_metadata.sql"), csv_bytes(50_000, 4)),
        (format!("gpbackup_{TS}_report"), Vec::new()),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, &data).unwrap();
        assert_ok(&h.call("backup_file", &path.display().to_string(), b""));
        objects.push((path.display().to_string(), data));
    }
    // And one written with compression off.
    h.write_config(&[("compression", "none")]);
    let key = h.data_key(0, 16389);
    let data = csv_bytes(FRAME + 1, 5);
    assert_ok(&h.backup_data(&key, &data));
    objects.push((key, data));

    for (key, data) in &objects {
        let object = h.stored(key);
        let script = format!(
            "set -o pipefail; age -d -i '{}' '{}' | zstd -d -c",
            demo_identity().display(),
            object.display()
        );
        let out = run_in(&h.home(), &script, b"");
        assert!(
            out.status.success(),
            "{key}: age -d | zstd -d failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stdout == *data,
            "{key}: stock tools recovered {} bytes, expected {}",
            out.stdout.len(),
            data.len()
        );
    }
}

#[test]
fn the_age_crate_decrypts_every_object() {
    let h = Harness::new(&[]);
    let cases = [
        (h.data_key(0, 16384), csv_bytes(2 * FRAME + 5, 6)),
        (h.data_key(0, 16385), Vec::new()),
        (
            format!("{}.gz", h.data_key(0, 16386)),
            gzip(&csv_bytes(100_000, 7)),
        ),
    ];
    for (key, data) in &cases {
        assert_ok(&h.backup_data(key, data));
        let object = std::fs::read(h.stored(key)).unwrap();
        let plain = age_crate_decrypt(&object).expect("the age crate decrypts our object");
        let back = zstd::stream::decode_all(&plain[..]).expect("a standard zstd stream");
        assert!(back == *data, "{key}: {} bytes back", back.len());
    }
    // And one of the objects is refused by the age crate with the wrong key.
    let object = std::fs::read(h.stored(&cases[0].0)).unwrap();
    let escrow = age::IdentityFile::from_file(escrow_identity().display().to_string())
        .unwrap()
        .into_identities()
        .unwrap();
    let dec = age::Decryptor::new(&object[..]).unwrap();
    assert!(dec
        .decrypt(escrow.iter().map(|i| i.as_ref() as &dyn age::Identity))
        .is_err());
}

#[test]
fn our_sealer_output_decrypts_with_the_go_cli() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ours.age");
    for len in SIZES {
        let data = random_bytes(len, len as u64 + 1);
        for shape in SHAPES {
            let sealed = our_seal(&data, demo_recipients_boxed(), shape);
            std::fs::write(&file, &sealed).unwrap();
            let back = go_decrypt(&demo_identity(), &file)
                .unwrap_or_else(|e| panic!("age -d refused size {len} shape {shape:?}: {e}"));
            assert!(
                back == data,
                "size {len} shape {shape:?}: {} bytes",
                back.len()
            );
        }
    }
    // Two recipients: either identity decrypts with the Go CLI.
    let data = random_bytes(K64 + 1, 99);
    let recipients: Vec<Box<dyn age::Recipient>> =
        vec![Box::new(demo_recipient()), Box::new(escrow_recipient())];
    std::fs::write(&file, our_seal(&data, recipients, (1, 1))).unwrap();
    assert_eq!(go_decrypt(&demo_identity(), &file).unwrap(), data);
    assert_eq!(go_decrypt(&escrow_identity(), &file).unwrap(), data);
}

#[test]
fn go_cli_output_decrypts_with_our_header_and_opener() {
    let dir = tempfile::tempdir().unwrap();
    let ids = demo_identities();
    for len in SIZES {
        let data = random_bytes(len, len as u64 + 2);
        let sealed = go_encrypt(dir.path(), &data, len % 2 == 1);
        for shape in SHAPES {
            let back = our_open(&sealed, &ids, shape)
                .unwrap_or_else(|e| panic!("we refused Go's size {len} shape {shape:?}: {e}"));
            assert!(
                back == data,
                "size {len} shape {shape:?}: {} bytes",
                back.len()
            );
        }
    }
}

#[test]
fn our_opener_detects_truncation_and_tampering_of_go_output() {
    let dir = tempfile::tempdir().unwrap();
    let ids = demo_identities();
    let data = random_bytes(5 * K64, 3);
    let sealed = go_encrypt(dir.path(), &data, false);
    let start = payload_start(&sealed);
    let chunk = K64 + 16;
    assert_eq!(sealed.len(), start + 5 * chunk);
    for shape in SHAPES {
        // Cut at a chunk boundary: every remaining chunk authenticates as "not last".
        for chunks in [1, 4] {
            let cut = &sealed[..start + chunks * chunk];
            assert!(
                our_open(cut, &ids, shape).is_err(),
                "{chunks} chunks accepted"
            );
        }
        assert!(our_open(&sealed[..sealed.len() - 1], &ids, shape).is_err());
        let mut bad = sealed.clone();
        bad[start + 2 * chunk + 10] ^= 4;
        assert!(
            our_open(&bad, &ids, shape).is_err(),
            "flipped byte accepted"
        );
        let mut longer = sealed.clone();
        longer.extend_from_slice(&[0; 20]);
        assert!(
            our_open(&longer, &ids, shape).is_err(),
            "trailing data accepted"
        );
    }
    // The wrong identity finds no stanza to unwrap.
    let escrow = age::IdentityFile::from_file(escrow_identity().display().to_string())
        .unwrap()
        .into_identities()
        .unwrap();
    assert!(our_open(&sealed, &escrow, (1, 1)).is_err());
}

#[test]
fn our_sealer_output_decrypts_with_the_age_crate() {
    for len in SIZES {
        let data = random_bytes(len, len as u64 + 3);
        for shape in SHAPES {
            let sealed = our_seal(&data, demo_recipients_boxed(), shape);
            let back = age_crate_decrypt(&sealed)
                .unwrap_or_else(|e| panic!("age crate refused size {len} shape {shape:?}: {e}"));
            assert!(back == data, "size {len} shape {shape:?}");
        }
    }
}

#[test]
fn age_crate_output_decrypts_with_our_header_and_opener() {
    let ids = demo_identities();
    for len in SIZES {
        let data = random_bytes(len, len as u64 + 4);
        let sealed = age_crate_encrypt(&data);
        for shape in SHAPES {
            let back = our_open(&sealed, &ids, shape).unwrap_or_else(|e| {
                panic!("we refused the crate's size {len} shape {shape:?}: {e}")
            });
            assert!(back == data, "size {len} shape {shape:?}");
        }
    }
}
