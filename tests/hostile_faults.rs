//! Faults: every command that reaches the inner plugin, with an inner plugin
//! that misbehaves on demand (the fault options of examples/local_plugin.sh), and our
//! own process stopped by SIGTERM, SIGINT, SIGHUP or SIGKILL in the middle of a backup.
//!
//! Every failing case checks: non-zero exit; exactly one stderr line, naming the inner
//! plugin and carrying its own stderr where it had any; no panic; no inner config (nor
//! anything else) left in the call's private $TMPDIR; no committed object that restores
//! "successfully" to wrong or partial data; on restore, stdout is a prefix of the
//! original (only authenticated, verified bytes are written) and restore_file leaves
//! neither the file nor a partial of it.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use common::*;

/// 5 MiB of incompressible data: three frames (2 + 2 + 1 MiB), about 80 payload chunks.
const LEN: usize = 5 << 20;
/// The byte ranges asked of restore_data_subset, and the offsets file saying so.
const RANGES: [(usize, usize); 2] = [(100, 200), (3_000_000, 3_000_100)];

fn original() -> Vec<u8> {
    random_bytes(LEN, 0x5EED)
}

fn subset_of(data: &[u8]) -> Vec<u8> {
    RANGES
        .iter()
        .flat_map(|&(s, e)| data[s..e].to_vec())
        .collect()
}

/// Our data-moving commands and the inner command each one uses.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Cmd {
    BackupData,
    BackupFile,
    RestoreData,
    RestoreSubset,
    RestoreFile,
}

impl Cmd {
    const BACKUPS: [Cmd; 2] = [Cmd::BackupData, Cmd::BackupFile];
    const RESTORES: [Cmd; 3] = [Cmd::RestoreData, Cmd::RestoreSubset, Cmd::RestoreFile];

    /// The inner plugin command ours calls: files travel through the data commands.
    fn inner(self) -> &'static str {
        match self {
            Cmd::BackupData | Cmd::BackupFile => "backup_data",
            _ => "restore_data",
        }
    }
}

/// A test world for one command: the harness, the data key or file path, the data.
struct World {
    h: Harness,
    cmd: Cmd,
    key: String,
    data: Vec<u8>,
}

impl World {
    /// For restores, the object is first backed up with a clean config.
    fn new(cmd: Cmd) -> World {
        let h = Harness::new(&[]);
        let data = original();
        let key = match cmd {
            Cmd::BackupFile | Cmd::RestoreFile => {
                let path = h.backup_dir(-1).join(format!("gpbackup_{TS}_metadata.sql"));
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &data).unwrap();
                path.display().to_string()
            }
            _ => h.data_key(0, 16384),
        };
        let w = World { h, cmd, key, data };
        if Cmd::RESTORES.contains(&cmd) {
            let out = match cmd {
                Cmd::RestoreFile => call_bounded(&w.h, "backup_file", &w.key, b""),
                _ => call_bounded(&w.h, "backup_data", &w.key, &w.data),
            };
            assert_ok(&out);
            if cmd == Cmd::RestoreFile {
                std::fs::remove_file(&w.key).unwrap();
            }
        }
        w
    }

    /// Sets the fault options (on the inner command this command uses).
    fn fault(&self, fault: &str, bytes: Option<usize>) {
        let bytes = bytes.map(|b| b.to_string());
        let mut extra = vec![
            ("fault", fault),
            ("fault_commands", self.cmd.inner()),
            ("stall_timeout_seconds", "1"),
        ];
        if let Some(b) = &bytes {
            extra.push(("fault_bytes", b));
        }
        self.h.write_config(&extra);
    }

    fn run(&self) -> Output {
        let h = &self.h;
        match self.cmd {
            Cmd::BackupData => call_bounded(h, "backup_data", &self.key, &self.data),
            Cmd::BackupFile => call_bounded(h, "backup_file", &self.key, b""),
            Cmd::RestoreData => call_bounded(h, "restore_data", &self.key, b""),
            Cmd::RestoreSubset => {
                let offsets = h.path().join("offsets");
                let text = format!(
                    "{} {}\n",
                    RANGES.len(),
                    RANGES
                        .iter()
                        .map(|(s, e)| format!("{s} {e}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                );
                std::fs::write(&offsets, text).unwrap();
                call_bounded(
                    h,
                    "restore_data_subset",
                    &format!("{} {}", self.key, offsets.display()),
                    b"",
                )
            }
            Cmd::RestoreFile => call_bounded(h, "restore_file", &self.key, b""),
        }
    }

    /// What a successful call writes on stdout.
    fn expected_stdout(&self) -> Vec<u8> {
        match self.cmd {
            Cmd::RestoreData => self.data.clone(),
            Cmd::RestoreSubset => subset_of(&self.data),
            _ => Vec::new(),
        }
    }

    /// The checks every failing call must pass; `needles` must be in its stderr line.
    #[track_caller]
    fn assert_failed_cleanly(&self, out: &Output, needles: &[&str]) -> String {
        let line = assert_one_line_failure(out, needles);
        assert_tmpdir_clean(&self.h);
        let dir = Path::new(&self.key).parent().unwrap();
        assert!(
            partial_files(dir).is_empty(),
            "partial files left: {:?}",
            partial_files(dir)
        );
        match self.cmd {
            Cmd::BackupData | Cmd::BackupFile => {
                assert!(
                    committed_objects(&self.h).is_empty(),
                    "a failed backup committed {:?}",
                    committed_objects(&self.h)
                );
                assert_no_bad_object(&self.h, &self.key, &self.data);
                if self.cmd == Cmd::BackupFile {
                    assert_eq!(
                        std::fs::read(&self.key).unwrap(),
                        self.data,
                        "local file changed"
                    );
                }
            }
            Cmd::RestoreData | Cmd::RestoreSubset => {
                assert_prefix(&out.stdout, &self.expected_stdout());
                self.assert_object_intact();
            }
            Cmd::RestoreFile => {
                assert!(
                    !Path::new(&self.key).exists(),
                    "a failed restore_file left the file"
                );
                assert!(out.stdout.is_empty());
                self.assert_object_intact();
            }
        }
        line
    }

    /// A restore fault must not have touched the stored object.
    #[track_caller]
    fn assert_object_intact(&self) {
        self.h.write_config(&[]);
        let out = call_bounded(&self.h, "restore_data", &self.key, b"");
        assert_ok(&out);
        assert!(out.stdout == self.data, "stored object no longer restores");
    }
}

/// The inner plugin's name as it appears in our messages.
const INNER: &str = "local_plugin.sh";

#[test]
fn inner_exits_non_zero_before_reading() {
    for cmd in Cmd::BACKUPS.into_iter().chain(Cmd::RESTORES) {
        let w = World::new(cmd);
        w.fault("exit_before_read", None);
        let out = w.run();
        let line = w.assert_failed_cleanly(
            &out,
            &[
                "inner plugin",
                INNER,
                "local_plugin: ",
                "injected fault exit_before_read",
            ],
        );
        assert_exit_status_or_said(cmd, &line, "exit status 3");
        assert!(out.stdout.is_empty(), "{cmd:?}: stdout not empty: {line}");
    }
}

#[test]
fn inner_exits_non_zero_after_part_of_the_stream() {
    // Backups: the inner plugin reads 1000 bytes; restores: it sends 3.5 MB of the
    // object (past the first 2 MiB frame, so a verified prefix may be written).
    for (cmd, bytes) in [
        (Cmd::BackupData, 1000),
        (Cmd::BackupFile, 1000),
        (Cmd::RestoreData, 3_500_000),
        (Cmd::RestoreSubset, 3_500_000),
        (Cmd::RestoreFile, 3_500_000),
        (Cmd::RestoreData, 150),
    ] {
        let w = World::new(cmd);
        w.fault("exit_after_bytes", Some(bytes));
        let out = w.run();
        let line = w.assert_failed_cleanly(
            &out,
            &["inner plugin", INNER, "injected fault exit_after_bytes"],
        );
        assert_exit_status_or_said(cmd, &line, "exit status 4");
        assert!(out.stdout.len() <= bytes, "{cmd:?}: more out than in");
    }
}

#[test]
fn inner_killed_after_part_of_the_stream() {
    for (cmd, bytes) in [
        (Cmd::BackupData, 1000),
        (Cmd::BackupFile, 300_000),
        (Cmd::RestoreData, 3_500_000),
        (Cmd::RestoreSubset, 3_500_000),
        (Cmd::RestoreFile, 1000),
    ] {
        let w = World::new(cmd);
        w.fault("kill_after_bytes", Some(bytes));
        let out = w.run();
        let line = w.assert_failed_cleanly(&out, &["inner plugin", INNER]);
        // A backup kills the inner plugin as soon as a write fails (so it can commit
        // nothing): if it had not been reaped yet, what is known is that it stopped
        // reading.
        assert!(
            line.contains("killed by signal 9")
                || (Cmd::BACKUPS.contains(&cmd) && line.contains("stopped reading its input")),
            "{cmd:?}: {line}"
        );
    }
}

/// Restores always report the inner plugin's exit status. A backup kills the inner
/// plugin as soon as a write to it fails (before it could commit anything), so when it
/// was still exiting its status is not known, only its stderr ("said: ...").
#[track_caller]
fn assert_exit_status_or_said(cmd: Cmd, line: &str, status: &str) {
    if Cmd::BACKUPS.contains(&cmd) {
        assert!(
            line.contains(status) || line.contains(" said: "),
            "{cmd:?}: {line}"
        );
    } else {
        assert!(line.contains(status), "{cmd:?}: {line}");
    }
}

#[test]
fn inner_stalls_and_the_stall_timeout_ends_the_call() {
    // The stalls run side by side: each takes about a second.
    std::thread::scope(|s| {
        for cmd in Cmd::BACKUPS.into_iter().chain(Cmd::RESTORES) {
            s.spawn(move || {
                let w = World::new(cmd);
                w.fault("stall", None);
                let started = std::time::Instant::now();
                let out = w.run();
                w.assert_failed_cleanly(
                    &out,
                    &[
                        "inner plugin",
                        INNER,
                        "stalled",
                        "stall_timeout_seconds",
                        "killed",
                    ],
                );
                assert!(out.stdout.is_empty(), "{cmd:?} wrote data");
                assert!(
                    started.elapsed() >= std::time::Duration::from_secs(1),
                    "{cmd:?}: ended before the timeout"
                );
            });
        }
    });
}

#[test]
fn a_slow_producer_is_not_a_stall() {
    // gpbackup's COPY may pause for long: time spent waiting for *our* input never
    // counts towards stall_timeout_seconds. Three pieces, 1.5 s apart, timeout 1 s.
    let h = Harness::new(&[("stall_timeout_seconds", "1")]);
    let key = h.data_key(0, 16385);
    let mut child = spawn_shell(
        &h,
        &format!("exec {BIN} backup_data {} {key}", h.config.display()),
        Stdio::piped(),
    );
    let mut stdin = child.stdin.take().unwrap();
    let mut sent = Vec::new();
    for i in 0..3u64 {
        let piece = random_bytes(100_000, 100 + i);
        stdin.write_all(&piece).unwrap();
        sent.extend_from_slice(&piece);
        // The stimulus: a producer that pauses (not synchronisation).
        std::thread::sleep(std::time::Duration::from_millis(1500));
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_ok(&out);
    let back = call_bounded(&h, "restore_data", &key, b"");
    assert_ok(&back);
    assert!(back.stdout == sent);
}

#[test]
fn inner_writes_garbage_instead_of_the_object() {
    for cmd in Cmd::RESTORES {
        let w = World::new(cmd);
        w.fault("garbage_stdout", Some(5000));
        let out = w.run();
        w.assert_failed_cleanly(&out, &["not encrypted by gpbackup_age_plugin"]);
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn inner_returns_a_truncated_object() {
    // Where the object is cut: inside the age header, at a payload chunk boundary,
    // inside a chunk, at zero bytes.
    let chunk = 65536 + 16;
    for cmd in Cmd::RESTORES {
        let w = World::new(cmd);
        let stored = std::fs::read(w.h.stored(&w.key)).unwrap();
        let payload = payload_start(&stored);
        for (cut, needle) in [
            (100, "age header is truncated"),
            (payload + 3 * chunk, "encrypted payload is truncated"),
            (payload + 40 * chunk, "encrypted payload is truncated"),
            (
                payload + 3 * chunk + 1000,
                "authentication failed at payload chunk 3",
            ),
            (0, "empty object"),
        ] {
            w.fault("truncate_stdout", Some(cut));
            let out = w.run();
            w.assert_failed_cleanly(&out, &[needle]);
        }
    }
}

#[test]
fn a_subset_restore_needs_only_the_bytes_up_to_its_last_range() {
    // A cut past the last requested range is not seen by restore_data_subset, which
    // stops reading there: its output is whole and verified (every byte authenticated
    // and decompressed to its descriptor's length), and it succeeds.
    let w = World::new(Cmd::RestoreSubset);
    // Cut 5 bytes before the end: inside the last payload chunk, which the reader
    // never needs (it reads 1 MiB batches of chunks, and the last range ends in frame 2).
    let total = std::fs::metadata(w.h.stored(&w.key)).unwrap().len() as usize;
    w.fault("truncate_stdout", Some(total - 5));
    let out = w.run();
    assert_ok(&out);
    assert!(out.stdout == subset_of(&w.data));
    assert_tmpdir_clean(&w.h);
}

#[test]
fn inner_stderr_with_exit_0_is_logged_not_failed_when_the_data_verified() {
    // Decided: a call whose inner plugin exits 0 succeeds even if it wrote to stderr,
    // our stderr stays empty (anything there would be read as an error), and its text
    // is in the call log. For a backup the object is complete; for a restore every byte
    // written was authenticated and checked (a subset restore: every byte it wrote).
    for cmd in Cmd::BACKUPS.into_iter().chain(Cmd::RESTORES) {
        let w = World::new(cmd);
        w.fault("stderr_noise", None);
        let out = w.run();
        assert_ok(&out);
        assert_tmpdir_clean(&w.h);
        assert!(out.stdout == w.expected_stdout(), "{cmd:?}: output differs");
        let logged = w.h.call_log_lines();
        let last = logged.last().expect("a call log line");
        assert!(
            last.contains("said: local_plugin: warning noise") && last.ends_with("outcome=ok"),
            "{cmd:?}: {last}"
        );
        w.h.write_config(&[]);
        match cmd {
            Cmd::RestoreFile => assert!(std::fs::read(&w.key).unwrap() == w.data),
            _ => {
                let back = call_bounded(&w.h, "restore_data", &w.key, b"");
                assert_ok(&back);
                assert!(back.stdout == w.data, "{cmd:?}: object differs");
            }
        }
    }
}

#[test]
fn inner_stderr_fails_a_restore_whose_inner_plugin_exits_non_zero_or_that_did_not_verify() {
    // A purpose-built inner plugin: the real one, then a warning on stderr and the exit
    // status asked for, after every byte of the object was written.
    for (code, cmd) in [
        (0, Cmd::RestoreData),
        (0, Cmd::RestoreFile),
        (3, Cmd::RestoreData),
        (3, Cmd::RestoreFile),
    ] {
        let w = World::new(cmd);
        wrap_inner(
            &w.h,
            "warning_inner.sh",
            "",
            &format!("echo 'inner: warning: throttled by the bucket' >&2\nexit {code}"),
        );
        let out = w.run();
        if code == 0 {
            assert_ok(&out);
            assert!(out.stdout == w.expected_stdout(), "{cmd:?}");
            let last = w.h.call_log_lines().pop().unwrap();
            assert!(
                last.contains("said: inner: warning: throttled by the bucket")
                    && last.ends_with("outcome=ok"),
                "{cmd:?}: {last}"
            );
        } else {
            w.assert_failed_cleanly(
                &out,
                &[
                    "warning_inner.sh restore_data failed with exit status 3",
                    "inner: warning: throttled by the bucket",
                ],
            );
        }
    }
    // A restore that did not verify still fails with the inner plugin's text: the
    // object cut short by an inner plugin that warned and exited 0.
    let w = World::new(Cmd::RestoreData);
    wrap_inner(
        &w.h,
        "cutting_inner.sh",
        " | head -c 1000000",
        "echo 'inner: warning: connection reset' >&2",
    );
    let out = w.run();
    w.assert_failed_cleanly(
        &out,
        &[
            "authentication failed at payload chunk",
            "cutting_inner.sh restore_data said: inner: warning: connection reset",
        ],
    );
}

#[test]
fn a_reader_that_stops_early_is_not_an_error() {
    // gpbackup_helper never reads a restore to its end: once it has its tables it exits
    // and our next write gets EPIPE. Our exit status (PIPESTATUS[0]) is 0, stderr is
    // empty, the inner plugin is stopped, and the log says what happened.
    for cmd in [Cmd::RestoreData, Cmd::RestoreSubset] {
        for plaintext in [false, true] {
            let w = World::new(cmd);
            if plaintext {
                // An old unencrypted object, passed through: the same rule.
                std::fs::write(w.h.stored(&w.key), &w.data).unwrap();
                w.h.write_config(&[("allow_plaintext_restore", "on")]);
            }
            let offsets = w.h.path().join("offsets");
            // More than any pipe holds, so the reader is gone before the last write
            // whatever the scheduling.
            std::fs::write(&offsets, "2 100 1000100 3000000 4000000").unwrap();
            let call = match cmd {
                Cmd::RestoreSubset => format!(
                    "restore_data_subset {} {} {}",
                    w.h.config.display(),
                    w.key,
                    offsets.display()
                ),
                _ => format!("restore_data {} {}", w.h.config.display(), w.key),
            };
            let err = w.h.path().join("stderr");
            let out = run_script(
                &w.h.home(),
                &tmpdir(&w.h),
                &format!(
                    "{BIN} {call} 2>'{}' | head -c 50 >/dev/null; echo \"${{PIPESTATUS[@]}}\"",
                    err.display()
                ),
                b"",
            );
            let statuses = String::from_utf8_lossy(&out.stdout).trim().to_string();
            assert_eq!(statuses, "0 0", "{cmd:?} plaintext {plaintext}");
            assert_eq!(std::fs::read_to_string(&err).unwrap(), "", "{cmd:?}");
            assert_tmpdir_clean(&w.h);
            let last = w.h.call_log_lines().pop().unwrap();
            let bytes_out: u64 = field_of(&last, "bytes_out").parse().unwrap();
            assert!(bytes_out >= 50, "{last}");
            assert!(
                last.ends_with(&format!(
                    "outcome=the reader closed the stream after {bytes_out} bytes"
                )),
                "{cmd:?}: {last}"
            );
            assert!(
                field_of(&last, "bytes_in").parse::<u64>().unwrap() > 0,
                "{last}"
            );
        }
    }
}

#[test]
fn failed_calls_log_the_bytes_that_moved() {
    // A restore of an object damaged in its third frame: the first verified frame is out
    // (2 MiB, stored), and maybe the second, before the damage is found.
    let w = World::new(Cmd::RestoreData);
    let stored = w.h.stored(&w.key);
    let mut bytes = std::fs::read(&stored).unwrap();
    let at = bytes.len() - 100_000;
    bytes[at] ^= 1;
    std::fs::write(&stored, &bytes).unwrap();
    let out = w.run();
    assert_one_line_failure(&out, &["authentication failed"]);
    let last = w.h.call_log_lines().pop().unwrap();
    assert!(last.contains("outcome=error: "), "{last}");
    let bytes_in: u64 = field_of(&last, "bytes_in").parse().unwrap();
    let bytes_out: u64 = field_of(&last, "bytes_out").parse().unwrap();
    assert_eq!(bytes_out, out.stdout.len() as u64, "{last}");
    assert!(bytes_out >= 2 << 20 && bytes_in > bytes_out, "{last}");

    // A backup whose inner plugin fails after reading 2 MB.
    let w = World::new(Cmd::BackupData);
    w.fault("exit_after_bytes", Some(2_000_000));
    let out = w.run();
    assert_one_line_failure(&out, &["injected fault exit_after_bytes"]);
    let last = w.h.call_log_lines().pop().unwrap();
    assert!(last.contains("outcome=error: "), "{last}");
    assert!(
        field_of(&last, "bytes_in").parse::<u64>().unwrap() >= 2_000_000,
        "{last}"
    );
    assert!(
        field_of(&last, "bytes_out").parse::<u64>().unwrap() >= 2_000_000,
        "{last}"
    );
}

/// Makes the config's inner plugin a script `name` that runs the real one with `pipe`
/// after it (a shell pipeline suffix), then the shell lines `then`.
fn wrap_inner(h: &Harness, name: &str, pipe: &str, then: &str) {
    let script = h.path().join(name);
    write_script(
        &script,
        &format!(
            "#!/usr/bin/env bash\n'{}' \"$@\"{pipe}\n{then}\n",
            local_plugin().display()
        ),
    );
    h.write_config(&[("inner_executablepath", &script.display().to_string())]);
}

/// The value of `name=` in a call log line.
fn field_of<'a>(line: &'a str, name: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name}= in {line}"))
}

/// The commands that move no data, as gpbackup calls them: each hook at the master
/// scope, or at every scope with `all_scopes`, and delete_backup.
fn control_calls(h: &Harness, all_scopes: bool) -> Vec<(&'static str, String)> {
    let dir = h.backup_dir(-1).display().to_string();
    let seg = h.backup_dir(0).display().to_string();
    let mut calls = Vec::new();
    for hook in [
        "setup_plugin_for_backup",
        "setup_plugin_for_restore",
        "cleanup_plugin_for_backup",
        "cleanup_plugin_for_restore",
    ] {
        calls.push((hook, format!("{dir} master \\\"-1\\\"")));
        if all_scopes {
            calls.push((hook, format!("{seg} segment_host")));
            calls.push((hook, format!("{seg} segment \\\"0\\\"")));
        }
    }
    calls.push(("delete_backup", TS.to_string()));
    calls
}

#[test]
fn hooks_and_delete_backup_report_every_inner_failure() {
    std::thread::scope(|s| {
        for (fault, needles) in [
            (
                "exit_before_read",
                vec!["exit status 3", "injected fault exit_before_read"],
            ),
            (
                "exit_after_bytes",
                vec!["exit status 4", "injected fault exit_after_bytes"],
            ),
            ("kill_after_bytes", vec!["killed by signal 9"]),
            ("stall", vec!["stalled", "stall_timeout_seconds"]),
        ] {
            s.spawn(move || {
                let h = Harness::new(&[]);
                // Something for delete_backup to (fail to) delete.
                let key = h.data_key(0, 16384);
                let data = random_bytes(1000, 1);
                assert_ok(&call_bounded(&h, "backup_data", &key, &data));
                for (command, rest) in control_calls(&h, false) {
                    h.write_config(&[
                        ("fault", fault),
                        ("fault_commands", command),
                        ("fault_bytes", "0"),
                        ("stall_timeout_seconds", "1"),
                    ]);
                    let out = call_bounded(&h, command, &rest, b"");
                    let mut all = vec!["inner plugin", INNER, command];
                    all.extend(needles.iter().copied());
                    assert_one_line_failure(&out, &all);
                    assert_tmpdir_clean(&h);
                    assert!(
                        h.stored(&key).exists(),
                        "{command} deleted data while failing"
                    );
                }
            });
        }
    });
}

#[test]
fn hooks_and_delete_backup_succeed_quietly_despite_inner_stderr() {
    let h = Harness::new(&[]);
    for (command, rest) in control_calls(&h, true) {
        h.write_config(&[("fault", "stderr_noise"), ("fault_commands", command)]);
        let out = call_bounded(&h, command, &rest, b"");
        assert_ok(&out);
        assert_tmpdir_clean(&h);
    }
}

/// Every command that reaches the inner plugin, with its arguments (data on stdin).
fn every_call(h: &Harness) -> Vec<(&'static str, String, Vec<u8>)> {
    let file = h.backup_dir(-1).join(format!("gpbackup_{TS}_toc.yaml"));
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, b"toc").unwrap();
    let offsets = h.path().join("offsets");
    std::fs::write(&offsets, "1 0 2\n").unwrap();
    let key = h.data_key(0, 16384);
    let mut calls = vec![
        ("backup_data", key.clone(), b"some data".to_vec()),
        ("backup_file", file.display().to_string(), Vec::new()),
        ("restore_data", key.clone(), Vec::new()),
        (
            "restore_data_subset",
            format!("{key} {}", offsets.display()),
            Vec::new(),
        ),
        ("restore_file", file.display().to_string(), Vec::new()),
    ];
    calls.extend(
        control_calls(h, false)
            .into_iter()
            .map(|(c, rest)| (c, rest, Vec::new())),
    );
    calls
}

#[test]
fn a_missing_or_unusable_inner_plugin_is_refused_by_every_command() {
    let h = Harness::new(&[]);
    let not_exec = h.path().join("not_executable.sh");
    std::fs::copy(local_plugin(), &not_exec).unwrap();
    std::fs::set_permissions(
        &not_exec,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let missing = h.path().join("no_such_plugin");
    let dir = h.path().join("a_directory");
    std::fs::create_dir_all(&dir).unwrap();
    for (inner, needle) in [
        (&missing, "no such file"),
        (&not_exec, "is not an executable file"),
        (&dir, "is not an executable file"),
    ] {
        h.write_config(&[("inner_executablepath", &inner.display().to_string())]);
        for (command, rest, stdin) in every_call(&h) {
            let out = call_bounded(&h, command, &rest, &stdin);
            let line = assert_one_line_failure(&out, &["inner_executablepath", needle]);
            assert!(
                line.contains(&inner.display().to_string()),
                "{command}: {line}"
            );
            assert_tmpdir_clean(&h);
            assert!(committed_objects(&h).is_empty());
        }
    }
}

#[test]
fn an_inner_plugin_that_cannot_start_is_reported_and_cleaned_up() {
    // Executable, but its interpreter does not exist: it passes the config check and
    // fails only when started, after its config was written. That config must go too.
    let h = Harness::new(&[]);
    let broken = h.path().join("broken_inner.sh");
    write_script(&broken, "#!/nonexistent/interpreter\n");
    h.write_config(&[("inner_executablepath", &broken.display().to_string())]);
    for (command, rest, stdin) in every_call(&h) {
        let out = call_bounded(&h, command, &rest, &stdin);
        let line = assert_one_line_failure(&out, &["broken_inner.sh"]);
        assert!(
            line.contains("cannot start inner plugin") || line.contains("failed with exit status"),
            "{command}: {line}"
        );
        assert_tmpdir_clean(&h);
        assert!(committed_objects(&h).is_empty());
    }
}

/// A backup_data in flight: our process (exec'd by bash, so its pid is the child's),
/// its stdin kept open, and the inner plugin's pid read from its temporary's name.
struct InFlight {
    h: Harness,
    key: String,
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    inner_group: u32,
}

/// Starts a backup_data whose inner plugin would commit a partial object if it ever
/// received SIGTERM (fault commit_partial), feeds it 3 MiB, and returns once the inner
/// plugin has received some of it.
fn backup_in_flight() -> InFlight {
    let h = Harness::new(&[
        ("fault", "commit_partial"),
        ("fault_commands", "backup_data"),
    ]);
    let key = h.data_key(0, 16384);
    let mut child = spawn_shell(
        &h,
        &format!("exec {BIN} backup_data {} {key}", h.config.display()),
        Stdio::piped(),
    );
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&random_bytes(3 << 20, 9)).unwrap();
    let inner_pid = inner_writer_pid(&h, &key);
    // The inner plugin runs in a process group of its own (its keeper's), not ours.
    let inner_group = group_of(inner_pid).expect("inner plugin not running");
    assert_ne!(inner_group, group_of(child.id()).unwrap());
    InFlight {
        h,
        key,
        child,
        stdin,
        inner_group,
    }
}

fn signal(pid: u32, sig: rustix::process::Signal) {
    rustix::process::kill_process(rustix::process::Pid::from_raw(pid as i32).unwrap(), sig)
        .unwrap();
}

/// Waits (bounded) for our process to end; the stdin pipe stays open until then.
fn wait_bounded(f: InFlight) -> (Output, InFlight2) {
    let InFlight {
        h,
        key,
        child,
        stdin,
        inner_group,
    } = f;
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(BOUND) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            kill_group(pid);
            panic!("the plugin did not end after the signal");
        }
    };
    drop(stdin);
    (
        out,
        InFlight2 {
            h,
            key,
            inner_group,
        },
    )
}

struct InFlight2 {
    h: Harness,
    key: String,
    inner_group: u32,
}

impl InFlight2 {
    /// The inner plugin's whole process group is gone and committed nothing: at most
    /// its own uncommitted temporary is left.
    #[track_caller]
    fn assert_inner_died_without_committing(&self) {
        wait_until("the inner plugin's process group is gone", || {
            !group_alive(self.inner_group)
        });
        assert!(
            !self.h.stored(&self.key).exists(),
            "a partial object was committed"
        );
        let committed = committed_objects(&self.h);
        assert!(committed.is_empty(), "committed: {committed:?}");
        for f in files_under(&self.h.storage()) {
            assert!(
                is_inner_tmp(&f) || f.ends_with(".hooks.log"),
                "unexpected file in storage: {f:?}"
            );
        }
    }
}

#[test]
fn sigterm_sigint_sighup_mid_backup_kill_the_inner_plugin_and_remove_its_config() {
    use rustix::process::Signal;
    for (sig, num) in [(Signal::TERM, 15), (Signal::INT, 2), (Signal::HUP, 1)] {
        let f = backup_in_flight();
        let pid = f.child.id();
        // The inner config exists while the call runs, readable by its owner only.
        let configs: Vec<PathBuf> = files_under(&tmpdir(&f.h))
            .into_iter()
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .starts_with("gpbackup_age_plugin_inner_")
            })
            .collect();
        assert_eq!(configs.len(), 1, "one inner config expected");
        assert_eq!(mode_of(&configs[0]), 0o600);
        signal(pid, sig);
        let (out, f) = wait_bounded(f);
        assert_no_panic(&out);
        assert_eq!(
            out.status.code(),
            Some(128 + num),
            "exit status after signal {num}"
        );
        f.assert_inner_died_without_committing();
        assert_tmpdir_clean(&f.h);
    }
}

#[test]
fn sigkill_mid_backup_takes_the_inner_plugin_along() {
    let f = backup_in_flight();
    let pid = f.child.id();
    signal(pid, rustix::process::Signal::KILL);
    let (out, f) = wait_bounded(f);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(9));
    // Our keeper process kills the inner plugin's group before the write end it holds
    // closes; had the plugin lived on, or seen end-of-file first, it would have
    // committed a 3 MiB prefix.
    wait_until("the inner plugin's process group is gone", || {
        !group_alive(f.inner_group)
    });
    assert!(
        !f.h.stored(&f.key).exists(),
        "the inner plugin committed a prefix after SIGKILL"
    );
    // Nothing could remove the inner config, but nobody else can read it.
    let left = files_under(&tmpdir(&f.h));
    assert!(left.len() <= 1, "{left:?}");
    for config in left {
        assert!(
            config
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("gpbackup_age_plugin_inner_"),
            "{config:?}"
        );
        assert_eq!(mode_of(&config), 0o600, "{config:?} is readable by others");
    }
}

/// The race the keeper closes: with the inner plugin tied to us by `PR_SET_PDEATHSIG`
/// alone, the kernel closed our end of the pipe before delivering the signal, and the
/// plugin committed a prefix in 3 of about 130 tries on 2 busy cores. 60 tries, 3 at a
/// time to load the machine; none may commit.
#[test]
fn sigkill_never_lets_the_inner_plugin_commit_a_prefix() {
    let mut committed = 0;
    for _ in 0..20 {
        let flights: Vec<InFlight> = (0..3).map(|_| backup_in_flight()).collect();
        for f in &flights {
            signal(f.child.id(), rustix::process::Signal::KILL);
        }
        for f in flights {
            let (_, f) = wait_bounded(f);
            wait_until("the inner plugin's process group is gone", || {
                !group_alive(f.inner_group)
            });
            committed += usize::from(f.h.stored(&f.key).exists());
        }
    }
    assert_eq!(
        committed, 0,
        "the inner plugin committed a prefix after SIGKILL"
    );
}
