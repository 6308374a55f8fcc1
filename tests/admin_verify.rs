//! `verify`: every object of a backup set checked end to end; failures named one per
//! line, a summary, and a non-zero exit.

mod admin_support;
mod common;
mod plugin_support;

use admin_support::*;
use common::*;
use plugin_support::call_log_lines;

const TS: &str = "20250101010101";

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
    assert!(
        text.starts_with(&format!(
            "verify {TS}: 12 objects (2 segments): 12 ok, 0 failed;"
        )),
        "{text}"
    );
    assert!(text.contains("opened by key "), "{text}");

    // One byte flipped inside one data object's payload.
    let data = set.data_objects();
    let flipped = data[1].clone();
    let path = stored_at(&h, TS, &flipped);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = age_header_len(&bytes) + 40;
    bytes[at] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();
    // One object swapped for another one's ciphertext.
    let swapped = data[2].clone();
    std::fs::copy(stored_at(&h, TS, data[3]), stored_at(&h, TS, &swapped)).unwrap();
    // One object missing.
    let missing = format!("gpbackup_{TS}_report");
    std::fs::remove_file(stored_at(&h, TS, &missing)).unwrap();

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
    let path = seg_dir(&h, -1, TS).join(&name);
    std::fs::write(&path, old).unwrap();
    assert_ok(&h.call("backup_file", &path.display().to_string(), b""));
    let text = ok(&verify(&h, &[]));
    assert!(
        text.contains("12 objects (2 segments found by probing): 12 ok, 0 failed"),
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
        let lines: Vec<String> = call_log_lines(&h)
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
