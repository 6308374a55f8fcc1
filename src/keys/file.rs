//! Key files as people save them, read the way age reads them (age's
//! `ParseIdentities` and recipients-file parser, the age crate's `IdentityFile`): one
//! key per line, CRLF line ends, blank lines and `#` comments. Beyond that we accept a
//! UTF-8 byte-order mark (or UTF-16, see [`crate::text`]), spaces and tabs around a key
//! and indented comments, which stock `age` refuses, and say so (see [`beyond_age`]).
//! An invisible character in a key line (a zero-width space, a no-break space) is
//! refused and named: "line 3 has a zero-width space (U+200B)". A file that is no key
//! file at all is named for what it is: empty, or an age-encrypted file (`age -p`
//! writes passphrase-protected identities that way, binary or ASCII-armored). The bytes
//! and the text are zeroized when dropped: identity files pass through here.

use std::fs;
use std::io::Read;
use std::path::Path;

use anyhow::{anyhow, bail, Result};
use zeroize::Zeroizing;

use crate::age_file::header::V1_LINE;
use crate::age_file::Header;
use crate::message::io_reason;
use crate::text;

/// A key file read into memory: its bytes and their text.
pub struct KeyFile {
    bytes: Zeroizing<Vec<u8>>,
    text: Zeroizing<String>,
}

/// The largest key file we read, in bytes: far more than any identity or recipients
/// file holds (a post-quantum recipient is about 2 KB), and small enough to read into one
/// buffer allocated up front.
const MAX_KEY_FILE: u64 = 1 << 20;

impl KeyFile {
    /// Reads and decodes the file at `path`; `what` names it in errors ("option
    /// recipients_file: /x").
    pub fn read(path: &Path, what: &str) -> Result<KeyFile> {
        let cannot = |e: std::io::Error| anyhow!("{what}: cannot read it: {}", io_reason(&e));
        let file = fs::File::open(path).map_err(cannot)?;
        let meta = file.metadata().map_err(cannot)?;
        if !meta.is_file() {
            bail!("{what}: cannot read it: not a regular file");
        }
        if meta.len() > MAX_KEY_FILE {
            bail!(
                "{what} is {} bytes, more than any key file holds ({MAX_KEY_FILE} at most); give the file that holds the key",
                meta.len()
            );
        }
        // The whole file in one allocation: a growing Vec would free copies of a prefix
        // of the key on every reallocation, where zeroizing cannot reach them.
        let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_KEY_FILE as usize + 1));
        file.take(MAX_KEY_FILE + 1)
            .read_to_end(&mut bytes)
            .map_err(cannot)?;
        if bytes.len() as u64 > MAX_KEY_FILE {
            bail!("{what} grew past {MAX_KEY_FILE} bytes while it was read; give the file that holds the key");
        }
        if bytes.is_empty() {
            bail!("{what} is empty (0 bytes); give the file that holds the key");
        }
        if let Some(kind) = encrypted_age_file(&bytes) {
            bail!("{what} is {kind}, not a key file; this plugin cannot ask for a passphrase (gpbackup runs it without a terminal): decrypt it once on this host (age -d -o key.txt FILE, then chmod 600 key.txt) and name the decrypted file, or keep the key in a token through an age plugin (keys/README.md)");
        }
        let text = text::decode(&bytes).map_err(|e| anyhow!("{what}: {e}"))?;
        Ok(KeyFile { bytes, text })
    }

    /// The decoded text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// True when the file starts with a UTF-8 or UTF-16 byte-order mark.
    pub fn has_byte_order_mark(&self) -> bool {
        [&b"\xEF\xBB\xBF"[..], b"\xFF\xFE", b"\xFE\xFF"]
            .iter()
            .any(|mark| self.bytes.starts_with(mark))
    }
}

/// What an age-encrypted file is, in words, if `bytes` is one (binary, or ASCII-armored
/// as `age -a` writes it): passphrase-protected (an `scrypt` stanza, `age -p`) or
/// encrypted to keys.
fn encrypted_age_file(bytes: &[u8]) -> Option<&'static str> {
    use std::io::BufReader;
    let armored = bytes
        .trim_ascii_start()
        .starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----");
    let header = if armored {
        Header::read(&mut BufReader::new(age::armor::ArmoredReader::new(bytes)))
    } else if bytes.starts_with(V1_LINE) {
        Header::read(&mut &bytes[..])
    } else {
        return None;
    };
    let passphrase = header.is_ok_and(|h| h.stanzas().iter().any(|s| s.tag == "scrypt"));
    Some(match (passphrase, armored) {
        (true, true) => "a passphrase-encrypted age file (ASCII-armored, as age -p -a writes it)",
        (true, false) => "a passphrase-encrypted age file (as age -p writes it)",
        (false, true) => "an age-encrypted file (ASCII-armored)",
        (false, false) => "an age-encrypted file",
    })
}

/// The lines of a key file that hold a key, with their 1-based numbers: blank lines
/// and `#` comments are skipped, and ASCII spaces and tabs around a key dropped. A line
/// with an invisible character is refused, naming it.
pub fn key_lines(text: &str) -> Result<Vec<(usize, &str)>, String> {
    let mut out = Vec::new();
    for (n, line) in text::lines(text) {
        let line = line.trim_matches([' ', '\t']);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(what) = text::first_invisible(line) {
            return Err(format!("line {n} has {what}; delete it"));
        }
        out.push((n, line));
    }
    Ok(out)
}

/// What in a key file's text (a byte-order mark aside) stock age refuses although we
/// accept it, if anything.
pub fn beyond_age(text: &str) -> Option<&'static str> {
    text::lines(text).find_map(|(_, line)| {
        let trimmed = line.trim_matches([' ', '\t']);
        (trimmed.len() != line.len() && !trimmed.is_empty())
            .then_some("spaces or tabs around a line")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_lines_as_people_save_them() {
        let text = "# created: x\r\n\r\n  AGE-SECRET-KEY-1AB \t\r\n\t# indented comment\nage1cd\n";
        assert_eq!(
            key_lines(text).unwrap(),
            vec![(3, "AGE-SECRET-KEY-1AB"), (5, "age1cd")]
        );
        assert_eq!(
            key_lines("# c\nage1cd\u{200B}\n").unwrap_err(),
            "line 2 has a zero-width space (U+200B); delete it"
        );
        assert_eq!(
            key_lines("age1cd\u{A0}\n").unwrap_err(),
            "line 1 has a no-break space (U+00A0); delete it"
        );
        assert_eq!(
            beyond_age("# c\r\nAGE \r\n"),
            Some("spaces or tabs around a line")
        );
        assert_eq!(beyond_age("# c\r\n\r\nAGE\r\n"), None);
    }

    #[test]
    fn encrypted_age_files_are_told_apart_from_key_files() {
        let b64 = |n: usize| "A".repeat(n);
        let header = |tag: &str| {
            format!(
                "age-encryption.org/v1\n-> {tag} {} 18\n{}\n--- {}\n",
                b64(22),
                b64(43),
                b64(43)
            )
            .into_bytes()
        };
        let mut binary = header("scrypt");
        binary.extend_from_slice(&[0u8, 0xFF, 0x80]);
        assert_eq!(
            encrypted_age_file(&binary),
            Some("a passphrase-encrypted age file (as age -p writes it)")
        );
        assert_eq!(
            encrypted_age_file(&header("X25519")),
            Some("an age-encrypted file")
        );
        let mut armored = Vec::new();
        {
            use std::io::Write;
            let mut w = age::armor::ArmoredWriter::wrap_output(
                &mut armored,
                age::armor::Format::AsciiArmor,
            )
            .unwrap();
            w.write_all(&binary).unwrap();
            w.finish().unwrap();
        }
        assert_eq!(
            encrypted_age_file(&armored),
            Some("a passphrase-encrypted age file (ASCII-armored, as age -p -a writes it)")
        );
        assert_eq!(encrypted_age_file(b"# created\nAGE-SECRET-KEY-1X\n"), None);
        assert_eq!(
            encrypted_age_file(b"-----BEGIN OPENSSH PRIVATE KEY-----\n"),
            None
        );
    }
}
