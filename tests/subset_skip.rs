//! restore_data_subset passes over the frames it does not need without decrypting the
//! payload chunks that lie wholly inside them. These tests hold it to what it must still
//! do, through the built binary and the real local inner plugin, as gpbackup_helper
//! runs it: return exactly the requested bytes for ranges anywhere in objects of many
//! frames (compressed and stored); refuse a damaged chunk it reads (one of a frame it
//! needs, or the one holding the descriptor of a frame it passes over) and an object
//! cut short when it reads to the end; and succeed when only a chunk it passes over is
//! damaged, which `restore_data` and `verify`, reading everything, then refuse.

mod common;

use common::*;
use gpbackup_age_plugin::age_file::ENCRYPTED_CHUNK_SIZE;
use gpbackup_age_plugin::object::{Record, Unit, UnitReader};
use gpbackup_age_plugin::pipeline::DEFAULT_FRAME_SIZE as FRAME;

const TS: &str = "20250404040404";
const CHUNK: usize = 65536;

fn key_of(h: &Harness, content: usize) -> String {
    h.seg_dir(content as i32, TS)
        .join(format!("gpbackup_{content}_{TS}"))
        .display()
        .to_string()
}

/// Where each data frame sits in an object's plaintext: `(descriptor start, frame
/// start, frame end, original offset, original length)`.
type FrameAt = (usize, usize, usize, usize, usize);

fn frames_of(identity: &std::path::Path, stored: &std::path::Path) -> Vec<FrameAt> {
    let plain = age_cli_decrypt(identity, stored).expect("the key opens it");
    let mut units = UnitReader::new(&plain[..]);
    let (mut pos, mut orig, mut frames) = (0usize, 0usize, Vec::new());
    while let Some(unit) = units.next_unit().expect("a well-formed object") {
        match unit {
            Unit::Record(Record::Header(h)) => pos += h.encode().len(),
            Unit::Record(Record::Trailer(t)) => pos += t.encode().len(),
            Unit::Record(Record::Descriptor(_)) => unreachable!("descriptors come with frames"),
            Unit::Frame(d, frame) => {
                let start = pos + d.encode().len();
                let len = d.plain_len as usize;
                frames.push((pos, start, start + frame.len(), orig, len));
                pos = start + frame.len();
                orig += len;
            }
        }
    }
    frames
}

/// The offsets file as gpbackup_helper writes it, and the bytes it asks for.
fn ask(data: &[u8], ranges: &[(usize, usize)]) -> (String, Vec<u8>) {
    let mut text = ranges.len().to_string();
    let mut want = Vec::new();
    for &(s, e) in ranges {
        text.push_str(&format!(" {s} {e}"));
        want.extend_from_slice(&data[s..e]);
    }
    (text, want)
}

/// The objects: many compressed frames; many stored frames (gzip output); frames of
/// both kinds. Each is a segment's data file of a `--single-data-file` backup set.
fn objects() -> Vec<(&'static str, Vec<u8>)> {
    let mut mixed = csv_bytes(2 * FRAME + 5000, 21);
    mixed.extend(random_bytes(FRAME + 12345, 22));
    mixed.extend(csv_bytes(FRAME / 2, 23));
    vec![
        ("compressed frames", csv_bytes(5 * FRAME + 777, 20)),
        ("stored frames", gzip(&csv_bytes(3 * FRAME, 24))),
        ("compressed and stored frames", mixed),
    ]
}

/// A harness holding [`objects`] as a backup set, encrypted to a key of its own, with
/// `restore_subset` on as gprestore's config has it.
fn stored_set() -> (Harness, TestKey, Vec<(&'static str, Vec<u8>)>) {
    let h = Harness::new(&[]);
    let a = keygen(h.path(), "a");
    use_keys(&h, &[&a], &[&a], &[("restore_subset", "on")]);
    let objects = objects();
    let mut spec = SimSpec::single_data_file(TS);
    spec.segments = objects.len() as u32;
    spec.compression = "none";
    simulate_backup(&h, &spec);
    for (c, (_, data)) in objects.iter().enumerate() {
        assert_ok(&h.backup_data(&key_of(&h, c), data));
    }
    (h, a, objects)
}

#[test]
fn subsets_anywhere_in_objects_of_many_frames_are_byte_identical() {
    let (h, a, objects) = stored_set();
    for (c, (shape, data)) in objects.iter().enumerate() {
        let key = key_of(&h, c);
        let frames = frames_of(&a.identity, &h.stored_at(TS, &format!("gpbackup_{c}_{TS}")));
        assert!(frames.len() >= 4, "{shape}: {} frames", frames.len());
        let len = data.len();
        let mut cases: Vec<Vec<(usize, usize)>> = vec![
            vec![(len - 5000, len - 4000)],
            vec![(len - 1, len)],
            vec![(0, 10), (len - 10, len)],
            vec![(0, len)],
            vec![(len / 2, len / 2 + 1)],
        ];
        for &(_, _, _, at, flen) in &frames {
            // A frame's first and last byte, a range across its end, and one that
            // passes over it entirely.
            cases.push(vec![(at, at + 1), (at + flen - 1, at + flen)]);
            if at + flen + 10 <= len {
                cases.push(vec![(at + flen - 10, at + flen + 10)]);
            }
            if at > 0 && at + flen < len {
                cases.push(vec![(at - 1, at), (at + flen, at + flen + 1)]);
            }
        }
        for ranges in cases {
            let (text, want) = ask(data, &ranges);
            let out = subset(&h, &key, &text);
            assert!(
                out.status.success() && out.stderr.is_empty(),
                "{shape}, '{text}': {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.stdout == want, "{shape}, '{text}': wrong bytes");
        }
    }
}

#[test]
fn subsets_check_the_chunks_they_read_and_pass_over_the_others() {
    let (h, a, objects) = stored_set();
    for (c, (shape, data)) in objects.iter().enumerate() {
        let key = key_of(&h, c);
        let path = h.stored_at(TS, &format!("gpbackup_{c}_{TS}"));
        let good = std::fs::read(&path).unwrap();
        let payload = age_header_len(&good) + 16;
        let frames = frames_of(&a.identity, &path);
        let chunk_at = |plain: usize| plain / CHUNK;
        let flip = |chunk: usize| {
            let mut bad = good.clone();
            bad[payload + chunk * ENCRYPTED_CHUNK_SIZE + 100] ^= 0x20;
            std::fs::write(&path, &bad).unwrap();
        };
        // The last frame is the one asked for; the second one is passed over whole.
        let &(_, _, _, at, flen) = frames.last().unwrap();
        let (text, want) = ask(data, &[(at + flen / 2, at + flen / 2 + 1000.min(flen / 2))]);
        let (desc, start, end, _, _) = frames[1];
        let inside: Vec<usize> = (chunk_at(start) + 1..chunk_at(end)).collect();
        assert!(!inside.is_empty(), "{shape}: frame 1 spans no whole chunk");

        // A damaged chunk wholly inside a frame passed over: the subset is right, a
        // full read refuses the object.
        flip(inside[inside.len() / 2]);
        let out = subset(&h, &key, &text);
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{shape}: {}",
            stderr(&out)
        );
        assert!(
            out.stdout == want,
            "{shape}: wrong bytes around a damaged skipped chunk"
        );
        assert_fails_with(&h.restore_data(&key), "authentication failed");
        let verified = admin(&h, &["verify", h.config.to_str().unwrap(), TS]);
        assert!(
            !verified.status.success(),
            "{shape}: verify passed a damaged object"
        );
        assert!(
            stderr(&verified).contains(&format!("gpbackup_{c}_{TS}")),
            "{shape}: {}",
            stderr(&verified)
        );

        // A damaged chunk that holds the descriptor of a frame passed over, or a part
        // of the frame asked for: refused.
        let (last_desc, last_start, last_end, _, _) = *frames.last().unwrap();
        let _ = last_start;
        for chunk in [chunk_at(desc), chunk_at(last_desc), chunk_at(last_end - 1)] {
            flip(chunk);
            let out = subset(&h, &key, &text);
            assert_fails_with(&out, "authentication failed");
            assert!(
                want.starts_with(&out.stdout) && out.stdout.len() < want.len().max(1),
                "{shape}, chunk {chunk}: wrote unverified bytes"
            );
        }

        // Cut short inside the frames passed over, or at the end: a subset that reads
        // to the end refuses it, with the verdict of a full read.
        let to_end = ask(data, &[(data.len() - 1, data.len())]).0;
        let cause = |out: &std::process::Output| {
            assert!(!out.status.success(), "{shape}: a cut object was accepted");
            let text = stderr(out);
            text.rsplit(&format!("{key}: ")).next().unwrap().to_string()
        };
        for cut in [
            payload + inside[0] * ENCRYPTED_CHUNK_SIZE + 7,
            good.len() - 1,
            good.len() - (good.len() - payload) % ENCRYPTED_CHUNK_SIZE,
        ] {
            std::fs::write(&path, &good[..cut]).unwrap();
            let said = cause(&subset(&h, &key, &to_end));
            assert_eq!(said, cause(&h.restore_data(&key)), "{shape}, cut at {cut}");
            assert!(
                said.contains("truncated") || said.contains("authentication failed"),
                "{shape}, cut at {cut}: {said}"
            );
        }
        std::fs::write(&path, &good).unwrap();
        assert_ok(&subset(&h, &key, &to_end));
    }
}
