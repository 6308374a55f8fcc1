//! The tests' one support tree: a temporary cluster layout, a plugin config wrapping the
//! real example inner plugin, and the built binary run the way gpbackup runs it
//! (`bash -c`), here; runs bounded in time with a private `$TMPDIR` and the assertions
//! of the hostile tests ([`bounded`]); the plugin API tests' doubles and data
//! ([`plugin`]); the operator commands' keys and simulated backup sets ([`admin`]).
//! One name per thing: `age_cli_decrypt` is the Go reference CLI, `age_crate_decrypt`
//! the age crate; neither is our code.
#![allow(dead_code, unused_imports)]

mod admin;
mod bounded;
mod plugin;

pub use admin::*;
pub use bounded::*;
pub use plugin::*;

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

/// The demo recipient, as the line of [`demo_recipients`] that holds it.
pub fn demo_recipient_line() -> String {
    std::fs::read_to_string(demo_recipients())
        .expect("read the demo recipients")
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("age1"))
        .expect("an age1 recipient")
        .to_string()
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
        let mut options = self.default_options();
        for (k, v) in extra {
            options.retain(|(key, _)| key != k);
            if !v.is_empty() {
                options.push((k.to_string(), v.to_string()));
            }
        }
        let text = format!(
            "executablepath: {BIN}\noptions:\n{}",
            option_lines(&options)
        );
        std::fs::write(&self.config, text).expect("write config");
    }

    /// The default options: the local plugin as the inner plugin, the demo keys (the
    /// identity a private copy), this harness's storage root.
    fn default_options(&self) -> Vec<(String, String)> {
        vec![
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
        ]
    }

    /// The backup directory of a segment (content -1 is the coordinator) for backup
    /// `ts`, as gpbackup lays it out under the segment's data directory.
    pub fn seg_dir(&self, content: i32, ts: &str) -> PathBuf {
        self.path()
            .join(format!("gpseg{content}/backups/{}/{ts}", &ts[..8]))
    }

    /// [`Harness::seg_dir`] of the harness's backup, [`TS`].
    pub fn backup_dir(&self, content: i32) -> PathBuf {
        self.seg_dir(content, TS)
    }

    /// A data_filekey of a segment's table.
    pub fn data_key(&self, content: i32, oid: u32) -> String {
        self.backup_dir(content)
            .join(format!("gpbackup_{content}_{TS}_{oid}"))
            .display()
            .to_string()
    }

    /// Where the local plugin keeps the object of a key of any timestamp: under the
    /// key's last three path components, `<date>/<timestamp>/<basename>`
    /// (examples/local_plugin.sh, `object_path`).
    pub fn stored(&self, key: &str) -> PathBuf {
        let parts: Vec<&str> = key.rsplit('/').take(3).collect();
        assert_eq!(
            parts.len(),
            3,
            "{key} has no <date>/<timestamp>/ directories"
        );
        self.storage().join(parts[2]).join(parts[1]).join(parts[0])
    }

    /// Where the local plugin keeps object `basename` of backup `ts`.
    pub fn stored_at(&self, ts: &str, basename: &str) -> PathBuf {
        self.stored(&format!("{}/{ts}/{basename}", &ts[..8]))
    }

    /// The call log lines of this harness's `$HOME` (every day's file).
    pub fn call_log_lines(&self) -> Vec<String> {
        files_under(&self.home().join("gpAdminLogs"))
            .iter()
            .flat_map(|p| {
                std::fs::read_to_string(p)
                    .expect("read the call log")
                    .lines()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect()
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
    let mut child = gpbackup_shell(script)
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

/// Asserts success with empty stderr (gprestore fails on any stderr text), and no
/// panic.
#[track_caller]
pub fn assert_ok(out: &Output) {
    assert_no_panic(out);
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

/// Every regular file under `dir`, recursively (symbolic links not followed), sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                Ok(_) => out.push(p),
                Err(_) => {}
            }
        }
    }
    out.sort();
    out
}

/// Length of the age header at the start of `object` (through the MAC line), read by
/// the crate's header parser.
pub fn age_header_len(object: &[u8]) -> usize {
    gpbackup_age_plugin::age_file::Header::read(&mut &object[..])
        .expect("an age header")
        .encoded_len()
}

/// Where the encrypted payload of `object` starts: after the age header and the
/// payload nonce.
pub fn payload_start(object: &[u8]) -> usize {
    age_header_len(object) + gpbackup_age_plugin::age_file::NONCE_SIZE
}

/// YAML lines under `options:` for `options`, each value double-quoted.
pub fn option_lines(options: &[(String, String)]) -> String {
    options
        .iter()
        .map(|(k, v)| {
            format!(
                "  {k}: \"{}\"\n",
                v.replace('\\', "\\\\").replace('"', "\\\"")
            )
        })
        .collect()
}

/// The default option lines of the harness config, as YAML lines under `options:`.
pub fn default_option_lines(h: &Harness) -> String {
    option_lines(&h.default_options())
}

/// A config text with the harness's default options plus `extra_lines` raw YAML lines.
pub fn config_text(h: &Harness, extra_lines: &str) -> String {
    format!(
        "executablepath: {BIN}\noptions:\n{}{extra_lines}",
        default_option_lines(h)
    )
}

/// `bash -c SCRIPT`, as gpbackup and gpbackup_helper start a plugin, with the signals
/// the tests send or that stop a call (HUP, INT, TERM, QUIT) at their default action.
/// The test runner may itself run under `nohup` or as a background job, whose ignored
/// dispositions would pass on to the plugin, which rightly keeps an ignored signal
/// ignored; a test that wants one ignored says so (`exec nohup …`).
pub fn gpbackup_shell(script: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new("env");
    command
        .arg("--default-signal=HUP,INT,TERM,QUIT")
        .arg("bash")
        .arg("-c")
        .arg(script);
    command
}
