//! The object format: what lives inside the age payload of every stored object.
//!
//! The plaintext of the age file is a standard zstd stream, so `age -d | zstd -d`
//! recovers the original bytes with stock tools. Our own records travel in zstd
//! *skippable* frames, which `zstd -d` ignores:
//!
//! ```text
//! ObjectHeader  (skippable)  format version, frame size, the object's name
//! { FrameDescriptor (skippable)  kind, original length, length of the next frame
//!   zstd frame                   one slice of the original, compressed or stored }*
//! ObjectTrailer (skippable)  original length, frame count, SHA-256 of the original
//! ```
//!
//! Every zstd frame carries zstd's content checksum (XXH64 of its content), compressed
//! frames from libzstd, stored frames from [`write_stored_frame`]; objects written before
//! that carry none ([`has_content_checksum`]).
//!
//! The descriptors form the frame index: a reader learns every frame's position in the
//! original and its size in the stream without decompressing it. docs/FORMAT.md is the
//! normative description; this module is its only encoder and parser.

mod records;
mod stored;

pub use records::{FrameDescriptor, FrameKind, ObjectHeader, ObjectTrailer, Record};
pub use stored::write_stored_frame;
pub(crate) use stored::{emit_stored_frame, stored_frame_len};

use std::fmt;
use std::io::{self, Read};

/// Magic number of our skippable frames (zstd reserves 0x184D2A50..=0x184D2A5F).
pub const SKIPPABLE_MAGIC: u32 = 0x184D_2A5A;
/// Magic number of a zstd frame.
pub const ZSTD_MAGIC: u32 = 0xFD2F_B528;
/// The object format version this build writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// Upper bound on a frame's original length accepted from storage, so a hostile length
/// field cannot make a reader allocate without bound.
pub const MAX_FRAME_SIZE: u32 = 64 << 20;
/// Upper bound on the length of a recorded object name.
pub const MAX_NAME_LEN: usize = 4096;
/// Largest skippable payload we accept: a header with the longest name.
const MAX_RECORD_LEN: u32 = 64 + MAX_NAME_LEN as u32;

/// What is wrong with an object's plaintext.
#[derive(Debug)]
pub enum FormatError {
    /// The plaintext ended in the middle of the object.
    Truncated,
    /// A record or frame is not what the format allows at this point.
    Malformed(String),
    /// Reading failed (decryption errors arrive here, carried in the io::Error).
    Io(io::Error),
    /// The plaintext does not start with an object header record: it is not an object
    /// of this format at all (an age file some other program wrote).
    NotAnObject,
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatError::Truncated => write!(f, "object content is truncated"),
            FormatError::Malformed(what) => write!(f, "object content is malformed: {what}"),
            FormatError::Io(e) => write!(f, "{}", crate::message::io_reason(e)),
            FormatError::NotAnObject => write!(
                f,
                "its content is not in gpbackup_age_plugin's object format (it does not start with an object header)"
            ),
        }
    }
}

impl std::error::Error for FormatError {}

/// One unit of the plaintext stream.
pub enum Unit {
    /// One of our records.
    Record(Record),
    /// A zstd frame, as stored, announced by the preceding descriptor.
    Frame(FrameDescriptor, Vec<u8>),
}

/// Reads the units of an object's plaintext in order and enforces the grammar:
/// header, then descriptor + frame pairs, then trailer, then nothing.
pub struct UnitReader<R: Read> {
    input: R,
    state: State,
    /// A frame buffer handed back by [`UnitReader::recycle`], read into next.
    spare: Option<Vec<u8>>,
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum State {
    Start,
    Frames,
    Done,
}

impl<R: Read> UnitReader<R> {
    pub fn new(input: R) -> Self {
        UnitReader {
            input,
            state: State::Start,
            spare: None,
        }
    }

    /// Hands back the buffer of a frame that is done with, for the next frame to be read
    /// into: a long stream then reads into the same few buffers instead of a fresh
    /// allocation (and its page faults) per frame.
    pub(crate) fn recycle(&mut self, buf: Vec<u8>) {
        if self
            .spare
            .as_ref()
            .is_none_or(|s| s.capacity() < buf.capacity())
        {
            self.spare = Some(buf);
        }
    }

    /// The next unit; `Ok(None)` after the trailer once the input is confirmed to end.
    pub fn next_unit(&mut self) -> Result<Option<Unit>, FormatError> {
        if self.state == State::Done {
            let mut probe = [0u8; 1];
            return match read_full(&mut self.input, &mut probe).map_err(FormatError::Io)? {
                0 => Ok(None),
                _ => Err(FormatError::Malformed(
                    "data after the object trailer".into(),
                )),
            };
        }
        if self.state == State::Start {
            return self.read_object_header().map(|h| {
                self.state = State::Frames;
                Some(Unit::Record(Record::Header(h)))
            });
        }
        let record = self.read_record()?;
        self.unit_after(record)
    }

    /// The unit that `record`, just read in the frames state, starts.
    fn unit_after(&mut self, record: Record) -> Result<Option<Unit>, FormatError> {
        match (&record, self.state) {
            (Record::Trailer(_), State::Frames) => {
                self.state = State::Done;
                Ok(Some(Unit::Record(record)))
            }
            (Record::Descriptor(d), State::Frames) => {
                let d = *d;
                // A recycled buffer keeps its length: its bytes are already initialized,
                // so only growth beyond it is zeroed, not every frame's whole length.
                let mut frame = self.spare.take().unwrap_or_default();
                let len = d.frame_len as usize;
                frame.resize(len, 0);
                if read_full(&mut self.input, &mut frame).map_err(FormatError::Io)? != len {
                    return Err(FormatError::Truncated);
                }
                check_frame_magic(&frame)?;
                Ok(Some(Unit::Frame(d, frame)))
            }
            _ => Err(FormatError::Malformed("record out of order".into())),
        }
    }

    /// Reads the next unit like [`UnitReader::next_unit`], except that the zstd frame of a
    /// descriptor for which `skip` says true is passed over rather than read: the unit is
    /// then that descriptor alone, `Unit::Record(Record::Descriptor(d))`, and only the
    /// frame's first four bytes were read (its magic is checked as for a frame that is
    /// read). Over a [`StreamOpener`](crate::age_file::stream::StreamOpener) the chunks
    /// that lie wholly inside the frame are not even decrypted. Every other rule of the
    /// grammar holds as for `next_unit`.
    pub fn next_unit_skipping(
        &mut self,
        skip: impl FnOnce(&FrameDescriptor) -> bool,
    ) -> Result<Option<Unit>, FormatError>
    where
        R: Skip,
    {
        if self.state != State::Frames {
            return self.next_unit();
        }
        let record = self.read_record()?;
        let d = match record {
            Record::Descriptor(d) if skip(&d) => d,
            record => return self.unit_after(record),
        };
        let mut magic = [0u8; 4];
        let got = read_full(&mut self.input, &mut magic).map_err(FormatError::Io)?;
        let rest = u64::from(d.frame_len).saturating_sub(got as u64);
        let skipped = self.input.skip(rest).map_err(FormatError::Io)?;
        if (got as u64) + skipped != u64::from(d.frame_len) {
            return Err(FormatError::Truncated);
        }
        check_frame_magic(&magic[..got])?;
        Ok(Some(Unit::Record(Record::Descriptor(d))))
    }

    /// The first record, which tells our objects from anything else: a plaintext that
    /// does not start with a skippable frame holding an object header (another magic,
    /// another record, fewer bytes than a record) is [`FormatError::NotAnObject`]. An
    /// object header this build cannot read (another format version) stays malformed.
    fn read_object_header(&mut self) -> Result<ObjectHeader, FormatError> {
        let payload = self.read_record_payload().map_err(|e| match e {
            FormatError::Io(io) => FormatError::Io(io),
            _ => FormatError::NotAnObject,
        })?;
        if !records::is_header_payload(&payload) {
            return Err(FormatError::NotAnObject);
        }
        match Record::decode(&payload)? {
            Record::Header(h) => Ok(h),
            _ => Err(FormatError::NotAnObject),
        }
    }

    fn read_record(&mut self) -> Result<Record, FormatError> {
        Record::decode(&self.read_record_payload()?)
    }

    /// One skippable frame's payload.
    fn read_record_payload(&mut self) -> Result<Vec<u8>, FormatError> {
        let mut head = [0u8; 8];
        match read_full(&mut self.input, &mut head).map_err(FormatError::Io)? {
            8 => {}
            _ => return Err(FormatError::Truncated),
        }
        let magic = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        if magic != SKIPPABLE_MAGIC {
            return Err(FormatError::Malformed(format!(
                "expected a record, found magic {magic:#010x}"
            )));
        }
        if len > MAX_RECORD_LEN {
            return Err(FormatError::Malformed(format!(
                "record of {len} bytes is too large"
            )));
        }
        let mut payload = vec![0u8; len as usize];
        if read_full(&mut self.input, &mut payload).map_err(FormatError::Io)? != payload.len() {
            return Err(FormatError::Truncated);
        }
        Ok(payload)
    }
}

/// A descriptor must be followed by a zstd frame: `frame` (or its first bytes) starts
/// with [`ZSTD_MAGIC`].
fn check_frame_magic(frame: &[u8]) -> Result<(), FormatError> {
    match frame.get(..4) {
        Some(magic) if magic == ZSTD_MAGIC.to_le_bytes() => Ok(()),
        _ => Err(FormatError::Malformed(
            "descriptor not followed by a zstd frame".into(),
        )),
    }
}

/// A source of plaintext that can pass over bytes more cheaply than by reading them.
pub trait Skip: Read {
    /// Passes over the next `n` bytes; returns how many there were (fewer only where the
    /// input ends). Errors are those `read` would have returned.
    fn skip(&mut self, n: u64) -> io::Result<u64>;
}

/// Plaintext already in memory: skipping is reading into nothing.
impl Skip for &[u8] {
    fn skip(&mut self, n: u64) -> io::Result<u64> {
        let k = (n.min(self.len() as u64)) as usize;
        *self = &self[k..];
        Ok(k as u64)
    }
}

/// True when `frame`, a zstd frame as stored (it starts with [`ZSTD_MAGIC`]), carries
/// a content checksum: bit 2 (Content_Checksum_flag) of its Frame_Header_Descriptor, the
/// byte after the magic (RFC 8878, 3.1.1.1.1). Every frame this build writes carries
/// one; objects written before it carry none. False for a frame too short to say.
pub fn has_content_checksum(frame: &[u8]) -> bool {
    frame
        .get(4)
        .is_some_and(|descriptor| descriptor & 0x04 != 0)
}

/// Reads until `buf` is full or the input ends; returns how much was read.
pub(crate) fn read_full<R: Read + ?Sized>(input: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Wraps a record payload in a skippable frame.
fn skippable(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + payload.len());
    out.extend_from_slice(&SKIPPABLE_MAGIC.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An object's plaintext: a header, stored frames of these lengths, a trailer.
    fn object(lens: &[usize]) -> Vec<u8> {
        let mut out = ObjectHeader::new(1 << 20, "t").encode();
        for (i, &len) in lens.iter().enumerate() {
            let data = vec![i as u8; len];
            let mut frame = Vec::new();
            write_stored_frame(&data, &mut frame);
            let d = FrameDescriptor {
                kind: FrameKind::Stored,
                plain_len: len as u32,
                frame_len: frame.len() as u32,
            };
            out.extend(d.encode());
            out.extend(frame);
        }
        let trailer = ObjectTrailer {
            original_len: lens.iter().sum::<usize>() as u64,
            frames: lens.len() as u64,
            sha256: [0; 32],
        };
        out.extend(trailer.encode());
        out
    }

    /// Frames passed over come back as their descriptors, the frames read in full, and
    /// the grammar's checks hold for both.
    #[test]
    fn skipping_passes_over_frames_and_keeps_the_checks() {
        let plain = object(&[10, 20, 30]);
        let mut units = UnitReader::new(&plain[..]);
        let mut seen = Vec::new();
        loop {
            let unit = units
                .next_unit_skipping(|d| d.plain_len != 20)
                .expect("valid");
            match unit {
                Some(Unit::Record(Record::Descriptor(d))) => seen.push(("skipped", d.plain_len)),
                Some(Unit::Frame(d, frame)) => {
                    assert_eq!(frame.len(), d.frame_len as usize);
                    seen.push(("read", d.plain_len));
                }
                Some(Unit::Record(_)) => {}
                None => break,
            }
        }
        assert_eq!(seen, [("skipped", 10), ("read", 20), ("skipped", 30)]);

        // A frame cut short, or without the zstd magic, is refused when passed over too.
        let cut = &plain[..plain.len() - 60];
        let mut units = UnitReader::new(cut);
        let verdict = std::iter::from_fn(|| Some(units.next_unit_skipping(|_| true)))
            .find_map(|r| r.err())
            .unwrap();
        assert!(matches!(verdict, FormatError::Truncated), "{verdict}");
        let mut bad = plain.clone();
        let at = ObjectHeader::new(1 << 20, "t").encode().len() + 21;
        assert_eq!(&bad[at..at + 4], &ZSTD_MAGIC.to_le_bytes());
        bad[at] ^= 1;
        let mut units = UnitReader::new(&bad[..]);
        let verdict = std::iter::from_fn(|| Some(units.next_unit_skipping(|_| true)))
            .find_map(|r| r.err())
            .unwrap();
        assert!(verdict.to_string().contains("not followed by a zstd frame"));
    }
}
