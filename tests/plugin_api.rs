//! The plugin API as gpbackup drives it: every command through `bash -c` against the
//! built binary, chained to the real example inner plugin.

mod common;

use std::path::Path;
use std::time::{Duration, SystemTime};

use common::*;

const HOOKS: [&str; 4] = [
    "setup_plugin_for_backup",
    "setup_plugin_for_restore",
    "cleanup_plugin_for_backup",
    "cleanup_plugin_for_restore",
];

#[test]
fn plugin_api_version_is_0_5_0() {
    let h = Harness::new(&[]);
    let out = h.run("plugin_api_version", b"");
    assert_ok(&out);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0.5.0\n");
}

#[test]
fn version_is_three_words_with_a_semver() {
    let h = Harness::new(&[]);
    let out = h.run("--version", b"");
    assert_ok(&out);
    let text = String::from_utf8(out.stdout).expect("utf-8");
    assert_eq!(text.lines().count(), 1, "one line: {text:?}");
    let words: Vec<&str> = text.trim_end_matches('\n').split(' ').collect();
    assert_eq!(words.len(), 3, "exactly three words: {text:?}");
    assert_eq!(words[0], "gpbackup_age_plugin");
    assert_eq!(words[1], "version");
    let core = words[2].split(['-', '+']).next().unwrap();
    let parts: Vec<&str> = core.split('.').collect();
    assert_eq!(parts.len(), 3, "semver: {}", words[2]);
    for p in parts {
        assert!(
            !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()),
            "semver: {}",
            words[2]
        );
    }
    assert_eq!(words[2], env!("CARGO_PKG_VERSION"));
}

/// The scopes gpbackup calls each hook with, content IDs quoted as gpbackup quotes them.
fn scopes() -> Vec<(
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    i32,
)> {
    // (scope, content ID in the bash string, as the plugin receives it, segment dir)
    vec![
        ("master", Some(Q_MINUS1), Some("\"-1\""), -1),
        ("coordinator", Some(Q_MINUS1), Some("\"-1\""), -1),
        ("segment_host", None, None, 0),
        ("segment", Some(Q0), Some("\"0\""), 0),
        ("segment", Some(Q1), Some("\"1\""), 1),
    ]
}

#[test]
fn every_hook_at_every_scope_is_forwarded_as_received() {
    let h = Harness::new(&[]);
    let rec = Recorder::new(&h);
    h.write_config(&[("inner_executablepath", &rec.script.display().to_string())]);
    let mut expected_hooks = Vec::new();
    let mut expected_argv = Vec::new();
    for hook in HOOKS {
        for (n, (scope, quoted, received, seg)) in scopes().into_iter().enumerate() {
            // A fresh directory per call, so creation on setup is observable.
            let dir = h.backup_dir(seg).join(format!("{hook}_{n}"));
            let args = match quoted {
                Some(q) => format!("{} {scope} {q}", dir.display()),
                None => format!("{} {scope}", dir.display()),
            };
            let out = h.call(hook, &args, b"");
            assert_ok(&out);
            assert!(
                out.stdout.is_empty(),
                "{hook} {scope}: stdout {:?}",
                out.stdout
            );
            if hook.starts_with("setup_") {
                assert!(
                    dir.is_dir(),
                    "{hook} {scope} did not create {}",
                    dir.display()
                );
            }
            let mut line = format!("{hook} {scope}");
            let mut argv = vec![hook.to_string(), dir.display().to_string(), scope.into()];
            if let Some(r) = received {
                line.push(' ');
                line.push_str(r);
                argv.push(r.to_string());
            }
            expected_hooks.push(line);
            expected_argv.push(argv);
        }
    }
    let hooks_log = std::fs::read_to_string(h.storage().join(".hooks.log")).expect("hooks log");
    assert_eq!(hooks_log.lines().collect::<Vec<_>>(), expected_hooks);

    // The recorded argv: command, the inner config (not ours), then the rest verbatim.
    let calls = rec.calls();
    assert_eq!(calls.len(), expected_argv.len());
    for (call, want) in calls.iter().zip(&expected_argv) {
        assert_eq!(call[0], want[0]);
        assert_ne!(Path::new(&call[1]), h.config.as_path(), "our config leaked");
        assert_eq!(&call[2..], &want[1..], "forwarded arguments of {}", want[0]);
    }
    assert_eq!(h.call_log_lines().len(), expected_argv.len());
}

#[test]
fn hooks_refuse_a_bad_scope_or_content_id_without_forwarding() {
    let h = Harness::new(&[]);
    let dir = h.backup_dir(-1);
    for args in [
        format!("{} bogus {Q_MINUS1}", dir.display()),
        format!("{} segment \\\"abc\\\"", dir.display()),
    ] {
        let out = h.call("setup_plugin_for_backup", &args, b"");
        assert_fails_with(&out, "");
    }
    assert!(
        !h.storage().join(".hooks.log").exists(),
        "a refused hook was forwarded"
    );
}

#[test]
fn backup_setup_needs_recipients_and_no_identity() {
    let h = Harness::new(&[("recipients_file", "")]);
    let dir = h.backup_dir(-1);
    let out = h.call(
        "setup_plugin_for_backup",
        &format!("{} master {Q_MINUS1}", dir.display()),
        b"",
    );
    let err = assert_fails_with(&out, "recipients");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!h.storage().join(".hooks.log").exists(), "forwarded anyway");
    // A backup_data without recipients stores nothing either.
    let key = h.data_key(0, 1);
    assert_fails_with(&h.backup_data(&key, b"data"), "recipients");
    assert!(!h.stored(&key).exists());

    // Backup hosts need no private key.
    let h = Harness::new(&[("identity_file", "")]);
    let out = h.call(
        "setup_plugin_for_backup",
        &format!("{} master {Q_MINUS1}", h.backup_dir(-1).display()),
        b"",
    );
    assert_ok(&out);
    assert_ok(&h.backup_data(&h.data_key(0, 1), b"data"));
}

#[test]
fn restore_setup_needs_a_loadable_identity_and_no_recipients() {
    let base = Harness::new(&[]);
    let garbage = base.path().join("garbage.txt");
    std::fs::write(&garbage, "this is not a key\n").unwrap();
    let missing = base.path().join("no-such-identity.txt");
    let recipients = demo_recipients().display().to_string();
    let cases: Vec<(&str, String)> = vec![
        ("absent", String::new()),
        ("missing file", missing.display().to_string()),
        ("directory", base.path().display().to_string()),
        ("garbage", garbage.display().to_string()),
        ("public key instead of identity", recipients),
        (
            "keyring with one bad file",
            format!("{},{}", demo_identity().display(), missing.display()),
        ),
    ];
    for (what, value) in cases {
        let h = Harness::new(&[("identity_file", &value)]);
        let out = h.call(
            "setup_plugin_for_restore",
            &format!("{} master {Q_MINUS1}", h.backup_dir(-1).display()),
            b"",
        );
        let err = assert_fails_with(&out, "identity_file");
        assert!(!err.contains("panicked"), "{what}: {err}");
        assert!(
            !h.storage().join(".hooks.log").exists(),
            "{what}: forwarded anyway"
        );
    }
    // Restore hosts need no recipients.
    let h = Harness::new(&[("recipients_file", "")]);
    let out = h.call(
        "setup_plugin_for_restore",
        &format!("{} segment_host", h.backup_dir(0).display()),
        b"",
    );
    assert_ok(&out);
}

fn mtime(path: &Path) -> SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

/// A coordinator file as gpbackup writes it, with an old mtime.
fn coordinator_file(h: &Harness, name: &str, content: &[u8]) -> std::path::PathBuf {
    let dir = h.backup_dir(-1);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(old)
        .unwrap();
    path
}

#[test]
fn backup_file_leaves_the_file_untouched_and_restore_file_restores_it() {
    let h = Harness::new(&[]);
    let content = csv_bytes(300_000, 3);
    let path = coordinator_file(&h, &format!("gpbackup_{TS}_metadata.sql"), &content);
    let before = mtime(&path);
    let out = h.call("backup_file", &path.display().to_string(), b"");
    assert_ok(&out);
    assert_eq!(std::fs::read(&path).unwrap(), content, "local file changed");
    assert_eq!(mtime(&path), before, "local file mtime changed");
    let stored = std::fs::read(h.stored(&path.display().to_string())).expect("object stored");
    assert!(stored.starts_with(b"age-encryption.org/v1\n"), "not age");
    assert!(!contains(&stored, &content[..64]), "plaintext in storage");

    std::fs::remove_file(&path).unwrap();
    let out = h.call("restore_file", &path.display().to_string(), b"");
    assert_ok(&out);
    assert!(out.stdout.is_empty());
    assert_eq!(std::fs::read(&path).unwrap(), content);
    // No temporary left beside it.
    let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");

    // Restoring over an existing file replaces it.
    std::fs::write(&path, b"stale").unwrap();
    assert_ok(&h.call("restore_file", &path.display().to_string(), b""));
    assert_eq!(std::fs::read(&path).unwrap(), content);

    // An empty file too.
    let empty = coordinator_file(&h, &format!("gpbackup_{TS}_report"), b"");
    assert_ok(&h.call("backup_file", &empty.display().to_string(), b""));
    std::fs::remove_file(&empty).unwrap();
    assert_ok(&h.call("restore_file", &empty.display().to_string(), b""));
    assert_eq!(std::fs::read(&empty).unwrap(), b"");
}

#[test]
fn backup_file_leaves_the_file_untouched_when_the_inner_plugin_fails() {
    for fault in ["exit_after_bytes", "kill_after_bytes", "exit_before_read"] {
        let h = Harness::new(&[("fault", fault), ("fault_bytes", "1000")]);
        let content = random_bytes(200_000, 11);
        let path = coordinator_file(&h, &format!("gpbackup_{TS}_toc.yaml"), &content);
        let before = mtime(&path);
        let out = h.call("backup_file", &path.display().to_string(), b"");
        assert_fails_with(&out, "");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            content,
            "{fault}: file changed"
        );
        assert_eq!(mtime(&path), before, "{fault}: mtime changed");
        assert!(
            !h.stored(&path.display().to_string()).exists(),
            "{fault}: object committed"
        );
    }
}

#[test]
fn backup_file_of_a_missing_local_file_fails() {
    let h = Harness::new(&[]);
    let path = h.backup_dir(-1).join(format!("gpbackup_{TS}_config.yaml"));
    let out = h.call("backup_file", &path.display().to_string(), b"");
    assert_fails_with(&out, "gpbackup_");
    assert!(!h.stored(&path.display().to_string()).exists());
}

#[test]
fn restore_file_of_a_missing_object_fails_and_leaves_no_file() {
    let h = Harness::new(&[]);
    let dir = h.backup_dir(-1);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("gpbackup_{TS}_metadata.sql"));
    let out = h.call("restore_file", &path.display().to_string(), b"");
    assert_fails_with(&out, "");
    assert!(!path.exists(), "a file was left at the path");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "debris left");
}

#[test]
fn unknown_commands_fail_and_are_never_forwarded() {
    let h = Harness::new(&[]);
    let rec = Recorder::new(&h);
    h.write_config(&[("inner_executablepath", &rec.script.display().to_string())]);
    let local = h.backup_dir(-1);
    std::fs::create_dir_all(&local).unwrap();
    std::fs::write(local.join("secret.txt"), b"PLAINTEXT").unwrap();
    for command in [
        "backup_directory",
        "restore_directory",
        "frobnicate",
        "BACKUP_DATA",
    ] {
        let out = h.call(command, &local.display().to_string(), b"PLAINTEXT");
        assert_fails_with(&out, command);
        assert!(out.stdout.is_empty(), "{command}: stdout");
    }
    assert!(rec.calls().is_empty(), "forwarded: {:?}", rec.calls());
    assert!(files_under(&h.storage()).is_empty(), "something was stored");
}

#[test]
fn delete_backup_removes_one_timestamp_and_keeps_its_sibling() {
    let h = Harness::new(&[]);
    let sibling_ts = "20250101020202";
    let a = h.data_key(0, 16384);
    let b = key_with_ts(&h, sibling_ts, 16384);
    assert_ok(&h.backup_data(&a, b"first backup"));
    assert_ok(&h.backup_data(&b, b"second backup"));
    let out = h.call("delete_backup", TS, b"");
    assert_ok(&out);
    assert!(!h.storage().join(&TS[..8]).join(TS).exists(), "not deleted");
    assert!(!h.stored(&a).exists());
    assert!(h.restore_data(&a).status.code() != Some(0));
    let out = h.restore_data(&b);
    assert_ok(&out);
    assert_eq!(out.stdout, b"second backup");
}

#[test]
fn delete_backup_refuses_an_invalid_timestamp() {
    let h = Harness::new(&[]);
    let rec = Recorder::new(&h);
    h.write_config(&[("inner_executablepath", &rec.script.display().to_string())]);
    let a = h.data_key(0, 16384);
    assert_ok(&h.backup_data(&a, b"keep me"));
    let before = rec.calls().len();
    for bad in [
        "2025",
        "2025010101010a",
        "202501010101011",
        "../../../etc",
        "\\\"\\\"",
        "20250101",
    ] {
        let out = h.call("delete_backup", bad, b"");
        assert_fails_with(&out, "timestamp");
    }
    assert_eq!(
        rec.calls().len(),
        before,
        "an invalid timestamp was forwarded"
    );
    assert_eq!(h.restore_data(&a).stdout, b"keep me");
}

#[test]
fn list_directory_and_delete_directory_are_forwarded() {
    let h = Harness::new(&[]);
    let dir = format!("{}/{TS}", &TS[..8]);
    let a = h.data_key(0, 16384);
    let b = h.data_key(1, 16385);
    assert_ok(&h.backup_data(&a, b"a"));
    assert_ok(&h.backup_data(&b, b"b"));
    let out = h.call("list_directory", &dir, b"");
    assert_ok(&out);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("gpbackup_0_{TS}_16384\ngpbackup_1_{TS}_16385\n")
    );
    // The inner plugin's own error comes back as our one line.
    assert_fails_with(&h.call("list_directory", "no/such/dir", b""), "no/such/dir");

    let out = h.call("delete_directory", &dir, b"");
    assert_ok(&out);
    assert!(!h.storage().join(&dir).exists(), "not deleted");
}

/// Asserts the config is refused by a hook and by a data command, with one line
/// naming `needle`, and that nothing reached the inner plugin.
#[track_caller]
fn assert_refused(h: &Harness, restore_side: bool, needle: &str) {
    let (hook, data) = if restore_side {
        ("setup_plugin_for_restore", "restore_data")
    } else {
        ("setup_plugin_for_backup", "backup_data")
    };
    let out = h.call(
        hook,
        &format!("{} master {Q_MINUS1}", h.backup_dir(-1).display()),
        b"",
    );
    let err = assert_fails_with(&out, needle);
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
    let key = h.data_key(0, 16384);
    let out = h.call(data, &key, b"some data");
    assert_fails_with(&out, needle);
    assert!(out.stdout.is_empty());
    assert!(
        files_under(&h.storage()).is_empty(),
        "reached the inner plugin"
    );
}

#[test]
fn each_invalid_option_gives_one_line_naming_it() {
    let scratch = tempfile::tempdir().unwrap();
    let not_exec = scratch.path().join("plugin.sh");
    std::fs::write(&not_exec, "#!/bin/sh\nexit 0\n").unwrap();
    set_mode(&not_exec, 0o644);
    let garbage = scratch.path().join("garbage_identity.txt");
    std::fs::write(&garbage, "AGE-SECRET-KEY-1NOTAKEY\n").unwrap();
    let no_file = scratch.path().join("nope").display().to_string();
    // (what, options, restore side, the option the message must name)
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, bool, &'a str);
    let cases: Vec<Case> = vec![
        (
            "missing inner",
            vec![("inner_executablepath", String::new())],
            false,
            "inner_executablepath",
        ),
        (
            "relative inner",
            vec![("inner_executablepath", "examples/local_plugin.sh".into())],
            false,
            "inner_executablepath",
        ),
        (
            "nonexistent inner",
            vec![("inner_executablepath", no_file.clone())],
            false,
            "inner_executablepath",
        ),
        (
            "non-executable inner",
            vec![("inner_executablepath", not_exec.display().to_string())],
            false,
            "inner_executablepath",
        ),
        (
            "inner is a directory",
            vec![("inner_executablepath", scratch.path().display().to_string())],
            false,
            "inner_executablepath",
        ),
        (
            "inner is this plugin",
            vec![("inner_executablepath", BIN.to_string())],
            false,
            "inner_executablepath",
        ),
        (
            "inner with an unset variable",
            vec![(
                "inner_executablepath",
                "$GPAGE_SURELY_UNSET_VARIABLE/bin/plugin".into(),
            )],
            false,
            "inner_executablepath",
        ),
        (
            "unparsable recipient",
            vec![
                ("recipients", "age1notarecipient".into()),
                ("recipients_file", String::new()),
            ],
            false,
            "recipients",
        ),
        (
            "private key as recipient",
            vec![
                ("recipients", "AGE-SECRET-KEY-1QQQQ".into()),
                ("recipients_file", String::new()),
            ],
            false,
            "recipients",
        ),
        (
            "recipients_file unreadable",
            vec![("recipients_file", no_file.clone())],
            false,
            "recipients_file",
        ),
        (
            "recipients_file with garbage",
            vec![("recipients_file", garbage.display().to_string())],
            false,
            "recipients_file",
        ),
        (
            "identity unreadable",
            vec![("identity_file", no_file.clone())],
            true,
            "identity_file",
        ),
        (
            "identity garbage",
            vec![("identity_file", garbage.display().to_string())],
            true,
            "identity_file",
        ),
        (
            "compression_level 0",
            vec![("compression_level", "0".into())],
            false,
            "compression_level",
        ),
        (
            "compression_level 20",
            vec![("compression_level", "20".into())],
            false,
            "compression_level",
        ),
        (
            "compression_level not a number",
            vec![("compression_level", "fast".into())],
            false,
            "compression_level",
        ),
        (
            "compression bogus",
            vec![("compression", "bogus".into())],
            false,
            "compression",
        ),
        ("workers 0", vec![("workers", "0".into())], false, "workers"),
        (
            "workers not a number",
            vec![("workers", "many".into())],
            false,
            "workers",
        ),
        (
            "mistyped own key",
            vec![("recipient", "age1whatever".into())],
            false,
            "recipient",
        ),
        (
            "mistyped identity key",
            vec![("identity_files", demo_identity().display().to_string())],
            true,
            "identity_files",
        ),
        (
            "allow_plaintext_restore not a switch",
            vec![("allow_plaintext_restore", "maybe".into())],
            true,
            "allow_plaintext_restore",
        ),
    ];
    for (what, options, restore_side, needle) in cases {
        let opts: Vec<(&str, &str)> = options.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let h = Harness::new(&opts);
        eprintln!("case: {what}");
        assert_refused(&h, restore_side, needle);
    }
}

#[test]
fn structurally_invalid_configs_give_one_line() {
    let h = Harness::new(&[]);
    let opts = default_option_lines(&h);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "list under options",
            format!("executablepath: {BIN}\noptions:\n{opts}  folder:\n    - a\n    - b\n"),
            "folder",
        ),
        (
            "nested map under options",
            format!("executablepath: {BIN}\noptions:\n{opts}  endpoint:\n    host: x\n"),
            "endpoint",
        ),
        (
            "flow list under options",
            format!("executablepath: {BIN}\noptions:\n{opts}  bucket: [a, b]\n"),
            "bucket",
        ),
        (
            "not yaml",
            "executablepath: [unclosed\n  options: {{{\n".to_string(),
            "plugin config",
        ),
        (
            "options is a list",
            format!("executablepath: {BIN}\noptions:\n  - a\n  - b\n"),
            "plugin config",
        ),
        (
            "binary garbage",
            "\u{0}\u{1}\u{2}PK".to_string(),
            "plugin config",
        ),
    ];
    for (what, text, needle) in cases {
        eprintln!("case: {what}");
        write_raw_config(&h, &text);
        assert_refused(&h, false, needle);
    }
    std::fs::remove_file(&h.config).unwrap();
    assert_refused(&h, false, "plugin config");
}

#[test]
fn inner_executablepath_expands_environment_variables() {
    let h = Harness::new(&[(
        "inner_executablepath",
        "$GPAGE_TEST_GPHOME/examples/local_plugin.sh",
    )]);
    let key = h.data_key(0, 16384);
    let script = format!("{BIN} backup_data {} {key}", h.config.display());
    let out = run_env(
        &h.home(),
        &script,
        b"expanded",
        &[("GPAGE_TEST_GPHOME", &repo())],
    );
    assert_ok(&out);
    let script = format!("{BIN} restore_data {} {key}", h.config.display());
    let out = run_env(&h.home(), &script, b"", &[("GPAGE_TEST_GPHOME", &repo())]);
    assert_ok(&out);
    assert_eq!(out.stdout, b"expanded");
}

#[test]
fn the_inner_config_holds_only_passthrough_options_is_private_and_removed() {
    let h = Harness::new(&[]);
    let rec = Recorder::new(&h);
    let tmp = h.path().join("tmpdir");
    std::fs::create_dir_all(&tmp).unwrap();
    let escrow = std::fs::read_to_string(repo().join("keys/demo-only-escrow-recipient.txt"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("age1"))
        .unwrap()
        .to_string();
    h.write_config(&[
        ("inner_executablepath", &rec.script.display().to_string()),
        ("folder", "my/folder"),
        ("backup_plugin_version", "0.1.0"),
        ("restore_subset", "on"),
        ("compression_level", "5"),
        ("workers", "2"),
        ("recipients", &escrow),
    ]);
    let key = h.data_key(0, 16384);
    let env = [("TMPDIR", tmp.as_path())];
    let cfg = h.config.display().to_string();
    let hook = format!(
        "{BIN} setup_plugin_for_backup {cfg} {} segment {Q0}",
        h.backup_dir(0).display()
    );
    assert_ok(&run_env(&h.home(), &hook, b"", &env));
    let backup = format!("{BIN} backup_data {cfg} {key}");
    assert_ok(&run_env(&h.home(), &backup, b"data", &env));
    let restore = format!("{BIN} restore_data {cfg} {key}");
    let out = run_env(&h.home(), &restore, b"", &env);
    assert_ok(&out);
    assert_eq!(out.stdout, b"data");
    // A failing call removes its inner config too.
    let missing = format!("{BIN} restore_data {cfg} {}", h.data_key(0, 99));
    assert_fails_with(&run_env(&h.home(), &missing, b"", &env), "");

    let configs = rec.configs();
    assert_eq!(configs.len(), 4);
    let mut paths = std::collections::HashSet::new();
    for (mode, path, text) in &configs {
        assert_eq!(mode, "600", "inner config mode");
        assert!(Path::new(path).starts_with(&tmp), "{path} not under TMPDIR");
        assert!(paths.insert(path.clone()), "config name reused: {path}");
        let doc: serde_yaml::Value = serde_yaml::from_str(text).expect("inner config is yaml");
        assert_eq!(
            doc["executablepath"].as_str(),
            Some(rec.script.to_str().unwrap())
        );
        let options = doc["options"].as_mapping().expect("options map");
        let mut keys: Vec<&str> = options.keys().map(|k| k.as_str().unwrap()).collect();
        keys.sort();
        assert_eq!(keys, ["folder", "pgport", "root"], "forwarded options");
        assert_eq!(doc["options"]["folder"].as_str(), Some("my/folder"));
        assert_eq!(
            doc["options"]["root"].as_str(),
            Some(h.storage().to_str().unwrap())
        );
        assert!(
            !text.contains("AGE-SECRET-KEY") && !text.contains("age1"),
            "{text}"
        );
    }
    assert!(
        files_under(&tmp).is_empty(),
        "left in TMPDIR: {:?}",
        files_under(&tmp)
    );
}

#[test]
fn options_unknown_to_us_reach_the_inner_plugin() {
    // local_plugin.sh rejects keys it does not know: its error must come back as our one
    // line, which proves the option was forwarded.
    let h = Harness::new(&[("bucket", "my-bucket")]);
    let out = h.backup_data(&h.data_key(0, 16384), b"x");
    assert_fails_with(&out, "bucket");
}

#[test]
fn every_call_appends_one_line_to_the_call_log() {
    let h = Harness::new(&[]);
    let day_before = chrono::Local::now().format("%Y%m%d").to_string();
    let key = h.data_key(0, 16384);
    let file = coordinator_file(&h, &format!("gpbackup_{TS}_report"), b"report");
    let fpath = file.display().to_string();
    let dir = h.backup_dir(-1).display().to_string();
    let data = b"0123456789abcdef";
    let steps: Vec<(&str, String, bool)> = vec![
        (
            "setup_plugin_for_backup",
            format!("{dir} master {Q_MINUS1}"),
            true,
        ),
        ("backup_data", key.clone(), true),
        ("backup_file", fpath.clone(), true),
        ("restore_data", key.clone(), true),
        ("restore_file", fpath.clone(), true),
        ("restore_data", h.data_key(0, 4242), false),
        // Fails before any inner plugin starts, so before the log file is opened ahead
        // of time (log::warm_up): the line must still be written.
        ("restore_data", "/".to_string(), false),
        ("list_directory", format!("{}/{TS}", &TS[..8]), true),
        (
            "cleanup_plugin_for_backup",
            format!("{dir} segment_host"),
            true,
        ),
        ("delete_backup", TS.to_string(), true),
    ];
    for (n, (command, args, ok)) in steps.iter().enumerate() {
        let out = h.call(command, args, data);
        if *ok {
            assert_ok(&out);
        } else {
            assert_fails_with(&out, "");
        }
        let lines = h.call_log_lines();
        assert_eq!(lines.len(), n + 1, "after {command}: {lines:#?}");
        let line = lines.last().unwrap();
        assert!(line.contains(&format!("command={command} ")), "{line}");
        for field in ["bytes_in=", "bytes_out=", "duration_ms=", "outcome="] {
            assert!(line.contains(field), "{field} missing: {line}");
        }
        let outcome = line.split("outcome=").nth(1).unwrap();
        assert_eq!(outcome == "ok", *ok, "{line}");
    }
    let lines = h.call_log_lines();
    assert!(lines[1].contains(&key) && lines[1].contains(&format!("bytes_in={}", data.len())));
    let day_after = chrono::Local::now().format("%Y%m%d").to_string();
    let logs: Vec<String> = std::fs::read_dir(h.home().join("gpAdminLogs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert!(
        [day_before, day_after]
            .iter()
            .any(|d| logs[0] == format!("gpbackup_age_plugin_{d}.log")),
        "{logs:?}"
    );
}

#[test]
fn an_unwritable_call_log_never_fails_a_call() {
    let h = Harness::new(&[]);
    std::fs::create_dir_all(h.home()).unwrap();
    std::fs::write(h.home().join("gpAdminLogs"), b"not a directory").unwrap();
    let key = h.data_key(0, 16384);
    assert_ok(&h.backup_data(&key, b"payload"));
    let out = h.restore_data(&key);
    assert_ok(&out);
    assert_eq!(out.stdout, b"payload");
}
