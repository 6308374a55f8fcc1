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
    /// Operator: write a new age identity (private key) file and print its recipient.
    #[command(name = "keygen", long_about = KEYGEN_HELP)]
    Keygen(KeygenArgs),
    /// Operator: bring every object of backup sets to the config's current recipients.
    #[command(name = "rotate", long_about = ROTATE_HELP, after_long_help = ROTATE_DETAILS)]
    Rotate(RotateArgs),
    /// Operator: check every object of backup sets end to end, writing no plaintext.
    #[command(name = "verify", long_about = VERIFY_HELP)]
    Verify(VerifyArgs),
    /// Operator: show what a stored object says about itself (more with a key).
    #[command(name = "inspect", long_about = INSPECT_HELP)]
    Inspect(InspectArgs),
}

const KEYGEN_HELP: &str = "\
Writes a new age X25519 identity (private key) to IDENTITY_FILE in the format of \
age-keygen (`# created:`, `# public key:` and the AGE-SECRET-KEY-1... line), and prints \
its recipient (public key, age1...) on stdout.

The file is created with mode 0600 and never overwrites anything: if IDENTITY_FILE \
exists, keygen fails. Put the printed recipient in the plugin config (recipients or \
recipients_file) on backup hosts; keep the identity file on restore hosts only, plus an \
offline copy. keys/README.md has the whole key-management guide.

--pq makes a hybrid post-quantum key instead (ML-KEM-768 + X25519, as `age-keygen -pq` \
of age 1.3 does): AGE-SECRET-KEY-PQ-1... and a recipient age1pq1... of about 2000 \
characters. Objects encrypted to it resist a future quantum computer; one object is \
never encrypted to post-quantum and classic recipients at once.";

const ROTATE_HELP: &str = "\
Re-wraps every object of each backup set (named by its timestamp) for the recipients the \
config names now (recipients / recipients_file): each object's file key is unwrapped \
with the identity_file keyring (or --identity) and wrapped again in a new age header; \
the encrypted data is copied unchanged.

Example: with the new recipient in the restore config and both identities in its \
identity_file (new first), re-wrap two backup sets, then check that the new key alone opens them:

  gpbackup_age_plugin rotate /etc/gpbackup_age/restore.yaml 20250101010101 20250108010101
  gpbackup_age_plugin verify /etc/gpbackup_age/restore.yaml 20250101010101 20250108010101 \\
      --identity /secure/age/new.txt

Add --streaming with an inner plugin that replaces objects atomically \
(gpbackup_s3_plugin). Re-running the same command finishes an interrupted rotation. \
The whole procedure: docs/KEY-ROTATION.md. What rotate guarantees follows the options.";

/// The details of `rotate --help`, printed after the usage and the options so that
/// those stay on the first screen.
const ROTATE_DETAILS: &str = "\
What rotate guarantees, in detail:

Finding the objects. Inner plugins cannot list, so the set is derived from gpbackup's \
own metadata, read through the inner plugin: gpbackup_<ts>_config.yaml (segmentcount, \
singledatafile, compressiontype, withstatistics) and gpbackup_<ts>_toc.yaml (the oids of \
the tables whose data was written) name every file of the coordinator and every data \
file and TOC of every segment. Objects are addressed as \
/gpbackup_age_plugin_admin/backups/<YYYYMMDD>/<ts>/<basename>; inner plugins key objects \
on the last components of a path, so this reaches what gpbackup stored from any \
segment directory.

Re-wrapping (default): the object's file key is wrapped for the new recipients in a \
new age header with a new header MAC, and every byte after the header is copied \
unchanged. The result is a standard age file that stock `age -d` opens with a new key \
and no longer with a retired one. --reencrypt instead decrypts and re-encrypts each \
object under a fresh file key, for when a file key itself may have leaked; the \
plaintext only passes through memory.

Safety. Plaintext is never written anywhere. Before an object is replaced, the copy \
that will replace it is checked: the header must open with the keyring (header MAC), \
and the payload's first chunk and its final chunk must authenticate, the final one \
sealed as last and ending exactly where the copy ends, so a cut-short, padded or \
mismatched download never replaces an object. --check-payload authenticates every \
chunk instead (one decryption pass); `verify` checks everything afterwards.

Staged mode (default) works with ANY inner plugin, including one that overwrites in \
place non-atomically (a plain `cat > object`): the current ciphertext is first copied \
to a file (mode 0600) under --work-dir, checked and synced to disk, and only then is \
the object overwritten. If the overwrite fails, the staged copy is uploaded again; if \
that fails too, the copy is kept, named in the error, and the next run uploads it when \
the stored object no longer reads. So every object exists intact in storage or in \
--work-dir at all times, even if rotate is killed. It needs free space under \
--work-dir for --parallel objects at a time (twice that with --reencrypt) and costs \
about a download plus an upload per object.

--streaming stages nothing: each object is piped from restore_data straight into \
backup_data of the same object, and the inner plugin is killed (so it commits nothing) \
unless the check passed. Use it ONLY with an inner plugin that replaces an object \
atomically, i.e. makes the new object visible only once it is complete: \
gpbackup_s3_plugin (S3 uploads commit on completion), examples/local_plugin.sh without \
naive_overwrite. It costs about as much as copying the object through the inner \
plugin. On SIGTERM, SIGINT or SIGHUP the inner plugin is killed first and commits \
nothing; only if rotate itself is SIGKILLed (or the host fails) mid-object can an inner \
plugin that commits whatever it read at end of input (gpbackup_s3_plugin does) keep a \
cut-short object: `verify` finds it, and the backup's other copies are its remedy. \
Staged mode has no such window.

Re-runs. Each object replaced is recorded in a journal under --work-dir (the SHA-256 of \
the header written and the key ids of its recipients; nothing secret). A re-run reads \
only the header of each object and skips those the journal shows were written for the \
same recipients; anything else is rotated again, which needs the keyring to open it: \
keep the new identity in identity_file until the rotation is complete. --force ignores \
the journal; --reencrypt never skips. Use the same --work-dir for a re-run.

Output. A summary per timestamp on stdout, in lines of at most 100 columns (objects \
rotated, already done, failed; bytes read; the key ids of the new recipients: the \
first 8 hex digits of the SHA-256 of each recipient string). One line on stderr per \
failed object, naming it and the cause. Exit status non-zero if any object failed. A \
progress bar (objects done, bytes read) when stderr is a terminal. Each object also \
gets a line in the call log.";

const VERIFY_HELP: &str = "\
For each backup set named by its timestamp, reads every object through the inner plugin \
and checks it end to end, as a restore would: the age header opens with the keyring, \
every payload chunk authenticates, the object format is intact, the object carries its \
own name (it was not swapped under another name), and the restored length and SHA-256 \
match what was recorded at backup. Nothing is written anywhere.

The set's objects are found from gpbackup's config.yaml and toc.yaml, as for rotate. \
--identity FILE (repeatable) replaces the config's identity_file keyring for the \
check, which answers \"is every object of this backup readable with this key?\"; the \
set's config.yaml and toc.yaml may still be read with the config's keyring to find \
the objects, so a key that opens nothing gets one failure line per object.

Prints one line on stderr per failed object, naming it and the reason, and a summary \
per timestamp on stdout (lines of at most 100 columns) with the key ids that opened \
the objects. Exit status is non-zero if any object failed.";

const INSPECT_HELP: &str = "\
Prints what a stored object (a file copied from storage) says about itself, as \
`key: value` lines. Without a key: the age format version, header size, payload and \
total size, the number and kinds of recipient stanzas, and whether the object is \
post-quantum (every stanza hybrid ML-KEM-768 + X25519). With --identity: also the \
name it was stored under, the original length and SHA-256, its frames (count, size, \
compressed or stored) and whether it verifies end to end. Writes no plaintext.";

/// Arguments of `keygen`.
#[derive(clap::Args, Debug, Clone)]
pub struct KeygenArgs {
    /// The identity file to create (must not exist).
    pub identity_file: PathBuf,
    /// Make a hybrid post-quantum key (ML-KEM-768 + X25519, age1pq1...), as `age-keygen -pq`.
    #[arg(long)]
    pub pq: bool,
}

/// Arguments of `rotate`.
#[derive(clap::Args, Debug, Clone)]
pub struct RotateArgs {
    /// The restore config: the new recipients and an identity_file keyring that opens the objects.
    pub config_path: PathBuf,
    /// The backup timestamps (YYYYMMDDHHMMSS), one or more.
    #[arg(required = true)]
    pub timestamps: Vec<String>,
    /// Decrypt and re-encrypt every object under a fresh file key instead of re-wrapping.
    #[arg(long)]
    pub reencrypt: bool,
    /// Objects processed at the same time.
    #[arg(long, value_name = "N", default_value_t = 4, allow_negative_numbers = true, value_parser = number_between::<1, 64>)]
    pub parallel: u16,
    /// Pipe objects straight back without staging: ONLY for inner plugins that replace objects atomically.
    #[arg(long)]
    pub streaming: bool,
    /// Where staged copies and the journal live (default: $TMPDIR or /tmp); re-runs must use the same one.
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// Identity file to unwrap with, instead of the config's identity_file (repeatable).
    #[arg(long = "identity", value_name = "FILE")]
    pub identities: Vec<PathBuf>,
    /// Authenticate every payload chunk before replacing an object, not just the first and last (one decryption pass).
    #[arg(long)]
    pub check_payload: bool,
    /// Rotate every object again, ignoring the journal of earlier runs.
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `verify`.
#[derive(clap::Args, Debug, Clone)]
pub struct VerifyArgs {
    /// The restore config (its identity_file keyring opens the objects, unless --identity is given).
    pub config_path: PathBuf,
    /// The backup timestamps (YYYYMMDDHHMMSS), one or more.
    #[arg(required = true)]
    pub timestamps: Vec<String>,
    /// Identity file to open the objects with, instead of the config's identity_file (repeatable).
    #[arg(long = "identity", value_name = "FILE")]
    pub identities: Vec<PathBuf>,
    /// Objects checked at the same time.
    #[arg(long, value_name = "N", default_value_t = 4, allow_negative_numbers = true, value_parser = number_between::<1, 64>)]
    pub parallel: u16,
}

/// Arguments of `inspect`.
#[derive(clap::Args, Debug, Clone)]
pub struct InspectArgs {
    /// A stored object (as the inner plugin keeps it: an age file).
    pub object_file: PathBuf,
    /// Identity file to open the object with (repeatable).
    #[arg(long = "identity", value_name = "FILE")]
    pub identities: Vec<PathBuf>,
}

/// A clap value parser for a whole number from `LO` to `HI`, whose message says so in
/// words (clap's own range check prints Rust's `1..=64`).
fn number_between<const LO: u16, const HI: u16>(value: &str) -> Result<u16, String> {
    match value.trim().parse::<u16>() {
        Ok(n) if (LO..=HI).contains(&n) => Ok(n),
        _ => Err(format!("must be a whole number between {LO} and {HI}")),
    }
}

/// The command whose `--help` answers a usage error: `gpbackup_age_plugin rotate` for an
/// error in `rotate`'s arguments, `gpbackup_age_plugin` otherwise. Read from the usage
/// line clap renders (`Usage: gpbackup_age_plugin rotate [OPTIONS] <CONFIG_PATH> ...`).
pub fn help_command(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let words: Vec<&str> = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Usage: "))
        .map(|usage| {
            usage
                .split_whitespace()
                .take_while(|w| !w.starts_with(['[', '<', '-']))
                .collect()
        })
        .unwrap_or_default();
    match words.as_slice() {
        [_, sub, ..] => format!("gpbackup_age_plugin {sub}"),
        _ => "gpbackup_age_plugin".to_string(),
    }
}

impl Cli {
    /// Parses our arguments. The data commands gpbackup runs once per table and segment
    /// (`backup_data`, `restore_data`, `restore_data_subset`, `backup_file`,
    /// `restore_file`) are recognised directly when they come exactly as gpbackup sends
    /// them: building clap's whole command tree costs a measurable share of a small
    /// call. Anything else, including every malformed call, goes through clap.
    pub fn parse_args() -> Result<Cli, clap::Error> {
        let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
        match Cli::data_command(&args) {
            Some(command) => Ok(Cli {
                version: false,
                command: Some(command),
            }),
            None => Cli::try_parse_from(args),
        }
    }

    /// The fast path of [`Cli::parse_args`]: the same `Command` clap would build, or
    /// `None` to leave the call to clap.
    pub fn data_command(args: &[std::ffi::OsString]) -> Option<Command> {
        let text = |i: usize| -> Option<String> {
            let s = args.get(i)?.to_str()?;
            (!s.starts_with('-')).then(|| s.to_string())
        };
        let path = |i: usize| text(i).map(PathBuf::from);
        let command = match (text(1)?.as_str(), args.len()) {
            ("backup_data", 4) => Command::BackupData {
                config_path: path(2)?,
                data_filekey: text(3)?,
            },
            ("restore_data", 4) => Command::RestoreData {
                config_path: path(2)?,
                data_filekey: text(3)?,
            },
            ("restore_data_subset", 5) => Command::RestoreDataSubset {
                config_path: path(2)?,
                data_filekey: text(3)?,
                offsets_file: path(4)?,
            },
            ("backup_file", 4) => Command::BackupFile {
                config_path: path(2)?,
                filepath: path(3)?,
            },
            ("restore_file", 4) => Command::RestoreFile {
                config_path: path(2)?,
                filepath: path(3)?,
            },
            _ => return None,
        };
        Some(command)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_flags_say_their_range_in_words() {
        for bad in ["0", "65", "-1", "four", "1.5", ""] {
            let args = ["p", "verify", "c.yaml", "20250101010101", "--parallel", bad];
            let text = Cli::try_parse_from(args).unwrap_err().to_string();
            assert!(text.contains("between 1 and 64"), "{bad}: {text}");
            assert!(!text.contains("..="), "{bad}: {text}");
        }
        let ok = Cli::try_parse_from([
            "p",
            "rotate",
            "c.yaml",
            "20250101010101",
            "--parallel",
            "64",
        ]);
        assert!(ok.is_ok());
    }

    /// A usage error points to the `--help` of the subcommand it is about.
    #[test]
    fn usage_errors_name_the_subcommand_help() {
        let help = |args: &[&str]| help_command(&Cli::try_parse_from(args).unwrap_err());
        assert_eq!(
            help(&["p", "rotate", "c.yaml"]),
            "gpbackup_age_plugin rotate"
        );
        assert_eq!(help(&["p", "inspect"]), "gpbackup_age_plugin inspect");
        assert_eq!(
            help(&["p", "verify", "c.yaml", "1", "--bogus"]),
            "gpbackup_age_plugin verify"
        );
        assert_eq!(help(&["p", "no_such_command"]), "gpbackup_age_plugin");
    }

    /// The fast path builds exactly what clap builds, and declines what it cannot.
    #[test]
    fn data_command_agrees_with_clap() {
        let cases: &[&[&str]] = &[
            &[
                "p",
                "backup_data",
                "/c.yaml",
                "/d/gpbackup_0_20261127000000_17",
            ],
            &["p", "restore_data", "c.yaml", "key"],
            &["p", "restore_data_subset", "c.yaml", "key", "/tmp/offsets"],
            &[
                "p",
                "backup_file",
                "c.yaml",
                "/d/gpbackup_20261127000000_toc.yaml",
            ],
            &["p", "restore_file", "c.yaml", "/d/f"],
        ];
        for case in cases {
            let args: Vec<std::ffi::OsString> = case.iter().map(Into::into).collect();
            let fast = Cli::data_command(&args).expect("fast path");
            let clap = Cli::try_parse_from(&args).unwrap().command.unwrap();
            assert_eq!(format!("{fast:?}"), format!("{clap:?}"), "{case:?}");
        }
        let declined: &[&[&str]] = &[
            &["p"],
            &["p", "backup_data", "c.yaml"],
            &["p", "backup_data", "c.yaml", "key", "extra"],
            &["p", "backup_data", "--help", "key"],
            &["p", "restore_data", "c.yaml", "-k"],
            &["p", "--version"],
            &["p", "plugin_api_version"],
            &["p", "delete_backup", "c.yaml", "20261127000000"],
            &["p", "backup-data", "c.yaml", "key"],
        ];
        for case in declined {
            let args: Vec<std::ffi::OsString> = case.iter().map(Into::into).collect();
            assert!(Cli::data_command(&args).is_none(), "{case:?}");
        }
    }
}
