//! The frame pipelines that turn an original stream into a stored object and back.
//!
//! Backup ([`encode`]): the calling thread reads the input in frames and hashes it, a
//! pool of workers compresses frames independently, and an ordered writer seals them
//! into the age payload. Restore ([`decode`]): the calling thread decrypts and splits
//! the payload into frames, workers decompress them, and an ordered writer verifies and
//! emits them. Channels between the stages are bounded, so memory does not grow with
//! the stream. An input or object of a single frame never starts a thread: gpbackup
//! starts one plugin process per table per segment, and most tables are small.

pub mod decode;
pub mod encode;
pub mod ranges;

pub use decode::{decode, DecodeError, DecodeOptions, DecodeReport};
pub use encode::{encode, EncodeOptions, EncodeReport};
pub use ranges::ByteRanges;

/// Original bytes per frame. 2 MiB matches zstd's level-3 window, so independent frames
/// lose little ratio, and keeps a frame's buffers small enough that the whole pipeline
/// stays far below 64 MiB.
pub const DEFAULT_FRAME_SIZE: usize = 2 << 20;

/// Original bytes per frame when frames are stored rather than compressed (input that
/// is already compressed): small enough that a frame stays in the CPU cache from the
/// read to the write, since encryption is then the whole cost.
pub const STORED_FRAME_SIZE: usize = 128 << 10;

/// Payload chunks sealed or opened per batch (1 MiB), split across threads.
const SEAL_BATCH_CHUNKS: usize = 16;
/// Payload chunks sealed per batch on the stored path: 256 KiB, sealed in cache.
const STORED_SEAL_BATCH_CHUNKS: usize = 4;

/// The worker count to use: as configured, or one per core when the config says 0.
/// Asking the system costs a few file reads (cgroup quotas), so it is only done when a
/// stream turns out to need threads.
pub fn resolve_workers(configured: usize) -> usize {
    match configured {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}
