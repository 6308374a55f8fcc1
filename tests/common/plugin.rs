//! Helpers shared by plugin_api.rs, data_paths.rs and stock_tools.rs, on top of the
//! common harness (kept separate so the common harness stays as it is).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use sha2::{Digest, Sha256};

use super::*;

/// Content ID arguments exactly as gpbackup writes them into its `bash -c` string.
pub const Q_MINUS1: &str = r#"\"-1\""#;
pub const Q0: &str = r#"\"0\""#;
pub const Q1: &str = r#"\"1\""#;

/// A key for a data stream of segment 0 with another timestamp than the harness's.
pub fn key_with_ts(h: &Harness, ts: &str, oid: u32) -> String {
    h.seg_dir(0, ts)
        .join(format!("gpbackup_0_{ts}_{oid}"))
        .display()
        .to_string()
}

/// An inner plugin that records every invocation and a copy of its config, then runs
/// the real local plugin. Returns its path; the records land in [`Recorder`] files.
pub struct Recorder {
    pub script: PathBuf,
    pub argv_log: PathBuf,
    pub configs: PathBuf,
}

impl Recorder {
    pub fn new(h: &Harness) -> Recorder {
        let dir = h.path().join("recorder");
        let configs = dir.join("configs");
        std::fs::create_dir_all(&configs).expect("recorder dir");
        let argv_log = dir.join("argv.log");
        let script = dir.join("recording_inner.sh");
        let text = format!(
            r#"#!/usr/bin/env bash
# Test double: record argv (one line, arguments separated by TAB), the config's
# mode and name, and a copy of the config; then become the real local plugin.
(IFS=$'\t'; printf '%s\n' "$*") >> '{argv}'
if [[ $# -ge 2 && -f $2 ]]; then
    n=$(date +%s%N).$$
    cp -- "$2" '{configs}'/$n.yaml
    printf '%s\t%s\n' "$(stat -c %a -- "$2")" "$2" > '{configs}'/$n.meta
fi
exec '{inner}' "$@"
"#,
            argv = argv_log.display(),
            configs = configs.display(),
            inner = local_plugin().display()
        );
        std::fs::write(&script, text).expect("write recorder");
        set_mode(&script, 0o755);
        Recorder {
            script,
            argv_log,
            configs,
        }
    }

    /// Every recorded invocation, as its argument list.
    pub fn calls(&self) -> Vec<Vec<String>> {
        std::fs::read_to_string(&self.argv_log)
            .unwrap_or_default()
            .lines()
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect()
    }

    /// The recorded configs: (mode, original path, text).
    pub fn configs(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        let mut metas: Vec<PathBuf> = std::fs::read_dir(&self.configs)
            .expect("configs dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "meta"))
            .collect();
        metas.sort();
        for meta in metas {
            let m = std::fs::read_to_string(&meta).expect("meta");
            let (mode, path) = m.trim_end().split_once('\t').expect("mode\tpath");
            let text = std::fs::read_to_string(meta.with_extension("yaml")).expect("copy");
            out.push((mode.to_string(), path.to_string(), text));
        }
        out
    }
}

pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Writes a config file verbatim.
pub fn write_raw_config(h: &Harness, text: &str) {
    std::fs::write(&h.config, text).expect("write config");
}

/// Runs a script through bash with HOME set and stdin closed-empty, like `run_in`, but
/// with extra environment variables for the plugin.
pub fn run_env(home: &Path, script: &str, stdin: &[u8], env: &[(&str, &Path)]) -> Output {
    let prefix: String = env
        .iter()
        .map(|(k, v)| format!("{k}='{}' ", v.display()))
        .collect();
    run_in(home, &format!("{prefix}{script}"), stdin)
}

/// Starts `gpbackup_age_plugin <args>` through bash with piped stdio, for streams too
/// large to hold in memory.
pub fn spawn_plugin(h: &Harness, args: &str) -> Child {
    spawn_shell(h, &format!("{BIN} {args}"), Stdio::piped())
}

/// `restore_data_subset` of `key` with an offsets file holding `offsets` as given.
pub fn subset(h: &Harness, key: &str, offsets: &str) -> Output {
    let file = h.path().join("offsets.txt");
    std::fs::write(&file, offsets).expect("write the offsets file");
    h.call(
        "restore_data_subset",
        &format!("{key} {}", file.display()),
        b"",
    )
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// The demo identity, parsed by the age crate itself.
pub fn demo_identities() -> Vec<Box<dyn age::Identity>> {
    age::IdentityFile::from_file(demo_identity().display().to_string())
        .expect("demo identity file")
        .into_identities()
        .expect("demo identities")
}

/// The demo recipients, parsed by the age crate itself.
pub fn demo_recipient() -> age::x25519::Recipient {
    demo_recipient_line().parse().expect("valid recipient")
}

/// Decrypts a whole age file with the age crate (not our code) and the demo identity.
pub fn age_crate_decrypt(ciphertext: &[u8]) -> Result<Vec<u8>, String> {
    age_crate_decrypt_with(ciphertext, &demo_identities())
}

/// Encrypts with the age crate (not our code) to the demo recipient.
pub fn age_crate_encrypt(plaintext: &[u8]) -> Vec<u8> {
    let r = demo_recipient();
    let enc = age::Encryptor::with_recipients(std::iter::once(&r as &dyn age::Recipient))
        .expect("encryptor");
    let mut out = Vec::new();
    let mut w = enc.wrap_output(&mut out).expect("wrap");
    w.write_all(plaintext).expect("encrypt");
    w.finish().expect("finish");
    out
}

/// The frame kinds of an object, read with the age crate and the public object parser.
pub fn frame_kinds(object: &[u8]) -> Vec<gpbackup_age_plugin::object::FrameKind> {
    use gpbackup_age_plugin::object::{Unit, UnitReader};
    let plain = age_crate_decrypt(object).expect("object decrypts with the age crate");
    let mut units = UnitReader::new(&plain[..]);
    let mut kinds = Vec::new();
    while let Some(unit) = units.next_unit().expect("well-formed object") {
        if let Unit::Frame(d, _) = unit {
            kinds.push(d.kind);
        }
    }
    kinds
}

/// Deterministic, compressible table data in the `|`-separated CSV form of gpbackup's
/// COPY output (after /work/shared/bench/gen_table_csv.py), produced in pieces: the
/// pieces concatenate to one continuous stream of whole rows.
pub struct CsvGen {
    x: u64,
    order: u64,
    line: Vec<u8>,
    /// The rest of a row cut at the end of the previous piece.
    carry: Vec<u8>,
}

const WORDS: &[&str] = &[
    "furiously",
    "quickly",
    "carefully",
    "blithely",
    "slyly",
    "ironic",
    "regular",
    "final",
    "express",
    "pending",
    "special",
    "bold",
    "even",
    "silent",
    "unusual",
    "deposits",
    "requests",
    "packages",
    "accounts",
    "instructions",
    "theodolites",
    "foxes",
    "pinto",
    "beans",
    "sleep",
    "wake",
    "haggle",
    "nag",
    "cajole",
    "integrate",
    "boost",
    "detect",
];
const SHIP: &[&str] = &[
    "DELIVER IN PERSON",
    "COLLECT COD",
    "NONE",
    "TAKE BACK RETURN",
];
const MODE: &[&str] = &["AIR", "RAIL", "SHIP", "TRUCK", "MAIL", "FOB", "REG AIR"];

impl CsvGen {
    pub fn new(seed: u64) -> CsvGen {
        CsvGen {
            x: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            order: 1,
            line: Vec::with_capacity(256),
            carry: Vec::new(),
        }
    }

    fn next(&mut self, n: u64) -> u64 {
        self.x ^= self.x << 13;
        self.x ^= self.x >> 7;
        self.x ^= self.x << 17;
        self.x % n
    }

    fn row(&mut self) {
        self.line.clear();
        self.order += 1 + self.next(7);
        let qty = 1 + self.next(50);
        let cents = qty * (90000 + self.next(120000));
        let (y, m, d) = (1992 + self.next(7), 1 + self.next(12), 1 + self.next(28));
        let ship = SHIP[self.next(SHIP.len() as u64) as usize];
        let mode = MODE[self.next(MODE.len() as u64) as usize];
        let (a, b, c, e, f) = (
            self.next(200000) + 1,
            self.next(10000) + 1,
            self.next(7) + 1,
            self.next(10),
            self.next(9),
        );
        let flag = b"NRA"[self.next(3) as usize] as char;
        let status = b"OF"[self.next(2) as usize] as char;
        let _ = write!(
            self.line,
            "{}|{a}|{b}|{c}|{qty}|{}.{:02}|0.0{e}|0.0{f}|{flag}|{status}|{y}-{m:02}-{d:02}|{y}-{m:02}-{:02}|{ship}|{mode}|",
            self.order,
            cents / 100,
            cents % 100,
            (d + 2).min(28),
        );
        let words = 2 + self.next(6);
        for i in 0..words {
            if i > 0 {
                self.line.push(b' ');
            }
            let w = WORDS[self.next(WORDS.len() as u64) as usize];
            self.line.extend_from_slice(w.as_bytes());
        }
        self.line.push(b'\n');
    }

    /// Appends the next `len` bytes of the stream to `out`.
    pub fn fill(&mut self, out: &mut Vec<u8>, len: usize) {
        let target = out.len() + len;
        out.append(&mut self.carry);
        while out.len() < target {
            self.row();
            out.extend_from_slice(&self.line);
        }
        self.carry = out.split_off(target);
    }
}

/// `len` bytes of CSV-like data.
pub fn csv_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    CsvGen::new(seed).fill(&mut out, len);
    out
}

/// Gzips with the stock `gzip -1` (what gpbackup's default pipeline does).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let out = run_in(Path::new("/tmp"), "gzip -c -1", data);
    assert!(out.status.success(), "gzip failed");
    out.stdout
}
