//! The age v1 header: the version line, one stanza per recipient, and the header MAC.
//!
//! Parsing keeps the exact bytes the MAC covers, so a header is verified as it was
//! written, and [`Header::rewrap`] builds a new header for other recipients around the
//! same file key (key rotation without touching the payload).

use std::fmt;
use std::io::BufRead;

use age::{Identity, Recipient};
use age_core::format::{read::age_stanza, write, FileKey, Stanza};
use age_core::primitives::hkdf;
use age_core::secrecy::ExposeSecret;
use base64::{prelude::BASE64_STANDARD_NO_PAD, Engine};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The first line of every age v1 file.
pub const V1_LINE: &[u8] = b"age-encryption.org/v1\n";
pub const AGE_PREFIX: &[u8] = b"age-encryption.org/";
const STANZA_PREFIX: &[u8] = b"-> ";
const MAC_PREFIX: &[u8] = b"--- ";
const ENCODED_MAC_LEN: usize = 43;
/// The label of a post-quantum recipient: like Go age, a header is never written for
/// recipients with different labels, so a post-quantum recipient is never mixed with a
/// classic one (which would make the file only as strong as X25519).
pub const POSTQUANTUM_LABEL: &str = "postquantum";
/// A header larger than this is refused: no honest header comes close (one X25519
/// stanza is about 100 bytes, a post-quantum one about 1.6 KB), and a hostile one must
/// not make us allocate without bound.
pub const MAX_HEADER_LEN: usize = 1 << 20;

/// Why a header could not be read or opened.
#[derive(Debug)]
pub enum HeaderError {
    /// The input does not start like an age file at all.
    NotAge,
    /// An age file of another version than v1.
    UnsupportedVersion,
    /// The header is cut short.
    Truncated,
    /// The header is not well formed (what is wrong is in the string).
    Malformed(&'static str),
    /// No identity of the keyring could unwrap any stanza.
    NoMatchingKey,
    /// An identity unwrapped a stanza but the header MAC does not verify: the header was
    /// altered after it was written.
    BadMac,
    /// An identity recognised a stanza and failed to unwrap it.
    Unwrap(String),
    /// Wrapping the file key for new recipients failed (what is wrong is in the
    /// string: no recipients, recipients that cannot be mixed).
    Wrap(String),
    /// Reading failed.
    Io(std::io::Error),
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::NotAge => write!(f, "not an age-encrypted object (no age header)"),
            HeaderError::UnsupportedVersion => write!(f, "age header of an unsupported version"),
            HeaderError::Truncated => write!(f, "age header is truncated"),
            HeaderError::Malformed(what) => write!(f, "age header is malformed: {what}"),
            HeaderError::NoMatchingKey => {
                write!(
                    f,
                    "no identity in identity_file matches any recipient of the object"
                )
            }
            HeaderError::BadMac => {
                write!(
                    f,
                    "age header authentication failed (the header was altered)"
                )
            }
            HeaderError::Unwrap(e) => write!(f, "could not unwrap the file key: {e}"),
            HeaderError::Wrap(e) => write!(f, "{e}"),
            HeaderError::Io(e) => write!(
                f,
                "reading the age header: {}",
                crate::message::io_reason(e)
            ),
        }
    }
}

impl std::error::Error for HeaderError {}

/// What [`Header::rewrap`] made: the new header, and the file key it shares with the
/// old one.
pub struct Rewrapped {
    pub header: Header,
    pub file_key: FileKey,
}

/// A parsed or freshly built age v1 header.
pub struct Header {
    stanzas: Vec<Stanza>,
    mac: [u8; 32],
    /// The encoded header up to and including `---`: what the MAC covers.
    mac_input: Vec<u8>,
}

impl Header {
    /// Builds the header that wraps `file_key` for every recipient. As in age, every
    /// recipient must hand back the same set of labels: a post-quantum recipient (label
    /// `postquantum`) is never mixed with a classic one.
    pub fn wrap<R: AsRef<dyn Recipient>>(
        file_key: &FileKey,
        recipients: &[R],
    ) -> Result<Header, String> {
        let mut stanzas = Vec::new();
        let mut first_labels = None;
        for recipient in recipients {
            let (mut wrapped, labels) = recipient
                .as_ref()
                .wrap_file_key(file_key)
                .map_err(|e| format!("wrapping the file key failed: {e}"))?;
            match &first_labels {
                None => first_labels = Some(labels),
                Some(first) if *first != labels => {
                    let pq = |l: &std::collections::HashSet<String>| l.contains(POSTQUANTUM_LABEL);
                    return Err(if pq(first) != pq(&labels) {
                        "cannot encrypt to both post-quantum and classic recipients: the object would be only as strong as X25519 against a quantum computer".into()
                    } else {
                        format!("recipients with labels {first:?} and {labels:?} cannot be mixed")
                    });
                }
                Some(_) => {}
            }
            stanzas.append(&mut wrapped);
        }
        if stanzas.is_empty() {
            return Err("no recipients to encrypt to".into());
        }
        let mut mac_input = V1_LINE.to_vec();
        for stanza in &stanzas {
            let (buf, _) = cookie_factory::gen(
                write::age_stanza(&stanza.tag, &stanza.args, &stanza.body),
                Vec::new(),
            )
            .map_err(|e| format!("encoding a stanza failed: {e:?}"))?;
            mac_input.extend_from_slice(&buf);
        }
        mac_input.extend_from_slice(b"---");
        let mac = compute_mac(file_key, &mac_input);
        Ok(Header {
            stanzas,
            mac,
            mac_input,
        })
    }

    /// This header's file key wrapped for other recipients: the file key is unwrapped
    /// with the first identity that opens this header (its MAC checked), and a new
    /// header with a new MAC wraps it for `recipients`. The payload that follows the
    /// header stays valid, since its key derives from the file key and the payload nonce
    /// only; the file key comes back too, to check that payload with.
    pub fn rewrap<I: AsRef<dyn Identity>, R: AsRef<dyn Recipient>>(
        &self,
        identities: &[I],
        recipients: &[R],
    ) -> Result<Rewrapped, HeaderError> {
        let file_key = self.unwrap_file_key(identities)?;
        let header = Header::wrap(&file_key, recipients).map_err(HeaderError::Wrap)?;
        Ok(Rewrapped { header, file_key })
    }

    /// Reads one header from `input`, consuming exactly its bytes (the payload nonce
    /// comes next).
    pub fn read<R: BufRead>(input: &mut R) -> Result<Header, HeaderError> {
        let mut mac_input = Vec::new();
        let mut line = Vec::new();
        read_line(input, &mut line, 0)?;
        if line != V1_LINE {
            return Err(if line.starts_with(AGE_PREFIX) {
                HeaderError::UnsupportedVersion
            } else {
                HeaderError::NotAge
            });
        }
        mac_input.extend_from_slice(&line);
        let mut stanzas = Vec::new();
        loop {
            read_line(input, &mut line, mac_input.len())?;
            if line.starts_with(MAC_PREFIX) {
                let encoded = line
                    .strip_prefix(MAC_PREFIX)
                    .and_then(|rest| rest.strip_suffix(b"\n"))
                    .filter(|mac| mac.len() == ENCODED_MAC_LEN)
                    .ok_or(HeaderError::Malformed("MAC line"))?;
                let decoded = BASE64_STANDARD_NO_PAD
                    .decode(encoded)
                    .map_err(|_| HeaderError::Malformed("MAC encoding"))?;
                let mac: [u8; 32] = decoded
                    .try_into()
                    .map_err(|_| HeaderError::Malformed("MAC length"))?;
                mac_input.extend_from_slice(b"---");
                if stanzas.is_empty() {
                    return Err(HeaderError::Malformed("no recipient stanza"));
                }
                return Ok(Header {
                    stanzas,
                    mac,
                    mac_input,
                });
            }
            if !line.starts_with(STANZA_PREFIX) {
                return Err(HeaderError::Malformed("expected a stanza or the MAC line"));
            }
            // A stanza is its argument line and body lines up to the first short one.
            let start = mac_input.len();
            mac_input.extend_from_slice(&line);
            loop {
                read_line(input, &mut line, mac_input.len())?;
                mac_input.extend_from_slice(&line);
                if line.len() < 65 {
                    break;
                }
            }
            let (rest, stanza) = age_stanza(&mac_input[start..])
                .map_err(|_| HeaderError::Malformed("recipient stanza"))?;
            if !rest.is_empty() {
                return Err(HeaderError::Malformed("recipient stanza"));
            }
            stanzas.push(Stanza::from(stanza));
        }
    }

    /// The recipient stanzas, in order.
    pub fn stanzas(&self) -> &[Stanza] {
        &self.stanzas
    }

    /// The encoded header, ready to be written before the payload nonce.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.mac_input.len() + ENCODED_MAC_LEN + 2);
        out.extend_from_slice(&self.mac_input);
        out.push(b' ');
        out.extend_from_slice(BASE64_STANDARD_NO_PAD.encode(self.mac).as_bytes());
        out.push(b'\n');
        out
    }

    /// Length in bytes of the encoded header ([`Header::encode`]): how many bytes of the
    /// file come before the payload nonce.
    pub fn encoded_len(&self) -> usize {
        self.mac_input.len() + 1 + ENCODED_MAC_LEN + 1
    }

    /// Finds the file key with the first identity of the keyring that unwraps a stanza,
    /// and checks the header MAC with it.
    pub fn unwrap_file_key<I: AsRef<dyn Identity>>(
        &self,
        identities: &[I],
    ) -> Result<FileKey, HeaderError> {
        let file_key = identities
            .iter()
            .find_map(|identity| identity.as_ref().unwrap_stanzas(&self.stanzas))
            .ok_or(HeaderError::NoMatchingKey)?
            .map_err(|e| HeaderError::Unwrap(e.to_string()))?;
        let mut mac = header_mac(&file_key);
        mac.update(&self.mac_input);
        mac.verify_slice(&self.mac)
            .map_err(|_| HeaderError::BadMac)?;
        Ok(file_key)
    }
}

fn header_mac(file_key: &FileKey) -> Hmac<Sha256> {
    let key = hkdf(&[], b"header", file_key.expose_secret());
    Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes a key of any length")
}

fn compute_mac(file_key: &FileKey, mac_input: &[u8]) -> [u8; 32] {
    let mut mac = header_mac(file_key);
    mac.update(mac_input);
    mac.finalize().into_bytes().into()
}

/// Reads one `\n`-terminated line into `line`, refusing to let the header grow past
/// [`MAX_HEADER_LEN`].
fn read_line<R: BufRead>(
    input: &mut R,
    line: &mut Vec<u8>,
    so_far: usize,
) -> Result<(), HeaderError> {
    line.clear();
    let limit = (MAX_HEADER_LEN - so_far.min(MAX_HEADER_LEN)) as u64;
    let mut limited = std::io::Read::take(&mut *input, limit);
    let n = limited.read_until(b'\n', line).map_err(HeaderError::Io)?;
    if n == 0 && so_far == 0 {
        return Err(HeaderError::NotAge);
    }
    if line.last() != Some(&b'\n') {
        if so_far == 0 && !AGE_PREFIX.starts_with(&line[..line.len().min(AGE_PREFIX.len())]) {
            return Err(HeaderError::NotAge);
        }
        return Err(if n as u64 == limit {
            HeaderError::Malformed("header too large")
        } else {
            HeaderError::Truncated
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::age_file::new_file_key;
    use crate::keys::mlkem768x25519;

    #[test]
    fn the_encoded_length_is_that_of_the_encoding() {
        let key = new_file_key();
        let recipient: Box<dyn Recipient> = Box::new(age::x25519::Identity::generate().to_public());
        let header = Header::wrap(&key, &[recipient]).unwrap();
        let encoded = header.encode();
        assert_eq!(header.encoded_len(), encoded.len());
        let read = Header::read(&mut &encoded[..]).unwrap();
        assert_eq!(read.encoded_len(), encoded.len());
    }

    #[test]
    fn the_header_writer_refuses_mixed_recipients_however_they_were_built() {
        let pq = || {
            Box::new(mlkem768x25519::Identity::generate().to_public()) as Box<dyn age::Recipient>
        };
        let classic =
            || Box::new(age::x25519::Identity::generate().to_public()) as Box<dyn age::Recipient>;
        let key = new_file_key();
        for mixed in [vec![pq(), classic()], vec![classic(), pq(), pq()]] {
            let err = Header::wrap(&key, &mixed)
                .err()
                .expect("a mixed header was written");
            assert!(err.contains("both post-quantum and classic"), "{err}");
        }
        assert_eq!(
            Header::wrap(&key, &[pq(), pq()]).unwrap().stanzas().len(),
            2
        );
        assert_eq!(
            Header::wrap(&key, &[classic(), classic()])
                .unwrap()
                .stanzas()
                .len(),
            2
        );
    }
}
