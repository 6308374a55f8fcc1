//! The age v1 header (`age_file::Header::read`), and unwrapping it with an identity.
//! Properties: a header that parses re-encodes to exactly the bytes it was read from;
//! a header that opens with the key is byte for byte the one that was written.
#![no_main]

use gpbackup_age_plugin::age_file::Header;
use gpbackup_age_plugin_fuzz::{apply_edits, keys, split, Input};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (bytes, seeded) = match split(data) {
        Input::Raw(raw) => (raw.to_vec(), false),
        Input::Edited { script, .. } => {
            let mut header = keys().header.clone();
            header.extend_from_slice(b"payload follows");
            apply_edits(&mut header, script);
            (header, true)
        }
    };
    let mut input = std::io::BufReader::with_capacity(64, &bytes[..]);
    let Ok(header) = Header::read(&mut input) else {
        return;
    };
    let consumed = bytes.len() - input.buffer().len() - input.get_ref().len();
    let encoded = header.encode();
    assert_eq!(
        &bytes[..consumed],
        &encoded[..],
        "header does not round-trip"
    );
    if header.unwrap_file_key(&keys().identities()).is_ok() {
        assert!(seeded, "a random header opened with the fuzzing key");
        assert_eq!(encoded, keys().header, "an altered header opened");
    }
});
