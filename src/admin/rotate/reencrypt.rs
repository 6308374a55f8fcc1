//! Re-encrypting an object: decoded and encoded again under a fresh file key at once,
//! the original passing between the two pipelines through memory only.

use std::io::{self, BufRead, Read, Write};

use age_core::format::FileKey;
use anyhow::anyhow;
use crossbeam_channel::{bounded, Receiver, Sender};
use zeroize::Zeroizing;

use crate::config::PluginConfig;
use crate::keys::Recipients;
use crate::pipeline::{self, DecodeOptions, EncodeOptions};

/// Bytes per block handed from the decoding to the encoding thread.
const BLOCK: usize = 1 << 20;

/// Decodes the object on `input` (positioned after its age header, which `file_key`
/// opened), checking everything a restore checks (its name is `name`), and encodes the
/// original again for the config's recipients under a fresh file key into `out`. The
/// original only passes through memory, in blocks that are zeroized when dropped. `out`
/// must be discarded unless this succeeds.
pub fn reencrypt<R: BufRead + Send, W: Write + Send>(
    file_key: FileKey,
    input: R,
    out: &mut W,
    name: &str,
    recipients: &Recipients,
    config: &PluginConfig,
) -> Result<(), String> {
    let (mut writer, reader) = pipe();
    // The two pipelines run at once and share the call's memory.
    let encode_opts = EncodeOptions {
        max_memory: config.max_memory / 2,
        ..EncodeOptions::from_config(config)
    };
    let decode_opts = DecodeOptions {
        max_memory: config.max_memory / 2,
        check_sha256: true,
        ..DecodeOptions::from_config(config, name)
    };
    std::thread::scope(|s| {
        let encoder = s.spawn(move || -> Result<(), String> {
            pipeline::encode(reader, out, name, recipients.keys(), &encode_opts)
                .map(|_| ())
                .map_err(|e| format!("re-encrypting: {e}"))
        });
        let decoded = pipeline::decode_opened(file_key, input, &mut writer, &decode_opts);
        let decoded = match decoded {
            Ok(_) => writer.close().map_err(|e| format!("re-encrypting: {e}")),
            Err(e) => {
                drop(writer);
                Err(format!("{e}"))
            }
        };
        let encoded = encoder
            .join()
            .unwrap_or_else(|_| Err("the re-encrypting thread failed".into()));
        decoded?;
        encoded
    })
}

enum Piece {
    Data(Zeroizing<Vec<u8>>),
    End,
}

/// An in-memory pipe between the decoding and the encoding thread.
fn pipe() -> (PipeWriter, PipeReader) {
    let (tx, rx) = bounded(4);
    (
        PipeWriter {
            tx: Some(tx),
            buf: Zeroizing::new(Vec::with_capacity(BLOCK)),
        },
        PipeReader {
            rx,
            block: Zeroizing::new(Vec::new()),
            pos: 0,
            ended: false,
        },
    )
}

struct PipeWriter {
    tx: Option<Sender<Piece>>,
    buf: Zeroizing<Vec<u8>>,
}

impl PipeWriter {
    fn send_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let block = std::mem::replace(&mut self.buf, Zeroizing::new(Vec::with_capacity(BLOCK)));
        self.tx
            .as_ref()
            .ok_or_else(|| io::Error::other("pipe closed"))?
            .send(Piece::Data(block))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the encrypting side stopped"))
    }

    /// The stream is complete. Dropping the writer without closing it makes the reader
    /// fail instead of seeing a clean end.
    fn close(mut self) -> io::Result<()> {
        self.send_buf()?;
        self.tx
            .take()
            .ok_or_else(|| io::Error::other("pipe closed"))?
            .send(Piece::End)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the encrypting side stopped"))
    }
}

impl Write for PipeWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = BLOCK - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == BLOCK {
            self.send_buf()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.send_buf()
    }
}

struct PipeReader {
    rx: Receiver<Piece>,
    block: Zeroizing<Vec<u8>>,
    pos: usize,
    ended: bool,
}

impl Read for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while !self.ended && self.pos == self.block.len() {
            match self.rx.recv() {
                Ok(Piece::Data(block)) => {
                    self.block = block;
                    self.pos = 0;
                }
                Ok(Piece::End) => self.ended = true,
                Err(_) => {
                    return Err(io::Error::other(anyhow!(
                        "the decrypting side stopped before the end of the object"
                    )))
                }
            }
        }
        if self.ended && self.pos == self.block.len() {
            return Ok(0);
        }
        let n = buf.len().min(self.block.len() - self.pos);
        buf[..n].copy_from_slice(&self.block[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
