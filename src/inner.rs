//! The inner plugin: the real storage plugin we chain to, run as a child process.
//!
//! Every call that needs it writes a config of its own for it ([`InnerConfig`]: mode
//! 0600, a unique name, removed when the call ends) holding only the pass-through
//! options, because inner plugins such as gpbackup_s3_plugin reject keys they do not know.
//!
//! A data-moving child must never see end-of-file on its stdin unless the stream is
//! complete: gpbackup_s3_plugin commits whatever it has read when stdin closes. So an
//! [`InnerWriter`] that is not finished explicitly kills the child *before* its stdin is
//! closed, and the child is tied to our lifetime (see [`spawn`]).

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;

use anyhow::{anyhow, Context, Result};

use crate::config::{io_reason, PluginConfig};

/// How much of the inner plugin's stderr we keep for the error message.
const STDERR_KEEP: usize = 16 * 1024;

/// The config file written for one call of the inner plugin; removed on drop.
pub struct InnerConfig {
    file: tempfile::TempPath,
}

impl InnerConfig {
    /// Writes `executablepath` and the pass-through options, every value double-quoted.
    pub fn write(config: &PluginConfig) -> Result<InnerConfig> {
        let mut text = format!(
            "executablepath: {}\noptions:\n",
            yaml_quote(&config.inner_executable.to_string_lossy())
        );
        for (key, value) in &config.passthrough {
            // Keys as plain scalars when they can be (every real option name can).
            let key = if key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                key.clone()
            } else {
                yaml_quote(key)
            };
            text.push_str(&format!("  {key}: {}\n", yaml_quote(value)));
        }
        // tempfile creates the file with O_EXCL and mode 0600 under a random name.
        let mut file = tempfile::Builder::new()
            .prefix("gpbackup_age_plugin_inner_")
            .suffix(".yaml")
            .tempfile()
            .context("cannot create the inner plugin's config in the temp directory")?;
        file.write_all(text.as_bytes())
            .and_then(|_| file.flush())
            .context("cannot write the inner plugin's config")?;
        Ok(InnerConfig {
            file: file.into_temp_path(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.file
    }
}

/// A YAML double-quoted scalar (JSON string escaping is valid YAML).
fn yaml_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The inner plugin, ready to be called for one command.
pub struct InnerPlugin {
    executable: PathBuf,
    config: InnerConfig,
}

impl InnerPlugin {
    pub fn new(config: &PluginConfig) -> Result<InnerPlugin> {
        Ok(InnerPlugin {
            executable: config.inner_executable.clone(),
            config: InnerConfig::write(config)?,
        })
    }

    fn command(&self, command: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.executable);
        cmd.arg(command).arg(self.config.path()).args(args);
        cmd
    }

    fn describe(&self, command: &str) -> String {
        format!("inner plugin {} {command}", self.executable.display())
    }

    /// Runs a command whose stdout passes through to ours (hooks, deletes, listings).
    pub fn run(&self, command: &str, args: &[&str]) -> Result<()> {
        let mut cmd = self.command(command, args);
        cmd.stdin(Stdio::null()).stdout(Stdio::inherit());
        let child = spawn(cmd, &self.describe(command))?;
        Running::new(child, self.describe(command)).finish(false)
    }

    /// Starts a command that reads our ciphertext on its stdin (backup_data).
    pub fn writer(&self, command: &str, args: &[&str]) -> Result<InnerWriter> {
        let mut cmd = self.command(command, args);
        cmd.stdin(Stdio::piped()).stdout(Stdio::inherit());
        let mut child = spawn(cmd, &self.describe(command))?;
        let stdin = child.stdin.take().expect("stdin is piped");
        Ok(InnerWriter {
            stdin: Some(stdin),
            running: Some(Running::new(child, self.describe(command))),
        })
    }

    /// Starts a command that writes ciphertext on its stdout (restore_data).
    pub fn reader(&self, command: &str, args: &[&str]) -> Result<InnerReader> {
        let mut cmd = self.command(command, args);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped());
        let mut child = spawn(cmd, &self.describe(command))?;
        let stdout = child.stdout.take();
        Ok(InnerReader {
            stdout,
            running: Some(Running::new(child, self.describe(command))),
        })
    }
}

/// Starts the child with stderr captured.
fn spawn(mut cmd: Command, what: &str) -> Result<Child> {
    cmd.stderr(Stdio::piped());
    cmd.spawn()
        .map_err(|e| anyhow!("cannot start {what}: {}", io_reason(&e)))
}

/// A started child and the thread collecting its stderr.
struct Running {
    child: Child,
    stderr: Option<JoinHandle<Vec<u8>>>,
    what: String,
}

impl Running {
    fn new(mut child: Child, what: String) -> Running {
        let stderr = child.stderr.take().map(|mut err| {
            std::thread::spawn(move || {
                let mut kept = Vec::new();
                let mut buf = [0u8; 4096];
                // Drain everything so the child never blocks on a full pipe.
                while let Ok(n) = err.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let room = STDERR_KEEP.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
                kept
            })
        });
        Running {
            child,
            stderr,
            what,
        }
    }

    fn collect_stderr(&mut self) -> String {
        let bytes = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        String::from_utf8_lossy(&bytes)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Waits for the child. Fails on a non-zero exit, and also on stderr text when
    /// `stderr_is_failure` (gprestore treats any stderr text of a restore as failure).
    fn finish(mut self, stderr_is_failure: bool) -> Result<()> {
        let status = self
            .child
            .wait()
            .with_context(|| format!("waiting for {}", self.what))?;
        let stderr = self.collect_stderr();
        check_status(&self.what, status, &stderr, stderr_is_failure)
    }

    /// Stops the child: if it already ended, or ends within `grace`, its own failure
    /// (exit status and stderr) is returned as the better explanation of what went
    /// wrong; otherwise it is killed and `None` is returned.
    fn stop(mut self, grace: std::time::Duration) -> Option<anyhow::Error> {
        let deadline = std::time::Instant::now() + grace;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(5))
                }
                _ => break None,
            }
        };
        match status {
            Some(status) => {
                use std::os::unix::process::ExitStatusExt;
                let stderr = self.collect_stderr();
                // Killed by SIGPIPE: it was still writing when we stopped reading.
                if status.signal() == Some(13) {
                    return None;
                }
                check_status(&self.what, status, &stderr, true).err()
            }
            None => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let stderr = self.collect_stderr();
                (!stderr.is_empty()).then(|| anyhow!("{} said: {stderr}", self.what))
            }
        }
    }
}

fn check_status(
    what: &str,
    status: ExitStatus,
    stderr: &str,
    stderr_is_failure: bool,
) -> Result<()> {
    use std::os::unix::process::ExitStatusExt;
    let said = if stderr.is_empty() {
        String::new()
    } else {
        format!(": {stderr}")
    };
    if let Some(sig) = status.signal() {
        return Err(anyhow!("{what} was killed by signal {sig}{said}"));
    }
    if !status.success() {
        return Err(anyhow!(
            "{what} failed with exit status {}{}",
            status.code().unwrap_or(-1),
            if said.is_empty() {
                " and no message".to_string()
            } else {
                said
            }
        ));
    }
    if stderr_is_failure && !stderr.is_empty() {
        return Err(anyhow!("{what} wrote to stderr{said}"));
    }
    Ok(())
}

/// The stdin side of a data-moving inner command. Dropping it without
/// [`InnerWriter::finish`] kills the child first, so it never commits a partial object.
pub struct InnerWriter {
    stdin: Option<ChildStdin>,
    running: Option<Running>,
}

impl InnerWriter {
    /// Closes stdin (the stream is complete) and waits for the child to commit.
    pub fn finish(mut self) -> Result<()> {
        drop(self.stdin.take());
        self.running.take().expect("finished once").finish(false)
    }

    /// Gives up on the stream: the child is killed *before* its stdin is closed, so it
    /// sees no end-of-file and commits nothing. If the child had already failed on its
    /// own (the usual reason a write fails), that failure is returned.
    pub fn abort(mut self) -> Option<anyhow::Error> {
        self.kill_first()
    }

    fn kill_first(&mut self) -> Option<anyhow::Error> {
        let failure = self
            .running
            .take()
            .and_then(|r| r.stop(std::time::Duration::ZERO));
        drop(self.stdin.take());
        failure
    }
}

impl Write for InnerWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stdin.as_mut().expect("open until finished").write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.stdin
            .as_mut()
            .expect("open until finished")
            .write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.stdin.as_mut().expect("open until finished").flush()
    }
}

impl Drop for InnerWriter {
    fn drop(&mut self) {
        self.kill_first();
    }
}

/// The stdout side of a data-moving inner command.
pub struct InnerReader {
    stdout: Option<ChildStdout>,
    running: Option<Running>,
}

/// How long a failed read waits for the inner plugin to explain itself.
const READER_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

impl InnerReader {
    /// Waits for the child after its stream was read to the end; any stderr text is a
    /// failure, as it would be for gprestore.
    pub fn finish(mut self) -> Result<()> {
        drop(self.stdout.take());
        self.running.take().expect("finished once").finish(true)
    }

    /// Stops the child after `ours` went wrong (or after a subset restore has all it
    /// needs, with `ours` = None). The child's own failure, if it failed, explains more
    /// than a decode error on its output, so it wins.
    pub fn abort(mut self, ours: Option<anyhow::Error>) -> Option<anyhow::Error> {
        drop(self.stdout.take());
        let grace = if ours.is_some() {
            READER_GRACE
        } else {
            std::time::Duration::ZERO
        };
        let theirs = self.running.take().and_then(|r| r.stop(grace));
        match (theirs, ours) {
            (Some(theirs), Some(_)) => Some(theirs),
            (None, ours) => ours,
            (Some(_), None) => None,
        }
    }
}

impl Read for InnerReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.stdout.as_mut() {
            Some(out) => out.read(buf),
            None => Ok(0),
        }
    }
}

impl Drop for InnerReader {
    fn drop(&mut self) {
        drop(self.stdout.take());
        if let Some(running) = self.running.take() {
            running.stop(std::time::Duration::ZERO);
        }
    }
}
