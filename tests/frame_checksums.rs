//! What a restore checks now that every frame carries zstd's content checksum (XXH64 of
//! its content, docs/FORMAT.md "What restore checks"): a full restore relies on the
//! frames' checksums, verified by libzstd as it decompresses, instead of the SHA-256 of
//! the whole original, unless `restore_check_sha256` is on; `verify` and `inspect`
//! always check the SHA-256; objects written before frames carried checksums keep the
//! SHA-256 check on every restore; stock `zstd -d` verifies the checksums too.
//!
//! Damaged objects are made the way an attacker or a bug could not make them without
//! the key, so that only the checks under test can catch them: the library encodes an
//! object, the age crate (not our code) decrypts it, the plaintext is changed, and the
//! age crate seals it again to the demo recipient. The plugin then runs as gpbackup
//! runs it (`bash -c`) against the real local inner plugin.

mod common;

use std::path::Path;

use common::*;
use gpbackup_age_plugin::object::{
    has_content_checksum, FrameDescriptor, FrameKind, ObjectHeader, ObjectTrailer, Record, Unit,
    UnitReader,
};

/// An object's plaintext taken apart.
#[derive(Clone)]
struct Parts {
    header: ObjectHeader,
    frames: Vec<(FrameDescriptor, Vec<u8>)>,
    trailer: ObjectTrailer,
}

/// Decrypts a stored object with the age crate and the demo identity, and splits its
/// plaintext into records and frames.
fn open(object: &[u8]) -> Parts {
    let plain =
        age_crate_decrypt_with(object, demo_keyring().identities()).expect("the demo key opens it");
    let mut units = UnitReader::new(&plain[..]);
    let (mut header, mut frames, mut trailer) = (None, Vec::new(), None);
    while let Some(unit) = units.next_unit().expect("a well-formed object") {
        match unit {
            Unit::Record(Record::Header(h)) => header = Some(h),
            Unit::Record(Record::Trailer(t)) => trailer = Some(t),
            Unit::Record(Record::Descriptor(_)) => unreachable!("descriptors come with frames"),
            Unit::Frame(d, frame) => frames.push((d, frame)),
        }
    }
    Parts {
        header: header.expect("an object header"),
        frames,
        trailer: trailer.expect("a trailer"),
    }
}

impl Parts {
    /// The plaintext, each descriptor's frame length set to its frame's.
    fn plaintext(&self) -> Vec<u8> {
        let mut out = self.header.encode();
        for (d, frame) in &self.frames {
            let d = FrameDescriptor {
                frame_len: frame.len() as u32,
                ..*d
            };
            out.extend_from_slice(&d.encode());
            out.extend_from_slice(frame);
        }
        out.extend_from_slice(&self.trailer.encode());
        out
    }

    /// Sealed again with the age crate to the demo recipient: an object every check of
    /// the age layer passes.
    fn seal(&self) -> Vec<u8> {
        use std::io::Write;
        let recipients = demo_recipient_list();
        let enc = age::Encryptor::with_recipients(recipients.keys().iter().map(|r| r.as_ref()))
            .expect("encryptor");
        let mut out = Vec::new();
        let mut w = enc.wrap_output(&mut out).expect("wrap");
        w.write_all(&self.plaintext()).expect("encrypt");
        w.finish().expect("finish");
        out
    }

    /// Original bytes before frame `k`.
    fn before(&self, k: usize) -> usize {
        self.frames[..k]
            .iter()
            .map(|(d, _)| d.plain_len as usize)
            .sum()
    }
}

/// The frame as an older build wrote it: the same zstd frame without the content
/// checksum (its flag cleared, its last 4 bytes gone).
fn strip_checksum(frame: &[u8]) -> Vec<u8> {
    assert!(has_content_checksum(frame), "the frame carries a checksum");
    let mut out = frame[..frame.len() - 4].to_vec();
    out[4] &= !0x04;
    out
}

/// A frame of the same original length whose content differs in one byte from the
/// original's but which carries the original content's checksum: what a fault after
/// the checksum was taken (in our frame cutting, in memory) would write. Everything
/// else about the frame is valid.
fn alter_content(d: &FrameDescriptor, frame: &[u8]) -> Vec<u8> {
    let checksum = &frame[frame.len() - 4..];
    let mut out = match d.kind {
        FrameKind::Compressed => {
            let mut content =
                zstd::bulk::decompress(frame, d.plain_len as usize).expect("a valid frame");
            let at = content.len() / 2;
            content[at] ^= 0x01;
            let mut c = zstd::bulk::Compressor::new(1).unwrap();
            c.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))
                .unwrap();
            c.compress(&content).unwrap()
        }
        FrameKind::Stored => {
            // Inside the first raw block, after the 9-byte frame header and the 3-byte
            // block header.
            let mut out = frame.to_vec();
            out[9 + 3 + 100] ^= 0x01;
            out
        }
    };
    let n = out.len();
    out[n - 4..].copy_from_slice(checksum);
    out
}

/// Backs up `data` under `key` through the plugin; returns the stored object's path.
fn backed_up(h: &Harness, key: &str, data: &[u8]) -> std::path::PathBuf {
    assert_ok(&call_bounded(h, "backup_data", key, data));
    h.stored(key)
}

fn restore(h: &Harness, key: &str) -> std::process::Output {
    call_bounded(h, "restore_data", key, b"")
}

/// `inspect --identity DEMO OBJECT`: whether it succeeded, and its lines.
fn inspect(h: &Harness, object: &Path) -> (bool, String) {
    let out = admin(
        h,
        &[
            "inspect",
            object.to_str().unwrap(),
            "--identity",
            demo_identity().to_str().unwrap(),
        ],
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

/// A restore that succeeds with exactly `data`; returns the call log's
/// `sha256_checked=` of it.
#[track_caller]
fn restores(h: &Harness, key: &str, data: &[u8]) -> String {
    let out = restore(h, key);
    assert_ok(&out);
    assert!(out.stdout == data, "{key}: restored other bytes");
    last_sha256_checked(h)
}

/// The call log's `sha256_checked=` of the last restore_data call.
fn last_sha256_checked(h: &Harness) -> String {
    let lines = h.call_log_lines();
    let line = lines
        .iter()
        .rev()
        .find(|l| l.contains("restore_data") && l.contains("sha256_checked="))
        .unwrap_or_else(|| panic!("no restore_data line with sha256_checked in {lines:#?}"));
    let value = line.split("sha256_checked=").nth(1).unwrap();
    value
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap()
        .to_string()
}

/// Table data over 4 compressed frames (the pool of workers decodes all but the first)
/// and 1 MiB of gzip-like output, stored as 8 stored frames under a `.gz` name.
fn inputs(h: &Harness) -> [(String, Vec<u8>, FrameKind); 2] {
    [
        (
            h.data_key(0, 16384),
            csv_bytes(7 << 20, 14),
            FrameKind::Compressed,
        ),
        (
            format!("{}.gz", h.data_key(0, 16390)),
            random_bytes(1 << 20, 14),
            FrameKind::Stored,
        ),
    ]
}

#[test]
fn new_objects_carry_checksums_in_every_frame_and_restore_without_the_sha256() {
    let h = Harness::new(&[]);
    for (key, data, kind) in inputs(&h) {
        let object = backed_up(&h, &key, &data);
        let parts = open(&std::fs::read(&object).unwrap());
        assert!(
            parts.frames.len() >= 4,
            "{key}: {} frames",
            parts.frames.len()
        );
        for (d, frame) in &parts.frames {
            assert_eq!(d.kind, kind, "{key}");
            assert!(
                has_content_checksum(frame),
                "{key}: a frame without checksum"
            );
        }
        assert_eq!(restores(&h, &key, &data), "false", "{key}");
        let (inspected, text) = inspect(&h, &object);
        assert!(inspected, "{text}");
        assert_eq!(
            field(&text, "frame checksums"),
            "zstd content checksum (XXH64) in every frame"
        );
        assert!(field(&text, "verified").starts_with("yes"), "{text}");
    }
    // Asked for, the SHA-256 is computed and checked too.
    h.write_config(&[("restore_check_sha256", "on")]);
    for (key, data, _) in inputs(&h) {
        assert_eq!(restores(&h, &key, &data), "true", "{key}");
    }
}

#[test]
fn a_frame_whose_content_does_not_match_its_checksum_is_refused() {
    let h = Harness::new(&[]);
    for (key, data, _) in inputs(&h) {
        let object = backed_up(&h, &key, &data);
        let mut parts = open(&std::fs::read(&object).unwrap());
        let k = 2;
        let (d, frame) = parts.frames[k].clone();
        parts.frames[k].1 = alter_content(&d, &frame);
        // The trailer still holds the original's SHA-256, which the altered content
        // does not match either; the frame's checksum is what must refuse it, since a
        // default restore does not compute the SHA-256.
        std::fs::write(&object, parts.seal()).unwrap();
        for check_sha256 in ["off", "on"] {
            h.write_config(&[("restore_check_sha256", check_sha256)]);
            let out = restore(&h, &key);
            let line = assert_one_line_failure(&out, &[&key, "checksum"]);
            assert!(!line.contains("SHA-256"), "{line}");
            // Only whole frames before the altered one reached the output.
            assert_prefix(&out.stdout, &data);
            assert!(
                out.stdout.len() <= parts.before(k),
                "{key}: {} bytes written, the altered frame starts at {}",
                out.stdout.len(),
                parts.before(k)
            );
        }
        h.write_config(&[]);
    }
}

#[test]
fn an_altered_trailer_sha256_is_found_by_verify_and_by_restore_check_sha256_only() {
    // Everything but the trailer's SHA-256 is consistent: every frame matches its
    // checksum, the lengths and the frame count match. A default restore relies on the
    // frames and restores the object; with restore_check_sha256 it is refused; verify
    // and inspect always refuse it.
    let h = Harness::new(&[]);
    for (ts, compression) in [("20250101010101", "none"), ("20250202020202", "gzip")] {
        let spec = SimSpec {
            ts,
            segments: 1,
            oids: vec![16384],
            single_data_file: false,
            compression,
            with_statistics: false,
            // About 2.5 MB of table text: two compressed frames, or gzip output in
            // stored frames.
            rows: 80_000,
        };
        h.write_config(&[]);
        let set = simulate_backup(&h, &spec);
        let name = set.data_objects()[0].clone();
        let original = &set.objects[&name];
        let key = h.seg_dir(0, ts).join(&name).display().to_string();
        let object = h.stored_at(ts, &name);
        let mut parts = open(&std::fs::read(&object).unwrap());
        assert!(
            parts.frames.len() >= 2,
            "{name}: {} frames",
            parts.frames.len()
        );
        parts.trailer.sha256[0] ^= 0x01;
        std::fs::write(&object, parts.seal()).unwrap();

        let verify = |h: &Harness| {
            let out = admin(h, &["verify", h.config.to_str().unwrap(), ts]);
            assert!(!out.status.success(), "verify passed {name}");
            let err = stderr_of(&out);
            assert!(
                err.lines()
                    .any(|l| l.contains(&name) && l.contains("SHA-256 of the restored data")),
                "{err}"
            );
        };
        assert_eq!(restores(&h, &key, original), "false", "{name}");
        verify(&h);

        h.write_config(&[("restore_check_sha256", "on")]);
        let out = restore(&h, &key);
        assert_one_line_failure(&out, &[&name, "SHA-256 of the restored data"]);
        verify(&h);

        let (inspected, text) = inspect(&h, &object);
        assert!(!inspected, "{text}");
        assert!(
            field(&text, "verified").contains("SHA-256 of the restored data"),
            "{text}"
        );
    }
}

#[test]
fn objects_without_frame_checksums_keep_the_sha256_check() {
    let h = Harness::new(&[]);
    for (key, data, _) in inputs(&h) {
        let object = backed_up(&h, &key, &data);
        let mut parts = open(&std::fs::read(&object).unwrap());
        for (_, frame) in parts.frames.iter_mut() {
            *frame = strip_checksum(frame);
        }
        std::fs::write(&object, parts.seal()).unwrap();
        assert_eq!(restores(&h, &key, &data), "true", "{key}");
        let (inspected, text) = inspect(&h, &object);
        assert!(inspected, "{text}");
        assert!(
            field(&text, "frame checksums").starts_with("none"),
            "{text}"
        );

        // Such an object whose content differs from its trailer's SHA-256 is refused
        // by a default restore.
        let (d, frame) = parts.frames[2].clone();
        let mut content = zstd::bulk::decompress(&frame, d.plain_len as usize).unwrap();
        content[7] ^= 0x01;
        parts.frames[2].1 = match d.kind {
            FrameKind::Compressed => zstd::bulk::compress(&content, 1).unwrap(),
            FrameKind::Stored => {
                let mut f = Vec::new();
                gpbackup_age_plugin::object::write_stored_frame(&content, &mut f);
                strip_checksum(&f)
            }
        };
        std::fs::write(&object, parts.seal()).unwrap();
        let out = restore(&h, &key);
        assert_one_line_failure(&out, &[&key, "SHA-256 of the restored data"]);
    }
}

#[test]
fn frames_that_disagree_about_checksums_are_refused() {
    let h = Harness::new(&[]);
    for (key, data, _) in inputs(&h) {
        let object = backed_up(&h, &key, &data);
        let pristine = open(&std::fs::read(&object).unwrap());
        // One frame without, the others with; then only the first without.
        for stripped in [vec![1], vec![0]] {
            let mut parts = pristine.clone();
            for k in stripped {
                parts.frames[k].1 = strip_checksum(&parts.frames[k].1);
            }
            std::fs::write(&object, parts.seal()).unwrap();
            let out = restore(&h, &key);
            assert_one_line_failure(
                &out,
                &[
                    &key,
                    "some frames carry a zstd content checksum and some do not",
                ],
            );
        }
    }
}

#[test]
fn stock_zstd_verifies_the_frame_checksums() {
    let h = Harness::new(&[]);
    for (key, data, _) in inputs(&h) {
        let object = backed_up(&h, &key, &data);
        let recover = |file: &Path| {
            run_script(
                &h.home(),
                &tmpdir(&h),
                &format!(
                    "set -o pipefail; age -d -i {} {} | zstd -d",
                    demo_identity().display(),
                    file.display()
                ),
                b"",
            )
        };
        let out = recover(&object);
        assert!(out.status.success(), "{}", stderr_of(&out));
        assert_eq!(out.stdout, data, "{key}");

        let mut parts = open(&std::fs::read(&object).unwrap());
        let (d, frame) = parts.frames[2].clone();
        parts.frames[2].1 = alter_content(&d, &frame);
        let damaged = h.path().join("damaged.age");
        std::fs::write(&damaged, parts.seal()).unwrap();
        let out = recover(&damaged);
        assert!(!out.status.success(), "zstd -d accepted an altered frame");
        assert!(stderr_of(&out).contains("checksum"), "{}", stderr_of(&out));
    }
}

#[test]
fn restore_check_sha256_is_on_or_off() {
    let h = Harness::new(&[("restore_check_sha256", "maybe")]);
    let out = restore(&h, &h.data_key(0, 16384));
    assert_one_line_failure(
        &out,
        &["option restore_check_sha256: 'maybe' is not on or off"],
    );
}
