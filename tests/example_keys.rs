//! Example keys in the documentation and the examples never parse. A reader who pastes
//! an example `recipients:` value must get an error, not backups encrypted to a key
//! nobody holds (or to one whose private half is published). The only real keys are the
//! demo keys in `keys/demo-only-*`; a document may quote one of those only on a line
//! that calls it a demo key.
//!
//! Keys are recognised by parsing, not by pattern: every `age1…` word is tried with the
//! plugin's own recipient parser (the age crate's), every `AGE-SECRET-KEY-1…` word with
//! the age crate's X25519 identity parser, every `ssh-ed25519`/`ssh-rsa` key with the
//! recipient parser and every PEM block with the age crate's SSH identity parser.

mod common;

use std::path::{Path, PathBuf};
use std::str::FromStr;

use age::secrecy::ExposeSecret;
use gpbackup_age_plugin::keys::RecipientKey;

use common::repo;

/// A key found in a text: what kind, the 1-based line, and the key itself.
#[derive(Debug, PartialEq)]
struct Found {
    kind: &'static str,
    line: usize,
    key: String,
}

/// Every string in `text` that parses as an age recipient or identity.
fn parseable_keys(text: &str) -> Vec<Found> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let mut push = |kind, key: String| {
            found.push(Found {
                kind,
                line: n + 1,
                key,
            })
        };
        for (start, word) in alnum_words(line) {
            // A recipient may sit inside a longer word ("key=age1…" splits at '=',
            // "xage1…" does not), so try every "age1" in the word.
            let lower = word.to_ascii_lowercase();
            for (at, _) in lower.match_indices("age1") {
                if RecipientKey::parse(&word[at..]).is_ok() {
                    push("recipient", word[at..].to_string());
                }
            }
            let prefix = start
                .checked_sub(15)
                .and_then(|from| line.get(from..start))
                .filter(|p| p.eq_ignore_ascii_case("AGE-SECRET-KEY-"));
            if let Some(prefix) = prefix {
                let key = format!("{prefix}{word}");
                if age::x25519::Identity::from_str(&key).is_ok() {
                    push("identity", key);
                }
            }
        }
        for kind in ["ssh-ed25519", "ssh-rsa"] {
            for (at, _) in line.match_indices(kind) {
                let rest = line[at + kind.len()..].trim_start();
                let blob: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || "+/=".contains(*c))
                    .collect();
                let key = format!("{kind} {blob}");
                if !blob.is_empty() && RecipientKey::parse(&key).is_ok() {
                    push("SSH recipient", key);
                }
            }
        }
    }
    // SSH private keys span lines: try every PEM block whole.
    let mut rest = text;
    while let Some(begin) = rest.find("-----BEGIN") {
        let block = &rest[begin..];
        let Some(end) = block
            .find("-----END")
            .and_then(|e| block[e + 8..].find("-----").map(|close| e + 8 + close + 5))
        else {
            break;
        };
        let pem = &block[..end];
        if age::ssh::Identity::from_buffer(pem.as_bytes(), None).is_ok() {
            found.push(Found {
                kind: "SSH identity",
                line: text[..text.len() - rest.len() + begin]
                    .matches('\n')
                    .count()
                    + 1,
                key: pem.lines().next().unwrap_or_default().to_string(),
            });
        }
        rest = &block[end..];
    }
    found
}

/// The maximal runs of ASCII letters and digits in `line`, with their byte offsets.
fn alnum_words(line: &str) -> impl Iterator<Item = (usize, &str)> {
    line.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(move |w| (w.as_ptr() as usize - line.as_ptr() as usize, w))
}

/// The demo keys: every key in `keys/demo-only-*`.
fn demo_keys() -> Vec<String> {
    let mut keys = Vec::new();
    for path in repo_files_under(&repo().join("keys")) {
        if is_demo_key_file(&path) {
            let text = std::fs::read_to_string(&path).expect("read a demo key file");
            keys.extend(parseable_keys(&text).into_iter().map(|f| f.key));
        }
    }
    keys
}

fn is_demo_key_file(path: &Path) -> bool {
    path.parent() == Some(&repo().join("keys"))
        && path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("demo-only-"))
}

/// Every regular file under `dir`, recursively, skipping build output and VCS data.
fn repo_files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries {
        let path = entry.expect("read a directory entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if !matches!(
                name,
                "target" | ".git" | "corpus" | "artifacts" | "node_modules"
            ) {
                files.extend(repo_files_under(&path));
            }
        } else if path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The documentation and examples: every Markdown file in the repository, and every
/// file under docs/, examples/ and keys/ except the demo key files themselves.
fn documents() -> Vec<PathBuf> {
    let root = repo();
    let in_doc_dir = |p: &Path| {
        ["docs", "examples", "keys"]
            .iter()
            .any(|d| p.starts_with(root.join(d)))
    };
    repo_files_under(&root)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "md") || in_doc_dir(p))
        .filter(|p| !is_demo_key_file(p))
        .collect()
}

/// What is wrong in one document: keys that parse, unless a demo key quoted on a line
/// that says so.
fn problems(name: &str, text: &str, demo: &[String]) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    parseable_keys(text)
        .into_iter()
        .filter(|f| {
            let says_demo = lines
                .get(f.line - 1)
                .is_some_and(|l| l.to_ascii_lowercase().contains("demo"));
            !(demo.contains(&f.key) && says_demo)
        })
        .map(|f| {
            format!(
                "{name}:{}: a real {} ({}): use a placeholder that fails to parse, as examples/s3_config.yaml does",
                f.line,
                f.kind,
                abbreviate(&f.key)
            )
        })
        .collect()
}

fn abbreviate(key: &str) -> String {
    key.chars().take(24).collect::<String>() + "…"
}

#[test]
fn docs_and_examples_hold_no_key_that_parses() {
    let root = repo();
    let docs = documents();
    for must in [
        "README.md",
        "keys/README.md",
        "docs/FORMAT.md",
        "examples/s3_config.yaml",
    ] {
        assert!(
            docs.contains(&root.join(must)),
            "{must} is not among the scanned documents: {docs:?}"
        );
    }
    let demo = demo_keys();
    assert_eq!(demo.len(), 6, "keys/demo-only-* should hold 2 identities and 2 recipients, each identity file naming its public key: {demo:?}");
    let mut all = Vec::new();
    for path in &docs {
        let Ok(text) = std::fs::read_to_string(path) else {
            continue; // not text: no key a reader could paste
        };
        let name = path
            .strip_prefix(&root)
            .unwrap_or(path)
            .display()
            .to_string();
        all.extend(problems(&name, &text, &demo));
    }
    assert!(
        all.is_empty(),
        "keys that parse in docs/examples:\n{}",
        all.join("\n")
    );
}

#[test]
fn the_scan_finds_real_keys_and_passes_placeholders() {
    let identity = age::x25519::Identity::generate();
    let secret = identity.to_string().expose_secret().to_string();
    let recipient = identity.to_public().to_string();
    let ssh = ssh_ed25519_recipient();
    let pem = ssh_ed25519_identity();
    let text = format!(
        "recipients: \"{recipient},age1curr3ntkeyqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq\"\n\
         key={secret}\n\
         recipients: \"age1…current…,{ssh} backup@example.com\"\n\
         ```\n{pem}```\n"
    );
    let found = parseable_keys(&text);
    let keys: Vec<(&str, usize, &str)> = found
        .iter()
        .map(|f| (f.kind, f.line, f.key.as_str()))
        .collect();
    assert_eq!(
        keys,
        vec![
            ("recipient", 1, recipient.as_str()),
            ("identity", 2, secret.as_str()),
            ("SSH recipient", 3, ssh.as_str()),
            ("SSH identity", 5, "-----BEGIN OPENSSH PRIVATE KEY-----"),
        ]
    );

    // A demo key passes only on a line that names it as one.
    let demo = demo_keys();
    let demo_recipient = demo
        .iter()
        .find(|k| k.starts_with("age1"))
        .expect("a demo recipient");
    let quoted =
        format!("the demo recipient: {demo_recipient}\nrecipients: \"{demo_recipient}\"\n");
    let flagged = problems("doc.md", &quoted, &demo);
    assert_eq!(flagged.len(), 1, "{flagged:?}");
    assert!(
        flagged[0].starts_with("doc.md:2: a real recipient"),
        "{flagged:?}"
    );
}

/// An OpenSSH ed25519 public key line whose key is the Ed25519 base point (a valid point,
/// so age accepts it as a recipient): the wire format is the key type and the key, each
/// as a length-prefixed string (RFC 8709).
fn ssh_ed25519_recipient() -> String {
    use base64::Engine;
    let mut point = [0x66u8; 32];
    point[0] = 0x58;
    let mut blob = Vec::new();
    for field in [&b"ssh-ed25519"[..], &point[..]] {
        blob.extend_from_slice(&(field.len() as u32).to_be_bytes());
        blob.extend_from_slice(field);
    }
    format!(
        "ssh-ed25519 {}",
        base64::engine::general_purpose::STANDARD.encode(blob)
    )
}

/// A fresh unencrypted OpenSSH ed25519 private key, from `ssh-keygen`.
fn ssh_ed25519_identity() -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = dir.path().join("id_ed25519");
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .expect("run ssh-keygen (apt-get install openssh-client)");
    assert!(status.success(), "ssh-keygen failed");
    std::fs::read_to_string(&key).expect("read the generated key")
}
