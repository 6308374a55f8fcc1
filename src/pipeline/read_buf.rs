//! Buffers for a backup's input, with their contents on a 64-byte boundary.
//!
//! glibc serves a large allocation (from 128 KiB) with a mapping of its own and returns
//! an address 16 bytes past a page boundary. A `read` into such a buffer has the kernel
//! copy from page-aligned memory (a pipe's pages, the page cache) to an address 16 bytes
//! further on in its page, and on some CPUs the `rep movsb` the kernel copies with is
//! 3x to 4x slower when the destination lies 1 to 31 bytes past the source, modulo
//! 4096 (`bench/read_offset.py` measures it; README, "Where the time goes"). A backup's
//! frames start at input offsets that are multiples of 64, so with each buffer's
//! contents on a 64-byte boundary every read keeps source and destination at the same
//! offset in their pages. The padding in front, at most 63 bytes, is never part of the
//! contents.
//!
//! A restore reads its ciphertext after a header of variable length, so there the
//! distance depends on the header, not on the buffer; measured restores read at full
//! speed as they are.

use std::io::{self, Read};
use std::ops::Deref;

/// The boundary the contents start on.
const ALIGN: usize = 64;

/// Where the contents of `bytes` should start: its first 64-byte boundary.
fn aligned_start(bytes: &[u8]) -> usize {
    bytes.as_ptr().align_offset(ALIGN)
}

/// A growable byte buffer whose contents start on a 64-byte boundary (see the module
/// documentation for why).
#[derive(Default)]
pub struct ReadBuf {
    bytes: Vec<u8>,
    start: usize,
}

impl ReadBuf {
    /// An empty buffer with room for `capacity` bytes of contents.
    pub fn with_capacity(capacity: usize) -> ReadBuf {
        let mut bytes = Vec::with_capacity(capacity + ALIGN);
        let start = aligned_start(&bytes);
        bytes.resize(start, 0);
        ReadBuf { bytes, start }
    }

    /// Empties the buffer, keeping its room.
    pub fn clear(&mut self) {
        self.bytes.truncate(self.start);
    }

    /// Makes room for `additional` more bytes. A reallocation could move the contents
    /// off the boundary, so the buffer is replaced by an aligned one instead.
    pub fn reserve(&mut self, additional: usize) {
        let wanted = self.len() + additional;
        if self.bytes.capacity() - self.start < wanted {
            let mut bigger = ReadBuf::with_capacity(wanted);
            bigger.bytes.extend_from_slice(self);
            *self = bigger;
        }
    }

    /// Appends up to `limit` bytes from `input` (fewer only at its end); returns how
    /// many came. Room is made first, so the contents never move through the `Vec`'s
    /// own reallocation, which would drop the alignment; a caller that knows the final
    /// size reserves it once instead of letting each read grow the buffer.
    pub fn read_from<R: Read>(&mut self, input: &mut R, limit: usize) -> io::Result<usize> {
        self.reserve(limit);
        let before = self.bytes.len();
        input.take(limit as u64).read_to_end(&mut self.bytes)?;
        Ok(self.bytes.len() - before)
    }
}

impl Deref for ReadBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes[self.start..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contents_start_on_the_boundary_and_survive_growth() {
        for capacity in [0, 1, 1000, 128 << 10, 2 << 20] {
            let mut buf = ReadBuf::with_capacity(capacity);
            assert_eq!(buf.as_ptr() as usize % ALIGN, 0, "capacity {capacity}");
            assert!(buf.is_empty());
            let input: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
            assert_eq!(buf.read_from(&mut &input[..], 1000).unwrap(), 1000);
            buf.reserve(4 << 20);
            assert_eq!(buf.as_ptr() as usize % ALIGN, 0, "after reserve");
            assert_eq!(buf.read_from(&mut &input[1000..], 5000).unwrap(), 2000);
            assert_eq!(&buf[..], &input[..]);
            buf.clear();
            assert!(buf.is_empty());
            assert_eq!(buf.as_ptr() as usize % ALIGN, 0, "after clear");
        }
    }
}
