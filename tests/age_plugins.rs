//! Keys served by an age plugin (`age1unsafe1…` / `AGE-PLUGIN-UNSAFE-1…`), with a real
//! plugin process: `age-plugin-unsafe` (tests/age_plugin, built as an example of this
//! package), found on PATH as age finds plugins. Backup, restore, subset restore,
//! rotation to and from a plugin recipient, verify and inspect; a plugin that asks for
//! a PIN or a confirmation in a data command (gpbackup gives it no terminal) fails fast
//! with one line; a plugin that is not on PATH is named; stock `age` decrypts what we
//! stored with the same identity and plugin.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::*;

const TS: &str = "20250101010101";

/// The directory holding the built `age-plugin-unsafe`, put on this process's PATH once,
/// so every plugin run of these tests finds it as gpbackup's environment would.
/// `cargo test` builds examples, but not when it runs one test target alone: then, if
/// the plugin is missing or older than its source, cargo builds it here. (Not always:
/// cargo run from inside a test sees the test's environment, which changes some build
/// scripts' inputs, and the next `cargo test` would build them all over again.)
fn plugin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let profile_dir = Path::new(BIN).parent().expect("target dir");
        let dir = profile_dir.join("examples");
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        let source = repo().join("tests/age_plugin/age-plugin-unsafe.rs");
        if modified(&dir.join("age-plugin-unsafe")) < modified(&source) {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut build = Command::new(cargo);
            build
                .args(["build", "--quiet", "--example", "age-plugin-unsafe"])
                .current_dir(repo());
            if profile_dir.ends_with("release") {
                build.arg("--release");
            }
            let status = build.status().expect("run cargo build");
            assert!(status.success(), "building age-plugin-unsafe failed");
        }
        let path = std::env::var("PATH").unwrap_or_default();
        std::env::set_var("PATH", format!("{}:{path}", dir.display()));
        dir
    })
}

/// A new key of the test plugin demanding `ask` (none, pin, confirm, message): its
/// identity file (as the plugin prints it, kept 0600) and its recipient.
fn plugin_key(h: &Harness, name: &str, ask: &str) -> TestKey {
    let dir = plugin_dir();
    let secret = h.path().join(format!("{name}.secret"));
    let out = Command::new(dir.join("age-plugin-unsafe"))
        .arg("--generate")
        .arg(&secret)
        .arg(ask)
        .output()
        .expect("run age-plugin-unsafe");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let recipient = text
        .lines()
        .find_map(|l| l.strip_prefix("# recipient: "))
        .expect("a recipient comment")
        .to_string();
    assert!(recipient.starts_with("age1unsafe1"), "{recipient}");
    let identity = h.path().join(format!("{name}.txt"));
    std::fs::write(&identity, &text).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&identity, std::fs::Permissions::from_mode(0o600)).unwrap();
    TestKey {
        identity,
        recipient,
    }
}

/// An operator command through `bash -c`, arguments single-quoted, with no controlling
/// terminal (`setsid`), as from cron or a CI job; bounded.
fn detached(h: &Harness, args: &[&str]) -> std::process::Output {
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    run_script(
        &h.home(),
        &tmpdir(h),
        &format!("setsid -w {BIN} {} </dev/null", quoted.join(" ")),
        b"",
    )
}

#[test]
fn plugin_keys_back_up_restore_subsets_verify_and_inspect() {
    let h = Harness::new(&[]);
    let k = plugin_key(&h, "token", "none");
    use_keys(&h, &[&k], &[&k], &[("restore_subset", "on")]);
    let set = simulate_backup(&h, &SimSpec::multi_file(TS));
    for name in set.objects.keys() {
        assert_eq!(stanza_tags(&h.stored_at(TS, name)), ["unsafe"], "{name}");
    }
    restore_all(&h, &set);

    check_subset_restore(&h);

    let label = format!("age-plugin-unsafe identity {}", k.identity.display());
    let text = ok(&detached(&h, &["verify", h.config.to_str().unwrap(), TS]));
    assert!(text.contains("12 ok, 0 failed"), "{text}");
    assert!(text.contains(&format!("opened by {label}")), "{text}");

    let object = h.stored_at(TS, set.data_objects()[0]);
    let full = ok(&detached(
        &h,
        &[
            "inspect",
            object.to_str().unwrap(),
            "--identity",
            k.identity.to_str().unwrap(),
        ],
    ));
    assert!(full.contains("stanza types: unsafe x1\n"), "{full}");
    assert!(full.contains(&format!("opened with: {label}")), "{full}");
    assert!(full.contains("verified: yes"), "{full}");
}

#[test]
fn rotate_moves_an_x25519_backup_to_a_plugin_recipient_and_back() {
    let h = Harness::new(&[]);
    let a = keygen(h.path(), "classic");
    let k = plugin_key(&h, "token", "none");
    use_keys(&h, &[&a], &[&a], &[]);
    let set = simulate_backup(&h, &SimSpec::single_data_file(TS));
    let payloads = |h: &Harness| -> Vec<Vec<u8>> {
        set.objects
            .keys()
            .map(|n| {
                let bytes = std::fs::read(h.stored_at(TS, n)).unwrap();
                bytes[age_header_len(&bytes)..].to_vec()
            })
            .collect()
    };
    let before = payloads(&h);

    // There with the config's keyring; back with the token named by --identity, as
    // keys/README.md shows (the config then names only the new file key).
    let token = k.identity.to_str().unwrap();
    for (to, from, flags, tag) in [
        (&k, &a, vec![], "unsafe"),
        (&a, &a, vec!["--identity", token], "X25519"),
    ] {
        use_keys(&h, &[to], &[from], &[]);
        let text = ok(&rotate(&h, &flags, &[TS]));
        assert!(text.contains("9 re-wrapped"), "{text}");
        for name in set.objects.keys() {
            assert_eq!(stanza_tags(&h.stored_at(TS, name)), [tag], "{name}");
        }
        assert_eq!(
            payloads(&h),
            before,
            "re-wrapping left every payload as it was"
        );
        use_keys(&h, &[to], &[to], &[]);
        restore_all(&h, &set);
        let text = ok(&admin(&h, &["verify", h.config.to_str().unwrap(), TS]));
        assert!(text.contains("9 ok, 0 failed"), "{text}");
    }
}

#[test]
fn a_plugin_asking_for_a_pin_or_a_confirmation_fails_a_data_command_fast() {
    let h = Harness::new(&[("restore_subset", "on")]);
    let data = random_bytes(100_000, 3);
    for ask in ["pin", "confirm"] {
        let k = plugin_key(&h, ask, ask);
        use_keys(&h, &[&k], &[&k], &[("restore_subset", "on")]);
        let key = h.data_key(0, 20000);
        assert_ok(&call_bounded(&h, "backup_data", &key, &data));
        let file = h
            .backup_dir(-1)
            .join(format!("gpbackup_{TS}_{ask}_toc.yaml"));
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, b"toc").unwrap();
        assert_ok(&call_bounded(
            &h,
            "backup_file",
            file.to_str().unwrap(),
            b"",
        ));
        let offsets = h.path().join("offsets");
        std::fs::write(&offsets, "1 10 20\n").unwrap();
        let asked = match ask {
            "pin" => "asked for a PIN or passphrase (\"Enter the PIN of the unsafe key\")",
            _ => "asked for a confirmation (\"Use the unsafe key?\")",
        };
        // As gpbackup runs us: no terminal (setsid), stdin closed; the bound of
        // run_script fails the test on a hang, and the call must end well within it.
        for rest in [
            key.clone(),
            format!("{key} {}", offsets.display()),
            file.display().to_string(),
        ] {
            let command = if rest.contains(' ') {
                "restore_data_subset"
            } else if rest == key {
                "restore_data"
            } else {
                "restore_file"
            };
            let started = std::time::Instant::now();
            let out = run_script(
                &h.home(),
                &tmpdir(&h),
                &format!(
                    "setsid -w {BIN} {command} {} {rest} </dev/null",
                    h.config.display()
                ),
                b"",
            );
            let took = started.elapsed();
            assert_one_line_failure(
                &out,
                &[
                    "age plugin age-plugin-unsafe",
                    asked,
                    "without a terminal",
                    "keys/README.md",
                ],
            );
            assert!(out.stdout.is_empty(), "{command}: no plaintext");
            assert!(
                took < std::time::Duration::from_secs(20),
                "{command} took {took:?}"
            );
        }
        // An operator command without a terminal fails the same way, saying so.
        let object = h.stored(&key);
        let out = detached(
            &h,
            &[
                "inspect",
                object.to_str().unwrap(),
                "--identity",
                k.identity.to_str().unwrap(),
            ],
        );
        let line = stderr(&out);
        assert!(!out.status.success(), "{line}");
        assert!(
            line.contains(asked) && line.contains("no terminal to answer it on"),
            "{line}"
        );
        assert_tmpdir_clean(&h);
    }
}

#[test]
fn an_operator_answers_a_plugin_pin_on_the_terminal() {
    let h = Harness::new(&[]);
    let k = plugin_key(&h, "pin", "pin");
    use_keys(&h, &[&k], &[&k], &[]);
    let key = h.data_key(0, 20000);
    assert_ok(&call_bounded(&h, "backup_data", &key, b"rows"));
    let object = h.stored(&key);
    // `script` gives the command a terminal of its own (a pty) and types the PIN into it.
    let command = format!(
        "{BIN} inspect '{}' --identity '{}'",
        object.display(),
        k.identity.display()
    );
    let out = run_script(
        &h.home(),
        &tmpdir(&h),
        &format!("setsid -w script -qec \"{command}\" /dev/null"),
        b"123456\n",
    );
    let text = stdout(&out);
    assert!(out.status.success(), "{text} {}", stderr(&out));
    assert!(
        text.contains("age-plugin-unsafe: Enter the PIN of the unsafe key"),
        "{text}"
    );
    // Asked once: the full check reuses the file key instead of asking again.
    assert_eq!(text.matches("Enter the PIN").count(), 1, "{text}");
    assert!(text.contains("verified: yes"), "{text}");
}

#[test]
fn a_plugin_message_alone_is_no_failure_but_a_wait_for_a_touch_fails_fast() {
    let h = Harness::new(&[]);
    let key = h.data_key(0, 20000);
    let restore = |h: &Harness| {
        run_script(
            &h.home(),
            &tmpdir(h),
            &format!(
                "setsid -w {BIN} restore_data {} {key} </dev/null",
                h.config.display()
            ),
            b"",
        )
    };
    // A message and on: the restore works, and stderr stays empty.
    let k = plugin_key(&h, "informs", "message");
    use_keys(&h, &[&k], &[&k], &[]);
    assert_ok(&call_bounded(&h, "backup_data", &key, b"rows"));
    let out = restore(&h);
    assert_ok(&out);
    assert_eq!(out.stdout, b"rows");
    // "Touch the key", then a wait that only ends when the host goes away: the call
    // gives up after its grace period, naming the message (run_script's bound fails
    // the test on a hang).
    let k = plugin_key(&h, "touch", "touch");
    use_keys(&h, &[&k], &[&k], &[]);
    assert_ok(&call_bounded(&h, "backup_data", &key, b"rows"));
    let started = std::time::Instant::now();
    let out = restore(&h);
    let took = started.elapsed();
    assert_one_line_failure(
        &out,
        &[
            "age plugin age-plugin-unsafe is waiting for attention (it showed \"Touch the unsafe key\")",
            "without a terminal",
        ],
    );
    assert!(out.stdout.is_empty());
    assert!(took < std::time::Duration::from_secs(20), "took {took:?}");
    assert_tmpdir_clean(&h);
}

#[test]
fn a_plugin_not_on_path_is_named_with_the_path_searched() {
    let h = Harness::new(&[]);
    let k = plugin_key(&h, "token", "none");
    use_keys(&h, &[&k], &[&k], &[]);
    let key = h.data_key(0, 20000);
    assert_ok(&call_bounded(&h, "backup_data", &key, b"rows"));
    let bare = "/usr/local/bin:/usr/bin:/bin";
    for (command, needles) in [
        (
            "restore_data",
            vec!["option identity_file", "a plugin identity needs the age plugin program age-plugin-unsafe, which is not on PATH (/usr/local/bin:/usr/bin:/bin)"],
        ),
        (
            "backup_data",
            vec!["option recipients", "needs the age plugin program age-plugin-unsafe, which is not on PATH (/usr/local/bin:/usr/bin:/bin)"],
        ),
    ] {
        let out = run_script(
            &h.home(),
            &tmpdir(&h),
            &format!("PATH={bare} {BIN} {command} {} {key}", h.config.display()),
            b"rows",
        );
        let line = assert_one_line_failure(&out, &needles);
        assert!(!line.contains("AGE-PLUGIN-UNSAFE-1"), "{line}");
    }
}

#[test]
fn stock_age_decrypts_our_objects_with_the_plugin_identity() {
    let h = Harness::new(&[]);
    let k = plugin_key(&h, "token", "none");
    use_keys(&h, &[&k], &[&k], &[]);
    let data = random_bytes(200_000, 5);
    let key = h.data_key(0, 20000);
    assert_ok(&call_bounded(&h, "backup_data", &key, &data));
    // keys/README.md's recovery with stock tools: age finds the same plugin on PATH.
    let out = run_script(
        &h.home(),
        &tmpdir(&h),
        &format!(
            "age -d -i '{}' '{}' | zstd -d",
            k.identity.display(),
            h.stored(&key).display()
        ),
        b"",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout == data, "stock age and zstd recover the table");
}

#[test]
fn agedebug_in_the_environment_never_reaches_stderr() {
    // age-core traces the plugin protocol, file keys included, when AGEDEBUG=plugin is
    // set; gpbackup's calls must stay silent and keep the key to themselves.
    let h = Harness::new(&[]);
    let k = plugin_key(&h, "token", "none");
    use_keys(&h, &[&k], &[&k], &[]);
    let key = h.data_key(0, 16390);
    let data = random_bytes(100_000, 3);
    let cfg = h.config.display().to_string();
    let backup = run_in(
        &h.home(),
        &format!("export AGEDEBUG=plugin; exec {BIN} backup_data {cfg} {key}"),
        &data,
    );
    assert_ok(&backup);
    let restore = run_in(
        &h.home(),
        &format!("export AGEDEBUG=plugin; exec {BIN} restore_data {cfg} {key}"),
        b"",
    );
    assert_ok(&restore);
    assert!(restore.stdout == data, "the object restores");
}
