//! The frame pipelines that turn an original stream into a stored object and back.
//!
//! Backup ([`encode()`]): the calling thread reads the input in frames and hashes it, a
//! pool of workers compresses frames independently, and an ordered writer seals them
//! into the age payload. Restore ([`decode()`]): the calling thread decrypts and splits
//! the payload into frames, workers decompress them, and an ordered writer verifies and
//! emits them. Channels between the stages are bounded, so memory does not grow with
//! the stream. How many frames are in flight and how many workers run is planned from
//! a memory budget ([`Plan`]), not from the core count. An input or object of a single frame never starts a thread: gpbackup
//! starts one plugin process per table per segment, and most tables are small.

pub mod decode;
pub mod encode;
mod options;
pub mod ranges;
mod read_buf;

pub use decode::{decode, decode_opened, DecodeError, DecodeOptions, DecodeReport};
pub use encode::{encode, EncodeOptions, EncodeReport};
pub use ranges::ByteRanges;

/// Original bytes per frame. 2 MiB is the window libzstd gives level 3 on large inputs,
/// so independent frames lose little ratio, and keeps a frame's buffers small enough
/// that the whole pipeline stays far below 64 MiB. The compression window follows it
/// ([`crate::compression::window_log`]).
pub const DEFAULT_FRAME_SIZE: usize = 2 << 20;

/// Original bytes per frame when frames are stored rather than compressed (input that
/// is already compressed): small enough that a frame stays in the CPU cache from the
/// read to the write, since encryption is then the whole cost.
pub const STORED_FRAME_SIZE: usize = 128 << 10;

/// Payload chunks sealed or opened per batch (1 MiB), split across threads.
const SEAL_BATCH_CHUNKS: usize = 16;
/// Payload chunks sealed per batch on the stored path: 256 KiB, sealed in cache.
const STORED_SEAL_BATCH_CHUNKS: usize = 4;

/// The most worker threads a call starts when `workers` is not set, however many CPUs it
/// may use. Measured (README, "Performance"; docs/PERFORMANCE.md): one stream's serial
/// stages (reading and hashing the input, sealing; on restore, opening and hashing) cap
/// what more workers add at about four, and a segment host runs one plugin process per
/// primary segment (times `--jobs`) at once, so more threads per process only
/// oversubscribe the host.
pub const DEFAULT_WORKERS_CAP: usize = 4;

/// The worker count to use: as configured, or when the config says 0, one per CPU this
/// process may use (its affinity mask and cgroup v1/v2 CPU quota, as the standard
/// library reads them) up to [`DEFAULT_WORKERS_CAP`]. Asking the system costs a few
/// file reads (cgroup quotas), so it is only done when a stream turns out to need
/// threads.
pub(crate) fn resolve_workers(configured: usize) -> usize {
    match configured {
        0 => std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(DEFAULT_WORKERS_CAP),
        n => n,
    }
}

/// The memory a call plans for when `max_memory_mib` is not set: 64 MiB.
pub const DEFAULT_MAX_MEMORY: usize = 64 << 20;

/// What a call holds besides its frames in flight and codec contexts: the binary's
/// pages, the payload batch buffers (1 MiB each way), a backup's 512 KiB head, thread
/// stacks, the allocator's slack. Peak RSS at one frame in flight stays under this.
const FIXED_MEMORY: usize = 16 << 20;

/// How many frames a threaded stream keeps in flight and how many workers it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub workers: usize,
    /// Frames between the reader and the writer at once, each holding its buffers: the
    /// reader waits for one to come back before it takes another.
    pub frames: usize,
}

impl Plan {
    /// The largest plan within `max_memory` bytes for the call: up to `workers` threads,
    /// each holding a codec context of `per_worker` bytes, and two frames in flight per
    /// worker plus two (one being read, one being written), each holding `per_frame`
    /// bytes at most. Fewer workers run when their frames would not fit; one worker with
    /// two frames in flight is the floor, whatever the budget. The bound is the budget
    /// alone, not the core count, so a call's memory does not grow with the host.
    pub fn fit(workers: usize, max_memory: usize, per_frame: usize, per_worker: usize) -> Plan {
        let budget = max_memory.saturating_sub(FIXED_MEMORY);
        let per_frame = per_frame.max(1);
        let fits = |w: usize| {
            budget
                .saturating_sub(w * per_worker)
                .checked_div(per_frame)
                .unwrap_or(0)
        };
        let mut w = workers.max(1);
        while w > 1 && fits(w) < w + 1 {
            w -= 1;
        }
        Plan {
            workers: w,
            frames: fits(w).clamp(2, 2 * w + 2),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    #[test]
    fn plans_stay_within_the_budget_whatever_the_worker_count() {
        for workers in [1, 2, 4, 8, 64, 256] {
            for max_memory in [32 * MIB, DEFAULT_MAX_MEMORY, 256 * MIB] {
                let plan = Plan::fit(workers, max_memory, 4 * MIB, MIB);
                assert!(plan.workers >= 1 && plan.workers <= workers);
                assert!(plan.frames > plan.workers || plan.workers == 1);
                let used = plan.frames * 4 * MIB + plan.workers * MIB;
                assert!(
                    used + FIXED_MEMORY <= max_memory || plan.workers == 1,
                    "{workers} workers in {max_memory}: {plan:?} uses {used}"
                );
            }
        }
    }

    #[test]
    fn a_budget_with_room_runs_every_worker_asked_for() {
        let plan = Plan::fit(2, DEFAULT_MAX_MEMORY, 4 * MIB, MIB);
        assert_eq!(
            plan,
            Plan {
                workers: 2,
                frames: 6
            }
        );
        let plan = Plan::fit(64, DEFAULT_MAX_MEMORY, 4 * MIB, MIB);
        assert_eq!(plan.workers, 8);
        assert_eq!(Plan::fit(64, 1024 * MIB, 4 * MIB, MIB).workers, 64);
    }

    #[test]
    fn a_budget_too_small_still_makes_progress() {
        assert_eq!(
            Plan::fit(8, 0, 64 * MIB, 32 * MIB),
            Plan {
                workers: 1,
                frames: 2
            }
        );
    }

    #[test]
    fn the_default_worker_count_is_capped() {
        let n = resolve_workers(0);
        assert!((1..=DEFAULT_WORKERS_CAP).contains(&n));
        assert_eq!(resolve_workers(64), 64);
    }
}
