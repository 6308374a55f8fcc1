//! The three records of the object format, each one skippable zstd frame whose payload
//! starts with a four-byte tag. All integers are little-endian.

use super::{skippable, FormatError, FORMAT_VERSION, MAX_FRAME_SIZE, MAX_NAME_LEN};

const HEADER_TAG: &[u8; 4] = b"GPAH";
const DESCRIPTOR_TAG: &[u8; 4] = b"GPAF";
const TRAILER_TAG: &[u8; 4] = b"GPAT";

/// First record: identifies the format and binds the object to its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHeader {
    pub version: u8,
    /// Original bytes per frame (every frame but the last is exactly this long).
    pub frame_size: u32,
    /// The basename of the file path or data_filekey the object was stored under.
    pub name: String,
}

/// How a frame's bytes are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// zstd-compressed.
    Compressed = 0,
    /// A zstd frame of raw blocks: the original bytes, not worth compressing.
    Stored = 1,
}

/// Precedes every zstd frame: where it sits in the original and in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameDescriptor {
    pub kind: FrameKind,
    /// Original bytes this frame decompresses to.
    pub plain_len: u32,
    /// Bytes of the zstd frame that follows.
    pub frame_len: u32,
}

/// Last record: what the whole original was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectTrailer {
    pub original_len: u64,
    pub frames: u64,
    pub sha256: [u8; 32],
}

/// Any record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Header(ObjectHeader),
    Descriptor(FrameDescriptor),
    Trailer(ObjectTrailer),
}

impl ObjectHeader {
    pub fn new(frame_size: u32, name: &str) -> Self {
        ObjectHeader {
            version: FORMAT_VERSION,
            frame_size,
            name: name.to_string(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let name = self.name.as_bytes();
        let name = &name[..name.len().min(MAX_NAME_LEN)];
        let mut p = Vec::with_capacity(16 + name.len());
        p.extend_from_slice(HEADER_TAG);
        p.push(self.version);
        p.push(0); // flags, reserved
        p.extend_from_slice(&self.frame_size.to_le_bytes());
        p.extend_from_slice(&(name.len() as u16).to_le_bytes());
        p.extend_from_slice(name);
        skippable(&p)
    }
}

impl FrameDescriptor {
    pub fn encode(&self) -> Vec<u8> {
        let mut p = Vec::with_capacity(13);
        p.extend_from_slice(DESCRIPTOR_TAG);
        p.push(self.kind as u8);
        p.extend_from_slice(&self.plain_len.to_le_bytes());
        p.extend_from_slice(&self.frame_len.to_le_bytes());
        skippable(&p)
    }
}

impl ObjectTrailer {
    pub fn encode(&self) -> Vec<u8> {
        let mut p = Vec::with_capacity(52);
        p.extend_from_slice(TRAILER_TAG);
        p.extend_from_slice(&self.original_len.to_le_bytes());
        p.extend_from_slice(&self.frames.to_le_bytes());
        p.extend_from_slice(&self.sha256);
        skippable(&p)
    }
}

/// True when a skippable frame's payload carries the object header's tag.
pub(super) fn is_header_payload(payload: &[u8]) -> bool {
    payload.starts_with(HEADER_TAG)
}

/// A cursor over a record payload that turns running out of bytes into an error.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FormatError> {
        if self.0.len() < n {
            return Err(FormatError::Malformed("record is too short".into()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, FormatError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, FormatError> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }
    fn u32(&mut self) -> Result<u32, FormatError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64, FormatError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn end(&self) -> Result<(), FormatError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(FormatError::Malformed("record has trailing bytes".into()))
        }
    }
}

impl Record {
    /// Parses a skippable frame's payload.
    pub fn decode(payload: &[u8]) -> Result<Record, FormatError> {
        let mut f = Fields(payload);
        let tag = f.take(4)?;
        let record = if tag == HEADER_TAG {
            let version = f.u8()?;
            if version != FORMAT_VERSION {
                return Err(FormatError::Malformed(format!(
                    "object format version {version} is not supported by this build (it reads version {FORMAT_VERSION})"
                )));
            }
            let _flags = f.u8()?;
            let frame_size = f.u32()?;
            if frame_size == 0 || frame_size > MAX_FRAME_SIZE {
                return Err(FormatError::Malformed(format!(
                    "frame size {frame_size} out of range"
                )));
            }
            let name_len = f.u16()? as usize;
            let name = std::str::from_utf8(f.take(name_len)?)
                .map_err(|_| FormatError::Malformed("object name is not UTF-8".into()))?;
            Record::Header(ObjectHeader {
                version,
                frame_size,
                name: name.to_string(),
            })
        } else if tag == DESCRIPTOR_TAG {
            let kind = match f.u8()? {
                0 => FrameKind::Compressed,
                1 => FrameKind::Stored,
                k => return Err(FormatError::Malformed(format!("unknown frame kind {k}"))),
            };
            let plain_len = f.u32()?;
            let frame_len = f.u32()?;
            if plain_len > MAX_FRAME_SIZE || frame_len as u64 > max_frame_len(plain_len) {
                return Err(FormatError::Malformed(format!(
                    "frame of {plain_len} bytes stored in {frame_len} bytes is out of range"
                )));
            }
            Record::Descriptor(FrameDescriptor {
                kind,
                plain_len,
                frame_len,
            })
        } else if tag == TRAILER_TAG {
            Record::Trailer(ObjectTrailer {
                original_len: f.u64()?,
                frames: f.u64()?,
                sha256: f.take(32)?.try_into().expect("32 bytes"),
            })
        } else {
            return Err(FormatError::Malformed("unknown record".into()));
        };
        f.end()?;
        Ok(record)
    }
}

/// The most bytes an honest zstd frame of `plain_len` original bytes can take: zstd's
/// own bound, which also covers a stored frame (raw blocks cost 3 bytes per 128 KiB).
pub(crate) fn max_frame_len(plain_len: u32) -> u64 {
    zstd::zstd_safe::compress_bound(plain_len as usize) as u64 + 64
}
