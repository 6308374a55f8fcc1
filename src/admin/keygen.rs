//! `keygen`: a new age identity, X25519 or (`--pq`) hybrid post-quantum, written the way
//! `age-keygen [-pq] -o FILE` writes it.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use age::secrecy::ExposeSecret;
use anyhow::{anyhow, Result};
use zeroize::Zeroizing;

use crate::cli::KeygenArgs;
use crate::keys::{self, NewKey};
use crate::message::io_reason;

/// Writes a new identity to the file (mode 0600, never overwriting) and prints its
/// recipient on stdout.
pub fn keygen(args: &KeygenArgs) -> Result<()> {
    let kind = if args.pq {
        NewKey::PostQuantum
    } else {
        NewKey::X25519
    };
    let recipient = write_identity(&args.identity_file, kind)?;
    println!("{recipient}");
    Ok(())
}

/// Creates `path` holding a new identity of type `kind`, with `# created:` and
/// `# public key:` lines before the secret line, as age-keygen writes it; returns its
/// recipient (`age1…`, or `age1pq1…` for a hybrid post-quantum key).
pub fn write_identity(path: &Path, kind: NewKey) -> Result<String> {
    let (secret, recipient) = keys::kinds::generate(kind);
    let created = chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let text = Zeroizing::new(format!(
        "# created: {created}\n# public key: {recipient}\n{}\n",
        secret.expose_secret()
    ));
    drop(secret);

    let where_ = path.display();
    // create_new: O_EXCL, so an existing file (or symlink) is never replaced; the mode
    // applies from the start, so the key is never readable by others, even briefly.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => anyhow!(
                "keygen {where_}: it already exists; refusing to overwrite an identity file (move it away or choose another path)"
            ),
            std::io::ErrorKind::NotFound => {
                let dir = path
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                anyhow!(
                    "keygen {where_}: cannot create it: directory {} does not exist (create it first, mode 0700: mkdir -m 700 -p {})",
                    dir.display(),
                    dir.display()
                )
            }
            _ => anyhow!("keygen {where_}: cannot create it: {}", io_reason(&e)),
        })?;
    let written = file
        .write_all(text.as_bytes())
        .and_then(|_| file.sync_all());
    if let Err(e) = written {
        drop(file);
        let _ = std::fs::remove_file(path);
        return Err(anyhow!(
            "keygen {where_}: cannot write it: {}",
            io_reason(&e)
        ));
    }
    Ok(recipient)
}
