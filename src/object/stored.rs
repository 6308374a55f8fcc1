//! Stored frames: a standard zstd frame made of raw (uncompressed) blocks.
//!
//! Input that is already compressed gains nothing from zstd, and compressing it anyway
//! would double the CPU cost of a backup. libzstd has no "store" level, so we emit the
//! frame ourselves; it is the simplest frame the zstd format (RFC 8878) allows, and any
//! zstd decoder reads it. The layout:
//!
//! - magic `28 B5 2F FD`;
//! - frame header descriptor `0xA0`: single segment, 4-byte frame content size, no
//!   checksum, no dictionary;
//! - the content size, u32 little-endian;
//! - raw blocks of at most 128 KiB, each with a 3-byte header
//!   `last | type(raw = 0) << 1 | size << 3`; an empty frame has one empty last block.

use super::ZSTD_MAGIC;

const BLOCK_MAX: usize = 128 * 1024;
const FHD_SINGLE_SEGMENT_FCS4: u8 = 0xA0;

/// The length of the stored frame of `len` bytes.
pub fn stored_frame_len(len: usize) -> usize {
    9 + len + 3 * len.div_ceil(BLOCK_MAX).max(1)
}

/// Emits the stored zstd frame holding `data` as a sequence of byte slices (headers and
/// the data itself), so the caller can copy them straight to where they go. `data` must
/// be under 4 GiB.
pub fn emit_stored_frame<E>(
    data: &[u8],
    mut emit: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), E> {
    let mut head = [0u8; 9];
    head[..4].copy_from_slice(&ZSTD_MAGIC.to_le_bytes());
    head[4] = FHD_SINGLE_SEGMENT_FCS4;
    head[5..].copy_from_slice(&(data.len() as u32).to_le_bytes());
    emit(&head)?;
    let blocks = data.len().div_ceil(BLOCK_MAX).max(1);
    for i in 0..blocks {
        let block = &data[(i * BLOCK_MAX).min(data.len())..((i + 1) * BLOCK_MAX).min(data.len())];
        let last = u32::from(i + 1 == blocks);
        let header = last | ((block.len() as u32) << 3);
        emit(&header.to_le_bytes()[..3])?;
        emit(block)?;
    }
    Ok(())
}

/// Appends the stored zstd frame holding `data` to `out`.
pub fn write_stored_frame(data: &[u8], out: &mut Vec<u8>) {
    out.reserve(stored_frame_len(data.len()));
    let _ = emit_stored_frame::<()>(data, |bytes| {
        out.extend_from_slice(bytes);
        Ok(())
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libzstd_reads_stored_frames() {
        for len in [
            0usize,
            1,
            1000,
            BLOCK_MAX - 1,
            BLOCK_MAX,
            BLOCK_MAX + 1,
            3 * BLOCK_MAX + 17,
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let mut frame = Vec::new();
            write_stored_frame(&data, &mut frame);
            let back =
                zstd::bulk::decompress(&frame, len.max(1)).expect("libzstd decodes the frame");
            assert_eq!(back, data, "len {len}");
            assert_eq!(frame.len(), stored_frame_len(len));
        }
    }
}
