//! Recipients (public keys, for backups) and identities (private keys, for restores).
//!
//! Backup hosts only ever parse recipients. Identity files are read into zeroizing
//! buffers, and the parsed keys zeroize themselves when dropped (the age crate's
//! X25519 and SSH identities do, and so do our post-quantum ones).
//!
//! Key types: X25519 (`age1…`) and SSH keys through the age crate; the hybrid
//! post-quantum type (`age1pq1…`) in [`mlkem768x25519`], until the age crate has it.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::str::FromStr;

use age::{Identity, Recipient};
use anyhow::{bail, Context, Result};
use zeroize::Zeroizing;

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

/// Recipients from the `recipients` option (separated by commas or newlines) and the
/// `recipients_file` option (one per line, `#` comments), in that order.
pub fn load_recipients(
    inline: Option<&str>,
    file: Option<&Path>,
) -> Result<Vec<Box<dyn Recipient>>> {
    let mut recipients = Vec::new();
    // (where it was given, the recipient), for the rule against mixing kinds.
    let mut given: Vec<(String, &str)> = Vec::new();
    if let Some(spec) = inline {
        for item in spec
            .split([',', '\n'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            recipients.push(
                parse_recipient(item).map_err(|e| anyhow::anyhow!("option recipients: {e}"))?,
            );
            given.push(("option recipients".into(), item));
        }
    }
    let text;
    if let Some(path) = file {
        text = fs::read_to_string(path)
            .with_context(|| format!("option recipients_file: cannot read {}", path.display()))?;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            recipients.push(parse_recipient(line).map_err(|e| {
                anyhow::anyhow!(
                    "option recipients_file: {} line {}: {e}",
                    path.display(),
                    n + 1
                )
            })?);
            given.push((format!("{} line {}", path.display(), n + 1), line));
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
fn check_one_kind(given: &[(String, &str)]) -> Result<()> {
    let (pq, classic): (Vec<_>, Vec<_>) = given
        .iter()
        .partition(|(_, r)| r.starts_with(mlkem768x25519::RECIPIENT_PREFIX));
    if pq.is_empty() || classic.is_empty() {
        return Ok(());
    }
    let list = |v: &[&(String, &str)]| {
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

/// What loading a keyring noticed that an operator should know, without failing.
#[derive(Default)]
pub struct KeyringWarnings(pub Vec<String>);

/// Loads every identity of every file of the keyring, in order.
pub fn load_identities(
    paths: &[std::path::PathBuf],
) -> Result<(Vec<Box<dyn Identity>>, KeyringWarnings)> {
    let mut identities = Vec::new();
    let mut warnings = KeyringWarnings::default();
    if paths.is_empty() {
        bail!("no identity: set option identity_file to the age identity file that decrypts these backups (needed on restore hosts only)");
    }
    for path in paths {
        let mut file = fs::File::open(path)
            .with_context(|| format!("option identity_file: cannot read {}", path.display()))?;
        let meta = file
            .metadata()
            .with_context(|| format!("option identity_file: cannot stat {}", path.display()))?;
        if !meta.is_file() {
            bail!(
                "option identity_file: {} is not a regular file",
                path.display()
            );
        }
        if meta.permissions().mode() & 0o077 != 0 {
            warnings.0.push(format!(
                "identity file {} is readable by group or others (mode {:o}); chmod 600 it",
                path.display(),
                meta.permissions().mode() & 0o777
            ));
        }
        let mut bytes = Zeroizing::new(Vec::new());
        file.read_to_end(&mut bytes)
            .with_context(|| format!("option identity_file: cannot read {}", path.display()))?;
        identities.extend(parse_identities(&bytes, path)?);
    }
    Ok((identities, warnings))
}

fn parse_identities(bytes: &[u8], path: &Path) -> Result<Vec<Box<dyn Identity>>> {
    let name = path.display();
    let text = std::str::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("option identity_file: {name} is not a text identity file"))?;
    if text.contains("-----BEGIN") {
        let key = age::ssh::Identity::from_buffer(bytes, Some(path.display().to_string()))
            .map_err(|e| {
                anyhow::anyhow!("option identity_file: {name} is not a usable SSH private key: {e}")
            })?;
        return match key {
            age::ssh::Identity::Unencrypted(_) => Ok(vec![Box::new(key)]),
            age::ssh::Identity::Encrypted(_) => bail!(
                "option identity_file: {name} is a passphrase-protected SSH key, which a plugin cannot unlock; use an age identity (age-keygen) or an unencrypted copy of the key kept 0600 on the restore host"
            ),
            age::ssh::Identity::Unsupported(_) => {
                bail!("option identity_file: {name} is an SSH key of a type age does not support (use ed25519 or RSA)")
            }
        };
    }
    let mut pq_identities = Vec::new();
    let rest = take_pq_identities(text, path, &mut pq_identities)?;
    let mut identities = age::IdentityFile::from_buffer(rest.as_bytes())
        .map_err(|e| {
            anyhow::anyhow!("option identity_file: {name} is not an age identity file: {e}")
        })?
        .into_identities()
        .map_err(|e| anyhow::anyhow!("option identity_file: {name}: {e}"))?;
    identities.extend(pq_identities);
    if identities.is_empty() {
        bail!("option identity_file: {name} holds no identity (expected AGE-SECRET-KEY-… lines from age-keygen)");
    }
    Ok(identities)
}

/// Parses the post-quantum identity lines (`AGE-SECRET-KEY-PQ-1…`, which the age crate's
/// identity-file parser does not know) into `pq` and returns the rest of the file, those
/// lines blanked so that the age crate's line numbers stay right. Post-quantum
/// identities therefore come after the file's other identities, in file order.
fn take_pq_identities(
    text: &str,
    path: &Path,
    pq: &mut Vec<Box<dyn Identity>>,
) -> Result<Zeroizing<String>> {
    // Room for a final newline too, so the buffer never reallocates (and never leaves
    // an unzeroized copy behind).
    let mut rest = Zeroizing::new(String::with_capacity(text.len() + 1));
    for (n, line) in text.lines().enumerate() {
        if line.starts_with(mlkem768x25519::IDENTITY_PREFIX) {
            let identity = mlkem768x25519::Identity::from_str(line).map_err(|e| {
                anyhow::anyhow!(
                    "option identity_file: {} line {}: not a valid post-quantum identity (AGE-SECRET-KEY-PQ-1…): {e}",
                    path.display(),
                    n + 1
                )
            })?;
            pq.push(Box::new(identity));
        } else {
            rest.push_str(line);
        }
        rest.push('\n');
    }
    Ok(rest)
}

/// Shortens a long key for an error message.
fn abbreviate(text: &str) -> String {
    if text.chars().count() > 40 {
        format!("{}…", text.chars().take(40).collect::<String>())
    } else {
        text.to_string()
    }
}
