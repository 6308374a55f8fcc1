//! Telling age files from other bytes by their first bytes, and reading both encodings
//! of an age file: binary, and ASCII-armored (`age -a`, <https://age-encryption.org/v1>,
//! "ASCII armor": strict PEM, label `AGE ENCRYPTED FILE`, base64 wrapped at 64
//! columns, LF or CRLF line endings).
//!
//! Everything the stock `age -d` reads must restore, so an object someone re-encrypted
//! or re-uploaded with `age -a` is read like any other. The armor itself is decoded by
//! the age crate's [`age::armor::ArmoredReader`], which enforces the canonical encoding
//! as the Go reference does (64-column lines, padding, nothing but whitespace after the
//! end marker). Whitespace before the armor or before a binary header, which the format
//! allows and the Go CLI 1.1 does not, is skipped.
//!
//! The classification is also what keeps `allow_plaintext_restore` from passing an age
//! file through as plaintext: anything that starts (after whitespace) like an age header
//! or an armor is an age file, and is decrypted or refused, never copied out.

use std::io::{self, BufRead, BufReader, Chain, Cursor, Read};
use std::sync::{Arc, Mutex, MutexGuard};

use age::armor::{ArmoredReadError, ArmoredReader};

use super::header::AGE_PREFIX;

/// The first line of an ASCII-armored age file (then LF or CRLF).
pub const ARMOR_BEGIN: &[u8] = b"-----BEGIN AGE ENCRYPTED FILE-----";
/// Leading whitespace skipped before an age header or armor; an object that starts with
/// more whitespace than this is not taken for an age file.
const MAX_LEADING_WHITESPACE: usize = 64 * 1024;
/// Bytes taken from the input per look while classifying.
const SNIFF_STEP: usize = 64;

/// What an object's first bytes say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// A binary age file (`age-encryption.org/…`).
    Binary,
    /// An ASCII-armored age file (`-----BEGIN AGE ENCRYPTED FILE-----`).
    Armored,
    /// Not an age file (no age header, no armor).
    NotAge,
    /// No bytes at all.
    Empty,
}

/// Classifies `head`, the first bytes of an input (`eof`: there are no more). `None`
/// means more bytes are needed to decide. An age header or armor marker cut short by
/// the end of the input still counts as one: it is an age file, damaged.
fn classify(head: &[u8], eof: bool) -> Option<(Encoding, usize)> {
    let ws = head.iter().take_while(|b| b.is_ascii_whitespace()).count();
    if ws == head.len() {
        return match (eof, head.is_empty()) {
            (true, true) => Some((Encoding::Empty, 0)),
            (true, false) => Some((Encoding::NotAge, 0)),
            (false, _) if ws > MAX_LEADING_WHITESPACE => Some((Encoding::NotAge, 0)),
            (false, _) => None,
        };
    }
    let rest = &head[ws..];
    for (marker, encoding) in [
        (AGE_PREFIX, Encoding::Binary),
        (ARMOR_BEGIN, Encoding::Armored),
    ] {
        let n = rest.len().min(marker.len());
        if rest[..n] == marker[..n] {
            return (n == marker.len() || eof).then_some((encoding, ws));
        }
    }
    Some((Encoding::NotAge, 0))
}

/// What was read to classify the input, followed by the rest of the input.
type Replay<R> = Chain<Cursor<Vec<u8>>, R>;

/// An object's bytes, classified: a binary age file as it is, an armored one decoded to
/// the binary age file it holds, anything else as it is. Reads and `BufRead` give the
/// binary age file (or the other bytes); [`AgeInput::into_inner`] gives back the input.
pub struct AgeInput<R> {
    encoding: Encoding,
    inner: Inner<R>,
}

enum Inner<R> {
    Plain(Replay<R>),
    Armored {
        reader: ArmoredReader<BufReader<Lent<R>>>,
        lent: Arc<Mutex<Shared<R>>>,
    },
}

/// The input while the armor decoder reads it. The age crate's reader cannot hand its
/// input back, and the caller needs it back afterwards (to wait for the process that
/// produced it), so the decoder only borrows it through a shared handle.
struct Shared<R> {
    input: Replay<R>,
    /// The input reached its end (to tell a cut armor from a malformed one).
    ended: bool,
}

struct Lent<R>(Arc<Mutex<Shared<R>>>);

impl<R: Read> Read for Lent<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut shared = lock(&self.0);
        let n = shared.input.read(buf)?;
        if n == 0 && !buf.is_empty() {
            shared.ended = true;
        }
        Ok(n)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding it aborts the process (panic = "abort"), so it is never
    // poisoned in practice; the data is plain bytes either way.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<R: BufRead> AgeInput<R> {
    /// Reads the first bytes of `input` (as many as it takes to decide, a few dozen
    /// unless the input starts with whitespace) and classifies it. A read error gives
    /// the input back with it (its producer may explain the error better).
    pub fn open(mut input: R) -> Result<AgeInput<R>, (io::Error, R)> {
        let mut head = Vec::new();
        let (encoding, skip) = loop {
            if let Some(decided) = classify(&head, false) {
                break decided;
            }
            let buf = match input.fill_buf() {
                Ok(buf) => buf,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err((e, input)),
            };
            if buf.is_empty() {
                break classify(&head, true).unwrap_or((Encoding::NotAge, 0));
            }
            let n = buf.len().min(SNIFF_STEP);
            head.extend_from_slice(&buf[..n]);
            input.consume(n);
        };
        head.drain(..skip);
        let replay = Cursor::new(head).chain(input);
        let inner = if encoding == Encoding::Armored {
            let lent = Arc::new(Mutex::new(Shared {
                input: replay,
                ended: false,
            }));
            Inner::Armored {
                reader: ArmoredReader::new(Lent(Arc::clone(&lent))),
                lent,
            }
        } else {
            Inner::Plain(replay)
        };
        Ok(AgeInput { encoding, inner })
    }
}

impl<R> AgeInput<R> {
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// True for an age file, binary or armored.
    pub fn is_age(&self) -> bool {
        matches!(self.encoding, Encoding::Binary | Encoding::Armored)
    }

    /// Runs `f` on the underlying input (e.g. to read its byte counter).
    pub fn with_inner<T>(&self, f: impl FnOnce(&R) -> T) -> T {
        match &self.inner {
            Inner::Plain(replay) => f(replay.get_ref().1),
            Inner::Armored { lent, .. } => f(lock(lent).input.get_ref().1),
        }
    }

    /// The underlying input. Bytes read ahead of what was consumed are dropped.
    pub fn into_inner(self) -> R {
        match self.inner {
            Inner::Plain(replay) => replay.into_inner().1,
            Inner::Armored { reader, lent } => {
                drop(reader);
                let shared = match Arc::try_unwrap(lent) {
                    Ok(mutex) => mutex.into_inner().unwrap_or_else(|p| p.into_inner()),
                    Err(_) => unreachable!("the armor reader, the only other owner, is gone"),
                };
                shared.input.into_inner().1
            }
        }
    }

    /// Explains an error of the armor decoder in words; other errors pass unchanged.
    fn armor_error(&self, e: io::Error) -> io::Error {
        let Inner::Armored { lent, .. } = &self.inner else {
            return e;
        };
        let ended = lock(lent).ended;
        let armor = e.get_ref().is_some_and(|i| i.is::<ArmoredReadError>());
        // The decoder reads its first line with read_exact: a file cut inside it ends so.
        let cut_in_first_line = ended && e.kind() == io::ErrorKind::UnexpectedEof;
        if !(armor || cut_in_first_line) {
            return e;
        }
        let why = if ended {
            "it ends before its END AGE ENCRYPTED FILE line (the object is cut short)".to_string()
        } else {
            e.to_string()
        };
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the object is an ASCII-armored age file (age -a) whose armor is invalid: {why}"
            ),
        )
    }
}

impl<R: BufRead> Read for AgeInput<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let result = match &mut self.inner {
            Inner::Plain(replay) => return replay.read(buf),
            Inner::Armored { reader, .. } => reader.read(buf),
        };
        result.map_err(|e| self.armor_error(e))
    }
}

impl<R: BufRead> BufRead for AgeInput<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        // Checked first, so the borrow of the buffer returned below stays simple (a
        // second call returns what the first one buffered).
        let failed = match &mut self.inner {
            Inner::Armored { reader, .. } => reader.fill_buf().err(),
            Inner::Plain(_) => None,
        };
        if let Some(e) = failed {
            return Err(self.armor_error(e));
        }
        match &mut self.inner {
            Inner::Plain(replay) => replay.fill_buf(),
            Inner::Armored { reader, .. } => reader.fill_buf(),
        }
    }

    fn consume(&mut self, amt: usize) {
        match &mut self.inner {
            Inner::Plain(replay) => replay.consume(amt),
            Inner::Armored { reader, .. } => reader.consume(amt),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn armored(binary: &[u8], crlf: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w =
            age::armor::ArmoredWriter::wrap_output(&mut out, age::armor::Format::AsciiArmor)
                .unwrap();
        w.write_all(binary).unwrap();
        w.finish().unwrap();
        if crlf {
            String::from_utf8(out)
                .unwrap()
                .replace('\n', "\r\n")
                .into_bytes()
        } else {
            out
        }
    }

    fn read(bytes: &[u8], step: usize) -> (Encoding, io::Result<Vec<u8>>) {
        // A reader that hands out `step` bytes at a time, like a slow pipe.
        let input = BufReader::with_capacity(step, bytes);
        let mut age = AgeInput::open(input).map_err(|(e, _)| e).unwrap();
        let mut out = Vec::new();
        let result = age.read_to_end(&mut out).map(|_| out);
        (age.encoding(), result)
    }

    #[test]
    fn classifies_and_reads_every_encoding() {
        let binary = [b"age-encryption.org/v1\n".as_slice(), &[7u8; 200]].concat();
        for step in [1, 3, 64, 8192] {
            assert_eq!(read(&binary, step).0, Encoding::Binary);
            assert_eq!(read(&binary, step).1.unwrap(), binary);
            for crlf in [false, true] {
                let (enc, got) = read(&armored(&binary, crlf), step);
                assert_eq!(enc, Encoding::Armored, "step {step} crlf {crlf}");
                assert_eq!(got.unwrap(), binary, "step {step} crlf {crlf}");
            }
            // Whitespace before either encoding is skipped.
            let lead = [b"\n \r\n\t".as_slice(), &armored(&binary, false)].concat();
            assert_eq!(read(&lead, step).1.unwrap(), binary);
            let lead = [b"\n\n".as_slice(), &binary].concat();
            assert_eq!(read(&lead, step).1.unwrap(), binary);
            // Other bytes, and whitespace that leads to nothing, are returned as they are.
            for other in [
                b"-- Greenplum metadata\n".as_slice(),
                b"   \n",
                b"b",
                b"age\n",
                b"\x1f\x8b\x08",
            ] {
                let (enc, got) = read(other, step);
                assert_eq!(enc, Encoding::NotAge, "{other:?}");
                assert_eq!(got.unwrap(), other);
            }
            assert_eq!(read(b"", step).0, Encoding::Empty);
            // Cut inside the marker: still an age file, a damaged one.
            assert_eq!(read(b"age-encr", step).0, Encoding::Binary);
            assert_eq!(read(b"a", step).0, Encoding::Binary);
            assert_eq!(read(b"-----BEGIN AGE", step).0, Encoding::Armored);
        }
    }

    #[test]
    fn damaged_armor_is_refused_in_words() {
        let binary = vec![9u8; 5000];
        let good = armored(&binary, false);
        let cut = &good[..good.len() / 2];
        let err = read(cut, 8192).1.unwrap_err().to_string();
        assert!(
            err.contains("ASCII-armored") && err.contains("cut short"),
            "{err}"
        );
        let mut bad = good.clone();
        bad[100] = b'!';
        let err = read(&bad, 8192).1.unwrap_err().to_string();
        assert!(err.contains("armor is invalid"), "{err}");
        let trailing = [good.as_slice(), b"x"].concat();
        assert!(read(&trailing, 8192).1.is_err());
        let trailing_ws = [good.as_slice(), b"\n \n"].concat();
        assert_eq!(read(&trailing_ws, 8192).1.unwrap(), binary);
    }

    #[test]
    fn the_input_comes_back() {
        let binary = vec![1u8; 100];
        let armored = armored(&binary, false);
        let mut age = AgeInput::open(&armored[..]).map_err(|(e, _)| e).unwrap();
        let mut out = Vec::new();
        age.read_to_end(&mut out).unwrap();
        assert_eq!(age.with_inner(|r| r.len()), 0);
        assert!(age.into_inner().is_empty());
    }
}
