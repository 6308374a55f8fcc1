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
use crate::message::io_reason;

/// Writes a new identity to the file (mode 0600, never overwriting) and prints its
/// recipient on stdout.
pub fn keygen(args: &KeygenArgs) -> Result<()> {
    let recipient = if args.pq {
        write_pq_identity(&args.identity_file)?
    } else {
        write_identity(&args.identity_file)?
    };
    println!("{recipient}");
    Ok(())
}

/// Creates `path` holding a new X25519 identity; returns its recipient (`age1…`).
pub fn write_identity(path: &Path) -> Result<String> {
    let identity = age::x25519::Identity::generate();
    write_key_file(path, identity.to_public().to_string(), identity.to_string())
}

/// Creates `path` holding a new hybrid post-quantum identity (ML-KEM-768 + X25519);
/// returns its recipient (`age1pq1…`).
pub fn write_pq_identity(path: &Path) -> Result<String> {
    let identity = crate::keys::mlkem768x25519::Identity::generate();
    write_key_file(path, identity.to_public().to_string(), identity.to_string())
}

/// Writes `# created:`, `# public key:` and the secret line, as age-keygen does.
fn write_key_file(
    path: &Path,
    recipient: String,
    secret: age::secrecy::SecretString,
) -> Result<String> {
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
                "keygen: {where_} already exists; refusing to overwrite an identity file (move it away or choose another path)"
            ),
            _ => anyhow!("keygen: cannot create {where_}: {}", io_reason(&e)),
        })?;
    let written = file
        .write_all(text.as_bytes())
        .and_then(|_| file.sync_all());
    if let Err(e) = written {
        drop(file);
        let _ = std::fs::remove_file(path);
        return Err(anyhow!("keygen: cannot write {where_}: {}", io_reason(&e)));
    }
    Ok(recipient)
}
