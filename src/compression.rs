//! How frames are compressed: the `compression` and `compression_level` options, what
//! they mean to libzstd, and the one place a compression context is configured.
//!
//! The zstd window is derived from the frame size, never set beside it by hand: a frame
//! is compressed independently, so a window larger than the frame buys nothing and one
//! smaller loses matches within the frame. Changing the frame size
//! ([`crate::pipeline::DEFAULT_FRAME_SIZE`]) changes the window with it.

use std::io;

use anyhow::{anyhow, bail, Result};
use zstd::zstd_safe::CParameter;

/// How frames are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// zstd with these settings; already-compressed input is still stored as is.
    Zstd(ZstdLevel),
    /// Never compress: every frame is stored (encryption only).
    None,
}

/// The zstd settings of compressed frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZstdLevel {
    /// No `compression_level` given: parameters chosen for table data (see
    /// `new_compressor`), as small as level 3 on gpbackup's delimited text and faster.
    TableData,
    /// A standard libzstd level, 1 to 19, as given.
    Level(i32),
}

impl Compression {
    /// The setting the plugin config's `compression` and `compression_level` options
    /// (their values as written, if present) describe. Errors name the option and the
    /// values it takes.
    pub fn from_options(compression: Option<&str>, level: Option<&str>) -> Result<Compression> {
        let level = match level {
            Some(v) => {
                let level: i32 = v.trim().parse().map_err(|_| {
                    anyhow!("option compression_level: '{v}' is not a number (1 to 19)")
                })?;
                if !(1..=19).contains(&level) {
                    bail!("option compression_level: {level} is out of range (1 to 19)");
                }
                ZstdLevel::Level(level)
            }
            None => ZstdLevel::TableData,
        };
        match compression.map(str::trim) {
            None | Some("zstd") => Ok(Compression::Zstd(level)),
            Some("none") => Ok(Compression::None),
            Some(other) => bail!("option compression: '{other}' is not one of zstd, none"),
        }
    }
}

/// zstd's smallest window (`ZSTD_WINDOWLOG_MIN`).
const MIN_WINDOW_LOG: u32 = 10;

/// The window log for frames of up to `frame_size` original bytes: the smallest window
/// that holds a whole frame.
pub const fn window_log(frame_size: usize) -> u32 {
    let log = usize::BITS - frame_size.saturating_sub(1).leading_zeros();
    if log < MIN_WINDOW_LOG {
        MIN_WINDOW_LOG
    } else {
        log
    }
}

/// The table-data default's hash table: 64 Ki entries.
const TABLE_DATA_HASH_LOG: u32 = 16;

/// A compression context for frames of up to `frame_size` original bytes, with every
/// parameter a compressed frame is written with; the one place they are set.
///
/// The table-data default (no `compression_level`) is level 1 (zstd's "fast" strategy)
/// with a window as large as a frame and a 64 Ki-entry hash table. On gpbackup's
/// delimited table text (`bench/`, made by `gen_table_csv.py`) this is 1% smaller than
/// level 3 and about 1.35x faster to compress; on source-code-like text it is about 5%
/// larger than level 3 (measured in README, "Compression"). libzstd still shrinks the
/// window and table for inputs smaller than a frame.
pub(crate) fn new_compressor(
    level: ZstdLevel,
    frame_size: usize,
) -> io::Result<zstd::bulk::Compressor<'static>> {
    let table_data = [
        CParameter::WindowLog(window_log(frame_size)),
        CParameter::HashLog(TABLE_DATA_HASH_LOG),
    ];
    let (level, parameters) = match level {
        ZstdLevel::Level(level) => (level, &[][..]),
        ZstdLevel::TableData => (1, &table_data[..]),
    };
    let mut c = zstd::bulk::Compressor::new(level)?;
    // Every frame carries zstd's content checksum (XXH64 of the original bytes, computed
    // by libzstd from its input), which libzstd verifies as it decompresses, and stock
    // `zstd -d` too: with it, a full restore needs no SHA-256 of the whole original
    // (docs/FORMAT.md, "What restore checks").
    c.set_parameter(CParameter::ChecksumFlag(true))?;
    for p in parameters {
        c.set_parameter(*p)?;
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::DEFAULT_FRAME_SIZE;

    #[test]
    fn the_window_holds_exactly_one_frame_whatever_the_frame_size() {
        for frame_size in [
            DEFAULT_FRAME_SIZE,
            DEFAULT_FRAME_SIZE / 2,
            DEFAULT_FRAME_SIZE * 2,
            DEFAULT_FRAME_SIZE + 1,
            (3 << 20) / 2,
            64 << 10,
            1 << 27,
        ] {
            let log = window_log(frame_size);
            assert!(1usize << log >= frame_size, "{frame_size}: {log}");
            assert!(1usize << (log - 1) < frame_size, "{frame_size}: {log}");
        }
        assert_eq!(window_log(1), MIN_WINDOW_LOG);
        // The default frame is 2 MiB: the window libzstd gives level 3 on large inputs.
        assert_eq!(window_log(DEFAULT_FRAME_SIZE), 21);
    }

    #[test]
    fn a_frame_compressed_with_the_default_fits_its_window_and_carries_a_checksum() {
        let frame: Vec<u8> = (0..DEFAULT_FRAME_SIZE).map(|i| (i % 251) as u8).collect();
        let mut c = new_compressor(ZstdLevel::TableData, DEFAULT_FRAME_SIZE).unwrap();
        let compressed = c.compress(&frame).unwrap();
        // Frame header descriptor: bit 2 is the content checksum flag.
        assert_ne!(compressed[4] & 0b100, 0);
        let mut d = zstd::bulk::Decompressor::new().unwrap();
        d.set_parameter(zstd::zstd_safe::DParameter::WindowLogMax(window_log(
            DEFAULT_FRAME_SIZE,
        )))
        .unwrap();
        assert_eq!(d.decompress(&compressed, frame.len()).unwrap(), frame);
    }

    #[test]
    fn options_parse_as_documented() {
        assert_eq!(
            Compression::from_options(None, None).unwrap(),
            Compression::Zstd(ZstdLevel::TableData)
        );
        assert_eq!(
            Compression::from_options(Some(" zstd "), Some("19")).unwrap(),
            Compression::Zstd(ZstdLevel::Level(19))
        );
        assert_eq!(
            Compression::from_options(Some("none"), None).unwrap(),
            Compression::None
        );
        for (c, l, says) in [
            (
                None,
                Some("0"),
                "option compression_level: 0 is out of range (1 to 19)",
            ),
            (
                None,
                Some("x"),
                "option compression_level: 'x' is not a number (1 to 19)",
            ),
            (
                Some("lz4"),
                None,
                "option compression: 'lz4' is not one of zstd, none",
            ),
        ] {
            assert_eq!(
                Compression::from_options(c, l).unwrap_err().to_string(),
                says
            );
        }
    }
}
