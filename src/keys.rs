//! Recipients (public keys, for backups) and identities (private keys, for restores).
//!
//! Backup hosts only ever parse recipients. Identity files are read into zeroizing
//! buffers, and the parsed keys zeroize themselves when dropped (the age crate's
//! X25519 and SSH identities do, and so do our post-quantum ones).
//!
//! Key types: X25519 (`age1…`) and SSH keys through the age crate; the hybrid
//! post-quantum type (`age1pq1…`) in [`mlkem768x25519`], until the age crate has it.
//!
//! Key files are read as age reads them (age's `ParseIdentities` and recipients-file
//! parser, and the age crate's `IdentityFile`): one key per line, CRLF line ends,
//! blank lines and `#` comments. Beyond that we accept a UTF-8 byte-order mark (or
//! UTF-16, see [`crate::text`]), spaces and tabs around a key and indented comments,
//! which stock `age` refuses: for an identity file the call log then says so, since
//! `age -d -i` may one day have to read it. An invisible character in a key line (a
//! zero-width space, a no-break space) is refused and named: "line 3 has a zero-width
//! space (U+200B)". Reading, decoding and splitting key files happens here only.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use age::{Identity, Recipient};
use anyhow::{anyhow, bail, Result};
use zeroize::Zeroizing;

use crate::message::io_reason;
use crate::text;

pub mod mlkem768x25519;

/// Parses one recipient: `age1pq1…` (post-quantum), `age1…` (X25519) or an OpenSSH
/// public key line.
pub fn parse_recipient(text: &str) -> Result<Box<dyn Recipient>, String> {
    if text.starts_with(mlkem768x25519::RECIPIENT_PREFIX) {
        mlkem768x25519::Recipient::from_str(text)
            .map(|r| Box::new(r) as Box<dyn Recipient>)
            .map_err(|e| {
                format!(
                    "'{}' is not a valid post-quantum age recipient: {e}",
                    abbreviate(text)
                )
            })
    } else if text.starts_with("age1") {
        age::x25519::Recipient::from_str(text)
            .map(|r| Box::new(r) as Box<dyn Recipient>)
            .map_err(|e| format!("'{text}' is not a valid age recipient: {e}"))
    } else if text.starts_with("ssh-") {
        age::ssh::Recipient::from_str(text)
            .map(|r| Box::new(r) as Box<dyn Recipient>)
            .map_err(|e| {
                format!(
                    "'{}' is not a usable SSH recipient: {e:?}",
                    abbreviate(text)
                )
            })
    } else if text.starts_with("AGE-SECRET-KEY-") {
        Err("a private key (AGE-SECRET-KEY-…) was given where a recipient (age1…) belongs; give the public key, and keep the private key off backup hosts".into())
    } else {
        Err(format!(
            "'{}' is not a recipient (expected age1…, ssh-ed25519 … or ssh-rsa …)",
            abbreviate(text)
        ))
    }
}

/// The recipients the `recipients` option (separated by commas or newlines) and the
/// `recipients_file` option (one per line, `#` comments) name, as text, in that order.
pub fn recipient_texts(inline: Option<&str>, file: Option<&Path>) -> Result<Vec<String>> {
    let mut out: Vec<String> = inline
        .into_iter()
        .flat_map(|spec| spec.split([',', '\n']))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    if let Some(path) = file {
        let what = format!("option recipients_file: {}", path.display());
        let text = read_key_file(path, &what)?;
        let lines = key_lines(&text).map_err(|e| anyhow!("{what}: {e}"))?;
        out.extend(lines.into_iter().map(|(_, line)| line.to_string()));
    }
    Ok(out)
}

/// Recipients from the `recipients` and `recipients_file` options, parsed, in the
/// order of [`recipient_texts`].
pub fn load_recipients(
    inline: Option<&str>,
    file: Option<&Path>,
) -> Result<Vec<Box<dyn Recipient>>> {
    let mut recipients = Vec::new();
    // (where it was given, the recipient), for the rule against mixing kinds.
    let mut given: Vec<(String, String)> = Vec::new();
    if let Some(spec) = inline {
        for item in recipient_texts(Some(spec), None)? {
            recipients.push(parse_recipient(&item).map_err(|e| anyhow!("option recipients: {e}"))?);
            given.push(("option recipients".into(), item));
        }
    }
    if let Some(path) = file {
        let what = format!("option recipients_file: {}", path.display());
        let text = read_key_file(path, &what)?;
        let lines = key_lines(&text).map_err(|e| anyhow!("{what}: {e}"))?;
        for (n, line) in lines {
            recipients.push(parse_recipient(line).map_err(|e| anyhow!("{what} line {n}: {e}"))?);
            given.push((format!("{} line {n}", path.display()), line.to_string()));
        }
    }
    if recipients.is_empty() {
        bail!("no recipients: set option recipients (age1…) or recipients_file, so backups are encrypted to a key you hold");
    }
    check_one_kind(&given)?;
    Ok(recipients)
}

/// Refuses post-quantum and classic recipients together, as Go age 1.3 does (the
/// header writer enforces the same rule through age's recipient labels; this names the
/// recipients, at config load, before any data moves).
fn check_one_kind(given: &[(String, String)]) -> Result<()> {
    let (pq, classic): (Vec<_>, Vec<_>) = given
        .iter()
        .partition(|(_, r)| r.starts_with(mlkem768x25519::RECIPIENT_PREFIX));
    if pq.is_empty() || classic.is_empty() {
        return Ok(());
    }
    let list = |v: &[&(String, String)]| {
        v.iter()
            .map(|(at, r)| format!("{} ({at})", abbreviate(r)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    bail!(
        "recipients mix post-quantum keys [{}] with classic keys [{}]: an object encrypted to both is only as strong as X25519 against a quantum computer, so age 1.3 and this plugin refuse the mix; list only age1pq1… recipients (or only classic ones)",
        list(&pq),
        list(&classic)
    )
}

/// Where a keyring's files were named, for messages: the `identity_file` option of the
/// config, or the `--identity` flag of an operator command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrigin {
    IdentityFileOption,
    IdentityFlag,
}

impl KeyOrigin {
    /// "option identity_file" or "--identity".
    pub fn name(self) -> &'static str {
        match self {
            KeyOrigin::IdentityFileOption => "option identity_file",
            KeyOrigin::IdentityFlag => "--identity",
        }
    }
}

/// What loading a keyring noticed that an operator should know, without failing.
#[derive(Default)]
pub struct KeyringWarnings(pub Vec<String>);

/// Loads every identity of every file of the keyring named by the `identity_file`
/// option, in order.
pub fn load_identities(paths: &[PathBuf]) -> Result<(Vec<Box<dyn Identity>>, KeyringWarnings)> {
    load_identities_from(paths, KeyOrigin::IdentityFileOption)
}

/// [`load_identities`] for files named by `origin`; every message names that origin.
pub fn load_identities_from(
    paths: &[PathBuf],
    origin: KeyOrigin,
) -> Result<(Vec<Box<dyn Identity>>, KeyringWarnings)> {
    let mut identities = Vec::new();
    let mut warnings = KeyringWarnings::default();
    if paths.is_empty() {
        match origin {
            KeyOrigin::IdentityFileOption => bail!("no identity: set option identity_file to the age identity file that decrypts these backups (needed on restore hosts only)"),
            KeyOrigin::IdentityFlag => bail!("no identity: pass --identity FILE, the age identity file that decrypts these backups (or set option identity_file in the config)"),
        }
    }
    for path in paths {
        let what = format!("{} {}", origin.name(), path.display());
        let bytes = read_key_bytes(path, &what)?;
        let text = text::decode(&bytes).map_err(|e| anyhow!("{what}: {e}"))?;
        let mode = fs::metadata(path).map_or(0, |m| m.permissions().mode());
        if mode & 0o077 != 0 {
            warnings.0.push(format!(
                "identity file {} is readable by group or others (mode {:o}); chmod 600 it",
                path.display(),
                mode & 0o777
            ));
        }
        let (parsed, mut lenient) = parse_identities(&text, path, &what)?;
        if [&b"\xEF\xBB\xBF"[..], b"\xFF\xFE", b"\xFE\xFF"]
            .iter()
            .any(|mark| bytes.starts_with(mark))
        {
            lenient = Some("a byte-order mark");
        }
        if let Some(what_age_refuses) = lenient {
            warnings.0.push(format!(
                "identity file {} has {what_age_refuses}, which this plugin ignores but stock `age -d -i` refuses; save it without, so it also works for recovery with stock tools",
                path.display()
            ));
        }
        identities.extend(parsed);
    }
    Ok((identities, warnings))
}

/// The decoded text of a key file (zeroized when dropped); `what` names it in errors.
pub fn read_key_file(path: &Path, what: &str) -> Result<Zeroizing<String>> {
    let bytes = read_key_bytes(path, what)?;
    text::decode(&bytes).map_err(|e| anyhow!("{what}: {e}"))
}

/// The bytes of a key file (zeroized when dropped).
fn read_key_bytes(path: &Path, what: &str) -> Result<Zeroizing<Vec<u8>>> {
    let cannot = |e: std::io::Error| anyhow!("{what}: cannot read it: {}", io_reason(&e));
    let mut file = fs::File::open(path).map_err(cannot)?;
    if !file.metadata().map_err(cannot)?.is_file() {
        bail!("{what}: cannot read it: not a regular file");
    }
    let mut bytes = Zeroizing::new(Vec::new());
    file.read_to_end(&mut bytes).map_err(cannot)?;
    Ok(bytes)
}

/// The lines of a key file that hold a key, with their 1-based numbers: blank lines
/// and `#` comments are skipped, and ASCII spaces and tabs around a key dropped. A line
/// with an invisible character is refused, naming it.
pub fn key_lines(text: &str) -> Result<Vec<(usize, &str)>, String> {
    let mut out = Vec::new();
    for (n, line) in text::lines(text) {
        let line = line.trim_matches([' ', '\t']);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(what) = text::first_invisible(line) {
            return Err(format!("line {n} has {what}; delete it"));
        }
        out.push((n, line));
    }
    Ok(out)
}

/// What in a key file's text (a byte-order mark aside) stock age refuses although we
/// accept it, if anything.
fn beyond_age(text: &str) -> Option<&'static str> {
    text::lines(text).find_map(|(_, line)| {
        let trimmed = line.trim_matches([' ', '\t']);
        (trimmed.len() != line.len() && !trimmed.is_empty())
            .then_some("spaces or tabs around a line")
    })
}

type Identities = Vec<Box<dyn Identity>>;

/// The identities of one identity file's text: an OpenSSH private key, or age identity
/// lines (`AGE-SECRET-KEY-1…`). Also returns what about the file stock age refuses.
fn parse_identities(
    text: &str,
    path: &Path,
    what: &str,
) -> Result<(Identities, Option<&'static str>)> {
    if text.contains("-----BEGIN") {
        let key =
            age::ssh::Identity::from_buffer(text.as_bytes(), Some(path.display().to_string()))
                .map_err(|e| anyhow!("{what} is not a usable SSH private key: {e}"))?;
        return match key {
            age::ssh::Identity::Unencrypted(_) => Ok((vec![Box::new(key)], None)),
            age::ssh::Identity::Encrypted(_) => bail!(
                "{what} is a passphrase-protected SSH key, which a plugin cannot unlock; use an age identity (age-keygen) or an unencrypted copy of the key kept 0600 on the restore host"
            ),
            age::ssh::Identity::Unsupported(_) => {
                bail!("{what} is an SSH key of a type age does not support (use ed25519 or RSA)")
            }
        };
    }
    let mut identities: Vec<Box<dyn Identity>> = Vec::new();
    for (n, line) in key_lines(text).map_err(|e| anyhow!("{what}: {e}"))? {
        if line.starts_with("age1") {
            bail!("{what} holds a recipient (a public key, age1…) on line {n}, not an identity: give the identity file (AGE-SECRET-KEY-… lines, written by age-keygen or gpbackup_age_plugin keygen)");
        }
        if line.starts_with("ssh-") {
            bail!("{what} is an SSH public key, not a private key: give the private key file (the one without .pub)");
        }
        // Parsed from a zeroizing copy; the error never echoes the line.
        let line = Zeroizing::new(line.to_string());
        if line.starts_with(mlkem768x25519::IDENTITY_PREFIX) {
            let identity = mlkem768x25519::Identity::from_str(&line).map_err(|e| {
                anyhow!("{what} line {n}: not a valid post-quantum identity (AGE-SECRET-KEY-PQ-1…): {e}")
            })?;
            identities.push(Box::new(identity));
            continue;
        }
        match age::x25519::Identity::from_str(&line) {
            Ok(identity) => identities.push(Box::new(identity)),
            Err(_) => bail!(
                "{what} is not an age identity file: line {n} is not an identity (expected AGE-SECRET-KEY-… lines from age-keygen)"
            ),
        }
    }
    if identities.is_empty() {
        bail!("{what} holds no identity (expected AGE-SECRET-KEY-… lines from age-keygen)");
    }
    Ok((identities, beyond_age(text)))
}

/// Shortens a long key for an error message.
fn abbreviate(text: &str) -> String {
    if text.chars().count() > 40 {
        format!("{}…", text.chars().take(40).collect::<String>())
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_lines_as_people_save_them() {
        let text = "# created: x\r\n\r\n  AGE-SECRET-KEY-1AB \t\r\n\t# indented comment\nage1cd\n";
        assert_eq!(
            key_lines(text).unwrap(),
            vec![(3, "AGE-SECRET-KEY-1AB"), (5, "age1cd")]
        );
        assert_eq!(
            key_lines("# c\nage1cd\u{200B}\n").unwrap_err(),
            "line 2 has a zero-width space (U+200B); delete it"
        );
        assert_eq!(
            key_lines("age1cd\u{A0}\n").unwrap_err(),
            "line 1 has a no-break space (U+00A0); delete it"
        );
        assert_eq!(
            beyond_age("# c\r\nAGE \r\n"),
            Some("spaces or tabs around a line")
        );
        assert_eq!(beyond_age("# c\r\n\r\nAGE\r\n"), None);
    }
}
