//! The cost of rotation against copying an object through the inner plugin unchanged.
//!
//! Ignored by default (it moves several GiB); run it with
//! `cargo test --release --test admin_rotate_cost -- --ignored --nocapture`.
//! `GPBACKUP_AGE_BENCH_DIR` picks the directory (default: /dev/shm when it exists, so
//! the disk's noise stays out of the numbers), `GPBACKUP_AGE_BENCH_MIB` the object size
//! (default 1024), `GPBACKUP_AGE_BENCH_ROUNDS` the rounds (default 3).

mod common;

use std::path::PathBuf;
use std::time::Instant;

use common::*;

const TS: &str = "20250101010101";
const TS2: &str = "20250101020202";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn timed(what: &str, script: &str, home: &std::path::Path) -> f64 {
    let start = Instant::now();
    let out = run_in(home, script, b"");
    let secs = start.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    secs
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

#[test]
#[ignore]
fn rotating_a_large_object_costs_little_more_than_copying_it() {
    let base = std::env::var_os("GPBACKUP_AGE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            if std::path::Path::new("/dev/shm").is_dir() {
                PathBuf::from("/dev/shm")
            } else {
                std::env::temp_dir()
            }
        });
    let mib = env_or("GPBACKUP_AGE_BENCH_MIB", 1024);
    let rounds = env_or("GPBACKUP_AGE_BENCH_ROUNDS", 3);
    let dir = tempfile::tempdir_in(&base).unwrap();
    let h = Harness::new(&[("root", &dir.path().join("storage").display().to_string())]);
    let a = keygen(h.path(), "a");
    let b = keygen(h.path(), "b");
    use_keys(
        &h,
        &[&a],
        &[&a],
        &[("root", &dir.path().join("storage").display().to_string())],
    );

    // A backup set whose one table holds `mib` MiB of incompressible (gzip-like) data.
    let seg = h.seg_dir(0, TS);
    let coord = h.seg_dir(-1, TS);
    std::fs::create_dir_all(&coord).unwrap();
    let name = format!("gpbackup_0_{TS}_16384.gz");
    let key = seg.join(&name).display().to_string();
    let script = format!(
        "head -c {}M /dev/urandom | {BIN} backup_data {} {key}",
        mib,
        h.config.display()
    );
    assert!(run_in(&h.home(), &script, b"").status.success());
    // The same coordinator files in a second, metadata-only set: rotating it measures
    // the fixed cost of a set (discovery, five small objects, process starts).
    let coord2 = h.seg_dir(-1, TS2);
    std::fs::create_dir_all(&coord2).unwrap();
    for (file, text) in [
        ("config.yaml", format!("compressed: true\ncompressiontype: gzip\nsegmentcount: 1\nsingledatafile: false\nmetadataonly: true\ntimestamp: \"{TS2}\"\n")),
        ("toc.yaml", "dataentries: []\n".to_string()),
        ("metadata.sql", "CREATE TABLE big (a bytea);\n".to_string()),
        ("report", "report\n".to_string()),
        ("plugin_config.yaml", "executablepath: x\n".to_string()),
    ] {
        let path = coord2.join(format!("gpbackup_{TS2}_{file}"));
        std::fs::write(&path, text).unwrap();
        assert_ok(&h.call("backup_file", &path.display().to_string(), b""));
    }
    for (file, text) in [
        ("config.yaml", format!("compressed: true\ncompressiontype: gzip\nsegmentcount: 1\nsingledatafile: false\ntimestamp: \"{TS}\"\n")),
        ("toc.yaml", "dataentries:\n- schema: public\n  name: big\n  oid: 16384\n".to_string()),
        ("metadata.sql", "CREATE TABLE big (a bytea);\n".to_string()),
        ("report", "report\n".to_string()),
        ("plugin_config.yaml", "executablepath: x\n".to_string()),
    ] {
        let path = coord.join(format!("gpbackup_{TS}_{file}"));
        std::fs::write(&path, text).unwrap();
        assert_ok(&h.call("backup_file", &path.display().to_string(), b""));
    }

    // The inner plugin alone, with a config of its own.
    let inner_cfg = h.path().join("inner.yaml");
    std::fs::write(
        &inner_cfg,
        format!(
            "executablepath: {}\noptions:\n  root: \"{}\"\n",
            local_plugin().display(),
            dir.path().join("storage").display()
        ),
    )
    .unwrap();
    let lp = local_plugin();
    let lp = lp.display();
    let cfg = inner_cfg.display();
    let copy_key = seg.join("copy").display().to_string();
    let staged_file = dir.path().join("staged");
    let pipe_copy = format!(
        "set -o pipefail; {lp} restore_data {cfg} {key} | {lp} backup_data {cfg} {copy_key}"
    );
    let staged_copy = format!(
        "{lp} restore_data {cfg} {key} > {s} && sync {s} && {lp} backup_data {cfg} {copy_key} < {s}; rc=$?; rm -f {s}; exit $rc",
        s = staged_file.display()
    );
    use_keys(
        &h,
        &[&b],
        &[&b, &a],
        &[("root", &dir.path().join("storage").display().to_string())],
    );
    let work = dir.path().join("work");
    let rotate = |ts: &str, extra: &str| {
        format!(
            "{BIN} rotate {} {ts} --force --parallel 1 --work-dir {} {extra} > /dev/null",
            h.config.display(),
            work.display()
        )
    };

    // Each rotation runs twice: on the set with the large object, and on the set of
    // small objects alone; the difference is the large object's cost.
    let variants = [
        ("rotate --streaming", "--streaming"),
        (
            "rotate --streaming --check-payload",
            "--streaming --check-payload",
        ),
        ("rotate (staged, default)", ""),
    ];
    let mut copies: [Vec<f64>; 2] = Default::default();
    let mut full: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    let mut fixed: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    for _ in 0..rounds {
        copies[0].push(timed("pipe copy", &pipe_copy, &h.home()));
        copies[1].push(timed("staged copy", &staged_copy, &h.home()));
        for (i, (what, extra)) in variants.iter().enumerate() {
            full[i].push(timed(what, &rotate(TS, extra), &h.home()));
            fixed[i].push(timed(what, &rotate(TS2, extra), &h.home()));
        }
    }
    let min = |v: &[f64]| v.iter().cloned().fold(f64::MAX, f64::min);
    println!(
        "{mib} MiB object in {}, {rounds} rounds, min (median) seconds:",
        base.display()
    );
    let pipe = min(&copies[0]);
    println!(
        "  {:<52} {:6.2} ({:.2})",
        "copy: restore_data | backup_data",
        pipe,
        median(&mut copies[0])
    );
    println!(
        "  {:<52} {:6.2} ({:.2})",
        "copy: restore_data > file; sync; backup_data < file",
        min(&copies[1]),
        median(&mut copies[1])
    );
    for (i, (what, _)) in variants.iter().enumerate() {
        let object = min(&full[i]) - min(&fixed[i]);
        println!(
            "  {:<52} {:6.2} ({:.2}) for the set, {:.2} for the 5 small objects: {:.2} for the large object = {:.2}x the pipe copy",
            what,
            min(&full[i]),
            median(&mut full[i]),
            min(&fixed[i]),
            object,
            object / pipe
        );
    }
    // The object still restores with B alone.
    use_keys(
        &h,
        &[&b],
        &[&b],
        &[("root", &dir.path().join("storage").display().to_string())],
    );
    ok(&admin(&h, &["verify", h.config.to_str().unwrap(), TS]));
}
