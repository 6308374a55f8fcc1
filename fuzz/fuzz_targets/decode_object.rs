//! The whole restore pipeline (`pipeline::decode`) on objects whose plaintext is the
//! fuzz input, sealed under a fuzzing key: what an attacker who knows a recipient (a
//! public key) and can write to storage could plant. The key is opened without X25519
//! work (`KnownStanza`; the header itself is fuzzed by age_header). Properties: no
//! panic, bounded memory; a full restore that succeeds outputs exactly `original_len`
//! bytes; a subset restore outputs the same bytes as slicing the full restore.
#![no_main]

use gpbackup_age_plugin::pipeline::{decode, ByteRanges, DecodeOptions};
use gpbackup_age_plugin_fuzz::{apply_edits, fast_identities, keys, seed_plaintext, split, Input};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let name = "gpbackup_0_20250101010101_16384";
    let (plain, workers, original) = match split(data) {
        Input::Raw(raw) => (raw.to_vec(), 1, None),
        Input::Edited { params, script } => {
            let (mut plain, original, _) = seed_plaintext(params);
            apply_edits(&mut plain, script);
            let pristine = script.len() < 4;
            (
                plain,
                1 + usize::from(params[3] >> 2 & 1),
                pristine.then_some(original),
            )
        }
    };
    let obj = keys().object(&plain);
    let ids = fast_identities();
    let mut out = Vec::new();
    let opts = DecodeOptions {
        // Both ways a restore may run: the SHA-256 as asked for, or left to the frames'
        // content checksums where they carry them.
        check_sha256: workers == 1,
        ..DecodeOptions::checking(Some(name), workers)
    };
    let full = decode(&obj[..], &mut out, &ids, &opts);
    if let Some(original) = &original {
        assert!(full.is_ok(), "a valid object failed: {:?}", full.err());
        assert_eq!(&out, original);
    }
    let Ok(report) = full else { return };
    let trailer = report.trailer.expect("a full restore reads the trailer");
    assert_eq!(out.len() as u64, trailer.original_len);
    assert_eq!(report.bytes_out, trailer.original_len);
    // A subset restore of two ranges must agree with the full output.
    let len = out.len() as u64;
    if len >= 4 {
        let ranges = ByteRanges::parse(&format!("2 1 {} {} {}", len / 3 + 1, len / 2 + 1, len - 1))
            .expect("ranges");
        let mut part = Vec::new();
        let opts = DecodeOptions {
            ranges: Some(&ranges),
            ..opts
        };
        decode(&obj[..], &mut part, &ids, &opts).expect("subset of a valid object");
        let mut want = out[1..(len / 3 + 1) as usize].to_vec();
        want.extend_from_slice(&out[(len / 2 + 1) as usize..(len - 1) as usize]);
        assert_eq!(part, want);
    }
    // Zero-length ranges at the start and at the very end of a valid object are legal
    // and write nothing; one past the end is refused.
    for (text, legal) in [
        (format!("2 0 0 {len} {len}"), true),
        (format!("1 {} {}", len + 1, len + 1), false),
    ] {
        let ranges = ByteRanges::parse(&text).expect("ranges");
        let mut part = Vec::new();
        let opts = DecodeOptions {
            ranges: Some(&ranges),
            ..opts
        };
        let result = decode(&obj[..], &mut part, &ids, &opts);
        assert_eq!(result.is_ok(), legal, "{text}: {:?}", result.err());
        assert!(part.is_empty());
    }
});
