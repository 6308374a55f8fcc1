//! Every command and argument of the binary, in one place.
//!
//! The plugin API commands are named and ordered exactly as gpbackup calls them
//! (`<plugin> <command> <config_path> args…`); the operator subcommands sit beside them.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// The version gpbackup records: `--version` must print exactly three words.
pub const VERSION_LINE: &str = concat!("gpbackup_age_plugin version ", env!("CARGO_PKG_VERSION"));
/// The plugin API version we implement.
pub const API_VERSION: &str = "0.5.0";

#[derive(Parser, Debug)]
#[command(
    name = "gpbackup_age_plugin",
    about = "A gpbackup/gprestore storage plugin that compresses (zstd) and encrypts (age) every object, then hands only ciphertext to the storage plugin named by inner_executablepath.",
    disable_version_flag = true,
    arg_required_else_help = true
)]
pub struct Cli {
    /// Print `gpbackup_age_plugin version <semver>` (the form gpbackup expects).
    #[arg(long)]
    pub version: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Arguments of the four setup and cleanup hooks.
#[derive(clap::Args, Debug, Clone)]
pub struct HookArgs {
    pub config_path: PathBuf,
    pub local_backup_directory: PathBuf,
    /// coordinator (or master), segment_host or segment.
    pub scope: String,
    /// The content ID, as gpbackup sends it (with literal quotes: "-1"); absent for
    /// segment_host.
    #[arg(allow_hyphen_values = true)]
    pub content_id: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the plugin API version (0.5.0).
    #[command(name = "plugin_api_version")]
    PluginApiVersion,
    /// Check our config and recipients, create the local backup directory, forward.
    #[command(name = "setup_plugin_for_backup")]
    SetupPluginForBackup(HookArgs),
    /// Check our config and that the identities load, create the directory, forward.
    #[command(name = "setup_plugin_for_restore")]
    SetupPluginForRestore(HookArgs),
    /// Forward to the inner plugin.
    #[command(name = "cleanup_plugin_for_backup")]
    CleanupPluginForBackup(HookArgs),
    /// Forward to the inner plugin.
    #[command(name = "cleanup_plugin_for_restore")]
    CleanupPluginForRestore(HookArgs),
    /// Encrypt a local file and store it through the inner plugin; the file is untouched.
    #[command(name = "backup_file")]
    BackupFile {
        config_path: PathBuf,
        filepath: PathBuf,
    },
    /// Fetch, decrypt and verify a file, and leave it at the path.
    #[command(name = "restore_file")]
    RestoreFile {
        config_path: PathBuf,
        filepath: PathBuf,
    },
    /// Compress and encrypt stdin into the inner plugin's backup_data.
    #[command(name = "backup_data")]
    BackupData {
        config_path: PathBuf,
        data_filekey: String,
    },
    /// Decrypt, verify and decompress an object to stdout.
    #[command(name = "restore_data")]
    RestoreData {
        config_path: PathBuf,
        data_filekey: String,
    },
    /// Write the byte ranges of the offsets file (`N s1 e1 …`) of the original to stdout.
    #[command(name = "restore_data_subset")]
    RestoreDataSubset {
        config_path: PathBuf,
        data_filekey: String,
        offsets_file: PathBuf,
    },
    /// Delete the backup with this timestamp (forwarded).
    #[command(name = "delete_backup")]
    DeleteBackup {
        config_path: PathBuf,
        timestamp: String,
    },
    /// Inner plugins' management command (forwarded).
    #[command(name = "delete_directory")]
    DeleteDirectory {
        config_path: PathBuf,
        directory: String,
    },
    /// Inner plugins' management command (forwarded).
    #[command(name = "list_directory")]
    ListDirectory {
        config_path: PathBuf,
        directory: String,
    },
}
