//! The plugin config: the yaml file gpbackup hands to every call.
//!
//! gpbackup parses it as `executablepath: string` and `options: map[string]string`, so
//! every option is a flat scalar. The options split in two: ours (listed in
//! [`OWN_OPTIONS`]) and everything else, which belongs to the inner plugin and is passed
//! to it unchanged in the config we write for it (see `inner::InnerConfig`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

pub use crate::compression::{Compression, ZstdLevel};
use crate::message::io_reason;

mod yaml;

/// Options this plugin reads; none of them is forwarded to the inner plugin.
pub const OWN_OPTIONS: &[&str] = &[
    "inner_executablepath",
    "recipients",
    "recipients_file",
    "identity_file",
    "compression",
    "compression_level",
    "workers",
    "max_memory_mib",
    "restore_subset",
    "allow_plaintext_restore",
    "stall_timeout_seconds",
    "restore_check_sha256",
];

/// Options gpbackup itself adds that describe *this* plugin, so they are consumed here
/// rather than forwarded: `backup_plugin_version` is the version of the plugin named in
/// `executablepath` when the backup was taken, i.e. ours, not the inner plugin's.
const GPBACKUP_OWN_OPTIONS: &[&str] = &["backup_plugin_version"];

/// A validated plugin config.
#[derive(Debug, Clone)]
pub struct PluginConfig {
    pub path: PathBuf,
    pub inner_executable: PathBuf,
    pub recipients: Option<String>,
    pub recipients_file: Option<PathBuf>,
    pub identity_files: Vec<PathBuf>,
    pub compression: Compression,
    /// Worker threads for compression and decompression; 0 means one per CPU this
    /// process may use, up to `pipeline::DEFAULT_WORKERS_CAP`.
    pub workers: usize,
    /// Bytes one call plans its frames in flight and worker contexts within (see
    /// `pipeline::Plan`): the bound on its memory, whatever `workers` says.
    pub max_memory: usize,
    pub allow_plaintext_restore: bool,
    /// Restores check the SHA-256 of the original even of objects whose frames carry
    /// zstd content checksums (`pipeline::DecodeOptions::check_sha256`).
    pub restore_check_sha256: bool,
    /// A call whose inner plugin moves no byte for this long fails (None: wait forever).
    pub stall_timeout: Option<Duration>,
    /// The inner plugin's options, unchanged.
    pub passthrough: BTreeMap<String, String>,
}

impl PluginConfig {
    /// Reads and validates the config at `path`: UTF-8 with or without a byte-order
    /// mark, or UTF-16 with one, as gpbackup's parser reads it (see the crate's `text` module).
    pub fn load(path: &Path) -> Result<PluginConfig> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read plugin config {}", path.display()))?;
        let text = crate::text::decode(&bytes)
            .map_err(|e| anyhow!("plugin config {} {e}", path.display()))?;
        Self::parse(&text, path)
    }

    /// Validates config text; `path` is only used in messages and to find the config.
    pub fn parse(text: &str, path: &Path) -> Result<PluginConfig> {
        let where_ = path.display();
        let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
        let document = yaml::read(text, path)?;
        let mut options = BTreeMap::new();
        for (key, value) in document.options {
            let value = match value {
                Some(value) => value,
                // gpbackup reads `key:` with nothing after it as an empty string and
                // passes it on; for one of our own options it is a mistake.
                None if OWN_OPTIONS.contains(&key.as_str()) => {
                    bail!("plugin config {where_}: option {key} has no value")
                }
                None => String::new(),
            };
            if OWN_OPTIONS.contains(&key.as_str()) {
                yaml::refuse_invisible(text, path, &key, &value)?;
            }
            options.insert(key, value);
        }
        check_unknown_own_keys(&options, path)?;
        for key in ["identity_file", "recipients_file", "inner_executablepath"] {
            if let Some(value) = options.get(key) {
                refuse_inline_secret(key, value)?;
            }
        }
        let mut take = |key: &str| options.remove(key);

        let inner = take("inner_executablepath").ok_or_else(|| {
            anyhow!("plugin config {where_}: option inner_executablepath is missing (the storage plugin to wrap, e.g. $GPHOME/bin/gpbackup_s3_plugin)")
        })?;
        let inner_executable = absolute_path(&inner, "inner_executablepath")?;
        let recipients = take("recipients").filter(|s| !s.trim().is_empty());
        let recipients_file = take("recipients_file")
            .filter(|s| !s.trim().is_empty())
            .map(|p| absolute_path(&p, "recipients_file"))
            .transpose()?;
        let identity_files = match take("identity_file") {
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|p| absolute_path(p, "identity_file"))
                .collect::<Result<Vec<_>>>()?,
            None => Vec::new(),
        };
        let compression = Compression::from_options(
            take("compression").as_deref(),
            take("compression_level").as_deref(),
        )?;
        let workers = match take("workers") {
            Some(v) => {
                let n: usize = v
                    .trim()
                    .parse()
                    .map_err(|_| anyhow!("option workers: '{v}' is not a number (1 to 256)"))?;
                if !(1..=256).contains(&n) {
                    bail!("option workers: {n} is out of range (1 to 256)");
                }
                n
            }
            // One per usable CPU up to a cap, found out only when a stream is large
            // enough to use them (see pipeline::resolve_workers): most calls never
            // need to know.
            None => 0,
        };
        let max_memory = match take("max_memory_mib") {
            Some(v) => {
                let mib: usize = v.trim().parse().map_err(|_| {
                    anyhow!(
                        "option max_memory_mib: '{v}' is not a whole number of MiB (32 to 65536)"
                    )
                })?;
                if !(32..=65536).contains(&mib) {
                    bail!("option max_memory_mib: {mib} is out of range (32 to 65536)");
                }
                mib << 20
            }
            None => crate::pipeline::DEFAULT_MAX_MEMORY,
        };
        let allow_plaintext_restore =
            parse_switch(take("allow_plaintext_restore"), "allow_plaintext_restore")?;
        let restore_check_sha256 =
            parse_switch(take("restore_check_sha256"), "restore_check_sha256")?;
        // gpbackup reads restore_subset itself; we only check that it is a switch.
        parse_switch(take("restore_subset"), "restore_subset")?;
        let stall_timeout = match take("stall_timeout_seconds") {
            Some(v) => {
                let secs: u64 = v.trim().parse().map_err(|_| {
                    anyhow!("option stall_timeout_seconds: '{v}' is not a whole number of seconds (0 = off)")
                })?;
                (secs > 0).then(|| Duration::from_secs(secs))
            }
            None => None,
        };
        for key in GPBACKUP_OWN_OPTIONS {
            options.remove(*key);
        }

        let config = PluginConfig {
            path: path.to_path_buf(),
            inner_executable,
            recipients,
            recipients_file,
            identity_files,
            compression,
            workers,
            max_memory,
            allow_plaintext_restore,
            restore_check_sha256,
            stall_timeout,
            passthrough: options,
        };
        config.check_inner_executable()?;
        Ok(config)
    }

    fn check_inner_executable(&self) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let inner = &self.inner_executable;
        let meta = std::fs::metadata(inner).map_err(|e| {
            anyhow!(
                "option inner_executablepath: {}: {}",
                inner.display(),
                io_reason(&e)
            )
        })?;
        if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
            bail!(
                "option inner_executablepath: {} is not an executable file",
                inner.display()
            );
        }
        // The same file as our executable (by device and inode: a symlink or a hard
        // link to us is us too).
        use std::os::unix::fs::MetadataExt;
        let is_us = std::fs::metadata("/proc/self/exe")
            .is_ok_and(|ours| ours.dev() == meta.dev() && ours.ino() == meta.ino());
        if is_us {
            bail!(
                "option inner_executablepath: {} is this plugin itself; name the storage plugin to wrap (e.g. gpbackup_s3_plugin)",
                inner.display()
            );
        }
        Ok(())
    }
}

/// `"on"`/`"off"` (and the usual spellings of yes and no).
fn parse_switch(value: Option<String>, key: &str) -> Result<bool> {
    match value.as_deref().map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(false),
        Some(v) => match v.as_str() {
            "on" | "true" | "yes" | "1" => Ok(true),
            "off" | "false" | "no" | "0" | "" => Ok(false),
            _ => bail!("option {key}: '{v}' is not on or off"),
        },
    }
}

/// A path option's value (the inner plugin, the key files): environment variables
/// (`$HOME`, `${HOME}`) expanded, and absolute, because gpbackup and gprestore run
/// plugins from directories other than the one a rehearsal ran in. `~` is a shell's
/// expansion, not ours: named, not guessed.
fn absolute_path(value: &str, key: &str) -> Result<PathBuf> {
    if value.starts_with('~') {
        bail!(
            "option {key}: '{value}' starts with ~, which is not expanded here; write $HOME/... or an absolute path"
        );
    }
    let path = PathBuf::from(expand_env(value, key)?);
    if !path.is_absolute() {
        bail!(
            "option {key}: '{}' is not an absolute path (gpbackup runs plugins from other directories); write an absolute path or one starting with $HOME",
            path.display()
        );
    }
    Ok(path)
}

/// A private key pasted where a path belongs would otherwise be echoed by every error
/// about that path ("cannot read AGE-SECRET-KEY-1…"), on stderr and in the call log.
fn refuse_inline_secret(key: &str, value: &str) -> Result<()> {
    let upper = value.to_ascii_uppercase();
    if upper.contains("AGE-PLUGIN-") {
        bail!(
            "option {key} holds an age plugin identity itself, not the path of a file (the value is not shown); write the AGE-PLUGIN-… line to a file readable only by its owner (chmod 600) and give that file's path"
        );
    }
    if upper.contains("AGE-SECRET-KEY-") || upper.contains("-----BEGIN") {
        bail!(
            "option {key} holds a private key itself, not the path of a file (the value is not shown); write the key to a file readable only by its owner (chmod 600) and give that file's path"
        );
    }
    Ok(())
}

/// Refuses an option name that is a near miss of one of ours: forwarding `recipient:`
/// to the inner plugin would otherwise silently mean "no recipients". Only true near
/// misses count, never a name a storage plugin uses: every option of
/// gpbackup_s3_plugin and of the DD Boost plugin passes (see the tests).
fn check_unknown_own_keys(options: &BTreeMap<String, String>, path: &Path) -> Result<()> {
    for key in options.keys() {
        if OWN_OPTIONS.contains(&key.as_str()) || GPBACKUP_OWN_OPTIONS.contains(&key.as_str()) {
            continue;
        }
        if let Some(own) = near_miss(key) {
            bail!(
                "plugin config {}: option {key} is not an option of gpbackup_age_plugin; did you mean {own}? (it would otherwise be passed to the inner plugin)",
                path.display()
            );
        }
    }
    Ok(())
}

/// The option of ours that `key` is a near miss of, if any: the same name in another
/// case or with other separators (`Recipients`, `inner_executable_path`), with an
/// `age_` prefix (`age_recipients`), a few letters off (`recipient`, `compresion`;
/// one letter for short names, three for long ones), or cut short to no less than
/// 8 letters and 60% of it (`identity`, `stall_timeout`). The closest one wins.
pub(crate) fn near_miss(key: &str) -> Option<&'static str> {
    let squashed = squash(key);
    let candidates = [
        Some(squashed.as_str()),
        squashed.strip_prefix("age"),
        squashed.strip_prefix("gpbackupageplugin"),
    ];
    let mut best: Option<(usize, &'static str)> = None;
    for candidate in candidates.into_iter().flatten().filter(|c| !c.is_empty()) {
        for own in OWN_OPTIONS {
            let target = squash(own);
            let allowed = match target.len() {
                n if n >= 15 => 3,
                n if n >= 8 => 2,
                _ => 1,
            };
            let cut_short = candidate.len() >= 8
                && target.starts_with(candidate)
                && candidate.len() * 10 >= target.len() * 6;
            // The distance is at least the difference in length: most names are far.
            if !cut_short && candidate.len().abs_diff(target.len()) > allowed {
                continue;
            }
            let distance = edit_distance(candidate, &target);
            if (distance <= allowed || cut_short) && best.is_none_or(|(d, _)| distance < d) {
                best = Some((distance, own));
            }
        }
    }
    best.map(|(_, own)| own)
}

/// An option name without case and separators: `Inner-Executable_Path` and
/// `innerexecutablepath` are the same name.
fn squash(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '_' | '-' | '.' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Levenshtein distance, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Expands `$VAR` and `${VAR}` as gpbackup does for `executablepath`, but refuses an
/// unset variable instead of silently dropping it.
pub(crate) fn expand_env(value: &str, key: &str) -> Result<String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
            let end = braced
                .find('}')
                .ok_or_else(|| anyhow!("option {key}: unclosed ${{ in '{value}'"))?;
            (&braced[..end], end + 2)
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        if name.is_empty() {
            out.push('$');
        } else {
            let val = std::env::var(name).map_err(|_| {
                anyhow!("option {key}: environment variable {name} is not set (in '{value}')")
            })?;
            out.push_str(&val);
        }
        rest = &after[consumed..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance() {
        assert_eq!(edit_distance("recipient", "recipients"), 1);
        assert_eq!(edit_distance("bucket", "workers"), 5);
    }

    #[test]
    fn near_misses_of_our_names_and_only_those() {
        for (key, own) in [
            ("recipient", "recipients"),
            ("Recipients", "recipients"),
            ("age_recipients", "recipients"),
            ("recipients_fille", "recipients_file"),
            ("identity", "identity_file"),
            ("identity_files", "identity_file"),
            ("inner_executable_path", "inner_executablepath"),
            ("inner-executablepath", "inner_executablepath"),
            ("inner_executable", "inner_executablepath"),
            ("compresion_level", "compression_level"),
            ("compresion", "compression"),
            ("compression_lvl", "compression_level"),
            ("stall_timeout", "stall_timeout_seconds"),
            ("worker", "workers"),
            ("allow_plaintext", "allow_plaintext_restore"),
        ] {
            assert_eq!(near_miss(key), Some(own), "{key}");
        }
        // Names storage plugins use (more in tests/field_config.rs), and the option
        // gpbackup adds under our own plugin name when DD Boost passwords are encrypted.
        for key in [
            "storage_unit",
            "storage_class",
            "page_size",
            "package_name",
            "encryption",
            "region",
            "folder",
            "directory",
            "remote_directory",
            "restore_multipart_chunksize",
            "gpbackup_age_plugin",
            "pgport",
        ] {
            assert_eq!(near_miss(key), None, "{key}");
        }
    }

    #[test]
    fn env_expansion() {
        std::env::set_var("GPAGE_TEST_HOME", "/opt/gp");
        assert_eq!(
            expand_env("$GPAGE_TEST_HOME/bin/x", "k").unwrap(),
            "/opt/gp/bin/x"
        );
        assert_eq!(expand_env("${GPAGE_TEST_HOME}x", "k").unwrap(), "/opt/gpx");
        assert!(expand_env("$GPAGE_TEST_UNSET_VAR/x", "k").is_err());
    }
}
