//! The recipients a backup is encrypted to, as the config names them.

use std::path::Path;

use anyhow::{anyhow, bail, Result};

use super::file::{key_lines, KeyFile};
use super::kinds::{abbreviate, key_id, RecipientKey};
use crate::config::PluginConfig;

/// The recipients of the `recipients` option (separated by commas or newlines) and of
/// the `recipients_file` option (one per line, `#` comments), in that order: parsed,
/// with their text as given and where it was given. Never empty, and never post-quantum
/// and classic recipients together.
pub struct Recipients {
    keys: Vec<RecipientKey>,
    /// Per key: its text as given (trimmed), and where (for messages).
    given: Vec<(String, String)>,
}

impl Recipients {
    /// The recipients the config names (a backup's: see [`Recipients::parse`]).
    pub fn from_config(config: &PluginConfig) -> Result<Recipients> {
        Recipients::parse(
            config.recipients.as_deref(),
            config.recipients_file.as_deref(),
        )
    }

    /// Parses the `recipients` option's value and the `recipients_file` option's file.
    /// Fails on any key that is not a recipient (saying what it is instead), on no
    /// recipient at all ("encrypt to nobody" is impossible), and on post-quantum and
    /// classic recipients together, naming them.
    pub fn parse(inline: Option<&str>, file: Option<&Path>) -> Result<Recipients> {
        let mut recipients = Recipients {
            keys: Vec::new(),
            given: Vec::new(),
        };
        let inline = inline
            .into_iter()
            .flat_map(|spec| spec.split([',', '\n']))
            .map(str::trim)
            .filter(|s| !s.is_empty());
        for item in inline {
            let key = RecipientKey::parse(item).map_err(|e| anyhow!("option recipients: {e}"))?;
            recipients.push(key, item, "option recipients".into());
        }
        if let Some(path) = file {
            let what = format!("option recipients_file: {}", path.display());
            let file = KeyFile::read(path, &what)?;
            let lines = key_lines(file.text()).map_err(|e| anyhow!("{what}: {e}"))?;
            if lines.is_empty() {
                bail!("{what} holds no recipient, only comments or blank lines; add the age1… lines of the keys backups are encrypted to");
            }
            for (n, line) in lines {
                let key = RecipientKey::parse(line).map_err(|e| anyhow!("{what} line {n}: {e}"))?;
                recipients.push(key, line, format!("{} line {n}", path.display()));
            }
        }
        if recipients.keys.is_empty() {
            bail!("no recipients: set option recipients (age1…) or recipients_file, so backups are encrypted to a key you hold");
        }
        recipients.check_one_kind()?;
        Ok(recipients)
    }

    fn push(&mut self, key: RecipientKey, text: &str, at: String) {
        self.keys.push(key);
        self.given.push((text.to_string(), at));
    }

    /// Refuses post-quantum and classic recipients together, as Go age 1.3 does (the
    /// header writer enforces the same rule through age's recipient labels; this names
    /// the recipients, when the config is read, before any data moves).
    fn check_one_kind(&self) -> Result<()> {
        let (pq, classic): (Vec<_>, Vec<_>) = self
            .keys
            .iter()
            .zip(&self.given)
            .partition(|(key, _)| key.is_post_quantum());
        if pq.is_empty() || classic.is_empty() {
            return Ok(());
        }
        let list = |v: &[(&RecipientKey, &(String, String))]| {
            v.iter()
                .map(|(_, (text, at))| format!("{} ({at})", abbreviate(text)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        bail!(
            "recipients mix post-quantum keys [{}] with classic keys [{}]: an object encrypted to both is only as strong as X25519 against a quantum computer, so age 1.3 and this plugin refuse the mix; list only age1pq1… recipients (or only classic ones)",
            list(&pq),
            list(&classic)
        )
    }

    /// The parsed recipients, in order, for the header writer.
    pub fn keys(&self) -> &[RecipientKey] {
        &self.keys
    }

    /// The key ids of the recipients, sorted and without repeats: what a set of
    /// recipients is known by in summaries and in the rotation journal.
    pub fn key_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.given.iter().map(|(text, _)| key_id(text)).collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// The key ids of the recipients in the order the config gives them, without
    /// repeats: how they are listed to a person, who compares them with the config.
    pub fn key_ids_in_config_order(&self) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        for id in self.given.iter().map(|(text, _)| key_id(text)) {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::kinds::{generate, NewKey};

    #[test]
    fn key_ids_are_sorted_without_repeats_and_ssh_comments_do_not_count() {
        let (_, a) = generate(NewKey::X25519);
        let (_, b) = generate(NewKey::X25519);
        let ssh =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN";
        let inline = format!("{a},{b}\n{a},{ssh} alice@host,{ssh} bob@host");
        let recipients = Recipients::parse(Some(&inline), None).unwrap();
        assert_eq!(recipients.keys().len(), 5);
        let mut want = vec![key_id(&a), key_id(&b), key_id(ssh)];
        assert_eq!(recipients.key_ids_in_config_order(), want);
        want.sort();
        assert_eq!(recipients.key_ids(), want);
    }

    #[test]
    fn post_quantum_and_classic_recipients_are_not_mixed() {
        let (_, pq) = generate(NewKey::PostQuantum);
        let (_, classic) = generate(NewKey::X25519);
        let e = Recipients::parse(Some(&format!("{pq},{classic}")), None)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("recipients mix post-quantum keys ["), "{e}");
        let classic = abbreviate(&classic);
        assert!(
            e.contains(&format!(
                "with classic keys [{classic} (option recipients)]"
            )),
            "{e}"
        );
        assert!(Recipients::parse(Some(" , \n"), None)
            .err()
            .unwrap()
            .to_string()
            .starts_with("no recipients"));
    }
}
