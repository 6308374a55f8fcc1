//! Commands that move no data: the setup and cleanup hooks, deletes and listings. We
//! check what is ours and forward the rest to the inner plugin unchanged.

use std::path::Path;

use anyhow::{bail, Context, Result};

use super::logged;
use crate::cli::HookArgs;
use crate::config::PluginConfig;
use crate::gpbackup::check_timestamp;
use crate::inner::InnerPlugin;
use crate::keys;

/// A setup or cleanup hook: validate, create the local directory on setup, forward with
/// the scope and content ID exactly as received.
pub fn hook(command: &str, args: &HookArgs) -> Result<()> {
    let object = format!(
        "{} {}",
        args.scope,
        args.content_id.as_deref().unwrap_or("")
    );
    logged(command, object.trim(), |log| {
        check_scope(&args.scope, args.content_id.as_deref())?;
        let config = PluginConfig::load(&args.config_path)?;
        match command {
            // Fail fast, before gpbackup starts moving data.
            "setup_plugin_for_backup" => {
                keys::load_recipients(
                    config.recipients.as_deref(),
                    config.recipients_file.as_deref(),
                )?;
            }
            "setup_plugin_for_restore" => {
                let (_identities, warnings) = keys::load_identities(&config.identity_files)?;
                warnings.0.into_iter().for_each(|w| log.note(w));
            }
            _ => {}
        }
        if command.starts_with("setup_") {
            std::fs::create_dir_all(&args.local_backup_directory).with_context(|| {
                format!(
                    "cannot create local_backup_directory {}",
                    args.local_backup_directory.display()
                )
            })?;
        }
        let inner = InnerPlugin::new(&config)?;
        let dir = args.local_backup_directory.to_string_lossy();
        let mut forwarded: Vec<&str> = vec![&dir, &args.scope];
        if let Some(content) = args.content_id.as_deref() {
            forwarded.push(content);
        }
        inner.run(command, &forwarded)
    })
}

/// gpbackup's scopes, and a content ID that is an integer >= -1 once its quotes are
/// stripped (`"-1"` arrives with literal quotes).
fn check_scope(scope: &str, content_id: Option<&str>) -> Result<()> {
    if !matches!(scope, "coordinator" | "master" | "segment_host" | "segment") {
        bail!("scope '{scope}' is not one of coordinator, master, segment_host, segment");
    }
    if let Some(raw) = content_id {
        let id = raw.trim().trim_matches(|c| c == '"' || c == '\'');
        if id.parse::<i32>().map_or(true, |n| n < -1) {
            bail!("content ID {raw} is not a segment content ID (an integer >= -1, as in \"-1\")");
        }
    }
    Ok(())
}

/// delete_backup: forwarded once the timestamp is one gpbackup could have written.
pub fn delete_backup(config_path: &Path, timestamp: &str) -> Result<()> {
    logged("delete_backup", timestamp, |_| {
        check_timestamp(timestamp)?;
        let config = PluginConfig::load(config_path)?;
        InnerPlugin::new(&config)?.run("delete_backup", &[timestamp])
    })
}

/// The inner plugins' own management commands (delete_directory, list_directory).
pub fn management(config_path: &Path, command: &str, directory: &str) -> Result<()> {
    logged(command, directory, |_| {
        let config = PluginConfig::load(config_path)?;
        InnerPlugin::new(&config)?.run(command, &[directory])
    })
}
