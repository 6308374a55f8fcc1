//! `verify`: every object of a backup set read through the inner plugin and decoded end
//! to end, exactly as a restore would, into nothing.

use std::io;

use anyhow::{anyhow, Result};

use super::backup_set::BackupSet;
use super::storage::Store;
use super::sweep::{self, Object, Outcome, Read, SetCommand, Summary};
use crate::cli::VerifyArgs;
use crate::config::PluginConfig;
use crate::gpbackup::check_timestamp;
use crate::keys::Keyring;
use crate::log::Metered;
use crate::pipeline::{self, DecodeOptions};

/// Runs `verify`.
pub fn verify(args: &VerifyArgs) -> Result<()> {
    // Run by a person: an age plugin may ask them for a PIN or a touch.
    crate::keys::plugin::answer_on_terminal();
    let config = PluginConfig::load(&args.config_path)?;
    for ts in &args.timestamps {
        check_timestamp(ts)?;
    }
    // Objects are checked with --identity alone when given (the question is "does this
    // key read everything?"), but the set's metadata may be read with the config's
    // keyring too, so a key that reads nothing still gets one answer per object.
    let keyring = Keyring::for_operator(&config, &args.identities)?;
    for w in keyring.warnings() {
        eprintln!("gpbackup_age_plugin: warning: {w}");
    }
    // A config keyring that does not load here (its files live on other hosts) is no
    // reason to fail: --identity alone may read the metadata.
    let finder = match Keyring::from_config(&config) {
        Ok(config_keyring) if !args.identities.is_empty() => keyring.with(&config_keyring),
        _ => keyring.clone(),
    };
    let store = Store::open(&config)?;
    let command = Verify {
        config: &config,
        keyring: &keyring,
    };
    sweep::run(
        &command,
        &store,
        &finder,
        &args.timestamps,
        args.parallel as usize,
    )
}

struct Verify<'a> {
    config: &'a PluginConfig,
    keyring: &'a Keyring,
}

/// A verified object: which identity of the keyring opened it.
struct Verified {
    identity: usize,
}

impl SetCommand for Verify<'_> {
    type Done = Verified;
    type Set = ();

    fn name(&self) -> &'static str {
        "verify"
    }

    fn begin_set(&self, _set: &BackupSet) -> Result<()> {
        Ok(())
    }

    /// Decodes one object into nothing, checking everything a restore checks.
    fn object(&self, _set: &(), object: &mut Object) -> Result<Verified> {
        let fetch = object.fetch()?;
        if fetch.armored() {
            object.log.note("ASCII-armored age file (age -a)");
        }
        let (opened, mut fetch) = fetch.open(self.keyring)?;
        let identity = opened.identity;
        let opts = DecodeOptions {
            check_sha256: true,
            ..DecodeOptions::from_config(self.config, object.name)
        };
        let sink = Metered::new(io::sink(), object.written);
        let decoded = pipeline::decode_opened(opened.file_key, &mut fetch.input, sink, &opts);
        match decoded {
            Ok(_) => {
                object.said(fetch.finish()?);
                Ok(Verified { identity })
            }
            Err(e) => Err(fetch.abort(anyhow!("{}", e.explain(self.keyring.files(), object.name)))),
        }
    }

    fn summary(&self, set: &BackupSet, outcomes: &[Outcome<Verified>], read: &Read) -> Summary {
        let mut by_key: Vec<(usize, usize)> = Vec::new();
        for verified in outcomes.iter().filter_map(Outcome::done) {
            match by_key.iter_mut().find(|(i, _)| *i == verified.identity) {
                Some((_, n)) => *n += 1,
                None => by_key.push((verified.identity, 1)),
            }
        }
        by_key.sort();
        let ok: usize = by_key.iter().map(|(_, n)| n).sum();
        let summary = Summary::new("verify", set, &[])
            .line(&[
                format!("{ok} ok"),
                format!("{} failed", outcomes.len() - ok),
            ])
            .read(read, &[]);
        if by_key.is_empty() {
            return summary;
        }
        let opened_by: Vec<String> = by_key
            .iter()
            .map(|(i, n)| format!("{} ({n})", self.keyring.label(*i)))
            .collect();
        summary.list("opened by ", &opened_by)
    }
}
