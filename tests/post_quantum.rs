//! Hybrid post-quantum keys (ML-KEM-768 + X25519, `age1pq1…` / `AGE-SECRET-KEY-PQ-1…`)
//! through the plugin, run as gpbackup runs it (`bash -c`) against the real local inner
//! plugin: keygen --pq, backup, restore, subset restore, verify, inspect, rotation from
//! classic to post-quantum keys, and the rule that one object never mixes the two kinds.

mod common;

use common::*;

const TS: &str = "20250101010101";
const STANZA_LINE: &[u8] = b"age-encryption.org/v1\n-> mlkem768x25519 ";

fn key_id(recipient: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(recipient.as_bytes())[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An operator command through `bash -c`, arguments single-quoted.
fn shell(h: &Harness, args: &[&str]) -> std::process::Output {
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    h.run(&quoted.join(" "), b"")
}

#[test]
fn keygen_pq_writes_an_age_keygen_pq_file() {
    let h = Harness::new(&[]);
    let p = keygen_pq(h.path(), "pq");
    assert!(p.recipient.starts_with("age1pq1"), "{}", p.recipient);
    assert_eq!(p.recipient.len(), 1959);
    let text = std::fs::read_to_string(&p.identity).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("# created: "), "{text}");
    assert_eq!(lines[1], format!("# public key: {}", p.recipient));
    assert!(lines[2].starts_with("AGE-SECRET-KEY-PQ-1"));
    assert_eq!(lines[2].len(), 77);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&p.identity).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // keys/README.md's way of putting the recipient into a recipients file.
    let file = h.path().join("recipients.txt");
    let out = run_in(
        &h.home(),
        &format!(
            "grep '^# public key: ' '{}' | cut -d' ' -f4 > '{}'",
            p.identity.display(),
            file.display()
        ),
        b"",
    );
    assert_ok(&out);
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        format!("{}\n", p.recipient)
    );
    // Never over an existing file.
    let again = shell(&h, &["keygen", "--pq", p.identity.to_str().unwrap()]);
    assert_fails_with(&again, "already exists");
    assert_eq!(std::fs::read_to_string(&p.identity).unwrap(), text);
}

#[test]
fn post_quantum_backup_restores_subsets_verifies_and_inspects() {
    let h = Harness::new(&[]);
    let p = keygen_pq(h.path(), "pq");
    use_keys(&h, &[&p], &[&p], &[("restore_subset", "on")]);
    let set = simulate_backup(&h, &SimSpec::multi_file(TS));
    for name in set.objects.keys() {
        let object = h.stored_at(TS, name);
        assert!(
            std::fs::read(&object).unwrap().starts_with(STANZA_LINE),
            "{name} is not encrypted to the post-quantum key"
        );
        assert_eq!(stanza_tags(&object), ["mlkem768x25519"]);
    }
    restore_all(&h, &set);

    check_subset_restore(&h);

    let text = ok(&shell(&h, &["verify", h.config.to_str().unwrap(), TS]));
    assert_eq!(
        summaries(&text)[0][..2],
        [
            format!("verify {TS}: 12 objects (2 segments)"),
            "  12 ok, 0 failed".to_string()
        ],
        "{text}"
    );
    assert!(
        text.contains(&format!("opened by key {}", key_id(&p.recipient))),
        "{text}"
    );

    let object = h.stored_at(TS, set.data_objects()[0]);
    let bare = ok(&shell(&h, &["inspect", object.to_str().unwrap()]));
    assert!(bare.contains("stanza types: mlkem768x25519 x1\n"), "{bare}");
    assert!(bare.contains("post-quantum: yes"), "{bare}");
    let header_len = age_header_len(&std::fs::read(&object).unwrap());
    assert!(
        bare.contains(&format!("header size: {header_len} bytes")),
        "{bare}"
    );
    let full = ok(&shell(
        &h,
        &[
            "inspect",
            object.to_str().unwrap(),
            "--identity",
            p.identity.to_str().unwrap(),
        ],
    ));
    assert!(
        full.contains(&format!("opened with: key {}", key_id(&p.recipient))),
        "{full}"
    );
    assert!(full.contains("verified: yes"), "{full}");
}

#[test]
fn rotate_moves_a_classic_backup_to_post_quantum_keys() {
    let h = Harness::new(&[]);
    let a = keygen(h.path(), "classic");
    let p = keygen_pq(h.path(), "pq");
    use_keys(&h, &[&a], &[&a], &[]);
    let set = simulate_backup(&h, &SimSpec::single_data_file(TS));
    let before: Vec<(String, Vec<u8>)> = set
        .objects
        .keys()
        .map(|n| (n.clone(), std::fs::read(h.stored_at(TS, n)).unwrap()))
        .collect();

    // During the move the keyring holds both kinds, here in one file as an operator
    // would concatenate them: the classic key first, the post-quantum one after it.
    let keyring = h.path().join("keyring.txt");
    let both = format!(
        "{}{}",
        std::fs::read_to_string(&a.identity).unwrap(),
        std::fs::read_to_string(&p.identity).unwrap()
    );
    std::fs::write(&keyring, both).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&keyring, std::fs::Permissions::from_mode(0o600)).unwrap();
    let keyring_key = TestKey {
        identity: keyring.clone(),
        recipient: String::new(),
    };
    use_keys(&h, &[&p], &[&keyring_key], &[]);
    let work = h.path().join("work");
    let text = ok(&shell(
        &h,
        &[
            "rotate",
            h.config.to_str().unwrap(),
            "--work-dir",
            work.to_str().unwrap(),
            TS,
        ],
    ));
    assert!(
        text.starts_with(&format!("rotate {TS}: 9 objects")) && text.contains("9 re-wrapped"),
        "{text}"
    );
    assert!(
        text.trim_end()
            .ends_with(&format!("recipients now: key {}", key_id(&p.recipient))),
        "{text}"
    );
    for (name, old) in &before {
        let path = h.stored_at(TS, name);
        let new = std::fs::read(&path).unwrap();
        assert_eq!(stanza_tags(&path), ["mlkem768x25519"], "{name}");
        // Re-wrapped: the payload (nonce and every chunk) is byte for byte the same.
        assert_eq!(
            new[age_header_len(&new)..],
            old[age_header_len(old)..],
            "{name}: payload changed"
        );
        // The classic key no longer opens it (stock age with the old key).
        assert!(age_cli_decrypt(&a.identity, &path).is_none(), "{name}");
    }

    // The post-quantum key alone now verifies, restores and inspects everything.
    let text = ok(&shell(
        &h,
        &[
            "verify",
            h.config.to_str().unwrap(),
            TS,
            "--identity",
            p.identity.to_str().unwrap(),
        ],
    ));
    assert!(text.contains("9 ok, 0 failed"), "{text}");
    use_keys(&h, &[&p], &[&p], &[]);
    restore_all(&h, &set);
    let text = ok(&shell(&h, &["verify", h.config.to_str().unwrap(), TS]));
    assert!(text.contains("9 ok, 0 failed"), "{text}");
    let one = h.stored_at(TS, set.data_objects()[0]);
    let out = ok(&shell(
        &h,
        &[
            "inspect",
            one.to_str().unwrap(),
            "--identity",
            keyring.to_str().unwrap(),
        ],
    ));
    assert!(out.contains("post-quantum: yes"), "{out}");
    // The combined keyring labels the post-quantum identity by its own key id.
    assert!(
        out.contains(&format!("opened with: key {}", key_id(&p.recipient))),
        "{out}"
    );
    assert!(out.contains("verified: yes"), "{out}");
}

#[test]
fn one_object_never_mixes_post_quantum_and_classic_recipients() {
    let h = Harness::new(&[]);
    let a = keygen(h.path(), "classic");
    let p = keygen_pq(h.path(), "pq");
    use_keys(&h, &[&p, &a], &[&p], &[]);
    let dir = h.seg_dir(0, TS);
    let setup = h.call(
        "setup_plugin_for_backup",
        &format!("{} segment \\\"0\\\"", dir.display()),
        b"",
    );
    let err = assert_fails_with(&setup, "recipients mix post-quantum keys");
    assert!(err.contains(&p.recipient[..20]), "{err}");
    assert!(err.contains(&a.recipient[..20]), "{err}");
    assert!(err.contains("only as strong as X25519"), "{err}");
    let key = h.data_key(0, 16384);
    assert_fails_with(&h.backup_data(&key, b"secret rows"), "recipients mix");
    assert!(!h.stored(&key).exists(), "nothing is stored");

    // The same from a recipients file, which names the lines.
    let file = h.path().join("recipients.txt");
    std::fs::write(&file, format!("# new\n{}\n{}\n", p.recipient, a.recipient)).unwrap();
    h.write_config(&[
        ("recipients_file", file.to_str().unwrap()),
        ("identity_file", p.identity.to_str().unwrap()),
    ]);
    let err = assert_fails_with(&h.backup_data(&key, b"secret rows"), "recipients mix");
    assert!(err.contains("recipients.txt line 2"), "{err}");
    assert!(err.contains("recipients.txt line 3"), "{err}");

    // Several post-quantum recipients together are fine.
    let q = keygen_pq(h.path(), "pq2");
    use_keys(&h, &[&p, &q], &[&q], &[]);
    assert_ok(&h.backup_data(&key, b"secret rows"));
    assert_eq!(
        stanza_tags(&h.stored(&key)),
        ["mlkem768x25519", "mlkem768x25519"]
    );
    let out = h.restore_data(&key);
    assert_ok(&out);
    assert_eq!(out.stdout, b"secret rows");
}

#[test]
fn post_quantum_key_mistakes_are_one_clear_line() {
    let h = Harness::new(&[]);
    let p = keygen_pq(h.path(), "pq");
    let dir = h.seg_dir(0, TS);
    let hook = |command: &str| {
        h.call(
            command,
            &format!("{} segment \\\"0\\\"", dir.display()),
            b"",
        )
    };

    // A recipient with one character changed: the Bech32 checksum catches it.
    let mut bad = p.recipient.clone().into_bytes();
    bad[500] = if bad[500] == b'q' { b'p' } else { b'q' };
    let bad = String::from_utf8(bad).unwrap();
    h.write_config(&[("recipients", &bad), ("recipients_file", "")]);
    let err = assert_fails_with(&hook("setup_plugin_for_backup"), "post-quantum");
    assert!(err.contains("checksum"), "{err}");

    // An identity line with one character changed: named by file and line, and the
    // key is not quoted.
    let text = std::fs::read_to_string(&p.identity).unwrap();
    let secret = text.lines().nth(2).unwrap().to_string();
    let mut broken = secret.clone().into_bytes();
    broken[40] = if broken[40] == b'Q' { b'P' } else { b'Q' };
    let broken = String::from_utf8(broken).unwrap();
    let file = h.path().join("broken.txt");
    std::fs::write(&file, text.replace(&secret, &broken)).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    h.write_config(&[
        ("recipients", &p.recipient),
        ("recipients_file", ""),
        ("identity_file", file.to_str().unwrap()),
    ]);
    let err = assert_fails_with(&hook("setup_plugin_for_restore"), "broken.txt line 3");
    assert!(err.contains("post-quantum identity"), "{err}");
    assert!(!err.contains(&broken[20..40]), "the key leaked: {err}");

    // CRLF line ends (a file that went through Windows) still load, and so does a file
    // holding a classic and a post-quantum identity.
    let crlf = h.path().join("crlf.txt");
    std::fs::write(&crlf, text.replace('\n', "\r\n")).unwrap();
    std::fs::set_permissions(&crlf, std::fs::Permissions::from_mode(0o600)).unwrap();
    h.write_config(&[
        ("recipients", &p.recipient),
        ("recipients_file", ""),
        ("identity_file", crlf.to_str().unwrap()),
    ]);
    assert_ok(&hook("setup_plugin_for_restore"));
    let key = h.data_key(0, 1);
    assert_ok(&h.backup_data(&key, b"rows"));
    let out = h.restore_data(&key);
    assert_ok(&out);
    assert_eq!(out.stdout, b"rows");
}
