//! The offsets file of `restore_data_subset`: one line `N s1 e1 s2 e2 …`, N byte ranges
//! `[s, e)` of the original stream, to be written in order.
//!
//! What is legal is what gpbackup_helper writes (helper/restore_helper.go: the count,
//! then the `StartByte EndByte` of each table of the segment TOC, in TOC order, with no
//! newline): ranges in ascending order, each starting at or after the end of the one
//! before. A table with no rows on a segment gives a zero-length range (`s == e`), so
//! zero-length ranges occur anywhere, repeated at one offset too (`2 0 0 0 0`, the
//! offsets of an empty segment file), and adjacent ranges (`0 5 5 9`) are the rule.
//! An empty list (`0`) asks for nothing. Refused: a range that ends before it starts,
//! ranges out of order or overlapping, and (once the object's length is known) any range,
//! even a zero-length one, that lies beyond the end of the object.

use std::fmt;

/// Sorted, non-overlapping, non-empty byte ranges of the original stream, and how far
/// into the stream the offsets file reaches (zero-length ranges included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByteRanges {
    ranges: Vec<(u64, u64)>,
    /// The largest end offset of any range, empty ones included: the object must be at
    /// least this long.
    reach: u64,
}

/// Why an offsets file was refused.
#[derive(Debug, PartialEq, Eq)]
pub struct RangesError(pub String);

impl fmt::Display for RangesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RangesError {}

/// More ranges than any restore asks for; bounds what a hostile file can make us hold.
const MAX_RANGES: usize = 1 << 20;

impl ByteRanges {
    /// Parses the offsets file's text.
    pub fn parse(text: &str) -> Result<ByteRanges, RangesError> {
        let err = |m: String| Err(RangesError(m));
        let mut words = text.split_ascii_whitespace();
        let count: usize = match words.next().map(str::parse) {
            Some(Ok(n)) => n,
            Some(Err(_)) => return err("the range count is not a number".into()),
            None => return err("the offsets file is empty".into()),
        };
        if count > MAX_RANGES {
            return err(format!("{count} ranges is more than {MAX_RANGES}"));
        }
        // Each range takes at least four bytes of text: a short file announcing a
        // million ranges must not allocate for them up front.
        let mut ranges = Vec::with_capacity(count.min(text.len() / 4 + 1));
        let mut prev_end = 0u64;
        for i in 0..count {
            let mut number = |what: &str| -> Result<u64, RangesError> {
                match words.next().map(str::parse::<u64>) {
                    Some(Ok(v)) => Ok(v),
                    Some(Err(_)) => Err(RangesError(format!(
                        "range {}: the {what} offset is not a non-negative number",
                        i + 1
                    ))),
                    None => Err(RangesError(format!(
                        "the file announces {count} ranges but holds only {i}"
                    ))),
                }
            };
            let start = number("start")?;
            let end = number("end")?;
            if end < start {
                return err(format!(
                    "range {}: end {end} is before start {start}",
                    i + 1
                ));
            }
            if start < prev_end {
                return err(format!(
                    "range {} [{start}, {end}) overlaps or precedes the range before it (ranges must be sorted and disjoint)",
                    i + 1
                ));
            }
            prev_end = end;
            if end > start {
                ranges.push((start, end));
            }
        }
        if words.next().is_some() {
            return err(format!("more numbers than the {count} ranges announced"));
        }
        Ok(ByteRanges {
            ranges,
            reach: prev_end,
        })
    }

    /// The non-empty ranges, in order.
    pub fn ranges(&self) -> &[(u64, u64)] {
        &self.ranges
    }

    /// How far into the original the offsets file reaches: nothing past it is needed,
    /// and an object shorter than this is refused ([`ByteRanges::check_reach`]). 0 for
    /// an empty list or only zero-length ranges at offset 0.
    pub fn end(&self) -> u64 {
        self.reach
    }

    /// Fails when the ranges reach past the end of an original of `len` bytes: one line
    /// naming both offsets.
    pub fn check_reach(&self, len: u64) -> Result<(), RangesError> {
        if self.reach > len {
            return Err(RangesError(format!(
                "the offsets file asks for bytes up to offset {} but the object holds only {len} bytes (a range beyond the end of the object)",
                self.reach
            )));
        }
        Ok(())
    }

    /// The parts of `[offset, offset + len)` to output, relative to `offset`, in order.
    pub fn within(&self, offset: u64, len: u64) -> Vec<std::ops::Range<usize>> {
        let end = offset + len;
        let first = self.ranges.partition_point(|r| r.1 <= offset);
        self.ranges[first..]
            .iter()
            .take_while(|r| r.0 < end)
            .map(|&(s, e)| (s.max(offset) - offset) as usize..(e.min(end) - offset) as usize)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_facts_example() {
        let r = ByteRanges::parse("1 3 10\n").unwrap();
        assert_eq!(r.ranges(), &[(3, 10)]);
        assert_eq!(r.within(0, 5), vec![3..5]);
        assert_eq!(r.within(5, 100), vec![0..5]);
        assert!(r.within(10, 5).is_empty());
    }

    #[test]
    fn refuses_bad_files() {
        for bad in [
            "",
            "x",
            "2 0 5",
            "1 5 3",
            "2 0 5 4 8",
            "2 5 8 0 1",
            "1 0 5 9",
            "1 -1 4",
        ] {
            assert!(ByteRanges::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(ByteRanges::parse("2 0 5 5 8").is_ok());
    }

    #[test]
    fn zero_length_ranges_as_gpbackup_helper_writes_them() {
        // No newline, as the helper writes it; an empty segment file; a list asking
        // for nothing; a table without rows between two that have some.
        for (text, ranges, reach) in [
            ("1 0 0", vec![], 0),
            ("2 0 0 0 0", vec![], 0),
            ("0", vec![], 0),
            ("3 0 5 5 5 5 9", vec![(0, 5), (5, 9)], 9),
            ("2 0 5 7 7", vec![(0, 5)], 7),
            ("2 3 3 3 3", vec![], 3),
        ] {
            let r = ByteRanges::parse(text).unwrap();
            assert_eq!(r.ranges(), &ranges[..], "{text}");
            assert_eq!(r.end(), reach, "{text}");
            assert!(r.check_reach(reach).is_ok());
        }
        // A zero-length range past the end is still past the end.
        let r = ByteRanges::parse("2 0 5 7 7").unwrap();
        let e = r.check_reach(6).unwrap_err().to_string();
        assert!(
            e.contains("up to offset 7") && e.contains("only 6 bytes"),
            "{e}"
        );
        // Descending zero-length ranges are refused like any other.
        assert!(ByteRanges::parse("2 5 5 3 3").is_err());
    }
}
