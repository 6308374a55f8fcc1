//! Configs and key files as real clusters and operators have them: every option a real
//! storage plugin uses reaches it unchanged; configs and key files saved by Windows
//! editors and web pages (byte-order marks, CRLF, tabs, invisible characters) are read
//! as gpbackup and age read them, or refused naming what is wrong; operator commands
//! name their own flags. Every call runs the built binary through `bash -c` against a
//! real inner plugin process.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;

/// Every option of gpbackup_s3_plugin: the yaml tags of its `PluginOptions` struct
/// (apache/cloudberry-backup, plugins/s3plugin/s3plugin.go; the same in
/// warehouse-pg/whpg-backup-s3-plugin), plus the untagged fields, which go-yaml v2
/// reads under their lower-cased names. Its parser is strict, so these are all it
/// accepts.
const S3_PLUGIN_OPTIONS: &[&str] = &[
    "aws_access_key_id",
    "aws_secret_access_key",
    "backup_max_concurrent_requests",
    "backup_multipart_chunksize",
    "bucket",
    "encryption",
    "endpoint",
    "folder",
    "http_proxy",
    "region",
    "remove_duplicate_bucket",
    "restore_max_concurrent_requests",
    "restore_multipart_chunksize",
    "pgport",
    "uploadchunksize",
    "uploadconcurrency",
    "downloadchunksize",
    "downloadconcurrency",
];

/// The Dell DD Boost plugin's (gpbackup_ddboost_plugin) documented config keys: the
/// configuration file format of "Using the DD Boost Storage Plugin with gpbackup,
/// gprestore, and gpbackup_manager" (Tanzu Greenplum Backup and Restore docs), the
/// TLS options of EDB's WarehousePG ddboost_plugin_config.yaml reference, and
/// `gpbackup_ddboost_plugin`, the key gpbackup adds (named after the plugin) with the
/// password encryption key when `password_encryption` is on (utils/plugin.go). Plus
/// the names the field reports named (`storage_class`, `page_size`, `package_name`).
const DD_BOOST_OPTIONS: &[&str] = &[
    "hostname",
    "username",
    "password",
    "password_encryption",
    "storage_unit",
    "directory",
    "replication",
    "replication_streams",
    "remote_hostname",
    "remote_username",
    "remote_password",
    "remote_password_encryption",
    "remote_storage_unit",
    "remote_directory",
    "use_tls",
    "tls_auth_mode",
    "gpbackup_ddboost_plugin",
    "storage_class",
    "page_size",
    "package_name",
];

/// An inner plugin that records the config it received (a copy per call, named by
/// command) and otherwise accepts everything: backup_data reads its input to the end.
fn recording_inner(h: &Harness) -> (PathBuf, PathBuf) {
    let dir = h.path().join("received");
    std::fs::create_dir_all(&dir).unwrap();
    let script = h.path().join("recording_inner.sh");
    write_script(
        &script,
        &format!(
            "#!/usr/bin/env bash\ncp -- \"$2\" '{}'/\"$1\".yaml\n[[ $1 == backup_data ]] && cat > /dev/null\nexit 0\n",
            dir.display()
        ),
    );
    (script, dir)
}

/// The options of a config as the inner plugin received it (its values unquoted).
fn received_options(dir: &Path, command: &str) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(dir.join(format!("{command}.yaml")))
        .unwrap_or_else(|_| panic!("the inner plugin received no config for {command}"));
    #[derive(serde::Deserialize)]
    struct Received {
        options: BTreeMap<String, String>,
    }
    serde_yaml::from_str::<Received>(&text).unwrap().options
}

/// Our own option lines around an inner plugin.
fn own_lines(inner: &Path) -> String {
    format!(
        "  inner_executablepath: \"{}\"\n  recipients_file: \"{}\"\n  identity_file: \"{}\"\n",
        inner.display(),
        demo_recipients().display(),
        demo_identity().display()
    )
}

#[test]
fn every_option_of_the_s3_and_dd_boost_plugins_reaches_the_inner_plugin_unchanged() {
    let h = Harness::new(&[]);
    let (inner, received) = recording_inner(&h);
    // Values in every form gpbackup passes on as text: quoted, plain, a number with a
    // leading zero, YAML 1.1 booleans, and nothing at all (an empty string).
    let mut expected = BTreeMap::new();
    let mut lines = String::new();
    for (i, key) in S3_PLUGIN_OPTIONS.iter().chain(DD_BOOST_OPTIONS).enumerate() {
        let (written, value) = match i % 5 {
            0 => (
                format!("\"value {i} of {key}\""),
                format!("value {i} of {key}"),
            ),
            1 => (format!("0{i}"), format!("0{i}")),
            2 => ("on".to_string(), "on".to_string()),
            3 => (String::new(), String::new()),
            _ => (format!("{key}-{i}"), format!("{key}-{i}")),
        };
        lines.push_str(&format!("  {key}: {written}\n"));
        expected.insert(key.to_string(), value);
    }
    let text = format!(
        "executablepath: {BIN}\noptions:\n{}{lines}",
        own_lines(&inner)
    );
    std::fs::write(&h.config, &text).unwrap();
    let key = h.data_key(0, 16384);
    let dir = h.backup_dir(-1).display().to_string();
    for (command, rest) in [
        ("backup_data", key.clone()),
        (
            "setup_plugin_for_backup",
            format!("{dir} master \\\"-1\\\""),
        ),
        ("delete_backup", TS.to_string()),
    ] {
        assert_ok(&call_bounded(&h, command, &rest, b"table rows"));
        let got = received_options(&received, command);
        assert_eq!(
            got, expected,
            "{command}: options as the inner plugin got them"
        );
    }
}

#[test]
fn near_misses_of_our_own_options_are_still_refused_with_a_hint() {
    let h = Harness::new(&[]);
    let (inner, received) = recording_inner(&h);
    for (line, own) in [
        ("recipient: \"age1x\"", "recipients"),
        ("identity: \"/x\"", "identity_file"),
        (
            "inner_executable_path: \"/bin/true\"",
            "inner_executablepath",
        ),
        ("compresion_level: \"3\"", "compression_level"),
        ("Recipients_File: \"/x\"", "recipients_file"),
        ("stall_timeout: \"5\"", "stall_timeout_seconds"),
    ] {
        let text = format!(
            "executablepath: {BIN}\noptions:\n{}  {line}\n",
            own_lines(&inner)
        );
        std::fs::write(&h.config, text).unwrap();
        let out = call_bounded(&h, "backup_data", &h.data_key(0, 1), b"x");
        let name = line.split(':').next().unwrap();
        assert_one_line_failure(
            &out,
            &[
                &format!("option {name} is not an option of gpbackup_age_plugin"),
                &format!("did you mean {own}?"),
            ],
        );
        assert!(
            !received.join("backup_data.yaml").exists(),
            "{line}: forwarded"
        );
    }
}

/// A config round trip: backup_data then restore_data of `data` through the local
/// plugin with the config as written.
#[track_caller]
fn round_trips(h: &Harness, config: &[u8], data: &[u8]) {
    std::fs::write(&h.config, config).unwrap();
    let key = h.data_key(0, 16384);
    assert_ok(&call_bounded(h, "backup_data", &key, data));
    let out = call_bounded(h, "restore_data", &key, b"");
    assert_ok(&out);
    assert_eq!(out.stdout, data);
}

/// The harness's default config text (options with the local plugin and demo keys).
fn default_config(h: &Harness) -> String {
    h.write_config(&[]);
    std::fs::read_to_string(&h.config).unwrap()
}

#[test]
fn configs_saved_with_a_byte_order_mark_crlf_or_utf16_work() {
    let h = Harness::new(&[]);
    let text = default_config(&h);
    let crlf = text.replace('\n', "\r\n");
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(crlf.as_bytes());
    round_trips(&h, &bom, b"rows saved by notepad");
    round_trips(&h, crlf.as_bytes(), b"rows with CRLF");
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    round_trips(&h, &utf16, b"rows in UTF-16");
    // YAML comments, a document marker and a second document (ignored, as in go-yaml).
    let decorated = format!("# saved by a tool\n---\n{text}---\noptions: {{}}\n");
    round_trips(&h, decorated.as_bytes(), b"rows after a comment");
}

#[test]
fn configs_people_get_wrong_are_refused_in_words() {
    let h = Harness::new(&[]);
    let text = default_config(&h);
    let path = h.config.display().to_string();
    let indented_with_tab = text.replacen("\n  root:", "\n\troot:", 1);
    let tab_line = indented_with_tab
        .lines()
        .position(|l| l.starts_with('\t'))
        .unwrap()
        + 1;
    let not_nested: String = text
        .lines()
        .map(|l| l.trim_start())
        .filter(|l| *l != "options:")
        .map(|l| format!("{l}\n"))
        .collect();
    let nbsp = text.replacen("\n  root:", "\n\u{A0}\u{A0}root:", 1);
    let zwsp_key = text.replacen("  root:", "  ro\u{200B}ot:", 1);
    let zwsp_value = text.replacen(".txt\"", ".txt\u{200B}\"", 1);
    for (config, needles) in [
        (
            indented_with_tab,
            vec![format!("line {tab_line} is indented with a tab")],
        ),
        (
            not_nested,
            vec![
                "`inner_executablepath` (line 2) is at the top level".to_string(),
                "options go under `options:`".to_string(),
            ],
        ),
        (
            nbsp,
            vec!["has a no-break space (U+00A0) in its indentation".to_string()],
        ),
        (
            zwsp_key,
            vec!["the option name 'root' has a zero-width space (U+200B)".to_string()],
        ),
        (
            zwsp_value,
            vec!["has a zero-width space (U+200B) in its value".to_string()],
        ),
        (
            "executablepath: [unclosed\noptions: {\n".to_string(),
            vec!["is not valid YAML".to_string()],
        ),
        (
            "- a list\n- of things\n".to_string(),
            vec!["its top level is a list".to_string()],
        ),
        (
            "just some text\n".to_string(),
            vec!["its top level is a single value".to_string()],
        ),
        (
            format!("{text}  folder:\n    - a\n"),
            vec!["option folder must be a plain string, not a list".to_string()],
        ),
    ] {
        std::fs::write(&h.config, &config).unwrap();
        let out = call_bounded(&h, "backup_data", &h.data_key(0, 1), b"x");
        let mut all: Vec<&str> = needles.iter().map(String::as_str).collect();
        all.push(&path);
        let line = assert_one_line_failure(&out, &all);
        // No internal type names, no serde jargon.
        for jargon in ["RawConfig", "Document", "Options", "struct", "invalid type"] {
            assert!(!line.contains(jargon), "{line}");
        }
        assert_tmpdir_clean(&h);
    }
    // Latin-1 bytes are not UTF-8: refused, naming the line.
    let mut latin1 = text.into_bytes();
    latin1.extend_from_slice(b"# caf\xE9\n");
    std::fs::write(&h.config, &latin1).unwrap();
    let out = call_bounded(&h, "backup_data", &h.data_key(0, 1), b"x");
    assert_one_line_failure(&out, &["is not UTF-8 text", "byte 0xE9"]);
}

/// The demo identity's text and recipient.
fn demo_keys() -> (String, String) {
    let identity = std::fs::read_to_string(demo_identity()).unwrap();
    (identity, demo_recipient_line())
}

/// Writes a key file (mode 0600) under the harness.
fn key_file(h: &Harness, name: &str, bytes: &[u8]) -> String {
    let path = h.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.display().to_string()
}

#[test]
fn key_files_with_a_byte_order_mark_crlf_and_comments_work() {
    let h = Harness::new(&[]);
    let (identity, recipient) = demo_keys();
    // What stock age reads too: CRLF, blank lines, comments.
    let crlf_identity = identity.replace('\n', "\r\n");
    let recipients = format!("# backup key\r\n\r\n{recipient}\r\n");
    let ids = key_file(&h, "crlf_identity.txt", crlf_identity.as_bytes());
    let rcp = key_file(&h, "crlf_recipients.txt", recipients.as_bytes());
    h.write_config(&[("identity_file", &ids), ("recipients_file", &rcp)]);
    round_trips(&h, &std::fs::read(&h.config).unwrap(), b"rows");
    let stock = std::process::Command::new("age")
        .args(["-d", "-i", &ids])
        .arg(h.stored(&h.data_key(0, 16384)))
        .output()
        .unwrap();
    assert!(
        stock.status.success(),
        "stock age reads the CRLF identity too"
    );
    assert!(h
        .call_log_lines()
        .iter()
        .all(|l| !l.contains("stock `age -d -i` refuses")));

    // What only we accept: a byte-order mark, spaces around a key, indented comments.
    // The call log says stock age would refuse that identity file.
    let mut bom_identity = b"\xEF\xBB\xBF".to_vec();
    bom_identity.extend_from_slice(identity.replace("AGE-SECRET", "  AGE-SECRET").as_bytes());
    let mut bom_recipients = b"\xEF\xBB\xBF  # indented comment\n".to_vec();
    bom_recipients.extend_from_slice(format!("\t{recipient}  \n").as_bytes());
    let ids = key_file(&h, "bom_identity.txt", &bom_identity);
    let rcp = key_file(&h, "bom_recipients.txt", &bom_recipients);
    h.write_config(&[("identity_file", &ids), ("recipients_file", &rcp)]);
    round_trips(&h, &std::fs::read(&h.config).unwrap(), b"more rows");
    assert!(
        h.call_log_lines().iter().any(|l| l.contains(
            "has a byte-order mark, which this plugin ignores but stock `age -d -i` refuses"
        )),
        "{:?}",
        h.call_log_lines()
    );
}

#[test]
fn key_files_with_invisible_characters_or_the_wrong_key_are_refused_by_name() {
    let h = Harness::new(&[]);
    let (identity, recipient) = demo_keys();
    let key = h.data_key(0, 16384);
    let identity_line = identity
        .lines()
        .position(|l| l.starts_with("AGE-SECRET-KEY-1"))
        .unwrap()
        + 1;
    let zwsp_identity = identity.replace("AGE-SECRET-KEY-1", "AGE-SECRET-KEY-1\u{200B}");
    let nbsp_recipients = format!("# key\n# more\n{recipient}\u{A0}\n");
    for (option, file, command, needles) in [
        (
            "identity_file",
            key_file(&h, "zwsp.txt", zwsp_identity.as_bytes()),
            "restore_data",
            vec![format!(
                "line {identity_line} has a zero-width space (U+200B)"
            )],
        ),
        (
            "recipients_file",
            key_file(&h, "nbsp.txt", nbsp_recipients.as_bytes()),
            "backup_data",
            vec!["line 3 has a no-break space (U+00A0)".to_string()],
        ),
        (
            "identity_file",
            key_file(&h, "public.txt", format!("{recipient}\n").as_bytes()),
            "restore_data",
            vec!["holds a recipient (a public key, age1…) on line 1, not an identity".to_string()],
        ),
    ] {
        h.write_config(&[(option, &file)]);
        let out = call_bounded(&h, command, &key, b"x");
        let mut all: Vec<&str> = needles.iter().map(String::as_str).collect();
        let named = format!("option {option}");
        all.push(&named);
        all.push(&file);
        let line = assert_one_line_failure(&out, &all);
        assert!(!line.contains("AGE-SECRET-KEY-1"), "{line}");
    }
}

/// Runs an operator command (no shell needed: operators type these) with the
/// harness's HOME and TMPDIR.
fn operator(h: &Harness, args: &[&str]) -> std::process::Output {
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    run_bounded(h, &quoted.join(" "), b"")
}

#[test]
fn operator_commands_name_their_own_flags() {
    let h = Harness::new(&[("identity_file", "")]);
    let config = h.config.display().to_string();
    // No identity at all: --identity is named.
    for command in ["rotate", "verify"] {
        let out = operator(&h, &[command, &config, TS]);
        assert_one_line_failure(&out, &["no identity", "pass --identity FILE"]);
    }
    // A missing --identity file, or a public key given as one: named as the flag.
    let (_, recipient) = demo_keys();
    let public = key_file(&h, "public.txt", format!("{recipient}\n").as_bytes());
    let missing = h.path().join("missing.txt").display().to_string();
    for command in ["rotate", "verify"] {
        let out = operator(&h, &[command, &config, TS, "--identity", &missing]);
        let line = assert_one_line_failure(
            &out,
            &[&format!(
                "--identity {missing}: cannot read it: no such file"
            )],
        );
        assert!(!line.contains("option identity_file"), "{line}");
        let out = operator(&h, &[command, &config, TS, "--identity", &public]);
        let line =
            assert_one_line_failure(&out, &[&format!("--identity {public} holds a recipient")]);
        assert!(!line.contains("option identity_file"), "{line}");
    }
    let key = h.data_key(0, 16384);
    assert_ok(&call_bounded(&h, "backup_data", &key, b"rows"));
    let object = h.stored(&key).display().to_string();
    let out = operator(&h, &["inspect", &object, "--identity", &missing]);
    assert_one_line_failure(&out, &["--identity", "cannot read it: no such file"]);
    // Numeric flags say their range in words.
    for bad in ["0", "65", "-2", "many"] {
        for command in ["rotate", "verify"] {
            let out = operator(&h, &[command, &config, TS, "--parallel", bad]);
            let line = assert_one_line_failure(&out, &["--parallel", "between 1 and 64"]);
            assert!(!line.contains("..="), "{line}");
        }
    }
}
