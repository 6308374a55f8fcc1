//! The stdin keeper: a small process of our own between us and a `backup_data` inner
//! plugin, so that the inner plugin never sees end-of-file on its stdin unless the
//! stream is complete, even if we are killed with SIGKILL.
//!
//! Why a process: an inner plugin such as gpbackup_s3_plugin commits whatever it has
//! read when its stdin reaches end-of-file. If we die, the kernel closes our end of the
//! pipe *before* it delivers any parent-death signal (`PR_SET_PDEATHSIG`), and a busy
//! machine can let the plugin commit a truncated object in between. The keeper holds a
//! second write end of the same pipe, so our death alone closes nothing the plugin can
//! see; the keeper notices our death (its control pipe reaches end-of-file), kills the
//! plugin's process group, itself included, and only then does its write end close.
//!
//! The keeper runs our own executable (`/proc/self/exe`) with [`KEEPER_ARG`], before any
//! other argument parsing, so it costs one process start and no more.
//!
//! File descriptors, set up by [`keeper_command`]:
//! - 0: the control pipe. `r` = the stream is complete: release the write end.
//!   End-of-file without `r` = we died or gave up: kill the group.
//! - 1: the held write end of the inner plugin's stdin pipe. The keeper reopens it
//!   read-only through `/proc/self/fd/1` for the plugin's stdin.
//! - 2: where the plugin's stdout and stderr go (our capture pipe).
//!
//! The keeper exits as the plugin did: same exit code, or the same signal.

use std::ffi::OsString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};

use rustix::process::{getpgrp, kill_process_group, Signal};

/// The first argument that makes our executable act as a keeper.
pub const KEEPER_ARG: &str = "__keep-inner-stdin";

/// The control byte that releases the write end: the stream is complete.
pub const RELEASE: u8 = b'r';

/// A command that runs `inner` under a keeper, given the read end of the control pipe
/// and a duplicate of the write end of the inner plugin's stdin pipe. The caller adds
/// the inner plugin's arguments, the stderr capture and the process group.
pub fn keeper_command(inner: &std::path::Path, control: OwnedFd, held: OwnedFd) -> Command {
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg0(env!("CARGO_PKG_NAME"))
        .arg(KEEPER_ARG)
        .arg(inner)
        .stdin(Stdio::from(control))
        .stdout(Stdio::from(held));
    cmd
}

/// Runs the keeper if our arguments ask for it; returns the exit code, or `None` for an
/// ordinary invocation.
pub fn run_if_requested() -> Option<i32> {
    let mut args = std::env::args_os().skip(1);
    if args.next()? != KEEPER_ARG {
        return None;
    }
    let inner = args.next()?;
    Some(run(inner, args.collect()))
}

fn run(inner: OsString, args: Vec<OsString>) -> i32 {
    let what = format!(
        "cannot start inner plugin {} {}",
        inner.to_string_lossy(),
        args.first()
            .map(|a| a.to_string_lossy())
            .unwrap_or_default()
    );
    // The plugin's stdin: a read end of the pipe whose write end is our stdout.
    let stdin = match File::open("/proc/self/fd/1") {
        Ok(f) => f,
        Err(e) => {
            let reason = crate::message::io_reason(&e);
            return fail(&what, &format!("reopening its stdin pipe: {reason}"));
        }
    };
    let stdout = match std::io::stderr().as_fd().try_clone_to_owned() {
        Ok(fd) => fd,
        Err(e) => return fail(&what, &crate::message::io_reason(&e)),
    };
    // Same process group as ours: killing the group kills the plugin, its children and
    // the keeper together.
    let spawned = Command::new(&inner)
        .args(&args)
        .stdin(stdin)
        .stdout(stdout)
        .stderr(Stdio::inherit())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => return fail(&what, &crate::message::io_reason(&e)),
    };
    std::thread::spawn(watch_control);
    let status = match child.wait() {
        Ok(status) => status,
        Err(e) => return fail(&what, &crate::message::io_reason(&e)),
    };
    if let Some(sig) = status.signal() {
        let _ = signal_hook::low_level::emulate_default_handler(sig);
        return 128 + sig;
    }
    status.code().unwrap_or(1)
}

/// Waits on the control pipe: a release closes the held write end (by putting
/// /dev/null in its place); end-of-file before a release kills the whole group while
/// the write end is still held, so the plugin dies before it could see end-of-file.
fn watch_control() {
    let mut control = std::io::stdin();
    let mut byte = [0u8; 1];
    loop {
        match control.read(&mut byte) {
            Ok(1) if byte[0] == RELEASE => {
                let released = File::open("/dev/null")
                    .and_then(|null| rustix::stdio::dup2_stdout(&null).map_err(Into::into));
                if released.is_err() {
                    break;
                }
                // Nothing more to do: whatever happens to us now, the stream is whole.
                let _ = std::io::copy(&mut control, &mut std::io::sink());
                return;
            }
            Ok(1) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            _ => break,
        }
    }
    let _ = kill_process_group(getpgrp(), Signal::KILL);
}

fn fail(what: &str, why: &str) -> i32 {
    eprintln!("{what}: {why}");
    127
}
