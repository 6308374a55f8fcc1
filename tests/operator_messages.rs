//! What a new operator following the README meets, through the binary run as gpbackup
//! runs it (`bash -c`, quoted content IDs) with the real local inner plugin: key file
//! paths that only work from one directory, recipients run together with spaces or
//! taken from the docs' placeholders, keygen into a missing directory, I/O causes in
//! our words (never Rust's "(os error N)"), one shape for every command's error line,
//! inspect's account of frames that did not compress, and rotate's recipients in
//! config order.

mod common;

use std::path::Path;

use common::*;

/// The four hooks, each as gpbackup calls it on the coordinator (content ID with its
/// literal quotes), with `config` as the plugin config.
fn hooks(h: &Harness, config: &Path) -> Vec<(&'static str, std::process::Output)> {
    [
        "setup_plugin_for_backup",
        "setup_plugin_for_restore",
        "cleanup_plugin_for_backup",
        "cleanup_plugin_for_restore",
    ]
    .into_iter()
    .map(|hook| {
        let args = format!(
            "{hook} {} {} coordinator \\\"-1\\\"",
            config.display(),
            h.backup_dir(-1).display()
        );
        (hook, run_bounded(h, &args, b""))
    })
    .collect()
}

#[test]
fn key_file_paths_are_absolute_or_start_with_home() {
    let h = Harness::new(&[]);
    let key = h.data_key(0, 16384);

    // Relative: it would resolve against whatever directory gpbackup runs us from.
    h.write_config(&[("recipients_file", "keys/demo-only-recipients.txt")]);
    let out = call_bounded(&h, "backup_data", &key, b"rows");
    assert_one_line_failure(
        &out,
        &[
            "backup_data",
            "option recipients_file: 'keys/demo-only-recipients.txt' is not an absolute path",
            "$HOME",
        ],
    );
    h.write_config(&[("identity_file", "identity.txt")]);
    for (hook, out) in hooks(&h, &h.config) {
        assert_one_line_failure(
            &out,
            &[
                hook,
                "option identity_file: 'identity.txt' is not an absolute path",
            ],
        );
    }
    // `~` is the shell's; we name it rather than guess.
    h.write_config(&[("identity_file", "~/identity.txt")]);
    let out = call_bounded(&h, "restore_data", &key, b"");
    assert_one_line_failure(
        &out,
        &["option identity_file: '~/identity.txt'", "~", "$HOME"],
    );

    // $HOME (and ${HOME}) is expanded in both key file options: a round trip works.
    let home = h.home();
    std::fs::create_dir_all(&home).unwrap();
    std::fs::copy(demo_recipients(), home.join("recipients.txt")).unwrap();
    std::fs::copy(h.private_identity(), home.join("identity.txt")).unwrap();
    h.write_config(&[
        ("recipients_file", "$HOME/recipients.txt"),
        ("identity_file", "${HOME}/identity.txt"),
    ]);
    let data = b"id,name\n1,alice\n".repeat(100);
    assert_ok(&h.backup_data(&key, &data));
    let out = h.restore_data(&key);
    assert_ok(&out);
    assert_eq!(out.stdout, data);

    // An operator's --identity on a command line is relative to where they stand.
    let object = h.stored(&key);
    let out = run_script(
        &h.home(),
        &tmpdir(&h),
        &format!(
            "cd '{}' && {BIN} inspect '{}' --identity identity.txt",
            home.display(),
            object.display()
        ),
        b"",
    );
    let text = ok(&out);
    assert!(field(&text, "verified").starts_with("yes"), "{text}");
}

#[test]
fn recipients_run_together_or_copied_from_the_docs_are_named() {
    let h = Harness::new(&[]);
    let key = h.data_key(0, 16384);
    let a = keygen(h.path(), "a");
    let b = keygen(h.path(), "b");
    for sep in [" ", "; ", ";"] {
        let value = format!("{}{sep}{}", a.recipient, b.recipient);
        h.write_config(&[("recipients_file", ""), ("recipients", &value)]);
        for command in ["backup_data", "setup_plugin_for_backup"] {
            let out = if command == "backup_data" {
                call_bounded(&h, command, &key, b"rows")
            } else {
                hooks(&h, &h.config).remove(0).1
            };
            let line = assert_one_line_failure(
                &out,
                &["option recipients", "separate recipients with commas"],
            );
            assert!(!line.contains("Bech32"), "{line}");
        }
    }
    // The placeholders of README.md and examples/s3_config.yaml, and the docs' `age1…`.
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let example = readme
        .lines()
        .find_map(|l| l.trim().strip_prefix("recipients: \"age1curr3nt"))
        .map(|rest| format!("age1curr3nt{}", rest.trim_end_matches('"')))
        .expect("the README's example recipients");
    for value in [example.as_str(), "age1…", "age1...new...,age1...escrow..."] {
        h.write_config(&[("recipients_file", ""), ("recipients", value)]);
        let out = call_bounded(&h, "backup_data", &key, b"rows");
        let line = assert_one_line_failure(&out, &["placeholder", "keygen"]);
        assert!(!line.contains("Bech32"), "{line}");
    }
    assert!(committed_objects(&h).is_empty());
}

#[test]
fn keygen_into_a_missing_directory_says_so() {
    let h = Harness::new(&[]);
    let target = h.path().join("no/such/dir/k.txt");
    let out = run_bounded(&h, &format!("keygen '{}'", target.display()), b"");
    let dir = h.path().join("no/such/dir");
    assert_one_line_failure(
        &out,
        &[
            &format!("directory {} does not exist", dir.display()),
            "mkdir -m 700",
        ],
    );
}

/// Every failure names its command and object first, and its I/O cause in our words.
#[test]
fn every_error_line_has_one_shape_and_no_rust_io_wording() {
    let h = Harness::new(&[]);
    let key = h.data_key(0, 16384);
    let missing = h.path().join("missing_config.yaml");
    let mut cases: Vec<(String, std::process::Output)> = Vec::new();
    for (hook, out) in hooks(&h, &missing) {
        cases.push((format!("{hook} coordinator \"-1\": "), out));
    }
    let m = missing.display();
    for (command, rest, prefix) in [
        ("backup_data", key.clone(), format!("backup_data {key}: ")),
        ("restore_data", key.clone(), format!("restore_data {key}: ")),
        (
            "delete_backup",
            TS.to_string(),
            format!("delete_backup {TS}: "),
        ),
        ("list_directory", "/x".into(), "list_directory /x: ".into()),
    ] {
        let out = run_bounded(&h, &format!("{command} {m} {rest}"), b"rows");
        cases.push((prefix, out));
    }
    for (_, out) in &cases {
        assert_one_line_failure(out, &["cannot read plugin config", "no such file"]);
    }
    // Other I/O causes: a missing key file, a missing input file, a missing object.
    h.write_config(&[("identity_file", "/nonexistent/identity.txt")]);
    let out = call_bounded(&h, "restore_data", &key, b"");
    cases.push((format!("restore_data {key}: "), out));
    let file = h.path().join("nosuch_toc.yaml");
    let out = call_bounded(&h, "backup_file", &file.display().to_string(), b"");
    cases.push((format!("backup_file {}: ", file.display()), out));
    let out = run_bounded(&h, &format!("inspect {}", file.display()), b"");
    cases.push((format!("inspect {}: ", file.display()), out));
    // A key file whose directory is a file: ENOTDIR, which Rust words with "(os error 20)".
    let out = run_bounded(&h, &format!("keygen {}/k.txt", h.config.display()), b"");
    assert!(
        stderr_of(&out).ends_with(": not a directory\n"),
        "{}",
        stderr_of(&out)
    );
    cases.push((format!("keygen {}/k.txt: ", h.config.display()), out));
    for (prefix, out) in &cases {
        let line = assert_one_line_failure(out, &[]);
        assert!(
            line.starts_with(&format!("gpbackup_age_plugin: {prefix}")),
            "{line:?} does not start with {prefix:?}"
        );
        assert!(!line.contains("(os error"), "{line:?}");
        assert_eq!(
            line.matches(prefix.trim_end()).count(),
            1,
            "the command is named once: {line:?}"
        );
    }
}

#[test]
fn a_config_mistake_in_a_hook_names_the_hook_and_scope() {
    let h = Harness::new(&[]);
    let text = std::fs::read_to_string(&h.config).unwrap();
    let tabbed = text.replacen("\n  root:", "\n\troot:", 1);
    assert_ne!(text, tabbed);
    std::fs::write(&h.config, tabbed).unwrap();
    for (hook, out) in hooks(&h, &h.config) {
        let line = assert_one_line_failure(&out, &["tab"]);
        assert!(
            line.starts_with(&format!("gpbackup_age_plugin: {hook} coordinator \"-1\": ")),
            "{line:?}"
        );
    }
}

#[test]
fn inspect_says_when_frames_were_stored_uncompressed() {
    let h = Harness::new(&[]);
    let key = h.data_key(0, 16384);
    // What a gzip'd table file is to zstd: nothing to gain.
    let data = random_bytes(2184, 5);
    assert_ok(&h.backup_data(&key, &data));
    let object = h.stored(&key);
    let identity = h.private_identity();
    let text = ok(&admin(
        &h,
        &[
            "inspect",
            object.to_str().unwrap(),
            "--identity",
            identity.to_str().unwrap(),
        ],
    ));
    assert_eq!(field(&text, "frames"), "1 (0 compressed, 1 stored)");
    let compression = field(&text, "compression");
    assert!(
        compression.starts_with("stored uncompressed (the input did not compress")
            && compression.contains("2184 -> "),
        "{text}"
    );
    assert!(!compression.contains('%'), "{text}");
    assert!(
        field(&text, "payload").contains(", 1 chunk of up to"),
        "{text}"
    );
}

#[test]
fn rotate_lists_the_recipients_in_config_order() {
    use gpbackup_age_plugin::keys::key_id;
    let h = Harness::new(&[]);
    let a = keygen(h.path(), "a");
    let b = keygen(h.path(), "b");
    // Config order opposite to the ids' sorted order, so sorting would show.
    let (first, second) = if key_id(&a.recipient) > key_id(&b.recipient) {
        (&a, &b)
    } else {
        (&b, &a)
    };
    use_keys(&h, &[first], &[first], &[]);
    simulate_backup(&h, &SimSpec::single_data_file(TS));
    use_keys(&h, &[first, second], &[first], &[]);
    let text = ok(&rotate(&h, &[], &[TS]));
    let sets = summaries(&text);
    assert_eq!(
        sets[0].last().unwrap(),
        &format!(
            "  recipients now: key {}, key {}",
            key_id(&first.recipient),
            key_id(&second.recipient)
        ),
        "{text}"
    );
}
