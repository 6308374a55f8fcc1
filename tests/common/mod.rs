//! Shared test harness: a temporary cluster layout, a plugin config wrapping the real
//! example inner plugin, and the built binary run the way gpbackup runs it (`bash -c`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_gpbackup_age_plugin");
pub const TS: &str = "20250101010101";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn local_plugin() -> PathBuf {
    repo().join("examples/local_plugin.sh")
}

pub fn demo_identity() -> PathBuf {
    repo().join("keys/demo-only-identity.txt")
}

pub fn demo_recipients() -> PathBuf {
    repo().join("keys/demo-only-recipients.txt")
}

/// One test's world: a temp dir holding the storage root, the segment directories, a
/// private $HOME (for the call log) and the plugin config.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl Harness {
    /// A config wrapping the local plugin with the demo keys, plus `extra` option lines
    /// (`key: "value"`).
    pub fn new(extra: &[(&str, &str)]) -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("plugin_config.yaml");
        let h = Harness { dir, config };
        h.write_config(extra);
        h
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The demo identity, copied mode 0600 into this test's directory: git does not keep
    /// file modes, and a checkout's 0644 copy would (rightly) draw a permissions warning.
    pub fn private_identity(&self) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.path().join("identity.txt");
        if !path.exists() {
            std::fs::copy(demo_identity(), &path).expect("copy the demo identity");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .expect("chmod 600");
        }
        path
    }

    pub fn storage(&self) -> PathBuf {
        self.path().join("storage")
    }

    pub fn home(&self) -> PathBuf {
        self.path().join("home")
    }

    /// Writes the config: the default options, overridden or extended by `extra`; an
    /// option given as ("key", "") is left out.
    pub fn write_config(&self, extra: &[(&str, &str)]) {
        let mut options: Vec<(String, String)> = vec![
            (
                "inner_executablepath".into(),
                local_plugin().display().to_string(),
            ),
            (
                "recipients_file".into(),
                demo_recipients().display().to_string(),
            ),
            (
                "identity_file".into(),
                self.private_identity().display().to_string(),
            ),
            ("root".into(), self.storage().display().to_string()),
            ("pgport".into(), "5432".into()),
        ];
        for (k, v) in extra {
            options.retain(|(key, _)| key != k);
            if !v.is_empty() {
                options.push((k.to_string(), v.to_string()));
            }
        }
        let mut text = format!("executablepath: {BIN}\noptions:\n");
        for (k, v) in options {
            text.push_str(&format!(
                "  {k}: \"{}\"\n",
                v.replace('\\', "\\\\").replace('"', "\\\"")
            ));
        }
        std::fs::write(&self.config, text).expect("write config");
    }

    /// The backup directory of a segment, as gpbackup lays it out.
    pub fn backup_dir(&self, content: i32) -> PathBuf {
        self.path()
            .join(format!("seg{content}/backups/{}/{TS}", &TS[..8]))
    }

    /// A data_filekey of a segment's table.
    pub fn data_key(&self, content: i32, oid: u32) -> String {
        self.backup_dir(content)
            .join(format!("gpbackup_{content}_{TS}_{oid}"))
            .display()
            .to_string()
    }

    /// Where the local plugin keeps the object of a key.
    pub fn stored(&self, key: &str) -> PathBuf {
        let base = Path::new(key).file_name().expect("basename");
        self.storage().join(&TS[..8]).join(TS).join(base)
    }

    /// Runs `gpbackup_age_plugin <args>` through `bash -c` as gpbackup does, with
    /// `stdin` as its input. Arguments are inserted into the shell string as given, so
    /// quote them as gpbackup would (content IDs as `\"-1\"`).
    pub fn run(&self, args: &str, stdin: &[u8]) -> Output {
        run_in(&self.home(), &format!("{BIN} {args}"), stdin)
    }

    /// `run` with the config path as the first argument after the command.
    pub fn call(&self, command: &str, rest: &str, stdin: &[u8]) -> Output {
        self.run(
            &format!("{command} {} {rest}", self.config.display()),
            stdin,
        )
    }

    pub fn backup_data(&self, key: &str, data: &[u8]) -> Output {
        self.call("backup_data", key, data)
    }

    pub fn restore_data(&self, key: &str) -> Output {
        self.call("restore_data", key, b"")
    }
}

/// Runs a shell command with HOME set, feeding `stdin` from a thread.
pub fn run_in(home: &Path, script: &str, stdin: &[u8]) -> Output {
    std::fs::create_dir_all(home).expect("home");
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(script)
        .env("HOME", home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bash");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let feeder = std::thread::spawn(move || {
        use std::io::Write;
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait");
    let _ = feeder.join();
    out
}

/// Asserts success with empty stderr (gprestore fails on any stderr text).
#[track_caller]
pub fn assert_ok(out: &Output) {
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "expected success with empty stderr, got {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Asserts failure with exactly one line on stderr containing `needle`; returns it.
#[track_caller]
pub fn assert_fails_with(out: &Output, needle: &str) -> String {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success(),
        "expected failure, got success; stderr: {err}"
    );
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "expected one stderr line, got: {err}"
    );
    assert!(err.contains(needle), "stderr {err:?} lacks {needle:?}");
    err
}

/// Deterministic pseudo-random bytes (xorshift), for binary payloads.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Decrypts a whole age file with the age crate (not our code) and `identities`.
pub fn age_crate_decrypt_with(
    ciphertext: &[u8],
    identities: &[impl AsRef<dyn age::Identity>],
) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let dec = age::Decryptor::new(ciphertext).map_err(|e| e.to_string())?;
    let mut reader = dec
        .decrypt(identities.iter().map(|i| i.as_ref()))
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    reader.read_to_end(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}
