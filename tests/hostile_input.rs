//! Bad input: broken configs and bad arguments. Each must end, quickly, with a
//! non-zero exit and exactly one clear line on stderr naming what is wrong; never a
//! panic or a backtrace; never a hang (every run is bounded); and no inner config
//! left behind, no object stored.

mod common;

use std::path::Path;

use common::*;

/// Runs a command that loads the config (one per kind of use) with `text` as config.
fn with_config(h: &Harness, text: &str, command: &str) -> std::process::Output {
    std::fs::write(&h.config, text).unwrap();
    let key = h.data_key(0, 16384);
    let out = match command {
        "backup_data" => call_bounded(h, "backup_data", &key, b"some data"),
        "restore_data" => call_bounded(h, "restore_data", &key, b""),
        "setup_plugin_for_backup" => call_bounded(
            h,
            "setup_plugin_for_backup",
            &format!("{} master \\\"-1\\\"", h.backup_dir(-1).display()),
            b"",
        ),
        "setup_plugin_for_restore" => call_bounded(
            h,
            "setup_plugin_for_restore",
            &format!("{} master \\\"-1\\\"", h.backup_dir(-1).display()),
            b"",
        ),
        other => panic!("{other}"),
    };
    assert_tmpdir_clean(h);
    out
}

/// A config refused by every command that reads it, with `needles` in the message.
#[track_caller]
fn refused_everywhere(h: &Harness, text: &str, needles: &[&str]) {
    for command in [
        "backup_data",
        "restore_data",
        "setup_plugin_for_backup",
        "setup_plugin_for_restore",
    ] {
        let out = with_config(h, text, command);
        assert_one_line_failure(&out, needles);
        assert!(committed_objects(h).is_empty());
    }
}

#[test]
fn a_config_that_is_not_yaml_is_refused() {
    let h = Harness::new(&[]);
    let path = h.config.display().to_string();
    for text in [
        "executablepath: [unclosed\noptions: {\n",
        "options:\n  recipients: \"unterminated\n",
        "\t\t::: -\n: :\n",
        "options: \"a string\"\n",
        "options:\n  - a\n  - b\n",
        "- just\n- a list\n",
        "\u{0}\u{1}\u{2}binary\u{ff}",
        "options:\n  a: 1\n  a: 2\n",
    ] {
        refused_everywhere(&h, text, &["plugin config", &path]);
    }
    // Empty, or without options: the missing inner plugin is named.
    for text in ["", "executablepath: /x\n", "options:\n"] {
        refused_everywhere(&h, text, &["inner_executablepath is missing"]);
    }
}

#[test]
fn option_values_of_the_wrong_type_are_refused() {
    let h = Harness::new(&[]);
    for (lines, needles) in [
        (
            "  recipients:\n    - age1a\n    - age1b\n",
            vec!["option recipients", "plain string"],
        ),
        (
            "  bucket:\n    nested: map\n",
            vec!["option bucket", "plain string"],
        ),
        ("  folder: [a, b]\n", vec!["option folder", "plain string"]),
        (
            "  compression_level: {level: 3}\n",
            vec!["option compression_level", "plain string"],
        ),
        (
            "  compression_level: \"three\"\n",
            vec!["compression_level", "not a number"],
        ),
        (
            "  compression_level: \"25\"\n",
            vec!["compression_level", "out of range"],
        ),
        (
            "  compression: \"gzip\"\n",
            vec!["option compression", "not one of zstd, none"],
        ),
        ("  workers: \"0\"\n", vec!["option workers", "out of range"]),
        (
            "  workers: \"-3\"\n",
            vec!["option workers", "not a number"],
        ),
        (
            "  stall_timeout_seconds: \"1.5\"\n",
            vec!["stall_timeout_seconds", "whole number"],
        ),
        (
            "  allow_plaintext_restore: \"maybe\"\n",
            vec!["allow_plaintext_restore", "not on or off"],
        ),
        (
            "  restore_subset: \"sometimes\"\n",
            vec!["restore_subset", "not on or off"],
        ),
    ] {
        refused_everywhere(&h, &config_text(&h, lines), &needles);
    }
    // Plain YAML numbers and booleans are strings to gpbackup and fine here.
    std::fs::write(
        &h.config,
        config_text(&h, "  compression_level: 5\n  restore_subset: true\n"),
    )
    .unwrap();
    assert_ok(&call_bounded(&h, "backup_data", &h.data_key(0, 1), b"x"));
}

#[test]
fn empty_option_values_are_refused_where_they_matter() {
    let h = Harness::new(&[]);
    // The default config without option `skip`, plus `extra` lines.
    let base = |skip: &str, extra: &str| {
        let text: String = config_text(&h, "")
            .lines()
            .filter(|l| !l.trim_start().starts_with(&format!("{skip}:")))
            .map(|l| format!("{l}\n"))
            .collect();
        format!("{text}{extra}")
    };
    refused_everywhere(
        &h,
        &base("inner_executablepath", "  inner_executablepath: \"\"\n"),
        &["inner_executablepath", "not an absolute path"],
    );
    refused_everywhere(
        &h,
        &base("recipients_file", "  recipients_file:\n"),
        &["option recipients_file has no value"],
    );
    // An inner plugin's option with no value reaches it as an empty string, as gpbackup
    // reads it; here the local plugin then names it as missing.
    refused_everywhere(
        &h,
        &base("root", "  root:\n"),
        &["local_plugin: missing required option 'root'"],
    );
    for command in ["backup_data", "setup_plugin_for_backup"] {
        let out = with_config(
            &h,
            &base("recipients_file", "  recipients: \"\"\n"),
            command,
        );
        assert_one_line_failure(&out, &["no recipients"]);
        let out = with_config(
            &h,
            &base("recipients_file", "  recipients: \" , \n\"\n"),
            command,
        );
        assert_one_line_failure(&out, &["no recipients"]);
    }
    for command in ["restore_data", "setup_plugin_for_restore"] {
        let out = with_config(
            &h,
            &base("identity_file", "  identity_file: \"\"\n"),
            command,
        );
        assert_one_line_failure(&out, &["no identity", "identity_file"]);
        let out = with_config(
            &h,
            &base("identity_file", "  identity_file: \" , \"\n"),
            command,
        );
        assert_one_line_failure(&out, &["no identity", "identity_file"]);
    }
}

#[test]
fn mistyped_own_options_are_refused_not_forwarded() {
    // `recipient:` for `recipients:` must not silently mean "no recipients" (it would
    // be forwarded to the inner plugin as one of its options).
    let h = Harness::new(&[]);
    let only = |line: &str| {
        format!(
            "executablepath: {BIN}\noptions:\n  inner_executablepath: \"{}\"\n  root: \"{}\"\n  identity_file: \"{}\"\n{line}\n",
            local_plugin().display(),
            h.storage().display(),
            demo_identity().display()
        )
    };
    let recipient = std::fs::read_to_string(demo_recipients()).unwrap();
    let recipient = recipient
        .lines()
        .find(|l| l.starts_with("age1"))
        .unwrap()
        .to_string();
    for (line, needles) in [
        (
            format!("  recipient: \"{recipient}\""),
            vec![
                "option recipient is not an option",
                "did you mean recipients?",
            ],
        ),
        (
            format!("  Recipients: \"{recipient}\""),
            vec!["option Recipients", "did you mean recipients?"],
        ),
        (
            format!("  recipients_fille: \"{}\"", demo_recipients().display()),
            vec!["recipients_fille", "did you mean recipients_file?"],
        ),
        (
            "  identity_files: \"/x\"".to_string(),
            vec!["identity_files", "did you mean identity_file?"],
        ),
        (
            "  identity: \"/x\"".to_string(),
            vec!["option identity is not an option"],
        ),
        (
            "  inner_executable_path: \"/bin/true\"".to_string(),
            vec![
                "inner_executable_path",
                "did you mean inner_executablepath?",
            ],
        ),
        (
            "  age_recipients: \"x\"".to_string(),
            vec!["age_recipients", "not an option of gpbackup_age_plugin"],
        ),
        (
            "  compresion: \"none\"".to_string(),
            vec!["compresion", "did you mean compression?"],
        ),
        (
            "  stall_timeout: \"5\"".to_string(),
            vec!["stall_timeout", "did you mean stall_timeout_seconds?"],
        ),
        (
            "  compression_lvl: \"5\"".to_string(),
            vec!["compression_lvl", "did you mean compression"],
        ),
    ] {
        refused_everywhere(&h, &only(&line), &needles);
    }
}

#[test]
fn a_relative_or_unset_inner_path_is_refused() {
    let h = Harness::new(&[]);
    for (path, needles) in [
        (
            "examples/local_plugin.sh",
            vec!["not an absolute path", "examples/local_plugin.sh"],
        ),
        ("./local_plugin.sh", vec!["not an absolute path"]),
        ("local_plugin.sh", vec!["not an absolute path"]),
        (
            "$GPAGE_SURELY_UNSET_VAR/bin/plugin",
            vec!["GPAGE_SURELY_UNSET_VAR", "is not set"],
        ),
        ("${GPAGE_UNCLOSED/bin/plugin", vec!["unclosed"]),
    ] {
        h.write_config(&[("inner_executablepath", path)]);
        let text = std::fs::read_to_string(&h.config).unwrap();
        refused_everywhere(&h, &text, &needles);
    }
}

#[test]
fn the_plugin_named_as_its_own_inner_plugin_never_recurses() {
    let h = Harness::new(&[]);
    let link = h.path().join("link_to_us");
    std::os::unix::fs::symlink(BIN, &link).unwrap();
    // The binary itself and a symlink to it: recognised and refused up front.
    for inner in [Path::new(BIN), link.as_path()] {
        h.write_config(&[("inner_executablepath", &inner.display().to_string())]);
        let text = std::fs::read_to_string(&h.config).unwrap();
        refused_everywhere(&h, &text, &["is this plugin itself"]);
    }
    // A byte-identical copy at another path, or a script that execs us, is not
    // recognised (canonical paths differ), but cannot recurse either: the inner
    // config holds only pass-through options, so the second level finds no
    // inner_executablepath and fails, and the first level reports it.
    let copy = h.path().join("copy_of_us");
    std::fs::copy(BIN, &copy).unwrap();
    let wrapper = h.path().join("exec_us.sh");
    write_script(&wrapper, &format!("#!/bin/sh\nexec {BIN} \"$@\"\n"));
    for inner in [&copy, &wrapper] {
        h.write_config(&[("inner_executablepath", &inner.display().to_string())]);
        let text = std::fs::read_to_string(&h.config).unwrap();
        refused_everywhere(
            &h,
            &text,
            &["inner plugin", "option inner_executablepath is missing"],
        );
    }
}

#[test]
fn an_identity_without_a_recipient_never_encrypts_to_nobody() {
    let h = Harness::new(&[("recipients_file", "")]);
    let key = h.data_key(0, 16384);
    let out = call_bounded(&h, "backup_data", &key, b"secret rows");
    assert_one_line_failure(&out, &["no recipients", "recipients"]);
    let out = call_bounded(
        &h,
        "setup_plugin_for_backup",
        &format!("{} master \\\"-1\\\"", h.backup_dir(-1).display()),
        b"",
    );
    assert_one_line_failure(&out, &["no recipients"]);
    let file = h.backup_dir(-1).join(format!("gpbackup_{TS}_report"));
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, b"report").unwrap();
    let out = call_bounded(&h, "backup_file", &file.display().to_string(), b"");
    assert_one_line_failure(&out, &["no recipients"]);
    assert!(
        committed_objects(&h).is_empty(),
        "{:?}",
        committed_objects(&h)
    );
    assert_tmpdir_clean(&h);
    // A private key given as a recipient is refused, and not echoed.
    let secret = std::fs::read_to_string(demo_identity()).unwrap();
    let secret = secret
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .unwrap();
    h.write_config(&[("recipients_file", ""), ("recipients", secret)]);
    let out = call_bounded(&h, "backup_data", &key, b"secret rows");
    let line = assert_one_line_failure(&out, &["private key", "recipient"]);
    assert!(
        !line.contains(&secret["AGE-SECRET-KEY-".len()..]),
        "the key was echoed: {line}"
    );
}

// ---------------------------------------------------------------------------------
// Arguments
// ---------------------------------------------------------------------------------

#[test]
fn missing_and_extra_arguments_are_refused() {
    let h = Harness::new(&[]);
    let cfg = h.config.display().to_string();
    let dir = h.backup_dir(-1).display().to_string();
    for (args, needles) in [
        (String::new(), vec!["no command given"]),
        (
            "backup_data".to_string(),
            vec![
                "required arguments were not provided",
                "<CONFIG_PATH>",
                "<DATA_FILEKEY>",
            ],
        ),
        (
            format!("backup_data {cfg}"),
            vec!["required arguments were not provided", "<DATA_FILEKEY>"],
        ),
        (format!("restore_data {cfg}"), vec!["<DATA_FILEKEY>"]),
        (
            format!("restore_data_subset {cfg} key"),
            vec!["<OFFSETS_FILE>"],
        ),
        (format!("backup_file {cfg}"), vec!["<FILEPATH>"]),
        (format!("restore_file {cfg}"), vec!["<FILEPATH>"]),
        (format!("delete_backup {cfg}"), vec!["<TIMESTAMP>"]),
        (
            format!("setup_plugin_for_backup {cfg}"),
            vec!["<LOCAL_BACKUP_DIRECTORY>", "<SCOPE>"],
        ),
        (
            format!("cleanup_plugin_for_restore {cfg} {dir}"),
            vec!["<SCOPE>"],
        ),
        (
            format!("backup_data {cfg} key extra"),
            vec!["unexpected argument 'extra'"],
        ),
        (
            format!("restore_data {cfg} key extra"),
            vec!["unexpected argument 'extra'"],
        ),
        (
            format!("delete_backup {cfg} {TS} {TS}"),
            vec!["unexpected argument"],
        ),
        (
            format!("setup_plugin_for_backup {cfg} {dir} segment \\\"0\\\" extra"),
            vec!["unexpected argument 'extra'"],
        ),
        (
            format!("backup_directory {cfg} {dir}"),
            vec![
                "unrecognized subcommand 'backup_directory'",
                "never forwarded",
            ],
        ),
        ("--bogus".to_string(), vec!["unexpected argument '--bogus'"]),
    ] {
        let out = run_bounded(&h, &args, b"data");
        assert_one_line_failure(&out, &needles);
        assert!(
            out.stdout.is_empty(),
            "{args}: stdout {:?}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_tmpdir_clean(&h);
    }
    assert!(committed_objects(&h).is_empty());
}

#[test]
fn content_ids_are_parsed_leniently_and_garbage_is_refused() {
    let h = Harness::new(&[]);
    let dir = h.backup_dir(0).display().to_string();
    // Accepted: with gpbackup's literal quotes, without them, -1 with or without.
    for id in ["\\\"0\\\"", "0", "-1", "\\\"-1\\\"", "\\\"17\\\"", "'3'"] {
        let out = call_bounded(
            &h,
            "setup_plugin_for_backup",
            &format!("{dir} segment {id}"),
            b"",
        );
        assert_ok(&out);
    }
    // Forwarded to the inner plugin exactly as received.
    let hooks = std::fs::read_to_string(h.storage().join(".hooks.log")).unwrap();
    assert!(
        hooks.contains("segment \"0\"\n") && hooks.contains("segment 0\n"),
        "{hooks}"
    );
    for id in [
        "abc",
        "\\\"-2\\\"",
        "1.5",
        "\\\"\\\"",
        "0x1",
        "\\\"1\\\"2",
        "99999999999",
    ] {
        let out = call_bounded(
            &h,
            "setup_plugin_for_backup",
            &format!("{dir} segment {id}"),
            b"",
        );
        assert_one_line_failure(&out, &["content ID", "is not a segment content ID"]);
    }
    for scope in ["segments", "Coordinator", "\\\"master\\\"", "all"] {
        let out = call_bounded(
            &h,
            "cleanup_plugin_for_backup",
            &format!("{dir} {scope} \\\"0\\\""),
            b"",
        );
        assert_one_line_failure(&out, &["scope", "is not one of"]);
    }
    assert_tmpdir_clean(&h);
}

#[test]
fn a_timestamp_that_is_not_14_digits_is_refused() {
    let h = Harness::new(&[]);
    let key = h.data_key(0, 16384);
    assert_ok(&call_bounded(&h, "backup_data", &key, b"keep me"));
    for ts in [
        "2025",
        "2025010101010a",
        "202501010101010",
        "\\\"\\\"",
        "../../x",
        "'20250101 010101'",
        "２０２５０１０１０１０１０１",
    ] {
        let out = call_bounded(&h, "delete_backup", ts, b"");
        assert_one_line_failure(&out, &["timestamp", "is not a gpbackup timestamp"]);
    }
    assert!(
        h.stored(&key).exists(),
        "a refused delete_backup deleted data"
    );
    assert_tmpdir_clean(&h);
}

#[test]
fn missing_files_and_directories_in_place_of_files_are_refused() {
    let h = Harness::new(&[]);
    let dir = h.backup_dir(-1);
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.display().to_string();
    let missing = dir
        .join(format!("gpbackup_{TS}_missing.sql"))
        .display()
        .to_string();
    // Local files.
    let out = call_bounded(&h, "backup_file", &missing, b"");
    assert_one_line_failure(&out, &["backup_file", "cannot open it", "no such file"]);
    let out = call_bounded(&h, "backup_file", &d, b"");
    assert_one_line_failure(&out, &["backup_file", "not a regular file"]);
    let out = call_bounded(&h, "restore_file", &d, b"");
    assert_one_line_failure(&out, &["restore_file", "is a directory"]);
    let out = call_bounded(&h, "restore_file", &missing, b"");
    assert_one_line_failure(&out, &["no such object"]);
    assert!(!Path::new(&missing).exists());
    // Keys without a file name.
    for key in ["/", "..", "/tmp/..", ""] {
        let out = call_bounded(&h, "backup_data", &format!("'{key}'"), b"x");
        assert_one_line_failure(&out, &["no file name"]);
    }
    // The config path.
    for config in [
        d.clone(),
        h.path().join("no_config.yaml").display().to_string(),
    ] {
        let out = run_bounded(
            &h,
            &format!("backup_data {config} {}", h.data_key(0, 1)),
            b"x",
        );
        assert_one_line_failure(&out, &["cannot read plugin config", &config]);
    }
    // Key files: a directory, a missing file.
    for (option, value, needles) in [
        (
            "identity_file",
            d.clone(),
            vec!["identity_file", "not a regular file"],
        ),
        (
            "identity_file",
            missing.clone(),
            vec!["identity_file", "cannot read"],
        ),
        (
            "recipients_file",
            d.clone(),
            vec!["recipients_file", "cannot read"],
        ),
        (
            "recipients_file",
            missing.clone(),
            vec!["recipients_file", "cannot read"],
        ),
    ] {
        h.write_config(&[(option, &value)]);
        let command = if option == "identity_file" {
            "restore_data"
        } else {
            "backup_data"
        };
        let out = call_bounded(&h, command, &h.data_key(0, 2), b"x");
        assert_one_line_failure(&out, &needles);
    }
    h.write_config(&[]);
    // The offsets file.
    let key = h.data_key(0, 3);
    assert_ok(&call_bounded(&h, "backup_data", &key, b"0123456789"));
    for offsets in [d.clone(), missing.clone()] {
        let out = call_bounded(&h, "restore_data_subset", &format!("{key} {offsets}"), b"");
        assert_one_line_failure(&out, &["offsets file", &offsets]);
        assert!(out.stdout.is_empty());
    }
    assert_tmpdir_clean(&h);
    assert!(partial_files(&dir).is_empty());
}

#[test]
fn malformed_offsets_files_are_refused() {
    let h = Harness::new(&[]);
    let key = h.data_key(0, 16384);
    let data = random_bytes(3 << 20, 3);
    assert_ok(&call_bounded(&h, "backup_data", &key, &data));
    let offsets = h.path().join("offsets");
    for (text, needle) in [
        ("", "the offsets file is empty"),
        ("   \n", "the offsets file is empty"),
        ("x", "the range count is not a number"),
        ("-1 0 5", "the range count is not a number"),
        ("2 0 5", "announces 2 ranges but holds only 1"),
        ("1 0", "announces 1 ranges but holds only 0"),
        ("1 5 3", "end 3 is before start 5"),
        ("2 5 8 0 1", "overlaps or precedes"),
        ("2 0 5 4 8", "overlaps or precedes"),
        ("1 0 5 9", "more numbers than the 1 ranges announced"),
        ("1 -1 4", "not a non-negative number"),
        ("1 0 1e3", "not a non-negative number"),
        ("1 0 18446744073709551616", "not a non-negative number"),
        ("99999999999 0 1", "more than"),
        ("1 0 0x10", "not a non-negative number"),
    ] {
        std::fs::write(&offsets, text).unwrap();
        let out = call_bounded(
            &h,
            "restore_data_subset",
            &format!("{key} {}", offsets.display()),
            b"",
        );
        assert_one_line_failure(&out, &["offsets file", needle]);
        assert!(
            out.stdout.is_empty(),
            "{text:?}: wrote {} bytes",
            out.stdout.len()
        );
    }
    // Out of range: past the end of the object, a zero-length range there included.
    // What lies inside it may be written (authenticated bytes, in order), then the
    // call fails.
    for text in [
        "1 0 3145729",
        "1 4000000 4000001",
        "2 0 10 3145728 3145730",
        "2 0 10 3145729 3145729",
    ] {
        std::fs::write(&offsets, text).unwrap();
        let out = call_bounded(
            &h,
            "restore_data_subset",
            &format!("{key} {}", offsets.display()),
            b"",
        );
        assert_one_line_failure(
            &out,
            &["beyond the end of the object", "holds only 3145728 bytes"],
        );
        let want: Vec<u8> = match text {
            "1 0 3145729" => data.clone(),
            "2 0 10 3145728 3145730" | "2 0 10 3145729 3145729" => data[..10].to_vec(),
            _ => Vec::new(),
        };
        assert_prefix(&out.stdout, &want);
    }
    // Well-formed edge cases work: empty ranges, adjacent ranges, the whole object.
    for (text, want) in [
        ("0", Vec::new()),
        ("1 7 7", Vec::new()),
        ("2 0 0 0 0", Vec::new()),
        ("1 3145728 3145728", Vec::new()),
        ("2 0 5 5 8", data[0..8].to_vec()),
        ("1 0 3145728", data.clone()),
        (
            "3 1 2 2097151 2097153 3145727 3145728",
            [&data[1..2], &data[2097151..2097153], &data[3145727..]].concat(),
        ),
    ] {
        std::fs::write(&offsets, text).unwrap();
        let out = call_bounded(
            &h,
            "restore_data_subset",
            &format!("{key} {}", offsets.display()),
            b"",
        );
        assert_ok(&out);
        assert!(out.stdout == want, "{text}: wrong bytes");
    }
    assert_tmpdir_clean(&h);
}
