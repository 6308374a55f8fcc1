//! The keyring: every identity of the files a command was given, which file each came
//! from and how to name it, what loading them noticed, and the one operation that opens
//! an object's header with them.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use age_core::format::FileKey;
use anyhow::{bail, Result};

use super::file::KeyFile;
use super::kinds::{parse_identity_file, IdentityKey};
use crate::age_file::{Header, HeaderError};
use crate::config::PluginConfig;

/// Where a keyring's files were named, for messages: the `identity_file` option of the
/// config, or the `--identity` flag of an operator command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrigin {
    IdentityFileOption,
    IdentityFlag,
}

impl KeyOrigin {
    /// "option identity_file" or "--identity".
    pub fn name(self) -> &'static str {
        match self {
            KeyOrigin::IdentityFileOption => "option identity_file",
            KeyOrigin::IdentityFlag => "--identity",
        }
    }
}

/// One identity of a keyring and the file it came from.
#[derive(Clone)]
pub struct KeyringEntry {
    key: Arc<IdentityKey>,
    file: Arc<Path>,
}

impl AsRef<dyn age::Identity> for KeyringEntry {
    fn as_ref(&self) -> &(dyn age::Identity + 'static) {
        self.key.as_ref().as_ref()
    }
}

/// The identities of a command's identity files, in file order (the current key and
/// retired ones: whichever matches opens an object). Built once per command and shared
/// by its threads; the keys zeroize themselves when the last copy is dropped.
#[derive(Clone)]
pub struct Keyring {
    entries: Vec<KeyringEntry>,
    files: Vec<PathBuf>,
    warnings: Vec<String>,
}

/// A header opened by a keyring: the file key, and which identity unwrapped it.
pub struct Opened {
    pub file_key: FileKey,
    /// The index of the identity in the keyring (see [`Keyring::label`]).
    pub identity: usize,
}

impl Opened {
    /// The file key as an identity, for reading the same object again: an identity's
    /// plugin (a token asking for a PIN or a touch) is not run a second time.
    pub fn reuse(&self) -> Unwrapped {
        use age_core::secrecy::ExposeSecret;
        Unwrapped(FileKey::new(Box::new(*self.file_key.expose_secret())))
    }
}

/// A file key already unwrapped (see [`Opened::reuse`]): it "unwraps" every header, and
/// the header MAC still decides whether it is the right one.
pub struct Unwrapped(FileKey);

impl age::Identity for Unwrapped {
    fn unwrap_stanza(
        &self,
        _: &age_core::format::Stanza,
    ) -> Option<Result<FileKey, age::DecryptError>> {
        use age_core::secrecy::ExposeSecret;
        Some(Ok(FileKey::new(Box::new(*self.0.expose_secret()))))
    }
}

impl AsRef<dyn age::Identity> for Unwrapped {
    fn as_ref(&self) -> &(dyn age::Identity + 'static) {
        self
    }
}

impl Keyring {
    /// The keyring of the config's `identity_file` option, as a restore uses it.
    pub fn from_config(config: &PluginConfig) -> Result<Keyring> {
        Keyring::load(&config.identity_files, KeyOrigin::IdentityFileOption)
    }

    /// The keyring of an operator command: its `--identity` files when it was given
    /// some, else the config's `identity_file`. A command with neither is told about
    /// `--identity` too.
    pub fn for_operator(config: &PluginConfig, identity_flags: &[PathBuf]) -> Result<Keyring> {
        match (identity_flags, &config.identity_files[..]) {
            ([], []) => Keyring::load(&[], KeyOrigin::IdentityFlag),
            ([], files) => Keyring::load(files, KeyOrigin::IdentityFileOption),
            (flags, _) => Keyring::load(flags, KeyOrigin::IdentityFlag),
        }
    }

    /// Loads every identity of every file in `paths`, in order; every message names the
    /// file by `origin`. A file readable by others, and what about a file stock age
    /// refuses although we read it, are warnings (see [`Keyring::warnings`]).
    pub fn load(paths: &[PathBuf], origin: KeyOrigin) -> Result<Keyring> {
        if paths.is_empty() {
            match origin {
                KeyOrigin::IdentityFileOption => bail!("no identity: set option identity_file to the age identity file that decrypts these backups (needed on restore hosts only)"),
                KeyOrigin::IdentityFlag => bail!("no identity: pass --identity FILE, the age identity file that decrypts these backups (or set option identity_file in the config)"),
            }
        }
        let mut keyring = Keyring {
            entries: Vec::new(),
            files: paths.to_vec(),
            warnings: Vec::new(),
        };
        for path in paths {
            let what = format!("{} {}", origin.name(), path.display());
            let file = KeyFile::read(path, &what)?;
            let mode = std::fs::metadata(path).map_or(0, |m| m.permissions().mode());
            if mode & 0o077 != 0 {
                keyring.warnings.push(format!(
                    "identity file {} is readable by group or others (mode {:o}); chmod 600 it",
                    path.display(),
                    mode & 0o777
                ));
            }
            let (keys, mut lenient) = parse_identity_file(file.text(), path, &what)?;
            if file.has_byte_order_mark() {
                lenient = Some("a byte-order mark");
            }
            if let Some(what_age_refuses) = lenient {
                keyring.warnings.push(format!(
                    "identity file {} has {what_age_refuses}, which this plugin ignores but stock `age -d -i` refuses; save it without, so it also works for recovery with stock tools",
                    path.display()
                ));
            }
            let file: Arc<Path> = Arc::from(path.as_path());
            keyring
                .entries
                .extend(keys.into_iter().map(|key| KeyringEntry {
                    key: Arc::new(key),
                    file: Arc::clone(&file),
                }));
        }
        Ok(keyring)
    }

    /// This keyring, then the identities of `other` from files this one does not have.
    pub fn with(&self, other: &Keyring) -> Keyring {
        let mut joined = self.clone();
        for entry in &other.entries {
            if !self.files.iter().any(|f| **f == *entry.file) {
                joined.entries.push(entry.clone());
            }
        }
        for file in &other.files {
            if !joined.files.contains(file) {
                joined.files.push(file.clone());
            }
        }
        joined
    }

    /// Opens `header` with the first identity that unwraps one of its stanzas, checking
    /// the header MAC with the file key; says which identity it was.
    pub fn open(&self, header: &Header) -> Result<Opened, HeaderError> {
        for (identity, entry) in self.entries.iter().enumerate() {
            match header.unwrap_file_key(std::slice::from_ref(entry)) {
                Ok(file_key) => return Ok(Opened { file_key, identity }),
                Err(HeaderError::NoMatchingKey) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(HeaderError::NoMatchingKey)
    }

    /// How reports name identity `identity` (an index from [`Keyring::open`]): `key
    /// <id>`, or what it is and its file.
    pub fn label(&self, identity: usize) -> String {
        match self.entries.get(identity) {
            Some(entry) => entry.key.label(&entry.file),
            None => format!("identity #{}", identity + 1),
        }
    }

    /// Every identity, in order, for the object decoder.
    pub fn identities(&self) -> &[KeyringEntry] {
        &self.entries
    }

    /// The files the keyring was loaded from (for the stock command that recovers an
    /// object).
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// What loading noticed that an operator should know, without failing.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("files", &self.files)
            .field("identities", &self.entries.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::kinds::{generate, key_id, NewKey};
    use age::secrecy::ExposeSecret;

    /// An identity file of `kind` in `dir`; returns its path and recipient.
    fn key_file(dir: &Path, name: &str, kind: NewKey) -> (PathBuf, String) {
        let (secret, recipient) = generate(kind);
        let path = dir.join(name);
        std::fs::write(&path, format!("# a key\n{}\n", secret.expose_secret())).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        (path, recipient)
    }

    fn header_for(recipient: &str) -> Header {
        let key = crate::keys::RecipientKey::parse(recipient).unwrap();
        Header::wrap(&crate::age_file::new_file_key(), &[key]).unwrap()
    }

    #[test]
    fn open_says_which_identity_opened_the_header_and_labels_name_it() {
        let dir = tempfile::tempdir().unwrap();
        let (a, a_recipient) = key_file(dir.path(), "a.txt", NewKey::X25519);
        let (b, b_recipient) = key_file(dir.path(), "b.txt", NewKey::PostQuantum);
        let keyring = Keyring::load(&[a.clone(), b.clone()], KeyOrigin::IdentityFlag).unwrap();
        assert!(keyring.warnings().is_empty(), "{:?}", keyring.warnings());
        assert_eq!(keyring.files(), [a.clone(), b.clone()]);
        let opened = keyring.open(&header_for(&b_recipient)).unwrap();
        assert_eq!(opened.identity, 1);
        assert_eq!(keyring.label(0), format!("key {}", key_id(&a_recipient)));
        assert_eq!(keyring.label(1), format!("key {}", key_id(&b_recipient)));
        let (_, stranger) = key_file(dir.path(), "c.txt", NewKey::X25519);
        assert!(matches!(
            keyring.open(&header_for(&stranger)),
            Err(HeaderError::NoMatchingKey)
        ));
    }

    #[test]
    fn a_keyring_joined_with_another_keeps_its_order_and_skips_files_it_has() {
        let dir = tempfile::tempdir().unwrap();
        let (a, _) = key_file(dir.path(), "a.txt", NewKey::X25519);
        let (b, b_recipient) = key_file(dir.path(), "b.txt", NewKey::X25519);
        let flag = Keyring::load(std::slice::from_ref(&b), KeyOrigin::IdentityFlag).unwrap();
        let config = Keyring::load(&[a.clone(), b.clone()], KeyOrigin::IdentityFileOption).unwrap();
        let joined = flag.with(&config);
        assert_eq!(joined.identities().len(), 2);
        assert_eq!(joined.files(), [b, a]);
        assert_eq!(joined.open(&header_for(&b_recipient)).unwrap().identity, 0);
    }

    #[test]
    fn a_readable_identity_file_is_a_warning_and_no_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (a, _) = key_file(dir.path(), "a.txt", NewKey::X25519);
        std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o644)).unwrap();
        let keyring = Keyring::load(&[a], KeyOrigin::IdentityFileOption).unwrap();
        assert!(keyring.warnings()[0].contains("readable by group or others (mode 644)"));
        let none = Keyring::load(&[], KeyOrigin::IdentityFlag).unwrap_err();
        assert!(none.to_string().contains("pass --identity FILE"), "{none}");
    }
}
