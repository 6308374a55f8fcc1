//! The post-quantum key type (`keys::mlkem768x25519`): `age1pq1…` recipients,
//! `AGE-SECRET-KEY-PQ-1…` identities and `mlkem768x25519` stanzas.
//! Properties: a key that parses re-encodes to exactly its input (the parsers accept
//! only the canonical encoding); a stanza that opens is byte for byte the one that was
//! written, and opens to its file key.
#![no_main]

use std::sync::OnceLock;

use age::{Identity as _, Recipient as _};
use age_core::format::{read::age_stanza, write, FileKey, Stanza};
use age_core::secrecy::ExposeSecret;
use gpbackup_age_plugin::keys::mlkem768x25519::{Identity, Recipient};
use gpbackup_age_plugin_fuzz::{apply_edits, split, Input};
use libfuzzer_sys::fuzz_target;

struct Fixed {
    identity: Identity,
    identity_text: String,
    recipient_text: String,
    file_key: [u8; 16],
    stanza: Vec<u8>,
}

fn fixed() -> &'static Fixed {
    static FIXED: OnceLock<Fixed> = OnceLock::new();
    FIXED.get_or_init(|| {
        let identity = Identity::generate();
        let file_key = *b"fuzzing-file-key";
        let (stanzas, _) = identity
            .to_public()
            .wrap_file_key(&FileKey::new(Box::new(file_key)))
            .expect("wrap");
        let s = &stanzas[0];
        let (stanza, _) =
            cookie_factory::gen(write::age_stanza(&s.tag, &s.args, &s.body), Vec::new())
                .expect("encode");
        Fixed {
            identity_text: identity.to_string().expose_secret().to_string(),
            recipient_text: identity.to_public().to_string(),
            identity,
            file_key,
            stanza,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixed();
    let (bytes, seeded) = match split(data) {
        Input::Raw(raw) => (raw.to_vec(), false),
        Input::Edited { params, script } => {
            let mut base = match params[0] % 3 {
                0 => f.identity_text.clone().into_bytes(),
                1 => f.recipient_text.clone().into_bytes(),
                _ => f.stanza.clone(),
            };
            apply_edits(&mut base, script);
            (base, true)
        }
    };
    if let Ok(text) = std::str::from_utf8(&bytes) {
        if let Ok(identity) = text.parse::<Identity>() {
            assert_eq!(identity.to_string().expose_secret(), text);
        }
        if let Ok(recipient) = text.parse::<Recipient>() {
            assert_eq!(recipient.to_string(), text);
        }
    }
    if let Ok((_, stanza)) = age_stanza(&bytes) {
        let stanza = Stanza::from(stanza);
        if let Some(Ok(key)) = f.identity.unwrap_stanza(&stanza) {
            assert!(seeded, "a random stanza opened");
            assert_eq!(key.expose_secret(), &f.file_key);
            let (again, _) = cookie_factory::gen(
                write::age_stanza(&stanza.tag, &stanza.args, &stanza.body),
                Vec::new(),
            )
            .expect("encode");
            assert_eq!(again, f.stanza, "an altered stanza opened");
        }
    }
});
