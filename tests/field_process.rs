//! The plugin as a process among the real ones around it: gpbackup_helper aborting a
//! backup (its parent exits mid-stream), inner plugins that are busy but not writing
//! to us yet, `nohup`, and calls killed by SIGKILL. Every call runs the built binary
//! through `bash -c` against a real inner plugin process, with a private TMPDIR and
//! HOME.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A parent like gpbackup_helper: starts the plugin with `bash -c` and a pipe on its
/// stdin, writes the stream, then either closes the pipe and waits for the plugin
/// (`complete`), or exits at once without closing or waiting (`abort`), as the helper
/// does when gpbackup sends it SIGUSR1. The plugin's stderr goes to a file.
const FEEDER_PY: &str = r#"
import os, subprocess, sys
mode, data_path, err_path, command = sys.argv[1:5]
data = open(data_path, "rb").read()
p = subprocess.Popen(["bash", "-c", command], stdin=subprocess.PIPE,
                     stdout=subprocess.DEVNULL, stderr=open(err_path, "wb"))
p.stdin.write(data)
p.stdin.flush()
if mode == "abort":
    os._exit(2)
p.stdin.close()
sys.exit(p.wait())
"#;

/// Runs `backup_data` of `data` under the feeder in `mode`; returns the feeder's exit
/// status and the plugin's stderr once the plugin has logged its call.
fn fed_backup(h: &Harness, key: &str, data: &[u8], mode: &str) -> (i32, String) {
    let data_path = h.path().join(format!("stream.{mode}"));
    std::fs::write(&data_path, data).unwrap();
    let err_path = h.path().join(format!("stderr.{mode}"));
    let logged_before = backup_lines(h).len();
    let out = Command::new("python3")
        .arg("-c")
        .arg(FEEDER_PY)
        .arg(mode)
        .arg(&data_path)
        .arg(&err_path)
        .arg(format!("{BIN} backup_data {} {key}", h.config.display()))
        .env("HOME", h.home())
        .env("TMPDIR", tmpdir(h))
        .output()
        .expect("python3");
    // The plugin may outlive an aborting feeder: its call log line says it is done.
    wait_until("the plugin logs its call", || {
        backup_lines(h).len() > logged_before
    });
    let err = std::fs::read_to_string(&err_path).unwrap_or_default();
    (out.status.code().unwrap_or(-1), err)
}

fn backup_lines(h: &Harness) -> Vec<String> {
    h.call_log_lines()
        .into_iter()
        .filter(|l| l.contains("command=backup_data"))
        .collect()
}

#[test]
fn an_aborted_feeder_commits_nothing_and_a_complete_one_commits_everything() {
    // 3 MiB goes through the streamed path (under the stdin keeper); 100 KiB is sealed
    // whole before the inner plugin starts.
    for size in [3 << 20, 100 << 10] {
        let h = Harness::new(&[]);
        std::fs::create_dir_all(h.home()).unwrap();
        let data = random_bytes(size, size as u64);

        let key = h.data_key(0, 16384);
        let (status, err) = fed_backup(&h, &key, &data, "abort");
        assert_eq!(status, 2, "the feeder aborted");
        assert_eq!(err.lines().count(), 1, "{size}: {err}");
        assert!(
            err.starts_with("gpbackup_age_plugin: backup_data ")
                && err.contains("the process feeding the stream")
                && err.contains("the backup was aborted, so nothing was stored"),
            "{size}: {err}"
        );
        let line = backup_lines(&h).pop().unwrap();
        assert!(
            line.contains("outcome=error: ") && line.contains("aborted"),
            "{line}"
        );
        // Killed (the whole group, by SIGKILL) before we logged: it can commit nothing
        // any more.
        assert!(
            committed_objects(&h).is_empty(),
            "{size}: an aborted stream was committed: {:?}",
            committed_objects(&h)
        );
        assert_tmpdir_clean(&h);

        let key = h.data_key(0, 16385);
        let (status, err) = fed_backup(&h, &key, &data, "complete");
        assert_eq!((status, err.as_str()), (0, ""), "{size}");
        let back = call_bounded(&h, "restore_data", &key, b"");
        assert_ok(&back);
        assert!(back.stdout == data, "{size}: the complete stream restores");
    }
}

/// A wrapper around the local plugin that, for `command`, first runs `before` (a bash
/// snippet) in the inner plugin's own process (group).
fn wrapped_inner(h: &Harness, name: &str, command: &str, before: &str) -> PathBuf {
    let path = h.path().join(format!("{name}.sh"));
    write_script(
        &path,
        &format!(
            "#!/usr/bin/env bash\nif [[ $1 == {command} ]]; then\n{before}\nfi\nexec '{}' \"$@\"\n",
            local_plugin().display()
        ),
    );
    path
}

/// Busy with I/O (and CPU) for `secs` seconds without writing a byte to stdout, like
/// gpbackup_s3_plugin downloading or uploading a 500 MB chunk.
fn busy_for(secs: u32) -> String {
    format!("end=$((SECONDS + {secs})); while (( SECONDS < end )); do head -c 64M /dev/zero > /dev/null; done")
}

#[test]
fn a_busy_inner_plugin_is_never_killed_by_the_stall_timeout() {
    let h = Harness::new(&[]);
    let key = h.data_key(0, 16384);
    let data = random_bytes(2 << 20, 5);
    assert_ok(&call_bounded(&h, "backup_data", &key, &data));

    // Downloading before its first byte to us, for at least three times the timeout
    // (bash counts whole seconds from its start).
    let busy = wrapped_inner(&h, "busy_restore", "restore_data", &busy_for(4));
    h.write_config(&[
        ("stall_timeout_seconds", "1"),
        ("inner_executablepath", &busy.display().to_string()),
    ]);
    let started = Instant::now();
    let out = call_bounded(&h, "restore_data", &key, b"");
    assert_ok(&out);
    assert!(out.stdout == data);
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "it really was busy"
    );

    // Uploading after its input ended (it reads everything, then works).
    let busy = wrapped_inner(
        &h,
        "busy_backup",
        "backup_data",
        &format!(
            "t=$(mktemp); cat > \"$t\"; {}; exec < \"$t\"; rm -f \"$t\"",
            busy_for(4)
        ),
    );
    h.write_config(&[
        ("stall_timeout_seconds", "1"),
        ("inner_executablepath", &busy.display().to_string()),
    ]);
    let key = h.data_key(0, 16385);
    for size in [1000, 2 << 20] {
        let data = random_bytes(size, 6);
        assert_ok(&call_bounded(&h, "backup_data", &key, &data));
        h.write_config(&[]);
        let back = call_bounded(&h, "restore_data", &key, b"");
        assert_ok(&back);
        assert!(back.stdout == data);
        h.write_config(&[
            ("stall_timeout_seconds", "1"),
            ("inner_executablepath", &busy.display().to_string()),
        ]);
    }
}

#[test]
fn a_stuck_inner_plugin_is_killed_by_the_stall_timeout() {
    let h = Harness::new(&[]);
    let key = h.data_key(0, 16384);
    assert_ok(&call_bounded(&h, "backup_data", &key, b"rows"));
    for (command, stdin) in [("restore_data", &b""[..]), ("backup_data", &b"rows"[..])] {
        let stuck = wrapped_inner(&h, "stuck", command, "sleep 20");
        h.write_config(&[
            ("stall_timeout_seconds", "1"),
            ("inner_executablepath", &stuck.display().to_string()),
        ]);
        let started = Instant::now();
        let out = call_bounded(&h, command, &key, stdin);
        assert_one_line_failure(
            &out,
            &[
                "stalled: it made no progress for 1 s",
                "stall_timeout_seconds",
                "killed",
            ],
        );
        let took = started.elapsed();
        assert!(
            took >= Duration::from_secs(1) && took < Duration::from_secs(15),
            "{command}: {took:?}"
        );
        assert_tmpdir_clean(&h);
    }
}

/// Starts `backup_data` with its stdin piped from the test, with `prefix` before the
/// binary (e.g. `nohup`).
fn spawn_backup(h: &Harness, key: &str, prefix: &str) -> Child {
    let script = format!(
        "exec {prefix} {BIN} backup_data {} {key}",
        h.config.display()
    );
    spawn_shell(h, &script, Stdio::piped())
}

/// Whether `pid` ignores SIGHUP (bit 0 of SigIgn).
fn ignores_sighup(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .unwrap();
    u64::from_str_radix(mask.trim(), 16).unwrap() & 1 == 1
}

#[test]
fn under_nohup_a_hangup_ends_neither_the_call_nor_its_inner_plugin() {
    let h = Harness::new(&[]);
    let key = h.data_key(0, 16384);
    let data = random_bytes(3 << 20, 8);
    let mut child = spawn_backup(&h, &key, "nohup");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&data[..1 << 20]).unwrap();
    let inner = inner_writer_pid(&h, &key);
    // Ignored for us (bash execs nohup, which execs us) and for the inner plugin.
    assert!(ignores_sighup(child.id()), "SIGHUP is handled by us again");
    assert!(
        ignores_sighup(inner),
        "the inner plugin lost the ignored SIGHUP"
    );
    let hup = rustix::process::Signal::HUP;
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
        hup,
    )
    .unwrap();
    let group = group_of(inner).unwrap();
    rustix::process::kill_process_group(rustix::process::Pid::from_raw(group as i32).unwrap(), hup)
        .unwrap();
    stdin.write_all(&data[1 << 20..]).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_ok(&out);
    let back = call_bounded(&h, "restore_data", &key, b"");
    assert_ok(&back);
    assert!(back.stdout == data);

    // Without nohup a hangup still stops the call, leaving nothing committed.
    let key = h.data_key(0, 16385);
    let mut child = spawn_backup(&h, &key, "");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&data[..1 << 20]).unwrap();
    inner_writer_pid(&h, &key);
    assert!(
        !ignores_sighup(child.id()),
        "SIGHUP is ignored without nohup: the test could not stop the call"
    );
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
        hup,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    assert_eq!(out.status.code(), Some(128 + 1));
    assert!(!h.stored(&key).exists());
}

/// An inner plugin whose restore_data records its pid and hangs; everything else it
/// accepts and ignores.
fn hanging_inner(h: &Harness) -> (PathBuf, PathBuf) {
    let pids = h.path().join("hanging.pids");
    let path = h.path().join("hanging_inner.sh");
    write_script(
        &path,
        &format!(
            "#!/usr/bin/env bash\nif [[ $1 == restore_data ]]; then echo $$ >> '{}'; exec sleep 600; fi\n[[ $1 == backup_data ]] && cat > /dev/null\nexit 0\n",
            pids.display()
        ),
    );
    (path, pids)
}

/// Inner configs (any of our naming) in the harness's TMPDIR.
fn inner_configs(h: &Harness) -> Vec<PathBuf> {
    files_under(&tmpdir(h))
        .into_iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("gpbackup_age_plugin_inner_"))
        })
        .collect()
}

/// A restore_data that hangs in its inner plugin, started in the background; returns
/// it once its inner config exists and its inner plugin runs.
fn hanging_restore(h: &Harness, pids: &Path) -> (Child, PathBuf) {
    let before = inner_configs(h);
    let started_inners = std::fs::read_to_string(pids)
        .map(|t| t.lines().count())
        .unwrap_or(0);
    let script = format!(
        "exec {BIN} restore_data {} {} >/dev/null 2>&1",
        h.config.display(),
        h.data_key(0, 1)
    );
    let child = spawn_shell(h, &script, Stdio::null());
    wait_until("the inner plugin runs", || {
        std::fs::read_to_string(pids).is_ok_and(|t| t.lines().count() > started_inners)
    });
    let config = inner_configs(h)
        .into_iter()
        .find(|c| !before.contains(c))
        .expect("the call's inner config");
    (child, config)
}

#[test]
fn a_config_left_by_a_killed_call_is_removed_by_the_next_call_and_a_live_ones_never() {
    let h = Harness::new(&[]);
    std::fs::create_dir_all(h.home()).unwrap();
    let (inner, pids) = hanging_inner(&h);
    h.write_config(&[("inner_executablepath", &inner.display().to_string())]);
    // Files that are not ours to remove, beside the configs (in the directory of ours
    // under TMPDIR where they live): another naming, an empty file (a config being
    // created), a symlink, a directory.
    let tmp = tmpdir(&h).join(format!(
        "gpbackup_age_plugin-{}",
        rustix::process::geteuid().as_raw()
    ));
    std::fs::create_dir_all(&tmp).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o700)).unwrap();
    let foreign = [
        tmp.join("gpbackup_age_plugin_inner_OldName.yaml"),
        tmp.join("gpbackup_age_plugin_inner_p1-Empty1.yaml"),
        tmp.join("gpbackup_age_plugin_inner_p2-Link22.yaml"),
        tmp.join("gpbackup_age_plugin_inner_p3-Dir333.yaml"),
        tmp.join("unrelated.yaml"),
    ];
    std::fs::write(&foreign[0], "options:\n").unwrap();
    std::fs::write(&foreign[1], "").unwrap();
    std::os::unix::fs::symlink(&foreign[4], &foreign[2]).unwrap();
    std::fs::create_dir(&foreign[3]).unwrap();
    std::fs::write(&foreign[4], "options:\n").unwrap();

    // A call killed with SIGKILL: nothing of it could remove its config.
    let (mut killed, leftover) = hanging_restore(&h, &pids);
    assert!(leftover
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with(&format!("gpbackup_age_plugin_inner_p{}-", killed.id())));
    assert_eq!(mode_of(&leftover), 0o600);
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(killed.id() as i32).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    killed.wait().unwrap();
    assert!(leftover.exists(), "the leftover to sweep");

    // The next call removes it, while its own inner plugin starts.
    let (mut alive, live_config) = hanging_restore(&h, &pids);
    wait_until("the next call removes the leftover", || !leftover.exists());
    // A call of another command while that one is alive (its inner plugin hangs):
    // the live call's config stays, and so does everything that is not ours.
    let out = call_bounded(&h, "backup_data", &h.data_key(0, 2), b"rows");
    assert_ok(&out);
    assert!(live_config.exists(), "a live call's config was removed");
    for f in &foreign {
        assert!(
            std::fs::symlink_metadata(f).is_ok(),
            "{f:?} is not ours to remove"
        );
    }
    // The live call ends as it would have (SIGTERM: its own cleanup).
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(alive.id() as i32).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    alive.wait().unwrap();
    assert!(!live_config.exists());
    for pid in std::fs::read_to_string(&pids).unwrap().lines() {
        if let Some(group) = pid.parse().ok().and_then(group_of) {
            kill_group(group);
        }
    }
}
