//! Reading the config file's YAML as gpbackup does, and explaining what it refuses.
//!
//! gpbackup reads its plugin config with go-yaml v2 (`yaml.UnmarshalStrict`) into
//! `executablepath: string` and `options: map[string]string`
//! (apache/cloudberry-backup, utils/plugin.go). So, exactly as there:
//! - only the first YAML document counts;
//! - the top level holds `executablepath` and `options` and nothing else;
//! - every option value is a scalar, read as the text written (`007` stays `007`,
//!   `0x10` stays `0x10`, `on` stays `on`); `key:` with nothing after it is an empty
//!   string;
//! - a key may appear once.
//!
//! The common path is one pass of serde_yaml over the document. Only when it fails is
//! the document read again to say, in words, what is wrong: a tab in the indentation,
//! options not nested under `options:`, a list where a value belongs.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;

use anyhow::{anyhow, bail, Result};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

use crate::text;

/// The first document of a config file: its options in file order (a value of `None`
/// was written as `key:` with nothing after it), and the other top-level keys.
pub struct Document {
    pub options: Vec<(String, Option<String>)>,
    stray: Vec<String>,
}

/// Reads the first YAML document of `text`, refusing what gpbackup refuses (and a few
/// things it would misread) with one line a person understands.
pub fn read(text: &str, path: &Path) -> Result<Document> {
    let where_ = path.display();
    refuse_invisible_indentation(text, path)?;
    let first = serde_yaml::Deserializer::from_str(text).next();
    // No document at all (an empty file, only comments) reads as no options, as in
    // go-yaml; the missing inner_executablepath is named later.
    let document = match first {
        None => DocumentVisitor.visit_unit::<serde_yaml::Error>()?,
        Some(doc) => Document::deserialize(doc).map_err(|e| explain(text, path, e))?,
    };
    if let Some(key) = document.stray.first() {
        let line = text::line_of(text, key)
            .map(|n| format!(" (line {n})"))
            .unwrap_or_default();
        bail!(
            "plugin config {where_}: `{key}`{line} is at the top level of the file, where gpbackup reads only executablepath and options; options go under `options:`, indented by two spaces"
        );
    }
    for (key, _) in &document.options {
        if let Some(what) = text::first_invisible(key) {
            let line = text::line_of(text, key)
                .map(|n| format!("line {n}: "))
                .unwrap_or_default();
            bail!(
                "plugin config {where_}: {line}the option name '{}' has {what}; delete it and type the name again",
                key.chars().filter(|c| text::invisible(*c).is_none()).collect::<String>()
            );
        }
    }
    Ok(document)
}

/// Refuses an invisible character in the value of one of our own options (a path, a
/// recipient): it would otherwise surface as a file that "does not exist" or a key
/// that "is not valid" with nothing visibly wrong.
pub fn refuse_invisible(text: &str, path: &Path, key: &str, value: &str) -> Result<()> {
    if let Some(what) = text::first_invisible(value) {
        let line = text::line_of(text, key)
            .map(|n| format!(" (line {n})"))
            .unwrap_or_default();
        bail!(
            "plugin config {}: option {key}{line} has {what} in its value; delete it (retype the value)",
            path.display()
        );
    }
    Ok(())
}

/// A line whose indentation holds an invisible character (a no-break space copied
/// from a web page looks like a space): YAML does not count it as indentation, so the
/// line would silently become something else (go-yaml reads such a line as a new
/// top-level key).
fn refuse_invisible_indentation(text: &str, path: &Path) -> Result<()> {
    for (n, line) in text::lines(text) {
        for c in line.chars() {
            if c == ' ' || c == '\t' {
                continue;
            }
            if let Some(what) = text::invisible(c) {
                bail!(
                    "plugin config {}: line {n} has {what} in its indentation; indent with spaces only",
                    path.display()
                );
            }
            break;
        }
    }
    Ok(())
}

/// Turns a serde_yaml error of the fast path into one line for a person: the document
/// is read again, structurally, to name what is wrong.
fn explain(text: &str, path: &Path, e: serde_yaml::Error) -> anyhow::Error {
    let where_ = path.display();
    let value = serde_yaml::Deserializer::from_str(text)
        .next()
        .map(serde_yaml::Value::deserialize);
    let value = match value {
        Some(Ok(value)) => value,
        Some(Err(syntax)) => {
            let mark = syntax.location().map(|l| l.line());
            // YAML forbids tabs in indentation; say so rather than "cannot start any
            // token". The line the parser names, else the first tab-indented one.
            let tab = text::lines(text)
                .filter(|(_, line)| {
                    line.chars()
                        .take_while(|c| c.is_ascii_whitespace())
                        .any(|c| c == '\t')
                })
                .map(|(n, _)| n)
                .min_by_key(|n| mark.map_or(0, |m| n.abs_diff(m)));
            return match tab {
                Some(n) => anyhow!(
                    "plugin config {where_}: line {n} is indented with a tab; YAML allows only spaces for indentation"
                ),
                None => anyhow!(
                    "plugin config {where_} is not valid YAML: {}",
                    crate::message::one_line(&syntax.to_string())
                ),
            };
        }
        None => return anyhow!("plugin config {where_} is empty"),
    };
    use serde_yaml::Value;
    let Value::Mapping(top) = value else {
        return anyhow!(
            "plugin config {where_} is not a plugin config: its top level is {}, not `executablepath:` and `options:`",
            kind(&value)
        );
    };
    if let Some(options) = top.get("options") {
        match options {
            Value::Mapping(options) => {
                for (key, value) in options {
                    if matches!(value, Value::Sequence(_) | Value::Mapping(_)) {
                        return anyhow!(
                            "plugin config {where_}: option {} must be a plain string, not {} (gpbackup accepts no lists or maps under options)",
                            scalar_text(key),
                            kind(value)
                        );
                    }
                    if !is_scalar(key) {
                        return anyhow!(
                            "plugin config {where_}: an option name under options is {}, not a plain name",
                            kind(key)
                        );
                    }
                }
            }
            Value::Null => {}
            other => {
                return anyhow!(
                    "plugin config {where_}: options must be `name: value` lines indented under it, not {}",
                    kind(other)
                )
            }
        }
    }
    anyhow!(
        "plugin config {where_} is not valid: {}",
        crate::message::one_line(&e.to_string())
    )
}

/// What a YAML value is, in words.
fn kind(value: &serde_yaml::Value) -> &'static str {
    use serde_yaml::Value;
    match value {
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a map",
        Value::Null => "empty",
        Value::Tagged(_) => "a tagged value",
        _ => "a single value",
    }
}

fn is_scalar(value: &serde_yaml::Value) -> bool {
    use serde_yaml::Value;
    matches!(
        value,
        Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null
    )
}

fn scalar_text(value: &serde_yaml::Value) -> String {
    use serde_yaml::Value;
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => "?".into(),
    }
}

impl<'de> Deserialize<'de> for Document {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DocumentVisitor)
    }
}

struct DocumentVisitor;

impl<'de> Visitor<'de> for DocumentVisitor {
    type Value = Document;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("`executablepath:` and `options:`")
    }

    /// An empty document: no options at all.
    fn visit_unit<E: de::Error>(self) -> Result<Document, E> {
        Ok(Document {
            options: Vec::new(),
            stray: Vec::new(),
        })
    }

    fn visit_none<E: de::Error>(self) -> Result<Document, E> {
        self.visit_unit()
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Document, A::Error> {
        let mut options = Vec::new();
        let mut stray = Vec::new();
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!("key {key} appears twice")));
            }
            match key.as_str() {
                "options" => {
                    if let Some(Options(list)) = map.next_value::<Option<Options>>()? {
                        options = list;
                    }
                }
                "executablepath" => {
                    map.next_value::<IgnoredAny>()?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    stray.push(key);
                }
            }
        }
        Ok(Document { options, stray })
    }
}

/// The `options:` mapping, values as written.
struct Options(Vec<(String, Option<String>)>);

impl<'de> Deserialize<'de> for Options {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(OptionsVisitor)
    }
}

struct OptionsVisitor;

impl<'de> Visitor<'de> for OptionsVisitor {
    type Value = Options;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("`name: value` lines")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Options, A::Error> {
        let mut list = Vec::new();
        let mut seen = HashSet::new();
        // Strings are read as written (serde_yaml hands a scalar's text to a string).
        while let Some((key, value)) = map.next_entry::<String, Option<String>>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!("option {key} appears twice")));
            }
            list.push((key, value));
        }
        Ok(Options(list))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_ok(text: &str) -> Vec<(String, Option<String>)> {
        read(text, Path::new("c.yaml")).unwrap().options
    }

    fn read_err(text: &str) -> String {
        read(text, Path::new("c.yaml")).err().unwrap().to_string()
    }

    #[test]
    fn values_keep_their_text_as_gpbackup_reads_them() {
        let got = read_ok(
            "executablepath: /x\noptions:\n  a: 007\n  b: 0x10\n  c: on\n  d:\n  e: ~\n  f: 1e3\n  g: \"q\"\n",
        );
        let want: Vec<(String, Option<String>)> = [
            ("a", Some("007")),
            ("b", Some("0x10")),
            ("c", Some("on")),
            ("d", None),
            ("e", None),
            ("f", Some("1e3")),
            ("g", Some("q")),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn only_the_first_document_counts() {
        let got = read_ok("options:\n  a: b\n---\noptions:\n  c: d\n");
        assert_eq!(got, vec![("a".to_string(), Some("b".to_string()))]);
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        assert!(read_err("options:\n\tinner: x\n").contains("line 2 is indented with a tab"));
        assert!(read_err("executablepath: /x\ninner_executablepath: /y\n")
            .contains("`inner_executablepath` (line 2) is at the top level"));
        assert!(read_err("options:\n  folder: [a, b]\n")
            .contains("option folder must be a plain string, not a list"));
        assert!(read_err("options: \"a string\"\n").contains("not a single value"));
        assert!(read_err("- a\n- b\n").contains("its top level is a list"));
        assert!(read_err("options:\n  a: 1\n  a: 2\n").contains("a"));
        assert!(read_err("options:\n\u{a0}\u{a0}a: 1\n")
            .contains("line 2 has a no-break space (U+00A0) in its indentation"));
        assert!(read_err("options:\n  buck\u{200b}et: x\n")
            .contains("line 2: the option name 'bucket' has a zero-width space (U+200B)"));
        for text in [
            "",
            "# only a comment\n",
            "executablepath: /x\n",
            "options:\n",
        ] {
            assert!(read_ok(text).is_empty(), "{text:?}");
        }
        let err = read_err("executablepath: [unclosed\n");
        assert!(
            !err.contains("Document") && !err.contains("Options"),
            "{err}"
        );
    }
}
