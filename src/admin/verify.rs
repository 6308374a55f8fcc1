//! `verify`: every object of a backup set read through the inner plugin and decoded end
//! to end, exactly as a restore would, into nothing.

use std::io::{self, BufReader, Read};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{anyhow, bail, Result};

use super::backup_set::{discover_or_report, failure_tally, BackupSet};
use super::progress::{for_each_parallel, Progress};
use super::storage::{header_problem, identity_labels, KeySource, Keys, Store};
use super::{check_timestamp, human_bytes, human_rate};
use crate::age_file::{Header, HeaderError};
use crate::cli::VerifyArgs;
use crate::config::PluginConfig;
use crate::log::{CallLog, Metered};
use crate::pipeline::{self, DecodeOptions};

/// A verified object: which identity of the keyring opened it.
struct Verified {
    identity: usize,
}

enum Outcome {
    Ok(Verified),
    Failed(String),
}

impl From<String> for Outcome {
    fn from(e: String) -> Self {
        Outcome::Failed(e)
    }
}

/// Runs `verify`.
pub fn verify(args: &VerifyArgs) -> Result<()> {
    let config = PluginConfig::load(&args.config_path)?;
    for ts in &args.timestamps {
        check_timestamp(ts)?;
    }
    // Objects are checked with --identity alone when given (the question is "does this
    // key read everything?"), but the set's metadata may be read with the config's
    // keyring too, so a key that reads nothing still gets one answer per object.
    let source = KeySource::new(&config, &args.identities, false);
    let (_, warnings) = source.load()?;
    for w in warnings {
        eprintln!("gpbackup_age_plugin: warning: {w}");
    }
    let mut finder = source.clone();
    for path in &config.identity_files {
        if !finder.identity_files.contains(path) {
            finder.identity_files.push(path.clone());
        }
    }
    // A config keyring that does not load here (its files live on other hosts) is no
    // reason to fail: --identity alone may read the metadata.
    let keys = match finder.load() {
        Ok((keys, _)) => keys,
        Err(_) => source.load()?.0,
    };
    let labels = identity_labels(&source.identity_files);
    let checking = source.load()?.0.identities.len();
    let label = |i: usize| {
        if labels.len() == checking {
            labels[i].clone()
        } else {
            format!("identity #{}", i + 1)
        }
    };
    let store = Store::open(&config)?;
    let mut failed_objects = 0usize;
    let mut failed_sets = 0usize;
    for ts in &args.timestamps {
        let Some(set) = discover_or_report(&store, ts, &keys.identities, "verify") else {
            failed_sets += 1;
            continue;
        };
        let progress = Progress::new(&format!("verify {ts}"), set.objects.len() as u64);
        let outcomes = for_each_parallel(
            &set.objects,
            args.parallel as usize,
            || source.load_for_thread(),
            |keys, name| {
                let outcome = verify_logged(&store, &source, keys, ts, name, &progress);
                if let Outcome::Failed(e) = &outcome {
                    progress.error_line(&format!("gpbackup_age_plugin: verify {ts}: {name}: {e}"));
                }
                progress.object_done();
                outcome
            },
        );
        progress.finish();
        let failed = outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Failed(_)))
            .count();
        failed_objects += failed;
        println!("{}", summary(&set, &outcomes, &progress, &label));
    }
    if let Some(tally) = failure_tally(failed_objects, failed_sets) {
        bail!("verify: {tally}");
    }
    Ok(())
}

fn summary(
    set: &BackupSet,
    outcomes: &[Outcome],
    progress: &Progress,
    label: &dyn Fn(usize) -> String,
) -> String {
    let mut by_key: Vec<(usize, usize)> = Vec::new();
    for o in outcomes {
        if let Outcome::Ok(v) = o {
            match by_key.iter_mut().find(|(i, _)| *i == v.identity) {
                Some((_, n)) => *n += 1,
                None => by_key.push((v.identity, 1)),
            }
        }
    }
    by_key.sort();
    let ok: usize = by_key.iter().map(|(_, n)| n).sum();
    let secs = progress.elapsed().as_secs_f64();
    format!(
        "verify {}: {} objects ({} segment{}{}): {} ok, {} failed; {} read in {:.1} s ({}){}",
        set.layout.timestamp,
        outcomes.len(),
        set.segments,
        if set.segments == 1 { "" } else { "s" },
        if set.probed { " found by probing" } else { "" },
        ok,
        outcomes.len() - ok,
        human_bytes(progress.bytes()),
        secs,
        human_rate(progress.bytes(), secs),
        if by_key.is_empty() {
            String::new()
        } else {
            format!(
                "; opened by {}",
                by_key
                    .iter()
                    .map(|(i, n)| format!("{} ({n})", label(*i)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    )
}

fn verify_logged(
    store: &Store,
    source: &KeySource,
    keys: &mut Keys,
    ts: &str,
    name: &str,
    progress: &Progress,
) -> Outcome {
    let mut log = CallLog::start("verify", &format!("{ts}/{name}"));
    let result = verify_object(store, source, keys, ts, name, progress, &mut log);
    match result {
        Ok(v) => {
            log.finish(&Ok(()));
            Outcome::Ok(v)
        }
        Err(e) => {
            let e = crate::one_line(&format!("{e:#}"));
            log.finish(&Err(anyhow!("{e}")));
            Outcome::Failed(e)
        }
    }
}

/// Decodes one object into nothing, checking everything a restore checks; the bytes
/// read and decoded go to `log`, failed or not.
fn verify_object(
    store: &Store,
    source: &KeySource,
    keys: &Keys,
    ts: &str,
    name: &str,
    progress: &Progress,
    log: &mut CallLog,
) -> Result<Verified> {
    let fetch = store.fetch(ts, name, progress)?;
    if fetch.armored() {
        log.note("ASCII-armored age file (age -a)");
    }
    let (header, fetch) = fetch.read_header()?;
    let identity = match which_identity(&header, &keys.identities) {
        Ok(i) => i,
        Err(e) => {
            log.bytes_in = fetch.bytes_read();
            return Err(fetch.abort(anyhow!("{}", header_problem(&e))));
        }
    };
    let mut input = BufReader::new(io::Cursor::new(header.encode()).chain(fetch));
    let opts = DecodeOptions {
        workers: source.config.workers,
        expected_name: Some(name),
        ranges: None,
        max_memory: source.config.max_memory,
        check_sha256: true,
    };
    let decoded_bytes = AtomicU64::new(0);
    let sink = Metered::new(io::sink(), &decoded_bytes);
    let decoded = pipeline::decode(&mut input, sink, &keys.identities, &opts);
    let (_, fetch) = input.into_inner().into_inner();
    log.bytes_in = fetch.bytes_read();
    log.bytes_out = decoded_bytes.load(Ordering::Relaxed);
    match decoded {
        Ok(_) => {
            fetch.finish()?;
            Ok(Verified { identity })
        }
        Err(e) => Err(fetch.abort(anyhow!("{}", e.explain(&source.identity_files, name)))),
    }
}

/// The index of the first identity of the keyring that opens the header.
pub fn which_identity(
    header: &Header,
    identities: &[Box<dyn age::Identity>],
) -> Result<usize, HeaderError> {
    for (i, identity) in identities.iter().enumerate() {
        match header.unwrap_file_key(std::slice::from_ref(identity)) {
            Ok(_) => return Ok(i),
            Err(HeaderError::NoMatchingKey) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(HeaderError::NoMatchingKey)
}
