//! Every key type this plugin knows, in one place: how its recipients and identities are
//! written, told apart, parsed, named and made.
//!
//! - X25519 (`age1…`, `AGE-SECRET-KEY-1…`) and SSH keys (`ssh-ed25519 …`, `ssh-rsa …`,
//!   OpenSSH private keys) through the age crate;
//! - the hybrid post-quantum type (`age1pq1…`, `AGE-SECRET-KEY-PQ-1…`) in
//!   [`super::mlkem768x25519`], until the age crate has it;
//! - keys served by an age plugin (`age1<name>1…`, `AGE-PLUGIN-<NAME>-1…`) in
//!   [`super::plugin`].
//!
//! Adding a type is a module of its own beside `mlkem768x25519` and a variant in each
//! enum here; the recipients, the keyring and the commands use these types without
//! knowing which kinds exist.

use std::path::Path;
use std::str::FromStr;

use age::secrecy::SecretString;
use anyhow::{anyhow, bail, Result};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::file::{beyond_age, key_lines};
use super::mlkem768x25519;
use super::plugin;

/// Why `text`, which starts with `age1` but does not parse, is not a recipient: several
/// recipients run together with spaces or `;` (the list separator is the comma), a
/// documentation placeholder (`age1…`, `age1curr3ntkeyqqqq…`: an ellipsis, or a run
/// of one character no real key holds), or else the parser's own reason.
fn not_an_age_recipient(text: &str, reason: &str) -> String {
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c == ';')
        .filter(|w| !w.is_empty())
        .collect();
    if words.len() > 1 && words.iter().filter(|w| w.starts_with("age1")).count() > 1 {
        return format!(
            "'{}' holds {} recipients separated by spaces or ';': separate recipients with commas (recipients: \"age1…,age1…\"; in a recipients_file, one per line)",
            abbreviate(text),
            words.len()
        );
    }
    let chars: Vec<char> = text.chars().collect();
    let long_run = chars.windows(10).any(|w| w.iter().all(|c| *c == w[0]));
    if text.contains('…') || text.contains("...") || long_run || text.contains("REPLACE") {
        return format!(
            "'{}' is a placeholder from the documentation, not a key: replace it with your recipient (the age1… line gpbackup_age_plugin keygen prints)",
            abbreviate(text)
        );
    }
    format!("'{text}' is not a valid age recipient: {reason}")
}

/// A recipient (public key) of one of the types we know.
#[derive(Clone)]
pub enum RecipientKey {
    X25519(age::x25519::Recipient),
    /// Boxed: an ML-KEM-768 public key is 1.2 KB, the others a few dozen bytes.
    PostQuantum(Box<mlkem768x25519::Recipient>),
    Ssh(age::ssh::Recipient),
    Plugin(plugin::Recipient),
}

impl RecipientKey {
    /// Parses one recipient: `age1pq1…` (post-quantum), `age1…` (X25519), `age1<name>1…`
    /// (served by the plugin `age-plugin-<name>`, which must be on `PATH`) or an OpenSSH
    /// public key line. The error says what the text is instead, in words.
    pub fn parse(text: &str) -> Result<RecipientKey, String> {
        if text.starts_with(mlkem768x25519::RECIPIENT_PREFIX) {
            mlkem768x25519::Recipient::from_str(text)
                .map(|r| RecipientKey::PostQuantum(Box::new(r)))
                .map_err(|e| {
                    format!(
                        "'{}' is not a valid post-quantum age recipient: {e}",
                        abbreviate(text)
                    )
                })
        } else if text.starts_with("age1") {
            match age::x25519::Recipient::from_str(text) {
                Ok(key) => Ok(RecipientKey::X25519(key)),
                Err(_) if plugin::is_recipient(text) => plugin::Recipient::parse(text)
                    .map(RecipientKey::Plugin)
                    .map_err(|e| format!("recipient '{}' {e}", abbreviate(text))),
                Err(e) => Err(not_an_age_recipient(text, e)),
            }
        } else if text.starts_with("ssh-") {
            age::ssh::Recipient::from_str(text)
                .map(RecipientKey::Ssh)
                .map_err(|e| {
                    format!(
                        "'{}' is not a usable SSH recipient: {e:?}",
                        abbreviate(text)
                    )
                })
        } else if text.starts_with("AGE-SECRET-KEY-") {
            Err("a private key (AGE-SECRET-KEY-…) was given where a recipient (age1…) belongs; give the public key, and keep the private key off backup hosts".into())
        } else if text.starts_with(plugin::IDENTITY_PREFIX) {
            Err("a plugin identity (AGE-PLUGIN-…) was given where a recipient belongs; give its recipient (age1<plugin>1…, which the plugin prints when it makes the identity)".into())
        } else if text.starts_with("-----BEGIN") {
            Err("a private key file (-----BEGIN …) was given where a recipient belongs; give the public key (for an SSH key, the .pub file)".into())
        } else {
            Err(format!(
                "'{}' is not a recipient (expected age1…, ssh-ed25519 … or ssh-rsa …)",
                abbreviate(text)
            ))
        }
    }

    /// True for a type that resists a quantum computer: an object encrypted to it must
    /// not also be encrypted to a classic one.
    pub fn is_post_quantum(&self) -> bool {
        matches!(self, RecipientKey::PostQuantum(_))
    }
}

impl AsRef<dyn age::Recipient> for RecipientKey {
    fn as_ref(&self) -> &(dyn age::Recipient + 'static) {
        match self {
            RecipientKey::X25519(r) => r,
            RecipientKey::PostQuantum(r) => r.as_ref(),
            RecipientKey::Ssh(r) => r,
            RecipientKey::Plugin(r) => r,
        }
    }
}

/// A recipient's canonical text, from which its key id is computed: an SSH key's type
/// and key without its comment, anything else as written.
pub fn canonical(recipient: &str) -> String {
    if recipient.starts_with("ssh-") {
        recipient
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        recipient.trim().to_string()
    }
}

/// A non-secret identifier of a recipient: the first 8 hex digits of the SHA-256 of its
/// canonical text (`age1…`, or `ssh-ed25519 AAAA…` without the comment).
pub fn key_id(recipient: &str) -> String {
    crate::message::hex(&Sha256::digest(canonical(recipient).as_bytes())[..4])
}

/// An identity (private key) of one of the types we know; zeroized when dropped (the
/// age crate's X25519 and SSH identities do that, and so do our post-quantum ones).
pub enum IdentityKey {
    X25519(age::x25519::Identity),
    /// Boxed: its expanded keys are 3.3 KB, the others a few dozen bytes.
    PostQuantum(Box<mlkem768x25519::Identity>),
    Ssh(age::ssh::Identity),
    /// Boxed: it holds the plugin's path and its callbacks.
    Plugin(Box<plugin::Identity>),
}

impl IdentityKey {
    /// How reports name it: `key <id>` (the key id of its recipient) where it has a
    /// recipient of ours, else what it is and the file it came from.
    pub fn label(&self, file: &Path) -> String {
        match self {
            IdentityKey::X25519(i) => format!("key {}", key_id(&i.to_public().to_string())),
            IdentityKey::PostQuantum(i) => {
                format!("key {}", key_id(&i.to_public().to_string()))
            }
            IdentityKey::Ssh(_) => format!("ssh key {}", file.display()),
            IdentityKey::Plugin(i) => format!("{} identity {}", i.plugin(), file.display()),
        }
    }
}

impl AsRef<dyn age::Identity> for IdentityKey {
    fn as_ref(&self) -> &(dyn age::Identity + 'static) {
        match self {
            IdentityKey::X25519(i) => i,
            IdentityKey::PostQuantum(i) => i.as_ref(),
            IdentityKey::Ssh(i) => i,
            IdentityKey::Plugin(i) => i.as_ref(),
        }
    }
}

/// The identities of one identity file's text: an OpenSSH private key, or identity
/// lines. Also returns what about the file stock age refuses. `what` names the file in
/// errors; no error ever quotes a key line.
pub(crate) fn parse_identity_file(
    text: &str,
    path: &Path,
    what: &str,
) -> Result<(Vec<IdentityKey>, Option<&'static str>)> {
    if text.contains("-----BEGIN") {
        let key =
            age::ssh::Identity::from_buffer(text.as_bytes(), Some(path.display().to_string()))
                .map_err(|e| anyhow!("{what} is not a usable SSH private key: {e}"))?;
        return match key {
            age::ssh::Identity::Unencrypted(_) => Ok((vec![IdentityKey::Ssh(key)], None)),
            age::ssh::Identity::Encrypted(_) => bail!(
                "{what} is a passphrase-protected SSH key, which a plugin cannot unlock; use an age identity (age-keygen) or an unencrypted copy of the key kept 0600 on the restore host"
            ),
            age::ssh::Identity::Unsupported(_) => {
                bail!("{what} is an SSH key of a type age does not support (use ed25519 or RSA)")
            }
        };
    }
    let mut identities = Vec::new();
    for (n, line) in key_lines(text).map_err(|e| anyhow!("{what}: {e}"))? {
        if line.starts_with("age1") {
            bail!("{what} holds a recipient (a public key, age1…) on line {n}, not an identity: give the identity file (AGE-SECRET-KEY-… lines, written by age-keygen or gpbackup_age_plugin keygen)");
        }
        if line.starts_with("ssh-") {
            bail!("{what} is an SSH public key, not a private key: give the private key file (the one without .pub)");
        }
        // Parsed from a zeroizing copy; the error never echoes the line.
        let line = Zeroizing::new(line.to_string());
        if line.starts_with(plugin::IDENTITY_PREFIX) {
            let identity =
                plugin::Identity::parse(&line).map_err(|e| anyhow!("{what} line {n}: {e}"))?;
            identities.push(IdentityKey::Plugin(Box::new(identity)));
            continue;
        }
        if line.starts_with(mlkem768x25519::IDENTITY_PREFIX) {
            let identity = mlkem768x25519::Identity::from_str(&line).map_err(|e| {
                anyhow!("{what} line {n}: not a valid post-quantum identity (AGE-SECRET-KEY-PQ-1…): {e}")
            })?;
            identities.push(IdentityKey::PostQuantum(Box::new(identity)));
            continue;
        }
        match age::x25519::Identity::from_str(&line) {
            Ok(identity) => identities.push(IdentityKey::X25519(identity)),
            Err(_) => bail!(
                "{what} is not an age identity file: line {n} is not an identity (expected AGE-SECRET-KEY-… lines from age-keygen)"
            ),
        }
    }
    if identities.is_empty() {
        bail!("{what} holds no identity, only comments or blank lines (expected AGE-SECRET-KEY-… lines from age-keygen)");
    }
    Ok((identities, beyond_age(text)))
}

/// True when a header stanza of this type resists a quantum computer.
pub(crate) fn is_post_quantum_stanza(tag: &str) -> bool {
    tag == mlkem768x25519::STANZA_TAG
}

/// The types of key `keygen` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewKey {
    /// X25519, as `age-keygen` makes it.
    X25519,
    /// Hybrid ML-KEM-768 + X25519, as `age-keygen -pq` (age 1.3) makes it.
    PostQuantum,
}

/// A new identity of type `kind`: its secret line and its recipient.
pub fn generate(kind: NewKey) -> (SecretString, String) {
    match kind {
        NewKey::X25519 => {
            let identity = age::x25519::Identity::generate();
            (identity.to_string(), identity.to_public().to_string())
        }
        NewKey::PostQuantum => {
            let identity = mlkem768x25519::Identity::generate();
            (identity.to_string(), identity.to_public().to_string())
        }
    }
}

/// Shortens a long key for an error message.
pub fn abbreviate(text: &str) -> String {
    if text.chars().count() > 40 {
        format!("{}…", text.chars().take(40).collect::<String>())
    } else {
        text.to_string()
    }
}
