//! How what we tell people reads: an error on one line, an I/O failure's cause in words,
//! byte counts, rates and digests in the forms people compare them in.

/// Folds a message onto one line (errors must be one line on stderr).
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The cause of an I/O error without Rust's "(os error N)" suffix.
pub fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        // The system's wording, in lower case like the rest of a line ("not a directory");
        // our own I/O errors' text is already ours.
        _ if e.raw_os_error().is_some() => {
            let s = e.to_string();
            let reason = s.split(" (os error").next().unwrap_or(&s);
            let mut chars = reason.chars();
            match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => String::new(),
            }
        }
        _ => e.to_string(),
    }
}

/// An error and its causes on one line, `outer: inner: root`, as `{:#}` prints them,
/// but with every I/O cause in our words (`io_reason`) rather than Rust's. The one
/// way an error becomes a line a person reads (stderr, the call log).
pub fn error_line(e: &anyhow::Error) -> String {
    let parts: Vec<String> = e
        .chain()
        .map(|cause| match cause.downcast_ref::<std::io::Error>() {
            Some(io) => io_reason(io),
            None => cause.to_string(),
        })
        .collect();
    one_line(&parts.join(": "))
}

/// A byte count for people, in binary units ("5.76 MiB").
pub fn human_bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

/// A rate for people, from bytes and seconds ("19.20 MiB/s"; "-" for no time at all).
pub fn human_rate(bytes: u64, secs: f64) -> String {
    if secs <= 0.0 {
        return "-".into();
    }
    format!("{}/s", human_bytes((bytes as f64 / secs) as u64))
}

/// Bytes as lower-case hex digits, as `sha256sum` prints a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn io_causes_read_in_our_words_at_any_depth() {
        let missing = std::fs::read("/nonexistent/gpbackup_age_plugin/x")
            .context("cannot read plugin config /x")
            .context("backup_data k")
            .unwrap_err();
        assert_eq!(
            error_line(&missing),
            "backup_data k: cannot read plugin config /x: no such file"
        );
        let os = std::io::Error::from_raw_os_error(20);
        assert_eq!(io_reason(&os), "not a directory");
        let ours = std::io::Error::other("HPKE seal: bad key");
        assert_eq!(io_reason(&ours), "HPKE seal: bad key");
    }
}
