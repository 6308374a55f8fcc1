//! Recipients (public keys, for backups) and identities (private keys, for restores).
//!
//! Backup hosts only ever parse recipients. Identity files are read into zeroizing
//! buffers, and the parsed keys zeroize themselves when dropped (the age crate's
//! X25519 and SSH identities do).

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::str::FromStr;

use age::{Identity, Recipient};
use anyhow::{bail, Context, Result};
use zeroize::Zeroizing;

/// Parses one recipient: `age1…` (X25519) or an OpenSSH public key line.
pub fn parse_recipient(text: &str) -> Result<Box<dyn Recipient>, String> {
    if text.starts_with("age1") {
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
    if let Some(spec) = inline {
        for item in spec
            .split([',', '\n'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            recipients.push(
                parse_recipient(item).map_err(|e| anyhow::anyhow!("option recipients: {e}"))?,
            );
        }
    }
    if let Some(path) = file {
        let text = fs::read_to_string(path)
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
        }
    }
    if recipients.is_empty() {
        bail!("no recipients: set option recipients (age1…) or recipients_file, so backups are encrypted to a key you hold");
    }
    Ok(recipients)
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
    let identities = age::IdentityFile::from_buffer(bytes)
        .map_err(|e| {
            anyhow::anyhow!("option identity_file: {name} is not an age identity file: {e}")
        })?
        .into_identities()
        .map_err(|e| anyhow::anyhow!("option identity_file: {name}: {e}"))?;
    if identities.is_empty() {
        bail!("option identity_file: {name} holds no identity (expected AGE-SECRET-KEY-… lines from age-keygen)");
    }
    Ok(identities)
}

/// Shortens a long key for an error message.
fn abbreviate(text: &str) -> String {
    if text.chars().count() > 40 {
        format!("{}…", text.chars().take(40).collect::<String>())
    } else {
        text.to_string()
    }
}
