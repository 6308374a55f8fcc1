//! The object format inside the age payload: records (skippable frames) and the
//! descriptor + zstd frame pairs, read by `object::UnitReader` and `Record::decode`.
#![no_main]

use gpbackup_age_plugin::object::{Record, Unit, UnitReader};
use gpbackup_age_plugin_fuzz::{apply_edits, seed_plaintext, split, Input};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (plain, pristine) = match split(data) {
        Input::Raw(raw) => (raw.to_vec(), false),
        Input::Edited { params, script } => {
            let (mut plain, _, _) = seed_plaintext(params);
            apply_edits(&mut plain, script);
            (plain, script.len() < 4)
        }
    };
    // Record payloads on their own.
    let _ = Record::decode(&plain);
    let mut reader = UnitReader::new(&plain[..]);
    let mut units = 0usize;
    let complete = loop {
        match reader.next_unit() {
            Ok(Some(unit)) => {
                units += 1;
                if let Unit::Frame(d, frame) = unit {
                    assert_eq!(frame.len(), d.frame_len as usize);
                }
                // Every unit takes at least 8 bytes of input.
                assert!(units <= plain.len() / 8 + 1, "more units than input");
            }
            Ok(None) => break true,
            Err(_) => break false,
        }
    };
    if pristine {
        assert!(complete, "a valid seed did not parse");
    }
});
