//! Interoperability of post-quantum objects with the TypeScript reference implementation
//! of age (npm package `age-encryption`, pinned in tests/interop/package.json and driven
//! by tests/interop/age.mjs), in both directions: the age layer at the STREAM chunk
//! boundaries, whole plugin objects recovered with it and `zstd -d`, objects it wrote
//! restored through the plugin, and keys made by either side used by the other.
//!
//! Node is needed. Outside CI the tests skip, saying so, when `node` is not installed;
//! in CI (`CI` set) they fail instead. The package is installed with `npm ci` on first
//! use if .ci/run has not done it already.

mod age_layer;
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use age_layer::*;
use common::*;
use gpbackup_age_plugin::keys;

fn interop_dir() -> PathBuf {
    repo().join("tests/interop")
}

/// True when Node and the package are there; false (after saying why) when the tests
/// must skip; panics in CI, which must run them.
fn typage_ready() -> bool {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        let node = Command::new("node").arg("--version").output();
        if !node.is_ok_and(|o| o.status.success()) {
            return Err("node is not installed".into());
        }
        if !interop_dir().join("node_modules/age-encryption").exists() {
            let out = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(interop_dir())
                .output()
                .map_err(|e| format!("npm: {e}"))?;
            if !out.status.success() {
                panic!(
                    "npm ci in tests/interop failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        Ok(())
    });
    match ready {
        Ok(()) => true,
        Err(why) if std::env::var_os("CI").is_some() => {
            panic!("CI must run the typage interop tests, but {why} (.ci/run installs Node)")
        }
        Err(why) => {
            eprintln!("SKIPPED: interop with the TypeScript age implementation: {why}");
            false
        }
    }
}

/// `node tests/interop/age.mjs ARGS` with `stdin`.
fn typage(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new("node")
        .arg(interop_dir().join("age.mjs"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run node");
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let feeder = std::thread::spawn(move || {
        use std::io::Write;
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    out
}

#[track_caller]
fn typage_ok(args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let out = typage(args, stdin);
    assert!(
        out.status.success(),
        "age.mjs {}: {}",
        args[0],
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A key pair made by the TypeScript implementation, its identity written to
/// `dir/<name>.txt` the way `age-keygen -pq` writes a key file.
fn typage_keygen(dir: &Path, name: &str) -> TestKey {
    let out = String::from_utf8(typage_ok(&["keygen-pq"], b"")).unwrap();
    let mut lines = out.lines();
    let (identity, recipient) = (lines.next().unwrap(), lines.next().unwrap());
    let path = dir.join(format!("{name}.txt"));
    std::fs::write(
        &path,
        format!("# created: 2025-11-17T12:15:17+01:00\n# public key: {recipient}\n{identity}\n"),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    TestKey {
        identity: path,
        recipient: recipient.to_string(),
    }
}

fn our_identities(key: &TestKey) -> keys::Keyring {
    keys::Keyring::load(
        std::slice::from_ref(&key.identity),
        keys::KeyOrigin::IdentityFileOption,
    )
    .expect("load the identity file")
}

fn our_recipient(key: &TestKey) -> Vec<keys::RecipientKey> {
    vec![keys::RecipientKey::parse(&key.recipient).expect("a recipient")]
}

const SIZES: [usize; 6] = [0, 1, K64 - 1, K64, K64 + 1, 5 * 1024 * 1024 + 3];

#[test]
fn the_age_layer_interoperates_both_ways_at_chunk_boundaries() {
    if !typage_ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ours = keygen_pq(dir.path(), "ours");
    let theirs = typage_keygen(dir.path(), "theirs");
    // Each side derives the same recipient from the other's identity file.
    let derived = typage_ok(&["to-recipient", ours.identity.to_str().unwrap()], b"");
    assert_eq!(String::from_utf8(derived).unwrap().trim(), ours.recipient);
    assert!(
        keys::RecipientKey::parse(&theirs.recipient).is_ok(),
        "their recipient parses"
    );

    for (i, &len) in SIZES.iter().enumerate() {
        let data = random_bytes(len, i as u64 + 1);
        for key in [&ours, &theirs] {
            // We write, it decrypts.
            let sealed = our_seal(&data, our_recipient(key), (2, 3));
            assert!(sealed.starts_with(b"age-encryption.org/v1\n-> mlkem768x25519 "));
            let back = typage_ok(&["decrypt", key.identity.to_str().unwrap()], &sealed);
            assert!(back == data, "{len} bytes: typage decrypted something else");
            // It writes, we decrypt.
            let sealed = typage_ok(&["encrypt", &key.recipient], &data);
            let back = our_open(&sealed, our_identities(key).identities(), (2, 3))
                .unwrap_or_else(|e| panic!("{len} bytes from typage: {e}"));
            assert!(back == data, "{len} bytes: we decrypted something else");
        }
    }
}

#[test]
fn typage_recovers_plugin_objects_and_writes_objects_the_plugin_restores() {
    if !typage_ready() {
        return;
    }
    let h = Harness::new(&[]);
    let ours = keygen_pq(h.path(), "ours");
    let theirs = typage_keygen(h.path(), "theirs");
    use_keys(&h, &[&ours], &[&ours], &[]);
    let originals = [
        Vec::new(),
        b"x".to_vec(),
        random_bytes(K64 - 1, 3),
        random_bytes(3 * 1024 * 1024 + 5, 4),
    ];
    for (i, data) in originals.iter().enumerate() {
        let key = h.data_key(0, 16384 + i as u32);
        assert_ok(&h.backup_data(&key, data));
        let object = std::fs::read(h.stored(&key)).unwrap();
        // Recovery without our plugin: typage decrypts, zstd decompresses.
        let payload = typage_ok(&["decrypt", ours.identity.to_str().unwrap()], &object);
        let out = run_in(&h.home(), "zstd -d -q -c", &payload);
        assert!(out.status.success(), "zstd -d");
        assert!(
            out.stdout == *data,
            "{} bytes via typage | zstd -d",
            data.len()
        );

        // Typage re-encrypts the same payload to its own key; the plugin restores it
        // with that key from an age-keygen style file.
        let rewritten = typage_ok(&["encrypt", &theirs.recipient], &payload);
        std::fs::write(h.stored(&key), &rewritten).unwrap();
    }
    use_keys(&h, &[&theirs], &[&theirs], &[]);
    for (i, data) in originals.iter().enumerate() {
        let key = h.data_key(0, 16384 + i as u32);
        let out = h.restore_data(&key);
        assert_ok(&out);
        assert!(
            out.stdout == *data,
            "{} bytes written by typage",
            data.len()
        );
    }
    let one = h.stored(&h.data_key(0, 16385));
    let out = h.run(
        &format!(
            "inspect '{}' --identity '{}'",
            one.display(),
            theirs.identity.display()
        ),
        b"",
    );
    let text = ok(&out);
    assert!(text.contains("post-quantum: yes"), "{text}");
    assert!(text.contains("verified: yes"), "{text}");
}

#[test]
fn objects_typage_wrote_to_mixed_recipients_open_with_either_key() {
    if !typage_ready() {
        return;
    }
    let h = Harness::new(&[]);
    let pq = keygen_pq(h.path(), "pq");
    let classic = keygen(h.path(), "classic");
    // An object of ours, re-encrypted by typage to both kinds at once (which we refuse
    // to write, but read).
    use_keys(&h, &[&pq], &[&pq], &[]);
    let key = h.data_key(0, 16384);
    let data = random_bytes(2 * K64 + 11, 9);
    assert_ok(&h.backup_data(&key, &data));
    let payload = typage_ok(
        &["decrypt", pq.identity.to_str().unwrap()],
        &std::fs::read(h.stored(&key)).unwrap(),
    );
    let mixed = typage_ok(&["encrypt", &pq.recipient, &classic.recipient], &payload);
    std::fs::write(h.stored(&key), &mixed).unwrap();
    for identity in [&pq, &classic] {
        use_keys(&h, &[&pq], &[identity], &[]);
        let out = h.restore_data(&key);
        assert_ok(&out);
        assert!(out.stdout == data, "mixed object with one key");
    }
    let text = ok(&h.run(&format!("inspect '{}'", h.stored(&key).display()), b""));
    assert!(
        text.contains("stanza types: X25519 x1, mlkem768x25519 x1"),
        "{text}"
    );
    assert!(
        text.contains("post-quantum: no: post-quantum and classic"),
        "{text}"
    );
}

#[test]
fn the_spec_example_identity_gives_the_same_recipient_in_typage() {
    if !typage_ready() {
        return;
    }
    // The identity of the spec's worked example, in an age-keygen style file: typage
    // and we derive the same recipient, which is the spec's.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("spec.txt");
    std::fs::write(
        &file,
        "AGE-SECRET-KEY-PQ-1XX76JRALNLXDMEW0CRK45QMCCH4X06SE84UN3VPM33W6HWDX0H3SK3ZQFR\n",
    )
    .unwrap();
    let spec_recipient =
        std::fs::read_to_string(repo().join("src/keys/testdata/spec_recipient.txt")).unwrap();
    let theirs = typage_ok(&["to-recipient", file.to_str().unwrap()], b"");
    assert_eq!(
        String::from_utf8(theirs).unwrap().trim(),
        spec_recipient.trim()
    );
}
