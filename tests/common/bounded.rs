//! Helpers of the hostile_* tests (faults, corruption, bad input, concurrency, secrets),
//! on top of the common harness, which they leave as it is.
//!
//! Every plugin run here goes through [`run_bounded`]: `bash -c` as gpbackup does, with
//! a private `$HOME` (the call log) and a private `$TMPDIR` (where inner configs are
//! written, so a test can check that none is left behind), and a generous time bound
//! that is only a failure detector: a run that exceeds it fails the test (a hang), it
//! never decides when something has happened.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::*;

/// Longer than any call of these tests needs by far; exceeding it means a hang.
pub const BOUND: Duration = Duration::from_secs(30);

/// The private `$TMPDIR` of a harness (created on first use).
pub fn tmpdir(h: &Harness) -> PathBuf {
    let dir = h.path().join("tmp");
    std::fs::create_dir_all(&dir).expect("tmp dir");
    dir
}

/// Starts `script` through [`gpbackup_shell`] with the harness's HOME and TMPDIR, stdout
/// and stderr piped, `stdin` as given, in a process group of its own: for calls a test
/// feeds, signals or watches while they run.
pub fn spawn_shell(h: &Harness, script: &str, stdin: Stdio) -> std::process::Child {
    std::fs::create_dir_all(h.home()).expect("home");
    gpbackup_shell(script)
        .env("HOME", h.home())
        .env("TMPDIR", tmpdir(h))
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("spawn bash")
}

/// Runs `script` through `bash -c` with HOME and TMPDIR set and `stdin` fed from a
/// thread, in a process group of its own; fails the test if it runs longer than
/// [`BOUND`] (the whole group is killed first, so nothing lingers).
pub fn run_script(home: &Path, tmp: &Path, script: &str, stdin: &[u8]) -> Output {
    run_script_within(home, tmp, script, stdin, BOUND)
}

/// [`run_script`] with another bound (for runs sharing the machine with many others).
pub fn run_script_within(
    home: &Path,
    tmp: &Path,
    script: &str,
    stdin: &[u8],
    bound: Duration,
) -> Output {
    std::fs::create_dir_all(home).expect("home");
    let mut child = gpbackup_shell(script)
        .env("HOME", home)
        .env("TMPDIR", tmp)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("spawn bash");
    let pid = child.id();
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(bound) {
        Ok(out) => out.expect("wait for bash"),
        Err(_) => {
            kill_group(pid);
            panic!("`{script}` did not end within {bound:?}: a hang");
        }
    }
}

/// SIGKILL to a process group.
pub fn kill_group(pgid: u32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pgid as i32) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

/// `gpbackup_age_plugin <args>` as gpbackup runs it, bounded, with the harness's
/// private HOME and TMPDIR.
pub fn run_bounded(h: &Harness, args: &str, stdin: &[u8]) -> Output {
    run_script(&h.home(), &tmpdir(h), &format!("{BIN} {args}"), stdin)
}

/// [`run_bounded`] with the config path as the first argument after the command.
pub fn call_bounded(h: &Harness, command: &str, rest: &str, stdin: &[u8]) -> Output {
    run_bounded(
        h,
        &format!("{command} {} {rest}", h.config.display()),
        stdin,
    )
}

pub fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// No panic, no backtrace hint: what a user must never see.
#[track_caller]
pub fn assert_no_panic(out: &Output) {
    let err = stderr_of(out);
    for bad in ["panicked", "RUST_BACKTRACE", "stack backtrace"] {
        assert!(!err.contains(bad), "stderr shows a panic: {err}");
    }
    // SIGABRT (a panic under panic = "abort") or another fatal signal.
    use std::os::unix::process::ExitStatusExt;
    assert!(
        out.status.signal().is_none(),
        "killed by signal {:?}; stderr: {err}",
        out.status.signal()
    );
}

/// Failure: non-zero exit, exactly one line on stderr, starting with our name and
/// containing every needle, no panic. Returns the line.
#[track_caller]
pub fn assert_one_line_failure(out: &Output, needles: &[&str]) -> String {
    assert_no_panic(out);
    let err = stderr_of(out);
    assert!(
        !out.status.success(),
        "expected failure, got success; stderr: {err}"
    );
    assert_eq!(
        err.lines().count(),
        1,
        "expected exactly one stderr line, got: {err:?}"
    );
    assert!(err.ends_with('\n'), "stderr line not terminated: {err:?}");
    assert!(
        err.starts_with("gpbackup_age_plugin: "),
        "stderr does not name us: {err:?}"
    );
    for needle in needles {
        assert!(err.contains(needle), "stderr {err:?} lacks {needle:?}");
    }
    err
}

/// True for the local plugin's own uncommitted temporaries, `<object>.tmp.<pid>`.
pub fn is_inner_tmp(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.rsplit_once(".tmp.")
        .is_some_and(|(_, pid)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

/// Objects the inner plugin committed (not its temporaries, not its hook log).
pub fn committed_objects(h: &Harness) -> Vec<PathBuf> {
    files_under(&h.storage())
        .into_iter()
        .filter(|p| !is_inner_tmp(p) && !p.ends_with(".hooks.log"))
        .collect()
}

/// The private TMPDIR holds nothing: no inner config (nor anything else) was left.
#[track_caller]
pub fn assert_tmpdir_clean(h: &Harness) {
    let left = files_under(&tmpdir(h));
    assert!(left.is_empty(), "left behind in TMPDIR: {left:?}");
}

/// Files under `dir` whose name marks them as a restore_file partial of ours.
pub fn partial_files(dir: &Path) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.contains(".gpbackup_age_plugin.") && n.ends_with(".partial"))
        })
        .collect()
}

/// Whatever is stored under `key` either is absent or restores to exactly `original`
/// (restored with a clean config, without fault options).
#[track_caller]
pub fn assert_no_bad_object(h: &Harness, key: &str, original: &[u8]) {
    if !h.stored(key).exists() {
        return;
    }
    h.write_config(&[]);
    let out = call_bounded(h, "restore_data", key, b"");
    if out.status.success() {
        assert!(
            out.stdout == original,
            "the stored object of {key} restores successfully to {} bytes that are not the original {} bytes",
            out.stdout.len(),
            original.len()
        );
    }
}

/// `out` is a prefix of `original` (nothing unauthenticated or reordered was written).
#[track_caller]
pub fn assert_prefix(out: &[u8], original: &[u8]) {
    assert!(
        out.len() <= original.len() && original[..out.len()] == *out,
        "stdout ({} bytes) is not a prefix of the original ({} bytes)",
        out.len(),
        original.len()
    );
}

/// The pid of the local plugin writing `key`'s temporary (`<object>.tmp.<pid>`), once
/// that temporary holds data.
pub fn inner_writer_pid(h: &Harness, key: &str) -> u32 {
    let dir = h.stored(key).parent().unwrap().to_path_buf();
    let mut found = None;
    wait_until("the inner plugin receives data", || {
        found = files_under(&dir)
            .into_iter()
            .find(|p| is_inner_tmp(p) && std::fs::metadata(p).is_ok_and(|m| m.len() > 0));
        found.is_some()
    });
    let name = found.unwrap().display().to_string();
    name.rsplit_once(".tmp.").unwrap().1.parse().unwrap()
}

/// The process group of `pid`, if it is alive (from /proc/<pid>/stat).
pub fn group_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name: state ppid pgrp ...
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(2)?.parse().ok()
}

/// The process group `pgid` has a member left (reads every /proc/<pid>/stat).
pub fn group_alive(pgid: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|e| {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            return false;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        // Fields after the parenthesised command name: state ppid pgrp ...
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        fields.get(2).and_then(|g| g.parse::<u32>().ok()) == Some(pgid) && fields[0] != "Z"
    })
}

/// Polls `cond` until it holds or [`BOUND`] passes (then fails the test with `what`).
#[track_caller]
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + BOUND;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Writes an executable script.
pub fn write_script(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).expect("write script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// File mode bits.
pub fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o7777
}

/// The demo identities, loaded by the crate itself.
pub fn demo_keyring() -> gpbackup_age_plugin::keys::Keyring {
    gpbackup_age_plugin::keys::Keyring::load(
        &[demo_identity()],
        gpbackup_age_plugin::keys::KeyOrigin::IdentityFileOption,
    )
    .expect("demo identity")
}

/// The demo recipients, loaded by the crate itself.
pub fn demo_recipient_list() -> gpbackup_age_plugin::keys::Recipients {
    gpbackup_age_plugin::keys::Recipients::parse(None, Some(&demo_recipients()))
        .expect("demo recipients")
}
