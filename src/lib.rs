//! gpbackup_age_plugin: a gpbackup storage plugin that compresses and encrypts every
//! object before handing it to the real storage plugin.
//!
//! - [`age_file`]: the age v1 format (header, STREAM payload).
//! - [`object`]: our object format inside the age payload (zstd frames and records).
//! - [`pipeline`]: the multithreaded encode and decode pipelines.
//! - [`inner`]: the inner plugin process and its config.
//! - [`compression`]: the zstd settings of frames, derived from the frame size.
//! - [`config`], [`keys`]: the plugin config, recipients and identities.
//! - [`commands`]: the plugin API commands; [`cli`]: their command line.
//! - [`admin`]: the operator commands (keygen, rotate, verify, inspect).
//! - [`log`]: the per-call log file.
//! - [`message`], [`gpbackup`]: small helpers with one home each: how messages read
//!   (one line, I/O causes, bytes), and gpbackup's timestamps and object names.
//! - [`text`]: text files as people save them (byte-order marks, CRLF, invisible
//!   characters), for the config and the key files.

#![forbid(unsafe_code)]

pub mod admin;
pub mod age_file;
pub mod cli;
pub mod commands;
pub mod compression;
pub mod config;
pub mod gpbackup;
pub mod inner;
pub mod keys;
pub mod log;
pub mod message;
pub mod object;
pub mod pipeline;
pub mod text;

pub use message::one_line;
