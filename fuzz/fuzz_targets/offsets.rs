//! The offsets file of restore_data_subset (`pipeline::ByteRanges::parse`).
//! Properties: accepted ranges are non-empty, sorted and disjoint, and the reach is not
//! before the last of them; `within` only returns in-bounds, ordered pieces; printing
//! and re-parsing gives the same ranges and reach.
#![no_main]

use gpbackup_age_plugin::pipeline::ByteRanges;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(ranges) = ByteRanges::parse(&text) else {
        return;
    };
    let r = ranges.ranges();
    for (i, &(s, e)) in r.iter().enumerate() {
        assert!(s < e, "empty or reversed range kept");
        if i > 0 {
            assert!(r[i - 1].1 <= s, "ranges not sorted and disjoint");
        }
    }
    // How far the file reaches (zero-length ranges included) is kept: printed as a
    // zero-length range at that offset when it lies past the last non-empty range.
    let last_end = r.last().map_or(0, |x| x.1);
    assert!(ranges.end() >= last_end, "reach before the last range");
    let mut pairs: Vec<(u64, u64)> = r.to_vec();
    if ranges.end() > last_end {
        pairs.push((ranges.end(), ranges.end()));
    }
    let printed = format!(
        "{} {}",
        pairs.len(),
        pairs
            .iter()
            .map(|(s, e)| format!("{s} {e}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    assert_eq!(ByteRanges::parse(&printed).expect("re-parse"), ranges);
    // Windows around the ranges, as a restore walks its frames.
    for &(offset, len) in &[(0u64, 1u64 << 21), (r.first().map_or(0, |x| x.0), 7)] {
        let Some(_) = offset.checked_add(len) else {
            continue;
        };
        let mut last_end = 0;
        for piece in ranges.within(offset, len) {
            assert!(piece.start < piece.end && piece.end as u64 <= len);
            assert!(piece.start >= last_end);
            last_end = piece.end;
        }
    }
});
