//! Concurrency: gpbackup runs one plugin process per table per segment, many
//! at once on a host, all with the same config path. 64 simultaneous backup_data calls,
//! then 64 simultaneous restore_data calls, then concurrent backup_file/restore_file
//! (distinct files, and the same file), and concurrent backups of the same key.
//! Checks: every object byte-exact; no temp-name collision (every call succeeds, no
//! temporary or inner config left); the call log has exactly one complete line per call
//! (no line lost, merged or interleaved).

mod common;

use std::collections::BTreeSet;
use std::sync::Barrier;
use std::time::Duration;

use common::*;

const N: usize = 64;
/// 64 processes share two cores here: a generous bound, still only a hang detector.
const WIDE_BOUND: Duration = Duration::from_secs(180);

fn call_wide(h: &Harness, command: &str, rest: &str, stdin: &[u8]) -> std::process::Output {
    run_script_within(
        &h.home(),
        &tmpdir(h),
        &format!("{BIN} {command} {} {rest}", h.config.display()),
        stdin,
        WIDE_BOUND,
    )
}

/// The data of call `i`: sizes from 0 to 3 MiB (two frames), text or random.
fn data_of(i: usize) -> Vec<u8> {
    let len = match i % 8 {
        0 => i,                      // tiny, and 0 for i = 0
        7 => (3 << 20) + i,          // two frames: the threaded paths
        _ => (i * 37_123) % 900_000, // up to ~0.9 MB
    };
    if i.is_multiple_of(2) {
        random_bytes(len, i as u64 + 1)
    } else {
        (0..len)
            .map(|j| b"0123456789,abc\n"[(j + i) % 15])
            .collect()
    }
}

/// Runs `f(i)` for i in 0..n on n threads released together.
fn all_at_once<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let barrier = Barrier::new(n);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (f, barrier) = (&f, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    f(i)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    })
}

/// One call log line, checked field by field: timestamp, pid, command, object, counts,
/// duration, then `outcome=` last and only once. Returns (start ms, end ms, command,
/// object, pid).
fn parse_line(line: &str) -> (i64, i64, String, String, u32) {
    let bad = |why: &str| -> ! { panic!("log line {why}: {line:?}") };
    let t: Vec<&str> = line.split(' ').collect();
    if t.len() < 11 {
        bad("is too short");
    }
    let date: Vec<i64> = t[0]
        .split('-')
        .map(|x| x.parse().unwrap_or_else(|_| bad("date")))
        .collect();
    let (hms, ms) = t[1].split_once('.').unwrap_or_else(|| bad("time"));
    let hms: Vec<i64> = hms
        .split(':')
        .map(|x| x.parse().unwrap_or_else(|_| bad("time")))
        .collect();
    if date.len() != 3 || hms.len() != 3 || ms.len() != 3 || t[0].len() != 10 {
        bad("does not start with a timestamp");
    }
    let field = |i: usize, key: &str| -> &str {
        t[i].strip_prefix(key)
            .and_then(|v| v.strip_prefix('='))
            .unwrap_or_else(|| bad(key))
    };
    let pid: u32 = field(2, "pid").parse().unwrap_or_else(|_| bad("pid"));
    let command = field(3, "command").to_string();
    let object = field(4, "object").to_string();
    for (i, key) in [(5, "bytes_in"), (6, "bytes_out")] {
        field(i, key).parse::<u64>().unwrap_or_else(|_| bad(key));
    }
    // A number, or `-` for a call that moved less than 1 MiB.
    let rss = field(8, "peak_rss_kib");
    if rss != "-" {
        rss.parse::<u64>().unwrap_or_else(|_| bad("peak_rss_kib"));
    }
    let duration: i64 = field(7, "duration_ms")
        .parse()
        .unwrap_or_else(|_| bad("duration"));
    if !line.ends_with(" outcome=ok") || line.matches("outcome=").count() != 1 {
        bad("does not end with its outcome, once");
    }
    if line.matches(" pid=").count() != 1 {
        bad("holds more than one record");
    }
    let day = date[0] * 372 + date[1] * 31 + date[2];
    let end =
        ((day * 24 + hms[0]) * 60 + hms[1]) * 60_000 + hms[2] * 1000 + ms.parse::<i64>().unwrap();
    (end - duration, end, command, object, pid)
}

/// The most calls in flight at one time, from the log's start and end times.
fn max_overlap(spans: &[(i64, i64)]) -> usize {
    let mut events: Vec<(i64, i32)> = spans.iter().flat_map(|&(s, e)| [(s, 1), (e, -1)]).collect();
    events.sort();
    let (mut now, mut best) = (0i32, 0i32);
    for (_, d) in events {
        now += d;
        best = best.max(now);
    }
    best as usize
}

#[test]
fn sixty_four_backups_then_sixty_four_restores_at_once() {
    let h = Harness::new(&[]);
    let keys: Vec<String> = (0..N)
        .map(|i| h.data_key((i % 8) as i32, 16384 + i as u32))
        .collect();
    let outs = all_at_once(N, |i| call_wide(&h, "backup_data", &keys[i], &data_of(i)));
    for (i, out) in outs.iter().enumerate() {
        assert_no_panic(out);
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "backup {i}: {}",
            stderr_of(out)
        );
    }
    let outs = all_at_once(N, |i| call_wide(&h, "restore_data", &keys[i], b""));
    for (i, out) in outs.iter().enumerate() {
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "restore {i}: {}",
            stderr_of(out)
        );
        assert!(out.stdout == data_of(i), "restore {i}: wrong bytes");
    }
    // Storage: exactly the 64 objects, no temporary.
    let committed: BTreeSet<_> = committed_objects(&h).into_iter().collect();
    let want: BTreeSet<_> = keys.iter().map(|k| h.stored(k)).collect();
    assert_eq!(committed, want);
    assert!(files_under(&h.storage()).iter().all(|p| !is_inner_tmp(p)));
    assert_tmpdir_clean(&h);
    // The log: one complete line per call, every call there once.
    let lines = h.call_log_lines();
    assert_eq!(lines.len(), 2 * N, "one line per call");
    let mut seen = BTreeSet::new();
    let mut spans = Vec::new();
    for line in &lines {
        let (start, end, command, object, _) = parse_line(line);
        assert!(seen.insert((command, object)), "call logged twice: {line}");
        spans.push((start, end));
    }
    for k in &keys {
        for c in ["backup_data", "restore_data"] {
            assert!(
                seen.contains(&(c.to_string(), k.clone())),
                "{c} {k} not logged"
            );
        }
    }
    let overlap = max_overlap(&spans);
    println!("concurrency reached: {overlap} calls in flight at once");
    assert!(overlap >= 8, "the calls did not overlap ({overlap})");
}

#[test]
fn concurrent_file_backups_and_restores() {
    let h = Harness::new(&[]);
    let dir = h.backup_dir(-1);
    std::fs::create_dir_all(&dir).unwrap();
    let files: Vec<_> = (0..16)
        .map(|i| dir.join(format!("gpbackup_{TS}_file{i}.yaml")))
        .collect();
    for (i, f) in files.iter().enumerate() {
        std::fs::write(f, data_of(i + 1)).unwrap();
    }
    let outs = all_at_once(16, |i| {
        call_wide(&h, "backup_file", &files[i].display().to_string(), b"")
    });
    outs.iter().for_each(assert_ok);
    for f in &files {
        std::fs::remove_file(f).unwrap();
    }
    let outs = all_at_once(16, |i| {
        call_wide(&h, "restore_file", &files[i].display().to_string(), b"")
    });
    outs.iter().for_each(assert_ok);
    for (i, f) in files.iter().enumerate() {
        assert!(std::fs::read(f).unwrap() == data_of(i + 1), "{f:?}");
    }
    // The same file restored by 8 calls at once: each writes its own partial and
    // renames it into place, so the result is whole whichever wins.
    std::fs::remove_file(&files[7]).unwrap();
    let outs = all_at_once(8, |_| {
        call_wide(&h, "restore_file", &files[7].display().to_string(), b"")
    });
    outs.iter().for_each(assert_ok);
    assert!(std::fs::read(&files[7]).unwrap() == data_of(8));
    assert!(partial_files(&dir).is_empty(), "{:?}", partial_files(&dir));
    assert_tmpdir_clean(&h);
    let lines = h.call_log_lines();
    assert_eq!(lines.len(), 16 + 16 + 8);
    lines.iter().for_each(|l| drop(parse_line(l)));
}

#[test]
fn concurrent_backups_of_the_same_key_leave_one_whole_object() {
    let h = Harness::new(&[]);
    let key = h.data_key(0, 16384);
    let outs = all_at_once(8, |i| {
        call_wide(&h, "backup_data", &key, &data_of(8 * i + 7))
    });
    outs.iter().for_each(assert_ok);
    let out = call_wide(&h, "restore_data", &key, b"");
    assert_ok(&out);
    assert!(
        (0..8).any(|i| out.stdout == data_of(8 * i + 7)),
        "the stored object is none of the inputs ({} bytes)",
        out.stdout.len()
    );
    assert_eq!(committed_objects(&h), vec![h.stored(&key)]);
    assert_tmpdir_clean(&h);
}
