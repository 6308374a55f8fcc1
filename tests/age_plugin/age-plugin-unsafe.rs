//! `age-plugin-unsafe`: a software age plugin for the tests, built on the `age-plugin`
//! crate (the plugin protocol of the age 0.11 line). It stands in for a hardware token:
//! its secret is an X25519 key kept in a file, its identity names that file, and the
//! identity may demand interaction the way a token does. Unsafe by design: never use it
//! for real data.
//!
//! - `age-plugin-unsafe --generate KEY_FILE [none|pin|confirm|message|touch]` writes a new key
//!   to KEY_FILE (0600) and prints the identity (`AGE-PLUGIN-UNSAFE-1…`) with its
//!   recipient (`age1unsafe1…`) in a comment, as age plugins do.
//! - Recipient data: the X25519 public key (32 bytes). Identity data: one byte for the
//!   interaction it demands, then the key file's path. Stanzas: an X25519 stanza
//!   renamed `unsafe`.
//! - Interaction, per identity: `pin` asks for a secret (the PIN is [`PIN`]), `confirm`
//!   asks yes/no, `message` shows a message and goes on, `touch` shows a message and
//!   then waits for a touch that never comes, as a token would (until age closes the
//!   connection: the wait is a read of stdin, which ends when the host is gone).
//! - `--age-plugin=recipient-v1|identity-v1`: the state machines age runs.

use std::collections::{HashMap, HashSet};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::str::FromStr;

use age::secrecy::ExposeSecret;
use age_core::format::{FileKey, Stanza};
use age_plugin::{
    identity::{self, IdentityPluginV1},
    print_new_identity,
    recipient::{self, RecipientPluginV1},
    run_state_machine, Callbacks, PluginHandler,
};
use bech32::{ToBase32, Variant};

const NAME: &str = "unsafe";
const PIN: &str = "123456";
const X25519_TAG: &str = "X25519";

#[derive(Clone, Copy, PartialEq)]
enum Ask {
    Nothing = 0,
    Pin = 1,
    Confirm = 2,
    Message = 3,
    Touch = 4,
}

impl Ask {
    fn from_byte(b: u8) -> Option<Ask> {
        [
            Ask::Nothing,
            Ask::Pin,
            Ask::Confirm,
            Ask::Message,
            Ask::Touch,
        ]
        .into_iter()
        .find(|a| *a as u8 == b)
    }
}

/// One identity: what it demands, and its X25519 key (read from its file).
struct Key {
    ask: Ask,
    secret: age::x25519::Identity,
}

fn key_from_identity(bytes: &[u8]) -> Result<Key, String> {
    let (&first, path) = bytes.split_first().ok_or("empty identity")?;
    let ask = Ask::from_byte(first).ok_or("unknown interaction")?;
    let path = std::str::from_utf8(path).map_err(|_| "bad key file name")?;
    let text = std::fs::read_to_string(path).map_err(|e| format!("key file {path}: {e}"))?;
    let secret = age::x25519::Identity::from_str(text.trim())
        .map_err(|e| format!("key file {path}: {e}"))?;
    Ok(Key { ask, secret })
}

fn x25519_recipient(bytes: &[u8]) -> Option<age::x25519::Recipient> {
    let text = bech32::encode("age", bytes.to_base32(), Variant::Bech32).ok()?;
    age::x25519::Recipient::from_str(&text).ok()
}

struct Handler;

impl PluginHandler for Handler {
    type RecipientV1 = Wrapper;
    type IdentityV1 = Unwrapper;

    fn recipient_v1(self) -> io::Result<Wrapper> {
        Ok(Wrapper(Vec::new()))
    }

    fn identity_v1(self) -> io::Result<Unwrapper> {
        Ok(Unwrapper(Vec::new()))
    }
}

struct Wrapper(Vec<age::x25519::Recipient>);

impl RecipientPluginV1 for Wrapper {
    fn add_recipient(
        &mut self,
        index: usize,
        _: &str,
        bytes: &[u8],
    ) -> Result<(), recipient::Error> {
        let recipient = x25519_recipient(bytes).ok_or(recipient::Error::Recipient {
            index,
            message: "not an unsafe recipient".into(),
        })?;
        self.0.push(recipient);
        Ok(())
    }

    fn add_identity(
        &mut self,
        index: usize,
        _: &str,
        bytes: &[u8],
    ) -> Result<(), recipient::Error> {
        let key = key_from_identity(bytes)
            .map_err(|message| recipient::Error::Identity { index, message })?;
        self.0.push(key.secret.to_public());
        Ok(())
    }

    fn labels(&mut self) -> HashSet<String> {
        HashSet::new()
    }

    fn wrap_file_keys(
        &mut self,
        file_keys: Vec<FileKey>,
        _: impl Callbacks<recipient::Error>,
    ) -> io::Result<Result<Vec<Vec<Stanza>>, Vec<recipient::Error>>> {
        let mut files = Vec::new();
        for file_key in file_keys {
            let mut stanzas = Vec::new();
            for recipient in &self.0 {
                let (wrapped, _) = age::Recipient::wrap_file_key(recipient, &file_key)
                    .map_err(|e| io::Error::other(e.to_string()))?;
                stanzas.extend(wrapped.into_iter().map(|mut s| {
                    s.tag = NAME.into();
                    s
                }));
            }
            files.push(stanzas);
        }
        Ok(Ok(files))
    }
}

struct Unwrapper(Vec<Key>);

impl IdentityPluginV1 for Unwrapper {
    fn add_identity(&mut self, index: usize, _: &str, bytes: &[u8]) -> Result<(), identity::Error> {
        let key = key_from_identity(bytes)
            .map_err(|message| identity::Error::Identity { index, message })?;
        self.0.push(key);
        Ok(())
    }

    fn unwrap_file_keys(
        &mut self,
        files: Vec<Vec<Stanza>>,
        mut callbacks: impl Callbacks<identity::Error>,
    ) -> io::Result<HashMap<usize, Result<FileKey, Vec<identity::Error>>>> {
        let mut out = HashMap::new();
        for (file, stanzas) in files.into_iter().enumerate() {
            let ours: Vec<Stanza> = stanzas
                .into_iter()
                .filter(|s| s.tag == NAME)
                .map(|mut s| {
                    s.tag = X25519_TAG.into();
                    s
                })
                .collect();
            if ours.is_empty() {
                continue;
            }
            for (index, key) in self.0.iter().enumerate() {
                let refused = |message: &str| {
                    Err(vec![identity::Error::Identity {
                        index,
                        message: message.into(),
                    }])
                };
                let allowed = match key.ask {
                    Ask::Nothing => Ok(()),
                    Ask::Pin => {
                        match callbacks.request_secret("Enter the PIN of the unsafe key")? {
                            Ok(pin) if pin.expose_secret() == PIN => Ok(()),
                            Ok(_) => Err("wrong PIN"),
                            Err(_) => Err("no PIN given"),
                        }
                    }
                    Ask::Confirm => {
                        match callbacks.confirm("Use the unsafe key?", "yes", Some("no"))? {
                            Ok(true) => Ok(()),
                            Ok(false) => Err("not confirmed"),
                            Err(_) => Err("no confirmation given"),
                        }
                    }
                    Ask::Message => {
                        let _ = callbacks.message("Unwrapping with the unsafe key")?;
                        Ok(())
                    }
                    Ask::Touch => {
                        let _ = callbacks.message("Touch the unsafe key")?;
                        let _ = io::Read::read(&mut io::stdin(), &mut [0u8; 1]);
                        Err("no touch")
                    }
                };
                if let Err(message) = allowed {
                    out.insert(file, refused(message));
                    break;
                }
                if let Some(Ok(file_key)) = age::Identity::unwrap_stanzas(&key.secret, &ours) {
                    out.insert(file, Ok(file_key));
                    break;
                }
            }
        }
        Ok(out)
    }
}

fn generate(key_file: &str, ask: &str) -> io::Result<()> {
    let ask = match ask {
        "none" => Ask::Nothing,
        "pin" => Ask::Pin,
        "confirm" => Ask::Confirm,
        "message" => Ask::Message,
        "touch" => Ask::Touch,
        _ => {
            return Err(io::Error::other(
                "interaction: none, pin, confirm, message or touch",
            ))
        }
    };
    let secret = age::x25519::Identity::generate();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(key_file)?;
    io::Write::write_all(
        &mut file,
        format!("{}\n", secret.to_string().expose_secret()).as_bytes(),
    )?;
    let (_, public, _) = bech32::decode(&secret.to_public().to_string())
        .map_err(|e| io::Error::other(e.to_string()))?;
    let public: Vec<u8> = bech32::FromBase32::from_base32(&public)
        .map_err(|e: bech32::Error| io::Error::other(e.to_string()))?;
    let mut identity = vec![ask as u8];
    identity.extend_from_slice(key_file.as_bytes());
    print_new_identity(NAME, &identity, &public);
    Ok(())
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [flag] if flag.starts_with("--age-plugin=") => {
            run_state_machine(&flag["--age-plugin=".len()..], Handler)
        }
        ["--age-plugin", machine] => run_state_machine(machine, Handler),
        ["--generate", key_file] => generate(key_file, "none"),
        ["--generate", key_file, ask] => generate(key_file, ask),
        _ => Err(io::Error::other(
            "usage: age-plugin-unsafe --generate KEY_FILE [none|pin|confirm|message|touch]",
        )),
    }
}
