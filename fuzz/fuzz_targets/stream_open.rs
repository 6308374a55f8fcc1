//! The STREAM payload (`age_file::stream::StreamOpener`): chunk framing, the last-chunk
//! rule, batches split across threads. Property: only the exact sealed stream opens,
//! and then to exactly its plaintext.
#![no_main]

use std::io::Read;

use gpbackup_age_plugin::age_file::stream::StreamOpener;
use gpbackup_age_plugin_fuzz::{apply_edits, data as seed_data, keys, split, Input};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (ciphertext, expect, threads, batch) = match split(data) {
        Input::Raw(raw) => (raw.to_vec(), None, 1, 1),
        Input::Edited { params, script } => {
            // Up to ~4.5 chunks of plaintext, so chunk boundaries and batches matter.
            let len = (usize::from(params[0]) << 8 | usize::from(params[1])) * 5 % 300_000;
            let plain = seed_data(len, params[2], false);
            let mut sealed = keys().seal(&plain);
            let pristine = sealed.clone();
            apply_edits(&mut sealed, script);
            let threads = 1 + usize::from(params[3] & 1);
            let batch = 1 + usize::from(params[3] >> 1 & 7);
            (sealed.clone(), Some((pristine, plain)), threads, batch)
        }
    };
    let key = keys().key();
    let mut opener = StreamOpener::new(key, &ciphertext[..], threads, batch);
    let mut out = Vec::new();
    let result = opener.read_to_end(&mut out);
    match (result, expect) {
        (Ok(_), Some((pristine, plain))) => {
            assert_eq!(ciphertext, pristine, "an altered stream opened");
            assert_eq!(out, plain);
        }
        // Raw bytes may open only if they are exactly the sealing of what they opened
        // to: the fuzzer can learn a stream sealed under this process's key (through its
        // comparison tracing) and feed it back, which is a stream, not a forgery.
        (Ok(_), None) => assert_eq!(
            keys().seal(&out),
            ciphertext,
            "bytes that no sealing made opened"
        ),
        (Err(_), Some((pristine, _))) => assert_ne!(ciphertext, pristine, "a valid stream failed"),
        (Err(_), None) => {}
    }
});
