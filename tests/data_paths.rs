//! Data through the plugin: round trips of every size and setting, subset restores, and
//! every way a stored object can be wrong.

mod common;

use std::io::{Read, Write};
use std::path::Path;

use gpbackup_age_plugin::object::FrameKind;
use gpbackup_age_plugin::pipeline::DEFAULT_FRAME_SIZE as FRAME;
use sha2::{Digest, Sha256};

use common::*;

#[track_caller]
fn round_trip(h: &Harness, key: &str, data: &[u8]) {
    assert_ok(&h.backup_data(key, data));
    let out = h.restore_data(key);
    assert_ok(&out);
    assert!(
        out.stdout == data,
        "{key}: restored {} bytes, expected {} (first difference at {:?})",
        out.stdout.len(),
        data.len(),
        out.stdout.iter().zip(data).position(|(a, b)| a != b)
    );
}

#[test]
fn the_frame_size_is_2_mib() {
    assert_eq!(FRAME, 2 << 20);
}

#[test]
fn empty_stream_round_trips_and_is_still_encrypted() {
    let h = Harness::new(&[]);
    let key = h.data_key(0, 16384);
    round_trip(&h, &key, b"");
    let stored = std::fs::read(h.stored(&key)).unwrap();
    assert!(stored.starts_with(b"age-encryption.org/v1\n"));
    assert!(frame_kinds(&stored).is_empty());
}

#[test]
fn one_byte_round_trips() {
    let h = Harness::new(&[]);
    round_trip(&h, &h.data_key(0, 16384), b"\n");
    round_trip(&h, &h.data_key(0, 16385), &[0]);
    round_trip(&h, &h.data_key(0, 16386), &[0xff]);
}

#[test]
fn binary_and_text_data_around_frame_boundaries_round_trip() {
    let h = Harness::new(&[]);
    let sizes = [FRAME - 1, FRAME, FRAME + 1, 2 * FRAME, 3 * FRAME + 4097];
    for (i, len) in sizes.into_iter().enumerate() {
        let random = random_bytes(len, i as u64 + 1);
        let key = h.data_key(0, 20000 + i as u32);
        round_trip(&h, &key, &random);
        // Incompressible frames are stored, one per started frame.
        let kinds = frame_kinds(&std::fs::read(h.stored(&key)).unwrap());
        assert_eq!(kinds.len(), len.div_ceil(FRAME), "frames of {len} bytes");
        assert!(kinds.iter().all(|k| *k == FrameKind::Stored));

        let text = csv_bytes(len, i as u64 + 100);
        let key = h.data_key(1, 20000 + i as u32);
        round_trip(&h, &key, &text);
        let stored = std::fs::read(h.stored(&key)).unwrap();
        assert!(stored.len() < len / 2, "CSV was not compressed");
        // (A last frame of a few bytes gains nothing from zstd and may be stored.)
        assert_eq!(frame_kinds(&stored)[0], FrameKind::Compressed);
    }
    // Binary data with long zero runs, odd lengths and every byte value.
    let mut mixed = Vec::new();
    for i in 0..(5 * FRAME / 3) {
        mixed.push(if i % 9000 < 4000 {
            0
        } else {
            (i * 7 % 256) as u8
        });
    }
    round_trip(&h, &h.data_key(2, 30000), &mixed);
}

/// Streams `len` bytes of CSV into backup_data from a generator thread and restores
/// them, hashing on the fly on both sides; returns the stored object's size.
fn stream_round_trip(h: &Harness, key: &str, len: usize, seed: u64) -> u64 {
    let cfg = h.config.display();
    let mut child = spawn_plugin(h, &format!("backup_data {cfg} {key}"));
    let mut stdin = child.stdin.take().unwrap();
    let generator = std::thread::spawn(move || -> std::io::Result<[u8; 32]> {
        let mut gen = CsvGen::new(seed);
        let mut hasher = Sha256::new();
        let mut buf = Vec::with_capacity((1 << 20) + 4096);
        let mut left = len;
        while left > 0 {
            buf.clear();
            gen.fill(&mut buf, left.min(1 << 20));
            hasher.update(&buf);
            stdin.write_all(&buf)?;
            left -= buf.len();
        }
        Ok(hasher.finalize().into())
    });
    let out = child.wait_with_output().unwrap();
    let sent = generator.join().unwrap();
    assert_ok(&out);
    let sent = sent.expect("the plugin read the whole stream");

    let mut child = spawn_plugin(h, &format!("restore_data {cfg} {key}"));
    drop(child.stdin.take());
    let mut stdout = child.stdout.take().unwrap();
    let mut hasher = Sha256::new();
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = stdout.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        got += n;
    }
    let out = child.wait_with_output().unwrap();
    assert_ok(&out);
    assert_eq!(got, len, "restored length");
    let restored: [u8; 32] = hasher.finalize().into();
    assert!(restored == sent, "SHA-256 of the restored stream differs");
    std::fs::metadata(h.stored(key)).unwrap().len()
}

#[test]
fn a_256_mib_stream_generated_on_the_fly_round_trips() {
    let h = Harness::new(&[]);
    let len = (256 << 20) + 12345;
    let stored = stream_round_trip(&h, &h.data_key(0, 16384), len, 42);
    assert!(
        stored < len as u64 / 2,
        "{stored} bytes stored for {len} bytes of CSV: not compressed"
    );
}

#[test]
fn gzip_input_under_a_gz_key_is_stored_not_recompressed() {
    let h = Harness::new(&[]);
    let gz = gzip(&csv_bytes(5 * FRAME, 8));
    assert_eq!(&gz[..2], &[0x1f, 0x8b]);
    let key = format!("{}.gz", h.data_key(0, 16384));
    round_trip(&h, &key, &gz);
    let kinds = frame_kinds(&std::fs::read(h.stored(&key)).unwrap());
    assert!(!kinds.is_empty() && kinds.iter().all(|k| *k == FrameKind::Stored));
}

#[test]
fn compression_none_stores_every_frame() {
    let h = Harness::new(&[("compression", "none")]);
    let data = csv_bytes(2 * FRAME + 10, 9);
    let key = h.data_key(0, 16384);
    round_trip(&h, &key, &data);
    let stored = std::fs::read(h.stored(&key)).unwrap();
    assert!(
        stored.len() > data.len(),
        "compressed although compression is none"
    );
    let kinds = frame_kinds(&stored);
    // Stored objects use small frames (they stay in cache from read to write).
    let frame = gpbackup_age_plugin::pipeline::STORED_FRAME_SIZE;
    assert_eq!(kinds.len(), data.len().div_ceil(frame));
    assert!(kinds.iter().all(|k| *k == FrameKind::Stored));
}

#[test]
fn compression_level_19_round_trips_and_compresses_harder_than_level_1() {
    let data = csv_bytes(FRAME + FRAME / 4, 10);
    let mut sizes = Vec::new();
    for level in ["1", "19"] {
        let h = Harness::new(&[("compression_level", level)]);
        let key = h.data_key(0, 16384);
        round_trip(&h, &key, &data);
        sizes.push(std::fs::metadata(h.stored(&key)).unwrap().len());
    }
    assert!(
        sizes[1] < sizes[0],
        "level 19 {} >= level 1 {}",
        sizes[1],
        sizes[0]
    );
}

#[test]
fn one_worker_round_trips_a_multi_frame_stream() {
    let h = Harness::new(&[("workers", "1")]);
    round_trip(&h, &h.data_key(0, 16384), &csv_bytes(3 * FRAME + 5, 11));
    round_trip(&h, &h.data_key(0, 16385), &random_bytes(2 * FRAME + 5, 11));
}

#[test]
fn restore_data_subset_writes_exactly_the_requested_ranges() {
    // restore_subset is gpbackup's switch: ours, not forwarded (local_plugin.sh would
    // reject the unknown key).
    let h = Harness::new(&[("restore_subset", "on")]);
    let small = h.data_key(0, 1);
    assert_ok(&h.backup_data(&small, b"abcdefghijklmn"));
    let out = subset(&h, &small, "1 3 10\n");
    assert_ok(&out);
    assert_eq!(out.stdout, b"defghij");

    for (name, data) in [
        ("csv", csv_bytes(3 * FRAME + 777, 12)),
        ("random", random_bytes(3 * FRAME + 777, 12)),
    ] {
        let key = h.data_key(0, if name == "csv" { 2 } else { 3 });
        assert_ok(&h.backup_data(&key, &data));
        let len = data.len();
        let cases: Vec<Vec<(usize, usize)>> = vec![
            vec![(0, 10)],
            vec![(0, len)],
            vec![(len - 1, len)],
            vec![(FRAME - 1, FRAME + 1)],
            vec![(5, 9), (9, 9), (9, 12)],
            vec![
                (0, 10),
                (100, FRAME + 5),
                (FRAME + 5, FRAME + 5),
                (2 * FRAME - 3, 2 * FRAME + 3),
                (2 * FRAME + 100, 3 * FRAME + 100),
                (len - 7, len),
            ],
            vec![(FRAME, 2 * FRAME)],
        ];
        for ranges in cases {
            let mut offsets = ranges.len().to_string();
            let mut want = Vec::new();
            for &(s, e) in &ranges {
                offsets.push_str(&format!(" {s} {e}"));
                want.extend_from_slice(&data[s..e]);
            }
            offsets.push('\n');
            let out = subset(&h, &key, &offsets);
            assert_ok(&out);
            assert!(
                out.stdout == want,
                "{name} {ranges:?}: got {} bytes, want {}",
                out.stdout.len(),
                want.len()
            );
        }
    }
}

#[test]
fn restore_data_subset_refuses_bad_offsets_files() {
    let h = Harness::new(&[("restore_subset", "on")]);
    let data = csv_bytes(FRAME + 1000, 13);
    let len = data.len();
    let key = h.data_key(0, 16384);
    assert_ok(&h.backup_data(&key, &data));
    for (what, text) in [
        ("empty", String::new()),
        ("not a number", "x 1 2".to_string()),
        ("count mismatch", "2 0 5".to_string()),
        ("extra numbers", "1 0 5 9".to_string()),
        ("reversed", "1 5 3".to_string()),
        ("unsorted", "2 5 8 0 1".to_string()),
        ("overlapping", "2 0 5 4 8".to_string()),
        ("negative", "1 -1 4".to_string()),
        ("fraction", "1 0 4.5".to_string()),
    ] {
        let out = subset(&h, &key, &text);
        assert_fails_with(&out, "offsets");
        assert!(
            out.stdout.is_empty(),
            "{what}: wrote {} bytes",
            out.stdout.len()
        );
    }
    for (what, text) in [
        ("past the end", format!("1 0 {}", len + 1)),
        (
            "wholly past the end",
            format!("1 {} {}", len + 10, len + 20),
        ),
    ] {
        let out = subset(&h, &key, &text);
        assert_fails_with(&out, "");
        assert!(
            data.starts_with(&out.stdout) && out.stdout.len() < len,
            "{what}: wrote more than authentic data"
        );
    }
    let missing = h.path().join("no-offsets.txt");
    let out = h.call(
        "restore_data_subset",
        &format!("{key} {}", missing.display()),
        b"",
    );
    assert_fails_with(&out, "no-offsets.txt");
    assert!(out.stdout.is_empty());
}

fn keygen(path: &Path) {
    let out = std::process::Command::new("age-keygen")
        .arg("-o")
        .arg(path)
        .output()
        .expect("age-keygen (Debian package age) is installed");
    assert!(out.status.success(), "age-keygen failed");
}

#[test]
fn the_wrong_identity_fails_with_nothing_on_stdout_and_a_keyring_finds_the_right_one() {
    let h = Harness::new(&[]);
    let key = h.data_key(0, 16384);
    let data = csv_bytes(FRAME + 5, 14);
    assert_ok(&h.backup_data(&key, &data));
    let file = h.backup_dir(-1).join(format!("gpbackup_{TS}_metadata.sql"));
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, b"CREATE TABLE t();").unwrap();
    assert_ok(&h.call("backup_file", &file.display().to_string(), b""));
    std::fs::remove_file(&file).unwrap();

    let wrong = h.path().join("wrong.txt");
    keygen(&wrong);
    h.write_config(&[("identity_file", &wrong.display().to_string())]);
    let out = h.restore_data(&key);
    assert_fails_with(&out, "identity");
    assert!(out.stdout.is_empty(), "wrote {} bytes", out.stdout.len());
    let out = h.call("restore_file", &file.display().to_string(), b"");
    assert_fails_with(&out, "identity");
    assert!(!file.exists());
    // The escrow identity is not a recipient of these objects either.
    let escrow = repo().join("keys/demo-only-escrow-identity.txt");
    h.write_config(&[("identity_file", &escrow.display().to_string())]);
    assert_fails_with(&h.restore_data(&key), "identity");

    // A keyring: the wrong key first, the right one second.
    let keyring = format!("{}, {}", wrong.display(), demo_identity().display());
    h.write_config(&[("identity_file", &keyring)]);
    let out = h.restore_data(&key);
    assert_ok(&out);
    assert!(out.stdout == data);
}

/// Restores `key` from a stored object replaced by `object`; asserts it is refused in
/// one line and that stdout holds only a prefix of the original (authentic plaintext).
#[track_caller]
fn assert_refused_object(
    h: &Harness,
    key: &str,
    object: &[u8],
    original: &[u8],
    what: &str,
) -> usize {
    std::fs::write(h.stored(key), object).unwrap();
    let out = h.restore_data(key);
    let err = assert_fails_with(&out, "");
    assert!(
        out.stdout.len() < original.len() && original.starts_with(&out.stdout),
        "{what}: wrote {} bytes that are not a strict prefix of the original ({err})",
        out.stdout.len()
    );
    out.stdout.len()
}

#[test]
fn one_flipped_byte_anywhere_is_refused() {
    let h = Harness::new(&[]);
    let key = h.data_key(0, 16384);
    let data = random_bytes(2 * FRAME + 300_000, 15);
    round_trip(&h, &key, &data);
    let good = std::fs::read(h.stored(&key)).unwrap();
    let start = payload_start(&good);
    let mac = good.windows(4).position(|w| w == b"--- ").unwrap();
    let positions = [
        ("version line", 3),
        ("stanza", 30),
        ("MAC", mac + 10),
        ("nonce", start - 3),
        ("first chunk", start + 100),
        ("first chunk tag", start + 65536 + 5),
        ("middle", good.len() / 2),
        ("second frame", start + FRAME + 70_000),
        ("last chunk", good.len() - 40),
        ("last byte", good.len() - 1),
    ];
    for (what, pos) in positions {
        let mut bad = good.clone();
        bad[pos] ^= 0x01;
        let written = assert_refused_object(&h, &key, &bad, &data, what);
        if pos < start + 65536 {
            assert_eq!(written, 0, "{what}: output before the damage was detected");
        }
    }
    // The same object, unmodified, still restores: the flips were the cause.
    std::fs::write(h.stored(&key), &good).unwrap();
    assert_eq!(h.restore_data(&key).stdout, data);
}

#[test]
fn a_flipped_byte_in_a_file_object_leaves_no_file() {
    let h = Harness::new(&[]);
    let file = h.backup_dir(-1).join(format!("gpbackup_{TS}_toc.yaml"));
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, csv_bytes(100_000, 16)).unwrap();
    let key = file.display().to_string();
    assert_ok(&h.call("backup_file", &key, b""));
    std::fs::remove_file(&file).unwrap();
    let mut bad = std::fs::read(h.stored(&key)).unwrap();
    let n = bad.len();
    bad[n - 20] ^= 0x80;
    std::fs::write(h.stored(&key), &bad).unwrap();
    assert_fails_with(&h.call("restore_file", &key, b""), "");
    assert!(!file.exists(), "a corrupt object left a file");
    assert_eq!(
        std::fs::read_dir(file.parent().unwrap()).unwrap().count(),
        0
    );
}

#[test]
fn a_truncated_object_is_refused() {
    let h = Harness::new(&[]);
    let key = h.data_key(0, 16384);
    let data = random_bytes(2 * FRAME + 200_000, 17);
    round_trip(&h, &key, &data);
    let good = std::fs::read(h.stored(&key)).unwrap();
    let start = payload_start(&good);
    let chunk = 65536 + 16;
    let cuts = [
        ("empty", 0),
        ("inside the version line", 10),
        ("inside the nonce", start - 8),
        ("no payload", start),
        ("after one chunk", start + chunk),
        ("after 40 chunks", start + 40 * chunk),
        (
            "after the last full chunk",
            start + (good.len() - start) / chunk * chunk,
        ),
        ("inside the last tag", good.len() - 1),
        ("without the last tag", good.len() - 16),
        ("mid payload", good.len() / 2 + 3),
    ];
    for (what, cut) in cuts {
        assert!(cut < good.len(), "{what}");
        assert_refused_object(&h, &key, &good[..cut], &data, what);
    }
    // Truncated by the inner plugin itself while restoring (exit status 0).
    std::fs::write(h.stored(&key), &good).unwrap();
    for n in [0, 1000, start + chunk, good.len() - 1] {
        h.write_config(&[
            ("fault", "truncate_stdout"),
            ("fault_bytes", &n.to_string()),
        ]);
        let out = h.restore_data(&key);
        assert_fails_with(&out, "");
        assert!(data.starts_with(&out.stdout) && out.stdout.len() < data.len());
    }
    // Appended data is refused too.
    h.write_config(&[]);
    let mut longer = good.clone();
    longer.extend_from_slice(b"tail");
    assert_refused_object(&h, &key, &longer, &data, "appended bytes");
}

#[test]
fn an_object_copied_or_swapped_under_another_name_is_refused() {
    let h = Harness::new(&[]);
    let a = h.data_key(0, 16384);
    let b = h.data_key(0, 16385);
    round_trip(&h, &a, b"table a");
    round_trip(&h, &b, b"table b");
    let obj_a = std::fs::read(h.stored(&a)).unwrap();
    let obj_b = std::fs::read(h.stored(&b)).unwrap();

    // Copied: b's key now holds a's object.
    std::fs::write(h.stored(&b), &obj_a).unwrap();
    let out = h.restore_data(&b);
    assert_fails_with(&out, "16384");
    assert!(out.stdout.is_empty());
    // Swapped.
    std::fs::write(h.stored(&a), &obj_b).unwrap();
    let out = h.restore_data(&a);
    assert_fails_with(&out, "16385");
    assert!(out.stdout.is_empty());
    // Subset restores check the name too.
    let offsets = h.path().join("offsets");
    std::fs::write(&offsets, "1 0 3").unwrap();
    let out = h.call(
        "restore_data_subset",
        &format!("{a} {}", offsets.display()),
        b"",
    );
    assert_fails_with(&out, "");
    assert!(out.stdout.is_empty());

    // Files too: the metadata file under the TOC's name.
    let dir = h.backup_dir(-1);
    std::fs::create_dir_all(&dir).unwrap();
    let meta = dir.join(format!("gpbackup_{TS}_metadata.sql"));
    let toc = dir.join(format!("gpbackup_{TS}_toc.yaml"));
    std::fs::write(&meta, b"metadata").unwrap();
    assert_ok(&h.call("backup_file", &meta.display().to_string(), b""));
    std::fs::copy(
        h.stored(&meta.display().to_string()),
        h.stored(&toc.display().to_string()),
    )
    .unwrap();
    assert_fails_with(&h.call("restore_file", &toc.display().to_string(), b""), "");
    assert!(!toc.exists());
}

#[test]
fn the_name_is_the_basename_so_another_directory_restores() {
    let h = Harness::new(&[]);
    let key = h.data_key(0, 16384);
    round_trip(&h, &key, b"resized cluster");
    // A restore onto another cluster layout: other directories, same basename.
    let other = h
        .path()
        .join(format!("newcluster/seg7/backups/{}/{TS}", &TS[..8]))
        .join(Path::new(&key).file_name().unwrap());
    let out = h.restore_data(&other.display().to_string());
    assert_ok(&out);
    assert_eq!(out.stdout, b"resized cluster");
}

#[test]
fn the_inner_plugin_failing_mid_stream_leaves_no_object() {
    let data = random_bytes(4 * FRAME, 18);
    for (fault, bytes) in [
        ("exit_after_bytes", "100000"),
        ("exit_after_bytes", "0"),
        ("kill_after_bytes", "100000"),
        ("kill_after_bytes", "3000000"),
        ("exit_before_read", "0"),
    ] {
        let h = Harness::new(&[("fault", fault), ("fault_bytes", bytes)]);
        let key = h.data_key(0, 16384);
        let out = h.backup_data(&key, &data);
        assert_fails_with(&out, "");
        assert!(
            !h.stored(&key).exists(),
            "{fault} {bytes}: object committed"
        );
        h.write_config(&[]);
        let out = h.restore_data(&key);
        assert!(!out.status.success() && out.stdout.is_empty());
    }
}

#[test]
fn our_own_failure_after_the_inner_plugin_started_commits_nothing() {
    // stdin is a directory: reading it fails after the inner plugin was started and
    // had the age header. local_plugin.sh commits whatever it read once its stdin
    // closes, so the object exists unless the inner plugin was killed first.
    let h = Harness::new(&[]);
    let key = h.data_key(0, 16384);
    let out = h.run(
        &format!(
            "backup_data {} {key} < {}",
            h.config.display(),
            h.path().display()
        ),
        b"",
    );
    assert_fails_with(&out, "");
    assert!(!h.stored(&key).exists(), "a partial object was committed");
}

#[test]
fn no_plaintext_reaches_storage_the_inner_config_or_the_log() {
    const MARKER: &[u8] = b"PLAINTEXT-MARKER-7f3a";
    let h = Harness::new(&[]);
    let rec = Recorder::new(&h);
    let tmp = h.path().join("tmpdir");
    std::fs::create_dir_all(&tmp).unwrap();
    let mut data = Vec::new();
    for i in 0..40 {
        data.extend_from_slice(MARKER);
        data.extend_from_slice(&csv_bytes(100_000 + i, i as u64));
    }
    data.extend_from_slice(MARKER);
    let cfg = h.config.display().to_string();
    let env = [("TMPDIR", tmp.as_path())];
    for (n, compression) in ["zstd", "none"].into_iter().enumerate() {
        h.write_config(&[
            ("inner_executablepath", &rec.script.display().to_string()),
            ("compression", compression),
        ]);
        let key = h.data_key(0, 16384 + n as u32);
        let out = run_env(
            &h.home(),
            &format!("{BIN} backup_data {cfg} {key}"),
            &data,
            &env,
        );
        assert_ok(&out);
        let file = h
            .backup_dir(-1)
            .join(format!("gpbackup_{TS}_metadata_{n}.sql"));
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, &data).unwrap();
        let out = run_env(
            &h.home(),
            &format!("{BIN} backup_file {cfg} {}", file.display()),
            b"",
            &env,
        );
        assert_ok(&out);
        let out = run_env(
            &h.home(),
            &format!("{BIN} restore_data {cfg} {key}"),
            b"",
            &env,
        );
        assert_ok(&out);
        assert!(out.stdout == data);
    }
    let mut searched = Vec::new();
    for dir in [
        h.storage(),
        tmp.clone(),
        h.path().join("recorder"),
        h.home(),
    ] {
        for f in files_under(&dir) {
            let bytes = std::fs::read(&f).unwrap();
            assert!(!contains(&bytes, MARKER), "plaintext in {}", f.display());
            searched.push(f);
        }
    }
    // Everything was there to search: 4 objects, the 6 inner configs the recorder
    // copied (3 calls per pass) with their notes, the recorder script and its argv log,
    // the call log.
    assert_eq!(files_under(&h.storage()).len(), 4);
    assert_eq!(rec.configs().len(), 6);
    assert_eq!(h.call_log_lines().len(), 6);
    assert_eq!(searched.len(), 4 + 2 * 6 + 2 + 1, "{searched:#?}");
    assert!(
        files_under(&tmp).is_empty(),
        "left in TMPDIR: {:?}",
        files_under(&tmp)
    );
}

#[test]
fn plaintext_objects_are_refused_unless_allowed() {
    let h = Harness::new(&[]);
    let key = h.data_key(0, 16384);
    let plain = csv_bytes(FRAME + 12345, 19);
    let stored = h.stored(&key);
    std::fs::create_dir_all(stored.parent().unwrap()).unwrap();
    std::fs::write(&stored, &plain).unwrap();
    let out = h.restore_data(&key);
    assert_fails_with(&out, "allow_plaintext_restore");
    assert!(out.stdout.is_empty());
    // Also a file.
    let file = h.backup_dir(-1).join(format!("gpbackup_{TS}_config.yaml"));
    let fstored = h.stored(&file.display().to_string());
    std::fs::write(&fstored, b"compressed: false\n").unwrap();
    assert_fails_with(
        &h.call("restore_file", &file.display().to_string(), b""),
        "allow_plaintext_restore",
    );
    assert!(!file.exists());

    h.write_config(&[("allow_plaintext_restore", "on")]);
    let out = h.restore_data(&key);
    assert_ok(&out);
    assert!(out.stdout == plain);
    assert_ok(&h.call("restore_file", &file.display().to_string(), b""));
    assert_eq!(std::fs::read(&file).unwrap(), b"compressed: false\n");
    let out = subset(&h, &key, &format!("2 1 5 {} {}", FRAME, FRAME + 10));
    assert_ok(&out);
    let mut want = plain[1..5].to_vec();
    want.extend_from_slice(&plain[FRAME..FRAME + 10]);
    assert_eq!(out.stdout, want);

    // Allowing plaintext does not let a damaged encrypted object through.
    let enc = h.data_key(0, 16385);
    round_trip(&h, &enc, &plain);
    let mut bad = std::fs::read(h.stored(&enc)).unwrap();
    let n = bad.len();
    bad[n / 2] ^= 1;
    assert_refused_object(
        &h,
        &enc,
        &bad,
        &plain,
        "damaged with allow_plaintext_restore",
    );
}

#[test]
fn an_empty_plaintext_object_restores_when_plaintext_is_allowed() {
    // An old unencrypted backup of an empty table (gpbackup --no-compression) is an
    // empty object: with allow_plaintext_restore it must restore as empty, not fail.
    let h = Harness::new(&[]);
    let key = h.data_key(0, 16384);
    let stored = h.stored(&key);
    std::fs::create_dir_all(stored.parent().unwrap()).unwrap();
    std::fs::write(&stored, b"").unwrap();
    assert_fails_with(&h.restore_data(&key), "");
    h.write_config(&[("allow_plaintext_restore", "on")]);
    let out = h.restore_data(&key);
    assert_ok(&out);
    assert!(out.stdout.is_empty());
}
