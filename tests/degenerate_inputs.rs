//! Degenerate but legal inputs, the whole kind: every object shape (empty, one byte,
//! exactly one frame, ending on a frame boundary, many frames, stored and compressed
//! frames, small stored frames) crossed with every range shape gpbackup_helper writes
//! (`0`, `1 0 0`, `2 0 0 0 0`, zero-length ranges at the end, ranges ending exactly at
//! the end, adjacent and repeated ranges, ranges on frame boundaries), through
//! `restore_data_subset`, `restore_data`, `restore_file`, `inspect`, `verify` and
//! `rotate`, each run as gpbackup runs it against the real local inner plugin.
//!
//! The objects are the per-segment data files of a `--single-data-file
//! --no-compression` backup set (the only layout that restore_data_subset serves),
//! stored the way gpbackup stores them. Expected output is computed here by slicing
//! the originals.

mod common;

use common::*;
use gpbackup_age_plugin::pipeline::{DEFAULT_FRAME_SIZE as FRAME, STORED_FRAME_SIZE as STORED};

const TS: &str = "20250303030303";

/// The object shapes, by name: each one a segment's data file.
fn shapes() -> Vec<(&'static str, Vec<u8>)> {
    let mut mixed = csv_bytes(2 * FRAME, 6);
    mixed.extend(random_bytes(FRAME + 777, 6));
    vec![
        ("empty", Vec::new()),
        ("one byte", b"\n".to_vec()),
        ("exactly one compressed frame", csv_bytes(FRAME, 3)),
        ("exactly one stored frame", random_bytes(FRAME, 4)),
        ("one frame and one byte", csv_bytes(FRAME + 1, 5)),
        ("ending on a frame boundary", csv_bytes(2 * FRAME, 7)),
        ("many frames, compressed and stored", mixed),
        // gzip magic: stored as is, in small frames.
        ("small stored frames", gzip(&csv_bytes(700_000, 8))),
    ]
}

/// The first frame boundaries inside an object of `len` bytes, for each frame size
/// (2 MiB when we compress, 128 KiB when frames are stored as they come).
fn boundaries(len: usize, frame: usize) -> Vec<usize> {
    (1..3).map(|i| i * frame).filter(|&b| b < len).collect()
}

/// Every legal range list for an object of `len` bytes: what gpbackup_helper writes for
/// segments and tables without rows, tables at the end, tables next to each other.
fn legal_ranges(len: usize) -> Vec<Vec<(usize, usize)>> {
    let mut cases = vec![
        vec![],
        vec![(0, 0)],
        vec![(0, 0), (0, 0)],
        vec![(len, len)],
        vec![(0, len)],
        vec![(0, len), (len, len), (len, len)],
    ];
    if len > 0 {
        cases.push(vec![(len - 1, len)]);
        cases.push(vec![(0, 1), (1, 1), (1, 1), (1, len)]);
        cases.push(vec![(0, 0), (len / 2, len / 2), (len, len)]);
    }
    if len > 20 {
        cases.push(vec![(0, 10), (len - 7, len)]);
    }
    for frame in [FRAME, STORED] {
        let bounds = boundaries(len, frame);
        for &b in &bounds {
            cases.push(vec![(b - 1, b), (b, b), (b, b + 1)]);
            cases.push(vec![(b, b)]);
            cases.push(vec![(b, len)]);
        }
        if !bounds.is_empty() {
            // Every frame (of this size) as a range of its own, adjacent.
            let mut cuts: Vec<usize> = (0..len).step_by(frame).collect();
            cuts.push(len);
            cases.push(cuts.windows(2).map(|w| (w[0], w[1])).collect());
        }
    }
    cases
}

/// The offsets file exactly as gpbackup_helper writes it: `N s1 e1 …`, no newline.
fn offsets_text(ranges: &[(usize, usize)]) -> String {
    let mut text = ranges.len().to_string();
    for (s, e) in ranges {
        text.push_str(&format!(" {s} {e}"));
    }
    text
}

fn key_of(h: &Harness, content: usize) -> String {
    h.seg_dir(content as i32, TS)
        .join(format!("gpbackup_{content}_{TS}"))
        .display()
        .to_string()
}

#[test]
fn every_object_shape_with_every_legal_range_shape_through_every_command() {
    let h = Harness::new(&[]);
    let a = keygen(h.path(), "a");
    let b = keygen(h.path(), "b");
    use_keys(&h, &[&a], &[&a], &[("restore_subset", "on")]);
    let shapes = shapes();
    let mut spec = SimSpec::single_data_file(TS);
    spec.segments = shapes.len() as u32;
    spec.compression = "none";
    simulate_backup(&h, &spec);
    // Each segment's data file becomes one shape, stored as gpbackup stores it.
    for (c, (_, data)) in shapes.iter().enumerate() {
        assert_ok(&h.backup_data(&key_of(&h, c), data));
    }

    let check_restores = |h: &Harness| {
        for (c, (shape, data)) in shapes.iter().enumerate() {
            let key = key_of(h, c);
            let out = h.restore_data(&key);
            assert_ok(&out);
            assert!(out.stdout == *data, "{shape}: restore_data differs");

            let _ = std::fs::remove_file(&key);
            assert_ok(&h.call("restore_file", &key, b""));
            assert!(
                std::fs::read(&key).unwrap() == *data,
                "{shape}: restore_file differs"
            );

            for ranges in legal_ranges(data.len()) {
                let text = offsets_text(&ranges);
                let out = subset(h, &key, &text);
                assert!(
                    out.status.success() && out.stderr.is_empty(),
                    "{shape}, offsets '{text}': {:?} {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                );
                let want: Vec<u8> = ranges
                    .iter()
                    .flat_map(|&(s, e)| data[s..e].iter().copied())
                    .collect();
                assert!(
                    out.stdout == want,
                    "{shape}, offsets '{text}': {} bytes out, {} expected",
                    out.stdout.len(),
                    want.len()
                );
            }
        }
    };
    check_restores(&h);

    // What stays refused, in one line: a range that ends before it starts, and any
    // range beyond the end of the object, a zero-length one included. Nothing but
    // requested, verified bytes is written first.
    for (c, (shape, data)) in shapes.iter().enumerate() {
        let len = data.len();
        let key = key_of(&h, c);
        for (ranges, needle) in [
            (vec![(0, len + 1)], "beyond the end of the object"),
            (vec![(len + 1, len + 1)], "beyond the end of the object"),
            (vec![(0, 0), (len, len + 5)], "beyond the end of the object"),
        ] {
            let text = offsets_text(&ranges);
            let out = subset(&h, &key, &text);
            let err = assert_fails_with(&out, needle);
            assert!(
                err.contains(&format!("only {len} bytes")),
                "{shape}, '{text}': {err}"
            );
            assert!(
                data.starts_with(&out.stdout) && out.stdout.len() <= len,
                "{shape}, '{text}': wrote bytes that were not asked for"
            );
        }
        let out = subset(&h, &key, "1 5 3");
        assert_fails_with(&out, "end 3 is before start 5");
        assert!(out.stdout.is_empty());
    }

    // inspect: every shape verifies, with its length; the empty one says so.
    for (c, (shape, data)) in shapes.iter().enumerate() {
        let stored = h.stored_at(TS, &format!("gpbackup_{c}_{TS}"));
        let text = ok(&admin(
            &h,
            &[
                "inspect",
                stored.to_str().unwrap(),
                "--identity",
                a.identity.to_str().unwrap(),
            ],
        ));
        assert!(
            field(&text, "verified").starts_with("yes"),
            "{shape}: {text}"
        );
        assert!(
            field(&text, "original length").starts_with(&format!("{} bytes", data.len())),
            "{shape}: {text}"
        );
        let frames = field(&text, "frames");
        assert_eq!(
            frames.starts_with("0 "),
            data.is_empty(),
            "{shape}: {frames}"
        );
    }

    // verify, then rotate to key b, then verify with b alone and restore everything
    // again, ranges included.
    let objects = spec.segments as usize * 2 + 5;
    let text = ok(&admin(&h, &["verify", h.config.to_str().unwrap(), TS]));
    assert!(
        text.contains(&format!("{objects} ok, 0 failed")),
        "verify: {text}"
    );
    use_keys(&h, &[&b], &[&a, &b], &[("restore_subset", "on")]);
    let text = ok(&rotate(&h, &[], &[TS]));
    assert!(
        text.contains(&format!("{objects} re-wrapped")) && text.contains("0 failed"),
        "rotate: {text}"
    );
    let text = ok(&admin(
        &h,
        &[
            "verify",
            h.config.to_str().unwrap(),
            TS,
            "--identity",
            b.identity.to_str().unwrap(),
        ],
    ));
    assert!(
        text.contains(&format!("{objects} ok, 0 failed")),
        "verify after rotate: {text}"
    );
    use_keys(&h, &[&b], &[&b], &[("restore_subset", "on")]);
    check_restores(&h);
}
