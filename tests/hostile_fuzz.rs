//! Fuzzing in the normal test suite: a deterministic mutator (seeded xorshift;
//! bit flips, byte sets, interesting little-endian length values, inserts, deletes,
//! truncations, splices) over valid seeds of every parser of untrusted bytes: the
//! object format (records, frame index), the age header, the STREAM payload, the whole
//! restore pipeline, the offsets file and the config. Short enough for every CI run;
//! the long runs are the cargo-fuzz targets in fuzz/ (fuzz/run.sh).
//!
//! Each case asserts no panic, the parser's properties (what it accepts is consistent,
//! and only the exact authenticated bytes open), and bounded allocation: this binary
//! counts, per thread, the largest single allocation a parser makes, so a hostile
//! length field that would make it allocate before reading is caught.
//!
//! HOSTILE_FUZZ_ITERS=N sets the mutations per target (default 2000 in release builds,
//! 200 in debug builds).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Read;
use std::path::Path;

use gpbackup_age_plugin::age_file::stream::StreamOpener;
use gpbackup_age_plugin::age_file::{Header, ENCRYPTED_CHUNK_SIZE};
use gpbackup_age_plugin::config::{PluginConfig, OWN_OPTIONS};
use gpbackup_age_plugin::object::{
    has_content_checksum, FormatError, FrameDescriptor, FrameKind, ObjectHeader, ObjectTrailer,
    Record, Unit, UnitReader, MAX_FRAME_SIZE,
};
use gpbackup_age_plugin::pipeline::{decode, ByteRanges, DecodeOptions};
use gpbackup_age_plugin::testkit::{
    object_plaintext, Frames, Sealing, INTERESTING_LENGTHS, SEED_NAME,
};
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------------------------
// Allocation accounting
// ---------------------------------------------------------------------------------

struct Counting;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|c| {
        if size > c.get() {
            c.set(size)
        }
    });
}

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result and the largest single allocation it made on this
/// thread.
fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|c| c.set(0));
    let r = f();
    (r, LARGEST.with(|c| c.get()))
}

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

// ---------------------------------------------------------------------------------
// The mutator
// ---------------------------------------------------------------------------------

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One to four random mutations of `seed`.
fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = b.len();
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                b[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                b[i] = rng.next() as u8;
            }
            2 if len >= 4 => {
                let i = rng.below(len - 3);
                let v = INTERESTING_LENGTHS[rng.below(INTERESTING_LENGTHS.len())];
                b[i..i + 4].copy_from_slice(&v.to_le_bytes());
            }
            3 => {
                let i = rng.below(len + 1);
                b.insert(i, rng.next() as u8);
            }
            4 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                b.drain(i..i + n);
            }
            5 => b.truncate(rng.below(len + 1)),
            6 if len > 0 => {
                // Duplicate a slice somewhere else (splice).
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(256));
                let piece = b[i..i + n].to_vec();
                let at = rng.below(b.len() + 1);
                b.splice(at..at, piece);
            }
            7 => {
                let n = 1 + rng.below(32);
                b.extend((0..n).map(|_| rng.next() as u8));
            }
            _ if len > 0 => {
                let i = rng.below(len);
                b[i] = [0, 0xFF, b'\n', b' ', b'-', b'0', b'9'][rng.below(7)];
            }
            _ => b.push(0),
        }
    }
    b
}

fn iterations() -> usize {
    std::env::var("HOSTILE_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) { 200 } else { 2000 })
}

// ---------------------------------------------------------------------------------
// Seeds
// ---------------------------------------------------------------------------------

const NAME: &str = SEED_NAME;

/// A valid object plaintext of `data` in frames of `frame_size`.
fn plaintext(data: &[u8], frame_size: usize, frames_as: Frames) -> Vec<u8> {
    object_plaintext(data, frame_size, NAME, frames_as)
}

fn text(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| b"id,name,amount\n1,abc,2.50\n"[i % 26])
        .collect()
}

fn plaintext_seeds() -> Vec<(Vec<u8>, Vec<u8>)> {
    let random = common::random_bytes(3000, 77);
    vec![
        (
            plaintext(b"", 1000, Frames::Compressed { checksum: true }),
            Vec::new(),
        ),
        (
            plaintext(&text(5000), 1000, Frames::Compressed { checksum: true }),
            text(5000),
        ),
        (
            plaintext(&text(5000), 1000, Frames::Compressed { checksum: false }),
            text(5000),
        ),
        (plaintext(&random, 700, Frames::Stored), random.clone()),
        (plaintext(&text(300), 64, Frames::Stored), text(300)),
    ]
}

// ---------------------------------------------------------------------------------
// The object format
// ---------------------------------------------------------------------------------

/// The most a frame may make a reader allocate: zstd's bound for the largest frame.
fn frame_bound() -> usize {
    zstd::zstd_safe::compress_bound(MAX_FRAME_SIZE as usize) + 64
}

/// Walks every unit; returns whether the object parsed to its end.
fn walk(plain: &[u8]) -> bool {
    let mut reader = UnitReader::new(plain);
    let mut units = 0;
    loop {
        match reader.next_unit() {
            Ok(Some(Unit::Frame(d, frame))) => assert_eq!(frame.len(), d.frame_len as usize),
            Ok(Some(_)) => {}
            Ok(None) => return true,
            Err(_) => return false,
        }
        units += 1;
        assert!(units <= plain.len() / 8 + 1, "more units than input");
    }
}

#[test]
fn mutated_object_plaintexts_never_panic_or_overallocate() {
    let mut rng = Rng(0x000b_1ec7);
    for (seed, _) in plaintext_seeds() {
        assert!(walk(&seed), "a valid seed does not parse");
        for _ in 0..iterations() {
            let m = mutate(&mut rng, &seed);
            let (_, largest) = largest_allocation(|| {
                walk(&m);
                let _ = Record::decode(&m);
            });
            assert!(
                largest <= frame_bound(),
                "allocated {largest} bytes for {} input bytes",
                m.len()
            );
        }
    }
}

/// A skippable frame with our magic and `payload`.
fn record(payload: &[u8]) -> Vec<u8> {
    let mut r = 0x184D_2A5Au32.to_le_bytes().to_vec();
    r.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    r.extend_from_slice(payload);
    r
}

fn descriptor(plain_len: u32, frame_len: u32) -> Vec<u8> {
    let mut p = b"GPAF".to_vec();
    p.push(0);
    p.extend_from_slice(&plain_len.to_le_bytes());
    p.extend_from_slice(&frame_len.to_le_bytes());
    record(&p)
}

#[test]
fn hostile_length_fields_are_refused_before_allocating() {
    let header = ObjectHeader::new(2 << 20, NAME).encode();
    // A record claiming 4 GiB of payload: refused from its length alone.
    let mut huge_record = header.clone();
    huge_record.extend_from_slice(&0x184D_2A5Au32.to_le_bytes());
    huge_record.extend_from_slice(&u32::MAX.to_le_bytes());
    // A descriptor claiming a 4 GiB frame, and one claiming 64 MiB + 1.
    let mut huge_frame = header.clone();
    huge_frame.extend_from_slice(&descriptor(u32::MAX, u32::MAX));
    let mut over_limit = header.clone();
    over_limit.extend_from_slice(&descriptor(MAX_FRAME_SIZE + 1, 100));
    // An object header claiming frames of 4 GiB.
    let mut p = b"GPAH".to_vec();
    p.extend_from_slice(&[1, 0]);
    p.extend_from_slice(&u32::MAX.to_le_bytes());
    p.extend_from_slice(&3u16.to_le_bytes());
    p.extend_from_slice(b"abc");
    let huge_frame_size = record(&p);
    // A name length of 65535 with 3 bytes of name.
    let mut p = b"GPAH".to_vec();
    p.extend_from_slice(&[1, 0]);
    p.extend_from_slice(&(2u32 << 20).to_le_bytes());
    p.extend_from_slice(&u16::MAX.to_le_bytes());
    p.extend_from_slice(b"abc");
    let huge_name = record(&p);
    for (what, bytes) in [
        ("record of 4 GiB", huge_record),
        ("frame of 4 GiB", huge_frame),
        ("frame of 64 MiB + 1", over_limit),
        ("frame size of 4 GiB", huge_frame_size),
        ("name of 64 KiB", huge_name),
    ] {
        let (r, largest) = largest_allocation(|| {
            let mut reader = UnitReader::new(&bytes[..]);
            loop {
                match reader.next_unit() {
                    Ok(Some(_)) => continue,
                    other => break other.map(|_| ()),
                }
            }
        });
        let e = r.expect_err(what);
        assert!(matches!(e, FormatError::Malformed(_)), "{what}: {e}");
        assert!(
            largest < 16 * KIB,
            "{what}: allocated {largest} bytes before refusing"
        );
    }
    // The largest frame the format allows, announced and then cut short: the reader
    // allocates it (the documented bound) and reports the truncation.
    let mut cut = header.clone();
    cut.extend_from_slice(&descriptor(MAX_FRAME_SIZE, frame_bound() as u32 - 64));
    cut.extend_from_slice(b"\x28\xb5\x2f\xfd");
    let (r, largest) = largest_allocation(|| {
        let mut reader = UnitReader::new(&cut[..]);
        reader.next_unit().unwrap();
        reader.next_unit().map(|_| ())
    });
    assert!(matches!(r, Err(FormatError::Truncated)));
    assert!(largest <= frame_bound(), "{largest}");
}

#[test]
fn the_restore_pipeline_bounds_what_an_authenticated_hostile_object_allocates() {
    // Whoever holds a recipient key can seal any plaintext. A frame of 64 MiB of zeros
    // compresses to a few KiB; restoring it allocates its 64 MiB (the bound) and no
    // more, and a frame size one byte over the bound is refused without allocating.
    let s = Sealing::new();
    let zeros = vec![0u8; MAX_FRAME_SIZE as usize];
    let mut plain = ObjectHeader::new(MAX_FRAME_SIZE, NAME).encode();
    let frame = zstd::bulk::compress(&zeros, 1).unwrap();
    plain.extend_from_slice(
        &FrameDescriptor {
            kind: FrameKind::Compressed,
            plain_len: MAX_FRAME_SIZE,
            frame_len: frame.len() as u32,
        }
        .encode(),
    );
    plain.extend_from_slice(&frame);
    plain.extend_from_slice(
        &ObjectTrailer {
            original_len: zeros.len() as u64,
            frames: 1,
            sha256: Sha256::digest(&zeros).into(),
        }
        .encode(),
    );
    drop(zeros);
    let obj = s.object(&plain);
    assert!(obj.len() < 64 * KIB, "{}", obj.len());
    let opts = DecodeOptions {
        check_sha256: false,
        ..DecodeOptions::checking(Some(NAME), 1)
    };
    let mut sink = CountingSink(0);
    let (r, largest) = largest_allocation(|| decode(&obj[..], &mut sink, &s.identities(), &opts));
    r.expect("a valid 64 MiB frame restores");
    assert_eq!(sink.0, MAX_FRAME_SIZE as u64);
    assert!(largest <= frame_bound(), "allocated {largest}");
    assert!(
        largest >= MAX_FRAME_SIZE as usize,
        "the accounting missed the frame"
    );
    // One byte more in the object header: refused.
    let mut over = ObjectHeader::new(MAX_FRAME_SIZE, NAME).encode();
    let at = 8 + 4 + 2;
    over[at..at + 4].copy_from_slice(&(MAX_FRAME_SIZE + 1).to_le_bytes());
    over.extend_from_slice(&plain[ObjectHeader::new(MAX_FRAME_SIZE, NAME).encode().len()..]);
    let obj = s.object(&over);
    let (r, largest) = largest_allocation(|| decode(&obj[..], &mut sink, &s.identities(), &opts));
    let e = r.expect_err("frame size over the bound");
    assert!(e.to_string().contains("frame size"), "{e}");
    assert!(largest < 2 * MIB, "allocated {largest} before refusing");
}

/// True when a plaintext has frames and every one carries a zstd content checksum.
fn every_frame_checksummed(plaintext: &[u8]) -> bool {
    let mut units = UnitReader::new(plaintext);
    let mut frames = 0;
    while let Ok(Some(unit)) = units.next_unit() {
        if let Unit::Frame(_, frame) = unit {
            if !has_content_checksum(&frame) {
                return false;
            }
            frames += 1;
        }
    }
    frames > 0
}

struct CountingSink(u64);

impl std::io::Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn mutated_plaintexts_through_the_whole_restore_pipeline() {
    // What a holder of a recipient key could plant: any plaintext, authenticated.
    let s = Sealing::new();
    let ids = s.identities();
    let mut rng = Rng(0xdec0de);
    for (seed, original) in plaintext_seeds() {
        let mut out = Vec::new();
        let opts = DecodeOptions {
            check_sha256: false,
            ..DecodeOptions::checking(Some(NAME), 2)
        };
        decode(&s.object(&seed)[..], &mut out, &ids, &opts).expect("a valid seed restores");
        assert_eq!(out, original);
        for n in 0..iterations() / 4 {
            let m = mutate(&mut rng, &seed);
            let obj = s.object(&m);
            let opts = DecodeOptions {
                // Both ways a restore may run (the SHA-256 asked for, or left to the
                // frames' content checksums where they carry them).
                check_sha256: n % 3 == 0,
                ..DecodeOptions::checking(Some(NAME), 1 + n % 2)
            };
            let mut out = Vec::new();
            let (r, largest) = largest_allocation(|| decode(&obj[..], &mut out, &ids, &opts));
            assert!(largest <= frame_bound(), "allocated {largest}");
            if let Ok(report) = r {
                // Whatever restores is self-consistent: the trailer's length, and its hash
                // unless every frame carried a content checksum (verified by libzstd)
                // and the hash was not asked for.
                let t = report.trailer.expect("full restores read the trailer");
                assert_eq!(out.len() as u64, t.original_len);
                if report.sha256_checked {
                    assert_eq!(<[u8; 32]>::from(Sha256::digest(&out)), t.sha256);
                } else {
                    assert!(!opts.check_sha256 && every_frame_checksummed(&m));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// The age header and the STREAM payload
// ---------------------------------------------------------------------------------

#[test]
fn mutated_age_headers_never_open_and_never_panic() {
    let s = Sealing::new();
    let ids = s.identities();
    let mut seed = s.header.clone();
    seed.extend_from_slice(b"then the nonce and payload");
    let mut rng = Rng(0xa9e);
    for _ in 0..iterations() * 2 {
        let m = mutate(&mut rng, &seed);
        let (r, largest) = largest_allocation(|| {
            let mut input = std::io::BufReader::with_capacity(64, &m[..]);
            Header::read(&mut input).map(|h| {
                let consumed = m.len() - input.buffer().len() - input.get_ref().len();
                (h, consumed)
            })
        });
        assert!(largest < 4 * MIB, "allocated {largest}");
        let Ok((header, consumed)) = r else { continue };
        assert_eq!(
            header.encode(),
            m[..consumed],
            "a parsed header does not re-encode to its bytes"
        );
        if header.unwrap_file_key(&ids).is_ok() {
            assert_eq!(m[..consumed], s.header[..], "an altered header opened");
        }
    }
    // A header line that never ends, and a stanza body of 2 MiB: refused, bounded.
    let mut endless = b"age-encryption.org/v1\n-> X25519 ".to_vec();
    endless.extend(std::iter::repeat_n(b'A', 8 * MIB));
    let mut long_body = b"age-encryption.org/v1\n-> X25519 abc\n".to_vec();
    for _ in 0..(2 * MIB / 65) {
        long_body.extend_from_slice(&[b'A'; 64]);
        long_body.push(b'\n');
    }
    long_body.extend_from_slice(b"AA\n--- ");
    for bytes in [endless, long_body] {
        let (r, largest) = largest_allocation(|| Header::read(&mut &bytes[..]).map(|_| ()));
        let e = r.expect_err("oversized header");
        assert!(e.to_string().contains("too large"), "{e}");
        assert!(largest < 4 * MIB, "allocated {largest}");
    }
}

#[test]
fn mutated_streams_open_only_when_unchanged() {
    let s = Sealing::new();
    let mut rng = Rng(0x57e4);
    for len in [0usize, 1, 65536, 65537, 200_000] {
        let plain = common::random_bytes(len, len as u64);
        let sealed = s.seal(&plain);
        for n in 0..iterations() / 8 {
            let m = mutate(&mut rng, &sealed);
            let (threads, batch) = (1 + n % 2, 1 + n % 3);
            let (r, largest) = largest_allocation(|| {
                let mut out = Vec::new();
                StreamOpener::new(s.key(), &m[..], threads, batch)
                    .read_to_end(&mut out)
                    .map(|_| out)
            });
            assert!(
                largest <= (batch + 1) * ENCRYPTED_CHUNK_SIZE * 2 + len * 2 + 64 * KIB,
                "allocated {largest}"
            );
            match r {
                Ok(out) => {
                    assert_eq!(m, sealed, "an altered stream opened");
                    assert_eq!(out, plain);
                }
                Err(_) => assert_ne!(m, sealed, "a valid stream failed"),
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// The offsets file and the config
// ---------------------------------------------------------------------------------

fn check_ranges(text: &str) {
    let (r, largest) = largest_allocation(|| ByteRanges::parse(text));
    assert!(
        largest <= 64 * text.len() + 4 * KIB,
        "{} bytes of text allocated {largest}",
        text.len()
    );
    let Ok(ranges) = r else { return };
    let r = ranges.ranges();
    for (i, &(s, e)) in r.iter().enumerate() {
        assert!(s < e, "{text:?}: empty or reversed range kept");
        assert!(
            i == 0 || r[i - 1].1 <= s,
            "{text:?}: unsorted or overlapping"
        );
    }
    // How far the file reaches (zero-length ranges included) is kept: printed as a
    // zero-length range at that offset when it lies past the last non-empty range.
    let last_end = r.last().map_or(0, |x| x.1);
    assert!(
        ranges.end() >= last_end,
        "{text:?}: reach before the last range"
    );
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
    assert_eq!(ByteRanges::parse(&printed).unwrap(), ranges, "{text:?}");
    let mut last = 0;
    for piece in ranges.within(0, 1 << 21) {
        assert!(piece.start < piece.end && piece.end <= 1 << 21 && piece.start >= last);
        last = piece.end;
    }
}

#[test]
fn mutated_offsets_files_never_panic_or_overallocate() {
    let mut rng = Rng(0x0ff5e7);
    let seeds = [
        "1 3 10\n",
        "3 0 5 5 8 100 2000000\n",
        "0",
        "1 0 0",
        "2 0 0 0 0",
        "3 0 5 5 5 9 9",
        "2 18446744073709551610 18446744073709551615 1 2",
    ];
    for seed in seeds {
        for _ in 0..iterations() * 2 {
            let m = mutate(&mut rng, seed.as_bytes());
            check_ranges(&String::from_utf8_lossy(&m));
        }
    }
    // A few bytes announcing a million ranges allocate for what is there, not for a
    // million.
    check_ranges("1048576");
    check_ranges("1048576 0 1");
    let (_, largest) = largest_allocation(|| ByteRanges::parse("1048576 0 1"));
    assert!(largest < KIB, "{largest}");
}

#[test]
fn mutated_configs_never_panic_and_never_forward_our_options() {
    let mut rng = Rng(0xc0f16);
    let path = Path::new("/fuzz/plugin_config.yaml");
    let seeds = [
        "executablepath: /usr/local/bin/gpbackup_age_plugin\noptions:\n  inner_executablepath: \"/bin/true\"\n  recipients: \"age1xyz\"\n  identity_file: \"/a, /b\"\n  compression_level: \"3\"\n  workers: \"2\"\n  stall_timeout_seconds: \"10\"\n  bucket: \"b\"\n  pgport: 5432\n",
        "options:\n  inner_executablepath: '/bin/true'\n  compression: none\n  restore_subset: \"on\"\n  backup_plugin_version: 1.0\n  folder: a/b\n",
        "options: {inner_executablepath: /bin/true, recipients_file: /x, allow_plaintext_restore: yes}\n",
    ];
    for seed in seeds {
        for _ in 0..iterations() {
            let m = mutate(&mut rng, seed.as_bytes());
            let text = String::from_utf8_lossy(&m);
            let (r, largest) = largest_allocation(|| PluginConfig::parse(&text, path));
            assert!(largest <= 64 * text.len() + 64 * KIB, "allocated {largest}");
            if let Ok(config) = r {
                assert!(config.inner_executable.is_absolute());
                for own in OWN_OPTIONS {
                    assert!(
                        !config.passthrough.contains_key(*own),
                        "{own} forwarded from {text:?}"
                    );
                }
                assert!(!config.passthrough.contains_key("backup_plugin_version"));
            }
        }
    }
}

#[test]
fn yaml_alias_bombs_are_refused_quickly() {
    // "Billion laughs": aliases that would expand exponentially.
    let mut text = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let names: Vec<char> = "abcdefghij".chars().collect();
    for w in names.windows(2) {
        let (prev, next) = (w[0], w[1]);
        text.push_str(&format!("{next}: &{next} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"));
    }
    text.push_str("options:\n  inner_executablepath: /bin/true\n  bucket: *j\n");
    let started = std::time::Instant::now();
    let (r, largest) = largest_allocation(|| PluginConfig::parse(&text, Path::new("/bomb.yaml")));
    assert!(r.is_err());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(largest < 16 * MIB, "allocated {largest}");
}
