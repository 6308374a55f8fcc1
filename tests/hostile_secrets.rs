//! Secrets: no identity material in the call log, in the stderr of any call
//! (failing ones included), in the inner plugin's config, argv or environment; inner
//! configs are mode 0600, unique, in $TMPDIR and removed; a group- or world-readable
//! identity file is warned about in the log; a private key pasted where a path or a
//! recipient belongs is refused without being echoed.
//!
//! Identity material is searched as `AGE-SECRET-KEY-1` (every age X25519 identity
//! starts so; a message may name the prefix `AGE-SECRET-KEY-…` without a key) and as the
//! exact secret lines of the identity files used.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;

/// An inner plugin that records its argv, environment, config (and the config's mode)
/// into `dir`, then becomes the real local plugin.
fn capturing_inner(h: &Harness) -> (PathBuf, PathBuf) {
    let dir = h.path().join("captured");
    std::fs::create_dir_all(&dir).unwrap();
    let script = h.path().join("capturing_inner.sh");
    write_script(
        &script,
        &format!(
            r#"#!/usr/bin/env bash
n=$(date +%s%N).$$
printf '%s\n' "$@" > '{d}'/$n.argv
env > '{d}'/$n.env
if [[ $# -ge 2 && -f $2 ]]; then
    cp -- "$2" '{d}'/$n.yaml
    printf '%s %s\n' "$(stat -c %a -- "$2")" "$2" > '{d}'/$n.meta
fi
exec '{inner}' "$@"
"#,
            d = dir.display(),
            inner = local_plugin().display()
        ),
    );
    (script, dir)
}

/// The secret lines of an identity file.
fn secrets_of(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("AGE-SECRET-KEY-"))
        .map(str::to_string)
        .collect()
}

#[track_caller]
fn assert_no_secret(what: &str, text: &str, secrets: &[String]) {
    assert!(
        !text.contains("AGE-SECRET-KEY-1"),
        "{what} holds identity material:\n{text}"
    );
    for s in secrets {
        // The key's data part alone, in case a prefix was cut or re-cased.
        let data = &s["AGE-SECRET-KEY-1".len()..];
        assert!(
            !text.to_ascii_uppercase().contains(data),
            "{what} holds a secret key:\n{text}"
        );
    }
}

/// A fresh age identity file made with the crate's own keygen command.
fn new_identity(h: &Harness, name: &str) -> PathBuf {
    let path = h.path().join(name);
    let out = run_bounded(h, &format!("keygen {}", path.display()), b"");
    assert_ok(&out);
    path
}

#[test]
fn no_identity_material_reaches_logs_stderr_or_the_inner_plugin() {
    let h = Harness::new(&[]);
    let (inner, captured) = capturing_inner(&h);
    let stranger = new_identity(&h, "stranger.txt");
    let mut secrets = secrets_of(&demo_identity());
    secrets.extend(secrets_of(&stranger));
    let logged_before = h.call_log_lines().len();
    let mut outputs: Vec<(String, Output)> = Vec::new();
    let mut run = |label: &str, extra: &[(&str, &str)], command: &str, rest: &str, stdin: &[u8]| {
        let mut opts = vec![("inner_executablepath", inner.to_str().unwrap())];
        opts.extend_from_slice(extra);
        h.write_config(&opts);
        let out = call_bounded(&h, command, rest, stdin);
        outputs.push((label.to_string(), out));
    };
    let key = h.data_key(0, 16384);
    let dir = h.backup_dir(-1);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("gpbackup_{TS}_config.yaml"));
    std::fs::write(&file, b"config").unwrap();
    let file = file.display().to_string();
    let hook = format!("{} master \\\"-1\\\"", dir.display());
    let offsets = h.path().join("offsets");
    std::fs::write(&offsets, "1 0 3\n").unwrap();
    let subset = format!("{key} {}", offsets.display());

    // Every command, succeeding.
    run("setup backup", &[], "setup_plugin_for_backup", &hook, b"");
    run("setup restore", &[], "setup_plugin_for_restore", &hook, b"");
    run("backup_data", &[], "backup_data", &key, b"table rows");
    run("backup_file", &[], "backup_file", &file, b"");
    run("restore_data", &[], "restore_data", &key, b"");
    run(
        "restore_data_subset",
        &[],
        "restore_data_subset",
        &subset,
        b"",
    );
    run("restore_file", &[], "restore_file", &file, b"");
    run(
        "cleanup restore",
        &[],
        "cleanup_plugin_for_restore",
        &hook,
        b"",
    );
    // Failing: the wrong key, a corrupted identity file, an identity pasted into
    // identity_file or recipients, the inner plugin failing.
    let stranger_path = stranger.display().to_string();
    run(
        "wrong identity",
        &[("identity_file", &stranger_path)],
        "restore_data",
        &key,
        b"",
    );
    let broken = h.path().join("broken_identity.txt");
    let mut bad = secrets_of(&demo_identity())[0].clone();
    bad.pop();
    bad.push(if bad.ends_with('Q') { 'P' } else { 'Q' });
    std::fs::write(&broken, format!("# broken\n{bad}\n")).unwrap();
    secrets.push(bad.clone());
    let broken_path = broken.display().to_string();
    run(
        "broken identity file",
        &[("identity_file", &broken_path)],
        "restore_data",
        &key,
        b"",
    );
    run(
        "broken identity file, setup",
        &[("identity_file", &broken_path)],
        "setup_plugin_for_restore",
        &hook,
        b"",
    );
    let pasted = secrets[0].clone();
    run(
        "key pasted as identity_file",
        &[("identity_file", &pasted)],
        "restore_data",
        &key,
        b"",
    );
    run(
        "key pasted as recipients_file",
        &[("recipients_file", &pasted)],
        "backup_data",
        &key,
        b"x",
    );
    run(
        "key pasted as recipients",
        &[("recipients_file", ""), ("recipients", &pasted)],
        "backup_data",
        &key,
        b"x",
    );
    run(
        "inner fails",
        &[("fault", "exit_after_bytes"), ("fault_bytes", "10")],
        "restore_data",
        &key,
        b"",
    );
    run(
        "inner fails on backup",
        &[("fault", "exit_before_read")],
        "backup_data",
        &key,
        b"x",
    );

    let mut failed = 0;
    for (label, out) in &outputs {
        assert_no_panic(out);
        assert_no_secret(&format!("stderr of {label}"), &stderr_of(out), &secrets);
        if label.contains("wrong")
            || label.contains("broken")
            || label.contains("pasted")
            || label.contains("fails")
        {
            assert!(!out.status.success(), "{label} succeeded");
            assert_eq!(
                stderr_of(out).lines().count(),
                1,
                "{label}: {}",
                stderr_of(out)
            );
            failed += 1;
        } else {
            assert_ok(out);
        }
    }
    assert_eq!(failed, 8);
    for (label, needle) in [
        ("wrong identity", "no identity in identity_file matches"),
        ("key pasted as identity_file", "holds a private key itself"),
        (
            "key pasted as recipients_file",
            "holds a private key itself",
        ),
        ("key pasted as recipients", "a private key"),
    ] {
        let (_, out) = outputs.iter().find(|(l, _)| l == label).unwrap();
        assert!(
            stderr_of(out).contains(needle),
            "{label}: {}",
            stderr_of(out)
        );
    }

    // The call log: a line for every call, none with a secret.
    let log = h.call_log_lines().join("\n");
    assert_eq!(h.call_log_lines().len(), logged_before + outputs.len());
    assert_no_secret("the call log", &log, &secrets);

    // What the inner plugin saw: argv, environment, config.
    let captures = files_under(&captured);
    let metas: Vec<_> = captures
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "meta"))
        .collect();
    assert!(
        metas.len() >= 10,
        "the inner plugin ran {} times",
        metas.len()
    );
    for f in &captures {
        assert_no_secret(
            &format!("{f:?}"),
            &std::fs::read_to_string(f).unwrap(),
            &secrets,
        );
    }
    // Inner configs live in a directory of ours under $TMPDIR, mode 0700.
    let tmp = tmpdir(&h).join(format!(
        "gpbackup_age_plugin-{}",
        rustix::process::geteuid().as_raw()
    ));
    assert_eq!(mode_of(&tmp), 0o700);
    let mut names = std::collections::BTreeSet::new();
    for meta in metas {
        let text = std::fs::read_to_string(meta).unwrap();
        let (mode, path) = text.trim_end().split_once(' ').unwrap();
        assert_eq!(mode, "600", "inner config {path} has mode {mode}");
        let path = Path::new(path);
        assert_eq!(path.parent().unwrap(), tmp, "inner config outside $TMPDIR");
        assert!(path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("gpbackup_age_plugin_inner_"));
        assert!(
            names.insert(path.to_path_buf()),
            "inner config name reused: {path:?}"
        );
        let config = std::fs::read_to_string(meta.with_extension("yaml")).unwrap();
        for own in gpbackup_age_plugin::config::OWN_OPTIONS {
            assert!(
                !config.contains(&format!("{own}:")),
                "{own} forwarded:\n{config}"
            );
        }
        assert!(
            !config.contains("demo-only-identity"),
            "identity path forwarded:\n{config}"
        );
        assert!(
            config.contains("root:"),
            "pass-through option missing:\n{config}"
        );
    }
    assert_tmpdir_clean(&h);
}

#[test]
fn a_readable_identity_file_is_warned_about_in_the_log() {
    let h = Harness::new(&[]);
    let key = h.data_key(0, 16384);
    assert_ok(&call_bounded(&h, "backup_data", &key, b"rows"));
    let identity = h.path().join("identity.txt");
    std::fs::copy(demo_identity(), &identity).unwrap();
    let hook = format!("{} master \\\"-1\\\"", h.backup_dir(-1).display());
    for (mode, warned) in [(0o600, false), (0o644, true), (0o640, true), (0o400, false)] {
        std::fs::set_permissions(
            &identity,
            std::os::unix::fs::PermissionsExt::from_mode(mode),
        )
        .unwrap();
        h.write_config(&[("identity_file", identity.to_str().unwrap())]);
        let before = h.call_log_lines().len();
        let out = call_bounded(&h, "restore_data", &key, b"");
        // A warning never fails the restore, nor reaches stderr.
        assert_ok(&out);
        assert_eq!(out.stdout, b"rows");
        assert_ok(&call_bounded(&h, "setup_plugin_for_restore", &hook, b""));
        let lines = h.call_log_lines();
        assert_eq!(lines.len(), before + 2);
        for line in &lines[before..] {
            let says = line.contains("readable by group or others")
                && line.contains(&format!("mode {mode:o}"));
            assert_eq!(says, warned, "mode {mode:o}: {line}");
            assert!(!line.contains("AGE-SECRET-KEY-1"));
        }
    }
}
