//! `keygen`: a new identity in age-keygen's format, mode 0600, never overwriting.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::*;

#[test]
fn keygen_writes_a_private_identity_that_stock_age_uses() {
    let h = Harness::new(&[]);
    let key = keygen(h.path(), "new");
    assert!(key.recipient.starts_with("age1"), "{}", key.recipient);
    let mode = std::fs::metadata(&key.identity)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "identity file mode");
    let text = std::fs::read_to_string(&key.identity).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("# created: "), "{text}");
    assert_eq!(lines[1], format!("# public key: {}", key.recipient));
    assert!(lines[2].starts_with("AGE-SECRET-KEY-1"), "secret key line");

    // age-keygen derives the same recipient, and stock age round-trips with the pair.
    let y = Command::new("age-keygen")
        .arg("-y")
        .arg(&key.identity)
        .output()
        .unwrap();
    assert!(y.status.success());
    assert_eq!(String::from_utf8_lossy(&y.stdout).trim(), key.recipient);
    let script = format!(
        "age -r {} | age -d -i {}",
        key.recipient,
        key.identity.display()
    );
    let out = run_in(&h.home(), &script, b"round trip");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"round trip");

    // The plugin itself backs up to the recipient and restores with the identity.
    use_keys(&h, &[&key], &[&key], &[]);
    let data_key = h.data_key(0, 16384);
    assert_ok(&h.backup_data(&data_key, b"table data"));
    let restored = h.restore_data(&data_key);
    assert_ok(&restored);
    assert_eq!(restored.stdout, b"table data");
}

#[test]
fn keygen_refuses_to_overwrite_and_reports_one_line() {
    let h = Harness::new(&[]);
    let key = keygen(h.path(), "k");
    let before = std::fs::read(&key.identity).unwrap();
    let again = admin(&h, &["keygen", key.identity.to_str().unwrap()]);
    let err = assert_fails_with(&again, "already exists");
    assert!(err.contains(key.identity.to_str().unwrap()), "{err}");
    assert!(again.stdout.is_empty(), "no recipient printed on failure");
    assert_eq!(
        std::fs::read(&key.identity).unwrap(),
        before,
        "file unchanged"
    );

    // Not even through a symlink, and a missing directory is a clear error.
    let link = h.path().join("link.txt");
    std::os::unix::fs::symlink(h.path().join("elsewhere.txt"), &link).unwrap();
    assert_fails_with(
        &admin(&h, &["keygen", link.to_str().unwrap()]),
        "already exists",
    );
    assert!(!h.path().join("elsewhere.txt").exists());
    let missing = h.path().join("no/such/dir/key.txt");
    assert_fails_with(
        &admin(&h, &["keygen", missing.to_str().unwrap()]),
        "cannot create",
    );
}
