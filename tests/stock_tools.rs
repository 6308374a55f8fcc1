//! Interoperability: stored objects recover with the stock `age` (Go reference CLI) and
//! `zstd` tools and with the age crate; our age v1 implementation (src/age_file) agrees
//! with both in each direction.

mod age_layer;
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use gpbackup_age_plugin::pipeline::DEFAULT_FRAME_SIZE as FRAME;

use age_layer::*;
use common::*;

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

/// Re-encrypts a stored object the way someone with stock tools would: `age -d` to its
/// plaintext (our object format), then `age -a -R` to the same recipients, ASCII-armored;
/// with `crlf`, the armor's lines end in CRLF (which age accepts).
fn rearmor(object: &Path, crlf: bool) {
    let script = format!(
        "set -o pipefail; age -d -i '{}' '{}' | age -a -R '{}'",
        demo_identity().display(),
        object.display(),
        demo_recipients().display()
    );
    let out = run_in(Path::new("/tmp"), &script, b"");
    assert!(
        out.status.success(),
        "age -d | age -a failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut armored = out.stdout;
    assert!(armored.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----\n"));
    if crlf {
        armored = String::from_utf8(armored)
            .unwrap()
            .replace('\n', "\r\n")
            .into_bytes();
    }
    std::fs::write(object, armored).unwrap();
}

#[test]
fn ascii_armored_objects_from_stock_age_read_like_ours_in_every_command() {
    let h = Harness::new(&[("restore_subset", "on")]);
    let mut spec = SimSpec::single_data_file(TS);
    spec.compression = "none";
    spec.rows = 40_000;
    let set = simulate_backup(&h, &spec);
    let data_name = format!("gpbackup_0_{TS}");
    let data = &set.objects[&data_name];
    assert!(data.len() > FRAME, "two frames at least");
    let meta_name = format!("gpbackup_{TS}_metadata.sql");
    let config_name = format!("gpbackup_{TS}_config.yaml");
    // A data file (LF), a coordinator file (CRLF), and the config.yaml that verify and
    // rotate read first to find the set.
    for (name, crlf) in [
        (&data_name, false),
        (&meta_name, true),
        (&config_name, false),
    ] {
        rearmor(&h.stored_at(TS, name), crlf);
    }
    // Stock age reads them, CRLF included: they are what `age -d` accepts.
    for name in [&data_name, &meta_name] {
        let plain = go_decrypt(&demo_identity(), &h.stored_at(TS, name)).expect("age -d");
        assert!(
            plain.starts_with(&[0x5A, 0x2A, 0x4D, 0x18]),
            "our format inside"
        );
    }

    let data_key = h.seg_dir(0, TS).join(&data_name).display().to_string();
    let out = h.restore_data(&data_key);
    assert_ok(&out);
    assert!(out.stdout == *data, "restore_data of an armored object");
    let len = data.len();
    let out = subset(
        &h,
        &data_key,
        &format!("3 0 10 {} {} {len} {len}", FRAME - 3, FRAME + 3),
    );
    assert_ok(&out);
    assert_eq!(
        out.stdout,
        [&data[..10], &data[FRAME - 3..FRAME + 3]].concat(),
        "restore_data_subset of an armored object"
    );
    let meta = h.seg_dir(-1, TS).join(&meta_name);
    std::fs::remove_file(&meta).unwrap();
    assert_ok(&h.call("restore_file", &meta.display().to_string(), b""));
    assert_eq!(std::fs::read(&meta).unwrap(), set.objects[&meta_name]);
    for name in [&data_name, &meta_name] {
        let text = ok(&admin(
            &h,
            &[
                "inspect",
                h.stored_at(TS, name).to_str().unwrap(),
                "--identity",
                h.private_identity().to_str().unwrap(),
            ],
        ));
        assert!(
            field(&text, "encoding").starts_with("ASCII armor"),
            "{text}"
        );
        assert!(field(&text, "verified").starts_with("yes"), "{text}");
        assert_eq!(field(&text, "name"), name.as_str());
    }
    let text = ok(&admin(&h, &["verify", h.config.to_str().unwrap(), TS]));
    assert!(text.contains("0 failed"), "verify: {text}");

    // allow_plaintext_restore never passes an age file through, armored or not: a
    // damaged armor, and age files for a stranger's key, are refused.
    h.write_config(&[("restore_subset", "on"), ("allow_plaintext_restore", "on")]);
    let stored = h.stored_at(TS, &data_name);
    let armored = std::fs::read(&stored).unwrap();
    // Not base64 at all, and base64 of other bytes (valid armor, altered payload).
    let mut bad_armor = armored.clone();
    let at = bad_armor.len() / 2;
    bad_armor[at] = b'!';
    let mut altered = armored.clone();
    // The 11th character of a line in the middle (the BEGIN line is 35 bytes, then
    // lines of 64 characters and a newline).
    let at = 35 + (at / 65) * 65 + 10;
    altered[at] = if altered[at] == b'A' { b'B' } else { b'A' };
    let stranger_dir = tempfile::tempdir().unwrap();
    let stranger_id = stranger_dir.path().join("stranger.txt");
    let out = Command::new("age-keygen")
        .arg("-o")
        .arg(&stranger_id)
        .output()
        .unwrap();
    assert!(out.status.success());
    let stranger = Command::new("age-keygen")
        .arg("-y")
        .arg(&stranger_id)
        .output()
        .unwrap();
    let stranger = String::from_utf8(stranger.stdout).unwrap();
    let plain = stranger_dir.path().join("plain");
    std::fs::write(&plain, b"CREATE TABLE t();\n").unwrap();
    let for_stranger = |armor: bool| {
        let mut cmd = Command::new("age");
        if armor {
            cmd.arg("-a");
        }
        let out = cmd
            .arg("-r")
            .arg(stranger.trim())
            .arg(&plain)
            .output()
            .unwrap();
        assert!(out.status.success());
        out.stdout
    };
    for (what, bytes, needle) in [
        (
            "damaged armor",
            bad_armor,
            "ASCII-armored age file (age -a) whose armor is invalid",
        ),
        ("altered inside the armor", altered, "authentication failed"),
        (
            "armored, a stranger's key",
            for_stranger(true),
            "no identity",
        ),
        (
            "binary, a stranger's key",
            for_stranger(false),
            "no identity",
        ),
    ] {
        std::fs::write(&stored, &bytes).unwrap();
        let out = h.restore_data(&data_key);
        assert_fails_with(&out, needle);
        assert!(
            data.starts_with(&out.stdout) && out.stdout.len() < data.len(),
            "{what}: passed through"
        );
        assert!(
            !contains(&out.stdout, b"BEGIN AGE"),
            "{what}: passed through"
        );
    }
    std::fs::write(&stored, &armored).unwrap();

    // rotate re-wraps them like any other object; they are stored binary afterwards.
    let b = keygen(h.path(), "b");
    h.write_config(&[
        ("restore_subset", "on"),
        ("recipients_file", ""),
        ("recipients", &b.recipient),
        (
            "identity_file",
            &format!(
                "{},{}",
                h.private_identity().display(),
                b.identity.display()
            ),
        ),
    ]);
    let text = ok(&rotate(&h, &[], &[TS]));
    assert!(text.contains("0 failed"), "rotate: {text}");
    for name in [&data_name, &meta_name, &config_name] {
        let bytes = std::fs::read(h.stored_at(TS, name)).unwrap();
        assert!(bytes.starts_with(b"age-encryption.org/v1\n"), "{name}");
    }
    let logged = h.call_log_lines();
    assert_eq!(
        logged
            .iter()
            .filter(|l| l.contains("command=rotate ") && l.contains("stored binary now"))
            .count(),
        3,
        "{logged:#?}"
    );
    h.write_config(&[
        ("recipients_file", ""),
        ("recipients", &b.recipient),
        ("identity_file", &b.identity.display().to_string()),
    ]);
    let out = h.restore_data(&data_key);
    assert_ok(&out);
    assert!(out.stdout == *data);
}

#[test]
fn an_age_file_this_plugin_did_not_write_is_named_with_the_stock_command() {
    let h = Harness::new(&[]);
    let identity = h.private_identity();
    let dir = tempfile::tempdir().unwrap();
    for (oid, original) in [(16384, random_bytes(100_000, 77)), (16385, Vec::new())] {
        let key = h.data_key(0, oid);
        let stored = h.stored(&key);
        std::fs::create_dir_all(stored.parent().unwrap()).unwrap();
        std::fs::write(&stored, go_encrypt(dir.path(), &original, false)).unwrap();
        let name = format!("gpbackup_0_{TS}_{oid}");
        for allow_plaintext in ["off", "on"] {
            h.write_config(&[("allow_plaintext_restore", allow_plaintext)]);
            let out = h.restore_data(&key);
            let err = assert_fails_with(&out, "decrypts, but gpbackup_age_plugin did not write it");
            assert!(out.stdout.is_empty());
            let command = format!("age -d -i {} {name} > {name}.decrypted", identity.display());
            assert!(err.trim_end().ends_with(&command), "{err}");
            // The command works on the object fetched from storage.
            let work = dir.path().join(format!("fetched{oid}"));
            std::fs::create_dir_all(&work).unwrap();
            std::fs::copy(&stored, work.join(&name)).unwrap();
            let run = run_in(&work, &format!("cd '{}' && {command}", work.display()), b"");
            assert!(run.status.success(), "{command}");
            assert!(std::fs::read(work.join(format!("{name}.decrypted"))).unwrap() == original);
        }
        h.write_config(&[]);
        // inspect says what it is, not "empty".
        let out = Command::new(BIN)
            .args(["inspect", "--identity"])
            .arg(&identity)
            .arg(&stored)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            field(&text, "content").starts_with("not written by gpbackup_age_plugin"),
            "{text}"
        );
        assert!(field(&text, "content").contains("age -d -i"), "{text}");
        for wrong in ["frames:", "empty object", "compression:"] {
            assert!(!text.contains(wrong), "{wrong} in:\n{text}");
        }
    }
    // A file restore says the same and leaves no file.
    let file = h.backup_dir(-1).join(format!("gpbackup_{TS}_report"));
    let stored = h.stored(&file.display().to_string());
    std::fs::write(&stored, go_encrypt(dir.path(), b"report", false)).unwrap();
    let out = h.call("restore_file", &file.display().to_string(), b"");
    assert_fails_with(&out, "; recover it with the stock age CLI: age -d -i");
    assert!(!file.exists());
}
