//! Helpers for the operator-command tests (keygen, rotate, verify, inspect): keys made
//! with our own `keygen`, and backup sets stored through the plugin exactly the way
//! gpbackup stores them, with gpbackup's own metadata files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::*;

/// A key pair made with `gpbackup_age_plugin keygen`.
pub struct TestKey {
    pub identity: PathBuf,
    pub recipient: String,
}

/// Runs `keygen` into `dir/<name>.txt`.
pub fn keygen(dir: &Path, name: &str) -> TestKey {
    keygen_with(dir, name, &[])
}

/// Runs `keygen --pq` (a hybrid post-quantum key) into `dir/<name>.txt`.
pub fn keygen_pq(dir: &Path, name: &str) -> TestKey {
    keygen_with(dir, name, &["--pq"])
}

fn keygen_with(dir: &Path, name: &str, flags: &[&str]) -> TestKey {
    let identity = dir.join(format!("{name}.txt"));
    let out = Command::new(BIN)
        .arg("keygen")
        .args(flags)
        .arg(&identity)
        .output()
        .expect("run keygen");
    assert!(
        out.status.success(),
        "keygen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    TestKey {
        identity,
        recipient: String::from_utf8(out.stdout).unwrap().trim().to_string(),
    }
}

/// Points the harness config at these recipients and identity files.
pub fn use_keys(
    h: &Harness,
    recipients: &[&TestKey],
    identities: &[&TestKey],
    extra: &[(&str, &str)],
) {
    let recipients = recipients
        .iter()
        .map(|k| k.recipient.clone())
        .collect::<Vec<_>>()
        .join(",");
    let identities = identities
        .iter()
        .map(|k| k.identity.display().to_string())
        .collect::<Vec<_>>()
        .join(",");
    let mut options: Vec<(&str, &str)> = vec![
        ("recipients_file", ""),
        ("recipients", &recipients),
        ("identity_file", &identities),
    ];
    options.extend_from_slice(extra);
    h.write_config(&options);
}

/// How gpbackup was asked to lay out a backup.
#[derive(Clone)]
pub struct SimSpec {
    pub ts: &'static str,
    pub segments: u32,
    pub oids: Vec<u32>,
    pub single_data_file: bool,
    /// "gzip", "zstd" or "none".
    pub compression: &'static str,
    pub with_statistics: bool,
    /// Rows per table per segment.
    pub rows: usize,
}

impl SimSpec {
    pub fn multi_file(ts: &'static str) -> SimSpec {
        SimSpec {
            ts,
            segments: 2,
            oids: vec![16384, 16390, 16402],
            single_data_file: false,
            compression: "gzip",
            with_statistics: true,
            rows: 200,
        }
    }

    pub fn single_data_file(ts: &'static str) -> SimSpec {
        SimSpec {
            ts,
            segments: 2,
            oids: vec![24576, 24580, 24590],
            single_data_file: true,
            compression: "zstd",
            with_statistics: false,
            rows: 200,
        }
    }

    fn ext(&self) -> &'static str {
        match self.compression {
            "gzip" => ".gz",
            "zstd" => ".zst",
            _ => "",
        }
    }

    fn table(&self, oid: u32) -> String {
        format!("t{oid}")
    }
}

/// A backup set as stored: every object's basename and its original bytes.
pub struct SimBackup {
    pub ts: &'static str,
    pub objects: BTreeMap<String, Vec<u8>>,
}

impl SimBackup {
    pub fn data_objects(&self) -> Vec<&String> {
        self.objects
            .keys()
            .filter(|n| {
                let rest = n.trim_start_matches("gpbackup_");
                rest.split('_').next().is_some_and(|c| c.len() < 14) && !n.ends_with("_toc.yaml")
            })
            .collect()
    }
}

fn csv_rows(oid: u32, content: u32, rows: usize) -> Vec<u8> {
    let mut out = String::new();
    for i in 0..rows {
        out.push_str(&format!(
            "{},{},customer-{}-{},{}.{:02}\n",
            i,
            content,
            oid,
            i * 7919 % 1000,
            i * 31 % 977,
            i % 100
        ));
    }
    out.into_bytes()
}

/// Compresses as gpbackup's pipe-through program would (gzip -1 or zstd).
fn compress(data: &[u8], how: &str) -> Vec<u8> {
    let script = match how {
        "gzip" => "gzip -c -1",
        "zstd" => "zstd -c -q -1",
        _ => "cat",
    };
    let out = run_in(Path::new("/tmp"), script, data);
    assert!(out.status.success(), "{script} failed");
    out.stdout
}

/// Stores a backup set through the plugin the way gpbackup does: hooks at every scope,
/// `backup_data` per table per segment (or one stream per segment and a segment TOC
/// with `--single-data-file`), then the coordinator's files with `backup_file`.
pub fn simulate_backup(h: &Harness, spec: &SimSpec) -> SimBackup {
    let ts = spec.ts;
    let ext = spec.ext();
    let mut objects = BTreeMap::new();
    let hook = |command: &str, scope: &str, content: Option<i32>| {
        let dir = h.seg_dir(content.unwrap_or(0), ts);
        let rest = match content {
            Some(c) => format!("{} {scope} \\\"{c}\\\"", dir.display()),
            None => format!("{} {scope}", dir.display()),
        };
        assert_ok(&h.call(command, &rest, b""));
    };
    hook("setup_plugin_for_backup", "master", Some(-1));
    hook("setup_plugin_for_backup", "segment_host", None);
    for c in 0..spec.segments {
        hook("setup_plugin_for_backup", "segment", Some(c as i32));
    }

    // Table data.
    for c in 0..spec.segments {
        let dir = h.seg_dir(c as i32, ts);
        if spec.single_data_file {
            let mut stream = Vec::new();
            let mut toc = String::from("dataentries:\n");
            for &oid in &spec.oids {
                let start = stream.len();
                stream.extend(compress(&csv_rows(oid, c, spec.rows), spec.compression));
                toc.push_str(&format!(
                    "  {oid}:\n    startbyte: {start}\n    endbyte: {}\n",
                    stream.len()
                ));
            }
            let name = format!("gpbackup_{c}_{ts}{ext}");
            let key = dir.join(&name).display().to_string();
            assert_ok(&h.backup_data(&key, &stream));
            objects.insert(name, stream);
            let toc_name = format!("gpbackup_{c}_{ts}_toc.yaml");
            let toc_path = dir.join(&toc_name);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&toc_path, &toc).unwrap();
            assert_ok(&h.call("backup_file", &toc_path.display().to_string(), b""));
            objects.insert(toc_name, toc.into_bytes());
        } else {
            for &oid in &spec.oids {
                let name = format!("gpbackup_{c}_{ts}_{oid}{ext}");
                let key = dir.join(&name).display().to_string();
                let data = compress(&csv_rows(oid, c, spec.rows), spec.compression);
                assert_ok(&h.backup_data(&key, &data));
                objects.insert(name, data);
            }
        }
    }

    // The coordinator's files, in the order gpbackup stores them.
    let coord = h.seg_dir(-1, ts);
    std::fs::create_dir_all(&coord).unwrap();
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    files.push((format!("gpbackup_{ts}_metadata.sql"), metadata_sql(spec)));
    files.push((format!("gpbackup_{ts}_toc.yaml"), toc_yaml(spec)));
    if spec.with_statistics {
        files.push((
            format!("gpbackup_{ts}_statistics.sql"),
            b"UPDATE pg_class SET relpages = 1::int, reltuples = 400::real WHERE relname = 't16384';\n".to_vec(),
        ));
    }
    files.push((
        format!("gpbackup_{ts}_plugin_config.yaml"),
        std::fs::read(&h.config).unwrap(),
    ));
    files.push((format!("gpbackup_{ts}_config.yaml"), config_yaml(spec)));
    files.push((format!("gpbackup_{ts}_report"), report(spec)));
    for (name, bytes) in files {
        let path = coord.join(&name);
        std::fs::write(&path, &bytes).unwrap();
        assert_ok(&h.call("backup_file", &path.display().to_string(), b""));
        objects.insert(name, bytes);
    }

    hook("cleanup_plugin_for_backup", "master", Some(-1));
    hook("cleanup_plugin_for_backup", "segment_host", None);
    for c in 0..spec.segments {
        hook("cleanup_plugin_for_backup", "segment", Some(c as i32));
    }
    SimBackup { ts, objects }
}

fn metadata_sql(spec: &SimSpec) -> Vec<u8> {
    let mut sql = String::from(
        "\nSET client_encoding = 'UTF8';\n\nCREATE DATABASE sales TEMPLATE template0;\n",
    );
    for &oid in &spec.oids {
        sql.push_str(&format!(
            "\n\nCREATE TABLE public.{} (\n\tid integer,\n\tcontent integer,\n\tname text,\n\tamount numeric\n) DISTRIBUTED BY (id);\n",
            spec.table(oid)
        ));
    }
    sql.into_bytes()
}

/// gpbackup's toc.yaml (toc.TOC marshalled by yaml.v2).
fn toc_yaml(spec: &SimSpec) -> Vec<u8> {
    let mut y = String::from(
        "globalentries:\n- schema: \"\"\n  name: sales\n  objecttype: DATABASE\n  referenceobject: \"\"\n  startbyte: 30\n  endbyte: 75\n  tier:\n  - 0\n  - 0\npredataentries:\n",
    );
    let mut pos = 75;
    for &oid in &spec.oids {
        y.push_str(&format!(
            "- schema: public\n  name: {}\n  objecttype: TABLE\n  referenceobject: \"\"\n  startbyte: {pos}\n  endbyte: {}\n  tier:\n  - 1\n  - 1\n",
            spec.table(oid),
            pos + 110
        ));
        pos += 110;
    }
    y.push_str("postdataentries: []\nstatisticsentries: []\ndataentries:\n");
    for &oid in &spec.oids {
        y.push_str(&format!(
            "- schema: public\n  name: {}\n  oid: {oid}\n  attributestring: (id,content,name,amount)\n  rowscopied: {}\n  partitionroot: \"\"\n  isreplicated: false\n  distbyenum: false\n",
            spec.table(oid),
            spec.rows * spec.segments as usize
        ));
    }
    y.push_str("incrementalmetadata:\n  ao: {}\n");
    y.into_bytes()
}

/// gpbackup's config.yaml (history.BackupConfig marshalled by yaml.v2).
fn config_yaml(spec: &SimSpec) -> Vec<u8> {
    let ts = spec.ts;
    let end_time = format!("{}59", &ts[..12]);
    let tables = spec
        .oids
        .iter()
        .map(|&oid| format!("  - public.{}\n", spec.table(oid)))
        .collect::<String>();
    format!(
        "backupdir: \"\"\nbackupversion: 1.30.5\ncompressed: {}\ncompressiontype: {}\ndatabasename: sales\ndatabaseversion: 6.25.3 build commit:367edc6b4dfd909fe38fc288ade9e294d74e3f9a Open Source\nsegmentcount: {}\ndataonly: false\ndatedeleted: \"\"\nexcluderelations: []\nexcludeschemafiltered: false\nexcludeschemas: []\nexcludetablefiltered: false\nincluderelations: []\nincludeschemafiltered: false\nincludeschemas: []\nincludetablefiltered: false\nincremental: false\nleafpartitiondata: false\nmetadataonly: false\nplugin: {BIN}\npluginversion: 0.1.0\nrestoreplan:\n- timestamp: \"{ts}\"\n  tablefqns:\n{tables}singledatafile: {}\ntimestamp: \"{ts}\"\nendtime: \"{}\"\nwithoutglobals: false\nwithstatistics: {}\nstatus: Success\n",
        spec.compression != "none",
        if spec.compression == "none" { "gzip" } else { spec.compression },
        spec.segments,
        spec.single_data_file,
        end_time,
        spec.with_statistics
    )
    .into_bytes()
}

fn report(spec: &SimSpec) -> Vec<u8> {
    format!(
        "Greenplum Database Backup Report\n\ntimestamp key:         {}\ngpdb version:          6.25.3\ngpbackup version:      1.30.5\n\ndatabase name:         sales\ncommand line:          gpbackup --dbname sales --plugin-config /home/gpadmin/age.yaml{}\ncompression:           {}\nplugin executable:     {BIN}\nbackup section:        All Sections\nobject filtering:      None\nincludes statistics:   {}\ndata file format:      {}\nincremental:           False\n\nstart time:            Wed Jan 01 2025 01:01:01\nend time:              Wed Jan 01 2025 01:01:59\nduration:              0:00:58\n\nbackup status:         Success\n\ndatabase size:         1 MB\nsegment count:         {}\n\ncount of database objects in backup:\ntables                 {}\n",
        spec.ts,
        if spec.single_data_file { " --single-data-file" } else { "" },
        spec.compression,
        if spec.with_statistics { "Yes" } else { "No" },
        if spec.single_data_file { "Single Data File Per Segment" } else { "Multiple Data Files Per Segment" },
        spec.segments,
        spec.oids.len()
    )
    .into_bytes()
}

/// Runs the binary with arguments (no shell), HOME set to the harness's.
pub fn admin(h: &Harness, args: &[&str]) -> Output {
    std::fs::create_dir_all(h.home()).unwrap();
    Command::new(BIN)
        .args(args)
        .env("HOME", h.home())
        .output()
        .expect("run gpbackup_age_plugin")
}

/// `age -d -i identity file`: Some(plaintext) if it decrypts.
pub fn age_cli_decrypt(identity: &Path, file: &Path) -> Option<Vec<u8>> {
    let out = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(identity)
        .arg(file)
        .output()
        .expect("run the age CLI (Debian package age)");
    out.status.success().then_some(out.stdout)
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// Asserts success with empty stderr ([`assert_ok`]) and returns stdout.
#[track_caller]
pub fn ok(out: &Output) -> String {
    assert_ok(out);
    stdout(out)
}

/// The value of the `key: value` line `key` of inspect's output.
#[track_caller]
pub fn field<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no '{key}:' line in:\n{out}"))
}

/// The work directory the tests' rotations use.
pub fn work(h: &Harness) -> PathBuf {
    h.path().join("work")
}

/// `rotate CONFIG --work-dir WORK [extra…] TS…`.
pub fn rotate(h: &Harness, extra: &[&str], ts: &[&str]) -> Output {
    let work = work(h);
    let mut args = vec![
        "rotate",
        h.config.to_str().unwrap(),
        "--work-dir",
        work.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(ts);
    admin(h, &args)
}

/// The summaries an operator command printed on stdout, one per backup set: a line
/// naming the command and the set, then its indented lines. Every line fits 100
/// columns (an operator's terminal, a ticket).
#[track_caller]
pub fn summaries(stdout: &str) -> Vec<Vec<String>> {
    let mut blocks: Vec<Vec<String>> = Vec::new();
    for line in stdout.lines() {
        assert!(
            line.chars().count() <= 100,
            "a summary line is wider than 100 columns: {line:?}"
        );
        match blocks.last_mut() {
            Some(block) if line.starts_with(' ') => block.push(line.to_string()),
            _ => blocks.push(vec![line.to_string()]),
        }
    }
    blocks
}

/// The recipient stanza tags of a stored object's header.
pub fn stanza_tags(object: &Path) -> Vec<String> {
    let bytes = std::fs::read(object).unwrap();
    gpbackup_age_plugin::age_file::Header::read(&mut &bytes[..])
        .expect("an age header")
        .stanzas()
        .iter()
        .map(|s| s.tag.clone())
        .collect()
}

/// Restores every object of content 0 of `set` with `restore_data` and compares it.
pub fn restore_all(h: &Harness, set: &SimBackup) {
    for (name, original) in &set.objects {
        let key = h.seg_dir(0, set.ts).join(name).display().to_string();
        let out = h.restore_data(&key);
        assert_ok(&out);
        assert!(out.stdout == *original, "{name} restores to its original");
    }
}

/// A subset restore, as gprestore asks for one table of a single data file: a new
/// object of 3 chunks and a bit, two ranges of it read back (one across chunks).
pub fn check_subset_restore(h: &Harness) {
    let data = random_bytes(3 * 65536 + 99, 7);
    let key = h.data_key(0, 30000);
    assert_ok(&h.backup_data(&key, &data));
    let offsets = h.path().join("offsets");
    std::fs::write(&offsets, "2 5 70000 131000 131100\n").unwrap();
    let out = h.call(
        "restore_data_subset",
        &format!("{key} {}", offsets.display()),
        b"",
    );
    assert_ok(&out);
    let mut want = data[5..70000].to_vec();
    want.extend_from_slice(&data[131000..131100]);
    assert!(out.stdout == want, "the subset differs");
}
