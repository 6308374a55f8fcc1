//! Text files as people save them: the plugin config, recipients files and identity
//! files all go through here.
//!
//! - Encoding: UTF-8, with or without a byte-order mark, and UTF-16 (LE or BE) with a
//!   byte-order mark, which is what go-yaml v2 (gpbackup's config parser) reads:
//!   Windows editors and some config tools write either. Anything else is refused,
//!   naming the line of the first byte that is not UTF-8.
//! - Line ends: LF, CRLF and a lone CR are all line ends to YAML; key files are split
//!   on LF with a trailing CR dropped, as age's own parsers do (`bufio.ScanLines`,
//!   `BufRead::lines`).
//! - Invisible characters (a zero-width space, a no-break space, a bidirectional
//!   control…) are never silently part of a key, a path or an option name: where they
//!   are refused, [`invisible`] names them, e.g. "a zero-width space (U+200B)".

use std::fmt;

use zeroize::Zeroizing;

/// Why bytes are not text we read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextError {
    /// A byte that is not part of valid UTF-8, on this (1-based) line.
    NotUtf8 { line: usize, byte: u8 },
    /// A UTF-16 byte-order mark followed by an odd number of bytes or unpaired
    /// surrogates.
    BadUtf16,
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TextError::NotUtf8 { line, byte } => write!(
                f,
                "is not UTF-8 text (line {line} has the byte 0x{byte:02X}); save it as UTF-8"
            ),
            TextError::BadUtf16 => write!(
                f,
                "starts with a UTF-16 byte-order mark but is not valid UTF-16; save it as UTF-8"
            ),
        }
    }
}

impl std::error::Error for TextError {}

/// The text of a file's bytes: a UTF-8 byte-order mark is dropped, UTF-16 with a
/// byte-order mark is converted. The result zeroizes itself (identity files pass
/// through here).
pub fn decode(bytes: &[u8]) -> Result<Zeroizing<String>, TextError> {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return utf8(rest);
    }
    let utf16: Option<fn([u8; 2]) -> u16> = match bytes {
        [0xFF, 0xFE, ..] => Some(u16::from_le_bytes),
        [0xFE, 0xFF, ..] => Some(u16::from_be_bytes),
        _ => None,
    };
    let Some(unit) = utf16 else {
        return utf8(bytes);
    };
    let body = &bytes[2..];
    if !body.len().is_multiple_of(2) {
        return Err(TextError::BadUtf16);
    }
    let units: Zeroizing<Vec<u16>> = Zeroizing::new(
        body.chunks_exact(2)
            .map(|pair| unit([pair[0], pair[1]]))
            .collect(),
    );
    String::from_utf16(&units)
        .map(Zeroizing::new)
        .map_err(|_| TextError::BadUtf16)
}

fn utf8(bytes: &[u8]) -> Result<Zeroizing<String>, TextError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(Zeroizing::new(text.to_string())),
        Err(e) => {
            let at = e.valid_up_to();
            let line = 1 + bytes[..at].iter().filter(|&&b| b == b'\n').count();
            Err(TextError::NotUtf8 {
                line,
                byte: bytes[at],
            })
        }
    }
}

/// The lines of `text` with their 1-based numbers, split on LF with one trailing CR
/// dropped (CRLF files read like LF files).
pub fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .enumerate()
        .map(|(i, line)| (i + 1, line))
}

/// The name of a character that does not show (or shows as a plain space) but is not
/// an ASCII space, tab or line end: "a zero-width space (U+200B)". `None` for every
/// other character.
pub fn invisible(c: char) -> Option<String> {
    let name = match c {
        '\u{00A0}' => "a no-break space",
        '\u{00AD}' => "a soft hyphen",
        '\u{034F}' => "a combining grapheme joiner",
        '\u{061C}' => "an Arabic letter mark",
        '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' => "a Hangul filler",
        '\u{1680}' => "an Ogham space mark",
        '\u{180E}' => "a Mongolian vowel separator",
        '\u{2000}'..='\u{200A}' => "a typographic space",
        '\u{200B}' => "a zero-width space",
        '\u{200C}' => "a zero-width non-joiner",
        '\u{200D}' => "a zero-width joiner",
        '\u{200E}' => "a left-to-right mark",
        '\u{200F}' => "a right-to-left mark",
        '\u{2028}' => "a line separator",
        '\u{2029}' => "a paragraph separator",
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => "a bidirectional control",
        '\u{202F}' => "a narrow no-break space",
        '\u{205F}' => "a medium mathematical space",
        '\u{2060}' => "a word joiner",
        '\u{2061}'..='\u{2064}' => "an invisible operator",
        '\u{3000}' => "an ideographic space",
        '\u{FEFF}' => "a byte-order mark (zero-width no-break space)",
        '\u{FFF9}'..='\u{FFFB}' => "an interlinear annotation control",
        '\u{E0000}'..='\u{E007F}' => "a tag character",
        c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => "a control character",
        _ => return None,
    };
    Some(format!("{name} (U+{:04X})", c as u32))
}

/// The first invisible character of `text`, named (see [`invisible`]).
pub fn first_invisible(text: &str) -> Option<String> {
    text.chars().find_map(invisible)
}

/// The 1-based number of the first line of `text` that contains `needle`.
pub fn line_of(text: &str, needle: &str) -> Option<usize> {
    lines(text)
        .find(|(_, line)| line.contains(needle))
        .map(|(n, _)| n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_order_marks_and_encodings() {
        assert_eq!(*decode(b"\xEF\xBB\xBFa: b\n").unwrap(), "a: b\n");
        assert_eq!(*decode(b"a: b\n").unwrap(), "a: b\n");
        let le: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("a: é\n".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert_eq!(*decode(&le).unwrap(), "a: é\n");
        let be: Vec<u8> = [0xFE, 0xFF]
            .into_iter()
            .chain("a: é\n".encode_utf16().flat_map(u16::to_be_bytes))
            .collect();
        assert_eq!(*decode(&be).unwrap(), "a: é\n");
        assert_eq!(decode(b"\xFF\xFEa"), Err(TextError::BadUtf16));
        assert_eq!(
            decode(b"a\nb\n# caf\xE9\n"),
            Err(TextError::NotUtf8 {
                line: 3,
                byte: 0xE9
            })
        );
    }

    #[test]
    fn lines_drop_carriage_returns() {
        let got: Vec<_> = lines("a\r\nb\n\r\nc").collect();
        assert_eq!(got, vec![(1, "a"), (2, "b"), (3, ""), (4, "c")]);
    }

    #[test]
    fn invisible_characters_are_named() {
        assert_eq!(
            first_invisible("age1abc\u{200B}").as_deref(),
            Some("a zero-width space (U+200B)")
        );
        assert_eq!(
            first_invisible("\u{A0}x").as_deref(),
            Some("a no-break space (U+00A0)")
        );
        assert_eq!(
            first_invisible("a\u{7}").as_deref(),
            Some("a control character (U+0007)")
        );
        assert_eq!(first_invisible("plain text\twith tab é ü ß 日本"), None);
    }
}
