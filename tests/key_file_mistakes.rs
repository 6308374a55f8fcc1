//! Every identity or recipient file mistake names what the file actually is, in one
//! line, through the binary run as gpbackup runs it (`bash -c`, quoted content IDs)
//! with the real local inner plugin, and through the operator commands' `--identity`:
//! a public key where a private key belongs and the reverse, a passphrase-encrypted
//! age file (`age -p`, binary and armored), a passphrase-protected SSH key, a plugin
//! key whose plugin is not on PATH, an empty file, a file of comments only. A mode
//! readable by others is a warning: in the call log of a data command (whose stderr
//! stays empty), on stderr too for an operator command.

mod common;

use std::process::Command;

use common::*;

/// `text` saved as `name` in the harness's directory, mode 0600.
fn key_file(h: &Harness, name: &str, bytes: &[u8]) -> String {
    let path = h.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.display().to_string()
}

/// `age -p` (stock age 1.1.1, `-a` when `armor`) encrypting `plain` with a passphrase
/// typed into the terminal `script` gives it.
fn age_passphrase_encrypted(h: &Harness, plain: &str, armor: bool) -> String {
    let out = h
        .path()
        .join(if armor { "pass.age.txt" } else { "pass.age" });
    let run = run_script(
        &h.home(),
        &tmpdir(h),
        &format!(
            "setsid -w script -qec \"age -p {} -o '{}' '{plain}'\" /dev/null",
            if armor { "-a" } else { "" },
            out.display()
        ),
        b"correct horse\ncorrect horse\n",
    );
    assert!(run.status.success(), "{}", stderr_of(&run));
    let bytes = std::fs::read(&out).unwrap();
    let start: &[u8] = if armor {
        b"-----BEGIN AGE ENCRYPTED FILE-----"
    } else {
        b"age-encryption.org/v1\n-> scrypt "
    };
    assert!(bytes.starts_with(start), "age -p wrote {bytes:?}");
    out.display().to_string()
}

/// An ed25519 SSH key made by ssh-keygen, with `passphrase` (empty: none): the
/// private key file and the public key line.
fn ssh_key(h: &Harness, name: &str, passphrase: &str) -> (String, String) {
    let path = h.path().join(name);
    let out = Command::new("ssh-keygen")
        .args([
            "-q", "-t", "ed25519", "-C", "dba@host", "-N", passphrase, "-f",
        ])
        .arg(&path)
        .output()
        .expect("run ssh-keygen (openssh-client)");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    (path.display().to_string(), public.trim().to_string())
}

/// A plugin identity and recipient of the plugin `nosuch`, which is installed nowhere.
fn missing_plugin_keys() -> (String, String) {
    use bech32::{ToBase32, Variant};
    let identity = bech32::encode("age-plugin-nosuch-", [7u8; 8].to_base32(), Variant::Bech32)
        .unwrap()
        .to_uppercase();
    let recipient = bech32::encode("age1nosuch", [9u8; 8].to_base32(), Variant::Bech32).unwrap();
    (identity, recipient)
}

/// A new X25519 key (gpbackup_age_plugin keygen): its identity file's text and its
/// recipient.
fn new_keys(h: &Harness) -> (String, String) {
    let k = keygen(h.path(), "fresh");
    (std::fs::read_to_string(&k.identity).unwrap(), k.recipient)
}

#[test]
fn identity_file_mistakes_name_what_the_file_is() {
    let h = Harness::new(&[]);
    let key = h.data_key(0, 16384);
    assert_ok(&call_bounded(&h, "backup_data", &key, b"rows"));
    let object = h.stored(&key).display().to_string();
    let (identity, recipient) = new_keys(&h);
    let plain = key_file(&h, "plain.txt", identity.as_bytes());
    let (ssh_locked, _) = ssh_key(&h, "id_locked", "secret words");
    let (_, ssh_public) = ssh_key(&h, "id_open", "");
    let (plugin_identity, plugin_recipient) = missing_plugin_keys();
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            key_file(&h, "public.txt", format!("{recipient}\n").as_bytes()),
            vec!["holds a recipient (a public key, age1…) on line 1, not an identity"],
        ),
        (
            key_file(&h, "plugin-public.txt", format!("# token\n{plugin_recipient}\n").as_bytes()),
            vec!["holds a recipient (a public key, age1…) on line 2, not an identity"],
        ),
        (
            key_file(&h, "id.pub", format!("{ssh_public}\n").as_bytes()),
            vec!["is an SSH public key, not a private key"],
        ),
        (
            age_passphrase_encrypted(&h, &plain, true),
            vec!["is a passphrase-encrypted age file (ASCII-armored, as age -p -a writes it)", "age -d -o key.txt"],
        ),
        (
            age_passphrase_encrypted(&h, &plain, false),
            vec!["is a passphrase-encrypted age file (as age -p writes it)", "age -d -o key.txt"],
        ),
        (ssh_locked, vec!["is a passphrase-protected SSH key"]),
        (
            key_file(&h, "token.txt", format!("{plugin_identity}\n").as_bytes()),
            vec!["line 1: a plugin identity needs the age plugin program age-plugin-nosuch, which is not on PATH ("],
        ),
        (key_file(&h, "empty.txt", b""), vec!["is empty (0 bytes)"]),
        (
            key_file(&h, "comments.txt", b"# created: today\n\n# public key: age1...\n"),
            vec!["holds no identity, only comments or blank lines"],
        ),
    ];
    for (file, needles) in &cases {
        // A restore, as gprestore runs it: the config's identity_file.
        h.write_config(&[("identity_file", file)]);
        let out = call_bounded(&h, "restore_data", &key, b"");
        let named = format!("option identity_file {file}");
        let mut all = needles.clone();
        all.push(&named);
        let line = assert_one_line_failure(&out, &all);
        assert!(!line.contains("AGE-SECRET-KEY-1"), "{line}");
        assert!(out.stdout.is_empty());
        // An operator's --identity: the same words, naming the flag.
        let out = run_bounded(&h, &format!("inspect '{object}' --identity '{file}'"), b"");
        let named = format!("--identity {file}");
        let mut all = needles.clone();
        all.push(&named);
        assert_one_line_failure(&out, &all);
    }
}

#[test]
fn recipients_file_mistakes_name_what_the_file_is() {
    let h = Harness::new(&[]);
    let key = h.data_key(0, 16384);
    let (identity, _) = new_keys(&h);
    let (ssh_private, _) = ssh_key(&h, "id_open", "");
    let (plugin_identity, plugin_recipient) = missing_plugin_keys();
    let recipients = key_file(
        &h,
        "recipients.txt",
        &std::fs::read(demo_recipients()).unwrap(),
    );
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            key_file(&h, "identity.txt", identity.as_bytes()),
            vec!["a private key (AGE-SECRET-KEY-…) was given where a recipient (age1…) belongs"],
        ),
        (
            key_file(&h, "token.txt", format!("{plugin_identity}\n").as_bytes()),
            vec!["line 1: a plugin identity (AGE-PLUGIN-…) was given where a recipient belongs"],
        ),
        (
            ssh_private,
            vec![
                "line 1: a private key file (-----BEGIN …) was given where a recipient belongs",
                "the .pub file",
            ],
        ),
        (
            age_passphrase_encrypted(&h, &recipients, true),
            vec!["is a passphrase-encrypted age file (ASCII-armored, as age -p -a writes it)"],
        ),
        (
            age_passphrase_encrypted(&h, &recipients, false),
            vec!["is a passphrase-encrypted age file (as age -p writes it)"],
        ),
        (
            key_file(&h, "nosuch.txt", format!("{plugin_recipient}\n").as_bytes()),
            vec![
                "line 1: recipient 'age1nosuch1",
                "needs the age plugin program age-plugin-nosuch, which is not on PATH (",
            ],
        ),
        (key_file(&h, "empty.txt", b""), vec!["is empty (0 bytes)"]),
        (
            key_file(&h, "comments.txt", b"# backup keys\n\n"),
            vec!["holds no recipient, only comments or blank lines"],
        ),
    ];
    for (file, needles) in &cases {
        h.write_config(&[("recipients_file", file)]);
        let named = format!("option recipients_file: {file}");
        let mut all = needles.clone();
        all.push(&named);
        let line = assert_one_line_failure(&call_bounded(&h, "backup_data", &key, b"rows"), &all);
        assert!(!line.contains("AGE-SECRET-KEY-1"), "{line}");
        assert!(!h.stored(&key).exists(), "nothing stored");
        // The setup hook fails the same way, before gpbackup moves any data.
        let hook = format!("{} master \\\"-1\\\"", h.backup_dir(-1).display());
        assert_one_line_failure(
            &call_bounded(&h, "setup_plugin_for_backup", &hook, b""),
            &all,
        );
    }
}

#[test]
fn a_readable_identity_file_is_a_warning_on_stderr_only_for_operator_commands() {
    let h = Harness::new(&[]);
    let key = h.data_key(0, 16384);
    assert_ok(&call_bounded(&h, "backup_data", &key, b"rows"));
    let object = h.stored(&key).display().to_string();
    let identity = h.path().join("readable.txt");
    std::fs::copy(demo_identity(), &identity).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&identity, std::fs::Permissions::from_mode(0o644)).unwrap();
    let warning = format!(
        "gpbackup_age_plugin: warning: identity file {} is readable by group or others (mode 644); chmod 600 it\n",
        identity.display()
    );
    // A data command: success, empty stderr, the warning in the call log.
    h.write_config(&[("identity_file", identity.to_str().unwrap())]);
    let out = call_bounded(&h, "restore_data", &key, b"");
    assert_ok(&out);
    assert_eq!(out.stdout, b"rows");
    assert!(
        h.call_log_lines()
            .iter()
            .any(|l| l.contains("readable by group or others (mode 644)")),
        "{:?}",
        h.call_log_lines()
    );
    // Operator commands: the warning on stderr, and they still do their work.
    let out = run_bounded(
        &h,
        &format!("inspect '{object}' --identity '{}'", identity.display()),
        b"",
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(stderr_of(&out), warning);
    assert!(String::from_utf8_lossy(&out.stdout).contains("verified: yes"));
    let out = run_bounded(
        &h,
        &format!(
            "verify {} {TS} --identity '{}'",
            h.config.display(),
            identity.display()
        ),
        b"",
    );
    assert!(stderr_of(&out).starts_with(&warning), "{}", stderr_of(&out));
}

#[test]
fn a_key_pasted_into_identity_file_is_refused_without_showing_it() {
    let h = Harness::new(&[]);
    let key = h.data_key(0, 16384);
    let (plugin_identity, _) = missing_plugin_keys();
    let (identity, _) = new_keys(&h);
    let secret_line = identity
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .unwrap()
        .to_string();
    for (pasted, needle) in [
        (
            plugin_identity.as_str(),
            "holds an age plugin identity itself",
        ),
        (secret_line.as_str(), "holds a private key itself"),
    ] {
        h.write_config(&[("identity_file", pasted)]);
        let out = call_bounded(&h, "restore_data", &key, b"");
        let line = assert_one_line_failure(&out, &[needle, "option identity_file"]);
        assert!(!line.contains(pasted), "the key is shown: {line}");
        let log = h.call_log_lines().join("\n");
        assert!(!log.contains(pasted), "the key is in the call log");
    }
}
