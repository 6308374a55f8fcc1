//! Commands that move no data: the setup and cleanup hooks, deletes and listings. We
//! check what is ours and forward the rest to the inner plugin unchanged.

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::cli::HookArgs;
use crate::commands::call;
use crate::config::PluginConfig;
use crate::gpbackup::check_timestamp;
use crate::inner::{Forwarded, Hook, InnerPlugin};
use crate::keys::{Keyring, Recipients};
use crate::log::CallLog;

/// A setup or cleanup hook: validate, create the local directory on setup, forward with
/// the scope and content ID exactly as received.
pub fn hook(hook: Hook, args: &HookArgs) -> Result<()> {
    let object = format!(
        "{} {}",
        args.scope,
        args.content_id.as_deref().unwrap_or("")
    );
    call(hook.command(), object.trim(), |log| {
        check_scope(&args.scope, args.content_id.as_deref())?;
        let config = PluginConfig::load(&args.config_path)?;
        match hook {
            // Fail fast, before gpbackup starts moving data.
            Hook::SetupForBackup => {
                Recipients::from_config(&config)?;
            }
            Hook::SetupForRestore => {
                let keyring = Keyring::from_config(&config)?;
                keyring.warnings().iter().for_each(|w| log.note(w));
            }
            Hook::CleanupForBackup | Hook::CleanupForRestore => {}
        }
        if hook.is_setup() {
            std::fs::create_dir_all(&args.local_backup_directory).with_context(|| {
                format!(
                    "cannot create local_backup_directory {}",
                    args.local_backup_directory.display()
                )
            })?;
        }
        let inner = InnerPlugin::new(&config)?;
        let dir = args.local_backup_directory.to_string_lossy();
        let said = inner.forward(Forwarded::Hook {
            hook,
            local_backup_directory: &dir,
            scope: &args.scope,
            content_id: args.content_id.as_deref(),
        })?;
        said.log(log);
        Ok(())
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
    call("delete_backup", timestamp, |log| {
        check_timestamp(timestamp)?;
        forward(config_path, Forwarded::DeleteBackup { timestamp }, log)
    })
}

/// delete_directory: the inner plugins' own management command, forwarded.
pub fn delete_directory(config_path: &Path, directory: &str) -> Result<()> {
    call("delete_directory", directory, |log| {
        forward(config_path, Forwarded::DeleteDirectory { directory }, log)
    })
}

/// list_directory: the inner plugins' own management command, forwarded.
pub fn list_directory(config_path: &Path, directory: &str) -> Result<()> {
    call("list_directory", directory, |log| {
        forward(config_path, Forwarded::ListDirectory { directory }, log)
    })
}

fn forward(config_path: &Path, call: Forwarded, log: &mut CallLog) -> Result<()> {
    let config = PluginConfig::load(config_path)?;
    InnerPlugin::new(&config)?.forward(call)?.log(log);
    Ok(())
}
