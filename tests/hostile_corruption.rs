//! Corruption and tampering: stored objects with a byte flipped, cut short,
//! extended, swapped, planted from another backup, or re-wrapped to a stranger's key.
//!
//! The exhaustive sweeps (every byte of the age header, the nonce and the first and last
//! payload chunks, where our metadata frames sit) run in process through the library's
//! decode path (`pipeline::decode`, identities from `keys::Keyring`), which is
//! exactly what restore_data runs between the inner plugin and stdout. A smaller set of
//! cases runs end to end through the built binary and the real inner plugin.
//!
//! Every case must be refused with a message that says what is wrong, and restore must
//! never write a byte that was not authenticated: nothing at all for a damaged header or
//! nonce, and otherwise a prefix of the original made of whole, verified frames, none of
//! which reaches into the damaged chunk.

mod common;

use std::path::Path;

use common::*;
use gpbackup_age_plugin::age_file::stream::StreamError;
use gpbackup_age_plugin::age_file::{Header, ENCRYPTED_CHUNK_SIZE};
use gpbackup_age_plugin::config::{Compression, ZstdLevel};
use gpbackup_age_plugin::object::{Record, Unit, UnitReader};
use gpbackup_age_plugin::pipeline::{
    decode, encode, DecodeError, DecodeOptions, EncodeOptions, DEFAULT_FRAME_SIZE,
};

const NAME: &str = "gpbackup_0_20250101010101_16384";
const CHUNK: usize = 65536;

/// An object made in process, with what is needed to judge a restore of it.
struct Obj {
    bytes: Vec<u8>,
    original: Vec<u8>,
    /// Where the payload starts (after header and nonce).
    payload: usize,
    /// Offset in the plaintext where each data frame ends, and the original bytes
    /// before that point (prefix sums of plain_len).
    frame_ends: Vec<(usize, usize)>,
}

impl Obj {
    fn new(original: Vec<u8>, frame_size: usize, compression: Compression) -> Obj {
        let opts = EncodeOptions {
            compression,
            workers: 2,
            frame_size,
            max_memory: gpbackup_age_plugin::pipeline::DEFAULT_MAX_MEMORY,
        };
        let (bytes, _) = encode(
            &original[..],
            Vec::new(),
            NAME,
            demo_recipient_list().keys(),
            &opts,
        )
        .expect("encode");
        let payload = payload_start(&bytes);
        let plaintext = age_crate_decrypt(&bytes).expect("the age crate opens our object");
        Obj {
            frame_ends: frame_ends(&plaintext),
            bytes,
            original,
            payload,
        }
    }

    fn chunks(&self) -> usize {
        (self.bytes.len() - self.payload).div_ceil(ENCRYPTED_CHUNK_SIZE)
    }

    /// The original bytes a restore may have written before failing in chunk `k`:
    /// the frames that end before chunk k's plaintext begins.
    fn bound(&self, k: usize) -> usize {
        self.frame_ends
            .iter()
            .take_while(|(end, _)| *end <= k * CHUNK)
            .last()
            .map_or(0, |(_, orig)| *orig)
    }

    /// Output may only be whole frames, in order: a prefix sum of plain_len.
    #[track_caller]
    fn assert_whole_frames(&self, out: &[u8], k: usize) {
        assert_prefix(out, &self.original);
        assert!(
            out.is_empty() || self.frame_ends.iter().any(|&(_, orig)| orig == out.len()),
            "output of {} bytes is not a whole number of frames",
            out.len()
        );
        assert!(
            out.len() <= self.bound(k),
            "output of {} bytes reaches into damaged chunk {k} (at most {} allowed)",
            out.len(),
            self.bound(k)
        );
    }
}

/// Walks a valid plaintext: for each data frame, where it ends in the plaintext and
/// how many original bytes precede its end.
fn frame_ends(plaintext: &[u8]) -> Vec<(usize, usize)> {
    let mut units = UnitReader::new(plaintext);
    let mut pos = 0usize;
    let mut orig = 0usize;
    let mut ends = Vec::new();
    while let Some(unit) = units.next_unit().expect("valid plaintext") {
        match unit {
            Unit::Record(Record::Header(h)) => pos += h.encode().len(),
            Unit::Record(Record::Trailer(t)) => pos += t.encode().len(),
            Unit::Record(Record::Descriptor(_)) => unreachable!("descriptors come with frames"),
            Unit::Frame(d, frame) => {
                pos += d.encode().len() + frame.len();
                orig += d.plain_len as usize;
                ends.push((pos, orig));
            }
        }
    }
    assert_eq!(pos, plaintext.len());
    ends
}

/// An identity that opens one known stanza without the X25519 work, for the sweeps
/// over the payload (tens of thousands of restores whose header is untouched): it
/// returns the file key the demo identity unwrapped from that stanza, and only for a
/// byte-identical stanza. Everything after the unwrapping is the real decode path.
struct KnownStanza {
    tag: String,
    args: Vec<String>,
    body: Vec<u8>,
    key: [u8; 16],
}

impl KnownStanza {
    fn of(object: &[u8]) -> Vec<Box<dyn age::Identity>> {
        use age_core::secrecy::ExposeSecret;
        let header = Header::read(&mut &object[..]).expect("header");
        let key = header
            .unwrap_file_key(demo_keyring().identities())
            .expect("demo key opens it");
        let s = &header.stanzas()[0];
        vec![Box::new(KnownStanza {
            tag: s.tag.clone(),
            args: s.args.clone(),
            body: s.body.clone(),
            key: *key.expose_secret(),
        })]
    }
}

impl age::Identity for KnownStanza {
    fn unwrap_stanza(
        &self,
        s: &age_core::format::Stanza,
    ) -> Option<Result<age_core::format::FileKey, age::DecryptError>> {
        (s.tag == self.tag && s.args == self.args && s.body == self.body)
            .then(|| Ok(age_core::format::FileKey::new(Box::new(self.key))))
    }
}

/// Restores `bytes` in process as restore_data would (name checked), with the demo
/// identity loaded by the crate's own keyring (`keys::Keyring`).
fn restore(bytes: &[u8], workers: usize) -> (Result<(), DecodeError>, Vec<u8>) {
    restore_with(bytes, workers, demo_keyring().identities())
}

fn restore_with(
    bytes: &[u8],
    workers: usize,
    ids: &[impl AsRef<dyn age::Identity>],
) -> (Result<(), DecodeError>, Vec<u8>) {
    let mut out = Vec::new();
    let opts = DecodeOptions {
        check_sha256: false,
        ..DecodeOptions::checking(Some(NAME), workers)
    };
    let r = decode(bytes, &mut out, ids, &opts).map(|_| ());
    (r, out)
}

/// The message of a refused restore, checked to say what is wrong.
#[track_caller]
fn refused(r: Result<(), DecodeError>, what: &str) -> (DecodeError, String) {
    let e = r.expect_err(&format!("{what}: restore succeeded"));
    let msg = e.to_string();
    let says = [
        "age header",
        "not an age-encrypted object",
        "no identity in identity_file matches",
        "could not unwrap the file key",
        "authentication failed",
        "truncated",
    ];
    assert!(
        says.iter().any(|s| msg.contains(s)),
        "{what}: message {msg:?} does not say what is wrong"
    );
    (e, msg)
}

fn chunk_of(e: &DecodeError) -> Option<u64> {
    match e {
        DecodeError::Stream(StreamError::Authentication { chunk }) => Some(*chunk),
        _ => None,
    }
}

/// 65,536 bytes in frames of 16 KiB, stored: a two-chunk object whose last chunk is
/// short, so its first and last chunks together are the whole payload and hold every
/// metadata frame (header, every descriptor, trailer).
fn two_chunk_object() -> Obj {
    let o = Obj::new(random_bytes(CHUNK, 21), 16 << 10, Compression::None);
    assert_eq!(o.chunks(), 2);
    o
}

#[test]
fn every_flipped_byte_of_the_age_header_is_refused_and_writes_nothing() {
    let o = two_chunk_object();
    let header_len = age_header_len(&o.bytes);
    let mut bytes = o.bytes.clone();
    let mut seen = std::collections::BTreeSet::new();
    println!("{header_len} header bytes, 3 flips each");
    for i in 0..header_len {
        for flip in [0x01u8, 0x20, 0x80] {
            bytes[i] ^= flip;
            let (r, out) = restore(&bytes, 1);
            bytes[i] ^= flip;
            let (_, msg) = refused(r, &format!("header byte {i} ^ {flip:#x}"));
            assert!(
                out.is_empty(),
                "header byte {i}: {} bytes written",
                out.len()
            );
            assert!(
                !msg.contains("authentication failed at payload chunk"),
                "header byte {i} ^ {flip:#x}: damage not caught in the header: {msg}"
            );
            seen.insert(msg.split(':').next().unwrap().to_string());
        }
    }
    // The sweep reached the MAC check and the unwrapping, not only the parser.
    let all = seen.iter().cloned().collect::<Vec<_>>().join(" | ");
    assert!(all.contains("age header authentication failed"), "{all}");
    assert!(all.contains("age header is malformed"), "{all}");
}

#[test]
fn every_flipped_byte_of_the_nonce_is_refused_and_writes_nothing() {
    let o = two_chunk_object();
    let mut bytes = o.bytes.clone();
    for i in o.payload - 16..o.payload {
        for flip in [0x01u8, 0x80] {
            bytes[i] ^= flip;
            let (r, out) = restore(&bytes, 1);
            bytes[i] ^= flip;
            let (e, msg) = refused(r, &format!("nonce byte {i}"));
            assert_eq!(chunk_of(&e), Some(0), "{msg}");
            assert!(out.is_empty());
        }
    }
}

#[test]
fn every_flipped_byte_of_the_first_and_last_chunk_is_refused() {
    // Both chunks whole: the object header record, every frame descriptor and the
    // trailer all sit in them. Split over two threads (66,000 restores).
    let o = two_chunk_object();
    let total = o.bytes.len();
    println!("{} payload bytes flipped one at a time", total - o.payload);
    let mid = o.payload + (total - o.payload) / 2;
    std::thread::scope(|s| {
        for (from, to) in [(o.payload, mid), (mid, total)] {
            let o = &o;
            s.spawn(move || {
                let ids = KnownStanza::of(&o.bytes);
                let mut bytes = o.bytes.clone();
                for i in from..to {
                    let k = (i - o.payload) / ENCRYPTED_CHUNK_SIZE;
                    let flip = if i % 2 == 0 { 0x01 } else { 0x80 };
                    bytes[i] ^= flip;
                    // Every 1000th with the real identity, to show it changes nothing.
                    let (r, out) = if i % 1000 == 0 {
                        restore(&bytes, 1)
                    } else {
                        restore_with(&bytes, 1, &ids)
                    };
                    bytes[i] ^= flip;
                    let (e, msg) = refused(r, &format!("payload byte {i}"));
                    assert_eq!(chunk_of(&e), Some(k as u64), "byte {i}: {msg}");
                    o.assert_whole_frames(&out, k);
                }
            });
        }
    });
}

/// 6 MiB, half compressible text and half random, zstd, default 2 MiB frames: many
/// chunks, compressed and stored frames.
fn multi_chunk_object() -> Obj {
    let mut data = Vec::new();
    while data.len() < 3 << 20 {
        data.extend_from_slice(
            format!("{},row {},some text\n", data.len(), data.len() / 7).as_bytes(),
        );
    }
    data.extend_from_slice(&random_bytes(6 << 20, 5)[data.len()..]);
    let o = Obj::new(
        data,
        DEFAULT_FRAME_SIZE,
        Compression::Zstd(ZstdLevel::TableData),
    );
    assert!(o.chunks() > 40, "{} chunks", o.chunks());
    o
}

#[test]
fn flipped_bytes_sampled_over_every_payload_chunk_are_refused() {
    let o = multi_chunk_object();
    println!("sampled flips over {} chunks", o.chunks());
    let ids = KnownStanza::of(&o.bytes);
    let mut bytes = o.bytes.clone();
    let mut x = 0x1234_5678_9abc_def1u64;
    for k in 0..o.chunks() {
        let start = o.payload + k * ENCRYPTED_CHUNK_SIZE;
        let end = (start + ENCRYPTED_CHUNK_SIZE).min(o.bytes.len());
        // First and last byte (tag) of the chunk and three random ones.
        let mut picks = vec![start, end - 1];
        for _ in 0..3 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            picks.push(start + (x as usize) % (end - start));
        }
        for (n, i) in picks.into_iter().enumerate() {
            let workers = 1 + n % 2;
            bytes[i] ^= 0x04;
            let (r, out) = restore_with(&bytes, workers, &ids);
            bytes[i] ^= 0x04;
            let (e, msg) = refused(r, &format!("chunk {k} byte {i}"));
            assert_eq!(chunk_of(&e), Some(k as u64), "{msg}");
            o.assert_whole_frames(&out, k);
        }
    }
}

#[test]
fn truncation_at_and_between_chunk_boundaries_is_refused() {
    let o = multi_chunk_object();
    let header_len = age_header_len(&o.bytes);
    let ids = KnownStanza::of(&o.bytes);
    let mut cuts: Vec<usize> = vec![
        0,
        1,
        21,
        22,
        header_len / 2,
        header_len - 1,
        header_len,
        o.payload - 1,
    ];
    for k in 0..o.chunks() {
        // At the boundary, inside the next chunk's first 16 bytes (shorter than a tag),
        // just past them, in the middle, and inside the tag of the chunk.
        let b = o.payload + k * ENCRYPTED_CHUNK_SIZE;
        cuts.extend([
            b,
            b + 1 + k % 15,
            b + 16 + k % 2,
            b + CHUNK / 2 + k,
            b + CHUNK + k % 16,
        ]);
    }
    cuts.retain(|&c| c < o.bytes.len());
    cuts.push(o.bytes.len() - 1);
    println!("{} cuts over {} chunks", cuts.len(), o.chunks());
    for (n, cut) in cuts.into_iter().enumerate() {
        {
            let workers = 1 + n % 2;
            let (r, out) = restore_with(&o.bytes[..cut], workers, &ids);
            let (e, msg) = refused(r, &format!("cut at {cut}"));
            if cut >= o.payload && (cut - o.payload).is_multiple_of(ENCRYPTED_CHUNK_SIZE) {
                assert!(
                    msg.contains("truncated"),
                    "cut at chunk boundary {cut}: {msg}"
                );
            }
            if cut < o.payload {
                assert!(
                    out.is_empty(),
                    "cut at {cut} in header or nonce wrote {}",
                    out.len()
                );
            } else {
                // The damaged chunk: the one cut into, or at a boundary the chunk before
                // it (read as the last one, it fails).
                let k = (cut - o.payload) / ENCRYPTED_CHUNK_SIZE;
                let damaged = if (cut - o.payload).is_multiple_of(ENCRYPTED_CHUNK_SIZE) {
                    k.saturating_sub(1)
                } else {
                    k
                };
                assert!(
                    chunk_of(&e).is_none_or(|c| c as usize == damaged),
                    "cut at {cut}: {msg}"
                );
                o.assert_whole_frames(&out, damaged);
            }
        }
    }
}

#[test]
fn appended_bytes_are_refused() {
    let o = two_chunk_object();
    let last_chunk = o.bytes[o.payload + ENCRYPTED_CHUNK_SIZE..].to_vec();
    let extras: Vec<Vec<u8>> = vec![
        vec![0],
        vec![0xAA; 16],
        vec![0x55; ENCRYPTED_CHUNK_SIZE],
        last_chunk,
        o.bytes.clone(),
    ];
    for extra in extras {
        let mut bytes = o.bytes.clone();
        bytes.extend_from_slice(&extra);
        let (r, out) = restore(&bytes, 1);
        let (e, msg) = refused(r, &format!("{} bytes appended", extra.len()));
        assert!(chunk_of(&e).is_some() || msg.contains("truncated"), "{msg}");
        o.assert_whole_frames(&out, 1);
    }
}

#[test]
fn an_object_rewrapped_to_a_key_not_in_the_keyring_is_refused() {
    let o = two_chunk_object();
    let stranger = age::x25519::Identity::generate();
    let header = Header::read(&mut &o.bytes[..]).unwrap();
    let rewrapped = header
        .rewrap(
            demo_keyring().identities(),
            &[Box::new(stranger.to_public()) as Box<dyn age::Recipient>],
        )
        .unwrap();
    let mut bytes = rewrapped.header.encode();
    bytes.extend_from_slice(&o.bytes[age_header_len(&o.bytes)..]);
    // The stranger can open it (it is a valid object) ...
    let mut out = Vec::new();
    let opts = DecodeOptions {
        check_sha256: false,
        ..DecodeOptions::checking(Some(NAME), 1)
    };
    let ids: Vec<Box<dyn age::Identity>> = vec![Box::new(stranger)];
    decode(&bytes[..], &mut out, &ids, &opts).expect("the stranger opens it");
    assert_eq!(out, o.original);
    // ... and our keyring cannot.
    let (r, out) = restore(&bytes, 1);
    let (_, msg) = refused(r, "rewrapped");
    assert!(
        msg.contains("no identity in identity_file matches"),
        "{msg}"
    );
    assert!(out.is_empty());
}

// ---------------------------------------------------------------------------------
// End to end: the built binary, the real inner plugin, objects changed in storage.
// ---------------------------------------------------------------------------------

/// Two data objects and a file, backed up through the binary.
struct Stored {
    h: Harness,
    a: String,
    b: String,
    file: String,
    data_a: Vec<u8>,
    data_b: Vec<u8>,
    data_file: Vec<u8>,
}

fn stored_set() -> Stored {
    let h = Harness::new(&[]);
    let a = h.data_key(0, 16384);
    let b = h.data_key(0, 16385);
    let data_a = random_bytes(5 << 20, 1);
    let data_b = random_bytes(300_000, 2);
    assert_ok(&call_bounded(&h, "backup_data", &a, &data_a));
    assert_ok(&call_bounded(&h, "backup_data", &b, &data_b));
    let file = h.backup_dir(-1).join(format!("gpbackup_{TS}_metadata.sql"));
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let data_file = b"CREATE TABLE t (i int);\n".repeat(5000);
    std::fs::write(&file, &data_file).unwrap();
    let file = file.display().to_string();
    assert_ok(&call_bounded(&h, "backup_file", &file, b""));
    std::fs::remove_file(&file).unwrap();
    Stored {
        h,
        a,
        b,
        file,
        data_a,
        data_b,
        data_file,
    }
}

impl Stored {
    /// restore_data of `key` refused with `needle`; stdout a prefix of `original`.
    #[track_caller]
    fn refuse_data(&self, key: &str, original: &[u8], needle: &str) -> Vec<u8> {
        let out = call_bounded(&self.h, "restore_data", key, b"");
        assert_one_line_failure(&out, &[needle]);
        assert_prefix(&out.stdout, original);
        assert_tmpdir_clean(&self.h);
        out.stdout
    }

    /// restore_file refused with `needle`, leaving neither the file nor a partial.
    #[track_caller]
    fn refuse_file(&self, needle: &str) {
        let out = call_bounded(&self.h, "restore_file", &self.file, b"");
        assert_one_line_failure(&out, &[needle]);
        assert!(!Path::new(&self.file).exists());
        assert!(partial_files(Path::new(&self.file).parent().unwrap()).is_empty());
        assert_tmpdir_clean(&self.h);
    }

    fn edit(&self, key: &str, f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let path = self.h.stored(key);
        let saved = std::fs::read(&path).unwrap();
        let mut bytes = saved.clone();
        f(&mut bytes);
        std::fs::write(&path, &bytes).unwrap();
        saved
    }

    fn put_back(&self, key: &str, saved: &[u8]) {
        std::fs::write(self.h.stored(key), saved).unwrap();
    }
}

#[test]
fn damaged_objects_in_storage_are_refused_end_to_end() {
    let s = stored_set();
    let chunk = ENCRYPTED_CHUNK_SIZE;
    let obj = std::fs::read(s.h.stored(&s.a)).unwrap();
    let (header_len, payload) = (age_header_len(&obj), payload_start(&obj));
    let mac_at = obj.windows(4).position(|w| w == b"--- ").unwrap() + 10;
    let stanza_body_at = obj.iter().position(|&b| b == b'\n').unwrap() + 30;
    let cases: Vec<(&str, Change, &str)> = vec![
        (
            "stanza byte",
            Box::new(move |b| other_b64(&mut b[stanza_body_at])),
            "no identity in identity_file matches",
        ),
        (
            "MAC byte",
            Box::new(move |b| other_b64(&mut b[mac_at])),
            "age header authentication failed",
        ),
        (
            "nonce byte",
            Box::new(move |b| b[header_len + 3] ^= 1),
            "authentication failed at payload chunk 0",
        ),
        (
            "chunk 40 byte",
            Box::new(move |b| b[payload + 40 * chunk + 7] ^= 1),
            "authentication failed at payload chunk 40",
        ),
        (
            "last byte",
            Box::new(|b| *b.last_mut().unwrap() ^= 1),
            "authentication failed at payload chunk",
        ),
        (
            "cut at chunk 50",
            Box::new(move |b| b.truncate(payload + 50 * chunk)),
            "encrypted payload is truncated",
        ),
        (
            "cut in chunk 50",
            Box::new(move |b| b.truncate(payload + 50 * chunk + 99)),
            "authentication failed at payload chunk 50",
        ),
        (
            "cut in header",
            Box::new(|b| b.truncate(60)),
            "age header is truncated",
        ),
        (
            "bytes appended",
            Box::new(|b| b.extend_from_slice(b"appended")),
            "authentication failed at payload chunk",
        ),
    ];
    for (what, change, needle) in &cases {
        let saved = s.edit(&s.a, change);
        let out = s.refuse_data(&s.a, &s.data_a, needle);
        if what.starts_with("chunk 40") {
            assert!(
                out.len() <= 2 << 20,
                "{what}: output reaches into the damaged chunk"
            );
        }
        if ["stanza byte", "MAC byte", "nonce byte", "cut in header"].contains(what) {
            assert!(out.is_empty(), "{what}: {} bytes written", out.len());
        }
        s.put_back(&s.a, &saved);
        let (change, needle) = change_for_file(what);
        let saved = s.edit(&s.file, change);
        s.refuse_file(needle);
        s.put_back(&s.file, &saved);
    }
    // Put back, everything restores again.
    let out = call_bounded(&s.h, "restore_data", &s.a, b"");
    assert_ok(&out);
    assert!(out.stdout == s.data_a);
    assert_ok(&call_bounded(&s.h, "restore_file", &s.file, b""));
    assert!(std::fs::read(&s.file).unwrap() == s.data_file);
}

/// A change made to a stored object.
type Change = Box<dyn Fn(&mut Vec<u8>)>;

/// Changes a base64 character into another one (a flipped bit could leave the
/// alphabet, and be caught by the parser rather than by the MAC or the unwrapping).
fn other_b64(c: &mut u8) {
    *c = if *c == b'A' { b'B' } else { b'A' };
}

/// The file object is small (one short chunk): damaged in the same spirit, and what
/// restore_file must say.
fn change_for_file(what: &str) -> (Change, &'static str) {
    match what {
        "cut in header" => (Box::new(|b| b.truncate(60)), "age header is truncated"),
        "stanza byte" => (
            Box::new(|b| other_b64(&mut b[30])),
            "no identity in identity_file matches",
        ),
        "MAC byte" => (
            Box::new(|b| {
                let at = b.windows(4).position(|w| w == b"--- ").unwrap() + 20;
                other_b64(&mut b[at])
            }),
            "age header authentication failed",
        ),
        "bytes appended" => (
            Box::new(|b| b.push(0)),
            "authentication failed at payload chunk 0",
        ),
        w if w.starts_with("cut") => (
            Box::new(|b| {
                let n = b.len() - 5;
                b.truncate(n)
            }),
            "authentication failed at payload chunk 0",
        ),
        _ => (
            Box::new(|b| {
                let n = b.len() - 20;
                b[n] ^= 1
            }),
            "authentication failed at payload chunk 0",
        ),
    }
}

#[test]
fn swapped_and_planted_objects_are_refused_as_the_wrong_name() {
    let s = stored_set();
    let pa = s.h.stored(&s.a);
    let pb = s.h.stored(&s.b);
    let (oa, ob) = (std::fs::read(&pa).unwrap(), std::fs::read(&pb).unwrap());
    // Swapped.
    std::fs::write(&pa, &ob).unwrap();
    std::fs::write(&pb, &oa).unwrap();
    let line = assert_one_line_failure(
        &call_bounded(&s.h, "restore_data", &s.a, b""),
        &["stored as", "16385", "not '", "16384"],
    );
    assert!(line.contains("renamed or swapped"), "{line}");
    let out = call_bounded(&s.h, "restore_data", &s.b, b"");
    assert_one_line_failure(&out, &["stored as", "16384"]);
    assert!(out.stdout.is_empty(), "a misnamed object wrote data");
    // The file object under a data name and the other way round.
    std::fs::write(&pa, std::fs::read(s.h.stored(&s.file)).unwrap()).unwrap();
    assert_one_line_failure(
        &call_bounded(&s.h, "restore_data", &s.a, b""),
        &["stored as", "metadata.sql"],
    );
    std::fs::write(&pa, &oa).unwrap();
    std::fs::write(&pb, &ob).unwrap();

    // An object of another backup (another timestamp) planted under this backup's
    // name: gpbackup's basenames carry the timestamp, so the names differ.
    let ts2 = "20250202020202";
    let other = s.h.path().join(format!(
        "seg0/backups/{}/{ts2}/gpbackup_0_{ts2}_16384",
        &ts2[..8]
    ));
    let other = other.display().to_string();
    assert_ok(&call_bounded(&s.h, "backup_data", &other, &s.data_b));
    let other_obj =
        s.h.storage()
            .join(&ts2[..8])
            .join(ts2)
            .join(format!("gpbackup_0_{ts2}_16384"));
    std::fs::write(&pa, std::fs::read(&other_obj).unwrap()).unwrap();
    let out = call_bounded(&s.h, "restore_data", &s.a, b"");
    assert_one_line_failure(&out, &["stored as", ts2]);
    assert!(out.stdout.is_empty());
    // restore_file refuses the same way.
    std::fs::write(s.h.stored(&s.file), &oa).unwrap();
    let out = call_bounded(&s.h, "restore_file", &s.file, b"");
    assert_one_line_failure(&out, &["stored as", "16384", "metadata.sql"]);
    assert!(!Path::new(&s.file).exists());
    std::fs::write(&pa, &oa).unwrap();
}

#[test]
fn the_name_binding_is_the_basename_only() {
    // A documented limit: objects are bound to their basename, not their directory
    // (restores onto another cluster use other directories). Every gpbackup basename
    // carries its backup's timestamp, so this matters only for names that do not: the
    // same basename under two timestamps cannot be told apart.
    let h = Harness::new(&[]);
    let k1 = h.backup_dir(0).join("plain_name").display().to_string();
    let ts2 = "20250202020202";
    let k2 = h
        .path()
        .join(format!("seg0/backups/{}/{ts2}/plain_name", &ts2[..8]));
    let k2 = k2.display().to_string();
    assert_ok(&call_bounded(&h, "backup_data", &k1, b"backup one"));
    assert_ok(&call_bounded(&h, "backup_data", &k2, b"backup two"));
    let o2 = h.storage().join(&ts2[..8]).join(ts2).join("plain_name");
    std::fs::copy(o2, h.stored(&k1)).unwrap();
    let out = call_bounded(&h, "restore_data", &k1, b"");
    assert_ok(&out);
    assert_eq!(out.stdout, b"backup two");
}

#[test]
fn an_object_rewrapped_with_the_age_cli_to_a_stranger_is_refused_end_to_end() {
    let s = stored_set();
    let dir = s.h.path().join("stranger");
    std::fs::create_dir_all(&dir).unwrap();
    let stranger = age::x25519::Identity::generate();
    // The object's plaintext (our zstd stream) re-encrypted to a key not in the keyring,
    // with the reference age CLI when it is installed, else with the age crate.
    let plaintext = age_crate_decrypt(&std::fs::read(s.h.stored(&s.a)).unwrap()).unwrap();
    let reencrypted = if Path::new("/usr/bin/age").exists() {
        let plain_file = dir.join("plain");
        std::fs::write(&plain_file, &plaintext).unwrap();
        let out = std::process::Command::new("/usr/bin/age")
            .arg("-r")
            .arg(stranger.to_public().to_string())
            .arg(&plain_file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    } else {
        let r: Box<dyn age::Recipient> = Box::new(stranger.to_public());
        let enc = age::Encryptor::with_recipients(std::iter::once(r.as_ref())).unwrap();
        let mut out = Vec::new();
        let mut w = enc.wrap_output(&mut out).unwrap();
        std::io::Write::write_all(&mut w, &plaintext).unwrap();
        w.finish().unwrap();
        out
    };
    std::fs::write(s.h.stored(&s.a), &reencrypted).unwrap();
    let out = s.refuse_data(
        &s.a,
        &s.data_a,
        "no identity in identity_file matches any recipient",
    );
    assert!(out.is_empty());
}

#[test]
fn a_forgery_by_a_holder_of_a_recipient_key_is_not_detected() {
    // A documented limit of age itself: recipients are public keys, and age has no
    // sender authentication, so whoever holds a recipient and can write to storage can
    // make an object that restores. Keep storage write access as guarded as the data.
    let s = stored_set();
    let forged = b"forged table data\n".to_vec();
    let opts = EncodeOptions {
        compression: Compression::Zstd(ZstdLevel::TableData),
        workers: 1,
        frame_size: DEFAULT_FRAME_SIZE,
        max_memory: gpbackup_age_plugin::pipeline::DEFAULT_MAX_MEMORY,
    };
    let name = Path::new(&s.a).file_name().unwrap().to_str().unwrap();
    let (bytes, _) = encode(
        &forged[..],
        Vec::new(),
        name,
        demo_recipient_list().keys(),
        &opts,
    )
    .unwrap();
    std::fs::write(s.h.stored(&s.a), bytes).unwrap();
    let out = call_bounded(&s.h, "restore_data", &s.a, b"");
    assert_ok(&out);
    assert_eq!(out.stdout, forged);
}

// ---------------------------------------------------------------------------------
// verify: the operator's check reads objects as a restore would, and must refuse the
// same damage.
// ---------------------------------------------------------------------------------

/// A minimal backup set as gpbackup would leave it: one segment, one table, the
/// coordinator's files. Returns the harness, the data key and the original data.
fn backup_set() -> (Harness, String, Vec<u8>) {
    let h = Harness::new(&[]);
    let key = h.data_key(0, 16384);
    let data = random_bytes(1 << 20, 8);
    assert_ok(&call_bounded(&h, "backup_data", &key, &data));
    let dir = h.backup_dir(-1);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in [
        (
            "config.yaml",
            format!("timestamp: \"{TS}\"\nsegmentcount: 1\ncompressed: false\n"),
        ),
        ("toc.yaml", "dataentries:\n  - oid: 16384\n".to_string()),
        ("metadata.sql", "CREATE TABLE t (i int);\n".to_string()),
        ("report", "report\n".to_string()),
        ("plugin_config.yaml", "options: {}\n".to_string()),
    ] {
        let path = dir.join(format!("gpbackup_{TS}_{name}"));
        std::fs::write(&path, text).unwrap();
        assert_ok(&call_bounded(
            &h,
            "backup_file",
            &path.display().to_string(),
            b"",
        ));
    }
    (h, key, data)
}

#[test]
fn verify_refuses_the_same_damage() {
    let (h, key, _) = backup_set();
    let verify = |h: &Harness| run_bounded(h, &format!("verify {} {TS}", h.config.display()), b"");
    let out = verify(&h);
    if stderr_of(&out).contains("unrecognized subcommand") {
        eprintln!("verify is not built in: skipped");
        return;
    }
    assert_ok(&out);
    let object = h.stored(&key);
    let pristine = std::fs::read(&object).unwrap();
    let payload = payload_start(&pristine);
    let stranger = age::x25519::Identity::generate();
    let rewrapped = {
        let header = Header::read(&mut &pristine[..]).unwrap();
        let r: Box<dyn age::Recipient> = Box::new(stranger.to_public());
        let mut b = header
            .rewrap(demo_keyring().identities(), &[r])
            .unwrap()
            .header
            .encode();
        b.extend_from_slice(&pristine[age_header_len(&pristine)..]);
        b
    };
    let other = {
        let k = h.data_key(0, 16385);
        assert_ok(&call_bounded(&h, "backup_data", &k, b"another table"));
        std::fs::read(h.stored(&k)).unwrap()
    };
    let mut flipped = pristine.clone();
    flipped[payload + 5 * ENCRYPTED_CHUNK_SIZE + 9] ^= 0x10;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "flipped",
            flipped,
            "authentication failed at payload chunk 5",
        ),
        (
            "cut",
            pristine[..payload + 7 * ENCRYPTED_CHUNK_SIZE].to_vec(),
            "truncated",
        ),
        (
            "appended",
            [&pristine[..], b"x"].concat(),
            "authentication failed",
        ),
        ("swapped", other, "stored as"),
        ("rewrapped", rewrapped, "no identity"),
    ];
    let name = Path::new(&key)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    for (what, bytes, needle) in cases {
        std::fs::write(&object, &bytes).unwrap();
        let out = verify(&h);
        assert_no_panic(&out);
        let err = stderr_of(&out);
        assert!(!out.status.success(), "verify passed a {what} object");
        assert!(
            err.lines().any(|l| l.contains(&name) && l.contains(needle)),
            "{what}: no line names {name} and {needle:?}: {err}"
        );
        assert!(out.stdout.len() < 4096, "verify wrote data");
    }
    std::fs::write(&object, &pristine).unwrap();
    assert_ok(&verify(&h));
}
