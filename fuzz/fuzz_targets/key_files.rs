//! Key files as the keys module reads them (`Keyring::load` for identity files,
//! `Recipients::parse` for recipients files): every byte string, and edits of an
//! identity file, a recipients file, an age-encrypted file and a plugin identity.
//! Properties: no panic; an error is one line and never quotes the identity it was
//! given.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use age::secrecy::ExposeSecret;
use gpbackup_age_plugin::keys::{KeyOrigin, Keyring, Recipients};
use gpbackup_age_plugin_fuzz::{apply_edits, split, Input};
use libfuzzer_sys::fuzz_target;

struct Fixed {
    path: PathBuf,
    secret: String,
    bases: Vec<Vec<u8>>,
}

fn fixed() -> &'static Fixed {
    static FIXED: OnceLock<Fixed> = OnceLock::new();
    FIXED.get_or_init(|| {
        let identity = age::x25519::Identity::generate();
        let secret = identity.to_string().expose_secret().to_string();
        let recipient = identity.to_public().to_string();
        let bases = vec![
            format!("# created: now\n# public key: {recipient}\n{secret}\n").into_bytes(),
            format!("# backup keys\n{recipient}\n").into_bytes(),
            b"age-encryption.org/v1\n-> scrypt AAAAAAAAAAAAAAAAAAAAAA 18\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n--- AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n".to_vec(),
            b"-----BEGIN AGE ENCRYPTED FILE-----\nYWdlLWVuY3J5cHRpb24ub3JnL3YxCg==\n-----END AGE ENCRYPTED FILE-----\n".to_vec(),
            b"AGE-PLUGIN-NOSUCH-1QYQSZQGPQYQSZQGPQYQSZQGPQ\nage1nosuch1qyqszqgpqyqszqgp\n".to_vec(),
        ];
        let path = std::env::temp_dir().join(format!("key_files_fuzz_{}", std::process::id()));
        Fixed {
            path,
            secret,
            bases,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixed();
    let bytes = match split(data) {
        Input::Raw(raw) => raw.to_vec(),
        Input::Edited { params, script } => {
            let mut base = f.bases[params[0] as usize % f.bases.len()].clone();
            apply_edits(&mut base, script);
            base
        }
    };
    std::fs::write(&f.path, &bytes).expect("write the key file");
    let check = |e: anyhow::Error| {
        let line = format!("{e:#}");
        assert!(!line.contains('\n'), "an error of several lines: {line:?}");
        assert!(!line.contains(&f.secret), "an error quotes the identity");
    };
    if let Err(e) = Keyring::load(std::slice::from_ref(&f.path), KeyOrigin::IdentityFlag) {
        check(e);
    }
    if let Err(e) = Recipients::parse(None, Some(&f.path)) {
        check(e);
    }
});
