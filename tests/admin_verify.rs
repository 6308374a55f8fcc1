//! `verify`: every object of a backup set checked end to end; failures named one per
//! line, a summary, and a non-zero exit.

mod common;

use common::*;

const TS: &str = "20250101010101";

fn write_executable(path: &std::path::Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

fn verify(h: &Harness, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["verify", h.config.to_str().unwrap(), TS];
    args.extend_from_slice(extra);
    admin(h, &args)
}

#[test]
fn verify_passes_a_good_set_and_names_each_bad_object() {
    let h = Harness::new(&[]);
    let a = keygen(h.path(), "a");
    use_keys(&h, &[&a], &[&a], &[]);
    let set = simulate_backup(&h, &SimSpec::multi_file(TS));
    let text = ok(&verify(&h, &[]));
    assert_eq!(
        summaries(&text)[0][..2],
        [
            format!("verify {TS}: 12 objects (2 segments)"),
            "  12 ok, 0 failed".to_string()
        ],
        "{text}"
    );
    assert!(text.contains("opened by key "), "{text}");

    // One byte flipped inside one data object's payload.
    let data = set.data_objects();
    let flipped = data[1].clone();
    let path = h.stored_at(TS, &flipped);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = age_header_len(&bytes) + 40;
    bytes[at] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();
    // One object swapped for another one's ciphertext.
    let swapped = data[2].clone();
    std::fs::copy(h.stored_at(TS, data[3]), h.stored_at(TS, &swapped)).unwrap();
    // One object missing.
    let missing = format!("gpbackup_{TS}_report");
    std::fs::remove_file(h.stored_at(TS, &missing)).unwrap();

    let out = verify(&h, &["--parallel", "2"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    let line_for = |name: &str| {
        err.lines()
            .find(|l| l.starts_with(&format!("gpbackup_age_plugin: verify {TS}: {name}: ")))
            .unwrap_or_else(|| panic!("no line for {name} in:\n{err}"))
            .to_string()
    };
    assert!(
        line_for(&flipped).contains("authentication failed"),
        "{err}"
    );
    assert!(line_for(&swapped).contains("renamed or swapped"), "{err}");
    assert!(line_for(&missing).contains("no such object"), "{err}");
    assert_eq!(
        err.trim_end().lines().count(),
        4,
        "three objects and the total: {err}"
    );
    assert!(
        err.trim_end().ends_with("verify: 3 object(s) failed"),
        "{err}"
    );
    assert!(stdout(&out).contains("9 ok, 3 failed"), "{}", stdout(&out));
    assert_eq!(summaries(&stdout(&out)).len(), 1);
    // verify wrote nothing anywhere: storage holds exactly what it held.
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn verify_with_another_identity_answers_whether_that_key_reads_the_backup() {
    let h = Harness::new(&[]);
    let a = keygen(h.path(), "a");
    let escrow = keygen(h.path(), "escrow");
    let other = keygen(h.path(), "other");
    use_keys(&h, &[&a, &escrow], &[&a], &[]);
    let mut spec = SimSpec::single_data_file(TS);
    spec.compression = "none";
    simulate_backup(&h, &spec);
    let text = ok(&verify(
        &h,
        &["--identity", escrow.identity.to_str().unwrap()],
    ));
    assert!(text.contains("9 ok, 0 failed"), "{text}");
    let out = verify(&h, &["--identity", other.identity.to_str().unwrap()]);
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(err.contains("no identity in the keyring opens it"), "{err}");
    assert_fails_with(
        &verify(&h, &["--identity", "/nonexistent/key.txt"]),
        "--identity /nonexistent/key.txt: cannot read it: no such file",
    );
}

#[test]
fn segments_are_counted_by_probing_when_config_yaml_predates_segmentcount() {
    let h = Harness::new(&[]);
    let a = keygen(h.path(), "a");
    use_keys(&h, &[&a], &[&a], &[]);
    let set = simulate_backup(&h, &SimSpec::multi_file(TS));
    // An older gpbackup's config.yaml: no segmentcount.
    let name = format!("gpbackup_{TS}_config.yaml");
    let old: String = String::from_utf8(set.objects[&name].clone())
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("segmentcount:"))
        .map(|l| format!("{l}\n"))
        .collect();
    let path = h.seg_dir(-1, TS).join(&name);
    std::fs::write(&path, old).unwrap();
    assert_ok(&h.call("backup_file", &path.display().to_string(), b""));
    let text = ok(&verify(&h, &[]));
    assert_eq!(
        summaries(&text)[0][..2],
        [
            format!("verify {TS}: 12 objects (2 segments found by probing)"),
            "  12 ok, 0 failed".to_string()
        ],
        "{text}"
    );
}

/// An inner plugin that warns on stderr, naming the object, on every call that reads or
/// writes one, and otherwise works: each warning belongs on the log line of its own
/// object, also when several objects are processed at once.
#[test]
fn inner_warnings_land_on_the_log_line_of_their_own_object() {
    let h = Harness::new(&[]);
    let a = keygen(h.path(), "a");
    let b = keygen(h.path(), "b");
    use_keys(&h, &[&a], &[&a], &[]);
    let set = simulate_backup(&h, &SimSpec::multi_file(TS));
    let chatty = h.path().join("chatty_plugin.sh");
    std::fs::write(
        &chatty,
        format!(
            "#!/usr/bin/env bash\nif [[ $1 == restore_data || $1 == backup_data ]]; then\n  echo \"chatty: $1 of ${{3##*/}}\" >&2\nfi\nexec {} \"$@\"\n",
            local_plugin().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&chatty, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let chatty = chatty.display().to_string();
    let check = |command: &str, reads: &[&str]| {
        let lines: Vec<String> = h
            .call_log_lines()
            .into_iter()
            .filter(|l| l.contains(&format!(" command={command} ")))
            .collect();
        assert_eq!(lines.len(), set.objects.len(), "{lines:#?}");
        for name in set.objects.keys() {
            let line = lines
                .iter()
                .find(|l| l.contains(&format!(" object={TS}/{name} ")))
                .unwrap_or_else(|| panic!("no {command} line for {name}: {lines:#?}"));
            for read in reads {
                assert!(
                    line.contains(&format!("said: chatty: {read} of {name}")),
                    "{name}: {line}"
                );
            }
            assert_eq!(line.matches("chatty: ").count(), reads.len(), "{line}");
        }
    };

    use_keys(&h, &[&a], &[&a], &[("inner_executablepath", &chatty)]);
    ok(&verify(&h, &["--parallel", "4"]));
    check("verify", &["restore_data"]);

    use_keys(&h, &[&b], &[&b, &a], &[("inner_executablepath", &chatty)]);
    ok(&rotate(&h, &["--parallel", "4", "--streaming"], &[TS]));
    check("rotate", &["restore_data", "backup_data"]);
}

/// On a terminal, progress counts objects and the bytes read, from the counter the
/// summary reports: once objects are done it never shows "0 B" read, and it never says
/// "moved" (the summary's word is "read").
#[test]
fn progress_on_a_terminal_counts_objects_and_bytes_read() {
    let h = Harness::new(&[]);
    let a = keygen(h.path(), "a");
    use_keys(&h, &[&a], &[&a], &[]);
    simulate_backup(&h, &SimSpec::multi_file(TS));
    // A store that takes a moment per object, as a remote one does, so the bar is
    // drawn while objects are done (it redraws every 200 ms).
    let slow = h.path().join("slow_plugin.sh");
    write_executable(
        &slow,
        &format!(
            "#!/usr/bin/env bash\n[[ $1 == restore_data ]] && sleep 0.3\nexec {} \"$@\"\n",
            local_plugin().display()
        ),
    );
    use_keys(
        &h,
        &[&a],
        &[&a],
        &[("inner_executablepath", slow.to_str().unwrap())],
    );
    // script(1) gives the command a terminal; what it draws comes out on our stdout.
    let command = format!("{BIN} verify {} {TS} --parallel 1", h.config.display());
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("HOME", h.home())
        .env("TERM", "xterm")
        .output()
        .expect("run script(1) (util-linux)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("moved"), "{text}");
    let mut drawn_with_objects_done = 0;
    for frame in text
        .split(['\r', '\n'])
        .filter(|f| f.contains(" objects, "))
    {
        let done: usize = frame
            .split("] ")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no object count in {frame:?}"));
        assert!(frame.contains(" read, "), "{frame:?}");
        if done > 0 {
            drawn_with_objects_done += 1;
            assert!(!frame.contains(" 0 B read"), "{frame:?}");
        }
    }
    assert!(
        drawn_with_objects_done > 0,
        "no frame showed objects done: {text:?}"
    );
    let summary = &text[text.find(&format!("verify {TS}: ")).expect("a summary")..];
    let summary = summaries(&summary.replace('\r', ""));
    assert!(summary[0][2].contains(" read in "), "{summary:?}");
}
