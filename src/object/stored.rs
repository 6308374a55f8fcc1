//! Stored frames: a standard zstd frame made of raw (uncompressed) blocks.
//!
//! Input that is already compressed gains nothing from zstd, and compressing it anyway
//! would double the CPU cost of a backup. libzstd has no "store" level, so we emit the
//! frame ourselves; it is the simplest frame the zstd format (RFC 8878) allows, and any
//! zstd decoder reads it. The layout:
//!
//! - magic `28 B5 2F FD`;
//! - frame header descriptor `0xA4`: single segment, 4-byte frame content size, content
//!   checksum, no dictionary;
//! - the content size, u32 little-endian;
//! - raw blocks of at most 128 KiB, each with a 3-byte header
//!   `last | type(raw = 0) << 1 | size << 3`; an empty frame has one empty last block;
//! - the content checksum: the low 32 bits of XXH64 (seed 0) of the content,
//!   little-endian, as libzstd writes it for compressed frames.
//!
//! The checksum is what lets a restore trust every frame without the SHA-256 of the
//! whole original (docs/FORMAT.md, "What restore checks"): libzstd verifies it as it
//! copies the frame out, and so does stock `zstd -d`. Objects written before frames
//! carried it use the descriptor `0xA0` and no checksum; readers accept both.

use super::ZSTD_MAGIC;

const BLOCK_MAX: usize = 128 * 1024;
/// Frame header descriptor: Single_Segment_flag (bit 5), Frame_Content_Size_flag 2
/// (4 bytes, bits 7-6), Content_Checksum_flag (bit 2).
const FHD_SINGLE_SEGMENT_FCS4_CHECKSUM: u8 = 0xA4;
const CHECKSUM_LEN: usize = 4;

/// The length of the stored frame of `len` bytes.
pub(crate) fn stored_frame_len(len: usize) -> usize {
    9 + len + 3 * len.div_ceil(BLOCK_MAX).max(1) + CHECKSUM_LEN
}

/// Emits the stored zstd frame holding `data` as a sequence of byte slices (headers,
/// the data itself, its checksum), so the caller can copy them straight to where they
/// go. `data` must be under 4 GiB.
pub(crate) fn emit_stored_frame<E>(
    data: &[u8],
    mut emit: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), E> {
    let mut head = [0u8; 9];
    head[..4].copy_from_slice(&ZSTD_MAGIC.to_le_bytes());
    head[4] = FHD_SINGLE_SEGMENT_FCS4_CHECKSUM;
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
    // RFC 8878, Content_Checksum: the lowest 4 bytes of XXH64 with seed 0.
    let checksum = xxhash_rust::xxh64::xxh64(data, 0) as u32;
    emit(&checksum.to_le_bytes())
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
    use crate::object::has_content_checksum;

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

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
            let data = sample(len);
            let mut frame = Vec::new();
            write_stored_frame(&data, &mut frame);
            let back =
                zstd::bulk::decompress(&frame, len.max(1)).expect("libzstd decodes the frame");
            assert_eq!(back, data, "len {len}");
            assert_eq!(frame.len(), stored_frame_len(len));
            assert!(has_content_checksum(&frame));
        }
    }

    #[test]
    fn libzstd_checks_the_content_checksum_of_stored_frames() {
        let data = sample(BLOCK_MAX + 5);
        let mut frame = Vec::new();
        write_stored_frame(&data, &mut frame);
        // The checksum libzstd writes for the same content is the one we wrote.
        let mut c = zstd::bulk::Compressor::new(1).unwrap();
        c.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))
            .unwrap();
        let compressed = c.compress(&data).unwrap();
        assert_eq!(frame[frame.len() - 4..], compressed[compressed.len() - 4..]);
        // A byte of content changed after the checksum was computed is refused.
        let mut altered = frame.clone();
        altered[9 + 3 + 1000] ^= 1;
        let e = zstd::bulk::decompress(&altered, data.len()).expect_err("checksum mismatch");
        assert!(e.to_string().contains("checksum"), "{e}");
    }
}
