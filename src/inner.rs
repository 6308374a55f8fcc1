//! The inner plugin: the real storage plugin we chain to, run as a child process.
//!
//! Every call that needs it writes a config of its own for it ([`InnerConfig`]: mode
//! 0600, a unique name, in a directory of ours (0700) under `$TMPDIR` or else under
//! `/dev/shm`, removed when the call ends, and by the next call if the call was killed:
//! [`sweep`]) holding only the pass-through options, because inner plugins such as
//! gpbackup_s3_plugin reject keys they do not know.
//!
//! A data-moving child must never see end-of-file on its stdin unless the stream is
//! complete: gpbackup_s3_plugin commits whatever it has read when stdin closes. So:
//! - an [`InnerWriter`] that is not finished explicitly kills the child *before* its
//!   stdin is closed;
//! - every child runs in a process group of its own, and killing means killing the
//!   group, so a shell-script plugin's own children (a `cat > tmp`) die too;
//! - SIGTERM, SIGINT and SIGHUP sent to us kill the children and remove their configs
//!   before we exit ([`guard`]);
//! - a backup_data child runs under a [`keeper`], a process of ours that holds a second
//!   write end of its stdin and kills its group if we die, even by SIGKILL, before that
//!   write end closes.
//!
//! An optional stall timeout turns a child that makes no progress into an error
//! ([`Watchdog`]).

mod guard;
pub mod keeper;
mod sweep;
mod watchdog;

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::os::fd::OwnedFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};

use crate::config::PluginConfig;
use crate::log::CallLog;
use crate::message::io_reason;
use watchdog::Watchdog;

/// How much of the inner plugin's stderr we keep for the error message.
const STDERR_KEEP: usize = 16 * 1024;
/// Where inner configs go when TMPDIR is not set (tmpfs on every mainstream system).
const SHM_DIR: &str = "/dev/shm";
/// Pipe capacity asked for between us and the child: fewer, larger transfers.
const PIPE_SIZE: usize = 1 << 20;

/// The config file written for one call of the inner plugin; removed on drop, by the
/// signal guard if we are told to stop, and otherwise by the next call in the same
/// directory ([`sweep`]): we hold a lock on it for as long as we live.
pub struct InnerConfig {
    file: tempfile::NamedTempFile,
    dir: PathBuf,
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
        let prefix = format!("{}{}-", sweep::PREFIX, std::process::id());
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(sweep::SUFFIX);
        let (mut file, dir) = in_temp_dir(|parent| {
            let dir = sweep::private_dir(parent);
            Ok((builder.tempfile_in(&dir)?, dir))
        })
        .context("cannot create the inner plugin's config in the temp directory")?;
        guard::track_file(file.path());
        // Locked before it holds anything; a file system without locks only means a
        // config of ours killed with us is not swept.
        let _ = sweep::lock(file.as_file());
        file.write_all(text.as_bytes())
            .and_then(|_| file.flush())
            .context("cannot write the inner plugin's config")?;
        Ok(InnerConfig { file, dir })
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Removes the configs of calls killed before they could (see [`sweep`]), once per
    /// process.
    fn sweep_leftovers(&self) {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| sweep::sweep(&self.dir, self.path()));
    }
}

impl Drop for InnerConfig {
    fn drop(&mut self) {
        guard::untrack_file(self.file.path());
    }
}

/// Runs `create` in `$TMPDIR` if it is set, else in `/dev/shm`, else in the system temp
/// directory. RAM when there is no TMPDIR to honour: the inner plugin's credentials never
/// reach a disk, and creating and removing a file costs a tenth of what it does on a
/// disk file system.
fn in_temp_dir<T>(create: impl Fn(&Path) -> io::Result<T>) -> io::Result<T> {
    match std::env::var_os("TMPDIR").filter(|d| !d.is_empty()) {
        Some(dir) => create(Path::new(&dir)),
        None => create(Path::new(SHM_DIR)).or_else(|_| create(&std::env::temp_dir())),
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

/// The four setup and cleanup hooks of the plugin API, forwarded as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    SetupForBackup,
    SetupForRestore,
    CleanupForBackup,
    CleanupForRestore,
}

impl Hook {
    /// The plugin API command.
    pub fn command(self) -> &'static str {
        match self {
            Hook::SetupForBackup => "setup_plugin_for_backup",
            Hook::SetupForRestore => "setup_plugin_for_restore",
            Hook::CleanupForBackup => "cleanup_plugin_for_backup",
            Hook::CleanupForRestore => "cleanup_plugin_for_restore",
        }
    }

    /// True for the two setup hooks.
    pub fn is_setup(self) -> bool {
        matches!(self, Hook::SetupForBackup | Hook::SetupForRestore)
    }
}

/// A plugin API call that moves no data: forwarded to the inner plugin with its
/// arguments exactly as gpbackup gave them, its stdout passing through to ours.
#[derive(Debug, Clone, Copy)]
pub enum Forwarded<'a> {
    Hook {
        hook: Hook,
        local_backup_directory: &'a str,
        scope: &'a str,
        /// As received, with its literal quotes (`"-1"`); absent for segment_host.
        content_id: Option<&'a str>,
    },
    DeleteBackup {
        timestamp: &'a str,
    },
    DeleteDirectory {
        directory: &'a str,
    },
    ListDirectory {
        directory: &'a str,
    },
}

impl Forwarded<'_> {
    /// The plugin API command and its arguments after the config path.
    fn command_line(&self) -> (&'static str, Vec<&str>) {
        match *self {
            Forwarded::Hook {
                hook,
                local_backup_directory,
                scope,
                content_id,
            } => {
                let mut args = vec![local_backup_directory, scope];
                args.extend(content_id);
                (hook.command(), args)
            }
            Forwarded::DeleteBackup { timestamp } => ("delete_backup", vec![timestamp]),
            Forwarded::DeleteDirectory { directory } => ("delete_directory", vec![directory]),
            Forwarded::ListDirectory { directory } => ("list_directory", vec![directory]),
        }
    }
}

const BACKUP_DATA: &str = "backup_data";
const RESTORE_DATA: &str = "restore_data";

/// What an inner plugin call that succeeded wrote on stderr: a warning, which belongs in
/// the call log of the call (or object) it was made for, never on our stderr.
#[must_use = "what the inner plugin said belongs in the call log"]
#[derive(Debug, Default)]
pub struct Said(Option<String>);

impl Said {
    /// Adds it to the notes of `log`, if anything was said.
    pub fn log(self, log: &mut CallLog) {
        if let Some(text) = self.0 {
            log.note(text);
        }
    }
}

/// The inner plugin, ready to be called for one command.
pub struct InnerPlugin {
    executable: PathBuf,
    config: InnerConfig,
    stall_timeout: Option<Duration>,
}

impl InnerPlugin {
    pub fn new(config: &PluginConfig) -> Result<InnerPlugin> {
        Ok(InnerPlugin {
            executable: config.inner_executable.clone(),
            config: InnerConfig::write(config)?,
            stall_timeout: config.stall_timeout,
        })
    }

    /// "inner plugin PATH COMMAND", as every message about a child names it.
    fn what(&self, command: &str) -> String {
        format!("inner plugin {} {command}", self.executable.display())
    }

    fn command(&self, command: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.executable);
        self.finish_command(&mut cmd, command, args);
        cmd
    }

    fn finish_command(&self, cmd: &mut Command, command: &str, args: &[&str]) {
        cmd.arg(command).arg(self.config.path()).args(args);
        cmd.process_group(0);
    }

    /// Spawns `cmd` with its stderr captured: through a pipe drained by a thread when
    /// `hold` is given (kept open until that pipe closes, see [`InnerPlugin::backup_data`]),
    /// otherwise into an unnamed temporary file (in the same place as the configs) read
    /// once the child is gone, which needs no thread and can never block the child; we
    /// keep its first 16 KiB, and a child that writes gigabytes there fills that file
    /// system, as it would fill a log.
    fn start(&self, mut cmd: Command, command: &str, hold: Option<OwnedFd>) -> Result<Running> {
        let what = self.what(command);
        let file = if hold.is_some() {
            cmd.stderr(Stdio::piped());
            None
        } else {
            let (childs, ours) = in_temp_dir(|dir| tempfile::tempfile_in(dir))
                .and_then(|file| Ok((file.try_clone()?, file)))
                .map_err(|e| anyhow!("cannot start {what}: {}", io_reason(&e)))?;
            cmd.stderr(Stdio::from(childs));
            Some(ours)
        };
        let mut child = cmd
            .spawn()
            .map_err(|e| anyhow!("cannot start {what}: {}", io_reason(&e)))?;
        // Our copies of the child's ends of the pipes close here, with `cmd`.
        drop(cmd);
        // Work the call needs anyway, done while the child starts rather than before,
        // which takes it off a small call's critical path. A signal that comes before
        // the guard is in place ends us like a SIGKILL, which leaves nothing behind
        // either (see docs/RELIABILITY.md).
        guard::install();
        crate::log::warm_up();
        self.config.sweep_leftovers();
        let stderr = match file {
            Some(file) => StderrCapture::File(file),
            None => StderrCapture::drain(child.stderr.take(), hold),
        };
        Ok(Running::new(child, what, self.stall_timeout, stderr))
    }

    /// `backup_data` of an object whose whole ciphertext is `bytes`, small enough for the
    /// pipe: the pipe is filled and closed *before* the child starts, so the child can
    /// only ever see the complete stream, whatever becomes of us, and needs no keeper.
    /// Larger inputs, or a pipe that cannot grow, go through [`InnerPlugin::backup_data`].
    pub fn backup_data_whole(&self, key: &str, bytes: &[u8]) -> Result<Said> {
        let (command, args) = (BACKUP_DATA, &[key]);
        let (data_read, data_write) = self.pipe(command)?;
        let capacity = rustix::pipe::fcntl_getpipe_size(&data_write).unwrap_or(0);
        if bytes.len() > capacity {
            let mut writer = self.backup_data(key)?;
            return match writer.write_all(bytes) {
                Ok(()) => writer.finish(),
                Err(e) => Err(writer.abort(anyhow!(
                    "writing the encrypted object: {}",
                    crate::message::io_reason(&e)
                ))),
            };
        }
        // Into an empty pipe with room for all of it: one write, never blocked.
        File::from(data_write)
            .write_all(bytes)
            .context("filling the inner plugin's input pipe")?;
        let mut cmd = self.command(command, args);
        cmd.stdin(Stdio::from(data_read)).stdout(Stdio::inherit());
        let running = self.start(cmd, command, None)?;
        running.watchdog.enter();
        running.finish(false)
    }

    /// A pipe (read end, write end) for a child's stdin, as large as the system allows
    /// up to [`PIPE_SIZE`].
    fn pipe(&self, command: &str) -> Result<(OwnedFd, OwnedFd)> {
        let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map_err(|e| anyhow!("cannot start {}: creating a pipe: {e}", self.what(command)))?;
        let _ = rustix::pipe::fcntl_setpipe_size(&write, PIPE_SIZE);
        Ok((read, write))
    }

    /// Forwards a call that moves no data; its stdout passes through to ours.
    pub fn forward(&self, call: Forwarded) -> Result<Said> {
        let (command, args) = call.command_line();
        let mut cmd = self.command(command, &args);
        cmd.stdin(Stdio::null()).stdout(Stdio::inherit());
        let running = self.start(cmd, command, None)?;
        running.watchdog.enter();
        running.finish(false)
    }

    /// Starts `backup_data` of `key`, which reads our ciphertext on its stdin, under a
    /// [`keeper`]. The child's stdout is captured with its stderr (the API gives
    /// backup_data nothing to say on stdout).
    ///
    /// We also hold a read end of the pipe until the child's stderr closes: the keeper
    /// reopens its own read end only once it runs, and a pipe without readers would fail
    /// our first writes. Once the child is gone, dropping it makes our writes fail
    /// instead of filling the pipe for nobody.
    pub fn backup_data(&self, key: &str) -> Result<InnerWriter> {
        let (command, args) = (BACKUP_DATA, &[key]);
        let (data_read, data_write) = self.pipe(command)?;
        let (control_read, control_write) = self.pipe(command)?;
        let held = data_write
            .try_clone()
            .map_err(|e| anyhow!("cannot start {}: {}", self.what(command), io_reason(&e)))?;
        let mut cmd = keeper::keeper_command(&self.executable, control_read, held);
        self.finish_command(&mut cmd, command, args);
        let running = self.start(cmd, command, Some(data_read))?;
        Ok(InnerWriter {
            stdin: Some(File::from(data_write)),
            control: Some(File::from(control_write)),
            running: Some(running),
            write_failed: false,
        })
    }

    /// Starts `restore_data` of `key`, which writes the object's ciphertext on its
    /// stdout.
    pub fn restore_data(&self, key: &str) -> Result<InnerReader> {
        let (command, args) = (RESTORE_DATA, &[key]);
        let mut cmd = self.command(command, args);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped());
        let mut running = self.start(cmd, command, None)?;
        let stdout = running.child.stdout.take();
        if let Some(pipe) = &stdout {
            let _ = rustix::pipe::fcntl_setpipe_size(pipe, PIPE_SIZE);
        }
        Ok(InnerReader {
            stdout,
            running: Some(running),
            read: 0,
        })
    }
}

/// Where a child's stderr is collected.
enum StderrCapture {
    /// A thread drains the pipe and delivers what it kept once the pipe closes.
    Thread(crossbeam_channel::Receiver<Vec<u8>>),
    /// An unnamed temporary file, read once the child is reaped.
    File(File),
    Taken,
}

impl StderrCapture {
    /// Starts the thread that drains `pipe`; `hold` stays open until the pipe closes.
    fn drain(pipe: Option<ChildStderr>, hold: Option<OwnedFd>) -> StderrCapture {
        let Some(mut err) = pipe else {
            return StderrCapture::Taken;
        };
        let (tx, rx) = crossbeam_channel::bounded(1);
        std::thread::spawn(move || {
            let _hold = hold;
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
            let _ = tx.send(kept);
        });
        StderrCapture::Thread(rx)
    }
}

/// A started child, where its stderr goes, and its watchdog.
struct Running {
    child: Child,
    stderr: StderrCapture,
    what: String,
    watchdog: Watchdog,
}

impl Running {
    fn new(
        child: Child,
        what: String,
        stall_timeout: Option<Duration>,
        stderr: StderrCapture,
    ) -> Running {
        guard::track_group(child.id());
        let watchdog = Watchdog::start(child.id(), stall_timeout);
        Running {
            child,
            stderr,
            what,
            watchdog,
        }
    }

    /// What the child said on stderr, on one line. A child's own children may hold the
    /// pipe open after it is gone, so this waits only briefly once the child is reaped.
    fn collect_stderr(&mut self) -> String {
        let bytes = match std::mem::replace(&mut self.stderr, StderrCapture::Taken) {
            StderrCapture::Thread(rx) => {
                rx.recv_timeout(Duration::from_secs(2)).unwrap_or_default()
            }
            StderrCapture::File(mut file) => {
                let mut kept = Vec::new();
                let _ = file
                    .seek(io::SeekFrom::Start(0))
                    .and_then(|_| (&mut file).take(STDERR_KEEP as u64).read_to_end(&mut kept));
                kept
            }
            StderrCapture::Taken => Vec::new(),
        };
        crate::message::one_line(&String::from_utf8_lossy(&bytes))
    }

    /// Waits for the child. Fails on a non-zero exit, and also on stderr text when
    /// `stderr_is_failure` (gprestore treats any stderr text of a restore as failure).
    fn finish(mut self, stderr_is_failure: bool) -> Result<Said> {
        let status = self
            .child
            .wait()
            .with_context(|| format!("waiting for {}", self.what));
        self.watchdog.stop();
        let stderr = self.collect_stderr();
        self.check(status?, &stderr, stderr_is_failure)
    }

    fn check(&self, status: ExitStatus, stderr: &str, stderr_is_failure: bool) -> Result<Said> {
        let what = &self.what;
        if let Some(limit) = self.watchdog.stalled() {
            return Err(anyhow!(watchdog::stalled_message(what, limit)));
        }
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
        // A warning of a call that succeeded: the log keeps it, stderr must not.
        Ok(Said(
            (!stderr.is_empty()).then(|| format!("{what} said{said}")),
        ))
    }

    /// Kills the child's process group and reaps the child.
    fn kill(&mut self) {
        guard::kill_group(self.child.id());
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.watchdog.stop();
    }

    /// Stops the child: if it already ended, or ends within `grace`, says how (its own
    /// failure, or what it said on stderr); otherwise it is killed, and what it said
    /// before is kept.
    fn stop(mut self, grace: Duration) -> Stopped {
        let deadline = Instant::now() + grace;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                _ => break None,
            }
        };
        match status {
            Some(status) => {
                // The group may still hold children of the plugin's own.
                guard::kill_group(self.child.id());
                self.watchdog.stop();
                let stderr = self.collect_stderr();
                // Killed by SIGPIPE (or, for a shell-script plugin, a child of it was:
                // exit status 128 + 13): it was still writing when we stopped reading.
                if status.signal() == Some(13)
                    || (status.code() == Some(128 + 13) && stderr.is_empty())
                {
                    return Stopped::Quietly;
                }
                match self.check(status, &stderr, false) {
                    Err(e) => Stopped::Failed(e),
                    Ok(Said(None)) => Stopped::Quietly,
                    Ok(Said(Some(text))) => Stopped::Said(text),
                }
            }
            None => {
                self.kill();
                let stderr = self.collect_stderr();
                if let Some(limit) = self.watchdog.stalled() {
                    return Stopped::Failed(anyhow!(watchdog::stalled_message(&self.what, limit)));
                }
                if stderr.is_empty() {
                    Stopped::Quietly
                } else {
                    Stopped::Said(format!("{} said: {stderr}", self.what))
                }
            }
        }
    }
}

/// How a child that was stopped ended, as far as the call is concerned.
enum Stopped {
    /// Nothing to report: it exited 0 (or of SIGPIPE) or was killed, silently.
    Quietly,
    /// It exited 0, or was killed by us, after writing to stderr ("… said: …").
    Said(String),
    /// It failed on its own: a non-zero exit, a signal, a stall.
    Failed(anyhow::Error),
}

impl Stopped {
    /// Anything it did or said, as a failure.
    fn any(self) -> Option<anyhow::Error> {
        match self {
            Stopped::Quietly => None,
            Stopped::Said(text) => Some(anyhow!(text)),
            Stopped::Failed(e) => Some(e),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.watchdog.stop();
        guard::untrack_group(self.child.id());
    }
}

/// The stdin side of a data-moving inner command. Dropping it without
/// [`InnerWriter::finish`] kills the child first, so it never commits a partial object.
pub struct InnerWriter {
    stdin: Option<File>,
    /// The keeper's control pipe: [`keeper::RELEASE`] once the stream is complete.
    control: Option<File>,
    running: Option<Running>,
    /// A write to the child's stdin failed: it stopped reading.
    write_failed: bool,
}

impl InnerWriter {
    /// Closes stdin (the stream is complete), has the keeper release its write end, and
    /// waits for the child to commit.
    pub fn finish(mut self) -> Result<Said> {
        drop(self.stdin.take());
        if let Some(mut control) = self.control.take() {
            // Fails only if the keeper is gone already; its exit status says why.
            let _ = control.write_all(&[keeper::RELEASE]);
        }
        let running = self.running.take().expect("finished once");
        running.watchdog.enter();
        running.finish(false)
    }

    /// Gives up on the stream after `ours` went wrong: the child is killed *before* its
    /// stdin is closed, so it sees no end-of-file and commits nothing. Returns the best
    /// explanation: the child's own failure if it failed (the usual reason a write to it
    /// fails); else, if a write to it failed, what is known (it stopped reading, and was
    /// still exiting); else `ours`.
    pub fn abort(mut self, ours: anyhow::Error) -> anyhow::Error {
        let what = self.running.as_ref().map(|r| r.what.clone());
        let write_failed = self.write_failed;
        match (self.kill_first(), what) {
            (Some(theirs), _) => theirs,
            (None, Some(what)) if write_failed => {
                anyhow!("{what} stopped reading its input before the end of the stream")
            }
            (None, _) => ours,
        }
    }

    fn kill_first(&mut self) -> Option<anyhow::Error> {
        let failure = self
            .running
            .take()
            .and_then(|r| r.stop(Duration::ZERO).any());
        drop(self.stdin.take());
        drop(self.control.take());
        failure
    }

    fn pipe(&mut self) -> io::Result<&mut File> {
        self.stdin
            .as_mut()
            .ok_or_else(|| io::Error::other("the inner plugin's stdin is closed"))
    }
}

impl Write for InnerWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let watchdog = self.running.as_ref().map(|r| r.watchdog.clone());
        let _in_call = watchdog.as_ref().map(Watchdog::call);
        let written = self.pipe()?.write(buf);
        self.write_failed |= written.is_err();
        written
    }
    fn flush(&mut self) -> io::Result<()> {
        self.pipe()?.flush()
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
    read: u64,
}

/// How long a failed read waits for the inner plugin to explain itself.
const READER_GRACE: Duration = Duration::from_secs(2);

impl InnerReader {
    /// Ciphertext bytes read from the child so far.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    /// Waits for the child after its stream was read to the end; any stderr text is a
    /// failure, as it would be for gprestore (for bytes nothing verified: plaintext
    /// objects passed through).
    pub fn finish(self) -> Result<Said> {
        self.finish_checked(true)
    }

    /// [`InnerReader::finish`] for a stream that was verified completely: only a
    /// failing exit fails the call; stderr text of a child that exited 0 goes to the
    /// call log (every byte restored was authenticated and checked, so the restore is
    /// correct whatever the child said).
    pub fn finish_verified(self) -> Result<Said> {
        self.finish_checked(false)
    }

    fn finish_checked(mut self, stderr_is_failure: bool) -> Result<Said> {
        drop(self.stdout.take());
        let running = self.running.take().expect("finished once");
        running.watchdog.enter();
        running.finish(stderr_is_failure)
    }

    /// Stops the child after a subset restore has all it needs or its reader went
    /// away, with everything written verified: the child is stopped *before* its stdout
    /// closes, so nothing it says from now on is caused by us. A failure it had before
    /// (a non-zero exit) still fails the call; stderr text alone is for the call log,
    /// as after a verified full restore.
    pub fn stop(mut self) -> Result<Said> {
        let theirs = self.running.take().map(|r| r.stop(Duration::ZERO));
        drop(self.stdout.take());
        match theirs {
            Some(Stopped::Failed(e)) => Err(e),
            Some(Stopped::Said(text)) => Ok(Said(Some(text))),
            _ => Ok(Said::default()),
        }
    }

    /// Stops the child after `ours` went wrong; returns the better explanation. The
    /// child's own failure, if it failed, explains more than a decode error on its
    /// output, so it wins; what it said on stderr is added to ours.
    pub fn abort(mut self, ours: anyhow::Error) -> anyhow::Error {
        drop(self.stdout.take());
        let theirs = self.running.take().map(|r| r.stop(READER_GRACE));
        match theirs {
            Some(Stopped::Failed(e)) => e,
            Some(Stopped::Said(text)) => anyhow!("{ours:#}; {text}"),
            _ => ours,
        }
    }
}

impl Read for InnerReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let watchdog = self.running.as_ref().map(|r| r.watchdog.clone());
        let _in_call = watchdog.as_ref().map(Watchdog::call);
        let n = match self.stdout.as_mut() {
            Some(out) => out.read(buf)?,
            None => 0,
        };
        self.read += n as u64;
        Ok(n)
    }
}

impl Drop for InnerReader {
    fn drop(&mut self) {
        drop(self.stdout.take());
        if let Some(running) = self.running.take() {
            running.stop(Duration::ZERO);
        }
    }
}
