//! Memory and threads on a segment host: one plugin process per primary segment (times
//! gpbackup's `--jobs`) runs at once, so a call's memory must be bounded by design, not
//! grow with `workers` or with the core count.
//!
//! Each call runs as gpbackup runs it (`bash -c`, the real local inner plugin), with its
//! peak RSS taken by the kernel: `wait4`'s `ru_maxrss` of the plugin process (bash execs
//! a single command, so the waited-for process is the plugin; the maximum also covers
//! the inner plugin it waited for).

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;

/// The bound a call must stay under, whatever `workers` says.
const MAX_RSS_KIB: u64 = 64 << 10;

/// Table-like text, compressible about 3x as gpbackup's table data is: a stream of
/// `len` bytes fills the pipeline once it holds more frames than are ever in flight.
fn table_text(len: usize, seed: u64) -> Vec<u8> {
    let noise = random_bytes(len / 4 + 64, seed);
    let mut out = Vec::with_capacity(len + 64);
    let mut i = 0;
    while out.len() < len {
        let n = u32::from_le_bytes([noise[i], noise[i + 1], noise[i + 2], 0]);
        out.extend_from_slice(
            format!(
                "{},{},customer_{},2024-01-{:02},OK\n",
                i,
                n % 100_000,
                n % 977,
                n % 28 + 1
            )
            .as_bytes(),
        );
        i = (i + 3) % (noise.len() - 4);
    }
    out.truncate(len);
    out
}

/// A temporary directory holding `mib` MiB of table text, and the file's path.
fn table_file(mib: usize, seed: u64) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("table.csv");
    std::fs::write(&data, table_text(mib << 20, seed)).expect("write data");
    (dir, data)
}

/// Runs `script` through `bash -c` under Python's `os.wait4` with stdin and stdout
/// from/to files; returns (success, stderr of the call, peak RSS in KiB).
fn run_measured(home: &Path, script: &str, stdin: &Path, stdout: &Path) -> (bool, String, u64) {
    const WAIT4: &str = "import os, subprocess, sys\n\
        p = subprocess.Popen(['bash', '-c', sys.argv[1]], stderr=subprocess.PIPE)\n\
        err = p.stderr.read()\n\
        _, status, usage = os.wait4(p.pid, 0)\n\
        sys.stdout.flush()\n\
        os.write(2, err + b'\\nwait4 status=%d maxrss_kib=%d\\n' % (status, usage.ru_maxrss))\n";
    std::fs::create_dir_all(home).expect("home");
    let out = Command::new("python3")
        .arg("-c")
        .arg(WAIT4)
        .arg(script)
        .env("HOME", home)
        .env("TMPDIR", home)
        .stdin(File::open(stdin).expect("stdin file"))
        .stdout(File::create(stdout).expect("stdout file"))
        .stderr(Stdio::piped())
        .output()
        .expect("python3 runs (the test needs it to read wait4's rusage)");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    let last = err
        .trim_end()
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    let field = |name: &str| -> u64 {
        last.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {err:?}"))
    };
    let status = field("status=");
    let call_stderr = err
        .trim_end()
        .rsplit_once('\n')
        .map_or("", |(e, _)| e)
        .trim();
    (status == 0, call_stderr.to_string(), field("maxrss_kib="))
}

/// The notes of the last line of the call log.
fn last_log_line(home: &Path) -> String {
    let dir = home.join("gpAdminLogs");
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).expect("call log dir") {
        text.push_str(&std::fs::read_to_string(entry.expect("entry").path()).expect("log"));
    }
    text.lines().last().expect("a log line").to_string()
}

/// Runs `backup_data` of `data` under `key`, after `prefix` (a command such as
/// `taskset -c 0 `); asserts it succeeded silently; returns its peak RSS and log line.
fn backup(h: &Harness, prefix: &str, key: &str, data: &Path) -> (u64, String) {
    let script = format!("{prefix}{BIN} backup_data {} {key}", h.config.display());
    let (ok, err, rss) = run_measured(&h.home(), &script, data, Path::new("/dev/null"));
    assert!(ok && err.is_empty(), "{script}: backup failed: {err}");
    (rss, last_log_line(&h.home()))
}

/// Backs `data` up and restores it with these options; asserts the round trip and the
/// bound; returns the log lines of the backup and the restore.
fn round_trip_within_bound(extra: &[(&str, &str)], data: &Path, what: &str) -> (String, String) {
    let h = Harness::new(extra);
    let key = h.data_key(0, 1);
    let restored = h.path().join("restored");
    let (rss, backup_log) = backup(&h, "", &key, data);
    assert!(
        rss <= MAX_RSS_KIB,
        "{what}: backup peak RSS {rss} KiB exceeds {MAX_RSS_KIB} KiB ({backup_log})"
    );
    let restore = format!("{BIN} restore_data {} {key}", h.config.display());
    let (ok, err, rss) = run_measured(&h.home(), &restore, Path::new("/dev/null"), &restored);
    assert!(ok && err.is_empty(), "{what}: restore failed: {err}");
    let restore_log = last_log_line(&h.home());
    assert!(
        rss <= MAX_RSS_KIB,
        "{what}: restore peak RSS {rss} KiB exceeds {MAX_RSS_KIB} KiB ({restore_log})"
    );
    assert!(
        std::fs::read(&restored).expect("restored") == std::fs::read(data).expect("data"),
        "{what}: restored data differs"
    );
    (backup_log, restore_log)
}

/// `workers: "64"` (what one per core gave on a 64-core host) and the largest value
/// allowed, on a stream that holds many more frames than are ever in flight: every
/// backup and restore stays under 64 MiB, and the log shows the plan that kept it there.
#[test]
fn peak_rss_stays_under_64_mib_whatever_workers_says() {
    let (_dir, data) = table_file(80, 7);
    for workers in ["64", "256"] {
        let (backup, restore) = round_trip_within_bound(
            &[("workers", workers)],
            &data,
            &format!("workers {workers}"),
        );
        for line in [&backup, &restore] {
            let planned: usize = line
                .split([' ', ';', '"'])
                .find_map(|w| w.strip_prefix("workers="))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no workers= in {line}"));
            assert!(
                (2..64).contains(&planned),
                "the budget, not workers: {workers}, decides the threads: {line}"
            );
        }
    }
}

/// The most memory-hungry compression level holds a large context per worker; the plan
/// counts it, so many workers at level 19 stay under the bound too.
#[test]
fn peak_rss_stays_under_64_mib_at_level_19_with_the_most_workers() {
    let (_dir, data) = table_file(14, 8);
    round_trip_within_bound(
        &[("workers", "256"), ("compression_level", "19")],
        &data,
        "level 19, workers 256",
    );
}

/// A larger budget lets more workers run: the option is the knob, not a fixed cap.
#[test]
fn max_memory_mib_raises_the_plan() {
    let (_dir, data) = table_file(24, 9);
    let h = Harness::new(&[("workers", "64"), ("max_memory_mib", "512")]);
    let (_, line) = backup(&h, "", &h.data_key(0, 2), &data);
    assert!(
        line.contains("workers=64 "),
        "512 MiB fits 64 workers: {line}"
    );
}

/// Unset, `workers` follows the CPUs this process may use: under an affinity mask of
/// one CPU (`taskset`), one worker.
#[test]
fn default_workers_follow_the_cpus_this_process_may_use() {
    let (_dir, data) = table_file(8, 10);
    let h = Harness::new(&[]);
    for (prefix, oid, want) in [
        ("taskset -c 0 ", 3, 1),
        (
            "",
            4,
            std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(gpbackup_age_plugin::pipeline::DEFAULT_WORKERS_CAP),
        ),
    ] {
        let (_, line) = backup(&h, prefix, &h.data_key(0, oid), &data);
        assert!(
            line.contains(&format!("workers={want} ")),
            "{prefix:?}: expected workers={want}: {line}"
        );
    }
}
