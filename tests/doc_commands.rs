//! Every shell command the docs tell an operator to run is run here, as written, so a
//! document and the code cannot drift apart.
//!
//! Each ```sh (or bash, shell, console) block in README.md, docs/*.md and keys/README.md
//! carries a marker on the line before its fence:
//!
//! - `<!-- doc-test: run -->`: run, and it must succeed;
//! - `<!-- doc-test: run fails -->`: run, and it must fail (a command the docs show
//!   being refused);
//! - `<!-- doc-test: run with=FIXTURE -->`: run after preparing FIXTURE (below);
//! - `<!-- doc-test: skip REASON -->`: not run here, for the reason given (gpbackup
//!   itself, gpssh, a cloud account, the test suite or a benchmark).
//!
//! A block without a marker, or a skip without a reason, fails the test, so a new
//! command in the docs is run or explicitly excused.
//!
//! The blocks of one document run in order, each in a fresh `bash -e -o pipefail`, in
//! one world of their own: a temp dir holding the working directory the commands run in,
//! `$HOME`, `$TMPDIR`, a `$GPHOME/bin` with the plugin in it (also on `PATH`), and the
//! storage of the local inner plugin, and `$COORDINATOR_DATA_DIRECTORY`. The paths the docs use for keys and configs are
//! mapped into that dir (see [`PLACES`]). Every file in the working directory before a
//! block must be byte-identical after it: no documented command writes over its input.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// The paths the docs name, and where they point in a test's world.
const PLACES: &[(&str, &str)] = &[
    ("/secure/age/", "keys/"),
    ("/etc/gpbackup_age/", "etc/"),
    ("/data/gpbackup_age_rotate", "work/rotate"),
    ("/tmp/timestamps", "work/timestamps"),
    ("/tmp/gpbackup_age_demo", "work/demo"),
];

/// The object the recovery commands restore (a gzip'd table stream, as gpbackup's
/// default backups store it).
const OBJECT: &str = "gpbackup_0_20250101010101_16384.gz";

#[derive(Debug, Clone, PartialEq)]
enum Marker {
    Run {
        fails: bool,
        fixture: Option<String>,
    },
    Skip(String),
}

#[derive(Debug)]
struct Block {
    file: String,
    line: usize,
    marker: Option<Marker>,
    body: String,
}

fn is_shell(info: &str) -> bool {
    let lang = info.split([' ', ',', '{']).next().unwrap_or("");
    matches!(lang, "sh" | "bash" | "shell" | "console" | "zsh")
}

fn parse_marker(line: &str) -> Option<Marker> {
    let inner = line
        .trim()
        .strip_prefix("<!--")?
        .strip_suffix("-->")?
        .trim()
        .strip_prefix("doc-test:")?
        .trim();
    if let Some(reason) = inner.strip_prefix("skip") {
        return Some(Marker::Skip(reason.trim().to_string()));
    }
    let rest = inner.strip_prefix("run")?;
    let mut fails = false;
    let mut fixture = None;
    for word in rest.split_whitespace() {
        match word {
            "fails" => fails = true,
            w if w.starts_with("with=") => fixture = Some(w["with=".len()..].to_string()),
            // An unknown word makes the marker unusable, which the test reports.
            _ => return None,
        }
    }
    Some(Marker::Run { fails, fixture })
}

/// The fenced code blocks of a Markdown file, with the marker before each.
fn blocks(path: &Path) -> Vec<Block> {
    let text = std::fs::read_to_string(path).expect("read doc");
    let file = path
        .strip_prefix(repo())
        .unwrap_or(path)
        .display()
        .to_string();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let trimmed = lines[i].trim_start();
        let Some(info) = trimmed.strip_prefix("```") else {
            i += 1;
            continue;
        };
        let indent = lines[i].len() - trimmed.len();
        let info = info.trim().to_string();
        let start = i;
        let mut body = String::new();
        i += 1;
        while i < lines.len() && lines[i].trim() != "```" {
            let line = lines[i];
            let cut = line.len() - line.trim_start().len();
            body.push_str(&line[cut.min(indent)..]);
            body.push('\n');
            i += 1;
        }
        i += 1;
        if !is_shell(&info) {
            continue;
        }
        let marker = lines[..start]
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .and_then(|l| parse_marker(l));
        out.push(Block {
            file: file.clone(),
            line: start + 1,
            marker,
            body,
        });
    }
    out
}

/// The documents whose commands an operator is told to run.
fn documents() -> Vec<PathBuf> {
    let mut docs = vec![repo().join("README.md"), repo().join("keys/README.md")];
    let mut more: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .expect("docs/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    more.sort();
    docs.extend(more);
    docs
}

/// One document's world.
struct World {
    dir: tempfile::TempDir,
    /// Originals of what the fixtures stored, by basename.
    originals: BTreeMap<String, Vec<u8>>,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().expect("temp dir");
        for sub in [
            "cwd",
            "home",
            "tmp",
            "keys",
            "etc",
            "work",
            "gphome/bin",
            "cluster",
            "coordinator",
        ] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        }
        std::os::unix::fs::symlink(BIN, dir.path().join("gphome/bin/gpbackup_age_plugin"))
            .expect("symlink the plugin");
        // Commands run from a checkout or the unpacked release: examples/ is at hand.
        std::os::unix::fs::symlink(repo().join("examples"), dir.path().join("cwd/examples"))
            .expect("symlink examples/");
        World {
            dir,
            originals: BTreeMap::new(),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn cwd(&self) -> PathBuf {
        self.path("cwd")
    }

    /// The block's text with the docs' paths mapped into this world.
    fn localize(&self, body: &str) -> String {
        let mut text = body.to_string();
        for (from, to) in PLACES {
            let target = self.path(to).display().to_string();
            let target = if to.ends_with('/') {
                format!("{target}/")
            } else {
                target
            };
            text = text.replace(from, &target);
        }
        text
    }

    fn bash(&self, script: &str) -> std::process::Output {
        let path = format!(
            "{}:{}",
            self.path("gphome/bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Command::new("bash")
            .args([
                "--noprofile",
                "--norc",
                "-e",
                "-o",
                "pipefail",
                "-c",
                script,
            ])
            .current_dir(self.cwd())
            .env("HOME", self.path("home"))
            .env("TMPDIR", self.path("tmp"))
            .env("GPHOME", self.path("gphome"))
            .env("COORDINATOR_DATA_DIRECTORY", self.path("coordinator"))
            .env("PATH", path)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run bash")
    }

    /// Runs a setup command of a fixture, which must succeed.
    #[track_caller]
    fn setup(&self, script: &str) -> String {
        let out = self.bash(script);
        assert!(
            out.status.success(),
            "fixture command failed: {script}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// An identity in keys/, made with our keygen unless a block made it already;
    /// returns its recipient.
    fn key(&self, name: &str, pq: bool) -> String {
        let path = self.path("keys").join(name);
        if !path.exists() {
            let flag = if pq { "--pq" } else { "" };
            self.setup(&format!(
                "gpbackup_age_plugin keygen {flag} {}",
                path.display()
            ));
        }
        self.setup(&format!("sed -n 's/^# public key: //p' {}", path.display()))
    }

    /// A plugin config wrapping the local inner plugin, storing in this world; with no
    /// identities, a backup config (no identity_file), as the docs keep for gpbackup.
    fn write_config(&self, path: &Path, recipients: &[String], identities: &[&str]) {
        let identities: Vec<String> = identities
            .iter()
            .map(|n| self.path("keys").join(n).display().to_string())
            .collect();
        let keyring = if identities.is_empty() {
            String::new()
        } else {
            format!("  identity_file: \"{}\"\n", identities.join(","))
        };
        let text = format!(
            "executablepath: {BIN}\noptions:\n  inner_executablepath: \"{}\"\n  recipients: \"{}\"\n{keyring}  root: \"{}\"\n",
            local_plugin().display(),
            recipients.join(","),
            self.path("storage").display()
        );
        std::fs::write(path, text).expect("write config");
    }

    /// Prepares what a block needs that the docs leave to the operator.
    fn fixture(&mut self, name: &str, block: &Block) {
        match name {
            // A gzip'd table stream backed up through the plugin to keys/current.txt, the
            // stored object fetched into the working directory.
            "object" => {
                let recipient = self.key("current.txt", false);
                let config = self.path("work/object_config.yaml");
                self.write_config(&config, &[recipient], &["current.txt"]);
                let data = self.setup(&format!(
                    "python3 -c 'import sys\nfor i in range(20000): print(f\"{{i}},{{i*7919%1000}},customer-{{i%977}}\")' | gzip -c -1 > {0}/table.gz && echo {0}/table.gz",
                    self.path("work").display()
                ));
                let gz = std::fs::read(&data).expect("gzip data");
                let key = self
                    .path("cluster/gpseg0/backups/20250101/20250101010101")
                    .join(OBJECT);
                self.setup(&format!(
                    "$GPHOME/bin/gpbackup_age_plugin backup_data {} {} < {data}",
                    config.display(),
                    key.display()
                ));
                std::fs::copy(
                    self.path("storage/20250101/20250101010101").join(OBJECT),
                    self.cwd().join(OBJECT),
                )
                .expect("fetch the object");
                self.originals.insert(OBJECT.to_string(), gz);
            }
            // Two backup sets laid out as gpbackup lays them out, encrypted to
            // keys/old.txt and an escrow key, behind etc/backup.yaml (recipients only)
            // and etc/restore.yaml (the same and the keyring).
            "backup-sets" => {
                let old = self.key("old.txt", false);
                let escrow = self.key("escrow.txt", false);
                let recipients = [old, escrow];
                self.write_config(&self.path("etc/backup.yaml"), &recipients, &[]);
                let config = self.path("etc/restore.yaml");
                self.write_config(&config, &recipients, &["old.txt"]);
                let timestamps = self.setup(&format!(
                    "{} {} {} 100",
                    repo().join("examples/demo_backup_set.sh").display(),
                    config.display(),
                    self.path("cluster").display()
                ));
                assert_eq!(timestamps.lines().count(), 2, "{timestamps}");
                // The local directories hold a copy of the config (credentials) and
                // plaintext metadata: the script keeps them private.
                use std::os::unix::fs::PermissionsExt;
                let ts = timestamps.lines().next().unwrap();
                let coord = self.path(&format!("cluster/gpseg-1/backups/{}/{ts}", &ts[..8]));
                for (path, mode) in [
                    (self.path("cluster/gpseg-1"), 0o700),
                    (self.path("cluster/gpseg0"), 0o700),
                    (coord.join(format!("gpbackup_{ts}_plugin_config.yaml")), 0o600),
                    (coord.join(format!("gpbackup_{ts}_metadata.sql")), 0o600),
                ] {
                    let got = std::fs::metadata(&path).expect("demo file").permissions().mode();
                    assert_eq!(got & 0o777, mode, "{}", path.display());
                }
                std::fs::write(self.path("work/demo_timestamps"), timestamps + "\n").unwrap();
            }
            // gpbackup's history database on the coordinator (its `backups` table, the
            // columns the procedure's query reads), holding the demo sets and three
            // backups the query must not list: a failed one, a deleted one and one
            // taken with another plugin.
            "history" => {
                let demo = std::fs::read_to_string(self.path("work/demo_timestamps"))
                    .expect("the backup-sets fixture ran first");
                let mut rows: Vec<(String, String, &str, &str)> = demo
                    .lines()
                    .map(|ts| (ts.to_string(), BIN.to_string(), "Success", ""))
                    .collect();
                rows.push(("19990103000001".into(), BIN.into(), "Failure", ""));
                rows.push(("19990104000001".into(), BIN.into(), "Success", "20000101000000"));
                rows.push((
                    "19990105000001".into(),
                    "/usr/local/greenplum-db/bin/gpbackup_s3_plugin".into(),
                    "Success",
                    "",
                ));
                let mut sql = String::from(
                    "CREATE TABLE backups (timestamp TEXT NOT NULL PRIMARY KEY, database_name TEXT, plugin TEXT, plugin_version TEXT, date_deleted TEXT, status TEXT);\n",
                );
                for (ts, plugin, status, deleted) in rows {
                    sql.push_str(&format!(
                        "INSERT INTO backups VALUES ('{ts}', 'sales', '{plugin}', '0.1.0', '{deleted}', '{status}');\n"
                    ));
                }
                let db = self.path("coordinator/gpbackup_history.db");
                self.setup(&format!(
                    "python3 -c 'import sqlite3, sys; sqlite3.connect(sys.argv[1]).executescript(sys.stdin.read())' {} <<'SQL'\n{sql}SQL",
                    db.display()
                ));
            }
            // Step 2 of the rotation procedure: the new recipient (and the escrow one) in
            // both configs; the restore config's keyring holds the new identity first,
            // the old one after.
            "new-key-config" => {
                let new = self.key("new.txt", false);
                let escrow = self.key("escrow.txt", false);
                let recipients = [new, escrow];
                self.write_config(&self.path("etc/backup.yaml"), &recipients, &[]);
                self.write_config(
                    &self.path("etc/restore.yaml"),
                    &recipients,
                    &["new.txt", "old.txt"],
                );
            }
            // An operator's own restore config at etc/restore.yaml (a key of its own, so
            // that the docs' keygen commands still find their paths free).
            "config" => {
                let recipient = self.key("rehearsal.txt", false);
                self.write_config(
                    &self.path("etc/restore.yaml"),
                    &[recipient],
                    &["rehearsal.txt"],
                );
            }
            // The post-quantum escrow key the docs tell the operator to make.
            "pq-escrow" => {
                self.key("pq-escrow.txt", true);
            }
            other => panic!(
                "{}:{}: unknown fixture {other:?} (object, backup-sets, history, new-key-config, config, pq-escrow)",
                block.file, block.line
            ),
        }
    }

    /// Checks what a fixture's block must have produced.
    fn check(&self, name: &str, block: &Block) {
        if name == "history" {
            let listed = std::fs::read_to_string(self.path("work/timestamps")).unwrap_or_default();
            let demo = std::fs::read_to_string(self.path("work/demo_timestamps")).unwrap();
            assert_eq!(
                listed, demo,
                "{}:{}: the history query listed other backups than the plugin's successful ones",
                block.file, block.line
            );
        }
        if name == "config" {
            // The rehearsal cleans up after itself: nothing of the demo sets is left.
            for day in ["19990101", "19990102"] {
                let left = self.path("storage").join(day);
                let empty = std::fs::read_dir(&left).map_or(true, |mut d| d.next().is_none());
                assert!(
                    empty,
                    "{}:{}: {} is left in storage",
                    block.file, block.line, day
                );
            }
            // Nor of its local directory, which holds a copy of the config.
            assert!(
                !self.path("work/demo").exists(),
                "{}:{}: the demo's local backup directory is left",
                block.file,
                block.line
            );
        }
        if name == "object" {
            let restored = self.cwd().join("restored").join(OBJECT);
            let got = std::fs::read(&restored).unwrap_or_else(|e| {
                panic!(
                    "{}:{}: {} was not written: {e}",
                    block.file,
                    block.line,
                    restored.display()
                )
            });
            assert!(
                got == self.originals[OBJECT],
                "{}:{}: the recovered file differs from what was backed up",
                block.file,
                block.line
            );
            // Plaintext, written private, under its final name only once complete.
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&restored).unwrap().permissions().mode();
            assert_eq!(
                mode & 0o077,
                0,
                "{}:{}: mode {mode:o}",
                block.file,
                block.line
            );
            let part = restored.with_extension("gz.part");
            assert!(
                !part.exists(),
                "{}:{}: {} left",
                block.file,
                block.line,
                part.display()
            );
        }
    }
}

/// The SHA-256 of every file under `dir`, by path.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    use sha2::Digest;
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.insert(path, sha2::Sha256::digest(&bytes).to_vec());
            }
        }
    }
    out
}

#[test]
fn every_shell_block_in_the_docs_is_marked_run_or_skip_with_a_reason() {
    let mut problems = Vec::new();
    let mut runs = 0;
    for doc in documents() {
        for b in blocks(&doc) {
            match &b.marker {
                None => problems.push(format!(
                    "{}:{}: a shell block without a `<!-- doc-test: run -->` or `<!-- doc-test: skip REASON -->` marker on the line before it",
                    b.file, b.line
                )),
                Some(Marker::Skip(reason)) if reason.len() < 10 => problems.push(format!(
                    "{}:{}: a skipped block needs a reason",
                    b.file, b.line
                )),
                Some(Marker::Skip(reason)) => {
                    // Recovery with stock tools is the disaster-recovery path: it runs,
                    // unless it needs a newer age than the one installed here.
                    if b.body.contains("age -d") && !reason.contains("1.3") {
                        problems.push(format!(
                            "{}:{}: a stock-tool recovery command must be run, not skipped",
                            b.file, b.line
                        ));
                    }
                }
                Some(Marker::Run { .. }) => runs += 1,
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(runs >= 10, "only {runs} documented blocks are run");
}

#[test]
fn markers_are_parsed_and_unknown_words_are_refused() {
    assert_eq!(
        parse_marker("<!-- doc-test: run -->"),
        Some(Marker::Run {
            fails: false,
            fixture: None
        })
    );
    assert_eq!(
        parse_marker("   <!-- doc-test: run fails with=object -->"),
        Some(Marker::Run {
            fails: true,
            fixture: Some("object".into())
        })
    );
    assert_eq!(
        parse_marker("<!-- doc-test: skip needs gpssh and a cluster -->"),
        Some(Marker::Skip("needs gpssh and a cluster".into()))
    );
    assert_eq!(parse_marker("<!-- doc-test: run please -->"), None);
    assert_eq!(parse_marker("<!-- something else -->"), None);
}

#[test]
fn documented_commands_run_as_written() {
    for doc in documents() {
        let mut world = World::new();
        for b in blocks(&doc) {
            let Some(Marker::Run { fails, fixture }) = &b.marker else {
                continue;
            };
            if let Some(name) = fixture {
                world.fixture(name, &b);
            }
            let before = snapshot(&world.cwd());
            let script = world.localize(&b.body);
            let out = world.bash(&script);
            let stderr = String::from_utf8_lossy(&out.stderr);
            let stdout = String::from_utf8_lossy(&out.stdout);
            if *fails {
                assert!(
                    !out.status.success(),
                    "{}:{}: expected this documented command to fail, it succeeded:\n{}\n{stdout}",
                    b.file,
                    b.line,
                    b.body
                );
            } else {
                assert!(
                    out.status.success(),
                    "{}:{}: this documented command failed ({:?}):\n{}\nstdout: {stdout}\nstderr: {stderr}",
                    b.file,
                    b.line,
                    out.status,
                    b.body
                );
            }
            let after = snapshot(&world.cwd());
            for (path, hash) in &before {
                assert!(
                    after.get(path) == Some(hash),
                    "{}:{}: the documented command changed or removed its input {}",
                    b.file,
                    b.line,
                    path.display()
                );
            }
            if let Some(name) = fixture {
                world.check(name, &b);
            }
        }
    }
}

/// Troubleshooting's call-log commands print what they say in every case: the failed
/// lines when there are some, "no failed calls" when the logs hold none or there is no
/// log at all, with and without pipefail (an operator's shell has none).
#[test]
fn troubleshooting_log_commands_print_their_fallbacks() {
    let block = blocks(&repo().join("README.md"))
        .into_iter()
        .find(|b| b.body.contains("outcome=error"))
        .expect("the Troubleshooting block that greps the call log");
    let world = World::new();
    let logs = world.path("home/gpAdminLogs");
    let run = |pipefail: bool| {
        let set = if pipefail { "" } else { "set +o pipefail\n" };
        let out = world.bash(&format!("{set}{}", block.body));
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let ok = "2025-01-01T01:01:01Z pid=1 command=backup_data object=a outcome=ok\n";
    let failed = "2025-01-01T01:01:02Z pid=2 command=restore_data object=b outcome=error: boom\n";
    for pipefail in [true, false] {
        let _ = std::fs::remove_dir_all(&logs);
        let out = run(pipefail);
        assert!(out.contains("no call logged today"), "{out}");
        assert!(out.contains("no failed calls"), "{out}");

        std::fs::create_dir_all(&logs).unwrap();
        std::fs::write(logs.join("gpbackup_age_plugin_20250101.log"), ok).unwrap();
        let out = run(pipefail);
        assert!(out.contains("no failed calls"), "{out}");

        std::fs::write(
            logs.join("gpbackup_age_plugin_20250101.log"),
            format!("{ok}{failed}"),
        )
        .unwrap();
        let out = run(pipefail);
        assert!(out.contains("outcome=error: boom"), "{out}");
        assert!(!out.contains("no failed calls"), "{out}");
    }
}

/// GitHub's anchor for a heading: lower case, punctuation other than `-` and `_` dropped,
/// spaces turned into `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut in_fence = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        } else if !in_fence && line.starts_with('#') {
            out.push(anchor(line.trim_start_matches('#')));
        }
    }
    out
}

/// Links between the documents (and to files of the repository) lead somewhere: moving a
/// section must not leave a link to where it was.
#[test]
fn relative_links_in_the_docs_resolve() {
    let mut problems = Vec::new();
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).expect("read doc");
        let base = doc.parent().expect("dir");
        for (i, line) in text.lines().enumerate() {
            let mut rest = line;
            while let Some(at) = rest.find("](") {
                rest = &rest[at + 2..];
                let Some(end) = rest.find(')') else { break };
                let target = &rest[..end];
                rest = &rest[end..];
                if target.contains("://") || target.starts_with("mailto:") || target.is_empty() {
                    continue;
                }
                let (file, frag) = match target.split_once('#') {
                    Some((f, a)) => (f, Some(a)),
                    None => (target, None),
                };
                let path = if file.is_empty() {
                    doc.clone()
                } else {
                    base.join(file)
                };
                let here = format!("{}:{}", doc.display(), i + 1);
                if !path.exists() {
                    problems.push(format!("{here}: {target}: no such file"));
                } else if let Some(frag) = frag {
                    if !anchors(&path).iter().any(|a| a == frag) {
                        problems.push(format!("{here}: {target}: no such heading"));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
