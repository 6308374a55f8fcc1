//! The command layer: each plugin API command as gpbackup calls it.

mod feeder;
mod forward;
mod transfer;

use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use crate::cli::{Cli, Command, API_VERSION, VERSION_LINE};
use crate::inner::Hook;

/// Runs one parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    crate::keys::plugin::turn_off_protocol_trace();
    if cli.version {
        println!("{VERSION_LINE}");
        return Ok(());
    }
    let Some(command) = cli.command else {
        bail!("no command given; run gpbackup_age_plugin --help");
    };
    match command {
        Command::PluginApiVersion => {
            println!("{API_VERSION}");
            Ok(())
        }
        Command::SetupPluginForBackup(a) => forward::hook(Hook::SetupForBackup, &a),
        Command::SetupPluginForRestore(a) => forward::hook(Hook::SetupForRestore, &a),
        Command::CleanupPluginForBackup(a) => forward::hook(Hook::CleanupForBackup, &a),
        Command::CleanupPluginForRestore(a) => forward::hook(Hook::CleanupForRestore, &a),
        Command::BackupFile {
            config_path,
            filepath,
        } => transfer::backup_file(&config_path, &filepath),
        Command::RestoreFile {
            config_path,
            filepath,
        } => transfer::restore_file(&config_path, &filepath),
        Command::BackupData {
            config_path,
            data_filekey,
        } => transfer::backup_data(&config_path, &data_filekey),
        Command::RestoreData {
            config_path,
            data_filekey,
        } => transfer::restore_data(&config_path, &data_filekey, None),
        Command::RestoreDataSubset {
            config_path,
            data_filekey,
            offsets_file,
        } => transfer::restore_data(&config_path, &data_filekey, Some(&offsets_file)),
        Command::DeleteBackup {
            config_path,
            timestamp,
        } => forward::delete_backup(&config_path, &timestamp),
        Command::DeleteDirectory {
            config_path,
            directory,
        } => forward::delete_directory(&config_path, &directory),
        Command::ListDirectory {
            config_path,
            directory,
        } => forward::list_directory(&config_path, &directory),
        Command::Keygen(a) => crate::admin::keygen::keygen(&a),
        // Their per-object lines name the set and object; a failure before or after
        // the sweep is the command's own.
        Command::Rotate(a) => crate::admin::rotate::rotate(&a).context("rotate"),
        Command::Verify(a) => crate::admin::verify::verify(&a).context("verify"),
        Command::Inspect(a) => crate::admin::inspect::inspect(&a),
    }
}

/// Runs one plugin call with its call-log line, and gives its error the one shape every
/// command's error line has: `<command> <object>: <cause>` (the object is the
/// data_filekey, the file, or the hook's scope and content ID).
pub(crate) fn call<T>(
    command: &str,
    object: &str,
    body: impl FnOnce(&mut crate::log::CallLog) -> Result<T>,
) -> Result<T> {
    crate::log::logged(command, object, body).with_context(|| format!("{command} {object}"))
}

/// Reports a command line clap refused, in one line. Help goes to stdout as usual.
pub fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        // No command at all: a caller that does nothing useful must not look successful.
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            eprintln!("gpbackup_age_plugin: no command given; run gpbackup_age_plugin --help");
            return ExitCode::from(2);
        }
        _ => {}
    }
    // The message is the first paragraph (for a missing argument, its names follow on
    // the next lines), folded onto one line.
    let text = e.render().to_string();
    let first = crate::message::one_line(text.split("\n\n").next().unwrap_or(""));
    let first = first.strip_prefix("error: ").unwrap_or(&first);
    let first = if first.is_empty() {
        "invalid command line"
    } else {
        first
    };
    let hint = match e.kind() {
        ErrorKind::InvalidSubcommand => {
            " (not a plugin API command; unknown commands are never forwarded to the inner plugin, since one that moves data would bypass encryption)"
        }
        _ => "",
    };
    let help = crate::cli::help_command(&e);
    eprintln!("gpbackup_age_plugin: {first}{hint}; run {help} --help");
    ExitCode::from(2)
}
