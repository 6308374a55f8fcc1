//! `rotate`: a backup set stored the way gpbackup stores it, brought from key A to key B
//! by re-wrapping headers (or re-encrypting), interrupted and re-run with an inner
//! plugin that overwrites in place, and streamed for an atomic one.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;

const TS1: &str = "20250101010101";
const TS2: &str = "20250102020202";

/// Every stored object of a set, by basename.
fn snapshot(h: &Harness, set: &SimBackup) -> BTreeMap<String, Vec<u8>> {
    set.objects
        .keys()
        .map(|name| {
            let bytes = std::fs::read(h.stored_at(set.ts, name))
                .unwrap_or_else(|e| panic!("stored object {name}: {e}"));
            (name.clone(), bytes)
        })
        .collect()
}

/// `age -d -i key | zstd -d` with the stock tools.
fn stock_restore(identity: &Path, object: &Path) -> Option<Vec<u8>> {
    let script = format!(
        "set -o pipefail; age -d -i {} {} | zstd -d -q -c",
        identity.display(),
        object.display()
    );
    let out = run_in(Path::new("/tmp"), &script, b"");
    out.status.success().then_some(out.stdout)
}

/// The original of every object restores through the plugin with the config's keys.
fn assert_restores(h: &Harness, set: &SimBackup) {
    for (name, original) in &set.objects {
        let key = h.seg_dir(0, set.ts).join(name).display().to_string();
        let out = h.restore_data(&key);
        assert_ok(&out);
        assert_eq!(&out.stdout, original, "{name} restores to its original");
    }
}

fn key_id(recipient: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(recipient.as_bytes())[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn rotation_rewraps_every_object_of_both_layouts_from_a_to_b() {
    let h = Harness::new(&[]);
    let a = keygen(h.path(), "a");
    let b = keygen(h.path(), "b");
    use_keys(&h, &[&a], &[&a], &[]);
    let multi = simulate_backup(&h, &SimSpec::multi_file(TS1));
    let single = simulate_backup(&h, &SimSpec::single_data_file(TS2));
    assert_eq!(multi.objects.len(), 2 * 3 + 6);
    assert_eq!(single.objects.len(), 2 + 2 + 5);
    let before1 = snapshot(&h, &multi);
    let before2 = snapshot(&h, &single);

    // Step 2 of the procedure: new backups to B; the keyring holds B and A.
    use_keys(&h, &[&b], &[&b, &a], &[]);
    let out = rotate(&h, &[], &[TS1, TS2]);
    let text = ok(&out);
    let sets = summaries(&text);
    assert_eq!(sets.len(), 2, "{text}");
    assert_eq!(
        sets[0][..2],
        [
            format!("rotate {TS1}: 12 objects (2 segments, file per table, .gz)"),
            "  12 re-wrapped, 0 already done, 0 failed".to_string()
        ],
        "{text}"
    );
    assert_eq!(
        sets[1][..2],
        [
            format!("rotate {TS2}: 9 objects (2 segments, single data file, .zst)"),
            "  9 re-wrapped, 0 already done, 0 failed".to_string()
        ],
        "{text}"
    );
    assert_eq!(
        sets[0].last().unwrap(),
        &format!("  recipients now: key {}", key_id(&b.recipient)),
        "{text}"
    );

    for (set, before) in [(&multi, &before1), (&single, &before2)] {
        let after = snapshot(&h, set);
        for (name, old) in before {
            let new = &after[name];
            let object = h.stored_at(set.ts, name);
            assert_ne!(old, new, "{name} was rewritten");
            assert_eq!(
                &old[age_header_len(old)..],
                &new[age_header_len(new)..],
                "{name}: every byte after the header is unchanged"
            );
            assert!(
                age_cli_decrypt(&a.identity, &object).is_none(),
                "{name}: A no longer opens it"
            );
            assert!(
                age_cli_decrypt(&b.identity, &object).is_some(),
                "{name}: B opens it"
            );
            assert_eq!(
                stock_restore(&b.identity, &object).as_ref(),
                Some(&set.objects[name]),
                "{name}: stock age -d -i B | zstd -d gives the original"
            );
        }
    }

    // A restore host that holds only B restores everything; verify agrees; A opens nothing.
    use_keys(&h, &[&b], &[&b], &[]);
    assert_restores(&h, &multi);
    assert_restores(&h, &single);
    let verified = ok(&admin(
        &h,
        &[
            "verify",
            h.config.to_str().unwrap(),
            TS1,
            TS2,
            "--identity",
            b.identity.to_str().unwrap(),
        ],
    ));
    assert!(verified.contains("12 ok, 0 failed"), "{verified}");
    assert!(
        verified.contains(&format!("opened by key {} (12)", key_id(&b.recipient))),
        "{verified}"
    );
    // The retired key: one failure per object, none opened.
    let with_a = admin(
        &h,
        &[
            "verify",
            h.config.to_str().unwrap(),
            TS1,
            "--identity",
            a.identity.to_str().unwrap(),
        ],
    );
    assert!(!with_a.status.success());
    let err = stderr(&with_a);
    assert_eq!(
        err.lines()
            .filter(|l| l.ends_with(": no identity in the keyring opens it"))
            .count(),
        12,
        "{err}"
    );
    assert!(
        stdout(&with_a).contains("0 ok, 12 failed"),
        "{}",
        stdout(&with_a)
    );

    // A re-run finds everything done from the journal, reading headers only.
    use_keys(&h, &[&b], &[&b, &a], &[]);
    let again = ok(&rotate(&h, &[], &[TS1, TS2]));
    assert!(
        again.contains("0 re-wrapped, 12 already done, 0 failed"),
        "{again}"
    );
    assert!(
        again.contains("0 re-wrapped, 9 already done, 0 failed"),
        "{again}"
    );
    assert_eq!(snapshot(&h, &multi), snapshot(&h, &multi));
    let stage = std::fs::read_dir(work(&h)).unwrap().count();
    assert_eq!(
        stage, 1,
        "only the journal's directory is left in the work dir"
    );
}

/// An inner plugin that fails one object's uploads half-way, after overwriting it in
/// place: the local plugin with naive_overwrite, cut after 8000 bytes.
fn faulty_plugin(h: &Harness, object: &str) -> String {
    let path = h.path().join("faulty_plugin.sh");
    std::fs::write(
        &path,
        format!(
            "#!/usr/bin/env bash\nif [[ $1 == backup_data && $3 == */{object} ]]; then\n  head -c 8000 | {local} backup_data \"$2\" \"$3\"\n  echo 'faulty_plugin: upload of {object} failed after 8000 bytes' >&2\n  exit 5\nfi\nexec {local} \"$@\"\n",
            local = local_plugin().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path.display().to_string()
}

#[test]
fn interrupted_rotation_with_a_naive_inner_plugin_loses_nothing_and_a_rerun_completes() {
    let h = Harness::new(&[]);
    let a = keygen(h.path(), "a");
    let b = keygen(h.path(), "b");
    use_keys(&h, &[&a], &[&a], &[]);
    let mut spec = SimSpec::multi_file(TS1);
    spec.rows = 3000; // data objects well above the faults' byte count
    spec.with_statistics = false;
    let set = simulate_backup(&h, &spec);
    let data = set.data_objects();
    assert_eq!(data.len(), 6);
    for name in &data {
        assert!(std::fs::metadata(h.stored_at(TS1, name)).unwrap().len() > 20_000);
    }

    // 1. The inner plugin overwrites in place (cat > object) and fails after 8000 bytes
    // of every upload: each data object is cut short in storage, and so is the attempt
    // to put the original back. Every object is kept, verified, in the work directory.
    use_keys(
        &h,
        &[&b],
        &[&b, &a],
        &[
            ("naive_overwrite", "on"),
            ("fault", "exit_after_bytes"),
            ("fault_bytes", "8000"),
            ("fault_commands", "backup_data"),
        ],
    );
    let out = rotate(&h, &["--parallel", "3"], &[TS1]);
    assert!(!out.status.success());
    let err = stderr(&out);
    for name in set.objects.keys() {
        let line = err
            .lines()
            .find(|l| l.contains(&format!(": {name}: ")))
            .unwrap_or_else(|| panic!("no error line for {name} in:\n{err}"));
        assert!(line.contains("injected fault exit_after_bytes"), "{line}");
        assert!(line.contains("is kept at"), "{line}");
    }
    for name in &data {
        assert_eq!(
            std::fs::metadata(h.stored_at(TS1, name)).unwrap().len(),
            8000
        );
    }
    assert!(
        summaries(&stdout(&out))[0][1] == "  0 re-wrapped, 0 already done, 11 failed",
        "{}",
        stdout(&out)
    );
    assert!(
        err.trim_end()
            .lines()
            .last()
            .unwrap()
            .contains("11 object(s) failed"),
        "{err}"
    );
    // Failures a re-run can finish say so.
    assert!(
        err.trim_end()
            .lines()
            .last()
            .unwrap()
            .contains("re-run the same command to finish"),
        "{err}"
    );

    // 2. Re-run with an inner plugin that still fails one object half-way: the others
    // complete, the damaged ones from the copies the first run kept.
    let victim = format!("gpbackup_1_{TS1}_16390.gz");
    let faulty = faulty_plugin(&h, &victim);
    use_keys(
        &h,
        &[&b],
        &[&b, &a],
        &[("naive_overwrite", "on"), ("inner_executablepath", &faulty)],
    );
    let out = rotate(&h, &[], &[TS1]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!(": {victim}: replacing it failed: ")),
        "{err}"
    );
    assert!(err.contains("failed after 8000 bytes"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 2, "{err}");
    assert!(
        stdout(&out).contains(
            "10 re-wrapped (5 from copies kept by an earlier run), 0 already done, 1 failed"
        ),
        "{}",
        stdout(&out)
    );

    // 3. Re-run once the inner plugin works (still overwriting in place).
    use_keys(&h, &[&b], &[&b, &a], &[("naive_overwrite", "on")]);
    let text = ok(&rotate(&h, &[], &[TS1]));
    assert!(
        text.contains(
            "1 re-wrapped (1 from copies kept by an earlier run), 10 already done, 0 failed"
        ),
        "{text}"
    );
    use_keys(&h, &[&b], &[&b], &[]);
    assert_restores(&h, &set);
    ok(&admin(&h, &["verify", h.config.to_str().unwrap(), TS1]));
    for name in set.objects.keys() {
        assert!(
            age_cli_decrypt(&a.identity, &h.stored_at(TS1, name)).is_none(),
            "{name}"
        );
    }
    let left: Vec<_> = walk(&work(&h))
        .into_iter()
        .filter(|p| !p.ends_with("journal"))
        .collect();
    assert!(left.is_empty(), "nothing staged is left behind: {left:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn reencrypt_replaces_the_payload_and_still_restores() {
    let h = Harness::new(&[]);
    let a = keygen(h.path(), "a");
    let b = keygen(h.path(), "b");
    use_keys(&h, &[&a], &[&a], &[]);
    let set = simulate_backup(&h, &SimSpec::single_data_file(TS2));
    let before = snapshot(&h, &set);
    use_keys(&h, &[&b], &[&b, &a], &[]);
    let text = ok(&rotate(&h, &["--reencrypt"], &[TS2]));
    assert!(
        text.contains("9 re-encrypted, 0 already done, 0 failed"),
        "{text}"
    );
    let after = snapshot(&h, &set);
    for (name, old) in &before {
        let new = &after[name];
        assert_ne!(
            &old[age_header_len(old)..],
            &new[age_header_len(new)..],
            "{name}: a new payload under a new file key"
        );
        let object = h.stored_at(TS2, name);
        assert!(age_cli_decrypt(&a.identity, &object).is_none(), "{name}");
        assert_eq!(
            stock_restore(&b.identity, &object).as_ref(),
            Some(&set.objects[name])
        );
    }
    use_keys(&h, &[&b], &[&b], &[]);
    assert_restores(&h, &set);
    // A later re-wrap run knows these objects are done.
    use_keys(&h, &[&b], &[&b, &a], &[]);
    assert!(ok(&rotate(&h, &[], &[TS2])).contains("9 already done"));
}

#[test]
fn streaming_rotation_for_an_atomic_inner_plugin() {
    let h = Harness::new(&[]);
    let a = keygen(h.path(), "a");
    let b = keygen(h.path(), "b");
    let c = keygen(h.path(), "c");
    use_keys(&h, &[&a], &[&a], &[]);
    let set = simulate_backup(&h, &SimSpec::multi_file(TS1));
    let before = snapshot(&h, &set);
    use_keys(&h, &[&b], &[&b, &a], &[]);
    let text = ok(&rotate(&h, &["--streaming"], &[TS1]));
    assert!(
        text.contains("12 re-wrapped, 0 already done, 0 failed") && text.contains("streaming"),
        "{text}"
    );
    let after = snapshot(&h, &set);
    for (name, old) in &before {
        assert_eq!(
            &old[age_header_len(old)..],
            &after[name][age_header_len(&after[name])..]
        );
    }
    // Then re-encrypt to C, streaming too.
    use_keys(&h, &[&c], &[&c, &b], &[]);
    let text = ok(&rotate(&h, &["--streaming", "--reencrypt"], &[TS1]));
    assert!(text.contains("12 re-encrypted"), "{text}");
    use_keys(&h, &[&c], &[&c], &[]);
    assert_restores(&h, &set);
    for name in set.objects.keys() {
        assert!(age_cli_decrypt(&b.identity, &h.stored_at(TS1, name)).is_none());
    }
}

#[test]
fn rotation_errors_name_the_object_or_option() {
    let h = Harness::new(&[]);
    let a = keygen(h.path(), "a");
    let b = keygen(h.path(), "b");
    let stranger = keygen(h.path(), "stranger");
    use_keys(&h, &[&a], &[&a], &[]);
    let set = simulate_backup(&h, &SimSpec::multi_file(TS1));

    // A keyring that opens nothing of the set: one line naming the file it needed.
    use_keys(&h, &[&b], &[&b], &[]);
    let out = rotate(&h, &[], &[TS1]);
    let err = assert_fails_with_lines(&out, 2);
    assert!(
        err.contains(&format!("rotate {TS1}: cannot read gpbackup_{TS1}_config.yaml of backup {TS1}: no identity in the keyring opens it")),
        "{err}"
    );
    // Running the same command again cannot help a keyring that opens nothing, nor a
    // timestamp with no backup: no "re-run" for those.
    assert!(!err.contains("re-run"), "{err}");
    let out = rotate(&h, &[], &["20240101010101"]);
    assert!(!out.status.success());
    assert!(!stderr(&out).contains("re-run"), "{}", stderr(&out));

    // One object encrypted to someone else: only that object fails, by name.
    let victim = &set.data_objects()[0].to_string();
    use_keys(&h, &[&stranger], &[&stranger], &[]);
    let key = h.seg_dir(0, TS1).join(victim).display().to_string();
    assert_ok(&h.backup_data(&key, &set.objects[victim]));
    use_keys(&h, &[&b], &[&b, &a], &[]);
    let out = rotate(&h, &[], &[TS1]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "rotate {TS1}: {victim}: no identity in the keyring opens it"
        )),
        "{err}"
    );
    assert!(
        summaries(&stdout(&out))[0][1] == "  11 re-wrapped, 0 already done, 1 failed",
        "{}",
        stdout(&out)
    );
    let last = err.trim_end().lines().last().unwrap().to_string();
    assert!(!last.contains("re-run the same command"), "{last}");
    assert!(
        last.contains("no identity of the keyring opens it: add the identity that opens them (--identity FILE"),
        "{last}"
    );

    // Bad command lines.
    assert_fails_with(
        &rotate(&h, &[], &["2025"]),
        "timestamp '2025' is not a gpbackup timestamp",
    );
    assert_fails_with(&rotate(&h, &["--parallel", "0"], &[TS1]), "--parallel");
    let no_recipients = Harness::new(&[("recipients_file", "")]);
    let out = admin(
        &no_recipients,
        &["rotate", no_recipients.config.to_str().unwrap(), TS1],
    );
    assert_fails_with(&out, "no recipients");
}

/// Asserts failure with `n` stderr lines; returns stderr.
#[track_caller]
fn assert_fails_with_lines(out: &std::process::Output, n: usize) -> String {
    let err = stderr(out);
    assert!(!out.status.success(), "expected failure: {err}");
    assert_eq!(err.trim_end().lines().count(), n, "stderr: {err}");
    err
}
